"""The frozen pre-trained feature networks, one interface and one registry (paper Section 3.1; docs/design.md §2).

Projected GAN's discriminator never trains these networks: it reads four of their intermediate stages
(four scales) and mixes them with random frozen convolutions (projector.py). Every network here:

    input : a standardised log10 mel chunk (B, 1, T=100, F=64) -- one second, pjloop's front end
            (preprocess.py). Each network adapts it to what it was trained on, inside `adapt`.
    output: `stages(x)` -> 4 tensors (B, C_l, T_l, F_l), l = 1..4, with C_l = `stage_channels[l]`.

Frozen means two things (docs/design.md §2): `requires_grad_(False)` on every parameter AND eval mode for
ever -- `train(True)` on a parent module must not switch batch-norm back to batch statistics (the
authors' code forgets this, so their SCNN's running statistics drift during GAN training).

The registry maps the names of `train.py --features` to builders:

    vgg        VGGish, general, trained on YouTube-100M (vggish.py; official weights, downloaded once)
    aisfx      the offline general network: a sound-effects CNN whose weights ship in a PyPI wheel (sfxnet.py)
    scnn_mtat  short-chunk CNN tagger trained on MagnaTagATune (scnn.py)
    scnn_loop  short-chunk CNN loop-genre classifier trained on the loop data set itself (scnn.py)
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn


class FeatureNetUnavailable(RuntimeError):
    """A requested network cannot be built here (weights absent or invalid, package missing). The message
    says what to do; train.py prints it and stops before doing any other work."""


class FeatureNet(nn.Module):
    """Base class: a frozen network exposing four stages. Subclasses set `name`, `stage_channels`
    and implement `adapt` (our standardised mel -> the network's native input) and `stages`."""

    name: str = "?"
    stage_channels: tuple[int, int, int, int] = (0, 0, 0, 0)

    def freeze(self) -> "FeatureNet":
        """Make the network a constant: no gradients into its weights, batch-norm stats never updated."""
        self.requires_grad_(False)
        nn.Module.train(self, False)
        return self

    def train(self, mode: bool = True) -> "FeatureNet":
        # Always eval: a discriminator put in train mode must not drag its frozen feature net along.
        return nn.Module.train(self, False)

    def adapt(self, mel: torch.Tensor) -> torch.Tensor:
        """(B, 1, T, 64) standardised log10 mel -> the network's own input. Identity by default."""
        return mel

    def stages(self, mel: torch.Tensor) -> list[torch.Tensor]:
        """(B, 1, T=100, F=64) standardised mel chunk -> 4 feature maps (B, C_l, T_l, F_l)."""
        raise NotImplementedError


@dataclass
class FeatureContext:
    """What a builder may need to know: which loops, which data set, where checkpoints live."""
    loops: str = "drum"               # 'drum' or 'synth'
    data_dir: str | Path | None = None   # the preprocessed loop data set (scnn_loop trains on its labels)
    ckpt_dir: str | Path = "checkpoints"  # where feature-network checkpoints are kept
    device: str = "cpu"
    vggish_path: str | Path | None = None   # official VGGish weights (else env PJLOOP_VGGISH, else the hub cache)


def _build_vgg(ctx: FeatureContext) -> FeatureNet:
    import vggish
    return vggish.build_feature_net(ctx)


def _build_aisfx(ctx: FeatureContext) -> FeatureNet:
    import sfxnet
    return sfxnet.build_feature_net(ctx)


def _build_scnn_mtat(ctx: FeatureContext) -> FeatureNet:
    import scnn
    return scnn.build_feature_net("mtat", ctx)


def _build_scnn_loop(ctx: FeatureContext) -> FeatureNet:
    import scnn
    return scnn.build_feature_net("loop", ctx)


REGISTRY = {
    "vgg": _build_vgg,
    "aisfx": _build_aisfx,
    "scnn_mtat": _build_scnn_mtat,
    "scnn_loop": _build_scnn_loop,
}
GENERAL = ("vgg", "aisfx")     # general (non-music-specific) networks; the rest are domain-specific


def parse_feature_names(spec: str) -> list[str]:
    """'vgg,scnn_loop' -> ['vgg', 'scnn_loop']; 'none' -> [] (the plain StyleGAN2 baseline)."""
    names = [s.strip() for s in spec.split(",") if s.strip()]
    if names == ["none"]:
        return []
    unknown = [n for n in names if n not in REGISTRY]
    if unknown or not names:
        raise ValueError(f"unknown feature network(s) {unknown or spec!r}; "
                         f"choose a comma list of {sorted(REGISTRY)} or 'none'")
    if len(set(names)) != len(names):
        raise ValueError(f"feature network listed twice: {spec!r}")
    return names


def build(name: str, ctx: FeatureContext) -> FeatureNet:
    """Build a frozen feature network by its registry name, on ctx.device."""
    if name not in REGISTRY:
        raise ValueError(f"unknown feature network {name!r}; choose one of {sorted(REGISTRY)}")
    net = REGISTRY[name](ctx)
    return net.to(ctx.device).freeze()
