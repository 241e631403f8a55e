"""Objective evaluation: IS, FAD, Density & Coverage, plus KID and a loopability score
(paper Section 5, Table 1 and Figure 4; docs/design.md §7).

What goes in, for one set of loops (real or generated):

    audio  (N, S=32 000)     16 kHz waveforms, one bar each (generated ones: vocoded seamlessly by
                             sample.vocode_loops)
    mels   (N, F=64, T=200)  log10 mels (pjloop's front end, mel.py). Real: mel/<id>.npy;
                             generated: the generator's output, de-standardised (sample.generate_mels)

and what each metric reads:

    IS          the loop-genre SCNN's softmax on the mels, 10 splits. The classifier is the one train.py
                uses (train_scnn.ensure_loop_classifier: trained first, announced, when absent); its
                held-out test accuracy is printed beside every IS (IS_clf_acc): an IS is only as
                meaningful as the classifier behind it
    FAD_vgg16rand, KID_vgg16rand   THE HEADLINE: Frechet distance / KID on the random, frozen VGG16's
                64-d fc2 output (the very embedding D&C uses, below), both sets divided by the real set's
                RMS spread. No discriminator row uses this network. Why it leads: a projected GAN's
                discriminator sees the generator through a pre-trained feature network, and a Frechet
                distance computed in that same feature space can be lowered by matching its statistics
                without making the loops better (Kynkaanniemi et al., ICLR 2023, "The Role of ImageNet
                Classes in Frechet Inception Distance"). A domain embedding trained on music (musicnn on
                the Million Song Dataset) is meant to replace it as the headline later
    FAD         Frechet distance of Gaussians on 128-d VGGish embeddings of the audio (two 0.96 s
                windows per loop; only when VGGish's weights are present -- they cannot be downloaded
                offline). Secondary: the paper's FAD, but the vgg rows' discriminator sees VGGish
    FAD_aisfx   the same distance on the offline general network's 512-d embeddings (sfxnet.py, two
                1-s chunks per loop): an OFFLINE STAND-IN for FAD, not comparable with the paper's
                numbers; secondary, as the aisfx rows' discriminator sees this network
    KID, KID_aisfx   unbiased MMD^2 with a cubic polynomial kernel on the same embeddings (not in the
                paper; unbiased in N, so unlike FAD it can be compared across sample sizes)
    D, C        Density & Coverage (Naeem et al. 2020), k = 5, on a randomly initialised, frozen VGG16
                whose fc2 has 64 outputs, fed the mels standardised with the data set's stats
    loop        loopability (defined at `loopability`): how abrupt the seam is when the loop repeats,
                relative to the loop's other beats. Reported for generated AND real loops.

Generated sets for metrics use fresh, seeded per-loop noise (noise_mode "random", as StyleGAN2's metric
code and the authors' inference); pictures (sample.py) keep the generator's constant noise.

IS, FAD/KID_vgg16rand and D&C read the generator's mels directly, so the vocoder does not affect
them; FAD, FAD_aisfx, KID, KID_aisfx and loopability read the vocoded audio, so they include the vocoder (the Griffin-Lim fallback, when no MelGAN
checkpoint exists, shows up there -- the CSV row names the vocoder). Real loops are the data set's wavs.

Sample size matters: FAD and D&C are biased in N, so compare rows only at the same N (the paper: 10 000;
default here 10 000 on a GPU, 1 000 on a CPU). The real reference set is N loops of the data set (a seeded
choice); the real anchor needs 2N (it uses what there is and prints it). --data defaults to the data set
recorded in the checkpoint's training config.

    python evaluate.py runs/x/latest.pt --data data/drum [-n N] [--csv results.csv] [--seed 0]
    python evaluate.py --real-anchor --data data/drum [-n N] [--csv results.csv]
    python evaluate.py --curve runs/x --data data/drum [-n N]        # Figure 4 -> runs/x/curve.png
    python evaluate.py runs/x/latest.pt --mel-only                   # IS, FAD/KID_vgg16rand, D&C only

The real-data anchor (Table 1 row A) splits a real pool of up to 2N loops into two halves and compares
them with the same code. The paper's row A (D = C = 1.00, FAD 0.01) looks like real data against itself:
with identical sets Density and Coverage are exactly 1 by construction (see `density_coverage`) and the
Frechet distance is 0, so half against half is the more informative anchor.

From Python (embed the real set once, cached on disk; then one call per checkpoint):

    real = evaluate.prepare_real(data_dir, n, seed=0, device="cpu")        # -> RealSet
    row = evaluate.evaluate_checkpoint("runs/x/ckpt_0005000.pt", real, n, seed=0)   # -> dict, ROW_FIELDS
    row = evaluate.evaluate_checkpoint(..., with_audio=False)   # mel metrics only: no vocoding, faster
"""
from __future__ import annotations

import argparse
import hashlib
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib
matplotlib.use("Agg")            # files only, no display; chosen before pyplot is imported
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np
import soundfile as sf
import torch
from torch import nn

import melgan
import sample
import scnn
import sfxnet
import train_scnn
import vggish
from audio_io import peak_normalise
from checkpoint import load_checkpoint
from dataset import atomic_write, is_complete, load_stats, read_csv, write_csv
from mel import BEATS_PER_BAR, HOP, N_FFT, N_FRAMES, PAD, log_mel, to_gan

# ---------------------------------------------------------------------------------------------
# The paper's numbers, named once.
# ---------------------------------------------------------------------------------------------
IS_SPLITS = 10            # Salimans et al.'s convention, as in the paper's IS mean +- std
DC_K = 5                  # Naeem et al.'s recommended k for Density & Coverage
DC_EMBED_DIM = 64         # "fc2 space whose dimension is deliberately set to a small value 64" (Section 5)
VGG16_FC_DIM = 4096       # VGG16's fc1 width; configurable so tests and CPU runs stay light
KID_SUBSETS = 100         # Binkowski et al.'s reference implementation uses 100 subsets of 1000
KID_SUBSET_SIZE = 1000
N_EVAL_GPU = 10_000       # the paper: "Each model generates 10,000 random loops to compute the scores"
N_EVAL_CPU = 1_000        # a CPU cannot vocode and embed 10 000 loops in reasonable time
CSV_DEFAULT = "results.csv"
METRIC_NOISE = "random"   # generated sets for metrics: per-loop noise (StyleGAN2's metrics, the authors' inference)


