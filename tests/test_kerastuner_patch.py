"""Keras Tuner 1.4.8's leftover debug print, silenced in the gRPC calls of a distributed search."""

from __future__ import annotations

from mnist_sweep.engines import kerastuner  # noqa: F401  the engine, as a sweep loads it, applies the patch
from mnist_sweep.engines import kerastuner_space as kt_space
from mnist_sweep.space import load_space


def test_a_conditional_space_goes_over_grpc_without_keras_tuners_debug_print(capsys):
    hp = kt_space.declare(load_space("cnn"))  # per-layer parameters: conditional scopes
    assert hp.to_proto().space  # as the chief sends it to every worker
    assert capsys.readouterr().out == ""
