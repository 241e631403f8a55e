"""The evaluation metrics as pure functions (paper Section 5, Table 1; docs/design.md §7): Inception
Score, the Frechet distance behind FAD, Density & Coverage, plus KID, FAD-infinity, a copies share and
pjloop's loopability score; and the intervals a table needs (Wilson, Student t, Welch).

No networks here: evaluate.py embeds the loops (evaluation/embeddings.py) and calls these. Layouts:

    probs (N, K)       class probabilities of one set            -> inception_score
    emb   (N, D)       embeddings of one set (real or generated) -> gaussian_stats, fad_from_embeddings,
                                                                    kid, density_coverage, nearest_distances
    emb   (N, [W,] D)  the same, or W windows per loop           -> fad_infinity (KAD: evaluation/kad.py)
    audio (N, S)       16 kHz loops, S = 32 000 (a multiple of HOP) -> loopability (N,)

Sums over many terms are taken in float64 (numpy, or torch on any device for the pairwise ones).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from mel import BEATS_PER_BAR, HOP, N_FFT, N_FRAMES, PAD, log_mel

IS_SPLITS = 10            # Salimans et al.'s convention, as in the paper's IS mean +- std
DC_K = 5                  # Naeem et al.'s recommended k for Density & Coverage
KID_SUBSETS = 100         # Binkowski et al.'s reference implementation uses 100 subsets of 1000
KID_SUBSET_SIZE = 1000


def inception_score(probs: np.ndarray, splits: int = IS_SPLITS) -> tuple[float, float]:
    """probs (N, K) class probabilities -> (mean, std) over `splits` of exp(E_x KL(p(y|x) || p(y))).

    p(y) is the marginal within each split (Salimans et al. 2016). Uniform predictions give 1;
    confident predictions spread evenly over K classes give K (the maximum).
    """
    p = np.asarray(probs, dtype=np.float64)
    assert p.ndim == 2 and len(p) >= splits, f"inception_score needs probs (N >= splits={splits}, K), got {p.shape}"
    assert np.all(p >= 0) and np.allclose(p.sum(1), 1.0, atol=1e-3), "inception_score needs rows of probabilities"
    p = np.clip(p, 1e-12, 1.0)   # 0 log 0 = 0: a clipped zero contributes ~1e-12 * log(...) ~ 0
    scores = []
    for part in np.array_split(p, splits):                      # `splits` x (~N/splits, K)
        marginal = part.mean(axis=0, keepdims=True)             # (1, K) p(y) of this split
        kl = (part * (np.log(part) - np.log(marginal))).sum(1)  # (n,) KL(p(y|x) || p(y))
        scores.append(math.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))


def gaussian_stats(emb: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings (N, D) -> mean (D,), covariance (D, D), float64 (unbiased, N - 1, as Kilgour et al.)."""
    e = np.asarray(emb.detach().cpu() if isinstance(emb, torch.Tensor) else emb, dtype=np.float64)
    assert e.ndim == 2 and len(e) >= 2, f"gaussian_stats needs embeddings (N >= 2, D), got {e.shape}"
    return e.mean(axis=0), np.cov(e, rowvar=False)


def _sqrt_psd(s: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric positive semi-definite matrix (eigenvalues clipped at 0)."""
    w, v = np.linalg.eigh((s + s.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """d^2 = |mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)) between two Gaussians (Dowson & Landau).

    Stable form: S1 S2 is not symmetric, and scipy's general sqrtm on it returns small imaginary
    parts and errors for near-singular covariances (which is where the paper's real-vs-real 0.01 comes
    from). (S1 S2)^(1/2) has the same eigenvalues as the symmetric PSD matrix A = S1^(1/2) S2 S1^(1/2)
    (similar matrices: S1 S2 = S1^(1/2) A S1^(-1/2)), so Tr (S1 S2)^(1/2) = sum sqrt(eig(A)), with
    eigenvalues from a symmetric solver clipped at 0.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    assert mu1.shape == mu2.shape and s1.shape == s2.shape == (mu1.size, mu1.size), \
        f"frechet_distance: shapes do not match: mu {mu1.shape}, {mu2.shape}; sigma {s1.shape}, {s2.shape}"
    return _frechet_with_root(mu1, s1, _sqrt_psd(s1), mu2, s2)


