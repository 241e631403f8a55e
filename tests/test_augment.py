"""Spec of augment.py: DiffAugment for mels (loop-safe circular time shift, cutout), differentiable."""
import pytest
import torch

import augment as A


def mels(b=6, seed=0):
    return torch.randn(b, 1, 200, 64, generator=torch.Generator().manual_seed(seed))   # (B, 1, T=200, F=64)


def test_policy_names_parse_and_an_unknown_one_is_refused_with_the_choices():
    assert A.parse_policy("none") == () and A.parse_policy(None) == () and A.parse_policy("") == ()
    assert A.parse_policy("shift, cutout") == ("shift", "cutout")
    with pytest.raises(ValueError, match="unknown flip; choose from shift, cutout or none"):
        A.parse_policy("shift,flip")


def test_shift_rotates_each_loop_in_time_by_at_most_an_eighth_of_the_bar():
    x = mels()
    y = A.circular_shift(x, torch.Generator().manual_seed(1))
    assert y.shape == x.shape
    shifts = []
    for i in range(len(x)):
        k = [k for k in range(-25, 26) if torch.equal(torch.roll(x[i], k, dims=1), y[i])]
        assert len(k) == 1, f"sample {i} is not a circular time shift of at most 25 frames"
        shifts.append(k[0])
    assert len(set(shifts)) > 1                          # each sample draws its own shift


def test_cutout_zeroes_one_rectangle_of_at_most_half_by_half():
    x = mels() + 10.0                                    # no zeros of its own
    y = A.cutout(x, torch.Generator().manual_seed(2))
    for i in range(len(x)):
        hole = y[i, 0] == 0                              # (T, F)
        rows, cols = hole.any(1).nonzero().flatten(), hole.any(0).nonzero().flatten()
        assert 0 < len(rows) <= 100 and 0 < len(cols) <= 32
        assert hole[rows.min():rows.max() + 1, cols.min():cols.max() + 1].all()    # a filled rectangle
        assert hole.sum() == len(rows) * len(cols)
        assert torch.equal(y[i, 0][~hole], x[i, 0][~hole])                         # the rest untouched


def test_augmentation_is_differentiable_and_reproducible_with_a_seed():
    x = mels().requires_grad_(True)
    y = A.augment(x, ("shift", "cutout"), torch.Generator().manual_seed(3))
    y.sum().backward()
    assert x.grad is not None and 0 < (x.grad != 0).float().mean() < 1             # cut cells get no gradient
    again = A.augment(x.detach(), ("shift", "cutout"), torch.Generator().manual_seed(3))
    assert torch.equal(y.detach(), again)
    assert torch.equal(A.augment(x.detach(), ()), x.detach())
