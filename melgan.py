"""MelGAN vocoder and its Griffin-Lim fallback: log10 mel -> 16 kHz audio (paper Section 4, last
paragraph of "Pipeline"; docs/design.md §1 and §6; Kumar et al. 2019, "MelGAN").

The paper turns every generated mel into a waveform with a MelGAN vocoder trained on the same loops,
on the same front end (preprocess.log_mel). This file holds:

    Generator       log10 mel (B, F=64, T)  ->  waveform (B, 1, T * 160)
    Discriminator   waveform (B, 1, N)      ->  3 scales x [feature maps ..., logits]
    training        `python melgan.py --loops drum [--data DIR] [--steps N] [--minutes M] [--resume]`
    griffin_lim     the fallback when no vocoder checkpoint exists (phase retrieval, no learning)
    load_vocoder    checkpoint (or None) -> a `Vocoder` with `.name` and `__call__(mel) -> audio`
    vocode          log10 mel (64, T) or (B, 64, T), numpy or torch -> T * 160 samples per loop

Input scale: the vocoder reads the RAW log10 mel of preprocess.log_mel (values in [-5, ~2]), NOT the
per-band standardised mel the GAN works in. The vocoder is thereby independent of any data set's
statistics (a drum vocoder can vocode a synth data set's mels); callers destandardise first
(preprocess.destandardise with the checkpoint's mean/std) and transpose (B, 1, T, F) -> (B, F, T).

Alignment: frame t of the mel covers samples [160 t, 160 t + 160) (docs/design.md §1), and both the
generator (transposed convs with kernel 2r, padding chosen for exactly r x the length) and Griffin-Lim
(overlap-add with the front end's own 432-sample padding) keep that alignment, so a 200-frame loop gives
exactly 32 000 samples and the context trick for seamless loops (`circular=True`) can crop sample-exactly.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from checkpoint import CheckpointError, StopRequest, load_checkpoint, save_checkpoint
from preprocess import (HOP, LOOP_SAMPLES, N_FFT, N_MELS, PAD, SR, log_mel, mel_filterbank, read_csv)

# ---------------------------------------------------------------------------------------------
# The numbers of MelGAN (Kumar et al. 2019; docs/design.md §6), named once.
# ---------------------------------------------------------------------------------------------
UPSAMPLE_RATIOS = (5, 4, 4, 2)   # product = 160 = HOP: one mel frame -> one hop of samples.
#                                  (MelGAN's 8, 8, 2, 2 makes its 256-sample hop; ours is 160.)
G_CHANNELS = 512                 # width after the first 7-tap conv; halves at every upsampling
RES_DILATIONS = (1, 3, 9)        # the 3 residual blocks after each upsampling: receptive field grows x3
LRELU_SLOPE = 0.2                # MelGAN's LeakyReLU slope (generator and discriminator)
D_SCALES = 3                     # raw audio, x1/2, x1/4: each scale its own discriminator
D_CHANNELS = 16                  # width of the first 15-tap conv of each scale's discriminator
D_MAX_CHANNELS = 1024            # the grouped strided convs grow x4 per layer up to this cap
D_DOWNSAMPLE = 4                 # stride of the grouped convs (kernel 10 x stride + 1 = 41)
D_N_DOWN = 4                     # 4 grouped strided convs: groups 4, 16, 64, 256 at full width
D_IN_PER_GROUP = 4               # groups = in_channels / 4, as MelGAN's code (cheap, wide convs)
LAMBDA_FM = 10.0                 # weight of the L1 feature-matching loss (MelGAN paper, eq. 5)
LR = 1e-4                        # Adam, both networks (MelGAN)
BETAS = (0.5, 0.9)               # Adam betas (MelGAN)
SEGMENT = 8000                   # training segment: 0.5 s = 50 frames. MelGAN uses 8192 samples = 32 of
#                                  its 256-sample frames; 8192 is not a multiple of our hop 160, 8000 is.
BATCH = 16                       # MelGAN's batch size
SAVE_EVERY = 500                 # steps between checkpoints (plus one at the end and on Ctrl-C)
CONTEXT_FRAMES = 16              # circular vocoding: wrap this many frames of the loop around each end;
#                                  twice the generator's receptive field (+-8 frames, tested)
GL_ITERS = 64                    # Griffin-Lim iterations (fast GL converges in a few dozen)
GL_MOMENTUM = 0.99               # fast Griffin-Lim (Perraudin et al. 2013), librosa's default
GL_SEED = 0                      # fixed initial phase: the fallback is deterministic
SEED_STRIDE = 1_000_003          # batch-order seed = seed * stride + step: a resumed run draws new batches
MEL_INV_ITERS = 200              # multiplicative NNLS updates when inverting the mel filterbank
DEFAULT_CHECKPOINT_DIR = Path("checkpoints")


def default_checkpoint(loops: str) -> Path:
    """Where `python melgan.py --loops X` writes, and `load_vocoder(None, loops=X)` looks."""
    return DEFAULT_CHECKPOINT_DIR / f"melgan_{loops}.pt"


@dataclass
class MelGANConfig:
    """Architecture (stored in every checkpoint, so `load_vocoder` rebuilds the same networks).

    The defaults are MelGAN's. `g_channels`, `d_channels`, `d_max_channels` are the width caps that
    let tests (and CPU experiments) build tiny but structurally identical networks.
    """
    n_mels: int = N_MELS
    ratios: tuple = UPSAMPLE_RATIOS
    g_channels: int = G_CHANNELS
    dilations: tuple = RES_DILATIONS
    d_scales: int = D_SCALES
    d_channels: int = D_CHANNELS
    d_max_channels: int = D_MAX_CHANNELS

    def __post_init__(self):
        self.ratios, self.dilations = tuple(self.ratios), tuple(self.dilations)   # lists after a reload
        if math.prod(self.ratios) != HOP:
            raise ValueError(f"MelGANConfig.ratios {self.ratios} must multiply to the hop {HOP}")
        if self.g_channels % 2 ** len(self.ratios):
            raise ValueError(f"MelGANConfig.g_channels={self.g_channels} must be divisible by "
                             f"2^{len(self.ratios)} (it halves at every upsampling)")
        pow2 = lambda n: n > 0 and n & (n - 1) == 0                               # noqa: E731
        if not (pow2(self.d_channels) and pow2(self.d_max_channels)
                and D_IN_PER_GROUP <= self.d_channels <= self.d_max_channels):
            raise ValueError("MelGANConfig.d_channels and d_max_channels must be powers of two with "
                             f"{D_IN_PER_GROUP} <= d_channels <= d_max_channels")


# ---------------------------------------------------------------------------------------------
# Generator
# ---------------------------------------------------------------------------------------------
def wn_conv(*args, **kwargs) -> nn.Conv1d:
    """Weight-normalised Conv1d. MelGAN uses weight norm in every layer of both networks (it found
    spectral norm and batch norm to hurt audio quality). PyTorch's default init is kept: MelGAN's code
    re-initialises with N(0, 0.02) *after* wrapping in weight norm, which leaves the trained weight
    (g and v) untouched, so in effect it uses the default init too."""
    return weight_norm(nn.Conv1d(*args, **kwargs))


def upsample_padding(r: int) -> tuple[int, int]:
    """(padding, output_padding) so that ConvTranspose1d(kernel=2r, stride=r) maps L -> exactly r L.

    Output length = (L - 1) r - 2 p + 2 r + q = r L + (r - 2 p + q); we need r = 2 p - q with q < r:
    p = r / 2, q = 0 for even r; p = (r + 1) / 2, q = 1 for odd r (our 5). Each input frame i then
    spreads over the 2r outputs centred on [r i, r i + r): frame-to-sample alignment is kept."""
    return r // 2 + r % 2, r % 2


class ResBlock(nn.Module):
    """MelGAN residual block: LReLU - dilated 3-tap conv (reflect-padded) - LReLU - 1x1 conv, plus a
    1x1-conv shortcut. Length-preserving: (B, C, L) -> (B, C, L)."""

    def __init__(self, channels: int, dilation: int):
        super().__init__()
        self.block = nn.Sequential(
            nn.LeakyReLU(LRELU_SLOPE),
            nn.ReflectionPad1d(dilation),
            wn_conv(channels, channels, kernel_size=3, dilation=dilation),
            nn.LeakyReLU(LRELU_SLOPE),
            wn_conv(channels, channels, kernel_size=1))
        self.shortcut = wn_conv(channels, channels, kernel_size=1)

    def forward(self, x):
        return self.shortcut(x) + self.block(x)


class Generator(nn.Module):
    """log10 mel (B, F=64, T) -> waveform (B, 1, T * 160) in [-1, 1].

    Fully convolutional (any T >= 4; reflection padding needs a few frames). Channels for the default
    config: 512 -> 256 (x5) -> 128 (x4) -> 64 (x4) -> 32 (x2) -> 1.
    """

    def __init__(self, cfg: MelGANConfig = MelGANConfig()):
        super().__init__()
        ch = cfg.g_channels
        layers = [nn.ReflectionPad1d(3), wn_conv(cfg.n_mels, ch, kernel_size=7)]     # (B, 512, T)
        for r in cfg.ratios:
            pad, out_pad = upsample_padding(r)
            layers += [nn.LeakyReLU(LRELU_SLOPE),
                       weight_norm(nn.ConvTranspose1d(ch, ch // 2, kernel_size=2 * r, stride=r,
                                                      padding=pad, output_padding=out_pad))]  # (B, ch/2, L r)
            ch //= 2
            layers += [ResBlock(ch, d) for d in cfg.dilations]
        layers += [nn.LeakyReLU(LRELU_SLOPE), nn.ReflectionPad1d(3),
                   wn_conv(ch, 1, kernel_size=7), nn.Tanh()]                          # (B, 1, T * 160)
        self.net = nn.Sequential(*layers)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.net(mel)


# ---------------------------------------------------------------------------------------------
# Discriminator
# ---------------------------------------------------------------------------------------------
class ScaleDiscriminator(nn.Module):
    """One scale of MelGAN's discriminator: waveform (B, 1, N) -> [7 maps]; the last is the logits.

    15-tap conv (16 ch) - 4 grouped strided convs (kernel 41, stride 4; 64, 256, 1024, 1024 ch with
    groups 4, 16, 64, 256) - 5-tap conv (1024 ch) - 3-tap conv to 1 logit per position. The logits are
    a sequence (B, 1, ~N/256): a patch discriminator over audio windows, not one score per clip.
    """

    def __init__(self, cfg: MelGANConfig):
        super().__init__()
        layers = [nn.Sequential(nn.ReflectionPad1d(7), wn_conv(1, cfg.d_channels, kernel_size=15),
                                nn.LeakyReLU(LRELU_SLOPE))]
        ch = cfg.d_channels
        for _ in range(D_N_DOWN):
            out = min(ch * D_DOWNSAMPLE, cfg.d_max_channels)
            layers.append(nn.Sequential(
                wn_conv(ch, out, kernel_size=10 * D_DOWNSAMPLE + 1, stride=D_DOWNSAMPLE,
                        padding=5 * D_DOWNSAMPLE, groups=ch // D_IN_PER_GROUP),
                nn.LeakyReLU(LRELU_SLOPE)))
            ch = out
        out = min(ch * 2, cfg.d_max_channels)
        layers.append(nn.Sequential(wn_conv(ch, out, kernel_size=5, padding=2), nn.LeakyReLU(LRELU_SLOPE)))
        layers.append(wn_conv(out, 1, kernel_size=3, padding=1))
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for layer in self.layers:
            x = layer(x)
            feats.append(x)
        return feats


class Discriminator(nn.Module):
    """Multi-scale discriminator: waveform (B, 1, N) -> D_SCALES lists of feature maps (logits last).

    Scale k sees the audio average-pooled k times by 2 (AvgPool1d(4, 2, padding=1), not counting the
    padding, as MelGAN), so the coarser scales judge longer structure with the same architecture."""

    def __init__(self, cfg: MelGANConfig = MelGANConfig()):
        super().__init__()
        self.scales = nn.ModuleList(ScaleDiscriminator(cfg) for _ in range(cfg.d_scales))
        self.pool = nn.AvgPool1d(4, stride=2, padding=1, count_include_pad=False)

    def forward(self, audio: torch.Tensor) -> list[list[torch.Tensor]]:
        out = []
        for i, d in enumerate(self.scales):
            if i > 0:
                audio = self.pool(audio)                                              # (B, 1, N / 2^i)
            out.append(d(audio))
        return out


# ---------------------------------------------------------------------------------------------
# Losses: small pure functions (docs/design.md §6).
# ---------------------------------------------------------------------------------------------
def d_hinge(real: list[list[torch.Tensor]], fake: list[list[torch.Tensor]]) -> torch.Tensor:
    """Discriminator: push each scale's real logits above +1 and fake logits below -1, summed over scales."""
    return sum(F.relu(1 - r[-1]).mean() + F.relu(1 + f[-1]).mean() for r, f in zip(real, fake))


