"""The fast vocoder: log10 mel -> 16 kHz audio at the mel's frame rate, trainable on a CPU in minutes. Not the
paper's vocoder (melgan.py's MelGAN, `--arch melgan`); what the literature after MelGAN uses to converge fast:
  - generator (Vocos, Siuzdak 2023): ConvNeXt blocks (Liu et al. 2022) at the frame rate predict each STFT
    frame's log magnitude and phase, then an inverse STFT. MelGAN upsamples x160 with transposed convs instead.
  - losses (Parallel WaveGAN, Multi-band MelGAN, HiFi-GAN): multi-resolution STFT (spectral convergence +
    log-magnitude L1) and mel L1 from step 0. MelGAN trains with hinge + feature matching only.
  - optional adversary (UnivNet, as Vocos): multi-resolution spectrogram discriminator, hinge + feature
    matching, after a warm-up (train_melgan.py --gan-after; off by default: 20x a CPU step).
Layout: log10 mel (B, F=64, T) -> STFT frames (B, 321, T) -> audio (B, 1, T * 160); frame t <-> samples
[160 t, 160 t + 160) as in mel.py, so circular vocoding (melgan.MelGANVocoder) crops sample-exactly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
import torch.nn.functional as F
from torch.nn.utils.parametrizations import weight_norm

from losses import d_hinge, g_hinge
from mel import HOP, N_MELS, log_mel

# ---------------------------------------------------------------------------------------------
# The numbers, named once.
# ---------------------------------------------------------------------------------------------
N_FFT = 640                      # synthesis window: 4 x the hop (Vocos' overlap), 321 bins of 25 Hz
DIM = 192                        # ConvNeXt width (Vocos: 512; a CPU step stays ~0.1 s at 192)
BLOCKS = 8                       # ConvNeXt blocks (Vocos: 8)
MULT = 3                         # pointwise expansion inside a block (Vocos: 1536 / 512 = 3)
KERNEL = 7                       # depthwise kernel in frames (Vocos, ConvNeXt)
MEL_CENTER, MEL_SCALE = -2.5, 1.5    # log10 mel in [-5, ~2] -> roughly [-1.7, 3] before the first conv
MAX_LOG_MAG = math.log(100.0)    # Vocos clips the predicted log magnitude at ln 100
MIN_LOG_MAG = math.log(1e-7)     # and we below, 100 x under the losses' floor: exp() of a lower value is a
#                                  float32 denormal, which slowed a CPU training step 10 x (measured)
STFT_RESOLUTIONS = ((256, 64), (512, 128), (1024, 256), (2048, 512))   # (n_fft, hop) of the STFT loss;
#                                  Parallel WaveGAN's three at 24 kHz scaled to 16 kHz, plus a short one for hits
MAG_FLOOR = 1e-5                 # magnitude floor before the log, as the mel front end's LOG_FLOOR
LAMBDA_MEL = 10.0                # weight of the log10-mel L1 beside the STFT terms (each ~0.1-1)
MRD_RESOLUTIONS = ((512, 128), (1024, 256), (256, 64))   # UnivNet's multi-resolution discriminator, at 16 kHz
MRD_CHANNELS = 32                # UnivNet / Vocos MRD width
LRELU = 0.1                      # MRD LeakyReLU slope (UnivNet)
LAMBDA_ADV, LAMBDA_FM = 1.0, 2.0     # adversarial and feature-matching weights (HiFi-GAN's FM weight)


@dataclass
class VocosConfig:
    """Architecture (stored in every checkpoint so `melgan.load_vocoder` rebuilds it)."""
    n_mels: int = N_MELS
    dim: int = DIM
    blocks: int = BLOCKS
    mult: int = MULT
    kernel: int = KERNEL
    n_fft: int = N_FFT

    def __post_init__(self):
        if self.n_fft % (2 * HOP) or self.n_fft < 2 * HOP:
            raise ValueError(f"VocosConfig.n_fft={self.n_fft} must be a multiple of 2 x the hop {2 * HOP}")
        if self.kernel % 2 == 0:
            raise ValueError(f"VocosConfig.kernel={self.kernel} must be odd (centred 'same' convs)")


# ---------------------------------------------------------------------------------------------
# Generator
# ---------------------------------------------------------------------------------------------
class ConvNeXtBlock(nn.Module):
    """Depthwise conv over time - LayerNorm - pointwise x3 - GELU - pointwise back, scaled, residual
    (ConvNeXt; Vocos' 1-d form). (B, C, T) -> (B, C, T)."""

    def __init__(self, dim: int, mult: int, kernel: int, layer_scale: float):
        super().__init__()
        self.dw = nn.Conv1d(dim, dim, kernel, padding=kernel // 2, groups=dim)
        self.norm = nn.LayerNorm(dim)
        self.pw1, self.pw2 = nn.Linear(dim, mult * dim), nn.Linear(mult * dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), layer_scale))

    def forward(self, x):
        y = self.norm(self.dw(x).transpose(1, 2))                                     # (B, T, C)
        y = self.gamma * self.pw2(F.gelu(self.pw1(y)))                                # (B, T, C)
        return x + y.transpose(1, 2)                                                  # (B, C, T)


