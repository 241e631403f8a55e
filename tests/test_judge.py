"""The genre judge (evaluation/judge.py) as a spec: it learns a separable toy set and says how well, it is at
chance on shuffled labels, conditional accuracy counts what it should, and evaluate.py reports the conditional
columns (and per-genre rows) for a conditional checkpoint only, each generated loop judged against the genre it
was asked for."""
import math
from dataclasses import asdict

import numpy as np
import pytest
import torch

import evaluate as E
from evaluation import reference as REF
from evaluation import embeddings as EE
from evaluation import judge as J
import sample
from dataset import UNLABELLED, load_stats
from evaluation import metrics as M
from generator import Generator, GeneratorConfig
from mel import to_gan
from source_bars import make_bar_set
from plumbing.checkpoint import save_checkpoint
from plumbing.files import read_csv

pytestmark = pytest.mark.usefixtures("one_thread")     # tests/conftest.py
GENRES = ["house", "rock", "trap"]


def toy_set(n_per=40, d=20, gap=5.0, seed=0):
    """Three Gaussian clusters in d dimensions, `gap` standard deviations apart along one axis each."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((3 * n_per, d))
    y = np.repeat(np.arange(3), n_per)
    x[np.arange(len(y)), y] += gap
    return x, y


def every_fourth(n):
    """A held-out mask: loops 0, 4, 8, ... (the data sets' own mask is by source file: test_splits.py)."""
    return np.arange(n) % 4 == 0


def test_the_judge_learns_a_separable_toy_set_and_measures_itself_on_held_out_loops():
    x, y = toy_set()
    judge = J.fit_judge(x, y, GENRES, every_fourth(len(y)))
    assert judge.n_test == 30 and judge.n_train == 90
    assert judge.accuracy >= 0.9
    x2, y2 = toy_set(seed=1)
    assert (judge.predict(x2) == y2).mean() >= 0.9


def test_a_judge_fitted_on_shuffled_labels_is_at_chance_on_its_held_out_loops():
    """The toy set's labels shuffled within the fitted part and within the held-out part: no held-out label is
    then tied to anything the judge saw, and the held-out part keeps 25 loops of each genre, so whatever the
    judge predicts its accuracy is 1/3 up to the draw: within 3 binomial standard errors, sqrt(p (1 - p) / n).
    200 dimensions (as MSD_musicnn's embedding) for 225 fitted loops let it memorise every label it is given:
    a judge scored on the loops it was fitted on, or fitted on the held-out loops too, scores 1.0 here."""
    x, y = toy_set(n_per=100, d=200)
    held = every_fourth(len(y))                                                # 75 loops, 25 of each genre
    rng = np.random.default_rng(3)
    for part in (held, ~held):
        y[part] = rng.permutation(y[part])
    chance, n = 1 / len(GENRES), int(held.sum())
    tolerance = 3 * math.sqrt(chance * (1 - chance) / n)                       # 0.16 for 75 loops
    assert abs(J.fit_judge(x, y, GENRES, held).accuracy - chance) < tolerance


def test_conditional_accuracy_counts_loops_judged_to_be_the_genre_they_were_asked_for():
    asked = np.array([0, 0, 1, 1, 2, 2])
    judged = np.array([0, 1, 1, 1, 0, 0])
    acc = J.conditional_accuracy(judged, asked, GENRES)
    assert acc == {"overall": 0.5, "house": 0.5, "rock": 1.0, "trap": 0.0}
    assert math.isnan(J.conditional_accuracy(judged[:4], asked[:4], GENRES)["trap"])   # never asked for


def test_per_genre_rows_compare_each_genre_with_its_own_real_loops():
    x, y = toy_set(n_per=30, d=8)
    ref = J.GenreReference(GENRES, y, x, x[:, :4], np.zeros(len(y), bool))   # nothing held out: all loops
    judge = J.fit_judge(x, y, GENRES, every_fourth(len(y)))
    fake = {"musicnn_mel": x, "vgg16": x[:, :4]}                   # the real loops themselves, asked for right
    summary, rows = J.per_genre_rows(ref, judge, fake, y, fad_min=2)     # FAD at 30 loops a side, for this test
    assert summary["cond_acc"] >= 0.9 and summary["chance"] == pytest.approx(1 / 3)
    assert [r["genre"] for r in rows] == GENRES
    assert all(r["FAD_musicnn_mel"] < 1e-6 and r["coverage"] == 1.0 for r in rows)
    wrong = {"musicnn_mel": x[np.argsort(y)[::-1]], "vgg16": x[np.argsort(y)[::-1], :4]}   # every genre's loops swapped
    s2, rows2 = J.per_genre_rows(ref, judge, wrong, y, fad_min=2)
    assert s2["cond_acc"] < 0.5 and rows2[0]["FAD_musicnn_mel"] > 1.0


def test_per_genre_rows_give_kad_with_its_interval_at_any_n_and_fad_only_from_100_loops_a_side():
    x, y = toy_set(n_per=30, d=8)
    ref = J.GenreReference(GENRES, y, x, x[:, :4], np.zeros(len(y), bool))
    judge = J.fit_judge(x, y, GENRES, every_fourth(len(y)))
    other = toy_set(n_per=30, d=8, seed=1)[0]                                  # new draws of the same genres
    _, rows = J.per_genre_rows(ref, judge, {"musicnn_mel": other, "vgg16": other[:, :4]}, y)
    assert all(r["KAD_musicnn_mel_lo"] < 0 < r["KAD_musicnn_mel_hi"] for r in rows)     # same distribution
    assert all(math.isnan(r["FAD_musicnn_mel"]) and r["n_real"] == r["n_fake"] == 30 for r in rows)   # < 100
    swapped = np.roll(other, 30, axis=0)                                       # every genre's loops another's
    _, bad = J.per_genre_rows(ref, judge, {"musicnn_mel": swapped, "vgg16": swapped[:, :4]}, y)
    assert all(r["KAD_musicnn_mel_lo"] > 0 for r in bad)
    big_x, big_y = toy_set(n_per=100, d=8)
    big = J.GenreReference(GENRES, big_y, big_x, big_x[:, :4], np.zeros(len(big_y), bool))
    _, rows = J.per_genre_rows(big, judge, {"musicnn_mel": big_x, "vgg16": big_x[:, :4]}, big_y)
    assert all(np.isfinite(r["FAD_musicnn_mel"]) for r in rows)               # 100 a side: FAD is reported


def test_accuracy_intervals_are_wilson_over_all_asks_and_over_the_worst_genres_own_asks():
    asked = np.repeat([0, 1, 2], 10)                                           # 10 asks per genre
    judged = asked.copy()
    judged[[10, 11, 20, 21, 22, 23, 24, 25]] = 0                               # rock 8/10 right, trap 4/10
    acc = J.conditional_accuracy(judged, asked, GENRES)
    iv = J.accuracy_intervals(acc, asked, GENRES)
    assert (iv["cond_acc_lo"], iv["cond_acc_hi"]) == M.binomial_interval(22, 30)
    assert (iv["cond_acc_min_lo"], iv["cond_acc_min_hi"]) == M.binomial_interval(4, 10)
    assert set(J.accuracy_intervals(acc, asked, GENRES, "_trunc")) == {
        "cond_acc_trunc_lo", "cond_acc_trunc_hi", "cond_acc_min_trunc_lo", "cond_acc_min_trunc_hi"}


@pytest.fixture(scope="module")
def conditional_ckpt(tmp_path_factory):
    """Three audibly different genres, three bars per source file (tests/source_bars.py: 72 training loops,
    18 held out, 6 of each genre) and an untrained conditional generator on them."""
    root = tmp_path_factory.mktemp("judge")
    data = make_bar_set(root / "data", genres=tuple(GENRES))
    cfg = GeneratorConfig(max_channels=8, c_dim=3)
    torch.manual_seed(0)
    G = Generator(cfg)
    from dataset import load_stats
    mean, std = load_stats(data)
    save_checkpoint({"g_ema": G.state_dict(), "g_config": asdict(cfg), "step": 5, "mel_mean": torch.from_numpy(mean),
                     "mel_std": torch.from_numpy(std), "features": [], "loops": "drum", "train_seconds": 60.0,
                     "genres": GENRES}, root / "run" / "latest.pt")
    return data, root / "run" / "latest.pt", root


class GenreTrueGenerator(Generator):
    """A stand-in G whose genres are known: asked for genre c, it hands out the next held-out real loop of genre
    order[c] (standardised; each call takes a genre's loops in turn). order = identity: every loop is of the
    genre asked; a rotation: a G that mixes its genres up. `asks`: per call, (genre asked, reference index)."""

    def __init__(self, cfg, ref_mels, pools, mean, std, order):
        super().__init__(cfg)
        self.ref, self.pools = to_gan(ref_mels, mean, std), pools             # (N, 1, T=200, F=64); K index arrays
        self.order, self.asks = list(order), []

    def forward(self, z, c=None, **kw):
        taken, idx = [0] * len(self.order), []
        for g in c.tolist():
            k = self.order[g]
            idx.append(int(self.pools[k][taken[k] % len(self.pools[k])]))
            taken[k] += 1
        self.asks.append(list(zip(c.tolist(), idx)))
        return self.ref[idx]                                                   # (B, 1, T=200, F=64)


def evaluate_genre_true(conditional_ckpt, monkeypatch, order, **kw):
    """evaluate.py on a GenreTrueGenerator of `order` (12 loops, 4 asks per genre) -> (row, expected):
    expected[g] = the share of the loops handed out for genre g's asks that the judge puts in genre g."""
    data, ckpt, root = conditional_ckpt
    nets = EE.EvalNets("cpu", *EE.load_stats(data), EE.RandomVGG16(fc_dim=32, width=8))
    try:
        from standins import musicnn_features
        nets.musicnn = musicnn_features.load_embedding("cpu")
    except Exception as e:
        pytest.skip(f"the musicnn wheel is absent here: {e}")
    ref = J.genre_reference(data, nets, root / "cache", verbose=False)       # embedded once, as evaluate.py does
    verdict = J.judge_of(ref).predict(ref.musicnn_mel)                        # (N,) the judge on every real loop
    rows = [r for r in read_csv(data / "manifest.csv") if r["genre"] != UNLABELLED]    # the reference's loops
    assert [GENRES.index(r["genre"]) for r in rows] == ref.labels.tolist()
    ref_mels = np.stack([np.load(data / "mel" / f"{r['id']}.npy") for r in rows])     # (N, 64, 200)
    pools = [np.flatnonzero(ref.heldout & (ref.labels == g)) for g in range(len(GENRES))]   # 6 loops each
    made, load = [], sample.load_generator

    def genre_true(path, device="cpu"):
        G, ck = load(path, device)
        made.append(GenreTrueGenerator(G.cfg, ref_mels, pools, *load_stats(data), order))
        return made[-1], ck
    monkeypatch.setattr(sample, "load_generator", genre_true)
    _, mels, _ = REF.load_real_set(data, 18)
    real = REF.RealSet(data, 18, 0, EE.embed_set(None, mels, nets, verbose=False), nets)
    row = E.evaluate_checkpoint(ckpt, real, n=12, with_audio=False, verbose=False, cache_dir=root / "cache", **kw)
    asks = made[0].asks[0]                                                     # the first set: psi 1
    return row, [np.mean([verdict[i] == g for c, i in asks if c == g]) for g in range(len(GENRES))]


def test_evaluate_reports_the_conditional_columns_and_per_genre_rows_for_a_conditional_checkpoint(conditional_ckpt,
                                                                                                  monkeypatch):
    """A G that answers every ask with a real held-out loop of the genre asked: each genre's accuracy is the
    judge's verdict on exactly those loops (all right here), in the row and in the per-genre rows."""
    root = conditional_ckpt[2]
    row, expected = evaluate_genre_true(conditional_ckpt, monkeypatch, [0, 1, 2], genre_csv=root / "g.csv")
    assert row["judge_acc"] >= 0.6                     # pitch and gating tell the toy genres apart (held-out files)
    assert min(expected) >= 0.75                       # ... and the judge knows the genres of the loops handed out
    assert row["cond_acc"] == pytest.approx(np.mean(expected)) and row["cond_acc_min"] == pytest.approx(min(expected))
    assert row["cond_acc_lo"] <= row["cond_acc"] <= row["cond_acc_hi"]                  # 95 % Wilson intervals
    assert row["cond_acc_min_lo"] <= row["cond_acc_min"] <= row["cond_acc_min_hi"]
    # ... and the judge's verdict on a second set drawn at psi 0.7 towards each genre's mean w, beside it: the same
    # asks, and this G hands out the same loops for them
    assert (row["cond_acc_trunc"], row["cond_acc_min_trunc"]) == (row["cond_acc"], row["cond_acc_min"])
    rows = read_csv(root / "g.csv")
    assert [float(r["cond_acc"]) for r in rows] == pytest.approx(expected)
    # each genre's generated loops against its held-out real loops (6 each), not the 24 it was fit on
    assert [r["genre"] for r in rows] == GENRES and all(r["n_fake"] == "4" and r["n_real"] == "6" for r in rows)
    assert all(r["KAD_musicnn_mel"] != "" and r["FAD_musicnn_mel"] == "nan" for r in rows)   # FAD needs 100 a side
    assert len(list((root / "cache").glob("genres_*.npz"))) == 1        # the real reference, embedded once


def test_a_generator_that_mixes_up_its_genres_is_judged_by_the_loops_it_gave_not_by_the_asks(conditional_ckpt,
                                                                                              monkeypatch):
    """The same G with its genres rotated (asked house it hands out rock, rock -> trap, trap -> house): each
    genre scores the judge's verdict on the loops really handed out, near 0 where the aligned G scores near 1."""
    row, expected = evaluate_genre_true(conditional_ckpt, monkeypatch, [1, 2, 0])
    assert max(expected) <= 0.25
    assert row["cond_acc"] == pytest.approx(np.mean(expected)) and row["cond_acc_min"] == pytest.approx(min(expected))


def test_the_conditional_report_tables_every_conditional_row_per_seed_and_genre_and_writes_docs(conditional_ckpt,
                                                                                                 tmp_path, capsys):
    from experiments import conditional_report
    from plumbing.files import write_csv
    _, ckpt, _ = conditional_ckpt
    for seed in (0, 1):
        run = tmp_path / "runs" / "loop_cond" / f"seed{seed}"
        run.mkdir(parents=True)
        (run / "latest.pt").write_bytes(ckpt.read_bytes())
    cond = {"stylegan2_cond": (0.3, 0.31), "loop_cond": (0.8, 0.82)}
    overall = [{"row": r, "seed": s, "n": 300, "ckpt": f"ckpt_{m}.pt", "step": 10 * m, "train_minutes": m,
                "idle_minutes": m, "KAD_musicnn_mel": 1.0, "density": 0.5, "coverage": 0.5,
                "cond_acc": cond[r][s] if r in cond else "", "cond_acc_lo": 0.7 if r in cond else "",
                "cond_acc_hi": 0.9 if r in cond else "", "judge_acc": 0.95 if r in cond else ""}
               for r in ("loop", "stylegan2_cond", "loop_cond") for s in (0, 1) for m in (15, 30)]
    write_csv(tmp_path / "results.csv", list(overall[0]), overall)
    per = [{"model": f"seed{s}", "step": 10 * m, "genre": g, "cond_acc": acc, "FAD_musicnn_mel": 10, "density": 0.4,
            "coverage": 0.5, "n_real": 8, "n_fake": 4, "judge_acc": 0.95,
            "ckpt": str(tmp_path / "runs" / "loop_cond" / f"seed{s}" / f"ckpt_{m}.pt")}
           for s in (0, 1) for m, acc in ((15, 0.1), (30, 0.9)) for g in GENRES]
    write_csv(tmp_path / "results_genres.csv", list(per[0]), per)
    page = tmp_path / "conditional.md"
    page.write_text("# Genre control\n")
    conditional_report.main([str(tmp_path), "--figure", str(tmp_path / "fig.png"), "--docs", str(page)])
    text = capsys.readouterr().out
    assert "| loop_cond | 300 | 2 |" in text and "| stylegan2_cond | 300 | 2 |" in text and "| loop |" not in text
    assert "| loop_cond | 0 | 300 | 0.80 [0.70, 0.90] |" in text                        # per seed, Wilson interval
    assert all(f"| {g} | 0.90 ± 0 |" in text for g in GENRES) and "0.10" not in text  # the last snapshot's genres
    assert (tmp_path / "fig.png").stat().st_size > 0
    assert "<!-- generated: conditional-" in page.read_text() and "| loop_cond | 300 | 2 |" in page.read_text()
    conditional_report.main([str(tmp_path), "--uncond", "loop"])               # an unconditional row beside them
    text = capsys.readouterr().out
    assert "| loop | 300 | 2 |" in text
    assert "loop_cond against loop" in text and "| KAD_musicnn_mel | 1 ± 0 | 1 ± 0 | not distinguishable |" in text
    assert r"| density (judged by \|density - 1\|) | 0.5 ± 0 | 0.5 ± 0 |" in text
    with pytest.raises(SystemExit, match="no row 'general_cond'") as e:
        conditional_report.main([str(tmp_path), "--cond", "general_cond"])
    assert "\n" not in str(e.value)
