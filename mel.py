"""The one mel front end of pjloop (paper Section 3 and Section 4 "Pipeline"; docs/design.md §1).

    16 kHz mono waveform (N,)  ->  log10 mel magnitude (F=64, T=N/160)
    n_fft = win = 1024 (the authors' code; the paper text says 512), hop 160, Hann, 64 Slaney bands 0-8 kHz

Reflect-padded so a 32 000-sample loop gives exactly 200 frames. Two layouts of the same mel:

    on disk / vocoder : (F=64, T=200) or (B, F=64, T=200), RAW log10 mel (values in [-5, ~2])
    inside the GAN    : (B, 1, T=200, F=64), per-band z-scores, time-major like the authors' code

    to_gan(mels, mean, std)  : raw (F, T) / (B, F, T)  ->  standardised (B, 1, T, F) torch
    from_gan(x, mean, std)   : standardised (B, 1, T, F) ->  raw (B, F, T) numpy
"""
from __future__ import annotations

import math

from functools import lru_cache

import librosa
import numpy as np
import torch

# ---------------------------------------------------------------------------------------------
# The numbers of the front end, named once (docs/design.md §1).
# ---------------------------------------------------------------------------------------------
SR = 16_000          # Hz; the paper's (and VGGish's) rate
BPM = 120            # every training loop is one bar of 4/4 at 120 BPM ...
BEATS_PER_BAR = 4
LOOP_SECONDS = BEATS_PER_BAR * 60 / BPM   # ... = 2.000 s
LOOP_SAMPLES = int(SR * LOOP_SECONDS)     # 32 000 samples
N_FFT = 1024         # = window length; the authors' code (the paper text says 512, see docstring)
HOP = 160            # 10 ms at 16 kHz, as VGGish
N_MELS = 64          # as VGGish and the authors
F_MIN, F_MAX = 0.0, 8000.0   # full band up to Nyquist
LOG_FLOOR = 1e-5     # log10(max(mel, 1e-5)): -5 is the value of silence
MEL_CEILING = 1.1    # the loudest log10 mel a vocoder is given: a full-scale square wave's loudest band is 1.09,
                     # a full-scale sine's 0.96, the demo loops' loudest 0.85 (a generator's output is unbounded)
N_FRAMES = LOOP_SAMPLES // HOP            # 200 frames = exactly 2.000 s
CHUNK_FRAMES = N_FRAMES // 2              # 100 frames = the 1-second chunks the feature networks see
PAD = (N_FFT - HOP) // 2                  # 432: centres frame t on samples [160 t, 160 t + 160)
STD_FLOOR = 1e-3     # a band with (almost) no variance is not blown up by standardisation


# ---------------------------------------------------------------------------------------------
# The transform: torch STFT (differentiable, any device) + librosa's mel filterbank.
# ---------------------------------------------------------------------------------------------
def mel_filterbank() -> np.ndarray:
    """Triangular mel filters, float32 (F=64, n_fft // 2 + 1 = 513): librosa's defaults (Slaney mel
    scale, each filter scaled to unit area), 0-8 kHz."""
    return librosa.filters.mel(sr=SR, n_fft=N_FFT, n_mels=N_MELS, fmin=F_MIN, fmax=F_MAX,
                               htk=False, norm="slaney", dtype=np.float32)


@lru_cache(maxsize=None)
def _mel_basis(device: str) -> torch.Tensor:
    return torch.from_numpy(mel_filterbank()).to(device)                               # (64, 513)


@lru_cache(maxsize=None)
def _window(device: str) -> torch.Tensor:
    return torch.hann_window(N_FFT, periodic=True, device=device)                      # librosa's 'hann'


