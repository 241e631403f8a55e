"""Discriminators (paper Section 2 "Projected GAN", Figure 2, Section 4; docs/design.md §4).

* `ProjectedDiscriminator`, the paper's model: one Projector (projector.py) per frozen feature network and
  one small `ScaleDiscriminator` head per projected scale (4 per network, 8 for a fusion); only heads train.

      mel (B, 1, T=200, F=64) -> Projector -> 4 x (B, C_l, T_l, F_l) -> D_l -> 4 x (B, N_l) logits

* `StyleGAN2Discriminator`, the `--features none` baseline (Table 1 rows B and C; Hung et al. 2021):

      mel (B, 1, 200, 64) -> stem -> 4 residual down blocks -> (B, C, 12, 4) -> mbstd -> conv -> 2 FC -> (B, 1)

dtype- and device-agnostic (bf16 autocast on CUDA, float32 on the CPU).
Genre conditioning (`c_dim` > 0, the paper's future work): every projected head's logit is the dot product
of its CMAP_DIM feature maps with a projected genre embedding, / sqrt(CMAP_DIM) (Projected GAN's conditional
heads; Miyato & Koyama 2018); the baseline's last layer does the same with a mapped genre code (StyleGAN2-ADA).
"""
from __future__ import annotations

import hashlib

import torch
from torch import nn
import torch.nn.functional as F
from torch.nn.utils.parametrizations import spectral_norm

from featurenet import FeatureNet
from layers import BLUR_KERNEL, SQRT2, Blur, BiasLeakyReLU, EqualConv2d, EqualLinear, MinibatchStd
from mel import N_FRAMES, N_MELS
from projector import CSM_KERNEL, PROJECTOR_SEED, Projector

# ------------------------------------------------------------------------------------------------
# Projected GAN's multi-scale discriminator head
# ------------------------------------------------------------------------------------------------

# Projected GAN's channel table (SingleDisc.channel_dict): the width of a feature map of side `size`.
# Wide where the map is small, narrow where it is large, so every down block costs about the same.
D_CHANNELS = {4: 512, 8: 512, 16: 256, 32: 128, 64: 64, 128: 64, 256: 32, 512: 16, 1024: 8}
END_SIZE = 8           # down blocks run "until about 8 px" (Projected GAN's end_sz)
LOGIT_KERNEL = 4       # the final spectrally-normalised 4x4 conv to a map of patch logits
LRELU_SLOPE = 0.2      # Projected GAN's LeakyReLU(0.2) in every down block
MBSTD_GROUP = 4        # minibatch-stddev group (StyleGAN2's, added to the heads by the authors)
CMAP_DIM = 64          # conditional heads: width of the projection (Projected GAN's cmap_dim)
EMBED_DIM = 128        # conditional heads: genre embedding width before the projection (Projected GAN's)


