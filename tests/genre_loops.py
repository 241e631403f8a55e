"""Tiny genre-labelled loop data sets for the SCNN tests: three genres that differ audibly (pitch and
gating rate), in the data-set layout of dataset.py, plus a tiny SCNN_Loop trained on one.

The fixtures are imported by the test modules that use them (`from genre_loops import loop_set, ...`).
"""
import numpy as np
import pytest

import dataset
import mel
import train_scnn


def make_loop_set(data_dir, genres=("house", "rock", "trap"), n_per=8, seed=0, f0=150.0):
    """n_per loops per genre, each its own source file (so dataset.split_rows holds some out once there are
    MIN_SPLIT_SOURCES of them: 24 files -> 17 train, 2 val, 5 test). -> data_dir."""
    rng = np.random.default_rng(seed)
    t = np.arange(mel.LOOP_SAMPLES) / mel.SR
    rows = []
    for gi, genre in enumerate(genres):
        for k in range(n_per):
            f = f0 * (gi + 1) * (1 + 0.05 * rng.standard_normal())
            gate = np.sin(2 * np.pi * 2 * (gi + 1) * t) > 0
            x = 0.3 * np.sin(2 * np.pi * f * t) * gate + 0.02 * rng.standard_normal(len(t))
            loop_id = f"{genre}_{k}"
            dataset.save_loop(data_dir, loop_id, x.astype(np.float32))
            rows.append({"id": loop_id, "source": f"{loop_id}.wav", "bar": 0, "bpm": 120, "genre": genre})
    dataset.finalize_dataset(data_dir, rows, [])
    return data_dir


@pytest.fixture(scope="module")
def loop_set(tmp_path_factory):
    return make_loop_set(tmp_path_factory.mktemp("loops"))


@pytest.fixture(scope="module")
def tiny_loop_ckpt(loop_set, tmp_path_factory):
    """A width-8 SCNN_Loop trained for two epochs, saved at its default path under a tmp ckpt dir."""
    ckpt_dir = tmp_path_factory.mktemp("ckpt")
    cfg = train_scnn.LoopTrainConfig(width=8, epochs=2, batch=8)
    ckpt = train_scnn.train_loop_classifier(loop_set, cfg, ckpt_dir=ckpt_dir, verbose=False)
    return ckpt, ckpt_dir
