"""Spec tests for scnn.py: the short-chunk CNNs (paper Section 3.1; docs/design.md §2 and §3).

Tiny widths and tiny synthetic loop / fake-MagnaTagATune sets keep the file fast on CPU.
"""
import csv
import math

import numpy as np
import pytest
import soundfile as sf
import torch
from torch import nn

import features
import preprocess
import scnn

torch.set_num_threads(1)


# ------------------------------------------------------------------------------------------------
# Helpers: tiny loop data sets whose genres differ audibly (pitch and gating rate).
# ------------------------------------------------------------------------------------------------
def make_loop_set(data_dir, genres=("house", "rock", "trap"), n_per=8, seed=0, f0=150.0):
    rng = np.random.default_rng(seed)
    t = np.arange(preprocess.LOOP_SAMPLES) / preprocess.SR
    rows = []
    for gi, genre in enumerate(genres):
        for k in range(n_per):
            f = f0 * (gi + 1) * (1 + 0.05 * rng.standard_normal())
            gate = np.sin(2 * np.pi * 2 * (gi + 1) * t) > 0
            x = 0.3 * np.sin(2 * np.pi * f * t) * gate + 0.02 * rng.standard_normal(len(t))
            loop_id = f"{genre}_{k}"
            preprocess.save_loop(data_dir, loop_id, x.astype(np.float32))
            rows.append({"id": loop_id, "source": "test", "bar": 0, "bpm": 120, "genre": genre})
    preprocess.finalize_dataset(data_dir, rows, [])
    return data_dir


@pytest.fixture(scope="module")
def loop_set(tmp_path_factory):
    return make_loop_set(tmp_path_factory.mktemp("loops"))


@pytest.fixture(scope="module")
def tiny_loop_ckpt(loop_set, tmp_path_factory):
    """A width-8 SCNN_Loop trained for two epochs, saved at its default path under a tmp ckpt dir."""
    ckpt_dir = tmp_path_factory.mktemp("ckpt")
    cfg = scnn.LoopTrainConfig(width=8, epochs=2, batch=8)
    ckpt = scnn.train_loop_classifier(loop_set, cfg, ckpt_dir=ckpt_dir, verbose=False)
    return ckpt, ckpt_dir


def freeze_like_features_build(net):
    return net.freeze()


def random_stats(seed):
    rng = np.random.default_rng(seed)
    return (rng.normal(-2, 0.5, 64).astype(np.float32), rng.uniform(0.5, 1.5, 64).astype(np.float32))


# ------------------------------------------------------------------------------------------------
# Architecture
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("width, channels", [(64, (64, 64, 128, 128)), (128, (128, 128, 256, 256))])
def test_stage_shapes_and_channels_for_a_one_second_chunk(width, channels):
    torch.manual_seed(0)
    net = scnn.SCNNFeatures(scnn.ShortChunkCNN(scnn.SCNNConfig(n_classes=5, width=width)), "scnn_loop",
                            random_stats(0))
    assert net.stage_channels == channels
    with torch.no_grad():
        maps = net.stages(torch.randn(2, 1, 100, 64))          # (B, 1, T=100, F=64)
    # Stride-2 convs with padding 1 round up: 50x32, 25x16, 13x8, 7x4 (docs/design.md §3).
    assert [tuple(m.shape) for m in maps] == [(2, c, t, f) for c, (t, f) in
                                              zip(channels, [(50, 32), (25, 16), (13, 8), (7, 4)])]


def test_six_blocks_with_won_et_al_channel_growth_and_projection_shortcuts():
    model = scnn.ShortChunkCNN(scnn.SCNNConfig(n_classes=3, width=64))
    assert len(model.blocks) == 6
    assert [b.conv1.out_channels for b in model.blocks] == [64, 64, 128, 128, 128, 256]
    assert all(b.conv1.stride == (2, 2) and b.shortcut[0].kernel_size == (3, 3) for b in model.blocks)
    assert model.dense1.in_features == 256 and model.dense2.out_features == 3


