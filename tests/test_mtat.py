"""Spec tests for mtat.py: MagnaTagATune's annotations, the SCNN_MTAT tagger's training run and its
ROC-/PR-AUC (paper Section 3.1; docs/design.md §2; Won et al. 2020).

A fake MagnaTagATune tree of real MP3s (1.2 s each) and tiny widths keep the file fast on CPU.
"""
import csv
import math

import numpy as np
import pytest
import soundfile as sf
import torch

import featurenet
import mel
import mtat
import scnn
from genre_loops import make_loop_set

torch.set_num_threads(1)


# ------------------------------------------------------------------------------------------------
# ROC-AUC and PR-AUC
# ------------------------------------------------------------------------------------------------
def test_roc_auc_and_pr_auc_match_hand_computed_values():
    y, s = [0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]
    assert mtat.roc_auc(y, s) == pytest.approx(0.75)            # 3 of 4 (pos, neg) pairs ordered right
    assert mtat.average_precision(y, s) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    # Ties: a tied (pos, neg) pair counts 1/2; tied scores enter the PR curve together.
    y, s = [0, 1, 0, 1], [0.5, 0.5, 0.2, 0.9]
    assert mtat.roc_auc(y, s) == pytest.approx(3.5 / 4)
    assert mtat.average_precision(y, s) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    assert math.isnan(mtat.roc_auc([1, 1], [0.2, 0.3])) and math.isnan(mtat.average_precision([0, 0], [0.1, 0.2]))
    # Macro averages skip tags that have only one class in the test set.
    Y = np.array([[0, 1], [1, 1], [0, 1], [1, 1]])
    S = np.array([[0.1, 0.3], [0.9, 0.2], [0.2, 0.5], [0.8, 0.1]])
    assert mtat.macro_auc(Y, S) == (pytest.approx(1.0), pytest.approx(1.0), 1)


def test_metrics_agree_with_sklearn_when_it_is_installed():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    s = np.round(rng.random(300) + 0.3 * y, 2)                  # rounded: plenty of ties
    assert mtat.roc_auc(y, s) == pytest.approx(metrics.roc_auc_score(y, s))
    assert mtat.average_precision(y, s) == pytest.approx(metrics.average_precision_score(y, s))


# ------------------------------------------------------------------------------------------------
# SCNN_MTAT
# ------------------------------------------------------------------------------------------------
def make_fake_mtat(root, n_tags=52):
    """annotations_final.csv in the official layout (tab-separated, every field quoted: clip_id, the
    tag columns, mp3_path) and 1.2-s MP3s under folders 0, 1 (train), c (validation), d (test).
    libsndfile writes MP3 here, so the fake tree uses real MP3s like MTAT's."""
    rng = np.random.default_rng(0)
    tags = [f"tag{i:02d}" for i in range(n_tags)]
    t = np.arange(int(1.2 * mel.SR)) / mel.SR
    rows = []
    clip = 0
    for folder, n in (("0", 5), ("1", 3), ("c", 3), ("d", 4)):
        for k in range(n):
            y = np.zeros(n_tags, int)
            y[0] = 1                                            # tag00: on everywhere, the most frequent
            y[1:50] = (np.arange(1, 50) + k) % 2                # half the tags follow the tone (k % 2)
            tone = 0.2 * np.sin(2 * np.pi * (200 + 300 * (k % 2)) * t) + 0.01 * rng.standard_normal(len(t))
            rel = f"{folder}/artist-album-{clip:03d}-song.mp3"
            (root / folder).mkdir(parents=True, exist_ok=True)
            sf.write(root / rel, tone.astype(np.float32), mel.SR, format="MP3")
            rows.append([str(clip)] + [str(v) for v in y] + [rel])
            clip += 1
    # A clip with none of the top-50 tags: dropped, as in the standard top-50 split.
    rows.append([str(clip)] + ["0"] * (n_tags - 1) + ["1", "0/artist-album-000-song.mp3"])
    clip += 1
    # A clip whose mp3 is broken (MTAT has a few): skipped and reported, not fatal.
    (root / "0" / "broken-clip.mp3").write_bytes(b"not an mp3 at all" * 10)
    rows.append([str(clip)] + ["1"] * n_tags + ["0/broken-clip.mp3"])
    with open(root / "annotations_final.csv", "w", newline="") as f:
        w = csv.writer(f, delimiter="\t", quoting=csv.QUOTE_ALL)
        w.writerow(["clip_id"] + tags + ["mp3_path"])
        w.writerows(rows)
    return root


