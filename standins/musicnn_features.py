"""musicnn's pre-trained music networks inside pjloop: a projector feature network and the independent
evaluation embedding (paper Section 3.1 and Section 5; docs/design.md §2, §7). The ports are standins/musicnn_port.py.

1. `mtt_vgg` (registry name; `MusicnnVGGFeatures`): the offline stand-in for the paper's SCNN_MTAT (rows E
   and G of Table 1). SAME training data (MagnaTagATune, top-50 tags) and almost the same ROC-AUC (0.903
   against the paper's 0.909), but a DIFFERENT architecture: musicnn's VGG-like baseline (5 blocks of 3x3
   convs, 128 channels, 3-s patches) instead of Won et al.'s short-chunk CNN. Its four projector stages are
   pool1..pool4 (pool5 needs more than a 1-s chunk). For a (B, 1, T=100, F=64) chunk:

       grid adapter (default): its input is (B, 1, 62, 96)
           (B, 128, 30, 48)  (B, 128, 15, 24)  (B, 128, 7, 12)  (B, 128, 3, 6)
       affine map on our own grid (--adapter affine): its input is (B, 1, 100, 64)
           (B, 128, 49, 32)  (B, 128, 24, 16)  (B, 128, 12, 8)  (B, 128, 6, 4)

   musicnn itself (MTT_musicnn) is NOT registered: its front end max-pools the frequency axis away in its
   first layer and nothing pools time, so every map it has is a (C, T, 1) time series at one resolution.
   Four such maps are four depths of one scale, not the four-scale pyramid the projector's CSM mixes
   (projector.py), and the discriminator heads would see 1-band maps. It stays a tagger and an embedding.

2. The evaluation embedding (`MusicnnEmbedding`, MSD_musicnn): trained on other data (the Million Song
   Dataset) with another architecture than every network any discriminator row uses, so a generator cannot
   have learnt to please it. We take its 200-d "penultimate" layer (dense 200 - ReLU - batch-norm, the
   extractor's `penultimate`), the layer Essentia's musicnn embedding models also expose, rather than
   the 753-d pooled features: a 200 x 200 covariance is estimated far better from a few hundred loops.
   (Which layer the musicnn paper's own GTZAN transfer experiment used could not be checked offline.)
   Two ways in, one network:
     - `embed_audio`: vocoded audio through musicnn's OWN front end (musicnn_port.musicnn_log_mel): what a
       listener hears, vocoder included; the headline FAD uses this path.
     - `embed_mels`: our raw log10 mels through the grid adapter and the level map below: the generator's
       output alone, without the vocoder.
   A 2-s loop is repeated to musicnn's 3-s training patch (187 frames) on both paths.

Feeding a network on its native grid (standins/adapter.py): our log-mel (64 Slaney bands 0-8 kHz, 10 ms) goes to
musicnn's 96 Slaney bands over 0-8 kHz at 16 ms frames. Only musicnn's top band (centre 7.75 kHz, above
our top band's 7.63 kHz) is left silent. Then the LEVEL: musicnn's input is log10(10000 P + 1) of a
POWER mel (n_fft 512); ours is log10 M of a MAGNITUDE mel (n_fft 1024). We convert to power,
P = G M^2, and apply musicnn's own compression (`to_musicnn_level`):

    x = log10(1 + 10^(4 + log10 G + 2 r)),   r = our log10 magnitude on the native grid

rather than fitting an affine map, because this keeps musicnn's floor (silence -> 0 exactly, as in its
training input) and its compression of quiet bins, which no affine map can. log10 G = 0.80: the median of
log10 P - 2 r over the loud bins (x > 1) of 100 demo drum loops, flat across bands (0.72-0.87 but for the
lowest); white noise predicts 0.70 (Slaney filters' areas, Hann window energies, the Rayleigh mean of a
magnitude). On those loops this map is 0.52 RMS from musicnn's own front end (its input's std is 1.08); the
best affine map is 0.73, and one that matches the checkpoint's input batch-norm statistics 1.49 (the demo
loops are quieter than the songs musicnn was trained on).
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
