"""The offline general feature network: the aisfx sound-effects CNN (docs/design.md §2, §7; stands in for
VGGish of paper Section 3.1 where VGGish's weights cannot be downloaded).

Credit: aisfx 0.1.2, Ma & Lerch, ISMIR 2022, CC-BY-4.0; weights in its PyPI wheel. The module is our own;
the architecture (a 9-layer CNN, 64-512 channels) and input conventions are facts read from the package.
Projector stages (`SfxFeatures`, registry name "aisfx") for a (B, 1, T=100, F=64) chunk, grid adapter:

    (B, 1, 43, 96) -> (B, 64, 21, 48)  (B, 128, 10, 24)  (B, 256, 5, 12)  (B, 512, 5, 12)

`adapt` maps our z-scores affinely onto the level of its training inputs, read from its first batch-norm
(`input_stats_from_bn`). The derivation and the honest mismatches: docs/modules.md, "standins/sfxnet.py".
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from standins.adapter import GridAdapter, fit_level_map, htk_centres_hz
from featurenet import FeatureNet, FeatureNetUnavailable
from mel import CHUNK_FRAMES, N_MELS, log_mel, to_gan

STAGE_CHANNELS = (64, 128, 256, 512)
PIP_INSTALL = "pip install --no-deps aisfx==0.1.2"   # its pinned requirements are obsolete (docs/design.md §2)
# The native input's mean and std on its [0, 1] scale, derived from the checkpoint's first batch-norm
# (module docstring; `input_stats_from_bn` recomputes them).
AISFX_INPUT_MEAN = 0.164
AISFX_INPUT_STD = 0.183
NATIVE_SR, NATIVE_HOP, NATIVE_MELS = 44_100, 1024, 96   # its own front end: 23.2 ms frames, 96 HTK bands


class SfxNetMissing(FeatureNetUnavailable):
    """The aisfx package (and so its weights) is not installed, or its checkpoint is unreadable."""


# ---------------------------------------------------------------------------------------------
# Loading the checkpoint safely.
# ---------------------------------------------------------------------------------------------
def checkpoint_path() -> Path:
    """<site-packages>/aisfx/models/checkpoint.pth, found without importing aisfx's own code."""
    spec = importlib.util.find_spec("aisfx")
    if spec is None or not spec.submodule_search_locations:
        raise SfxNetMissing(f"the aisfx package is not installed; install it with `{PIP_INSTALL}` "
                            f"(or use --features vgg with VGGish weights)")
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / "checkpoint.pth"
    if not path.is_file():
        raise SfxNetMissing(f"aisfx is installed but {path} is missing; reinstall with `{PIP_INSTALL}`")
    return path


def _numpy_safe_globals() -> list:
    """Exactly the non-torch globals the aisfx pickle references: the dataset dict holds numpy int64
    scalars, pickled as numpy.core.multiarray.scalar(dtype('int64'), bytes). numpy 2 moved `scalar` to
    numpy._core, so it is allow-listed under the name the pickle uses."""
    try:
        from numpy._core.multiarray import scalar          # numpy >= 2
    except ImportError:                                     # numpy 1.x
        from numpy.core.multiarray import scalar
    return [(scalar, "numpy.core.multiarray.scalar"), np.dtype, type(np.dtype(np.int64))]


def load_state(path: str | Path | None = None) -> dict[str, torch.Tensor]:
    """The CNN's weights from aisfx's checkpoint: keys `conv_block{1..4}.{conv1,bn1,conv2,bn2}.*`
    (the `embedding_net.` prefix stripped; its per-library classifier heads `fc.*` are dropped)."""
    path = Path(path) if path is not None else checkpoint_path()
    try:
        with torch.serialization.safe_globals(_numpy_safe_globals()):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise SfxNetMissing(f"{path} is not a readable aisfx checkpoint ({type(e).__name__}: {e}); "
                            f"reinstall with `{PIP_INSTALL}`") from e
    if not (isinstance(obj, (tuple, list)) and len(obj) == 2 and isinstance(obj[0], dict)):
        raise SfxNetMissing(f"{path} is not the aisfx (state dict, datasets) tuple")
    prefix = "embedding_net."
    return {k[len(prefix):]: v for k, v in obj[0].items() if k.startswith(prefix)}


