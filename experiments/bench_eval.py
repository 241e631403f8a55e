"""Cost of evaluate.compute_metrics with and without KAD and FAD-inf (paper Section 5's metrics, at pjloop's N).

Random embeddings of the real shapes, N real + N generated loops (default N = 300, reproduce.py's CPU -n):

    probs (N, 10)   vgg16 (N, 64)   musicnn, musicnn_mel (N, 200)   vggish (N, 2, 128)   aisfx (N, 2, 512)   loop (N,)

"without": compute_metrics as it was before the KAD columns (kad_columns and fad_infinity stubbed out: IS, FAD,
KID, D&C, loopability); "with": every column, KAD's permutations and resamples at evaluate.py's defaults, and
once more at the given --permutations / --resamples. The two settings alternate run by run, so a load that
drifts over the benchmark hits both alike; each figure is the median of --runs runs after a warm-up. Then the
new work per embedding: KAD alone, KAD with its p-value and interval, FAD-inf. With --embed K, what the metrics
are part of: embed_set on K random mels (the --mel-only path: RandomVGG16 at the paper's width, and MSD_musicnn
when its wheel is here), per loop and scaled to N, so the metrics' share of an evaluation shows.

    python -m experiments.bench_eval [--n 300] [--runs 5] [--threads 1] [--permutations 1000] [--resamples 1000]
                                     [--embed 32]

Figures: docs/benchmarks.md.
"""
from __future__ import annotations

import os

# numpy's BLAS on one thread, as torch below (--threads): on a shared 2-core machine extra threads only wait
# for each other (tests/conftest.py). Set before numpy is first imported.
BLAS_THREADS = "1"
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, BLAS_THREADS)

import argparse          # noqa: E402
import statistics        # noqa: E402
import time              # noqa: E402
from unittest import mock  # noqa: E402

import numpy as np       # noqa: E402
import torch             # noqa: E402

import evaluate          # noqa: E402
from evaluation import kad, metrics  # noqa: E402
from evaluation.embeddings import EvalNets, RandomVGG16, embed_set  # noqa: E402
from mel import N_FRAMES, N_MELS  # noqa: E402
from standins import musicnn_features  # noqa: E402

N_DEFAULT = 300          # reproduce.py's CPU runs evaluate -n 300
N_GENRES = 10            # the drum demo set's genres: the IS classifier's K
SHAPES = {"vgg16": (64,), "musicnn": (200,), "musicnn_mel": (200,), "vggish": (2, 128), "aisfx": (2, 512)}


def random_set(n: int, seed: int) -> dict[str, np.ndarray]:
    """One set of loops as embed_set returns it, with random values of the real shapes."""
    rng = np.random.default_rng(seed)
    feats = {k: rng.normal(size=(n, *shape)) for k, shape in SHAPES.items()}
    feats["probs"] = rng.dirichlet(np.ones(N_GENRES), n)                      # (N, K) rows of probabilities
    feats["loop"] = rng.uniform(0.9, 1.3, n)                                  # (N,)
    return feats


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def median_pair(a, b, runs: int) -> tuple[float, float]:
    """Median seconds of a() and b() over `runs` alternating runs, after one warm-up each."""
    a(), b()
    ta, tb = [], []
    for _ in range(runs):
        ta.append(timed(a))
        tb.append(timed(b))
    return statistics.median(ta), statistics.median(tb)


def without_new_columns(real, fake, seed):
    """compute_metrics with the KAD and FAD-inf calls stubbed out: the columns it computed before them."""
    with mock.patch.object(evaluate, "kad_columns", lambda *a, **k: {}), \
            mock.patch.object(evaluate, "fad_infinity", lambda *a, **k: float("nan")):
        return evaluate.compute_metrics(real, fake, seed=seed)


