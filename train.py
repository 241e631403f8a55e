"""Train a Projected StyleGAN2 (or the plain StyleGAN2 baseline) on one-bar loops.

Paper Section 2 (Projected GAN, eq. 1), Section 4 (generator, pipeline), Section 5 (Table 1 rows).

    python train.py --loops drum --features vgg,scnn_loop     # the paper's best model (VGGish downloaded once)
    python train.py --loops drum --features aisfx             # offline general network (no download needed)
    python train.py --loops synth --features none             # StyleGAN2 baseline, Table 1 rows B/C

One step (`train`, the loop at the bottom):
    1. D sees a real batch and a fake batch in separate passes (its heads' batch-norm keeps per-domain
       statistics) and takes one hinge step (`d_step`; the baseline: logistic loss + lazy R1);
    2. G is updated through D's frozen projector and its heads (`g_step`);
    3. the EMA generator follows G.
Data: (B, 1, T=200, F=64) standardised mels (dataset.LoopMelDataset); the embedded demo set is rendered
and cached on first use.

Everything a run needs to continue exactly is in its checkpoint: G, D, EMA, both optimisers, the step, the
RNG states (one per rank), the mel stats, the feature names and the config. Checkpoints are written atomically.

Past one GPU, the same script under torchrun (plumbing/distributed.py has the rules: DDP, per-rank batches and seeds,
rank 0 writes, every rank stops after the same step):
    torchrun --nproc_per_node=8 train.py --loops drum --features vgg,scnn_loop      # --batch is the global batch
A checkpoint resumes under any number of processes. "Exact" means: under the same number of processes the
run continues bit for bit (each rank gets its own saved RNG state back). Under another number the weights,
optimisers, EMA, step and clock continue, but each rank's random streams restart from
distributed.rank_seed(seed, rank, step) and the per-rank batch (batch-norm, minibatch-stddev) changes, so the
continuation is deterministic for that world size, not the samples the old world size would have drawn.
"""
from __future__ import annotations

import argparse
import copy
import sys
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import torch
from tqdm import tqdm

from plumbing import distributed
import conditional
import features
import losses
import train_scnn
from plumbing.checkpoint import CheckpointError, StopRequest, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from dataset import LoopMelDataset
from demo.loops import ensure_demo_set
from discriminator import ProjectedDiscriminator, StyleGAN2Discriminator, frozen_fingerprint
from plumbing.distributed import World
from featurenet import FeatureContext, FeatureNetUnavailable
from generator import Generator, GeneratorConfig, ema_beta, update_ema
from mel import from_gan
from projector import PROJECTOR_SEED
from sample import save_mel_grid


@dataclass
class TrainConfig:
    loops: str = "drum"
    features: str = "vgg,scnn_loop"   # comma list of features.REGISTRY names, or 'none' (the paper's best: fusion)
    data: str | None = None           # preprocessed data set; None = the embedded demo loops
    out: str | None = None            # run directory; None = runs/<loops>_<features>
    batch: int = 64                   # the authors' script; the global batch (each of N processes takes batch / N)
    g_channels: int = 512             # the paper: 512 channels at every resolution (GPU default)
    d_channels: int = 512             # width cap of the baseline StyleGAN2 discriminator
    lr: float = 0.002                 # StyleGAN2's Adam learning rate (the authors' for G; D gets x 16/17)
    ema_half_life: int = 10_000       # images; beta = 0.5 ** (batch / 10 000)
    ema_rampup: float = 0.05          # half-life <= 5 % of the images seen so far (StyleGAN2-ADA's code), so
                                      # the EMA generator is not stuck at its initial weights in short runs
    steps: int | None = None          # stop after this many steps ...
    minutes: float | None = None      # ... or after this many minutes of training in this call, whichever first
    seed: int = 0
    sample_every: int = 500           # steps between mel-grid PNGs of fixed-seed EMA samples
    ckpt_every: int = 500             # steps between (atomic) latest.pt checkpoints
    snapshot_every: int = 5000        # steps between kept ckpt_<step>.pt files (for evaluate.py --curve) ...
    snapshot_minutes: float | None = None   # ... and/or every this many minutes of training (reproduce.py)
    csm_kernel: int = 3               # the paper's 3x3 cross-scale mixing (the authors' code: 1x1)
    csm_upsample: bool = True         # CSM ends with bilinear x2, as the authors' code (docs/design.md §3)
    adapter: str = "grid"             # aisfx's input: 'grid' = its native grid (standins/adapter.py), 'affine' = ours
    batch_stats: bool = False         # the authors' SCNN: feature-net batch-norm on batch statistics
    fuse_logits: bool = False         # the authors' fusion: add the networks' logits, then one hinge per scale
    cache_real: bool = False          # keep each real loop's projected features (same math, less compute, more
                                      # memory: ~1 MB per loop and network on the CPU preset; not with batch_stats)
    clock: str = "wall"               # what --minutes counts: 'wall' time, or this process's 'cpu' time (fair
                                      # budgets for single-threaded runs on a machine shared with other work)
    vggish: str | None = None         # path to the official VGGish weights (else env / hub cache)
    conditional: bool = False         # genre-conditional G and D (the paper's future work); needs genre labels


