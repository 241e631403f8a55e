"""Shared pieces of the training tests (test_train.py, test_distributed.py): the tiny configuration and an
8-loop demo drum set.

Test modules import the fixture by name (`from train_fixtures import TINY, cfg_for, tiny_drum_set`).
"""
from __future__ import annotations

import pytest

import demo.loops
import train
from dataset import finalize_dataset, save_loop

TINY = dict(batch=4, g_channels=16, d_channels=16, sample_every=1000, ckpt_every=2, snapshot_every=1000, samples=0)


@pytest.fixture(scope="module")
def tiny_drum_set(tmp_path_factory):
    """Eight demo drum loops: two genres, four loops each (enough for every code path, seconds to render)."""
    out = tmp_path_factory.mktemp("tiny_drum")
    rows = []
    for i in range(8):
        genre = demo.loops.DRUM_GENRES[i % 2]
        save_loop(out, f"t{i}", demo.loops.render_loop("drum", genre, seed=i))
        rows.append({"id": f"t{i}", "source": "test", "bar": 0, "bpm": 120, "genre": genre})
    finalize_dataset(out, rows, [])
    return out


def cfg_for(tmp_path, data, features, **kw) -> train.TrainConfig:
    return train.TrainConfig(loops="drum", features=features, data=str(data), out=str(tmp_path / "run"),
                             **{**TINY, **kw})
