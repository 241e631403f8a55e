"""Differentiable augmentation of the discriminator's input (DiffAugment, Zhao et al. 2020), the piece of
Projected GAN's recipe (Sauer et al. 2021, Section 4: translation and cutout in every experiment) that the
loop paper's authors dropped. `--augment shift,cutout` in train.py; the default is `none`, as the paper.

The same policy is applied to real and fake mels before every discriminator (the baseline's too), each
sample drawing its own random parameters; every op is differentiable, so G's gradient passes through.

    shift   circular shift in time by up to +-1/8 of the bar (DiffAugment's translation ratio): a
            one-bar loop rotated is still a seamless loop, so nothing is padded in
    cutout  one rectangle of half the time and half the frequency extent set to 0, the band mean of the
            standardised mel (DiffAugment's cutout ratio 0.5)

Layout: mel (B, 1, T=200, F=64) in, the same shape out.
"""
from __future__ import annotations

import torch

SHIFT_RATIO = 1 / 8     # DiffAugment's translation: up to 1/8 of the side (here: of the bar, 25 frames)
CUTOUT_RATIO = 0.5      # DiffAugment's cutout: a hole of half of each side
POLICIES = ("shift", "cutout")


def parse_policy(spec: str | None) -> tuple[str, ...]:
    """'shift,cutout' -> ('shift', 'cutout'); 'none' or '' -> (). Unknown names: one clear ValueError."""
    names = tuple(s.strip() for s in (spec or "none").split(",") if s.strip() and s.strip() != "none")
    unknown = [n for n in names if n not in POLICIES]
    if unknown:
        raise ValueError(f"--augment: unknown {', '.join(unknown)}; choose from {', '.join(POLICIES)} or none")
    return names


def circular_shift(mel: torch.Tensor, gen: torch.Generator | None = None, ratio: float = SHIFT_RATIO) -> torch.Tensor:
    """Roll each sample in time by its own random number of frames in [-ratio T, ratio T]."""
    b, _, t, f = mel.shape
    reach = int(ratio * t)
    shift = torch.randint(-reach, reach + 1, (b,), generator=gen, device="cpu").to(mel.device)     # (B,)
    idx = (torch.arange(t, device=mel.device)[None, :] - shift[:, None]) % t                       # (B, T)
    return mel.gather(2, idx[:, None, :, None].expand(b, mel.shape[1], t, f))                      # (B, 1, T, F)


def cutout(mel: torch.Tensor, gen: torch.Generator | None = None, ratio: float = CUTOUT_RATIO) -> torch.Tensor:
    """Zero one (ratio T) x (ratio F) rectangle per sample, at a random place (it may overhang the edges,
    as DiffAugment's: the centre is uniform over the whole mel)."""
    b, _, t, f = mel.shape
    ht, hf = int(ratio * t), int(ratio * f)
    ct = torch.randint(0, t + (1 - ht % 2), (b,), generator=gen, device="cpu").to(mel.device)     # centres
    cf = torch.randint(0, f + (1 - hf % 2), (b,), generator=gen, device="cpu").to(mel.device)
    rt = torch.arange(t, device=mel.device)[None, :]                                              # (1, T)
    rf = torch.arange(f, device=mel.device)[None, :]                                              # (1, F)
    in_t = (rt >= (ct - ht // 2)[:, None]) & (rt < (ct - ht // 2 + ht)[:, None])                   # (B, T)
    in_f = (rf >= (cf - hf // 2)[:, None]) & (rf < (cf - hf // 2 + hf)[:, None])                   # (B, F)
    hole = in_t[:, :, None] & in_f[:, None, :]                                                     # (B, T, F)
    return mel * (~hole)[:, None].to(mel.dtype)                                                    # (B, 1, T, F)


OPS = {"shift": circular_shift, "cutout": cutout}


def augment(mel: torch.Tensor, policy: tuple[str, ...], gen: torch.Generator | None = None) -> torch.Tensor:
    """Apply the ops of `policy` in order (the identity for an empty policy)."""
    for name in policy:
        mel = OPS[name](mel, gen)
    return mel
