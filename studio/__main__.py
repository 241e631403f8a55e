"""python -m studio [RUN_OR_PRETRAINED] [--host H] [--port P] [--out DIR] [--vocoder V]: start the loop studio.

Loads the generator (a run folder, a checkpoint, or the shipped pretrained/drum), its vocoder, and serves the
page and its JSON endpoints (studio/app.py) with uvicorn on 127.0.0.1:7860 until Ctrl-C. Every file it makes
goes under --out (default $PJLOOP_HOME/studio_out). Not in the paper.
"""
from __future__ import annotations

import argparse
import sys

import torch

from plumbing import paths
from studio.app import DEFAULT_LOOPS, START_ERRORS, create_app, open_studio

HOST = "127.0.0.1"      # this machine only: the studio writes files and has no log-in
PORT = 7860             # a port web demos commonly use, free on most machines
USER_ERROR = 2          # exit status when there is no model to play (as argparse's usage errors)
THREADS = 1             # torch threads of the worker: a CPU-width G and the fast vocoder gain little from a second,
#                         and on a shared CPU a second thread waits for a busy core (one loop: 0.09 s on one
#                         thread, 0.2 to 2.7 s on two, docs/benchmarks.md "Studio latency"); Rubber Band gets the other


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m studio", description=__doc__.split("\n")[0])
    ap.add_argument("source", nargs="?", default=None, metavar="RUN_OR_PRETRAINED",
                    help=f"a run folder (its latest.pt), a checkpoint file, or a shipped model folder "
                         f"(default: the shipped pretrained/{DEFAULT_LOOPS} in the repository)")
    ap.add_argument("--host", default=HOST, help=f"address to listen on (default {HOST}: this machine only; "
                                                 "0.0.0.0 opens it to the network)")
    ap.add_argument("--port", type=int, default=PORT, help=f"port to listen on (default {PORT})")
    ap.add_argument("--out", default=None, help="folder for the WAVs, recipes and mel pictures, one sub-folder "
                                                "per request (default: $PJLOOP_HOME/studio_out)")
    ap.add_argument("--vocoder", default=None, help="vocoder checkpoint (train_melgan.py) or griffin-lim (default: "
                    "the folder's vocoder.pt, else the data set's trained vocoder, else Griffin-Lim)")
    ap.add_argument("--threads", type=int, default=THREADS,
                    help=f"torch threads for generating (default {THREADS}; more may help a wide generator on idle "
                         "cores)")
    return ap.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(max(1, args.threads))
    try:
        studio = open_studio(args.source, args.out if args.out is not None else paths.studio_out(), args.vocoder)
    except START_ERRORS as e:                       # no model there, or not a generator: one line
        print(f"studio: {e}", file=sys.stderr)
        return USER_ERROR
    import uvicorn                                  # only once there is something to serve
    genres = ", ".join(studio.genres) if studio.genres else "unconditional"
    slow = " (the Griffin-Lim fallback takes seconds per loop: train a vocoder for live speed)" \
        if studio.vocoder.name == "griffin-lim" else ""
    print(f"studio: {studio.checkpoint} ({studio.ckpt['loops']} loops, step {studio.ckpt['step']}, {genres}); "
          f"vocoder {studio.vocoder.name}{slow}; files in {studio.out}; open http://{args.host}:{args.port}/",
          flush=True)
    uvicorn.run(create_app(studio), host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