def g_hinge(fake: list[list[torch.Tensor]]) -> torch.Tensor:
    """Generator, adversarial part: raise every scale's fake logits."""
    return sum(-f[-1].mean() for f in fake)


def feature_matching(real: list[list[torch.Tensor]], fake: list[list[torch.Tensor]]) -> torch.Tensor:
    """L1 distance between the discriminator's feature maps (all but the logits) for real and fake audio.

    Weighted as MelGAN's code does (its paper gives only the overall lambda = 10): 1 / n_scales per scale
    and 4 / (n_down + 1) per layer, so the total stays comparable whatever the number of layers.
    Real features are detached: the generator chases them, it does not move them."""
    w = (1.0 / len(real)) * (4.0 / (D_N_DOWN + 1))
    return sum(w * F.l1_loss(f_map, r_map.detach())
               for r, f in zip(real, fake) for r_map, f_map in zip(r[:-1], f[:-1]))


# ---------------------------------------------------------------------------------------------
# Griffin-Lim fallback. Our STFT is the front end's: reflect pad 432 each side, then frames of 1024
# every 160 samples with center=False. Both the padding and its adjoint are written as one index map
# over the padded signal, so the least-squares inverse STFT folds the padded edges back onto the
# samples they copy, and frame t stays on samples [160 t, 160 t + 160).
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
    increase the squared error (a zero entry could never grow again, hence the positive start)."""
    basis = torch.from_numpy(mel_filterbank()).to(mel_lin.device)                    # (64, 513)
    s = (torch.linalg.pinv(basis) @ mel_lin).clamp_min(0) + 1e-6 * mel_lin.mean()    # (B, 513, T)
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
    x, as_numpy, batched = _mel_batch(mel, "griffin_lim(mel)")
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
    return _audio_out(audio, as_numpy, batched)


# ---------------------------------------------------------------------------------------------
# Input/output handling shared by the vocoders.
# ---------------------------------------------------------------------------------------------
def _mel_batch(mel, what: str) -> tuple[torch.Tensor, bool, bool]:
    """numpy/torch (64, T) or (B, 64, T) -> float32 torch (B, 64, T), was-numpy, was-batched."""
    as_numpy = not isinstance(mel, torch.Tensor)
    x = torch.as_tensor(np.asarray(mel, dtype=np.float32)) if as_numpy else mel.detach().float()
    batched = x.dim() == 3
    if x.dim() not in (2, 3) or x.shape[-2] != N_MELS or x.shape[-1] < 4:
        raise ValueError(f"{what}: expected a log10 mel of shape ({N_MELS}, T) or (B, {N_MELS}, T) with "
                         f"T >= 4 frames (F before T, as preprocess.log_mel), got {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{what}: the mel contains NaN or inf")
    return (x if batched else x[None]), as_numpy, batched


def _audio_out(audio: torch.Tensor, as_numpy: bool, batched: bool):
    audio = audio if batched else audio[0]
    return audio.cpu().numpy().astype(np.float32) if as_numpy else audio


# ---------------------------------------------------------------------------------------------
# Vocoders: what sample.py and the evaluation call.
# ---------------------------------------------------------------------------------------------
class Vocoder:
    """log10 mel -> audio. `name` says which vocoder made a file ("melgan:<path>" or "griffin-lim");
    callers write it into their outputs. Calling it: (64, T) -> (T*160,), (B, 64, T) -> (B, T*160);
    numpy in -> numpy float32 out, torch in -> torch out on the input's device."""
    name: str = "?"

    def __call__(self, mel):
        raise NotImplementedError


