"""MagnaTagATune and SCNN_MTAT, the 50-tag music tagger (paper Section 3.1 "Domain specific";
docs/design.md §2; Won et al. 2020): the annotation reader, the training run and its ROC-/PR-AUC.

Run as `python train_scnn.py --mtat ROOT [--sgd-epochs N]`, ROOT holding annotations_final.csv and the mp3
folders 0-f. The network is scnn.py's ShortChunkCNN (width 128).

Layout: each clip decoded once into a cached (F=64, T) float16 log10 mel; training reads one random 1-second
crop per clip per epoch, (B, 1, T=100, F=64) z-scored, against (B, 50) multi-hot labels; evaluation averages
16 evenly spaced chunks per clip. Where it deviates from Won et al. (1-s chunks; Adam only unless
--sgd-epochs): docs/modules.md, "mtat.py".
"""
from __future__ import annotations

import csv
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from plumbing import paths
from plumbing.audio_io import load_mono, resample
from plumbing.checkpoint import save_checkpoint
from dataset import SKIP_FIELDS
from plumbing.files import write_csv, write_npy
from plumbing.progress import Progress
from mel import HOP, SR, band_stats_of_files, log_mel, to_gan
from scnn import CHUNK, MTAT_CKPT_NAME, MTAT_WIDTH, SCNNConfig, ShortChunkCNN

MTAT_SPLIT = {"train": "0123456789ab", "val": "c", "test": "def"}   # the official split by folder
N_TAGS = 50
SGD_LRS = (1e-3, 1e-4, 1e-5)   # Won et al.'s SGD phase: three rates, here an equal third of sgd_epochs each
SGD_MOMENTUM = 0.9             # Nesterov, as Won et al.
SGD_WEIGHT_DECAY = 1e-4        # as Won et al.'s solver (their code; the paper does not say)
DECODE_LOG_EVERY = 1000        # clips between two progress lines in a log file (~26 k clips in all)
MTAT_CACHE_NAME = "mtat_mels"     # the decoded-mel cache, a folder of the data root (plumbing/paths.py)


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


# ---------------------------------------------------------------------------------------------
# ROC-AUC and PR-AUC, SCNN_MTAT's tagging metrics: small pure functions, as sklearn is not a pjloop
# dependency
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
    """Any file libsndfile reads (MTAT: mp3) -> 16 kHz mono float32, through audio_io's loader
    (which raises audio_io.SkipFile, with the reason, for an unreadable or empty file)."""
    audio, sr = load_mono(path)                                                        # (N,)
    return resample(audio, sr, SR)


def cache_mtat_mels(root: str | Path, rows: list[dict], cache: str | Path, verbose: bool = True):
    """Decode every clip once into cache/<mp3 path>.npy, (64, T) float16 log10 mel (half the disk of
    float32; far below the mel's own precision). Returns (kept rows with 'mel' set, skipped list)."""
    root, cache = Path(root), Path(cache)
    kept, skipped = [], []
    bar = Progress(total=len(rows), desc="decoding MTAT", unit="clip", enabled=verbose, every=DECODE_LOG_EVERY)
    for r in rows:
        bar.update(1)
        npy = cache / (r["mp3_path"] + ".npy")
        if not npy.is_file():
            try:
                audio = decode_audio(root / r["mp3_path"])
                if len(audio) < HOP * CHUNK:
                    raise ValueError(f"only {len(audio)} samples")
                write_npy(npy, log_mel(audio).astype(np.float16))
            except Exception as e:   # a broken or missing mp3 is skipped, not fatal
                skipped.append({"file": r["mp3_path"], "reason": f"{type(e).__name__}: {e}"})
                continue
        kept.append(dict(r, mel=str(npy)))
    bar.close()
    return kept, skipped


def mel_stats_of(paths: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per-band mean/std over every frame of the given cached mels, one file in memory at a time."""
    return band_stats_of_files(paths)


class MTATChunks(torch.utils.data.Dataset):
    """One random `chunk`-frame crop per clip per epoch: (1, chunk, 64) z-scored mel, (50,) labels."""

    def __init__(self, rows: list[dict], mean, std, chunk: int):
        self.rows, self.mean, self.std, self.chunk = rows, mean, std, chunk

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        m = np.load(self.rows[i]["mel"], mmap_mode="r")       # (64, T)
        s = np.random.randint(0, m.shape[1] - self.chunk + 1)
        return (to_gan(m[:, s:s + self.chunk], self.mean, self.std)[0],    # (1, chunk, 64)
                torch.from_numpy(self.rows[i]["labels"].astype(np.float32)))


@torch.no_grad()
def evaluate_clips(model: ShortChunkCNN, rows: list[dict], mean, std, cfg: MTATConfig):
    """Clip-level sigmoid scores: the mean over `eval_chunks` evenly spaced chunks. -> (Y (N, 50), S (N, 50))."""
    model.eval()
    Y, S = [], []
    for r in rows:
        m = np.load(r["mel"]).astype(np.float32)             # (64, T)
        starts = np.linspace(0, m.shape[1] - cfg.chunk, cfg.eval_chunks).astype(int)
        x = to_gan(np.stack([m[:, s:s + cfg.chunk] for s in starts]), mean, std)  # (16, 1, chunk, 64)
        S.append(torch.sigmoid(model(x.to(cfg.device))).mean(0).cpu().numpy())
        Y.append(r["labels"])
    return np.array(Y), np.array(S)


def train_mtat(root: str | Path, cfg: MTATConfig = MTATConfig(), cache: str | Path | None = None,
               out: str | Path | None = None, ckpt_dir: str | Path | None = None, verbose: bool = True) -> dict:
    """Train the top-50 MagnaTagATune tagger; save and return the checkpoint (with test ROC-/PR-AUC)."""
    t0 = time.time()
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    root = Path(root)
    cache = Path(cache) if cache else paths.data_root() / MTAT_CACHE_NAME
    tags, rows = read_mtat_annotations(root)
    rows, skipped = cache_mtat_mels(root, rows, cache, verbose)
    if skipped:
        print(f"skipped {len(skipped)} clips that could not be decoded, e.g. "
              + "; ".join(f"{s['file']} ({s['reason']})" for s in skipped[:5]))
        write_csv(cache / "skipped.csv", SKIP_FIELDS, skipped)
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
        bar = Progress(total=len(loader), desc=f"epoch {epoch}", unit="batch", leave=False, enabled=verbose)
        for x, y in loader:
            bar.update(1)
            if len(x) < 2:
                continue
            loss = F.binary_cross_entropy_with_logits(model(x.to(dev)), y.to(dev))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(x)
            seen += len(x)
            bar.set_postfix(loss=f"{total / seen:.4f}")
        bar.close()
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
    out = Path(out) if out else paths.checkpoints(ckpt_dir) / MTAT_CKPT_NAME
    save_checkpoint(ckpt, out)
    if verbose:
        print(f"saved {out}")
    ckpt["path"] = str(out)
    return ckpt
