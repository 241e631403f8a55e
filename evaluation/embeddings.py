"""The embeddings the evaluation reads (paper Section 5): one set of loops -> per-loop features.

    RandomVGG16   random, frozen VGG16 on standardised mels (B, 1, T=200, F=64) -> (B, 64): D&C, FAD/KID_vgg16rand
    SCNN_Loop     the loop-genre classifier's softmax (B, K), for IS (scnn.py)
    VGGish        (B, W=2, 128) per 0.96-s window, the paper's FAD (vggish.py; weights offline only)
    aisfx         (B, C=2, 512) per 1-s chunk, the offline FAD stand-in (standins/sfxnet.py)
    musicnn       (B, 200) MSD_musicnn's penultimate layer, from audio or (musicnn_mel) from the mels
    loopability   (B,) seam abruptness (evaluation/metrics.py)

`load_eval_nets` loads what is available (RandomVGG16 always) and says why the others are not; `embed_set`
runs them over one set. The metrics themselves are evaluation/metrics.py.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from standins import musicnn_features
import scnn
from standins import sfxnet
import train_scnn
import vggish
from plumbing.checkpoint import load_checkpoint
from dataset import load_stats
from mel import to_gan
from evaluation.metrics import loopability

DC_EMBED_DIM = 64         # "fc2 space whose dimension is deliberately set to a small value 64" (Section 5)
VGG16_FC_DIM = 4096       # VGG16's fc1 width; configurable so tests and CPU runs stay light


# ---------------------------------------------------------------------------------------------
# The random VGG16 (Naeem et al. 2020, paper Section 5)
# ---------------------------------------------------------------------------------------------
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
        assert mel.dim() == 4 and mel.shape[1] == 1, f"RandomVGG16 expects (B, 1, T, F) mels, got {tuple(mel.shape)}"
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


# ---------------------------------------------------------------------------------------------
# The evaluation networks, loaded once, each optional but the random VGG16
# ---------------------------------------------------------------------------------------------
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
    musicnn: object | None = None        # musicnn_features.MusicnnEmbedding (FAD/KID_musicnn, the headline)
    notes: list[str] = field(default_factory=list)   # why a metric is missing


def load_eval_nets(data_dir: str | Path, device: str = "cpu", vggish_path: str | None = None,
                   ckpt_dir: str | Path | None = None, fc_dim: int = VGG16_FC_DIM,
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
    try:
        nets.musicnn = musicnn_features.load_embedding(device)
    except Exception as e:   # musicnn_port.MusicnnMissing: the wheel is absent
        note(f"FAD/KID_musicnn skipped: {type(e).__name__}: {e}")
    return nets


def load_classifier(data_dir: str | Path, ckpt_dir: str | Path | None = None, device: str = "cpu"):
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
        musicnn (N, 200)     MSD_musicnn from the audio   musicnn_mel (N, 200) the same from the mels

    Keeping the windows of one loop together lets the real set be split by loops (`take`).
    audio None: the mel-only quantities (vgg16, probs), for a fast evaluation without a vocoder.
    """
    n, t0 = len(mels), time.time()
    out = {"vgg16": nets.vgg16.embed(to_gan(mels, nets.mel_mean, nets.mel_std), batch).numpy()}
    if nets.classifier is not None:
        z = to_gan(mels, *nets.clf_stats)                                     # (N, 1, T, F=64)
        out["probs"] = torch.cat([nets.classifier.predict_proba(z[i:i + batch].to(nets.device)).float().cpu()
                                  for i in range(0, n, batch)]).numpy()
    if nets.musicnn is not None:
        out["musicnn_mel"] = musicnn_features.embed_mels(nets.musicnn, mels, batch).numpy()
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
    if nets.musicnn is not None:
        out["musicnn"] = musicnn_features.embed_audio(nets.musicnn, audio, batch).numpy()   # (N, 200)
    out["loop"] = loopability(audio, batch, nets.device)
    if verbose:
        print(f"[evaluate] embedded {n} loops ({', '.join(out)}) in {time.time() - t0:.0f} s", file=sys.stderr)
    return out


def take(feats: dict[str, np.ndarray], idx) -> dict[str, np.ndarray]:
    """The same loops' rows of every feature (for subsets and the real-vs-real halves)."""
    return {k: v[idx] for k, v in feats.items()}
