"""Spec of evaluate.py: the paper's metrics (IS, FAD, Density & Coverage; Section 5), KID, loopability,
the random VGG16 embedding, and the evaluation plumbing (features -> metrics -> CSV rows -> curve)."""
import csv
import math

import numpy as np
import pytest
import torch

import evaluate as E
from dataset import finalize_dataset, save_loop
from mel import LOOP_SAMPLES, SR, log_mel


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """The metrics are small matrix products: on a shared 2-core machine, intra-op threads only wait
    for each other (KID ran 10x slower with 2 threads under load). Restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ---------------------------------------------------------------------------------------------
# Frechet distance
# ---------------------------------------------------------------------------------------------
def test_frechet_distance_equals_closed_form_for_diagonal_gaussians():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=8), rng.normal(size=8)
    a, b = rng.uniform(0.1, 3, 8), rng.uniform(0.1, 3, 8)
    # Commuting (diagonal) covariances: Tr(S1 + S2 - 2 (S1 S2)^1/2) = sum (sqrt a - sqrt b)^2.
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert E.frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-10)


def test_frechet_distance_matches_scipy_sqrtm_for_full_covariances():
    from scipy.linalg import sqrtm
    rng = np.random.default_rng(1)
    m1, m2 = rng.normal(size=(6, 6)), rng.normal(size=(6, 6))
    s1, s2 = m1 @ m1.T + 0.1 * np.eye(6), m2 @ m2.T + 0.1 * np.eye(6)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    ref = ((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * sqrtm(s1 @ s2).real)
    assert E.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(ref, rel=1e-8)


def test_frechet_distance_is_symmetric_and_survives_singular_covariances():
    rng = np.random.default_rng(2)
    low_rank = rng.normal(size=(5, 2))
    s1 = low_rank @ low_rank.T                         # rank 2 of 5: singular, as with N < D embeddings
    s2 = np.eye(5)
    d12 = E.frechet_distance(np.zeros(5), s1, np.ones(5), s2)
    d21 = E.frechet_distance(np.ones(5), s2, np.zeros(5), s1)
    assert np.isfinite(d12) and d12 == pytest.approx(d21, rel=1e-8)


def test_fad_of_identical_sets_is_zero_and_grows_with_a_mean_shift():
    x = np.random.default_rng(3).normal(size=(400, 16))
    assert E.fad_from_embeddings(x, x) == pytest.approx(0.0, abs=1e-8)
    # Shifting every point by 1 in each of 16 dims moves only the mean: d^2 = 16 exactly.
    assert E.fad_from_embeddings(x, x + 1.0) == pytest.approx(16.0, rel=1e-8)


def test_gaussian_stats_are_the_unbiased_mean_and_covariance():
    x = np.random.default_rng(4).normal(size=(50, 3))
    mu, sigma = E.gaussian_stats(torch.from_numpy(x))
    np.testing.assert_allclose(mu, x.mean(0))
    np.testing.assert_allclose(sigma, np.cov(x, rowvar=False))
    with pytest.raises(ValueError, match="N >= 2"):
        E.gaussian_stats(x[:1])


def test_frechet_distance_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="shapes"):
        E.frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


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
    from prdc import compute_prdc
    rng = np.random.default_rng(5)
    real = rng.normal(size=(60, 4))
    fake = rng.normal(loc=0.3, scale=1.2, size=(45, 4))
    d, c = E.density_coverage(real, fake, k=5, chunk=16)   # chunk < N: exercises the chunking
    bd, bc = brute_force_density_coverage(real, fake, 5)
    ref = compute_prdc(real.astype(np.float32), fake.astype(np.float32), nearest_k=5)
    assert d == pytest.approx(bd, abs=1e-12) and c == pytest.approx(bc, abs=1e-12)
    assert d == pytest.approx(ref["density"], abs=1e-9) and c == pytest.approx(ref["coverage"], abs=1e-9)


def test_density_coverage_of_identical_sets_are_exactly_one_as_prdc():
    # Strict "<" (prdc's convention): each real ball contains its own centre plus k - 1 other reals (the
    # k-th nearest lies on the boundary), so the counts sum to k N -> D = 1; each centre covers itself -> C = 1.
    from prdc import compute_prdc
    x = np.random.default_rng(6).normal(size=(80, 8))
    assert E.density_coverage(x, x, k=5) == (pytest.approx(1.0), pytest.approx(1.0))
    ref = compute_prdc(x.astype(np.float32), x.astype(np.float32), nearest_k=5)
    assert ref["density"] == pytest.approx(1.0) and ref["coverage"] == pytest.approx(1.0)


def test_density_coverage_of_a_far_away_fake_set_are_zero():
    rng = np.random.default_rng(7)
    real = rng.normal(size=(40, 3))
    assert E.density_coverage(real, real[:20] + 100.0) == (0.0, 0.0)


def test_density_coverage_reject_k_not_below_the_number_of_reals():
    with pytest.raises(ValueError, match="k < N"):
        E.density_coverage(np.zeros((5, 2)), np.zeros((5, 2)), k=5)


# ---------------------------------------------------------------------------------------------
# Inception Score
# ---------------------------------------------------------------------------------------------
def test_inception_score_of_uniform_predictions_is_one():
    mean, std = E.inception_score(np.full((100, 7), 1 / 7))
    assert mean == pytest.approx(1.0) and std == pytest.approx(0.0, abs=1e-12)


def test_inception_score_of_confident_predictions_spread_over_k_classes_is_k():
    k = 8
    probs = np.eye(k)[np.arange(400) % k]          # one-hot, every split holds each class equally often
    mean, std = E.inception_score(probs, splits=10)
    assert mean == pytest.approx(k, rel=1e-6) and std == pytest.approx(0.0, abs=1e-6)


def test_inception_score_of_collapsed_confident_predictions_is_one():
    probs = np.zeros((100, 5))
    probs[:, 2] = 1.0                              # mode collapse: always the same class
    assert E.inception_score(probs)[0] == pytest.approx(1.0)


def test_inception_score_rejects_non_probabilities_and_too_few_samples():
    with pytest.raises(ValueError, match="probabilities"):
        E.inception_score(np.ones((20, 3)))
    with pytest.raises(ValueError, match="splits"):
        E.inception_score(np.full((5, 3), 1 / 3), splits=10)


# ---------------------------------------------------------------------------------------------
# KID
# ---------------------------------------------------------------------------------------------
def test_kid_is_near_zero_for_one_distribution_and_clearly_positive_for_a_shift():
    rng = np.random.default_rng(8)
    a, b = rng.normal(size=(600, 16)), rng.normal(size=(600, 16))
    mean, std = E.kid(a, b, subsets=30, subset_size=300)
    assert abs(mean) < 2 * std                      # unbiased: zero within its own spread
    shifted, shifted_std = E.kid(a, b + 0.5, subsets=30, subset_size=300)
    assert shifted > 10 * max(shifted_std, abs(mean)) and shifted > 0


def test_kid_is_deterministic_for_a_seed():
    rng = np.random.default_rng(9)
    a, b = rng.normal(size=(100, 4)), rng.normal(size=(120, 4))
    assert E.kid(a, b, subsets=5, subset_size=50, seed=3) == E.kid(a, b, subsets=5, subset_size=50, seed=3)


# ---------------------------------------------------------------------------------------------
# Loopability
# ---------------------------------------------------------------------------------------------
T = np.arange(LOOP_SAMPLES) / SR
WOBBLE = 1 + 0.5 * np.sin(2 * np.pi * 2 * T)        # 2 Hz: 4 periods per 2-s loop, so it wraps smoothly


def test_loop_boundary_covers_the_frames_whose_windows_straddle_the_seam():
    # Frames 197..199 and 0..2 have STFT windows across sample 0 of the repeated loop (mel.py).
    assert sorted(E._boundary_transitions(0)) == [0, 1, 2, 196, 197, 198, 199]
    assert list(E._boundary_transitions(50)) == list(range(46, 53))


def test_loopability_ranks_a_seamless_loop_above_the_same_loop_with_a_hard_cut():
    seamless = 0.5 * np.sin(2 * np.pi * 500 * T) * WOBBLE            # 500 Hz: 1000 periods in the loop
    phase_jump = 0.5 * np.sin(2 * np.pi * 437.3 * T) * WOBBLE        # 874.6 periods: the seam cuts a cycle
    level_jump = seamless * np.linspace(0.3, 1.0, len(T))           # fades in, drops 1 -> 0.3 at the seam
    scores = E.loopability(np.stack([seamless, phase_jump, level_jump]).astype(np.float32))
    assert scores[0] == pytest.approx(1.0, abs=0.1)
    assert scores[1] > 3 * scores[0] and scores[2] > 1.5 * scores[0]


def test_loopability_of_a_rhythmic_loop_whose_notes_repeat_at_the_seam_is_one():
    n = np.arange(LOOP_SAMPLES // 8)                                # eighth notes at 120 BPM (0.25 s)
    note = (np.sin(2 * np.pi * 440 * n / SR) + 0.5 * np.sin(2 * np.pi * 660 * n / SR)) * np.exp(-n / 800)
    score = E.loopability(np.tile(note, 8)[None].astype(np.float32))
    assert score[0] == pytest.approx(1.0, abs=0.05)   # the seam is just another beat of the bar


def test_loopability_of_silence_is_one_not_nan():
    assert E.loopability(np.zeros((2, LOOP_SAMPLES), np.float32)).tolist() == [1.0, 1.0]


def test_loopability_rejects_audio_that_is_not_whole_frames():
    with pytest.raises(ValueError, match="multiple of 160"):
        E.loopability(np.zeros((1, 32001), np.float32))


# ---------------------------------------------------------------------------------------------
# RandomVGG16
# ---------------------------------------------------------------------------------------------
def small_vgg(seed=0):
    return E.RandomVGG16(seed=seed, fc_dim=32, width=8)


def test_random_vgg16_has_vgg16s_thirteen_convs_and_outputs_64_dims():
    net = E.RandomVGG16()   # the paper's size: fc1 4096, fc2 64
    convs = [m for m in net.features if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    assert convs[0].in_channels == 1 and net.fc1.out_features == 4096
    assert net.embed(torch.randn(2, 1, 200, 64)).shape == (2, 64)


def test_random_vgg16_is_deterministic_for_a_seed_and_differs_across_seeds():
    x = torch.randn(3, 1, 200, 64)
    torch.manual_seed(123)                          # the global RNG must not matter
    a = small_vgg(0).embed(x)
    torch.manual_seed(456)
    b = small_vgg(0).embed(x)
    assert torch.equal(a, b)
    assert not torch.allclose(a, small_vgg(1).embed(x))


def test_random_vgg16_is_frozen_and_stays_in_eval_mode():
    net = small_vgg()
    assert not any(p.requires_grad for p in net.parameters())
    torch.nn.Sequential(net).train()                # a parent switching to train mode does not reach it
    assert not net.training and not any(m.training for m in net.modules())
    out = net(torch.randn(2, 1, 200, 64, requires_grad=True))
    assert out.shape == (2, 64) and out.abs().sum() > 0


# ---------------------------------------------------------------------------------------------
# Plumbing: per-loop features -> metrics -> rows -> CSV -> curve
# ---------------------------------------------------------------------------------------------
def fake_features(n, seed, shift=0.0, k=6):
    rng = np.random.default_rng(seed)
    return {"vgg16": rng.normal(shift, 1, (n, 8)), "aisfx": rng.normal(shift, 1, (n, 2, 12)),
            "probs": np.eye(k)[rng.integers(0, k, n)], "loop": rng.uniform(0.9, 1.1, n)}


def test_compute_metrics_of_a_set_against_itself_gives_zero_fad_and_unit_density_coverage():
    f = fake_features(60, 0)
    m = E.compute_metrics(f, f, kid_subsets=5, kid_subset_size=50)
    assert m["FAD_aisfx"] == pytest.approx(0.0, abs=1e-8)
    assert m["density"] == pytest.approx(1.0) and m["coverage"] == pytest.approx(1.0)
    assert math.isnan(m["FAD"]) and math.isnan(m["KID"])        # no VGGish embeddings: reported as missing
    assert 1.0 < m["IS"] <= 6.0 and m["n_real"] == m["n_fake"] == 60


def test_headline_fad_and_kid_use_the_random_vgg16_embedding_in_units_of_the_real_spread():
    real, fake = fake_features(200, 0), fake_features(200, 1, shift=0.5)
    m = E.compute_metrics(real, fake, kid_subsets=3, kid_subset_size=100)
    assert m["FAD_vgg16rand"] > 0 and m["KID_vgg16rand"] > 0
    # The random net's output gain is arbitrary: scaling both sets changes neither number, nor D&C.
    small = {**real, "vgg16": real["vgg16"] * 1e-3}, {**fake, "vgg16": fake["vgg16"] * 1e-3}
    m_small = E.compute_metrics(*small, kid_subsets=3, kid_subset_size=100)
    for k in ("FAD_vgg16rand", "KID_vgg16rand", "density", "coverage"):
        assert m_small[k] == pytest.approx(m[k], rel=1e-6), k


def test_the_is_classifier_accuracy_is_reported_beside_is():
    f = fake_features(40, 0)
    m = E.compute_metrics(f, f, kid_subsets=2, kid_subset_size=10, clf_accuracy=0.9)
    assert m["IS_clf_acc"] == 0.9
    row = E.checkpoint_row({"step": 1}, "runs/x/a.pt", m)
    assert "classifier acc 0.900" in E.format_row(row)
    unknown = E.checkpoint_row({"step": 1}, "runs/x/a.pt", E.compute_metrics(f, f, kid_subsets=2, kid_subset_size=10))
    assert "accuracy unknown" in E.format_row(unknown)


def test_kid_with_subsets_as_large_as_both_sets_is_one_exact_value():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(40, 4)), rng.normal(size=(40, 4)) + 0.3
    mean, std = E.kid(a, b, subsets=50, subset_size=1000)
    assert std == 0.0 and mean == pytest.approx(E.kid(a[::-1], b, subsets=1, subset_size=40)[0], rel=1e-9)


def test_real_anchor_compares_two_disjoint_halves():
    f = fake_features(61, 1)
    m = E.real_anchor_metrics(f, seed=0, kid_subsets=5, kid_subset_size=20)
    assert m["n_real"] == m["n_fake"] == 30
    assert m["FAD_aisfx"] > 0 and 0 < m["coverage"] < 1


def test_evaluate_sets_runs_end_to_end_on_audio_with_the_available_networks():
    rng = np.random.default_rng(2)
    audio = (0.1 * rng.standard_normal((12, LOOP_SAMPLES))).astype(np.float32)
    mels = log_mel(audio)                                                      # (12, 64, 200)
    nets = E.EvalNets("cpu", np.zeros(64, np.float32) - 2, np.ones(64, np.float32), small_vgg())
    try:
        import sfxnet
        nets.sfx = sfxnet.load_sfxnet()
    except Exception:
        pass   # the aisfx wheel is optional: FAD_aisfx is then NaN, as asserted below
    m = E.evaluate_sets(audio[:6], audio[6:], mels[:6], mels[6:], nets, kid_subsets=3, kid_subset_size=6)
    assert m["n_real"] == m["n_fake"] == 6 and 0 <= m["coverage"] <= 1 and m["loop_fake"] > 0
    assert (m["FAD_aisfx"] >= 0) if nets.sfx is not None else math.isnan(m["FAD_aisfx"])


def test_a_new_csv_has_each_column_once_and_a_second_row_keeps_the_header(tmp_path):
    path = tmp_path / "new.csv"
    m = E.compute_metrics(fake_features(30, 3), fake_features(30, 4), kid_subsets=2, kid_subset_size=10)
    row = E.checkpoint_row({"step": 10, "features": ["aisfx"], "loops": "drum"}, "runs/x/ckpt.pt", m, "griffin-lim")
    E.append_csv(path, row)
    header = path.read_text().splitlines()[0].split(",")
    assert len(header) == len(set(header)) and header[:2] == ["model", "features"]
    assert set(E.ROW_FIELDS) <= set(header)
    E.append_csv(path, {**row, "step": 20})
    assert path.read_text().splitlines()[0].split(",") == header
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["step"] for r in rows] == ["10", "20"] and rows[1]["model"] == "x"


def test_csv_append_keeps_previous_rows_and_adds_new_columns(tmp_path):
    path = tmp_path / "results.csv"
    E.append_csv(path, {"model": "a", "IS": 1.5})
    E.append_csv(path, {"model": "b", "IS": 2.5, "extra": "x"})
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["model"] for r in rows] == ["a", "b"]
    assert rows[0]["IS"] == "1.5" and rows[1]["extra"] == "x" and rows[0]["extra"] == ""


def test_checkpoint_row_reads_step_hours_and_features_and_formats_as_a_table_line():
    m = E.compute_metrics(fake_features(30, 3), fake_features(30, 4), kid_subsets=2, kid_subset_size=10)
    ckpt = {"step": 5000, "train_seconds": 7200.0, "features": ["aisfx", "scnn_loop"], "loops": "drum"}
    row = E.checkpoint_row(ckpt, "runs/x/ckpt_0005000.pt", m)
    assert row["model"] == "x" and row["features"] == "aisfx+scnn_loop" and row["hours"] == 2.0
    line = E.format_row(row)
    assert "step    5000" in line and "FAD -" in line and "FAD_aisfx (offline stand-in)" in line


def test_plot_curve_writes_a_png(tmp_path):
    rows = [{"step": s, "hours": s / 1000, "IS": 2 + s / 1000, "IS_std": 0.1, "FAD": "", "FAD_aisfx": 5 - s / 1000,
             "model": "x", "features": "aisfx", "n_fake": 10} for s in (1000, 2000, 3000)]
    E.plot_curve(rows, tmp_path / "curve.png")
    assert (tmp_path / "curve.png").read_bytes()[:4] == b"\x89PNG"


def test_load_real_set_is_a_seeded_choice_and_a_larger_request_contains_a_smaller_one(tmp_path):
    rng = np.random.default_rng(5)
    rows = []
    for i in range(6):
        save_loop(tmp_path, f"l{i}", (0.1 * rng.standard_normal(LOOP_SAMPLES)).astype(np.float32))
        rows.append({"id": f"l{i}", "source": "t", "bar": 0, "bpm": 120, "genre": "g"})
    finalize_dataset(tmp_path, rows, [])
    audio, mels, ids = E.load_real_set(tmp_path, 3, seed=0)
    assert audio.shape == (3, LOOP_SAMPLES) and mels.shape == (3, 64, 200)
    assert E.load_real_set(tmp_path, 5, seed=0)[2][:3] == ids


def test_cli_explains_a_missing_data_set(tmp_path, capsys):
    with pytest.raises(FileNotFoundError, match="not a preprocessed loop data set"):
        E.load_real_set(tmp_path / "nope", 3)
    with pytest.raises(SystemExit):
        E.main([])
    assert "give a checkpoint" in capsys.readouterr().err


def test_cli_names_a_checkpoint_it_cannot_use(tmp_path):
    bad = tmp_path / "ckpt_0000001.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(SystemExit, match="cannot use .*ckpt_0000001.pt"):
        E.main([str(bad), "--data", str(tmp_path), "-n", "4"])


@pytest.mark.slow
def test_cli_evaluates_a_run_and_draws_the_training_curve(tmp_path):
    """End to end: a tiny data set, two tiny random generator checkpoints, the Griffin-Lim fallback."""
    from dataclasses import asdict
    pytest.importorskip("melgan")
    from generator import Generator, GeneratorConfig
    from checkpoint import save_checkpoint
    rng = np.random.default_rng(0)
    data, run = tmp_path / "data", tmp_path / "run"
    rows = []
    for i in range(16):
        save_loop(data, f"l{i}", (0.1 * rng.standard_normal(LOOP_SAMPLES)).astype(np.float32))
        rows.append({"id": f"l{i}", "source": "t", "bar": 0, "bpm": 120, "genre": "g"})
    mean, std = finalize_dataset(data, rows, [])
    cfg = GeneratorConfig(max_channels=8)
    for step in (100, 200):
        save_checkpoint({"g_ema": Generator(cfg).state_dict(), "g_config": asdict(cfg), "step": step,
                         "mel_mean": torch.from_numpy(mean), "mel_std": torch.from_numpy(std),
                         "features": ["aisfx"], "loops": "drum", "train_seconds": 36.0 * step,
                         "config": {"data": str(data)}}, run / f"ckpt_{step:07d}.pt")
    assert E.main(["--curve", str(run), "-n", "8", "--real-anchor", "--vgg16-fc", "64",
                   "--ckpt-dir", str(tmp_path / "none"), "--device", "cpu"]) == 0
    with open(run / "curve.csv", newline="") as f:
        out = list(csv.DictReader(f))
    assert [r["step"] for r in out] == ["", "100", "200"] and out[1]["hours"] == "1.0"
    assert (run / "curve.png").exists()


# ---------------------------------------------------------------------------------------------
# The Python API: prepare_real once, evaluate_checkpoint per checkpoint
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A one-genre data set of 12 loops (no IS: a classifier needs two genres) and a tiny generator
    checkpoint whose noise is switched on."""
    from dataclasses import asdict
    from generator import Generator, GeneratorConfig
    from checkpoint import save_checkpoint
    root = tmp_path_factory.mktemp("api")
    data = root / "data"
    rng = np.random.default_rng(0)
    rows = []
    for i in range(12):
        save_loop(data, f"l{i}", (0.1 * rng.standard_normal(LOOP_SAMPLES)).astype(np.float32))
        rows.append({"id": f"l{i}", "source": "t", "bar": 0, "bpm": 120, "genre": "g"})
    mean, std = finalize_dataset(data, rows, [])
    cfg = GeneratorConfig(max_channels=8)
    torch.manual_seed(0)
    G = Generator(cfg)
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(1.0)                          # untrained generators start with the noise off
    save_checkpoint({"g_ema": G.state_dict(), "g_config": asdict(cfg), "step": 30, "mel_mean": torch.from_numpy(mean),
                     "mel_std": torch.from_numpy(std), "features": ["aisfx"], "loops": "drum",
                     "train_seconds": 120.0}, root / "run" / "ckpt_0000030.pt")
    return data, root / "run" / "ckpt_0000030.pt", root


