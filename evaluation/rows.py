"""Evaluation results as rows: the CSV columns, one Table-1-style line per row, and the CSV writer
(paper Section 5, Table 1). Used by evaluate.py and reproduce.py.

A row is a dict keyed by ROW_FIELDS (plus any extra keys a caller adds): the metrics of evaluation/metrics.py for one
generator checkpoint (`checkpoint_row`) or for the real floor, N training loops against the reference (`real_row`).
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl                   # POSIX file locks: several processes may append to one CSV (reproduce --jobs)
except ImportError:                # Windows: no lock; one writer per CSV at a time
    fcntl = None

from plumbing.files import read_csv, write_csv


def kad_fields(suffix: str) -> list[str]:
    """KAD of one embedding and its companions: the bootstrap interval (_lo, _hi) and the permutation p-value (_p)."""
    return [f"KAD{suffix}", f"KAD{suffix}_lo", f"KAD{suffix}_hi", f"KAD{suffix}_p"]


# The headline first: KAD on MSD_musicnn (from the audio, then from the mels), each beside its FAD and FAD-inf.
ROW_FIELDS = ["model", "features", "loops", "step", "hours", "train_minutes", "n_fake", "n_real", "IS", "IS_std",
              "IS_clf_acc", *kad_fields("_musicnn"), "FAD_musicnn", "FADinf_musicnn", "KID_musicnn", "KID_musicnn_std",
              *kad_fields("_musicnn_mel"), "FAD_musicnn_mel", "FADinf_musicnn_mel", "KID_musicnn_mel",
              "KID_musicnn_mel_std", *kad_fields("_vgg16rand"), "FAD_vgg16rand", "KID_vgg16rand", "KID_vgg16rand_std",
              "density", "coverage", *kad_fields("_aisfx"), "FAD_aisfx", "KID_aisfx", "KID_aisfx_std",
              *kad_fields(""), "FAD", "KID", "KID_std", "loop_fake", "loop_real",
              "copies", "vocoder", "eval_seconds", "ckpt"]


def _fmt(v, spec=".2f") -> str:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return "-"
    return "-" if math.isnan(v) else format(v, spec)


def _clf_note(row: dict) -> str:
    acc = _fmt(row.get("IS_clf_acc"), ".3f")
    return "classifier accuracy unknown" if acc == "-" else f"classifier acc {acc}"


def _kad(row: dict, suffix: str) -> str:
    """'0.123 [0.050, 0.201] p 0.002': KAD<suffix>, its bootstrap interval and permutation p-value."""
    return (f"{_fmt(row.get(f'KAD{suffix}'), '.3g')} [{_fmt(row.get(f'KAD{suffix}_lo'), '.3g')}, "
            f"{_fmt(row.get(f'KAD{suffix}_hi'), '.3g')}] p {_fmt(row.get(f'KAD{suffix}_p'), '.2g')}")


def format_row(row: dict) -> str:
    """One Table-1-style line. The headline first: KAD on MSD_musicnn from the audio (independent of every
    discriminator; from the mels in brackets) with its 95 % bootstrap interval and permutation p-value; then
    IS, FAD (FAD-inf beside it) and KID; FAD_aisfx is the offline stand-in for the paper's FAD."""
    return (f"{row.get('model', '?'):<28} {row.get('features', ''):<16} step {row.get('step', '-'):>7} "
            f"{_fmt(row.get('hours', float('nan')), '.2f'):>6} h "
            f"| KAD_musicnn {_kad(row, '_musicnn')} (mels: {_kad(row, '_musicnn_mel')}) "
            f"| IS {_fmt(row['IS'])} ± {_fmt(row['IS_std'])} ({_clf_note(row)}) "
            f"| FAD_musicnn {_fmt(row.get('FAD_musicnn'), '.3f')} (inf {_fmt(row.get('FADinf_musicnn'), '.3f')}) "
            f"KID_musicnn {_fmt(row.get('KID_musicnn'), '.4g')} "
            f"(mels: {_fmt(row.get('FAD_musicnn_mel'), '.3f')} (inf {_fmt(row.get('FADinf_musicnn_mel'), '.3f')}), "
            f"{_fmt(row.get('KID_musicnn_mel'), '.4g')}) "
            f"| FAD_vgg16rand {_fmt(row.get('FAD_vgg16rand'), '.3f')} KID_vgg16rand {_fmt(row.get('KID_vgg16rand'), '.4g')} "
            f"KAD_vgg16rand {_fmt(row.get('KAD_vgg16rand'), '.3g')} "
            f"| D {_fmt(row['density'])} C {_fmt(row['coverage'])} "
            f"| FAD {_fmt(row['FAD'])} | FAD_aisfx (offline stand-in) {_fmt(row['FAD_aisfx'], '.3f')} "
            f"| KID {_fmt(row['KID'], '.4g')} KID_aisfx {_fmt(row['KID_aisfx'], '.4g')} "
            f"KAD {_fmt(row.get('KAD'), '.3g')} KAD_aisfx {_fmt(row.get('KAD_aisfx'), '.3g')} "
            f"| loop {_fmt(row['loop_fake'])} (real {_fmt(row['loop_real'])}) | copies {_fmt(row.get('copies'))} "
            f"| N {row['n_fake']}/{row['n_real']}")


