"""The resumable preprocessing journal: one JSON line per finished source file in DATA_DIR/progress.jsonl,
forced to disk before the next file counts as started, so a killed preprocess.py run resumes where it
stopped and never redoes, loses or duplicates a file.

A record: {"source", "stamp" = (size, mtime_ns) of the file, "mode" = the settings it was made with,
"rows" = the loops it produced, "retry" = a transient failure}. It is reused only while all of these still
hold and its loops are still on disk (`record_is_current`; `file_stamp` gives the stamp).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from plumbing.files import atomic_write

PROGRESS_FILE = "progress.jsonl"


def append_progress(data_dir: str | Path, record: dict) -> None:
    """Append one record and force it to disk before the next file counts as started."""
    path = Path(data_dir) / PROGRESS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record, sort_keys=True) + "\n")
        f.flush()
        os.fsync(f.fileno())


def load_progress(data_dir: str | Path) -> dict[str, dict]:
    """source -> its latest record. A torn last line (a kill during the append) is dropped, and the
    file rewritten atomically without it, so that the next append starts on a fresh line."""
    path = Path(data_dir) / PROGRESS_FILE
    if not path.exists():
        return {}
    text = path.read_text(encoding="utf-8", errors="replace")
    good, bad = [], 0
    for line in text.splitlines():
        try:
            rec = json.loads(line)
            if isinstance(rec, dict) and "source" in rec:
                good.append(rec)
                continue
        except json.JSONDecodeError:
            pass
        bad += line.strip() != ""
    if bad or (text and not text.endswith("\n")):
        def _write(tmp):
            with open(tmp, "w", encoding="utf-8") as f:
                f.writelines(json.dumps(r, sort_keys=True) + "\n" for r in good)
        atomic_write(path, _write)
    return {r["source"]: r for r in good}


def file_stamp(path: str | Path) -> list[int] | None:
    """(size, mtime_ns) of a source file: a record is reused only while the file is unchanged."""
    try:
        st = os.stat(path)
        return [st.st_size, st.st_mtime_ns]
    except OSError:
        return None


def record_is_current(rec: dict | None, stamp, mode: str, data_dir: Path) -> bool:
    return (rec is not None and not rec.get("retry") and rec.get("stamp") == stamp and rec.get("mode") == mode
            and all((data_dir / "mel" / f"{r['id']}.npy").exists() and
                    (data_dir / "wav" / f"{r['id']}.wav").exists() for r in rec.get("rows", [])))
