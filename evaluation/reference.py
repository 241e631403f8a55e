"""The real reference a generator is scored against (paper Section 5; the split by source file is pjloop's):
N loops of the data set's held-out source files (dataset.split_rows), embedded once and cached, plus what the
`copies` column needs (every training loop's musicnn_mel), and the refusals that keep a score honest: too few
held-out loops, or a checkpoint that trained on the reference's source files.

    part_ids / load_real_set   a seeded choice of n loops of one part -> audio (n, 32 000), log10 mels (n, 64, 200)
    prepare_real               -> RealSet: the reference's features (evaluation.embeddings.embed_set), the networks
    copies_column              generated features + RealSet -> the share of near-copies of training loops
    check_unseen               a generator checkpoint + the reference's ids -> RefusedReference on an overlap

evaluate.py scores generated sets against a RealSet (evaluate.prepare_real is this module's prepare_real).
"""
from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

import scnn
from dataset import MIN_SPLIT_SOURCES, describe_overlap, is_complete, overlap, sources_of, split_ids
from evaluation.embeddings import VGG16_FC_DIM, EvalNets, embed_set, load_eval_nets
from evaluation.metrics import copies_share, nearest_distances
from generator import BEFORE_KEY
from plumbing.files import atomic_write
from plumbing.paths import eval_cache
from standins import musicnn_features

# The reference is the held-out part of the data set (dataset.split_rows, by source file): files that G (trained
# with --split train), the vocoder and the judge never saw. Its real floor and the copies column read the rest.
REFERENCE_PART = "heldout"
TRAIN_PART = "train"


class RefusedReference(ValueError):
    """A reference evaluate.py will not score against, in one line that says what to do instead: too few
    held-out loops, or a checkpoint that trained on the reference's source files."""


def part_ids(data_dir: str | Path, n: int, seed: int = 0, part: str = REFERENCE_PART) -> list[str]:
    """n ids of one part of a data set (dataset.split_rows), a seeded choice: the first n of one fixed
    permutation of the part, so a larger request contains a smaller one. RefusedReference when the part is
    empty (too few source files to hold any out) or smaller than n -- never a silently smaller set."""
    data_dir = Path(data_dir)
    if not is_complete(data_dir):
        raise FileNotFoundError(f"--data {data_dir} is not a preprocessed loop data set (no manifest.csv/"
                                f"stats.npz): run preprocess.py or demo/loops.py first")
    ids = split_ids(data_dir, part)
    if not ids:
        raise RefusedReference(f"{data_dir} has {len(sources_of(data_dir))} source files, fewer than "
                               f"{MIN_SPLIT_SOURCES}: too few to hold any out, so there is no held-out reference to "
                               "evaluate against; give --data a set of more source files")
    if n > len(ids):
        raise RefusedReference(f"the {part} part of {data_dir} has {len(ids)} loops (from "
                               f"{len(sources_of(data_dir, ids))} source files), fewer than -n {n}: pass -n "
                               f"{len(ids)} or less")
    return [ids[i] for i in np.random.default_rng(seed).permutation(len(ids))[:n]]


def load_real_set(data_dir: str | Path, n: int, seed: int = 0,
                  part: str = REFERENCE_PART) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """n real loops of one part of a data set (default the held-out reference; `part_ids`: a seeded choice,
    refused when the part is smaller) -> audio (n, 32 000), log10 mels (n, 64, 200), ids."""
    data_dir = Path(data_dir)
    ids = part_ids(data_dir, n, seed, part)
    audio = np.stack([sf.read(data_dir / "wav" / f"{i}.wav", dtype="float32")[0] for i in ids])   # (n, S)
    mels = np.stack([np.load(data_dir / "mel" / f"{i}.npy") for i in ids])                       # (n, 64, 200)
    return audio, mels, ids


CACHE_VERSION = 1   # bump when embed_set's output changes, so cached real sets are recomputed


@dataclass
class RealSet:
    """The real reference set -- n loops of the data set's held-out part, `ids` -- embedded once: per-loop
    features (see `embed_set`) and the networks that made them (reused for every generated set, so both sides
    see the same embeddings). For the copies column: musicnn_mel of every loop of the 'train' part, train_emb
    (N_train, 200), and each reference loop's distance to its nearest one, heldout_to_train (n,); None without
    musicnn. `signature`: what the networks were (`_nets_signature`), for the caches of further real sets."""
    data_dir: Path
    n: int
    seed: int
    feats: dict[str, np.ndarray]
    nets: EvalNets
    ids: list[str] = field(default_factory=list)
    train_emb: np.ndarray | None = None
    heldout_to_train: np.ndarray | None = None
    signature: str = ""