# A 2-core CPU cannot train the paper's configuration (52 GMAC per generated loop, `python generator.py`); this
# preset makes the README's quick start finish on its own in about ten minutes and leave a checkpoint and grids.
CPU_PRESET = dict(batch=8, g_channels=32, d_channels=32, csm_upsample=False, cache_real=True, minutes=8.0,
                  sample_every=50, ckpt_every=50, snapshot_every=200)
PAPER = "--features vgg,scnn_loop --batch 64 --g-channels 512 --csm-upsample yes (the default on a GPU)"
# Adam's learning-rate ratios (StyleGAN2's lazy regularisation): D's R1 runs every 16 steps, so D gets 16/17
# (the authors keep it in the projected runs too). The path-length regulariser is not implemented, so G's is 1.
G_LAZY, D_LAZY = 1.0, losses.lazy_ratio(losses.R1_INTERVAL)
ADAM_BETA2 = 0.99                 # StyleGAN2's Adam betas are (0, 0.99), raised to the lazy ratio
MEMORY_FORMAT = torch.channels_last   # NHWC: oneDNN's fast path on the CPU (README "Speed": 14-28 % more steps/s,
                                      # the same math) and bf16 tensor cores' on CUDA
N_GRID = 16                       # fixed-seed EMA samples in each grid PNG
GRID_SEED = 1234                  # the same latents in every grid, so grids show progress, not new samples
IDENTITY_KEYS = ("loops", "features", "g_channels", "d_channels", "csm_kernel", "csm_upsample", "seed",
                 "adapter", "batch_stats", "fuse_logits",
                 "conditional")                 # what a resumed run must share with its checkpoint


def build_discriminator(cfg: TrainConfig, names: list[str], nets: dict, c_dim: int = 0) -> torch.nn.Module:
    if not names:
        return StyleGAN2Discriminator(max_channels=cfg.d_channels, c_dim=c_dim)
    # The random CCM/CSM projection is part of the model: one fixed seed (docs/design.md §3), not --seed.
    return ProjectedDiscriminator([nets[n] for n in names], seed=PROJECTOR_SEED, csm_kernel=cfg.csm_kernel,
                                  upsample=cfg.csm_upsample, fuse_logits=cfg.fuse_logits, c_dim=c_dim)


def build_feature_nets(cfg: TrainConfig, names: list[str], data: LoopMelDataset, device: str,
                       built: dict | None = None) -> dict:
    """The frozen networks of --features (`built`: those already built). scnn_loop is trained first when it
    does not exist yet: explicitly, here, with an announcement (train_scnn.py), never inside the lookup."""
    ctx = FeatureContext(loops=cfg.loops, data_dir=cfg.data, device=device, vggish_path=cfg.vggish,
                         mel_mean=data.mean, mel_std=data.std, adapter=cfg.adapter, batch_stats=cfg.batch_stats)
    if "scnn_loop" in names:
        train_scnn.ensure_loop_classifier(cfg.loops, cfg.data, ckpt_dir=ctx.ckpt_dir, device=device)
    built = built or {}
    return {n: built[n] if n in built else features.build(n, ctx) for n in names}


