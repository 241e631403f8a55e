"""Spec tests for discriminator.py (paper Section 2 / Figure 2, Section 4; docs/design.md §4).

Stand-in feature networks with the real networks' stage sizes keep this fast and weight-free.
"""
import pytest
import torch

import losses
from discriminator import (D_CHANNELS, ProjectedDiscriminator, ScaleDiscriminator, StyleGAN2Discriminator,
                           down_plan, trainable_parameters)
from stubs import random_mel, stub

torch.set_num_threads(1)


def mel(b=4, seed=0):
    return random_mel(b, seed)


# ------------------------------------------------------------------------------------------------
# ScaleDiscriminator
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("size", [(100, 32), (50, 16), (24, 8), (12, 4),   # VGGish
                                  (26, 8), (14, 4),                          # SCNN's odd deep stages
                                  (24, 8)])                                  # aisfx (its last two stages)
def test_scale_discriminator_handles_every_scale_of_every_net(size):
    d = ScaleDiscriminator(32, size)
    out = d(torch.randn(4, 32, *size))
    assert out.shape == (4, d.n_logits) and d.n_logits >= 1 and torch.isfinite(out).all()


def test_down_blocks_pool_only_axes_above_8_until_both_are_at_most_8():
    assert down_plan((100, 32)) == [(2, 2), (2, 2), (2, 1), (2, 1)]    # -> 6x8
    assert down_plan((12, 4)) == [(2, 1)]                              # -> 6x4
    assert down_plan((8, 8)) == []
    assert ScaleDiscriminator(8, (100, 32)).out_size == (3, 5)         # 6x8 map, 4x4 logit conv
    assert ScaleDiscriminator(8, (12, 4)).out_size == (3, 1)


def test_head_widths_follow_projected_gans_table_snapped_to_the_larger_side():
    d = ScaleDiscriminator(64, (100, 32))     # 100 -> snapped 128: four blocks 128 -> 8
    widths = [blk.pointwise.out_channels for blk in d.main]
    assert widths == [D_CHANNELS[64], D_CHANNELS[32], D_CHANNELS[16], D_CHANNELS[8]] == [64, 128, 256, 512]
    assert d.main[0].depthwise.in_channels == 64                   # first block reads the projector width
    assert d.logits.in_channels == 513                              # + the minibatch-stddev channel


def test_head_convs_are_spectrally_normalised():
    d = ScaleDiscriminator(16, (24, 8))
    names = [n for n, _ in d.named_parameters()]
    assert any("parametrizations.weight.original" in n for n in names)
    w = d.logits.weight                                            # the normalised weight
    assert torch.linalg.matrix_norm(w.flatten(1), ord=2) <= 1.05


# ------------------------------------------------------------------------------------------------
# ProjectedDiscriminator
# ------------------------------------------------------------------------------------------------

def test_one_net_gives_four_heads_of_patch_logits():
    D = ProjectedDiscriminator([stub("vgg")], upsample=False)
    out = D(mel())
    assert [tuple(o.shape) for o in out] == [(4, 15), (4, 15), (4, 15), (4, 3)]
    D = ProjectedDiscriminator([stub("vgg")])          # default: CSM maps x2 (200x64 ... 24x8)
    assert len(D(mel())) == 4


def test_fusion_of_two_nets_gives_eight_heads():
    D = ProjectedDiscriminator([stub("vgg"), stub("scnn")], upsample=False)
    out = D(mel())
    assert len(out) == 8
    assert [o.shape[1] for o in out] == [15, 15, 15, 3, 15, 15, 15, 4]    # SCNN's 14x4 -> 7x4 -> 4x1
    assert all(o.shape[0] == 4 for o in out)


def test_fused_projectors_get_different_seeds():
    D = ProjectedDiscriminator([stub("vgg"), stub("vgg")], seed=3)
    assert [p.seed for p in D.projectors] == [3, 4]
    assert not torch.equal(D.projectors[0].ccm0_weight, D.projectors[1].ccm0_weight)


def test_trainable_parameters_are_the_heads_only():
    D = ProjectedDiscriminator([stub("vgg"), stub("aisfx")])
    trainable = {id(p) for p in trainable_parameters(D)}
    heads = {id(p) for p in D.heads.parameters()}
    assert trainable == heads and trainable
    assert not any(p.requires_grad for p in D.projectors.parameters())