class GriffinLimVocoder(Vocoder):
    name = "griffin-lim"

    def __init__(self, n_iter: int = GL_ITERS, circular: bool = True):
        self.n_iter, self.circular = n_iter, circular

    def __call__(self, mel):
        return griffin_lim(mel, n_iter=self.n_iter, circular=self.circular)


class MelGANVocoder(Vocoder):
    """A trained MelGAN generator. With `circular=True` (default) each mel is treated as one period of a
    loop: CONTEXT_FRAMES frames from its other end are wrapped around both sides, the longer mel is
    vocoded and the middle T * 160 samples are kept, so the audio repeats seamlessly (the generator is
    frame-aligned, so the crop is sample-exact)."""

    def __init__(self, generator: Generator, name: str, device: str | torch.device | None = None,
                 circular: bool = True, batch: int = 16):
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.generator = generator.to(self.device).eval().requires_grad_(False)
        self.name, self.circular, self.batch = name, circular, batch

    @torch.no_grad()
    def __call__(self, mel):
        x, as_numpy, batched = _mel_batch(mel, f"{self.name} vocoder input")
        in_device = x.device
        c = CONTEXT_FRAMES if self.circular else 0
        if c:
            reps = math.ceil(c / x.shape[-1])                                         # short mels wrap more
            tiled = x.repeat(1, 1, 2 * reps + 1)                                      # (B, 64, (2 reps + 1) T)
            start = reps * x.shape[-1] - c
            x = tiled[..., start:start + x.shape[-1] + 2 * c]                         # (B, 64, c + T + c)
        out = torch.cat([self.generator(chunk.to(self.device))[:, 0]                  # (b, (T + 2c) * 160)
                         for chunk in x.split(self.batch)])
        if c:
            out = out[:, c * HOP: out.shape[-1] - c * HOP]                            # (B, T * 160)
        return _audio_out(out.to(in_device), as_numpy, batched)


