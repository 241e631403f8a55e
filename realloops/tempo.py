"""Which bars a loop file holds, from the best evidence it offers (paper Section 4 "Pipeline": one-bar
loops; docs/design.md §1). A loop file holds a whole number of bars from its first sample, so its length is
the strongest cue. `find_bars` tries, in order, and records which rule decided and how sure it is:

    option      --bpm X          name / metadata   a tempo that makes the file a whole number of bars
    length+tempo   bar counts whose grid madmom's beats and downbeats fit best (`Hypothesis.score`)
    downbeats   madmom's downbeat tracker, for recordings that are no whole number of bars

Layout: audio is mono float32 (N,) at its native rate; bars are [(start_s, length_s)] in the file.
The rules in full, and how the weights were tuned: docs/modules.md, "realloops/tempo.py".
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.fft

from plumbing.audio_io import SkipFile
from realloops.beats import DBN_FPS, DBN_MAX_BPM, bars_at_tempo, bars_from_downbeats, beat_activations, find_downbeats
from realloops.tags import LoopTags, read_tags, tempo_from_name
from realloops.tail import MIN_TAIL_S, TailTest, tail_start
from mel import BEATS_PER_BAR

RULE_OPTION, RULE_NAME, RULE_METADATA, RULE_LENGTH, RULE_DOWNBEATS = (
    "option", "name", "metadata", "length+tempo", "downbeats")

TEMPO_RANGE = (60.0, 200.0)   # plausible loop tempi (BPM): slower is a 4-s bar, faster a 1.2-s one
RANGE_SLACK = 0.02            # a length-derived tempo up to 2 % outside the range still counts
LOOP_BAR_COUNTS = (1, 2, 4, 8, 3, 6, 16)   # bar counts a loop file is made with, commonest first
STATED_BAR_COUNTS = (1, 2, 4, 8, 16)       # a stated tempo must give one of these: 3 or 6 bars at a
                                           # tempo from a name is likelier a wrong name than a 3-bar loop
MAX_LOOP_BARS = 16            # longer than 16 bars at the slowest tempo: a recording, not a loop
LENGTH_TOLERANCE = 0.01       # a stated tempo fits when the span is a whole number of bars within 1 %
                              # (names round the tempo: "92bpm" for 92.4 is 0.4 % off)
SILENCE_DB = -60.0            # digital silence: below the file's peak by this much
LOOP_CONTEXT_S = 3.0          # madmom hears a loop looped: up to this much of its end before it, of its start after
LOOP_MAX_S = 20.0             # ... longer files are tracked as they are (enough context of their own)
STATED_TAIL_MIN_S = 0.2       # after a stated tempo's bars, a shorter remainder is a misfit, not a tail
TAIL_EARLY_BEATS = 1.0        # a stated tempo's bars may end up to a beat after the sound starts dying away
                              # (a steady hat in the last beat); later, they run on into the tail: wrong
STATED_TAIL_CONFIDENCE = 0.5  # a stated tempo that needs a tail to fit
PEAK_MIN = 0.1                # beat activation peaks below this are not beats (madmom's outputs are 0..1)
ONSET_RISE = 1.5              # without beats (a pad, a drone), onsets are the evidence: flux peaks this many
ONSET_FLOOR = 0.02            # times their surroundings' median, and above this (per-bin flux: a steady tone
ONSET_CONTEXT_S = 0.5         # stays under 0.005, a chord change of a pad reaches ~0.3), within +-0.5 s
FIT_SIGMA_S = 0.02            # a beat this far from the grid counts exp(-1/2): madmom's 10 ms frames + feel
FIT_MIN = 0.5                 # an n "fits" when its 8th-note grid explains this share of the beat peaks;
                              # a grid laid at random explains ~0.2-0.35
MIN_PEAKS = 2                 # fewer beat peaks than this: madmom hears no beat (the onsets are the evidence)
STRONG_BEAT = 0.5             # madmom is sure of a beat at this activation ...
MIN_STRONG_BEATS = 3          # ... and of the rhythm with this many: then the grid must fit it (FIT_MIN); with
                              # weaker evidence (pads, drones) the length alone decides between the n
ACT_WINDOW = 2                # frames either side searched for an activation at a grid position
ONSET_FPS = 100               # onset envelope frame rate (as madmom's)
ONSET_WINDOW_S = 0.025        # its FFT window: ~1024 samples at 44.1 kHz
TATUM_MIN_S, TATUM_MAX_S = 0.07, 0.5   # the fastest regular pulse (hats, arpeggio) lies in this range
TATUM_MIN_AC = 0.3            # ... and repeats with at least this autocorrelation
MAX_TATUMS_PER_BEAT = 4.5     # 16ths are the finest common subdivision of a beat (trap's 32nd rolls are
                              # ornaments); a reading with finer steady pulses is too slow (half tempo)
TEMPO_PRIOR_BPM, TEMPO_PRIOR_OCTAVES = 110.0, 0.75  # loop tempi cluster around 80-150 BPM
BAR_PRIOR = {1: 0.0, 2: 0.0, 4: 0.0, 8: -1.0, 16: -2.0, 3: -2.0, 6: -2.0}   # 1, 2, 4 bars are the norm
# Weights of the evidence in Hypothesis.score (set on the benchmark's tuning seeds, see the docstring).
W_FIT, W_DOWN, W_MID, W_TATUM, W_TEMPO, W_BARS, W_TAIL = 0.6, 0.75, 1.0, 0.8, 0.6, 0.5, 0.1
CONFIDENCE_TEMPERATURE = 0.1  # softmax temperature turning score margins into a confidence
DOWNBEAT_CONFIDENCE = 0.5     # the tracker's answer on a file that did not fit as a loop: a guess
FALLBACK_CONFIDENCE = 0.5     # a length reading the beats did not confirm counts half


@dataclass(frozen=True)
class BarPlan:
    """Where the bars are and why: bars [(start_s, length_s)], their tempo, the rule that decided, 0..1,
    and the seconds of tail the file has after the last bar."""
    bars: list[tuple[float, float]]
    bpm: float
    rule: str
    confidence: float
    tail: float = 0.0


def bar_seconds(bpm: float) -> float:
    return BEATS_PER_BAR * 60.0 / bpm


def sounding_span(audio: np.ndarray, sr: int) -> tuple[float, float]:
    """(first, end) time [s] of the samples above digital silence (SILENCE_DB below the peak)."""
    loud = np.flatnonzero(np.abs(audio) > np.abs(audio).max() * 10 ** (SILENCE_DB / 20))
    return (loud[0] / sr, (loud[-1] + 1) / sr) if len(loud) else (0.0, len(audio) / sr)


def candidate_spans(audio: np.ndarray, sr: int, tags: LoopTags = LoopTags()) -> list[tuple[float, float]]:
    """(start_s, length_s) a loop may occupy, likeliest first: the tagged loop region (smpl), the whole
    file, the file without its leading digital silence. (Trailing silence needs no span of its own: it is
    a tail, `TailTest`; and a loop may well end in near-silence.)"""
    duration = len(audio) / sr
    first, _ = sounding_span(audio, sr)
    spans = []
    if tags.loop is not None and tags.loop[1] <= len(audio):
        spans.append((tags.loop[0] / sr, (tags.loop[1] - tags.loop[0]) / sr))
    spans += [(0.0, duration), (first, duration - first)]
    unique = []
    for s, length in spans:
        if length > 0 and all(abs(s - a) > 1e-3 or abs(length - b) > 1e-3 for a, b in unique):
            unique.append((s, length))
    return unique


# ---------------------------------------------------------------------------------------------
# Rules 1 and 2: a stated tempo must make the file a whole number of bars.
# ---------------------------------------------------------------------------------------------
def plan_at_stated_tempo(bpm: float, spans: list[tuple[float, float]], tail_test: TailTest, rule: str,
                         beats: int | None = None) -> BarPlan | None:
    """A stated tempo -> its bars, if some span holds a whole number of them (or that plus a tail: then
    find_bars still checks them against the beats). The bar length comes from the span, which is exact,
    rather than from the stated number, which is often rounded ("92bpm" for 92.4). beats: the bar count
    the tags state too (ACID), if any."""
    bar = bar_seconds(bpm)
    counts = (beats // BEATS_PER_BAR,) if beats and beats % BEATS_PER_BAR == 0 else STATED_BAR_COUNTS
    for start, length in spans:
        n = int(round(length / bar))
        error = abs(length - n * bar) / length
        if n in counts and error <= LENGTH_TOLERANCE:
            return BarPlan([(start + i * length / n, length / n) for i in range(n)], BEATS_PER_BAR * 60 * n / length,
                           rule, round(1.0 - 0.5 * error / LENGTH_TOLERANCE, 3))
    for start, length in spans:                     # no exact fit: whole bars and a tail after them?
        end = start + length
        decay = tail_start(tail_test, start, end)    # the tail must begin where the bars end, not before
        for n in sorted((n for n in counts if n * bar <= length * (1 + LENGTH_TOLERANCE)), reverse=True):
            body_end = start + n * bar
            if (end - body_end >= STATED_TAIL_MIN_S and tail_test(start, body_end, end)
                    and decay >= body_end - TAIL_EARLY_BEATS * bar / BEATS_PER_BAR):
                return BarPlan([(start + i * bar, bar) for i in range(n)], bpm, rule, STATED_TAIL_CONFIDENCE,
                               tail=end - body_end)
    return None


# ---------------------------------------------------------------------------------------------
# Rule 3: length and tempo.
# ---------------------------------------------------------------------------------------------
def onset_envelope(audio: np.ndarray, sr: int, looped: bool) -> np.ndarray:
    """Spectral flux at ONSET_FPS: the mean rise of log magnitudes over the bins, frame to frame -> (T,),
    frame i at time i / ONSET_FPS. looped: the signal repeats (frame 0 follows the loop's end).
    The signal is levelled to a peak of 1 first, so that the flux means the same at any level."""
    hop = sr / ONSET_FPS
    n_fft = 1 << int(np.ceil(np.log2(ONSET_WINDOW_S * sr)))
    pad = n_fft // 2 + int(np.ceil(hop))                       # one frame before 0, for the first rise
    idx = np.arange(-pad, len(audio) + pad)
    x = audio.take(idx, mode="wrap") if looped else np.where((idx >= 0) & (idx < len(audio)),
                                                             audio.take(idx, mode="clip"), 0.0)
    x = (x / max(float(np.abs(audio).max()), 1e-9)).astype(np.float32)                # (N + 2 pad,)
    centres = np.round(np.arange(-1, int(len(audio) / hop)) * hop).astype(int) + pad   # frame -1 .. T-1
    frames = x[centres[:, None] + np.arange(-(n_fft // 2), n_fft - n_fft // 2)[None, :]]   # (T + 1, n_fft)
    mag = np.log1p(100.0 * np.abs(scipy.fft.rfft(frames * np.hanning(n_fft).astype(np.float32), axis=1)))
    return np.maximum(np.diff(mag, axis=0), 0).mean(axis=1)                            # (T,)


def local_peaks(x: np.ndarray, floor: float, rise: float = 0.0, context: int = 0) -> np.ndarray:
    """Indices of the local maxima of x that reach `floor` and, with rise > 0, `rise` times the median
    of the `context` frames either side."""
    is_peak = (x >= floor) & (x >= np.roll(x, 1)) & (x > np.roll(x, -1))
    if rise > 0:
        padded = np.pad(x, context, mode="edge")
        windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * context + 1)      # (T, 2c+1)
        is_peak &= x >= rise * np.median(windows, axis=1)
    return np.flatnonzero(is_peak)


def tatum_seconds(flux: np.ndarray, looped: bool) -> float | None:
    """Period of the fastest regular pulse in an onset envelope: its first autocorrelation peak in
    TATUM_MIN_S..TATUM_MAX_S (circular when looped) -> seconds, or None."""
    lo, hi = int(TATUM_MIN_S * ONSET_FPS), int(TATUM_MAX_S * ONSET_FPS)
    a = flux - flux.mean()
    if len(a) <= hi + 2 or not np.any(a):
        return None
    if looped:
        ac = np.array([np.dot(a, np.roll(a, -lag)) for lag in range(hi + 2)]) / len(a)
    else:
        ac = np.array([np.dot(a[:len(a) - lag], a[lag:]) / (len(a) - lag) for lag in range(hi + 2)])
    ac /= ac[0]
    for lag in range(max(lo, 1), hi + 1):
        if ac[lag] >= TATUM_MIN_AC and ac[lag] > ac[lag - 1] and ac[lag] >= ac[lag + 1]:
            return lag / ONSET_FPS
    return None


@dataclass
class Hypothesis:
    """n bars of 4 beats filling [start, start + length); `tail` seconds of decay after them (under
    MIN_TAIL_S: none, the 10 ms search grid)."""
    start: float
    length: float
    n: int
    tail: float
    fit: float = 0.0           # share of the beat peaks on the hypothesis' 8th-note grid (0..1)
    down: float = 0.0          # downbeat activation at bar starts minus at the other beats
    mid: float = 0.0           # downbeat activation at bar starts minus at mid-bar (beat 3): ~0 for a bar
                               # twice too long, half the right n's for one half too short
    tatum: float = 0.0         # <= 0: penalty for steady pulses finer than 16ths (or slower than the beat)

    @property
    def bpm(self) -> float:
        return BEATS_PER_BAR * 60.0 * self.n / self.length

    def score(self) -> float:
        """How well n explains the loop: madmom's beats on the grid and downbeats on the bar lines (not
        half a bar later), no pulse finer than 16ths, a likely tempo and bar count, no tail needed."""
        prior_tempo = -0.5 * (np.log2(self.bpm / TEMPO_PRIOR_BPM) / TEMPO_PRIOR_OCTAVES) ** 2
        return (W_FIT * self.fit + W_DOWN * self.down + W_MID * self.mid + W_TATUM * self.tatum + W_TEMPO * prior_tempo
                + W_BARS * BAR_PRIOR[self.n] - W_TAIL * (self.tail >= MIN_TAIL_S))


class LoopEvidence:
    """madmom's activations and an onset envelope of one file, looped when short, and the scoring of
    hypotheses against them. Times are seconds from the start of the (middle copy of the) file.
    The grid is fitted to madmom's beats; to the onsets where madmom hears no beat (`evidence`: "beats",
    "onsets" or "none"); `strong`: madmom is sure of several beats."""

    def __init__(self, audio: np.ndarray, sr: int):
        self.duration = len(audio) / sr
        self.looped = self.duration <= LOOP_MAX_S
        self.offset = min(LOOP_CONTEXT_S, self.duration) if self.looped else 0.0       # time 0 in the frames
        self.activations = beat_activations(audio, sr, self.offset)                    # (frames, 2)
        self.beat = self.activations.sum(axis=1)                                       # any beat
        self.down = self.activations[:, 1]
        margin = 3 * FIT_SIGMA_S                  # a peak this early still belongs to the first beat
        peaks = local_peaks(self.beat, PEAK_MIN)
        times = peaks / DBN_FPS - self.offset
        inside = (times >= -margin) & (times < self.duration - margin)
        times, heights = times[inside], self.beat[peaks[inside]]
        flux = onset_envelope(audio, sr, self.looped)                                  # (T,)
        self.tatum = tatum_seconds(flux, self.looped)
        self.strong = int(np.sum(heights >= STRONG_BEAT)) >= MIN_STRONG_BEATS
        self.evidence = "beats"
        if len(times) < MIN_PEAKS:
            onsets = local_peaks(flux, ONSET_FLOOR, ONSET_RISE, int(ONSET_CONTEXT_S * ONSET_FPS))
            times, heights = onsets / ONSET_FPS, flux[onsets]
            self.evidence = "onsets" if len(onsets) else "none"
        self.peak_times = times                                                        # (P,) seconds
        self.peak_heights = heights / max(float(heights.max()), 1e-9) if len(heights) else heights

    def _at(self, track: np.ndarray, times: np.ndarray) -> np.ndarray:
        """Max of an activation within ACT_WINDOW frames of each time."""
        idx = np.round((self.offset + times) * DBN_FPS).astype(int)[:, None] + np.arange(-ACT_WINDOW, ACT_WINDOW + 1)
        return track[np.clip(idx, 0, len(track) - 1)].max(axis=1)

    def fit(self, start: float, length: float, n: int) -> float:
        """Height-weighted share of the beat peaks inside the span that sit on its 8th-note grid."""
        half_beat = length / (2 * BEATS_PER_BAR * n)
        inside = (self.peak_times >= start - 3 * FIT_SIGMA_S) & (self.peak_times < start + length - 3 * FIT_SIGMA_S)
        if not inside.any():
            return 0.0
        r = np.mod(self.peak_times[inside] - start, half_beat)
        r = np.minimum(r, half_beat - r)
        h = self.peak_heights[inside]
        return float(np.sum(h * np.exp(-0.5 * (r / FIT_SIGMA_S) ** 2)) / np.sum(h))

    def hypothesis(self, start: float, length: float, n: int, tail: float = 0.0) -> Hypothesis:
        """Score n bars in [start, start + length) against the evidence."""
        beat = length / (BEATS_PER_BAR * n)
        k = np.arange(BEATS_PER_BAR * n)
        down = self._at(self.down, start + k * beat)                                   # (4n,)
        on_bar = k % BEATS_PER_BAR == 0
        tatum = 0.0
        if self.tatum:
            per_beat = beat / self.tatum
            tatum = -max(0.0, np.log2(per_beat / MAX_TATUMS_PER_BEAT)) - max(0.0, np.log2(1.0 / per_beat))
        return Hypothesis(start, length, n, tail, self.fit(start, length, n),
                          float(down[on_bar].mean() - down[~on_bar].mean()),
                          float(down[on_bar].mean() - down[k % BEATS_PER_BAR == BEATS_PER_BAR // 2].mean()), tatum)


def _in_range(bpm: float, tempo_range: tuple[float, float]) -> bool:
    return tempo_range[0] * (1 - RANGE_SLACK) <= bpm <= tempo_range[1] * (1 + RANGE_SLACK)


def length_tempo_hypotheses(ev: LoopEvidence, spans: list[tuple[float, float]], tail_test: TailTest,
                            tempo_range: tuple[float, float] = TEMPO_RANGE) -> list[Hypothesis]:
    """For every span and in-range n: the whole span as n bars, and, where the span ends by dying away
    (`tail_start`), the shorter body ending in that decay whose grid fits the beats best (and, where
    madmom is unsure of the beats, the body that ends exactly where the decay begins)."""
    hypotheses = []
    for start, length in spans:
        decay = tail_start(tail_test, start, start + length) - start
        bodies = np.arange(length, decay - 0.5 / DBN_FPS, -1.0 / DBN_FPS)                 # longest first
        for n in LOOP_BAR_COUNTS:
            if _in_range(BEATS_PER_BAR * 60 * n / length, tempo_range):
                hypotheses.append(ev.hypothesis(start, length, n))
            best = None
            for body in bodies[1:]:
                if _in_range(BEATS_PER_BAR * 60 * n / body, tempo_range):
                    fit = ev.fit(start, body, n)
                    if best is None or fit > best[0]:
                        best = (fit, body)
            if best is not None:
                hypotheses.append(ev.hypothesis(start, best[1], n, tail=length - best[1]))
            if not ev.strong and decay < length and _in_range(BEATS_PER_BAR * 60 * n / decay, tempo_range):
                hypotheses.append(ev.hypothesis(start, decay, n, tail=length - decay))
    return hypotheses


def choose(hypotheses: list[Hypothesis], must_fit: bool = True) -> tuple[Hypothesis, float] | None:
    """The best-scoring hypothesis (among those whose grid fits, FIT_MIN, when must_fit) and its
    confidence: its softmax share among the eligible ones (CONFIDENCE_TEMPERATURE)."""
    eligible = [h for h in hypotheses if h.fit >= FIT_MIN or not must_fit]
    if not eligible:
        return None
    scores = np.array([h.score() for h in eligible])
    weights = np.exp((scores - scores.max()) / CONFIDENCE_TEMPERATURE)
    i = int(np.argmax(scores))
    return eligible[i], float(weights[i] / weights.sum())


def plan_from_length_and_tempo(ev: LoopEvidence, spans: list[tuple[float, float]], tail_test: TailTest,
                               tempo_range: tuple[float, float] = TEMPO_RANGE,
                               must_fit: bool | None = None) -> BarPlan | None:
    """Rule 3: the reading (n bars, and where a tail begins) that scores best, among those whose grid
    fits the beats when madmom is sure of them (must_fit None) or always (True); with must_fit False
    or unsure beats (a pad), the scores alone decide. A file with no onset at all (a held chord, a test
    tone) is n bars only when its length allows no other n; else None: nothing qualifies."""
    hypotheses = length_tempo_hypotheses(ev, spans, tail_test, tempo_range)
    if ev.evidence == "none":              # no onset at all: only a length that allows one reading decides
        readings = [h for h in hypotheses if h.tail < MIN_TAIL_S]
        return _plan(readings[0], FALLBACK_CONFIDENCE) if len({(h.start, h.n) for h in readings}) == 1 else None
    best = choose(hypotheses, ev.strong if must_fit is None else must_fit)
    return None if best is None else _plan(*best)


def _plan(h: Hypothesis, confidence: float) -> BarPlan:
    bar = h.length / h.n
    return BarPlan([(h.start + i * bar, bar) for i in range(h.n)], h.bpm, RULE_LENGTH, round(confidence, 3))


# ---------------------------------------------------------------------------------------------
# The chain.
# ---------------------------------------------------------------------------------------------
def find_bars(audio: np.ndarray, sr: int, source: str = "", path: str | Path | None = None,
              bpm: float | None = None, tempo_range: tuple[float, float] = TEMPO_RANGE,
              max_bpm: float = DBN_MAX_BPM) -> BarPlan:
    """The bars of one mono file (N,) at sr, by the first rule that decides (module docstring).
    source: the name the tempo may be read from; path: the file whose tags may be read.
    Raises SkipFile ("shorter than a bar", "no downbeats")."""
    duration = len(audio) / sr
    if bpm is not None:
        bars = bars_at_tempo(len(audio), sr, bpm)
        if not bars:
            raise SkipFile(f"shorter than a bar: {duration:.2f} s < {bar_seconds(bpm):.2f} s at {bpm:g} BPM")
        return BarPlan(bars, float(bpm), RULE_OPTION, 1.0)
    tags = read_tags(path) if path is not None else LoopTags()
    spans = candidate_spans(audio, sr, tags)
    shortest_bar = bar_seconds(tempo_range[1] * (1 + RANGE_SLACK))
    if max(length for _, length in spans) < shortest_bar:
        raise SkipFile(f"shorter than a bar: {duration:.2f} s < {shortest_bar:.2f} s (one bar at "
                       f"{tempo_range[1]:g} BPM, the fastest plausible tempo)")
    tail_test = TailTest(audio, sr)
    evidence: list[LoopEvidence] = []            # madmom's evidence, computed once, when first needed

    def beats() -> LoopEvidence:
        if not evidence:
            evidence.append(LoopEvidence(audio, sr))
        return evidence[0]

    stated = [(t, RULE_NAME, None) for t in tempo_from_name(source, *tempo_range)]
    if tags.bpm is not None and tempo_range[0] <= tags.bpm <= tempo_range[1]:
        stated.append((tags.bpm, RULE_METADATA, tags.beats))
    for tempo, rule, n_beats in stated:
        plan = plan_at_stated_tempo(tempo, spans, tail_test, rule, n_beats)
        if plan is not None and (plan.tail == 0 or _beats_agree(beats(), plan)):
            return plan
    if duration > MAX_LOOP_BARS * bar_seconds(tempo_range[0] * (1 - RANGE_SLACK)):
        return _downbeat_plan(audio, sr, max_bpm)
    ev = beats()
    plan = plan_from_length_and_tempo(ev, spans, tail_test, tempo_range)
    if plan is not None:
        return plan
    try:
        return _downbeat_plan(audio, sr, max_bpm, None if ev.looped else ev.activations)
    except SkipFile:
        # A loop-sized file whose beats fit no grid and that the tracker cannot follow either (a busy
        # one-bar loop): its length is still the best evidence there is, if it has onsets at all.
        plan = plan_from_length_and_tempo(ev, spans, tail_test, tempo_range, must_fit=False) if ev.looped else None
        if plan is None:
            raise
        return BarPlan(plan.bars, plan.bpm, plan.rule, round(plan.confidence * FALLBACK_CONFIDENCE, 3))


def _beats_agree(ev: LoopEvidence, plan: BarPlan) -> bool:
    """Do the bars of a stated tempo that needed a tail fit madmom's beats (when it is sure of them)?"""
    start, bar = plan.bars[0]
    return not ev.strong or ev.fit(start, bar * len(plan.bars), len(plan.bars)) >= FIT_MIN


def _downbeat_plan(audio: np.ndarray, sr: int, max_bpm: float, activations: np.ndarray | None = None) -> BarPlan:
    """Rule 4: madmom's downbeat tracker (reusing the file's activations when they are at hand)."""
    bars, tempo = bars_from_downbeats(find_downbeats(audio, sr, max_bpm, activations), len(audio) / sr)
    return BarPlan(bars, tempo, RULE_DOWNBEATS, DOWNBEAT_CONFIDENCE)
