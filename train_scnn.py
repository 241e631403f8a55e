"""Training the short-chunk CNNs: SCNN_Loop, the loop-genre classifier, and the command line for both
(paper Section 3.1 "Domain specific" and Section 5 "Inception Score"; docs/design.md §2).

    python train_scnn.py --loops drum [--data DIR]     SCNN_Loop on the demo set (or DIR)'s genre labels
    python train_scnn.py --mtat ROOT                   SCNN_MTAT on MagnaTagATune (mtat.py does the work)

Data: standardised mels (N, 1, T=200, F=64) and genre labels (N,); SCNN_Loop trains on random cyclic
1-second crops (what the projector shows it). The paper's 80/10/10 split is dataset.split_rows' train / val /
test, by source file (sibling bars of one file never on two sides); best validation epoch kept, test accuracy
reported, the training part's source files recorded in the checkpoint (`trained_sources`).
`ensure_loop_classifier` is what train.py calls first: it trains only when the checkpoint is missing, and
says so. Why crops: docs/modules.md, "train_scnn.py".
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import demo.loops
import mtat
from plumbing.checkpoint import CheckpointError, save_checkpoint
from plumbing.devices import default_device
from plumbing.progress import Progress
from dataset import MIN_SPLIT_SOURCES, LoopMelDataset, require_genre_labels, sources_of, split_ids, split_rows
from mel import N_MELS
from scnn import CHUNK, LOOP_WIDTH, SCNNConfig, ShortChunkCNN, loop_checkpoint_path, manifest_hash

VALIDATION_OVERHEAD = 0.15   # the per-epoch validation pass (10 % of the loops, forward only, whole
                             # 2-s loops) costs about this fraction of a training epoch
TIMING_STEPS = 2             # optimiser steps timed by `estimate_minutes`


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
    seed: int = 0                 # fixes the initialisation and the batch order (the split is by source file)
    max_minutes: float | None = None  # optional wall-clock cap (the best weights so far are kept)
    device: str = "cpu"


# ---------------------------------------------------------------------------------------------
# Small pure pieces
# ---------------------------------------------------------------------------------------------
def split_indices(rows: list[dict]) -> list[list[int]]:
    """Manifest rows -> [train, val, test] indices into them: dataset.split_rows' parts (the paper's 80/10/10,
    by source file). A set of too few source files holds nothing out: val and test are empty."""
    parts = split_rows(rows)
    index = {r["id"]: i for i, r in enumerate(rows)}
    return [[index[r["id"]] for r in parts[p]] for p in ("train", "val", "test")]


def random_cyclic_crop(mels: torch.Tensor, length: int, gen: torch.Generator) -> torch.Tensor:
    """(B, 1, T, F) loops -> (B, 1, length, F) crops at random offsets, wrapping around the end.
    A one-bar loop is seamless by construction, so a wrapped crop is still a plausible second of it."""
    B, _, T, _ = mels.shape
    off = torch.randint(0, T, (B,), generator=gen)
    idx = ((off[:, None] + torch.arange(length)[None]) % T).to(mels.device)    # (B, length)
    return torch.gather(mels, 2, idx[:, None, :, None].expand(B, 1, length, mels.shape[3]))


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
# The training loop
# ---------------------------------------------------------------------------------------------
@torch.no_grad()
def loop_accuracy(model: ShortChunkCNN, mels: torch.Tensor, labels: torch.Tensor, batch: int = 64):
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
    model.train()
    perm = torch.randperm(len(X), generator=gen)
    total, seen = 0.0, 0
    starts = range(0, len(perm), cfg.batch)
    bar = Progress(total=len(starts), desc=desc or "", unit="batch", leave=False, enabled=desc is not None)
    for i in starts:
        bar.update(1)
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
    bar.close()
    return total / max(seen, 1)


def train_loop_classifier(data_dir: str | Path, cfg: LoopTrainConfig = LoopTrainConfig(),
                          out: str | Path | None = None, ckpt_dir: str | Path | None = None,
                          verbose: bool = True) -> dict:
    """Train SCNN_Loop on a data set's genre labels; save and return the checkpoint dict."""
    t0 = time.time()
    data_dir = Path(data_dir)
    torch.manual_seed(cfg.seed)
    require_genre_labels(data_dir, "the loop-genre classifier scnn_loop (and the IS built on it)")
    ds = LoopMelDataset(data_dir)                            # mels (N, 1, 200, 64), z-scored with stats.npz
    if len(ds.genres) < 2:
        raise ValueError(f"{data_dir}: a genre classifier needs at least 2 genres, found {ds.genres}")
    ids = [r["id"] for r in ds.rows]
    train_idx, val_idx, test_idx = split_indices(ds.rows)
    if not test_idx and verbose:
        print(f"{data_dir} has fewer than {MIN_SPLIT_SOURCES} source files: nothing is held out, every loop "
              "trains, and the test accuracy is not measured", flush=True)
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
        val_acc, _ = loop_accuracy(model, Xva, Yva) if len(val_idx) else (float("nan"), None)
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
    test_acc, pred = loop_accuracy(model, Xte, Yte)
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
        # One digest per source file it fit on (dataset.source_digest); val only picked the epoch.
        "trained_sources": sources_of(data_dir, [ids[i] for i in train_idx]),
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


