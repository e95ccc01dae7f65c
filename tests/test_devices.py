"""GPUs, faked on this CPU machine: memory growth on each, one worker per GPU pinned to its own."""

from __future__ import annotations

from types import SimpleNamespace

import mnist_sweep.engines  # noqa: F401  (registers the engines whose defaults the settings ask)
from mnist_sweep.config import Settings
from mnist_sweep.runtime import devices


class FakeTensorFlow:
    def __init__(self, gpus: int):
        self.grown: list[str] = []
        listed = [f"/physical_device:GPU:{i}" for i in range(gpus)]
        experimental = SimpleNamespace(set_memory_growth=lambda gpu, on: self.grown.append(gpu) if on else None)
        self.config = SimpleNamespace(list_physical_devices=lambda kind=None: listed if kind == "GPU" else [],
                                      experimental=experimental)


def test_every_gpu_grows_its_memory_instead_of_taking_it_all():
    tf = FakeTensorFlow(2)
    assert devices.configure(tf) == tf.grown == ["/physical_device:GPU:0", "/physical_device:GPU:1"]
    assert devices.configure(FakeTensorFlow(0)) == []


def test_workers_default_to_one_per_gpu_each_on_its_own(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    count, env = Settings().workers_on(3), devices.placement(3)
    assert count == 3 and [env(i) for i in range(3)] == [{"CUDA_VISIBLE_DEVICES": str(i)} for i in range(3)]
    count, env = Settings(workers=4).workers_on(2), devices.placement(2)  # more workers than GPUs: round robin
    assert count == 4 and [env(i)["CUDA_VISIBLE_DEVICES"] for i in range(4)] == ["0", "1", "0", "1"]
    count, env = Settings().workers_on(0), devices.placement(0)  # no GPU: the engine's default, nothing pinned
    assert count == Settings().worker_processes == 2 and env(0) == {}


def test_the_workers_default_is_the_settings_one_rule_for_every_engine():
    # One per GPU beats the engine's own default (Keras Tuner's 1), --workers beats both.
    assert Settings(engine="kerastuner").workers_on(0) == Settings(engine="kerastuner").worker_processes == 1
    assert Settings(engine="kerastuner").workers_on(2) == 2
    assert Settings(engine="kerastuner", workers=3).workers_on(2) == 3


def test_workers_stay_within_the_gpus_the_user_made_visible(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")  # TensorFlow sees these two as GPU 0 and GPU 1
    gpus = len(FakeTensorFlow(2).config.list_physical_devices("GPU"))
    count, env = Settings().workers_on(gpus), devices.placement(gpus)
    assert count == 2 and [env(i) for i in range(2)] == [{"CUDA_VISIBLE_DEVICES": "2"}, {"CUDA_VISIBLE_DEVICES": "3"}]
    env = devices.placement(2)
    assert [env(i)["CUDA_VISIBLE_DEVICES"] for i in range(3)] == ["2", "3", "2"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-8a1f, GPU-77c2")  # UUIDs, as nvidia-smi -L lists them
    assert devices.placement(2)(1) == {"CUDA_VISIBLE_DEVICES": "GPU-77c2"}