def frame_istft(spec: torch.Tensor, n_fft: int) -> torch.Tensor:
    """Complex STFT frames (B, n_fft/2+1, T) -> audio (B, T * 160), frame t centred on sample 160 t + 80.

    The front end's frame t covers samples [160 t, 160 t + 160) (its window is centred at 160 t + 80), so
    synthesis frame t is laid from sample 160 t + 80 - n_fft/2: windowed overlap-add, divided by the sum of
    squared windows (the least-squares inverse, as torch.istft), then cropped to exactly T * 160 samples.
    (torch.istft with center=True centres frame t on 160 t, half a hop early.)"""
    b, _, t = spec.shape
    window = torch.hann_window(n_fft, periodic=True, device=spec.device)
    frames = torch.fft.irfft(spec, n=n_fft, dim=1) * window[:, None]                  # (B, n_fft, T)
    lead = n_fft // 2 - HOP // 2                                                      # samples before sample 0
    length = (t - 1) * HOP + n_fft
    ola = F.fold(frames, (1, length), (1, n_fft), stride=(1, HOP))[:, 0, 0]           # (B, (T-1) 160 + n_fft)
    wsq = (window ** 2)[None, :, None].expand(1, n_fft, t)
    norm = F.fold(wsq, (1, length), (1, n_fft), stride=(1, HOP))[:, 0, 0]             # (1, (T-1) 160 + n_fft)
    return (ola / norm.clamp_min(1e-3))[:, lead:lead + t * HOP]                       # (B, T * 160)


