"""Speed of the frozen feature networks' four stages (docs/design.md §2, §3): how much of a discriminator
step the projector's feature network costs, and the evaluation embedding's cost.

One batch of 64 two-second mels = 128 one-second chunks (B=128, 1, T=100, F=64) -> `stages`, under
torch.no_grad, median wall time of a few runs after one warm-up. A network that cannot be built here is
skipped with the reason (VGGish and the SCNNs are timed with random weights instead, and say so).

    python -m experiments.bench_features [--threads 1] [--runs 5] [--batch 64] [--device cpu] [--data DIR]

Figures: docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import re
import statistics
import time

import numpy as np
import torch

import featurenet
from standins import musicnn_features
import scnn
import vggish
from featurenet import FeatureContext, FeatureNet, FeatureNetUnavailable
from mel import CHUNK_FRAMES, LOOP_SAMPLES, N_FRAMES, N_MELS


def build_for_bench(name: str, ctx: FeatureContext) -> tuple[FeatureNet | None, str]:
    """(net, note): net None means skipped, note says why (or how it was built)."""
    if name == "vgg":
        try:
            return featurenet.build(name, ctx), "official weights"
        except (vggish.VGGishWeightsMissing, vggish.VGGishWeightsInvalid) as e:
            net = vggish.VGGishFeatures(vggish.make_features()).to(ctx.device).freeze()
            return net, f"RANDOM weights in the official layout ({str(e).splitlines()[0]})"
    if name.startswith("scnn"):
        return _build_scnn(name, ctx)
    try:
        return featurenet.build(name, ctx), "pre-trained weights"
    except Exception as e:   # any network that cannot be built here is reported, not fatal
        return None, f"skipped: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"


def _build_scnn(name: str, ctx: FeatureContext) -> tuple[FeatureNet, str]:
    """An SCNN from its trained checkpoint; without one (a lookup never trains) the architecture is timed
    with random weights -- speed does not depend on the values -- and says so."""
    try:
        return featurenet.build(name, ctx), "trained checkpoint"
    except (FeatureNetUnavailable, FileNotFoundError) as e:
        width = scnn.MTAT_WIDTH if name == "scnn_mtat" else scnn.LOOP_WIDTH
        model = scnn.ShortChunkCNN(scnn.SCNNConfig(n_classes=2, width=width))   # head unused by `stages`
        unit_stats = (np.zeros(N_MELS, np.float32), np.ones(N_MELS, np.float32))
        net = scnn.SCNNFeatures(model, name, unit_stats).to(ctx.device).freeze()
        why = re.split(r"[.:] ", str(e), maxsplit=1)[0]             # the first clause: what is missing
        return net, f"RANDOM weights, width {width} ({why})"


@torch.no_grad()
def time_stages(net: FeatureNet, x: torch.Tensor, runs: int) -> float:
    """Median milliseconds of `net.stages(x)` over `runs` runs, after one warm-up."""
    def once() -> float:
        t0 = time.perf_counter()
        net.stages(x)
        if x.is_cuda:
            torch.cuda.synchronize()
        return (time.perf_counter() - t0) * 1000
    once()
    return statistics.median(once() for _ in range(runs))


def time_embedding(batch: int, runs: int, device: str) -> None:
    """Print the MSD_musicnn embedding's time per batch of `batch` two-second loops, from mels and from audio."""
    try:
        emb = musicnn_features.load_embedding(device)
    except FeatureNetUnavailable as e:
        print(f"  {'msd_musicnn':10s} skipped: {str(e).splitlines()[0]}")
        return
    mels = torch.randn(batch, N_MELS, N_FRAMES) - 2.0                              # (B, 64, 200) raw log10 mels
    audio = np.random.default_rng(0).uniform(-0.5, 0.5, (batch, LOOP_SAMPLES)).astype(np.float32)
    for path, run in (("mels", lambda: musicnn_features.embed_mels(emb, mels, batch)),
                      ("audio", lambda: musicnn_features.embed_audio(emb, audio, batch))):
        run()                                                                       # warm-up
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            run()
            times.append((time.perf_counter() - t0) * 1000)
        print(f"  {'msd_musicnn':10s} {statistics.median(times):9.1f} ms/batch   eval embedding (B, 200) from {path}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=64, help="two-second mels per batch (x2 chunks); 64 as the authors")
    ap.add_argument("--runs", type=int, default=5, help="timed batches per network; the median is reported (default 5)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    ap.add_argument("--data", default=None, help="a preprocessed loop data set (only to find scnn_loop's checkpoint)")
    ap.add_argument("--ckpt-dir", default=None, help="where feature-network checkpoints are kept (default "
                    "$PJLOOP_HOME/checkpoints, the repository's checkpoints/ when unset)")
    ap.add_argument("--names", default=",".join(featurenet.REGISTRY), help="comma list of registry names")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    ctx = FeatureContext(device=args.device, data_dir=args.data, ckpt_dir=args.ckpt_dir)
    x = torch.randn(2 * args.batch, 1, CHUNK_FRAMES, N_MELS, device=args.device)   # (128, 1, 100, 64)
    print(f"feature-network stages, batch of {args.batch} two-second mels = {tuple(x.shape)} chunks, "
          f"device {args.device}, torch threads {torch.get_num_threads()}, median of {args.runs} runs")
    for name in [n.strip() for n in args.names.split(",") if n.strip()]:
        net, note = build_for_bench(name, ctx)
        if net is None:
            print(f"  {name:10s} {note}")
            continue
        shapes = " ".join("x".join(map(str, o.shape[1:])) for o in net.stages(x[:1]))
        print(f"  {name:10s} {time_stages(net, x, args.runs):9.1f} ms/batch   stages {shapes}   [{note}]")
    time_embedding(args.batch, args.runs, args.device)


if __name__ == "__main__":
    main()
