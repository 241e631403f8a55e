"""Benchmark: training iterations per second and peak memory for each discriminator kind.

One iteration = one D step (real and fake passes) + one G step + the EMA update, exactly as train.py.
Feature sets: none (StyleGAN2 baseline), vgg (random weights in the official layout when the real ones
are absent -- the speed is the same), aisfx, scnn_loop (random weights unless a checkpoint exists), and the
fusion vgg+scnn_loop. Each set runs in its own process, so its peak memory is its own: CUDA's
max_memory_allocated on a GPU, the process's peak RSS on a CPU.

    python bench_train.py                                # CPU preset sizes on a CPU, paper sizes on a GPU
    python bench_train.py --batch 64 --g-channels 512 --steps 20 --device cuda
"""
from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time

import numpy as np
import torch

import features
import train
from discriminator import ProjectedDiscriminator
from generator import ema_beta, update_ema

SETS = ["none", "vgg", "aisfx", "scnn_loop", "vgg,scnn_loop"]


def random_net(name: str, ctx: features.FeatureContext) -> features.FeatureNet:
    """The real network when it can be built offline without training; else its architecture, random."""
    if name == "vgg":
        import vggish
        try:
            return features.build(name, ctx)
        except vggish.VGGishWeightsMissing:
            return vggish.VGGishFeatures(vggish.make_features()).to(ctx.device).freeze()
    if name == "scnn_loop":
        import scnn
        net = scnn.ShortChunkCNN(scnn.SCNNConfig(n_classes=10))
        unit_stats = (np.zeros(64), np.ones(64))
        return scnn.SCNNFeatures(net, "scnn_loop", unit_stats).to(ctx.device).freeze()
    return features.build(name, ctx)


def bench(spec: str, args, device: str) -> tuple[float, float]:
    names = features.parse_feature_names(spec)
    ctx = features.FeatureContext(device=device, vggish_path=args.vggish)
    nets = {n: random_net(n, ctx) for n in names}
    cfg = train.TrainConfig(features=spec, batch=args.batch, g_channels=args.g_channels, d_channels=args.g_channels,
                            csm_upsample=args.csm_upsample)
    _, G, G_ema, D = train.build_models(cfg, names, nets, device)
    real = torch.randn(args.batch, 1, 200, 64, device=device)                      # (B, 1, T=200, F=64)
    if device == "cuda":     # as train.py
        G, G_ema, D = (m.to(memory_format=torch.channels_last) for m in (G, G_ema, D))
        real = real.contiguous(memory_format=torch.channels_last)
    d_params = [p for p in D.parameters() if p.requires_grad]
    opt_G = torch.optim.Adam(G.parameters(), lr=1e-4, betas=(0.0, 0.99))
    opt_D = torch.optim.Adam(d_params, lr=1e-4, betas=(0.0, 0.99))
    autocast = train.autocast_for(device)
    beta = ema_beta(args.batch)

    def step(i):
        z = torch.randn(args.batch, G.z_dim, device=device)
        for p in d_params:
            p.requires_grad_(True)
        loss = train.d_step(G, D, real, z, not names, i, autocast)
        opt_D.zero_grad(); loss.backward(); opt_D.step()
        for p in d_params:
            p.requires_grad_(False)
        loss = train.g_step(G, D, z, not names, autocast)
        opt_G.zero_grad(); loss.backward(); opt_G.step()
        update_ema(G_ema, G, beta)

    for i in range(1, args.warmup + 1):          # steps are numbered as in a run: lazy R1 every 16th
        step(i)
    if device == "cuda":
        torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    for i in range(args.warmup + 1, args.warmup + 1 + args.steps):
        step(i)
    if device == "cuda":
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() / 2 ** 30
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20     # KiB -> GiB
    return args.steps / (time.perf_counter() - t), peak


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    gpu = torch.cuda.is_available()
    preset = train.CPU_PRESET
    ap.add_argument("--device", default="cuda" if gpu else "cpu")
    ap.add_argument("--batch", type=int, default=64 if gpu else preset["batch"])
    ap.add_argument("--g-channels", type=int, default=512 if gpu else preset["g_channels"])
    ap.add_argument("--csm-upsample", type=int, default=1 if gpu else int(preset["csm_upsample"]))
    ap.add_argument("--steps", type=int, default=20 if gpu else 5)
    ap.add_argument("--warmup", type=int, default=3 if gpu else 1)
    ap.add_argument("--sets", default=";".join(SETS), help="feature sets separated by ';'")
    ap.add_argument("--vggish", default=None)
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)   # internal: measure one set, print its row
    args = ap.parse_args()
    if args.one is not None:
        its, peak = bench(args.one, args, args.device)
        print(f"{args.one:<16}{its:>8.2f}{peak:>10.2f}", flush=True)
        return
    print(f"device {args.device} ({torch.cuda.get_device_name() if args.device == 'cuda' else f'{torch.get_num_threads()} threads'}), "
          f"batch {args.batch}, G width {args.g_channels}, CSM x2 {bool(args.csm_upsample)}, {args.steps} timed steps")
    print(f"{'features':<16}{'it/s':>8}{'peak GiB':>10}", flush=True)
    passed = [a for a in sys.argv[1:]]
    for spec in args.sets.split(";"):          # a fresh process per set: peak memory is not inherited
        subprocess.run([sys.executable, __file__, *passed, "--one", spec], check=True)


if __name__ == "__main__":
    main()
