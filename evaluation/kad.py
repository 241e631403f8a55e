"""KAD, the kernel audio distance (Chung et al., ICML 2025, "KAD: No More FAD!"; their kadtk), with a
permutation p-value (do two sets differ at all?) and a percentile bootstrap interval: the headline distance of
every pjloop table (evaluate.py, reproduce.py, experiments/bench_vocoder.py).

    reference (N, D) or (N, W, D)   embeddings of the held-out real loops (W windows per loop, or one point)
    generated (M, D) or (M, W, D)   embeddings of the generated loops; the loop is the unit that is resampled

KAD = KAD_SCALE x the unbiased MMD^2 under a Gaussian kernel whose width is the reference's median pairwise
distance. One pooled kernel matrix (`LoopKernel`) serves the value, every permutation and every resample. float64.
The long form, with the measurements behind the choices: docs/modules.md.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from evaluation.metrics import as_torch64

KAD_SCALE = 100           # kadtk's SCALE_FACTOR: MMD^2 x 100, so that values read like small FADs
KAD_PERMUTATIONS = 1000   # permutation test: p resolves down to 1 / 1001
KAD_RESAMPLES = 1000      # percentile bootstrap: ~1000 resamples for a 95 % interval (Efron & Tibshirani)
KAD_LEVEL = 0.95
KAD_MEDIAN_POINTS = 4000  # the bandwidth's median over all pairs of at most this many reference points (8 M pairs);
                          # a larger reference: a seeded subset of that many (kadtk's optional `subsample`)
KAD_BLOCK = 1 << 24       # kernel entries per block while G is built (128 MiB of float64)
KAD_BATCH = 256           # permutations / resamples per matrix product: (256, N + M) counts at a time


class KadResult(NamedTuple):
    """KAD with its uncertainty: the value, the bootstrap interval (lo, hi) and the permutation p-value."""
    kad: float
    lo: float
    hi: float
    p: float


def _as_windows(x, device=None) -> torch.Tensor:
    """Embeddings (N, D), one point per loop, or (N, W, D), W windows per loop -> float64 (N, W, D) on `device`."""
    t = as_torch64(x, device)
    t = t[:, None] if t.ndim == 2 else t
    assert t.ndim == 3, f"KAD needs embeddings (N, D) or (N, W, D), got {tuple(t.shape)}"
    return t


def _sq_dist(a: torch.Tensor, b: torch.Tensor, a_sq: torch.Tensor, b_sq: torch.Tensor) -> torch.Tensor:
    """(P, D), (Q, D) with their squared norms (P,), (Q,) -> (P, Q) squared Euclidean distances as
    |a|^2 + |b|^2 - 2 a.b in one fused product, clipped at 0 (float64; with centred points the cancellation
    error is ~1e-16 of the squared spread)."""
    return torch.addmm(b_sq[None], a, b.T, alpha=-2).add_(a_sq[:, None]).clamp_min_(0)


def kad_bandwidth(reference, seed: int = 0, device=None) -> float:
    """KAD's kernel width sigma: the median Euclidean distance over the pairs i < j of the reference's points
    (for (N, W, D) its N W windows, which kadtk flattens into points), np.median's convention (the mean of the two
    middle values). Beyond KAD_MEDIAN_POINTS points, over a seeded subset of that many."""
    x = _as_windows(reference, device).flatten(0, 1)                                      # (N W, D)
    if len(x) > KAD_MEDIAN_POINTS:
        keep = np.random.default_rng(seed).choice(len(x), KAD_MEDIAN_POINTS, replace=False)
        x = x[torch.as_tensor(keep, device=x.device)]
    return float(np.median(torch.nn.functional.pdist(x).cpu().numpy()))


class LoopKernel(NamedTuple):
    """The pooled Gaussian kernel of two sets, summed over each pair of loops' windows:

        G[a, b] = sum_{w, v} k(x_aw, x_bv)      (L, L), L = n + m: the n reference loops, then the m generated

    Every MMD^2 below -- the sets themselves, a relabelling, a resample -- is a function of G and count vectors
    over the L loops (`_within`, `_kad_of_counts`), so permutations and resamples re-index G instead of
    recomputing kernels, and the loop (all its windows together) is the unit that moves."""
    G: torch.Tensor
    n: int
    m: int
    w: int
    sigma: float


def loop_kernel(reference, generated, sigma: float | None = None, device=None) -> LoopKernel:
    """reference (N, [W,] D), generated (M, [W,] D) -> LoopKernel with k(x, y) = exp(-|x - y|^2 / (2 sigma^2)),
    sigma = `kad_bandwidth(reference)` unless given: one kernel for every model scored against this reference."""
    x, y = _as_windows(reference, device), _as_windows(generated, device)
    assert x.shape[1:] == y.shape[1:], f"KAD: the two sets' windows and dims differ: {tuple(x.shape)}, {tuple(y.shape)}"
    assert len(x) >= 2 and len(y) >= 2, f"KAD needs at least 2 loops per set, got {len(x)} and {len(y)}"
    sigma = kad_bandwidth(x, device=device) if sigma is None else float(sigma)
    assert sigma > 0, "KAD: every reference embedding is the same point (median distance 0), so no kernel width"
    n, m, w = len(x), len(y), x.shape[1]
    pts = torch.cat([x, y]).flatten(0, 1)                                                 # (L W, D)
    pts = pts - pts[:n * w].mean(0)                                                       # centred on the reference
    sq = pts.square().sum(1)                                                              # (L W,)
    big = n + m
    G = torch.empty(big, big, dtype=torch.float64, device=pts.device)                     # (L, L)
    rows = max(1, KAD_BLOCK // (w * w * big))                                             # loops per block
    for s in range(0, big, rows):
        e = min(big, s + rows)
        d2 = _sq_dist(pts[s * w:e * w], pts, sq[s * w:e * w], sq)                        # ((e - s) W, L W)
        d2[:, s * w:e * w].diagonal().zero_()                                             # a point to itself: k = 1
        k = d2.mul_(-0.5 / sigma ** 2).exp_()                                             # in place: one block
        if w > 1:
            k = k.view(e - s, w, big, w).sum(3).sum(1)                                    # (e - s, L): window sums
        G[s:e] = k.view(e - s, big)
    return LoopKernel(G, n, m, w, sigma)


def _within(quad: torch.Tensor, c: torch.Tensor, g: torch.Tensor, w: int) -> torch.Tensor:
    """Mean kernel over the pairs of distinct points of one multiset of loops (the unbiased within-set term).

    c (B, L'): how often each loop is in the set (0/1 for a set or a relabelling; a bootstrap resample repeats
    loops); quad (B,) = c^T G' c, the kernel summed over every ordered pair of the set's windows; g (L',) = diag(G').
    Left out: each window with itself (k = 1: the diagonal of the unbiased estimator) and every pair of windows
    from two COPIES of one loop -- a copy against its twin is k(x, x), not a draw of k between two loops. Kept with
    the duplicates, those terms would lift the bootstrap distribution by about (1 - mean k)(1/N + 1/M): at
    N = M = 300 over twice its spread, and a 95 % interval for two samples of one distribution held the true 0 in
    0 of 60 trials. Left out, the resamples' mean equals the estimate (to O(1/N^2)). For 0/1 counts this is
    exactly the i != j mean of the N W points."""
    n = c.sum(1)                                                                          # (B,) loops in the set
    c2 = c.square()
    total = quad - c2 @ g + c @ (g - w)           # minus each loop's copies against each other, plus each copy's own
    pairs = w * w * (n * n - c2.sum(1)) + n * w * (w - 1)                                 #   distinct-window pairs
    return total / pairs


def _kad_of_counts(quad_x, quad_y, cross, cx, cy, gx, gy, w) -> torch.Tensor:
    """KAD_SCALE x unbiased MMD^2 from the pieces: within-reference + within-generated - 2 x the full cross mean."""
    cross_mean = cross / (w * w * cx.sum(1) * cy.sum(1))
    return KAD_SCALE * (_within(quad_x, cx, gx, w) + _within(quad_y, cy, gy, w) - 2 * cross_mean)


def _kad_value(K: LoopKernel) -> float:
    """KAD of the two sets of K themselves (every count 1)."""
    G, n = K.G, K.n
    g = G.diagonal()
    one_x = torch.ones(1, n, dtype=G.dtype, device=G.device)
    one_y = torch.ones(1, K.m, dtype=G.dtype, device=G.device)
    quad_x, quad_y, cross = G[:n, :n].sum()[None], G[n:, n:].sum()[None], G[:n, n:].sum()[None]
    return float(_kad_of_counts(quad_x, quad_y, cross, one_x, one_y, g[:n], g[n:], K.w)[0])


def _permuted_kads(K: LoopKernel, permutations: int, seed: int) -> np.ndarray:
    """KAD under `permutations` random relabellings of the pooled loops (n of them called 'reference'), same G."""
    G, n, big = K.G, K.n, K.n + K.m
    g, row_sums, total = G.diagonal(), G.sum(1), G.sum()
    rng = np.random.default_rng(seed)
    out = []
    for s in range(0, permutations, KAD_BATCH):
        b = min(KAD_BATCH, permutations - s)
        pick = np.argpartition(rng.random((b, big)), n - 1, axis=1)[:, :n]                # (b, n): a random n-subset
        pick = torch.as_tensor(pick, device=G.device)
        cx = torch.zeros(b, big, dtype=G.dtype, device=G.device).scatter_(1, pick, 1.0)           # (b, L) 0/1
        cy = 1 - cx
        h = cx @ G                                                                        # (b, L)
        quad_x = (h * cx).sum(1)
        to_all = cx @ row_sums                                                            # (b,) = c_x^T G 1
        cross = to_all - quad_x
        quad_y = total - 2 * to_all + quad_x                                              # (1 - c)^T G (1 - c)
        out.append(_kad_of_counts(quad_x, quad_y, cross, cx, cy, g, g, K.w).cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0)


def _resampled_kads(K: LoopKernel, resamples: int, seed: int) -> np.ndarray:
    """KAD of `resamples` bootstrap resamples: n reference loops and m generated loops drawn with replacement."""
    G, n, m = K.G, K.n, K.m
    g = G.diagonal()
    rng = np.random.default_rng(seed)
    out = []
    for s in range(0, resamples, KAD_BATCH):
        b = min(KAD_BATCH, resamples - s)
        ix = torch.as_tensor(rng.integers(0, n, (b, n)), device=G.device)
        iy = torch.as_tensor(rng.integers(0, m, (b, m)), device=G.device)
        cx = torch.zeros(b, n, dtype=G.dtype, device=G.device).scatter_add_(1, ix, torch.ones_like(ix, dtype=G.dtype))
        cy = torch.zeros(b, m, dtype=G.dtype, device=G.device).scatter_add_(1, iy, torch.ones_like(iy, dtype=G.dtype))
        hx = cx @ G[:n]                                                                   # (b, L): to both sets
        quad_x, cross = (hx[:, :n] * cx).sum(1), (hx[:, n:] * cy).sum(1)
        quad_y = ((cy @ G[n:, n:]) * cy).sum(1)
        out.append(_kad_of_counts(quad_x, quad_y, cross, cx, cy, g[:n], g[n:], K.w).cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0)


def kernel_audio_distance(reference, generated, device=None) -> float:
    """KAD (Chung et al. 2025): KAD_SCALE x the unbiased MMD^2 between reference (N, D) and generated (M, D)
    embeddings (or (N, W, D), (M, W, D): every window a point, as kadtk) under the Gaussian kernel
    k(x, y) = exp(-|x - y|^2 / (2 sigma^2)), sigma = the median pairwise distance within the REFERENCE:

        MMD^2_u = mean_{i != j} k(x_i, x_j) + mean_{i != j} k(y_i, y_j) - 2 mean_{i, j} k(x_i, y_j)

    float64 throughout. Unbiased: two samples of one distribution give ~0 at any N (slightly negative half the
    time), so unlike FAD it compares across sample sizes. kadtk's code takes sigma from its second set; pjloop fixes
    it on the reference so every model is measured with one kernel."""
    return _kad_value(loop_kernel(reference, generated, device=device))


def kad_permutation_p(reference, generated, permutations: int = KAD_PERMUTATIONS, seed: int = 0,
                      device=None) -> float:
    """p-value of 'both sets come from one distribution': pool the loops, relabel them at random `permutations`
    times (n called reference, the rest generated), recompute KAD with the SAME sigma, and
    p = (1 + #{permuted KAD >= observed}) / (1 + permutations). The loop is what moves: for (N, W, D) all its
    windows go together. One pooled kernel G, re-indexed (`LoopKernel`)."""
    return kad_with_uncertainty(reference, generated, permutations, 0, seed=seed, device=device).p


def kad_bootstrap_interval(reference, generated, resamples: int = KAD_RESAMPLES, level: float = KAD_LEVEL,
                           seed: int = 0, device=None) -> tuple[float, float]:
    """Percentile bootstrap interval of KAD at `level`: both sets resampled with replacement (by loop, all its
    windows together), KAD recomputed from the same G and sigma, the (1 - level)/2 and (1 + level)/2 quantiles of
    the `resamples` values. Copies of one loop drawn twice are not paired with each other (`_within`). Near 0 the
    interval is conservative (two samples of one distribution, N = 150, D = 10: its spread 1.8x the estimator's,
    100 of 100 intervals held 0)."""
    r = kad_with_uncertainty(reference, generated, 0, resamples, level, seed, device)
    return r.lo, r.hi


def kad_with_uncertainty(reference, generated, permutations: int = KAD_PERMUTATIONS,
                         resamples: int = KAD_RESAMPLES, level: float = KAD_LEVEL, seed: int = 0,
                         device=None) -> KadResult:
    """KAD, its bootstrap interval and its permutation p-value from ONE pooled kernel (what evaluate.py calls).
    0 permutations: p is NaN; 0 resamples: lo = hi = NaN."""
    assert 0 < level < 1, f"KAD: level must lie in (0, 1), got {level}"
    K = loop_kernel(reference, generated, device=device)
    kad, nan = _kad_value(K), float("nan")
    p = nan
    if permutations > 0:
        perm = _permuted_kads(K, permutations, seed)
        p = float((1 + np.sum(perm >= kad - 1e-12 * max(1.0, abs(kad)))) / (1 + permutations))   # ties count
    lo = hi = nan
    if resamples > 0:
        boot = _resampled_kads(K, resamples, seed)
        lo, hi = (float(q) for q in np.quantile(boot, [(1 - level) / 2, (1 + level) / 2]))
    return KadResult(kad, lo, hi, p)
