"""Audio in and out, before the mel front end: decode any file to mono, resample, level, trim.

Shared by preprocess.py (real loops), sample.py (generated loops), evaluate.py and scnn.py (MTAT
clips). Audio is always a float32 numpy array (N,), mono; rates are explicit arguments.
"""
from __future__ import annotations

from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from mel import LOOP_SAMPLES

PEAK_LEVEL = 0.9          # peak of every loop, real (preprocess.py) and demo (demo/loops.py): head-room for the
                          # mel front end and the vocoder, and the two kinds of set match


class SkipFile(Exception):
    """An input file that yields no loop (or no clip). The message is "<category>: <detail>";
    preprocess.py's summary groups skips by category."""


def load_mono(path: str | Path) -> tuple[np.ndarray, int]:
    """Decode any libsndfile format -> (mono float32 (N,), native sample rate). Raises SkipFile."""
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise SkipFile("empty file: 0 bytes")
        audio, sr = sf.read(path, dtype="float32", always_2d=True)                    # (N, C)
    except SkipFile:
        raise
    except Exception as e:   # corrupt data, a text file named .wav, a broken link, no permission
        raise SkipFile(f"unreadable audio: {type(e).__name__}: {e}".replace("\n", " ")) from e
    if audio.shape[0] == 0:
        raise SkipFile("empty file: no audio samples")
    if not np.isfinite(audio).all():
        raise SkipFile("unreadable audio: contains NaN or infinite samples")
    return audio.mean(axis=1, dtype=np.float64).astype(np.float32), int(sr)             # (N,)


def resample(audio: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Polyphase resampling (scipy's resample_poly, Kaiser-windowed FIR) between any two rates."""
    if sr_in == sr_out:
        return audio.astype(np.float32)
    g = gcd(sr_in, sr_out)
    return resample_poly(audio, sr_out // g, sr_in // g).astype(np.float32)


def peak_normalise(audio: np.ndarray, level: float = PEAK_LEVEL) -> np.ndarray:
    """Scale so that max |audio| = level (silence stays silence)."""
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    return (audio * (level / peak)).astype(np.float32) if peak > 0 else audio.astype(np.float32)


def fix_length(audio: np.ndarray, n: int = LOOP_SAMPLES) -> np.ndarray:
    """Trim or zero-pad the end to exactly n samples."""
    return np.pad(audio[:n], (0, max(0, n - len(audio)))).astype(np.float32)
