"""Short-chunk CNNs: the loop-genre classifier (SCNN_Loop) and the MagnaTagATune tagger (SCNN_MTAT)
(paper Section 3 and Section 3.1 "Domain specific"; docs/design.md §2; Won et al. 2020, "Evaluation of
CNN-based automatic music tagging models", the short-chunk CNN with residual blocks).

Layout: a standardised log10 mel, time-major like the rest of the GAN: (B, 1, T, F=64), any T >= 100.

    input BN  ->  6 residual blocks, stride 2 each      (B, C_k, ceil(T / 2^k), ceil(F / 2^k)), k = 1..6
              ->  squeeze frequency (F = 1 after six halvings of 64)
              ->  global max-pool over time              (B, C_6)
              ->  dense - BN - ReLU - dropout 0.5        (B, C_6)     = `embed`
              ->  dense to classes                       (B, n_classes) = `logits`

A residual block is 3x3 conv - BN - ReLU - 3x3 conv - BN, plus a 3x3 conv - BN shortcut (always
present here: every block halves the resolution), then ReLU, as Won et al.'s `Res_2d`.

The paper text says each block "comprises a 2x2 max-pooling layer"; docs/design.md (and Won et al.'s
residual variant) down-sample with stride-2 convolutions, padding 1, which is what we do. That is also
why the stage sizes round UP (ceil) where VGGish's max-pools round down: for a (B, 1, 100, 64) chunk
the first four blocks give 50x32, 25x16, 13x8, 7x4, the four stages the projector reads.

Channels (base width b): b, b, 2b, 2b at blocks 1-4 (the authors: b = 64 for SCNN_Loop -> 64, 64, 128,
128; b = 128 for SCNN_MTAT -> 128, 128, 256, 256); blocks 5-6 follow Won et al.'s growth pattern
(2b, then 4b at the last block), so the embedding has 4b channels (256 for the loop net, 512 for MTAT).

Two trainers live here and one `FeatureNet` wrapper (`SCNNFeatures`) that the projector reads
through `features.build`:

    python scnn.py --loops drum            SCNN_Loop on the embedded demo set (or --data DIR)
    python scnn.py --mtat ROOT             SCNN_MTAT on MagnaTagATune (annotations_final.csv + mp3s)

SCNN_Loop trains on random 1-second crops of the loops (wrapping around: a loop is seamless), not
on whole 2-second loops: the projector only ever shows it 1-second chunks, so its batch-norm
statistics and features are fitted to exactly that input, a crop costs half a loop, and the random
offset is free augmentation. A whole loop is classified by averaging its two chunks' softmaxes
(`predict_proba`), which is also how the Inception Score reads it.

SCNN_MTAT deviates from Won et al.'s recipe (docs/design.md §2) in two (pjloop) ways:
  - chunks: 1 s (100 frames), not their 3.69 s, in training and in the 16-chunk clip evaluation: the
    projector only ever feeds 1-second chunks, so the tagger's filters and batch-norm statistics are
    fitted to exactly that input (its ROC-AUC is therefore not directly comparable with their 0.909).
  - optimiser: Adam (lr 1e-4) only by default. Their second phase, SGD with Nesterov momentum 0.9 at
    lr 1e-3 -> 1e-4 -> 1e-5, is optional: `--sgd-epochs N` (equal thirds of N epochs per rate, each
    starting from the best weights so far, as their solver reloads its best model at every switch).
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import math
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

import preprocess
from checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from featurenet import FeatureContext, FeatureNet

N_BLOCKS = 6            # "6 layers of CNN blocks" (paper Section 3.1)
N_STAGES = 4            # the projector reads the outputs of the first four blocks (docs/design.md §2)
LOOP_WIDTH = 64         # the authors' loop-genre SCNN: stages 64, 64, 128, 128
MTAT_WIDTH = 128        # the authors' MTAT SCNN: stages 128, 128, 256, 256 (Won et al.'s width too)
CHUNK = preprocess.CHUNK_FRAMES   # 100 frames = the 1-second chunks the projector feeds
MTAT_CKPT_NAME = "scnn_mtat.pt"
MTAT_ENV = "PJLOOP_SCNN_MTAT"     # an explicit path to the MTAT checkpoint wins over ckpt_dir


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


class ResBlock(nn.Module):
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


class ShortChunkCNN(nn.Module):
    """Won et al.'s short-chunk ResNet on (B, 1, T, F=64) standardised mels; an ordinary trainable module."""

    def __init__(self, cfg: SCNNConfig):
        super().__init__()
        self.cfg = cfg
        chans = block_channels(cfg.width)
        self.input_bn = nn.BatchNorm2d(1)      # Won et al. normalise the raw spectrogram with a BN first
        self.blocks = nn.ModuleList(ResBlock(c_in, c_out) for c_in, c_out in zip((1,) + chans[:-1], chans))
        self.dense1 = nn.Linear(chans[-1], chans[-1])
        self.bn = nn.BatchNorm1d(chans[-1])
        self.dropout = nn.Dropout(cfg.dropout)
        self.dense2 = nn.Linear(chans[-1], cfg.n_classes)

    @staticmethod
    def _check(x: torch.Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != 1 or x.shape[3] != preprocess.N_MELS or x.shape[2] < CHUNK:
            raise ValueError(f"SCNN expects standardised mels (B, 1, T>={CHUNK}, F={preprocess.N_MELS}), "
                             f"got {tuple(x.shape)}")

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
        self._check(x)
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
        self._check(mels)
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
# The frozen feature network the projector reads (features.FeatureNet)
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
# Metrics: small pure functions (sklearn is not a pjloop dependency)
# ---------------------------------------------------------------------------------------------
def roc_auc(y_true: np.ndarray, score: np.ndarray) -> float:
    """Binary ROC-AUC = P(score of a random positive > score of a random negative), ties count 1/2
    (the Mann-Whitney U statistic from average ranks). nan when only one class is present."""
    y = np.asarray(y_true).astype(bool)
    s = np.asarray(score, dtype=np.float64)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), np.float64)
    sorted_s = s[order]
    # Average rank within each run of tied scores.
    bounds = np.flatnonzero(np.diff(sorted_s)) + 1
    starts = np.concatenate([[0], bounds])
    ends = np.concatenate([bounds, [len(s)]])
    for a, b in zip(starts, ends):
        ranks[order[a:b]] = (a + b + 1) / 2                # mean of 1-based ranks a+1 .. b
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def average_precision(y_true: np.ndarray, score: np.ndarray) -> float:
    """Binary PR-AUC as average precision, sum_n (R_n - R_{n-1}) P_n over distinct thresholds
    (tied scores enter together), the definition Won et al. report. nan without positives."""
    y = np.asarray(y_true).astype(bool)
    s = np.asarray(score, dtype=np.float64)
    n_pos = int(y.sum())
    if n_pos == 0:
        return float("nan")
    order = np.argsort(-s, kind="mergesort")
    y, s = y[order], s[order]
    last = np.concatenate([np.flatnonzero(np.diff(s)), [len(s) - 1]])   # last index of each tie run
    tp = np.cumsum(y)[last]
    precision = tp / (last + 1)
    recall = tp / n_pos
    return float(np.sum(np.diff(np.concatenate([[0.0], recall])) * precision))