MELGAN_KEYS = ("kind", "G", "config")


def load_generator(path: str | Path, map_location="cpu") -> Generator:
    """The generator of a checkpoint written by `python melgan.py` (clear CheckpointError otherwise)."""
    ckpt = load_checkpoint(path, map_location=map_location, required=MELGAN_KEYS)
    if ckpt["kind"] != "melgan":
        raise CheckpointError(f"{path} is a '{ckpt['kind']}' checkpoint, not a MelGAN vocoder")
    g = Generator(MelGANConfig(**ckpt["config"]))
    try:
        g.load_state_dict(ckpt["G"])
    except RuntimeError as e:
        raise CheckpointError(f"{path}: generator weights do not fit its config ({e})") from e
    return g


def load_vocoder(path: str | Path | None = None, loops: str | None = None,
                 device: str | torch.device | None = None) -> Vocoder:
    """A MelGAN vocoder from `path`; with no path, from checkpoints/melgan_<loops>.pt if it exists;
    otherwise the Griffin-Lim fallback, announced on stderr (its audio quality is limited).

    A path that is given but missing or unreadable is an error (CheckpointError), never a silent fallback."""
    if path is None and loops is not None and default_checkpoint(loops).is_file():
        path = default_checkpoint(loops)
    if path is not None:
        return MelGANVocoder(load_generator(path), name=f"melgan:{path}", device=device)
    how = f"python melgan.py --loops {loops or 'drum'}"
    print(f"melgan: no MelGAN checkpoint{f' at {default_checkpoint(loops)}' if loops else ''}; using the "
          f"Griffin-Lim fallback, whose audio quality is limited (phasey, metallic). Train a vocoder with "
          f"`{how}` (hundreds of thousands of steps on a GPU for top quality).", file=sys.stderr)
    return GriffinLimVocoder()


