"""Spec of evaluation/metrics.py: the paper's metrics (IS, the Frechet distance behind FAD, Density & Coverage;
Section 5), KID and the loopability score, as pure functions on numbers."""
import numpy as np
import pytest
import torch

from evaluation import metrics as M
from mel import LOOP_SAMPLES, SR
from scipy.linalg import sqrtm
from prdc import compute_prdc


pytestmark = pytest.mark.usefixtures("one_thread")     # tests/conftest.py


# ---------------------------------------------------------------------------------------------
# Frechet distance
# ---------------------------------------------------------------------------------------------
def test_frechet_distance_equals_closed_form_for_diagonal_gaussians():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=8), rng.normal(size=8)
    a, b = rng.uniform(0.1, 3, 8), rng.uniform(0.1, 3, 8)
    # Commuting (diagonal) covariances: Tr(S1 + S2 - 2 (S1 S2)^1/2) = sum (sqrt a - sqrt b)^2.
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert M.frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-10)


def test_frechet_distance_matches_scipy_sqrtm_for_full_covariances():
    rng = np.random.default_rng(1)
    m1, m2 = rng.normal(size=(6, 6)), rng.normal(size=(6, 6))
    s1, s2 = m1 @ m1.T + 0.1 * np.eye(6), m2 @ m2.T + 0.1 * np.eye(6)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    ref = ((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * sqrtm(s1 @ s2).real)
    assert M.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(ref, rel=1e-8)


def test_frechet_distance_is_symmetric_and_survives_singular_covariances():
    rng = np.random.default_rng(2)
    low_rank = rng.normal(size=(5, 2))
    s1 = low_rank @ low_rank.T                         # rank 2 of 5: singular, as with N < D embeddings
    s2 = np.eye(5)
    d12 = M.frechet_distance(np.zeros(5), s1, np.ones(5), s2)
    d21 = M.frechet_distance(np.ones(5), s2, np.zeros(5), s1)
    assert np.isfinite(d12) and d12 == pytest.approx(d21, rel=1e-8)


def test_fad_of_identical_sets_is_zero_and_grows_with_a_mean_shift():
    x = np.random.default_rng(3).normal(size=(400, 16))
    assert M.fad_from_embeddings(x, x) == pytest.approx(0.0, abs=1e-8)
    # Shifting every point by 1 in each of 16 dims moves only the mean: d^2 = 16 exactly.
    assert M.fad_from_embeddings(x, x + 1.0) == pytest.approx(16.0, rel=1e-8)


def test_gaussian_stats_are_the_unbiased_mean_and_covariance():
    x = np.random.default_rng(4).normal(size=(50, 3))
    mu, sigma = M.gaussian_stats(torch.from_numpy(x))
    np.testing.assert_allclose(mu, x.mean(0))
    np.testing.assert_allclose(sigma, np.cov(x, rowvar=False))
    with pytest.raises(AssertionError, match="N >= 2"):
        M.gaussian_stats(x[:1])


def test_frechet_distance_rejects_mismatched_shapes():
    with pytest.raises(AssertionError, match="shapes"):
        M.frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


# ---------------------------------------------------------------------------------------------
# Density & Coverage
# ---------------------------------------------------------------------------------------------
def brute_force_density_coverage(real, fake, k):
    """Naeem et al.'s definitions written as loops (the slow, obvious reference)."""
    n = len(real)
    radii = []
    for i in range(n):
        d = sorted(np.linalg.norm(real[i] - real[j]) for j in range(n) if j != i)
        radii.append(d[k - 1])
    density = sum(np.linalg.norm(f - real[i]) < radii[i] for f in fake for i in range(n)) / (k * len(fake))
    coverage = np.mean([min(np.linalg.norm(f - real[i]) for f in fake) < radii[i] for i in range(n)])
    return density, coverage


def test_density_coverage_equal_brute_force_and_the_prdc_package():
    rng = np.random.default_rng(5)
    real = rng.normal(size=(60, 4))
    fake = rng.normal(loc=0.3, scale=1.2, size=(45, 4))
    d, c = M.density_coverage(real, fake, k=5, chunk=16)   # chunk < N: exercises the chunking
    bd, bc = brute_force_density_coverage(real, fake, 5)
    ref = compute_prdc(real.astype(np.float32), fake.astype(np.float32), nearest_k=5)
    assert d == pytest.approx(bd, abs=1e-12) and c == pytest.approx(bc, abs=1e-12)
    assert d == pytest.approx(ref["density"], abs=1e-9) and c == pytest.approx(ref["coverage"], abs=1e-9)


def test_density_coverage_of_identical_sets_are_exactly_one_as_prdc():
    # Strict "<" (prdc's convention): each real ball contains its own centre plus k - 1 other reals (the
    # k-th nearest lies on the boundary), so the counts sum to k N -> D = 1; each centre covers itself -> C = 1.
    x = np.random.default_rng(6).normal(size=(80, 8))
    assert M.density_coverage(x, x, k=5) == (pytest.approx(1.0), pytest.approx(1.0))
    ref = compute_prdc(x.astype(np.float32), x.astype(np.float32), nearest_k=5)
    assert ref["density"] == pytest.approx(1.0) and ref["coverage"] == pytest.approx(1.0)


def test_density_coverage_of_a_far_away_fake_set_are_zero():
    rng = np.random.default_rng(7)
    real = rng.normal(size=(40, 3))
    assert M.density_coverage(real, real[:20] + 100.0) == (0.0, 0.0)


def test_density_coverage_reject_k_not_below_the_number_of_reals():
    with pytest.raises(AssertionError, match="k < N"):
        M.density_coverage(np.zeros((5, 2)), np.zeros((5, 2)), k=5)


# ---------------------------------------------------------------------------------------------
# Inception Score
# ---------------------------------------------------------------------------------------------
def test_inception_score_of_uniform_predictions_is_one():
    mean, std = M.inception_score(np.full((100, 7), 1 / 7))
    assert mean == pytest.approx(1.0) and std == pytest.approx(0.0, abs=1e-12)


def test_inception_score_of_confident_predictions_spread_over_k_classes_is_k():
    k = 8
    probs = np.eye(k)[np.arange(400) % k]          # one-hot, every split holds each class equally often
    mean, std = M.inception_score(probs, splits=10)
    assert mean == pytest.approx(k, rel=1e-6) and std == pytest.approx(0.0, abs=1e-6)


def test_inception_score_of_collapsed_confident_predictions_is_one():
    probs = np.zeros((100, 5))
    probs[:, 2] = 1.0                              # mode collapse: always the same class
    assert M.inception_score(probs)[0] == pytest.approx(1.0)


def test_inception_score_rejects_non_probabilities_and_too_few_samples():
    with pytest.raises(AssertionError, match="probabilities"):
        M.inception_score(np.ones((20, 3)))
    with pytest.raises(AssertionError, match="splits"):
        M.inception_score(np.full((5, 3), 1 / 3), splits=10)


# ---------------------------------------------------------------------------------------------
# KID
# ---------------------------------------------------------------------------------------------
def test_kid_is_near_zero_for_one_distribution_and_clearly_positive_for_a_shift():
    rng = np.random.default_rng(8)
    a, b = rng.normal(size=(600, 16)), rng.normal(size=(600, 16))
    mean, std = M.kid(a, b, subsets=30, subset_size=300)
    assert abs(mean) < 2 * std                      # unbiased: zero within its own spread
    shifted, shifted_std = M.kid(a, b + 0.5, subsets=30, subset_size=300)
    assert shifted > 10 * max(shifted_std, abs(mean)) and shifted > 0


def test_kid_is_deterministic_for_a_seed():
    rng = np.random.default_rng(9)
    a, b = rng.normal(size=(100, 4)), rng.normal(size=(120, 4))
    assert M.kid(a, b, subsets=5, subset_size=50, seed=3) == M.kid(a, b, subsets=5, subset_size=50, seed=3)


def test_kid_with_subsets_as_large_as_both_sets_is_one_exact_value():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(40, 4)), rng.normal(size=(40, 4)) + 0.3
    mean, std = M.kid(a, b, subsets=50, subset_size=1000)
    assert std == 0.0 and mean == pytest.approx(M.kid(a[::-1], b, subsets=1, subset_size=40)[0], rel=1e-9)


