"""Training a vocoder on a loop data set: the paper's MelGAN (Section 4, "Pipeline"; docs/design.md §6;
Kumar et al. 2019) or the fast vocoder (vocos.py; docs/vocoder.md), which a CPU trains in minutes.

    python train_melgan.py --loops drum [--data DIR] [--minutes M] [--steps N] [--out PATH] [--arch fast|melgan]

The first line says which and why (the fast one on every device unless --arch melgan). Writes PATH (default
melgan.default_checkpoint: $PJLOOP_HOME/checkpoints/vocoder_<loops>_<data set>_<manifest fingerprint>.pt;
melgan.load_vocoder loads it), PATH's .jsonl log (minutes, step, losses) and
_snapshots/ (the generator every few minutes: experiments/bench_vocoder.py --log draws quality vs minutes).
Layout: windows of the loops' audio (B, N) -> log10 mels (B, F=64, N/160) -> G -> (B, 1, N). The vocoder trains
on the 'train' part of the data set (dataset.split_rows: 80 % of the source files) and records those sources
(`trained_sources`), so the benchmark scores it on files it never heard. MelGAN's losses: hinge on each
scale's logits plus 10 x feature matching; the fast vocoder's: vocos.py.
"""
from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torch.nn.functional as F

import demo.loops
import melgan
import vocos
from dataset import sources_of, split_ids
from losses import d_hinge, g_hinge
from mel import HOP, LOOP_SAMPLES, SR, log_mel
from melgan import D_N_DOWN, G_CHANNELS, MELGAN_D_MAX_CHANNELS, MelGANConfig, scale_logits
from plumbing.checkpoint import CheckpointError, StopRequest, load_checkpoint, save_checkpoint, tensor_bytes
from plumbing.cli import YES_NO, yes_no
from plumbing.devices import default_device
from plumbing.files import checkpoint_safe_line, disk_full_line, is_disk_full, on_disk_full, read_csv
from plumbing.progress import Progress

# ---------------------------------------------------------------------------------------------
# The numbers of training, named once.
# ---------------------------------------------------------------------------------------------
LAMBDA_FM = 10.0                 # MelGAN: weight of the L1 feature-matching loss (MelGAN paper, eq. 5)
LR = {"melgan": 1e-4,            # MelGAN's Adam learning rate, both networks
      "fast": 1e-3}              # 2 x Vocos' peak 5e-4: lower losses at equal steps, better 8-min vocoder (docs/vocoder.md)
BETAS = {"melgan": (0.5, 0.9),   # MelGAN's Adam betas
         "fast": (0.8, 0.9)}     # Vocos' / HiFi-GAN's AdamW betas
SEGMENT = 8000                   # training segment: 0.5 s = 50 frames (MelGAN: 8192 = 32 of its 256-hop frames)
BATCH = 16                       # MelGAN's batch size (Vocos: 16 too)
SAVE_EVERY = 500                 # steps between checkpoints (plus one at the end and on Ctrl-C)
SEED_STRIDE = 1_000_003          # batch-order seed = seed * stride + step: a resumed run draws new batches
DEFAULT_STEPS = 1000             # steps of a run given neither --steps nor --minutes
LOG_EVERY = 25                   # steps between two lines of the training log
SNAPSHOT_MINUTES = 5.0           # minutes of training between two generator snapshots (the quality curve)
FINAL_LR = 0.1                   # fast, with --minutes: cosine decay of the lr to 10 % at the deadline (Vocos
#                                  decays over its whole run; a resumed run decays again over its own minutes)
QUICK_MINUTES = 8.0              # the quick start's one-off vocoder training (train.py; the target: <= 10 min)
ARCHS = ("fast", "melgan")
DEFAULT_ARCH = "fast"            # on every device: measured to converge in minutes (docs/vocoder.md); MelGAN
#                                  takes hours to days even on a GPU, so it is asked for by name (--arch melgan)


def feature_matching(real: list[list[torch.Tensor]], fake: list[list[torch.Tensor]]) -> torch.Tensor:
    """MelGAN: L1 between the discriminator's feature maps (logits excluded) for real and fake audio,
    weighted as MelGAN's code (1 / n_scales per scale, 4 / (n_down + 1) per layer); real ones detached."""
    w = (1.0 / len(real)) * (4.0 / (D_N_DOWN + 1))
    return sum(w * F.l1_loss(f_map, r_map.detach())
               for r, f in zip(real, fake) for r_map, f_map in zip(r[:-1], f[:-1]))


