"""Griffin-Lim: the vocoder-free fallback, log10 mel -> 16 kHz audio by phase retrieval (docs/design.md §6;
Griffin & Lim 1984; fast Griffin-Lim, Perraudin et al. 2013). No learning: used when no MelGAN
checkpoint exists (melgan.load_vocoder announces it), at a clearly limited audio quality.

Layout: log10 mel (F=64, T) or (B, F=64, T), numpy or torch -> audio (T * 160,) or (B, T * 160), same kind
(`mel_batch` and `audio_out` do that conversion for every vocoder, MelGAN's too).

Our STFT is the front end's (mel.py): reflect pad 432 each side, then frames of 1024 every 160 samples
with center=False. Both the padding and its adjoint are written as one index map over the padded
signal, so the least-squares inverse STFT folds the padded edges back onto the samples they copy, and
frame t stays on samples [160 t, 160 t + 160): a 200-frame loop gives exactly 32 000 samples.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from mel import HOP, N_FFT, N_MELS, PAD, mel_filterbank, voiceable

GL_ITERS = 64                    # Griffin-Lim iterations (fast GL converges in a few dozen)
GL_MOMENTUM = 0.99               # fast Griffin-Lim (Perraudin et al. 2013), librosa's default
GL_SEED = 0                      # fixed initial phase: the fallback is deterministic
MEL_INV_ITERS = 200              # multiplicative NNLS updates when inverting the mel filterbank
MIN_FRAMES = 4                   # shortest mel a vocoder accepts (reflection padding needs a few frames)


# ---------------------------------------------------------------------------------------------
# Input/output handling shared by the vocoders.
# ---------------------------------------------------------------------------------------------
def mel_batch(mel, what: str) -> tuple[torch.Tensor, bool, bool]:
    """numpy/torch (64, T) or (B, 64, T) -> float32 torch (B, 64, T) within mel.voiceable's range, was-numpy,
    was-batched."""
    as_numpy = not isinstance(mel, torch.Tensor)
    x = torch.as_tensor(np.asarray(mel, dtype=np.float32)) if as_numpy else mel.detach().float()
    batched = x.dim() == 3
    if x.dim() not in (2, 3) or x.shape[-2] != N_MELS or x.shape[-1] < MIN_FRAMES:
        raise ValueError(f"{what}: expected a log10 mel of shape ({N_MELS}, T) or (B, {N_MELS}, T) with "
                         f"T >= {MIN_FRAMES} frames (F before T, as mel.log_mel), got {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{what}: the mel contains NaN or inf")
    return voiceable(x if batched else x[None]), as_numpy, batched


def audio_out(audio: torch.Tensor, as_numpy: bool, batched: bool):
    """(B, N) torch audio -> what the caller gave: (N,) if the mel was unbatched, numpy float32 if it was numpy."""
    audio = audio if batched else audio[0]
    return audio.cpu().numpy().astype(np.float32) if as_numpy else audio


# ---------------------------------------------------------------------------------------------
# The front end's STFT, its least-squares inverse, and mel inversion.
# ---------------------------------------------------------------------------------------------
def _pad_index(n: int, circular: bool, device) -> torch.Tensor:
    """For each of the n + 2 * 432 padded positions, the sample of the n-sample signal it copies."""
    q = torch.arange(-PAD, n + PAD, device=device)
    if circular:
        return q % n                                    # the loop continues around both ends
    if n <= PAD:
        raise ValueError(f"griffin_lim needs more than {PAD} samples (T >= 3 frames) for reflect padding")
    q = q.abs()                                         # reflect (edge sample not repeated), as log_mel
    return torch.where(q >= n, 2 * (n - 1) - q, q)


def _stft(x: torch.Tensor, idx: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """(B, N) -> (B, 513, T) complex, the front end's STFT (before magnitude and mel)."""
    return torch.stft(x[:, idx], N_FFT, hop_length=HOP, win_length=N_FFT, window=window,
                      center=False, return_complex=True)


