"""Embedded demo loops: a seeded renderer of genre-labelled one-bar loops (stand-in for the paper's data).

The paper (Section 3) trains on 2 s, 120 BPM, one-bar drum and synth loops from Looperman, labelled by
genre (66 drum genres, 58 synth genres; docs/design.md §1-2). Those loops cannot be downloaded here, so pjloop
ships a deterministic renderer that writes a data set in exactly the layout of `dataset.py` (as
`preprocess.py` does for real loops):

    render_loop("drum" | "synth", genre, seed, bpm=120, bars=1)  ->  float32 (N,) at 16 kHz,
                                                                    N = round(bars * 4 * 60 / bpm * SR)
    build_demo_set(loops, n, out_dir)  ->  out_dir/{wav,mel}/<id>, manifest.csv, stats.npz, demo.json

How a loop is made:
  1. A genre (drums) or style (synths) template gives the MIDI notes of one bar: characteristic kick/snare
     placement, hat density, swing, percussion and kit choices for drums; register, rhythm, note length
     and instrument families for synths. Randomness lives INSIDE the template (pattern variant, kit,
     instrument, key, chord progression, velocity, micro-timing, ghost notes, occasional fills), so that the
     genres stay distinguishable from the audio (a genre classifier is trained on them, docs/design.md §2).
  2. The notes are played by real recorded instruments from a General MIDI SoundFont (TimGM6mb, shipped
     inside pretty_midi's wheel; any other .sf2 via $PJLOOP_SOUNDFONT) with TinySoundFont.
  3. Rendered at 48 kHz (TinySoundFont interpolates linearly, which would alias bright cymbals into the
     band if it rendered at 16 kHz directly), then decimated by 3 with a polyphase anti-alias filter.
  4. Loop mode, as a DAW bounces a loop: everything that rings past the end of the bar (cymbal tails,
     synth releases) is wrapped around onto its start, so the loop repeats seamlessly. Peak-normalised
     to 0.9 after the wrap.

Layout: audio is (N,) float32 mono at mel.SR; on disk mels are (F=64, T=200) as dataset.py lays them out.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np

from dataset import atomic_write, finalize_dataset, is_complete, read_csv, save_loop
from mel import SR

# ---------------------------------------------------------------------------------------------
# Constants, named once.
# ---------------------------------------------------------------------------------------------
DEFAULT_N = 2000          # loops per demo set: 200 per drum genre, ~333 per synth style
DEFAULT_WORKERS = 2       # the CPU machines this runs on have 2 cores
DEMO_BPM = 120.0          # every training loop is one bar of 4/4 at 120 BPM (docs/design.md §1)
RENDER_SR = 3 * SR        # 48 kHz synthesis, decimated by 3 (see docstring, step 3)
PEAK = 0.9                # peak after normalisation: head-room for the mel front end and vocoder
TAIL_S = 4.0              # longest tail we wrap (a GM crash cymbal rings ~4 s, pad releases ~2 s)
MAX_VOICES = 128          # TinySoundFont voice pool; pads x 4 notes x layered zones fit easily
DEMO_VERSION = 1          # bump when the renderer changes, so cached demo sets are re-rendered
DEMO_JSON = "demo.json"   # what a cached set was rendered with (loops, n, seed, version, soundfont)
MAX_CHUNK = 16            # loops per pool task at most: amortises the IPC of a ~0.1 s render ...
CHUNKS_PER_WORKER = 4     # ... yet each worker gets >= 4 tasks, so a slow last chunk cannot idle the rest
ID_PREFIX = "demo_"       # file stem of every demo loop; stale ones are removed on a rebuild

DRUM_CHANNEL, SYNTH_CHANNEL = 9, 0    # GM convention (TinySoundFont only needs the drum flag)
DRUM_BANK = 128                       # SF2 bank that holds the percussion kits

# GM percussion kits (bank 128 programs). TimGM6mb has all eight; a missing one falls back to Standard.
STD, ROOM, POWER, ELEC, TR808, JAZZ, BRUSH, ORCH = 0, 8, 16, 24, 25, 32, 40, 48

# GM percussion keys.
KICK2, KICK, RIM, SNARE, CLAP, SNARE2 = 35, 36, 37, 38, 39, 40
LO_FTOM, CHH, HI_FTOM, PHH, LO_TOM, OHH, LOMID_TOM, HIMID_TOM, CRASH, HI_TOM, RIDE = range(41, 52)
RIDE_BELL, TAMB, COWBELL = 53, 54, 56
HI_BONGO, LO_BONGO, MUTE_CONGA, OPEN_CONGA, LO_CONGA, HI_TIMB, LO_TIMB = range(60, 67)
HI_AGOGO, LO_AGOGO, CABASA, MARACAS = 67, 68, 69, 70
CLAVES, HI_WOOD = 75, 76
SHAKER = 82


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
    try:
        import pretty_midi
    except ImportError as e:  # pragma: no cover - pretty_midi is a requirement
        raise RuntimeError("demoloops needs pretty_midi (it ships the TimGM6mb SoundFont): "
                           "pip install pretty_midi, or set PJLOOP_SOUNDFONT=/path/to.sf2") from e
    path = Path(pretty_midi.__file__).parent / "TimGM6mb.sf2"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the pretty_midi install; "
                                "set PJLOOP_SOUNDFONT=/path/to.sf2")
    return path


@lru_cache(maxsize=4)
def _load_soundfont(path: str):
    """The parsed SoundFont, loaded once per process (each loop renders on a fresh clone of it)."""
    try:
        import tinysoundfont._tinysoundfont as tsf
    except ImportError as e:
        raise RuntimeError("demoloops needs tinysoundfont: pip install --no-deps tinysoundfont==0.3.7 "
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
# Notes and the loop-mode renderer.
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Note:
    beat: float          # onset in beats from the start of the loop (after swing)
    key: int             # MIDI key
    vel: float           # 0..1
    dur: float = 0.0     # beats; 0 = one-shot (drums: played to the end of the sample, no note-off)
    shift_ms: float = 0.0   # micro-timing, in milliseconds (tempo-independent, like a drummer's)


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

    from scipy.signal import resample_poly
    # The linear rendering starts in silence and ends in silence, so the polyphase filter's zero
    # padding at its edges is exact; the wrap comes after the decimation.
    audio = resample_poly(buf.astype(np.float64), 1, 3)                               # (passes * n_out,)
    loop = wrap_tail(audio, n_out)                                                    # (n_out,)
    peak = float(np.max(np.abs(loop)))
    if not np.isfinite(peak) or peak < 1e-6:
        raise RuntimeError(f"demo loop rendered silent (program {program}, drum={drum}); "
                           f"check the SoundFont {soundfont_path()}")
    return (loop * (PEAK / peak)).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Shared humanisation helpers.
# ---------------------------------------------------------------------------------------------
def _swing(beat: float, amount: float) -> float:
    """16th-note swing: the off-16th of every 8th moves later by `amount` x a 16th (MPC-style).

    A piecewise-linear time warp inside each 8th note, so notes on any grid (32nds, triplets) swing
    consistently and the 8th-note positions never move.
    """
    eighth = np.floor(beat * 2) / 2
    u = (beat - eighth) * 2                                                           # 0..1 within the 8th
    mid = 0.5 + amount / 2
    warped = u * 2 * mid if u < 0.5 else mid + (u - 0.5) * 2 * (1 - mid)
    return eighth + warped / 2


def _pick(rng: np.random.Generator, options):
    """One element of a list/tuple, or a weighted choice from a {value: weight} dict."""
    if isinstance(options, dict):
        values = list(options)
        w = np.asarray([options[v] for v in values], dtype=np.float64)
        return values[int(rng.choice(len(values), p=w / w.sum()))]
    return options[int(rng.integers(len(options)))]


# ---------------------------------------------------------------------------------------------
# Drum genres. A pattern string spans one bar; its length sets the grid (16 = 16ths, 32 = 32nds,
# 12 = 8th-note triplets). Characters are velocities: X accent, x normal, o soft, g ghost, ? a hit
# that is kept with probability 1/2, . rest.
# ---------------------------------------------------------------------------------------------
VELOCITY = {"X": 1.0, "x": 0.82, "o": 0.55, "g": 0.3, "?": 0.7}


@dataclass(frozen=True)
class Part:
    keys: tuple[int, ...]                 # GM keys; one is chosen per loop (e.g. clap or snare)
    patterns: tuple                       # pattern strings, or callables rng -> pattern string
    prob: float = 1.0                     # probability that the part plays in a loop
    role: str = "other"                   # kick / snare / hat / other (fills replace kick and snare)


@dataclass(frozen=True)
class DrumGenre:
    kits: dict                            # {GM kit program: weight}: the genre's typical kits
    parts: tuple[Part, ...]
    swing: tuple[float, float] = (0.0, 0.0)   # range of 16th swing
    timing_ms: float = 3.0                # std of micro-timing (machines ~1 ms, drummers ~6-8 ms)
    vel_jitter: float = 0.08              # relative std of velocity
    ghost: float = 0.0                    # probability of a ghost snare on an empty 16th
    fill: float = 0.1                     # probability of a fill on the last beat
    fill_keys: tuple[int, ...] = (HI_TOM, HIMID_TOM, LOMID_TOM, LO_TOM, HI_FTOM, LO_FTOM)
    crash: float = 0.0                    # probability of a crash on the downbeat


def _trap_hats(rng: np.random.Generator) -> str:
    """Trap hi-hats: steady 16ths (as 32nd pairs) with 32nd rolls on one to three random beats."""
    cells = ["o.x." if rng.random() < 0.5 else "x.o."] * 8                           # 8 x 8th = 16ths
    for beat_half in rng.choice(8, size=int(rng.integers(1, 4)), replace=False):
        cells[beat_half] = _pick(rng, ["xoxo", "oooo", "xxxx", "x.xx", "ooxx"])
    return "".join(cells)                                                             # 32 steps


DRUM_TEMPLATES: dict[str, DrumGenre] = {
    # Four-on-the-floor, clap on 2 and 4, open hat on every off-beat 8th, light swing.
    "house": DrumGenre(
        kits={ELEC: 3, TR808: 3, STD: 1, ROOM: 1},
        parts=(Part((KICK, KICK2), ("X...x...x...x...",), role="kick"),
               Part((CLAP,), ("....x.......x...", "....x.......x..?"), 0.95, "snare"),
               Part((OHH,), ("..x...x...x...x.",), 0.95, "hat"),
               Part((CHH, PHH), ("o...o...o...o...", "o..?o..?o..?o..?"), 0.6, "hat"),
               Part((SHAKER, TAMB, MARACAS), ("gogogogogogogogo", "..o...o...o...o."), 0.5)),
        swing=(0.0, 0.2), timing_ms=3.0, fill=0.08, fill_keys=(CLAP, SNARE2)),
    # Four-on-the-floor, machine-tight 16th hats, off-beat ride, sparse syncopated rim/clap, no swing.
    "techno": DrumGenre(
        kits={ELEC: 3, POWER: 2, TR808: 2, ROOM: 1},
        parts=(Part((KICK, KICK2), ("X...X...X...X...", "X...X...X...X.?."), role="kick"),
               Part((CHH,), ("xoxoxoxoxoxoxoxo", "oxooxoxooxoxooxo", "xxoxxxoxxxoxxxox"), 0.95, "hat"),
               Part((RIDE, OHH, RIDE_BELL), ("..x...x...x...x.",), 0.75, "hat"),
               Part((RIM, CLAVES, COWBELL, HI_WOOD), ("..x..x....x..x..", "...x..x..x....x.", "..x...x..x..x..."), 0.7),
               Part((CLAP, SNARE2), ("....x.......x...",), 0.4, "snare")),
        swing=(0.0, 0.03), timing_ms=0.8, vel_jitter=0.03, fill=0.05, fill_keys=(CLAP, RIM)),
    # Boom bap: syncopated kick, heavy backbeat, strongly swung 8th/16th hats, ghost snares.
    "hiphop": DrumGenre(
        kits={STD: 2, ROOM: 2, JAZZ: 2, BRUSH: 1, TR808: 1},
        parts=(Part((KICK, KICK2), ("X......x..x.....", "X.x.......x.....", "X......x.xx.....", "X..x......x..x.."), role="kick"),
               Part((SNARE, SNARE2), ("....X.......X...",), role="snare"),
               Part((CHH,), ("x.o.x.o.x.o.x.o.", "x.oox.o.x.oox.o.", "xoxoxoxoxoxoxoxo"), 0.95, "hat"),
               Part((OHH,), ("..............x.", "......x........."), 0.25, "hat")),
        swing=(0.3, 0.55), timing_ms=7.0, vel_jitter=0.12, ghost=0.12, fill=0.08),
    # Half-time: sparse syncopated 808 kick, clap/snare only on beat 3, hi-hat rolls in 32nds.
    "trap": DrumGenre(
        kits={TR808: 6, ELEC: 2},
        parts=(Part((KICK2, KICK), ("X.....x...x.....", "X......x..x.....", "X.........x..x..", "X.....x.x......x"), role="kick"),
               Part((CLAP, SNARE2, SNARE), ("........X.......",), role="snare"),
               Part((CHH,), (_trap_hats,), role="hat"),
               Part((OHH,), ("......x.........", "..............x."), 0.3, "hat")),
        timing_ms=1.0, vel_jitter=0.1, fill=0.05, fill_keys=(CLAP, SNARE2)),
    # Straight 8ths on hats or ride, kick 1 and 3, loud backbeat, crash on one, tom fills.
    "rock": DrumGenre(
        kits={ROOM: 3, POWER: 3, STD: 2},
        parts=(Part((KICK, KICK2), ("X.......x.x.....", "X.x.....x.x.....", "X.......x.......", "X......xx......."), role="kick"),
               Part((SNARE,), ("....X.......X...",), role="snare"),
               Part((CHH, RIDE), ("x.x.x.x.x.x.x.x.", "X.x.X.x.X.x.X.x."), role="hat")),
        timing_ms=5.0, fill=0.25, crash=0.5),
    # Syncopated 16th kick, backbeat with many ghost notes, 16th hats with an open hat on the 4-and.
    "funk": DrumGenre(
        kits={STD: 2, ROOM: 2, JAZZ: 1},
        parts=(Part((KICK, KICK2), ("X.x...x...x..x..", "X..x..x...xx....", "X.x..x....x.x...", "X.x....x..x..x.."), role="kick"),
               Part((SNARE,), ("....X..g.g..X..g", "....X.g..g..X.g.", "....X..g.g.gX..."), role="snare"),
               Part((CHH,), ("xoxoxoxoxoxoxo.o", "xoxoxoxoxoxoxoxo"), role="hat"),
               Part((OHH,), ("..............x.", "......x.......x."), 0.65, "hat")),
        swing=(0.05, 0.2), timing_ms=5.0, vel_jitter=0.1, ghost=0.15, fill=0.12),
    # Chopped-break feel (Amen, Think): busy displaced snares, syncopated double kicks, ride 8ths.
    "breakbeat": DrumGenre(
        kits={STD: 2, ROOM: 2, JAZZ: 2},
        parts=(Part((KICK,), ("X.x.......xx....", "X.x.......x..x..", "X.x...x...x....."), role="kick"),
               Part((SNARE,), ("....x..x.x..x..x", "....x..x.o.xx...", "....x..x.x.ox..."), role="snare"),
               Part((RIDE, CHH), ("x.x.x.x.x.x.x.x.", "x.o.x.o.x.o.x.o."), role="hat"),
               Part((CRASH, OHH), ("x...............", "..........x....."), 0.3)),
        swing=(0.05, 0.25), timing_ms=6.0, vel_jitter=0.12, ghost=0.08, fill=0.15),
    # Two-step: kick on 1 and the 3-and, hard snare on 2 and 4, dense straight 16th hats/shaker, ride.
    "dnb": DrumGenre(
        kits={ELEC: 2, POWER: 2, STD: 1, ROOM: 1},
        parts=(Part((KICK, KICK2), ("X.........x.....", "X.........xx....", "X.x.......x....."), role="kick"),
               Part((SNARE, SNARE2), ("....X.......X...", "....X..g....X..g", "....X.g.....X.g."), role="snare"),
               Part((CHH, SHAKER), ("xxxxxxxxxxxxxxxx", "xoxxxoxxxoxxxoxx"), role="hat"),
               Part((RIDE, RIDE_BELL), ("x.x.x.x.x.x.x.x.", "..x...x...x...x."), 0.7, "hat")),
        timing_ms=1.5, vel_jitter=0.07, ghost=0.1, fill=0.12, fill_keys=(SNARE, SNARE2, HI_TOM, LO_TOM)),
    # Dembow: kick four-on-the-floor, snare/rim on the 3-3-2 syncopation of each half bar.
    "reggaeton": DrumGenre(
        kits={TR808: 3, ELEC: 3, STD: 1},
        parts=(Part((KICK, KICK2), ("X...x...X...x...",), role="kick"),
               Part((SNARE2, RIM, CLAP), ("...x..x....x..x.", "...x..x.x..x..x."), role="snare"),
               Part((CHH, SHAKER), ("x.x.x.x.x.x.x.x.", "xox.xox.xox.xox."), 0.6, "hat"),
               Part((HI_TIMB, LO_TIMB), ("...o..o....o..o.", "..............oo"), 0.4)),
        timing_ms=2.0, fill=0.06, fill_keys=(HI_TIMB, LO_TIMB, SNARE2)),
    # Afrobeats / Afrobeat: clave, congas and shakers over a light kick; 12/8 bell, swung 16ths.
    "afrobeat": DrumGenre(
        kits={STD: 2, ROOM: 2, JAZZ: 1, ELEC: 1},
        parts=(Part((KICK,), ("X.....x...x..x..", "X..x..x...x.....", "X......x..x....."), role="kick"),
               Part((RIM, CLAVES, HI_WOOD), ("x..x..x...x.x...", "x..x...x..x.x..."), role="snare"),
               Part((SHAKER, MARACAS, CABASA), ("gogogogogogogogo", "oxoxoxoxoxoxoxox"), 0.9, "hat"),
               Part((OPEN_CONGA, LO_CONGA), ("......x.......x.", "...x..x....x..x."), 0.85),
               Part((MUTE_CONGA, HI_BONGO), ("..o....o..o....o", "o.o.o..o.o.o.oo."), 0.7),
               Part((COWBELL, HI_AGOGO, LO_AGOGO), ("x.x.xx.x.x.x",), 0.6)),   # 12-step: 12/8 bell
        swing=(0.1, 0.3), timing_ms=6.0, vel_jitter=0.12, fill=0.08, fill_keys=(OPEN_CONGA, LO_CONGA, HI_BONGO, LO_BONGO)),
}


def _drum_bar(g: DrumGenre, rng: np.random.Generator, choice: dict, bar: int, fill: bool) -> list[Note]:
    """The notes of one bar (beats offset by 4 * bar) for a genre with per-loop `choice`s fixed."""
    notes: list[Note] = []
    snare_steps = set()
    for part, (key, pattern, gain) in zip(g.parts, choice["parts"]):
        if key is None:
            continue
        pattern = pattern(rng) if callable(pattern) else pattern
        step_beats = 4.0 / len(pattern)
        for i, ch in enumerate(pattern):
            if ch == "." or (ch == "?" and rng.random() < 0.5):
                continue
            beat = i * step_beats
            if fill and part.role in ("kick", "snare") and beat >= 3.0:
                continue                                                              # the fill takes beat 4
            if part.role == "snare" and step_beats == 0.25:
                snare_steps.add(i)
            notes.append(_drum_note(g, rng, choice, bar, beat, key, VELOCITY[ch] * gain))
    if g.ghost > 0:
        ghost_key = choice["ghost_key"]
        for i in range(16):
            if i % 4 != 0 and i not in snare_steps and rng.random() < g.ghost and not (fill and i >= 12):
                notes.append(_drum_note(g, rng, choice, bar, i / 4, ghost_key, rng.uniform(0.15, 0.3)))
    if fill:
        # A short fill on the last beat: 16ths or 8th-note triplets walking down the fill instruments.
        n_hits = _pick(rng, [4, 3, 2])
        keys = sorted(g.fill_keys, key=lambda k: -k) if len(g.fill_keys) > 2 else list(g.fill_keys)
        start = int(rng.integers(0, max(1, len(keys) - 1)))
        for j in range(n_hits):
            key = keys[min(len(keys) - 1, start + (j * len(keys)) // (n_hits + 1))]
            notes.append(_drum_note(g, rng, choice, bar, 3.0 + j * (1.0 / n_hits), key, rng.uniform(0.6, 0.95)))
    if bar == 0 and choice["crash"]:
        notes.append(Note(0.0, CRASH, 0.8))
    return notes


def _drum_note(g, rng, choice, bar, beat, key, vel) -> Note:
    beat = _swing(beat, choice["swing"])
    vel = vel * (1 + g.vel_jitter * rng.standard_normal())
    shift = g.timing_ms * rng.standard_normal()
    if beat == 0.0:
        shift = 0.25 * abs(shift)   # the downbeat opens the loop: never early, at most a hair late
    return Note(4.0 * bar + beat, key, float(np.clip(vel, 0.05, 1.0)), 0.0, shift)


def _drum_loop(genre: str, rng: np.random.Generator, bars: int):
    """Per-loop choices (kit, parts, variants, swing) then `bars` humanised bars."""
    g = DRUM_TEMPLATES[genre]
    parts = []
    for part in g.parts:
        plays = part.role in ("kick",) or rng.random() < part.prob
        key = _pick(rng, part.keys) if plays else None
        pattern = _pick(rng, part.patterns)
        gain = rng.uniform(0.9 if part.role == "kick" else 0.75, 1.0)                 # a per-loop mix level
        parts.append((key, pattern, gain))
    choice = dict(parts=parts, swing=rng.uniform(*g.swing), crash=rng.random() < g.crash,
                  ghost_key=_pick(rng, (SNARE, SNARE2)))
    kit = _pick(rng, g.kits)
    tuning = rng.uniform(-1.5, 1.5)                                                   # semitones: drum tuning
    fill = rng.random() < g.fill
    notes = []
    for bar in range(bars):
        notes += _drum_bar(g, rng, choice, bar, fill=fill and bar == bars - 1)
    return notes, kit, tuning


# ---------------------------------------------------------------------------------------------
# Synth styles: harmony (random key, mode and progression) + a style-specific rhythm, register and
# instrument family.
# ---------------------------------------------------------------------------------------------
MAJOR = (0, 2, 4, 5, 7, 9, 11)
MINOR = (0, 2, 3, 5, 7, 8, 10)          # natural minor
PROGRESSIONS = {                         # scale degrees (0 = tonic), the loop uses the first 1, 2 or 4
    MAJOR: ((0, 4, 5, 3), (0, 5, 3, 4), (5, 3, 0, 4), (0, 3, 4, 3), (1, 4, 0, 5), (3, 4, 0, 0)),
    MINOR: ((0, 5, 2, 6), (0, 3, 4, 0), (0, 6, 5, 6), (0, 3, 6, 2), (5, 6, 0, 0), (0, 4, 5, 3)),
}


@dataclass(frozen=True)
class SynthStyle:
    programs: tuple[int, ...]            # GM programs (bank 0) typical of the style
    chords_per_bar: tuple[int, ...]      # how fast the harmony moves
    low: int                             # register (MIDI keys) the notes are kept in
    high: int
    make: Callable                       # (rng, chords, scale_keys, low, high) -> list[Note] for one bar
    timing_ms: float = 4.0
    vel_jitter: float = 0.08


def _chord(key_root: int, scale, degree: int, seventh: bool) -> list[int]:
    """Diatonic triad (or 7th chord) on `degree`, as pitch classes above key_root (may exceed 12)."""
    steps = (0, 2, 4, 6) if seventh else (0, 2, 4)
    return [key_root + scale[(degree + s) % 7] + 12 * ((degree + s) // 7) for s in steps]


def _in_range(pitch: int, low: int, high: int) -> int:
    """Move a pitch by octaves into [low, high]."""
    while pitch < low:
        pitch += 12
    while pitch > high:
        pitch -= 12
    return pitch


def _voicing(chord: list[int], low: int, high: int, n: int) -> list[int]:
    """n notes of the chord stacked upwards from its root placed near the bottom of the register."""
    root = _in_range(chord[0], low, low + 11)
    out, i = [], 0
    while len(out) < n:
        pitch = root + (chord[i % len(chord)] - chord[0]) + 12 * (i // len(chord))
        out.append(pitch if pitch <= high else pitch - 12)
        i += 1
    return sorted(set(out))


def _chord_at(chords, beat: float):
    return chords[min(len(chords) - 1, int(beat // (4 / len(chords))))]


def _arpeggio(rng, chords, scale_keys, low, high) -> list[Note]:
    """Constant 16ths (sometimes 8th triplets) running through chord tones over two octaves."""
    step = 0.25 if rng.random() < 0.8 else 1 / 3
    order = _pick(rng, ["up", "down", "updown", "pattern"])
    gate = rng.uniform(0.4, 0.9)
    octaves = int(rng.integers(1, 3))
    notes = []
    for i in range(int(round(4 / step))):
        beat = i * step
        chord = _chord_at(chords, beat)
        tones = [_in_range(chord[0], low, low + 11) + (p - chord[0]) + 12 * o
                 for o in range(octaves) for p in chord]
        n = len(tones)
        if order == "up":
            idx = i % n
        elif order == "down":
            idx = n - 1 - i % n
        elif order == "updown":
            cyc = list(range(n)) + list(range(n - 2, 0, -1))
            idx = cyc[i % len(cyc)]
        else:
            idx = (0, 2, 1, 3, 2, 1)[i % 6] % n
        accent = 1.0 if abs(beat - round(beat)) < 1e-6 else 0.75
        notes.append(Note(beat, tones[idx], 0.85 * accent, step * gate))
    return notes


def _pad_chords(rng, chords, scale_keys, low, high) -> list[Note]:
    """Held 4-5 note chords, each ringing until the next one (slight overlap = legato), soft."""
    n_voices = int(rng.integers(4, 6))
    length = 4 / len(chords)
    vel = rng.uniform(0.5, 0.75)
    notes = []
    for c, chord in enumerate(chords):
        for j, pitch in enumerate(_voicing(chord, low, high, n_voices)):
            strum = j * rng.uniform(0.0, 0.02)                                         # beats
            notes.append(Note(c * length + strum, pitch, vel, length * 0.98))
    return notes


BASS_RHYTHMS = ("x.x.x.x.x.x.x.x.", "x..x..x.x..x..x.", "..x...x...x...x.", "x.xxx.x.x.xxx.x.",
                "x......x..x.....", "x...x...x...x...", "x..x..x...x..x..")


def _bassline(rng, chords, scale_keys, low, high) -> list[Note]:
    """Mono bass: chord roots (and octave / fifth jumps) on a syncopated 8th/16th rhythm."""
    rhythm = _pick(rng, BASS_RHYTHMS)
    gate = rng.uniform(0.5, 0.95)
    onsets = [i for i, ch in enumerate(rhythm) if ch == "x"]
    notes = []
    for k, i in enumerate(onsets):
        beat = i / 4
        root = _in_range(_chord_at(chords, beat)[0], low, low + 11)
        r = rng.random()
        pitch = root + 12 if r < 0.2 else root + 7 if r < 0.3 else root
        nxt = onsets[k + 1] / 4 if k + 1 < len(onsets) else 4.0
        notes.append(Note(beat, pitch, 0.9 if i % 4 == 0 else 0.75, (nxt - beat) * gate))
    return notes


PLUCK_RHYTHMS = ("x..x..x...x.x...", "x.x..x.x..x.x...", "x..x..x.x..x.x..", "..x.x..x..x.x..x",
                 "x...x.x..x..x.x.", "x.x.x..x.x..x...")


def _pluck(rng, chords, scale_keys, low, high) -> list[Note]:
    """Syncopated plucked melody: a random walk on the pentatonic scale, short notes, some double stops."""
    rhythm = _pick(rng, PLUCK_RHYTHMS)
    penta = [p for p in scale_keys if low <= p <= high]
    idx = int(rng.integers(len(penta) // 3, 2 * len(penta) // 3))
    notes = []
    for i, ch in enumerate(rhythm):
        if ch != "x":
            continue
        idx = int(np.clip(idx + rng.choice([-2, -1, 1, 2, 0]), 0, len(penta) - 1))
        dur = rng.uniform(0.2, 0.5)
        notes.append(Note(i / 4, penta[idx], 0.85 if i % 4 == 0 else 0.7, dur))
        if rng.random() < 0.25 and idx + 2 < len(penta):
            notes.append(Note(i / 4, penta[idx + 2], 0.6, dur))                     # double stop
    return notes


def _lead_riff(rng, chords, scale_keys, low, high) -> list[Note]:
    """Monophonic legato riff: mixed note lengths (8ths to dotted quarters) moving step-wise on the scale."""
    scale = [p for p in scale_keys if low <= p <= high]
    idx = int(rng.integers(len(scale) // 4, 3 * len(scale) // 4))
    beat, notes = 0.0, []
    while beat < 4.0 - 1e-6:
        dur = min(float(_pick(rng, {0.5: 4, 1.0: 3, 0.75: 2, 1.5: 1, 0.25: 1})), 4.0 - beat)
        if rng.random() < 0.12 and beat > 0:
            beat += dur                                                               # a rest
            continue
        idx = int(np.clip(idx + rng.choice([-2, -1, -1, 1, 1, 2, 3, -3]), 0, len(scale) - 1))
        notes.append(Note(beat, scale[idx], 0.8 if beat % 1 == 0 else 0.7, dur * 0.95))
        beat += dur
    return notes


STAB_RHYTHMS = ("..x...x...x...x.", "x..x..x...x..x..", "x.....x.x.....x.", "...x..x...x..x..",
                "..x..x....x..x..", "x..x...x..x.....")


def _chord_stabs(rng, chords, scale_keys, low, high) -> list[Note]:
    """Short staccato chords on syncopated off-beats (house/funk stabs)."""
    rhythm = _pick(rng, STAB_RHYTHMS)
    dur = rng.uniform(0.1, 0.3)
    n_voices = int(rng.integers(3, 5))
    notes = []
    for i, ch in enumerate(rhythm):
        if ch != "x":
            continue
        for pitch in _voicing(_chord_at(chords, i / 4), low, high, n_voices):
            notes.append(Note(i / 4, pitch, rng.uniform(0.75, 1.0), dur))
    return notes


# GM programs (0-based): 0-7 pianos, 8-15 chromatic percussion, 16-23 organs, 24-31 guitars, 32-39 basses,
# 40-47 strings, 48-55 ensembles, 56-63 brass, 64-79 reeds/pipes, 80-87 synth leads, 88-95 synth pads,
# 104-111 ethnic, 112-119 percussive.
SYNTH_TEMPLATES: dict[str, SynthStyle] = {
    "arpeggio": SynthStyle((80, 81, 84, 4, 5, 8, 10, 11, 46, 98), (1, 2), 57, 88, _arpeggio, timing_ms=1.5),
    "pad_chords": SynthStyle((88, 89, 90, 91, 92, 94, 95, 48, 49, 50, 52), (1, 2), 48, 76, _pad_chords),
    "bassline": SynthStyle((32, 33, 34, 35, 36, 37, 38, 39, 87), (1, 2, 4), 28, 52, _bassline, timing_ms=3.0),
    "pluck": SynthStyle((24, 25, 45, 46, 105, 107, 108, 12, 13, 114, 15), (1, 2), 60, 86, _pluck, timing_ms=5.0),
    "lead_riff": SynthStyle((80, 81, 82, 84, 85, 86, 29, 30, 56, 65, 66, 73, 71), (1, 2), 62, 88, _lead_riff,
                            timing_ms=6.0),
    "chord_stabs": SynthStyle((0, 2, 4, 16, 17, 61, 62, 63, 90, 50, 55), (2, 4), 52, 79, _chord_stabs,
                              timing_ms=3.0),
}


def _synth_loop(style: str, rng: np.random.Generator, bars: int):
    """Key, mode, progression and instrument per loop, then `bars` humanised bars of the style."""
    s = SYNTH_TEMPLATES[style]
    root = int(rng.integers(12))
    scale = MAJOR if rng.random() < 0.5 else MINOR
    progression = _pick(rng, PROGRESSIONS[scale])
    n_chords = int(_pick(rng, s.chords_per_bar))
    seventh = rng.random() < 0.3
    chords = [_chord(root, scale, d, seventh) for d in progression[:n_chords]]
    penta = (0, 2, 4, 7, 9) if scale is MAJOR else (0, 3, 5, 7, 10)
    melodic = penta if style == "pluck" else scale
    scale_keys = sorted(root + 12 * o + p for o in range(11) for p in melodic if root + 12 * o + p < 128)
    program = int(_pick(rng, s.programs))
    swing = rng.uniform(0.0, 0.2) if rng.random() < 0.3 else 0.0
    bar_notes = s.make(rng, chords, scale_keys, s.low, s.high)
    notes = []
    for bar in range(bars):
        for nt in bar_notes:
            beat = _swing(nt.beat, swing)
            shift = s.timing_ms * rng.standard_normal()
            if beat == 0.0:
                shift = 0.25 * abs(shift)                                             # see _drum_note
            vel = float(np.clip(nt.vel * (1 + s.vel_jitter * rng.standard_normal()), 0.05, 1.0))
            notes.append(Note(4.0 * bar + beat, nt.key, vel, nt.dur, shift))
    return notes, program


# ---------------------------------------------------------------------------------------------
# Public API.
# ---------------------------------------------------------------------------------------------
DRUM_GENRES: tuple[str, ...] = tuple(DRUM_TEMPLATES)
SYNTH_STYLES: tuple[str, ...] = tuple(SYNTH_TEMPLATES)
GENRES = {"drum": DRUM_GENRES, "synth": SYNTH_STYLES}


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
        notes, kit, tuning = _drum_loop(genre, rng, bars)
        return _render(notes, n_out, 4.0 * bars, drum=True, program=kit, tuning=tuning)
    notes, program = _synth_loop(genre, rng, bars)
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
    import torch
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
            raise FileExistsError(f"{out_dir} holds a data set that demoloops.py did not write "
                                  f"(no {DEMO_JSON}); choose another output directory")

    # Invalidate first, then record what is being rendered: a crash mid-way leaves an incomplete set
    # (no manifest) that the next call re-renders, never a stale one that looks complete.
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in ("manifest.csv", "stats.npz"):
        (out_dir / name).unlink(missing_ok=True)
    atomic_write(out_dir / DEMO_JSON, lambda tmp: Path(tmp).write_text(json.dumps(info, indent=1)))

    rows = _plan(loops, n, seed)
    tasks = [(loops, str(out_dir), row) for row in rows]
    from tqdm import tqdm
    if workers == 1:
        with tqdm(total=n, desc=f"demo {loops} loops", unit="loop", disable=not progress, file=sys.stderr) as bar:
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
                tqdm(total=n, desc=f"demo {loops} loops", unit="loop", disable=not progress, file=sys.stderr) as bar:
            for _ in pool.imap_unordered(_render_and_save, tasks, chunksize=chunk):
                bar.update()

    keep = {r["id"] for r in rows}
    for sub, ext in (("wav", ".wav"), ("mel", ".npy")):                               # loops of an older set
        for f in (out_dir / sub).glob(f"{ID_PREFIX}*{ext}"):
            if f.stem not in keep:
                f.unlink()
    finalize_dataset(out_dir, rows, skipped=[])
    return out_dir


REPO = Path(__file__).resolve().parent


def default_data_dir(loops: str) -> Path:
    """<repo>/data/demo_<loops>, or $PJLOOP_DATA_ROOT/demo_<loops>."""
    _check_loops(loops)
    root = os.environ.get("PJLOOP_DATA_ROOT")
    return (Path(root).expanduser() if root else REPO / "data") / f"demo_{loops}"


def ensure_demo_set(loops: str, n: int = DEFAULT_N, workers: int = DEFAULT_WORKERS) -> Path:
    """The default demo set of `loops` (rendered on first use, then cached): its directory."""
    out_dir = default_data_dir(loops)
    if not (is_complete(out_dir) and _read_info(out_dir) == _demo_info(loops, n, 0)):
        print(f"demoloops: rendering {n} {loops} demo loops into {out_dir} (once; cached afterwards)",
              file=sys.stderr)
    return build_demo_set(loops, n, out_dir, seed=0, workers=workers)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Render the embedded genre-labelled demo loops as a pjloop data set.")
    ap.add_argument("--loops", choices=sorted(GENRES), required=True, help="drum or synth loops")
    ap.add_argument("-n", type=int, default=DEFAULT_N, help=f"number of loops (default {DEFAULT_N})")
    ap.add_argument("--out", type=Path, default=None, help="output directory (default data/demo_<loops>)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=DEFAULT_WORKERS, help="render processes")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)
    out = args.out if args.out is not None else default_data_dir(args.loops)
    t0 = time.time()
    cached = is_complete(out) and _read_info(out) == _demo_info(args.loops, args.n, args.seed)
    try:
        build_demo_set(args.loops, args.n, out, seed=args.seed, workers=args.workers, progress=not args.quiet)
    except (ValueError, FileExistsError, FileNotFoundError, RuntimeError) as e:
        print(f"demoloops.py: error: {e}", file=sys.stderr)
        return 2
    rows = read_csv(out / "manifest.csv")
    counts = {g: sum(r["genre"] == g for r in rows) for g in GENRES[args.loops]}
    print(f"{out}: kept {len(rows)} {args.loops} loops in {time.time() - t0:.1f} s{' (cached)' if cached else ''}; genres: "
          + ", ".join(f"{g} {c}" for g, c in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
