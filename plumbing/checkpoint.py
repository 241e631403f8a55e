"""Checkpoints that survive crashes: atomic save, safe load (used by train.py, scnn.py, melgan.py).

Save: `torch.save` to a temporary file in the same directory, fsync, then `os.replace` onto the real
name. A kill at any moment leaves either the old checkpoint or the new one, never half a file.

Load: always `torch.load(..., weights_only=True)` -- a checkpoint is data, never code. So checkpoints
hold only tensors, numbers, strings, lists and dicts (configs are stored as `dataclasses.asdict`).
A truncated or foreign file, or a crafted pickle (refused before any of it runs), gives a one-line
`CheckpointError` that names the file and the reason; the CLIs print it and exit non-zero.

Interrupt: `StopRequest` turns Ctrl-C and SIGTERM into a request that the training loop honours after the
current step, so the checkpoint it then writes holds whole steps only.
"""
from __future__ import annotations

import os
import pickle
import signal
import threading
import warnings
from pathlib import Path

import torch

from plumbing.files import atomic_write


class CheckpointError(RuntimeError):
    """A checkpoint file that is missing, truncated, or not what the caller expected."""


def save_checkpoint(obj: dict, path: str | Path) -> None:
    """Atomically write `obj` (tensors, numbers, strings, lists, dicts) to `path`."""
    def _write(tmp):
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
    atomic_write(path, _write)


def tensor_bytes(obj) -> int:
    """Bytes of every tensor in a (nested) checkpoint: about its size on disk, before it is first written."""
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(tensor_bytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(tensor_bytes(v) for v in obj)
    return 0


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu",
                    required: tuple[str, ...] = ()) -> dict:
    """Safely load a checkpoint written by `save_checkpoint`; check it has the `required` keys."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        with warnings.catch_warnings():     # torch warns about foreign pickle protocols; the error says enough
            warnings.simplefilter("ignore")
            obj = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:   # truncated zip, pickle of code objects, not a torch file at all, ...
        raise CheckpointError(f"{path} is not a readable pjloop checkpoint: {_load_failure(e)}") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path} holds a {type(obj).__name__}, not a checkpoint dict")
    missing = [k for k in required if k not in obj]
    if missing:
        raise CheckpointError(f"{path} lacks {missing}: it is not the kind of checkpoint expected here")
    return obj


def _load_failure(e: Exception) -> str:
    """torch.load's error in one line: why the file was refused (torch's own messages run to ten lines)."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    if isinstance(e, pickle.UnpicklingError):     # weights_only met something that is not plain data
        detail = next((line for line in lines if "unsupported" in line.lower()), lines[-1] if lines else "")
        return f"it holds Python objects or code, not only tensors and plain data: refused, none of it ran ({detail})"
    if isinstance(e, EOFError) or "zip archive" in str(e) or "central directory" in str(e):
        return "the file is empty, truncated or corrupt (not a complete torch zip archive)"
    return f"not a torch checkpoint ({type(e).__name__}: {lines[0] if lines else 'no detail'})"


class StopRequest:
    """Ctrl-C (SIGINT) and SIGTERM only ask the loop to stop after the current step, so the checkpoint
    written then holds whole steps and --resume stays exact. A second Ctrl-C stops at once (no save:
    the last checkpoint stays as it was). Call `restore()` when the loop is over."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.requested = False
        on_main = threading.current_thread() is threading.main_thread()   # signals can only be set there
        self.previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS} if on_main else {}

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def restore(self) -> None:
        for s, handler in self.previous.items():
            signal.signal(s, handler)


def rng_state(gen: torch.Generator) -> dict:
    """Every random-number state a training run draws from: torch's global one (noise inputs, style mixing),
    the run's own generator (latents and batch indices) and CUDA's. Saved so a resume is exact."""
    state = {"torch": torch.get_rng_state(), "sampler": gen.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(gen: torch.Generator, state: dict) -> None:
    """Inverse of `rng_state`."""
    torch.set_rng_state(state["torch"])
    gen.set_state(state["sampler"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
