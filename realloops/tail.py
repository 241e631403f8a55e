"""Where a loop file's sound dies away after its last bar (realloops/tempo.py; paper Section 4 "Pipeline").
A tail is a decay with no new onset after the bars: a reverb, a cymbal ringing on, trailing silence.
Loop libraries often leave one on the file, and its length is then no whole number of bars.

    TailTest(audio, sr)(start, t0, t1)   is [t0, t1) a tail after the loop [start, t0)?
    tail_start(test, start, end)         the earliest time from which [start, end) dies away as a tail

Layout: audio is mono float32 (N,) at its native rate; times are seconds in the file.
"""
from __future__ import annotations

import numpy as np

from realloops.beats import DBN_FPS

MAX_TAIL_S = 2.0              # the longest tail after the last bar we look for
TAIL_FRAME_S = 0.02           # RMS frames of the tail test ...
TAIL_SMOOTH_FRAMES = 5        # ... power-averaged over 100 ms: a reverb of sparse hits flickers by ~6 dB in 20 ms
TAIL_RISE_DB = 6.0            # a tail never gets louder than this above its quietest point so far,
TAIL_DROP_DB = 10.0           # and is this much quieter than the loop it follows (a reverb, a cymbal ringing
                              # on; a pad's last note held to the end is no tail)
MIN_TAIL_S = 0.05             # a shorter remainder is rounding, not a tail


class TailTest:
    """Is the audio from time t0 to t1 a tail after the loop [start, t0): a decay with no new onset, at
    most MAX_TAIL_S long and TAIL_DROP_DB quieter than the loop?"""

    def __init__(self, audio: np.ndarray, sr: int):
        hop = max(1, int(round(TAIL_FRAME_S * sr)))
        n = len(audio) // hop
        power = np.mean(audio[:n * hop].reshape(n, hop).astype(np.float64) ** 2, axis=1)   # (n,) per frame
        smooth = np.convolve(power, np.ones(TAIL_SMOOTH_FRAMES) / TAIL_SMOOTH_FRAMES, mode="same")
        self.db = 10 * np.log10(smooth + 1e-12)                                       # (n,)
        self.frame_s = hop / sr

    def __call__(self, start: float, t0: float, t1: float) -> bool:
        if t1 - t0 < MIN_TAIL_S:
            return True
        if t1 - t0 > MAX_TAIL_S:
            return False
        body = self.db[int(start / self.frame_s):int(t0 / self.frame_s)]
        db = self.db[int(t0 / self.frame_s):int(t1 / self.frame_s)]
        if len(db) == 0 or len(body) == 0:
            return False
        quieter = np.mean(10 ** (db / 10)) <= np.mean(10 ** (body / 10)) * 10 ** (-TAIL_DROP_DB / 10)   # mean powers
        return bool(quieter) and float(np.max(db - np.minimum.accumulate(db))) <= TAIL_RISE_DB


def tail_start(tail_test: TailTest, start: float, end: float) -> float:
    """The earliest time from which the span [start, end) dies away as a tail (end when it does not)."""
    for t in np.arange(max(start, end - MAX_TAIL_S), end - MIN_TAIL_S, 1.0 / DBN_FPS):
        if tail_test(start, t, end):
            return float(t)
    return end
