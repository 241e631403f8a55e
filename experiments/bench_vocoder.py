"""Vocoder benchmark (the vocoder of paper Section 4): the round trip of held-out real loops
(the 'test' part of dataset.split_rows: source files the vocoder never trained on), real wav (N, 32000) ->
mel.log_mel (N, 64, 200) -> vocoder -> (N, 32000), scored against the real audio: mel L1 (log10); multi-resolution
STFT log-magnitude L1 and spectral convergence (vocos.STFT_RESOLUTIONS); FAD_musicnn against a DISJOINT set of N
other real loops, the 'val' part (no source file in both; real-vs-real floor beside it); loopability
(evaluation.metrics; the real loops' beside it); CPU seconds per loop and loops/s.
A vocoder checkpoint that trained on a scored source file is refused (its `trained_sources`); one written before
vocoders recorded them cannot be checked: a line says so and the benchmark goes on.
--log draws quality against training minutes from a train_melgan.py log's snapshots. Every run adds its lines to
bench_results/vocoder_<loops>.csv and prints that run's table from it; --docs PAGE also writes it between the page's
'vocoder-<loops>' generated-block markers. Results: docs/vocoder.md.

    python -m experiments.bench_vocoder --loops drum -n 128 --vocoder checkpoints/vocoder_drum_demo_drum_<fingerprint>.pt
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

import melgan
import train_melgan
import vocos
from dataset import MIN_SPLIT_SOURCES, describe_overlap, overlap, split_ids
from evaluation import kad, metrics
from evaluation.report import value, write_generated
from mel import log_mel
from plumbing import paths
from plumbing.checkpoint import load_checkpoint
from plumbing.devices import machine
from plumbing.cli import YES_NO, yes_no
from plumbing.files import read_csv, write_csv
from standins import musicnn_features

N_LOOPS = 128                    # the acceptance target's N: 128 vocoded loops against 128 other real ones
CURVE_N = 64                     # loops per snapshot on the quality-vs-minutes curve (cheaper than the table)
COLUMNS = ("mel_l1", "stft_mag", "sc", "fad_musicnn", "loopability", "s_per_loop", "loops_per_s")
RESULTS_DIR = str(paths.home() / "bench_results")   # vocoder_<loops>.csv there: every line of every run (ignored
#                                                     by git); in $PJLOOP_HOME, whatever the current directory


def held_out_ids(data_dir: str | Path, n: int) -> tuple[list[str], list[str]]:
    """(ids vocoded, ids of the reference set), each <= n, in manifest order: the 'test' and the 'val' part
    (dataset.split_rows), so the two sets share no source file and a vocoder of this split heard neither."""
    test, val = split_ids(data_dir, "test"), split_ids(data_dir, "val")
    if len(test) < 2 or len(val) < 2:
        raise ValueError(f"{data_dir}: only {len(test)} test and {len(val)} val loops held out (a set of fewer "
                         f"than {MIN_SPLIT_SOURCES} source files holds none out); nothing to benchmark on: pass "
                         "--data with a larger set")
    return test[:n], val[:n]


def check_unheard(path: str | Path, data_dir: str | Path, ids: list[str]) -> None:
    """Refuse (ValueError, one line) a vocoder checkpoint whose `trained_sources` include a source file of the
    loops `ids` it would be scored on. One without the key (written before vocoders recorded their sources)
    cannot be checked: say so in one line and go on (the benchmark is still the same round trip)."""
    trained = load_checkpoint(path, required=melgan.MELGAN_KEYS).get("trained_sources")
    if trained is None:
        print(f"bench_vocoder: {path} does not record the source files it trained on (written before vocoders "
              "did), so it cannot be checked that it never heard these loops; retrain it with train_melgan.py "
              "for a checked score")
        return
    shared = overlap(trained, data_dir, ids)
    if shared:
        raise ValueError(f"{path} trained on {describe_overlap(shared)} of the {len(ids)} loops it would be "
                         f"scored on in {data_dir}: benchmark it on held-out files (retrain it with "
                         "train_melgan.py, which trains on the 'train' part only) or on another --data")


def round_trip_scores(vocoded: torch.Tensor, real: torch.Tensor) -> dict[str, float]:
    """(N, S) vocoded and real audio -> mean mel L1 (log10), multi-resolution STFT log-mag L1 and SC."""
    mel_l1 = (log_mel(vocoded) - log_mel(real)).abs().mean().item()
    sc, mag = vocos.multi_resolution_stft(vocoded, real)                                # (N,) each
    return {"mel_l1": mel_l1, "stft_mag": mag.mean().item(), "sc": sc.mean().item()}


def vocode_timed(vocoder, mels: torch.Tensor) -> tuple[torch.Tensor, float]:
    """mels (N, 64, T) -> (audio (N, T * 160), seconds of wall time per loop)."""
    t = time.perf_counter()
    audio = torch.cat([torch.as_tensor(vocoder(mels[i:i + 16])) for i in range(0, len(mels), 16)])
    return audio.float(), (time.perf_counter() - t) / len(mels)


def distances(emb, ref_emb) -> dict[str, float]:
    """KAD_musicnn with its 95 % bootstrap interval, and FAD_musicnn, of one set's embeddings (N, 200) against the
    reference set's (evaluation.metrics)."""
    k = kad.kad_with_uncertainty(ref_emb, emb, permutations=0)     # no p-value: the table shows the interval
    return {"kad_musicnn": k.kad, "kad_musicnn_lo": k.lo, "kad_musicnn_hi": k.hi,
            "fad_musicnn": metrics.fad_from_embeddings(emb, ref_emb)}


