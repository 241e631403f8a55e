"""Put pjloop's mel onto a feature network's native time-frequency grid, differentiably.

Projected GAN resizes images to its feature network's training resolution; the audio analogue is the native
grid (band centres, frame hop). aisfx was trained on 96 HTK bands over 0-22 kHz at 23 ms frames; fed our 64
Slaney bands at 10 ms it sees every event 2.3x too long. `GridAdapter`:

    z (B, 1, T, 64) -> raw = z * std + mean -> frequency: linear interpolation by band centre (B, 1, T, F')
      (native bands above 8 kHz hold silence) -> time: linear resampling to the native hop (B, 1, T', F')

The output stays in our log10 magnitude units; each network maps it onto its input scale afterwards. Every
step is linear in z, so gradients flow back to the generator.
"""
from __future__ import annotations

import librosa
import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from mel import F_MAX, F_MIN, HOP, LOG_FLOOR, N_MELS, SR

SILENCE = float(np.log10(LOG_FLOOR))     # -5: the level of an empty band in our front end
FRAME_SECONDS = HOP / SR                 # 10 ms: our frame spacing


def our_centres_hz() -> np.ndarray:
    """Centre frequency of each of our 64 bands (Slaney mel scale, 0-8 kHz), (64,)."""
    return librosa.mel_frequencies(N_MELS + 2, fmin=F_MIN, fmax=F_MAX, htk=False)[1:-1]


def htk_centres_hz(n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """Centre frequencies of an HTK-mel filterbank with n_mels bands over [fmin, fmax], (n_mels,)."""
    return librosa.mel_frequencies(n_mels + 2, fmin=fmin, fmax=fmax, htk=True)[1:-1]


def slaney_centres_hz(n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """Centre frequencies of librosa's default (Slaney-scale) filterbank with n_mels bands over
    [fmin, fmax], (n_mels,): musicnn's native grid is slaney_centres_hz(96, 0, 8000)."""
    return librosa.mel_frequencies(n_mels + 2, fmin=fmin, fmax=fmax, htk=False)[1:-1]


def band_interpolation(src_hz: np.ndarray, dst_hz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weights W (F_dst, F_src) of linear interpolation by centre frequency, and a mask (F_dst,) of the
    destination bands above the source's top centre (they get no weight: silence). Destination bands
    below the lowest source centre copy the lowest source band."""
    w = np.zeros((len(dst_hz), len(src_hz)), dtype=np.float64)
    above = dst_hz > src_hz[-1]
    for j, f in enumerate(dst_hz):
        if above[j]:
            continue
        k = int(np.clip(np.searchsorted(src_hz, f) - 1, 0, len(src_hz) - 2))   # src_hz[k] <= f < src_hz[k + 1]
        t = float(np.clip((f - src_hz[k]) / (src_hz[k + 1] - src_hz[k]), 0.0, 1.0))
        w[j, k], w[j, k + 1] = 1.0 - t, t
    return w.astype(np.float32), above


class GridAdapter(nn.Module):
    """Standardised (B, 1, T, 64) -> raw log10 mel (B, 1, T', F') on a native grid (module docstring).

    `native_hz`: the native bands' centre frequencies; `native_hop_s`: the native frame spacing in seconds;
    `mean`, `std`: (64,) the data set's per-band stats (zeros / ones leave z as it is: tests, dry runs).
    All tensors are buffers: frozen, and saved with the discriminator.
    """

    def __init__(self, native_hz: np.ndarray, native_hop_s: float, mean=None, std=None):
        super().__init__()
        w, above = band_interpolation(our_centres_hz(), np.asarray(native_hz, dtype=np.float64))
        mean = np.zeros(N_MELS) if mean is None else np.asarray(mean, dtype=np.float64)
        std = np.ones(N_MELS) if std is None else np.asarray(std, dtype=np.float64)
        self.register_buffer("weight", torch.from_numpy(w))                                   # (F', 64)
        self.register_buffer("fill", torch.from_numpy(np.where(above, SILENCE, 0.0).astype(np.float32)))  # (F',)
        self.register_buffer("mean", torch.from_numpy(mean.astype(np.float32)))              # (64,)
        self.register_buffer("std", torch.from_numpy(std.astype(np.float32)))                # (64,)
        self.time_ratio = FRAME_SECONDS / native_hop_s        # native frames per our frame (aisfx: 0.43)

    def native_frames(self, t: int) -> int:
        return max(1, round(t * self.time_ratio))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        raw = z * self.std.to(z.dtype) + self.mean.to(z.dtype)                       # (B, 1, T, 64) log10 mel
        x = raw @ self.weight.t().to(z.dtype) + self.fill.to(z.dtype)                # (B, 1, T, F')
        return F.interpolate(x, size=(self.native_frames(z.shape[2]), x.shape[3]),
                             mode="bilinear", align_corners=False)                    # (B, 1, T', F')

    def level_moments(self) -> tuple[float, float]:
        """Mean and std, over the data set, of the adapted raw values pooled over all native bands.

        Per native band j: mean_j = W_j . mean; neighbouring bands of a mel move together, so its spread is
        taken as W_j . std (perfect correlation); silent bands are the constant -5. Pooled over bands:
        M = avg_j mean_j, V = avg_j (spread_j^2 + mean_j^2) - M^2.
        """
        w = self.weight.double()
        means = w @ self.mean.double() + self.fill.double()                            # (F',)
        spreads = w @ self.std.double()                                                # (F',)
        m = float(means.mean())
        v = float((spreads ** 2 + means ** 2).mean()) - m ** 2
        return m, max(v, 1e-12) ** 0.5


def fit_level_map(adapter: GridAdapter, target_mean: float, target_std: float) -> tuple[float, float]:
    """(a, b) such that a + b * adapted has the target mean and std over the data set (`level_moments`):
    the network's first layer then sees inputs in the range it was trained on."""
    m, s = adapter.level_moments()
    b = target_std / s
    return target_mean - b * m, b
