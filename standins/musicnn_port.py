"""PyTorch ports of the musicnn taggers: pre-trained music networks that run offline (docs/design.md §2, §7).

Credit: musicnn 0.1.0, Pons & Serra, ISMIR 2019 late-breaking demo; ISC licence; trained by the MTG,
Universitat Pompeu Fabra. The wheel's four TF-1 checkpoints (MTT_vgg, MTT_musicnn, MSD_vgg, MSD_musicnn) are
read without TensorFlow (standins/tfcheckpoint.py); the modules are our own, the architecture read as facts.

Input: 16 kHz audio -> musicnn's own log-mel (`musicnn_log_mel`: 96 bands, hop 256, log10(10000 x + 1),
taken in float32). Our wrappers take (B, 1, T, 96) native patches (time-major, NCHW). Tag probabilities
are sigmoid(logits), proved against musicnn's TensorFlow graph by tests/test_musicnn.py.
Layer by layer (VGG, musicnn) and the TF -> PyTorch layout: docs/modules.md, "standins/musicnn_port.py".
"""
from __future__ import annotations

import ast
import hashlib
import importlib.util
from pathlib import Path

import librosa
import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from featurenet import FeatureNetUnavailable
from standins.tfcheckpoint import TFCheckpointError, read_tf_checkpoint

PACKAGE = "musicnn"                                  # the installed wheel holding the checkpoints
PIP_INSTALL = "pip install --no-deps musicnn==0.1.0"  # its metadata pins numpy < 1.17 and TensorFlow
MODELS = ("MTT_vgg", "MTT_musicnn", "MSD_vgg", "MSD_musicnn")
# SHA-256 of each checkpoint's data file in musicnn 0.1.0 (the wheel's RECORD lists the same digests);
# each tensor is also checked against the CRC32C its .index stores (standins/tfcheckpoint.py).
DATA_SHA256 = {
    "MTT_vgg": "458f5c8bcecc086a3bba3dce83809df6da6e0a3560a59ddd84711bf3d5fd8303",
    "MTT_musicnn": "041f3935e981a65cea739842d30c188d3a7d2adf4410955c8668eb3de4a5acab",
    "MSD_vgg": "9683d756b8311146534f333502ebf4a2a78a3e320c54ab0411dff6186d8375fc",
    "MSD_musicnn": "8579734ee6388f799ed0def4bbd0d1fdcbeaf213ef2a9dc860917bd76a303de6",
}
DATA_FILE = ".data-00000-of-00001"  # the wheel saved with prefix '<model>/', so files are '<model>/.index', ...

# Its front end (configuration.py, extractor.py).
MUSICNN_SR = 16_000
MUSICNN_N_FFT = 512
MUSICNN_HOP = 256                    # 16 ms frames
MUSICNN_MELS = 96
MUSICNN_FMAX = MUSICNN_SR / 2        # librosa's default fmax
LOG_SCALE = 10_000.0                 # log10(10000 x + 1)
PATCH_FRAMES = 187                   # 3-s training patches: librosa.time_to_frames(3, ...) + 1
PATCH_SAMPLES = 3 * MUSICNN_SR
BN_EPS = 1e-3                        # TF's batch-norm default
N_TAGS = 50

VGG_CHANNELS = 128
VGG_POOLS = (((4, 1), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((4, 4), (4, 4)))
VGG_FLAT = VGG_CHANNELS * 2 * 1      # pool5 of a 187 x 96 patch is 2 x 1
TIMBRAL_FILTERS, TEMPORAL_FILTERS = 204, 51   # int(1.6 * 128), int(1.6 * 32)
TIMBRAL_KERNELS = ((7, 38), (7, 67))          # 7 frames x int(0.4 * 96), int(0.7 * 96) bands
TEMPORAL_KERNELS = (128, 64, 32)              # frames x 1 band
FRONT_CHANNELS = 2 * TIMBRAL_FILTERS + 3 * TEMPORAL_FILTERS   # 561
MID_FILTERS, MID_KERNEL = 64, 7
MID_CHANNELS = FRONT_CHANNELS + 3 * MID_FILTERS               # 753
PENULTIMATE = 200


class MusicnnMissing(FeatureNetUnavailable):
    """The musicnn package (and so its checkpoints) is not installed, or a checkpoint is invalid."""


# ---------------------------------------------------------------------------------------------
# Finding and checking the checkpoints in the installed wheel.
# ---------------------------------------------------------------------------------------------
def package_dir() -> Path:
    """<site-packages>/musicnn, found without importing the package (its code needs TensorFlow)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise MusicnnMissing(f"the musicnn package is not installed; install it with `{PIP_INSTALL}` "
                             f"(its checkpoints are read without TensorFlow)")
    return Path(list(spec.submodule_search_locations)[0])


def checkpoint_prefix(model: str) -> str:
    """The TF checkpoint prefix of `model` inside the wheel, after a SHA-256 check of its data file."""
    if model not in MODELS:
        raise ValueError(f"unknown musicnn model {model!r}; choose one of {MODELS}")
    folder = package_dir() / model
    data = folder / DATA_FILE
    if not data.is_file() or not (folder / ".index").is_file():
        raise MusicnnMissing(f"musicnn is installed but {folder} lacks its checkpoint; reinstall with "
                             f"`{PIP_INSTALL}`")
    digest = hashlib.sha256(data.read_bytes()).hexdigest()
    if digest != DATA_SHA256[model]:
        raise MusicnnMissing(f"{data} has SHA-256 {digest[:16]}..., not musicnn 0.1.0's "
                             f"{DATA_SHA256[model][:16]}...; reinstall with `{PIP_INSTALL}`")
    return f"{folder}/"


def tag_names(model: str) -> list[str]:
    """The 50 tags of `model` ('MTT_*': MagnaTagATune's, 'MSD_*': the Million Song Dataset's), read from
    the wheel's configuration.py as literals (no package code is run)."""
    tree = ast.parse((package_dir() / "configuration.py").read_text())
    wanted = "MTT_LABELS" if model.startswith("MTT") else "MSD_LABELS"
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == wanted for t in node.targets):
            return list(ast.literal_eval(node.value))
    raise MusicnnMissing(f"{wanted} not found in musicnn's configuration.py; reinstall with `{PIP_INSTALL}`")


