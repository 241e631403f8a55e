"""Spec of dataset.py: the loop data set on disk (wav/, mel/, manifest.csv, stats.npz, skipped.csv)
and LoopMelDataset, which serves its mels in the GAN's layout (1, T=200, F=64), standardised per band."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from plumbing.audio_io import peak_normalise
from dataset import LoopMelDataset, finalize_dataset, is_complete, load_stats, save_loop
from plumbing.files import atomic_write, read_csv
from mel import LOOP_SAMPLES, N_FRAMES, N_MELS, log_mel


def test_loop_mel_dataset_items_are_time_major_and_standardised_per_band(tmp_path):
    rng = np.random.default_rng(1)
    rows = []
    for i in range(6):   # loops of different loudness and colour, so that bands differ
        x = rng.standard_normal(LOOP_SAMPLES) * (0.05 + 0.1 * i)
        x = np.cumsum(x) / 50 if i % 2 else x                                          # brown vs white
        save_loop(tmp_path, f"l{i}", peak_normalise(x))
        rows.append({"id": f"l{i}", "source": f"s{i}.wav", "bar": 0, "bpm": "120.0", "genre": "ab"[i % 2]})
    finalize_dataset(tmp_path, rows, [])
    ds = LoopMelDataset(tmp_path)
    mel, label = ds[0]
    assert mel.shape == (1, 200, 64) and mel.dtype == torch.float32
    assert ds.genres == ["a", "b"] and int(label) == 0
    allm = torch.stack([ds[i][0] for i in range(len(ds))])                             # (6, 1, 200, 64)
    band_mean = allm.mean(dim=(0, 1, 2))                                               # (64,)
    band_std = allm.std(dim=(0, 1, 2), unbiased=False)
    assert band_mean.abs().max() < 1e-3
    assert (band_std - 1).abs().max() < 1e-3


def test_a_data_set_is_complete_only_once_manifest_and_stats_are_written(tmp_path):
    x = (0.1 * np.random.default_rng(0).standard_normal(LOOP_SAMPLES)).astype(np.float32)
    mel = save_loop(tmp_path, "a", x)
    assert mel.shape == (N_MELS, N_FRAMES) and np.array_equal(np.load(tmp_path / "mel" / "a.npy"), log_mel(x))
    assert not is_complete(tmp_path)
    mean, std = finalize_dataset(tmp_path, [{"id": "a", "source": "a.wav", "bar": 0, "bpm": "120.0",
                                             "genre": "g"}], [])
    assert is_complete(tmp_path) and [r["id"] for r in read_csv(tmp_path / "manifest.csv")] == ["a"]
    np.testing.assert_array_equal(load_stats(tmp_path)[0], mean)
    assert load_stats(tmp_path)[1].shape == (N_MELS,)


def test_a_loop_of_the_wrong_length_and_an_empty_data_set_are_refused(tmp_path):
    with pytest.raises(ValueError, match="32000"):
        save_loop(tmp_path, "short", np.zeros(LOOP_SAMPLES - 1, np.float32))
    with pytest.raises(ValueError, match="no loops were kept"):
        finalize_dataset(tmp_path, [], [])
    with pytest.raises(FileNotFoundError, match="not a preprocessed loop data set"):
        LoopMelDataset(tmp_path)


def test_a_failed_atomic_write_leaves_neither_the_file_nor_a_temporary(tmp_path):
    def half_then_crash(tmp):
        Path(tmp).write_text("half")
        raise OSError("disk full")
    with pytest.raises(OSError, match="disk full"):
        atomic_write(tmp_path / "manifest.csv", half_then_crash)
    assert list(tmp_path.iterdir()) == []