# =============================================================================================
# Pure metric functions (numpy / torch, float64 where sums of many terms are taken)
# =============================================================================================
def inception_score(probs: np.ndarray, splits: int = IS_SPLITS) -> tuple[float, float]:
    """probs (N, K) class probabilities -> (mean, std) over `splits` of exp(E_x KL(p(y|x) || p(y))).

    p(y) is the marginal within each split (Salimans et al. 2016). Uniform predictions give 1;
    confident predictions spread evenly over K classes give K (the maximum).
    """
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or len(p) < splits:
        raise ValueError(f"inception_score needs probs (N >= splits={splits}, K), got shape {p.shape}")
    if np.any(p < 0) or not np.allclose(p.sum(1), 1.0, atol=1e-3):
        raise ValueError("inception_score needs rows of probabilities (non-negative, summing to 1)")
    p = np.clip(p, 1e-12, 1.0)   # 0 log 0 = 0: a clipped zero contributes ~1e-12 * log(...) ~ 0
    scores = []
    for part in np.array_split(p, splits):                      # `splits` x (~N/splits, K)
        marginal = part.mean(axis=0, keepdims=True)             # (1, K) p(y) of this split
        kl = (part * (np.log(part) - np.log(marginal))).sum(1)  # (n,) KL(p(y|x) || p(y))
        scores.append(math.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))