def test_metric_sets_give_two_loops_of_one_latent_different_noise(tiny_run):
    import sample
    _, ckpt_path, _ = tiny_run
    G, ck = sample.load_generator(ckpt_path)
    _, a = E.generate_set(G, ck, None, 4, seed=3)
    assert np.array_equal(a, E.generate_set(G, ck, None, 4, seed=3)[1])          # seeded: reproducible
    const = sample.generate_mels(G, ck, 4, seed=3, noise_mode="const")              # the same latents z
    assert not np.allclose(a, const)
    assert E.METRIC_NOISE == "random"


def test_prepare_real_caches_the_embedded_real_set_and_evaluate_checkpoint_returns_a_full_row(tiny_run, capsys):
    data, ckpt_path, root = tiny_run
    kw = dict(cache_dir=root / "cache", ckpt_dir=root / "ckpts", fc_dim=64)
    real = E.prepare_real(data, 8, seed=0, device="cpu", **kw)
    assert real.n == 8 and real.feats["vgg16"].shape == (8, 64) and len(list((root / "cache").glob("*.npz"))) == 1
    again = E.prepare_real(data, 8, seed=0, device="cpu", **kw)
    assert "from the cache" in capsys.readouterr().err
    assert all(np.array_equal(real.feats[k], again.feats[k]) for k in real.feats)
    row = E.evaluate_checkpoint(ckpt_path, real, n=8, seed=0, with_audio=False, verbose=False)
    assert set(E.ROW_FIELDS) <= set(row)
    assert row["step"] == 30 and row["train_minutes"] == 2.0 and row["n_fake"] == 8
    assert row["FAD_vgg16rand"] > 0 and 0 <= row["coverage"] <= 1
    assert math.isnan(row["FAD_aisfx"]) and math.isnan(row["loop_fake"]) and math.isnan(row["IS"])
    again = E.evaluate_checkpoint(ckpt_path, real, n=8, seed=0, with_audio=False, verbose=False)
    for k in ("FAD_vgg16rand", "KID_vgg16rand", "density", "coverage"):       # reproducible
        assert again[k] == row[k], k
