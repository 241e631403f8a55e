"""The feature projector P_l of Projected GAN (paper Section 2 "Projected GAN", Figure 2, Section 4
"Pipeline"; docs/design.md §3; Sauer et al. 2021).

A 2-second mel is split into two 1-second chunks; each goes through the same frozen feature network, whose
four stages are mixed by random, never-trained convolutions: CCM (1x1 per stage) and CSM (a U-Net decoder of
3x3 convs, deepest stage first). The two chunks' maps are concatenated along time per scale.

    input : mel (B, 1, T=200, F=64)   chunks: 2 x (B, 1, 100, 64)   stages: 4 x (B, C_l, T_l, F_l)
    output: 4 x (B, C'_l, 2 T_l, F_l)     e.g. VGGish 100x32, 50x16, 24x8, 12x4

CCM/CSM weights come from a fixed seed and are buffers: no optimiser sees them, state_dict restores them.
Channels and the rest: docs/modules.md, "projector.py".
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from featurenet import FeatureNet, uses_batch_stats
from mel import CHUNK_FRAMES, N_FRAMES, N_MELS

COUT = 64              # Projected GAN's base projector width (cout); `expand` multiplies it per stage
CSM_KERNEL = 3         # the paper: "random 3x3 convolutions"; the authors' and Projected GAN's code use 1x1
PROJECTOR_SEED = 0     # fixed seed: the random projection is part of the model and must be reproducible
N_STAGES = 4           # L = 4 scales per feature network


def projector_channels(expand: bool, cout: int = COUT) -> tuple[list[int], list[int]]:
    """(CCM out channels, CSM out channels) per stage, shallowest first (Projected GAN `_make_scratch_*`)."""
    if not expand:
        return [cout] * N_STAGES, [cout] * N_STAGES
    ccm = [cout, cout * 2, cout * 4, cout * 8]            # 64, 128, 256, 512
    # Each CSM block halves its input width (features // 2) except the shallowest, which keeps cout.
    csm = [cout, cout, cout * 2, cout * 4]                # 64, 64, 128, 256
    return ccm, csm


def _random_conv(gen: torch.Generator, c_in: int, c_out: int, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Weight (c_out, c_in, k, k) and bias (c_out,) drawn like PyTorch's default nn.Conv2d init
    (uniform +-1/sqrt(fan_in) for both; Projected GAN leaves its random convs at that default), but from
    `gen` so that the same seed always gives the same projection."""
    bound = 1 / math.sqrt(c_in * k * k)
    w = (torch.rand(c_out, c_in, k, k, generator=gen) * 2 - 1) * bound
    b = (torch.rand(c_out, generator=gen) * 2 - 1) * bound
    return w, b


def _module_device(m: nn.Module) -> torch.device:
    for t in list(m.parameters()) + list(m.buffers()):
        return t.device
    return torch.device("cpu")


def stage_sizes(feature_net: FeatureNet, chunk_frames: int = CHUNK_FRAMES,
                n_mels: int = N_MELS) -> list[tuple[int, int]]:
    """Dry run: the (T_l, F_l) of each of the net's four stages for one (1, 1, chunk_frames, n_mels) chunk."""
    x = torch.zeros(1, 1, chunk_frames, n_mels, device=_module_device(feature_net))
    with torch.no_grad():
        maps = feature_net.stages(x)
    if len(maps) != N_STAGES:
        raise ValueError(f"feature net {feature_net.name!r} returned {len(maps)} stages, expected {N_STAGES}")
    return [tuple(m.shape[-2:]) for m in maps]


