"""Objective evaluation: IS, FAD, Density & Coverage, plus KID, KAD, FAD-inf and a loopability score
(paper Section 5, Table 1 and Figure 4; docs/design.md §7). The headline is KAD_musicnn (unbiased in N) with its
95 % bootstrap interval and permutation p-value; FAD stays a column, at its N.

    python evaluate.py runs/x/latest.pt --data data/drum [-n N] [--csv results.csv] [--seed 0]
    python evaluate.py --real-anchor --data data/drum [-n N]       # Table 1 row A: the real floor at N
    python evaluate.py --curve runs/x --data data/drum [-n N]      # Figure 4 -> runs/x/curve.png
    python evaluate.py runs/x/latest.pt --mel-only                 # IS, FAD/KID_vgg16rand, D&C only

A set of loops is audio (N, S=32 000) at 16 kHz and log10 mels (N, F=64, T=200); generated sets use seeded
per-loop noise and are vocoded seamlessly. Compare rows only at equal N (default 10 000 on a GPU, 1 000 on a
CPU, at most the held-out loops). The reference is N loops of the data set's held-out source files
(dataset.split_rows); a checkpoint that trained on any of them is refused. `copies`: the share of generated
loops nearer to a training loop than 99 % of the reference loops are; `real_floor`: N training loops scored
against the reference, every metric. From Python: prepare_real(data_dir, n) once, then
evaluate_checkpoint(ckpt, real, n) per checkpoint. The reference and its refusals: evaluation/reference.py.
Each metric, what it reads, and why: docs/modules.md, "evaluate.py".
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import matplotlib
matplotlib.use("Agg")            # files only, no display; chosen before pyplot is imported
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np

import melgan
import sample
from plumbing.audio_io import peak_normalise
from standins import musicnn_features
from plumbing.checkpoint import CheckpointError, load_checkpoint
from plumbing.devices import default_device
from dataset import default_data_dir, is_complete, split_ids
from plumbing.files import atomic_write
from plumbing.paths import eval_cache, results
from evaluation import judge as genre_judge
from evaluation.rows import append_csv, checkpoint_row, format_row, real_row, table_header
from evaluation.embeddings import VGG16_FC_DIM, EvalNets, embed_set, take
from evaluation.kad import KAD_LEVEL, kad_with_uncertainty
from evaluation.metrics import (DC_K, IS_SPLITS, KID_SUBSET_SIZE, KID_SUBSETS, density_coverage,
                                fad_from_embeddings, fad_infinity, inception_score, kid)
from evaluation.reference import (REFERENCE_PART, TRAIN_PART, RealSet, RefusedReference, check_unseen,
                                  copies_column, embed_part, part_ids, prepare_real)

# ---------------------------------------------------------------------------------------------
# The paper's numbers, named once.
# ---------------------------------------------------------------------------------------------
N_EVAL_GPU = 10_000       # the paper: "Each model generates 10,000 random loops to compute the scores"
N_EVAL_CPU = 1_000        # a CPU cannot vocode and embed 10 000 loops in reasonable time
CSV_DEFAULT = "results.csv"   # in $PJLOOP_HOME/results (plumbing/paths.py), whatever the current directory
USER_ERROR = 2                # exit status of a command given a path that is not there (as argparse's errors)
METRIC_NOISE = "random"   # generated sets for metrics: per-loop noise (StyleGAN2's metrics, the authors' inference)
# Conditional checkpoints: the judge also hears a second set drawn at psi 0.7 towards each genre's own mean w
# (what `sample.py --genre X --truncation 0.7` plays): BigGAN's fidelity-for-variety trade, made per genre.
# Reported beside, never instead of, the psi = 1 accuracy (the paper's metrics are untruncated).
JUDGE_TRUNCATION = 0.7


# =============================================================================================
# Metrics of two embedded sets (outputs of evaluation.embeddings.embed_set)
# =============================================================================================
# Per embedding beside FAD: KAD_<x> with its bootstrap interval KAD_<x>_lo/_hi and permutation p-value KAD_<x>_p
# (evaluation.kad.kad_with_uncertainty), and FADinf_<x> for the musicnn embeddings.
EMBEDDINGS = (("musicnn", "_musicnn"), ("musicnn_mel", "_musicnn_mel"), ("vgg16", "_vgg16rand"), ("vggish", ""),
              ("aisfx", "_aisfx"))         # embed_set's key -> the suffix of its columns
FADINF_EMBEDDINGS = ("musicnn", "musicnn_mel")   # FAD-inf costs ~10 FADs: the headline embedding's two paths only
EVAL_KAD_PERMUTATIONS = 500   # p resolves to 1/501, enough to tell p < 0.01. At N = 300 every KAD column adds
EVAL_KAD_RESAMPLES = 500      # ~0.4 s to an evaluation that spends ~100 s embedding (experiments/bench_eval.py)


def kad_columns(a: np.ndarray, b: np.ndarray, suffix: str, permutations: int = EVAL_KAD_PERMUTATIONS,
                resamples: int = EVAL_KAD_RESAMPLES, seed: int = 0, device=None) -> dict[str, float]:
    """KAD<suffix>, KAD<suffix>_lo, KAD<suffix>_hi (bootstrap, KAD_LEVEL) and KAD<suffix>_p (permutation) of
    generated embeddings b against reference embeddings a, (N, [W,] D) each: the loop is the unit resampled."""
    r = kad_with_uncertainty(a, b, permutations, resamples, KAD_LEVEL, seed, device)
    return {f"KAD{suffix}": r.kad, f"KAD{suffix}_lo": r.lo, f"KAD{suffix}_hi": r.hi, f"KAD{suffix}_p": r.p}


def compute_metrics(real: dict[str, np.ndarray], fake: dict[str, np.ndarray], k: int = DC_K,
                    kid_subsets: int = KID_SUBSETS, kid_subset_size: int = KID_SUBSET_SIZE,
                    seed: int = 0, device=None, clf_accuracy: float = float("nan"),
                    kad_permutations: int = EVAL_KAD_PERMUTATIONS,
                    kad_resamples: int = EVAL_KAD_RESAMPLES) -> dict[str, float]:
    """Table-1 metrics of `fake` against `real` (outputs of `embed_set`); NaN where a network is missing.
    `clf_accuracy` (the IS classifier's held-out accuracy) is reported beside IS as IS_clf_acc. Per embedding:
    FAD, KID and KAD with its interval and p-value (`kad_columns`; 0 permutations / resamples: NaN p / interval),
    FADinf for FADINF_EMBEDDINGS."""
    nan = float("nan")
    m = {name: nan for _, suffix in EMBEDDINGS
         for name in (f"KAD{suffix}", f"KAD{suffix}_lo", f"KAD{suffix}_hi", f"KAD{suffix}_p")}
    m.update({f"FADinf{suffix}": nan for key, suffix in EMBEDDINGS if key in FADINF_EMBEDDINGS})
    m.update(IS=nan, IS_std=nan, IS_clf_acc=nan, FAD_musicnn=nan, KID_musicnn=nan, KID_musicnn_std=nan,
             FAD_musicnn_mel=nan, KID_musicnn_mel=nan, KID_musicnn_mel_std=nan, FAD_vgg16rand=nan,
             KID_vgg16rand=nan, KID_vgg16rand_std=nan, FAD=nan,
             FAD_aisfx=nan, KID=nan, KID_std=nan, KID_aisfx=nan, KID_aisfx_std=nan, density=nan, coverage=nan,
             loop_fake=nan, loop_real=nan, n_real=len(real["vgg16"]), n_fake=len(fake["vgg16"]))
    if "probs" in fake:
        m["IS"], m["IS_std"] = inception_score(fake["probs"], splits=min(IS_SPLITS, len(fake["probs"])))
        m["IS_clf_acc"] = clf_accuracy
    for key, suffix in EMBEDDINGS:
        if key in real and key in fake:
            loops_a, loops_b = real[key], fake[key]                                 # (N, [W,] D), (M, [W,] D)
            if key == "vgg16":
                # The 64-d fc2 output, the very embedding D&C uses (not the wider fc1). The random net's
                # output gain is arbitrary (~1e-2): divide both sets by the real set's RMS spread, so FAD
                # reads in units of the real variance and KID's cubic kernel sees O(1) inner products
                # (D&C below is scale-free and uses the raw embedding; so is KAD, its width the median distance).
                scale = float(np.sqrt(loops_a.reshape(-1, loops_a.shape[-1]).var(axis=0).mean())) or 1.0
                loops_a, loops_b = loops_a / scale, loops_b / scale
            a = loops_a.reshape(-1, loops_a.shape[-1])                              # (N * W, D)
            b = loops_b.reshape(-1, loops_b.shape[-1])                              # (M * W, D)
            m["FAD" + suffix] = fad_from_embeddings(a, b)
            m["KID" + suffix], m["KID" + suffix + "_std"] = kid(a, b, kid_subsets, kid_subset_size, seed, device)
            m.update(kad_columns(loops_a, loops_b, suffix, kad_permutations, kad_resamples, seed, device))
            if key in FADINF_EMBEDDINGS and len(loops_b) > 2:     # two distinct subset sizes of >= 2 loops
                m["FADinf" + suffix] = fad_infinity(loops_a, loops_b, seed=seed)
    m["density"], m["coverage"] = density_coverage(real["vgg16"], fake["vgg16"], k, device=device)
    if "loop" in fake:
        m["loop_fake"] = float(np.median(fake["loop"]))
    if "loop" in real:
        m["loop_real"] = float(np.median(real["loop"]))
    return m


def real_anchor_metrics(real: dict[str, np.ndarray], seed: int = 0, **kw) -> dict[str, float]:
    """Table 1 row A: one random half of the real loops against the other half (same code, same N/2)."""
    n = len(real["vgg16"])
    perm = np.random.default_rng(seed).permutation(n)
    half = n // 2
    return compute_metrics(take(real, perm[:half]), take(real, perm[half:2 * half]), seed=seed, **kw)


def evaluate_sets(real_audio, fake_audio, real_mels, fake_mels, nets: EvalNets, seed: int = 0,
                  **kw) -> dict[str, float]:
    """The whole pipeline for two sets of loops: embed both, then every metric."""
    return compute_metrics(embed_set(real_audio, real_mels, nets), embed_set(fake_audio, fake_mels, nets),
                           seed=seed, device=nets.device, **kw)


# =============================================================================================
# Generated loops from a checkpoint (the real ones: evaluation/reference.py)
# =============================================================================================
def generate_set(G, ckpt: dict, vocoder, n: int, seed: int = 0, truncation: float = 1.0,
                 batch: int = 64) -> tuple[np.ndarray | None, np.ndarray]:
    """n generated loops -> audio (n, 32 000) seamlessly vocoded and peak-normalised like the real WAVs
    (FAD and KID depend on level; None when vocoder is None), log10 mels (n, 64, 200).

    Fresh, seeded per-loop noise (noise_mode "random"), as StyleGAN2's metric code and the authors'
    inference: with the stored constant noise every loop would share one noise field, and the metrics
    would measure a narrower generator than the one trained."""
    mels = sample.generate_mels(G, ckpt, n, seed=seed, truncation=truncation, batch=batch,
                                noise_mode=METRIC_NOISE)                                     # (n, 64, 200)
    if vocoder is None:
        return None, mels
    audio = np.stack([peak_normalise(a) for a in sample.vocode_loops(vocoder, mels)])       # (n, 32000)
    return audio, mels


# =============================================================================================
# The Python API: embed the real set once, then one call per checkpoint
# =============================================================================================
def real_floor(real: RealSet, seed: int = 0, cache_dir: str | Path | None = eval_cache(),
               verbose: bool = True) -> dict[str, float]:
    """The real-vs-real value of every metric at the reference's N: N loops of the 'train' part (a seeded
    choice) scored against the N held-out reference loops exactly as a generated set is -- the floor a
    generator of this data set can reach at this N (FAD > 0, D&C < 1: two finite samples of one distribution).
    copies is NaN: a training loop's nearest training loop is itself."""
    floor = embed_part(real.data_dir, real.n, seed, real.nets, real.signature,
                       cache_dir if real.signature else None, TRAIN_PART, verbose)
    m = compute_metrics(real.feats, floor, seed=seed, device=real.nets.device, clf_accuracy=real.nets.clf_accuracy)
    return {**m, "copies": float("nan")}