def macro_auc(y_true: np.ndarray, scores: np.ndarray) -> tuple[float, float, int]:
    """(N, K) labels and scores -> (macro ROC-AUC, macro PR-AUC, number of tags scored); tags whose
    test labels are all one class have no AUC and are left out of the mean."""
    roc = np.array([roc_auc(y_true[:, k], scores[:, k]) for k in range(y_true.shape[1])])
    pr = np.array([average_precision(y_true[:, k], scores[:, k]) for k in range(y_true.shape[1])])
    ok = ~np.isnan(roc)
    if not ok.any():
        return float("nan"), float("nan"), 0
    return float(roc[ok].mean()), float(pr[ok].mean()), int(ok.sum())


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n: int) -> np.ndarray:
    """(n, n) counts, rows = true class, columns = predicted class."""
    cm = np.zeros((n, n), np.int64)
    np.add.at(cm, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return cm


def format_confusion(cm: np.ndarray, names: list[str]) -> str:
    """A plain-text table: one row per true genre, numbered columns for the predicted genre."""
    w = max(len(n) for n in names)
    cw = max(3, len(str(cm.max())) + 1)
    lines = [" " * (w + 5) + "predicted ->",
             " " * (w + 5) + "".join(f"{j:>{cw}}" for j in range(len(names))) + "   recall"]
    for i, name in enumerate(names):
        row = cm[i]
        rec = row[i] / row.sum() if row.sum() else float("nan")
        lines.append(f"{i:>3}  {name:<{w}}" + "".join(f"{v:>{cw}}" for v in row) + f"   {rec:.2f}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# SCNN_Loop: loop-genre classifier trained on a preprocessed loop data set's labels
# ---------------------------------------------------------------------------------------------
@dataclass
class LoopTrainConfig:
    width: int = LOOP_WIDTH
    # A short fixed budget with a one-cycle learning rate (warm up, then cosine down to ~0) converges
    # in a few epochs and ends on a settled model; the best validation epoch is kept. Sized for the
    # 2000-loop demo sets on 2 CPU cores: demo drum, 8 epochs in 3.7 min, test accuracy 0.985.
    epochs: int = 8
    patience: int = 3             # epochs without a better validation accuracy before stopping early
    batch: int = 32
    lr: float = 2e-3              # Adam, peak of the one-cycle schedule
    weight_decay: float = 1e-4
    crop: int = CHUNK             # train on random 1-second crops: what the projector feeds, half the cost
    seed: int = 0                 # fixes the 80/10/10 split and the initialisation
    split: tuple = (0.8, 0.1, 0.1)   # the paper's 80/10/10
    max_minutes: float | None = None  # optional wall-clock cap (the best weights so far are kept)
    device: str = "cpu"


def manifest_hash(data_dir: str | Path) -> str:
    """Short hash of a data set's manifest: a different (or re-built) data set -> a different checkpoint."""
    p = Path(data_dir) / "manifest.csv"
    if not p.is_file():
        raise FileNotFoundError(f"{data_dir} is not a preprocessed loop data set (no manifest.csv)")
    return hashlib.sha1(p.read_bytes()).hexdigest()[:10]


def loop_checkpoint_path(data_dir: str | Path, ckpt_dir: str | Path = "checkpoints") -> Path:
    """checkpoints/scnn_loop_<data set dir name>_<manifest hash>.pt"""
    name = Path(data_dir).resolve().name
    return Path(ckpt_dir) / f"scnn_loop_{name}_{manifest_hash(data_dir)}.pt"


def stratified_split(labels: list[int], fractions=(0.8, 0.1, 0.1), seed: int = 0) -> list[list[int]]:
    """Indices -> [train, val, test], each genre split 80/10/10 on its own (rounded; a genre with very
    few loops keeps at least one in train). Fixed seed: the same data set always splits the same way."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    parts: list[list[int]] = [[], [], []]
    for g in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == g))
        n_val = int(round(len(idx) * fractions[1]))
        n_test = int(round(len(idx) * fractions[2]))
        if n_val + n_test >= len(idx):          # tiny genre: keep one loop for training
            n_val, n_test = (len(idx) - 1) // 2, (len(idx) - 1) - (len(idx) - 1) // 2
        parts[1] += idx[:n_val].tolist()
        parts[2] += idx[n_val:n_val + n_test].tolist()
        parts[0] += idx[n_val + n_test:].tolist()
    return [sorted(p) for p in parts]


def random_cyclic_crop(mels: torch.Tensor, length: int, gen: torch.Generator) -> torch.Tensor:
    """(B, 1, T, F) loops -> (B, 1, length, F) crops at random offsets, wrapping around the end.
    A one-bar loop is seamless by construction, so a wrapped crop is still a plausible second of it."""
    B, _, T, _ = mels.shape
    off = torch.randint(0, T, (B,), generator=gen)
    idx = ((off[:, None] + torch.arange(length)[None]) % T).to(mels.device)    # (B, length)
    return torch.gather(mels, 2, idx[:, None, :, None].expand(B, 1, length, mels.shape[3]))


@torch.no_grad()
def _loop_accuracy(model: ShortChunkCNN, mels: torch.Tensor, labels: torch.Tensor, batch: int = 64):
    """Accuracy and predictions on full loops (two 1-second chunks averaged, as predict_proba)."""
    preds = []
    for i in range(0, len(mels), batch):
        preds.append(model.predict_proba(mels[i:i + batch]).argmax(1).cpu())
    pred = torch.cat(preds) if preds else torch.zeros(0, dtype=torch.long)
    acc = float((pred == labels.cpu()).float().mean()) if len(pred) else float("nan")
    return acc, pred


def train_one_epoch(model: ShortChunkCNN, opt: torch.optim.Optimizer, X: torch.Tensor, Y: torch.Tensor,
                    cfg: LoopTrainConfig, gen: torch.Generator, sched=None, desc: str | None = None) -> float:
    """One pass over the training loops (B, 1, 200, 64) in random order, each seen as one random
    1-second crop; returns the mean cross-entropy."""
    from tqdm import tqdm
    model.train()
    perm = torch.randperm(len(X), generator=gen)
    total, seen = 0.0, 0
    bar = tqdm(range(0, len(perm), cfg.batch), desc=desc, leave=False, disable=desc is None)
    for i in bar:
        b = perm[i:i + cfg.batch].to(X.device)
        if len(b) < 2:                                       # BatchNorm1d cannot train on a batch of one
            continue
        x = random_cyclic_crop(X[b], cfg.crop, gen)                              # (b, 1, 100, 64)
        loss = F.cross_entropy(model(x), Y[b])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if sched is not None and sched.last_epoch + 1 < sched.total_steps:
            sched.step()
        total += loss.item() * len(b)
        seen += len(b)
        bar.set_postfix(loss=f"{total / seen:.3f}")
    return total / max(seen, 1)


def train_loop_classifier(data_dir: str | Path, cfg: LoopTrainConfig = LoopTrainConfig(),
                          out: str | Path | None = None, ckpt_dir: str | Path = "checkpoints",
                          verbose: bool = True) -> dict:
    """Train SCNN_Loop on a data set's genre labels; save and return the checkpoint dict."""
    t0 = time.time()
    data_dir = Path(data_dir)
    torch.manual_seed(cfg.seed)
    ds = preprocess.LoopMelDataset(data_dir)                 # mels (N, 1, 200, 64), z-scored with stats.npz
    if len(ds.genres) < 2:
        raise ValueError(f"{data_dir}: a genre classifier needs at least 2 genres, found {ds.genres}")
    ids = [r["id"] for r in ds.rows]
    train_idx, val_idx, test_idx = stratified_split(ds.labels.tolist(), cfg.split, cfg.seed)
    dev = torch.device(cfg.device)
    X, Y = ds.mels, ds.labels
    Xtr, Ytr = X[train_idx].to(dev), Y[train_idx].to(dev)
    Xva, Yva = X[val_idx].to(dev), Y[val_idx]
    Xte, Yte = X[test_idx].to(dev), Y[test_idx]

    model = ShortChunkCNN(SCNNConfig(n_classes=len(ds.genres), width=cfg.width)).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = cfg.epochs * max(1, math.ceil(len(train_idx) / cfg.batch))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps, pct_start=0.15)
    gen = torch.Generator().manual_seed(cfg.seed)
    best = (-1.0, None, 0)                                   # (val accuracy, state dict, epoch)
    history = []
    for epoch in range(1, cfg.epochs + 1):
        train_loss = train_one_epoch(model, opt, Xtr, Ytr, cfg, gen, sched,
                                     desc=f"epoch {epoch}" if verbose else None)
        val_acc, _ = _loop_accuracy(model, Xva, Yva) if len(val_idx) else (float("nan"), None)
        history.append({"epoch": epoch, "train_loss": train_loss, "val_acc": val_acc})
        if verbose:
            print(f"epoch {epoch}: train loss {train_loss:.3f}, val acc {val_acc:.3f}, "
                  f"{(time.time() - t0) / 60:.1f} min", flush=True)
        if not (val_acc <= best[0]):                         # better, or nan (no validation set)
            best = (val_acc, {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}, epoch)
        if epoch - best[2] >= cfg.patience:
            break
        if cfg.max_minutes is not None and time.time() - t0 > 60 * cfg.max_minutes:
            if verbose:
                print(f"stopping: the {cfg.max_minutes}-minute cap is reached")
            break
    model.load_state_dict(best[1])
    test_acc, pred = _loop_accuracy(model, Xte, Yte)
    cm = confusion_matrix(Yte.numpy(), pred.numpy(), len(ds.genres))
    minutes = (time.time() - t0) / 60
    if verbose:
        print(f"\nheld-out test accuracy {test_acc:.3f} on {len(test_idx)} loops "
              f"(best validation {best[0]:.3f} at epoch {best[2]}; {minutes:.1f} min)")
        print(format_confusion(cm, ds.genres))

    ckpt = {
        "kind": "scnn_loop",
        "state_dict": {k: v.cpu() for k, v in model.state_dict().items()},
        "model_config": asdict(model.cfg),
        "train_config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()},
        "label_names": list(ds.genres),
        # The classifier sees mels z-scored with the data set's stats.npz -- the very z-scores the GAN
        # uses, so `adapt` is an identity for this data set.
        "mel_mean": torch.from_numpy(ds.mean.copy()), "mel_std": torch.from_numpy(ds.std.copy()),
        "split": {"train": [ids[i] for i in train_idx], "val": [ids[i] for i in val_idx],
                  "test": [ids[i] for i in test_idx]},
        "accuracy": test_acc, "val_accuracy": best[0], "best_epoch": best[2],
        "confusion": torch.from_numpy(cm), "history": history, "minutes": minutes,
        "data_dir": str(data_dir.resolve()), "manifest_hash": manifest_hash(data_dir),
    }
    out = Path(out) if out else loop_checkpoint_path(data_dir, ckpt_dir)
    save_checkpoint(ckpt, out)
    if verbose:
        print(f"saved {out}")
    ckpt["path"] = str(out)
    return ckpt


def _model_from_checkpoint(ckpt: dict, path, device: str = "cpu") -> ShortChunkCNN:
    try:
        model = ShortChunkCNN(SCNNConfig(**ckpt["model_config"]))
        model.load_state_dict(ckpt["state_dict"])
    except (TypeError, RuntimeError, KeyError) as e:
        raise CheckpointError(f"{path} does not hold a pjloop SCNN ({e})") from e
    return model.to(device).eval()


_REQUIRED = ("state_dict", "model_config", "label_names", "mel_mean", "mel_std")


def load_loop_classifier(source: str | Path, ckpt_dir: str | Path = "checkpoints", device: str = "cpu"):
    """A data set directory (its checkpoint under ckpt_dir) or a checkpoint file ->
    (ShortChunkCNN in eval mode, label names, (mean (64,), std (64,)) its inputs were standardised with).
    Feed `model.predict_proba` mels z-scored with those stats (`restandardise` converts)."""
    source = Path(source)
    path = loop_checkpoint_path(source, ckpt_dir) if source.is_dir() else source
    if not path.is_file():
        raise FileNotFoundError(f"no SCNN_Loop checkpoint at {path}: train one with "
                                f"`python scnn.py --data {source}`" if source.is_dir() else
                                f"no SCNN_Loop checkpoint at {path}")
    ckpt = load_checkpoint(path, required=_REQUIRED)
    if ckpt.get("kind") != "scnn_loop":
        raise CheckpointError(f"{path} holds a {ckpt.get('kind')!r} network, not a loop-genre classifier")
    model = _model_from_checkpoint(ckpt, path, device)
    stats = (ckpt["mel_mean"].numpy(), ckpt["mel_std"].numpy())
    return model, list(ckpt["label_names"]), stats


VALIDATION_OVERHEAD = 0.15   # the per-epoch validation pass (10 % of the loops, forward only, whole
                             # 2-s loops) costs about this fraction of a training epoch


def estimate_minutes(n_loops: int, cfg: LoopTrainConfig = LoopTrainConfig()) -> float:
    """Rough training time: time one training step on this machine and scale it up."""
    model = ShortChunkCNN(SCNNConfig(n_classes=8, width=cfg.width)).to(cfg.device)
    opt = torch.optim.Adam(model.parameters())
    x = torch.randn(cfg.batch, 1, cfg.crop, preprocess.N_MELS, device=cfg.device)
    y = torch.zeros(cfg.batch, dtype=torch.long, device=cfg.device)
    t = time.time()
    for _ in range(2):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    per_step = (time.time() - t) / 2
    steps = cfg.epochs * math.ceil(cfg.split[0] * n_loops / cfg.batch) * (1 + VALIDATION_OVERHEAD)
    return per_step * steps / 60


# ---------------------------------------------------------------------------------------------
# The registry entry point
# ---------------------------------------------------------------------------------------------
def mtat_checkpoint_path(ckpt_dir: str | Path = "checkpoints") -> Path:
    return Path(os.environ.get(MTAT_ENV) or Path(ckpt_dir) / MTAT_CKPT_NAME)


def build_feature_net(kind: str, ctx: FeatureContext) -> SCNNFeatures:
    """features.REGISTRY's builder: 'loop' -> scnn_loop (trained on ctx.data_dir's labels, first if
    needed), 'mtat' -> scnn_mtat (from a checkpoint made by `python scnn.py --mtat ROOT`)."""
    if kind not in ("loop", "mtat"):
        raise ValueError(f"unknown SCNN kind {kind!r}: 'loop' or 'mtat'")
    if kind == "mtat":
        # Checked first: no point preparing a data set for a checkpoint that does not exist.
        path = mtat_checkpoint_path(ctx.ckpt_dir)
        if not path.is_file():
            raise FileNotFoundError(
                f"no SCNN_MTAT checkpoint at {path}. MagnaTagATune cannot be downloaded here: get it "
                f"(annotations_final.csv + the mp3 folders 0-f), then run `python scnn.py --mtat ROOT` "
                f"(it writes {Path(ctx.ckpt_dir) / MTAT_CKPT_NAME}), or point ${MTAT_ENV} at a checkpoint")
    data_dir = ctx.data_dir
    if data_dir is None:                      # the GAN's default data: the embedded demo set
        import demoloops
        data_dir = demoloops.ensure_demo_set(ctx.loops)
    data_dir = Path(data_dir)
    if not preprocess.is_complete(data_dir):
        raise FileNotFoundError(f"{data_dir} is not a preprocessed loop data set (no manifest.csv/stats.npz)")
    gan_stats = preprocess.load_stats(data_dir)               # what the GAN standardises with
    if kind == "loop":
        path = loop_checkpoint_path(data_dir, ctx.ckpt_dir)
        if not path.is_file():
            cfg = LoopTrainConfig(device=ctx.device)
            n = len(preprocess.read_csv(data_dir / "manifest.csv"))
            print(f"no SCNN_loop checkpoint for {data_dir}: training one first "
                  f"(about {max(1, round(estimate_minutes(n, cfg)))} minutes)", flush=True)
            train_loop_classifier(data_dir, cfg, out=path)
    name = f"scnn_{kind}"
    ckpt = load_checkpoint(path, required=_REQUIRED)
    if ckpt.get("kind") != name:
        raise CheckpointError(f"{path} holds a {ckpt.get('kind')!r} network, not {name!r}")
    model = _model_from_checkpoint(ckpt, path, ctx.device)
    own_stats = (ckpt["mel_mean"].numpy(), ckpt["mel_std"].numpy())
    return SCNNFeatures(model, name, own_stats, gan_stats).to(ctx.device)


# ---------------------------------------------------------------------------------------------
# SCNN_MTAT: the 50-tag MagnaTagATune tagger
# ---------------------------------------------------------------------------------------------
MTAT_SPLIT = {"train": "0123456789ab", "val": "c", "test": "def"}   # the official split by folder
N_TAGS = 50
SGD_LRS = (1e-3, 1e-4, 1e-5)   # Won et al.'s SGD phase: three rates, here an equal third of sgd_epochs each
SGD_MOMENTUM = 0.9             # Nesterov, as Won et al.
SGD_WEIGHT_DECAY = 1e-4        # as Won et al.'s solver (their code; the paper does not say)


@dataclass
class MTATConfig:
    width: int = MTAT_WIDTH
    epochs: int = 200             # Won et al. train ~200 epochs; early stopping usually ends sooner
    patience: int = 10            # epochs without a better validation ROC-AUC before stopping
    batch: int = 16               # Won et al.
    lr: float = 1e-4              # Won et al.'s Adam phase
    # (pjloop) Won et al. follow Adam with SGD (Nesterov, lr 1e-3 -> 1e-4 -> 1e-5); here that phase is
    # optional and off by default: sgd_epochs > 0 runs it after the Adam epochs (module docstring).
    sgd_epochs: int = 0
    # (pjloop) Won et al. train on 3.69-s chunks; our feature networks only ever see 1-second chunks in
    # the projector, so the tagger is trained (and its batch-norm statistics fitted) on 1-second chunks.
    chunk: int = CHUNK
    eval_chunks: int = 16         # evenly spaced chunks averaged per clip (Won et al.'s evaluation)
    seed: int = 0
    workers: int = 0
    device: str = "cpu"


def read_mtat_annotations(root: str | Path) -> tuple[list[str], list[dict]]:
    """ROOT/annotations_final.csv (tab-separated, quoted: clip_id, 188 tags of 0/1, mp3_path) ->
    (top-50 tag names, most frequent first; rows {clip_id, mp3_path, split, labels (50,) uint8})."""
    path = Path(root) / "annotations_final.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: --mtat ROOT must hold MagnaTagATune's annotations_final.csv")
    with open(path, newline="") as f:
        rows = list(csv.reader(f, delimiter="\t"))
    header = rows[0]
    if len(header) < N_TAGS + 2 or header[0] != "clip_id" or header[-1] != "mp3_path":
        raise ValueError(f"{path}: expected the columns clip_id, <tags>, mp3_path (tab-separated)")
    tags = header[1:-1]
    body = [r for r in rows[1:] if r]
    try:
        Y = np.array([[int(v) for v in r[1:-1]] for r in body], dtype=np.int64)   # (N, 188)
    except ValueError as e:
        raise ValueError(f"{path}: tag columns must be 0/1 ({e})") from e
    top = np.argsort(-Y.sum(0), kind="stable")[:N_TAGS]     # the 50 most frequent tags
    names = [tags[i] for i in top]
    out = []
    for r, y in zip(body, Y[:, top]):
        folder = r[-1].split("/")[0]
        split = next((s for s, folders in MTAT_SPLIT.items() if folder in folders), None)
        if split is None or not y.any():
            continue   # the standard top-50 split drops clips with none of the 50 tags
        out.append({"clip_id": r[0], "mp3_path": r[-1], "split": split, "labels": y.astype(np.uint8)})
    return names, out


