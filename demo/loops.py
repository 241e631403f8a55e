"""Embedded demo loops: a seeded renderer of genre-labelled one-bar loops (stand-in for the paper's data).

The paper (Section 3) trains on 2 s, 120 BPM, one-bar Looperman loops labelled by genre; those cannot be
downloaded here, so this renders a data set in dataset.py's layout from genre templates (demo/drums.py,
demo/synths.py) played on a General MIDI SoundFont, at 48 kHz, decimated to 16 kHz, tails wrapped onto the
start (seamless loops), peak-normalised to plumbing.audio_io.PEAK_LEVEL.

    render_loop("drum" | "synth", genre, seed, bpm=120, bars=1)  ->  float32 (N,) at 16 kHz
    build_demo_set(loops, n, out_dir)  ->  out_dir/{wav,mel}/<id>, manifest.csv, stats.npz, demo.json

How a loop is made, step by step: docs/modules.md, "demo/loops.py".
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
import importlib.util
import zlib
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from scipy.signal import resample_poly

from dataset import LOOP_BYTES, default_data_dir, finalize_dataset, is_complete, save_loop

from plumbing.audio_io import PEAK_LEVEL
from plumbing.files import atomic_write, disk_full_line, is_disk_full, megabytes, on_disk_full, read_csv
from plumbing.progress import Progress
from demo.drums import DRUM_GENRES, Note, drum_notes
from demo.synths import SYNTH_STYLES, synth_notes
from mel import SR

# ---------------------------------------------------------------------------------------------
# Constants, named once.
# ---------------------------------------------------------------------------------------------
DEFAULT_N = 2000          # loops per demo set: 200 per drum genre, ~333 per synth style
DEFAULT_WORKERS = 2       # the CPU machines this runs on have 2 cores
DEMO_BPM = 120.0          # every training loop is one bar of 4/4 at 120 BPM (docs/design.md §1)
RENDER_SR = 3 * SR        # 48 kHz synthesis, decimated by 3 (see docstring, step 3)
TAIL_S = 4.0              # longest tail we wrap (a GM crash cymbal rings ~4 s, pad releases ~2 s)
MAX_VOICES = 128          # TinySoundFont voice pool; pads x 4 notes x layered zones fit easily
DEMO_VERSION = 1          # bump when the renderer changes, so cached demo sets are re-rendered
DEMO_JSON = "demo.json"   # what a cached set was rendered with (loops, n, seed, version, soundfont)
MAX_CHUNK = 16            # loops per pool task at most: amortises the IPC of a ~0.1 s render ...
CHUNKS_PER_WORKER = 4     # ... yet each worker gets >= 4 tasks, so a slow last chunk cannot idle the rest
ID_PREFIX = "demo_"       # file stem of every demo loop; stale ones are removed on a rebuild
LOG_LINES = 10           # progress lines per set in a log file (a terminal gets a bar)

DRUM_CHANNEL, SYNTH_CHANNEL = 9, 0    # GM convention (TinySoundFont only needs the drum flag)
DRUM_BANK = 128                       # SF2 bank that holds the percussion kits



# ---------------------------------------------------------------------------------------------
# The SoundFont. TimGM6mb (6 MB, GM, bank 128 kits) ships inside pretty_midi's wheel, so the default
# needs no download. $PJLOOP_SOUNDFONT=/path/to.sf2 picks another; =auto prefers Debian's richer
# FluidR3_GM when it is installed. The choice is recorded in demo.json (it changes the audio).
# ---------------------------------------------------------------------------------------------
FLUID_R3 = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")


def soundfont_path() -> Path:
    """The .sf2 file the demo loops are rendered with."""
    choice = os.environ.get("PJLOOP_SOUNDFONT", "").strip()
    if choice and choice != "auto":
        path = Path(choice).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"PJLOOP_SOUNDFONT={choice!r}: no such SoundFont file")
        return path
    if choice == "auto" and FLUID_R3.is_file():
        return FLUID_R3
    spec = importlib.util.find_spec("pretty_midi")   # only its data file is needed: no import
    if spec is None or spec.origin is None:  # pragma: no cover - pretty_midi is a requirement
        raise RuntimeError("the demo renderer (demo/loops.py) needs pretty_midi (it ships the TimGM6mb SoundFont): "
                           "pip install pretty_midi, or set PJLOOP_SOUNDFONT=/path/to.sf2")
    path = Path(spec.origin).parent / "TimGM6mb.sf2"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the pretty_midi install; "
                                "set PJLOOP_SOUNDFONT=/path/to.sf2")
    return path


@lru_cache(maxsize=4)
def _load_soundfont(path: str):
    """The parsed SoundFont, loaded once per process (each loop renders on a fresh clone of it)."""
    try:   # imported here, not at the top: only rendering needs it (a cached set or real data does not),
        import tinysoundfont._tinysoundfont as tsf   # and it is installed apart, with --no-deps (setup.sh)
    except ImportError as e:
        raise RuntimeError("the demo renderer (demo/loops.py) needs tinysoundfont: pip install --no-deps tinysoundfont==0.3.7 "
                           "(setup.sh does it)") from e
    return tsf, tsf.SoundFont(path)


def _fresh_synth():
    """A new synthesiser on the shared SoundFont data.

    One per loop, on purpose: TinySoundFont reuses voice structures whose filter state survives
    `reset()` (a hi-hat sounds different after a crash), so a long-lived synth would make a loop depend
    on which loops the same process rendered before it - and results on the number of workers.
    Cloning costs microseconds.
    """
    tsf, base = _load_soundfont(str(soundfont_path()))
    synth = tsf.SoundFont(base)
    synth.set_output(tsf.OutputMode.Mono, RENDER_SR, 0.0)
    synth.set_max_voices(MAX_VOICES)
    return synth


def _has_preset(bank: int, program: int) -> bool:
    _, base = _load_soundfont(str(soundfont_path()))
    return base.get_preset_index(bank, program) >= 0


# ---------------------------------------------------------------------------------------------
# The loop-mode renderer: notes (demo.drums.Note) -> audio.
# ---------------------------------------------------------------------------------------------


def wrap_tail(audio: np.ndarray, period: int) -> np.ndarray:
    """Fold a rendering longer than one loop onto the loop: out[i] = sum_k audio[i + k * period].

    This is what a DAW's loop mode plays in the steady state: the tail of the previous pass
    sounds over the start of the next one, so the loop repeats without a click or a gap.
    """
    k = -(-len(audio) // period)                                                      # ceil
    padded = np.zeros(k * period, dtype=np.float64)
    padded[:len(audio)] = audio
    return padded.reshape(k, period).sum(axis=0)                                      # (period,)


def _render(notes: list[Note], n_out: int, beats: float, drum: bool, program: int,
            tuning: float = 0.0) -> np.ndarray:
    """Play `notes` on one GM instrument in loop mode: float32 (n_out,) at SR, peak-normalised.

    The loop period is exactly n_out output samples (= 3 n_out at 48 kHz); beat positions are mapped
    onto it, so a loop's length is exact even where bars * 4 * 60 / bpm * SR is not an integer.
    """
    period = 3 * n_out                                                                # at RENDER_SR
    samples_per_beat = period / beats
    passes = 1 + int(np.ceil(TAIL_S * RENDER_SR / period))                            # loop + its tail
    total = passes * period

    events = []                                                                       # (sample, on?, key, vel)
    for nt in notes:
        on = int(round(nt.beat * samples_per_beat + nt.shift_ms * 1e-3 * RENDER_SR)) % period
        events.append((on, 1, nt.key, nt.vel))
        if nt.dur > 0:
            events.append((on + max(1, int(round(nt.dur * samples_per_beat))), 0, nt.key, 0.0))
    events.sort(key=lambda e: (e[0], e[1]))                                           # offs before ons

    synth = _fresh_synth()
    chan = DRUM_CHANNEL if drum else SYNTH_CHANNEL
    bank = DRUM_BANK if drum else 0
    if not _has_preset(bank, program):
        program = 0                                                                   # Standard kit / piano
    synth.channel_set_bank(chan, bank)
    synth.channel_set_preset_number(chan, program, drum)
    synth.channel_set_tuning(chan, float(tuning))

    buf = np.zeros(total, dtype=np.float32)                                           # (passes * period,)
    pos = 0
    for sample, is_on, key, vel in events:
        sample = min(sample, total)
        if sample > pos:
            synth.render(memoryview(buf[pos:sample]).cast("B"))
            pos = sample
        if is_on:
            synth.channel_note_on(chan, int(key), float(np.clip(vel, 0.01, 1.0)))
        else:
            synth.channel_note_off(chan, int(key))
    if pos < total:
        synth.render(memoryview(buf[pos:]).cast("B"))

    # The linear rendering starts in silence and ends in silence, so the polyphase filter's zero
    # padding at its edges is exact; the wrap comes after the decimation.
    audio = resample_poly(buf.astype(np.float64), 1, 3)                               # (passes * n_out,)
    loop = wrap_tail(audio, n_out)                                                    # (n_out,)
    peak = float(np.max(np.abs(loop)))
    if not np.isfinite(peak) or peak < 1e-6:
        raise RuntimeError(f"demo loop rendered silent (program {program}, drum={drum}); "
                           f"check the SoundFont {soundfont_path()}")
    return (loop * (PEAK_LEVEL / peak)).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Public API.
# ---------------------------------------------------------------------------------------------
GENRES = {"drum": DRUM_GENRES, "synth": SYNTH_STYLES}   # the genre labels of each kind of demo loop


def _check_loops(loops: str) -> None:
    if loops not in GENRES:
        raise ValueError(f"loops must be one of {sorted(GENRES)}, got {loops!r}")


def loop_samples(bpm: float = DEMO_BPM, bars: int = 1) -> int:
    """Length in samples of `bars` bars of 4/4 at `bpm`: 32 000 at 120 BPM, 1 bar."""
    return int(round(bars * 4 * 60.0 / bpm * SR))


def render_loop(loops: str, genre: str, seed: int, bpm: float = DEMO_BPM, bars: int = 1) -> np.ndarray:
    """One demo loop: float32 (round(bars * 4 * 60 / bpm * SR),) at mel.SR, peak 0.9.

    Deterministic in (loops, genre, seed, bpm, bars). At another tempo the same pattern is played at that
    tempo; with several bars the bar repeats (new humanisation each bar, a fill only in the last).
    """
    _check_loops(loops)
    if genre not in GENRES[loops]:
        raise ValueError(f"unknown {loops} genre {genre!r}; choose from {', '.join(GENRES[loops])}")
    if not (bpm > 0 and np.isfinite(bpm)):
        raise ValueError(f"bpm must be a positive number, got {bpm!r}")
    if int(bars) != bars or bars < 1:
        raise ValueError(f"bars must be a positive integer, got {bars!r}")
    bars = int(bars)
    # A stable seed for the triple (Python's hash() of strings changes from run to run).
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(f"{loops}:{genre}".encode())])
    n_out = loop_samples(bpm, bars)
    if loops == "drum":
        notes, kit, tuning = drum_notes(genre, rng, bars)
        return _render(notes, n_out, 4.0 * bars, drum=True, program=kit, tuning=tuning)
    notes, program = synth_notes(genre, rng, bars)
    return _render(notes, n_out, 4.0 * bars, drum=False, program=program)


def loop_seed(seed: int, index: int) -> int:
    """The render seed of loop `index` of a set built with `seed` (independent of worker count)."""
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(index)]).generate_state(1)[0])


def _plan(loops: str, n: int, seed: int) -> list[dict]:
    """Manifest rows of a set: genres balanced round-robin, one derived seed per loop."""
    genres = GENRES[loops]
    rows = []
    for i in range(n):
        genre = genres[i % len(genres)]
        s = loop_seed(seed, i)
        rows.append({"id": f"{ID_PREFIX}{loops}_{i:05d}", "source": f"demo:{genre}:{s}", "bar": 0,
                     "bpm": int(DEMO_BPM), "genre": genre})
    return rows


def _render_and_save(task: tuple) -> dict:
    """Worker: render one planned loop and write its wav + mel (the mel front end runs in the worker)."""
    loops, out_dir, row = task
    _, genre, s = row["source"].split(":")
    save_loop(out_dir, row["id"], render_loop(loops, genre, int(s)))
    return row


def _init_worker() -> None:
    torch.set_num_threads(1)          # one process per core; torch must not oversubscribe it


def _demo_info(loops: str, n: int, seed: int) -> dict:
    return {"loops": loops, "n": int(n), "seed": int(seed), "version": DEMO_VERSION,
            "soundfont": soundfont_path().name}


def _read_info(out_dir: Path) -> dict | None:
    try:
        return json.loads((out_dir / DEMO_JSON).read_text())
    except (OSError, ValueError):
        return None


def build_demo_set(loops: str, n: int, out_dir, seed: int = 0, workers: int = DEFAULT_WORKERS,
                   progress: bool = True) -> Path:
    """Render n demo loops into out_dir in dataset.py's layout; return out_dir.

    Cached: when out_dir already holds a complete set rendered with the same (loops, n, seed, renderer
    version, SoundFont), it returns at once. The result does not depend on `workers`.
    """
    _check_loops(loops)
    if int(n) != n or n < 1:
        raise ValueError(f"n (number of loops) must be a positive integer, got {n!r}")
    if int(workers) != workers or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    n, workers = int(n), int(workers)
    out_dir = Path(out_dir)
    info = _demo_info(loops, n, seed)
    old = _read_info(out_dir)
    if is_complete(out_dir):
        if old == info:
            return out_dir
        if old is None:
            raise FileExistsError(f"{out_dir} holds a data set that demo/loops.py did not write "
                                  f"(no {DEMO_JSON}); choose another output directory")

    # Invalidate first, then record what is being rendered: a crash mid-way leaves an incomplete set
    # (no manifest) that the next call re-renders, never a stale one that looks complete.
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in ("manifest.csv", "stats.npz"):
        (out_dir / name).unlink(missing_ok=True)
    atomic_write(out_dir / DEMO_JSON, lambda tmp: Path(tmp).write_text(json.dumps(info, indent=1)))

    def disk_full() -> str:
        return (f"no space left on the disk of {out_dir}: {n} {loops} demo loops need about "
                f"{megabytes(n * LOOP_BYTES)}; the set was left incomplete (no manifest), so the next use renders "
                "it again. Free space, then run again")

    with on_disk_full(disk_full):       # a full disk: one line (the temporary file of the write is removed)
        rows = _plan(loops, n, seed)
        tasks = [(loops, str(out_dir), row) for row in rows]
        log_every = max(1, n // LOG_LINES)
        if workers == 1:
            with Progress(total=n, desc=f"demo {loops} loops", unit="loop", enabled=progress, every=log_every) as bar:
                for task in tasks:
                    _render_and_save(task)
                    bar.update()
        else:
            # fork where the platform has it: a spawned worker would spend seconds re-importing torch.
            # Forking a process that has used torch is safe here for the reason it is safe in torch's own
            # DataLoader workers: each worker pins torch to one thread, so no OpenMP pool is used after
            # the fork. The pool is created before the progress bar, whose monitor thread must not be forked.
            method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
            chunk = max(1, min(MAX_CHUNK, n // (CHUNKS_PER_WORKER * workers)))
            with mp.get_context(method).Pool(min(workers, n), initializer=_init_worker) as pool, \
                    Progress(total=n, desc=f"demo {loops} loops", unit="loop", enabled=progress,
                             every=log_every) as bar:
                for _ in pool.imap_unordered(_render_and_save, tasks, chunksize=chunk):
                    bar.update()

        keep = {r["id"] for r in rows}
        for sub, ext in (("wav", ".wav"), ("mel", ".npy")):                               # loops of an older set
            for f in (out_dir / sub).glob(f"{ID_PREFIX}*{ext}"):
                if f.stem not in keep:
                    f.unlink()
        finalize_dataset(out_dir, rows, skipped=[])
    return out_dir


def ensure_demo_set(loops: str, n: int = DEFAULT_N, workers: int = DEFAULT_WORKERS) -> Path:
    """The default demo set of `loops` (rendered on first use, then cached): its directory."""
    _check_loops(loops)
    out_dir = default_data_dir(loops)
    if not (is_complete(out_dir) and _read_info(out_dir) == _demo_info(loops, n, 0)):
        print(f"demo loops: rendering {n} {loops} demo loops into {out_dir} (once; cached afterwards)",
              file=sys.stderr)
    return build_demo_set(loops, n, out_dir, seed=0, workers=workers)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Render the embedded genre-labelled demo loops as a pjloop data set.")
    ap.add_argument("--loops", choices=sorted(GENRES), required=True, help="drum or synth loops")
    ap.add_argument("-n", type=int, default=DEFAULT_N, help=f"number of loops (default {DEFAULT_N})")
    ap.add_argument("--out", type=Path, default=None, help="output directory (default <data root>/demo_<loops>: "
                    "$PJLOOP_DATA_ROOT, else $PJLOOP_HOME/data, else the repository's data/)")
    ap.add_argument("--seed", type=int, default=0, help="first seed: loop i is rendered from seed + i (default 0)")
    ap.add_argument("--workers", type=int, default=DEFAULT_WORKERS, help=f"render processes (default {DEFAULT_WORKERS})")
    ap.add_argument("--quiet", action="store_true", help="no progress output")
    args = ap.parse_args(argv)
    out = args.out if args.out is not None else default_data_dir(args.loops)
    t0 = time.time()
    cached = is_complete(out) and _read_info(out) == _demo_info(args.loops, args.n, args.seed)
    try:
        build_demo_set(args.loops, args.n, out, seed=args.seed, workers=args.workers, progress=not args.quiet)
    except (ValueError, FileExistsError, FileNotFoundError, RuntimeError) as e:
        print(f"demo/loops.py: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        if not is_disk_full(e):
            raise
        print(f"demo/loops.py: {disk_full_line(e, 'run again')}", file=sys.stderr)
        return 1
    rows = read_csv(out / "manifest.csv")
    counts = {g: sum(r["genre"] == g for r in rows) for g in GENRES[args.loops]}
    print(f"{out}: kept {len(rows)} {args.loops} loops in {time.time() - t0:.1f} s{' (cached)' if cached else ''}; genres: "
          + ", ".join(f"{g} {c}" for g, c in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
