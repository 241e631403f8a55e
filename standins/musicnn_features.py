"""musicnn's pre-trained music networks inside pjloop: a projector feature network and the independent
evaluation embedding (paper Section 3.1 and Section 5; docs/design.md §2, §7). The ports: standins/musicnn_port.py.

1. `mtt_vgg` (`MusicnnVGGFeatures`): the offline stand-in for SCNN_MTAT (Table 1 rows E, G): the same data
   (MagnaTagATune) and ROC-AUC (0.903 vs 0.909), another architecture. Stages pool1..pool4; for a
   (B, 1, T=100, F=64) chunk on the native grid: (B, 128, 30, 48) (B, 128, 15, 24) (B, 128, 7, 12) (B, 128, 3, 6).
2. `MusicnnEmbedding` (MSD_musicnn's 200-d penultimate layer): the evaluation embedding, from audio through
   musicnn's own front end (`embed_audio`) or from our mels through the grid adapter (`embed_mels`).

Why these choices, and the level map `to_musicnn_level`: docs/modules.md, "standins/musicnn_features.py".
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from standins.adapter import GridAdapter, slaney_centres_hz
from featurenet import FeatureNet
from standins.musicnn_port import (MUSICNN_HOP, MUSICNN_MELS, MUSICNN_SR, PATCH_FRAMES, VGG_CHANNELS, Musicnn, MusicnnVGG,
                          load_musicnn, musicnn_log_mel, repeat_to_patch)
from projector import N_STAGES

STAGE_CHANNELS = (VGG_CHANNELS,) * N_STAGES   # pool1..pool4: pool5 of a 62-frame chunk would be empty in time
POWER_GAIN_LOG10 = 0.80             # log10 G in P ~= G M^2 (module docstring)
LOG_SCALE_LOG10 = 4.0               # log10 of musicnn's 10000
LN10 = math.log(10.0)
EMBED_MODEL = "MSD_musicnn"
EMBED_DIM = 200


def native_grid_adapter(mean=None, std=None) -> GridAdapter:
    """Our mel -> musicnn's native grid: 96 Slaney bands over 0-8 kHz, hop 256 at 16 kHz."""
    return GridAdapter(slaney_centres_hz(MUSICNN_MELS, 0.0, MUSICNN_SR / 2), MUSICNN_HOP / MUSICNN_SR, mean, std)


def to_musicnn_level(raw: torch.Tensor) -> torch.Tensor:
    """Our log10 magnitude mel (any shape) -> musicnn's log10(10000 P + 1) with P = G M^2; smooth and
    monotonic (a softplus in natural-log units), so gradients flow."""
    u = (LOG_SCALE_LOG10 + POWER_GAIN_LOG10 + 2.0 * raw) * LN10       # ln(10000 G M^2)
    return F.softplus(u) / LN10                                        # log10(1 + e^u)


