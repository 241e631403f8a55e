"""The demo loops' music, part 1: note events, their humanisation, and what each drum genre plays.

The embedded demo set (demo/loops.py) stands in for the paper's genre-labelled loops (Section 3) with ten drum
genres and six synth styles, each a template whose randomness lives INSIDE it (pattern variant, kit, velocity,
micro-timing, ghost notes, fills), so the genres stay distinguishable from the audio (docs/design.md §2).

    drum_notes(genre, rng, bars)   ->  (notes, GM kit program, tuning in semitones)   this file
    synth_notes(style, rng, bars)  ->  (notes, GM program)                            demo/synths.py

A `Note` is one MIDI event in beats from the loop's start (4 beats per bar); nothing here makes sound.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# ---------------------------------------------------------------------------------------------
# General MIDI numbers.
# ---------------------------------------------------------------------------------------------
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
# Note events.
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Note:
    beat: float          # onset in beats from the start of the loop (after swing)
    key: int             # MIDI key
    vel: float           # 0..1
    dur: float = 0.0     # beats; 0 = one-shot (drums: played to the end of the sample, no note-off)
    shift_ms: float = 0.0   # micro-timing, in milliseconds (tempo-independent, like a drummer's)


# ---------------------------------------------------------------------------------------------
# Shared humanisation helpers.
# ---------------------------------------------------------------------------------------------
def swing_beat(beat: float, amount: float) -> float:
    """16th-note swing: the off-16th of every 8th moves later by `amount` x a 16th (MPC-style).

    A piecewise-linear time warp inside each 8th note, so notes on any grid (32nds, triplets) swing
    consistently and the 8th-note positions never move.
    """
    eighth = np.floor(beat * 2) / 2
    u = (beat - eighth) * 2                                                           # 0..1 within the 8th
    mid = 0.5 + amount / 2
    warped = u * 2 * mid if u < 0.5 else mid + (u - 0.5) * 2 * (1 - mid)
    return eighth + warped / 2


def pick(rng: np.random.Generator, options):
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
        cells[beat_half] = pick(rng, ["xoxo", "oooo", "xxxx", "x.xx", "ooxx"])
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
        n_hits = pick(rng, [4, 3, 2])
        keys = sorted(g.fill_keys, key=lambda k: -k) if len(g.fill_keys) > 2 else list(g.fill_keys)
        start = int(rng.integers(0, max(1, len(keys) - 1)))
        for j in range(n_hits):
            key = keys[min(len(keys) - 1, start + (j * len(keys)) // (n_hits + 1))]
            notes.append(_drum_note(g, rng, choice, bar, 3.0 + j * (1.0 / n_hits), key, rng.uniform(0.6, 0.95)))
    if bar == 0 and choice["crash"]:
        notes.append(Note(0.0, CRASH, 0.8))
    return notes


def _drum_note(g, rng, choice, bar, beat, key, vel) -> Note:
    beat = swing_beat(beat, choice["swing"])
    vel = vel * (1 + g.vel_jitter * rng.standard_normal())
    shift = g.timing_ms * rng.standard_normal()
    if beat == 0.0:
        shift = 0.25 * abs(shift)   # the downbeat opens the loop: never early, at most a hair late
    return Note(4.0 * bar + beat, key, float(np.clip(vel, 0.05, 1.0)), 0.0, shift)


def drum_notes(genre: str, rng: np.random.Generator, bars: int) -> tuple[list[Note], int, float]:
    """Per-loop choices (kit, parts, variants, swing) then `bars` humanised bars."""
    g = DRUM_TEMPLATES[genre]
    parts = []
    for part in g.parts:
        plays = part.role in ("kick",) or rng.random() < part.prob
        key = pick(rng, part.keys) if plays else None
        pattern = pick(rng, part.patterns)
        gain = rng.uniform(0.9 if part.role == "kick" else 0.75, 1.0)                 # a per-loop mix level
        parts.append((key, pattern, gain))
    choice = dict(parts=parts, swing=rng.uniform(*g.swing), crash=rng.random() < g.crash,
                  ghost_key=pick(rng, (SNARE, SNARE2)))
    kit = pick(rng, g.kits)
    tuning = rng.uniform(-1.5, 1.5)                                                   # semitones: drum tuning
    fill = rng.random() < g.fill
    notes = []
    for bar in range(bars):
        notes += _drum_bar(g, rng, choice, bar, fill=fill and bar == bars - 1)
    return notes, kit, tuning


DRUM_GENRES: tuple[str, ...] = tuple(DRUM_TEMPLATES)
