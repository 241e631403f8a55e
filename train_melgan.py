"""Training the MelGAN vocoder on a loop data set (paper Section 4, "Pipeline"; docs/design.md §6;
Kumar et al. 2019, "MelGAN"). The networks are melgan.py's.

    python train_melgan.py --loops drum [--data DIR] [--steps N] [--minutes M] [--resume]

writes checkpoints/melgan_<loops>.pt (every SAVE_EVERY steps, at the end and on Ctrl-C), which
melgan.load_vocoder (sample.py, evaluate.py) picks up.

Layout: random windows of the loops' audio (B, N=segment) -> their log10 mels (B, F=64, N/160) -> G ->
fake audio (B, 1, N). The multi-scale discriminator sees real and fake audio (B, 1, N).

Losses (MelGAN): hinge on each scale's logits -- the same formula as the Projected GAN's heads, so
losses.d_hinge / losses.g_hinge on `melgan.scale_logits(...)` -- plus lambda = 10 times an L1 feature
matching between the discriminator's feature maps on real and fake audio.
"""
from __future__ import annotations

import argparse
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torch.nn.functional as F
from tqdm import tqdm

import demo.loops
from plumbing.checkpoint import CheckpointError, StopRequest, load_checkpoint, save_checkpoint
from plumbing.files import read_csv
from losses import d_hinge, g_hinge
from mel import HOP, LOOP_SAMPLES, SR, log_mel
from melgan import (D_N_DOWN, G_CHANNELS, MELGAN_D_MAX_CHANNELS, MELGAN_KEYS, MelGANConfig, MelGANDiscriminator,
                    MelGANGenerator, default_checkpoint, scale_logits)

# ---------------------------------------------------------------------------------------------
# The numbers of MelGAN's training (Kumar et al. 2019; docs/design.md §6), named once.
# ---------------------------------------------------------------------------------------------
LAMBDA_FM = 10.0                 # weight of the L1 feature-matching loss (MelGAN paper, eq. 5)
LR = 1e-4                        # Adam, both networks (MelGAN)
BETAS = (0.5, 0.9)               # Adam betas (MelGAN)
SEGMENT = 8000                   # training segment: 0.5 s = 50 frames. MelGAN uses 8192 samples = 32 of
#                                  its 256-sample frames; 8192 is not a multiple of our hop 160, 8000 is.
BATCH = 16                       # MelGAN's batch size
SAVE_EVERY = 500                 # steps between checkpoints (plus one at the end and on Ctrl-C)
SEED_STRIDE = 1_000_003          # batch-order seed = seed * stride + step: a resumed run draws new batches
DEFAULT_STEPS = 1000             # steps of a run given neither --steps nor --minutes


# ---------------------------------------------------------------------------------------------
# Feature matching (the hinge terms are losses.py's, on melgan.scale_logits)
# ---------------------------------------------------------------------------------------------
def feature_matching(real: list[list[torch.Tensor]], fake: list[list[torch.Tensor]]) -> torch.Tensor:
    """L1 distance between the discriminator's feature maps (all but the logits) for real and fake audio.

    Weighted as MelGAN's code does (its paper gives only the overall lambda = 10): 1 / n_scales per scale
    and 4 / (n_down + 1) per layer, so the total stays comparable whatever the number of layers.
    Real features are detached: the generator chases them, it does not move them."""
    w = (1.0 / len(real)) * (4.0 / (D_N_DOWN + 1))
    return sum(w * F.l1_loss(f_map, r_map.detach())
               for r, f in zip(real, fake) for r_map, f_map in zip(r[:-1], f[:-1]))


@dataclass
class MelGANTrainConfig:
    """What a run was asked to do (stored in the checkpoint for the record; the architecture is `model`)."""
    loops: str = "drum"
    data: str = ""
    batch: int = BATCH
    segment: int = SEGMENT
    lr: float = LR
    betas: tuple = BETAS
    lambda_fm: float = LAMBDA_FM
    seed: int = 0
    model: MelGANConfig = field(default_factory=MelGANConfig)


# ---------------------------------------------------------------------------------------------
# Data and the training loop
# ---------------------------------------------------------------------------------------------
def load_loop_audio(data_dir: str | Path) -> torch.Tensor:
    """Every loop of a data set (manifest.csv + wav/<id>.wav) as one (N, 32000) float tensor."""
    data_dir = Path(data_dir)
    rows = read_csv(data_dir / "manifest.csv")
    if not rows:
        raise FileNotFoundError(f"{data_dir} has no manifest.csv listing loops: run preprocess.py or "
                                "demo/loops.py first, or pass --data")
    loops = []
    for r in rows:
        wav = data_dir / "wav" / f"{r['id']}.wav"
        audio, sr = sf.read(wav, dtype="float32", always_2d=False)
        if sr != SR or audio.shape != (LOOP_SAMPLES,):
            raise ValueError(f"{wav}: expected {LOOP_SAMPLES} mono samples at {SR} Hz, got {audio.shape} at {sr} Hz")
        loops.append(audio)
    return torch.from_numpy(np.stack(loops))                                          # (N, 32000)


