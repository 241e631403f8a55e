"""Spec of evaluation/kad.py: KAD against the closed form for two Gaussians and a hand-computed example, its
unbiasedness, and its permutation p-value and bootstrap interval on sets of known relation."""
import numpy as np
import pytest
import torch

from evaluation import kad


pytestmark = pytest.mark.usefixtures("one_thread")     # tests/conftest.py


def expected_gaussian_kernel(mu1, mu2, s, sigma):
    """E k(x, y) for x ~ N(mu1, s^2 I), y ~ N(mu2, s^2 I) independent, k = exp(-|x - y|^2 / (2 sigma^2)).

    Derivation: z = x - y ~ N(delta, 2 s^2 I), delta = mu1 - mu2, and the kernel factorises over dimensions. Per
    dimension, int N(z; d, t^2) exp(-z^2 / (2 sigma^2)) dz is the integral of a product of two Gaussians in z:
    sqrt(sigma^2 / (sigma^2 + t^2)) exp(-d^2 / (2 (sigma^2 + t^2))). With t^2 = 2 s^2, over D dimensions:
        (sigma^2 / (sigma^2 + 2 s^2))^(D/2) exp(-|delta|^2 / (2 (sigma^2 + 2 s^2))).
    Within one set (x, x' independent, same mean) delta = 0."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, float)), np.atleast_1d(np.asarray(mu2, float))
    v = sigma ** 2 + 2 * s ** 2
    return (sigma ** 2 / v) ** (len(mu1) / 2) * np.exp(-((mu1 - mu2) ** 2).sum() / (2 * v))


def closed_form_kad(mu1, mu2, s, sigma):
    """100 x MMD^2 = 100 (E k(x, x') + E k(y, y') - 2 E k(x, y)) of the two Gaussians above."""
    return kad.KAD_SCALE * (expected_gaussian_kernel(mu1, mu1, s, sigma) + expected_gaussian_kernel(mu2, mu2, s, sigma)
                          - 2 * expected_gaussian_kernel(mu1, mu2, s, sigma))


def test_the_expected_gaussian_kernel_of_two_gaussians_has_the_stated_closed_form():
    from scipy import integrate
    # One dimension: numerical integration over z = x - y ~ N(0.7, 2 * 1.3^2).
    t2 = 2 * 1.3 ** 2
    numeric = integrate.quad(lambda z: np.exp(-(z - 0.7) ** 2 / (2 * t2)) / np.sqrt(2 * np.pi * t2)
                             * np.exp(-z ** 2 / (2 * 0.9 ** 2)), -40, 40)[0]
    assert expected_gaussian_kernel([0.7], [0.0], 1.3, 0.9) == pytest.approx(numeric, rel=1e-9)
    # Three dimensions: a Monte-Carlo mean over 400 000 pairs (standard error ~3e-4).
    rng = np.random.default_rng(0)
    mu1, mu2, s, sigma = np.array([0.5, 0.0, -0.3]), np.zeros(3), 0.8, 1.5
    x, y = mu1 + s * rng.normal(size=(400_000, 3)), mu2 + s * rng.normal(size=(400_000, 3))
    mc = np.exp(-((x - y) ** 2).sum(1) / (2 * sigma ** 2)).mean()
    assert expected_gaussian_kernel(mu1, mu2, s, sigma) == pytest.approx(mc, abs=1.5e-3)


def test_kad_of_two_large_gaussian_samples_matches_the_closed_form_with_the_median_bandwidth():
    rng = np.random.default_rng(0)
    n, d = 2000, 8
    mu2 = np.zeros(d)
    mu2[0] = 1.5
    x, y = rng.normal(size=(n, d)), mu2 + rng.normal(size=(n, d))
    sigma = kad.kad_bandwidth(x)
    from scipy.spatial.distance import pdist
    assert sigma == pytest.approx(np.median(pdist(x)), rel=1e-12)      # the reference's median pairwise distance
    # The sample mean difference alone moves KAD by ~4 % (sd) here; 8 % is two of those.
    assert kad.kernel_audio_distance(x, y) == pytest.approx(closed_form_kad(np.zeros(d), mu2, 1.0, sigma), rel=0.08)


def test_kad_of_a_hand_computed_three_point_example():
    x, y = np.array([[0.0], [1.0], [3.0]]), np.array([[1.0], [2.0]])
    # sigma = median of the reference's distances {1, 3, 2} = 2, so k = exp(-d^2 / 8).
    within_x = (np.exp(-1 / 8) + np.exp(-9 / 8) + np.exp(-4 / 8)) / 3       # pairs (0,1), (0,3), (1,3)
    within_y = np.exp(-1 / 8)                                              # the pair (1,2)
    cross = (1 + 3 * np.exp(-1 / 8) + 2 * np.exp(-4 / 8)) / 6              # d^2 = 1, 4, 0, 1, 4, 1
    assert kad.kad_bandwidth(x) == 2.0
    assert kad.kernel_audio_distance(x, y) == pytest.approx(100 * (within_x + within_y - 2 * cross), rel=1e-12)


def test_kad_is_unbiased_where_the_v_statistic_is_not():
    rng = np.random.default_rng(1)
    kads, v_stats = [], []
    for _ in range(400):                                  # 400 pairs of 10 + 10 points of one distribution
        x, y = rng.normal(size=(10, 2)), rng.normal(size=(10, 2))
        kads.append(kad.kernel_audio_distance(x, y))
        pts = np.concatenate([x, y])
        k = np.exp(-((pts[:, None] - pts[None]) ** 2).sum(-1) / (2 * kad.kad_bandwidth(x) ** 2))
        v_stats.append(100 * (k[:10, :10].mean() + k[10:, 10:].mean() - 2 * k[:10, 10:].mean()))   # diagonals in
    kads, v_stats = np.array(kads), np.array(v_stats)
    se = kads.std() / np.sqrt(len(kads))
    assert abs(kads.mean()) < 3 * se                      # ~0 within its standard error (0.28)
    assert v_stats.mean() > 10 * se and v_stats.mean() > 5   # the biased form sits ~8 above 0 at N = 10


def test_two_samples_of_one_distribution_give_an_interval_holding_zero_and_a_large_p():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(300, 20)), rng.normal(size=(300, 20))
    r = kad.kad_with_uncertainty(x, y, permutations=500, resamples=500)
    assert r.lo < 0 < r.hi and r.lo <= r.kad <= r.hi
    assert r.p > 0.05
    assert (r.lo, r.hi) == kad.kad_bootstrap_interval(x, y, resamples=500)      # the same numbers one at a time
    assert r.p == kad.kad_permutation_p(x, y, permutations=500)
    assert r.kad == kad.kernel_audio_distance(x, y)


def test_clearly_different_sets_give_p_below_one_percent_and_an_interval_above_zero():
    rng = np.random.default_rng(2)
    x, z = rng.normal(size=(300, 20)), rng.normal(size=(300, 20))
    z[:, :3] += 0.4
    r = kad.kad_with_uncertainty(x, z, permutations=500, resamples=500)
    assert r.p == pytest.approx(1 / 501) and r.p < 0.01                  # no relabelling reached the observed KAD
    assert 0 < r.lo < r.kad < r.hi


def test_bootstrap_resamples_are_centred_on_the_estimate_because_copies_of_a_loop_are_not_paired():
    rng = np.random.default_rng(3)
    K = kad.loop_kernel(rng.normal(size=(100, 5)), rng.normal(size=(100, 5)))
    boot = kad._resampled_kads(K, 2000, seed=0)
    # Pairing a loop's two copies (k = 1) would lift the resamples by ~(1 - mean k)(2 / N) x 100 ~ 2 spreads.
    assert abs(boot.mean() - kad._kad_value(K)) < 0.1 * boot.std()


def test_a_resample_pairs_every_two_windows_except_across_two_copies_of_one_loop():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(4, 2, 3)), rng.normal(size=(3, 2, 3))              # 2 windows per loop
    K = kad.loop_kernel(x, y)
    ix, iy = [0, 0, 1, 3], [2, 2, 2]                                           # loop 0 twice, loop 2 three times
    cx = torch.tensor(np.bincount(ix, minlength=4), dtype=torch.float64)[None]
    cy = torch.tensor(np.bincount(iy, minlength=3), dtype=torch.float64)[None]
    g, n = K.G.diagonal(), 4
    hx = cx @ K.G[:n]
    got = kad._kad_of_counts((hx[:, :n] * cx).sum(1), ((cy @ K.G[n:, n:]) * cy).sum(1), (hx[:, n:] * cy).sum(1),
                           cx, cy, g[:n], g[n:], 2)

    def k(a, b):
        return np.exp(-((a - b) ** 2).sum() / (2 * K.sigma ** 2))

    def within(z, idx):   # pairs of windows: within one copy (u != v) or of two different loops; never two copies
        pts = [(pos, loop, w) for pos, loop in enumerate(idx) for w in range(2)]
        vals = [k(z[a, u], z[b, v]) for (p, a, u) in pts for (q, b, v) in pts
                if (p, u) != (q, v) and not (a == b and p != q)]
        return np.mean(vals)
    cross = np.mean([k(x[a, u], y[b, v]) for a in ix for u in range(2) for b in iy for v in range(2)])
    assert float(got[0]) == pytest.approx(100 * (within(x, ix) + within(y, iy) - 2 * cross), rel=1e-10)


def test_the_loop_not_the_window_is_what_permutations_move():
    # Each loop's 4 windows are nearly the same point: 20 loops are 20 draws, not 80. Relabelling windows one by
    # one would call two samples of one distribution different most of the time.
    loop_level, window_level = [], []
    for s in range(20):
        rng = np.random.default_rng(100 + s)
        x = rng.normal(size=(20, 1, 5)) + 0.05 * rng.normal(size=(20, 4, 5))    # (N, W, D)
        y = rng.normal(size=(20, 1, 5)) + 0.05 * rng.normal(size=(20, 4, 5))
        loop_level.append(kad.kad_permutation_p(x, y, permutations=200))
        window_level.append(kad.kad_permutation_p(x.reshape(-1, 5), y.reshape(-1, 5), permutations=200))
    assert np.mean(np.array(loop_level) < 0.05) <= 0.15
    assert np.mean(np.array(window_level) < 0.05) >= 0.5
    # The same KAD either way: windows are points of the estimate; only the unit of resampling differs.
    assert kad.kernel_audio_distance(x, y) == pytest.approx(kad.kernel_audio_distance(x.reshape(-1, 5), y.reshape(-1, 5)))


def test_kad_rejects_mismatched_sets_and_a_reference_without_spread():
    with pytest.raises(AssertionError, match="windows and dims"):
        kad.kernel_audio_distance(np.zeros((5, 3)), np.zeros((5, 4)))
    with pytest.raises(AssertionError, match="median distance 0"):
        kad.kernel_audio_distance(np.ones((5, 3)), np.zeros((5, 3)))
