"""The frozen pre-trained feature networks of Projected GAN's discriminator (paper Section 3.1;
docs/design.md §2): one interface (`FeatureNet`) and the `--features` registry that builds them by name.

    input : a standardised log10 mel chunk (B, 1, T=100, F=64) -- one second of pjloop's front end; each
            network adapts it to what it was trained on, inside `adapt`.
    output: `stages(x)` -> 4 tensors (B, C_l, T_l, F_l), l = 1..4, with C_l = `stage_channels[l]`.

Frozen: `requires_grad_(False)` on every parameter and eval mode for ever (`use_batch_stats` is the opt-in
exception, as the authors' code). A lookup only loads: missing weights raise FeatureNetUnavailable with the
remedy. The network modules import this one, so the registry imports them on first use.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F


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


class BatchStatsNorm2d(nn.BatchNorm2d):
    """A frozen batch-norm that normalises with the current batch's statistics (the authors' behaviour)
    and never writes its running buffers, so the frozen fingerprint of the network holds."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(x, None, None, self.weight, self.bias, training=True, eps=self.eps)


def use_batch_stats(net: FeatureNet) -> FeatureNet:
    """Switch every BatchNorm2d of `net` to batch statistics (state-dict compatible, weights untouched)."""
    for m in net.modules():
        if type(m) is nn.BatchNorm2d:
            m.__class__ = BatchStatsNorm2d
    return net


def uses_batch_stats(net: nn.Module) -> bool:
    """True when `net` normalises by batch statistics (use_batch_stats): then what shares a batch matters."""
    return any(isinstance(m, BatchStatsNorm2d) for m in net.modules())


@dataclass
class FeatureContext:
    """What a builder may need to know: which loops, which data set, where checkpoints live."""
    loops: str = "drum"                       # 'drum' or 'synth'
    data_dir: str | Path | None = None        # the preprocessed loop data set (its stats and labels)
    ckpt_dir: str | Path | None = None        # where feature-network checkpoints are kept (None: plumbing/paths.py)
    device: str = "cpu"
    vggish_path: str | Path | None = None     # official VGGish weights (else env PJLOOP_VGGISH, else the hub cache)
    mel_mean: np.ndarray | None = None        # (64,) per-band stats of the data set: the grid adapter
    mel_std: np.ndarray | None = None         #       undoes the standardisation with them (standins/adapter.py)
    adapter: str = "grid"                     # 'grid' (standins/adapter.py) or 'affine' (the older z-score map)
    batch_stats: bool = False                 # the authors' SCNN batch-norm on batch statistics


# name -> (the module that builds it, the builder's first argument or None); see docs/design.md §2
REGISTRY = {
    "vgg": ("vggish", None),                             # VGGish, YouTube-100M; official weights, downloaded once
    "aisfx": ("standins.sfxnet", None),                  # sound-effects CNN; weights in its PyPI wheel
    "scnn_mtat": ("scnn", "mtat"),                       # short-chunk CNN tagger, MagnaTagATune (train_scnn.py)
    "scnn_loop": ("scnn", "loop"),                       # short-chunk CNN loop-genre classifier (train_scnn.py)
    "mtt_vgg": ("standins.musicnn_features", None),      # musicnn's VGG tagger, MagnaTagATune; in its wheel
}
GENERAL = ("vgg", "aisfx")     # general (non-music-specific) networks; the rest are domain-specific
DESCRIPTIONS = {
    "vgg": "VGGish, general (YouTube-100M); official weights downloaded once",
    "aisfx": "aisfx, general sound-effects CNN; offline stand-in for VGGish (weights in its wheel)",
    "scnn_mtat": "short-chunk CNN tagger, MagnaTagATune (train_scnn.py --mtat ROOT)",
    "scnn_loop": "short-chunk CNN loop-genre classifier, trained on the data set's genres",
    "mtt_vgg": "musicnn's VGG tagger, MagnaTagATune; offline stand-in for scnn_mtat (weights in its wheel)",
}


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
    """Build a frozen feature network by its registry name, on ctx.device. Training a classifier is an
    explicit, announced step before this (train_scnn.ensure_loop_classifier), never inside the lookup."""
    if name not in REGISTRY:
        raise ValueError(f"unknown feature network {name!r}; choose one of {sorted(REGISTRY)}")
    module, kind = REGISTRY[name]
    builder = importlib.import_module(module).build_feature_net
    net = (builder(ctx) if kind is None else builder(kind, ctx)).to(ctx.device).freeze()
    return use_batch_stats(net) if ctx.batch_stats else net