def test_logits_embed_and_probabilities_accept_a_chunk_or_a_full_loop():
    torch.manual_seed(0)
    model = scnn.ShortChunkCNN(scnn.SCNNConfig(n_classes=4, width=8)).eval()
    for T in (100, 200, 137):
        x = torch.randn(3, 1, T, 64)
        assert model.logits(x).shape == (3, 4)
        assert model.embed(x).shape == (3, 32)                  # 4b channels
        p = model.predict_proba(x)
        assert p.shape == (3, 4) and torch.allclose(p.sum(1), torch.ones(3), atol=1e-5)
    with pytest.raises(ValueError, match="T>=100"):
        model.logits(torch.randn(1, 1, 99, 64))


def test_predict_proba_of_a_loop_averages_its_two_one_second_chunks():
    torch.manual_seed(0)
    model = scnn.ShortChunkCNN(scnn.SCNNConfig(n_classes=4, width=8)).eval()
    x = torch.randn(2, 1, 200, 64)
    with torch.no_grad():
        halves = (torch.softmax(model(x[:, :, :100]), 1) + torch.softmax(model(x[:, :, 100:]), 1)) / 2
    assert torch.allclose(model.predict_proba(x), halves, atol=1e-6)


def test_multilabel_tagger_probabilities_are_independent_sigmoids():
    model = scnn.ShortChunkCNN(scnn.SCNNConfig(n_classes=50, width=4, multilabel=True)).eval()
    p = model.predict_proba(torch.randn(2, 1, 100, 64))
    assert p.shape == (2, 50) and not torch.allclose(p.sum(1), torch.ones(2))
    assert ((p > 0) & (p < 1)).all()


# ------------------------------------------------------------------------------------------------
# Frozen feature network
# ------------------------------------------------------------------------------------------------
def test_frozen_net_has_no_gradients_and_batchnorm_stats_do_not_move_in_train_mode():
    torch.manual_seed(0)
    net = freeze_like_features_build(scnn.SCNNFeatures(
        scnn.ShortChunkCNN(scnn.SCNNConfig(n_classes=3, width=8)), "scnn_loop", random_stats(0)))
    parent = nn.ModuleDict({"feat": net, "head": nn.Conv2d(16, 1, 1)})
    parent.train(True)                                          # as a discriminator during GAN training
    assert not net.training and not any(m.training for m in net.modules())
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x = (3 * torch.randn(4, 1, 100, 64) + 1).requires_grad_(True)   # far from the running stats
    loss = parent["head"](net.stages(x)[-1]).mean()
    loss.backward()
    assert all(not p.requires_grad and p.grad is None for p in net.parameters())
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())   # incl. running_mean/var
    assert x.grad is not None and x.grad.abs().sum() > 0        # the generator still gets a gradient


def test_adapt_converts_gan_z_scores_into_the_networks_own_z_scores():
    gan, own = random_stats(1), random_stats(2)
    net = scnn.SCNNFeatures(scnn.ShortChunkCNN(scnn.SCNNConfig(n_classes=3, width=4)), "scnn_mtat", own, gan)
    log_mel = torch.randn(2, 1, 100, 64) - 2                    # (B, 1, T, F) log10 mel
    z_gan = (log_mel - torch.from_numpy(gan[0])) / torch.from_numpy(gan[1])
    z_own = (log_mel - torch.from_numpy(own[0])) / torch.from_numpy(own[1])
    assert torch.allclose(net.adapt(z_gan), z_own, atol=1e-4)
    assert torch.allclose(scnn.restandardise(z_gan, *gan, *own), z_own, atol=1e-4)
    same = scnn.SCNNFeatures(scnn.ShortChunkCNN(scnn.SCNNConfig(n_classes=3, width=4)), "scnn_loop", own, own)
    assert torch.equal(same.adapt(z_gan), z_gan)                # same data set: identity