@dataclass
class TrainConfig:
    """What a run was asked to do (stored in the checkpoint; the architecture is `model` or `fast`)."""
    loops: str = "drum"
    data: str = ""
    arch: str = "fast"
    batch: int = BATCH
    segment: int = SEGMENT
    lr: float | None = None                 # None: LR[arch]
    seed: int = 0
    gan_after: float | None = None          # fast only: minutes of reconstruction-only training before the
    #                                         spectrogram discriminator joins (None: never)
    model: MelGANConfig = field(default_factory=MelGANConfig)
    fast: vocos.VocosConfig = field(default_factory=vocos.VocosConfig)


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------
def load_loop_audio(data_dir: str | Path, ids: list[str] | None = None) -> torch.Tensor:
    """Loops of a data set (manifest.csv + wav/<id>.wav; `ids`: only those, in that order) -> (N, 32000)."""
    data_dir = Path(data_dir)
    rows = read_csv(data_dir / "manifest.csv")
    if not rows:
        raise FileNotFoundError(f"{data_dir} has no manifest.csv listing loops: run preprocess.py or "
                                "demo/loops.py first, or pass --data")
    loops = []
    for i in ids if ids is not None else [r["id"] for r in rows]:
        wav = data_dir / "wav" / f"{i}.wav"
        audio, sr = sf.read(wav, dtype="float32", always_2d=False)
        if sr != SR or audio.shape != (LOOP_SAMPLES,):
            raise ValueError(f"{wav}: expected {LOOP_SAMPLES} mono samples at {SR} Hz, got {audio.shape} at {sr} Hz")
        loops.append(audio)
    return torch.from_numpy(np.stack(loops))                                          # (N, 32000)


def training_ids(data_dir: str | Path) -> list[str] | None:
    """The loops a vocoder trains on: the 'train' part (dataset.split_ids; every loop of a set too small to
    hold files out). None when there is no manifest (load_loop_audio then says what to do)."""
    return split_ids(data_dir, "train") if (Path(data_dir) / "manifest.csv").is_file() else None


def random_segments(loops: torch.Tensor, batch: int, segment: int, gen: torch.Generator) -> torch.Tensor:
    """(N, 32000) loops -> (batch, segment) random windows. Loops are periodic, so a window may run off
    the end and continue at the start (a wrap is just more of the loop): every offset is equally likely."""
    n, length = loops.shape
    which = torch.randint(n, (batch,), generator=gen).to(loops.device)                # (batch,)
    start = torch.randint(length, (batch,), generator=gen).to(loops.device)           # (batch,)
    idx = (start[:, None] + torch.arange(segment, device=loops.device)[None]) % length  # (batch, segment)
    return loops[which[:, None], idx]                                                 # (batch, segment)