def _istft(spec: torch.Tensor, idx: torch.Tensor, window: torch.Tensor, n: int) -> torch.Tensor:
    """(B, 513, T) complex -> (B, N): the least-squares signal whose `_stft` is closest to `spec`.

    Windowed overlap-add into the padded signal, then every padded position is added onto the sample it
    copies (the adjoint of the padding), divided by the same sum of squared windows."""
    frames = torch.fft.irfft(spec, n=N_FFT, dim=1) * window[:, None]                  # (B, 1024, T)
    n_pad = idx.numel()
    ola = F.fold(frames, output_size=(1, n_pad), kernel_size=(1, N_FFT), stride=(1, HOP))[:, 0, 0]  # (B, N+864)
    wsq = (window ** 2)[None, :, None].expand(1, N_FFT, spec.shape[-1])
    norm = F.fold(wsq, output_size=(1, n_pad), kernel_size=(1, N_FFT), stride=(1, HOP))[:, 0, 0]   # (1, N+864)
    num = torch.zeros(spec.shape[0], n, device=spec.device).index_add_(1, idx, ola)             # (B, N)
    den = torch.zeros(1, n, device=spec.device).index_add_(1, idx, norm)                        # (1, N)
    return num / den.clamp_min(1e-8)


def mel_to_magnitude(mel_lin: torch.Tensor, n_iter: int = MEL_INV_ITERS) -> torch.Tensor:
    """Linear mel magnitudes (B, 64, T) -> STFT magnitudes (B, 513, T) >= 0 with mel_basis @ S ~ mel.

    Non-negative least squares: start from the pseudo-inverse clipped at a small positive value, then
    Lee & Seung's multiplicative updates S <- S * (M^T m) / (M^T M S), which keep S >= 0 and never
    increase the squared error (a zero entry could never grow again, hence the positive start). The start's
    floor is each loop's own mean level, never the batch's: a quiet loop beside a loud one stays itself."""
    basis = torch.from_numpy(mel_filterbank()).to(mel_lin.device)                    # (64, 513)
    level = mel_lin.mean(dim=(1, 2), keepdim=True)                                    # (B, 1, 1)
    s = (torch.linalg.pinv(basis) @ mel_lin).clamp_min(0) + 1e-6 * level             # (B, 513, T)
    mt_m = basis.T @ mel_lin                                                          # (B, 513, T)
    gram = basis.T @ basis                                                            # (513, 513)
    for _ in range(n_iter):
        s = s * mt_m / (gram @ s).clamp_min(1e-12)
    return s


def griffin_lim(mel, n_iter: int = GL_ITERS, circular: bool = True, momentum: float = GL_MOMENTUM,
                seed: int = GL_SEED):
    """log10 mel (64, T) or (B, 64, T), numpy or torch -> audio (T * 160,) or (B, T * 160), same kind.

    Undo log10, invert the mel filterbank (non-negative least squares), then fast Griffin-Lim with the
    front end's own STFT. Deterministic: the initial phase comes from a fixed seed.

    circular=True (default) treats the mel as one period of a loop, as every pjloop mel is: the padded
    STFT frames at both ends wrap around to the other end, so the result repeats seamlessly. The mel itself
    was computed with reflect padding, so only the 3 outermost frames see slightly different context.
    circular=False reproduces log_mel's reflect padding exactly (for audio that is not a loop).
    """
    x, as_numpy, batched = mel_batch(mel, "griffin_lim(mel)")
    b, _, t = x.shape
    n = t * HOP
    dev = x.device
    window = torch.hann_window(N_FFT, periodic=True, device=dev)
    idx = _pad_index(n, circular, dev)
    mag = mel_to_magnitude(10.0 ** x)                                                 # (B, 513, T)
    gen = torch.Generator().manual_seed(seed)
    # One phase draw shared by the whole batch: a loop's audio does not depend on its batch neighbours.
    phase = (torch.rand(mag.shape[1:], generator=gen) * 2 * math.pi).to(dev).expand_as(mag)    # (B, 513, T)
    angles = torch.polar(torch.ones_like(mag), phase)                                 # (B, 513, T)
    prev = torch.zeros_like(angles)
    for _ in range(n_iter):
        rebuilt = _stft(_istft(mag * angles, idx, window, n), idx, window)           # (B, 513, T)
        angles = rebuilt - (momentum / (1 + momentum)) * prev                          # fast GL extrapolation
        angles = angles / angles.abs().clamp_min(1e-16)
        prev = rebuilt
    audio = _istft(mag * angles, idx, window, n)                                      # (B, T * 160)
    return audio_out(audio, as_numpy, batched)
