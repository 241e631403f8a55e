"""The genre-conditional tables and figure (docs/conditional.md), from a reproduce.py results folder.

    python reproduce.py --loops drum --seeds 0,1 --minutes 30 --jobs 2 --mel-only -n 300 --evals 2 \
        --rows stylegan2_cond,loop_cond,loop --out results30
    python -m experiments.conditional_report results30/drum --cond loop_cond --uncond loop --docs docs/conditional.md \
        --figure docs/conditional_drum.png

reads OUT/results.csv (the overall metrics of every snapshot), OUT/results_genres.csv (the judge's per-genre rows,
written by evaluate.conditional_columns) and OUT/runs/<cond>/seed<k>/latest.pt (for the grid), and prints
markdown (evaluation/report.py): the conditional rows with mean ± interval over seeds and verdicts against
stylegan2_cond, their genre accuracy per seed with Wilson intervals, --cond against --uncond (the same row
without the genre input; Welch over seeds), and the --cond row per genre. The figure:
per-genre accuracy (bars; chance and the judge's own accuracy as lines) beside a grid of one loop per genre, all
from the same latent (seed 0), so the genre is the only thing that changes.
"""
from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

import matplotlib
matplotlib.use("Agg")            # files only, no display; chosen before pyplot is imported
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np
import torch

import sample
from mel import LOG_FLOOR
from evaluation import report
from plumbing.files import atomic_write, read_csv

PER_GENRE = [("cond_acc", ".2f"), ("KAD_musicnn_mel", ".3g"), ("FAD_musicnn_mel", ".3g"), ("density", ".2f"),
             ("coverage", ".2f")]
COND = "_cond"         # the setting suffix of the genre-conditional rows (reproduce.rows_table)
GRID_SEED = 0          # one latent for the whole grid: only the genre changes from panel to panel


class ReportInputError(ValueError):
    """Bad input: its message is one line that says what to do."""


def run_of(ckpt_path: str) -> tuple[str, int, str]:
    """A snapshot's path -> (row, seed, file name): runs/<row>/seed<k>/ckpt_*.pt, or runs/<row>/ckpt_*.pt (a run
    from before seeds: seed 0)."""
    p = Path(ckpt_path)
    m = re.fullmatch(r"seed(\d+)", p.parent.name)
    return (p.parent.parent.name, int(m.group(1)), p.name) if m else (p.parent.name, 0, p.name)


def genre_rows_of(genre_rows: list[dict], row: str, seed: int, ckpt: str) -> list[dict]:
    """The per-genre rows of one evaluated snapshot (reproduce.py's row, seed and snapshot file name); when it was
    evaluated more than once, the last rows of each genre."""
    mine = [g for g in genre_rows if run_of(g["ckpt"]) == (row, seed, Path(ckpt).name)]
    return list({g["genre"]: g for g in mine}.values())


def wanted_rows(results: list[dict], uncond: str | None) -> list[str]:
    """Every genre-conditional row of the results (their baseline stylegan2_cond among them), and `uncond`, an
    unconditional row shown beside them, with its own baseline."""
    rows = [r for r in dict.fromkeys(ln.get("row", "") for ln in results) if COND in (report.setting_of(r) or "")]
    if uncond:
        if not any(ln.get("row") == uncond for ln in results):
            raise ReportInputError(f"no row '{uncond}' in the results (run reproduce.py --rows ...{uncond}, or "
                                   "--uncond none)")
        rows += [uncond, report.baseline_of(uncond) or uncond]
    return list(dict.fromkeys(rows))


def per_genre_table(res: report.Results, genre_rows: list[dict], cond: str) -> str:
    """The --cond row per genre and N: each metric's mean ± interval over the seeds' final snapshots."""
    out = []
    for n in sorted({m for r, _, m in res.runs if r == cond}):
        per: dict[str, dict[str, list[float]]] = {}
        for s in res.seeds(cond, n):
            for g in genre_rows_of(genre_rows, cond, s, res.runs[(cond, s, n)][-1]["ckpt"]):
                for k, _ in PER_GENRE:
                    v = report.value(g, k)
                    if v == v:                                               # not NaN
                        per.setdefault(g["genre"], {}).setdefault(k, []).append(v)
        if not per:
            continue
        out += [f"{cond} per genre, N = {n} ({len(res.seeds(cond, n))} seeds, final snapshots):", "",
                "| genre | " + " | ".join(k for k, _ in PER_GENRE) + " |", "|" + " --- |" * (1 + len(PER_GENRE))]
        out += ["| " + " | ".join([genre] + [report.fmt_interval(vals.get(k, []), spec) for k, spec in PER_GENRE])
                + " |" for genre, vals in per.items()]
        out.append("")
    return "\n".join(out)


def against_uncond(res: report.Results, cond: str, uncond: str) -> str:
    """What the genre input costs: --cond against the same row without it, per N both have, each key metric as
    mean ± interval over seeds and Welch's verdict over the seeds' final values (report.verdict)."""
    out = []
    for n in sorted({m for r, _, m in res.runs if r == cond} & {m for r, _, m in res.runs if r == uncond}):
        out += [f"{cond} against {uncond} (the same row without the genre input), N = {n}, final snapshots; "
                f"Welch's t at {report.ALPHA:g} over seeds:", "",
                f"| metric | {cond} | {uncond} | {cond} is |", "| --- | --- | --- | --- |"]
        for key, direction, _ in report.VERDICTS:
            a, b = res.finals(cond, n, key), res.finals(uncond, n, key)
            name = f"{key} (judged by \\|{key} - 1\\|)" if direction == "one" else key
            out.append(f"| {name} | {report.fmt_interval(a)} | {report.fmt_interval(b)} | "
                       f"{report.verdict(a, b, direction)} |")
        out.append("")
    return "\n".join(out)


