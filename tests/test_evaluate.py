"""Spec of evaluate.py and evaluation/embeddings.py: the random VGG16 embedding, and the evaluation plumbing
(loops -> embeddings -> metrics -> rows -> CSV -> curve; the Python API). The metrics themselves:
test_metrics.py."""
import csv
import importlib.util
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from evaluation import embeddings as EE
from evaluation import rows as R
import evaluate as E
from evaluation import reference as REF
from dataset import REPO, load_stats, sources_of, split_ids
from mel import LOOP_SAMPLES, log_mel
from source_bars import make_bar_set
from standins import sfxnet
from dataclasses import asdict
from generator import Generator, GeneratorConfig
from plumbing.checkpoint import save_checkpoint
import sample


pytestmark = pytest.mark.usefixtures("one_thread")     # tests/conftest.py


# ---------------------------------------------------------------------------------------------
# RandomVGG16
# ---------------------------------------------------------------------------------------------
def small_vgg(seed=0):
    return EE.RandomVGG16(seed=seed, fc_dim=32, width=8)


def test_random_vgg16_has_vgg16s_thirteen_convs_and_outputs_64_dims():
    net = EE.RandomVGG16()   # the paper's size: fc1 4096, fc2 64
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
    row = R.checkpoint_row({"step": 1}, "runs/x/a.pt", m)
    assert "classifier acc 0.900" in R.format_row(row)
    unknown = R.checkpoint_row({"step": 1}, "runs/x/a.pt", E.compute_metrics(f, f, kid_subsets=2, kid_subset_size=10))
    assert "accuracy unknown" in R.format_row(unknown)


def test_real_anchor_compares_two_disjoint_halves():
    f = fake_features(61, 1)
    m = E.real_anchor_metrics(f, seed=0, kid_subsets=5, kid_subset_size=20)
    assert m["n_real"] == m["n_fake"] == 30
    assert m["FAD_aisfx"] > 0 and 0 < m["coverage"] < 1


def test_compute_metrics_reports_kad_with_interval_and_p_beside_every_fad_and_fadinf_for_musicnn():
    rng = np.random.default_rng(9)
    real, fake = fake_features(80, 0), fake_features(80, 1, shift=0.8)
    real["musicnn_mel"], fake["musicnn_mel"] = rng.normal(size=(80, 16)), rng.normal(0.8, 1, (80, 16))
    m = E.compute_metrics(real, fake, kid_subsets=2, kid_subset_size=50, kad_permutations=200, kad_resamples=200)
    for s in ("_vgg16rand", "_aisfx", "_musicnn_mel"):            # (N, D) and the windowed aisfx (N, 2, D)
        assert m[f"KAD{s}_lo"] < m[f"KAD{s}"] < m[f"KAD{s}_hi"], s
        assert m[f"KAD{s}_p"] == pytest.approx(1 / 201), s        # clearly different: no relabelling got there
    assert np.isfinite(m["FADinf_musicnn_mel"]) and math.isnan(m["FADinf_musicnn"])    # no audio musicnn here
    assert all(math.isnan(m[k]) for k in R.kad_fields("") + R.kad_fields("_musicnn"))   # no VGGish, no audio
    same = E.compute_metrics(real, fake_features(80, 2), kid_subsets=2, kid_subset_size=50, kad_permutations=200,
                             kad_resamples=200)
    assert same["KAD_vgg16rand_lo"] < 0 < same["KAD_vgg16rand_hi"] and same["KAD_vgg16rand_p"] > 0.05
    bare = E.compute_metrics(real, fake, kid_subsets=2, kid_subset_size=50, kad_permutations=0, kad_resamples=0)
    assert bare["KAD_aisfx"] == m["KAD_aisfx"] and math.isnan(bare["KAD_aisfx_p"]) and math.isnan(bare["KAD_aisfx_lo"])


