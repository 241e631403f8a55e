"""The shipped models: a genre-conditional generator and its vocoder per kind of loop, small enough for git.

    python pretrain.py --loops drum                    # train (resumable), train the vocoder, export
    python pretrain.py --loops drum --export-only      # export the run as it is now

Not in the paper: its generator is trained on Looperman loops for GPU days and never shipped. Here one command
trains a genre-conditional run (`--features scnn_loop --conditional yes`, the CPU preset on a CPU; drum also
`--ceiling-weight 1000`) on the demo loops into $PJLOOP_HOME/runs/pretrained_<loops> for DEFAULT_STEPS steps in
all (a budget in steps, not minutes: the same model on a busy or an idle machine), continuing it if it exists,
makes sure the data set's fast vocoder exists (train_melgan.ensure_vocoder), and exports into
pretrained/<loops>/:

    latest.pt    the EMA generator only, weights in fp16 (no optimiser, no discriminator), plus what sampling
                 and evaluation read: its config, mel statistics, genres, features, step, trained sources
    vocoder.pt   the vocoder's generator, weights in fp16 (no discriminator, no optimiser)

so that `python sample.py pretrained/drum --genre house -n 8`, `python -m studio` and `python evaluate.py
pretrained/drum` work right after set-up. fp16 halves the files; the weights are cast back to fp32 on load, and
what that costs is measured at export (the audio's SNR against the fp32 pair, `fp16_snr_db` in latest.pt).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

import melgan
import sample
import train
import train_melgan
from dataset import default_data_dir
from plumbing import paths
from plumbing.checkpoint import load_checkpoint, save_checkpoint
from plumbing.devices import default_device

SHIPPED = paths.shipped()                   # in the repository, beside the code: pretrained/<loops>/
FEATURES = "scnn_loop"                      # the offline network whose conditional heads teach the genre best
DEFAULT_STEPS = 3000     # GAN steps in all: 45 minutes on this 2-core CPU (1.2 steps/s), 1.5-2.4 hours each when
                         # drum and synth train side by side on a core each; --steps 6000 continues a run further
                         # (the shipped drum model: 6000, which its genre control needed, docs/training.md)
# The drum run learns "blobs" (patches thousands of decades louder than any signal, which the frozen scnn_loop
# does not see: 13 % of the loops of an unpenalised 3000-step run, docs/training.md), so it trains with
# train.py's --ceiling-weight. The penalty is a mean over every bin, and a blob covers a few of them: at weight 1
# a run still had 14 % blobs at step 875; at 1000 that run lost them within 100 steps. Synth loops never
# overshoot so (7 % slightly above the ceiling, no blob) and train with the paper's loss.
CEILING_WEIGHT = {"drum": 1000.0, "synth": 0.0}
SNAPSHOT_EVERY = 1000    # a ckpt_<step>.pt kept every this many steps (the CPU preset's 200 would keep 30)
# What of a training checkpoint a shipped generator keeps: what sample.load_generator, evaluate.py and the studio
# read. Everything else (D, both optimisers, RNG states, the frozen-network fingerprint) stays behind.
GENERATOR_KEYS = ("g_config", "mel_mean", "mel_std", "features", "loops", "genres", "step", "train_seconds",
                  "trained_sources", "config")
FP16_CHECK_LOOPS = 16    # loops voiced in fp32 and from the fp16 files to measure what the halving costs
VOCODER_KEYS = ("kind", "arch", "loops", "frontend", "config", "step", "minutes", "trained_sources")  # + G, fp16


def half(state: dict) -> dict:
    """A state dict with every floating tensor in fp16 (integer buffers untouched)."""
    return {k: v.half() if torch.is_tensor(v) and v.is_floating_point() else v for k, v in state.items()}


def export_generator(ckpt_path: str | Path, out: str | Path) -> Path:
    """A train.py checkpoint -> out/latest.pt: the EMA generator in fp16 and the keys in GENERATOR_KEYS."""
    ck = load_checkpoint(ckpt_path, map_location="cpu", required=("g_ema", "g_config", "loops"))
    slim = {k: ck[k] for k in GENERATOR_KEYS if k in ck}
    slim["g_ema"] = half(ck["g_ema"])
    slim["shipped_from"] = str(Path(ckpt_path).name)
    path = Path(out) / "latest.pt"
    save_checkpoint(slim, path)                 # atomic: a killed export leaves the previous file
    return path


def export_vocoder(vocoder_path: str | Path, out: str | Path) -> Path:
    """A train_melgan.py checkpoint -> out/vocoder.pt: its generator in fp16 and the keys melgan.load_generator
    checks (front end, sample rate, kind of loops)."""
    ck = load_checkpoint(vocoder_path, map_location="cpu", required=("G",))
    slim = {k: ck[k] for k in VOCODER_KEYS if k in ck}
    slim["G"] = half(ck["G"])
    path = Path(out) / "vocoder.pt"
    save_checkpoint(slim, path)
    melgan.load_generator(path, ck.get("loops"))           # what sample.py will do: fails here, not there
    return path


def snr_db(reference: np.ndarray, other: np.ndarray) -> float:
    """10 log10(|reference|^2 / |reference - other|^2): how far below the signal the difference lies, in dB."""
    ref, diff = np.asarray(reference, np.float64), np.asarray(reference, np.float64) - np.asarray(other, np.float64)
    return float(10 * np.log10(np.sum(ref ** 2) / max(np.sum(diff ** 2), 1e-30)))


def fp16_cost(run_ckpt: str | Path, vocoder_path: str | Path, out: str | Path, n: int = FP16_CHECK_LOOPS) -> float:
    """What the fp16 files cost a listener: n loops (fixed seeds, every genre) voiced by the fp32 run and vocoder
    and by the exported fp16 pair (cast back to fp32, as sampling does) -> the SNR of the second against the
    first, dB. Recorded in the export as `fp16_snr_db`; above ~40 dB the difference is far below the loops'
    own vocoder artefacts."""
    out = Path(out)
    voices = []
    for gen, voc in ((run_ckpt, vocoder_path), (out / "latest.pt", out / "vocoder.pt")):
        G, ck = sample.load_generator(gen)
        mels = sample.generate_mels(G, ck, n, seed=0)                        # (n, 64, 200) log10 mels
        voices.append(np.asarray(melgan.load_vocoder(voc, loops=ck["loops"])(mels)))   # (n, 32000)
    return snr_db(*voices)


def train_run(loops: str, steps: int, device: str) -> Path:
    """Train (or continue) the run behind the shipped model until `steps` steps in all -> its folder."""
    out = paths.runs() / f"pretrained_{loops}"
    cfg = train.TrainConfig(loops=loops, features=FEATURES, conditional=True, out=str(out), samples=0,
                            ceiling_weight=CEILING_WEIGHT[loops])
    if device == "cpu":
        for k, v in train.CPU_PRESET.items():
            setattr(cfg, k, v)
    done = 0
    if (out / "latest.pt").is_file():
        done = int(load_checkpoint(out / "latest.pt", map_location="cpu", required=("step",))["step"])
    cfg.steps, cfg.minutes = steps, None           # steps alone: the CPU preset's 8-minute stop does not apply
    cfg.snapshot_every = SNAPSHOT_EVERY
    if done < steps:
        print(f"pretrain: {paths.shown(out)}: {done} of {steps} steps trained; training {steps - done} more "
              "(Ctrl-C saves; run the same command again to continue)", flush=True)
        train.train(cfg, device=device, resume=done > 0)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Train and export the shipped genre-conditional models (pjloop).")
    ap.add_argument("--loops", default="drum", choices=["drum", "synth"], help="which loops (default drum)")
    ap.add_argument("--steps", type=int, default=DEFAULT_STEPS,
                    help=f"GAN steps in all, over every call (default {DEFAULT_STEPS})")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads (default: torch's choice; 1 to train drum and synth side by side)")
    ap.add_argument("--export-only", action="store_true", help="export the run as it stands; train nothing")
    ap.add_argument("--out", default=None, help="export folder (default pretrained/<loops> in the repository)")
    ap.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    args = ap.parse_args(argv)
    if args.steps < 1:
        ap.error(f"--steps must be at least 1, got {args.steps}")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device or default_device()
    run = paths.runs() / f"pretrained_{args.loops}"
    if not args.export_only:
        run = train_run(args.loops, args.steps, device)
        step = int(load_checkpoint(run / "latest.pt", map_location="cpu", required=("step",))["step"])
        if step < args.steps:        # stopped early (Ctrl-C, SIGTERM): the shipped folder keeps what it had
            print(f"pretrain: stopped at step {step} of {args.steps}; nothing exported. Run the same command "
                  "to continue, or add --export-only to ship the run as it stands", flush=True)
            return 0
    if not (run / "latest.pt").is_file():
        print(f"pretrain.py: no run to export at {run}: run without --export-only first", file=sys.stderr)
        return 2
    data = default_data_dir(args.loops)
    vocoder = train_melgan.ensure_vocoder(args.loops, data, device=device)
    out = Path(args.out) if args.out else SHIPPED / args.loops
    g, v = export_generator(run / "latest.pt", out), export_vocoder(vocoder, out)
    snr = fp16_cost(run / "latest.pt", vocoder, out)
    save_checkpoint({**load_checkpoint(g, map_location="cpu"), "fp16_snr_db": snr}, g)
    print(f"pretrain: fp16 against fp32, {FP16_CHECK_LOOPS} loops through generator and vocoder: SNR {snr:.1f} dB")
    size = (g.stat().st_size + v.stat().st_size) / 2 ** 20
    print(f"pretrain: exported {g} and {v} ({size:.1f} MB); try `python sample.py {out} --genre all -n 4` and "
          f"score it with `python evaluate.py {out} -n 300`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