# ---------------------------------------------------------------------------------------------
# Loopability
# ---------------------------------------------------------------------------------------------
T = np.arange(LOOP_SAMPLES) / SR
WOBBLE = 1 + 0.5 * np.sin(2 * np.pi * 2 * T)        # 2 Hz: 4 periods per 2-s loop, so it wraps smoothly


def test_loop_boundary_covers_the_frames_whose_windows_straddle_the_seam():
    # Frames 197..199 and 0..2 have STFT windows across sample 0 of the repeated loop (mel.py).
    assert sorted(M._boundary_transitions(0)) == [0, 1, 2, 196, 197, 198, 199]
    assert list(M._boundary_transitions(50)) == list(range(46, 53))


def test_loopability_ranks_a_seamless_loop_above_the_same_loop_with_a_hard_cut():
    seamless = 0.5 * np.sin(2 * np.pi * 500 * T) * WOBBLE            # 500 Hz: 1000 periods in the loop
    phase_jump = 0.5 * np.sin(2 * np.pi * 437.3 * T) * WOBBLE        # 874.6 periods: the seam cuts a cycle
    level_jump = seamless * np.linspace(0.3, 1.0, len(T))           # fades in, drops 1 -> 0.3 at the seam
    scores = M.loopability(np.stack([seamless, phase_jump, level_jump]).astype(np.float32))
    assert scores[0] == pytest.approx(1.0, abs=0.1)
    assert scores[1] > 3 * scores[0] and scores[2] > 1.5 * scores[0]