def test_the_printed_line_and_the_csv_lead_with_kad_on_musicnn():
    m = E.compute_metrics(fake_features(30, 3), fake_features(30, 4), kid_subsets=2, kid_subset_size=10)
    m.update(KAD_musicnn=0.123, KAD_musicnn_lo=0.05, KAD_musicnn_hi=0.2, KAD_musicnn_p=0.002)
    line = R.format_row(R.checkpoint_row({"step": 1}, "runs/x/a.pt", m))
    assert "KAD_musicnn 0.123 [0.05, 0.2] p 0.002" in line and line.index("KAD_musicnn") < line.index("| IS")
    assert R.ROW_FIELDS[R.ROW_FIELDS.index("IS_clf_acc") + 1:][:4] == R.kad_fields("_musicnn")


def test_evaluate_sets_runs_end_to_end_on_audio_with_the_available_networks():
    rng = np.random.default_rng(2)
    audio = (0.1 * rng.standard_normal((12, LOOP_SAMPLES))).astype(np.float32)
    mels = log_mel(audio)                                                      # (12, 64, 200)
    nets = EE.EvalNets("cpu", np.zeros(64, np.float32) - 2, np.ones(64, np.float32), small_vgg())
    if importlib.util.find_spec("aisfx") is not None:   # the wheel is optional; when it is there, it must load
        nets.sfx = sfxnet.load_sfxnet()
    m = E.evaluate_sets(audio[:6], audio[6:], mels[:6], mels[6:], nets, kid_subsets=3, kid_subset_size=6)
    same = E.evaluate_sets(audio[:6], audio[:6], mels[:6], mels[:6], nets, kid_subsets=3, kid_subset_size=6)
    assert m["n_real"] == m["n_fake"] == 6 and m["loop_fake"] > 0
    # Known values: a set against itself is at distance 0, every real loop covered, density 1 ...
    assert same["FAD_vgg16rand"] == pytest.approx(0.0, abs=1e-6)
    assert same["coverage"] == 1.0 and same["density"] == pytest.approx(1.0)
    # ... and six other loops are farther away (coverage counts whole real loops: a multiple of 1/6).
    assert m["FAD_vgg16rand"] > 1e-6 and round(6 * m["coverage"]) == pytest.approx(6 * m["coverage"])
    if nets.sfx is not None:
        assert same["FAD_aisfx"] == pytest.approx(0.0, abs=1e-6) and m["FAD_aisfx"] > 1e-6
    else:
        assert math.isnan(m["FAD_aisfx"])


def test_a_new_csv_has_each_column_once_and_a_second_row_keeps_the_header(tmp_path):
    path = tmp_path / "new.csv"
    m = E.compute_metrics(fake_features(30, 3), fake_features(30, 4), kid_subsets=2, kid_subset_size=10)
    row = R.checkpoint_row({"step": 10, "features": ["aisfx"], "loops": "drum"}, "runs/x/ckpt.pt", m, "griffin-lim")
    R.append_csv(path, row)
    header = path.read_text().splitlines()[0].split(",")
    assert len(header) == len(set(header)) and header[:2] == ["model", "features"]
    assert set(R.ROW_FIELDS) <= set(header)
    R.append_csv(path, {**row, "step": 20})
    assert path.read_text().splitlines()[0].split(",") == header
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["step"] for r in rows] == ["10", "20"] and rows[1]["model"] == "x"


def test_csv_append_keeps_previous_rows_and_adds_new_columns(tmp_path):
    path = tmp_path / "results.csv"
    R.append_csv(path, {"model": "a", "IS": 1.5})
    R.append_csv(path, {"model": "b", "IS": 2.5, "extra": "x"})
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["model"] for r in rows] == ["a", "b"]
    assert rows[0]["IS"] == "1.5" and rows[1]["extra"] == "x" and rows[0]["extra"] == ""


def test_checkpoint_row_reads_step_hours_and_features_and_formats_as_a_table_line():
    m = E.compute_metrics(fake_features(30, 3), fake_features(30, 4), kid_subsets=2, kid_subset_size=10)
    ckpt = {"step": 5000, "train_seconds": 7200.0, "features": ["aisfx", "scnn_loop"], "loops": "drum"}
    row = R.checkpoint_row(ckpt, "runs/x/ckpt_0005000.pt", m)
    assert row["model"] == "x" and row["features"] == "aisfx+scnn_loop" and row["hours"] == 2.0
    line = R.format_row(row)
    assert "step    5000" in line and "FAD -" in line and "FAD_aisfx (offline stand-in)" in line


