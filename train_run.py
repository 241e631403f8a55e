"""A training run of train.py: its models, optimisers, step, clock and RNG, its folder and its checkpoints.

Not in the paper: the machinery around its loop. `Run.open` sets a run up (data and feature networks on rank 0
first under torchrun, then the models) and applies the resume rules; `state()` is the checkpoint (G, D, EMA,
both optimisers, step, training seconds, one RNG state per rank, mel statistics, features, config);
`save()` checks the frozen parts and the weights first, then rank 0 writes atomically; `Clock` counts
--minutes and timed snapshots. Resuming under the same number of processes continues bit for bit; under
another, weights, optimisers, EMA, step and clock continue but each rank's random streams restart from
distributed.rank_seed(seed, rank, step) (docs/training.md, "Resuming").
"""
from __future__ import annotations

import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

import featurenet
import losses
import train_scnn
from dataset import LoopMelDataset, sources_of, split_ids
from demo.loops import ensure_demo_set
from discriminator import ProjectedDiscriminator, StyleGAN2Discriminator, frozen_fingerprint, trainable_parameters
from featurenet import FeatureContext
import conditional
from augment import parse_policy
from generator import BEFORE_KEY, Generator, GeneratorConfig, make_ema
from mel import from_gan
from plumbing import distributed, paths
from plumbing.checkpoint import (CheckpointError, load_checkpoint, rng_state, save_checkpoint, set_rng_state,
                                 tensor_bytes)
from plumbing.files import checkpoint_safe_line, on_disk_full
from plumbing.distributed import World
from projector import PROJECTOR_SEED
from plumbing.page import save_mel_grid

# Adam's learning-rate ratios (StyleGAN2's lazy regularisation): D's R1 runs every 16 steps in a step of its own,
# so D gets 16/17 (the authors keep it in the projected runs too). G: the authors' StyleGAN2-ADA setup scales G's
# lr and beta2 by its path-length interval's 4/5 although the regulariser is off (pl_weight 0): we follow their
# code (lr 0.0016, beta2 0.992) rather than StyleGAN2's ratio 1 without a G regulariser.
G_LAZY, D_LAZY = losses.lazy_ratio(losses.PL_INTERVAL), losses.lazy_ratio(losses.R1_INTERVAL)
ADAM_BETA2 = 0.99                 # StyleGAN2's Adam betas are (0, 0.99), raised to the lazy ratio
MEMORY_FORMAT = torch.channels_last   # NHWC: oneDNN's fast path on the CPU (docs/benchmarks.md: 14-28 % more
                                      # steps/s, the same math) and bf16 tensor cores' on CUDA
N_GRID = 16                       # fixed-seed EMA samples in each grid PNG
GRID_SEED = 1234                  # the same latents in every grid, so grids show progress, not new samples
IDENTITY_KEYS = ("loops", "features", "g_channels", "d_channels", "csm_kernel", "csm_upsample", "seed",
                 "adapter", "batch_stats", "fuse_logits", "conditional",
                 "genre_shift", "split")          # what a resumed run must share


def run_dir(cfg, names: list[str]) -> Path:
    """--out as typed, or <$PJLOOP_HOME>/runs/<loops>_<features> (<loops>_stylegan2 for the baseline),
    whatever the current directory (plumbing/paths.py)."""
    return Path(cfg.out) if cfg.out else paths.runs() / f"{cfg.loops}_{'_'.join(names) or 'stylegan2'}"


def build_discriminator(cfg, names: list[str], nets: dict, c_dim: int = 0) -> torch.nn.Module:
    """c_dim > 0: every head (and the baseline's last layer) conditioned on the genre (--conditional yes)."""
    if not names:
        return StyleGAN2Discriminator(max_channels=cfg.d_channels, c_dim=c_dim)
    # The random CCM/CSM projection is part of the model: one fixed seed (docs/design.md §3), not --seed.
    return ProjectedDiscriminator([nets[n] for n in names], seed=PROJECTOR_SEED, csm_kernel=cfg.csm_kernel,
                                  upsample=cfg.csm_upsample, fuse_logits=cfg.fuse_logits, c_dim=c_dim)