def estimate_minutes(n_loops: int, cfg: LoopTrainConfig = LoopTrainConfig()) -> float:
    """Rough training time for `n_loops` training loops: time a couple of training steps on this machine
    and scale them up."""
    model = ShortChunkCNN(SCNNConfig(n_classes=8, width=cfg.width)).to(cfg.device)
    opt = torch.optim.Adam(model.parameters())
    x = torch.randn(cfg.batch, 1, cfg.crop, N_MELS, device=cfg.device)    # (batch, 1, 100, 64)
    y = torch.zeros(cfg.batch, dtype=torch.long, device=cfg.device)
    t = time.time()
    for _ in range(TIMING_STEPS):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    per_step = (time.time() - t) / TIMING_STEPS
    steps = cfg.epochs * math.ceil(n_loops / cfg.batch) * (1 + VALIDATION_OVERHEAD)
    return per_step * steps / 60


def ensure_loop_classifier(loops: str, data_dir: str | Path | None, ckpt_dir: str | Path | None = None,
                           device: str = "cpu") -> Path:
    """The scnn_loop checkpoint of a data set (None: the `loops` demo set, rendered if needed); trained
    here first, with an announcement on stdout, only when it does not exist yet. -> its path."""
    data_dir = Path(data_dir) if data_dir is not None else demo.loops.ensure_demo_set(loops)
    path = loop_checkpoint_path(data_dir, ckpt_dir)
    if path.is_file():
        return path
    require_genre_labels(data_dir, "the loop-genre classifier scnn_loop (and the IS built on it)")   # before announcing
    cfg = LoopTrainConfig(device=device)
    n = len(split_ids(data_dir, "train"))
    print(f"training the loop-genre classifier scnn_loop on {data_dir} (first use, about "
          f"{max(1, round(estimate_minutes(n, cfg)))} minutes) ...", flush=True)
    train_loop_classifier(data_dir, cfg, out=path)
    return path


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--loops", choices=["drum", "synth"],
                    help="train SCNN_Loop on the embedded demo set of these loops (or on --data)")
    ap.add_argument("--data", help="train SCNN_Loop on this preprocessed loop data set")
    ap.add_argument("--mtat", metavar="ROOT", help="train SCNN_MTAT from a MagnaTagATune tree")
    ap.add_argument("--ckpt-dir", default=None, help="folder of feature-network checkpoints (default "
                    "$PJLOOP_HOME/checkpoints, the repository's checkpoints/ when unset)")
    ap.add_argument("--out", help="checkpoint path (default: derived from the data set)")
    ap.add_argument("--cache", help=f"MTAT mel cache directory (default <data root>/{mtat.MTAT_CACHE_NAME}: "
                    "$PJLOOP_DATA_ROOT, else $PJLOOP_HOME/data)")
    ap.add_argument("--epochs", type=int, help=f"epochs (default {LoopTrainConfig.epochs} loop, "
                                                     f"{mtat.MTATConfig.epochs} MTAT as Won et al.)")
    ap.add_argument("--batch", type=int, help=f"batch in clips (default {LoopTrainConfig.batch} loop, "
                                                    f"{mtat.MTATConfig.batch} MTAT as Won et al.)")
    ap.add_argument("--width", type=int, help="base channels (64 loop / 128 MTAT)")
    ap.add_argument("--max-minutes", type=float, help="SCNN_Loop: wall-clock cap in minutes (the best weights so far are kept)")
    ap.add_argument("--sgd-epochs", type=int, default=0,
                    help="SCNN_MTAT: epochs of Won et al.'s SGD phase after Adam (lr 1e-3, 1e-4, 1e-5 in thirds; default 0 = none)")
    ap.add_argument("--workers", type=int, default=0, help="MTAT data-loader workers (default 0: in this process)")
    ap.add_argument("--threads", type=int, help="torch CPU threads")
    ap.add_argument("--device", default=default_device(), help="cpu or cuda (default: cuda when available)")
    args = ap.parse_args(argv)
    if bool(args.mtat) == bool(args.loops or args.data):
        ap.error("give --loops drum|synth and/or --data DIR (SCNN_Loop), or --mtat ROOT (SCNN_MTAT)")
    if args.mtat and args.sgd_epochs < 0:
        ap.error(f"--sgd-epochs must be >= 0, got {args.sgd_epochs}")
    if args.threads:
        torch.set_num_threads(args.threads)
    over = {k: v for k, v in {"epochs": args.epochs, "batch": args.batch, "width": args.width}.items() if v}
    try:
        if args.mtat:
            cfg = mtat.MTATConfig(device=args.device, workers=args.workers, sgd_epochs=args.sgd_epochs, **over)
            mtat.train_mtat(args.mtat, cfg, cache=args.cache, out=args.out, ckpt_dir=args.ckpt_dir)
        else:
            data_dir = args.data or demo.loops.ensure_demo_set(args.loops)
            cfg = LoopTrainConfig(device=args.device, max_minutes=args.max_minutes, **over)
            train_loop_classifier(data_dir, cfg, out=args.out, ckpt_dir=args.ckpt_dir)
    except (OSError, ValueError, ImportError, CheckpointError) as e:
        print(f"train_scnn.py: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