# ------------------------------------------------------------------------------------------------
# SCNN_Loop training
# ------------------------------------------------------------------------------------------------
def test_stratified_split_is_80_10_10_per_genre_disjoint_and_reproducible():
    labels = [0] * 50 + [1] * 30 + [2] * 2
    tr, va, te = scnn.stratified_split(labels, seed=3)
    assert sorted(tr + va + te) == list(range(82)) and not (set(tr) & set(va) or set(tr) & set(te))
    assert [sum(labels[i] == 0 for i in p) for p in (tr, va, te)] == [40, 5, 5]
    assert [sum(labels[i] == 1 for i in p) for p in (tr, va, te)] == [24, 3, 3]
    assert sum(labels[i] == 2 for i in tr) >= 1                 # a tiny genre keeps a training loop
    assert scnn.stratified_split(labels, seed=3) == [tr, va, te]


def test_random_cyclic_crop_wraps_around_the_loop():
    x = torch.arange(200.0).view(1, 1, 200, 1).expand(8, 1, 200, 64).contiguous()
    crops = scnn.random_cyclic_crop(x, 100, torch.Generator().manual_seed(0))
    assert crops.shape == (8, 1, 100, 64)
    steps = torch.diff(crops[:, 0, :, 0], dim=1) % 200
    assert (steps == 1).all()                                   # consecutive frames, modulo the loop


def test_one_training_epoch_lowers_the_loss(loop_set):
    torch.manual_seed(0)
    ds = preprocess.LoopMelDataset(loop_set)
    model = scnn.ShortChunkCNN(scnn.SCNNConfig(n_classes=len(ds.genres), width=8))
    cfg = scnn.LoopTrainConfig(batch=4, lr=3e-3)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)

    def loss_now():   # fixed input (first second of every loop), batch statistics, no dropout noise
        model.train()
        model.dropout.eval()
        with torch.no_grad():
            return nn.functional.cross_entropy(model(ds.mels[:, :, :100]), ds.labels).item()

    before = loss_now()
    scnn.train_one_epoch(model, opt, ds.mels, ds.labels, cfg, torch.Generator().manual_seed(0))
    assert loss_now() < before


def test_trained_loop_checkpoint_holds_what_evaluation_needs(tiny_loop_ckpt, loop_set):
    ckpt, ckpt_dir = tiny_loop_ckpt
    path = scnn.loop_checkpoint_path(loop_set, ckpt_dir)
    assert path.is_file() and path.name.startswith(f"scnn_loop_{loop_set.name}_")
    split = ckpt["split"]
    assert len(split["train"]) + len(split["val"]) + len(split["test"]) == 24 and len(split["test"]) == 3
    assert 0.0 <= ckpt["accuracy"] <= 1.0 and ckpt["confusion"].sum() == 3
    model, names, (mean, std) = scnn.load_loop_classifier(loop_set, ckpt_dir)
    assert names == ["house", "rock", "trap"]
    np.testing.assert_allclose(mean, preprocess.load_stats(loop_set)[0])
    assert not model.training and model.predict_proba(torch.randn(2, 1, 200, 64)).shape == (2, 3)
    assert scnn.load_loop_classifier(path)[1] == names          # by checkpoint path as well


def test_build_feature_net_loads_the_loop_checkpoint_frozen_with_identity_adapt(tiny_loop_ckpt, loop_set):
    _, ckpt_dir = tiny_loop_ckpt
    net = features.build("scnn_loop", features.FeatureContext(data_dir=loop_set, ckpt_dir=ckpt_dir))
    assert isinstance(net, scnn.SCNNFeatures) and net.name == "scnn_loop"
    assert net.stage_channels == (8, 8, 16, 16)
    assert all(not p.requires_grad for p in net.parameters())
    z = torch.randn(1, 1, 100, 64)
    assert torch.allclose(net.adapt(z), z)


def test_a_checkpoint_for_another_data_set_is_not_picked_up(tiny_loop_ckpt, loop_set, tmp_path):
    _, ckpt_dir = tiny_loop_ckpt
    # Same directory name, different loops -> a different manifest hash -> a different path.
    other = make_loop_set(tmp_path / loop_set.name, n_per=3, seed=1, f0=300.0)
    assert scnn.loop_checkpoint_path(other, ckpt_dir) != scnn.loop_checkpoint_path(loop_set, ckpt_dir)
    with pytest.raises(FileNotFoundError, match="no SCNN_Loop checkpoint"):
        scnn.load_loop_classifier(other, ckpt_dir)