def test_mtat_annotations_give_the_50_most_frequent_tags_and_the_split_by_folder(tmp_path):
    root = make_fake_mtat(tmp_path / "mtat")
    tags, rows = mtat.read_mtat_annotations(root)
    assert len(tags) == 50 and tags[0] == "tag00"               # tag00 is on in the most clips
    assert "tag50" not in tags and "tag51" not in tags          # the two rarest are not in the top 50
    assert len(rows) == 16                                      # 15 clips + the broken one; the tagless one dropped
    assert {r["split"] for r in rows if r["mp3_path"][0] in "01"} == {"train"}
    assert {r["split"] for r in rows if r["mp3_path"][0] == "c"} == {"val"}
    assert {r["split"] for r in rows if r["mp3_path"][0] == "d"} == {"test"}
    assert all(r["labels"].shape == (50,) for r in rows)


def test_fake_mtat_run_produces_finite_auc_and_a_usable_checkpoint(tmp_path, monkeypatch, capsys):
    root = make_fake_mtat(tmp_path / "mtat")
    cfg = mtat.MTATConfig(width=4, epochs=2, batch=4, eval_chunks=2)
    ckpt = mtat.train_mtat(root, cfg, cache=tmp_path / "cache", ckpt_dir=tmp_path / "ckpt", verbose=False)
    assert math.isfinite(ckpt["roc_auc"]) and math.isfinite(ckpt["pr_auc"]) and ckpt["n_tags_scored"] > 0
    assert ckpt["skipped"] == ["0/broken-clip.mp3"] and "broken-clip" in capsys.readouterr().out
    assert ckpt["n_clips"] == {"train": 8, "val": 3, "test": 4}
    assert (tmp_path / "cache" / "0" / "artist-album-000-song.mp3.npy").is_file()   # cached mels

    monkeypatch.delenv(scnn.MTAT_ENV, raising=False)
    gan_set = make_loop_set(tmp_path / "loops", n_per=2)
    net = featurenet.build("scnn_mtat", featurenet.FeatureContext(data_dir=gan_set, ckpt_dir=tmp_path / "ckpt"))
    assert net.name == "scnn_mtat" and net.stage_channels == (4, 4, 8, 8)
    z = torch.randn(1, 1, 100, 64)
    assert not torch.allclose(net.adapt(z), z)                  # MTAT's stats differ from the loops'
    assert [m.shape[2:] for m in net.stages(z)] == [(50, 32), (25, 16), (13, 8), (7, 4)]


def test_mtat_sgd_phase_runs_after_adam_in_thirds_of_falling_learning_rate(tmp_path, monkeypatch, capsys):
    root = make_fake_mtat(tmp_path / "mtat")
    rates = []
    real_step = torch.optim.SGD.step

    def spy(self, *a, **k):                      # the rate of every SGD step actually taken
        rates.append(self.param_groups[0]["lr"])
        return real_step(self, *a, **k)
    monkeypatch.setattr(torch.optim.SGD, "step", spy)
    cfg = mtat.MTATConfig(width=4, epochs=1, batch=4, eval_chunks=2, sgd_epochs=3)
    ckpt = mtat.train_mtat(root, cfg, cache=tmp_path / "cache", ckpt_dir=tmp_path / "ckpt", verbose=True)
    assert math.isfinite(ckpt["roc_auc"]) and ckpt["train_config"]["sgd_epochs"] == 3
    assert sorted(set(rates), reverse=True) == list(mtat.SGD_LRS) and rates == sorted(rates, reverse=True)
    out = capsys.readouterr().out
    assert "epoch 1 (adam)" in out and "epoch 2 (sgd 0.001)" in out and "epoch 4 (sgd 1e-05)" in out