def decode_audio(path: Path) -> np.ndarray:
    """Any file libsndfile reads (MTAT: mp3) -> 16 kHz mono float32, through preprocess's loader
    (which raises preprocess.SkipFile, with the reason, for an unreadable or empty file)."""
    audio, sr = preprocess.load_mono(path)                                             # (N,)
    return preprocess.resample(audio, sr, preprocess.SR)


def cache_mtat_mels(root: str | Path, rows: list[dict], cache: str | Path, verbose: bool = True):
    """Decode every clip once into cache/<mp3 path>.npy, (64, T) float16 log10 mel (half the disk of
    float32; far below the mel's own precision). Returns (kept rows with 'mel' set, skipped list)."""
    from tqdm import tqdm
    root, cache = Path(root), Path(cache)
    kept, skipped = [], []
    for r in tqdm(rows, desc="decoding MTAT", disable=not verbose):
        npy = cache / (r["mp3_path"] + ".npy")
        if not npy.is_file():
            try:
                audio = decode_audio(root / r["mp3_path"])
                if len(audio) < preprocess.HOP * CHUNK:
                    raise ValueError(f"only {len(audio)} samples")
                preprocess.write_npy(npy, preprocess.log_mel(audio).astype(np.float16))
            except Exception as e:   # a broken or missing mp3 is skipped, not fatal
                skipped.append({"file": r["mp3_path"], "reason": f"{type(e).__name__}: {e}"})
                continue
        kept.append(dict(r, mel=str(npy)))
    return kept, skipped


