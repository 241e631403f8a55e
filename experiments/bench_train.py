"""Benchmark: training speed (iterations and images per second) and peak memory per discriminator kind, in one
process or several (DistributedDataParallel, as train.py under torchrun).

One iteration = one D step + one G step + the EMA update, as train.py's (train_run.Run, train.d_step,
train.g_step, the same all-reduces). CPU s/it is the CPU time of one iteration summed over the processes
(on a shared CPU wall time measures the scheduler). Each feature set runs in its own process(es), so its
peak memory (CUDA's max allocated, or the peak RSS) is its own.

    python -m experiments.bench_train                                # CPU preset sizes on a CPU, paper sizes on a GPU
    python -m experiments.bench_train --ddp 8 --sets "vgg,scnn_loop"  # 1 process, then 8 (torchrun)

Figures: docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from plumbing import distributed
import featurenet
import losses
import scnn
import train
import vggish
from plumbing.cli import YES_NO, spell, yes_no
from plumbing.devices import autocast_for, default_device
from plumbing.distributed import World
from train_run import MEMORY_FORMAT, Run, check_finite
from generator import ema_beta, update_ema

SETS = ["none", "vgg", "aisfx", "scnn_loop", "vgg,scnn_loop"]
REPO = Path(__file__).resolve().parents[1]           # `python -m experiments.bench_train` runs from here
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone"]   # what `torchrun --standalone` runs


def random_net(name: str, ctx: featurenet.FeatureContext) -> featurenet.FeatureNet:
    """The real network when it can be built offline without training; else its architecture, random."""
    if name == "vgg":
        try:
            return featurenet.build(name, ctx)
        except vggish.VGGishWeightsMissing:
            return vggish.VGGishFeatures(vggish.make_features()).to(ctx.device).freeze()
    if name == "scnn_loop":
        net = scnn.ShortChunkCNN(scnn.SCNNConfig(n_classes=10))
        unit_stats = (np.zeros(64), np.ones(64))
        return scnn.SCNNFeatures(net, "scnn_loop", unit_stats).to(ctx.device).freeze()
    return featurenet.build(name, ctx)


def bench(spec: str, args, world: World) -> tuple[float, float, float]:
    """(iterations per second, CPU seconds per iteration summed over the processes, rank 0's peak GiB) of
    `spec`, each process on its share of the global batch. The CPU time tells the work apart from the wait
    where processes share cores with each other or with other jobs."""
    device = world.device
    names = featurenet.parse_feature_names(spec)
    ctx = featurenet.FeatureContext(device=device, vggish_path=args.vggish)
    nets = {n: random_net(n, ctx) for n in names}
    cfg = train.TrainConfig(features=spec, batch=args.batch, g_channels=args.g_channels, d_channels=args.g_channels,
                            csm_upsample=args.csm_upsample, cache_real=args.cache_real)
    run = Run(cfg, names, nets, None, world)          # as train.py: channels_last, DDP wrappers
    batch = distributed.local_batch(args.batch, world)
    real = torch.randn(batch, 1, 200, 64, device=device)                            # (B/N, 1, T=200, F=64)
    real = real.contiguous(memory_format=MEMORY_FORMAT)                      # as train.py
    autocast, beta, nowhere = autocast_for(device), ema_beta(args.batch), Path(".")
    G, D_sync, G_sync, D = run.G, run.D_sync, run.G_sync, run.D
    # Speed options to measure, none of which changes the step's math (docs/benchmarks.md, "Training speed"):
    if not args.channels_last:     # NCHW, as train.py did on the CPU before it measured this (docs/benchmarks.md)
        for m in (run.G, run.G_ema, run.D):
            m.to(memory_format=torch.contiguous_format)
        real = real.contiguous()
    if args.bf16:                  # bf16 autocast on the CPU too (train.py: on CUDA only)
        autocast = lambda: torch.autocast(torch.device(device).type, dtype=torch.bfloat16)   # noqa: E731
    if args.compile:               # torch.compile (inductor: generated C++ built by the local compiler)
        if world.size > 1:
            raise SystemExit("experiments/bench_train.py: --compile is measured in one process only")
        G = G_sync = torch.compile(run.G)
        D = D_sync = torch.compile(run.D)
    phases = {}                    # --profile: CPU seconds of each phase of the last step

    def phase(name, t):
        phases[name] = phases.get(name, 0.0) + time.process_time() - t
        return time.process_time()
    # With --cache-real the same batch's features are cached after the warm-up: the steady state of a run
    # once every loop has been seen (after one pass over the data set).
    real_idx = torch.arange(batch, device=device) if run.cache_real else None

    def step(i):
        phases.clear()
        t = time.process_time()
        z = torch.randn(batch, run.g_cfg.z_dim, device=device)
        for p in run.d_params:
            p.requires_grad_(True)
        loss = train.d_step(G, D_sync, real, z, not names, autocast, run.policy, real_idx=real_idx)
        check_finite("D", loss, i, nowhere, world)
        t = phase("D step: G, features, heads (forward)", t)
        run.opt_D.zero_grad(set_to_none=True); loss.backward()
        t = phase("D step: backward", t)
        run.opt_D.step()
        if not names and i % losses.R1_INTERVAL == 0:          # the baseline's lazy R1 step, as train_step
            run.opt_D.zero_grad(set_to_none=True); train.r1_step(D_sync, real, run.policy).backward()
            run.opt_D.step()
        for p in run.d_params:
            p.requires_grad_(False)
        loss = train.g_step(G_sync, D, z, not names, autocast, run.policy)
        check_finite("G", loss, i, nowhere, world)
        t = phase("G step: G, features, heads (forward)", t)
        run.opt_G.zero_grad(set_to_none=True); loss.backward()
        t = phase("G step: backward (through the frozen features)", t)
        run.opt_G.step()
        distributed.average_(world, [run.G.mapping.w_avg])
        update_ema(run.G_ema, run.G, beta)
        distributed.agree(world, False, 0.0)
        phase("optimisers, EMA, sync", t)

    run.G.train(); run.D.train()
    for i in range(1, args.warmup + 1):          # steps are numbered as in a run: lazy R1 every 16th
        step(i)
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
    distributed.barrier(world)
    t, cpu = time.perf_counter(), time.process_time()
    for i in range(args.warmup + 1, args.warmup + 1 + args.steps):
        step(i)
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() / 2 ** 30
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20     # KiB -> GiB
    cpu = sum(distributed.gather(world, time.process_time() - cpu))
    if args.profile and world.main:
        print(f"{spec}: CPU seconds of one step by phase: " + ", ".join(f"{k} {v:.3f}" for k, v in phases.items()))
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            step(args.warmup + args.steps + 1)
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.profile))
    return args.steps / (time.perf_counter() - t), cpu / args.steps, peak


def row(spec: str, processes: int, its: float, batch: int, cpu: float, peak: float) -> str:
    return f"{spec:<16}{processes:>6}{its:>8.2f}{its * batch:>9.1f}{cpu:>10.2f}{peak:>10.2f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    gpu = torch.cuda.is_available()
    preset = train.CPU_PRESET            # sizes: the paper's on a GPU, the CPU preset's elsewhere
    ap.add_argument("--device", default=default_device(), help="cpu or cuda (default: cuda when available)")
    ap.add_argument("--batch", type=int, default=64 if gpu else preset["batch"],
                    help="the global batch in loops (default: 64 on a GPU, the CPU preset's 8 elsewhere)")
    ap.add_argument("--g-channels", type=int, default=512 if gpu else preset["g_channels"],
                    help="G and baseline-D width (default: the paper's 512 on a GPU, 32 elsewhere)")
    ap.add_argument("--csm-upsample", type=yes_no, metavar=YES_NO, default=gpu or preset["csm_upsample"],
                    help="CSM ends with bilinear x2 as train.py --csm-upsample (default: yes on a GPU, no elsewhere)")
    ap.add_argument("--steps", type=int, default=20 if gpu else 5, help="timed steps (default 20 GPU, 5 CPU)")
    ap.add_argument("--warmup", type=int, default=3 if gpu else 1, help="untimed steps first (default 3 GPU, 1 CPU)")
    ap.add_argument("--sets", default=";".join(SETS), help="feature sets separated by ';' (default: all five)")
    ap.add_argument("--vggish", default=None, help="official VGGish weights (else random weights, same speed)")
    ap.add_argument("--cache-real", type=yes_no, metavar=YES_NO, default=False,
                    help="the real-feature cache, as train.py --cache-real (default no)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads per process (default: torch's)")
    ap.add_argument("--channels-last", type=yes_no, metavar=YES_NO, default=True,
                    help="NHWC as train.py; no = NCHW (default yes)")
    ap.add_argument("--bf16", type=yes_no, metavar=YES_NO, default=False,
                    help="bf16 autocast on the CPU too (on CUDA always; default no)")
    ap.add_argument("--compile", type=yes_no, metavar=YES_NO, default=False,
                    help="torch.compile G and D, one process only (default no)")
    ap.add_argument("--profile", type=int, default=0, metavar="K",
                    help="K > 0: CPU time of each phase of a step, and the top K operators of one more step")
    ap.add_argument("--ddp", type=int, default=None, metavar="N", help="measure 1 and N processes (torchrun)")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)   # internal: measure one set, print its row
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.one is not None:
        world = distributed.init(args.device)
        its, cpu, peak = bench(args.one, args, world)
        if world.main:
            print(row(args.one, world.size, its, args.batch, cpu, peak), flush=True)
        distributed.leave()
    print(f"device {args.device} ({torch.cuda.get_device_name() if args.device == 'cuda' else f'{torch.get_num_threads()} threads'}), "
          f"global batch {args.batch}, G width {args.g_channels}, CSM x2 {spell(args.csm_upsample)}, "
          f"real-feature cache {spell(args.cache_real)}, channels_last {spell(args.channels_last)}, "
          f"bf16 {spell(args.bf16 or args.device == 'cuda')}, compile {spell(args.compile)}, {args.steps} timed steps")
    print(f"{'features':<16}{'procs':>6}{'it/s':>8}{'img/s':>9}{'CPU s/it':>10}{'peak GiB':>10}", flush=True)
    passed = ["--device", args.device, "--batch", str(args.batch), "--g-channels", str(args.g_channels),
              "--csm-upsample", spell(args.csm_upsample), "--steps", str(args.steps), "--warmup", str(args.warmup),
              "--cache-real", spell(args.cache_real), "--channels-last", spell(args.channels_last),
              "--bf16", spell(args.bf16), "--compile", spell(args.compile), "--profile", str(args.profile)]
    passed += ["--threads", str(args.threads)] if args.threads else []
    passed += ["--vggish", args.vggish] if args.vggish else []
    for spec in args.sets.split(";"):          # fresh processes per set: peak memory is not inherited
        if args.ddp is None:
            subprocess.run([sys.executable, "-m", "experiments.bench_train", *passed, "--one", spec], check=True, cwd=REPO)
            continue
        for n in (1, args.ddp):
            subprocess.run([*TORCHRUN, f"--nproc_per_node={n}", "-m", "experiments.bench_train", *passed, "--one", spec], check=True,
                           cwd=REPO)


if __name__ == "__main__":
    main()
