"""Past one GPU: what train.py needs from torchrun and PyTorch's DistributedDataParallel.

Not in the paper (which trained on one GPU); the rules follow StyleGAN2-ADA and Projected GAN.

    torchrun --nproc_per_node=8 train.py --loops drum --features vgg,scnn_loop

Without torchrun's RANK / WORLD_SIZE the run is a world of one and nothing here communicates. With them:
G and D in DDP (D's frozen parts never take part), --batch is the global batch, each rank has its own seeded
streams, D's batch-norm statistics stay per rank, G's w_avg is averaged, decisions (stop, time limit, NaN)
are taken together, rank 0 alone writes, and a failure on one rank stops all. Each rule and why:
docs/modules.md, "plumbing/distributed.py". Test hook: PJLOOP_DIST_REPORT=DIR (`report`).
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

REPORT_ENV = "PJLOOP_DIST_REPORT"
BN_STATS = ("running_mean", "running_var", "num_batches_tracked")   # per-rank by design (see above)
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
WRITE_EVENTS = {"os.mkdir": 0, "os.rename": 1, "os.remove": 0, "os.rmdir": 0}   # audit event -> path argument


@dataclass(frozen=True)
class World:
    """This process's place in the run: rank (0 .. size-1), its local rank on the node, its device."""
    rank: int = 0
    size: int = 1
    local_rank: int = 0
    device: str = "cpu"

    @property
    def main(self) -> bool:
        """Rank 0: the one that writes files and prints."""
        return self.rank == 0


class PeerFailed(RuntimeError):
    """Another rank failed (its own message says why); raised so that this rank does not wait for it."""


def env_rank() -> int:
    """The rank torchrun announced (0 without torchrun); readable before `init`."""
    return int(os.environ.get("RANK", 0))


def init(device: str) -> World:
    """Join the process group torchrun describes (NCCL on CUDA, gloo on the CPU), or a world of one without
    torchrun. On CUDA each rank takes the GPU of its local rank. Idempotent: an existing group is reused."""
    size = int(os.environ.get("WORLD_SIZE", 1))
    if size > 1:
        local_rank = int(os.environ["LOCAL_RANK"])
        cuda = torch.device(device).type == "cuda"
        if cuda:
            torch.cuda.set_device(local_rank)
            device = f"cuda:{local_rank}"
        if not dist.is_initialized():
            dist.init_process_group("nccl" if cuda else "gloo")
        world = World(dist.get_rank(), dist.get_world_size(), local_rank, device)
    else:
        world = World(device=device)
    if os.environ.get(REPORT_ENV):
        _watch_writes()
    return world


def close() -> None:
    """Leave the process group (if any): the last thing a torchrun worker does."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def leave(message: str | None = None) -> None:
    """End a CLI: `message` (one line on stderr) means exit status 1, None means 0. Leaves the process group.

    A torchrun worker then ends with os._exit, after flushing its streams: at interpreter exit PyTorch's C++
    teardown of the gloo group sometimes aborts with "terminate called without an active exception" (about 1
    run in 15 with torch 2.13 on the CPU, after destroy_process_group has returned), which would add a second
    line and turn a clean exit into SIGABRT. Everything worth keeping was saved and closed before this point.
    """
    close()
    if message is not None:
        print(message, file=sys.stderr)
    if int(os.environ.get("WORLD_SIZE", 1)) > 1:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0 if message is None else 1)
    sys.exit(0 if message is None else 1)


def local_batch(batch: int, world: World) -> int:
    """This rank's share of the global --batch; a batch that does not divide is refused."""
    if batch < 1 or batch % world.size:
        raise ValueError(f"--batch {batch} is the global batch, split evenly over the {world.size} processes: "
                         f"give a positive multiple of {world.size}")
    return batch // world.size


def rank_seed(seed: int, rank: int, step: int = 0) -> int:
    """The seed of one rank's random streams (batch indices, latents, noise inputs) from `step` on. Mixed by
    NumPy's SeedSequence, so ranks and nearby seeds get unrelated streams."""
    return int(np.random.SeedSequence([seed, rank, step]).generate_state(1)[0])


def wrap(module: nn.Module, world: World) -> nn.Module:
    """`module` in DistributedDataParallel; the module itself in a world of one.

    find_unused_parameters=False: every trainable parameter gets a gradient in every backward through the
    wrapper (train.py calls G's wrapper only in the G step and D's only in the D step).
    forward_sync_buffers=False (torch < 2.13: broadcast_buffers=False): buffers are made equal once, when
    wrapped, and never broadcast again (per-rank batch-norm statistics, see the module docstring)."""
    if world.size == 1:
        return module
    ids = [world.local_rank] if torch.device(world.device).type == "cuda" else None
    return DistributedDataParallel(module, device_ids=ids, forward_sync_buffers=False, find_unused_parameters=False)


# ------------------------------------------------------------------------------------------------
# Small collectives: each is free in a world of one, and every rank must call it at the same point.
# ------------------------------------------------------------------------------------------------