def log_mel(audio: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """THE mel front end: 16 kHz audio (..., N) -> log10 mel (..., F=64, T=N // 160).

    Accepts numpy (returns numpy float32) or torch (returns torch, differentiable, on its device).
    A 32 000-sample loop gives exactly (64, 200).
    """
    as_numpy = not isinstance(audio, torch.Tensor)
    x = torch.as_tensor(np.asarray(audio, dtype=np.float32)) if as_numpy else audio.float()
    lead = x.shape[:-1]
    x = x.reshape(-1, x.shape[-1])                                                     # (B, N)
    assert x.shape[-1] >= HOP, f"log_mel needs at least {HOP} samples (one frame), got {x.shape[-1]}"
    mode = "reflect" if x.shape[-1] > PAD else "constant"                              # reflect needs N > pad
    x = torch.nn.functional.pad(x[:, None], (PAD, PAD), mode=mode)[:, 0]               # (B, N + 864)
    spec = torch.stft(x, N_FFT, hop_length=HOP, win_length=N_FFT, window=_window(str(x.device)),
                      center=False, return_complex=True).abs()                         # (B, 513, T)
    mel = _mel_basis(str(x.device)) @ spec                                             # (B, 64, T)
    out = torch.log10(mel.clamp_min(LOG_FLOOR)).reshape(*lead, N_MELS, -1)             # (..., 64, T)
    return out.numpy() if as_numpy else out


# ---------------------------------------------------------------------------------------------
# Band statistics: per mel band, over the training set (docs/design.md §1).
# ---------------------------------------------------------------------------------------------
def voiceable(mel: torch.Tensor) -> torch.Tensor:
    """A log10 mel clamped to what a signal in [-1, 1] can have: [log10(LOG_FLOOR), MEL_CEILING]. Every vocoder
    input goes through this (griffinlim.mel_batch): a GAN's unbounded output (a "blob" thousands of decades loud)
    would otherwise drive the vocoder far outside anything it heard and drown the loop after peak-normalising."""
    return mel.clamp(math.log10(LOG_FLOOR), MEL_CEILING)


def band_moments(mels: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """mels (N, F=64, T) -> (count per band, mean (64,), M2 (64,) = sum of squared deviations), float64."""
    n = mels.shape[0] * mels.shape[2]
    mean = mels.mean(axis=(0, 2), dtype=np.float64)                                    # (64,)
    m2 = mels.var(axis=(0, 2), dtype=np.float64) * n                                   # (64,)
    return n, mean, m2


def merge_moments(a: tuple[int, np.ndarray, np.ndarray],
                  b: tuple[int, np.ndarray, np.ndarray]) -> tuple[int, np.ndarray, np.ndarray]:
    """Combine the moments of two disjoint sets (Chan et al.'s pairwise update). Unlike running sums
    of x and x^2, this does not cancel catastrophically for a band whose variance is tiny next to
    its mean (log10 mels sit around -5..2)."""
    (na, ma, m2a), (nb, mb, m2b) = a, b
    n = na + nb
    if n == 0:
        return a
    delta = mb - ma
    return n, ma + delta * (nb / n), m2a + m2b + delta ** 2 * (na * nb / n)


def stats_from_moments(moments: tuple[int, np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(count, mean, M2) -> mean (64,), std (64,) float32 (population std, floored at STD_FLOOR)."""
    n, mean, m2 = moments
    std = np.sqrt(np.maximum(m2, 0.0) / n)
    return mean.astype(np.float32), np.maximum(std, STD_FLOOR).astype(np.float32)


def band_stats(mels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """mels (N, F=64, T) -> mean (64,), std (64,), over all loops and frames (an in-memory array)."""
    return stats_from_moments(band_moments(mels))


def band_stats_of_files(paths) -> tuple[np.ndarray, np.ndarray]:
    """`band_stats` over mel files (each (F=64, T)), one file in memory at a time: the same numbers
    to float32 precision without stacking the data set (plus float64 copies) in RAM."""
    total = (0, np.zeros(N_MELS), np.zeros(N_MELS))
    for path in paths:
        mel = np.load(path)                                                            # (64, T)
        if mel.ndim != 2 or mel.shape[0] != N_MELS:
            raise ValueError(f"{path}: expected a ({N_MELS}, T) mel, got shape {mel.shape}")
        total = merge_moments(total, band_moments(mel[None]))                          # (1, 64, T)
    if total[0] == 0:
        raise ValueError("band_stats_of_files: no mel files given")
    return stats_from_moments(total)


# ---------------------------------------------------------------------------------------------
# Standardisation and the two layouts.
# ---------------------------------------------------------------------------------------------
def standardise(mel, mean, std):
    """(..., F=64, T) log mel -> z-scores per band. Works for numpy and torch alike."""
    return (mel - mean[:, None]) / std[:, None]


def destandardise(z, mean, std):
    """Inverse of `standardise`: z-scores (..., F=64, T) -> log10 mel."""
    return z * std[:, None] + mean[:, None]


def to_gan(mels, mean, std) -> torch.Tensor:
    """Raw log10 mels (F=64, T) or (B, F=64, T), numpy or torch -> standardised (B, 1, T, F=64) float32
    torch (on the input's device for torch input). mean/std: (64,) numpy or torch."""
    x = torch.as_tensor(np.asarray(mels, dtype=np.float32)) if not isinstance(mels, torch.Tensor) else mels.float()
    assert x.dim() in (2, 3) and x.shape[-2] == N_MELS, f"to_gan wants (F={N_MELS}, T) or (B, F, T), got {tuple(x.shape)}"
    mean, std = (torch.as_tensor(np.asarray(s, dtype=np.float32), device=x.device) for s in (mean, std))
    z = standardise(x.reshape(-1, *x.shape[-2:]), mean, std)                          # (B, F=64, T)
    return z.transpose(1, 2)[:, None].contiguous()                                     # (B, 1, T, F=64)


def from_gan(x, mean, std) -> np.ndarray:
    """Standardised (B, 1, T, F=64) torch (any device, grad or not) or numpy -> raw log10 mels
    (B, F=64, T) float32 numpy, ready for the vocoder or for disk. mean/std: (64,) numpy or torch."""
    z = x.detach().float().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, np.float32)
    assert z.ndim == 4 and z.shape[1] == 1 and z.shape[3] == N_MELS, f"from_gan wants (B, 1, T, F={N_MELS}), got {z.shape}"
    mean, std = (s.detach().cpu().numpy() if isinstance(s, torch.Tensor) else np.asarray(s) for s in (mean, std))
    mel = destandardise(z[:, 0].transpose(0, 2, 1), mean.astype(np.float32), std.astype(np.float32))  # (B, F=64, T)
    return np.ascontiguousarray(mel, dtype=np.float32)
