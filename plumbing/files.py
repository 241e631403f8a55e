"""Crash-safe file writing: every file is written under a temporary name, then renamed onto its own
(atomic on POSIX), so a crash or kill leaves the old file or the new one, never half of one.

Used by the data sets (dataset.py, preprocess.py, demo/), the checkpoints (plumbing/checkpoint.py),
sample.py and the result tables.
"""
from __future__ import annotations

import csv
import os
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from mel import SR


def atomic_write(path: str | Path, write_fn) -> None:
    """Call write_fn(tmp_path) and rename the result onto `path` (atomic on POSIX)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write_fn(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_wav(path: str | Path, audio: np.ndarray, sr: int = SR) -> None:
    """Atomically write a mono float32 WAV."""
    def _write(tmp):
        sf.write(tmp, np.asarray(audio, dtype=np.float32), sr, subtype="FLOAT", format="WAV")
    atomic_write(path, _write)


def write_npy(path: str | Path, array: np.ndarray) -> None:
    """Atomically write a .npy file."""
    def _write(tmp):
        with open(tmp, "wb") as f:
            np.save(f, array)
    atomic_write(path, _write)


def write_csv(path: str | Path, fields: list[str], rows: list[dict]) -> None:
    """Atomically (re)write a whole CSV file."""
    def _write(tmp):
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields)
            w.writeheader()
            w.writerows(rows)
    atomic_write(path, _write)


def read_csv(path: str | Path) -> list[dict]:
    """Rows of a CSV written by `write_csv` (an empty list when the file does not exist)."""
    if not Path(path).exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))