def prepare(cfg: TrainConfig, names: list[str], device: str) -> tuple[TrainConfig, LoopMelDataset, dict]:
    """The data set and the feature networks: all the set-up that may fill a cache (VGGish weights, the
    demo set, scnn_loop), so that under torchrun rank 0 does it first (distributed.main_first)."""
    built = {}
    if "vgg" in names:   # missing VGGish weights must stop us before any other work is done (it needs no data)
        built["vgg"] = features.build("vgg", FeatureContext(device=device, vggish_path=cfg.vggish,
                                                            batch_stats=cfg.batch_stats))
    if cfg.data is None:
        cfg = replace(cfg, data=str(ensure_demo_set(cfg.loops)))
    data = LoopMelDataset(cfg.data)
    conditional.genres_for_training(data, cfg.conditional)   # an unlabelled set stops here, before any training
    return cfg, data, build_feature_nets(cfg, names, data, device, built)


def d_step(G, D, real, z, baseline: bool, step: int, autocast, real_idx=None, c_real=None, c_fake=None):
    """Discriminator loss on a real and a (detached) fake batch, in separate passes. `real_idx`: the real
    batch's data-set indices, for the projected D's real-feature cache (`--cache-real`). c_real, c_fake (B,):
    the batches' genres (--conditional yes only)."""
    cond = c_real is not None                 # unconditional: the calls below are exactly the paper's
    with autocast():
        with torch.no_grad():
            fake = G(z, c_fake) if cond else G(z)                                       # (B, 1, 200, 64)
        cache = {} if real_idx is None else {"real_idx": real_idx}
        real_logits = D(real, c_real, **cache) if cond else D(real, **cache)
        fake_logits = D(fake, c_fake) if cond else D(fake)
        loss = (losses.d_logistic(real_logits, fake_logits) if baseline
                else losses.d_hinge(real_logits, fake_logits))
    if baseline and step % losses.R1_INTERVAL == 0:     # lazy R1 (docs/design.md §4), in full precision
        real_r1 = real.detach().requires_grad_(True)
        r1_logits = D(real_r1, c_real) if cond else D(real_r1)
        loss = loss + losses.r1_loss_weight() * losses.r1_penalty(r1_logits, real_r1)
    return loss


def g_step(G, D, z, baseline: bool, autocast, c=None):
    """Generator loss: raise D's logits on a fresh fake batch (gradients flow through D into G); c (B,): its
    genres (--conditional yes only)."""
    with autocast():
        fake_logits = D(G(z)) if c is None else D(G(z, c), c)
        return losses.g_nonsaturating(fake_logits) if baseline else losses.g_hinge(fake_logits)


def autocast_for(device: str):
    """A context-manager factory: bf16 autocast on CUDA, plain float32 elsewhere."""
    if torch.device(device).type == "cuda":
        return lambda: torch.autocast("cuda", dtype=torch.bfloat16)
    return lambda: torch.autocast("cpu", enabled=False)


def ema_half_life(cfg: TrainConfig, step: int) -> float:
    """EMA half-life in images at `step`: 10 k images, ramped up over the first images of the run."""
    seen = (step + 1) * cfg.batch
    return min(cfg.ema_half_life, seen * cfg.ema_rampup) if cfg.ema_rampup else cfg.ema_half_life


def check_finite(which: str, loss: torch.Tensor, step: int, out: Path, world: World) -> None:
    """Stop before a NaN/inf reaches the weights (on every rank, if it is on any); the last good checkpoint
    stays as it was."""
    if not distributed.all_true(world, bool(torch.isfinite(loss))):
        raise FloatingPointError(f"non-finite {which} loss (rank {world.rank}: {loss.item()}) at step {step}: "
                                 f"stopping; the last good checkpoint {out / 'latest.pt'} is left as it was "
                                 f"(try a lower --lr or another --seed)")


