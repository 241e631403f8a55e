"""Train a Projected StyleGAN2 (or the plain StyleGAN2 baseline) on one-bar loops.

Paper Section 2 (Projected GAN, eq. 1), Section 4 (generator, pipeline), Section 5 (Table 1 rows). One step
(`train_step`): D's hinge step on a real and a fake batch (the baseline: logistic loss + lazy R1), G's step
through D's frozen projector and heads, then the EMA generator. Data: (B, 1, T=200, F=64) standardised mels.

    python train.py --loops drum --features vgg,scnn_loop     # the paper's best model (VGGish downloaded once)
    python train.py --loops drum --features aisfx             # offline general network (no download needed)
    torchrun --nproc_per_node=8 train.py --loops drum --features vgg,scnn_loop    # --batch is the global batch

The run around the loop (set-up, resume rules, checkpoints, clock) is train_run.py; torchrun's rules are
plumbing/distributed.py; flags, presets and the resume semantics are in docs/training.md.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field, fields

import torch

import conditional
import featurenet
import losses
import melgan
from augment import augment, parse_policy
from dataset import default_data_dir
from featurenet import FeatureNetUnavailable
from generator import ema_beta, update_ema
from plumbing import distributed
from plumbing.checkpoint import CheckpointError, StopRequest
from plumbing.cli import YES_NO, flags, spell, yes_no
from plumbing.devices import autocast_for, default_device
from plumbing.files import disk_full_line, is_disk_full
from plumbing.progress import Progress
from sample import finish_quick_start
from train_melgan import QUICK_MINUTES
from train_run import MEMORY_FORMAT, Clock, Run, check_finite


def train_step(run: Run, real: torch.Tensor, idx: torch.Tensor, z_d: torch.Tensor, z_g: torch.Tensor,
               c_real=None, c_d=None, c_g=None):
    """One step of the paper's loop on this rank's batch: real (B, 1, 200, 64) with its data-set indices,
    latents z_d and z_g (B, 512); with --conditional yes the genres (B,) of the real batch and of the two fake
    batches. -> (D loss, G loss)."""
    autocast = autocast_for(run.device)
    # 1. D step. Gradients into the heads only (the frozen parts have requires_grad=False for good);
    #    D_sync all-reduces them across ranks.
    for p in run.d_params:
        p.requires_grad_(True)
    loss_d = d_step(run.G, run.D_sync, real, z_d, run.baseline, autocast, run.policy,
                    real_idx=idx if run.cache_real else None, c_real=c_real, c_fake=c_d)
    check_finite("D", loss_d, run.step, run.out, run.world)
    run.opt_D.zero_grad(set_to_none=True)
    loss_d.backward()
    run.opt_D.step()
    if run.baseline and run.step % losses.R1_INTERVAL == 0:
        # The baseline's lazy R1 in a minibatch step of its own, every 16 steps, as StyleGAN2: D's Adam then
        # takes 17 steps per 16 batches, which is what its 16/17 lr and beta ratio is made for.
        run.opt_D.zero_grad(set_to_none=True)
        r1_step(run.D_sync, real, run.policy, c_real).backward()
        run.opt_D.step()

    # 2. G step. D is a fixed function here: switching its heads' gradients off saves their weight-gradient
    #    work, while gradients still flow through D (unwrapped) into G_sync.
    for p in run.d_params:
        p.requires_grad_(False)
    loss_g = g_step(run.G_sync, run.D, z_g, run.baseline, autocast, run.policy, c_g, run.ceiling)
    check_finite("G", loss_g, run.step, run.out, run.world)
    run.opt_G.zero_grad(set_to_none=True)
    loss_g.backward()
    run.opt_G.step()

    # 3. EMA generator (the one that is sampled and evaluated); G's w_avg first becomes the global batch's
    #    (the mean over ranks), so G and the EMA stay identical on every rank.
    distributed.average_(run.world, [run.G.mapping.w_avg] + ([run.G.mapping.w_avg_c] if run.genres else []))
    update_ema(run.G_ema, run.G, ema_beta(run.cfg.batch, ema_half_life(run.cfg, run.step)))
    return loss_d, loss_g


def d_step(G, D, real, z, baseline: bool, autocast, policy: tuple = (), real_idx=None, c_real=None, c_fake=None):
    """Discriminator loss on a real and a (detached) fake batch, in separate passes (the heads' batch-norm
    keeps per-domain statistics), both through the same --augment `policy`. `real_idx`: the real batch's
    data-set indices, for --cache-real (never with an augmentation). c_real, c_fake (B,): the batches' genres
    (--conditional yes only; None: the calls are exactly the unconditional paper's)."""
    real_c = () if c_real is None else (c_real,)
    fake_c = () if c_fake is None else (c_fake,)
    with autocast():
        with torch.no_grad():
            fake = G(z, *fake_c)                                                        # (B, 1, 200, 64)
        real_logits = (D(augment(real, policy), *real_c) if real_idx is None
                       else D(real, *real_c, real_idx=real_idx))
        fake_logits = D(augment(fake, policy), *fake_c)
        return (losses.d_logistic(real_logits, fake_logits) if baseline
                else losses.d_hinge(real_logits, fake_logits))


def r1_step(D, real, policy: tuple = (), c_real=None):
    """The baseline's lazy R1 loss (docs/design.md §4), in full precision: gamma/2 x 16 x |grad_x D(x)|^2."""
    real_r1 = real.detach().requires_grad_(True)
    logits = D(augment(real_r1, policy), *(() if c_real is None else (c_real,)))            # (B, 1)
    # + 0 x logits, as StyleGAN2-ADA: the last layer's bias has no say in grad_x D, yet under DDP every weight
    # must be in the graph of a backward pass, or the all-reduce waits for a gradient that never comes.
    return losses.r1_loss_weight() * losses.r1_penalty(logits, real_r1) + 0.0 * logits.sum()


def g_step(G, D, z, baseline: bool, autocast, policy: tuple = (), c=None, ceiling=None):
    """Generator loss: raise D's logits on a fresh fake batch (gradients flow through D, and through the
    differentiable augmentation, into G); c (B,): its genres (--conditional yes only); ceiling: None (the
    paper), or (weight, mean, std) of --ceiling-weight's penalty on mels louder than any signal."""
    fake_c = () if c is None else (c,)
    with autocast():
        fake = G(z, *fake_c)                                                            # (B, 1, 200, 64)
        fake_logits = D(augment(fake, policy), *fake_c)
        loss = losses.g_nonsaturating(fake_logits) if baseline else losses.g_hinge(fake_logits)
    if ceiling is not None:
        weight, mean, std = ceiling
        loss = loss + weight * losses.ceiling_penalty(fake, mean, std)
    return loss


def ema_half_life(cfg: TrainConfig, step: int) -> float:
    """EMA half-life in images at `step`: --ema-half-life, ramped up over the first images of the run."""
    seen = (step + 1) * cfg.batch
    return min(cfg.ema_half_life, seen * cfg.ema_rampup) if cfg.ema_rampup else cfg.ema_half_life


def train(cfg: TrainConfig, device: str | None = None, resume: bool = False):
    """Train (or continue, `resume`) the run of `cfg` -> its folder. Under torchrun this process is one rank
    of it (call distributed.close() afterwards; `__main__` does, through distributed.leave)."""
    names = featurenet.parse_feature_names(cfg.features)
    world = distributed.init(device or default_device())
    run = Run.open(cfg, names, world, resume)
    cfg, device, batch = run.cfg, world.device, distributed.local_batch(cfg.batch, world)   # batch: this rank's
    reals = run.data.mels.to(device).contiguous(memory_format=MEMORY_FORMAT)             # (N, 1, T=200, F=64)
    clock, stop, step_before, stopping = Clock(cfg, run.seconds), StopRequest(), run.step, False
    bar = Progress(total=cfg.steps, initial=run.step, desc=run.out.name, file=sys.stdout, enabled=world.main)
    run.G.train(); run.D.train()
    try:
        while (cfg.steps is None or run.step < cfg.steps) and not stopping and clock.time_left(run.seconds):
            idx = torch.randint(len(reals), (batch,), generator=run.gen).to(device)
            real = reals[idx]                                                           # (B/N, 1, 200, 64)
            z_d = torch.randn(batch, run.g_cfg.z_dim, generator=run.gen).to(device)
            z_g = torch.randn(batch, run.g_cfg.z_dim, generator=run.gen).to(device)
            # Genres (--conditional yes): the real batch's own, the fakes' drawn like the data set's.
            genres = ((run.data.labels[idx.cpu()].to(device),
                       conditional.draw_labels(run.data.labels, batch, run.gen).to(device),
                       conditional.draw_labels(run.data.labels, batch, run.gen).to(device)) if run.genres else ())
            loss_d, loss_g = train_step(run, real, idx, z_d, z_g, *genres)
            run.step += 1
            stopping, run.seconds = distributed.agree(world, stop.requested, clock.seconds())
            bar.update(1)
            bar.set_postfix(loss_d=f"{loss_d.item():.3f}", loss_g=f"{loss_g.item():.3f}",
                            it_s=f"{clock.rate(run.step - step_before, run.seconds):.2f}")
            run.keep(timed_snapshot=clock.snapshot_due(run.seconds))
    finally:
        bar.close()
        stop.restore()
    run.finish(interrupted=stopping)
    return run.out


def opt(default, help: str, choices: tuple | None = None):
    """A TrainConfig field, its --help line and (optional) its allowed values."""
    return field(default=default, metadata={"help": help, "choices": choices})


@dataclass
class TrainConfig:
    """train.py's flags (--ema-half-life for ema_half_life); the defaults are the paper's GPU configuration."""
    loops: str = opt("drum", "which loops: drum or synth (the paper trains one model per kind)", ("drum", "synth"))
    features: str = opt("vgg,scnn_loop", "comma list of frozen feature networks (below), or 'none' for plain "
                                         "StyleGAN2; paper's best: vgg,scnn_loop")
    data: str | None = opt(None, "preprocessed data set folder (preprocess.py); default: the embedded demo loops")
    out: str | None = opt(None, "run folder for checkpoints and grids; default: $PJLOOP_HOME/runs/<loops>_"
                                "<features> (the repository's runs/ when $PJLOOP_HOME is unset)")
    batch: int = opt(64, "global batch in loops (each of N processes takes batch/N); paper: 64")
    g_channels: int = opt(512, "generator channels at every resolution; paper: 512")
    d_channels: int = opt(512, "width cap of the baseline StyleGAN2 discriminator; paper: 512")
    lr: float = opt(0.002, "Adam learning rate (D's x 16/17 for lazy R1); StyleGAN2 and the authors: 0.002")
    ema_half_life: int = opt(20_000, "EMA generator half-life in images; the authors' StyleGAN2-ADA setup: "
                                     "20 000 (ema_kimg = batch x 10/32 at their batch 64)")
    ema_rampup: float = opt(0.05, "EMA half-life at most this fraction of the images seen so far, 0 = off; "
                                  "StyleGAN2-ADA: 0.05")
    steps: int | None = opt(None, "stop after this many steps in all (default: no step limit)")
    minutes: float | None = opt(None, "stop after this many minutes of training in this call, whichever first")
    seed: int = opt(0, "seed of the initial weights, latents and batches")
    sample_every: int = opt(500, "steps between mel-grid PNGs of fixed-seed EMA samples")
    ckpt_every: int = opt(500, "steps between (atomic) latest.pt checkpoints")
    snapshot_every: int = opt(5000, "steps between kept ckpt_<step>.pt files (for evaluate.py --curve)")
    snapshot_minutes: float | None = opt(None, "also keep a ckpt_<step>.pt every this many minutes of training")
    csm_kernel: int = opt(3, "cross-scale mixing kernel size; paper: 3 (the authors' code: 1)")
    csm_upsample: bool = opt(True, "cross-scale mixing ends with bilinear x2, as the authors' code")
    adapter: str = opt("grid", "aisfx's input: grid = its native grid, affine = ours (standins/adapter.py)", ("grid", "affine"))
    batch_stats: bool = opt(False, "feature networks' batch-norm on batch statistics, each second in its own "
                                   "pass, as the authors' SCNN")
    fuse_logits: bool = opt(False, "fusion adds the networks' logits before one hinge per scale, as the "
                                   "authors' code")
    cache_real: bool = opt(False, "keep each real loop's projected features: same math, less compute, ~1 MB "
                                  "per loop and network (not with --batch-stats yes)")
    augment: str = opt("none", "DiffAugment before every discriminator, real and fake alike: comma list of "
                               "shift (circular, up to 1/8 bar), cutout, or none; paper: none (Projected GAN: "
                               "translation and cutout)")
    split: str = opt("train", "which loops G trains on: train = the 80 %% of source files that evaluate.py does "
                              "not score against (dataset.split_rows); all = every loop (the paper's setting, "
                              "leaves no held-out reference)", ("train", "all"))
    conditional: bool = opt(False, "genre-conditional G and D (the paper's future work); needs genre labels "
                                   "(sub-folders or preprocess.py --labels)")
    genre_shift: bool = opt(True, "conditional runs: + a learned per-genre offset to G's w (not in the paper; "
                                  "docs/training.md); no = StyleGAN2-ADA's conditional mapping alone")
    ceiling_weight: float = opt(0.0, "weight of a penalty on generated mels louder than any signal can be "
                                     "(losses.ceiling_penalty), 0 = off; not in the paper (pretrain.py's drum "
                                     "model: docs/training.md)")
    clock: str = opt("wall", "what --minutes counts: wall time, or this process's cpu time", ("wall", "cpu"))
    vggish: str | None = opt(None, "official VGGish weights file (else $PJLOOP_VGGISH or the torch hub cache)")
    samples: int = opt(8, "after training, this many loops (and 4 real ones) as WAVs through a trained vocoder "
                          "into <out>/samples, with a listening page; 0 = none")
    vocoder: str | None = opt(None, "the vocoder of those samples: a train_melgan.py checkpoint or griffin-lim "
                                    "(default: the data set's, trained once if missing: ~8 min on a CPU)")


# A 2-core CPU cannot train the paper's configuration (52 GMAC per generated loop, `python generator.py`); this
# preset makes the README's quick start finish on its own in about ten minutes and leave a checkpoint and grids.
CPU_PRESET = dict(batch=8, g_channels=32, d_channels=32, csm_upsample=False, cache_real=True, minutes=8.0,
                  sample_every=50, ckpt_every=50, snapshot_every=200)
PAPER = "--features vgg,scnn_loop --batch 64 --g-channels 512 --csm-upsample yes (the default on a GPU)"
FLAG_TYPES = {"steps": int, "minutes": float, "snapshot_minutes": float}   # fields whose default is None


def parse_args(argv=None) -> tuple[TrainConfig, bool, str]:
    networks = "; ".join(f"{n}: {d}" for n, d in featurenet.DESCRIPTIONS.items())
    ap = argparse.ArgumentParser(
        description="Train a Projected StyleGAN2 on one-bar loops (pjloop).",
        epilog=f"--features networks (comma list, or 'none' for plain StyleGAN2): {networks}. "
               f"Presets: on a GPU the paper's configuration ({PAPER}); without one the CPU preset "
               f"({flags(CPU_PRESET)}) unless --paper.")
    for f in fields(TrainConfig):
        kind = FLAG_TYPES.get(f.name) or {bool: yes_no, int: int, float: float}.get(type(f.default), str)
        ap.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, type=kind, default=None,
                        metavar=YES_NO if kind is yes_no else None, choices=f.metadata["choices"],
                        help=f.metadata["help"] + ("" if f.default is None else f" (default: {spell(f.default)})"))
    ap.add_argument("--resume", action="store_true", help="continue the run in --out from its latest.pt")
    ap.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    ap.add_argument("--paper", action="store_true", help="the paper's configuration even on a CPU (no CPU preset)")
    args = ap.parse_args(argv)
    device = args.device or default_device()
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


