"""Every split in pjloop is by source file (dataset.split_rows), and every consumer checks it: the vocoder and
its benchmark, SCNN_loop, the genre judge and evaluate.py's reference. On a data set where each file gives three
bars (tests/source_bars.py), no file may have bars on both sides of any split; models record the files they
trained on, and a model is refused, in one line, against loops from those files."""
from __future__ import annotations

import argparse
import math
from dataclasses import asdict

import numpy as np
import pytest
import torch

import dataset
import evaluate as E
from evaluation import reference as REF
import reproduce
import train_melgan as T
import train_scnn
from evaluation import embeddings as EE
from evaluation import judge as J
from evaluation import report
from experiments import bench_vocoder as BV
from generator import Generator, GeneratorConfig
from mel import HOP
from plumbing.checkpoint import load_checkpoint, save_checkpoint
from plumbing.files import read_csv
from source_bars import PARTS, bar_set, make_bar_set, one_genre_bar_set, source_names, sources  # noqa: F401
from vocoder_fixtures import TINY_FAST

pytestmark = pytest.mark.usefixtures("one_thread")     # tests/conftest.py
NAMES = source_names()
HELD = set(NAMES["val"] + NAMES["test"])


def part(data, name):
    return dataset.split_ids(data, name)


def test_the_fixture_cuts_three_bars_from_each_file_into_known_parts(bar_set):
    assert [len(part(bar_set, p)) for p in ("train", "val", "test", "heldout")] == [72, 9, 9, 18]
    assert sources(bar_set, part(bar_set, "heldout")) == HELD


# ---------------------------------------------------------------------------------------------
# The vocoder and its benchmark
# ---------------------------------------------------------------------------------------------
def test_the_vocoder_trains_on_the_train_part_and_the_benchmark_scores_other_files(bar_set):
    trained = T.training_ids(bar_set)
    scored, reference = BV.held_out_ids(bar_set, 128)
    assert trained == part(bar_set, "train")
    assert sources(bar_set, scored) == set(NAMES["test"]) and sources(bar_set, reference) == set(NAMES["val"])
    assert not sources(bar_set, trained) & sources(bar_set, scored + reference)
    assert BV.held_out_ids(bar_set, 4) == (scored[:4], reference[:4])


def test_a_vocoder_checkpoint_and_its_snapshots_record_the_files_it_trained_on(bar_set, tmp_path):
    cfg = T.TrainConfig(loops="drum", data=str(bar_set), arch="fast", batch=2, segment=8 * HOP, fast=TINY_FAST)
    T.train_melgan(cfg, tmp_path / "v.pt", steps=1, minutes=None, resume=False, device="cpu", progress=False,
                   snapshot_every=1.0)
    want = dataset.sources_of(bar_set, part(bar_set, "train"))
    assert len(want) == PARTS["train"]
    assert load_checkpoint(tmp_path / "v.pt")["trained_sources"] == want
    assert load_checkpoint(tmp_path / "v_snapshots" / "min0000.0.pt")["trained_sources"] == want


def vocoder_ckpt(path, **extra):
    """A tiny fast-vocoder checkpoint whose record of training files is `extra` (none: an older checkpoint)."""
    state = T.FastTrainer(T.TrainConfig(arch="fast", fast=TINY_FAST), torch.device("cpu")).generator_state()
    state.pop("trained_sources")
    save_checkpoint({**state, **extra}, path)
    return path


def test_bench_vocoder_refuses_in_one_line_a_vocoder_that_trained_on_the_held_out_files(bar_set, tmp_path):
    heard = vocoder_ckpt(tmp_path / "heard.pt", trained_sources=dataset.sources_of(bar_set))    # every file
    with pytest.raises(SystemExit) as e:
        BV.main(["--loops", "drum", "--data", str(bar_set), "--vocoder", str(heard), "--griffin-lim", "no"])
    msg = str(e.value)
    assert "trained on 3 source files (" in msg and "\n" not in msg
    assert all(d in msg for d in dataset.sources_of(bar_set, part(bar_set, "test")))


def test_bench_vocoder_passes_a_train_part_vocoder_and_says_an_older_one_cannot_be_checked(bar_set, tmp_path,
                                                                                         capsys):
    scored = BV.held_out_ids(bar_set, 128)[0]
    BV.check_unheard(vocoder_ckpt(tmp_path / "ok.pt", trained_sources=dataset.sources_of(bar_set, part(bar_set, "train"))),
                     bar_set, scored)
    assert capsys.readouterr().out == ""
    BV.check_unheard(vocoder_ckpt(tmp_path / "old.pt"), bar_set, scored)
    out = capsys.readouterr().out
    assert "cannot be checked" in out and out.count("\n") == 1