_fallback: Vocoder | None = None


def vocode(mel, vocoder: Vocoder | None = None):
    """log10 mel (64, T) or (B, 64, T), numpy or torch -> audio (T*160,) or (B, T*160), same kind.
    A 200-frame loop gives exactly 32 000 samples. Without a vocoder: Griffin-Lim (warned once)."""
    global _fallback
    if vocoder is None:
        _fallback = _fallback or load_vocoder(None)
        vocoder = _fallback
    return vocoder(mel)


# ---------------------------------------------------------------------------------------------
# Training (python melgan.py ...).
# ---------------------------------------------------------------------------------------------
@dataclass
class TrainConfig:
    """What a run was asked to do (stored in the checkpoint for the record; the architecture is `model`)."""
    loops: str = "drum"
    data: str = ""
    batch: int = BATCH
    segment: int = SEGMENT
    lr: float = LR
    betas: tuple = BETAS
    lambda_fm: float = LAMBDA_FM
    seed: int = 0
    model: MelGANConfig = field(default_factory=MelGANConfig)


def load_loop_audio(data_dir: str | Path) -> torch.Tensor:
    """Every loop of a data set (manifest.csv + wav/<id>.wav) as one (N, 32000) float tensor."""
    import soundfile as sf
    data_dir = Path(data_dir)
    rows = read_csv(data_dir / "manifest.csv")
    if not rows:
        raise FileNotFoundError(f"{data_dir} has no manifest.csv listing loops: run preprocess.py or "
                                "demoloops.py first, or pass --data")
    loops = []
    for r in rows:
        wav = data_dir / "wav" / f"{r['id']}.wav"
        audio, sr = sf.read(wav, dtype="float32", always_2d=False)
        if sr != SR or audio.shape != (LOOP_SAMPLES,):
            raise ValueError(f"{wav}: expected {LOOP_SAMPLES} mono samples at {SR} Hz, got {audio.shape} at {sr} Hz")
        loops.append(audio)
    return torch.from_numpy(np.stack(loops))                                          # (N, 32000)


