"""Genre conditioning: the labels a conditional run trains on, and the latent controls of sample.py.

The paper's future work (Section 7): condition the generator on the loop's genre. The networks are in
generator.py (StyleGAN2-ADA's conditional mapping) and discriminator.py (Projected GAN's conditional heads,
Miyato & Koyama 2018's projection); this file holds what train.py and sample.py need around them:

    labels   genre indices (B,) long into the checkpoint's `genres` (sorted names, dataset.LoopMelDataset)
    z        one loop's latent (z_dim,) = the first draw of torch.Generator().manual_seed(seed), so that
             "the loop of seed S" is loop 0 of `sample.py --seed S`
    ws       (K, num_ws, w_dim) style codes: a morph walks linearly from A's w to B's w (StyleGAN's
             interpolation in W, smoother than in Z)
"""
from __future__ import annotations

import torch

from dataset import UNLABELLED, require_genre_labels

VARIATION_STREAM = 7919   # seed offset of a variation's perturbation stream: never the stream of a loop's own z
DEFAULT_SPREAD = 0.3      # variations: 0 = copies, ~0.3 = close relatives, >= 1 = loose relatives, inf = strangers
ALL = "all"               # --genre all: every genre of the checkpoint


# ---------------------------------------------------------------------------------------------
# Training: labels
# ---------------------------------------------------------------------------------------------
def genres_for_training(data, conditional: bool) -> list[str] | None:
    """The genre names a conditional run is trained on (None: unconditional). Refuses, with one line naming
    the remedy, a data set where some loop has no genre, or where all loops share one."""
    if not conditional:
        return None
    require_genre_labels(data.data_dir, "--conditional yes")
    genres = [g for g in data.genres if g != UNLABELLED]
    if len(genres) < 2:
        raise ValueError(f"--conditional yes needs at least two genres, but every loop in {data.data_dir} is "
                         f"'{genres[0] if genres else ''}': add loops of other genres, or train with --conditional no")
    return genres


def draw_labels(labels: torch.Tensor, n: int, gen: torch.Generator) -> torch.Tensor:
    """n genre indices (n,) for fake loops, drawn like the data set's (StyleGAN2-ADA draws the fakes' labels
    from the real label distribution), so that D never learns the genres' frequencies from the fakes."""
    return labels[torch.randint(len(labels), (n,), generator=gen)]


def grid_labels(n: int, n_genres: int) -> torch.Tensor:
    """(n,) labels 0, 1, ..., K-1, 0, 1, ...: a progress grid shows every genre."""
    return torch.arange(n) % n_genres


def check_checkpoint_genres(ckpt: dict, genres: list[str] | None, path) -> None:
    """A resumed run must have the same genre names, in the same order, as its checkpoint."""
    if ckpt.get("genres") != genres:
        raise ValueError(f"{path} was trained on the genres {ckpt.get('genres')}, this data set has {genres}: "
                         "use another --out, or the data set it was trained on")


# ---------------------------------------------------------------------------------------------
# Sampling: genres by name, latents of a seed, variations, morphs
# ---------------------------------------------------------------------------------------------
def resolve_genres(asked: list[str] | None, known: list[str] | None) -> list[int] | None:
    """Genre names (or ['all']) -> their indices in `known`; None when none were asked. One-line errors: an
    unknown name lists the known ones; a name given to an unconditional checkpoint says so."""
    if not asked:
        return None
    if not known:
        raise ValueError("--genre: this checkpoint is unconditional (trained without --conditional yes); "
                         "it cannot be asked for a genre")
    if ALL in asked:
        return list(range(len(known)))
    unknown = [g for g in asked if g not in known]
    if unknown:
        raise ValueError(f"--genre: unknown genre {', '.join(map(repr, unknown))}; this checkpoint knows: "
                         f"{', '.join(known)} (or '{ALL}')")
    return [known.index(g) for g in asked]


def z_of_seed(seed: int, z_dim: int) -> torch.Tensor:
    """The latent (z_dim,) of the loop of `seed` (the first loop of `sample.py --seed SEED`)."""
    return torch.randn(1, z_dim, generator=torch.Generator().manual_seed(seed))[0]


def variation_latents(seed: int, n: int, spread: float, z_dim: int) -> torch.Tensor:
    """n latents (n, z_dim) around the loop of `seed`: (z + spread * e_i) / sqrt(1 + spread^2), e_i ~ N(0, I).
    The division keeps each a standard normal draw (what the mapping was trained on), so spread 0 gives the
    loop itself and a large spread independent loops; in between, near-copies turn into loose relatives."""
    if spread < 0:
        raise ValueError(f"--spread must be >= 0, got {spread}")
    z = z_of_seed(seed, z_dim)
    e = torch.randn(n, z_dim, generator=torch.Generator().manual_seed(seed + VARIATION_STREAM))   # (n, z_dim)
    return (z[None] + spread * e) / (1 + spread ** 2) ** 0.5                                      # (n, z_dim)


def labels_or_none(G, genre: int | None, n: int) -> torch.Tensor | None:
    """(n,) copies of `genre` for a conditional G (genre 0 when none is given), None for an unconditional one."""
    if not G.c_dim:
        return None
    return torch.full((n,), 0 if genre is None else genre, dtype=torch.long)


@torch.no_grad()
def morph_ws(G, z_a: torch.Tensor, z_b: torch.Tensor, steps: int, c_a: torch.Tensor | None = None,
             c_b: torch.Tensor | None = None, truncation: float = 1.0) -> torch.Tensor:
    """`steps` style codes (K, num_ws, w_dim) walking linearly from A's w to B's; the first is A's exactly and
    the last B's (torch.lerp is exact at weights 0 and 1). z (z_dim,), c () long or None."""
    if steps < 2:
        raise ValueError(f"--steps must be >= 2 (A and B at least), got {steps}")
    device = next(G.parameters()).device
    pair = torch.stack([z_a, z_b]).to(device)                                                    # (2, z_dim)
    c = None if c_a is None else torch.stack([c_a, c_b]).to(device)                              # (2,)
    w = G.mapping(pair, c, truncation_psi=truncation, update_w_avg=False)                        # (2, num_ws, w_dim)
    t = torch.linspace(0, 1, steps, device=device)                                               # (K,)
    return torch.lerp(w[0][None], w[1][None], t[:, None, None])                                  # (K, num_ws, w_dim)