def test_build_feature_net_trains_a_missing_loop_classifier_first_and_says_so(loop_set, tmp_path,
                                                                             monkeypatch, capsys):
    tiny = scnn.LoopTrainConfig(width=4, epochs=1, batch=8)
    real_train = scnn.train_loop_classifier
    monkeypatch.setattr(scnn, "LoopTrainConfig", lambda device="cpu": tiny)
    monkeypatch.setattr(scnn, "estimate_minutes", lambda n, cfg: 3.2)
    monkeypatch.setattr(scnn, "train_loop_classifier", lambda d, cfg, out: real_train(d, cfg, out=out, verbose=False))
    net = scnn.build_feature_net("loop", features.FeatureContext(data_dir=loop_set, ckpt_dir=tmp_path))
    assert f"no SCNN_loop checkpoint for {loop_set}: training one first (about 3 minutes)" in capsys.readouterr().out
    assert scnn.loop_checkpoint_path(loop_set, tmp_path).is_file() and net.stage_channels == (4, 4, 8, 8)


def test_cli_reports_a_missing_data_set_without_a_traceback(tmp_path, capsys):
    assert scnn.main(["--loops", "drum", "--data", str(tmp_path / "nope")]) == 2
    assert "not a preprocessed loop data set" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------
# Metrics
# ------------------------------------------------------------------------------------------------
def test_roc_auc_and_pr_auc_match_hand_computed_values():
    y, s = [0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]
    assert scnn.roc_auc(y, s) == pytest.approx(0.75)            # 3 of 4 (pos, neg) pairs ordered right
    assert scnn.average_precision(y, s) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    # Ties: a tied (pos, neg) pair counts 1/2; tied scores enter the PR curve together.
    y, s = [0, 1, 0, 1], [0.5, 0.5, 0.2, 0.9]
    assert scnn.roc_auc(y, s) == pytest.approx(3.5 / 4)
    assert scnn.average_precision(y, s) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    assert math.isnan(scnn.roc_auc([1, 1], [0.2, 0.3])) and math.isnan(scnn.average_precision([0, 0], [0.1, 0.2]))
    # Macro averages skip tags that have only one class in the test set.
    Y = np.array([[0, 1], [1, 1], [0, 1], [1, 1]])
    S = np.array([[0.1, 0.3], [0.9, 0.2], [0.2, 0.5], [0.8, 0.1]])
    assert scnn.macro_auc(Y, S) == (pytest.approx(1.0), pytest.approx(1.0), 1)


def test_metrics_agree_with_sklearn_when_it_is_installed():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    s = np.round(rng.random(300) + 0.3 * y, 2)                  # rounded: plenty of ties
    assert scnn.roc_auc(y, s) == pytest.approx(metrics.roc_auc_score(y, s))
    assert scnn.average_precision(y, s) == pytest.approx(metrics.average_precision_score(y, s))


def test_confusion_matrix_counts_and_table_names_the_genres():
    cm = scnn.confusion_matrix([0, 0, 1, 2], [0, 1, 1, 2], 3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [0, 0, 1]]
    table = scnn.format_confusion(cm, ["house", "rock", "trap"])
    assert "house" in table and "trap" in table and "0.50" in table


