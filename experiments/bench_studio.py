"""Studio latency (python -m studio): how long one loop, 8 variations and an 8-bar morph take, through the app's
functions (Studio.make_loop / make_variations / make_morph: generate + vocode + write) and through HTTP (FastAPI's
TestClient, the same requests the page posts). Targets on a 2-core CPU: 0.5 s, 2 s and 3 s at the native 120 BPM;
another tempo adds Rubber Band's stretch, timed too. Results: docs/benchmarks.md, "Studio latency".

    python -m experiments.bench_studio [--run runs/drum_scnn_loop] [--repeats 5] [--screenshot docs/studio.png]

Without --run it times a stand-in of the CPU quick start's size: an untrained conditional generator of width
train.CPU_PRESET's g_channels (32) with the demo drum genres and an untrained fast vocoder of vocos.py's default
size. Untrained weights take the same time as trained ones. --screenshot starts the studio on a free port, makes a
loop and its variations in headless Chromium and saves the page (needs playwright and /usr/bin/chromium).
Not in the paper.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict
from pathlib import Path

import torch

import demo.loops
import melgan
import vocos
from generator import Generator, GeneratorConfig
from evaluation.report import write_generated
from plumbing import paths
from plumbing.checkpoint import save_checkpoint
from plumbing.devices import machine
from studio.__main__ import THREADS
from studio.app import create_app, open_studio

REPEATS = 5                     # timed calls of each action (median and best reported); one more warms up
CPU_WIDTH = 32                  # train.CPU_PRESET's g_channels: the width a CPU quick start trains
TARGETS_S = {"loop": 0.5, "variations": 2.0, "morph": 3.0}   # the studio's latency targets on a 2-core CPU
SLOW_BPM = 90.0                 # a tempo other than 120: every loop goes through Rubber Band
N_VARIATIONS = 8
MORPH_BARS = 8
CHROMIUM = "/usr/bin/chromium"  # Debian's browser; playwright drives it, nothing is downloaded
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
STARTUP_S = 120.0               # a studio subprocess may take this long to answer (torch import on a busy CPU)
SHOT_WIDTH = 900                # docs/studio.png: small enough for a README
SHOT_HEIGHT = 700


# ---------------------------------------------------------------------------------------------
# A stand-in model of the CPU quick start's size
# ---------------------------------------------------------------------------------------------
def stand_in(folder: Path, width: int = CPU_WIDTH) -> tuple[Path, Path]:
    """Write an untrained conditional generator (train.py's checkpoint layout) and an untrained fast vocoder
    (train_melgan.py's) into `folder`. -> (run folder, vocoder path)."""
    torch.manual_seed(0)
    genres = sorted(demo.loops.DRUM_GENRES)
    cfg = GeneratorConfig(max_channels=width, c_dim=len(genres))
    G = Generator(cfg).eval()
    save_checkpoint({"g_ema": G.state_dict(), "g_config": asdict(cfg), "mel_mean": torch.full((64,), -2.0),
                     "mel_std": torch.full((64,), 0.6), "features": ["scnn_loop"], "loops": "drum", "step": 0,
                     "genres": genres}, folder / "run" / "latest.pt")
    vcfg = vocos.VocosConfig()
    save_checkpoint({"kind": "vocoder", "arch": "fast", "loops": "drum", "frontend": melgan.frontend(),
                     "G": vocos.VocosGenerator(vcfg).state_dict(), "config": asdict(vcfg)}, folder / "vocoder.pt")
    return folder / "run", folder / "vocoder.pt"


# ---------------------------------------------------------------------------------------------
# A studio in a subprocess and a headless browser (also used by tests/test_studio.py)
# ---------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(source: str | Path, out: str | Path, vocoder: str | Path | None = None, startup_s: float = STARTUP_S):
    """`python -m studio SOURCE` on a free port until the block ends; yields its base URL."""
    port = free_port()
    cmd = [sys.executable, "-m", "studio", str(source), "--port", str(port), "--out", str(out)]
    cmd += ["--vocoder", str(vocoder)] if vocoder is not None else []
    proc = subprocess.Popen(cmd, cwd=paths.REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + startup_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the studio stopped at start-up: {proc.stdout.read().strip()}")
            try:
                urllib.request.urlopen(url + "/api/info", timeout=2).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the studio did not answer within {startup_s:g} s") from None
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()


def launch_chromium(playwright):
    """Debian's Chromium, headless, through playwright (no `playwright install`)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def screenshot(source: Path, vocoder: Path | None, path: Path) -> Path:
    """Start the studio, Make a loop and its variations in Chromium, save the page (SHOT_WIDTH wide) to `path`."""
    from playwright.sync_api import sync_playwright
    with tempfile.TemporaryDirectory() as out, serve(source, out, vocoder) as url, sync_playwright() as pw:
        browser = launch_chromium(pw)
        page = browser.new_page(viewport={"width": SHOT_WIDTH, "height": SHOT_HEIGHT})
        page.goto(url)
        page.wait_for_selector("body[data-ready=yes]")
        page.fill("#seed", "42")
        page.click("#make")
        page.wait_for_function("document.getElementById('now-status').textContent.startsWith('playing')")
        page.click("#variations")
        page.wait_for_selector("#row .card img")
        page.wait_for_function("[...document.images].every(i => i.complete)")
        path.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(path))
        browser.close()
    return path


# ---------------------------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------------------------
def timed_s(call, repeats: int) -> tuple[float, float]:
    """(median, best) wall seconds of `call()` over `repeats` calls, after one call that is not timed. On a
    shared machine the best is the call the other jobs disturbed least: the nearer to an idle machine."""
    call()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        call()
        times.append(time.perf_counter() - t)
    return statistics.median(times), min(times)


def actions(genre: str | None, bpm: float) -> dict:
    """The three requests of the targets, as the page posts them."""
    loop = {"seed": 42, "genre": genre, "truncation": 1.0, "bpm": bpm}
    return {"loop": loop, "variations": {**loop, "n": N_VARIATIONS, "spread": 0.3},
            "morph": {"seed_a": 42, "genre_a": genre, "seed_b": 7, "genre_b": genre, "truncation": 1.0, "bpm": bpm,
                      "bars": MORPH_BARS}}


def bench(studio, repeats: int) -> list[dict]:
    """-> rows {action, bpm, via, seconds: (median, best)}: each action through the app's functions and HTTP."""
    from fastapi.testclient import TestClient
    client = TestClient(create_app(studio))
    genre = studio.genres[0] if studio.genres else None
    make = {"loop": (studio.make_loop, studio.loop_args),
            "variations": (studio.make_variations, studio.variations_args),
            "morph": (studio.make_morph, studio.morph_args)}
    rows = []
    for bpm in (120.0, SLOW_BPM):
        for name, body in actions(genre, bpm).items():
            work, args = make[name]
            rows.append({"action": name, "bpm": bpm, "via": "function",
                         "seconds": timed_s(lambda: work(**args(body)), repeats)})

            def post():
                res = client.post(f"/api/{name}", json=body)
                assert res.status_code == 200, res.text
            rows.append({"action": name, "bpm": bpm, "via": "HTTP", "seconds": timed_s(post, repeats)})
    return rows


def table(rows: list[dict]) -> str:
    """A markdown table: one line per action and tempo, function and HTTP side by side, the target beside."""
    lines = ["| action | BPM | app function, s: median (best) | HTTP, s: median (best) | target, s | met |",
             "| --- | --- | --- | --- | --- | --- |"]
    for name in TARGETS_S:
        for bpm in (120.0, SLOW_BPM):
            got = {r["via"]: r["seconds"] for r in rows if r["action"] == name and r["bpm"] == bpm}
            label = {"loop": "one loop", "variations": f"{N_VARIATIONS} variations (+ the loop)",
                     "morph": f"{MORPH_BARS}-bar morph"}[name]
            cells = " | ".join(f"{got[via][0]:.2f} ({got[via][1]:.2f})" for via in ("function", "HTTP"))
            lines.append(f"| {label} | {bpm:g} | {cells} | {TARGETS_S[name]:g} | {met(got, TARGETS_S[name])} |")
    return "\n".join(lines)


def met(got: dict, target: float) -> str:
    """'yes' when both medians (function, HTTP) are within the target, else 'no: +0.12 s' by the larger."""
    worst = max(median for median, _ in got.values())
    return "yes" if worst <= target else f"no: +{worst - target:.2f} s"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", default=None, help="a run folder or checkpoint to time (default: an untrained stand-in "
                                                f"of the CPU quick start's size, width {CPU_WIDTH})")
    ap.add_argument("--vocoder", default=None, help="vocoder checkpoint or griffin-lim for --run (default: as the "
                                                    "studio picks it)")
    ap.add_argument("--repeats", type=int, default=REPEATS, help=f"timed calls per action, median and best "
                                                                f"reported (default {REPEATS})")
    ap.add_argument("--threads", type=int, default=THREADS, help=f"torch threads (default {THREADS}, as the studio "
                                                                 "runs)")
    ap.add_argument("--docs", default=None, metavar="PAGE", help="also write the table into PAGE between its "
                    "'studio-latency' markers (e.g. docs/benchmarks.md)")
    ap.add_argument("--screenshot", default=None, metavar="PNG", help="instead of timing: save the page with a "
                    f"loop and its variations, {SHOT_WIDTH} px wide, to PNG (e.g. docs/studio.png)")
    args = ap.parse_args(argv)
    torch.set_num_threads(max(1, args.threads))
    with tempfile.TemporaryDirectory() as tmp:
        run, vocoder = (Path(args.run), args.vocoder) if args.run else stand_in(Path(tmp))
        if args.screenshot:
            print(f"wrote {screenshot(run, vocoder, Path(args.screenshot))}")
            return
        load_before = os.getloadavg()[0]
        studio = open_studio(run, Path(tmp) / "out", None if vocoder is None else str(vocoder))
        rows = bench(studio, args.repeats)
    model = paths.shown(args.run) if args.run else f"an untrained stand-in of width {CPU_WIDTH}"
    head = (f"Studio latency, {datetime.date.today()}, {machine()}, torch threads {torch.get_num_threads()}, load "
            f"average {load_before:.1f} at the start and {os.getloadavg()[0]:.1f} at the end; model {model} (generator "
            f"width {studio.G.cfg.width}, vocoder {studio.vocoder.name.split(':', 1)[0]}); {args.repeats} timed "
            "calls per action after one untimed; 'met': both medians within the target.")
    print(head + "\n\n" + table(rows))
    if args.docs:
        command = "python -m experiments.bench_studio " + " ".join(argv if argv is not None else sys.argv[1:])
        write_generated(args.docs, "studio-latency", head + "\n\n" + table(rows) + "\n", command=command)
        print(f"wrote {args.docs}")


if __name__ == "__main__":
    main()