def _comm_device(world: World) -> torch.device:
    return torch.device(world.device) if torch.device(world.device).type == "cuda" else torch.device("cpu")


def agree(world: World, stop: bool, seconds: float) -> tuple[bool, float]:
    """One all-reduce per step: did any rank get Ctrl-C / SIGTERM, and rank 0's training clock (the others
    add 0), so every rank takes the same stop, time-limit and snapshot decisions."""
    if world.size == 1:
        return stop, seconds
    t = torch.tensor([float(stop), seconds if world.main else 0.0], dtype=torch.float64, device=_comm_device(world))
    dist.all_reduce(t)                                   # (2,): [ranks asking to stop, rank 0's seconds]
    return bool(t[0] > 0), float(t[1])


def all_true(world: World, flag: bool) -> bool:
    """True on every rank when `flag` is true on every rank."""
    if world.size == 1:
        return flag
    t = torch.tensor([0.0 if flag else 1.0], device=_comm_device(world))
    dist.all_reduce(t)                                   # (1,): how many ranks said no
    return t.item() == 0


def any_true(world: World, flag: bool) -> bool:
    """True on every rank when `flag` is true on some rank."""
    return not all_true(world, not flag)


def average_(world: World, tensors: list[torch.Tensor]) -> None:
    """Replace each tensor by its mean over the ranks, in place (the same bits on every rank)."""
    if world.size == 1:
        return
    for t in tensors:
        dist.all_reduce(t)
        t.div_(world.size)


def gather(world: World, obj) -> list:
    """Every rank's small picklable `obj` (an RNG state), in rank order, on every rank."""
    if world.size == 1:
        return [obj]
    out = [None] * world.size
    dist.all_gather_object(out, obj)
    return out


def barrier(world: World) -> None:
    """Wait until every rank gets here (benchmark timing)."""
    if world.size > 1:
        dist.barrier()


def _attempt(fn):
    try:
        return fn(), None
    except Exception as e:     # re-raised below, after the other ranks have heard of it
        return None, e


def _fail_together(world: World, error: Exception | None) -> None:
    everyone_ok = all_true(world, error is None)
    if error is not None:
        raise error
    if not everyone_ok:
        raise PeerFailed(f"rank {world.rank} stops: another rank failed (its message says why)")


def together(world: World, fn):
    """fn() on every rank; if it fails on any rank it fails on all (their own error, or PeerFailed)."""
    if world.size == 1:
        return fn()
    result, error = _attempt(fn)
    _fail_together(world, error)
    return result


def main_first(world: World, fn):
    """fn() on rank 0, then on the other ranks, which find the caches rank 0 filled; fails on all if it fails
    anywhere."""
    if world.size == 1:
        return fn()
    result, error = _attempt(fn) if world.main else (None, None)
    _fail_together(world, error)
    if not world.main:
        result, error = _attempt(fn)
    _fail_together(world, error)
    return result


# ------------------------------------------------------------------------------------------------
# Test hook (PJLOOP_DIST_REPORT)
# ------------------------------------------------------------------------------------------------

_writes: set[str] = set()
_watching = False


def _audit(event: str, args: tuple) -> None:
    if event == "open":                                   # (path, mode, flags): builtins.open and os.open
        path, _, flags = args
        if isinstance(path, (str, bytes, os.PathLike)) and flags & WRITE_FLAGS:
            _writes.add(os.fsdecode(path))
    elif event in WRITE_EVENTS:
        _writes.add(os.fsdecode(args[WRITE_EVENTS[event]]))


def _watch_writes() -> None:
    """Record every path this process opens for writing, makes, renames onto or removes (Python's audit hooks)."""
    global _watching
    if not _watching:
        sys.addaudithook(_audit)
        _watching = True


def state_hashes(state: dict[str, torch.Tensor]) -> tuple[str, str]:
    """(hash of the weights and buffers, hash of the batch-norm running statistics) of a state dict."""
    weights, bn = hashlib.sha1(), hashlib.sha1()
    for name in sorted(state):
        h = bn if name.endswith(BN_STATS) else weights
        h.update(name.encode())
        h.update(state[name].detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return weights.hexdigest(), bn.hexdigest()


def report(world: World, step: int, models: dict[str, nn.Module]) -> None:
    """Write DIR/rank<k>.json when PJLOOP_DIST_REPORT=DIR is set (tests); nothing otherwise."""
    folder = os.environ.get(REPORT_ENV)
    if not folder:
        return
    hashes = {}
    for name, m in models.items():
        hashes[name], hashes[f"{name}_bn_stats"] = state_hashes(m.state_dict())
    entry = {"rank": world.rank, "world_size": world.size, "step": step, **hashes, "writes": sorted(_writes)}
    Path(folder).mkdir(parents=True, exist_ok=True)
    (Path(folder) / f"rank{world.rank}.json").write_text(json.dumps(entry, indent=1))