def _nets_signature(nets: EvalNets, fc_dim: int, vgg16_seed: int) -> str:
    """What a cached real set was embedded with; a different set of networks means recompute."""
    return (f"v{CACHE_VERSION} vgg16 fc{fc_dim} seed{vgg16_seed} clf={nets.classifier is not None} "
            f"vggish={nets.vggish is not None} aisfx={nets.sfx is not None} musicnn={nets.musicnn is not None}")


def _data_key(data_dir: Path) -> str:
    """10 hex digits of the data set's path and manifest: a cache never outlives a change of either."""
    return hashlib.sha1(f"{data_dir}|{scnn.manifest_hash(data_dir)}".encode()).hexdigest()[:10]


def real_cache_path(cache_dir: str | Path, data_dir: str | Path, n: int, seed: int,
                    part: str = REFERENCE_PART) -> Path:
    """<cache_dir>/real_<data dir name>_<hash of its path and manifest>_<part>_n<n>_s<seed>.npz"""
    data_dir = Path(data_dir).resolve()
    return Path(cache_dir) / f"real_{data_dir.name}_{_data_key(data_dir)}_{part}_n{n}_s{seed}.npz"


def train_cache_path(cache_dir: str | Path, data_dir: str | Path) -> Path:
    """<cache_dir>/train_<data dir name>_<hash>_musicnn_mel.npz: the copies column's training loops."""
    data_dir = Path(data_dir).resolve()
    return Path(cache_dir) / f"train_{data_dir.name}_{_data_key(data_dir)}_musicnn_mel.npz"


def _cached(path: Path | None, signature: str, make) -> dict[str, np.ndarray]:
    """The arrays cached at `path` if it was made with `signature`; else make() them and cache them there
    (path None: no cache)."""
    if path is not None and path.is_file():
        with np.load(path) as z:
            if str(z["signature"]) == signature:
                return {k: z[k] for k in z.files if k != "signature"}
    feats = make()
    if path is not None:
        def write(tmp):
            with open(tmp, "wb") as f:
                np.savez(f, signature=np.array(signature), **feats)
        atomic_write(path, write)
    return feats


def embed_part(data_dir: str | Path, n: int, seed: int, nets: EvalNets, signature: str,
               cache_dir: str | Path | None, part: str = REFERENCE_PART, verbose: bool = True) -> dict[str, np.ndarray]:
    """n loops of one part of a data set (`load_real_set`) -> `embed_set`'s features, cached as .npz under
    `cache_dir` (None: no cache), keyed by data dir + manifest + part + n + seed, checked against `signature`."""
    part_ids(data_dir, n, seed, part)                   # refuses a part too small before anything is embedded
    path = real_cache_path(cache_dir, data_dir, n, seed, part) if cache_dir is not None else None
    if verbose and path is not None and path.is_file():
        print(f"[evaluate] {part} loops: {n} from the cache {path} (if its networks match)", file=sys.stderr)
    return _cached(path, signature, lambda: embed_set(*load_real_set(data_dir, n, seed, part)[:2], nets,
                                                      verbose=verbose))


def per_loop(emb: np.ndarray) -> np.ndarray:
    """(N, D) or (N, W, D) embeddings -> (N, D): one vector per loop, the mean over its windows."""
    return emb.reshape(len(emb), -1, emb.shape[-1]).mean(axis=1)                        # (N, D)


def train_embeddings(data_dir: str | Path, nets: EvalNets, cache_dir: str | Path | None,
                     verbose: bool = True) -> np.ndarray | None:
    """musicnn_mel (N_train, 200) of every loop of the data set's 'train' part, from its stored mels, one vector
    per loop; cached under `cache_dir`. None without musicnn (the copies column is then NaN)."""
    if nets.musicnn is None:
        return None
    data_dir = Path(data_dir)

    def make():
        ids = split_ids(data_dir, TRAIN_PART)
        if verbose:
            print(f"[evaluate] embedding the {len(ids)} training loops for the copies column (once; cached)",
                  file=sys.stderr)
        mels = np.stack([np.load(data_dir / "mel" / f"{i}.npy") for i in ids])               # (N_train, 64, 200)
        return {"musicnn_mel": per_loop(musicnn_features.embed_mels(nets.musicnn, mels).numpy())}
    path = train_cache_path(cache_dir, data_dir) if cache_dir is not None else None
    return _cached(path, f"v{CACHE_VERSION} musicnn_mel", make)["musicnn_mel"]


