"""Short-chunk CNN: the network behind scnn_loop and scnn_mtat, and its frozen feature-net wrapper
(paper Section 3.1 "Domain specific"; docs/design.md §2; Won et al. 2020, the residual short-chunk CNN).

    (B, 1, T, F=64), T >= 100 -> input BN -> 6 residual blocks, stride 2 (B, C_k, ceil(T/2^k), ceil(F/2^k))
      -> squeeze frequency -> max over time (B, C_6) -> dense-BN-ReLU-dropout = `embed` -> `logits`

Stride-2 convolutions (Won et al.'s residual variant; the paper text says 2x2 max-pool), so a (B, 1, 100, 64)
chunk gives the projector 50x32, 25x16, 13x8, 7x4. Channels b, b, 2b, 2b, 2b, 4b (b = 64 loop, 128 MTAT).
This file builds and loads only; training is train_scnn.py and mtat.py. A missing checkpoint raises
FeatureNetUnavailable naming the command that makes one. Details: docs/modules.md, "scnn.py".
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from plumbing import paths
from plumbing.checkpoint import CheckpointError, load_checkpoint
from dataset import default_data_dir, is_complete, load_stats, manifest_hash   # manifest_hash: also scnn.manifest_hash
from featurenet import FeatureContext, FeatureNet, FeatureNetUnavailable
from mel import CHUNK_FRAMES, N_MELS
from projector import N_STAGES   # the projector reads the outputs of the first four blocks

N_BLOCKS = 6            # "6 layers of CNN blocks" (paper Section 3.1)
LOOP_WIDTH = 64         # the authors' loop-genre SCNN: stages 64, 64, 128, 128
MTAT_WIDTH = 128        # the authors' MTAT SCNN: stages 128, 128, 256, 256 (Won et al.'s width too)
CHUNK = CHUNK_FRAMES    # 100 frames = the 1-second chunks the projector feeds
MTAT_CKPT_NAME = "scnn_mtat.pt"
MTAT_ENV = "PJLOOP_SCNN_MTAT"     # an explicit path to the MTAT checkpoint wins over ckpt_dir
CKPT_REQUIRED = ("state_dict", "model_config", "label_names", "mel_mean", "mel_std")   # in every SCNN checkpoint


def block_channels(width: int) -> tuple[int, ...]:
    """Output channels of the six blocks for base width b: b, b, 2b, 2b, 2b, 4b (Won et al.'s growth)."""
    return (width, width, 2 * width, 2 * width, 2 * width, 4 * width)


# ---------------------------------------------------------------------------------------------
# The network
# ---------------------------------------------------------------------------------------------
@dataclass
class SCNNConfig:
    n_classes: int
    width: int = LOOP_WIDTH       # base channels b (64 loop / 128 MTAT, the authors')
    dropout: float = 0.5          # before the last dense layer, as Won et al.
    multilabel: bool = False      # MTAT: independent sigmoids; loops: one softmax over genres


class ShortChunkResBlock(nn.Module):
    """3x3 conv(stride 2)-BN-ReLU-3x3 conv-BN + (3x3 conv(stride 2)-BN shortcut), then ReLU."""

    def __init__(self, c_in: int, c_out: int, stride: int = 2):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(c_out)
        # The shape always changes here (stride 2), so the shortcut is always a projection; Won et al.
        # make it a 3x3 conv (not the usual 1x1), which docs/design.md keeps.
        self.shortcut = None
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1),
                                          nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))      # (B, C_out, ceil(T/2), ceil(F/2))
        skip = x if self.shortcut is None else self.shortcut(x)
        return F.relu(out + skip)


def _is_scnn_input(x: torch.Tensor) -> bool:
    """(B, 1, T >= 100, F = 64): a standardised mel at least one chunk long."""
    return x.dim() == 4 and x.shape[1] == 1 and x.shape[3] == N_MELS and x.shape[2] >= CHUNK