def random_segments(loops: torch.Tensor, batch: int, segment: int, gen: torch.Generator) -> torch.Tensor:
    """(N, 32000) loops -> (batch, segment) random windows. Loops are periodic, so a window may run off
    the end and continue at the start (a wrap is just more of the loop): every offset is equally likely."""
    n, length = loops.shape
    which = torch.randint(n, (batch,), generator=gen)                                 # (batch,)
    start = torch.randint(length, (batch,), generator=gen)                            # (batch,)
    idx = (start[:, None] + torch.arange(segment)[None]) % length                      # (batch, segment)
    return loops[which[:, None], idx]                                                 # (batch, segment)


class Trainer:
    """G, D, their Adam optimisers and the step count: everything a checkpoint holds."""

    def __init__(self, cfg: TrainConfig, device: torch.device):
        self.cfg, self.device = cfg, device
        self.G = Generator(cfg.model).to(device)
        self.D = Discriminator(cfg.model).to(device)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=cfg.lr, betas=tuple(cfg.betas))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=cfg.lr, betas=tuple(cfg.betas))
        self.step = 0

    def train_step(self, audio: torch.Tensor) -> dict[str, float]:
        """One D update then one G update on real audio (B, segment). Returns the losses as floats;
        raises FloatingPointError (before touching the weights) if any loss is not finite."""
        real = audio.to(self.device)[:, None]                                         # (B, 1, N)
        mel = log_mel(real[:, 0])                                                     # (B, 64, N / 160)
        fake = self.G(mel)                                                            # (B, 1, N)

        d_real = self.D(real)
        loss_d = d_hinge(d_real, self.D(fake.detach()))
        if not torch.isfinite(loss_d):
            raise FloatingPointError(f"discriminator loss is {loss_d.item()} at step {self.step}")
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()

        # G step. The real features for matching are the ones computed before D's update (as MelGAN's
        # code): a one-step-stale target that saves a second D pass on real audio.
        d_fake = self.D(fake)
        loss_adv = g_hinge(d_fake)
        loss_fm = feature_matching(d_real, d_fake)
        loss_g = loss_adv + self.cfg.lambda_fm * loss_fm
        if not torch.isfinite(loss_g):
            raise FloatingPointError(f"generator loss is {loss_g.item()} at step {self.step}")
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        self.step += 1
        with torch.no_grad():   # monitoring only, as MelGAN's "mel reconstruction error"
            mel_l1 = F.l1_loss(log_mel(fake.detach()[:, 0]), mel).item()
        return {"d": loss_d.item(), "g_adv": loss_adv.item(), "fm": loss_fm.item(), "mel_l1": mel_l1}

    def state(self) -> dict:
        return {"kind": "melgan", "G": self.G.state_dict(), "D": self.D.state_dict(),
                "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
                "step": self.step, "config": asdict(self.cfg.model), "train": asdict(self.cfg)}

    def save(self, path: str | Path) -> None:
        save_checkpoint(self.state(), path)

    @classmethod
    def resume(cls, path: str | Path, cfg: TrainConfig, device: torch.device) -> "Trainer":
        """Rebuild from a checkpoint. The architecture comes from the checkpoint (the CLI cannot change
        it); batch and segment come from `cfg` (they do not change the weights' shapes)."""
        ckpt = load_checkpoint(path, map_location=device,
                               required=MELGAN_KEYS + ("D", "opt_g", "opt_d", "step"))
        if ckpt["kind"] != "melgan":
            raise CheckpointError(f"{path} is a '{ckpt['kind']}' checkpoint, not a MelGAN training checkpoint")
        cfg.model = MelGANConfig(**ckpt["config"])
        t = cls(cfg, device)
        try:
            t.G.load_state_dict(ckpt["G"])
            t.D.load_state_dict(ckpt["D"])
            t.opt_g.load_state_dict(ckpt["opt_g"])
            t.opt_d.load_state_dict(ckpt["opt_d"])
        except (RuntimeError, ValueError, KeyError) as e:
            raise CheckpointError(f"{path}: saved weights do not fit its own config ({e})") from e
        t.step = int(ckpt["step"])
        return t


