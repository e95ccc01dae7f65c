"""TensorFlow, loaded without its start-up noise, before anything else imports it.

TensorFlow 2.21 logs through absl before Python can set anything: "WARNING: All log messages
before absl::InitializeLog() is called", the oneDNN notice, "Could not find cuda drivers" and,
at the first device look-up, "failed call to cuInit". TF_CPP_MIN_LOG_LEVEL no longer hides
them (it still hides later INFO and WARNING lines). So file descriptor 2 points elsewhere
while TensorFlow loads and finds its devices, and is put back; if loading fails, what it said
is replayed. Keras's "triggered tf.function retracing" warning is harmless here: each trial
builds a new model, whose first trace TensorFlow counts as a retrace of the last one's.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from typing import Any

from mnist_sweep.runtime import devices


def load_tensorflow() -> Any:
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # later INFO and WARNING lines off, errors kept
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            import tensorflow as tf

            devices.configure(tf)  # finds the devices: cuInit's complaint, inside the window
        except BaseException:
            os.dup2(saved, 2)
            sink.seek(0)
            sys.stderr.write(sink.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    return tf