def tables(results: list[dict], genre_rows: list[dict], cond: str, uncond: str | None) -> str:
    """The markdown: the conditional rows (and `uncond`) as evaluation/report.py tabulates them, --cond against
    `uncond`, then --cond per genre. uncond None: the conditional rows alone."""
    if not any(ln.get("row") == cond for ln in results):
        raise ReportInputError(f"no row '{cond}' in the results (run reproduce.py --rows ...{cond})")
    keep = set(wanted_rows(results, uncond)) | {report.FLOOR_ROW}
    res = report.read_results([ln for ln in results if ln.get("row") in keep])
    versus = against_uncond(res, cond, uncond) + "\n" if uncond else ""
    return report.markdown(res) + "\n" + versus + per_genre_table(res, genre_rows, cond)


@torch.no_grad()
def figure(genre_rows: list[dict], ckpt_path: Path, path: Path, judge_acc: float) -> None:
    G, ckpt = sample.load_generator(ckpt_path)
    genres = ckpt["genres"]
    acc = {g["genre"]: float(g["cond_acc"]) for g in genre_rows}
    z = torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(GRID_SEED)).repeat(len(genres), 1)
    mels = sample.mels_from_z(G, ckpt, z, 1.0, "const", torch.arange(len(genres)))                 # (K, 64, 200)
    cols = 5
    rows = (len(genres) + cols - 1) // cols
    fig = plt.figure(figsize=(14, 2.2 + 1.6 * rows))
    grid = fig.add_gridspec(rows, 1 + cols, width_ratios=[2.2] + [1] * cols)
    ax = fig.add_subplot(grid[:, 0])
    ax.barh(genres, [acc.get(g, np.nan) for g in genres], color="tab:blue")
    ax.axvline(1 / len(genres), color="grey", ls="--", label="chance")
    ax.axvline(judge_acc, color="tab:green", ls=":", label="judge on real loops")
    ax.set_xlim(0, 1), ax.set_xlabel("share judged as the genre asked for"), ax.legend(fontsize=7)
    ax.invert_yaxis()
    for i, g in enumerate(genres):
        a = fig.add_subplot(grid[i // cols, 1 + i % cols])
        a.imshow(mels[i], origin="lower", aspect="auto", cmap="magma", vmin=np.log10(LOG_FLOOR), vmax=1.0)
        a.set_title(g, fontsize=8)
        a.axis("off")
    fig.suptitle(f"{ckpt_path.parent.name}, step {ckpt['step']}: genre accuracy, and one latent in every genre")
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=80))
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("results", help="a reproduce.py folder (results.csv, results_genres.csv, runs/)")
    ap.add_argument("--cond", default="loop_cond", help="the conditional row of the per-genre table and the figure "
                    "(default loop_cond)")
    ap.add_argument("--uncond", default="none", help="an unconditional row to show beside the conditional ones, "
                    "e.g. loop (default none)")
    ap.add_argument("--figure", default=None, help="write the figure here (PNG), e.g. docs/conditional_drum.png")
    ap.add_argument("--docs", default=None, help="also write the tables into this docs page (e.g. "
                    "docs/conditional.md), between its 'conditional-<loops>' generated-block markers")
    args = ap.parse_args(argv)
    out = Path(args.results)
    if args.docs and not Path(args.docs).is_file():
        raise SystemExit(f"conditional_report: --docs {args.docs}: no such file; give an existing page, e.g. "
                         "docs/conditional.md")
    results, genre_rows = read_csv(out / "results.csv"), read_csv(out / "results_genres.csv")
    try:
        text = tables(results, genre_rows, args.cond, None if args.uncond == "none" else args.uncond)
    except (report.ReportError, ReportInputError) as e:
        raise SystemExit(f"conditional_report: {out / 'results.csv'}: {e}") from None
    print(text)
    if args.figure:
        res = report.read_results([ln for ln in results if ln.get("row") == args.cond])
        (cond, seed, n), *_ = sorted(res.runs)                          # the first seed at the smallest N
        last = res.runs[(cond, seed, n)][-1]
        run = out / "runs" / cond / f"seed{seed}"
        figure(genre_rows_of(genre_rows, cond, seed, last["ckpt"]),
               (run if run.is_dir() else out / "runs" / cond) / "latest.pt", Path(args.figure),
               float(last["judge_acc"]))
        print(f"wrote {args.figure}")
    if args.docs:
        png = f"\n![Genre accuracy and one latent in every genre]" \
              f"({os.path.relpath(args.figure, Path(args.docs).parent)})\n" if args.figure else ""
        command = f"python -m experiments.conditional_report {args.results} --cond {args.cond} " \
            f"--uncond {args.uncond} --docs {args.docs}" + (f" --figure {args.figure}" if args.figure else "")
        report.write_generated(args.docs, f"conditional-{out.name}", text + png, command=command)
        print(f"wrote {args.docs}")
    return 0

if __name__ == "__main__":
    raise SystemExit(main())
