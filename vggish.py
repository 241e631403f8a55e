"""VGGish: the general pre-trained feature network and the FAD embedding (paper Section 3.1, Section 5;
docs/design.md §2 and §7; Hershey et al. 2017).

1. Projector stages (`VGGishFeatures`, registry name "vgg"): our standardised mel chunk (B, 1, T=100, F=64),
   fed as is (as the authors), -> (B, 64, 50, 32) (B, 128, 25, 16) (B, 256, 12, 8) (B, 512, 6, 4).
2. FAD embedding (`embed_audio`): 16 kHz audio -> VGGish's own front end -> 0.96-s examples -> 128-d,
   before the final ReLU, no PCA (as Kilgour et al.'s FAD).

Weights (the torchvggish port, Apache-2.0, ~288 MB): --vggish PATH, $PJLOOP_VGGISH, the torch hub cache,
else downloaded once with a SHA-256 check; offline with no file -> `VGGishWeightsMissing`, never random
weights. Details: docs/modules.md, "vggish.py".
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from featurenet import FeatureNet, FeatureNetUnavailable

# ---------------------------------------------------------------------------------------------
# Where the weights come from.
# ---------------------------------------------------------------------------------------------
# The release URL of the PyTorch port, as in harritaylor/torchvggish's hubconf.py and torchvggish.py.
VGGISH_URL = "https://github.com/harritaylor/torchvggish/releases/download/v0.1/vggish-10086976.pth"
VGGISH_FILENAME = "vggish-10086976.pth"   # torch.hub naming: '<name>-<first 8 hex of sha256>.pth'
# Full SHA-256 of that file. Not computed here (no network); quoted identically by three independent
# public projects that pin this download (a D3M primitive's 'file_digest', an NSIS installer's
# WEIGHTS_SHA256, an eval script's manifest), and it starts with the file name's prefix '10086976'.
VGGISH_SHA256 = "10086976245803799d9194e9a73d9b6c1549c71d1b80106f5cade5608a561f4b"
ENV_VAR = "PJLOOP_VGGISH"

# ---------------------------------------------------------------------------------------------
# VGGish's own front end (Google's vggish_params.py / mel_features.py; docs/design.md §7).
# ---------------------------------------------------------------------------------------------
VGGISH_SR = 16_000     # VGGish's rate (= pjloop's mel.SR)
VGGISH_WINDOW = 400    # 25 ms window
VGGISH_HOP = 160       # 10 ms hop (= pjloop's mel.HOP)
VGGISH_N_FFT = 512     # 2 ** ceil(log2(400)): each 400-sample frame is zero-padded at its END to 512
N_BANDS = 64
MEL_LO, MEL_HI = 125.0, 7500.0   # Hz, band edges of the HTK-scale filterbank
LOG_OFFSET = 0.01      # ln(mel + 0.01), magnitude (not power) mel
EXAMPLE_FRAMES = 96    # 0.96 s examples, hop 0.96 s (non-overlapping)
EMBED_DIM = 128

STAGE_CHANNELS = (64, 128, 256, 512)
# Layer indices of the port's `features` Sequential (conv, ReLU, [pool]) with [64,M,128,M,256,256,M,512,512,M]:
# convs at 0, 3, 6, 8, 11, 13 and max-pools at 2, 5, 10, 15. A stage ends right after its pool.
_STAGE_ENDS = (3, 6, 11, 16)
N_POOLS = len(STAGE_CHANNELS)   # four 2x2 max-pools, one per stage: each halves time and frequency
# What the last stage leaves of one 96 x 64 example: 96 / 2^4 = 6 frames x 64 / 2^4 = 4 bands, of 512
# channels each; flattened, that is the input width of the first embedding layer (12 288).
FINAL_MAP = (EXAMPLE_FRAMES >> N_POOLS, N_BANDS >> N_POOLS)                          # (6, 4)
FLAT_DIM = STAGE_CHANNELS[-1] * FINAL_MAP[0] * FINAL_MAP[1]                          # 512 * 6 * 4


class VGGishWeightsMissing(FeatureNetUnavailable):
    """No VGGish weights on this machine and none could be downloaded."""


class VGGishWeightsInvalid(FeatureNetUnavailable):
    """A VGGish weights file that is truncated, not a torch file, or not in the torchvggish layout."""


def make_features() -> nn.Sequential:
    """The conv part, [64, M, 128, M, 256, 256, M, 512, 512, M]: 3x3 convs (pad 1) + ReLU, 2x2 max-pools.
    Sequential indices give the port's keys: convs at 0, 3, 6, 8, 11, 13."""
    layers, cin = [], 1
    for v in (64, "M", 128, "M", 256, 256, "M", 512, 512, "M"):
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(cin, v, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            cin = v
    return nn.Sequential(*layers)


class VGGish(nn.Module):
    """VGGish in the torchvggish key layout. forward: (B, 1, 96, 64) log-mel examples -> (B, 128).

    The port ends `embeddings` with a ReLU; we leave it out (an index with no parameters, so the state
    dict keys are unchanged): FAD uses the embedding before that ReLU (docs/design.md §7).
    """

    def __init__(self):
        super().__init__()
        self.features = make_features()
        self.embeddings = nn.Sequential(
            nn.Linear(FLAT_DIM, 4096), nn.ReLU(inplace=True),
            nn.Linear(4096, 4096), nn.ReLU(inplace=True),
            nn.Linear(4096, EMBED_DIM),           # no final ReLU (see class docstring)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)                      # (B, 512, 6, 4) for a (B, 1, 96, 64) example
        # The TF original is channels-last, so its flatten order is (time, freq, channel); the port
        # transposes (1,3) then (1,2) before `.view` to match (torchvggish/vggish.py, VGG.forward).
        x = x.permute(0, 2, 3, 1).flatten(1)     # (B, 6, 4, 512) -> (B, 12288)
        return self.embeddings(x)                 # (B, 128)


def expected_shapes() -> dict[str, tuple[int, ...]]:
    """Every key of the official state dict and its shape (the layout `load_vggish` demands)."""
    with torch.device("meta"):     # shapes only: no memory, no random init of 72 M parameters
        return {k: tuple(v.shape) for k, v in VGGish().state_dict().items()}


# ---------------------------------------------------------------------------------------------
# Finding, downloading and loading the weights.
# ---------------------------------------------------------------------------------------------
def default_weights_path() -> Path:
    """Where torch.hub keeps (and we download) the file: <hub dir>/checkpoints/vggish-10086976.pth."""
    return Path(torch.hub.get_dir()) / "checkpoints" / VGGISH_FILENAME


def _download(url: str, dst: Path) -> None:
    """Fetch `url` to `dst` via torch.hub (temp file + rename; refuses a SHA-256 mismatch).
    A module-level function so tests can replace it and never touch the network."""
    torch.hub.download_url_to_file(url, str(dst), hash_prefix=VGGISH_SHA256, progress=True)


def _missing_message(reason: str) -> str:
    return (f"VGGish weights not available ({reason}).\n"
            f"  Download {VGGISH_URL}\n"
            f"  (sha256 {VGGISH_SHA256}) and put it at\n"
            f"    {default_weights_path()}\n"
            f"  or pass its path with --vggish PATH or the environment variable {ENV_VAR}=PATH.\n"
            f"  Offline, use the general network that ships in a wheel instead: --features aisfx.")


def resolve_weights(path: str | Path | None = None, download: bool = True) -> Path:
    """Find the weights file: explicit path > $PJLOOP_VGGISH > hub cache > download into the hub cache."""
    for given, where in ((path, "--vggish"), (os.environ.get(ENV_VAR) or None, f"${ENV_VAR}")):
        if given is not None:
            p = Path(given).expanduser()
            if not p.is_file():
                raise VGGishWeightsMissing(_missing_message(f"{where} points to {p}, which is not a file"))
            return p
    cached = default_weights_path()
    if cached.is_file():
        return cached
    if not download:
        raise VGGishWeightsMissing(_missing_message(f"{cached} does not exist and downloading is off"))
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        _download(VGGISH_URL, cached)
    except Exception as e:   # offline (URLError), proxy, disk full, checksum mismatch, ...
        raise VGGishWeightsMissing(_missing_message(f"download failed: {type(e).__name__}: {e}")) from e
    return cached


def load_state(path: str | Path) -> dict[str, torch.Tensor]:
    """Safely read a torchvggish state dict and check every key and shape; refuse anything else."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:   # truncated zip, pickle with code in it, not a torch file, ...
        raise VGGishWeightsInvalid(f"{path} is not a readable VGGish weights file "
                                   f"({type(e).__name__}: {e}); re-download {VGGISH_URL}") from e
    if not isinstance(state, dict):
        raise VGGishWeightsInvalid(f"{path} holds a {type(state).__name__}, not a VGGish state dict")
    want = expected_shapes()
    missing = sorted(set(want) - set(state))
    extra = sorted(set(state) - set(want))
    def shape(v):
        return tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__
    wrong = [f"{k}: {shape(state[k])} != {want[k]}" for k in want if k in state and shape(state[k]) != want[k]]
    if missing or extra or wrong:
        raise VGGishWeightsInvalid(f"{path} is not in the torchvggish layout: missing keys {missing}, "
                                   f"unexpected keys {extra}, wrong shapes {wrong}")
    return state


def load_vggish(path: str | Path | None = None, download: bool = True) -> VGGish:
    """The pre-trained VGGish (eval mode, on CPU), from `resolve_weights(path, download)`."""
    state = load_state(resolve_weights(path, download))
    with torch.device("meta"):
        model = VGGish()
    model = model.to_empty(device="cpu")          # allocate without a pointless random init ...
    model.load_state_dict(state, strict=True)     # ... then copy every (checked) tensor in
    return model.eval()


# ---------------------------------------------------------------------------------------------
# Projector stages.
# ---------------------------------------------------------------------------------------------
class VGGishFeatures(FeatureNet):
    """VGGish's four conv groups as projector stages. Holds only `features` (the 4096-wide embedding
    layers, ~270 MB, are not needed by the projector and stay off the GPU)."""

    name = "vgg"
    stage_channels = STAGE_CHANNELS

    def __init__(self, features: nn.Sequential):
        super().__init__()
        self.features = features

    # adapt: identity (inherited) -- the authors' choice, see the module docstring.

    def stages(self, mel: torch.Tensor) -> list[torch.Tensor]:
        x, out, start = self.adapt(mel), [], 0                # (B, 1, T=100, F=64)
        for end in _STAGE_ENDS:
            x = self.features[start:end](x)                   # 50x32, 25x16, 12x8, 6x4 for a 100x64 chunk
            out.append(x)
            start = end
        return out


def build_feature_net(ctx) -> VGGishFeatures:
    """Registry builder ('vgg'). `ctx.vggish_path` (optional attribute, set by train.py's --vggish) or
    $PJLOOP_VGGISH or the hub cache; downloads once if online. featurenet.build freezes it."""
    state = load_state(resolve_weights(getattr(ctx, "vggish_path", None)))   # all keys/shapes checked
    feats = make_features()
    feats.load_state_dict({k[len("features."):]: v for k, v in state.items() if k.startswith("features.")},
                          strict=True)
    return VGGishFeatures(feats)


# ---------------------------------------------------------------------------------------------
# VGGish's own front end and the FAD embedding.
# ---------------------------------------------------------------------------------------------
def _hz_to_mel_htk(f: np.ndarray) -> np.ndarray:
    return 1127.0 * np.log(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def vggish_mel_matrix() -> np.ndarray:
    """(257, 64) triangular weights, linear in HTK mel, peak 1 (no area normalisation), DC bin zeroed:
    the construction of Google's mel_features.spectrogram_to_mel_matrix."""
    bins_mel = _hz_to_mel_htk(np.linspace(0.0, VGGISH_SR / 2, VGGISH_N_FFT // 2 + 1))  # (257,)
    edges = np.linspace(_hz_to_mel_htk(MEL_LO), _hz_to_mel_htk(MEL_HI), N_BANDS + 2)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]             # (64, 1) each
    up = (bins_mel[None] - lo) / (mid - lo)
    down = (hi - bins_mel[None]) / (hi - mid)
    w = np.maximum(0.0, np.minimum(up, down)).T                                    # (257, 64)
    w[0] = 0.0   # HTK leaves out the DC bin
    return w.astype(np.float32)


def vggish_log_mel(audio: torch.Tensor) -> torch.Tensor:
    """VGGish front end: (N, S) 16 kHz audio -> (N, frames, 64) ln(mel + 0.01), frames = 1 + (S-400)//160.
    No padding at either end (Google's `frame` keeps only complete frames)."""
    frames = audio.unfold(-1, VGGISH_WINDOW, VGGISH_HOP)                           # (N, frames, 400)
    n = torch.arange(VGGISH_WINDOW, device=audio.device, dtype=audio.dtype)
    window = 0.5 - 0.5 * torch.cos(2 * torch.pi * n / VGGISH_WINDOW)               # periodic Hann
    spec = torch.fft.rfft(frames * window, n=VGGISH_N_FFT).abs()                   # (N, frames, 257)
    mel = spec @ torch.from_numpy(vggish_mel_matrix()).to(audio.device, audio.dtype)  # (N, frames, 64)
    return torch.log(mel + LOG_OFFSET)


def examples(audio: np.ndarray | torch.Tensor) -> torch.Tensor:
    """(N, S) 16 kHz audio -> (N * W, 1, 96, 64) non-overlapping 0.96 s examples, W = frames // 96.

    The partial remainder is dropped (as Google's framing): a 2.000 s loop has 198 frames -> 2 examples,
    the last 6 frames (60 ms) unused. Examples of loop 0 come first, then loop 1, ...
    """
    x = torch.as_tensor(np.asarray(audio, dtype=np.float32)) if not isinstance(audio, torch.Tensor) \
        else audio.float()
    if x.dim() != 2:
        raise ValueError(f"embed_audio expects (N, samples) audio, got shape {tuple(x.shape)}")
    need = VGGISH_WINDOW + (EXAMPLE_FRAMES - 1) * VGGISH_HOP
    if x.shape[-1] < need:
        raise ValueError(f"VGGish needs at least {need} samples (0.975 s at 16 kHz) per clip, "
                         f"got {x.shape[-1]}")
    lm = vggish_log_mel(x)                                                         # (N, frames, 64)
    w = lm.shape[1] // EXAMPLE_FRAMES
    lm = lm[:, : w * EXAMPLE_FRAMES]                                               # drop the remainder
    return lm.reshape(x.shape[0] * w, 1, EXAMPLE_FRAMES, N_BANDS)                 # (N*W, 1, 96, 64)


@torch.no_grad()
def embed_audio(model: VGGish, audio: np.ndarray | torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """FAD embeddings: (N, S) float32 16 kHz audio -> (N * W, 128) on CPU, W = 0.96 s windows per clip
    (2 for a 2-s loop). Pre-ReLU, no PCA (docs/design.md §7)."""
    device = next(model.parameters()).device
    ex = examples(audio)                                                           # (N*W, 1, 96, 64)
    model.eval()
    out = [model(ex[i:i + batch_size].to(device)).float().cpu() for i in range(0, len(ex), batch_size)]
    return torch.cat(out)                                                          # (N*W, 128)