class GenreProjection(nn.Module):
    """Projected GAN's conditional term: genre c (B,) -> embedding (B, 128) -> linear + leaky ReLU ->
    cmap (B, CMAP_DIM); `forward(features (B, CMAP_DIM, ...), c)` -> (B, ...) = <features, cmap> / sqrt(dim)."""

    def __init__(self, c_dim: int, cmap_dim: int = CMAP_DIM, embed_dim: int = EMBED_DIM):
        super().__init__()
        self.c_dim, self.cmap_dim = c_dim, cmap_dim
        self.embed = nn.Embedding(c_dim, embed_dim)
        self.proj = nn.Sequential(nn.Linear(embed_dim, cmap_dim), nn.LeakyReLU(LRELU_SLOPE))

    def forward(self, h: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        check_labels(c, self.c_dim, len(h))
        cmap = self.proj(self.embed(c)).to(h.dtype)                          # (B, CMAP_DIM)
        cmap = cmap.view(*cmap.shape, *([1] * (h.ndim - 2)))                 # (B, CMAP_DIM, 1, 1) for maps
        return (h * cmap).sum(dim=1) * self.cmap_dim ** -0.5                 # (B, ...)


def check_labels(c: torch.Tensor | None, c_dim: int, batch: int) -> None:
    """A conditional D needs genre indices (B,) in [0, c_dim); an unconditional one takes none."""
    if not c_dim:
        if c is not None:
            raise ValueError("discriminator: this discriminator is unconditional; it takes no genre labels")
        return
    if c is None or c.shape != (batch,) or c.dtype != torch.long:
        raise ValueError(f"discriminator: conditional on {c_dim} genres: give c as a LongTensor ({batch},)")


def sn_conv(c_in: int, c_out: int, kernel_size, padding=0, groups: int = 1, bias: bool = False) -> nn.Module:
    """A spectrally-normalised conv (Projected GAN's `conv2d`): keeps every head 1-Lipschitz-ish, which is
    what lets Projected GAN train with no gradient penalty."""
    return spectral_norm(nn.Conv2d(c_in, c_out, kernel_size, padding=padding, groups=groups, bias=bias))


class DownBlock(nn.Module):
    """Projected GAN's separable down block: depthwise 3x3 + pointwise 1x1 (both spectrally normalised,
    no bias), batch-norm, LeakyReLU(0.2), average pool by `pool` = (time, freq) factors."""

    def __init__(self, c_in: int, c_out: int, pool: tuple[int, int]):
        super().__init__()
        self.depthwise = sn_conv(c_in, c_in, 3, padding=1, groups=c_in)
        self.pointwise = sn_conv(c_in, c_out, 1)
        self.norm = nn.BatchNorm2d(c_out)
        self.act = nn.LeakyReLU(LRELU_SLOPE)
        self.pool = nn.AvgPool2d(pool)                    # stride = kernel; floors odd sizes (25 -> 12)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.norm(self.pointwise(self.depthwise(x))))   # (B, C_out, H, W)
        return self.pool(x)                                          # (B, C_out, H / p_t, W / p_f)


def down_plan(in_size: tuple[int, int], end_size: int = END_SIZE) -> list[tuple[int, int]]:
    """The pooling factors of each down block for a (H=time, W=freq) map.

    Our maps are not square (100x32, 12x4 ...), so (pjloop) a 2x2 pool is applied to every axis that
    is still larger than `end_size`, and an axis already at or below it is left alone (pool 1 there).
    Blocks repeat until both axes are <= end_size: 100x32 -> 50x16 -> 25x8 -> 12x8 -> 6x8. Every head
    then ends at about 8 px per axis like Projected GAN's square maps (and like the authors', whose
    mel-axis concat ends at 6x8): each logit sees about half of the clip, whatever the scale.
    """
    h, w = in_size
    plan = []
    while max(h, w) > end_size:
        p = (2 if h > end_size else 1, 2 if w > end_size else 1)
        plan.append(p)
        h, w = h // p[0], w // p[1]
    return plan


class ScaleDiscriminator(nn.Module):
    """One head D_l of Projected GAN's multi-scale discriminator, for a (B, in_ch, H, W) feature map.

    Channels follow Projected GAN's table keyed by the "snapped" power-of-two size: with n down blocks,
    the map is treated as side 8 * 2^n (the power of two >= its larger side, e.g. 100 -> 128), so block k
    outputs D_CHANNELS[8 * 2^(n-1-k)] and the last one D_CHANNELS[8] = 512. The first block's input is the
    projector's width (as Projected GAN sets nfc[start_sz] = nc). Then (as the authors added) one
    minibatch-stddev channel and a spectrally-normalised 4x4 conv (no padding) to patch logits.
    The 4x4 kernel is clipped to the map where an axis is shorter than 4 (never for our networks).

        (B, in_ch, H, W) -> n x DownBlock -> (B, 512, h, w) -> mbstd -> (B, 513, h, w) -> conv -> (B, N)
    """

    def __init__(self, in_ch: int, in_size: tuple[int, int], end_size: int = END_SIZE, c_dim: int = 0):
        super().__init__()
        h, w = (int(s) for s in in_size)
        if in_ch < 1 or h < 1 or w < 1:
            raise ValueError(f"ScaleDiscriminator: need in_ch >= 1 and a positive size, got {in_ch}, {in_size}")
        self.in_size = (h, w)
        plan = down_plan((h, w), end_size)
        n = len(plan)
        blocks, c = [], in_ch
        for k, pool in enumerate(plan):
            c_out = D_CHANNELS.get(end_size * 2 ** (n - 1 - k), min(D_CHANNELS.values()))
            blocks.append(DownBlock(c, c_out, pool))
            c = c_out
            h, w = h // pool[0], w // pool[1]
        self.main = nn.Sequential(*blocks)
        self.mbstd = MinibatchStd(MBSTD_GROUP, 1)
        self.kernel = (min(LOGIT_KERNEL, h), min(LOGIT_KERNEL, w))
        self.c_dim = c_dim                             # conditional: CMAP_DIM feature maps, projected on the genre
        self.logits = sn_conv(c + 1, CMAP_DIM if c_dim else 1, self.kernel)
        self.cond = GenreProjection(c_dim) if c_dim else None
        self.out_size = (h - self.kernel[0] + 1, w - self.kernel[1] + 1)   # the map of patch logits

    @property
    def n_logits(self) -> int:
        return self.out_size[0] * self.out_size[1]

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        x = self.mbstd(self.main(x))                   # (B, C + 1, h, w)
        if self.cond is None:
            check_labels(c, 0, len(x))
            return self.logits(x).flatten(1)           # (B, N_l): one logit per patch
        return self.cond(self.logits(x), c).flatten(1) # (B, CMAP_DIM, h', w') . cmap -> (B, h', w') -> (B, N_l)

    def extra_repr(self) -> str:
        return f"in_size={self.in_size}, logits={self.out_size}"


class ProjectedDiscriminator(nn.Module):
    """Projected GAN's discriminator over one or more frozen feature networks (Figure 2).

    `forward(mel (B, 1, 200, 64)) -> list` of 4 * len(feature_nets) logit tensors (B, N_l), ordered
    net by net, shallowest scale first. Losses (losses.d_hinge / g_hinge) are summed over the list.

    Projector k gets seed `seed + k`, so two networks in a fusion never share a projection draw; the
    projections are buffers (saved and restored by state_dict) and the feature nets are frozen, so
    `trainable_parameters(D)` (its parameters with requires_grad) is the heads only.
    `c_dim` > 0: every head is conditional (`forward(mel, c)`, c (B,) genre indices).
    """

    def __init__(self, feature_nets: list[FeatureNet], expand: bool = True, seed: int = PROJECTOR_SEED,
                 csm_kernel: int = CSM_KERNEL, upsample: bool = True, fuse_logits: bool = False,
                 n_frames: int = N_FRAMES, n_mels: int = N_MELS, c_dim: int = 0):
        super().__init__()
        feature_nets = list(feature_nets)
        if not feature_nets:
            raise ValueError("ProjectedDiscriminator: needs at least one feature network "
                             "(use StyleGAN2Discriminator for --features none)")
        self.n_frames, self.n_mels, self.fuse_logits = n_frames, n_mels, fuse_logits
        self.projectors = nn.ModuleList(
            Projector(net, expand=expand, seed=seed + k, csm_kernel=csm_kernel, upsample=upsample)
            for k, net in enumerate(feature_nets))
        # One head per scale per network; each is sized by a dry run of its projector.
        self.heads = nn.ModuleList(
            nn.ModuleList(ScaleDiscriminator(c, size, c_dim=c_dim)
                          for c, size in zip(p.out_channels, p.scale_sizes(n_frames, n_mels)))
            for p in self.projectors)

    def forward(self, mel: torch.Tensor, c: torch.Tensor | None = None,
                real_idx: torch.Tensor | None = None) -> list[torch.Tensor]:
        """`c` (B,): genre indices (conditional D only). `real_idx` (B,): the data-set indices of a REAL batch,
        when the real-feature cache is on (`cache_real_features`): its projected features are then looked up
        instead of recomputed."""
        assert mel.shape[1:] == (1, self.n_frames, self.n_mels), \
            f"expected a mel (B, 1, {self.n_frames}, {self.n_mels}), got {tuple(mel.shape)}"
        per_net = []
        for k, (projector, heads) in enumerate(zip(self.projectors, self.heads)):
            feats = projector(mel) if real_idx is None or self.real_cache is None \
                else self._cached(k, projector, mel, real_idx)           # 4 x (B, C_l, T_l, F_l)
            per_net.append([d(f, c) for d, f in zip(heads, feats)])      # 4 x (B, N_l)
        if not self.fuse_logits:
            return [logits for net in per_net for logits in net]         # 4 * n_nets x (B, N_l)
        return [self._fuse(scale, per_net) for scale in range(len(self.heads[0]))]

    def cache_real_features(self, on: bool = True) -> None:
        """Keep every real loop's projected features after their first use. They never change -- frozen
        network in eval mode, frozen CCM/CSM -- so this saves the real branch's feature-network pass
        without changing the math (up to float rounding). Costs memory: about 0.8 MB per loop for aisfx on
        its grid, 1.2 MB for SCNN, x4 with the CSM's trailing x2. Not valid with batch statistics
        (featurenet.use_batch_stats), where a loop's features depend on its batch."""
        self.real_cache = {} if on else None

    real_cache: dict | None = None

    @torch.no_grad()
    def _cached(self, k: int, projector: Projector, mel: torch.Tensor, real_idx: torch.Tensor) -> list[torch.Tensor]:
        keys = real_idx.tolist()
        missing = [j for j, i in enumerate(keys) if (k, i) not in self.real_cache]
        if missing:
            fresh = projector(mel[missing])                              # 4 x (M, C_l, T_l, F_l)
            for row, j in enumerate(missing):
                self.real_cache[(k, keys[j])] = [f[row].clone() for f in fresh]
        return [torch.stack([self.real_cache[(k, i)][scale] for i in keys])   # (B, C_l, T_l, F_l)
                for scale in range(len(self.heads[k]))]

    def _fuse(self, scale: int, per_net: list[list[torch.Tensor]]) -> torch.Tensor:
        """The authors' fusion: add the networks' patch-logit maps of one scale position by position (one
        hinge per scale follows). Where the maps differ in size (networks on different native grids) the
        others are resized bilinearly onto the first network's map."""
        size = self.heads[0][scale].out_size
        total = 0
        for k, logits in enumerate(per_net):
            m = logits[scale].view(-1, 1, *self.heads[k][scale].out_size)  # (B, 1, h_k, w_k)
            if tuple(m.shape[-2:]) != tuple(size):
                m = F.interpolate(m, size=size, mode="bilinear", align_corners=False)
            total = total + m.flatten(1)                                 # (B, h * w)
        return total


def trainable_parameters(D: nn.Module) -> list[nn.Parameter]:
    """What D's optimiser gets: the parameters with requires_grad (for the projected D its heads, never the
    feature networks or CCM/CSM)."""
    return [p for p in D.parameters() if p.requires_grad]


def frozen_fingerprint(D: nn.Module) -> str:
    """A hash of every tensor of D that must never change: feature networks and CCM/CSM (parameters and
    buffers). train.py checks it at every checkpoint; a change would mean a frozen part learned."""
    trainable = {id(p) for p in trainable_parameters(D)}
    h = hashlib.sha1()
    for name, t in list(D.named_parameters()) + list(D.named_buffers()):
        if id(t) not in trainable and ("projector" in name or "feature" in name):
            h.update(name.encode())
            h.update(t.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()


# ------------------------------------------------------------------------------------------------
# StyleGAN2 baseline discriminator (Table 1 rows B, C; Hung et al. 2021; Karras et al. 2020)
# ------------------------------------------------------------------------------------------------

D_MAX_CHANNELS = 512   # StyleGAN2's table with channel_multiplier 2 gives 512 at every side <= 64 (ours: 64 bands)
CMAP_LAYERS = 2        # FC layers mapping the genre code (StyleGAN2-ADA's D mapping has 8; 2 suffice for a label)
N_DOWN = 4             # 200x64 -> 100x32 -> 50x16 -> 25x8 -> 12x4 (mirrors the generator's 13x4 -> 208x64)


class ConvAct(nn.Module):
    """Equalised conv (no bias) + bias + leaky ReLU * sqrt(2): StyleGAN2's ConvLayer with activation."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, padding: int = 0):
        super().__init__()
        self.conv = EqualConv2d(c_in, c_out, kernel_size, padding=padding, bias=False)
        self.act = BiasLeakyReLU(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(x))


class DownConv(nn.Module):
    """StyleGAN2's down-sampling conv: FIR blur (anti-aliasing) then a stride-2 equalised conv, no padding.

    Blur pad = (K - 2) + (k - 1) split evenly (K = 4 taps, k = conv kernel): output side
    floor((n - 2) / 2) + 1 for both the 3x3 main path and the 1x1 skip, so the two paths line up
    (200 -> 100, 25 -> 12)."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, activate: bool):
        super().__init__()
        p = (len(BLUR_KERNEL) - 2) + (kernel_size - 1)
        self.blur = Blur(pad=((p + 1) // 2, p // 2))
        self.conv = EqualConv2d(c_in, c_out, kernel_size, stride=2, bias=False)
        self.act = BiasLeakyReLU(c_out) if activate else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(self.blur(x)))


class ResDownBlock(nn.Module):
    """StyleGAN2's residual D block: 3x3 conv, 3x3 down conv, plus a 1x1 down skip; sum / sqrt(2) keeps
    the variance."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv1 = ConvAct(c_in, c_in, 3, padding=1)
        self.conv2 = DownConv(c_in, c_out, 3, activate=True)
        self.skip = DownConv(c_in, c_out, 1, activate=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.conv2(self.conv1(x)) + self.skip(x)) / SQRT2     # (B, C_out, ~H/2, ~W/2)


class SecondMomentNorm(nn.Module):
    """Normalise each row to unit second moment (StyleGAN2-ADA's normalize_2nd_moment of the embedded label)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * (x.square().mean(dim=1, keepdim=True) + 1e-8).rsqrt()


def _down_size(n: int) -> int:
    return (n - 2) // 2 + 1


class StyleGAN2Discriminator(nn.Module):
    """StyleGAN2's residual discriminator on the raw standardised mel, for the `--features none` baseline.

    (pjloop) The input is not square: no padding or cropping, the four residual down blocks simply
    halve both axes, 200x64 -> 12x4 (floors at 25 -> 12), the generator's starting grid mirrored.
    Stem: a 1x1 conv from the single mel channel (StyleGAN2's fromRGB). Width: the same at every
    resolution (StyleGAN2's table is 512 everywhere up to side 64), capped by `max_channels` for CPU runs.

        (B, 1, 200, 64) -> (B, C, 200, 64) -> 4 ResDownBlock -> (B, C, 12, 4) -> mbstd (B, C+1, 12, 4)
        -> 3x3 conv (B, C, 12, 4) -> flatten (B, 48 C) -> FC + lrelu (B, C) -> FC (B, 1)

    Conditional (c_dim > 0, StyleGAN2-ADA's epilogue): the last FC gives (B, C) features and the logit is
    their dot product with cmap (B, C) / sqrt(C); cmap = the genre's one-hot, embedded, normalised to unit
    second moment and mapped by CMAP_LAYERS FC layers (StyleGAN2-ADA's D mapping, shorter).
    """

    def __init__(self, max_channels: int = D_MAX_CHANNELS, n_frames: int = N_FRAMES, n_mels: int = N_MELS,
                 n_down: int = N_DOWN, mbstd_group: int = MBSTD_GROUP, c_dim: int = 0):
        super().__init__()
        if max_channels < 1:
            raise ValueError(f"StyleGAN2Discriminator: max_channels must be >= 1, got {max_channels}")
        c = min(D_MAX_CHANNELS, max_channels)
        h, w = n_frames, n_mels
        for _ in range(n_down):
            h, w = _down_size(h), _down_size(w)
        if h < 1 or w < 1:
            raise ValueError(f"StyleGAN2Discriminator: a {n_frames}x{n_mels} input is too small for {n_down} down blocks")
        self.n_frames, self.n_mels, self.channels, self.final_size = n_frames, n_mels, c, (h, w)
        self.stem = ConvAct(1, c, 1)
        self.blocks = nn.Sequential(*[ResDownBlock(c, c) for _ in range(n_down)])
        self.mbstd = MinibatchStd(mbstd_group, 1)
        self.final_conv = ConvAct(c + 1, c, 3, padding=1)
        self.c_dim = c_dim
        self.final_linear = nn.Sequential(EqualLinear(c * h * w, c, activation=True),
                                          EqualLinear(c, c if c_dim else 1))
        if c_dim:
            self.cmap = nn.Sequential(EqualLinear(c_dim, c), SecondMomentNorm(),
                                      *[EqualLinear(c, c, activation=True) for _ in range(CMAP_LAYERS)])

    def forward(self, mel: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        if mel.ndim != 4 or tuple(mel.shape[1:]) != (1, self.n_frames, self.n_mels):
            raise ValueError(f"StyleGAN2Discriminator: expected a mel (B, 1, {self.n_frames}, {self.n_mels}), "
                             f"got {tuple(mel.shape)}")
        x = self.blocks(self.stem(mel))                # (B, C, 12, 4)
        x = self.final_conv(self.mbstd(x))             # (B, C, 12, 4)
        check_labels(c, self.c_dim, len(mel))
        x = self.final_linear(x.flatten(1))            # (B, 1), or (B, C) when conditional
        if not self.c_dim:
            return x
        cmap = self.cmap(F.one_hot(c, self.c_dim).to(x.dtype))                  # (B, C)
        return (x * cmap).sum(dim=1, keepdim=True) * self.channels ** -0.5      # (B, 1)
