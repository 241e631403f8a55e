"""Crash-safe file writing: every file is written under a temporary name, then renamed onto its own
(atomic on POSIX), so a crash or kill leaves the old file or the new one, never half of one. A full disk
(OSError ENOSPC) is the same case: the temporary file is removed, the old file stays, and `DiskFull` says so
in one line (what is safe, how much space is needed, what to run then).

Used by the data sets (dataset.py, preprocess.py, demo/), the checkpoints (plumbing/checkpoint.py),
sample.py and the result tables.
"""
from __future__ import annotations

import csv
import errno
import io
import os
import tempfile
from contextlib import contextmanager
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
    """Atomically write a mono float32 WAV. Encoded in memory first, then written by Python, so that a full
    disk is an OSError ENOSPC (libsndfile writing to a path reports it as a RuntimeError without the errno)."""
    buf = io.BytesIO()
    sf.write(buf, np.asarray(audio, dtype=np.float32), sr, subtype="FLOAT", format="WAV")
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(buf.getvalue()))


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


# ---------------------------------------------------------------------------------------------
# A full disk, told in one line
# ---------------------------------------------------------------------------------------------
class DiskFull(OSError):
    """A write that failed for want of space (errno ENOSPC), with one line that says what to do."""

    def __init__(self, line: str):
        super().__init__(errno.ENOSPC, line)

    def __str__(self) -> str:
        return self.strerror


def is_disk_full(e: BaseException) -> bool:
    return isinstance(e, OSError) and e.errno == errno.ENOSPC


def megabytes(n_bytes: int) -> str:
    """'12.3 MB': how a size is written in a message."""
    return f"{n_bytes / 1e6:.1f} MB"


def disk_full_line(e: OSError, then: str) -> str:
    """One line for a full disk: a DiskFull's own line, else where the write failed and `then` (what to run
    once space is freed). The temporary file was removed by atomic_write, the file it replaced kept."""
    if isinstance(e, DiskFull):
        return str(e)
    where = f" while writing {Path(e.filename).parent}" if e.filename else ""
    return f"no space left on the disk{where}; nothing half-written was kept. Free space, then {then}"


def checkpoint_safe_line(latest: Path, step: int | None, size: int, when: str = "") -> str:
    """A full disk while training (`when`: e.g. ' at step 7'): which checkpoint is safe (latest.pt is replaced
    only once its successor is complete), and how much room writing one takes (its size on disk, or the
    tensors' bytes before the first)."""
    safe = (f"{latest} holds step {step} and is intact" if step is not None and latest.is_file()
            else "no checkpoint of this run was written yet")
    return (f"no space left on the disk{when}: {safe}; writing a checkpoint needs about {megabytes(size)} free. "
            "Free space, then run again with --resume")


@contextmanager
def on_disk_full(line):
    """Inside the block, a full disk (ENOSPC) becomes DiskFull(line()): `line` says what is safe and what to do."""
    try:
        yield
    except OSError as e:
        if isinstance(e, DiskFull) or not is_disk_full(e):
            raise
        raise DiskFull(line()) from None