def test_loopability_of_a_rhythmic_loop_whose_notes_repeat_at_the_seam_is_one():
    n = np.arange(LOOP_SAMPLES // 8)                                # eighth notes at 120 BPM (0.25 s)
    note = (np.sin(2 * np.pi * 440 * n / SR) + 0.5 * np.sin(2 * np.pi * 660 * n / SR)) * np.exp(-n / 800)
    score = M.loopability(np.tile(note, 8)[None].astype(np.float32))
    assert score[0] == pytest.approx(1.0, abs=0.05)   # the seam is just another beat of the bar


def test_loopability_of_silence_is_one_not_nan():
    assert M.loopability(np.zeros((2, LOOP_SAMPLES), np.float32)).tolist() == [1.0, 1.0]


def test_loopability_rejects_audio_that_is_not_whole_frames():
    with pytest.raises(AssertionError, match="multiple of 160"):
        M.loopability(np.zeros((1, 32001), np.float32))


# ---------------------------------------------------------------------------------------------
# Over seeds: mean and Student-t interval, Welch's verdict
# ---------------------------------------------------------------------------------------------
def test_mean_interval_is_the_student_t_interval_of_the_mean():
    # 4 values: mean 2.5, sd sqrt(5/3); t(0.975, 3 df) = 3.182446305284263 (any t table)
    mean, lo, hi = M.mean_interval([1.0, 2.0, 3.0, 4.0])
    half = 3.182446305284263 * np.sqrt(5 / 3) / 2
    assert (mean, lo, hi) == pytest.approx((2.5, 2.5 - half, 2.5 + half))
    assert M.mean_interval([1.0, 2.0, 3.0, 4.0], level=0.5)[2] < hi                 # a lower level: narrower
    m1, lo1, hi1 = M.mean_interval([7.0])
    assert m1 == 7.0 and np.isnan(lo1) and np.isnan(hi1)                             # one seed: no interval


def test_welch_verdict_says_ahead_behind_or_not_distinguishable_in_the_metrics_direction():
    low, high = [0.10, 0.11, 0.12], [0.50, 0.52, 0.51]
    assert M.welch_verdict(low, high, lower_is_better=True) == "ahead"
    assert M.welch_verdict(low, high, lower_is_better=False) == "behind"
    assert M.welch_verdict(high, low, lower_is_better=True) == "behind"
    assert M.welch_verdict([0.1, 0.5, 0.9], [0.2, 0.6, 0.8], lower_is_better=True) == "not distinguishable"
    assert M.welch_verdict([0.1], [0.9, 0.91], lower_is_better=True) == "not distinguishable"   # one seed: no test
    # Welch, not Student's pooled t: with these unequal spreads the pooled test gives p 0.024, Welch's 0.22
    a, b = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7], [0.35, 1.15, 1.95]
    assert M.welch_verdict(a, b, lower_is_better=True) == "not distinguishable"
    assert M.welch_verdict(a, b, lower_is_better=True, alpha=0.25) == "ahead"