def repeat_frames(x: torch.Tensor, frames: int = PATCH_FRAMES) -> torch.Tensor:
    """(B, 1, T, F) -> (B, 1, frames, F): the loop's frames repeated until they fill the patch."""
    reps = -(-frames // x.shape[2])
    return x.repeat(1, 1, reps, 1)[:, :, :frames]                      # (B, 1, 187, F)


class MusicnnVGGFeatures(FeatureNet):
    """musicnn's VGG as a frozen projector feature network: four pooled stages (module docstring).

    `adapter`: a GridAdapter ('grid', default) -> our mel on its native grid and level; None ('affine')
    -> x = mean_in + std_in * z on our own 64 x 10 ms grid, with the mean and std of its training input
    read from its input batch-norm's running statistics (so that batch-norm sees z itself).
    """

    stage_channels = STAGE_CHANNELS

    def __init__(self, vgg: MusicnnVGG, adapter: GridAdapter | None = None, name: str = "mtt_vgg"):
        super().__init__()
        self.vgg, self.grid, self.name = vgg, adapter, name
        mean_in = float(vgg.bn_input.running_mean[0])
        std_in = float(vgg.bn_input.running_var[0] + vgg.bn_input.eps) ** 0.5
        self.register_buffer("affine", torch.tensor([mean_in, std_in], dtype=torch.float32))

    def adapt(self, mel: torch.Tensor) -> torch.Tensor:
        """(B, 1, T, 64) standardised log10 mel -> its native input (B, 1, T', F')."""
        if self.grid is None:
            mean_in, std_in = self.affine.to(mel.dtype)
            return mean_in + std_in * mel                                # (B, 1, T, 64)
        return to_musicnn_level(self.grid(mel))                          # (B, 1, T'=0.625 T, 96)

    def stages(self, mel: torch.Tensor) -> list[torch.Tensor]:
        return self.vgg.pools(self.adapt(mel), N_STAGES)                 # 30x48, 15x24, 7x12, 3x6 (grid)


def build_feature_net(ctx) -> MusicnnVGGFeatures:
    """Registry builder ('mtt_vgg'): ctx.adapter 'grid' (with the data set's stats) or 'affine'.
    featurenet.build moves and freezes it."""
    grid = native_grid_adapter(ctx.mel_mean, ctx.mel_std) if ctx.adapter == "grid" else None
    return MusicnnVGGFeatures(load_musicnn("MTT_vgg"), grid)


class MusicnnEmbedding(nn.Module):
    """MSD_musicnn's 200-d penultimate layer for FAD and KID, from audio or from raw mels (docstring)."""

    def __init__(self, net: Musicnn):
        super().__init__()
        self.net = net.eval().requires_grad_(False)
        self.grid = native_grid_adapter()                  # mean 0, std 1: it takes RAW log10 mels as they are

    def train(self, mode: bool = True) -> "MusicnnEmbedding":
        return nn.Module.train(self, False)                # always eval: fixed batch-norm statistics

    def penultimate(self, patches: torch.Tensor) -> torch.Tensor:
        """(B, 1, 187, 96) native log-mel patches -> (B, 200)."""
        return self.net.features(patches)["penultimate"]

    def from_mels(self, raw: torch.Tensor) -> torch.Tensor:
        """(B, 64, T) raw log10 mels (our front end, the vocoder's layout) -> (B, 200)."""
        x = to_musicnn_level(self.grid(raw.transpose(1, 2)[:, None]))   # (B, 64, T) -> (B, 1, T, 64) -> (B, 1, T', 96)
        return self.penultimate(repeat_frames(x))                          # (B, 1, 187, 96) -> (B, 200)


def load_embedding(device: str = "cpu") -> MusicnnEmbedding:
    return MusicnnEmbedding(load_musicnn(EMBED_MODEL)).to(device)


@torch.no_grad()
def embed_audio(model: MusicnnEmbedding, audio: np.ndarray, batch_size: int = 64) -> torch.Tensor:
    """(N, S) 16 kHz loops -> (N, 200) on CPU: each loop repeated to 3 s, musicnn's own front end."""
    device = next(model.parameters()).device
    out = []
    for i in range(0, len(audio), batch_size):
        patch = musicnn_log_mel(repeat_to_patch(audio[i:i + batch_size]))[:, :PATCH_FRAMES]   # (b, 187, 96)
        out.append(model.penultimate(torch.from_numpy(patch)[:, None].to(device)).float().cpu())
    return torch.cat(out)                                                 # (N, 200)


@torch.no_grad()
def embed_mels(model: MusicnnEmbedding, mels: np.ndarray | torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """(N, 64, T) raw log10 mels -> (N, 200) on CPU, through the grid adapter and `to_musicnn_level`."""
    device = next(model.parameters()).device
    mels = torch.as_tensor(np.asarray(mels, dtype=np.float32)) if not isinstance(mels, torch.Tensor) else mels.float()
    return torch.cat([model.from_mels(mels[i:i + batch_size].to(device)).cpu() for i in range(0, len(mels), batch_size)])