def table_header() -> str:
    return ("Table 1 (pjloop): KAD_musicnn↓ [95 % bootstrap interval] p (permutation test of 'same distribution') "
            "(headline: a music embedding no discriminator uses, unbiased in N; from the mels in brackets) | IS↑ "
            "(+ its classifier's held-out accuracy) | FAD_musicnn↓ (FAD-inf) KID_musicnn↓ | FAD_vgg16rand↓ "
            "KID_vgg16rand↓ KAD_vgg16rand↓ D↑ C↑ | FAD↓ (VGGish) FAD_aisfx↓ (offline stand-in) KID↓ KAD↓ | loopability "
            "(~real is good) | copies↓ (share "
            "nearer to a training loop than 99 % of held-out loops are; ~0.01 is new)")


@contextmanager
def _locked(path: Path):
    """Hold an exclusive lock on `path`.lock (where the OS has them) for a read-modify-write of `path`."""
    with open(path.with_name(path.name + ".lock"), "a") as f:
        if fcntl is not None:
            fcntl.flock(f, fcntl.LOCK_EX)          # released when the file closes
        yield


def append_csv(path: str | Path, row: dict) -> None:
    """Append a row by atomically rewriting the whole file (previous rows kept; new columns added), under a
    lock, so that processes appending to the same file at once lose nothing."""
    path = Path(path)
    with _locked(path):
        rows = read_csv(path)
        fields = list(rows[0].keys()) if rows else []
        fields += [f for f in dict.fromkeys([*ROW_FIELDS, *row]) if f not in fields]   # each column once
        write_csv(path, fields, rows + [{k: ("" if v is None else v) for k, v in row.items()}])


def checkpoint_row(ckpt: dict, ckpt_path, metrics: dict, vocoder_name: str = "") -> dict:
    feats = ckpt.get("features", "")
    feats = "+".join(feats) if isinstance(feats, (list, tuple)) else str(feats)
    secs = float(ckpt["train_seconds"]) if ckpt.get("train_seconds") is not None else float("nan")
    return {"model": Path(ckpt_path).parent.name, "features": feats or "none", "loops": ckpt.get("loops", ""),
            "step": int(ckpt.get("step", -1)), "hours": secs / 3600, "train_minutes": secs / 60,
            **metrics, "vocoder": vocoder_name, "ckpt": str(ckpt_path)}


def real_row(metrics: dict, data_dir) -> dict:
    """The real floor (evaluate.real_floor): N training loops against the N held-out reference loops."""
    return {"model": "Real floor (train vs held-out)", "features": "-", "loops": Path(data_dir).name, "step": "",
            "hours": float("nan"), "train_minutes": float("nan"), **metrics, "vocoder": "-", "ckpt": ""}