# ---------------------------------------------------------------------------------------------
# musicnn's own front end.
# ---------------------------------------------------------------------------------------------
def musicnn_log_mel(audio: np.ndarray) -> np.ndarray:
    """(N, S) or (S,) 16 kHz float audio -> (N, T, 96) float32 log10(10000 mel + 1), T = 1 + S // 256:
    librosa's mel power spectrogram with musicnn's settings, rounded through float16 as its extractor does."""
    audio = np.atleast_2d(np.asarray(audio, dtype=np.float32))
    out = []
    for clip in audio:
        power = librosa.feature.melspectrogram(y=clip, sr=MUSICNN_SR, n_fft=MUSICNN_N_FFT, hop_length=MUSICNN_HOP,
                                               n_mels=MUSICNN_MELS, fmin=0.0, fmax=MUSICNN_FMAX, power=2.0,
                                               center=True, pad_mode="constant", htk=False, norm="slaney")
        out.append(np.log10(LOG_SCALE * power.T.astype(np.float16).astype(np.float32) + 1))   # (T, 96)
    return np.stack(out)


def repeat_to_patch(audio: np.ndarray) -> np.ndarray:
    """(N, S) loops -> (N, 48000): each loop repeated until it fills musicnn's 3-s training patch (a loop
    is made to repeat; 1.5 repeats of a 2-s loop)."""
    audio = np.atleast_2d(np.asarray(audio, dtype=np.float32))
    reps = -(-PATCH_SAMPLES // audio.shape[1])
    return np.tile(audio, (1, reps))[:, :PATCH_SAMPLES]


# ---------------------------------------------------------------------------------------------
# The networks (attribute names are ours; `load_musicnn` maps TF's variable names onto them).
# ---------------------------------------------------------------------------------------------
def tf_batch_norm(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS)


class MusicnnVGG(nn.Module):
    """musicnn's VGG baseline. forward: (B, 1, 187, 96) native log-mel -> (B, 50) logits."""

    def __init__(self):
        super().__init__()
        self.bn_input = tf_batch_norm(1)
        self.convs = nn.ModuleList([nn.Conv2d(1 if i == 0 else VGG_CHANNELS, VGG_CHANNELS, 3, padding=1)
                                    for i in range(len(VGG_POOLS))])
        self.bns = nn.ModuleList([tf_batch_norm(VGG_CHANNELS) for _ in VGG_POOLS])
        self.dense = nn.Linear(VGG_FLAT, N_TAGS)

    def pools(self, x: torch.Tensor, n: int = len(VGG_POOLS)) -> list[torch.Tensor]:
        """The first n pooled block outputs, pool1 first: (B, 128, T_i, F_i)."""
        x, out = self.bn_input(x), []                                   # (B, 1, T, 96)
        for conv, bn, (kernel, stride) in list(zip(self.convs, self.bns, VGG_POOLS))[:n]:
            x = F.max_pool2d(bn(F.relu(conv(x))), kernel, stride)      # BN after the ReLU, as trained
            out.append(x)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pool5 = self.pools(x)[-1]                                       # (B, 128, 2, 1)
        return self.dense(pool5.permute(0, 2, 3, 1).flatten(1))        # TF flattens (T, F, C): (B, 256) -> (B, 50)


class Musicnn(nn.Module):
    """musicnn's musically motivated CNN. forward: (B, 1, T, 96) -> (B, 50) logits; any T >= 1."""

    def __init__(self):
        super().__init__()
        self.bn_input = tf_batch_norm(1)
        self.timbral = nn.ModuleList([nn.Conv2d(1, TIMBRAL_FILTERS, k) for k in TIMBRAL_KERNELS])
        self.temporal = nn.ModuleList([nn.Conv2d(1, TEMPORAL_FILTERS, (k, 1)) for k in TEMPORAL_KERNELS])
        self.front_bns = nn.ModuleList([tf_batch_norm(TIMBRAL_FILTERS) for _ in TIMBRAL_KERNELS] +
                                       [tf_batch_norm(TEMPORAL_FILTERS) for _ in TEMPORAL_KERNELS])
        self.mid = nn.ModuleList([nn.Conv1d(c, MID_FILTERS, MID_KERNEL) for c in (FRONT_CHANNELS,) + (MID_FILTERS,) * 2])
        self.mid_bns = nn.ModuleList([nn.BatchNorm1d(MID_FILTERS, eps=BN_EPS) for _ in range(3)])
        self.bn_flat = nn.BatchNorm1d(2 * MID_CHANNELS, eps=BN_EPS)
        self.dense = nn.Linear(2 * MID_CHANNELS, PENULTIMATE)
        self.bn_dense = nn.BatchNorm1d(PENULTIMATE, eps=BN_EPS)
        self.out = nn.Linear(PENULTIMATE, N_TAGS)

    def front_end(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(B, 1, T, 96) -> five (B, C, T) maps: two timbral (204), three temporal (51); frequency max-pooled."""
        x = self.bn_input(x)
        timbral_in = F.pad(x, (0, 0, 3, 3))                             # time only: (B, 1, T + 6, 96)
        # TF 'same' padding of an even kernel k: (k - 1) // 2 frames before, k // 2 after.
        maps = [timbral_in] * len(TIMBRAL_KERNELS) + [F.pad(x, (0, 0, (k - 1) // 2, k // 2)) for k in TEMPORAL_KERNELS]
        convs = list(self.timbral) + list(self.temporal)
        return [bn(F.relu(conv(m))).amax(dim=3) for conv, bn, m in zip(convs, self.front_bns, maps)]

    def mid_end(self, front: torch.Tensor) -> list[torch.Tensor]:
        """(B, 561, T) -> [cnn1, res2, res3], each (B, 64, T); the 2nd and 3rd add their input back."""
        pad = MID_KERNEL // 2
        cnn1 = self.mid_bns[0](F.relu(self.mid[0](F.pad(front, (pad, pad)))))
        res2 = self.mid_bns[1](F.relu(self.mid[1](F.pad(cnn1, (pad, pad))))) + cnn1
        res3 = self.mid_bns[2](F.relu(self.mid[2](F.pad(res2, (pad, pad))))) + res2
        return [cnn1, res2, res3]

    def features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The extractor's named layers: timbral, temporal, cnn1-3 (B, C, T); max_pool, mean_pool (B, 753);
        penultimate (B, 200); and logits (B, 50)."""
        front = self.front_end(x)
        front_cat = torch.cat(front, dim=1)                             # (B, 561, T)
        mid = self.mid_end(front_cat)
        dense = torch.cat([front_cat] + mid, dim=1)                     # (B, 753, T): dense connection
        max_pool, mean_pool = dense.amax(dim=2), dense.mean(dim=2)      # 2 x (B, 753)
        flat = torch.stack([max_pool, mean_pool], dim=2).flatten(1)     # (B, 753, 2) -> (B, 1506), TF's order
        penultimate = self.bn_dense(F.relu(self.dense(self.bn_flat(flat))))   # (B, 200)
        return {"timbral": torch.cat(front[:2], 1), "temporal": torch.cat(front[2:], 1),
                "cnn1": mid[0], "cnn2": mid[1], "cnn3": mid[2], "max_pool": max_pool,
                "mean_pool": mean_pool, "penultimate": penultimate, "logits": self.out(penultimate)}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)["logits"]


# ---------------------------------------------------------------------------------------------
# TF variable names -> our parameters (creation order in models.py numbers TF's default names).
# ---------------------------------------------------------------------------------------------
def _tf_name(layer: str, i: int) -> str:
    """TF-1's default layer names: 'conv2d', 'conv2d_1', 'conv2d_2', ... in creation order."""
    return layer if i == 0 else f"{layer}_{i}"


def _bn(prefix: str, w: dict, name: str) -> None:
    """Map batch-norm `prefix`'s four tensors onto TF's `name`/{gamma, beta, moving_mean, moving_variance}."""
    for ours, tf in (("weight", "gamma"), ("bias", "beta"), ("running_mean", "moving_mean"),
                     ("running_var", "moving_variance")):
        w[f"{prefix}.{ours}"] = f"{name}/{tf}"


def tf_variable_map(model: str) -> dict[str, str]:
    """{our state-dict key: TF variable name} for `model`; every model variable of the checkpoint is used."""
    w: dict[str, str] = {}
    _bn("bn_input", w, "batch_normalization")
    if is_vgg(model):
        for i in range(len(VGG_POOLS)):
            w[f"convs.{i}.weight"], w[f"convs.{i}.bias"] = f"{i + 1}CNN/kernel", f"{i + 1}CNN/bias"
            _bn(f"bns.{i}", w, _tf_name("batch_normalization", i + 1))
        w["dense.weight"], w["dense.bias"] = "dense/kernel", "dense/bias"
        return w
    convs = [f"timbral.{i}" for i in range(2)] + [f"temporal.{i}" for i in range(3)] + [f"mid.{i}" for i in range(3)]
    for i, ours in enumerate(convs):                                    # conv2d, conv2d_1, ..., conv2d_7
        w[f"{ours}.weight"], w[f"{ours}.bias"] = (f"{_tf_name('conv2d', i)}/kernel", f"{_tf_name('conv2d', i)}/bias")
    bns = [f"front_bns.{i}" for i in range(5)] + [f"mid_bns.{i}" for i in range(3)] + ["bn_flat", "bn_dense"]
    for i, ours in enumerate(bns):                                      # batch_normalization_1 ... _10
        _bn(ours, w, _tf_name("batch_normalization", i + 1))
    w["dense.weight"], w["dense.bias"] = "dense/kernel", "dense/bias"
    w["out.weight"], w["out.bias"] = "dense_1/kernel", "dense_1/bias"
    return w


def tf_to_torch(value: np.ndarray, shape: torch.Size) -> torch.Tensor:
    """A TF tensor in the layout of the parameter it fills: HWIO -> OIHW (Conv2d), (k, in, 1, out) ->
    (out, in, k) (a conv over the full channel axis is our Conv1d), (in, out) -> (out, in) (Linear)."""
    t = torch.from_numpy(np.ascontiguousarray(value))
    if t.dim() == 4 and len(shape) == 4:
        t = t.permute(3, 2, 0, 1)                                       # (kh, kw, in, out) -> (out, in, kh, kw)
    elif t.dim() == 4 and len(shape) == 3:
        t = t[:, :, 0, :].permute(2, 1, 0)                              # (k, C, 1, out) -> (out, C, k)
    elif t.dim() == 2:
        t = t.t()                                                       # (in, out) -> (out, in)
    if tuple(t.shape) != tuple(shape):
        raise MusicnnMissing(f"checkpoint tensor of shape {tuple(value.shape)} does not fit {tuple(shape)}")
    return t.contiguous()


def is_vgg(model: str) -> bool:
    return model.endswith("_vgg")


def build_network(model: str) -> nn.Module:
    """An untrained port of `model`'s architecture."""
    return MusicnnVGG() if is_vgg(model) else Musicnn()


def load_musicnn(model: str) -> nn.Module:
    """A pre-trained port (eval mode, CPU) of `model`, one of MODELS, from the installed wheel."""
    prefix = checkpoint_prefix(model)
    try:
        tf_vars = read_tf_checkpoint(prefix)
    except TFCheckpointError as e:
        raise MusicnnMissing(f"{model}: {e}; reinstall with `{PIP_INSTALL}`") from e
    net = build_network(model)
    mapping = tf_variable_map(model)
    unused = set(tf_vars) - set(mapping.values())
    if unused or set(mapping.values()) - set(tf_vars):
        raise MusicnnMissing(f"{model}: checkpoint variables do not match the port "
                             f"(unused {sorted(unused)[:3]}, missing {sorted(set(mapping.values()) - set(tf_vars))[:3]})")
    own = net.state_dict()
    state = {k: tf_to_torch(tf_vars[v], own[k].shape) for k, v in mapping.items()}
    state.update({k: v for k, v in own.items() if k.endswith("num_batches_tracked")})
    net.load_state_dict(state, strict=True)
    return net.eval()


@torch.no_grad()
def tag_probabilities(net: nn.Module, patches: torch.Tensor | np.ndarray) -> torch.Tensor:
    """(B, T, 96) or (B, 1, T, 96) native log-mel patches -> (B, 50) tag probabilities, sigmoid(logits)."""
    x = torch.as_tensor(np.asarray(patches, dtype=np.float32)) if not isinstance(patches, torch.Tensor) else patches
    if x.dim() == 3:
        x = x[:, None]                                                  # (B, T, 96) -> (B, 1, T, 96)
    return torch.sigmoid(net(x.to(next(net.parameters()).device)))