def evaluate_checkpoint(ckpt_path: str | Path, real: RealSet, n: int | None = None, seed: int = 0,
                        device: str | None = None, vocoder=None, truncation: float = 1.0,
                        with_audio: bool = True, verbose: bool = True, genre_csv: str | Path | None = None,
                        cache_dir: str | Path | None = eval_cache()) -> dict:
    """One generator checkpoint (or run directory) -> one table row: every metric against `real`, and `copies`;
    RefusedReference when it trained on a source file of the reference (`check_unseen`). n generated loops (default: as many as the real set; compare rows only at equal n), seeded noise and
    latents; vocoder: a melgan Vocoder, default the data set's trained vocoder (train_melgan.ensure_vocoder's
    checkpoint) else Griffin-Lim; the row's `vocoder` field names it.
    with_audio=False skips vocoding and the audio metrics (FAD/KID_musicnn, FAD_aisfx, FAD, KID(_aisfx),
    loop_fake: NaN); FAD/KID_musicnn_mel, FAD/KID_vgg16rand, IS and D&C read the mels and do not change.
    Keys: evaluation.rows.ROW_FIELDS, and for a conditional checkpoint cond_acc, cond_acc_min, judge_acc, chance
    and (truncation 1 only) cond_acc_trunc, cond_acc_min_trunc: the judge's verdicts at JUDGE_TRUNCATION
    (per-genre rows appended to `genre_csv` when given; the real genre reference is cached under `cache_dir`)."""
    t0 = time.time()
    device = device or real.nets.device
    G, ckpt = sample.load_generator(ckpt_path, device)
    check_unseen(ckpt, sample.resolve_checkpoint(ckpt_path), real.data_dir, real.ids)   # before any work
    if vocoder is None and with_audio:
        vocoder = melgan.load_vocoder(None, loops=ckpt.get("loops", "drum"), device=device, data_dir=real.data_dir)
    audio, mels = generate_set(G, ckpt, vocoder, n or real.n, seed, truncation)
    fake = embed_set(audio, mels, real.nets, verbose=verbose)
    metrics = compute_metrics(real.feats, fake, seed=seed, device=device, clf_accuracy=real.nets.clf_accuracy)
    metrics["copies"] = copies_column(fake, real)
    row = checkpoint_row(ckpt, sample.resolve_checkpoint(ckpt_path), metrics, getattr(vocoder, "name", "none"))
    if ckpt.get("genres"):       # conditional: the judge's columns (the set asked for sample.balanced_labels)
        near = None
        if "musicnn_mel" in fake and truncation == 1.0:   # the same asks at JUDGE_TRUNCATION (musicnn only: cheap)
            near = generate_set(G, ckpt, None, n or real.n, seed, JUDGE_TRUNCATION)[1]          # (n, 64, 200)
            near = musicnn_features.embed_mels(real.nets.musicnn, near).numpy()                  # (n, 200)
        row.update(conditional_columns(ckpt, real, fake, len(mels), row, genre_csv, cache_dir, verbose, near))
    row["eval_seconds"] = time.time() - t0
    return row