def build_feature_nets(cfg, names: list[str], data: LoopMelDataset, device: str, built: dict | None = None) -> dict:
    """The frozen networks of --features (`built`: those already built). scnn_loop is trained first when it
    does not exist yet: explicitly, here, with an announcement (train_scnn.py), never inside the lookup."""
    ctx = FeatureContext(loops=cfg.loops, data_dir=cfg.data, device=device, vggish_path=cfg.vggish,
                         mel_mean=data.mean, mel_std=data.std, adapter=cfg.adapter, batch_stats=cfg.batch_stats)
    if "scnn_loop" in names:
        train_scnn.ensure_loop_classifier(cfg.loops, cfg.data, ckpt_dir=ctx.ckpt_dir, device=device)
    built = built or {}
    return {n: built[n] if n in built else featurenet.build(n, ctx) for n in names}


def prepare(cfg, names: list[str], device: str) -> tuple[object, LoopMelDataset, dict]:
    """The data set and the feature networks: all the set-up that may fill a cache (VGGish weights, the
    demo set, scnn_loop), so that under torchrun rank 0 does it first (distributed.main_first)."""
    built = {}
    if "vgg" in names:   # missing VGGish weights must stop us before any other work is done (it needs no data)
        built["vgg"] = featurenet.build("vgg", FeatureContext(device=device, vggish_path=cfg.vggish,
                                                            batch_stats=cfg.batch_stats))
    if cfg.data is None:
        cfg = replace(cfg, data=str(ensure_demo_set(cfg.loops)))
    # --split train: G never sees the held-out 20 % of source files, so evaluate.py can score against them.
    data = LoopMelDataset(cfg.data, ids=split_ids(cfg.data, "train") if cfg.split == "train" else None)
    conditional.genres_for_training(data, cfg.conditional)   # an unlabelled set stops here, before any training
    return cfg, data, build_feature_nets(cfg, names, data, device, built)


def check_finite(which: str, loss: torch.Tensor, step: int, out: Path, world: World) -> None:
    """Stop before a NaN/inf reaches the weights (on every rank, if it is on any); the last good checkpoint
    stays as it was."""
    if not distributed.all_true(world, bool(torch.isfinite(loss))):
        raise FloatingPointError(f"non-finite {which} loss (rank {world.rank}: {loss.item()}) at step {step}: "
                                 f"stopping; the last good checkpoint {out / 'latest.pt'} is left as it was "
                                 f"(try a lower --lr or another --seed)")