def test_optimiser_step_moves_heads_but_not_feature_nets_or_projection():
    net = stub("vgg")
    D = ProjectedDiscriminator([net]).train()
    frozen = {k: v.clone() for k, v in D.projectors.state_dict().items()}
    head_before = D.heads[0][0].main[0].pointwise.parametrizations.weight.original.clone()
    opt = torch.optim.Adam(trainable_parameters(D), lr=1e-2)
    loss = losses.d_hinge(D(mel(seed=1)), D(mel(seed=2) * 2))
    loss.backward()
    opt.step()
    assert all(torch.equal(v, frozen[k]) for k, v in D.projectors.state_dict().items())   # incl. BN stats
    assert not net.training
    assert not torch.equal(D.heads[0][0].main[0].pointwise.parametrizations.weight.original, head_before)


def test_gradients_reach_the_generator_output_through_the_frozen_nets():
    net = stub("scnn")
    D = ProjectedDiscriminator([net])
    fake = mel().requires_grad_(True)
    losses.g_hinge(D(fake)).backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0
    assert all(p.grad is None for p in net.parameters())


def test_state_dict_round_trip_restores_the_whole_discriminator():
    a = ProjectedDiscriminator([stub("vgg")], seed=0).eval()
    b = ProjectedDiscriminator([stub("vgg")], seed=9).eval()   # other projection, other stub weights
    b.load_state_dict(a.state_dict())
    x = mel()
    assert all(torch.allclose(u, v) for u, v in zip(a(x), b(x)))


def test_runs_under_bf16_autocast():
    D = ProjectedDiscriminator([stub("vgg")])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = D(mel())
    assert len(out) == 4 and all(torch.isfinite(o.float()).all() for o in out)


def test_projected_discriminator_rejects_a_wrong_shape_and_no_nets():
    D = ProjectedDiscriminator([stub("vgg")])
    with pytest.raises(AssertionError, match=r"expected a mel \(B, 1, 200, 64\)"):   # forward: a one-line assert
        D(torch.randn(4, 1, 192, 64))
    with pytest.raises(ValueError, match="at least one feature network"):
        ProjectedDiscriminator([])


# ------------------------------------------------------------------------------------------------
# StyleGAN2 baseline
# ------------------------------------------------------------------------------------------------

def test_baseline_gives_one_logit_per_sample_from_a_12x4_grid():
    D = StyleGAN2Discriminator(max_channels=16)
    assert D.final_size == (12, 4) and D.channels == 16
    assert D(mel()).shape == (4, 1)
    assert StyleGAN2Discriminator().channels == 512          # the paper-size default


def test_baseline_r1_is_positive_and_trains_d():
    D = StyleGAN2Discriminator(max_channels=16)
    real = mel().requires_grad_(True)
    r1 = losses.r1_penalty(D(real), real)
    assert r1.item() > 0
    (losses.r1_loss_weight() * r1).backward()
    # Every weight that shapes dD/dx gets a gradient (the last layer's bias cannot: it does not move dD/dx).
    assert D.stem.conv.weight.grad.abs().sum() > 0
    assert D.blocks[0].conv1.conv.weight.grad.abs().sum() > 0
    assert D.final_linear[1].weight.grad.abs().sum() > 0


def test_baseline_rejects_a_wrong_shape():
    with pytest.raises(ValueError, match="StyleGAN2Discriminator: expected a mel"):
        StyleGAN2Discriminator(max_channels=8)(torch.randn(4, 1, 64, 200))


def test_real_feature_cache_gives_the_same_logits_and_computes_each_loop_once():
    D = ProjectedDiscriminator([stub("scnn"), stub("aisfx")], upsample=False).eval()
    reals = random_mel(8)                                             # a tiny "data set" of 8 loops
    idx = torch.tensor([5, 1, 5, 7])                                  # a batch drawn with replacement
    want = D(reals[idx])
    D.cache_real_features()
    first, again = D(reals[idx], real_idx=idx), D(reals[idx], real_idx=idx)
    for w, a, b in zip(want, first, again):
        torch.testing.assert_close(a, w)
        torch.testing.assert_close(b, w)
    assert len(D.real_cache) == 2 * 3                                 # 3 distinct loops x 2 feature nets