def prepare_real(data_dir: str | Path, n: int, seed: int = 0, device: str = "cpu",
                 cache_dir: str | Path | None = eval_cache(), ckpt_dir: str | Path | None = None,
                 vggish_path: str | None = None, fc_dim: int = VGG16_FC_DIM, vgg16_seed: int = 0,
                 verbose: bool = True) -> RealSet:
    """Load the evaluation networks (training the IS classifier first if it is absent) and embed the reference:
    n loops of the held-out part of `data_dir` (a seeded choice, `load_real_set`; RefusedReference when it has
    fewer, or none). Also the copies column's training loops (`train_embeddings`). Both are cached under
    `cache_dir` (None: no cache), keyed by data dir + manifest (+ n + seed) and checked against the networks."""
    part_ids(data_dir, n, seed)                         # refuse before loading networks or embedding anything
    nets = load_eval_nets(data_dir, device, vggish_path, ckpt_dir, fc_dim, vgg16_seed, verbose)
    sig = _nets_signature(nets, fc_dim, vgg16_seed)
    feats = embed_part(data_dir, n, seed, nets, sig, cache_dir, REFERENCE_PART, verbose)
    train = train_embeddings(data_dir, nets, cache_dir, verbose)
    near = None if train is None else nearest_distances(per_loop(feats["musicnn_mel"]), train)      # (n,)
    return RealSet(Path(data_dir), n, seed, feats, nets, part_ids(data_dir, n, seed), train, near, sig)


def copies_column(fake: dict[str, np.ndarray], real: RealSet) -> float:
    """`copies`: the share of generated loops nearer (musicnn_mel) to a training loop than 99 % of the held-out
    reference loops are to theirs (evaluation.metrics.copies_share); NaN without musicnn."""
    if real.train_emb is None or real.heldout_to_train is None or "musicnn_mel" not in fake:
        return float("nan")
    return copies_share(nearest_distances(per_loop(fake["musicnn_mel"]), real.train_emb), real.heldout_to_train)


def _same_data_set(recorded: str, data_dir: Path) -> bool:
    """A checkpoint's recorded data set is `data_dir`: the same folder or, when the recorded path is not on
    this machine (a moved checkpoint), a folder of the same name -- as evaluate.py's `_data_dir_of` takes it."""
    rec = Path(recorded)
    return rec.resolve() == data_dir.resolve() if rec.exists() else rec.name == data_dir.resolve().name


def check_unseen(ckpt: dict, ckpt_path, data_dir: str | Path, ids: list[str]) -> None:
    """Refuse (RefusedReference, one line) a generator checkpoint that trained on a source file of the reference
    loops `ids`: its `trained_sources` overlap theirs (e.g. a run with --split all on this set). A checkpoint from
    before the key trained on every loop of its data set (split 'all'): refused against that same set; one that
    records no data set either cannot be checked (a line on stderr says so)."""
    data_dir, cfg = Path(data_dir), ckpt.get("config") or {}
    if ckpt.get("trained_sources") is not None:
        shared = overlap(ckpt["trained_sources"], data_dir, ids)
        if shared:
            raise RefusedReference(
                f"{ckpt_path} trained on {describe_overlap(shared)} of the {len(ids)} reference loops of {data_dir} "
                f"(it ran with --split {cfg.get('split', BEFORE_KEY['split'])}): its scores would reward memory; "
                "evaluate a run trained with --split train on this set, or pass --data another set")
        return
    if not cfg.get("data"):
        print(f"[evaluate] {ckpt_path} records neither its source files nor its data set: cannot check that it "
              "never trained on the reference", file=sys.stderr)
    elif _same_data_set(cfg["data"], data_dir):
        raise RefusedReference(
            f"{ckpt_path} predates recorded source files, so it trained on every loop of {cfg['data']} (split "
            f"'{BEFORE_KEY['split']}'), the reference's {len(sources_of(data_dir, ids))} source files included: for "
            "a clean evaluation train with --split train, or pass --data another set")