# ---------------------------------------------------------------------------------------------
# SCNN_loop and the genre judge
# ---------------------------------------------------------------------------------------------
def test_scnn_loop_splits_80_10_10_by_source_file_and_records_its_training_files(bar_set, tmp_path):
    cfg = train_scnn.LoopTrainConfig(width=4, epochs=1, batch=16)
    ck = train_scnn.train_loop_classifier(bar_set, cfg, out=tmp_path / "scnn.pt", verbose=False)
    assert {p: sources(bar_set, ids) for p, ids in ck["split"].items()} == {p: set(v) for p, v in NAMES.items()}
    assert ck["trained_sources"] == dataset.sources_of(bar_set, ck["split"]["train"])
    assert int(ck["confusion"].sum()) == 9 and 0.0 <= ck["accuracy"] <= 1.0


def test_the_judge_fits_on_the_train_part_and_never_sees_the_held_out_files(bar_set):
    rows = read_csv(bar_set / "manifest.csv")
    held = J.heldout_mask(rows)
    assert {r["source"] for r, h in zip(rows, held) if h} == HELD
    assert not {r["source"] for r, h in zip(rows, held) if not h} & HELD
    rng = np.random.default_rng(0)
    y = np.array([J_GENRE[r["genre"]] for r in rows])
    x = rng.standard_normal((len(rows), 6))
    x[np.arange(len(y)), y] += 4.0
    fit = J.fit_judge(x, y, list(J_GENRE), held)
    assert (fit.n_train, fit.n_test) == (72, 18) and fit.accuracy >= 0.9
    scrambled = x.copy()
    scrambled[held] = rng.standard_normal((held.sum(), 6))               # held-out loops changed: same fit
    again = J.fit_judge(scrambled, y, list(J_GENRE), held)
    np.testing.assert_array_equal(again.weight, fit.weight)
    assert again.accuracy < fit.accuracy                                   # ... measured on them alone
    ref = J.GenreReference(list(J_GENRE), y, x, x, held)
    assert np.array_equal(ref.reference(), held)                           # per-genre rows: held-out loops


J_GENRE = {"house": 0, "rock": 1, "trap": 2}


# ---------------------------------------------------------------------------------------------
# evaluate.py: the held-out reference, its refusals, the real floor and the copies column
# ---------------------------------------------------------------------------------------------
def test_the_reference_is_held_out_files_and_the_real_floor_reads_training_files(bar_set):
    ref = REF.part_ids(bar_set, 18, seed=0)
    assert sources(bar_set, ref) == HELD and REF.part_ids(bar_set, 5, seed=0) == ref[:5]
    floor = REF.part_ids(bar_set, 18, seed=0, part=REF.TRAIN_PART)
    assert sources(bar_set, floor) <= set(NAMES["train"])


def refusal(argv, capsys) -> str:
    """evaluate.py's answer to a reference it will not use: exit status 2 and one line on stderr, no table."""
    assert E.main(argv) == E.USER_ERROR
    out, err = capsys.readouterr()
    assert "Table 1" not in out
    return err.strip()


def test_an_n_above_the_held_out_loops_is_one_line_saying_how_many_there_are(bar_set, tmp_path, capsys):
    msg = refusal(["--real-anchor", "--data", str(bar_set), "-n", "50", "--ckpt-dir", str(tmp_path)], capsys)
    assert "has 18 loops (from 6 source files), fewer than -n 50: pass -n 18 or less" in msg and "\n" not in msg


def test_a_set_too_small_to_hold_files_out_has_no_reference_and_evaluate_says_so(tmp_path, capsys):
    small = make_bar_set(tmp_path / "small", parts={"train": 5}, bars=2)
    msg = refusal(["--real-anchor", "--data", str(small), "-n", "4", "--ckpt-dir", str(tmp_path)], capsys)
    assert "5 source files, fewer than 20: too few to hold any out" in msg and "\n" not in msg


def generator_ckpt(path, data, **extra):
    """A tiny generator checkpoint of data set `data`; `extra`: its record of the training files and config."""
    cfg = GeneratorConfig(max_channels=8)
    torch.manual_seed(0)
    mean, std = dataset.load_stats(data)
    save_checkpoint({"g_ema": Generator(cfg).state_dict(), "g_config": asdict(cfg), "step": 10,
                     "mel_mean": torch.from_numpy(mean), "mel_std": torch.from_numpy(std), "features": [],
                     "loops": "drum", "train_seconds": 60.0, **extra}, path)
    return path


def test_a_generator_trained_with_split_all_is_refused_in_one_line_naming_the_overlap(bar_set, tmp_path, capsys):
    ck = generator_ckpt(tmp_path / "all" / "latest.pt", bar_set, trained_sources=dataset.sources_of(bar_set),
                        config={"data": str(bar_set), "split": "all"})
    msg = refusal([str(ck), "--data", str(bar_set), "-n", "18", "--ckpt-dir", str(tmp_path)], capsys)
    assert "trained on 6 source files (" in msg and "--split all" in msg and "\n" not in msg
    assert sum(d in msg for d in dataset.sources_of(bar_set, part(bar_set, "heldout"))) == dataset.OVERLAP_SHOWN


