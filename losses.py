"""GAN losses (paper Section 2 eq. 1 and Section 4; docs/design.md §4 and §5).

* Projected GAN (Sauer et al. 2021; the paper's model): the hinge form of eq. 1, summed over the heads; no
  gradient penalty, as the authors. Layout: lists of logits, one (B, N_l) tensor per head.
* StyleGAN2 baseline (Table 1 rows B and C): non-saturating logistic loss with lazy R1 on real data.
  Layout: one (B, 1) logit tensor.
* Not in the paper: `ceiling_penalty` on fake mels louder than any signal (train.py --ceiling-weight).

Lazy regularisation (StyleGAN2 §3.1): a regulariser run every `interval` steps is scaled by `interval`, and
Adam's lr and betas by `lazy_ratio(interval)` (R1 every 16 steps -> 16/17; path length every 4 -> 4/5).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from mel import MEL_CEILING

R1_GAMMA = 10.0     # R1 weight gamma of Hung et al.'s / StyleGAN2's config for this resolution (docs/design.md §4)
R1_INTERVAL = 16    # lazy R1: D is regularised once every 16 minibatches (StyleGAN2's d_reg_every)
PL_INTERVAL = 4     # lazy path-length regularisation of G every 4 minibatches (StyleGAN2's g_reg_every)
PL_WEIGHT = 2.0     # path-length weight (docs/design.md §4). The regulariser itself is NOT implemented here (optional)


# ------------------------------------------------------------------------------------------------
# Projected GAN: hinge loss summed over the discriminator heads (eq. 1, hinge form)
# ------------------------------------------------------------------------------------------------

def d_hinge(real_logits: list[torch.Tensor], fake_logits: list[torch.Tensor]) -> torch.Tensor:
    """Discriminator side: push real logits above +1 and fake logits below -1, summed over the heads."""
    if len(real_logits) != len(fake_logits) or not real_logits:
        raise ValueError(f"d_hinge: need the same non-zero number of real and fake heads, "
                         f"got {len(real_logits)} and {len(fake_logits)}")
    # float(): under bf16 autocast the heads' logits are bf16; average and sum them in float32.
    return sum(F.relu(1 - r.float()).mean() + F.relu(1 + f.float()).mean() for r, f in zip(real_logits, fake_logits))


def g_hinge(fake_logits: list[torch.Tensor]) -> torch.Tensor:
    """Generator side: raise every head's fake logits (no margin: G is never 'done')."""
    if not fake_logits:
        raise ValueError("g_hinge: got no discriminator heads")
    return sum(-f.float().mean() for f in fake_logits)


def ceiling_penalty(fake: torch.Tensor, mean: torch.Tensor, std: torch.Tensor,
                    ceiling: float = MEL_CEILING) -> torch.Tensor:
    """Not in the paper (train.py --ceiling-weight): how far a standardised fake batch (B, 1, T, F=64) rises
    above `ceiling` in log10 mel, in decades, averaged over every bin; 0 for any mel a signal in [-1, 1] can
    have. A frozen feature network can be blind to a patch thousands of decades loud (a "blob"), so D never
    pushes G away from it; this hinge does. mean, std (64,): the data set's per-band statistics."""
    mel = fake.float() * std + mean                     # (B, 1, T, F=64) log10 mel; (64,) broadcasts over F
    return F.relu(mel - ceiling).mean()


# ------------------------------------------------------------------------------------------------
# StyleGAN2 baseline: non-saturating logistic loss + lazy R1
# ------------------------------------------------------------------------------------------------

def d_logistic(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """-log sigmoid(D(x)) - log(1 - sigmoid(D(G(z)))), written with softplus for numerical stability."""
    return F.softplus(-real_logits.float()).mean() + F.softplus(fake_logits.float()).mean()


def g_nonsaturating(fake_logits: torch.Tensor) -> torch.Tensor:
    """-log sigmoid(D(G(z))): the non-saturating G loss (strong gradients while D still wins easily)."""
    return F.softplus(-fake_logits.float()).mean()


def r1_penalty(real_logits: torch.Tensor, real_input: torch.Tensor) -> torch.Tensor:
    """R1 (Mescheder et al. 2018): E_x ||grad_x D(x)||^2 on REAL data, per sample summed over all pixels,
    then averaged over the batch. `real_input` must have had `requires_grad_(True)` before the D pass.

    create_graph=True so the penalty itself can be back-propagated into D's weights. The summed logits
    are differentiated (each sample's logit depends only on its own input -- minibatch-stddev aside, as
    in StyleGAN2). Computed in float32: the squared gradients are tiny and bf16 would lose them.
    The training loss term is `r1_loss_weight(...) * r1`, i.e. gamma / 2 * r1 * interval.
    """
    if not real_input.requires_grad:
        raise ValueError("r1_penalty: real_input must require grad (call real.requires_grad_(True) before D)")
    (grad,) = torch.autograd.grad(real_logits.float().sum(), real_input, create_graph=True)
    return grad.float().square().flatten(1).sum(1).mean()


def r1_loss_weight(gamma: float = R1_GAMMA, interval: int = R1_INTERVAL) -> float:
    """Factor in front of `r1_penalty` in the lazy D step: gamma / 2 (StyleGAN2), times the interval
    (lazy regularisation: applied once every `interval` steps with `interval` times the weight)."""
    return gamma / 2 * interval


def lazy_ratio(interval: int) -> float:
    """Adam lr and beta adjustment for a regulariser run every `interval` steps: interval / (interval + 1).

    lr' = lr * ratio, betas' = (beta1 ** ratio, beta2 ** ratio) -- G 4/5 (path length every 4),
    D 16/17 (R1 every 16) (docs/design.md §5). `interval <= 0` means no lazy regularisation: ratio 1.
    """
    if interval <= 0:
        return 1.0
    return interval / (interval + 1)
