"""The demo loops' music, part 2: what each synth style plays, as MIDI note events.

A synth loop is harmony (a random key, major or natural minor, and a chord progression) played in one
of six styles, each with its own rhythm, register, note lengths and General MIDI instrument family
(docs/design.md §2). Note events and their humanisation are shared with the drums (demo/drums.py).

    synth_notes(style, rng, bars)  ->  (notes, GM program)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from demo.drums import Note, pick, swing_beat

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
    order = pick(rng, ["up", "down", "updown", "pattern"])
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
    rhythm = pick(rng, BASS_RHYTHMS)
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
    rhythm = pick(rng, PLUCK_RHYTHMS)
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
        dur = min(float(pick(rng, {0.5: 4, 1.0: 3, 0.75: 2, 1.5: 1, 0.25: 1})), 4.0 - beat)
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
    rhythm = pick(rng, STAB_RHYTHMS)
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


def synth_notes(style: str, rng: np.random.Generator, bars: int) -> tuple[list[Note], int]:
    """Key, mode, progression and instrument per loop, then `bars` humanised bars of the style."""
    s = SYNTH_TEMPLATES[style]
    root = int(rng.integers(12))
    scale = MAJOR if rng.random() < 0.5 else MINOR
    progression = pick(rng, PROGRESSIONS[scale])
    n_chords = int(pick(rng, s.chords_per_bar))
    seventh = rng.random() < 0.3
    chords = [_chord(root, scale, d, seventh) for d in progression[:n_chords]]
    penta = (0, 2, 4, 7, 9) if scale is MAJOR else (0, 3, 5, 7, 10)
    melodic = penta if style == "pluck" else scale
    scale_keys = sorted(root + 12 * o + p for o in range(11) for p in melodic if root + 12 * o + p < 128)
    program = int(pick(rng, s.programs))
    swing = rng.uniform(0.0, 0.2) if rng.random() < 0.3 else 0.0
    bar_notes = s.make(rng, chords, scale_keys, s.low, s.high)
    notes = []
    for bar in range(bars):
        for nt in bar_notes:
            beat = swing_beat(nt.beat, swing)
            shift = s.timing_ms * rng.standard_normal()
            if beat == 0.0:
                shift = 0.25 * abs(shift)                                             # see _drum_note
            vel = float(np.clip(nt.vel * (1 + s.vel_jitter * rng.standard_normal()), 0.05, 1.0))
            notes.append(Note(4.0 * bar + beat, nt.key, vel, nt.dur, shift))
    return notes, program


SYNTH_STYLES: tuple[str, ...] = tuple(SYNTH_TEMPLATES)