def test_a_checkpoint_from_before_recorded_files_trained_on_its_whole_set_and_is_refused_on_it(bar_set, tmp_path,
                                                                                               capsys):
    old = generator_ckpt(tmp_path / "old" / "latest.pt", bar_set, config={"data": str(bar_set)})
    msg = refusal([str(old), "--data", str(bar_set), "-n", "9", "--ckpt-dir", str(tmp_path)], capsys)
    assert "trained on every loop" in msg and "--split train" in msg and "\n" not in msg
    REF.check_unseen(load_checkpoint(old), old, tmp_path / "another_set", [])         # another set: fine


def test_a_generator_trained_on_the_train_part_passes_the_check(bar_set):
    ck = {"trained_sources": dataset.sources_of(bar_set, part(bar_set, "train")),
          "config": {"data": str(bar_set), "split": "train"}}
    REF.check_unseen(ck, "latest.pt", bar_set, REF.part_ids(bar_set, 18))


class MelMean(torch.nn.Module):
    """A stand-in for MSD_musicnn (seconds, not minutes): a loop's mel (or musicnn patch) averaged over time."""

    def __init__(self):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))             # embed_mels asks a parameter for the device

    def from_mels(self, mels):
        return mels.mean(dim=2)                                      # (B, 64, T) -> (B, 64)

    def penultimate(self, patch):
        return patch.mean(dim=2)[:, 0]                               # (B, 1, T, 96) -> (B, 96)


@pytest.fixture
def stand_in_nets(one_genre_bar_set, monkeypatch):
    """evaluate.py's networks, small: RandomVGG16 narrowed, MelMean as musicnn, no IS classifier to train."""
    nets = EE.EvalNets("cpu", *dataset.load_stats(one_genre_bar_set), EE.RandomVGG16(fc_dim=32, width=8),
                       musicnn=MelMean())
    monkeypatch.setattr(REF, "load_eval_nets", lambda *a, **k: nets)
    return nets


def test_copies_is_one_for_training_loops_and_near_zero_for_held_out_ones(one_genre_bar_set, stand_in_nets, tmp_path):
    data = one_genre_bar_set
    real = REF.prepare_real(data, 18, cache_dir=tmp_path / "cache", ckpt_dir=tmp_path, verbose=False)
    assert real.train_emb.shape == (72, 64) and real.heldout_to_train.shape == (18,)
    mels = np.stack([np.load(data / "mel" / f"{i}.npy") for i in part(data, "train")[:18]])    # (18, 64, 200)
    assert REF.copies_column(EE.embed_set(None, mels, stand_in_nets, verbose=False), real) == 1.0
    assert REF.copies_column(real.feats, real) <= 1 / 18               # the reference is as new as held-out files are
    assert len(list((tmp_path / "cache").glob("train_*_musicnn_mel.npz"))) == 1


def test_the_real_anchor_row_is_the_real_floor_n_training_loops_against_the_n_held_out(one_genre_bar_set,
                                                                                        stand_in_nets, tmp_path):
    csv = tmp_path / "r.csv"
    assert E.main(["--real-anchor", "--data", str(one_genre_bar_set), "-n", "9", "--ckpt-dir", str(tmp_path),
                   "--csv", str(csv)]) == 0
    row = read_csv(csv)[0]
    assert row["model"] == "Real floor (train vs held-out)" and row["n_real"] == row["n_fake"] == "9"
    assert float(row["FAD_vgg16rand"]) > 0 and math.isnan(float(row["copies"]))
    parts = {p.name.split("_")[-3] for p in (tmp_path / "eval_cache").glob("real_*.npz")}
    assert parts == {"heldout", "train"}


def test_reproduce_writes_the_real_floor_line_once_per_results_set(one_genre_bar_set, stand_in_nets, tmp_path):
    real = REF.prepare_real(one_genre_bar_set, 9, cache_dir=tmp_path / "cache", ckpt_dir=tmp_path, verbose=False)
    args, results = argparse.Namespace(n=9, data=str(one_genre_bar_set)), tmp_path / "results.csv"
    for _ in range(2):
        reproduce.ensure_real_floor(real, args, results, cache_dir=tmp_path / "cache")
    lines = read_csv(results)
    assert [ln["row"] for ln in lines] == [report.FLOOR_ROW] and lines[0]["n"] == lines[0]["n_fake"] == "9"
    assert "FAD_vgg16rand" in report.floors_at(report.read_results(lines), 9)