def mel_stats_of(paths: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per-band mean/std over every frame of the given cached mels, one file in memory at a time."""
    return preprocess.band_stats_of_files(paths)


class MTATChunks(torch.utils.data.Dataset):
    """One random `chunk`-frame crop per clip per epoch: (1, chunk, 64) z-scored mel, (50,) labels."""

    def __init__(self, rows: list[dict], mean, std, chunk: int):
        self.rows, self.mean, self.std, self.chunk = rows, mean, std, chunk

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        m = np.load(self.rows[i]["mel"], mmap_mode="r")       # (64, T)
        s = np.random.randint(0, m.shape[1] - self.chunk + 1)
        z = preprocess.standardise(m[:, s:s + self.chunk].astype(np.float32), self.mean, self.std)
        return (torch.from_numpy(np.ascontiguousarray(z.T))[None],         # (1, chunk, 64)
                torch.from_numpy(self.rows[i]["labels"].astype(np.float32)))


@torch.no_grad()
def evaluate_clips(model: ShortChunkCNN, rows: list[dict], mean, std, cfg: MTATConfig):
    """Clip-level sigmoid scores: the mean over `eval_chunks` evenly spaced chunks. -> (Y (N, 50), S (N, 50))."""
    model.eval()
    Y, S = [], []
    for r in rows:
        m = np.load(r["mel"]).astype(np.float32)             # (64, T)
        starts = np.linspace(0, m.shape[1] - cfg.chunk, cfg.eval_chunks).astype(int)
        z = preprocess.standardise(m, mean, std)
        x = torch.from_numpy(np.stack([z[:, s:s + cfg.chunk].T for s in starts]))[:, None]  # (16, 1, chunk, 64)
        S.append(torch.sigmoid(model(x.to(cfg.device))).mean(0).cpu().numpy())
        Y.append(r["labels"])
    return np.array(Y), np.array(S)


def train_mtat(root: str | Path, cfg: MTATConfig = MTATConfig(), cache: str | Path | None = None,
               out: str | Path | None = None, ckpt_dir: str | Path = "checkpoints", verbose: bool = True) -> dict:
    """Train the top-50 MagnaTagATune tagger; save and return the checkpoint (with test ROC-/PR-AUC)."""
    from tqdm import tqdm
    t0 = time.time()
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    root = Path(root)
    cache = Path(cache) if cache else Path("data") / "mtat_mels"
    tags, rows = read_mtat_annotations(root)
    rows, skipped = cache_mtat_mels(root, rows, cache, verbose)
    if skipped:
        print(f"skipped {len(skipped)} clips that could not be decoded, e.g. "
              + "; ".join(f"{s['file']} ({s['reason']})" for s in skipped[:5]))
        preprocess.write_csv(cache / "skipped.csv", ["file", "reason"], skipped)
    split = {k: [r for r in rows if r["split"] == k] for k in MTAT_SPLIT}
    for k, v in split.items():
        if not v:
            raise ValueError(f"{root}: no decodable clips in the {k} split (folders {MTAT_SPLIT[k]})")
    if verbose:
        print(f"MTAT: {', '.join(f'{k} {len(v)}' for k, v in split.items())} clips; top-50 tags: {', '.join(tags[:8])}, ...")
    mean, std = mel_stats_of([r["mel"] for r in split["train"]])    # training-set stats only

    dev = torch.device(cfg.device)
    model = ShortChunkCNN(SCNNConfig(n_classes=N_TAGS, width=cfg.width, multilabel=True)).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    loader = torch.utils.data.DataLoader(MTATChunks(split["train"], mean, std, cfg.chunk), batch_size=cfg.batch,
                                         shuffle=True, drop_last=len(split["train"]) > cfg.batch,
                                         num_workers=cfg.workers)
    best = (-1.0, {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}, 0)

    def run_epoch(opt, epoch: int, phase: str) -> None:
        """One pass over the training clips, then validation; `best` keeps the best weights so far."""
        nonlocal best
        model.train()
        total, seen = 0.0, 0
        bar = tqdm(loader, desc=f"epoch {epoch}", leave=False, disable=not verbose)
        for x, y in bar:
            if len(x) < 2:
                continue
            loss = F.binary_cross_entropy_with_logits(model(x.to(dev)), y.to(dev))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(x)
            seen += len(x)
            bar.set_postfix(loss=f"{total / seen:.4f}")
        val_roc, val_pr, _ = macro_auc(*evaluate_clips(model, split["val"], mean, std, cfg))
        if verbose:
            print(f"epoch {epoch} ({phase}): train BCE {total / max(seen, 1):.4f}, val ROC-AUC {val_roc:.4f}, "
                  f"PR-AUC {val_pr:.4f}, {(time.time() - t0) / 60:.1f} min", flush=True)
        if not (val_roc <= best[0]):
            best = (val_roc, {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}, epoch)

    epoch = 0
    for epoch in range(1, cfg.epochs + 1):
        run_epoch(opt, epoch, "adam")
        if epoch - best[2] >= cfg.patience:
            break
    # (pjloop, optional) Won et al.'s SGD phase: each rate starts from the best weights so far, as
    # their solver reloads its best model at every switch; no early stopping inside this short phase.
    if cfg.sgd_epochs > 0:
        sgd = torch.optim.SGD(model.parameters(), lr=SGD_LRS[0], momentum=SGD_MOMENTUM, nesterov=True,
                              weight_decay=SGD_WEIGHT_DECAY)
        for i in range(cfg.sgd_epochs):
            stage = len(SGD_LRS) * i // cfg.sgd_epochs            # equal thirds: 0, 1, 2
            if i == 0 or stage != len(SGD_LRS) * (i - 1) // cfg.sgd_epochs:
                model.load_state_dict(best[1])
                for group in sgd.param_groups:
                    group["lr"] = SGD_LRS[stage]
            run_epoch(sgd, epoch + 1 + i, f"sgd {SGD_LRS[stage]:g}")
    model.load_state_dict(best[1])
    roc, pr, n_scored = macro_auc(*evaluate_clips(model, split["test"], mean, std, cfg))
    if verbose:
        print(f"test: ROC-AUC {roc:.4f}, PR-AUC {pr:.4f} (macro over {n_scored} tags, {len(split['test'])} "
              f"clips; the paper: 0.909 / 0.445)")
    ckpt = {
        "kind": "scnn_mtat",
        "state_dict": {k: v.cpu() for k, v in model.state_dict().items()},
        "model_config": asdict(model.cfg), "train_config": asdict(cfg),
        "label_names": tags,
        "mel_mean": torch.from_numpy(mean), "mel_std": torch.from_numpy(std),
        "roc_auc": roc, "pr_auc": pr, "n_tags_scored": n_scored, "val_roc_auc": best[0],
        "best_epoch": best[2], "skipped": [s["file"] for s in skipped],
        "n_clips": {k: len(v) for k, v in split.items()},
    }
    out = Path(out) if out else Path(ckpt_dir) / MTAT_CKPT_NAME
    save_checkpoint(ckpt, out)
    if verbose:
        print(f"saved {out}")
    ckpt["path"] = str(out)
    return ckpt


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--loops", choices=["drum", "synth"],
                    help="train SCNN_Loop on the embedded demo set of these loops (or on --data)")
    ap.add_argument("--data", help="train SCNN_Loop on this preprocessed loop data set")
    ap.add_argument("--mtat", metavar="ROOT", help="train SCNN_MTAT from a MagnaTagATune tree")
    ap.add_argument("--ckpt-dir", default="checkpoints")
    ap.add_argument("--out", help="checkpoint path (default: derived from the data set)")
    ap.add_argument("--cache", help="MTAT mel cache directory (default data/mtat_mels)")
    ap.add_argument("--epochs", type=int)
    ap.add_argument("--batch", type=int)
    ap.add_argument("--width", type=int, help="base channels (64 loop / 128 MTAT)")
    ap.add_argument("--max-minutes", type=float, help="SCNN_Loop: wall-clock cap")
    ap.add_argument("--sgd-epochs", type=int, default=0,
                    help="SCNN_MTAT: epochs of Won et al.'s SGD phase after Adam (lr 1e-3, 1e-4, 1e-5 in thirds)")
    ap.add_argument("--workers", type=int, default=0, help="MTAT data-loader workers")
    ap.add_argument("--threads", type=int, help="torch CPU threads")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args(argv)
    if bool(args.mtat) == bool(args.loops or args.data):
        ap.error("give --loops drum|synth and/or --data DIR (SCNN_Loop), or --mtat ROOT (SCNN_MTAT)")
    if args.threads:
        torch.set_num_threads(args.threads)
    over = {k: v for k, v in {"epochs": args.epochs, "batch": args.batch, "width": args.width}.items() if v}
    try:
        if not args.mtat:
            if args.data:
                data_dir = args.data
            else:
                import demoloops
                data_dir = demoloops.ensure_demo_set(args.loops)
            cfg = LoopTrainConfig(device=args.device, max_minutes=args.max_minutes, **over)
            train_loop_classifier(data_dir, cfg, out=args.out, ckpt_dir=args.ckpt_dir)
        else:
            if args.sgd_epochs < 0:
                ap.error(f"--sgd-epochs must be >= 0, got {args.sgd_epochs}")
            cfg = MTATConfig(device=args.device, workers=args.workers, sgd_epochs=args.sgd_epochs, **over)
            train_mtat(args.mtat, cfg, cache=args.cache, out=args.out, ckpt_dir=args.ckpt_dir)
    except (OSError, ValueError, ImportError, CheckpointError) as e:
        print(f"scnn.py: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