def test_plot_curve_writes_a_png(tmp_path):
    rows = [{"step": s, "hours": s / 1000, "IS": 2 + s / 1000, "IS_std": 0.1, "FAD": "", "FAD_aisfx": 5 - s / 1000,
             "model": "x", "features": "aisfx", "n_fake": 10} for s in (1000, 2000, 3000)]
    E.plot_curve(rows, tmp_path / "curve.png")
    assert (tmp_path / "curve.png").read_bytes()[:4] == b"\x89PNG"


def test_load_real_set_is_a_seeded_choice_of_held_out_loops_and_a_larger_request_contains_a_smaller_one(tmp_path):
    data = make_bar_set(tmp_path / "data", bars=1)                       # 30 files, 6 of them held out
    audio, mels, ids = REF.load_real_set(data, 3, seed=0)
    assert audio.shape == (3, LOOP_SAMPLES) and mels.shape == (3, 64, 200)
    assert set(ids) <= set(split_ids(data, "heldout")) and REF.load_real_set(data, 5, seed=0)[2][:3] == ids
    assert REF.load_real_set(data, 3, seed=1)[2] != ids


def test_cli_explains_a_missing_data_set(tmp_path, capsys):
    with pytest.raises(FileNotFoundError, match="not a preprocessed loop data set"):
        REF.load_real_set(tmp_path / "nope", 3)
    with pytest.raises(SystemExit):
        E.main([])
    assert "give a checkpoint" in capsys.readouterr().err


def test_cli_names_a_checkpoint_it_cannot_use(tmp_path, capsys):
    bad = tmp_path / "ckpt_0000001.pt"
    bad.write_bytes(b"not a checkpoint")
    assert E.main([str(bad), "--data", str(tmp_path), "-n", "4"]) == E.USER_ERROR == 2
    err = capsys.readouterr().err.strip()
    assert "cannot use" in err and "ckpt_0000001.pt" in err and "\n" not in err


@pytest.mark.parametrize("command", ["evaluate.py", "sample.py"])
def test_a_run_that_does_not_exist_is_one_line_on_stderr_and_exit_status_2(command, tmp_path):
    res = subprocess.run([sys.executable, str(REPO / command), str(tmp_path / "no_such_run")], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "no_such_run" in lines[0] and "Traceback" not in res.stderr


def test_a_checkpoint_that_moved_finds_the_demo_set_here_or_asks_for_data(tmp_path, monkeypatch, capsys):
    """train.py stores the data set's absolute path; on another machine that path is gone."""
    here = tmp_path / "data" / "demo_drum"
    here.mkdir(parents=True)
    monkeypatch.setattr(E, "default_data_dir", lambda loops: here)
    args = E.argparse.Namespace(data=None)
    moved = {"loops": "drum", "config": {"data": "/elsewhere/data/demo_drum"}}
    assert E._data_dir_of(args, moved) == here
    assert "is not here; using the demo set" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="trained on /elsewhere/my_loops, which is not here: give --data"):
        E._data_dir_of(args, {"loops": "drum", "config": {"data": "/elsewhere/my_loops"}})
    assert E._data_dir_of(E.argparse.Namespace(data=str(tmp_path)), moved) == tmp_path


@pytest.mark.slow
def test_cli_evaluates_a_run_and_draws_the_training_curve(tmp_path):
    """End to end: a tiny data set, two tiny random generator checkpoints, the Griffin-Lim fallback."""
    pytest.importorskip("melgan")
    data, run = make_bar_set(tmp_path / "data", genres=("g",)), tmp_path / "run"
    mean, std = load_stats(data)
    cfg = GeneratorConfig(max_channels=8)
    for step in (100, 200):
        save_checkpoint({"g_ema": Generator(cfg).state_dict(), "g_config": asdict(cfg), "step": step,
                         "mel_mean": torch.from_numpy(mean), "mel_std": torch.from_numpy(std),
                         "features": ["aisfx"], "loops": "drum", "train_seconds": 36.0 * step,
                         "config": {"data": str(data), "split": "train"},
                         "trained_sources": sources_of(data, split_ids(data, "train"))}, run / f"ckpt_{step:07d}.pt")
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
    """A one-genre data set of 30 files x 3 bars, 18 loops held out (no IS: a classifier needs two genres), and a
    tiny generator checkpoint whose noise is switched on, trained on the 'train' part."""
    root = tmp_path_factory.mktemp("api")
    data = make_bar_set(root / "data", genres=("g",))
    mean, std = load_stats(data)
    cfg = GeneratorConfig(max_channels=8)
    torch.manual_seed(0)
    G = Generator(cfg)
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(1.0)                          # untrained generators start with the noise off
    save_checkpoint({"g_ema": G.state_dict(), "g_config": asdict(cfg), "step": 30, "mel_mean": torch.from_numpy(mean),
                     "mel_std": torch.from_numpy(std), "features": ["aisfx"], "loops": "drum",
                     "train_seconds": 120.0, "trained_sources": sources_of(data, split_ids(data, "train"))},
                    root / "run" / "ckpt_0000030.pt")
    return data, root / "run" / "ckpt_0000030.pt", root