def resolve_data(loops: str, data: str | None) -> Path:
    """--data if given, else the embedded demo set (built on first use by demoloops.py)."""
    if data:
        return Path(data)
    try:
        import demoloops
    except ImportError as e:
        raise SystemExit(f"melgan.py: no --data given and the demo set builder is unavailable ({e}); "
                         "pass --data DIR (a data set written by preprocess.py)") from e
    return Path(demoloops.ensure_demo_set(loops))


def train(cfg: TrainConfig, out: Path, steps: int | None, minutes: float | None, resume: bool,
          save_every: int = SAVE_EVERY, device: str | None = None, progress: bool = True) -> Trainer:
    """Train until `steps` (a total, so a resumed run continues to it) or `minutes` of wall time run out,
    whichever comes first; checkpoint every `save_every` steps, at the end, and on Ctrl-C."""
    from tqdm import tqdm
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if cfg.segment % HOP or cfg.segment < 4 * HOP:
        raise ValueError(f"--segment {cfg.segment}: must be a multiple of the hop {HOP} and >= {4 * HOP} "
                         f"(e.g. {SEGMENT}) so that mel frames and samples line up")
    loops = load_loop_audio(cfg.data).to(dev)                                         # (N, 32000)
    if resume and out.is_file():
        trainer = Trainer.resume(out, cfg, dev)
        print(f"melgan: resumed {out} at step {trainer.step}")
    else:
        if out.is_file() and not resume:
            raise SystemExit(f"melgan.py: {out} exists; pass --resume to continue it or choose another --out")
        if resume:
            print(f"melgan: --resume but no checkpoint at {out}; starting from scratch")
        torch.manual_seed(cfg.seed)
        trainer = Trainer(cfg, dev)
    gen = torch.Generator().manual_seed(cfg.seed * SEED_STRIDE + trainer.step)       # new batches after a resume
    deadline = time.monotonic() + 60 * minutes if minutes else math.inf
    target = steps if steps is not None else (math.inf if minutes else trainer.step + 1000)
    print(f"melgan: {len(loops)} loops from {cfg.data} on {dev}; batch {cfg.batch} x {cfg.segment} samples; "
          f"{'until step ' + str(target) if target < math.inf else ''}"
          f"{' within ' + str(minutes) + ' min' if minutes else ''} -> {out}")
    bar = tqdm(initial=trainer.step, total=None if target == math.inf else target, disable=not progress,
               unit="step", dynamic_ncols=True)
    last_saved = trainer.step
    stop = StopRequest()
    try:
        while trainer.step < target and time.monotonic() < deadline and not stop.requested:
            batch = random_segments(loops, cfg.batch, cfg.segment, gen)                # (B, segment)
            try:
                losses = trainer.train_step(batch)
            except FloatingPointError as e:
                raise SystemExit(f"melgan.py: stopped: {e}. Nothing was saved after it; the last good "
                                 f"checkpoint is {out if out.is_file() else '(none saved yet)'}. Try a lower "
                                 "--lr or resume from it.") from e
            bar.update(1)
            bar.set_postfix({k: f"{v:.3f}" for k, v in losses.items()})
            if trainer.step % save_every == 0:
                trainer.save(out)
                last_saved = trainer.step
    finally:
        bar.close()
        stop.restore()
    if trainer.step != last_saved or not out.is_file():
        trainer.save(out)
    if stop.requested:
        print(f"\nmelgan: interrupted; saved step {trainer.step} to {out} (continue with --resume)")
        return trainer
    print(f"melgan: saved step {trainer.step} to {out}")
    return trainer