def time_embedding(k: int, n: int) -> None:
    """Print embed_set's seconds per loop on k random mels (no audio: the --mel-only path) and scaled to n."""
    nets = EvalNets("cpu", np.full(N_MELS, -2.0, np.float32), np.ones(N_MELS, np.float32), RandomVGG16())
    try:
        nets.musicnn = musicnn_features.load_embedding("cpu")
        which = "RandomVGG16 + MSD_musicnn"
    except Exception as e:    # the musicnn wheel is optional
        which = f"RandomVGG16 only (MSD_musicnn absent: {type(e).__name__})"
    mels = np.random.default_rng(0).normal(-2.0, 1.0, (k, N_MELS, N_FRAMES)).astype(np.float32)   # (K, 64, 200)
    embed_set(None, mels[:2], nets, verbose=False)                                                # warm-up
    per_loop = timed(lambda: embed_set(None, mels, nets, verbose=False)) / k
    print(f"  embedding the generated set from its mels ({which}): {per_loop:.3f} s per loop over {k} loops "
          f"= {per_loop * n:.0f} s for N = {n} (the real set: once, cached)")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=N_DEFAULT, help=f"loops per set (default {N_DEFAULT})")
    ap.add_argument("--runs", type=int, default=5, help="timed runs per setting; the median is reported (default 5)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1; numpy's BLAS: 1)")
    ap.add_argument("--permutations", type=int, default=kad.KAD_PERMUTATIONS,
                    help=f"KAD permutations of the second 'with' setting (default {kad.KAD_PERMUTATIONS})")
    ap.add_argument("--resamples", type=int, default=kad.KAD_RESAMPLES,
                    help=f"KAD bootstrap resamples of the second 'with' setting (default {kad.KAD_RESAMPLES})")
    ap.add_argument("--seed", type=int, default=0, help="seed of the random embeddings and the metrics (default 0)")
    ap.add_argument("--embed", type=int, default=0, metavar="K", help="also time embed_set on K random mels "
                    "(default 0: skip; tens of seconds with MSD_musicnn)")
    args = ap.parse_args(argv)
    if args.n < 3 or args.runs < 1:
        raise SystemExit("bench_eval: --n must be at least 3 and --runs at least 1")
    torch.set_num_threads(args.threads)
    real, fake = random_set(args.n, args.seed), random_set(args.n, args.seed + 1)
    print(f"compute_metrics, N = {args.n} real + {args.n} generated, random embeddings of the real shapes, "
          f"torch threads {torch.get_num_threads()}, BLAS threads {os.environ['OPENBLAS_NUM_THREADS']}, "
          f"median of {args.runs} alternating runs")

    base, default = median_pair(lambda: without_new_columns(real, fake, args.seed),
                                lambda: evaluate.compute_metrics(real, fake, seed=args.seed), args.runs)
    print(f"  without KAD / FAD-inf (the columns before them)  {base:7.3f} s")
    print(f"  with every column, {evaluate.EVAL_KAD_PERMUTATIONS} permutations + {evaluate.EVAL_KAD_RESAMPLES} "
          f"resamples (evaluate.py)  {default:7.3f} s  = {default / base:.2f}x")
    _, more = median_pair(lambda: None, lambda: evaluate.compute_metrics(
        real, fake, seed=args.seed, kad_permutations=args.permutations, kad_resamples=args.resamples), args.runs)
    print(f"  with every column, {args.permutations} permutations + {args.resamples} resamples  "
          f"{more:7.3f} s  = {more / base:.2f}x")

    print("  the new work per embedding (s): KAD alone | KAD + p + interval (evaluate.py's counts) | FAD-inf")
    for key in SHAPES:
        a, b = real[key], fake[key]
        plain, full = median_pair(
            lambda: kad.kad_with_uncertainty(a, b, 0, 0),
            lambda: kad.kad_with_uncertainty(a, b, evaluate.EVAL_KAD_PERMUTATIONS, evaluate.EVAL_KAD_RESAMPLES),
            args.runs)
        fadinf = median_pair(lambda: None, lambda: metrics.fad_infinity(a, b), args.runs)[1]
        used = "" if key in evaluate.FADINF_EMBEDDINGS else " (not a column)"
        print(f"    {key:12s} {'x'.join(map(str, a.shape[1:])):>7s}  {plain:6.3f} | {full:6.3f} | {fadinf:6.3f}{used}")
    if args.embed > 0:
        time_embedding(args.embed, args.n)


if __name__ == "__main__":
    main()
