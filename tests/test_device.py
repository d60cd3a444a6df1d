"""Device choice, the COURSE_DEVICE override, seeding and the COURSE_FAST flag."""
import random

import pytest
import torch

from course_lib import device


def test_without_a_gpu_the_cpu_is_chosen(monkeypatch):
    monkeypatch.delenv(device.DEVICE_ENV, raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert device.get_device() == torch.device("cpu")


def test_cuda_comes_first_when_present(monkeypatch):
    monkeypatch.delenv(device.DEVICE_ENV, raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert device.get_device() == torch.device("cuda")


def test_the_override_wins_and_bad_values_are_explained(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv(device.DEVICE_ENV, "cpu")
    assert device.get_device() == torch.device("cpu")
    monkeypatch.setenv(device.DEVICE_ENV, "tpu")
    with pytest.raises(ValueError, match="cpu, mps, cuda"):
        device.get_device()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv(device.DEVICE_ENV, "cuda")
    with pytest.raises(RuntimeError, match="no CUDA GPU"):
        device.get_device()


def test_seeding_makes_every_generator_repeat():
    gen = device.seed_everything(7)
    first = (random.random(), torch.rand(3).tolist(), torch.rand(2, generator=gen).tolist())
    gen = device.seed_everything(7)
    assert first == (random.random(), torch.rand(3).tolist(), torch.rand(2, generator=gen).tolist())


@pytest.mark.parametrize("value, fast", [("1", True), ("true", True), ("0", False), ("", False)])
def test_fast_flag(monkeypatch, value, fast):
    monkeypatch.setenv(device.FAST_ENV, value)
    assert device.is_fast() is fast
    assert device.pick(128, 16) == (16 if fast else 128)
