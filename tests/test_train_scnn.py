"""Spec tests for train_scnn.py: training SCNN_Loop, the loop-genre classifier, and its announced
first-use training (paper Section 3.1; docs/design.md §2). MagnaTagATune is tests/test_mtat.py.

Tiny widths and a tiny synthetic loop set keep the file fast on CPU.
"""
import numpy as np
import pytest
import torch
from torch import nn

import dataset
import featurenet
import scnn
import train_scnn
from genre_loops import loop_set, tiny_loop_ckpt   # noqa: F401  (pytest fixtures)

torch.set_num_threads(1)


# ------------------------------------------------------------------------------------------------
# Pieces of the training loop
# ------------------------------------------------------------------------------------------------
def test_the_split_is_the_data_sets_train_val_test_by_source_file_and_small_sets_hold_none_out():
    rows = [{"id": f"l{i}", "source": f"s{i // 2}.wav"} for i in range(60)]     # 30 files, two bars each
    tr, va, te = train_scnn.split_indices(rows)
    assert sorted(tr + va + te) == list(range(60)) and va and te
    for part, idx in zip(("train", "val", "test"), (tr, va, te)):
        assert [rows[i] for i in idx] == dataset.split_rows(rows)[part]
    assert train_scnn.split_indices(rows[:10]) == [list(range(10)), [], []]      # 5 files: too few to hold out


def test_random_cyclic_crop_wraps_around_the_loop():
    x = torch.arange(200.0).view(1, 1, 200, 1).expand(8, 1, 200, 64).contiguous()
    crops = train_scnn.random_cyclic_crop(x, 100, torch.Generator().manual_seed(0))
    assert crops.shape == (8, 1, 100, 64)
    steps = torch.diff(crops[:, 0, :, 0], dim=1) % 200
    assert (steps == 1).all()                                   # consecutive frames, modulo the loop


def test_one_training_epoch_lowers_the_loss(loop_set):
    torch.manual_seed(0)
    ds = dataset.LoopMelDataset(loop_set)
    model = scnn.ShortChunkCNN(scnn.SCNNConfig(n_classes=len(ds.genres), width=8))
    cfg = train_scnn.LoopTrainConfig(batch=4, lr=3e-3)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)

    def loss_now():   # fixed input (first second of every loop), batch statistics, no dropout noise
        model.train()
        model.dropout.eval()
        with torch.no_grad():
            return nn.functional.cross_entropy(model(ds.mels[:, :, :100]), ds.labels).item()

    before = loss_now()
    train_scnn.train_one_epoch(model, opt, ds.mels, ds.labels, cfg, torch.Generator().manual_seed(0))
    assert loss_now() < before


def test_confusion_matrix_counts_and_table_names_the_genres():
    cm = train_scnn.confusion_matrix([0, 0, 1, 2], [0, 1, 1, 2], 3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [0, 0, 1]]
    table = train_scnn.format_confusion(cm, ["house", "rock", "trap"])
    assert "house" in table and "trap" in table and "0.50" in table


# ------------------------------------------------------------------------------------------------
# A trained classifier, and training it only when it is missing
# ------------------------------------------------------------------------------------------------
def test_trained_loop_checkpoint_holds_what_evaluation_needs(tiny_loop_ckpt, loop_set):
    ckpt, ckpt_dir = tiny_loop_ckpt
    path = scnn.loop_checkpoint_path(loop_set, ckpt_dir)
    assert path.is_file() and path.name.startswith(f"scnn_loop_{loop_set.name}_")
    split = ckpt["split"]
    assert split == {p: dataset.split_ids(loop_set, p) for p in ("train", "val", "test")} and len(split["test"]) == 5
    assert ckpt["trained_sources"] == dataset.sources_of(loop_set, split["train"])
    assert 0.0 <= ckpt["accuracy"] <= 1.0 and ckpt["confusion"].sum() == 5
    model, names, (mean, std) = scnn.load_loop_classifier(loop_set, ckpt_dir)
    assert names == ["house", "rock", "trap"]
    np.testing.assert_allclose(mean, dataset.load_stats(loop_set)[0])
    assert not model.training and model.predict_proba(torch.randn(2, 1, 200, 64)).shape == (2, 3)
    assert scnn.load_loop_classifier(path)[1] == names          # by checkpoint path as well


def test_ensure_loop_classifier_trains_a_missing_one_first_and_says_so(loop_set, tmp_path, monkeypatch, capsys):
    tiny = train_scnn.LoopTrainConfig(width=4, epochs=1, batch=8)
    real_train = train_scnn.train_loop_classifier
    monkeypatch.setattr(train_scnn, "LoopTrainConfig", lambda device="cpu": tiny)
    monkeypatch.setattr(train_scnn, "estimate_minutes", lambda n, cfg: 3.2)
    monkeypatch.setattr(train_scnn, "train_loop_classifier",
                        lambda d, cfg, out: real_train(d, cfg, out=out, verbose=False))
    path = train_scnn.ensure_loop_classifier("drum", loop_set, ckpt_dir=tmp_path)
    assert (f"training the loop-genre classifier scnn_loop on {loop_set} (first use, about 3 minutes)"
            in capsys.readouterr().out)
    assert path == scnn.loop_checkpoint_path(loop_set, tmp_path) and path.is_file()
    net = scnn.build_feature_net("loop", featurenet.FeatureContext(data_dir=loop_set, ckpt_dir=tmp_path))
    assert net.stage_channels == (4, 4, 8, 8)


def test_ensure_loop_classifier_does_not_retrain_an_existing_checkpoint(tiny_loop_ckpt, loop_set, monkeypatch, capsys):
    _, ckpt_dir = tiny_loop_ckpt
    monkeypatch.setattr(train_scnn, "train_loop_classifier", lambda *a, **k: pytest.fail("retrained"))
    path = train_scnn.ensure_loop_classifier("drum", loop_set, ckpt_dir=ckpt_dir)
    assert path == scnn.loop_checkpoint_path(loop_set, ckpt_dir) and capsys.readouterr().out == ""


# ------------------------------------------------------------------------------------------------
# Command line
# ------------------------------------------------------------------------------------------------
def test_cli_reports_a_missing_data_set_without_a_traceback(tmp_path, capsys):
    assert train_scnn.main(["--loops", "drum", "--data", str(tmp_path / "nope")]) == 2
    assert "not a preprocessed loop data set" in capsys.readouterr().err