def random_segments(loops: torch.Tensor, batch: int, segment: int, gen: torch.Generator) -> torch.Tensor:
    """(N, 32000) loops -> (batch, segment) random windows. Loops are periodic, so a window may run off
    the end and continue at the start (a wrap is just more of the loop): every offset is equally likely."""
    n, length = loops.shape
    which = torch.randint(n, (batch,), generator=gen)                                 # (batch,)
    start = torch.randint(length, (batch,), generator=gen)                            # (batch,)
    idx = (start[:, None] + torch.arange(segment)[None]) % length                      # (batch, segment)
    return loops[which[:, None], idx]                                                 # (batch, segment)


class MelGANTrainer:
    """G, D, their Adam optimisers and the step count: everything a checkpoint holds."""

    def __init__(self, cfg: MelGANTrainConfig, device: torch.device):
        self.cfg, self.device = cfg, device
        self.G = MelGANGenerator(cfg.model).to(device)
        self.D = MelGANDiscriminator(cfg.model).to(device)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=cfg.lr, betas=tuple(cfg.betas))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=cfg.lr, betas=tuple(cfg.betas))
        self.step = 0

    def train_step(self, audio: torch.Tensor) -> dict[str, float]:
        """One D update then one G update on real audio (B, segment). Returns the losses as floats;
        raises FloatingPointError (before touching the weights) if any loss is not finite."""
        real = audio.to(self.device)[:, None]                                         # (B, 1, N)
        mel = log_mel(real[:, 0])                                                     # (B, 64, N / 160)
        fake = self.G(mel)                                                            # (B, 1, N)

        d_real = self.D(real)
        loss_d = d_hinge(scale_logits(d_real), scale_logits(self.D(fake.detach())))
        if not torch.isfinite(loss_d):
            raise FloatingPointError(f"discriminator loss is {loss_d.item()} at step {self.step}")
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()

        # G step. The real features for matching are the ones computed before D's update (as MelGAN's
        # code): a one-step-stale target that saves a second D pass on real audio.
        d_fake = self.D(fake)
        loss_adv = g_hinge(scale_logits(d_fake))
        loss_fm = feature_matching(d_real, d_fake)
        loss_g = loss_adv + self.cfg.lambda_fm * loss_fm
        if not torch.isfinite(loss_g):
            raise FloatingPointError(f"generator loss is {loss_g.item()} at step {self.step}")
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        self.step += 1
        with torch.no_grad():   # monitoring only, as MelGAN's "mel reconstruction error"
            mel_l1 = F.l1_loss(log_mel(fake.detach()[:, 0]), mel).item()
        return {"d": loss_d.item(), "g_adv": loss_adv.item(), "fm": loss_fm.item(), "mel_l1": mel_l1}

    def state(self) -> dict:
        return {"kind": "melgan", "G": self.G.state_dict(), "D": self.D.state_dict(),
                "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
                "step": self.step, "config": asdict(self.cfg.model), "train": asdict(self.cfg)}

    def save(self, path: str | Path) -> None:
        save_checkpoint(self.state(), path)

    @classmethod
    def resume(cls, path: str | Path, cfg: MelGANTrainConfig, device: torch.device) -> "MelGANTrainer":
        """Rebuild from a checkpoint. The architecture comes from the checkpoint (the CLI cannot change
        it); batch and segment come from `cfg` (they do not change the weights' shapes)."""
        ckpt = load_checkpoint(path, map_location=device,
                               required=MELGAN_KEYS + ("D", "opt_g", "opt_d", "step"))
        if ckpt["kind"] != "melgan":
            raise CheckpointError(f"{path} is a '{ckpt['kind']}' checkpoint, not a MelGAN training checkpoint")
        cfg.model = MelGANConfig(**ckpt["config"])
        t = cls(cfg, device)
        try:
            t.G.load_state_dict(ckpt["G"])
            t.D.load_state_dict(ckpt["D"])
            t.opt_g.load_state_dict(ckpt["opt_g"])
            t.opt_d.load_state_dict(ckpt["opt_d"])
        except (RuntimeError, ValueError, KeyError) as e:
            raise CheckpointError(f"{path}: saved weights do not fit its own config ({e})") from e
        t.step = int(ckpt["step"])
        return t


def resolve_data(loops: str, data: str | None) -> Path:
    """--data if given, else the embedded demo set (built on first use by demo/loops.py)."""
    return Path(data) if data else Path(demo.loops.ensure_demo_set(loops))