def vocoder_notice(cfg: TrainConfig) -> str | None:
    """Before a first run trains anything: the line saying that its --samples need the data set's vocoder,
    which it trains after the GAN (once per data set); None when there is one, or no samples are asked for."""
    if not cfg.samples or cfg.vocoder is not None:
        return None
    data = cfg.data or default_data_dir(cfg.loops)
    if melgan.trained_default(cfg.loops, data) is not None:
        return None
    return (f"Note: this data set has no trained vocoder yet, so after training this first run also trains one "
            f"for its --samples WAVs (about {QUICK_MINUTES:g} minutes on a CPU, once per data set); "
            "--samples 0 skips it.")


def main(argv=None) -> None:
    cfg, resume, device = parse_args(argv)
    try:
        notice = vocoder_notice(cfg) if distributed.env_rank() == 0 else None
        if notice:
            print(notice, flush=True)
        out = train(cfg, device=device, resume=resume)
        if cfg.samples and distributed.env_rank() == 0:      # the run ends with sound (sample.py does the rest)
            finish_quick_start(out, cfg.data, cfg.loops, cfg.vocoder, device=device, n=cfg.samples)
    except (FeatureNetUnavailable, CheckpointError, FloatingPointError, ValueError, FileNotFoundError,
            distributed.PeerFailed) as e:
        distributed.leave(f"train.py: {e}")      # one line on every rank, no traceback
    except OSError as e:
        if not is_disk_full(e):
            distributed.close()
            raise
        distributed.leave(f"train.py: {disk_full_line(e, 'run again with --resume')}")   # exit status 1
    except BaseException:
        distributed.close()                       # anything else: its traceback, as Python prints it
        raise
    distributed.leave()


if __name__ == "__main__":
    main()