class ShortChunkCNN(nn.Module):
    """Won et al.'s short-chunk ResNet on (B, 1, T, F=64) standardised mels; an ordinary trainable module."""

    def __init__(self, cfg: SCNNConfig):
        super().__init__()
        self.cfg = cfg
        chans = block_channels(cfg.width)
        self.input_bn = nn.BatchNorm2d(1)      # Won et al. normalise the raw spectrogram with a BN first
        self.blocks = nn.ModuleList(ShortChunkResBlock(c_in, c_out)
                                    for c_in, c_out in zip((1,) + chans[:-1], chans))
        self.dense1 = nn.Linear(chans[-1], chans[-1])
        self.bn = nn.BatchNorm1d(chans[-1])
        self.dropout = nn.Dropout(cfg.dropout)
        self.dense2 = nn.Linear(chans[-1], cfg.n_classes)

    def stages(self, x: torch.Tensor, n: int = N_STAGES) -> list[torch.Tensor]:
        """Outputs of the first n blocks: for (B, 1, 100, 64), (B, C, 50, 32), (25, 16), (13, 8), (7, 4), ..."""
        x = self.input_bn(x)
        out = []
        for block in self.blocks[:n]:
            x = block(x)
            out.append(x)
        return out

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, T, 64) -> (B, 4b) penultimate features (after dense-BN-ReLU, before dropout)."""
        assert _is_scnn_input(x), f"SCNN expects mels (B, 1, T>={CHUNK}, F={N_MELS}), got {tuple(x.shape)}"
        h = self.stages(x, N_BLOCKS)[-1]                   # (B, 4b, ceil(T/64), 1)
        # Six halvings of 64 bands leave F = 1; taking the max also covers any other F.
        h = h.amax(dim=3)                                  # (B, 4b, T') frequency squeezed
        h = h.amax(dim=2)                                  # (B, 4b)     global max-pool over time
        return F.relu(self.bn(self.dense1(h)))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, T, 64) -> (B, n_classes) pre-softmax / pre-sigmoid scores."""
        return self.dense2(self.dropout(self.embed(x)))

    forward = logits

    @torch.no_grad()
    def predict_proba(self, mels: torch.Tensor, chunk: int = CHUNK) -> torch.Tensor:
        """(B, 1, T>=100, 64) -> (B, n_classes) probabilities (softmax for genres, sigmoid for tags).

        The network is trained on 1-second chunks, so a longer input is cut into 1-second chunks
        (non-overlapping, the last one aligned to the end) whose probabilities are averaged -- Won et
        al.'s clip-level evaluation. A 200-frame loop = its two halves, exactly what the projector sees.
        """
        assert _is_scnn_input(mels), f"SCNN expects mels (B, 1, T>={CHUNK}, F={N_MELS}), got {tuple(mels.shape)}"
        was_training = self.training
        self.eval()
        T = mels.shape[2]
        starts = sorted(set(list(range(0, T - chunk + 1, chunk)) + [T - chunk]))
        probs = 0
        for s in starts:
            z = self.logits(mels[:, :, s:s + chunk])       # (B, n_classes)
            probs = probs + (torch.sigmoid(z) if self.cfg.multilabel else torch.softmax(z, dim=1))
        self.train(was_training)
        return probs / len(starts)


def restandardise(z: torch.Tensor, src_mean, src_std, dst_mean, dst_std) -> torch.Tensor:
    """z-scores (B, 1, T, F) under one set's band stats -> z-scores under another's (via log10 mel)."""
    a = torch.as_tensor(np.asarray(src_std) / np.asarray(dst_std), dtype=z.dtype, device=z.device)
    b = torch.as_tensor((np.asarray(src_mean) - np.asarray(dst_mean)) / np.asarray(dst_std),
                        dtype=z.dtype, device=z.device)
    return z * a + b                                       # (B, 1, T, F): stats broadcast over F