def conditional_columns(ckpt: dict, real: RealSet, fake: dict, n: int, row: dict, genre_csv=None,
                        cache_dir=None, verbose: bool = True, truncated: np.ndarray | None = None) -> dict:
    """cond_acc, cond_acc_min, judge_acc, chance of a conditional checkpoint's generated set `fake`, each accuracy
    with its 95 % Wilson interval (cond_acc_lo/_hi, cond_acc_min_lo/_hi: one loop, one trial); NaN (and a note)
    where musicnn is missing; per-genre rows (KAD with its interval, FAD only at >= 100 loops a side, both Ns)
    appended to `genre_csv`. `truncated`: musicnn_mel (n, 200) of the same asks drawn at JUDGE_TRUNCATION -> also
    cond_acc_trunc, cond_acc_min_trunc and their intervals, by the same judge."""
    nan = float("nan")
    if "musicnn_mel" not in fake:
        print("[evaluate] conditional columns skipped: the genre judge needs MSD_musicnn", file=sys.stderr)
        return dict(cond_acc=nan, cond_acc_min=nan, judge_acc=nan, chance=1 / len(ckpt["genres"]),
                    **genre_judge.accuracy_intervals({"overall": nan}, [], []))
    ref = genre_judge.genre_reference(real.data_dir, real.nets, cache_dir, verbose)
    if ref.genres != list(ckpt["genres"]):
        raise ValueError(f"the checkpoint's genres {ckpt['genres']} are not those of {real.data_dir}: {ref.genres}")
    judge = genre_judge.judge_of(ref)                  # fit on the train part, scored on the held-out one
    asked = sample.balanced_labels(n, len(ref.genres)).numpy()                                  # (n,)
    summary, rows = genre_judge.per_genre_rows(ref, judge, fake, asked, device=real.nets.device)
    acc = genre_judge.conditional_accuracy(judge.predict(fake["musicnn_mel"]), asked, ref.genres)
    summary.update(genre_judge.accuracy_intervals(acc, asked, ref.genres))
    if truncated is not None:
        acc = genre_judge.conditional_accuracy(judge.predict(truncated), asked, ref.genres)
        summary.update(cond_acc_trunc=acc["overall"], cond_acc_min_trunc=genre_judge.worst_genre(acc, ref.genres),
                       **genre_judge.accuracy_intervals(acc, asked, ref.genres, "_trunc"))
    if verbose:
        print(genre_judge.format_conditional(summary, rows), flush=True)
    if genre_csv is not None:
        genre_judge.append_genre_rows(genre_csv, [{**r, "model": row["model"], "step": row["step"],
                                                   "judge_acc": judge.accuracy, "ckpt": row["ckpt"]} for r in rows])
    return summary