def _frechet_with_root(mu1, s1, r1, mu2, s2) -> float:
    """`frechet_distance` given r1 = S1^(1/2), so that many S2 against one S1 take its root once (fad_infinity)."""
    a = r1 @ s2 @ r1                                              # (D, D) symmetric PSD
    tr_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((a + a.T) / 2), 0, None)).sum()
    d2 = float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt)
    return max(d2, 0.0)   # a true squared distance; rounding can leave -1e-12 for identical sets


def fad_from_embeddings(a, b) -> float:
    """Frechet distance between Gaussians fitted to two sets of embeddings (N_a, D), (N_b, D)."""
    return frechet_distance(*gaussian_stats(a), *gaussian_stats(b))


def as_torch64(x, device=None) -> torch.Tensor:
    """numpy or torch (N, D) -> float64 torch on `device` (a contiguous copy of a reversed view)."""
    t = x.detach() if isinstance(x, torch.Tensor) else torch.as_tensor(np.ascontiguousarray(x))
    return t.to(device=device, dtype=torch.float64)


def density_coverage(real, fake, k: int = DC_K, chunk: int = 1024,
                     device: str | torch.device | None = None) -> tuple[float, float]:
    """Density and Coverage (Naeem et al. 2020) of fake (M, D) against real (N, D).

    r_i = distance from real i to its k-th nearest neighbour among the OTHER reals;
    Density  = 1/(k M) sum_j #{i : |f_j - x_i| < r_i}   (how many real balls hold each fake; can be > 1)
    Coverage = 1/N #{i : min_j |f_j - x_i| < r_i}        (share of real balls holding at least one fake)
    Strict "<", as the reference `prdc` package. With it, fake == real gives D = C = 1 exactly: every
    ball strictly contains its own centre plus k - 1 other reals (the k-th lies on the boundary), so the
    counts sum to k N; and every centre (distance 0) covers its ball. With "<=" D would be (k + 1) / k.
    Distances are exact Euclidean in float64 (no |x|^2 + |y|^2 - 2xy shortcut), in chunks of reals.
    """
    x, f = as_torch64(real, device), as_torch64(fake, device)
    assert x.ndim == f.ndim == 2 and x.shape[1] == f.shape[1], f"density_coverage: {tuple(x.shape)}, {tuple(f.shape)}"
    assert 1 <= k < len(x), f"density_coverage needs 1 <= k < N real points, got k={k}, N={len(x)}"
    mode = "donot_use_mm_for_euclid_dist"
    radii = torch.empty(len(x), dtype=torch.float64, device=x.device)
    for s in range(0, len(x), chunk):
        d = torch.cdist(x[s:s + chunk], x, compute_mode=mode)                     # (c, N)
        rows = torch.arange(len(d), device=d.device)
        d[rows, rows + s] = float("inf")                                           # exclude itself
        radii[s:s + chunk] = d.kthvalue(k, dim=1).values                           # (c,)
    inside = torch.zeros(len(f), dtype=torch.float64, device=x.device)            # (M,) balls holding fake j
    covered = torch.zeros(len(x), dtype=torch.bool, device=x.device)              # (N,)
    for s in range(0, len(x), chunk):
        d = torch.cdist(x[s:s + chunk], f, compute_mode=mode)                     # (c, M)
        hit = d < radii[s:s + chunk, None]                                         # (c, M)
        inside += hit.sum(0)
        covered[s:s + chunk] = hit.any(1)
    return float(inside.mean() / k), float(covered.double().mean())