# ---------------------------------------------------------------------------------------------
# The frozen feature network the projector reads (featurenet.FeatureNet)
# ---------------------------------------------------------------------------------------------
class SCNNFeatures(FeatureNet):
    """A trained ShortChunkCNN exposed as four frozen stages.

    The GAN standardises mels with ITS data set's stats; the SCNN was trained on mels standardised
    with the stats stored in its checkpoint. `adapt` converts z_gan -> log10 mel -> z_own, a per-band
    affine map (scale std_gan / std_own, shift (mean_gan - mean_own) / std_own); identity when the two
    sets match (SCNN_Loop trained on the GAN's own data set).
    `stages` takes the GAN's standardised chunk and calls `adapt` itself.
    """

    def __init__(self, net: ShortChunkCNN, name: str, own_stats, gan_stats=None):
        super().__init__()
        self.name = name
        self.net = net
        self.stage_channels = tuple(block_channels(net.cfg.width)[:N_STAGES])
        own_mean, own_std = (np.asarray(s, np.float64) for s in own_stats)
        gan_mean, gan_std = (np.asarray(s, np.float64) for s in (gan_stats or own_stats))
        self.register_buffer("scale", torch.tensor(gan_std / own_std, dtype=torch.float32).view(1, 1, 1, -1))
        self.register_buffer("shift", torch.tensor((gan_mean - own_mean) / own_std,
                                                   dtype=torch.float32).view(1, 1, 1, -1))

    def adapt(self, mel: torch.Tensor) -> torch.Tensor:
        return mel * self.scale + self.shift              # (B, 1, T, 64) in the SCNN's own z-space

    def stages(self, mel: torch.Tensor) -> list[torch.Tensor]:
        return self.net.stages(self.adapt(mel))


# ---------------------------------------------------------------------------------------------
# Where checkpoints live, and loading them
# ---------------------------------------------------------------------------------------------
def loop_checkpoint_path(data_dir: str | Path, ckpt_dir: str | Path | None = None) -> Path:
    """<ckpt_dir>/scnn_loop_<data set dir name>_<manifest hash>.pt; ckpt_dir None: <$PJLOOP_HOME>/checkpoints."""
    name = Path(data_dir).resolve().name
    return paths.checkpoints(ckpt_dir) / f"scnn_loop_{name}_{manifest_hash(data_dir)}.pt"


def mtat_checkpoint_path(ckpt_dir: str | Path | None = None) -> Path:
    """$PJLOOP_SCNN_MTAT if set, else <ckpt_dir>/scnn_mtat.pt (ckpt_dir None: <$PJLOOP_HOME>/checkpoints)."""
    return Path(os.environ.get(MTAT_ENV) or paths.checkpoints(ckpt_dir) / MTAT_CKPT_NAME)


def model_from_checkpoint(ckpt: dict, path, device: str = "cpu") -> ShortChunkCNN:
    """A checkpoint dict (CKPT_REQUIRED keys) -> its ShortChunkCNN in eval mode on `device`."""
    try:
        model = ShortChunkCNN(SCNNConfig(**ckpt["model_config"]))
        model.load_state_dict(ckpt["state_dict"])
    except (TypeError, RuntimeError, KeyError) as e:
        raise CheckpointError(f"{path} does not hold a pjloop SCNN ({e})") from e
    return model.to(device).eval()


def load_loop_classifier(source: str | Path, ckpt_dir: str | Path | None = None, device: str = "cpu"):
    """A data set directory (its checkpoint under ckpt_dir) or a checkpoint file ->
    (ShortChunkCNN in eval mode, label names, (mean (64,), std (64,)) its inputs were standardised with).
    Feed `model.predict_proba` mels z-scored with those stats (`restandardise` converts)."""
    source = Path(source)
    path = loop_checkpoint_path(source, ckpt_dir) if source.is_dir() else source
    if not path.is_file():
        raise FileNotFoundError(f"no SCNN_Loop checkpoint at {path}: train one with "
                                f"`python train_scnn.py --data {source}`" if source.is_dir() else
                                f"no SCNN_Loop checkpoint at {path}")
    ckpt = load_checkpoint(path, required=CKPT_REQUIRED)
    if ckpt.get("kind") != "scnn_loop":
        raise CheckpointError(f"{path} holds a {ckpt.get('kind')!r} network, not a loop-genre classifier")
    model = model_from_checkpoint(ckpt, path, device)
    stats = (ckpt["mel_mean"].numpy(), ckpt["mel_std"].numpy())
    return model, list(ckpt["label_names"]), stats