def test_metric_sets_give_two_loops_of_one_latent_different_noise(tiny_run):
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
    real = REF.prepare_real(data, 8, seed=0, device="cpu", **kw)
    assert real.n == 8 and real.feats["vgg16"].shape == (8, 64) and len(list((root / "cache").glob("real_*.npz"))) == 1
    again = REF.prepare_real(data, 8, seed=0, device="cpu", **kw)
    assert "from the cache" in capsys.readouterr().err
    assert all(np.array_equal(real.feats[k], again.feats[k]) for k in real.feats)
    row = E.evaluate_checkpoint(ckpt_path, real, n=8, seed=0, with_audio=False, verbose=False)
    assert set(R.ROW_FIELDS) <= set(row)
    assert row["step"] == 30 and row["train_minutes"] == 2.0 and row["n_fake"] == 8
    assert row["FAD_vgg16rand"] > 0 and round(8 * row["coverage"]) == pytest.approx(8 * row["coverage"])  # of 8 loops
    assert math.isnan(row["FAD_aisfx"]) and math.isnan(row["loop_fake"]) and math.isnan(row["IS"])
    again = E.evaluate_checkpoint(ckpt_path, real, n=8, seed=0, with_audio=False, verbose=False)
    for k in ("FAD_vgg16rand", "KID_vgg16rand", "density", "coverage"):       # reproducible
        assert again[k] == row[k], k


def test_processes_appending_to_one_csv_at_once_lose_no_row(tmp_path):
    """reproduce.py --jobs N: N processes append to one results.csv; the lock makes each rewrite whole."""
    path, n = tmp_path / "results.csv", 200
    code = ("import sys\nfrom evaluation import rows\n"
            f"for i in range({n}):\n"
            f"    rows.append_csv({str(path)!r}, {{'model': sys.argv[1], 'step': i}})\n")
    writers = [subprocess.Popen([sys.executable, "-c", code, name], cwd=Path(R.__file__).parents[1])
               for name in ("a", "b")]
    assert all(w.wait(timeout=120) == 0 for w in writers)
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    for name in ("a", "b"):
        assert sorted(int(r["step"]) for r in rows if r["model"] == name) == list(range(n))


def test_a_folder_that_carries_its_vocoder_is_scored_through_it_unless_another_is_asked_for(tiny_run, tmp_path,
                                                                                        monkeypatch):
    """evaluate.py pretrained/drum: the audio columns go through the vocoder.pt the folder carries (the one its
    loops are heard through), as sample.py and the studio take it; --vocoder still overrides."""
    data, ckpt, _ = tiny_run
    folder = tmp_path / "shipped"
    folder.mkdir()
    shutil.copy(ckpt, folder / "latest.pt")
    (folder / "vocoder.pt").write_bytes(b"not read here")
    asked = []

    class Stop(Exception):
        pass

    def load_vocoder(path, **kw):
        asked.append(path)
        raise Stop
    monkeypatch.setattr(E, "prepare_real", lambda *a, **k: None)
    monkeypatch.setattr(E.melgan, "load_vocoder", load_vocoder)
    for extra in ([], ["--vocoder", "griffin-lim"]):
        with pytest.raises(Stop):
            E.main([str(folder), "--data", str(data), "-n", "8", *extra])
    assert asked == [folder / "vocoder.pt", "griffin-lim"]