# =============================================================================================
# The Figure-4 curve
# =============================================================================================
def plot_curve(rows: list[dict], path: str | Path) -> None:
    """Figure 4: FAD_musicnn (and the secondary FADs) and IS against training hours, one run."""
    rows = sorted(rows, key=lambda r: float(r["step"]))
    hours = [float(r["hours"]) for r in rows]

    def col(k):
        return [float(r[k]) if r.get(k, "") != "" else float("nan") for r in rows]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    for key, label in (("FAD_musicnn", "FAD_musicnn (headline)"), ("FAD_vgg16rand", "FAD_vgg16rand"),
                       ("FAD", "FAD (VGGish)"), ("FAD_aisfx", "FAD_aisfx (offline stand-in)")):
        if not all(math.isnan(v) for v in col(key)):
            ax1.plot(hours, col(key), "o-", label=label)
    ax1.set_xlabel("training hours"), ax1.set_ylabel("Fréchet distance ↓"), ax1.legend()
    ax2.errorbar(hours, col("IS"), yerr=col("IS_std"), fmt="o-")
    ax2.set_xlabel("training hours"), ax2.set_ylabel("IS ↑")
    ax2.ticklabel_format(axis="y", useOffset=False)
    fig.suptitle(f"{rows[0].get('model', '')} ({rows[0].get('features', '')}), N = {rows[0].get('n_fake', '?')}")
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))
    plt.close(fig)


