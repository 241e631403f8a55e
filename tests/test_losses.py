"""Spec tests for losses.py on hand-made logits (paper eq. 1 hinge form; docs/design.md §4, §5)."""
import math

import pytest
import torch

import losses
from mel import MEL_CEILING

T = torch.tensor


def test_d_hinge_on_hand_made_logits():
    # mean(relu(1 - [2, .5])) + mean(relu(1 + [-3, 0])) = mean(0, .5) + mean(0, 1) = 0.25 + 0.5
    assert losses.d_hinge([T([2.0, 0.5])], [T([-3.0, 0.0])]).item() == pytest.approx(0.75)


def test_d_hinge_sums_over_heads_and_means_within_a_head():
    real = [T([[2.0, 0.5]]), T([[0.0], [0.0]])]      # heads of different shapes (B, N_l)
    fake = [T([[-3.0, 0.0]]), T([[1.0], [-1.0]])]
    # head 2: mean(relu(1 - 0)) + mean(relu(2), relu(0)) = 1 + 1
    assert losses.d_hinge(real, fake).item() == pytest.approx(0.75 + 2.0)


def test_d_hinge_is_zero_once_every_margin_is_met():
    assert losses.d_hinge([T([1.0, 5.0])], [T([-1.0, -7.0])]).item() == 0.0


def test_g_hinge_is_minus_the_mean_fake_logit_summed_over_heads():
    assert losses.g_hinge([T([-3.0, 0.0]), T([[1.0, 3.0]])]).item() == pytest.approx(1.5 - 2.0)


def test_hinge_rejects_mismatched_or_empty_heads():
    with pytest.raises(ValueError, match="d_hinge"):
        losses.d_hinge([T([1.0])], [])
    with pytest.raises(ValueError, match="g_hinge"):
        losses.g_hinge([])


def test_logistic_losses_on_hand_made_logits():
    # softplus(0) = log 2; softplus(-2) = log(1 + e^-2)
    assert losses.d_logistic(T([0.0]), T([0.0])).item() == pytest.approx(2 * math.log(2))
    assert losses.d_logistic(T([2.0, 0.0]), T([-2.0])).item() == pytest.approx(
        (math.log1p(math.exp(-2)) + math.log(2)) / 2 + math.log1p(math.exp(-2)))
    assert losses.g_nonsaturating(T([0.0, 2.0])).item() == pytest.approx(
        (math.log(2) + math.log1p(math.exp(-2))) / 2)


def test_logistic_losses_stay_finite_for_huge_logits():
    assert torch.isfinite(losses.d_logistic(T([-1e4]), T([1e4])))
    assert torch.isfinite(losses.g_nonsaturating(T([-1e4])))


def test_r1_is_the_batch_mean_of_the_squared_input_gradient_norm():
    a = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)       # D(x) = <a, x>: grad_x = a for every sample
    x = torch.randn(4, 3, requires_grad=True)
    r1 = losses.r1_penalty((x * a).sum(1, keepdim=True), x)     # logits (4, 1)
    assert r1.item() == pytest.approx(1 + 4 + 9)
    r1.backward()                                              # create_graph: differentiable w.r.t. D's weights
    assert torch.allclose(a.grad, 2 * a.detach())


def test_r1_needs_an_input_that_requires_grad():
    with pytest.raises(ValueError, match="requires_grad_"):
        losses.r1_penalty(T([[1.0]]), T([[1.0]]))


def test_lazy_regularisation_constants():
    assert losses.R1_GAMMA == 10 and losses.R1_INTERVAL == 16
    assert losses.lazy_ratio(16) == pytest.approx(16 / 17)
    assert losses.lazy_ratio(4) == pytest.approx(4 / 5)
    assert losses.lazy_ratio(0) == 1.0
    assert losses.r1_loss_weight() == pytest.approx(10 / 2 * 16)


def test_ceiling_penalty_is_the_mean_overshoot_in_decades_and_zero_below():
    mean, std = torch.full((64,), -2.0), torch.full((64,), 0.5)
    fake = torch.zeros(2, 1, 200, 64)                       # (B, 1, T, F) z-scores: log10 mel -2 everywhere
    assert losses.ceiling_penalty(fake, mean, std).item() == 0.0
    fake[0, 0, :10, :4] = (MEL_CEILING + 3.0 + 2.0) / 0.5   # 40 bins of loop 0 at 3 decades above the ceiling
    expected = 40 * 3.0 / fake.numel()
    assert losses.ceiling_penalty(fake, mean, std).item() == pytest.approx(expected, rel=1e-5)


def test_ceiling_penalty_pushes_only_the_bins_above_the_ceiling_down():
    mean, std = torch.zeros(64), torch.ones(64)
    fake = torch.zeros(1, 1, 200, 64, requires_grad=True)
    with torch.no_grad():
        fake[0, 0, 0, 0] = MEL_CEILING + 1.0
    losses.ceiling_penalty(fake, mean, std).backward()
    assert fake.grad[0, 0, 0, 0] > 0 and fake.grad.count_nonzero() == 1     # descent lowers that bin alone
