"""A data set cut as preprocess.py cuts real files: one source file gives several one-bar loops (sibling bars
sound alike), so every split must keep a file's bars together. PARTS names how many files fall in each part of
dataset.split_rows -- the file names are picked by their hash, so the parts are known exactly -- and each file
gives BARS loops; genres differ audibly (pitch and gating rate, as tests/genre_loops.py).

Test modules import what they use by name (`from source_bars import make_bar_set, bar_set, ...`).
"""
from __future__ import annotations

import numpy as np
import pytest

import dataset
import mel
from plumbing.files import read_csv

PARTS = {"train": 24, "val": 3, "test": 3}      # 30 source files: above dataset.MIN_SPLIT_SOURCES
BARS = 3                                        # loops per source file
GENRES = ("house", "rock", "trap")


def source_names(parts: dict[str, int] = PARTS) -> dict[str, list[str]]:
    """{part: file names whose dataset.source_part is that part}, parts[part] of each, first found first."""
    names: dict[str, list[str]] = {p: [] for p in parts}
    i = 0
    while any(len(names[p]) < k for p, k in parts.items()):
        name, i = f"song{i:04d}.wav", i + 1
        part = dataset.source_part(name)
        if part in names and len(names[part]) < parts[part]:
            names[part].append(name)
    return names


def make_bar_set(data_dir, parts: dict[str, int] = PARTS, bars: int = BARS, genres=GENRES, seed: int = 0):
    """Write the data set: each part's files take the genres in turn (so every part holds every genre when it
    has as many files), each file its own pitch, its bars the same tone with fresh noise. -> data_dir."""
    rng = np.random.default_rng(seed)
    t = np.arange(mel.LOOP_SAMPLES) / mel.SR
    rows = []
    for files in source_names(parts).values():
        for k, source in enumerate(files):
            gi = k % len(genres)
            f = 150.0 * (gi + 1) * (1 + 0.05 * rng.standard_normal())                  # this file's pitch
            gate = np.sin(2 * np.pi * 2 * (gi + 1) * t) > 0
            for bar in range(bars):
                x = 0.3 * np.sin(2 * np.pi * f * t) * gate + 0.02 * rng.standard_normal(len(t))
                loop_id = f"{source[:-4]}_bar{bar}"
                dataset.save_loop(data_dir, loop_id, x.astype(np.float32))
                rows.append({"id": loop_id, "source": source, "bar": bar, "bpm": 120, "genre": genres[gi]})
    dataset.finalize_dataset(data_dir, rows, [])
    return data_dir


def sources(data_dir, ids) -> set[str]:
    """The source files of loops `ids` of a data set."""
    keep = set(ids)
    return {r["source"] for r in read_csv(data_dir / "manifest.csv") if r["id"] in keep}


@pytest.fixture(scope="module")
def bar_set(tmp_path_factory):
    """30 files x 3 bars, three genres: 72 training loops, 9 val, 9 test (18 held out)."""
    return make_bar_set(tmp_path_factory.mktemp("bars"))


@pytest.fixture(scope="module")
def one_genre_bar_set(tmp_path_factory):
    """The same 90 loops under one genre: the evaluation code paths without an IS classifier to train."""
    return make_bar_set(tmp_path_factory.mktemp("bars1"), genres=("g",))