def input_stats_from_bn(state: dict[str, torch.Tensor]) -> tuple[float, float]:
    """Mean and std of the network's training input, inferred from conv1 and bn1 of block 1.

    E[conv_c] = E[x] sum(w_c)  -> least squares over channels for E[x];
    var_c = a (sum w_c)^2 + b |w_c|^2 (correlated + white input parts) -> least squares for a, b;
    var(x) = a + b.
    """
    w = state["conv_block1.conv1.weight"][:, 0].double()                      # (64, 3, 3)
    rm = state["conv_block1.bn1.running_mean"].double()                       # (64,)
    rv = state["conv_block1.bn1.running_var"].double()                        # (64,)
    s = w.sum(dim=(1, 2))                                                     # (64,)
    mean = float(s @ rm / (s @ s))
    design = torch.stack([s ** 2, (w ** 2).sum(dim=(1, 2))], dim=1)           # (64, 2)
    a, b = torch.linalg.lstsq(design, rv[:, None]).solution[:, 0].tolist()
    return mean, float(max(a + b, 0.0) ** 0.5)


# ---------------------------------------------------------------------------------------------
# The network (key layout of aisfx's EmbeddingNet, so its state dict loads strictly).
# ---------------------------------------------------------------------------------------------
class SfxBlock(nn.Module):
    """(3x3 conv, no bias - BN - ReLU) x 2, then an optional 2x2 max-pool."""

    def __init__(self, cin: int, cout: int, pool: bool):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.pool = pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return F.max_pool2d(x, 2) if self.pool else x          # floor: 25 -> 12 in time


class SfxCNN(nn.Module):
    """The 9-layer CNN: (B, 1, T, F) -> four block outputs."""

    def __init__(self):
        super().__init__()
        chans = (1,) + STAGE_CHANNELS
        for i in range(4):
            self.add_module(f"conv_block{i + 1}", SfxBlock(chans[i], chans[i + 1], pool=i < 3))

    def blocks(self) -> list[SfxBlock]:
        return [self.conv_block1, self.conv_block2, self.conv_block3, self.conv_block4]


class SfxFeatures(FeatureNet):
    """aisfx's four conv blocks as projector stages; `adapt` puts our mel into its input range.

    Two ways (`adapter`), compared in docs/results.md's ablation:
    - None ("affine"): x = AISFX_INPUT_MEAN + AISFX_INPUT_STD * z on our own 64 x 10 ms grid;
    - a GridAdapter ("grid", the default for training): our mel re-gridded onto its 96 HTK bands over
      0-22.05 kHz at 23.2 ms frames (standins/adapter.py), then x = a + b * raw, with (a, b) fitted so that the
      data set lands at the same input mean and std (`fit_level_map`).
    """

    name = "aisfx"
    stage_channels = STAGE_CHANNELS

    def __init__(self, cnn: SfxCNN | None = None, adapter: GridAdapter | None = None):
        super().__init__()
        self.cnn = cnn if cnn is not None else SfxCNN()
        self.grid = adapter
        if adapter is not None:
            a, b = fit_level_map(adapter, AISFX_INPUT_MEAN, AISFX_INPUT_STD)
            self.register_buffer("level", torch.tensor([a, b], dtype=torch.float32))   # x = a + b * raw

    def adapt(self, mel: torch.Tensor) -> torch.Tensor:
        """(B, 1, T, 64) standardised log10 mel -> its [0, 1]-scaled input (B, 1, T', F')."""
        if self.grid is None:
            return AISFX_INPUT_MEAN + AISFX_INPUT_STD * mel                # (B, 1, T, 64)
        a, b = self.level.to(mel.dtype)
        return a + b * self.grid(mel)                                      # (B, 1, T'=0.43 T, F'=96)

    def stages(self, mel: torch.Tensor) -> list[torch.Tensor]:
        x, out = self.adapt(mel), []                           # (B, 1, T=100, F=64)
        for block in self.cnn.blocks():
            x = block(x)                                       # 50x32, 25x16, 12x8, 12x8
            out.append(x)
        return out

    def embed(self, mel: torch.Tensor) -> torch.Tensor:
        """(B, 1, T, 64) standardised mel -> (B, 512): aisfx's own pooling of block 4,
        mean over frequency then max over time."""
        return self.stages(mel)[-1].mean(dim=3).amax(dim=2)   # (B, 512, T4, F4) -> (B, 512, T4) -> (B, 512)


