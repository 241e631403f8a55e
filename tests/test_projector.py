"""Spec tests for projector.py (paper Section 2 / Figure 2; docs/design.md §3).

The feature networks here are tiny stand-ins with the real networks' stage SIZES (VGGish max-pool floors,
SCNN stride-2 convs, aisfx's unpooled fourth block), so the tests are fast and need no weights.
"""
import pytest
import torch
from torch import nn

from stubs import random_mel, stub
from featurenet import use_batch_stats
from projector import Projector, projector_channels, stage_sizes

torch.set_num_threads(1)


def mel(b=2, seed=0):
    return random_mel(b, seed)


@pytest.mark.parametrize("kind, sizes", [
    ("vgg", [(100, 32), (50, 16), (24, 8), (12, 4)]),
    ("scnn", [(100, 32), (50, 16), (26, 8), (14, 4)]),
    ("aisfx", [(100, 32), (50, 16), (24, 8), (24, 8)]),
])
def test_output_is_four_maps_with_stage_sizes_doubled_in_time(kind, sizes):
    p = Projector(stub(kind), upsample=False)
    out = p(mel())
    assert [tuple(o.shape) for o in out] == [(2, c, t, f) for c, (t, f) in zip([64, 64, 128, 256], sizes)]
    assert p.scale_sizes() == sizes
    assert p.out_channels == [64, 64, 128, 256]


def test_stage_sizes_dry_run_reports_each_chunk_stage():
    assert stage_sizes(stub("vgg")) == [(50, 32), (25, 16), (12, 8), (6, 4)]
    assert stage_sizes(stub("aisfx")) == [(50, 32), (25, 16), (12, 8), (12, 8)]


def test_channel_counts_with_and_without_expand():
    assert projector_channels(True) == ([64, 128, 256, 512], [64, 64, 128, 256])
    assert projector_channels(False) == ([64] * 4, [64] * 4)
    p = Projector(stub(), expand=True)
    assert [tuple(getattr(p, f"ccm{i}_weight").shape) for i in range(4)] == \
        [(64, 8, 1, 1), (128, 16, 1, 1), (256, 32, 1, 1), (512, 32, 1, 1)]
    assert [tuple(getattr(p, f"csm{i}_weight").shape) for i in range(4)] == \
        [(64, 64, 3, 3), (64, 128, 3, 3), (128, 256, 3, 3), (256, 512, 3, 3)]
    out = Projector(stub(), expand=False)(mel())
    assert [o.shape[1] for o in out] == [64] * 4


def test_csm_kernel_switch_gives_the_authors_1x1():
    p = Projector(stub(), csm_kernel=1, upsample=False)
    assert getattr(p, "csm0_weight").shape[-2:] == (1, 1)
    assert [tuple(o.shape[2:]) for o in p(mel())] == [(100, 32), (50, 16), (24, 8), (12, 4)]


def test_default_upsample_doubles_every_map_like_design_and_the_authors_code():
    p = Projector(stub())
    assert [tuple(o.shape[2:]) for o in p(mel())] == [(200, 64), (100, 32), (48, 16), (24, 8)] == p.scale_sizes()


def test_chunks_are_concatenated_along_time_first_second_first():
    net = stub()
    p = Projector(net)
    x = mel()
    out = p(x)
    front = p.project(net.stages(x[:, :, :100]))     # the first second alone
    back = p.project(net.stages(x[:, :, 100:]))      # the second second alone
    for o, a, b in zip(out, front, back):
        t = a.shape[2]
        assert torch.allclose(o[:, :, :t], a, atol=1e-5) and torch.allclose(o[:, :, t:], b, atol=1e-5)


def test_changing_the_second_second_leaves_the_first_half_of_every_map_alone():
    p = Projector(stub())
    x = mel()
    y = x.clone()
    y[:, :, 100:] += 1.0
    for a, b in zip(p(x), p(y)):
        t = a.shape[2] // 2
        assert torch.allclose(a[:, :, :t], b[:, :, :t], atol=1e-6)
        assert not torch.allclose(a[:, :, t:], b[:, :, t:])


def test_with_the_authors_batch_statistics_each_second_is_normalised_in_a_pass_of_its_own():
    """--batch-stats yes: as the authors' discriminator, front and back go through the network separately, so
    the batch statistics of one second never reach the other's features."""
    p = Projector(use_batch_stats(stub()))
    x = mel(4)
    y = x.clone()
    y[:, :, 100:] = 3.0 * y[:, :, 100:] + 1.0                  # other statistics in the second second only
    for a, b in zip(p(x), p(y)):
        t = a.shape[2] // 2
        assert torch.allclose(a[:, :, :t], b[:, :, :t], atol=1e-5)


def test_csm_mixes_scales_deepest_stage_reaches_the_shallowest_output():
    p = Projector(stub())
    maps = [torch.randn(2, c, t, f) for c, (t, f) in zip((8, 16, 32, 32), [(50, 32), (25, 16), (12, 8), (6, 4)])]
    base = p.project(maps)
    maps[3] = maps[3] + 1.0
    moved = p.project(maps)
    assert not torch.allclose(base[0], moved[0])    # U-Net: stage 4 flows all the way up
    maps2 = [m.clone() for m in maps]
    maps2[0] = maps2[0] + 1.0
    assert torch.equal(p.project(maps2)[3], moved[3])   # ... but never down


def test_frozen_net_batchnorm_stats_do_not_move_in_train_mode():
    net = stub()
    p = Projector(net).train()
    assert p.training and not net.training
    before = net.bn.running_mean.clone(), net.bn.num_batches_tracked.clone()
    p(mel() * 3 + 5)
    assert torch.equal(net.bn.running_mean, before[0]) and torch.equal(net.bn.num_batches_tracked, before[1])


def test_projection_is_buffers_never_parameters():
    p = Projector(stub())
    assert [n for n, q in p.named_parameters() if q.requires_grad] == []
    names = dict(p.named_buffers())
    for i in range(4):
        for kind in ("ccm", "csm"):
            assert f"{kind}{i}_weight" in names and f"{kind}{i}_bias" in names
            assert f"{kind}{i}_weight" in p.state_dict()


def test_same_seed_gives_the_same_projection_another_seed_differs():
    a, b, c = Projector(stub(), seed=0), Projector(stub(), seed=0), Projector(stub(), seed=1)
    for name, t in a.named_buffers():
        if name.startswith(("ccm", "csm")):
            assert torch.equal(t, dict(b.named_buffers())[name])
    assert not torch.equal(a.csm2_weight, c.csm2_weight)
    assert not torch.equal(a.ccm0_weight, c.ccm0_weight)


def test_state_dict_restores_the_projection_exactly():
    net = stub()
    a = Projector(net, seed=0)
    b = Projector(net, seed=7)                      # a different draw ...
    b.load_state_dict(a.state_dict())              # ... replaced by the checkpointed one
    x = mel()
    assert all(torch.equal(u, v) for u, v in zip(a(x), b(x)))


def test_gradients_reach_the_mel_through_the_frozen_net():
    net = stub()
    p = Projector(net)
    x = mel().requires_grad_(True)
    sum(o.square().mean() for o in p(x)).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(q.grad is None for q in net.parameters())


def test_bad_input_gets_a_clear_error():
    p = Projector(stub())
    with pytest.raises(ValueError, match="Projector: expected a mel"):
        p(torch.randn(2, 200, 64))
    with pytest.raises(ValueError, match="csm_kernel"):
        Projector(stub(), csm_kernel=2)
    with pytest.raises(TypeError, match="FeatureNet"):
        Projector(nn.Conv2d(1, 1, 1))
