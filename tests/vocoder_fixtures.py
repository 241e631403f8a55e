"""Shared pieces of the vocoder tests (test_melgan.py, test_train_melgan.py, test_griffinlim.py, test_vocos.py):
tiny but structurally identical MelGAN and fast-vocoder networks, a chirp that excites every mel band, a 3-loop
data set, and an empty $PJLOOP_HOME so that no test sees (or writes) the repository's trained vocoders.

Test modules import the fixtures by name (`from vocoder_fixtures import one_thread, tiny_set`).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

import melgan as M
import train_melgan as T
import vocos as V
from dataset import finalize_dataset, save_loop
from mel import HOP, LOOP_SAMPLES, SR
from plumbing import paths

TINY = M.MelGANConfig(g_channels=16, d_channels=4, d_max_channels=16)
TINY_FAST = V.VocosConfig(dim=16, blocks=2)


@pytest.fixture(autouse=True)
def no_repo_vocoders(tmp_path, monkeypatch):
    """Default vocoder checkpoints go to (and are looked for in) an empty $PJLOOP_HOME, not <repo>/checkpoints;
    the data root stays where it was, so the demo sets are still found."""
    monkeypatch.setenv(paths.DATA_ENV, str(paths.data_root()))
    monkeypatch.setenv(paths.HOME_ENV, str(tmp_path / "home"))


@pytest.fixture(autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def chirp(n: int = LOOP_SAMPLES, f0: float = 100.0, f1: float = 7000.0) -> np.ndarray:
    """A linear sweep over almost the whole band: every mel band gets energy at some time."""
    t = np.arange(n) / SR
    dur = n / SR
    return (0.5 * np.sin(2 * np.pi * (f0 * t + (f1 - f0) / (2 * dur) * t ** 2))).astype(np.float32)


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory):
    """A 3-loop data set in the dataset.py layout: decaying noise hits and tones, periodic in 2 s."""
    d = tmp_path_factory.mktemp("loops")
    rng = np.random.default_rng(0)
    n = np.arange(LOOP_SAMPLES)
    rows = []
    for i in range(3):
        hits = rng.standard_normal(LOOP_SAMPLES) * np.exp(-(n % 8000) / (200 + 300 * i))
        tone = np.sin(2 * np.pi * (110 * (i + 1)) * n / SR)                   # whole cycles in 2 s
        save_loop(d, f"l{i}", (0.4 * hits + 0.3 * tone).astype(np.float32))
        rows.append({"id": f"l{i}", "source": "synthetic", "bar": 0, "bpm": 120, "genre": f"g{i % 2}"})
    finalize_dataset(d, rows, [])
    return d


def tiny_train_config(data_dir, arch: str = "melgan") -> T.TrainConfig:
    return T.TrainConfig(loops="drum", data=str(data_dir), arch=arch, batch=2, segment=8 * HOP, model=TINY,
                         fast=TINY_FAST)