# =============================================================================================
# CLI
# =============================================================================================
def _default_n(device: str, n: int | None, data_dir: Path) -> int:
    """-n, else N_EVAL_GPU / N_EVAL_CPU, or every held-out loop when the data set holds out fewer (said on
    stderr; a -n that is given is never shrunk: `part_ids` refuses it)."""
    if n is not None:
        return n
    n = N_EVAL_GPU if device.startswith("cuda") else N_EVAL_CPU
    held = len(split_ids(data_dir, REFERENCE_PART)) if is_complete(data_dir) else 0
    why = f"on {device}"
    if 0 < held < n:
        n, why = held, f"every held-out loop of {data_dir} (fewer than the {n} used {why})"
    print(f"[evaluate] -n not given: using N = {n}, {why} (the paper: 10 000; FAD and D&C are biased "
          f"in N, compare rows only at equal N)", file=sys.stderr)
    return n


def _data_dir_of(args, ckpt: dict | None) -> Path:
    """--data, else the data set the checkpoint was trained on (train.py stores its path in its config). A
    checkpoint that moved to another folder or machine names a path that may be gone: then the demo set of the
    same name here (the embedded default), else one line asking for --data."""
    if args.data:
        return Path(args.data)
    data = ((ckpt or {}).get("config") or {}).get("data")
    if not data:
        raise SystemExit("evaluate.py: give --data DIR (the preprocessed loop data set the model was trained on)")
    if Path(data).is_dir():
        return Path(data)
    here = default_data_dir(ckpt.get("loops", "drum"))
    if here.name == Path(data).name and here.is_dir():
        print(f"[evaluate] the checkpoint's data set {data} is not here; using the demo set {here}", file=sys.stderr)
        return here
    raise SystemExit(f"evaluate.py: the checkpoint was trained on {data}, which is not here: give --data DIR")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("ckpt", nargs="?", help="generator checkpoint (.pt) or run directory (its latest.pt)")
    ap.add_argument("--data", help="preprocessed loop data set (real loops, stats, genre labels)")
    ap.add_argument("-n", type=int, default=None, help=f"loops per set (default {N_EVAL_GPU} on GPU, "
                                                       f"{N_EVAL_CPU} on CPU)")
    ap.add_argument("--csv", default=None, help=f"append the row here (default $PJLOOP_HOME/results/{CSV_DEFAULT}, "
                    f"the repository's results/ when $PJLOOP_HOME is unset; with --curve RUN_DIR/curve.csv)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the real-set choice, latents and noise (default 0)")
    ap.add_argument("--truncation", type=float, default=1.0, help="psi of the generated sets; < 1 trades "
                    "diversity for quality (default 1.0: none, as the paper's metrics)")
    ap.add_argument("--real-anchor", action="store_true", help="also (or only) the real floor: N loops of the "
                    "training part against the N held-out reference loops, every metric")
    ap.add_argument("--curve", metavar="RUN_DIR", help="evaluate every RUN_DIR/ckpt_*.pt, plot RUN_DIR/curve.png")
    ap.add_argument("--vocoder", default=None, help="vocoder checkpoint (train_melgan.py) or griffin-lim, for the "
                    "audio columns (default: the vocoder.pt the checkpoint's folder carries, else the data set's "
                    "trained vocoder if there is one, else Griffin-Lim)")
    ap.add_argument("--vggish", default=None, help="VGGish weights file (FAD); offline FAD is skipped without it")
    ap.add_argument("--ckpt-dir", default=None, help="where the loop-genre classifier and the evaluation caches "
                    "are kept (default $PJLOOP_HOME/checkpoints, the repository's checkpoints/ when unset)")
    ap.add_argument("--device", default=default_device(), help="cpu or cuda (default: cuda if available)")
    ap.add_argument("--vgg16-fc", type=int, default=VGG16_FC_DIM, help="RandomVGG16 fc1 width (paper: 4096)")
    ap.add_argument("--mel-only", action="store_true", help="skip vocoding: only the mel metrics (IS, FAD/KID_"
                                                             "musicnn_mel, FAD/KID_vgg16rand, D&C), faster")
    args = ap.parse_args(argv)
    if not (args.ckpt or args.curve or args.real_anchor):
        ap.error("give a checkpoint, --curve RUN_DIR, or --real-anchor")

    # Which checkpoints, and the data set they were trained on.
    if args.curve:
        run = Path(args.curve)
        paths = sorted(run.glob("ckpt_*.pt"))
        if not paths:
            print(f"evaluate.py --curve: no ckpt_*.pt in {run} (train.py writes them every snapshot_every steps)",
                  file=sys.stderr)
            return USER_ERROR
    else:
        paths = [args.ckpt] if args.ckpt else []
    first = None
    if paths:
        try:
            first = load_checkpoint(sample.resolve_checkpoint(paths[0]), required=sample.CKPT_KEYS)
        except Exception as e:   # missing file, foreign or truncated checkpoint
            print(f"evaluate.py: cannot use {paths[0]} as a generator checkpoint: {e}", file=sys.stderr)
            return USER_ERROR
    data_dir = _data_dir_of(args, first)
    n = _default_n(args.device, args.n, data_dir)
    csv_path = Path(args.csv) if args.csv else (Path(args.curve) / "curve.csv" if args.curve
                                                else results() / CSV_DEFAULT)
    cache_dir = eval_cache(args.ckpt_dir)

    try:   # the refusals first, each one line: too few held-out loops, a model that trained on them
        if first is not None:
            check_unseen(first, sample.resolve_checkpoint(paths[0]), data_dir, part_ids(data_dir, n, args.seed))
        real = prepare_real(data_dir, n, args.seed, args.device, cache_dir=cache_dir, ckpt_dir=args.ckpt_dir,
                            vggish_path=args.vggish, fc_dim=args.vgg16_fc)
        print(table_header())
        if args.real_anchor:     # Table 1 row A: the real floor at this N
            row = real_row(real_floor(real, args.seed, cache_dir), data_dir)
            print(format_row(row))
            append_csv(csv_path, row)
    except RefusedReference as e:
        print(f"evaluate.py: {e}", file=sys.stderr)
        return USER_ERROR

    vocoder = None
    if paths and not args.mel_only:
        given = Path(paths[0])                   # a shipped or run folder's own vocoder, as sample.py takes it
        carried = sample.folder_vocoder(given if given.is_dir() else given.parent)
        vocoder = melgan.load_vocoder(args.vocoder or carried, loops=first.get("loops", "drum"), device=args.device,
                                      data_dir=data_dir)
        print(f"[evaluate] audio columns (FAD/KID_musicnn, FAD_aisfx, FAD, KID, loopability) vocoded by "
              f"{vocoder.name}", file=sys.stderr)
    rows = []
    for path in paths:
        try:
            row = evaluate_checkpoint(path, real, n, args.seed, args.device, vocoder, args.truncation,
                                      with_audio=not args.mel_only, cache_dir=cache_dir,
                                      genre_csv=csv_path.with_name(csv_path.stem + "_genres.csv"))
        except RefusedReference as e:
            print(f"evaluate.py: {e}", file=sys.stderr)
            return USER_ERROR
        print(format_row(row), flush=True)
        append_csv(csv_path, row)
        rows.append(row)
    if args.curve:
        plot_curve(rows, Path(args.curve) / "curve.png")
        print(f"wrote {Path(args.curve) / 'curve.png'}")
    print(f"appended {len(rows) + int(args.real_anchor)} row(s) to {csv_path}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except CheckpointError as e:     # a missing, truncated, crafted or foreign checkpoint: one line, no traceback
        sys.exit(f"evaluate.py: {e}")
