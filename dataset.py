"""The loop data set on disk and the torch Dataset over it (paper Section 4 "Pipeline"; docs/design.md §1).

    DATA_DIR/wav/<id>.wav   one-bar loop, 16 kHz mono float, exactly 32 000 samples
    DATA_DIR/mel/<id>.npy   (F=64, T=200) float32 raw log10 mel of that wav (mel.log_mel)
    manifest.csv, stats.npz (per-band mean/std), skipped.csv; report.csv, progress.jsonl for real loops

demo/loops.py and preprocess.py both write this layout, so everything downstream treats them alike. Files
are written atomically, manifest last: a folder with manifest.csv and stats.npz is complete (`is_complete`).
`LoopMelDataset` serves the mels in the GAN's layout, (1, T=200, F=64) standardised (mel.to_gan).
Every file and column: docs/modules.md, "dataset.py".
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from plumbing import paths
from plumbing.files import atomic_write, read_csv, write_csv, write_npy, write_wav
from mel import LOOP_SAMPLES, N_FRAMES, N_MELS, SR, band_stats_of_files, log_mel, to_gan

MANIFEST_FIELDS = ["id", "source", "bar", "bpm", "genre"]
SKIP_FIELDS = ["file", "reason"]
REPORT_FIELDS = ["file", "genre", "bars_kept", "bpm", "rule", "confidence", "skipped"]
UNLABELLED = ""           # the genre of a loop that has none: the GAN needs no labels, only scnn_loop/IS do
REPO = paths.REPO        # the repository; what lives where by default: plumbing/paths.py ($PJLOOP_HOME)
FINGERPRINT_HEX = 10     # hex digits of a manifest's sha1 that name a data set's own checkpoints
LOOP_BYTES = 4 * (LOOP_SAMPLES + N_MELS * N_FRAMES)   # one loop on disk, about: float32 WAV + float32 mel


def default_data_dir(loops: str) -> Path:
    """Where the embedded demo set of kind `loops` lives: <data root>/demo_<loops>, the data root being
    $PJLOOP_DATA_ROOT, else $PJLOOP_HOME/data, else <repo>/data. (demo/loops.py renders it there on first use.)"""
    return paths.data_root() / f"demo_{loops}"


def manifest_hash(data_dir: str | Path) -> str:
    """A data set's fingerprint: the start of its manifest's sha1. Two sets in folders of the same name, or one
    set rebuilt with other loops, get different ones, so a checkpoint named by it (a loop-genre classifier, a
    vocoder) is never taken for another set's."""
    p = Path(data_dir) / "manifest.csv"
    if not p.is_file():
        raise FileNotFoundError(f"{data_dir} is not a preprocessed loop data set (no manifest.csv)")
    return hashlib.sha1(p.read_bytes()).hexdigest()[:FINGERPRINT_HEX]


# ---------------------------------------------------------------------------------------------
# Loops, stats and the manifest.
# ---------------------------------------------------------------------------------------------
def save_loop(data_dir: str | Path, loop_id: str, audio: np.ndarray) -> np.ndarray:
    """Write one kept loop (exactly LOOP_SAMPLES samples) as wav/<id>.wav and mel/<id>.npy; return its mel."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.shape != (LOOP_SAMPLES,):
        raise ValueError(f"a loop must be ({LOOP_SAMPLES},) samples, got {audio.shape}")
    mel = log_mel(audio)                                                               # (64, 200)
    write_wav(Path(data_dir) / "wav" / f"{loop_id}.wav", audio)
    write_npy(Path(data_dir) / "mel" / f"{loop_id}.npy", mel)
    return mel


def finalize_dataset(data_dir: str | Path, rows: list[dict], skipped: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """Write manifest.csv, skipped.csv and stats.npz (over every mel in the manifest); return the stats."""
    data_dir = Path(data_dir)
    if not rows:
        raise ValueError(f"no loops were kept in {data_dir}; see {data_dir / 'skipped.csv'}")
    write_csv(data_dir / "skipped.csv", SKIP_FIELDS, skipped)
    mean, std = band_stats_of_files(data_dir / "mel" / f"{r['id']}.npy" for r in rows)

    def _write(tmp):
        with open(tmp, "wb") as f:
            np.savez(f, mean=mean, std=std, n=len(rows))
    atomic_write(data_dir / "stats.npz", _write)
    # The manifest is written last: a data set with a manifest is complete.
    write_csv(data_dir / "manifest.csv", MANIFEST_FIELDS, rows)
    return mean, std


def require_genre_labels(data_dir: str | Path, who: str) -> None:
    """Raise ValueError, naming the remedy, when some loop of a data set has no genre label."""
    rows = read_csv(Path(data_dir) / "manifest.csv")
    missing = sum(r["genre"] == UNLABELLED for r in rows)
    if missing:
        raise ValueError(f"{who} needs a genre label for every loop, but {missing} of {len(rows)} loops in "
                         f"{data_dir} have none. Give them one: put the loop files in AUDIO_DIR/<genre>/ "
                         "sub-folders, or pass --labels CSV (columns file,genre), and run preprocess.py again "
                         "(finished files are reused: only the labels are read anew)")


def load_stats(data_dir: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """mean (64,), std (64,) of a data set."""
    with np.load(Path(data_dir) / "stats.npz") as s:
        return s["mean"].astype(np.float32), s["std"].astype(np.float32)


def is_complete(data_dir: str | Path) -> bool:
    """A data set is usable once its manifest and stats exist (they are written last, atomically)."""
    return (Path(data_dir) / "manifest.csv").exists() and (Path(data_dir) / "stats.npz").exists()


# ---------------------------------------------------------------------------------------------
# Splits by source file. Sibling bars of one file sound alike, so a split by loop would put the same
# recording on both sides; every split in pjloop is by the manifest's `source` instead. A source's part is a
# hash of its name, so it never changes when files are added or removed, and every consumer agrees:
#   train (80 %): the GAN, the vocoder, SCNN_loop's training part and the genre judge train on it;
#   held-out (20 %) = val (10 %) + test (10 %): the evaluation reference, the vocoder benchmark and the judge's
#   accuracy use all of it; SCNN_loop keeps its best epoch on val and reports test (the paper's 80/10/10).
# ---------------------------------------------------------------------------------------------
SPLIT_BUCKETS = 100              # a source's bucket: the first 8 hex digits of sha1(source) mod 100
VAL_BUCKETS = range(10, 20)      # 10 %: SCNN_loop's validation part (held out from the GAN too)
TEST_BUCKETS = range(0, 10)      # 10 %: SCNN_loop's test part (held out from the GAN too)
MIN_SPLIT_SOURCES = 20           # fewer sources: too few to hold any out; everything is "train"


def source_bucket(source: str) -> int:
    """0..99, a fixed function of the source's name (independent of the rest of the data set)."""
    return int(hashlib.sha1(source.encode("utf-8")).hexdigest()[:8], 16) % SPLIT_BUCKETS