def main(argv=None):
    p = argparse.ArgumentParser(description="Train the MelGAN vocoder on a loop data set (docs/design.md §6).")
    p.add_argument("--loops", required=True, help="drum or synth: names the demo set and the checkpoint")
    p.add_argument("--data", help="data set directory (preprocess.py layout); default: the embedded demo set")
    p.add_argument("--steps", type=int, help="train until this total step count (default: 1000 more, "
                   "or unlimited with --minutes)")
    p.add_argument("--minutes", type=float, help="stop after this many minutes of wall time")
    p.add_argument("--batch", type=int, default=BATCH)
    p.add_argument("--segment", type=int, default=SEGMENT,
                   help=f"samples per training segment; a multiple of {HOP} (default {SEGMENT} = 0.5 s)")
    p.add_argument("--lr", type=float, default=LR)
    p.add_argument("--out", type=Path, help="checkpoint (default checkpoints/melgan_<loops>.pt)")
    p.add_argument("--resume", action="store_true", help="continue from --out")
    p.add_argument("--save-every", type=int, default=SAVE_EVERY)
    p.add_argument("--g-channels", type=int, default=G_CHANNELS, help="generator width (512 = MelGAN)")
    p.add_argument("--d-max-channels", type=int, default=D_MAX_CHANNELS, help="discriminator width cap")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", help="cpu or cuda (default: cuda if available)")
    p.add_argument("--threads", type=int, help="CPU threads for torch")
    a = p.parse_args(argv)
    for name in ("steps", "batch", "save_every", "threads"):
        v = getattr(a, name)
        if v is not None and v < (0 if name == "steps" else 1):
            p.error(f"--{name.replace('_', '-')} must be positive, got {v}")
    if a.threads:
        torch.set_num_threads(a.threads)
    try:
        model = MelGANConfig(g_channels=a.g_channels, d_max_channels=a.d_max_channels)
    except ValueError as e:
        p.error(str(e))
    out = a.out or default_checkpoint(a.loops)
    data = resolve_data(a.loops, a.data)
    cfg = TrainConfig(loops=a.loops, data=str(data), batch=a.batch, segment=a.segment, lr=a.lr,
                      seed=a.seed, model=model)
    try:
        train(cfg, out, a.steps, a.minutes, a.resume, a.save_every, a.device)
    except (CheckpointError, FileNotFoundError, ValueError) as e:
        raise SystemExit(f"melgan.py: {e}") from e


if __name__ == "__main__":
    main()
