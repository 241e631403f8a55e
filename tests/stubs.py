"""Shared test helpers: stand-in feature networks for the projector and discriminator tests, `run_cli`, and
`full_disk` (every write fails as on a full disk).

Tiny conv stacks with the real networks' stage SIZES (VGGish max-pool floors, SCNN stride-2 convs, aisfx's
unpooled fourth block), so those tests are fast and need no weights. A BatchNorm up front lets the tests
check that a frozen net stays in eval mode.
"""
import errno
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dataset import REPO, finalize_dataset, save_loop
from featurenet import FeatureNet
from mel import LOOP_SAMPLES, SR, log_mel, to_gan


class StubNet(FeatureNet):
    """`kind` picks the downsampling: 'vgg' 2x2 max-pool after every stage (floors: 50x32, 25x16, 12x8, 6x4),
    'scnn' stride-2 3x3 convs with padding 1 (ceil: 50x32, 25x16, 13x8, 7x4), 'aisfx' no pool after the
    fourth stage (12x8 twice)."""

    def __init__(self, kind: str = "vgg", channels=(8, 16, 32, 32)):
        super().__init__()
        self.name, self.kind, self.stage_channels = f"stub_{kind}", kind, tuple(channels)
        self.bn = nn.BatchNorm2d(1)
        ins = (1,) + tuple(channels[:-1])
        stride = 2 if kind == "scnn" else 1
        self.convs = nn.ModuleList(nn.Conv2d(i, o, 3, stride=stride, padding=1) for i, o in zip(ins, channels))

    def stages(self, x):
        x, out = self.bn(self.adapt(x)), []
        for i, conv in enumerate(self.convs):
            x = torch.relu(conv(x))
            if self.kind == "vgg" or (self.kind == "aisfx" and i < 3):
                x = F.max_pool2d(x, 2)
            out.append(x)
        return out


def stub(kind="vgg", **kw):
    """A frozen StubNet."""
    return StubNet(kind, **kw).freeze()


def random_mel(b: int, seed: int = 0) -> torch.Tensor:
    """A reproducible standardised-mel stand-in (B, 1, T=200, F=64)."""
    return torch.randn(b, 1, 200, 64, generator=torch.Generator().manual_seed(seed))


def run_cli(*args, cwd) -> str:
    """Run a pjloop command-line tool as a user types it (`python tool.py ...`) and return its output;
    a non-zero exit fails the test with the tail of both streams."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}       # `-m demo.loops` from any folder, as README's commands run
    res = subprocess.run([sys.executable, *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True,
                         timeout=900)
    assert res.returncode == 0, f"{args[0]} failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res.stdout + res.stderr


def noise_loop_set(data_dir, n: int):
    """A data set of n 2-s loops of quiet white noise, one genre: enough for the evaluation code paths.
    -> the set's per-band (mean, std)."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        save_loop(data_dir, f"l{i}", (0.1 * rng.standard_normal(LOOP_SAMPLES)).astype(np.float32))
        rows.append({"id": f"l{i}", "source": "t", "bar": 0, "bpm": 120, "genre": "g"})
    return finalize_dataset(data_dir, rows, [])


def tone_mel(freq_hz: float) -> torch.Tensor:
    """A 2-s pure tone as an unstandardised GAN-layout mel (1, 1, T=200, F=64)."""
    t = np.arange(LOOP_SAMPLES) / SR
    return to_gan(log_mel(np.sin(2 * np.pi * freq_hz * t).astype(np.float32)), np.zeros(64), np.ones(64))


def full_disk(monkeypatch, after: int = 0) -> list:
    """The disk fills up: every atomic write (plumbing.files.atomic_write, checkpoints included) after the
    first `after` starts its temporary file, writes a few bytes and fails with OSError ENOSPC, as a full disk
    does. -> the list of paths asked for, so a test can see how far it got."""
    from plumbing import checkpoint, files
    real, asked = files.atomic_write, []

    def atomic_write(path, write_fn):
        asked.append(path)
        if len(asked) <= after:
            return real(path, write_fn)

        def half_then_full(tmp):
            with open(tmp, "wb") as f:
                f.write(b"half a file")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(path, half_then_full)
    monkeypatch.setattr(files, "atomic_write", atomic_write)
    monkeypatch.setattr(checkpoint, "atomic_write", atomic_write)
    return asked


def temporary_files(folder) -> list:
    """What atomic_write leaves behind if it fails to clean up: .<name>.*.tmp files anywhere under `folder`."""
    return sorted(str(p) for p in Path(folder).rglob(".*.tmp"))