def source_part(source: str) -> str:
    """'train', 'val' or 'test' for one source file (ignores MIN_SPLIT_SOURCES; see split_rows)."""
    b = source_bucket(source)
    return "test" if b in TEST_BUCKETS else "val" if b in VAL_BUCKETS else "train"


def split_rows(rows: list[dict]) -> dict[str, list[dict]]:
    """Manifest rows -> {'train', 'val', 'test', 'heldout' (= val + test)}: lists of rows, split by source.
    A set of fewer than MIN_SPLIT_SOURCES sources holds nothing out (everything trains)."""
    parts = {"train": [], "val": [], "test": []}
    few = len({r["source"] for r in rows}) < MIN_SPLIT_SOURCES
    for r in rows:
        parts["train" if few else source_part(r["source"])].append(r)
    parts["heldout"] = parts["val"] + parts["test"]
    return parts


def split_ids(data_dir: str | Path, part: str) -> list[str]:
    """The ids of one part ('train', 'val', 'test', 'heldout') of a data set, in manifest order."""
    return [r["id"] for r in split_rows(read_csv(Path(data_dir) / "manifest.csv"))[part]]


def source_digest(source: str) -> str:
    """What a checkpoint records of each source it trained on: 12 hex digits of sha1 (short, not reversible
    to a path, enough to name an overlap)."""
    return hashlib.sha1(source.encode("utf-8")).hexdigest()[:12]


def sources_of(data_dir: str | Path, ids: list[str] | None = None) -> list[str]:
    """Sorted source digests of the loops `ids` of a data set (all its loops when None)."""
    rows = read_csv(Path(data_dir) / "manifest.csv")
    keep = None if ids is None else set(ids)
    return sorted({source_digest(r["source"]) for r in rows if keep is None or r["id"] in keep})


def overlap(trained_on: list[str] | None, data_dir: str | Path, ids: list[str]) -> list[str]:
    """Source digests of `ids` that a model trained on (empty when it recorded none: an older checkpoint)."""
    if not trained_on:
        return []
    return sorted(set(trained_on) & set(sources_of(data_dir, ids)))


OVERLAP_SHOWN = 3                # digests a refusal names: enough to find the files, short enough for one line


def describe_overlap(shared: list[str]) -> str:
    """How a refusal names an overlap in one line: '12 source files (3f2a..., 9c01..., 77be..., ...)'."""
    more = ", ..." if len(shared) > OVERLAP_SHOWN else ""
    return f"{len(shared)} source file{'s' * (len(shared) != 1)} ({', '.join(shared[:OVERLAP_SHOWN])}{more})"


# ---------------------------------------------------------------------------------------------
# The torch Dataset used by training (and by the feature-network classifiers).
# ---------------------------------------------------------------------------------------------
class LoopMelDataset(torch.utils.data.Dataset):
    """All mels of a data set in memory, standardised with its stats, as (1, T=200, F=64) tensors.

    `genres` is the sorted list of genre names; `labels[i]` indexes it. Items are (mel, label).
    """

    def __init__(self, data_dir: str | Path, ids: list[str] | None = None):
        self.data_dir = Path(data_dir)
        if not is_complete(self.data_dir):
            raise FileNotFoundError(f"{self.data_dir} is not a preprocessed loop data set "
                                    "(no manifest.csv/stats.npz): run preprocess.py or demo/loops.py first")
        rows = read_csv(self.data_dir / "manifest.csv")
        if ids is not None:
            keep = set(ids)
            rows = [r for r in rows if r["id"] in keep]
        self.rows = rows
        self.mean, self.std = load_stats(self.data_dir)
        self.genres = sorted({r["genre"] for r in read_csv(self.data_dir / "manifest.csv")})
        self.labels = torch.tensor([self.genres.index(r["genre"]) for r in rows], dtype=torch.long)
        mels = np.stack([np.load(self.data_dir / "mel" / f"{r['id']}.npy") for r in rows]) if rows \
            else np.zeros((0, N_MELS, N_FRAMES), np.float32)                           # (N, 64, 200)
        self.mels = to_gan(mels, self.mean, self.std)                                  # (N, 1, T=200, F=64)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.mels[i], self.labels[i]