# ---------------------------------------------------------------------------------------------
# The registry entry point: load, never train
# ---------------------------------------------------------------------------------------------
def _gan_data_dir(ctx: FeatureContext) -> Path:
    """The data set whose stats the GAN standardises with: ctx.data_dir, else the demo set -- only if it
    is already rendered (rendering it is demo.loops.ensure_demo_set's job, not a lookup's)."""
    data_dir = Path(ctx.data_dir) if ctx.data_dir is not None else default_data_dir(ctx.loops)
    if not is_complete(data_dir):
        if ctx.data_dir is None:
            raise FeatureNetUnavailable(f"no data set given and the {ctx.loops} demo set is not rendered at "
                                        f"{data_dir}: run `python -m demo.loops --loops {ctx.loops}` or pass one")
        raise FileNotFoundError(f"{data_dir} is not a preprocessed loop data set (no manifest.csv/stats.npz)")
    return data_dir


def _missing_loop_remedy(ctx: FeatureContext, data_dir: Path) -> str:
    """The command that trains the scnn_loop checkpoint this lookup wanted."""
    own = ctx.data_dir is not None and data_dir.resolve() != default_data_dir(ctx.loops).resolve()
    return f"python train_scnn.py --loops {ctx.loops}{f' --data {data_dir}' if own else ''}"


def build_feature_net(kind: str, ctx: FeatureContext) -> SCNNFeatures:
    """featurenet.REGISTRY's builder: 'loop' -> scnn_loop (trained on ctx.data_dir's genre labels),
    'mtat' -> scnn_mtat. Only loads a trained checkpoint; raises FeatureNetUnavailable with the command
    that trains one (train.py runs train_scnn.ensure_loop_classifier first, so it never gets here)."""
    if kind not in ("loop", "mtat"):
        raise ValueError(f"unknown SCNN kind {kind!r}: 'loop' or 'mtat'")
    if kind == "mtat":
        # Checked first: no point looking at a data set for a checkpoint that does not exist.
        path = mtat_checkpoint_path(ctx.ckpt_dir)
        if not path.is_file():
            raise FeatureNetUnavailable(
                f"no SCNN_MTAT checkpoint at {path}. MagnaTagATune cannot be downloaded here: get it "
                f"(annotations_final.csv + the mp3 folders 0-f), then run `python train_scnn.py --mtat ROOT` "
                f"(it writes {paths.checkpoints(ctx.ckpt_dir) / MTAT_CKPT_NAME}), or point ${MTAT_ENV} at a checkpoint")
    data_dir = _gan_data_dir(ctx)
    gan_stats = load_stats(data_dir)                         # what the GAN standardises with
    if kind == "loop":
        path = loop_checkpoint_path(data_dir, ctx.ckpt_dir)
        if not path.is_file():
            raise FeatureNetUnavailable(
                f"no scnn_loop checkpoint for {data_dir} (looked for {path}): train the loop-genre "
                f"classifier first with `{_missing_loop_remedy(ctx, data_dir)}` (minutes on a CPU; "
                f"train.py does this itself before building its feature networks)")
    name = f"scnn_{kind}"
    ckpt = load_checkpoint(path, required=CKPT_REQUIRED)
    if ckpt.get("kind") != name:
        raise CheckpointError(f"{path} holds a {ckpt.get('kind')!r} network, not {name!r}")
    model = model_from_checkpoint(ckpt, path, ctx.device)
    own_stats = (ckpt["mel_mean"].numpy(), ckpt["mel_std"].numpy())
    return SCNNFeatures(model, name, own_stats, gan_stats).to(ctx.device)