def gaussian_stats(emb: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings (N, D) -> mean (D,), covariance (D, D), float64 (unbiased, N - 1, as Kilgour et al.)."""
    e = np.asarray(emb.detach().cpu() if isinstance(emb, torch.Tensor) else emb, dtype=np.float64)
    if e.ndim != 2 or len(e) < 2:
        raise ValueError(f"gaussian_stats needs embeddings (N >= 2, D), got shape {e.shape}")
    return e.mean(axis=0), np.cov(e, rowvar=False)


def _sqrt_psd(s: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric positive semi-definite matrix (eigenvalues clipped at 0)."""
    w, v = np.linalg.eigh((s + s.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """d^2 = |mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)) between two Gaussians (Dowson & Landau).

    Stable form: S1 S2 is not symmetric, and scipy's general sqrtm on it returns small imaginary
    parts and errors for near-singular covariances (which is where the paper's real-vs-real 0.01 comes
    from). (S1 S2)^(1/2) has the same eigenvalues as the symmetric PSD matrix A = S1^(1/2) S2 S1^(1/2)
    (similar matrices: S1 S2 = S1^(1/2) A S1^(-1/2)), so Tr (S1 S2)^(1/2) = sum sqrt(eig(A)), with
    eigenvalues from a symmetric solver clipped at 0.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.size, mu1.size):
        raise ValueError(f"frechet_distance: shapes do not match: mu {mu1.shape}, {mu2.shape}; "
                         f"sigma {s1.shape}, {s2.shape}")
    r1 = _sqrt_psd(s1)
    a = r1 @ s2 @ r1                                              # (D, D) symmetric PSD
    tr_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((a + a.T) / 2), 0, None)).sum()
    d2 = float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt)
    return max(d2, 0.0)   # a true squared distance; rounding can leave -1e-12 for identical sets


def fad_from_embeddings(a, b) -> float:
    """Frechet distance between Gaussians fitted to two sets of embeddings (N_a, D), (N_b, D)."""
    return frechet_distance(*gaussian_stats(a), *gaussian_stats(b))


def _as_torch64(x, device=None) -> torch.Tensor:
    t = x.detach() if isinstance(x, torch.Tensor) else torch.as_tensor(np.ascontiguousarray(x))
    return t.to(device=device, dtype=torch.float64)


def density_coverage(real, fake, k: int = DC_K, chunk: int = 1024,
                     device: str | torch.device | None = None) -> tuple[float, float]:
    """Density and Coverage (Naeem et al. 2020) of fake (M, D) against real (N, D).

    r_i = distance from real i to its k-th nearest neighbour among the OTHER reals;
    Density  = 1/(k M) sum_j #{i : |f_j - x_i| < r_i}   (how many real balls hold each fake; can be > 1)
    Coverage = 1/N #{i : min_j |f_j - x_i| < r_i}        (share of real balls holding at least one fake)
    Strict "<", as the reference `prdc` package. With it, fake == real gives D = C = 1 exactly: every
    ball strictly contains its own centre plus k - 1 other reals (the k-th lies on the boundary), so the
    counts sum to k N; and every centre (distance 0) covers its ball. With "<=" D would be (k + 1) / k.
    Distances are exact Euclidean in float64 (no |x|^2 + |y|^2 - 2xy shortcut), in chunks of reals.
    """
    x, f = _as_torch64(real, device), _as_torch64(fake, device)
    if x.ndim != 2 or f.ndim != 2 or x.shape[1] != f.shape[1]:
        raise ValueError(f"density_coverage needs (N, D) and (M, D) features, got {tuple(x.shape)}, {tuple(f.shape)}")
    if not 1 <= k < len(x):
        raise ValueError(f"density_coverage needs 1 <= k < N real points, got k={k}, N={len(x)}")
    mode = "donot_use_mm_for_euclid_dist"
    radii = torch.empty(len(x), dtype=torch.float64, device=x.device)
    for s in range(0, len(x), chunk):
        d = torch.cdist(x[s:s + chunk], x, compute_mode=mode)                     # (c, N)
        rows = torch.arange(len(d), device=d.device)
        d[rows, rows + s] = float("inf")                                           # exclude itself
        radii[s:s + chunk] = d.kthvalue(k, dim=1).values                           # (c,)
    inside = torch.zeros(len(f), dtype=torch.float64, device=x.device)            # (M,) balls holding fake j
    covered = torch.zeros(len(x), dtype=torch.bool, device=x.device)              # (N,)
    for s in range(0, len(x), chunk):
        d = torch.cdist(x[s:s + chunk], f, compute_mode=mode)                     # (c, M)
        hit = d < radii[s:s + chunk, None]                                         # (c, M)
        inside += hit.sum(0)
        covered[s:s + chunk] = hit.any(1)
    return float(inside.mean() / k), float(covered.double().mean())


def kid(a, b, subsets: int = KID_SUBSETS, subset_size: int = KID_SUBSET_SIZE, seed: int = 0,
        device: str | torch.device | None = None) -> tuple[float, float]:
    """Kernel Inception Distance (Binkowski et al. 2018): unbiased MMD^2 between embeddings a (N, D)
    and b (M, D) with the kernel k(x, y) = (x.y / D + 1)^3, averaged over random subsets (seeded,
    without replacement, size min(subset_size, N, M)). Returns (mean, std) over the subsets.
    Unbiased: for two samples of one distribution the mean is ~0 (and can be slightly negative)."""
    x, y = _as_torch64(a, device), _as_torch64(b, device)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"kid needs (N, D) and (M, D) embeddings, got {tuple(x.shape)}, {tuple(y.shape)}")
    m = min(subset_size, len(x), len(y))
    if m < 2:
        raise ValueError(f"kid needs at least 2 embeddings per set, got {len(x)} and {len(y)}")
    d = x.shape[1]
    if m == len(x) == len(y):
        subsets = 1   # every "subset" would be the whole of both sets: one value, std 0
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(subsets):
        xs = x[torch.as_tensor(rng.choice(len(x), m, replace=False), device=x.device)]   # (m, D)
        ys = y[torch.as_tensor(rng.choice(len(y), m, replace=False), device=y.device)]   # (m, D)
        kxx = (xs @ xs.T / d + 1) ** 3                                                   # (m, m)
        kyy = (ys @ ys.T / d + 1) ** 3
        kxy = (xs @ ys.T / d + 1) ** 3
        # Unbiased: the diagonals k(x_i, x_i) are left out of the within-set means.
        within = (kxx.sum() - kxx.diagonal().sum() + kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
        values.append(float(within - 2 * kxy.mean()))
    return float(np.mean(values)), float(np.std(values))


# ---------------------------------------------------------------------------------------------
# Loopability (pjloop's own metric; the paper's loops are meant to repeat seamlessly, Section 1).
# ---------------------------------------------------------------------------------------------
BEAT_FRAMES = N_FRAMES // BEATS_PER_BAR   # 50 frames = one beat at 120 BPM
LOOP_EPS = 0.01   # log10 units (0.2 dB): keeps silence-vs-silence at ratio 1 instead of 0 / 0


def _boundary_transitions(b: int, n_frames: int = N_FRAMES) -> np.ndarray:
    """Indices t of the frame transitions (t -> t+1, cyclic) whose STFT windows touch sample b * HOP.

    Frame t's window covers samples [t HOP - PAD, t HOP - PAD + N_FFT) (mel.py), so frames
    t = b-3 .. b+2 contain the boundary and the transitions b-4 .. b+2 (7 of them, 70 ms) see it.
    """
    s = b * HOP
    first = math.floor((s + PAD - N_FFT) / HOP) + 1
    last = math.floor((s + PAD) / HOP)                      # frames first..last touch sample s
    return np.arange(first - 1, last + 1) % n_frames           # transitions into, within and out of them


def loop_spectrogram(audio: torch.Tensor) -> torch.Tensor:
    """(B, S) loops -> (B, F=64, T=S/160) log10 mel of the loop AS IT SOUNDS WHEN REPEATED.

    We analyse the loop tiled three times and keep the middle copy's frames: each of those frames' windows
    lies inside the tiled signal, so the frames across the seam see the end of the loop followed by its
    start -- exactly what a listener hears -- and the result is periodic in T.
    """
    n = audio.shape[-1] // HOP
    m = log_mel(audio.repeat(1, 3))                           # (B, 64, 3T)
    return m[..., n:2 * n]                                      # (B, 64, T)


def loopability(audio, batch: int = 64, device: str | torch.device | None = None) -> np.ndarray:
    """Seam abruptness of each loop, audio (N, S=32 000) 16 kHz -> (N,) ratios; ~1 is a seamless loop.

    Definition (pjloop's; not in the paper):
      1. M = log10 mel of the repeated loop (`loop_spectrogram`), periodic in T = 200 frames.
      2. Spectral flux per transition: d_t = RMS over the 64 bands of M[:, t+1] - M[:, t] (log10 units),
         cyclic, so d_199 is the step from the loop's last frame to its first.
      3. Abruptness at a bar position b: the largest d_t over the 7 transitions whose STFT windows
         touch sample 160 b (`_boundary_transitions`): a click or a jump in level or timbre shows there.
      4. loopability = (abruptness at the seam, b = 0 + eps) / (mean abruptness at the other beats of
         the bar, b = 50, 100, 150 + eps).
    Why the other beats: a one-bar loop's seam IS its downbeat. Drum loops hit hard there, so comparing
    the seam with the quiet frames between hits would call every good drum loop a bad one; comparing it
    with the bar's other beat boundaries asks "does the loop change more abruptly where it wraps than
    where its beats change?". A cut that is not at a period of the content (phase or level jump) gives
    > 1; a seamless loop ~1 (real loops start on an accented downbeat, so expect slightly above 1: compare
    generated loops with the real loops' value, which evaluate.py reports beside them).
    """
    x = audio.detach().cpu().float() if isinstance(audio, torch.Tensor) else torch.as_tensor(np.asarray(audio, np.float32))
    if x.ndim != 2 or x.shape[1] % HOP or x.shape[1] // HOP < 2 * BEAT_FRAMES:
        raise ValueError(f"loopability needs loops (N, S) with S a multiple of {HOP} and at least "
                         f"{2 * BEAT_FRAMES * HOP} samples, got {tuple(x.shape)}")
    n_frames = x.shape[1] // HOP
    beat = n_frames // BEATS_PER_BAR
    seam_idx = torch.as_tensor(_boundary_transitions(0, n_frames), device=device)
    beat_idx = [torch.as_tensor(_boundary_transitions(b * beat, n_frames), device=device)
                for b in range(1, BEATS_PER_BAR)]
    out = []
    for s in range(0, len(x), batch):   # the whole set stays on the CPU; one batch at a time on `device`
        m = loop_spectrogram(x[s:s + batch].to(device)).double()                     # (b, 64, T)
        flux = (m.roll(-1, dims=2) - m).pow(2).mean(1).sqrt()                        # (b, T): d_t
        seam = flux[:, seam_idx].amax(1)                                             # (b,)
        beats = torch.stack([flux[:, i].amax(1) for i in beat_idx], 1).mean(1)       # (b,)
        out.append(((seam + LOOP_EPS) / (beats + LOOP_EPS)).cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0)


# =============================================================================================
# The random VGG16 embedding for Density & Coverage (Naeem et al. 2020, paper Section 5).
# =============================================================================================
VGG16_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
VGG16_POOL = (6, 2)   # (T, F) after 5 halvings of (200, 64): the native size, so the pool is an identity


class RandomVGG16(nn.Module):
    """VGG16 (13 3x3 convs + ReLU, 5 max-pools, 1-channel input) with random, FROZEN weights,
    then adaptive average pool to `pool` and fc1 (-> fc_dim) - ReLU - fc2 (-> out_dim).

    Input (B, 1, T=200, F=64) standardised mels; `embed` -> (B, out_dim) fc2 outputs (before any ReLU:
    after a ReLU about half of 64 random units would be zero for most inputs). The paper's network is
    this with fc_dim = 4096 and out_dim = 64 (Naeem et al.: random embeddings are a fair, domain-free
    feature space for D&C, and a small fc2 keeps k-NN balls meaningful). The weights depend only on
    `seed` (initialised on CPU with a private generator, torchvision's VGG scheme: Kaiming-normal
    fan-out convs, N(0, 0.01) linears, zero biases), so every evaluation uses the same network.
    `width` divides the conv channels -- only for fast tests.
    """

    def __init__(self, out_dim: int = DC_EMBED_DIM, seed: int = 0, fc_dim: int = VGG16_FC_DIM,
                 pool: tuple[int, int] = VGG16_POOL, width: int = 1):
        super().__init__()
        self.out_dim, self.seed = out_dim, seed
        layers, c_in = [], 1
        for v in VGG16_CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                layers += [nn.Conv2d(c_in, v // width, 3, padding=1), nn.ReLU()]
                c_in = v // width
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(pool)
        self.fc1 = nn.Linear(c_in * pool[0] * pool[1], fc_dim)
        self.fc2 = nn.Linear(fc_dim, out_dim)
        gen = torch.Generator().manual_seed(seed)
        for mod in self.modules():
            if isinstance(mod, nn.Conv2d):
                nn.init.kaiming_normal_(mod.weight, mode="fan_out", nonlinearity="relu", generator=gen)
                nn.init.zeros_(mod.bias)
            elif isinstance(mod, nn.Linear):
                nn.init.normal_(mod.weight, 0.0, 0.01, generator=gen)
                nn.init.zeros_(mod.bias)
        self.requires_grad_(False)
        nn.Module.train(self, False)

    def train(self, mode: bool = True) -> "RandomVGG16":
        return nn.Module.train(self, False)   # a fixed function: never anything but eval

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        if mel.dim() != 4 or mel.shape[1] != 1:
            raise ValueError(f"RandomVGG16 expects (B, 1, T, F) mels, got {tuple(mel.shape)}")
        h = self.pool(self.features(mel))                       # (B, 512, 6, 2)
        h = torch.relu(self.fc1(h.flatten(1)))                  # (B, fc_dim)
        return self.fc2(h)                                      # (B, out_dim)

    @torch.no_grad()
    def embed(self, mels: torch.Tensor | np.ndarray, batch: int = 64) -> torch.Tensor:
        """(N, 1, T, F) standardised mels -> (N, out_dim) float32 on CPU."""
        device = next(self.parameters()).device
        mels = torch.as_tensor(mels)
        out = [self(mels[i:i + batch].to(device, torch.float32)).float().cpu() for i in range(0, len(mels), batch)]
        return torch.cat(out) if out else torch.zeros(0, self.out_dim)


# =============================================================================================
# The evaluation networks, loaded once, each optional but the random VGG16.
# =============================================================================================
@dataclass
class EvalNets:
    device: str
    mel_mean: np.ndarray                 # (64,) the data set's stats: standardise mels for RandomVGG16 and aisfx
    mel_std: np.ndarray
    vgg16: RandomVGG16
    classifier: object | None = None     # scnn.ShortChunkCNN (IS)
    clf_stats: tuple | None = None       # (mean, std) the classifier was trained with
    clf_accuracy: float = float("nan")   # its held-out test accuracy (NaN: its checkpoint does not say)
    vggish: object | None = None         # vggish.VGGish (FAD)
    sfx: object | None = None            # sfxnet.SfxFeatures (FAD_aisfx)
    notes: list[str] = field(default_factory=list)   # why a metric is missing


def load_eval_nets(data_dir: str | Path, device: str = "cpu", vggish_path: str | None = None,
                   ckpt_dir: str | Path = "checkpoints", fc_dim: int = VGG16_FC_DIM,
                   vgg16_seed: int = 0, verbose: bool = True) -> EvalNets:
    """Load every evaluation network that is available; print why the others are not."""
    mean, std = load_stats(data_dir)
    nets = EvalNets(device, mean, std, RandomVGG16(seed=vgg16_seed, fc_dim=fc_dim).to(device))

    def note(msg):
        nets.notes.append(msg)
        if verbose:
            print(f"[evaluate] {msg}", file=sys.stderr)
    try:
        nets.classifier, nets.clf_stats, nets.clf_accuracy = load_classifier(data_dir, ckpt_dir, device)
    except Exception as e:   # no labels to train on (one genre), foreign checkpoint, module absent
        note(f"IS skipped: no loop-genre classifier ({type(e).__name__}: {e})")
    try:
        nets.vggish = vggish.load_vggish(vggish_path, download=False).to(device)
    except Exception as e:   # vggish.VGGishWeightsMissing offline, or the module absent
        note(f"FAD (VGGish) and KID skipped: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''} "
             "(evaluation never downloads; `python train.py --features vgg` or --vggish PATH provides them)")
    try:
        nets.sfx = sfxnet.load_sfxnet().to(device)
    except Exception as e:
        note(f"FAD_aisfx skipped: {type(e).__name__}: {e}")
    return nets


def load_classifier(data_dir: str | Path, ckpt_dir: str | Path = "checkpoints", device: str = "cpu"):
    """-> (SCNN_Loop in eval mode, its input stats (mean, std), its held-out test accuracy or NaN)."""
    path = train_scnn.ensure_loop_classifier(None, data_dir, ckpt_dir, device)   # trains first only if absent
    model, _, stats = scnn.load_loop_classifier(path, device=device)
    acc = load_checkpoint(path).get("accuracy")   # train_scnn stores the held-out test accuracy
    return model, tuple(np.asarray(s, np.float32) for s in stats), float("nan") if acc is None else float(acc)


def embed_set(audio: np.ndarray | None, mels: np.ndarray, nets: EvalNets, batch: int = 64,
              verbose: bool = True) -> dict[str, np.ndarray]:
    """One set of loops -> every per-loop quantity the metrics need, indexed by loop along axis 0:

        probs  (N, K)        classifier softmax           vggish (N, W=2, 128)   aisfx (N, C=2, 512)
        vgg16  (N, 64)       RandomVGG16 fc2              loop   (N,)            loopability

    Keeping the windows of one loop together lets the real set be split by loops (`take`).
    audio None: the mel-only quantities (vgg16, probs), for a fast evaluation without a vocoder.
    """
    n, t0 = len(mels), time.time()
    out = {"vgg16": nets.vgg16.embed(to_gan(mels, nets.mel_mean, nets.mel_std), batch).numpy()}
    if nets.classifier is not None:
        z = to_gan(mels, *nets.clf_stats)                                     # (N, 1, T, F=64)
        out["probs"] = torch.cat([nets.classifier.predict_proba(z[i:i + batch].to(nets.device)).float().cpu()
                                  for i in range(0, n, batch)]).numpy()
    if audio is None:
        return out
    audio = np.asarray(audio, np.float32)
    assert audio.ndim == 2 and len(audio) == n, f"embed_set: audio (N={n}, S) expected, got {audio.shape}"
    # Audio embedders are fed a few hundred loops at a time: their STFTs of 10 000 loops would not fit.
    chunks = range(0, n, 4 * batch)
    if nets.vggish is not None:
        e = torch.cat([vggish.embed_audio(nets.vggish, audio[i:i + 4 * batch]) for i in chunks])
        out["vggish"] = e.reshape(n, -1, e.shape[-1]).numpy()                      # (N, W, 128)
    if nets.sfx is not None:
        e = torch.cat([sfxnet.embed_audio(nets.sfx, audio[i:i + 4 * batch], nets.mel_mean, nets.mel_std)
                       for i in chunks])
        out["aisfx"] = e.reshape(n, -1, e.shape[-1]).numpy()                       # (N, C, 512)
    out["loop"] = loopability(audio, batch, nets.device)
    if verbose:
        print(f"[evaluate] embedded {n} loops ({', '.join(out)}) in {time.time() - t0:.0f} s", file=sys.stderr)
    return out


def take(feats: dict[str, np.ndarray], idx) -> dict[str, np.ndarray]:
    """The same loops' rows of every feature (for subsets and the real-vs-real halves)."""
    return {k: v[idx] for k, v in feats.items()}


def compute_metrics(real: dict[str, np.ndarray], fake: dict[str, np.ndarray], k: int = DC_K,
                    kid_subsets: int = KID_SUBSETS, kid_subset_size: int = KID_SUBSET_SIZE,
                    seed: int = 0, device=None, clf_accuracy: float = float("nan")) -> dict[str, float]:
    """Table-1 metrics of `fake` against `real` (outputs of `embed_set`); NaN where a network is missing.
    `clf_accuracy` (the IS classifier's held-out accuracy) is reported beside IS as IS_clf_acc."""
    nan = float("nan")
    m = dict(IS=nan, IS_std=nan, IS_clf_acc=nan, FAD_vgg16rand=nan, KID_vgg16rand=nan, KID_vgg16rand_std=nan, FAD=nan,
             FAD_aisfx=nan, KID=nan, KID_std=nan, KID_aisfx=nan, KID_aisfx_std=nan, density=nan, coverage=nan,
             loop_fake=nan, loop_real=nan, n_real=len(real["vgg16"]), n_fake=len(fake["vgg16"]))
    if "probs" in fake:
        m["IS"], m["IS_std"] = inception_score(fake["probs"], splits=min(IS_SPLITS, len(fake["probs"])))
        m["IS_clf_acc"] = clf_accuracy
    for key, suffix in (("vgg16", "_vgg16rand"), ("vggish", ""), ("aisfx", "_aisfx")):
        if key in real and key in fake:
            a = real[key].reshape(-1, real[key].shape[-1])                          # (N * W, D)
            b = fake[key].reshape(-1, fake[key].shape[-1])                          # (M * W, D)
            if key == "vgg16":
                # The random net's output gain is arbitrary (~1e-2): divide both sets by the real set's
                # RMS spread so FAD reads in units of the real variance and KID's cubic kernel sees O(1)
                # inner products (D&C below is scale-free and uses the raw embedding).
                scale = float(np.sqrt(a.var(axis=0).mean())) or 1.0
                a, b = a / scale, b / scale
            m["FAD" + suffix] = fad_from_embeddings(a, b)
            m["KID" + suffix], m["KID" + suffix + "_std"] = kid(a, b, kid_subsets, kid_subset_size, seed, device)
    m["density"], m["coverage"] = density_coverage(real["vgg16"], fake["vgg16"], k, device=device)
    if "loop" in fake:
        m["loop_fake"] = float(np.median(fake["loop"]))
    if "loop" in real:
        m["loop_real"] = float(np.median(real["loop"]))
    return m


def real_anchor_metrics(real: dict[str, np.ndarray], seed: int = 0, **kw) -> dict[str, float]:
    """Table 1 row A: one random half of the real loops against the other half (same code, same N/2)."""
    n = len(real["vgg16"])
    perm = np.random.default_rng(seed).permutation(n)
    half = n // 2
    return compute_metrics(take(real, perm[:half]), take(real, perm[half:2 * half]), seed=seed, **kw)


def evaluate_sets(real_audio, fake_audio, real_mels, fake_mels, nets: EvalNets, seed: int = 0,
                  **kw) -> dict[str, float]:
    """The whole pipeline for two sets of loops: embed both, then every metric."""
    return compute_metrics(embed_set(real_audio, real_mels, nets), embed_set(fake_audio, fake_mels, nets),
                           seed=seed, device=nets.device, **kw)


# =============================================================================================
# Data: real loops from a data set, generated loops from a checkpoint.
# =============================================================================================
def load_real_set(data_dir: str | Path, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Up to n real loops, a seeded random choice (the first n of one fixed permutation, so a larger
    request contains a smaller one) -> audio (n, 32 000), log10 mels (n, 64, 200), ids."""
    data_dir = Path(data_dir)
    if not is_complete(data_dir):
        raise FileNotFoundError(f"--data {data_dir} is not a preprocessed loop data set (no manifest.csv/"
                                f"stats.npz): run preprocess.py or demoloops.py first")
    ids = [r["id"] for r in read_csv(data_dir / "manifest.csv")]
    ids = [ids[i] for i in np.random.default_rng(seed).permutation(len(ids))[:n]]
    audio = np.stack([sf.read(data_dir / "wav" / f"{i}.wav", dtype="float32")[0] for i in ids])   # (n, S)
    mels = np.stack([np.load(data_dir / "mel" / f"{i}.npy") for i in ids])                       # (n, 64, 200)
    return audio, mels, ids


def generate_set(G, ckpt: dict, vocoder, n: int, seed: int = 0, truncation: float = 1.0,
                 batch: int = 64) -> tuple[np.ndarray | None, np.ndarray]:
    """n generated loops -> audio (n, 32 000) seamlessly vocoded and peak-normalised like the real WAVs
    (FAD and KID depend on level; None when vocoder is None), log10 mels (n, 64, 200).

    Fresh, seeded per-loop noise (noise_mode "random"), as StyleGAN2's metric code and the authors'
    inference: with the stored constant noise every loop would share one noise field, and the metrics
    would measure a narrower generator than the one trained."""
    mels = sample.generate_mels(G, ckpt, n, seed=seed, truncation=truncation, batch=batch,
                                noise_mode=METRIC_NOISE)                                     # (n, 64, 200)
    if vocoder is None:
        return None, mels
    audio = np.stack([peak_normalise(a) for a in sample.vocode_loops(vocoder, mels)])       # (n, 32000)
    return audio, mels


# =============================================================================================
# The Python API: embed the real set once, then one call per checkpoint
# =============================================================================================
CACHE_VERSION = 1   # bump when embed_set's output changes, so cached real sets are recomputed


@dataclass
class RealSet:
    """The real reference set, embedded once: per-loop features (see `embed_set`) and the networks
    that made them (reused for every generated set, so both sides see the same embeddings)."""
    data_dir: Path
    n: int
    seed: int
    feats: dict[str, np.ndarray]
    nets: EvalNets


def _nets_signature(nets: EvalNets, fc_dim: int, vgg16_seed: int) -> str:
    """What a cached real set was embedded with; a different set of networks means recompute."""
    return (f"v{CACHE_VERSION} vgg16 fc{fc_dim} seed{vgg16_seed} clf={nets.classifier is not None} "
            f"vggish={nets.vggish is not None} aisfx={nets.sfx is not None}")


def real_cache_path(cache_dir: str | Path, data_dir: str | Path, n: int, seed: int) -> Path:
    """<cache_dir>/real_<data dir name>_<hash of its path and manifest>_n<n>_s<seed>.npz"""
    data_dir = Path(data_dir).resolve()
    key = hashlib.sha1(f"{data_dir}|{scnn.manifest_hash(data_dir)}".encode()).hexdigest()[:10]
    return Path(cache_dir) / f"real_{data_dir.name}_{key}_n{n}_s{seed}.npz"


def prepare_real(data_dir: str | Path, n: int, seed: int = 0, device: str = "cpu",
                 cache_dir: str | Path | None = "checkpoints/eval_cache", ckpt_dir: str | Path = "checkpoints",
                 vggish_path: str | None = None, fc_dim: int = VGG16_FC_DIM, vgg16_seed: int = 0,
                 verbose: bool = True) -> RealSet:
    """Load the evaluation networks (training the IS classifier first if it is absent) and embed n real
    loops of `data_dir` (a seeded choice, `load_real_set`). The embeddings are cached as .npz under
    `cache_dir` (None: no cache), keyed by data dir + manifest + n + seed and checked against the networks."""
    nets = load_eval_nets(data_dir, device, vggish_path, ckpt_dir, fc_dim, vgg16_seed, verbose)
    sig = _nets_signature(nets, fc_dim, vgg16_seed)
    path = real_cache_path(cache_dir, data_dir, n, seed) if cache_dir is not None else None
    if path is not None and path.is_file():
        with np.load(path) as z:
            if str(z["signature"]) == sig:
                feats = {k: z[k] for k in z.files if k != "signature"}
                if verbose:
                    print(f"[evaluate] real set: {len(feats['vgg16'])} loops from the cache {path}", file=sys.stderr)
                return RealSet(Path(data_dir), len(feats["vgg16"]), seed, feats, nets)
    audio, mels, _ = load_real_set(data_dir, n, seed)
    if len(audio) < n and verbose:
        print(f"[evaluate] the data set has only {len(audio)} loops (asked for {n})", file=sys.stderr)
    feats = embed_set(audio, mels, nets, verbose=verbose)
    if path is not None:
        def write(tmp):
            with open(tmp, "wb") as f:
                np.savez(f, signature=np.array(sig), **feats)
        atomic_write(path, write)
    return RealSet(Path(data_dir), len(audio), seed, feats, nets)


def evaluate_checkpoint(ckpt_path: str | Path, real: RealSet, n: int | None = None, seed: int = 0,
                        device: str | None = None, vocoder=None, truncation: float = 1.0,
                        with_audio: bool = True, verbose: bool = True) -> dict:
    """One generator checkpoint (or run directory) -> one table row: every metric against `real`.
    n generated loops (default: as many as the real set; compare rows only at equal n), seeded noise and
    latents; vocoder: a melgan Vocoder, default the loops' MelGAN checkpoint else Griffin-Lim.
    with_audio=False skips vocoding and the audio metrics (FAD_aisfx, FAD, KID(_aisfx), loop_fake: NaN);
    the headline FAD/KID_vgg16rand, IS and D&C read the mels and do not change. Keys: ROW_FIELDS."""
    t0 = time.time()
    device = device or real.nets.device
    G, ckpt = sample.load_generator(ckpt_path, device)
    if vocoder is None and with_audio:
        vocoder = melgan.load_vocoder(None, loops=ckpt.get("loops", "drum"), device=device)
    audio, mels = generate_set(G, ckpt, vocoder, n or real.n, seed, truncation)
    metrics = compute_metrics(real.feats, embed_set(audio, mels, real.nets, verbose=verbose), seed=seed,
                              device=device, clf_accuracy=real.nets.clf_accuracy)
    row = checkpoint_row(ckpt, sample.resolve_checkpoint(ckpt_path), metrics, getattr(vocoder, "name", "none"))
    row["eval_seconds"] = time.time() - t0
    return row


# =============================================================================================
# Table rows, CSV and the Figure-4 curve
# =============================================================================================
ROW_FIELDS = ["model", "features", "loops", "step", "hours", "train_minutes", "n_fake", "n_real", "IS", "IS_std",
              "IS_clf_acc", "FAD_vgg16rand", "KID_vgg16rand", "KID_vgg16rand_std", "density", "coverage",
              "FAD_aisfx", "KID_aisfx", "KID_aisfx_std", "FAD", "KID", "KID_std", "loop_fake", "loop_real",
              "vocoder", "eval_seconds", "ckpt"]


def _fmt(v, spec=".2f") -> str:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return "-"
    return "-" if math.isnan(v) else format(v, spec)


def _clf_note(row: dict) -> str:
    acc = _fmt(row.get("IS_clf_acc"), ".3f")
    return "classifier accuracy unknown" if acc == "-" else f"classifier acc {acc}"


def format_row(row: dict) -> str:
    """One Table-1-style line. Headline FAD/KID: the random VGG16 (independent of every discriminator);
    FAD_aisfx is the offline stand-in for the paper's FAD; KID's scale depends on the embedding."""
    return (f"{row.get('model', '?'):<28} {row.get('features', ''):<16} step {row.get('step', '-'):>7} "
            f"{_fmt(row.get('hours', float('nan')), '.2f'):>6} h "
            f"| IS {_fmt(row['IS'])} ± {_fmt(row['IS_std'])} ({_clf_note(row)}) "
            f"| FAD_vgg16rand {_fmt(row.get('FAD_vgg16rand'), '.3f')} KID_vgg16rand {_fmt(row.get('KID_vgg16rand'), '.4g')} "
            f"| D {_fmt(row['density'])} C {_fmt(row['coverage'])} "
            f"| FAD {_fmt(row['FAD'])} | FAD_aisfx (offline stand-in) {_fmt(row['FAD_aisfx'], '.3f')} "
            f"| KID {_fmt(row['KID'], '.4g')} KID_aisfx {_fmt(row['KID_aisfx'], '.4g')} "
            f"| loop {_fmt(row['loop_fake'])} (real {_fmt(row['loop_real'])}) | N {row['n_fake']}/{row['n_real']}")


def table_header() -> str:
    return ("Table 1 (pjloop): IS↑ (+ its classifier's held-out accuracy) FAD_vgg16rand↓ KID_vgg16rand↓ "
            "(headline: an embedding no discriminator uses) D↑ C↑ | FAD↓ (VGGish) FAD_aisfx↓ (offline "
            "stand-in) KID↓ | loopability (~real is good)")


def append_csv(path: str | Path, row: dict) -> None:
    """Append a row by atomically rewriting the whole file (previous rows kept; new columns added)."""
    path = Path(path)
    rows = read_csv(path)
    fields = list(rows[0].keys()) if rows else []
    fields += [f for f in dict.fromkeys([*ROW_FIELDS, *row]) if f not in fields]   # each column once
    write_csv(path, fields, rows + [{k: ("" if v is None else v) for k, v in row.items()}])


def checkpoint_row(ckpt: dict, ckpt_path, metrics: dict, vocoder_name: str = "") -> dict:
    feats = ckpt.get("features", "")
    feats = "+".join(feats) if isinstance(feats, (list, tuple)) else str(feats)
    secs = float(ckpt["train_seconds"]) if ckpt.get("train_seconds") is not None else float("nan")
    return {"model": Path(ckpt_path).parent.name, "features": feats or "none", "loops": ckpt.get("loops", ""),
            "step": int(ckpt.get("step", -1)), "hours": secs / 3600, "train_minutes": secs / 60,
            **metrics, "vocoder": vocoder_name, "ckpt": str(ckpt_path)}


def real_row(metrics: dict, data_dir) -> dict:
    return {"model": "Real data (half vs half)", "features": "-", "loops": Path(data_dir).name, "step": "",
            "hours": float("nan"), "train_minutes": float("nan"), **metrics, "vocoder": "-", "ckpt": ""}


def plot_curve(rows: list[dict], path: str | Path) -> None:
    """Figure 4: FAD (and FAD_aisfx) and IS against training hours, one run."""
    rows = sorted(rows, key=lambda r: float(r["step"]))
    hours = [float(r["hours"]) for r in rows]

    def col(k):
        return [float(r[k]) if r.get(k, "") != "" else float("nan") for r in rows]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    for key, label in (("FAD_vgg16rand", "FAD_vgg16rand (headline)"), ("FAD", "FAD (VGGish)"),
                       ("FAD_aisfx", "FAD_aisfx (offline stand-in)")):
        if not all(math.isnan(v) for v in col(key)):
            ax1.plot(hours, col(key), "o-", label=label)
    ax1.set_xlabel("training hours"), ax1.set_ylabel("Fréchet distance ↓"), ax1.legend()
    ax2.errorbar(hours, col("IS"), yerr=col("IS_std"), fmt="o-")
    ax2.set_xlabel("training hours"), ax2.set_ylabel("IS ↑")
    ax2.ticklabel_format(axis="y", useOffset=False)
    fig.suptitle(f"{rows[0].get('model', '')} ({rows[0].get('features', '')}), N = {rows[0].get('n_fake', '?')}")
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))
    plt.close(fig)


# =============================================================================================
# CLI
# =============================================================================================
def _default_n(device: str, n: int | None) -> int:
    if n is not None:
        return n
    n = N_EVAL_GPU if device.startswith("cuda") else N_EVAL_CPU
    print(f"[evaluate] -n not given: using N = {n} on {device} (the paper: 10 000; FAD and D&C are biased "
          f"in N, compare rows only at equal N)", file=sys.stderr)
    return n


def _data_dir_of(args, ckpt: dict | None) -> Path:
    """--data, else the data set the checkpoint was trained on (train.py stores it in its config)."""
    data = args.data or ((ckpt or {}).get("config") or {}).get("data")
    if not data:
        raise SystemExit("evaluate.py: give --data DIR (the preprocessed loop data set the model was trained on)")
    return Path(data)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("ckpt", nargs="?", help="generator checkpoint (.pt) or run directory (its latest.pt)")
    ap.add_argument("--data", help="preprocessed loop data set (real loops, stats, genre labels)")
    ap.add_argument("-n", type=int, default=None, help=f"loops per set (default {N_EVAL_GPU} on GPU, "
                                                       f"{N_EVAL_CPU} on CPU)")
    ap.add_argument("--csv", default=None, help=f"append the row here (default {CSV_DEFAULT}; "
                                                f"with --curve RUN_DIR/curve.csv)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--truncation", type=float, default=1.0)
    ap.add_argument("--real-anchor", action="store_true", help="also (or only) the real-vs-real row")
    ap.add_argument("--curve", metavar="RUN_DIR", help="evaluate every RUN_DIR/ckpt_*.pt, plot RUN_DIR/curve.png")
    ap.add_argument("--vocoder", default=None, help="MelGAN checkpoint (default: melgan.load_vocoder's choice)")
    ap.add_argument("--vggish", default=None, help="VGGish weights file (FAD); offline FAD is skipped without it")
    ap.add_argument("--ckpt-dir", default="checkpoints", help="where the loop-genre classifier is kept")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--vgg16-fc", type=int, default=VGG16_FC_DIM, help="RandomVGG16 fc1 width (paper: 4096)")
    ap.add_argument("--mel-only", action="store_true", help="skip vocoding: only the mel metrics (IS, "
                                                             "FAD/KID_vgg16rand, D&C), several times faster")
    args = ap.parse_args(argv)
    if not (args.ckpt or args.curve or args.real_anchor):
        ap.error("give a checkpoint, --curve RUN_DIR, or --real-anchor")

    # Which checkpoints, and the data set they were trained on.
    if args.curve:
        run = Path(args.curve)
        paths = sorted(run.glob("ckpt_*.pt"))
        if not paths:
            raise SystemExit(f"evaluate.py --curve: no ckpt_*.pt in {run} (train.py writes them every "
                             f"snapshot_every steps)")
    else:
        paths = [args.ckpt] if args.ckpt else []
    n = _default_n(args.device, args.n)
    first = None
    if paths:
        try:
            first = load_checkpoint(sample.resolve_checkpoint(paths[0]), required=sample.CKPT_KEYS)
        except Exception as e:   # missing file, foreign or truncated checkpoint
            raise SystemExit(f"evaluate.py: cannot use {paths[0]} as a generator checkpoint: {e}")
    data_dir = _data_dir_of(args, first)
    csv_path = Path(args.csv) if args.csv else (Path(args.curve) / "curve.csv" if args.curve else Path(CSV_DEFAULT))

    pool = prepare_real(data_dir, 2 * n if args.real_anchor else n, args.seed, args.device,
                        cache_dir=Path(args.ckpt_dir) / "eval_cache", ckpt_dir=args.ckpt_dir,
                        vggish_path=args.vggish, fc_dim=args.vgg16_fc)
    real = RealSet(pool.data_dir, min(n, pool.n), args.seed, take(pool.feats, slice(0, n)), pool.nets)
    print(table_header())
    if args.real_anchor:
        row = real_row(real_anchor_metrics(pool.feats, args.seed, device=args.device,
                                           clf_accuracy=pool.nets.clf_accuracy), data_dir)
        print(format_row(row))
        append_csv(csv_path, row)

    vocoder = None
    if paths and not args.mel_only:
        vocoder = melgan.load_vocoder(args.vocoder, loops=first.get("loops", "drum"), device=args.device)
    rows = []
    for path in paths:
        row = evaluate_checkpoint(path, real, n, args.seed, args.device, vocoder, args.truncation,
                                  with_audio=not args.mel_only)
        print(format_row(row), flush=True)
        append_csv(csv_path, row)
        rows.append(row)
    if args.curve:
        plot_curve(rows, Path(args.curve) / "curve.png")
        print(f"wrote {Path(args.curve) / 'curve.png'}")
    print(f"appended {len(rows) + int(args.real_anchor)} row(s) to {csv_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