# ------------------------------------------------------------------------------------------------
# SCNN_MTAT
# ------------------------------------------------------------------------------------------------
def make_fake_mtat(root, n_tags=52):
    """annotations_final.csv in the official layout (tab-separated, every field quoted: clip_id, the
    tag columns, mp3_path) and 1.2-s MP3s under folders 0, 1 (train), c (validation), d (test).
    libsndfile writes MP3 here, so the fake tree uses real MP3s like MTAT's."""
    rng = np.random.default_rng(0)
    tags = [f"tag{i:02d}" for i in range(n_tags)]
    t = np.arange(int(1.2 * preprocess.SR)) / preprocess.SR
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
            sf.write(root / rel, tone.astype(np.float32), preprocess.SR, format="MP3")
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
    tags, rows = scnn.read_mtat_annotations(root)
    assert len(tags) == 50 and tags[0] == "tag00"               # tag00 is on in the most clips
    assert "tag50" not in tags and "tag51" not in tags          # the two rarest are not in the top 50
    assert len(rows) == 16                                      # 15 clips + the broken one; the tagless one dropped
    assert {r["split"] for r in rows if r["mp3_path"][0] in "01"} == {"train"}
    assert {r["split"] for r in rows if r["mp3_path"][0] == "c"} == {"val"}
    assert {r["split"] for r in rows if r["mp3_path"][0] == "d"} == {"test"}
    assert all(r["labels"].shape == (50,) for r in rows)


def test_fake_mtat_run_produces_finite_auc_and_a_usable_checkpoint(tmp_path, monkeypatch, capsys):
    root = make_fake_mtat(tmp_path / "mtat")
    cfg = scnn.MTATConfig(width=4, epochs=2, batch=4, eval_chunks=2)
    ckpt = scnn.train_mtat(root, cfg, cache=tmp_path / "cache", ckpt_dir=tmp_path / "ckpt", verbose=False)
    assert math.isfinite(ckpt["roc_auc"]) and math.isfinite(ckpt["pr_auc"]) and ckpt["n_tags_scored"] > 0
    assert ckpt["skipped"] == ["0/broken-clip.mp3"] and "broken-clip" in capsys.readouterr().out
    assert ckpt["n_clips"] == {"train": 8, "val": 3, "test": 4}
    assert (tmp_path / "cache" / "0" / "artist-album-000-song.mp3.npy").is_file()   # cached mels

    monkeypatch.delenv(scnn.MTAT_ENV, raising=False)
    gan_set = make_loop_set(tmp_path / "loops", n_per=2)
    net = features.build("scnn_mtat", features.FeatureContext(data_dir=gan_set, ckpt_dir=tmp_path / "ckpt"))
    assert net.name == "scnn_mtat" and net.stage_channels == (4, 4, 8, 8)
    z = torch.randn(1, 1, 100, 64)
    assert not torch.allclose(net.adapt(z), z)                  # MTAT's stats differ from the loops'
    assert [m.shape[2:] for m in net.stages(z)] == [(50, 32), (25, 16), (13, 8), (7, 4)]


def test_build_feature_net_mtat_without_checkpoint_says_how_to_make_one(tmp_path, monkeypatch):
    monkeypatch.delenv(scnn.MTAT_ENV, raising=False)
    with pytest.raises(FileNotFoundError, match=r"python scnn.py --mtat ROOT"):
        scnn.build_feature_net("mtat", features.FeatureContext(ckpt_dir=tmp_path))


def test_mtat_sgd_phase_runs_after_adam_in_thirds_of_falling_learning_rate(tmp_path, monkeypatch, capsys):
    root = make_fake_mtat(tmp_path / "mtat")
    rates = []
    real_step = torch.optim.SGD.step

    def spy(self, *a, **k):                      # the rate of every SGD step actually taken
        rates.append(self.param_groups[0]["lr"])
        return real_step(self, *a, **k)
    monkeypatch.setattr(torch.optim.SGD, "step", spy)
    cfg = scnn.MTATConfig(width=4, epochs=1, batch=4, eval_chunks=2, sgd_epochs=3)
    ckpt = scnn.train_mtat(root, cfg, cache=tmp_path / "cache", ckpt_dir=tmp_path / "ckpt", verbose=True)
    assert math.isfinite(ckpt["roc_auc"]) and ckpt["train_config"]["sgd_epochs"] == 3
    assert sorted(set(rates), reverse=True) == list(scnn.SGD_LRS) and rates == sorted(rates, reverse=True)
    out = capsys.readouterr().out
    assert "epoch 1 (adam)" in out and "epoch 2 (sgd 0.001)" in out and "epoch 4 (sgd 1e-05)" in out
