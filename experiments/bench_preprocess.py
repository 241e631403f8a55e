"""Benchmark of preprocess.py's bar finding on a hidden-answer set (paper Section 4 "Pipeline"; realloops/tempo.py).

    python -m experiments.bench_preprocess [--n 160] [--seed 0] [--workers 2] [--out DIR]

renders loops whose tempo and bar count it knows (demo.loops.render_loop), dresses them up as loop libraries
ship them (names, tags, rates, silence, tails), runs preprocess.py on the folder (no labels, no --bpm) and
scores its report.csv: the fraction kept with the right number of bars, the fraction with the BPM within 2 %,
per group, the misses, and the throughput in loops per second.

What the set holds (`plan_cases`: sweep, traps, mixed): docs/modules.md, "experiments/bench_preprocess.py";
figures: docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import struct
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import fftconvolve

import demo.loops
from plumbing.audio_io import resample
from plumbing.files import read_csv
from mel import SR
from preprocess import preprocess_folder

DEFAULT_N = 160               # files: ~3 minutes of preprocessing on one core
SWEEP_BPMS = tuple(range(60, 201, 10))
GENRE_TEMPI = {"hiphop": (70, 100), "trap": (130, 170), "house": (115, 130), "techno": (120, 150),
               "rock": (80, 180), "funk": (85, 125), "breakbeat": (95, 140), "dnb": (160, 180),
               "reggaeton": (85, 105), "afrobeat": (95, 125)}   # BPM ranges loops of each genre are made at
WRONG_TEMPI = (60, 200)       # where a wrong tempo in a name comes from
TRAPS = (("trap", 2, (130, 170), 8), ("dnb", 2, (160, 180), 6), ("hiphop", 1, (70, 95), 8),
         ("funk", 1, (85, 100), 4))   # (genre, bars, tempo range, how many)
SAMPLE_RATES = (22_050, 44_100, 48_000)
NAMED_SHARE, WRONG_SHARE = 0.5, 0.15
ACID_SHARE = 0.3              # of the unnamed WAVs in the mixed group
SILENCE_SHARE, SILENCE_S = 0.2, (0.05, 0.5)
TAIL_SHARE, TAIL_RT60_S, TAIL_WET_DB = 0.2, (0.5, 1.8), (-16.0, -10.0)
FLAC_SHARE, STEREO_SHARE = 0.25, 0.5
BPM_TOLERANCE = 0.02
NAME_STYLES = ("{genre}_{bpm}bpm", "{Genre} Loop {bpm} BPM", "{genre}-{bpm}-Am", "{bpm}_{genre}_loop",
               "{genre}_bpm{bpm}")
PLAIN_STYLES = ("{genre}_loop", "{Genre} Groove", "{genre}_808_vol2", "{genre}-fill-B")   # no tempo in them
KEY_NOTE = 60                 # ACID root note (middle C): any value does


# ---------------------------------------------------------------------------------------------
# The hidden answers.
# ---------------------------------------------------------------------------------------------
def _dressing(rng: np.random.Generator, case: dict) -> dict:
    """The way a library ships a loop: rate, channels, format, leading silence, reverb tail."""
    case.update(sr=int(rng.choice(SAMPLE_RATES)), channels=2 if rng.random() < STEREO_SHARE else 1,
                fmt="flac" if rng.random() < FLAC_SHARE else "wav",
                lead_s=float(rng.uniform(*SILENCE_S)) if rng.random() < SILENCE_SHARE else 0.0,
                rt60=float(rng.uniform(*TAIL_RT60_S)) if rng.random() < TAIL_SHARE else 0.0,
                wet_db=float(rng.uniform(*TAIL_WET_DB)), seed=int(rng.integers(2 ** 31)))
    case.setdefault("name", "none")
    case.setdefault("name_bpm", None)
    case.setdefault("acid", False)
    return case


def _wrong_bpm(rng: np.random.Generator, bpm: int) -> int:
    """A tempo that is no octave of bpm (|log2 ratio| at least 0.06 from a whole number)."""
    while True:
        wrong = int(rng.integers(WRONG_TEMPI[0], WRONG_TEMPI[1] + 1))
        octaves = np.log2(wrong / bpm)
        if abs(octaves - round(octaves)) > 0.06:
            return wrong


def _nearest_genre(bpm: int, k: int) -> str:
    """A drum genre made at this tempo (the k-th of those), or the one whose range is nearest."""
    inside = [g for g, (lo, hi) in GENRE_TEMPI.items() if lo <= bpm <= hi]
    if inside:
        return inside[k % len(inside)]
    return min(GENRE_TEMPI, key=lambda g: min(abs(bpm - GENRE_TEMPI[g][0]), abs(bpm - GENRE_TEMPI[g][1])))


def plan_cases(n: int = DEFAULT_N, seed: int = 0) -> list[dict]:
    """The hidden-answer set: one dict per file (kind, genre, bpm, bars, group and its dressing)."""
    rng = np.random.default_rng(seed)
    synths = demo.loops.GENRES["synth"]
    cases = []
    for k, bpm in enumerate(SWEEP_BPMS):
        cases.append({"group": "sweep", "kind": "drum", "genre": _nearest_genre(bpm, k), "bpm": bpm, "bars": 1})
        cases.append({"group": "sweep", "kind": "synth", "genre": synths[k % len(synths)], "bpm": bpm, "bars": 1})
    for genre, bars, (lo, hi), count in TRAPS:
        cases += [{"group": "traps", "kind": "drum", "genre": genre, "bars": bars,
                   "bpm": int(rng.integers(lo, hi + 1))} for _ in range(count)]
    while len(cases) < n:
        kind = "drum" if rng.random() < 0.6 else "synth"
        genre = str(rng.choice(demo.loops.GENRES[kind]))
        lo, hi = GENRE_TEMPI.get(genre) or GENRE_TEMPI[str(rng.choice(list(GENRE_TEMPI)))]
        case = {"group": "mixed", "kind": kind, "genre": genre, "bpm": int(rng.integers(lo, hi + 1)),
                "bars": int(rng.choice([1, 2, 4]))}
        u = rng.random()
        if u < NAMED_SHARE:
            case.update(name="right", name_bpm=case["bpm"])
        elif u < NAMED_SHARE + WRONG_SHARE:
            case.update(name="wrong", name_bpm=_wrong_bpm(rng, case["bpm"]))
        cases.append(case)
    cases = [_dressing(rng, c) for c in cases[:n]]
    for c in cases:
        if c["group"] == "mixed" and c["name"] == "none" and c["fmt"] == "wav" and rng.random() < ACID_SHARE:
            c["acid"] = True
    for i, c in enumerate(cases):
        style = rng.choice(NAME_STYLES if c["name_bpm"] else PLAIN_STYLES)
        stem = str(style).format(genre=c["genre"], Genre=c["genre"].replace("_", " ").title(), bpm=c["name_bpm"])
        c["file"] = f"loop{i:04d} {stem}.{c['fmt']}"
    return cases


# ---------------------------------------------------------------------------------------------
# Rendering and dressing.
# ---------------------------------------------------------------------------------------------
def acid_chunk(bpm: float, beats: int) -> bytes:
    """A RIFF 'acid' chunk (24 bytes): flags, root note, 2 unknowns, number of beats, meter 4/4, tempo."""
    payload = struct.pack("<IHHfIHHf", 0, KEY_NOTE, 0x8000, 0.0, beats, 4, 4, float(bpm))
    return b"acid" + struct.pack("<I", len(payload)) + payload


def append_riff_chunk(path: str | Path, chunk: bytes) -> None:
    """Append a whole chunk (id, size, payload, padded to even) to a WAV file and fix the RIFF size."""
    data = bytearray(Path(path).read_bytes())
    data += chunk + (b"\x00" if len(chunk) % 2 else b"")
    data[4:8] = struct.pack("<I", len(data) - 8)
    Path(path).write_bytes(bytes(data))


def reverb_tail(x: np.ndarray, sr: int, rt60: float, wet_db: float, rng: np.random.Generator) -> np.ndarray:
    """x plus its reverb (exponentially decaying noise, 60 dB down after rt60 s), the reverb ringing on
    after x ends: the file grows by rt60 seconds of decay with no new onset."""
    t = np.arange(int(rt60 * sr)) / sr
    ir = rng.standard_normal(len(t)) * np.exp(-6.9 * t / rt60)                        # -60 dB at rt60
    wet = fftconvolve(x, ir)                                                           # (N + len(ir) - 1,)
    wet *= 10 ** (wet_db / 20) * np.sqrt(np.mean(x ** 2)) / (np.sqrt(np.mean(wet[:len(x)] ** 2)) + 1e-12)
    return np.concatenate([x, np.zeros(len(wet) - len(x))]) + wet


def render_case(case: dict) -> tuple[np.ndarray, int]:
    """A case -> (audio (N, C) float32, sample rate) as the file holds it."""
    x16 = demo.loops.render_loop(case["kind"], case["genre"], case["seed"], bpm=case["bpm"], bars=case["bars"])
    x = resample(x16, SR, case["sr"]).astype(np.float64)                              # (N,)
    rng = np.random.default_rng(case["seed"])
    if case["rt60"]:
        x = reverb_tail(x, case["sr"], case["rt60"], case["wet_db"], rng)
    x = np.concatenate([np.zeros(int(round(case["lead_s"] * case["sr"]))), x])
    x *= 0.9 / np.abs(x).max()
    audio = x[:, None] if case["channels"] == 1 else np.stack([x, 0.6 * x], axis=1)  # (N, C)
    return audio.astype(np.float32), case["sr"]


def write_case(folder: Path, case: dict) -> Path:
    audio, sr = render_case(case)
    path = folder / case["file"]
    sf.write(path, audio, sr, subtype="PCM_16" if case["fmt"] == "flac" else "PCM_24")
    if case["acid"]:
        append_riff_chunk(path, acid_chunk(case["bpm"], 4 * case["bars"]))
    return path


# ---------------------------------------------------------------------------------------------
# Scoring.
# ---------------------------------------------------------------------------------------------
def score(cases: list[dict], report: dict[str, dict]) -> list[dict]:
    """Each case with what preprocess.py made of it: bars_kept, bpm, rule, right_bars, right_bpm."""
    out = []
    for c in cases:
        r = report.get(c["file"], {})
        bars, bpm = int(r.get("bars_kept") or 0), float(r.get("bpm") or 0.0)
        out.append(dict(c, got_bars=bars, got_bpm=bpm, rule=r.get("rule") or "skipped",
                        right_bars=bars == c["bars"], right_bpm=abs(bpm / c["bpm"] - 1) <= BPM_TOLERANCE))
    return out


def _line(label: str, rows: list[dict]) -> str:
    n = len(rows)
    bars, bpm = sum(r["right_bars"] for r in rows), sum(r["right_bpm"] for r in rows)
    return f"  {label:<24} {n:4d}   bars {100 * bars / n:5.1f} %   BPM {100 * bpm / n:5.1f} %"


def summary(scored: list[dict], seconds: float, workers: int) -> list[str]:
    n = len(scored)
    bars, bpm = sum(r["right_bars"] for r in scored), sum(r["right_bpm"] for r in scored)
    one_bar = [r for r in scored if r["bars"] == 1]
    lines = [f"bench_preprocess: {n} loops, {workers} worker(s): {seconds:.1f} s, {n / seconds:.2f} loops/s",
             f"right bar count:     {bars}/{n} = {100 * bars / n:.1f} %",
             f"BPM within 2 %:      {bpm}/{n} = {100 * bpm / n:.1f} %",
             f"one-bar loops kept:  {sum(r['got_bars'] > 0 for r in one_bar)}/{len(one_bar)} "
             f"({min(r['bpm'] for r in one_bar)}-{max(r['bpm'] for r in one_bar)} BPM), "
             f"{sum(r['right_bars'] for r in one_bar)} as exactly one bar"]
    groups = {
        "group": lambda r: r["group"], "kind": lambda r: r["kind"], "bars": lambda r: f"{r['bars']} bar(s)",
        "name": lambda r: f"name {r['name']}" + (" + acid" if r["acid"] else ""), "rule": lambda r: r["rule"],
        "sample rate": lambda r: f"{r['sr']} Hz", "extras": lambda r: ("silence " if r["lead_s"] else "")
        + ("tail" if r["rt60"] else "") or "plain"}
    for title, key in groups.items():
        lines.append(f"by {title}:")
        for value in sorted({key(r) for r in scored}):
            lines.append(_line(value, [r for r in scored if key(r) == value]))
    misses = [r for r in scored if not (r["right_bars"] and r["right_bpm"])]
    lines.append(f"misses ({len(misses)}):")
    lines += [f"  {r['file']}: {r['bars']} bar(s) at {r['bpm']} -> {r['got_bars']} at {r['got_bpm']:.1f} "
              f"({r['rule']})" for r in misses]
    return lines


def run(n: int, seed: int, workers: int, out: Path) -> tuple[list[dict], float]:
    """Render the set into out/loops, preprocess it into out/data, and score it -> (scored, seconds)."""
    loops = out / "loops"
    loops.mkdir(parents=True, exist_ok=True)
    cases = plan_cases(n, seed)
    for case in cases:
        write_case(loops, case)
    t0 = time.perf_counter()
    preprocess_folder(loops, out / "data", workers=workers, force=True, show_progress=False)
    seconds = time.perf_counter() - t0
    report = {r["file"]: r for r in read_csv(out / "data" / "report.csv")}
    return score(cases, report), seconds


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=DEFAULT_N, help=f"loops in the set (at least {2 * len(SWEEP_BPMS)})")
    p.add_argument("--seed", type=int, default=0, help="seed of the rendered test loops (default 0; the tuning used 101-606)")
    p.add_argument("--workers", type=int, default=2, help="preprocess.py processes (default 2)")
    p.add_argument("--out", help="keep the rendered loops and the data set here (default: a temporary folder)")
    args = p.parse_args(argv)
    if args.n < 2 * len(SWEEP_BPMS) + sum(t[3] for t in TRAPS):
        p.error(f"--n must be at least {2 * len(SWEEP_BPMS) + sum(t[3] for t in TRAPS)} (the sweep and the traps)")
    with tempfile.TemporaryDirectory() as tmp:
        scored, seconds = run(args.n, args.seed, args.workers, Path(args.out or tmp))
    print("\n".join(summary(scored, seconds, args.workers)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