class Run:
    """Everything that trains and is saved: models, optimisers, the step and the clock, the RNG.

    Under torchrun every rank holds a Run; G_sync and D_sync are G and D in DistributedDataParallel (G and D
    themselves in a world of one). `d_params` are D's heads: the feature networks and CCM/CSM are frozen.
    """

    def __init__(self, cfg, names: list[str], nets: dict, data: LoopMelDataset | None, world: World,
                 out: Path | None = None):
        self.cfg, self.names, self.data, self.world, self.device = cfg, names, data, world, world.device
        self.out, self.baseline = out, not names
        self.genres = conditional.genres_for_training(data, cfg.conditional)     # None: unconditional
        self.g_cfg = GeneratorConfig(max_channels=cfg.g_channels, c_dim=len(self.genres or ()),
                                     genre_shift=cfg.genre_shift)
        torch.manual_seed(cfg.seed)          # the same initial weights on every rank (and in every run of a seed)
        self.G = Generator(self.g_cfg).to(self.device)
        self.G_ema = make_ema(self.G)
        self.D = build_discriminator(cfg, names, nets, self.g_cfg.c_dim).to(self.device)
        for m in (self.G, self.G_ema, self.D):
            m.to(memory_format=MEMORY_FORMAT)
        self.d_params = trainable_parameters(self.D)       # requires_grad=False elsewhere, so DDP skips them
        self.policy = parse_policy(cfg.augment)        # --augment: the same ops on real and fake, every step
        # --ceiling-weight (not in the paper): (weight, per-band mean, std) of G's penalty on impossible mels
        self.ceiling = (None if not cfg.ceiling_weight else (cfg.ceiling_weight, *(
            torch.from_numpy(s).float().to(self.device) for s in (data.mean, data.std))))
        # Only the projected D caches, and only what does not change: no batch statistics, no augmentation.
        self.cache_real = cfg.cache_real and bool(names) and not cfg.batch_stats and not self.policy
        if self.cache_real:
            self.D.cache_real_features()
        self.G_sync, self.D_sync = distributed.wrap(self.G, world), distributed.wrap(self.D, world)
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=cfg.lr * G_LAZY, betas=(0.0, ADAM_BETA2 ** G_LAZY))
        self.opt_D = torch.optim.Adam(self.d_params, lr=cfg.lr * D_LAZY, betas=(0.0, ADAM_BETA2 ** D_LAZY))
        self.gen = torch.Generator()         # this rank's latents and batch indices: saved, so resume is exact
        self.step, self.seconds = 0, 0.0
        self.saved_step: int | None = None   # the step latest.pt holds (None: not written yet): safe on a full disk
        self.reseed()
        self.fingerprint = frozen_fingerprint(self.D)
        # What the checkpoint records of its training data: one digest per source file (dataset.source_digest),
        # so that evaluate.py can refuse a reference that shares a file with it.
        self.trained_sources = sources_of(data.data_dir, [r["id"] for r in data.rows]) if data is not None else []

    @classmethod
    def open(cls, cfg, names: list[str], world: World, resume: bool) -> "Run":
        """A new run in run_dir(cfg), or (`resume`) the one there continued. Refuses to overwrite a run
        without `resume`; under torchrun a rank that cannot read the checkpoint stops them all."""
        out = run_dir(cfg, names)
        if not resume and (out / "latest.pt").exists():
            raise CheckpointError(f"{out / 'latest.pt'} exists: pass --resume to continue that run, "
                                  "or choose another --out (nothing was overwritten)")
        cfg, data, nets = distributed.main_first(world, lambda: prepare(cfg, names, world.device))
        run = cls(cfg, names, nets, data, world, out)
        if resume and distributed.any_true(world, (out / "latest.pt").exists()):
            distributed.together(world, lambda: run.restore(out / "latest.pt"))
            if world.main:
                print(f"resumed {out / 'latest.pt'} at step {run.step} ({world.size} process(es))")
        if world.main:
            out.mkdir(parents=True, exist_ok=True)
        return run

    def reseed(self) -> None:
        """This rank's random streams (its generator and torch's global one: noise inputs, style mixing), from
        the current step: a new run, or a resume under another number of processes."""
        seed = distributed.rank_seed(self.cfg.seed, self.world.rank, self.step)
        self.gen.manual_seed(seed)
        torch.manual_seed(seed)

    def state(self, rng_per_rank: list[dict] | None = None) -> dict:
        rngs = rng_per_rank or [rng_state(self.gen)]
        return {"g": self.G.state_dict(), "d": self.D.state_dict(), "g_ema": self.G_ema.state_dict(),
                "opt_g": self.opt_G.state_dict(), "opt_d": self.opt_D.state_dict(), "step": self.step,
                "train_seconds": self.seconds, "rng": rngs[0], "rng_per_rank": rngs, "world_size": len(rngs),
                "g_config": asdict(self.g_cfg), "mel_mean": torch.from_numpy(self.data.mean),
                "mel_std": torch.from_numpy(self.data.std), "features": self.names, "loops": self.cfg.loops,
                "config": asdict(self.cfg), "frozen": self.fingerprint, "genres": self.genres,
                "trained_sources": self.trained_sources}

    def restore(self, path: Path) -> None:
        # On the CPU: RNG states must stay CPU tensors; load_state_dict moves the rest to the device.
        ck = load_checkpoint(path, map_location="cpu", required=("g", "d", "config", "rng"))
        defaults = type(self.cfg)
        was = {k: ck["config"].get(k, BEFORE_KEY.get(k, getattr(defaults, k))) for k in IDENTITY_KEYS}
        diff = {k: (was[k], getattr(self.cfg, k)) for k in IDENTITY_KEYS if was[k] != getattr(self.cfg, k)}
        if not self.cfg.conditional:
            diff.pop("genre_shift", None)    # the shift exists only in a conditional G
        if diff or not torch.equal(ck["mel_mean"], torch.from_numpy(self.data.mean)):
            raise CheckpointError(f"{path} was trained with another configuration "
                                  f"({diff or 'other data set statistics'}): use another --out, or drop --resume")
        conditional.check_checkpoint_genres(ck, self.genres, path)
        for module, key in ((self.G, "g"), (self.D, "d"), (self.G_ema, "g_ema"), (self.opt_G, "opt_g"),
                            (self.opt_D, "opt_d")):
            module.load_state_dict(ck[key])
        self.step, self.seconds = ck["step"], ck["train_seconds"]
        self.saved_step = self.step
        if ck.get("world_size", 1) == self.world.size:       # exact: every rank gets its own stream back
            set_rng_state(self.gen, ck.get("rng_per_rank", [ck["rng"]])[self.world.rank])
        else:                                                # another world size: fresh streams (module docstring)
            self.reseed()
        self.fingerprint = frozen_fingerprint(self.D)      # the frozen parts as the checkpoint restored them

    def save(self, out: Path, snapshot: bool = False) -> None:
        """Called on every rank (the RNG states are gathered; every rank checks its frozen parts); rank 0 writes."""
        rngs = distributed.gather(self.world, rng_state(self.gen))
        if frozen_fingerprint(self.D) != self.fingerprint:
            raise RuntimeError("a frozen network (feature net or CCM/CSM) changed during training: this is a bug")
        if not all(torch.isfinite(p).all() for p in list(self.G.parameters()) + self.d_params):
            raise FloatingPointError(f"non-finite weights at step {self.step} (finite loss, non-finite gradients): "
                                     f"not saved; the last good checkpoint {out / 'latest.pt'} is left as it was")
        if not self.world.main:
            return
        s = self.state(rngs)
        with on_disk_full(lambda: self.disk_full_line(out, s)):
            save_checkpoint(s, out / "latest.pt")
            self.saved_step = self.step
            if snapshot:
                save_checkpoint(s, out / f"ckpt_{self.step:07d}.pt")

    def disk_full_line(self, out: Path, state: dict | None = None) -> str:
        """What a full disk leaves: latest.pt of the last saved step, intact; the room a checkpoint needs."""
        latest = out / "latest.pt"
        size = latest.stat().st_size if latest.is_file() else tensor_bytes(state or self.state())
        return checkpoint_safe_line(latest, self.saved_step, size, when=f" at step {self.step}")

    @torch.no_grad()
    def save_grid(self, out: Path) -> None:
        z = torch.randn(N_GRID, self.g_cfg.z_dim, generator=torch.Generator().manual_seed(GRID_SEED)).to(self.device)
        c = conditional.grid_labels(N_GRID, len(self.genres)).to(self.device) if self.genres else None
        mels = from_gan(self.G_ema(z, c, noise_mode="const"), self.data.mean, self.data.std)   # (16, F=64, T=200)
        with on_disk_full(lambda: self.disk_full_line(out)):
            save_mel_grid(mels, out / f"grid_{self.step:07d}.png", title=f"{out.name} step {self.step}")

    def keep(self, timed_snapshot: bool) -> None:
        """After a step: the grid PNG, latest.pt and the kept snapshots, each at its interval."""
        cfg, out = self.cfg, self.out
        if self.step % cfg.sample_every == 0 and self.world.main:
            self.save_grid(out)
        snapshot = timed_snapshot or self.step % cfg.snapshot_every == 0
        if self.step % cfg.ckpt_every == 0 or snapshot:
            self.save(out, snapshot=snapshot)

    def finish(self, interrupted: bool) -> None:
        """The last checkpoint (a kept snapshot too) and grid, and what was done."""
        out = self.out
        if interrupted and self.world.main:
            print(f"\ninterrupted after step {self.step}: saving {out / 'latest.pt'} (continue with --resume)")
        self.save(out, snapshot=True)
        if self.world.main:
            self.save_grid(out)
            print(f"done: {self.step} steps in {self.seconds / 60:.1f} min; checkpoint {out / 'latest.pt'}, "
                  f"samples {out / f'grid_{self.step:07d}.png'}")
        distributed.report(self.world, self.step, {"G": self.G, "G_ema": self.G_ema, "D": self.D})  # tests only


class Clock:
    """--minutes, --snapshot-minutes and --clock: the run's training seconds ('wall' time, or this process's
    'cpu' time), continued from the checkpoint; the budget counts this call's minutes only."""

    def __init__(self, cfg, seconds_before: float):
        self.now_fn = time.process_time if cfg.clock == "cpu" else time.time
        self.t0, self.before, self.minutes = self.now_fn() - seconds_before, seconds_before, cfg.minutes
        self.every = cfg.snapshot_minutes
        self.next_snapshot = (seconds_before // 60 // self.every + 1) * self.every if self.every else None

    def seconds(self) -> float:
        return self.now_fn() - self.t0

    def time_left(self, seconds: float) -> bool:
        return self.minutes is None or seconds - self.before < 60 * self.minutes

    def rate(self, steps: int, seconds: float) -> float:
        """Steps per second in this call."""
        return steps / max(seconds - self.before, 1e-9)

    def snapshot_due(self, seconds: float) -> bool:
        """True once per --snapshot-minutes of training time."""
        if self.next_snapshot is None or seconds < 60 * self.next_snapshot:
            return False
        self.next_snapshot += self.every
        return True