class Run:
    """Everything that trains and is saved: models, optimisers, the step and the clock, the RNG.

    `state()` is the checkpoint; `restore()` continues a checkpoint exactly; `save()` checks first that the
    frozen parts did not move and that no weight is NaN. Under torchrun every rank holds a Run; G_sync and
    D_sync are G and D in DistributedDataParallel (G and D themselves in a world of one).
    """

    def __init__(self, cfg: TrainConfig, names: list[str], nets: dict, data: LoopMelDataset | None, world: World):
        self.cfg, self.names, self.data, self.world, self.device = cfg, names, data, world, world.device
        self.genres = conditional.genres_for_training(data, cfg.conditional)     # None: unconditional
        self.g_cfg = GeneratorConfig(max_channels=cfg.g_channels, c_dim=len(self.genres or ()))
        torch.manual_seed(cfg.seed)          # the same initial weights on every rank (and in every run of a seed)
        self.G = Generator(self.g_cfg).to(self.device)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        self.D = build_discriminator(cfg, names, nets, self.g_cfg.c_dim).to(self.device)
        for m in (self.G, self.G_ema, self.D):
            m.to(memory_format=MEMORY_FORMAT)
        # Only D's heads learn: the feature networks and CCM/CSM have requires_grad=False (so DDP skips them).
        self.d_params = [p for p in self.D.parameters() if p.requires_grad]
        self.cache_real = cfg.cache_real and bool(names) and not cfg.batch_stats   # only the projected D caches
        if self.cache_real:
            self.D.cache_real_features()
        self.G_sync, self.D_sync = distributed.wrap(self.G, world), distributed.wrap(self.D, world)
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=cfg.lr * G_LAZY, betas=(0.0, ADAM_BETA2 ** G_LAZY))
        self.opt_D = torch.optim.Adam(self.d_params, lr=cfg.lr * D_LAZY, betas=(0.0, ADAM_BETA2 ** D_LAZY))
        self.gen = torch.Generator()         # this rank's latents and batch indices: saved, so resume is exact
        self.step, self.seconds = 0, 0.0
        self.reseed()
        self.fingerprint = frozen_fingerprint(self.D)

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
                "config": asdict(self.cfg), "frozen": self.fingerprint, "genres": self.genres}

    def restore(self, path: Path) -> None:
        # On the CPU: RNG states must stay CPU tensors; load_state_dict moves the rest to the device.
        ck = load_checkpoint(path, map_location="cpu", required=("g", "d", "config", "rng"))
        diff = {k: (ck["config"].get(k), getattr(self.cfg, k)) for k in IDENTITY_KEYS
                if ck["config"].get(k, getattr(TrainConfig, k)) != getattr(self.cfg, k)}
        if diff or not torch.equal(ck["mel_mean"], torch.from_numpy(self.data.mean)):
            raise CheckpointError(f"{path} was trained with another configuration "
                                  f"({diff or 'other data set statistics'}): use another --out, or drop --resume")
        conditional.check_checkpoint_genres(ck, self.genres, path)
        for module, key in ((self.G, "g"), (self.D, "d"), (self.G_ema, "g_ema"), (self.opt_G, "opt_g"), (self.opt_D, "opt_d")):
            module.load_state_dict(ck[key])
        self.step, self.seconds = ck["step"], ck["train_seconds"]
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
        save_checkpoint(s, out / "latest.pt")
        if snapshot:
            save_checkpoint(s, out / f"ckpt_{self.step:07d}.pt")

    @torch.no_grad()
    def save_grid(self, out: Path) -> None:
        z = torch.randn(N_GRID, self.g_cfg.z_dim, generator=torch.Generator().manual_seed(GRID_SEED)).to(self.device)
        c = conditional.grid_labels(N_GRID, len(self.genres)).to(self.device) if self.genres else None
        mels = from_gan(self.G_ema(z, c, noise_mode="const"), self.data.mean, self.data.std)   # (16, F=64, T=200)
        save_mel_grid(mels, out / f"grid_{self.step:07d}.png", title=f"{out.name} step {self.step}")


