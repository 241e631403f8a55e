"""StyleGAN2 generator for one-bar log-mel loops (paper Section 4 "Improving the generator" and
"Pipeline"; docs/design.md §5; Karras et al. 2020), pure PyTorch.

    z (B, z_dim=32) --mapping G_m--> ws (B, num_ws=10, w_dim=64) --synthesis G_s--> mel (B, 1, T=200, F=64)

Mapping: pixel-norm, 6 FC layers (the paper: 6 instead of 8), lr multiplier 0.01; `w_avg` for truncation.
Synthesis: StyleGAN2's "skip" architecture with one output channel, const 13 x 4 -> 4 upsampling blocks ->
208 x 64, cropped to 200 frames (pjloop: the authors' 12 x 4 -> 192 frames). The output is the standardised
log-mel (per-band z-scores), no final activation. Also: the EMA helpers, `count_params`, `macs_per_sample`.
Genre conditioning (the paper's future work; StyleGAN2-ADA's conditional mapping): with `c_dim` > 0 the genre
is embedded to z_dim, z and the embedding are normalised and joined before the 6 layers; pjloop then adds a
learned per-genre offset to w (`genre_shift`); each genre keeps its own average w for truncation. Layer by
layer, with the ws index each layer reads: docs/modules.md.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from layers import BLUR_KERNEL, Blur, EqualLinear, Upsample, bias_leaky_relu

NOISE_MODES = ("random", "const", "none")
# What a checkpoint written before one of these keys existed was built with (train.py's flag of the same name)
BEFORE_KEY = {"genre_shift": False, "split": "all"}


@dataclass
class GeneratorConfig:
    """The paper's generator; every default is the paper's (or the authors' config) number."""
    z_dim: int = 32                 # paper §4: z = 512 collapsed, 32 works ("intrinsic dimension")
    w_dim: int = 64                 # paper §4: style code w "similarly" small
    n_mapping: int = 6              # paper §4: 6 fully connected layers instead of StyleGAN2's 8
    mapping_lr_mul: float = 0.01    # StyleGAN2: the mapping learns 100x slower than the synthesis
    const_size: tuple[int, int] = (13, 4)   # (pjloop) 13x4 -> 208x64, crop to 200; authors 12x4 -> 192x64
    n_upsample: int = 4             # paper "Pipeline": four upsampling blocks (x16 in both axes)
    channels: int = 512             # authors' config: 512 at every resolution (52.4 GMAC, 21.8 M params)
    max_channels: int | None = None # width cap for CPU runs (e.g. 64 or 128); None = `channels`
    style_mixing_prob: float = 0.9  # StyleGAN2 / authors: mixing regularisation probability
    out_frames: int = 200           # docs/design.md §1: 200 frames of 10 ms = exactly one 2.000 s bar
    n_mels: int = 64                # docs/design.md §1: 64 mel bands
    w_avg_beta: float = 0.995       # StyleGAN2: EMA of w used as the truncation centre
    blur_kernel: tuple[int, ...] = BLUR_KERNEL   # StyleGAN2's [1, 3, 3, 1] resampling filter
    c_dim: int = 0                  # number of genres; 0 = unconditional (the paper's model)
    genre_shift: bool = True        # (pjloop, not ADA) conditional: + a per-genre offset to w at full lr, a fast
                                    # path past the 0.01-lr mapping (docs/training.md)

    @property
    def width(self) -> int:
        """Channel count of every synthesis layer after the CPU cap."""
        return self.channels if self.max_channels is None else min(self.channels, self.max_channels)

    @property
    def num_ws(self) -> int:
        return 2 + 2 * self.n_upsample

    def validate(self) -> "GeneratorConfig":
        for name in ("z_dim", "w_dim", "n_mapping", "channels"):
            if getattr(self, name) < 1:
                raise ValueError(f"GeneratorConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.c_dim < 0:
            raise ValueError(f"GeneratorConfig.c_dim must be >= 0 (0 = unconditional), got {self.c_dim}")
        if self.max_channels is not None and self.max_channels < 1:
            raise ValueError(f"GeneratorConfig.max_channels must be >= 1 or None, got {self.max_channels}")
        if not 0.0 <= self.style_mixing_prob <= 1.0:
            raise ValueError(f"GeneratorConfig.style_mixing_prob must be in [0, 1], got {self.style_mixing_prob}")
        h, w = (s * 2 ** self.n_upsample for s in self.const_size)
        if w != self.n_mels:
            raise ValueError(f"GeneratorConfig: const_size {self.const_size} with {self.n_upsample} upsamplings "
                             f"gives {w} mel bands, but n_mels = {self.n_mels}")
        if not 0 < self.out_frames <= h:
            raise ValueError(f"GeneratorConfig: out_frames = {self.out_frames} must be in (0, {h}] "
                             f"(the synthesised {h} frames are cropped to it)")
        return self


# ------------------------------------------------------------------------------------------------
# Synthesis layers
# ------------------------------------------------------------------------------------------------

class ModulatedConv2d(nn.Module):
    """StyleGAN2's modulated convolution, optionally demodulated and/or upsampling by 2.

    Effective per-sample weight: w'_{b,o,i,k} = s_{b,i} * g * w_{o,i,k}, with s = affine(w) (initialised
    around 1) and g = 1/sqrt(fan_in); demodulation divides by sqrt(sum_{i,k} w'^2 + 1e-8) so every output
    channel's weight has unit L2 norm (its output keeps unit variance for unit-variance input).

    Implemented without the grouped "fused modconv": scale the input by s, convolve with the shared
    weight, scale the output by the demodulation coefficients. It is exactly the same linear map
    (StyleGAN2-ADA uses this form for training), needs only standard conv ops, and stays well conditioned
    under bf16 autocast (the coefficients are computed from float32 weights).

    Upsampling follows StyleGAN2: a stride-2 transposed conv (2H+1 x 2W+1) then the [1,3,3,1] blur with
    gain 4 and pads (1, 1), which gives exactly 2H x 2W and low-passes the zero-insertion images.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, w_dim: int, demodulate: bool = True,
                 upsample: bool = False, blur_kernel=BLUR_KERNEL):
        super().__init__()
        self.in_ch, self.out_ch, self.kernel_size = in_ch, out_ch, kernel_size
        self.demodulate, self.upsample = demodulate, upsample
        self.affine = EqualLinear(w_dim, in_ch, bias_init=1.0)   # style s: starts at 1 (StyleGAN2)
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel_size, kernel_size))
        self.scale = 1 / math.sqrt(in_ch * kernel_size ** 2)      # equalised learning rate
        if upsample:
            f = 2
            p = (len(blur_kernel) - f) - (kernel_size - 1)        # StyleGAN2's padding rule for up + blur
            self.blur = Blur(blur_kernel, pad=((p + 1) // 2 + f - 1, p // 2 + 1), upsample_factor=f)

    def modulated_weight(self, w: torch.Tensor) -> torch.Tensor:
        """The explicit per-sample weights (B, out, in, k, k) the forward pass is equivalent to."""
        styles = self.affine(w)                                   # (B, in)
        weight = self.weight[None] * self.scale * styles[:, None, :, None, None]   # (B, out, in, k, k)
        if self.demodulate:
            weight = weight * (weight.square().sum(dim=(2, 3, 4), keepdim=True) + 1e-8).rsqrt()
        return weight

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.affine(w)                                   # (B, in)
        weight = self.weight * self.scale                         # (out, in, k, k), float32
        x = x * styles[:, :, None, None].to(x.dtype)              # modulate the input channels
        if self.upsample:
            # conv_transpose2d wants (in, out, k, k); no padding: (B, out, 2H+1, 2W+1), blurred to 2H x 2W.
            x = self.blur(F.conv_transpose2d(x, weight.transpose(0, 1).to(x.dtype), stride=2))
        else:
            x = F.conv2d(x, weight.to(x.dtype), padding=self.kernel_size // 2)   # (B, out, H, W)
        if self.demodulate:
            # sum_{i,k} (s_i g w_oik)^2 = sum_i s_i^2 * sum_k (g w_oik)^2: (B, in) @ (in, out) -> (B, out)
            dcoefs = (styles.float().square() @ weight.float().square().sum(dim=(2, 3)).T + 1e-8).rsqrt()
            x = x * dcoefs[:, :, None, None].to(x.dtype)
        return x

    def extra_repr(self) -> str:
        return (f"{self.in_ch}, {self.out_ch}, kernel_size={self.kernel_size}, demodulate={self.demodulate}, "
                f"upsample={self.upsample}")


class StyledConv(nn.Module):
    """Modulated 3x3 conv (+ optional x2 upsampling) -> per-pixel noise * learned strength -> bias,
    leaky ReLU(0.2) * sqrt(2). `resolution` (H, W) is the output size, needed for the constant noise."""

    def __init__(self, in_ch: int, out_ch: int, w_dim: int, resolution: tuple[int, int], upsample: bool = False,
                 blur_kernel=BLUR_KERNEL):
        super().__init__()
        self.conv = ModulatedConv2d(in_ch, out_ch, 3, w_dim, demodulate=True, upsample=upsample,
                                    blur_kernel=blur_kernel)
        self.noise_strength = nn.Parameter(torch.zeros(()))      # StyleGAN2: starts at 0, learned
        self.register_buffer("noise_const", torch.randn(1, 1, *resolution))   # (1, 1, H, W) for noise_mode="const"
        self.bias = nn.Parameter(torch.zeros(out_ch))
        self.resolution = tuple(resolution)

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "random") -> torch.Tensor:
        x = self.conv(x, w)                                      # (B, out, H, W)
        if noise_mode == "random":
            noise = torch.randn(x.shape[0], 1, *x.shape[2:], device=x.device, dtype=x.dtype)   # (B, 1, H, W)
            x = x + noise * self.noise_strength.to(x.dtype)
        elif noise_mode == "const":
            x = x + self.noise_const.to(x.dtype) * self.noise_strength.to(x.dtype)
        return bias_leaky_relu(x, self.bias)


class ToMel(nn.Module):
    """StyleGAN2's ToRGB with one output channel: modulated 1x1 conv without demodulation + bias, then
    add the previous resolution's output, FIR-upsampled x2 (the "skip" generator)."""

    def __init__(self, in_ch: int, w_dim: int, upsample_skip: bool, blur_kernel=BLUR_KERNEL):
        super().__init__()
        self.conv = ModulatedConv2d(in_ch, 1, 1, w_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1))
        self.upsample = Upsample(blur_kernel) if upsample_skip else None

    def forward(self, x: torch.Tensor, w: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        y = self.conv(x, w) + self.bias.to(x.dtype).view(1, 1, 1, 1)    # (B, 1, H, W)
        if skip is not None:
            y = y + self.upsample(skip)                          # skip (B, 1, H/2, W/2) -> (B, 1, H, W)
        return y


# ------------------------------------------------------------------------------------------------
# Mapping and synthesis networks
# ------------------------------------------------------------------------------------------------

def pixel_norm(z: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Normalise each latent to unit mean square (StyleGAN's "pixel norm" on z)."""
    return z * (z.square().mean(dim=1, keepdim=True) + eps).rsqrt()


class MappingNetwork(nn.Module):
    """G_m: z (B, z_dim) [, genre c (B,)] -> ws (B, num_ws, w_dim), the same w broadcast to every layer.

    Tracks `w_avg`, an EMA (beta 0.995) of the batch-mean w, updated in training mode; truncation
    pulls w towards it: w' = w_avg + psi (w - w_avg) for the first `truncation_cutoff` layers.
    Conditional (c_dim > 0): c is embedded as in StyleGAN2-ADA (module docstring); with `genre_shift` the
    genre's row of `genre_w` (c_dim, w_dim), zero at the start and learned at the full lr, is added to w:
    through the 0.01-lr layers alone the genre moves w too slowly for a short run. A per-genre
    average `w_avg_c` (c_dim, w_dim) is tracked too; truncation of a genre's loops pulls towards its
    own average, so a truncated loop stays in its genre (the global average belongs to none).
    """

    def __init__(self, z_dim: int, w_dim: int, num_ws: int, n_layers: int = 6, lr_mul: float = 0.01,
                 w_avg_beta: float = 0.995, c_dim: int = 0, genre_shift: bool = True):
        super().__init__()
        self.z_dim, self.w_dim, self.num_ws, self.w_avg_beta, self.c_dim = z_dim, w_dim, num_ws, w_avg_beta, c_dim
        dims = [z_dim * (2 if c_dim else 1)] + [w_dim] * n_layers   # hidden width = w_dim (StyleGAN2-ADA)
        self.layers = nn.Sequential(*[EqualLinear(a, b, lr_mul=lr_mul, activation=True)
                                      for a, b in zip(dims[:-1], dims[1:])])
        self.register_buffer("w_avg", torch.zeros(w_dim))
        if c_dim:
            self.embed = EqualLinear(c_dim, z_dim)               # one-hot genre -> z_dim (StyleGAN2-ADA's embed)
            self.register_buffer("w_avg_c", torch.zeros(c_dim, w_dim))
        # zero-initialised: at step 0 the conditional G is exactly StyleGAN2-ADA's
        self.genre_w = nn.Parameter(torch.zeros(c_dim, w_dim)) if c_dim and genre_shift else None

    def check_labels(self, c: torch.Tensor | None, batch: int) -> None:
        if not self.c_dim:
            if c is not None:
                raise ValueError("mapping: this generator is unconditional; it takes no genre labels")
            return
        if c is None or c.shape != (batch,) or c.dtype != torch.long:
            raise ValueError(f"mapping: this generator is conditional on {self.c_dim} genres: give c as a "
                             f"LongTensor of shape ({batch},), got {None if c is None else (tuple(c.shape), c.dtype)}")
        if len(c) and (int(c.min()) < 0 or int(c.max()) >= self.c_dim):
            raise ValueError(f"mapping: genre indices must lie in [0, {self.c_dim}), got {c.tolist()}")

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, update_w_avg: bool | None = None) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"mapping: z must be (B, {self.z_dim}), got {tuple(z.shape)}")
        self.check_labels(c, len(z))
        x = pixel_norm(z.float())                                # (B, z_dim)
        if self.c_dim:
            y = pixel_norm(self.embed(F.one_hot(c, self.c_dim).float()))   # (B, z_dim)
            x = torch.cat([x, y], dim=1)                         # (B, 2 z_dim)
        w = self.layers(x)                                       # (B, w_dim)
        if self.genre_w is not None:
            w = w + self.genre_w[c]                              # (B, w_dim) + the genre's offset (B, w_dim)
        if update_w_avg is None:
            update_w_avg = self.training
        if update_w_avg:
            with torch.no_grad():
                self.w_avg.copy_(w.detach().float().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
                if self.c_dim:
                    self._update_class_avg(w.detach().float(), c)
        ws = w[:, None, :].repeat(1, self.num_ws, 1)             # (B, num_ws, w_dim)
        if truncation_psi != 1:
            centre = (self.w_avg if not self.c_dim else self.w_avg_c[c]).to(ws.dtype)   # (w_dim,) or (B, w_dim)
            centre = centre.expand(len(ws), -1)[:, None]         # (B, 1, w_dim)
            cutoff = self.num_ws if truncation_cutoff is None else max(0, min(truncation_cutoff, self.num_ws))
            head = centre.lerp(ws[:, :cutoff], truncation_psi)   # (B, cutoff, w_dim)
            ws = torch.cat([head, ws[:, cutoff:]], dim=1)        # (B, num_ws, w_dim)
        return ws

    def _update_class_avg(self, w: torch.Tensor, c: torch.Tensor) -> None:
        """EMA of each genre's mean w, for the genres present in the batch; a genre's first batch sets it."""
        onehot = F.one_hot(c, self.c_dim).float()                # (B, c_dim)
        count = onehot.sum(0)                                    # (c_dim,)
        mean = (onehot.T @ w) / count.clamp(min=1)[:, None]      # (c_dim, w_dim)
        seen = self.w_avg_c.abs().sum(1) > 0                     # (c_dim,) genres with an average already
        beta = torch.where(seen, self.w_avg_beta, 0.0)[:, None]  # (c_dim, 1)
        new = mean.lerp(self.w_avg_c, beta)
        self.w_avg_c.copy_(torch.where(count[:, None] > 0, new, self.w_avg_c))


class SynthesisNetwork(nn.Module):
    """G_s: ws (B, num_ws, w_dim) -> standardised log-mel (B, 1, out_frames=200, n_mels=64)."""

    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        c, (h, w), k = cfg.width, cfg.const_size, cfg.blur_kernel
        self.const = nn.Parameter(torch.randn(c, h, w))          # (C, 13, 4) learned constant input
        self.conv1 = StyledConv(c, c, cfg.w_dim, (h, w), blur_kernel=k)
        self.tomel1 = ToMel(c, cfg.w_dim, upsample_skip=False, blur_kernel=k)
        self.convs_up, self.convs, self.tomels = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        for i in range(1, cfg.n_upsample + 1):
            res = (h * 2 ** i, w * 2 ** i)                        # 26x8, 52x16, 104x32, 208x64
            self.convs_up.append(StyledConv(c, c, cfg.w_dim, res, upsample=True, blur_kernel=k))
            self.convs.append(StyledConv(c, c, cfg.w_dim, res, blur_kernel=k))
            self.tomels.append(ToMel(c, cfg.w_dim, upsample_skip=True, blur_kernel=k))

    @property
    def num_ws(self) -> int:
        return self.cfg.num_ws

    def forward(self, ws: torch.Tensor, noise_mode: str = "random") -> torch.Tensor:
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.cfg.w_dim):
            raise ValueError(f"synthesis: ws must be (B, {self.num_ws}, {self.cfg.w_dim}), got {tuple(ws.shape)}")
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"synthesis: noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        x = self.const[None].expand(ws.shape[0], -1, -1, -1)    # (B, C, 13, 4)
        x = self.conv1(x, ws[:, 0], noise_mode)
        skip = self.tomel1(x, ws[:, 1])                          # (B, 1, 13, 4)
        for i, (conv_up, conv, tomel) in enumerate(zip(self.convs_up, self.convs, self.tomels)):
            x = conv_up(x, ws[:, 1 + 2 * i], noise_mode)         # (B, C, 2H, 2W)
            x = conv(x, ws[:, 2 + 2 * i], noise_mode)
            skip = tomel(x, ws[:, 3 + 2 * i], skip)              # (B, 1, 2H, 2W)
        return skip[:, :, :self.cfg.out_frames]                  # (B, 1, 208, 64) -> (B, 1, T=200, F=64)


class Generator(nn.Module):
    """G = G_s(G_m(z)) with StyleGAN2's style mixing and truncation; see the module docstring.

    The two halves are callable submodules: `G.mapping(z, c, truncation_psi, truncation_cutoff)` -> ws
    (B, num_ws, w_dim) and `G.synthesis(ws, noise_mode)` -> mel (B, 1, 200, 64).
    """

    def __init__(self, cfg: GeneratorConfig | None = None):
        super().__init__()
        self.cfg = (cfg or GeneratorConfig()).validate()
        self.synthesis = SynthesisNetwork(self.cfg)
        self.mapping = MappingNetwork(self.cfg.z_dim, self.cfg.w_dim, self.cfg.num_ws, self.cfg.n_mapping,
                                      self.cfg.mapping_lr_mul, self.cfg.w_avg_beta, self.cfg.c_dim,
                                      self.cfg.genre_shift)

    @property
    def num_ws(self) -> int:
        return self.cfg.num_ws

    @property
    def z_dim(self) -> int:
        return self.cfg.z_dim

    def mix_styles(self, ws: torch.Tensor, ws2: torch.Tensor, prob: float) -> torch.Tensor:
        """Style mixing: each sample, with probability `prob`, takes ws2 from a random crossover layer
        in [1, num_ws) on. StyleGAN2-ADA draws one crossover (and one coin) per batch; drawing per sample
        has the same per-sample probability but less variance across batches."""
        b, n = ws.shape[:2]
        cut = torch.randint(1, n, (b,), device=ws.device)                       # (B,) crossover layer
        cut = torch.where(torch.rand(b, device=ws.device) < prob, cut, torch.full_like(cut, n))
        take2 = torch.arange(n, device=ws.device)[None, :] >= cut[:, None]      # (B, num_ws)
        return torch.where(take2[:, :, None], ws2, ws)                           # (B, num_ws, w_dim)

    @property
    def c_dim(self) -> int:
        return self.cfg.c_dim

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, style_mixing_prob: float | None = None,
                noise_mode: str = "random", return_ws: bool = False):
        """z (B, 32) [, genre c (B,) long, conditional only] -> mel (B, 1, T=200, F=64) [, ws (B, num_ws, 64)].

        style_mixing_prob=None means the config's 0.9 in training mode and 0 in eval mode; the mixed-in
        second latent gets the same genre (StyleGAN2-ADA).
        """
        ws = self.mapping(z, c, truncation_psi, truncation_cutoff)
        prob = (self.cfg.style_mixing_prob if self.training else 0.0) if style_mixing_prob is None \
            else style_mixing_prob
        if prob > 0:
            # The second latent must not move w_avg (StyleGAN2-ADA's skip_w_avg_update).
            ws2 = self.mapping(torch.randn_like(z), c, truncation_psi, truncation_cutoff, update_w_avg=False)
            ws = self.mix_styles(ws, ws2, prob)
        mel = self.synthesis(ws, noise_mode)                    # (B, 1, T=200, F=64)
        return (mel, ws) if return_ws else mel


# ------------------------------------------------------------------------------------------------
# EMA of the generator, sizes
# ------------------------------------------------------------------------------------------------

def ema_beta(batch_size: int, half_life_images: float = 10_000) -> float:
    """Per-step EMA decay such that an image's weight halves every `half_life_images` images
    (docs/design.md §5: half-life 10 k images, beta = 0.5 ** (batch / 10 000))."""
    if batch_size < 1 or half_life_images <= 0:
        raise ValueError(f"ema_beta: batch_size must be >= 1 and half_life_images > 0, "
                         f"got {batch_size}, {half_life_images}")
    return 0.5 ** (batch_size / half_life_images)


def make_ema(model: nn.Module) -> nn.Module:
    """A frozen, eval-mode copy of `model` to accumulate the EMA into."""
    ema = copy.deepcopy(model).eval()
    ema.requires_grad_(False)
    return ema


@torch.no_grad()
def update_ema(ema_model: nn.Module, model: nn.Module, beta: float) -> None:
    """ema <- beta * ema + (1 - beta) * model for parameters; buffers (w_avg, constant noise) copied,
    as StyleGAN2-ADA does."""
    ema_params, params = dict(ema_model.named_parameters()), dict(model.named_parameters())
    if ema_params.keys() != params.keys():
        raise ValueError("update_ema: ema_model and model have different parameters (different configs?)")
    for name, p in params.items():
        ema_params[name].copy_(p.detach().lerp(ema_params[name], beta))
    ema_buffers = dict(ema_model.named_buffers())
    for name, b in model.named_buffers():
        ema_buffers[name].copy_(b)


def count_params(model: nn.Module, trainable_only: bool = True) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def macs_per_sample(cfg: GeneratorConfig) -> int:
    """Multiply-accumulates of one forward pass for one sample (mapping + synthesis, all convs, linears
    and blurs), counted by torch's FlopCounterMode (FLOPs / 2) on the meta device: no memory, no compute."""
    g = Generator(cfg).eval().to("meta")                     # built on CPU (~100 MB at width 512), then emptied
    z = torch.zeros(1, cfg.z_dim, device="meta")
    c = torch.zeros(1, dtype=torch.long, device="meta") if cfg.c_dim else None
    with FlopCounterMode(display=False) as counter:
        g(z, c, noise_mode="const")
    return counter.get_total_flops() // 2


if __name__ == "__main__":
    # Sizes of the paper width and of CPU widths: `python generator.py`
    for cap in (None, 128, 64):
        cfg = GeneratorConfig(max_channels=cap)
        g = Generator(cfg)
        print(f"width {cfg.width:4d}: {count_params(g) / 1e6:7.2f} M params, "
              f"{macs_per_sample(cfg) / 1e9:7.2f} GMAC/sample, num_ws {g.num_ws}")