def score_vocoder(vocoder, real: torch.Tensor, ref_emb: torch.Tensor, embedder) -> dict[str, float]:
    """Every column of the table for one vocoder on real loops (N, S), given the reference set's embeddings."""
    audio, spl = vocode_timed(vocoder, log_mel(real))                                  # (N, S)
    row = round_trip_scores(audio, real)
    row.update(distances(musicnn_features.embed_audio(embedder, audio.numpy()), ref_emb))
    row["loopability"] = float(np.mean(metrics.loopability(audio)))
    row.update(s_per_loop=spl, loops_per_s=1.0 / spl)
    return row


def csv_lines(rows: list[tuple[str, dict]], loops: str, data_dir: Path, n: int, n_ref: int) -> list[dict]:
    """(name, scores) pairs of one run -> lines of the results CSV: the scores, and where and how they were taken."""
    stamp = datetime.datetime.now().isoformat(timespec="seconds")
    where = dict(run=stamp, date=stamp[:10], machine=machine(), threads=torch.get_num_threads(), loops=loops,
                 data=paths.shown(data_dir), n=n, n_ref=n_ref)
    return [{**where, "vocoder": name, **{k: "" if v is None else v for k, v in r.items()}} for name, r in rows]


def results_csv(results_dir: str | Path, loops: str) -> Path:
    return Path(results_dir) / f"vocoder_{loops}.csv"


def append_lines(path: Path, lines: list[dict]) -> None:
    """Add lines to the results CSV (atomically rewritten; earlier runs kept, new columns added)."""
    old = read_csv(path)
    fields = list(dict.fromkeys([k for ln in old[:1] + lines for k in ln]))
    write_csv(path, fields, old + lines)


def format_table(lines: list[dict]) -> str:
    """Markdown of the LAST run in results-CSV lines: a header from its own lines (date, machine, threads, N), then
    one line per vocoder; the real audio itself first, the real-vs-real floor of every distance at the same N."""
    if not lines:
        return "No benchmark run yet."
    run = [ln for ln in lines if ln["run"] == lines[-1]["run"]]
    first = run[0]
    n, n_ref = first["n"], first["n_ref"]
    said = (f"Measured {first['date']} on {first['machine']}, {first['threads']} torch threads, data "
            f"`{first['data']}`: {n} held-out loops vocoded, KAD and FAD against {n_ref} other held-out loops. "
            f"KAD_musicnn with its {kad.KAD_LEVEL * 100:g} % bootstrap interval; the first line (the real audio "
            "itself) is the real-vs-real floor at the same N.")
    head = ("| vocoder | mel L1 (log10) | multi-res STFT log-mag L1 | spectral convergence | "
            f"KAD_musicnn [95 % interval] | FAD_musicnn (N = {n}) | loopability | CPU s per loop | loops/s |\n|"
            + "---|" * 9)
    fmt = lambda ln, k, p: "-" if math.isnan(value(ln, k)) else f"{value(ln, k):.{p}f}"          # noqa: E731
    body = [f"| {ln['vocoder']} | {fmt(ln, 'mel_l1', 3)} | {fmt(ln, 'stft_mag', 2)} | {fmt(ln, 'sc', 2)} | "
            f"{fmt(ln, 'kad_musicnn', 3)} [{fmt(ln, 'kad_musicnn_lo', 3)}, {fmt(ln, 'kad_musicnn_hi', 3)}] | "
            f"{fmt(ln, 'fad_musicnn', 1)} | {fmt(ln, 'loopability', 2)} | {fmt(ln, 's_per_loop', 3)} | "
            f"{fmt(ln, 'loops_per_s', 1)} |" for ln in run]
    return "\n".join([said, "", head, *body])