def train(cfg: TrainConfig, device: str | None = None, resume: bool = False) -> Path:
    """Train (or continue, `resume`) the run of `cfg`; under torchrun this process is one rank of it (call
    distributed.close() afterwards; `__main__` does, through distributed.leave)."""
    names = features.parse_feature_names(cfg.features)
    baseline = not names
    out = Path(cfg.out or f"runs/{cfg.loops}_{'_'.join(names) or 'stylegan2'}")
    if not resume and (out / "latest.pt").exists():
        raise CheckpointError(f"{out / 'latest.pt'} exists: pass --resume to continue that run, "
                              "or choose another --out (nothing was overwritten)")
    world = distributed.init(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    device, batch = world.device, distributed.local_batch(cfg.batch, world)     # batch: this rank's share
    cfg, data, nets = distributed.main_first(world, lambda: prepare(cfg, names, world.device))
    reals = data.mels.to(device).contiguous(memory_format=MEMORY_FORMAT)               # (N, 1, T=200, F=64)
    run = Run(cfg, names, nets, data, world)
    # Resume when any rank sees the checkpoint; a rank that cannot read it stops them all (no silent fresh start).
    if resume and distributed.any_true(world, (out / "latest.pt").exists()):
        distributed.together(world, lambda: run.restore(out / "latest.pt"))
        if world.main:
            print(f"resumed {out / 'latest.pt'} at step {run.step} ({world.size} process(es))")
    if world.main:
        out.mkdir(parents=True, exist_ok=True)

    G, D, autocast, stop = run.G, run.D, autocast_for(device), StopRequest()
    bar = tqdm(total=cfg.steps, initial=run.step, desc=out.name, dynamic_ncols=True, file=sys.stdout,
               disable=not world.main)
    clock = time.process_time if cfg.clock == "cpu" else time.time
    t0, seconds_before, step_before, stopping = clock() - run.seconds, run.seconds, run.step, False
    next_snapshot = (seconds_before // 60 // cfg.snapshot_minutes + 1) * cfg.snapshot_minutes if cfg.snapshot_minutes else None
    G.train(); D.train()
    try:
        while (cfg.steps is None or run.step < cfg.steps) and not stopping and \
                (cfg.minutes is None or run.seconds - seconds_before < 60 * cfg.minutes):
            idx = torch.randint(len(reals), (batch,), generator=run.gen).to(device)
            real = reals[idx]                                                           # (B/N, 1, 200, 64)
            z_d = torch.randn(batch, run.g_cfg.z_dim, generator=run.gen).to(device)
            z_g = torch.randn(batch, run.g_cfg.z_dim, generator=run.gen).to(device)
            # Genres (--conditional yes): the real batch's own, the fakes' drawn like the data set's.
            c_real = c_d = c_g = None
            if run.genres:
                c_real = run.data.labels[idx.cpu()].to(device)                         # (B/N,)
                c_d = conditional.draw_labels(run.data.labels, batch, run.gen).to(device)
                c_g = conditional.draw_labels(run.data.labels, batch, run.gen).to(device)

            # 1. D step. Gradients into the heads only (the frozen parts have requires_grad=False for good);
            #    D_sync all-reduces them across ranks.
            for p in run.d_params:
                p.requires_grad_(True)
            loss_d = d_step(G, run.D_sync, real, z_d, baseline, run.step, autocast,
                            real_idx=idx if run.cache_real else None, c_real=c_real, c_fake=c_d)
            check_finite("D", loss_d, run.step, out, world)
            run.opt_D.zero_grad(set_to_none=True)
            loss_d.backward()
            run.opt_D.step()

            # 2. G step. D is a fixed function here: switching its heads' gradients off saves their
            #    weight-gradient work, while gradients still flow through D (unwrapped) into G_sync.
            for p in run.d_params:
                p.requires_grad_(False)
            loss_g = g_step(run.G_sync, D, z_g, baseline, autocast, *([c_g] if run.genres else []))
            check_finite("G", loss_g, run.step, out, world)
            run.opt_G.zero_grad(set_to_none=True)
            loss_g.backward()
            run.opt_G.step()

            # 3. EMA generator (the one that is sampled and evaluated); G's w_avg first becomes the global
            #    batch's (the mean over ranks), so G and the EMA stay identical on every rank.
            distributed.average_(world, [G.mapping.w_avg] + ([G.mapping.w_avg_c] if run.genres else []))
            update_ema(run.G_ema, G, ema_beta(cfg.batch, ema_half_life(cfg, run.step)))

            run.step += 1
            stopping, run.seconds = distributed.agree(world, stop.requested, clock() - t0)
            bar.update(1)
            bar.set_postfix(loss_d=f"{loss_d.item():.3f}", loss_g=f"{loss_g.item():.3f}",
                            it_s=f"{(run.step - step_before) / max(run.seconds - seconds_before, 1e-9):.2f}")
            if run.step % cfg.sample_every == 0 and world.main:
                run.save_grid(out)
            timed = next_snapshot is not None and run.seconds >= 60 * next_snapshot
            if timed:
                next_snapshot += cfg.snapshot_minutes
            if run.step % cfg.ckpt_every == 0 or run.step % cfg.snapshot_every == 0 or timed:
                run.save(out, snapshot=timed or run.step % cfg.snapshot_every == 0)
    finally:
        bar.close()
        stop.restore()
    if stopping and world.main:
        print(f"\ninterrupted after step {run.step}: saving {out / 'latest.pt'} (continue with --resume)")
    run.save(out, snapshot=True)
    if world.main:
        run.save_grid(out)
        print(f"done: {run.step} steps in {run.seconds / 60:.1f} min; checkpoint {out / 'latest.pt'}, "
              f"samples {out / f'grid_{run.step:07d}.png'}")
    distributed.report(world, run.step, {"G": G, "G_ema": run.G_ema, "D": D})      # tests only
    return out


def flags(settings: dict) -> str:
    """{'g_channels': 32} -> '--g-channels 32': a preset written the way it is typed."""
    return " ".join(f"--{k.replace('_', '-')} {v}" for k, v in settings.items())


def _yes_no(s: str) -> bool:
    if s.lower() not in ("1", "0", "true", "false", "yes", "no"):
        raise argparse.ArgumentTypeError(f"expected yes/no, got {s!r}")
    return s.lower() in ("1", "true", "yes")


def parse_args(argv=None) -> tuple[TrainConfig, bool, str | None]:
    networks = "; ".join(f"{n}: {d}" for n, d in features.DESCRIPTIONS.items())
    ap = argparse.ArgumentParser(
        description="Train a Projected StyleGAN2 on one-bar loops (pjloop).",
        epilog=f"--features networks (comma list, or 'none' for plain StyleGAN2): {networks}. "
               f"Presets: on a GPU the paper's configuration ({PAPER}); without one the CPU preset "
               f"({flags(CPU_PRESET)}) unless --paper.")
    defaults = TrainConfig()
    for f in fields(TrainConfig):
        kind = {bool: _yes_no, int: int, float: float}.get(type(f.default), str)
        kind = {"steps": int, "minutes": float, "snapshot_minutes": float}.get(f.name, kind)
        ap.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, type=kind, default=None,
                        help=f"default: {getattr(defaults, f.name)}")
    ap.add_argument("--resume", action="store_true", help="continue the run in --out from its latest.pt")
    ap.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    ap.add_argument("--paper", action="store_true", help="use the paper configuration even on a CPU")
    args = ap.parse_args(argv)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    given = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if getattr(args, f.name) is not None}
    cfg = TrainConfig(**given)
    if device == "cpu" and not args.paper:
        preset = {k: v for k, v in CPU_PRESET.items() if k not in given}
        for k, v in preset.items():
            setattr(cfg, k, v)
        if preset and distributed.env_rank() == 0:
            print("No GPU: using the small CPU preset (" + flags(preset) +
                  "); pass --paper for the paper's configuration, or set any of these flags yourself.")
    return cfg, args.resume, device


if __name__ == "__main__":
    cfg, resume, device = parse_args()
    try:
        train(cfg, device=device, resume=resume)
    except (FeatureNetUnavailable, CheckpointError, FloatingPointError, ValueError, FileNotFoundError,
            distributed.PeerFailed) as e:
        distributed.leave(f"train.py: {e}")      # one line on every rank, no traceback
    except BaseException:
        distributed.close()                       # anything else: its traceback, as Python prints it
        raise
    distributed.leave()