class Projector(nn.Module):
    """Frozen feature network + random CCM + random CSM, applied to the two 1-second chunks of a mel.

    `forward(mel (B, 1, 200, 64)) -> 4 x (B, C_l, 2 T_l, F_l)`, shallowest scale first.
    `out_channels` gives C_l; `scale_sizes()` gives (2 T_l, F_l) by a dry run.

    `upsample=True` (default, docs/design.md §3, as the authors' / Projected GAN's FeatureFusionBlock) ends every
    CSM step with a bilinear x2, so the discriminators see maps twice as large per axis as the stages.
    `upsample=False` skips it: the x2 only interpolates, adds no information, and costs the heads 4x;
    train.py's CPU preset turns it off.
    """

    def __init__(self, feature_net: FeatureNet, expand: bool = True, seed: int = PROJECTOR_SEED,
                 csm_kernel: int = CSM_KERNEL, upsample: bool = True):
        super().__init__()
        if not isinstance(feature_net, FeatureNet):
            raise TypeError(f"Projector: feature_net must be a featurenet.FeatureNet, got {type(feature_net).__name__}")
        if len(feature_net.stage_channels) != N_STAGES or min(feature_net.stage_channels) <= 0:
            raise ValueError(f"Projector: feature net {feature_net.name!r} has stage_channels "
                             f"{feature_net.stage_channels}; expected {N_STAGES} positive channel counts")
        if csm_kernel < 1 or csm_kernel % 2 == 0:
            raise ValueError(f"Projector: csm_kernel must be a positive odd number (size-preserving), got {csm_kernel}")
        # Frozen twice over (docs/design.md §2): no grads into its weights, and FeatureNet.train() keeps it in eval.
        self.feature_net = feature_net.freeze()
        self.expand, self.seed, self.csm_kernel, self.upsample = expand, seed, csm_kernel, upsample
        self.ccm_channels, self.csm_channels = projector_channels(expand)

        gen = torch.Generator().manual_seed(seed)     # CPU generator: identical draws on any device
        for i, (c_in, c_out) in enumerate(zip(feature_net.stage_channels, self.ccm_channels)):
            w, b = _random_conv(gen, c_in, c_out, 1)
            self.register_buffer(f"ccm{i}_weight", w)           # (C'_i, C_i, 1, 1)
            self.register_buffer(f"ccm{i}_bias", b)
        # CSM of stage i maps the CCM width of stage i (= the width of the deeper CSM output added to it)
        # to csm_channels[i]; the deeper CSM output's width must equal ccm_channels[i] for the addition.
        for i in range(N_STAGES):
            if i + 1 < N_STAGES:
                assert self.csm_channels[i + 1] == self.ccm_channels[i], "U-Net widths must line up"
            w, b = _random_conv(gen, self.ccm_channels[i], self.csm_channels[i], csm_kernel)
            self.register_buffer(f"csm{i}_weight", w)           # (C''_i, C'_i, k, k)
            self.register_buffer(f"csm{i}_bias", b)

    @property
    def out_channels(self) -> list[int]:
        """Channels of the four output maps, shallowest first (the CSM widths)."""
        return list(self.csm_channels)

    def scale_sizes(self, n_frames: int = N_FRAMES, n_mels: int = N_MELS) -> list[tuple[int, int]]:
        """Dry run: (time, freq) of each of the four output maps for a (B, 1, n_frames, n_mels) mel."""
        f = 2 if self.upsample else 1
        return [(2 * t * f, m * f) for t, m in stage_sizes(self.feature_net, n_frames // 2, n_mels)]

    def _conv(self, x: torch.Tensor, name: str) -> torch.Tensor:
        w, b = getattr(self, f"{name}_weight"), getattr(self, f"{name}_bias")
        # Cast to the input's dtype: buffers stay float32, but under autocast the features may be bf16.
        return F.conv2d(x, w.to(x.dtype), b.to(x.dtype), padding=w.shape[-1] // 2)

    def project(self, maps: list[torch.Tensor]) -> list[torch.Tensor]:
        """CCM then CSM on one set of four stage maps (any batch), shallowest first, sizes kept."""
        ccm = [self._conv(m, f"ccm{i}") for i, m in enumerate(maps)]     # (N, C'_i, T_i, F_i)
        out: list[torch.Tensor] = [None] * N_STAGES                     # type: ignore[list-item]
        deeper = None
        for i in reversed(range(N_STAGES)):                             # U-Net: deepest stage first
            x = ccm[i]
            if deeper is not None:
                # Resize to THIS stage's actual size, not blindly x2: SCNN's 7x4 -> 13x8, and aisfx's last
                # two stages are both 12x8 (x1) (docs/design.md §3).
                x = x + F.interpolate(deeper, size=x.shape[-2:], mode="bilinear", align_corners=True)
            x = self._conv(x, f"csm{i}")                                # (N, C''_i, T_i, F_i)
            if self.upsample:                                           # docs/design.md §3: the trailing x2 of the authors' code
                x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
            out[i] = deeper = x
        return out

    def forward(self, mel: torch.Tensor) -> list[torch.Tensor]:
        if mel.ndim != 4 or mel.shape[1] != 1 or mel.shape[2] % 2:
            raise ValueError(f"Projector: expected a mel of shape (B, 1, T={N_FRAMES}, F={N_MELS}) with an even T, "
                             f"got {tuple(mel.shape)}")
        b, half = mel.shape[0], mel.shape[2] // 2
        front, back = mel[:, :, :half], mel[:, :, half:]                # 2 x (B, 1, 100, 64): the two 1-s chunks
        if uses_batch_stats(self.feature_net):
            # The authors' batch-norm (--batch-stats yes): their discriminator sends each chunk through the
            # network in a pass of its own, so each second is normalised by its own batch statistics.
            maps = [torch.cat(pair, dim=0) for pair in
                    zip(self.feature_net.stages(front), self.feature_net.stages(back))]   # 4 x (2B, C_l, T_l, F_l)
        else:
            # One pass for both chunks (faster than two): in eval mode batching does not mix them.
            maps = self.feature_net.stages(torch.cat([front, back], dim=0))  # 4 x (2B, C_l, T_l, F_l)
        maps = self.project(maps)                                       # 4 x (2B, C'_l, T_l, F_l)
        # (pjloop) concatenate the two seconds side by side along TIME (dim 2); the authors' code
        # concatenates along the mel axis, which puts the two seconds on top of each other in frequency.
        return [torch.cat([m[:b], m[b:]], dim=2) for m in maps]         # 4 x (B, C'_l, 2 T_l, F_l)

    def extra_repr(self) -> str:
        return (f"net={self.feature_net.name!r}, expand={self.expand}, seed={self.seed}, "
                f"csm_kernel={self.csm_kernel}, upsample={self.upsample}, out_channels={self.out_channels}")