# ---------------------------------------------------------------------------------------------
# FAD-infinity
# ---------------------------------------------------------------------------------------------
def test_fad_infinity_is_closer_to_the_true_frechet_distance_than_fad_at_the_smallest_subset():
    d = 16
    for seed in range(3):
        rng = np.random.default_rng(seed)
        var, mu = rng.uniform(0.5, 2, d), np.full(d, 0.2)
        truth = (mu ** 2).sum() + ((1 - np.sqrt(var)) ** 2).sum()              # N(0, I) against N(mu, diag(var))
        ref = rng.normal(size=(20_000, d))                                     # large: its own bias is small
        gen = mu + np.sqrt(var) * rng.normal(size=(200, d))
        sizes = np.linspace(100, 200, 10).astype(int)
        fad_inf, slope = M.fad_infinity(ref, gen, sizes=sizes, seed=seed, with_slope=True)
        fad_small = M.fad_from_embeddings(ref, gen[rng.choice(200, 100, replace=False)])
        assert abs(fad_inf - truth) < abs(fad_small - truth), seed
        assert abs(fad_inf - truth) < abs(M.fad_from_embeddings(ref, gen) - truth), seed   # and than FAD at all 200
        assert slope > 0                                                       # FAD falls as n grows


def test_fad_infinity_of_windowed_embeddings_subsets_whole_loops():
    rng = np.random.default_rng(5)
    ref, gen = rng.normal(size=(300, 2, 4)), rng.normal(size=(120, 2, 4)) + 0.5
    assert M.fad_infinity(ref, gen, seed=1) == M.fad_infinity(ref, gen, seed=1)          # seeded
    assert np.isfinite(M.fad_infinity(ref, gen))
    with pytest.raises(AssertionError, match="2 distinct subset sizes"):
        M.fad_infinity(ref, gen, sizes=[50, 50])


# ---------------------------------------------------------------------------------------------
# Wilson interval; copies
# ---------------------------------------------------------------------------------------------
def test_binomial_interval_is_the_wilson_score_interval():
    assert M.binomial_interval(8, 10) == (pytest.approx(0.4902, abs=1e-4), pytest.approx(0.9433, abs=1e-4))
    lo, hi = M.binomial_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)            # not the Wald interval's empty [0, 0]
    assert M.binomial_interval(10, 10)[1] == 1.0
    assert M.binomial_interval(8, 10, level=0.5)[1] < 0.9433                # a lower level: narrower
    assert all(np.isnan(M.binomial_interval(0, 0)))


def test_copies_share_is_one_for_copied_training_loops_and_the_quantile_for_new_ones():
    rng = np.random.default_rng(6)
    train, heldout = rng.normal(size=(2000, 4)), rng.normal(size=(3000, 4))
    heldout_near = M.nearest_distances(heldout, train)
    copies = train[rng.choice(2000, 500, replace=False)]
    assert M.copies_share(M.nearest_distances(copies, train), heldout_near) == 1.0
    fresh = rng.normal(size=(5000, 4))                                     # drawn as the held-out loops are
    assert M.copies_share(M.nearest_distances(fresh, train), heldout_near) == pytest.approx(0.01, abs=0.006)


def test_nearest_distances_are_exact_euclidean_minima_in_chunks():
    rng = np.random.default_rng(7)
    q, t = rng.normal(size=(7, 3)), rng.normal(size=(11, 3))
    expected = np.sqrt(((q[:, None] - t[None]) ** 2).sum(-1)).min(1)
    np.testing.assert_allclose(M.nearest_distances(q, t, chunk=3), expected, rtol=1e-12)
