"""Benchmark of the demo-loop renderer (demo/loops.py): render + mel + write N loops of one type.

The target (task spec) is >= 2000 loops of one type rendered AND converted to (F=64, T=200) log-mels in
under 3 minutes on 2 CPU cores. This times `build_demo_set` end to end into a temporary directory
(rendering, the mel front end of mel.py, wav/npy writes, stats and manifest), so the figure is
what a first `ensure_demo_set` costs.

    python -m experiments.bench_demoloops --loops drum -n 2000 --workers 2
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import demo.loops
from plumbing.files import read_csv

TARGET_S = 180.0      # 3 minutes for 2000 loops on 2 cores (task spec)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--loops", choices=sorted(demo.loops.GENRES), default="drum", help="which demo loops to render (default drum)")
    ap.add_argument("-n", type=int, default=demo.loops.DEFAULT_N, help="loops to render")
    ap.add_argument("--workers", type=int, default=demo.loops.DEFAULT_WORKERS,
                    help=f"render processes (default {demo.loops.DEFAULT_WORKERS})")
    ap.add_argument("--seed", type=int, default=0, help="first render seed (default 0)")
    args = ap.parse_args(argv)
    if args.n < 1 or args.workers < 1:
        ap.error("-n and --workers must be positive")

    with tempfile.TemporaryDirectory(prefix="bench_demoloops_") as tmp:
        t0 = time.perf_counter()
        out = demo.loops.build_demo_set(args.loops, args.n, Path(tmp) / args.loops, seed=args.seed,
                                       workers=args.workers, progress=True)
        seconds = time.perf_counter() - t0
        kept = len(read_csv(out / "manifest.csv"))
    rate = kept / seconds
    print(f"{args.loops}: {kept} loops (render + mel + write) in {seconds:.1f} s with {args.workers} workers "
          f"= {rate:.1f} loops/s; 2000 loops would take {2000 / rate:.0f} s (target < {TARGET_S:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
