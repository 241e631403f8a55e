"""The frozen pre-trained feature network: one interface (paper Section 3.1; docs/design.md §2).

Projected GAN's discriminator never trains these networks: it reads four of their intermediate stages
(four scales) and mixes them with random frozen convolutions (projector.py). Every network here:

    input : a standardised log10 mel chunk (B, 1, T=100, F=64) -- one second of pjloop's front end
            (mel.py). Each network adapts it to what it was trained on, inside `adapt`.
    output: `stages(x)` -> 4 tensors (B, C_l, T_l, F_l), l = 1..4, with C_l = `stage_channels[l]`.

Frozen means two things: `requires_grad_(False)` on every parameter AND eval mode for ever --
`train(True)` on a parent module must not switch batch-norm back to batch statistics.

The one exception is deliberate and opt-in: `use_batch_stats(net)` reproduces the authors' code, in which
the feature network's `train()` override is never called, so its batch-norm layers normalise every batch
with that batch's own statistics (real and fake batches separately, since D sees them in separate
passes). The running statistics are never updated either way, so the network's tensors stay constant.

This module imports nothing of pjloop's, so every network file can import it without an import circle;
the `--features` registry that builds them by name is features.py.
"""
from __future__ import annotations

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
    ckpt_dir: str | Path = "checkpoints"      # where feature-network checkpoints are kept
    device: str = "cpu"
    vggish_path: str | Path | None = None     # official VGGish weights (else env PJLOOP_VGGISH, else the hub cache)
    mel_mean: np.ndarray | None = None        # (64,) per-band stats of the data set: the grid adapter
    mel_std: np.ndarray | None = None         #       undoes the standardisation with them (standins/adapter.py)
    adapter: str = "grid"                     # 'grid' (standins/adapter.py) or 'affine' (the older z-score map)
    batch_stats: bool = False                 # the authors' SCNN batch-norm on batch statistics