def glance_table(lines: list[dict]) -> str:
    """The README's few lines of the LAST run: each vocoder's KAD_musicnn with its interval and its speed, the
    real audio first (the floor at the same N), under one sentence from the CSV."""
    if not lines:
        return "No benchmark run yet."
    run = [ln for ln in lines if ln["run"] == lines[-1]["run"]]
    first = run[0]
    fmt = lambda ln, k, p: "-" if math.isnan(value(ln, k)) else f"{value(ln, k):.{p}f}"          # noqa: E731
    said = (f"{first['date']}, {first['machine']}, {first['threads']} thread(s): {first['n']} held-out loops "
            f"vocoded, against {first['n_ref']} other held-out loops.")
    body = [f"| {ln['vocoder'].split(':')[0]} | {fmt(ln, 'kad_musicnn', 2)} [{fmt(ln, 'kad_musicnn_lo', 2)}, "
            f"{fmt(ln, 'kad_musicnn_hi', 2)}] | {fmt(ln, 'loops_per_s', 1)} |" for ln in run]
    return "\n".join([said, "", "| vocoder | KAD_musicnn [95 % interval] | loops/s |", "|---|---|---|", *body])


def read_log(path: str | Path) -> tuple[list[dict], list[tuple[float, Path]]]:
    """A train_melgan.py JSONL log -> (loss lines, [(minutes, snapshot path)])."""
    path = Path(path)
    lines = [json.loads(s) for s in path.read_text().splitlines() if s.strip()]
    snaps = [(e["minutes"], path.parent / e["snapshot"]) for e in lines if "snapshot" in e]
    return [e for e in lines if "snapshot" not in e], snaps