# ---------------------------------------------------------------------------------------------
# The two trainers: G, D, their optimisers, the step count and the minutes trained (what a checkpoint holds)
# ---------------------------------------------------------------------------------------------
class Trainer:
    arch = "?"

    def __init__(self, cfg: TrainConfig, device: torch.device):
        self.cfg, self.device = cfg, device
        self.G, self.D = self.build()
        self.G.to(device), self.D.to(device)
        lr, betas = cfg.lr or LR[self.arch], BETAS[self.arch]
        # AdamW without weight decay is Adam (MelGAN); Vocos' AdamW also decays nothing here (short runs).
        self.opt_g = torch.optim.AdamW(self.G.parameters(), lr=lr, betas=betas, weight_decay=0.0)
        self.opt_d = torch.optim.AdamW(self.D.parameters(), lr=lr, betas=betas, weight_decay=0.0)
        self.step, self.minutes = 0, 0.0
        # One digest per source file trained on (dataset.source_digest), so a benchmark can refuse those
        # files; None: unknown (a run resumed from a checkpoint written before vocoders recorded them).
        self.trained_sources: list[str] | None = []

    def build(self):
        raise NotImplementedError

    def set_lr_scale(self, scale: float) -> None:
        for opt in (self.opt_g, self.opt_d):
            for group in opt.param_groups:
                group["lr"] = (self.cfg.lr or LR[self.arch]) * scale

    def model_config(self):
        return self.cfg.model if self.arch == "melgan" else self.cfg.fast

    def _update(self, opt, loss: torch.Tensor, what: str) -> None:
        if not torch.isfinite(loss):          # before touching the weights
            raise FloatingPointError(f"{what} loss is {loss.item()} at step {self.step}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def generator_state(self) -> dict:
        """What melgan.load_vocoder needs: a loadable vocoder checkpoint on its own (snapshots are this)."""
        return {"kind": "vocoder", "arch": self.arch, "loops": self.cfg.loops, "frontend": melgan.frontend(),
                "G": self.G.state_dict(), "config": asdict(self.model_config()), "step": self.step,
                "minutes": self.minutes,
                **({} if self.trained_sources is None else {"trained_sources": self.trained_sources})}

    def state(self) -> dict:
        return {**self.generator_state(), "D": self.D.state_dict(), "opt_g": self.opt_g.state_dict(),
                "opt_d": self.opt_d.state_dict(), "train": asdict(self.cfg)}

    def save(self, path: str | Path) -> None:
        save_checkpoint(self.state(), path)


class MelGANTrainer(Trainer):
    """The paper's vocoder: MelGAN's generator and multi-scale discriminator, hinge + feature matching."""
    arch = "melgan"

    def build(self):
        return melgan.MelGANGenerator(self.cfg.model), melgan.MelGANDiscriminator(self.cfg.model)

    def train_step(self, audio: torch.Tensor) -> dict[str, float]:
        """One D update then one G update on real audio (B, segment); FloatingPointError if a loss is not finite."""
        real = audio.to(self.device)[:, None]                                         # (B, 1, N)
        mel = log_mel(real[:, 0])                                                     # (B, 64, N / 160)
        fake = self.G(mel)                                                            # (B, 1, N)
        d_real = self.D(real)
        loss_d = d_hinge(scale_logits(d_real), scale_logits(self.D(fake.detach())))
        self._update(self.opt_d, loss_d, "discriminator")
        # The real features for matching are the ones computed before D's update (as MelGAN's code).
        d_fake = self.D(fake)
        loss_adv, loss_fm = g_hinge(scale_logits(d_fake)), feature_matching(d_real, d_fake)
        self._update(self.opt_g, loss_adv + LAMBDA_FM * loss_fm, "generator")
        self.step += 1
        with torch.no_grad():   # monitoring only, as MelGAN's "mel reconstruction error"
            mel_l1 = F.l1_loss(log_mel(fake.detach()[:, 0]), mel).item()
        return {"d": loss_d.item(), "g_adv": loss_adv.item(), "fm": loss_fm.item(), "mel_l1": mel_l1}


class FastTrainer(Trainer):
    """The fast vocoder (vocos.py): reconstruction losses from step 0; the multi-resolution spectrogram
    discriminator joins after cfg.gan_after minutes, if set."""
    arch = "fast"

    def build(self):
        return vocos.VocosGenerator(self.cfg.fast), vocos.MultiResolutionDiscriminator()

    def gan_on(self) -> bool:
        return self.cfg.gan_after is not None and self.minutes >= self.cfg.gan_after

    def train_step(self, audio: torch.Tensor) -> dict[str, float]:
        real = audio.to(self.device)                                                  # (B, N)
        mel = log_mel(real)                                                           # (B, 64, N / 160)
        fake = self.G(mel)[:, 0]                                                      # (B, N)
        rec = vocos.reconstruction_losses(fake, real, mel)
        out, loss_g = {"sc": rec["sc"].item(), "mag": rec["mag"].item(), "mel_l1": rec["mel"].item()}, rec["recon"]
        if self.gan_on():
            loss_d, g_side = vocos.adversarial_losses(self.D, fake, real)
            self._update(self.opt_d, loss_d, "discriminator")
            adv, fm = g_side()
            loss_g = loss_g + vocos.LAMBDA_ADV * adv + vocos.LAMBDA_FM * fm
            out.update(d=loss_d.item(), g_adv=adv.item(), fm=fm.item())
        self._update(self.opt_g, loss_g, "generator")
        self.step += 1
        return out


TRAINERS = {"melgan": MelGANTrainer, "fast": FastTrainer}


def resume_trainer(path: str | Path, cfg: TrainConfig, device: torch.device) -> Trainer:
    """Rebuild a trainer from its checkpoint: the architecture (arch and config) comes from the checkpoint,
    whatever the command line says; batch, segment and lr from `cfg` (they do not shape the weights)."""
    ckpt = load_checkpoint(path, map_location=device, required=("G", "config", "D", "opt_g", "opt_d", "step"))
    arch = melgan.checkpoint_arch(ckpt, path)
    melgan.check_frontend(ckpt, path)
    cfg.arch = arch
    try:
        if arch == "melgan":
            cfg.model = MelGANConfig(**ckpt["config"])
        else:
            cfg.fast = vocos.VocosConfig(**ckpt["config"])
        t = TRAINERS[arch](cfg, device)
        for part in ("G", "D", "opt_g", "opt_d"):
            getattr(t, part).load_state_dict(ckpt[part])
    except (RuntimeError, ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{path}: saved weights do not fit its own config ({e})") from e
    t.step, t.minutes = int(ckpt["step"]), float(ckpt.get("minutes", 0.0))
    t.trained_sources = ckpt.get("trained_sources")
    return t


# ---------------------------------------------------------------------------------------------
# The training loop
# ---------------------------------------------------------------------------------------------
def announce(arch: str, device: str | torch.device | None, chosen: bool) -> str:
    """The first line of a run: which vocoder, on what, and why."""
    dev = torch.device(device or default_device())
    why = ("as asked (--arch)" if chosen else
           "the default on every device: it converges in minutes, the paper's MelGAN in hours to days; "
           "--arch melgan selects MelGAN")
    what = "the fast vocoder (Vocos-style, vocos.py)" if arch == "fast" else "the paper's MelGAN vocoder (melgan.py)"
    return f"train_melgan: {what} on {dev.type}, {why}"


def cosine_scale(frac: float) -> float:
    """Learning-rate factor at fraction `frac` of a timed run: 1 at the start, FINAL_LR at the end."""
    return FINAL_LR + (1 - FINAL_LR) * 0.5 * (1 + math.cos(math.pi * min(max(frac, 0.0), 1.0)))


def log_paths(out: Path) -> tuple[Path, Path]:
    """The training log (JSONL) and the snapshot folder beside a checkpoint."""
    return out.with_name(out.stem + ".jsonl"), out.with_name(out.stem + "_snapshots")


def train_melgan(cfg: TrainConfig, out: Path, steps: int | None, minutes: float | None, resume: bool,
                 save_every: int = SAVE_EVERY, device: str | None = None, progress: bool = True,
                 snapshot_every: float | None = SNAPSHOT_MINUTES) -> Trainer:
    """Train until `steps` (a total, so a resumed run continues to it) or `minutes` of wall time run out,
    whichever comes first; checkpoint every `save_every` steps, at the end, and on Ctrl-C."""
    dev = torch.device(device or default_device())
    if cfg.segment % HOP or cfg.segment < 4 * HOP:
        raise ValueError(f"--segment {cfg.segment}: must be a multiple of the hop {HOP} and >= {4 * HOP} "
                         f"(e.g. {SEGMENT}) so that mel frames and samples line up")
    out = Path(out)
    torch.set_flush_denormal(True)      # CPU: tiny activations as zeros, not 10-100 x slower denormals
    ids = training_ids(cfg.data)
    loops = load_loop_audio(cfg.data, ids).to(dev)                                    # (N, 32000)
    sources = sources_of(cfg.data, ids)
    if resume and out.is_file():
        trainer = resume_trainer(out, cfg, dev)
        print(f"train_melgan: resumed {out} ({trainer.arch}) at step {trainer.step}, {trainer.minutes:.1f} min")
        if trainer.trained_sources is not None:      # what it heard before and what it hears now
            trainer.trained_sources = sorted(set(trainer.trained_sources) | set(sources))
    else:
        if out.is_file() and not resume:
            raise SystemExit(f"train_melgan.py: {out} exists; pass --resume to continue it or choose another --out")
        if resume:
            print(f"train_melgan: --resume but no checkpoint at {out}; starting from scratch")
        torch.manual_seed(cfg.seed)
        trainer = TRAINERS[cfg.arch](cfg, dev)
        trainer.trained_sources = sources
    log_path, snap_dir = log_paths(out)
    if trainer.step == 0:
        log_path.unlink(missing_ok=True)
    gen = torch.Generator().manual_seed(cfg.seed * SEED_STRIDE + trainer.step)       # new batches after a resume
    t_start, m_start = time.monotonic(), trainer.minutes
    deadline = t_start + 60 * minutes if minutes else math.inf
    target = steps if steps is not None else (math.inf if minutes else trainer.step + DEFAULT_STEPS)
    next_snap = (math.floor(m_start / snapshot_every) + 1) * snapshot_every if snapshot_every else math.inf
    print(f"train_melgan: {len(loops)} training loops ({len(sources)} source files, the 'train' part) from "
          f"{cfg.data} on {dev}; batch {cfg.batch} x {cfg.segment} "
          f"samples; {'until step ' + str(target) + ' ' if target < math.inf else ''}"
          f"{'within ' + str(minutes) + ' min ' if minutes else ''}-> {out}", flush=True)
    last_saved, stop = trainer.step, StopRequest()

    def record(entry: dict) -> None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "a") as f:
            f.write(json.dumps(entry) + "\n")

    def disk_full() -> str:      # what a full disk leaves: the last saved checkpoint, intact; the room one needs
        size = out.stat().st_size if out.is_file() else tensor_bytes(trainer.state())
        return checkpoint_safe_line(out, last_saved, size, when=f" at step {trainer.step}")

    with on_disk_full(disk_full):
        if trainer.step == 0 and snapshot_every:
            snap_dir.mkdir(parents=True, exist_ok=True)
            save_checkpoint(trainer.generator_state(), snap_dir / "min0000.0.pt")
            record({"minutes": 0.0, "step": 0, "snapshot": f"{snap_dir.name}/min0000.0.pt"})
        bar = Progress(total=None if target == math.inf else int(target), initial=trainer.step, desc=out.stem,
                       unit="step", every=LOG_EVERY, enabled=progress)
        try:
            while trainer.step < target and time.monotonic() < deadline and not stop.requested:
                batch = random_segments(loops, cfg.batch, cfg.segment, gen)                # (B, segment)
                try:
                    losses = trainer.train_step(batch)
                except FloatingPointError as e:
                    raise SystemExit(f"train_melgan.py: stopped: {e}. Nothing was saved after it; the last good "
                                     f"checkpoint is {out if out.is_file() else '(none saved yet)'}. Try a lower "
                                     "--lr or resume from it.") from e
                trainer.minutes = m_start + (time.monotonic() - t_start) / 60
                if trainer.arch == "fast" and minutes:
                    trainer.set_lr_scale(cosine_scale((time.monotonic() - t_start) / (60 * minutes)))
                bar.update(1)
                bar.set_postfix({k: f"{v:.3f}" for k, v in losses.items()})
                if trainer.step % LOG_EVERY == 0:
                    record({"minutes": round(trainer.minutes, 3), "step": trainer.step, **losses})
                if trainer.minutes >= next_snap:
                    name = f"min{next_snap:06.1f}.pt"
                    save_checkpoint(trainer.generator_state(), snap_dir / name)
                    record({"minutes": round(trainer.minutes, 3), "step": trainer.step,
                            "snapshot": f"{snap_dir.name}/{name}"})
                    next_snap += snapshot_every
                if trainer.step % save_every == 0:
                    trainer.save(out)
                    last_saved = trainer.step
        finally:
            bar.close()
            stop.restore()
        if trainer.step != last_saved or not out.is_file():
            trainer.save(out)
    print(f"train_melgan: {'interrupted; ' if stop.requested else ''}saved step {trainer.step} "
          f"({trainer.minutes:.1f} min) to {out}{' (continue with --resume)' if stop.requested else ''}")
    return trainer


def resolve_data(loops: str, data: str | None) -> Path:
    """--data if given, else the embedded demo set (built on first use by demo/loops.py)."""
    return Path(data) if data else Path(demo.loops.ensure_demo_set(loops))


def ensure_vocoder(loops: str, data_dir: str | Path | None = None, minutes: float = QUICK_MINUTES,
                   device: str | None = None, arch: str | None = None) -> Path:
    """The trained vocoder of a data set (None: the `loops` demo set), trained here first -- the fast one unless
    `arch`, announced on stdout, about `minutes` long -- only if melgan.default_checkpoint does not exist yet.
    -> its path.
    (train.py's quick start calls this, so that its WAVs are not Griffin-Lim's.)"""
    data_dir = resolve_data(loops, str(data_dir) if data_dir else None)
    path = melgan.default_checkpoint(loops, data_dir)
    if path.is_file():
        return path
    arch = arch or DEFAULT_ARCH
    print(f"training the {arch} vocoder on {data_dir} (first use, about {minutes:g} minutes; cached as {path}) ...",
          flush=True)
    cfg = TrainConfig(loops=loops, data=str(data_dir), arch=arch)
    tmp = path.with_name(path.stem + ".partial.pt")      # a killed run leaves no half-trained default behind
    train_melgan(cfg, tmp, steps=None, minutes=minutes, resume=tmp.is_file(), device=device, progress=False)
    tmp.replace(path)
    return path


def main(argv=None):
    p = argparse.ArgumentParser(description="Train a vocoder (the fast one, or the paper's MelGAN with --arch "
                                "melgan) on a loop data set.")
    p.add_argument("--loops", required=True, choices=["drum", "synth"], help="kind of loops: names the demo set "
                   "and the default checkpoint")
    p.add_argument("--data", help="data set directory (dataset.py layout); default: the embedded demo set")
    p.add_argument("--arch", choices=ARCHS, default=None, help="fast (vocos.py; the default on every device) "
                   "or melgan (the paper's; hours to days on a GPU)")
    p.add_argument("--steps", type=int, help=f"train until this total step count (default: {DEFAULT_STEPS} more, "
                   "or unlimited with --minutes)")
    p.add_argument("--minutes", type=float, help="stop after this many minutes of wall time (this run)")
    p.add_argument("--batch", type=int, default=BATCH, help=f"segments per step (default {BATCH}, as MelGAN)")
    p.add_argument("--segment", type=int, default=SEGMENT,
                   help=f"samples per training segment; a multiple of {HOP} (default {SEGMENT} = 0.5 s)")
    p.add_argument("--lr", type=float, help=f"learning rate (default {LR['fast']} fast, {LR['melgan']} melgan "
                   "as the MelGAN paper)")
    p.add_argument("--gan-after", type=float, help="fast only: minutes of reconstruction-only training before "
                   "the spectrogram discriminator joins (default: never)")
    p.add_argument("--out", type=Path, help="checkpoint (default $PJLOOP_HOME/checkpoints/vocoder_<loops>_<data "
                   "set>_<manifest fingerprint>.pt; the repository's checkpoints/ when $PJLOOP_HOME is unset)")
    p.add_argument("--resume", action="store_true", help="continue from --out")
    p.add_argument("--save-every", type=int, default=SAVE_EVERY, help=f"steps between checkpoints (default {SAVE_EVERY})")
    p.add_argument("--snapshot-every", type=float, default=SNAPSHOT_MINUTES, help="minutes between generator "
                   f"snapshots for the quality curve (default {SNAPSHOT_MINUTES:g}; 0: none)")
    p.add_argument("--g-channels", type=int, default=G_CHANNELS, help="melgan: generator width (512 = MelGAN)")
    p.add_argument("--d-max-channels", type=int, default=MELGAN_D_MAX_CHANNELS,
                   help="melgan: discriminator width cap (1024 = MelGAN)")
    p.add_argument("--dim", type=int, default=vocos.DIM, help=f"fast: ConvNeXt width (default {vocos.DIM}; Vocos 512)")
    p.add_argument("--blocks", type=int, default=vocos.BLOCKS, help=f"fast: ConvNeXt blocks (default {vocos.BLOCKS})")
    p.add_argument("--seed", type=int, default=0, help="seed of the initial weights and the batch order")
    p.add_argument("--device", help="cpu or cuda (default: cuda if available)")
    p.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")
    p.add_argument("--progress", type=yes_no, default=True, metavar=YES_NO, help="progress bar / log lines (default yes)")
    a = p.parse_args(argv)
    for name in ("steps", "batch", "save_every", "threads"):
        v = getattr(a, name)
        if v is not None and v < (0 if name == "steps" else 1):
            p.error(f"--{name.replace('_', '-')} must be positive, got {v}")
    arch = a.arch or DEFAULT_ARCH
    print(announce(arch, a.device, a.arch is not None), flush=True)
    if a.threads:
        torch.set_num_threads(a.threads)
    try:
        model = MelGANConfig(g_channels=a.g_channels, d_max_channels=a.d_max_channels)
        fast = vocos.VocosConfig(dim=a.dim, blocks=a.blocks)
    except ValueError as e:
        p.error(str(e))
    try:
        data = resolve_data(a.loops, a.data)
        out = a.out or melgan.default_checkpoint(a.loops, data)
        cfg = TrainConfig(loops=a.loops, data=str(data), arch=arch, batch=a.batch, segment=a.segment, lr=a.lr,
                          seed=a.seed, gan_after=a.gan_after, model=model, fast=fast)
        train_melgan(cfg, out, a.steps, a.minutes, a.resume, a.save_every, a.device, a.progress,
                     a.snapshot_every or None)
    except (CheckpointError, FileNotFoundError, ValueError) as e:
        raise SystemExit(f"train_melgan.py: {e}") from e
    except OSError as e:
        if not is_disk_full(e):
            raise
        raise SystemExit(f"train_melgan.py: {disk_full_line(e, 'run again with --resume')}") from None


if __name__ == "__main__":
    main()
