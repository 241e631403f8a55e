"""Spec tests for scnn.py: the short-chunk CNN, its frozen feature-net wrapper and checkpoint loading
(paper Section 3.1; docs/design.md §2 and §3). Training is tests/test_train_scnn.py and tests/test_mtat.py.

Tiny widths and a tiny synthetic loop set keep the file fast on CPU.
"""
import re

import numpy as np
import pytest
import torch
from torch import nn

import featurenet
import scnn
from featurenet import FeatureNetUnavailable
from genre_loops import loop_set, make_loop_set, tiny_loop_ckpt   # noqa: F401  (pytest fixtures)

torch.set_num_threads(1)


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
    with pytest.raises(AssertionError, match="T>=100"):        # a one-line assert in forward()
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
# Loading a trained checkpoint: the registry lookup loads, never trains
# ------------------------------------------------------------------------------------------------
def test_build_feature_net_loads_the_loop_checkpoint_frozen_with_identity_adapt(tiny_loop_ckpt, loop_set):
    _, ckpt_dir = tiny_loop_ckpt
    net = featurenet.build("scnn_loop", featurenet.FeatureContext(data_dir=loop_set, ckpt_dir=ckpt_dir))
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


def test_build_feature_net_never_trains_a_missing_loop_classifier_and_names_the_remedy(loop_set, tmp_path):
    ctx = featurenet.FeatureContext(loops="drum", data_dir=loop_set, ckpt_dir=tmp_path)
    with pytest.raises(FeatureNetUnavailable, match=re.escape(f"python train_scnn.py --loops drum --data {loop_set}")):
        featurenet.build("scnn_loop", ctx)
    assert not any(tmp_path.iterdir())                          # nothing trained, nothing written


def test_build_feature_net_mtat_without_checkpoint_says_how_to_make_one(tmp_path, monkeypatch):
    monkeypatch.delenv(scnn.MTAT_ENV, raising=False)
    with pytest.raises(FeatureNetUnavailable, match=r"python train_scnn.py --mtat ROOT"):
        scnn.build_feature_net("mtat", featurenet.FeatureContext(ckpt_dir=tmp_path))
