"""Which device a command uses when none is given, the precision it computes in there, and the machine in words.

Not in the paper. Every command's `--device` defaults to `default_device()`; training autocasts to bf16 on
CUDA only (`autocast_for`), so a CPU run is plain float32 and bit-for-bit repeatable.
"""
from __future__ import annotations

import os
import platform

import torch


def default_device() -> str:
    """'cuda' when PyTorch sees a GPU, else 'cpu'."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def autocast_for(device: str | torch.device):
    """A context-manager factory: bf16 autocast on CUDA, plain float32 elsewhere."""
    if torch.device(device).type == "cuda":
        return lambda: torch.autocast("cuda", dtype=torch.bfloat16)
    return lambda: torch.autocast("cpu", enabled=False)


def machine() -> str:
    """This machine in a few words: CPU model (or GPU) and core count (what every results CSV records)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    if torch.cuda.is_available():
        cpu = f"{torch.cuda.get_device_name(0)} + {cpu}"
    return f"{cpu}, {os.cpu_count()} cores"