def train_melgan(cfg: MelGANTrainConfig, out: Path, steps: int | None, minutes: float | None, resume: bool,
                 save_every: int = SAVE_EVERY, device: str | None = None, progress: bool = True) -> MelGANTrainer:
    """Train until `steps` (a total, so a resumed run continues to it) or `minutes` of wall time run out,
    whichever comes first; checkpoint every `save_every` steps, at the end, and on Ctrl-C."""
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if cfg.segment % HOP or cfg.segment < 4 * HOP:
        raise ValueError(f"--segment {cfg.segment}: must be a multiple of the hop {HOP} and >= {4 * HOP} "
                         f"(e.g. {SEGMENT}) so that mel frames and samples line up")
    loops = load_loop_audio(cfg.data).to(dev)                                         # (N, 32000)
    if resume and out.is_file():
        trainer = MelGANTrainer.resume(out, cfg, dev)
        print(f"melgan: resumed {out} at step {trainer.step}")
    else:
        if out.is_file() and not resume:
            raise SystemExit(f"train_melgan.py: {out} exists; pass --resume to continue it or choose another --out")
        if resume:
            print(f"melgan: --resume but no checkpoint at {out}; starting from scratch")
        torch.manual_seed(cfg.seed)
        trainer = MelGANTrainer(cfg, dev)
    gen = torch.Generator().manual_seed(cfg.seed * SEED_STRIDE + trainer.step)       # new batches after a resume
    deadline = time.monotonic() + 60 * minutes if minutes else math.inf
    target = steps if steps is not None else (math.inf if minutes else trainer.step + DEFAULT_STEPS)
    print(f"melgan: {len(loops)} loops from {cfg.data} on {dev}; batch {cfg.batch} x {cfg.segment} samples; "
          f"{'until step ' + str(target) if target < math.inf else ''}"
          f"{' within ' + str(minutes) + ' min' if minutes else ''} -> {out}")
    bar = tqdm(initial=trainer.step, total=None if target == math.inf else target, disable=not progress,
               unit="step", dynamic_ncols=True)
    last_saved = trainer.step
    stop = StopRequest()
    try:
        while trainer.step < target and time.monotonic() < deadline and not stop.requested:
            batch = random_segments(loops, cfg.batch, cfg.segment, gen)                # (B, segment)
            try:
                losses = trainer.train_step(batch)
            except FloatingPointError as e:
                raise SystemExit(f"train_melgan.py: stopped: {e}. Nothing was saved after it; the last good "
                                 f"checkpoint is {out if out.is_file() else '(none saved yet)'}. Try a lower "
                                 "--lr or resume from it.") from e
            bar.update(1)
            bar.set_postfix({k: f"{v:.3f}" for k, v in losses.items()})
            if trainer.step % save_every == 0:
                trainer.save(out)
                last_saved = trainer.step
    finally:
        bar.close()
        stop.restore()
    if trainer.step != last_saved or not out.is_file():
        trainer.save(out)
    if stop.requested:
        print(f"\nmelgan: interrupted; saved step {trainer.step} to {out} (continue with --resume)")
        return trainer
    print(f"melgan: saved step {trainer.step} to {out}")
    return trainer


def main(argv=None):
    p = argparse.ArgumentParser(description="Train the MelGAN vocoder on a loop data set (docs/design.md §6).")
    p.add_argument("--loops", required=True, help="drum or synth: names the demo set and the checkpoint")
    p.add_argument("--data", help="data set directory (dataset.py layout); default: the embedded demo set")
    p.add_argument("--steps", type=int, help=f"train until this total step count (default: {DEFAULT_STEPS} more, "
                   "or unlimited with --minutes)")
    p.add_argument("--minutes", type=float, help="stop after this many minutes of wall time")
    p.add_argument("--batch", type=int, default=BATCH)
    p.add_argument("--segment", type=int, default=SEGMENT,
                   help=f"samples per training segment; a multiple of {HOP} (default {SEGMENT} = 0.5 s)")
    p.add_argument("--lr", type=float, default=LR)
    p.add_argument("--out", type=Path, help="checkpoint (default checkpoints/melgan_<loops>.pt)")
    p.add_argument("--resume", action="store_true", help="continue from --out")
    p.add_argument("--save-every", type=int, default=SAVE_EVERY)
    p.add_argument("--g-channels", type=int, default=G_CHANNELS, help="generator width (512 = MelGAN)")
    p.add_argument("--d-max-channels", type=int, default=MELGAN_D_MAX_CHANNELS, help="discriminator width cap")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", help="cpu or cuda (default: cuda if available)")
    p.add_argument("--threads", type=int, help="CPU threads for torch")
    a = p.parse_args(argv)
    for name in ("steps", "batch", "save_every", "threads"):
        v = getattr(a, name)
        if v is not None and v < (0 if name == "steps" else 1):
            p.error(f"--{name.replace('_', '-')} must be positive, got {v}")
    if a.threads:
        torch.set_num_threads(a.threads)
    try:
        model = MelGANConfig(g_channels=a.g_channels, d_max_channels=a.d_max_channels)
    except ValueError as e:
        p.error(str(e))
    out = a.out or default_checkpoint(a.loops)
    data = resolve_data(a.loops, a.data)
    cfg = MelGANTrainConfig(loops=a.loops, data=str(data), batch=a.batch, segment=a.segment, lr=a.lr,
                            seed=a.seed, model=model)
    try:
        train_melgan(cfg, out, a.steps, a.minutes, a.resume, a.save_every, a.device)
    except (CheckpointError, FileNotFoundError, ValueError) as e:
        raise SystemExit(f"train_melgan.py: {e}") from e


if __name__ == "__main__":
    main()
