"""MelGAN, the paper's vocoder (Section 4, "Pipeline"; docs/design.md §6; Kumar et al. 2019), and the vocoder
interface every vocoder shares, log10 mel -> 16 kHz audio (docs/vocoder.md).

    MelGANGenerator / MelGANDiscriminator   (B, F=64, T) -> (B, 1, T * 160) / audio -> 3 scales of maps
    load_vocoder    a train_melgan.py checkpoint (MelGAN or the fast vocoder, vocos.py), "griffin-lim", or None:
                    the data set's vocoder (`default_checkpoint`), else Griffin-Lim (announced);
                    one-line CheckpointError for another mel front end, sample rate or kind of loops
    Vocoder(mel)    log10 mel (64, T) or (B, 64, T), numpy or torch -> T * 160 samples per loop, same kind
Input: the RAW log10 mel of mel.log_mel, not the GAN's standardised one (mel.from_gan converts). Frame t covers
samples [160 t, 160 t + 160) in every vocoder, so a 200-frame loop gives exactly 32 000 samples and circular
vocoding (the loop's own frames wrapped around it) crops sample-exactly: the loops repeat seamlessly.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from dataset import default_data_dir, manifest_hash
from griffinlim import GL_ITERS, audio_out, griffin_lim, mel_batch
from mel import F_MAX, F_MIN, HOP, LOG_FLOOR, N_FFT, N_MELS, SR
from plumbing import paths
from plumbing.checkpoint import CheckpointError, load_checkpoint
from plumbing.devices import default_device
from vocos import VocosConfig, VocosGenerator

# ---------------------------------------------------------------------------------------------
# The numbers of MelGAN's networks (Kumar et al. 2019; docs/design.md §6), named once.
# ---------------------------------------------------------------------------------------------
UPSAMPLE_RATIOS = (5, 4, 4, 2)   # product = 160 = HOP: one mel frame -> one hop of samples.
#                                  (MelGAN's 8, 8, 2, 2 makes its 256-sample hop; ours is 160.)
G_CHANNELS = 512                 # width after the first 7-tap conv; halves at every upsampling
RES_DILATIONS = (1, 3, 9)        # the 3 residual blocks after each upsampling: receptive field grows x3
MELGAN_LRELU_SLOPE = 0.2         # MelGAN's LeakyReLU slope (generator and discriminator)
D_SCALES = 3                     # raw audio, x1/2, x1/4: each scale its own discriminator
MELGAN_D_CHANNELS = 16           # width of the first 15-tap conv of each scale's discriminator
MELGAN_D_MAX_CHANNELS = 1024     # the grouped strided convs grow x4 per layer up to this cap
D_DOWNSAMPLE = 4                 # stride of the grouped convs (kernel 10 x stride + 1 = 41)
D_N_DOWN = 4                     # 4 grouped strided convs: groups 4, 16, 64, 256 at full width
D_IN_PER_GROUP = 4               # groups = in_channels / 4, as MelGAN's code (cheap, wide convs)
CONTEXT_FRAMES = 16              # circular vocoding: wrap this many frames of the loop around each end;
#                                  twice the generator's receptive field (+-8 frames, tested)
VOCODE_BATCH = 16                # mels per generator call when vocoding
MELGAN_KEYS = ("kind", "G", "config")   # what every vocoder checkpoint holds (MelGAN's or the fast one's)


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
    d_channels: int = MELGAN_D_CHANNELS
    d_max_channels: int = MELGAN_D_MAX_CHANNELS

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


class MelGANResBlock(nn.Module):
    """MelGAN residual block: LReLU - dilated 3-tap conv (reflect-padded) - LReLU - 1x1 conv, plus a
    1x1-conv shortcut. Length-preserving: (B, C, L) -> (B, C, L)."""

    def __init__(self, channels: int, dilation: int):
        super().__init__()
        self.block = nn.Sequential(
            nn.LeakyReLU(MELGAN_LRELU_SLOPE),
            nn.ReflectionPad1d(dilation),
            wn_conv(channels, channels, kernel_size=3, dilation=dilation),
            nn.LeakyReLU(MELGAN_LRELU_SLOPE),
            wn_conv(channels, channels, kernel_size=1))
        self.shortcut = wn_conv(channels, channels, kernel_size=1)

    def forward(self, x):
        return self.shortcut(x) + self.block(x)


class MelGANGenerator(nn.Module):
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
            layers += [nn.LeakyReLU(MELGAN_LRELU_SLOPE),
                       weight_norm(nn.ConvTranspose1d(ch, ch // 2, kernel_size=2 * r, stride=r,
                                                      padding=pad, output_padding=out_pad))]  # (B, ch/2, L r)
            ch //= 2
            layers += [MelGANResBlock(ch, d) for d in cfg.dilations]
        layers += [nn.LeakyReLU(MELGAN_LRELU_SLOPE), nn.ReflectionPad1d(3),
                   wn_conv(ch, 1, kernel_size=7), nn.Tanh()]                          # (B, 1, T * 160)
        self.net = nn.Sequential(*layers)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.net(mel)


# ---------------------------------------------------------------------------------------------
# Discriminator (used only in training, train_melgan.py)
# ---------------------------------------------------------------------------------------------
class MelGANScaleDiscriminator(nn.Module):
    """One scale of MelGAN's discriminator: waveform (B, 1, N) -> [7 maps]; the last is the logits.

    15-tap conv (16 ch) - 4 grouped strided convs (kernel 41, stride 4; 64, 256, 1024, 1024 ch with
    groups 4, 16, 64, 256) - 5-tap conv (1024 ch) - 3-tap conv to 1 logit per position. The logits are
    a sequence (B, 1, ~N/256): a patch discriminator over audio windows, not one score per clip.
    """

    def __init__(self, cfg: MelGANConfig):
        super().__init__()
        layers = [nn.Sequential(nn.ReflectionPad1d(7), wn_conv(1, cfg.d_channels, kernel_size=15),
                                nn.LeakyReLU(MELGAN_LRELU_SLOPE))]
        ch = cfg.d_channels
        for _ in range(D_N_DOWN):
            out = min(ch * D_DOWNSAMPLE, cfg.d_max_channels)
            layers.append(nn.Sequential(
                wn_conv(ch, out, kernel_size=10 * D_DOWNSAMPLE + 1, stride=D_DOWNSAMPLE,
                        padding=5 * D_DOWNSAMPLE, groups=ch // D_IN_PER_GROUP),
                nn.LeakyReLU(MELGAN_LRELU_SLOPE)))
            ch = out
        out = min(ch * 2, cfg.d_max_channels)
        layers.append(nn.Sequential(wn_conv(ch, out, kernel_size=5, padding=2), nn.LeakyReLU(MELGAN_LRELU_SLOPE)))
        layers.append(wn_conv(out, 1, kernel_size=3, padding=1))
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for layer in self.layers:
            x = layer(x)
            feats.append(x)
        return feats


class MelGANDiscriminator(nn.Module):
    """Multi-scale discriminator: waveform (B, 1, N) -> D_SCALES lists of feature maps (logits last).

    Scale k sees the audio average-pooled k times by 2 (AvgPool1d(4, 2, padding=1), not counting the
    padding, as MelGAN), so the coarser scales judge longer structure with the same architecture."""

    def __init__(self, cfg: MelGANConfig = MelGANConfig()):
        super().__init__()
        self.scales = nn.ModuleList(MelGANScaleDiscriminator(cfg) for _ in range(cfg.d_scales))
        self.pool = nn.AvgPool1d(4, stride=2, padding=1, count_include_pad=False)

    def forward(self, audio: torch.Tensor) -> list[list[torch.Tensor]]:
        out = []
        for i, d in enumerate(self.scales):
            if i > 0:
                audio = self.pool(audio)                                              # (B, 1, N / 2^i)
            out.append(d(audio))
        return out


def scale_logits(outputs: list[list[torch.Tensor]]) -> list[torch.Tensor]:
    """The discriminator's per-scale outputs -> one logits tensor (B, 1, ~N/256) per scale (the last map
    of each), the list-of-heads layout of losses.d_hinge / losses.g_hinge."""
    return [maps[-1] for maps in outputs]


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
    """A trained generator (MelGAN's or the fast vocoder's: any frame-aligned mel -> (B, 1, T*160) module).
    With `circular=True` (default) each mel is treated as one period of a loop: `context` frames from its
    other end are wrapped around both sides (default: the generator's `context_frames`, else CONTEXT_FRAMES),
    the longer mel is vocoded and the middle T * 160 samples are kept, so the audio repeats seamlessly (the
    generators are frame-aligned, so the crop is sample-exact)."""

    def __init__(self, generator: nn.Module, name: str, device: str | torch.device | None = None,
                 circular: bool = True, batch: int = VOCODE_BATCH, context: int | None = None):
        self.device = torch.device(device or default_device())
        self.generator = generator.to(self.device).eval().requires_grad_(False)
        self.name, self.circular, self.batch = name, circular, batch
        self.context = context if context is not None else getattr(generator, "context_frames", CONTEXT_FRAMES)

    @torch.no_grad()
    def __call__(self, mel):
        x, as_numpy, batched = mel_batch(mel, f"{self.name} vocoder input")
        in_device = x.device
        c = self.context if self.circular else 0
        if c:
            reps = math.ceil(c / x.shape[-1])                                         # short mels wrap more
            tiled = x.repeat(1, 1, 2 * reps + 1)                                      # (B, 64, (2 reps + 1) T)
            start = reps * x.shape[-1] - c
            x = tiled[..., start:start + x.shape[-1] + 2 * c]                         # (B, 64, c + T + c)
        out = torch.cat([self.generator(chunk.to(self.device))[:, 0]                  # (b, (T + 2c) * 160)
                         for chunk in x.split(self.batch)])
        if c:
            out = out[:, c * HOP: out.shape[-1] - c * HOP]                            # (B, T * 160)
        return audio_out(out.to(in_device), as_numpy, batched)


# ---------------------------------------------------------------------------------------------
# Vocoder checkpoints: written by train_melgan.py, refused with one line when they do not fit.
# ---------------------------------------------------------------------------------------------
def frontend() -> dict:
    """The mel front end a vocoder is trained for (stored in its checkpoint; mel.py's numbers)."""
    return {"sr": SR, "n_fft": N_FFT, "hop": HOP, "n_mels": N_MELS, "fmin": F_MIN, "fmax": F_MAX,
            "log_floor": LOG_FLOOR}


def check_frontend(ckpt: dict, path) -> None:
    """CheckpointError (one line) if the checkpoint was made for another front end or sample rate.
    Checkpoints from before the front end was stored are taken as made for this one."""
    saved = ckpt.get("frontend")
    if saved is None:
        return
    diff = {k: (saved.get(k), v) for k, v in frontend().items() if saved.get(k) != v}
    if diff:
        what = "sample rate" if "sr" in diff else "mel front end"
        raise CheckpointError(f"{path} is a vocoder for another {what} ("
                              + ", ".join(f"{k} {a} here {b}" for k, (a, b) in diff.items())
                              + "): retrain it with train_melgan.py")


def checkpoint_arch(ckpt: dict, path) -> str:
    """'melgan' or 'fast'; CheckpointError for anything that is not a vocoder checkpoint."""
    kind = ckpt.get("kind")
    if kind == "melgan":                     # written before the fast vocoder existed
        return "melgan"
    if kind != "vocoder" or ckpt.get("arch") not in GENERATORS:
        raise CheckpointError(f"{path} is a '{kind}' checkpoint, not a vocoder (train one with train_melgan.py)")
    return ckpt["arch"]


GENERATORS = {"melgan": (MelGANGenerator, MelGANConfig), "fast": (VocosGenerator, VocosConfig)}


def default_checkpoint(loops: str, data_dir: str | Path | None = None) -> Path:
    """Where `python train_melgan.py --loops X [--data D]` writes and `load_vocoder(None, loops=X, data_dir=D)`
    looks, whatever the current directory: <$PJLOOP_HOME>/checkpoints/vocoder_<loops>_<data set folder>_<the
    manifest's fingerprint>.pt. The fingerprint (dataset.manifest_hash) keeps two sets in folders of the same
    name from sharing a vocoder. FileNotFoundError when D (default: the `loops` demo set) has no manifest."""
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir(loops)
    return paths.checkpoints() / f"vocoder_{loops}_{data_dir.resolve().name}_{manifest_hash(data_dir)}.pt"


def trained_default(loops: str, data_dir: str | Path | None = None) -> Path | None:
    """The data set's default vocoder (`default_checkpoint`) if one has been trained, else None."""
    try:
        path = default_checkpoint(loops, data_dir)
    except FileNotFoundError:             # no such data set (yet): so no vocoder trained on it either
        return None
    return path if path.is_file() else None


def load_generator(path: str | Path, loops: str | None = None, map_location="cpu") -> tuple[nn.Module, str]:
    """(generator, arch) of a checkpoint written by train_melgan.py (or one of its snapshots). One-line
    CheckpointError for anything else, another front end or sample rate, or (given `loops`) another kind."""
    ckpt = load_checkpoint(path, map_location=map_location, required=MELGAN_KEYS)
    arch = checkpoint_arch(ckpt, path)
    check_frontend(ckpt, path)
    if loops is not None and ckpt.get("loops", loops) != loops:
        raise CheckpointError(f"{path} is a vocoder for {ckpt['loops']} loops, not {loops} loops: train one "
                              f"with `python train_melgan.py --loops {loops}`")
    net, config = GENERATORS[arch]
    try:
        g = net(config(**ckpt["config"]))
        g.load_state_dict(ckpt["G"])
    except (RuntimeError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: generator weights do not fit its config ({str(e).splitlines()[0]})") from e
    return g, arch


def load_vocoder(path: str | Path | None = None, loops: str | None = None,
                 device: str | torch.device | None = None, data_dir: str | Path | None = None) -> Vocoder:
    """A trained vocoder from `path`; with no path, the data set's default checkpoint (`default_checkpoint`,
    the demo set of `loops` when no data_dir) if it exists; otherwise the Griffin-Lim fallback, announced on
    stderr (its audio quality is limited). A path that is given but missing, unreadable, for another front
    end, sample rate or kind of loops is an error (one-line CheckpointError), never a silent fallback."""
    if str(path) == GriffinLimVocoder.name:                  # asked for by name (sample.py --vocoder griffin-lim)
        return GriffinLimVocoder()
    if path is None and loops is not None:
        path = trained_default(loops, data_dir)
    if path is not None:
        g, arch = load_generator(path, loops)
        return MelGANVocoder(g, name=f"{arch}:{path}", device=device)
    how = f"python train_melgan.py --loops {loops or 'drum'}"
    where = f" for {data_dir or default_data_dir(loops)}" if loops else ""
    print(f"melgan: no trained vocoder{where}; using the "
          f"Griffin-Lim fallback, whose audio quality is limited (phasey, metallic). Train a vocoder with "
          f"`{how}` (minutes on a CPU with the fast vocoder).", file=sys.stderr)
    return GriffinLimVocoder()