def load_sfxnet(path: str | Path | None = None) -> SfxFeatures:
    """The pre-trained network (eval mode, CPU) from the installed aisfx wheel (or `path`)."""
    cnn = SfxCNN()
    cnn.load_state_dict(load_state(path), strict=True)
    return SfxFeatures(cnn).eval()


def native_grid_adapter(mean=None, std=None) -> GridAdapter:
    """Our mel -> aisfx's native grid: 96 HTK bands over 0-22.05 kHz, hop 1024 at 44.1 kHz."""
    return GridAdapter(htk_centres_hz(NATIVE_MELS, 0.0, NATIVE_SR / 2), NATIVE_HOP / NATIVE_SR, mean, std)


def build_feature_net(ctx) -> SfxFeatures:
    """Registry builder ('aisfx'): ctx.adapter 'grid' (with the data set's stats) or 'affine'.
    featurenet.build moves and freezes it."""
    net = load_sfxnet()
    if ctx.adapter == "grid":
        net = SfxFeatures(net.cnn, native_grid_adapter(ctx.mel_mean, ctx.mel_std))
    return net


# ---------------------------------------------------------------------------------------------
# The offline FAD stand-in's embedding (docs/design.md §7: label results as "FAD (aisfx)", not FAD).
# ---------------------------------------------------------------------------------------------
@torch.no_grad()
def embed_audio(model: SfxFeatures, audio: np.ndarray | torch.Tensor, mean, std,
                batch_size: int = 256) -> torch.Tensor:
    """(N, S) float32 16 kHz audio -> (N * C, 512) on CPU, one embedding per 1-s chunk (C = S // 16000;
    2 for a loop, like VGGish's two 0.96-s windows; a partial last second is dropped).

    Path: pjloop's log_mel -> standardise with (mean, std) -> adapt -> block 4 -> aisfx pooling: the
    exact input the discriminator's feature network sees. Pass the SAME (mean, std) for real and
    generated audio -- the training set's stats (stats.npz, also inside every GAN checkpoint) -- so the
    two sets are embedded by one fixed function.
    """
    device = next(model.parameters()).device
    x = torch.as_tensor(np.asarray(audio, dtype=np.float32)) if not isinstance(audio, torch.Tensor) \
        else audio.float()
    if x.dim() != 2:
        raise ValueError(f"embed_audio expects (N, samples) audio, got shape {tuple(x.shape)}")
    mean = torch.as_tensor(np.asarray(mean, dtype=np.float32))
    std = torch.as_tensor(np.asarray(std, dtype=np.float32))
    if mean.shape != (N_MELS,) or std.shape != (N_MELS,):
        raise ValueError(f"mean and std must be per-mel-band ({N_MELS},), got {tuple(mean.shape)}, {tuple(std.shape)}")
    z = to_gan(log_mel(x.cpu()), mean, std)                               # (N, 1, T, F=64)
    chunks = z.shape[2] // CHUNK_FRAMES
    if chunks == 0:
        raise ValueError(f"need at least 1 s of audio ({CHUNK_FRAMES} frames), got {z.shape[2]} frames")
    z = z[:, :, : chunks * CHUNK_FRAMES].reshape(x.shape[0] * chunks, 1, CHUNK_FRAMES, N_MELS)
    # (N*C, 1, 100, 64): the 1-second chunks, those of clip 0 first
    out = [model.embed(z[i:i + batch_size].to(device)).float().cpu() for i in range(0, len(z), batch_size)]
    return torch.cat(out)                                                 # (N*C, 512)
