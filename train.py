"""Train a Projected StyleGAN2 (or the plain StyleGAN2 baseline) on one-bar loops.

Paper Section 2 (Projected GAN, eq. 1), Section 4 (generator and pipeline), docs/design.md §3-§5.

    python train.py --loops drum --features vgg,scnn_loop     # the paper's fusion model (VGGish downloaded once)
    python train.py --loops drum --features aisfx             # offline general network (no download needed)
    python train.py --loops synth --features none             # StyleGAN2 baseline, Table 1 rows B/C

One step: D sees a real batch and a fake batch in separate passes (batch-norm statistics stay per-domain),
then G is updated through the frozen projector, then the EMA generator follows G. Data: (B, 1, T=200, F=64)
standardised mels (preprocess.LoopMelDataset); the embedded demo set is rendered and cached on first use.

Everything a run needs to continue exactly is in its checkpoint: G, D, EMA, both optimisers, the step, the
RNG states, the mel stats, the feature names and the config. Checkpoints are written atomically.
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

import features
import losses
import preprocess as P
from checkpoint import CheckpointError, StopRequest, load_checkpoint, save_checkpoint
from discriminator import ProjectedDiscriminator, StyleGAN2Discriminator
from generator import Generator, GeneratorConfig, ema_beta, update_ema
from projector import PROJECTOR_SEED


@dataclass
class TrainConfig:
    loops: str = "drum"
    features: str = "vgg,scnn_loop"   # comma list of features.REGISTRY names, or 'none'
    data: str | None = None           # preprocessed data set; None = the embedded demo loops
    out: str | None = None            # run directory; None = runs/<loops>_<features>
    batch: int = 64                   # the authors' script
    g_channels: int = 512             # the paper: 512 channels at every resolution (GPU default)
    d_channels: int = 512             # width cap of the baseline StyleGAN2 discriminator
    lr: float = 0.002                 # StyleGAN2's Adam learning rate (docs/design.md §5)
    ema_half_life: int = 10_000       # images; beta = 0.5 ** (batch / 10 000)
    ema_rampup: float = 0.05          # half-life <= 5 % of the images seen so far (StyleGAN2-ADA's code), so
                                      # the EMA generator is not stuck at its initial weights in short runs
    steps: int | None = None          # stop after this many steps ...
    minutes: float | None = None      # ... or after this many minutes of training in this call, whichever first
    seed: int = 0
    sample_every: int = 500           # steps between mel-grid PNGs of fixed-seed EMA samples
    ckpt_every: int = 500             # steps between (atomic) latest.pt checkpoints
    snapshot_every: int = 5000        # steps between kept ckpt_<step>.pt files (for evaluate.py --curve)
    csm_kernel: int = 3               # the paper's 3x3 cross-scale mixing (the authors' code: 1x1)
    csm_upsample: bool = True         # CSM ends with bilinear x2, as the authors' code (docs/design.md §3)
    vggish: str | None = None         # path to the official VGGish weights (else env / hub cache)


# A 2-core CPU cannot train the paper's configuration (52 GMAC per generated loop, `python generator.py`); this preset makes the
# README's quick start finish on its own in about a quarter of an hour and still leave a checkpoint and a grid.
CPU_PRESET = dict(batch=8, g_channels=32, d_channels=32, csm_upsample=False, minutes=8.0, sample_every=50,
                  ckpt_every=50, snapshot_every=200)
G_LAZY, D_LAZY = losses.lazy_ratio(losses.PL_INTERVAL), losses.lazy_ratio(losses.R1_INTERVAL)  # docs/design.md §5: 4/5, 16/17
ADAM_BETA2 = 0.99                 # StyleGAN2's Adam betas are (0, 0.99), raised to the lazy ratio
N_GRID = 16                       # fixed-seed EMA samples in each grid PNG
GRID_SEED = 1234                  # the same latents in every grid, so grids show progress, not new samples
IDENTITY_KEYS = ("loops", "features", "g_channels", "d_channels", "csm_kernel", "csm_upsample", "seed")  # resume must match


def frozen_fingerprint(D: torch.nn.Module) -> str:
    """A hash of every tensor of D that must never change: feature networks and CCM/CSM (params and buffers)."""
    trainable = {id(p) for p in D.parameters() if p.requires_grad}
    h = hashlib.sha1()
    for name, t in list(D.named_parameters()) + list(D.named_buffers()):
        frozen_part = "projector" in name or "feature" in name
        if id(t) not in trainable and frozen_part:
            h.update(name.encode())
            h.update(t.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()


def build_models(cfg: TrainConfig, names: list[str], nets: dict, device: str):
    g_cfg = GeneratorConfig(max_channels=cfg.g_channels)
    G = Generator(g_cfg).to(device)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    if names:
        # The random CCM/CSM projection is part of the model: one fixed seed (docs/design.md §3), not --seed.
        D = ProjectedDiscriminator([nets[n] for n in names], seed=PROJECTOR_SEED, csm_kernel=cfg.csm_kernel,
                                   upsample=cfg.csm_upsample)
    else:
        D = StyleGAN2Discriminator(max_channels=cfg.d_channels)
    return g_cfg, G, G_ema, D.to(device)


def autocast_for(device: str):
    """A context-manager factory: bf16 autocast on CUDA, plain float32 elsewhere."""
    if device == "cuda":
        return lambda: torch.autocast("cuda", dtype=torch.bfloat16)
    return lambda: torch.autocast("cpu", enabled=False)


def d_step(G, D, real, z, cfg_baseline: bool, step: int, autocast):
    """Discriminator loss on a real and a (detached) fake batch, in separate passes."""
    with autocast():
        with torch.no_grad():
            fake = G(z)                                                                 # (B, 1, 200, 64)
        real_logits, fake_logits = D(real), D(fake)
        loss = (losses.d_logistic(real_logits, fake_logits) if cfg_baseline
                else losses.d_hinge(real_logits, fake_logits))
    if cfg_baseline and step % losses.R1_INTERVAL == 0:     # lazy R1 (docs/design.md §4), in full precision
        real_r1 = real.detach().requires_grad_(True)
        r1 = losses.r1_penalty(D(real_r1), real_r1)
        loss = loss + losses.r1_loss_weight() * r1
    return loss


def g_step(G, D, z, cfg_baseline: bool, autocast):
    with autocast():
        fake_logits = D(G(z))
        return losses.g_nonsaturating(fake_logits) if cfg_baseline else losses.g_hinge(fake_logits)


def ema_half_life(cfg: TrainConfig, step: int) -> float:
    """EMA half-life in images at `step`: 10 k images, ramped up over the first images of the run."""
    seen = (step + 1) * cfg.batch
    return min(cfg.ema_half_life, seen * cfg.ema_rampup) if cfg.ema_rampup else cfg.ema_half_life


def check_finite(which: str, loss: torch.Tensor, step: int, out: Path) -> None:
    """Stop before a NaN/inf reaches the weights; the last good checkpoint stays as it was."""
    if not torch.isfinite(loss):
        raise FloatingPointError(f"non-finite {which} loss ({loss.item()}) at step {step}: stopping; the last good "
                                 f"checkpoint {out / 'latest.pt'} is left as it was (try a lower --lr or another --seed)")


def rng_state(gen: torch.Generator) -> dict:
    state = {"torch": torch.get_rng_state(), "sampler": gen.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(gen: torch.Generator, state: dict) -> None:
    torch.set_rng_state(state["torch"])
    gen.set_state(state["sampler"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def train(cfg: TrainConfig, device: str | None = None, resume: bool = False) -> Path:
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    names = features.parse_feature_names(cfg.features)
    baseline = not names
    out = Path(cfg.out or f"runs/{cfg.loops}_{'_'.join(names) or 'stylegan2'}")
    if not resume and (out / "latest.pt").exists():
        raise CheckpointError(f"{out / 'latest.pt'} exists: pass --resume to continue that run, "
                              "or choose another --out (nothing was overwritten)")
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)    # latents and batch indices: saved, so resume is exact

    # Feature networks. VGGish first: missing weights must stop us before any other work is done.
    ctx = features.FeatureContext(loops=cfg.loops, device=device, vggish_path=cfg.vggish)
    nets = {n: features.build(n, ctx) for n in names if n == "vgg"}
    if cfg.data is None:
        import demoloops
        cfg.data = str(demoloops.ensure_demo_set(cfg.loops))
    ctx.data_dir = cfg.data
    nets.update({n: features.build(n, ctx) for n in names if n not in nets})
    data = P.LoopMelDataset(cfg.data)
    reals = data.mels.to(device)                                                        # (N, 1, T=200, F=64)

    g_cfg, G, G_ema, D = build_models(cfg, names, nets, device)
    if device == "cuda":     # NHWC convolutions are the fast path for bf16 tensor cores
        G, G_ema, D = (m.to(memory_format=torch.channels_last) for m in (G, G_ema, D))
        reals = reals.contiguous(memory_format=torch.channels_last)
    d_params = [p for p in D.parameters() if p.requires_grad]      # never the feature nets nor CCM/CSM
    opt_G = torch.optim.Adam(G.parameters(), lr=cfg.lr * G_LAZY, betas=(0.0, ADAM_BETA2 ** G_LAZY))
    opt_D = torch.optim.Adam(d_params, lr=cfg.lr * D_LAZY, betas=(0.0, ADAM_BETA2 ** D_LAZY))
    step, seconds = 0, 0.0
    fingerprint = frozen_fingerprint(D)

    def state() -> dict:
        return {"g": G.state_dict(), "d": D.state_dict(), "g_ema": G_ema.state_dict(),
                "opt_g": opt_G.state_dict(), "opt_d": opt_D.state_dict(), "step": step,
                "train_seconds": seconds, "rng": rng_state(gen), "g_config": asdict(g_cfg),
                "mel_mean": torch.from_numpy(data.mean), "mel_std": torch.from_numpy(data.std),
                "features": names, "loops": cfg.loops, "config": asdict(cfg), "frozen": fingerprint}

    if resume and (out / "latest.pt").exists():
        # On the CPU: RNG states must stay CPU tensors; load_state_dict moves the rest to the device.
        ck = load_checkpoint(out / "latest.pt", map_location="cpu", required=("g", "d", "config", "rng"))
        diff = {k: (ck["config"].get(k), getattr(cfg, k)) for k in IDENTITY_KEYS if ck["config"].get(k) != getattr(cfg, k)}
        if diff or not torch.equal(ck["mel_mean"], torch.from_numpy(data.mean)):
            raise CheckpointError(f"{out / 'latest.pt'} was trained with another configuration "
                                  f"({diff or 'other data set statistics'}): use another --out, or drop --resume")
        G.load_state_dict(ck["g"]); D.load_state_dict(ck["d"]); G_ema.load_state_dict(ck["g_ema"])
        opt_G.load_state_dict(ck["opt_g"]); opt_D.load_state_dict(ck["opt_d"])
        step, seconds = ck["step"], ck["train_seconds"]
        set_rng_state(gen, ck["rng"])
        fingerprint = frozen_fingerprint(D)      # the frozen parts as the checkpoint restored them
        print(f"resumed {out / 'latest.pt'} at step {step}")
    out.mkdir(parents=True, exist_ok=True)

    def checkpoint(snapshot: bool = False) -> None:
        if frozen_fingerprint(D) != fingerprint:
            raise RuntimeError("a frozen network (feature net or CCM/CSM) changed during training: this is a bug")
        if not all(torch.isfinite(p).all() for p in list(G.parameters()) + d_params):
            raise FloatingPointError(f"non-finite weights at step {step} (finite loss, non-finite gradients): "
                                     f"not saved; the last good checkpoint {out / 'latest.pt'} is left as it was")
        s = state()
        save_checkpoint(s, out / "latest.pt")
        if snapshot:
            save_checkpoint(s, out / f"ckpt_{step:07d}.pt")

    def sample_grid() -> None:
        from sample import save_mel_grid
        z = torch.randn(N_GRID, g_cfg.z_dim, generator=torch.Generator().manual_seed(GRID_SEED)).to(device)
        with torch.no_grad():
            x = G_ema(z, noise_mode="const").float()[:, 0].transpose(1, 2)                # (16, F=64, T=200)
        mel = P.destandardise(x.cpu().numpy(), data.mean, data.std)
        save_mel_grid(mel, out / f"grid_{step:07d}.png", title=f"{out.name} step {step}")

    autocast = autocast_for(device)
    total = cfg.steps if cfg.steps is not None else None
    bar = tqdm(total=total, initial=step, desc=out.name, dynamic_ncols=True, file=sys.stdout)
    G.train(); D.train()
    t0, seconds_before = time.time() - seconds, seconds
    stop = StopRequest()
    try:
        while (cfg.steps is None or step < cfg.steps) and not stop.requested and \
                (cfg.minutes is None or seconds - seconds_before < 60 * cfg.minutes):
            idx = torch.randint(len(reals), (cfg.batch,), generator=gen).to(device)
            real = reals[idx]                                                           # (B, 1, 200, 64)
            z_d = torch.randn(cfg.batch, g_cfg.z_dim, generator=gen).to(device)
            z_g = torch.randn(cfg.batch, g_cfg.z_dim, generator=gen).to(device)

            for p in d_params:
                p.requires_grad_(True)
            loss_d = d_step(G, D, real, z_d, baseline, step, autocast)
            check_finite("D", loss_d, step, out)
            opt_D.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_D.step()

            for p in d_params:
                p.requires_grad_(False)
            loss_g = g_step(G, D, z_g, baseline, autocast)
            check_finite("G", loss_g, step, out)
            opt_G.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_G.step()
            update_ema(G_ema, G, ema_beta(cfg.batch, ema_half_life(cfg, step)))

            step += 1
            seconds = time.time() - t0
            bar.update(1)
            bar.set_postfix(loss_d=f"{loss_d.item():.3f}", loss_g=f"{loss_g.item():.3f}",
                            it_s=f"{step / max(seconds, 1e-9):.2f}" if step else "-")
            if step % cfg.sample_every == 0:
                sample_grid()
            if step % cfg.ckpt_every == 0 or step % cfg.snapshot_every == 0:
                checkpoint(snapshot=step % cfg.snapshot_every == 0)
    finally:
        bar.close()
        stop.restore()
    if stop.requested:
        print(f"\ninterrupted after step {step}: saving {out / 'latest.pt'} (continue with --resume)")
    checkpoint(snapshot=True)
    sample_grid()
    print(f"done: {step} steps in {seconds / 60:.1f} min; checkpoint {out / 'latest.pt'}, "
          f"samples {out / f'grid_{step:07d}.png'}")
    return out


def _yes_no(s: str) -> bool:
    if s.lower() not in ("1", "0", "true", "false", "yes", "no"):
        raise argparse.ArgumentTypeError(f"expected yes/no, got {s!r}")
    return s.lower() in ("1", "true", "yes")


def parse_args(argv=None) -> tuple[TrainConfig, bool, str | None]:
    ap = argparse.ArgumentParser(description="Train a Projected StyleGAN2 on one-bar loops (pjloop).")
    defaults = TrainConfig()
    for f in fields(TrainConfig):
        kind = {bool: _yes_no, int: int, float: float}.get(type(f.default), str)
        kind = {"steps": int, "minutes": float}.get(f.name, kind)
        ap.add_argument(f"--{f.name}", type=kind, default=None, help=f"default: {getattr(defaults, f.name)}")
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
        if preset:
            print("No GPU: using the small CPU preset (" + ", ".join(f"{k}={v}" for k, v in preset.items()) +
                  "); pass --paper for the paper's configuration, or set any of these flags yourself.")
    return cfg, args.resume, device


if __name__ == "__main__":
    cfg, resume, device = parse_args()
    try:
        train(cfg, device=device, resume=resume)
    except (features.FeatureNetUnavailable, CheckpointError, FloatingPointError, ValueError, FileNotFoundError) as e:
        sys.exit(f"train.py: {e}")