class VocosGenerator(nn.Module):
    """log10 mel (B, F=64, T) -> waveform (B, 1, T * 160). Any T >= 1; zero 'same' padding in time."""

    def __init__(self, cfg: VocosConfig = VocosConfig()):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Conv1d(cfg.n_mels, cfg.dim, cfg.kernel, padding=cfg.kernel // 2)
        self.norm_in = nn.LayerNorm(cfg.dim)
        self.blocks = nn.ModuleList(ConvNeXtBlock(cfg.dim, cfg.mult, cfg.kernel, 1.0 / cfg.blocks)
                                    for _ in range(cfg.blocks))
        self.norm_out = nn.LayerNorm(cfg.dim)
        self.head = nn.Linear(cfg.dim, 2 * (cfg.n_fft // 2 + 1))                      # log magnitude, phase

    @property
    def context_frames(self) -> int:
        """Frames on each side that can reach an output frame (convs + synthesis window): the context that
        circular vocoding wraps around a loop (melgan.MelGANVocoder) so that its seam is seamless."""
        return (self.cfg.kernel // 2) * (self.cfg.blocks + 1) + self.cfg.n_fft // (2 * HOP)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = self.embed((mel - MEL_CENTER) / MEL_SCALE)                                # (B, C, T)
        x = self.norm_in(x.transpose(1, 2)).transpose(1, 2)                           # (B, C, T)
        for block in self.blocks:
            x = block(x)
        x = self.head(self.norm_out(x.transpose(1, 2))).float()                       # (B, T, 2 x bins)
        log_mag, phase = x.transpose(1, 2).chunk(2, dim=1)                            # 2 x (B, bins, T)
        spec = torch.polar(log_mag.clamp(MIN_LOG_MAG, MAX_LOG_MAG).exp(), phase)               # (B, bins, T) complex
        return frame_istft(spec, self.cfg.n_fft)[:, None]                             # (B, 1, T * 160)


# ---------------------------------------------------------------------------------------------
# Reconstruction losses (also the benchmark's distances: experiments/bench_vocoder.py)
# ---------------------------------------------------------------------------------------------
def stft_magnitude(audio: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    """(B, N) -> (B, n_fft/2+1, frames) magnitudes, floored at MAG_FLOOR (Hann, centred frames)."""
    window = torch.hann_window(n_fft, periodic=True, device=audio.device)
    spec = torch.stft(audio.float(), n_fft, hop_length=hop, window=window, center=True, return_complex=True)
    return spec.abs().clamp_min(MAG_FLOOR)


def spectral_convergence(fake_mag: torch.Tensor, real_mag: torch.Tensor) -> torch.Tensor:
    """Per item ||S_real - S_fake||_F / ||S_real||_F (Arik et al. 2019; Parallel WaveGAN): (B, F, T) -> (B,)."""
    return (real_mag - fake_mag).flatten(1).norm(dim=1) / real_mag.flatten(1).norm(dim=1).clamp_min(MAG_FLOOR)


def log_magnitude_l1(fake_mag: torch.Tensor, real_mag: torch.Tensor) -> torch.Tensor:
    """Per item mean |ln S_real - ln S_fake| (Parallel WaveGAN's log STFT magnitude loss): (B, F, T) -> (B,)."""
    return (real_mag.log() - fake_mag.log()).abs().flatten(1).mean(dim=1)


def multi_resolution_stft(fake: torch.Tensor, real: torch.Tensor,
                          resolutions=STFT_RESOLUTIONS) -> tuple[torch.Tensor, torch.Tensor]:
    """Audio (B, N) x 2 -> (spectral convergence (B,), log-magnitude L1 (B,)), each averaged over resolutions."""
    sc = mag = 0.0
    for n_fft, hop in resolutions:
        f, r = stft_magnitude(fake, n_fft, hop), stft_magnitude(real, n_fft, hop)    # (B, F_r, T_r) each
        sc = sc + spectral_convergence(f, r)
        mag = mag + log_magnitude_l1(f, r)
    return sc / len(resolutions), mag / len(resolutions)


def reconstruction_losses(fake: torch.Tensor, real: torch.Tensor, real_mel: torch.Tensor) -> dict[str, torch.Tensor]:
    """fake, real audio (B, N); real_mel (B, 64, N/160) -> batch-mean 'sc', 'mag', 'mel' and their weighted 'recon'."""
    sc, mag = multi_resolution_stft(fake, real)
    mel_l1 = F.l1_loss(log_mel(fake), real_mel)
    out = {"sc": sc.mean(), "mag": mag.mean(), "mel": mel_l1}
    out["recon"] = out["sc"] + out["mag"] + LAMBDA_MEL * mel_l1
    return out


# ---------------------------------------------------------------------------------------------
# Optional adversary: UnivNet's multi-resolution spectrogram discriminator (as Vocos)
# ---------------------------------------------------------------------------------------------
class SpectrogramDiscriminator(nn.Module):
    """One resolution: |STFT| (B, 1, frames, bins) -> [feature maps ..., logits (B, 1, frames, bins/16)]."""

    def __init__(self, n_fft: int, hop: int, ch: int = MRD_CHANNELS):
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        conv = lambda i, o, k, s: weight_norm(nn.Conv2d(i, o, k, s, padding=(k[0] // 2, k[1] // 2)))  # noqa: E731
        self.convs = nn.ModuleList([conv(1, ch, (3, 9), (1, 1))] +
                                   [conv(ch, ch, (3, 9), (1, 2)) for _ in range(3)] +
                                   [conv(ch, ch, (3, 3), (1, 1))])
        self.out = conv(ch, 1, (3, 3), (1, 1))

    def forward(self, audio: torch.Tensor) -> list[torch.Tensor]:
        x = stft_magnitude(audio, self.n_fft, self.hop).transpose(1, 2)[:, None]      # (B, 1, frames, bins)
        feats = []
        for c in self.convs:
            x = F.leaky_relu(c(x), LRELU)
            feats.append(x)
        feats.append(self.out(x))
        return feats


class MultiResolutionDiscriminator(nn.Module):
    """Audio (B, N) -> one list of maps (logits last) per resolution."""

    def __init__(self, resolutions=MRD_RESOLUTIONS):
        super().__init__()
        self.discs = nn.ModuleList(SpectrogramDiscriminator(n, h) for n, h in resolutions)

    def forward(self, audio: torch.Tensor) -> list[list[torch.Tensor]]:
        return [d(audio) for d in self.discs]


def adversarial_losses(D: MultiResolutionDiscriminator, fake: torch.Tensor, real: torch.Tensor):
    """-> (D's hinge loss on detached fake, a function giving G's hinge + LAMBDA_FM x feature matching).
    The real maps are computed once and reused (detached) as the feature-matching target."""
    d_real = D(real)
    loss_d = d_hinge([m[-1] for m in d_real], [m[-1] for m in D(fake.detach())])

    def g_side():
        d_fake = D(fake)
        fm = sum(F.l1_loss(f, r.detach()) for rs, fs in zip(d_real, d_fake) for r, f in zip(rs[:-1], fs[:-1]))
        return g_hinge([m[-1] for m in d_fake]), fm / len(d_real)
    return loss_d, g_side