def kid(a, b, subsets: int = KID_SUBSETS, subset_size: int = KID_SUBSET_SIZE, seed: int = 0,
        device: str | torch.device | None = None) -> tuple[float, float]:
    """Kernel Inception Distance (Binkowski et al. 2018): unbiased MMD^2 between embeddings a (N, D)
    and b (M, D) with the kernel k(x, y) = (x.y / D + 1)^3, averaged over random subsets (seeded,
    without replacement, size min(subset_size, N, M)). Returns (mean, std) over the subsets.
    Unbiased: for two samples of one distribution the mean is ~0 (and can be slightly negative)."""
    x, y = as_torch64(a, device), as_torch64(b, device)
    assert x.ndim == y.ndim == 2 and x.shape[1] == y.shape[1], f"kid needs (N, D), (M, D): {tuple(x.shape)}, {tuple(y.shape)}"
    m = min(subset_size, len(x), len(y))
    assert m >= 2, f"kid needs at least 2 embeddings per set, got {len(x)} and {len(y)}"
    d = x.shape[1]
    if m == len(x) == len(y):
        subsets = 1   # every "subset" would be the whole of both sets: one value, std 0
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(subsets):
        xs = x[torch.as_tensor(rng.choice(len(x), m, replace=False), device=x.device)]   # (m, D)
        ys = y[torch.as_tensor(rng.choice(len(y), m, replace=False), device=y.device)]   # (m, D)
        kxx = (xs @ xs.T / d + 1) ** 3                                                   # (m, m)
        kyy = (ys @ ys.T / d + 1) ** 3
        kxy = (xs @ ys.T / d + 1) ** 3
        # Unbiased: the diagonals k(x_i, x_i) are left out of the within-set means.
        within = (kxx.sum() - kxx.diagonal().sum() + kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
        values.append(float(within - 2 * kxy.mean()))
    return float(np.mean(values)), float(np.std(values))


# ---------------------------------------------------------------------------------------------
# FAD-infinity: FAD extrapolated to infinitely many generated loops (Chong & Forsyth, CVPR 2020)
# ---------------------------------------------------------------------------------------------
FADINF_STEPS = 10         # subset sizes fitted (fadtk: 25, from 500 loops up; pjloop's sets hold hundreds)
FADINF_MIN_SHARE = 0.5    # the smallest subset: half the generated set (smaller ones at D = 200 leave the 1/n regime)


def fad_infinity(reference, generated, sizes=None, seed: int = 0, with_slope: bool = False):
    """FAD-inf (Chong & Forsyth 2020, "Effectively Unbiased FID and Inception Score and where to find them"; as
    fadtk's score_inf): FAD between the full reference and a random subset of n_i generated loops for each size in
    `sizes` (default FADINF_STEPS sizes from FADINF_MIN_SHARE x M to M), fitted by least squares as
    FAD(n) = FADinf + slope / n. Returns the intercept FADinf, or (FADinf, slope) with `with_slope`.

    Input (N, D) and (M, D), or (N, W, D) and (M, W, D): subsets are of loops (all windows). Subsets are drawn
    WITHOUT replacement (Chong & Forsyth's shuffle-and-take; fadtk draws with replacement): any n of an iid sample
    are an iid sample of n, so FAD(n) carries the bias of n and the fit extrapolates to n -> infinity, whereas n
    draws with replacement from M loops are iid from those M loops, and the fit would extrapolate to FAD of the M
    loops themselves, bias included. Only the generated side's bias is removed: the reference's own finite size
    stays in the intercept. One draw per size, seeded."""
    a = np.asarray(reference, np.float64)
    b = np.asarray(generated, np.float64)
    assert a.ndim == b.ndim in (2, 3) and a.shape[1:] == b.shape[1:], \
        f"fad_infinity needs (N, [W,] D) and (M, [W,] D) with equal W and D, got {a.shape}, {b.shape}"
    m = len(b)
    if sizes is None:
        sizes = np.linspace(max(2, math.ceil(FADINF_MIN_SHARE * m)), m, FADINF_STEPS)
    sizes = np.unique(np.asarray(sizes).astype(int))
    assert len(sizes) >= 2 and sizes[0] >= 2 and sizes[-1] <= m, \
        f"fad_infinity needs at least 2 distinct subset sizes in [2, {m}], got {sizes.tolist()}"
    mu1, s1 = gaussian_stats(a.reshape(-1, a.shape[-1]))
    r1 = _sqrt_psd(s1)                                        # the reference's root, once for every subset
    rng = np.random.default_rng(seed)
    fads = []
    for n in sizes:
        sub = b[rng.choice(m, n, replace=False)]              # (n, [W,] D)
        fads.append(_frechet_with_root(mu1, s1, r1, *gaussian_stats(sub.reshape(-1, b.shape[-1]))))
    slope, intercept = np.polyfit(1.0 / sizes, fads, 1)
    return (float(intercept), float(slope)) if with_slope else float(intercept)


# ---------------------------------------------------------------------------------------------
# A share out of n trials (a classifier's accuracy): its binomial interval
# ---------------------------------------------------------------------------------------------
def binomial_interval(successes: int, trials: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval (Wilson 1927) of a binomial proportion successes / trials at `level`:

        (p + z^2 / 2n  -+  z sqrt(p (1 - p) / n + z^2 / 4n^2)) / (1 + z^2 / n),   z = Phi^-1((1 + level) / 2)

    Unlike the Wald interval p -+ z sqrt(p (1 - p) / n) it stays inside [0, 1] and is not empty at p = 0 or 1
    (8 of 10: 0.490 to 0.943). No trials: (nan, nan)."""
    if trials <= 0:
        return float("nan"), float("nan")
    assert 0 <= successes <= trials, f"binomial_interval: successes {successes} not in [0, trials={trials}]"
    from scipy import stats       # scipy only where intervals are taken
    z = float(stats.norm.ppf((1 + level) / 2))
    p, n = successes / trials, trials
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    lo = 0.0 if successes == 0 else max(0.0, centre - half)        # exact ends: 0 and 1 (not 1 - 1e-16)
    hi = 1.0 if successes == trials else min(1.0, centre + half)
    return lo, hi


# ---------------------------------------------------------------------------------------------
# Copies: is a generated loop nearer to a training loop than loops from held-out source files are?
# ---------------------------------------------------------------------------------------------
COPY_QUANTILE = 0.01      # "closer than 99 % of held-out reals are": the 1 % quantile of their distances


def nearest_distances(queries, train, chunk: int = 1024, device: str | torch.device | None = None) -> np.ndarray:
    """queries (M, D), train (N, D) -> (M,): each query's Euclidean distance to its nearest training point
    (exact, float64, in chunks of queries)."""
    q, t = as_torch64(queries, device), as_torch64(train, device)
    assert q.ndim == t.ndim == 2 and q.shape[1] == t.shape[1] and len(t), \
        f"nearest_distances needs (M, D), (N >= 1, D): {tuple(q.shape)}, {tuple(t.shape)}"
    out = torch.empty(len(q), dtype=torch.float64, device=q.device)
    for s in range(0, len(q), chunk):
        d = torch.cdist(q[s:s + chunk], t, compute_mode="donot_use_mm_for_euclid_dist")    # (c, N)
        out[s:s + chunk] = d.min(dim=1).values
    return out.cpu().numpy()


def copies_share(gen_to_train, heldout_to_train, quantile: float = COPY_QUANTILE) -> float:
    """The share of generated loops nearer to the training set (gen_to_train (M,), `nearest_distances`) than
    the `quantile` of held-out real loops' distances to it (heldout_to_train (N,)): with 0.01, closer than 99 %
    of held-out reals are. Loops copied from the training set score 1; loops as new as unseen files ~quantile."""
    threshold = np.quantile(np.asarray(heldout_to_train, np.float64), quantile)
    return float((np.asarray(gen_to_train, np.float64) < threshold).mean())


# ---------------------------------------------------------------------------------------------
# Loopability (pjloop's own metric; the paper's loops are meant to repeat seamlessly, Section 1).
# ---------------------------------------------------------------------------------------------
BEAT_FRAMES = N_FRAMES // BEATS_PER_BAR   # 50 frames = one beat at 120 BPM
LOOP_EPS = 0.01   # log10 units (0.2 dB): keeps silence-vs-silence at ratio 1 instead of 0 / 0


def _boundary_transitions(b: int, n_frames: int = N_FRAMES) -> np.ndarray:
    """Indices t of the frame transitions (t -> t+1, cyclic) whose STFT windows touch sample b * HOP.

    Frame t's window covers samples [t HOP - PAD, t HOP - PAD + N_FFT) (mel.py), so frames
    t = b-3 .. b+2 contain the boundary and the transitions b-4 .. b+2 (7 of them, 70 ms) see it.
    """
    s = b * HOP
    first = math.floor((s + PAD - N_FFT) / HOP) + 1
    last = math.floor((s + PAD) / HOP)                      # frames first..last touch sample s
    return np.arange(first - 1, last + 1) % n_frames           # transitions into, within and out of them


def loop_spectrogram(audio: torch.Tensor) -> torch.Tensor:
    """(B, S) loops -> (B, F=64, T=S/160) log10 mel of the loop AS IT SOUNDS WHEN REPEATED.

    We analyse the loop tiled three times and keep the middle copy's frames: each of those frames' windows
    lies inside the tiled signal, so the frames across the seam see the end of the loop followed by its
    start -- exactly what a listener hears -- and the result is periodic in T.
    """
    n = audio.shape[-1] // HOP
    m = log_mel(audio.repeat(1, 3))                           # (B, 64, 3T)
    return m[..., n:2 * n]                                      # (B, 64, T)


def loopability(audio, batch: int = 64, device: str | torch.device | None = None) -> np.ndarray:
    """Seam abruptness of each loop, audio (N, S=32 000) 16 kHz -> (N,) ratios; ~1 is a seamless loop.

    Definition (pjloop's; not in the paper):
      1. M = log10 mel of the repeated loop (`loop_spectrogram`), periodic in T = 200 frames.
      2. Spectral flux per transition: d_t = RMS over the 64 bands of M[:, t+1] - M[:, t] (log10 units),
         cyclic, so d_199 is the step from the loop's last frame to its first.
      3. Abruptness at a bar position b: the largest d_t over the 7 transitions whose STFT windows
         touch sample 160 b (`_boundary_transitions`): a click or a jump in level or timbre shows there.
      4. loopability = (abruptness at the seam, b = 0 + eps) / (mean abruptness at the other beats of
         the bar, b = 50, 100, 150 + eps).
    Why the other beats: a one-bar loop's seam IS its downbeat. Drum loops hit hard there, so comparing
    the seam with the quiet frames between hits would call every good drum loop a bad one; comparing it
    with the bar's other beat boundaries asks "does the loop change more abruptly where it wraps than
    where its beats change?". A cut that is not at a period of the content (phase or level jump) gives
    > 1; a seamless loop ~1 (real loops start on an accented downbeat, so expect slightly above 1: compare
    generated loops with the real loops' value, which evaluate.py reports beside them).
    """
    x = audio.detach().cpu().float() if isinstance(audio, torch.Tensor) else torch.as_tensor(np.asarray(audio, np.float32))
    assert x.ndim == 2 and x.shape[1] % HOP == 0 and x.shape[1] // HOP >= 2 * BEAT_FRAMES, \
        f"loopability needs loops (N, S), S a multiple of {HOP}, >= {2 * BEAT_FRAMES * HOP}: {tuple(x.shape)}"
    n_frames = x.shape[1] // HOP
    beat = n_frames // BEATS_PER_BAR
    seam_idx = torch.as_tensor(_boundary_transitions(0, n_frames), device=device)
    beat_idx = [torch.as_tensor(_boundary_transitions(b * beat, n_frames), device=device)
                for b in range(1, BEATS_PER_BAR)]
    out = []
    for s in range(0, len(x), batch):   # the whole set stays on the CPU; one batch at a time on `device`
        m = loop_spectrogram(x[s:s + batch].to(device)).double()                     # (b, 64, T)
        flux = (m.roll(-1, dims=2) - m).pow(2).mean(1).sqrt()                        # (b, T): d_t
        seam = flux[:, seam_idx].amax(1)                                             # (b,)
        beats = torch.stack([flux[:, i].amax(1) for i in beat_idx], 1).mean(1)       # (b,)
        out.append(((seam + LOOP_EPS) / (beats + LOOP_EPS)).cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0)


# ---------------------------------------------------------------------------------------------
# Over seeds: a run's final value is one sample; several seeds give an interval and a test (reproduce.py's table)
# ---------------------------------------------------------------------------------------------
def mean_interval(values, level: float = 0.95) -> tuple[float, float, float]:
    """(mean, lo, hi): the Student-t interval of the mean of `values` (k seeds, k - 1 degrees of freedom), at
    `level`. One value: (it, nan, nan), no spread to judge; none: all nan."""
    v = np.asarray(values, dtype=np.float64)
    if len(v) == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(v.mean())
    if len(v) == 1:
        return mean, float("nan"), float("nan")
    from scipy import stats       # scipy only where intervals are taken
    half = float(stats.t.ppf((1 + level) / 2, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v)))
    return mean, mean - half, mean + half


def welch_verdict(a, b, lower_is_better: bool, alpha: float = 0.05) -> str:
    """Is sample `a` (a row's final values over seeds) better than `b` (its baseline's)? Welch's t-test (unequal
    variances), two-sided at `alpha`: 'ahead', 'behind' or 'not distinguishable'. Fewer than two values on a side
    cannot show a difference; no spread on either side with different means is a difference."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if len(a) < 2 or len(b) < 2 or a.mean() == b.mean():
        return "not distinguishable"
    if np.ptp(a) <= 1e-12 * abs(a.mean()) and np.ptp(b) <= 1e-12 * abs(b.mean()):     # equal up to rounding
        p = 0.0
    else:
        from scipy import stats
        p = float(stats.ttest_ind(a, b, equal_var=False).pvalue)
    if not p < alpha:
        return "not distinguishable"
    return "ahead" if (a.mean() < b.mean()) == lower_is_better else "behind"