def draw_curve(curves: dict[str, list[tuple[float, dict]]], baseline: dict, png: str | Path) -> None:
    """Quality against training minutes, one line per log, Griffin-Lim (and the real floor) dashed."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    panels = (("mel_l1", "mel L1 (log10)"), ("stft_mag", "multi-res STFT log-mag L1"), ("fad_musicnn", "FAD_musicnn"))
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, (key, label) in zip(axes, panels):
        for name, pts in curves.items():
            ax.plot([m for m, _ in pts], [r[key] for _, r in pts], "o-", label=name)
        for bname, style in (("griffin-lim", "r--"), ("real floor", "k:")):
            if baseline.get(bname, {}).get(key) is not None:
                ax.axhline(baseline[bname][key], color=style[0], linestyle=style[1:], label=bname)
        ax.set_xlabel("training minutes (2-core CPU)")
        ax.set_title(label)
        ax.set_yscale("log" if key == "fad_musicnn" else "linear")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    Path(png).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=90)
    plt.close(fig)


def bench_set(loops: str, data_dir: Path, n: int, vocoder_paths: list[str], griffin_lim: bool, logs: list[str],
              curve_n: int, png: str | None, device: str, results_dir: str | Path = RESULTS_DIR) -> str:
    """Score every vocoder on the held-out sets, add the lines to RESULTS_DIR/vocoder_<loops>.csv, and return the
    markdown of that run (read back from the CSV)."""
    scored, reference = held_out_ids(data_dir, n)
    for path in vocoder_paths + [str(snap) for log in logs for _, snap in read_log(log)[1]]:
        check_unheard(path, data_dir, scored)
    real = train_melgan.load_loop_audio(data_dir, scored)                              # (n, 32000)
    ref = train_melgan.load_loop_audio(data_dir, reference)                            # (n, 32000)
    embedder = musicnn_features.load_embedding()
    ref_emb = musicnn_features.embed_audio(embedder, ref.numpy())                      # (n, 200)
    floor = {"mel_l1": 0.0, "stft_mag": 0.0, "sc": 0.0, "s_per_loop": None, "loops_per_s": None,
             **distances(musicnn_features.embed_audio(embedder, real.numpy()), ref_emb),
             "loopability": float(np.mean(metrics.loopability(real)))}
    rows = [("the real audio itself (floor)", floor)]
    if griffin_lim:
        rows.append((f"Griffin-Lim ({melgan.GL_ITERS} iterations, circular)",
                     score_vocoder(melgan.GriffinLimVocoder(), real, ref_emb, embedder)))
    for path in vocoder_paths:
        v = melgan.load_vocoder(path, loops=loops, device=device)
        rows.append((v.name, score_vocoder(v, real, ref_emb, embedder)))
    results = results_csv(results_dir, loops)
    append_lines(results, csv_lines(rows, loops, data_dir, len(real), len(ref)))
    table = format_table(read_csv(results))
    if logs:
        baseline = {"real floor": floor, **({"griffin-lim": rows[1][1]} if griffin_lim else {})}
        curves = {}
        for log in logs:
            pts = []
            for minutes, snap in read_log(log)[1]:
                v = melgan.load_vocoder(snap, loops=loops, device=device)
                pts.append((minutes, score_vocoder(v, real[:curve_n], ref_emb, embedder)))
                print(f"bench_vocoder: {snap.name}: {minutes:.1f} min: "
                      + ", ".join(f"{k} {pts[-1][1][k]:.3f}" for k in COLUMNS[:5]), flush=True)
            curves[Path(log).stem] = pts
        draw_curve(curves, baseline, png)
        table += f"\n\n(curve: {png}; snapshots scored on the first {curve_n} loops, FAD against all {len(ref)})"
    return table


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--loops", nargs="+", choices=["drum", "synth"], default=["drum", "synth"],
                    help="demo sets to benchmark on (default both); with --data, the kind of its loops")
    ap.add_argument("--data", help="a preprocessed data set instead of the demo set (give one --loops)")
    ap.add_argument("-n", type=int, default=N_LOOPS, help=f"loops vocoded, and in the disjoint real set (default {N_LOOPS})")
    ap.add_argument("--vocoder", action="append", default=[], help="a vocoder checkpoint (train_melgan.py); "
                    "repeat for several; each is scored on the sets of its kind of loops")
    ap.add_argument("--griffin-lim", type=yes_no, default=True, metavar=YES_NO, help="score Griffin-Lim too (default yes)")
    ap.add_argument("--log", action="append", default=[], help="a train_melgan.py .jsonl log: score its snapshots "
                    "and draw quality against training minutes")
    ap.add_argument("--curve-n", type=int, default=CURVE_N, help=f"loops per snapshot on the curve (default {CURVE_N})")
    ap.add_argument("--png", default=str(paths.REPO / "docs" / "vocoder_curve.png"),
                    help="where the curve goes (default the repository's docs/vocoder_curve.png)")
    ap.add_argument("--threads", type=int, help="torch CPU threads (the timing column depends on it)")
    ap.add_argument("--results", default=RESULTS_DIR, help="folder of the results CSVs: every run adds its lines to "
                    "vocoder_<loops>.csv there (default $PJLOOP_HOME/bench_results, the repository's when unset)")
    ap.add_argument("--docs", default=None, help="also write each loop set's table into this docs page (e.g. "
                    "docs/vocoder.md), between its 'vocoder-<loops>' generated-block markers (appended if absent)")
    ap.add_argument("--readme", default=None, help="also write a short version (KAD and speed per vocoder) into "
                    "this page's 'vocoder-glance-<loops>' block, e.g. README.md")
    ap.add_argument("--device", default="cpu", help="device of the trained vocoders (default cpu: the timing column "
                    "is CPU seconds)")
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.data and len(a.loops) != 1:
        ap.error("--data needs exactly one --loops (the kind of its loops)")
    if a.docs and not Path(a.docs).is_file():
        raise SystemExit(f"bench_vocoder: --docs {a.docs}: no such file; give an existing page, e.g. docs/vocoder.md")
    for loops in a.loops:
        data_dir = Path(a.data) if a.data else train_melgan.resolve_data(loops, None)
        mine = []
        for p in a.vocoder:
            try:
                melgan.load_generator(p, loops)
                mine.append(p)
            except melgan.CheckpointError as e:
                print(f"bench_vocoder: skipping on {loops}: {e}")
        print(f"\n## {loops}: {data_dir}, {torch.get_num_threads()} torch threads\n", flush=True)
        try:
            table = bench_set(loops, data_dir, a.n, mine, a.griffin_lim, a.log if loops == a.loops[0] else [],
                              a.curve_n, a.png, a.device, a.results)
        except ValueError as e:          # too few held-out loops, or a vocoder that heard them: one line
            raise SystemExit(f"bench_vocoder: {e}") from None
        print(table, flush=True)
        if a.docs:
            command = " ".join(["python -m experiments.bench_vocoder --loops", loops, *sum(
                (["--vocoder", v] for v in mine), []), "-n", str(a.n), "--docs", a.docs])
            write_generated(a.docs, f"vocoder-{loops}", table, command=command)
        if a.readme:
            write_generated(a.readme, f"vocoder-glance-{loops}", glance_table(read_csv(results_csv(a.results, loops))),
                            command=f"python -m experiments.bench_vocoder --loops {loops} ... --readme {a.readme}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
