"""The README's genre-conditional table and figure (issue 19), from a reproduce.py results folder.

    python reproduce.py --loops drum --minutes 30 --clock cpu --jobs 2 --mel-only -n 300 --rows loop,loop_cond
    python -m experiments.conditional_report results/drum --cond loop_cond --uncond loop \
        --figure docs/conditional_drum.png

reads OUT/results.csv (the overall metrics of every snapshot), OUT/results_genres.csv (the judge's per-genre rows,
written by evaluate.conditional_columns) and OUT/runs/<cond>/latest.pt (for the grid), and prints two markdown
tables: conditional against unconditional at their last evaluation, and the conditional row per genre. The
figure: per-genre accuracy (bars; chance and the judge's own accuracy as lines) beside a grid of one loop per
genre, all from the same latent (seed 0), so the genre is the only thing that changes.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib
matplotlib.use("Agg")            # files only, no display; chosen before pyplot is imported
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np
import torch

import sample
from mel import LOG_FLOOR
from plumbing.files import atomic_write, read_csv

OVERALL = [("step", "d"), ("IS", ".2f"), ("FAD_musicnn_mel", ".1f"), ("FAD_vgg16rand", ".1f"), ("density", ".2f"),
           ("coverage", ".2f"), ("cond_acc", ".2f"), ("cond_acc_min", ".2f"),
           ("cond_acc_trunc", ".2f"), ("cond_acc_min_trunc", ".2f"), ("judge_acc", ".2f")]
PER_GENRE = [("cond_acc", ".2f"), ("FAD_musicnn_mel", ".1f"), ("density", ".2f"), ("coverage", ".2f")]
GRID_SEED = 0          # one latent for the whole grid: only the genre changes from panel to panel


def _cell(row: dict, key: str, spec: str) -> str:
    v = row.get(key, "")
    if v in ("", None) or (spec != "d" and np.isnan(float(v))):
        return "-"
    return format(int(float(v)) if spec == "d" else float(v), spec)


def last_of(rows: list[dict], name: str) -> dict:
    mine = [r for r in rows if r.get("row") == name]
    if not mine:
        raise SystemExit(f"conditional_report: no row '{name}' in the results (run reproduce.py --rows ...{name})")
    return max(mine, key=lambda r: float(r["train_minutes"]))


def genre_rows_of(genre_rows: list[dict], row: dict, name: str) -> list[dict]:
    """The per-genre rows of one evaluation (reproduce.py's row `name`, its snapshot row['ckpt']); when it was
    evaluated more than once, the last rows of each genre."""
    mine = [g for g in genre_rows if Path(g["ckpt"]).name == Path(row["ckpt"]).name
            and Path(g["ckpt"]).parent.name == name]
    return list({g["genre"]: g for g in mine}.values())


def tables(results: list[dict], genre_rows: list[dict], cond: str, uncond: str | None) -> str:
    """uncond None: the conditional row alone (its unconditional twin was run elsewhere)."""
    a = last_of(results, cond)
    head = ["row", "min"] + [k for k, _ in OVERALL]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for name, r in ([(uncond, last_of(results, uncond))] if uncond else []) + [(cond, a)]:
        lines.append("| " + " | ".join([name, f"{float(r['train_minutes']):.0f}"] +
                                       [_cell(r, k, s) for k, s in OVERALL]) + " |")
    per = genre_rows_of(genre_rows, a, cond)
    lines += ["", "| genre | " + " | ".join(k for k, _ in PER_GENRE) + " |", "|" + " --- |" * (1 + len(PER_GENRE))]
    lines += ["| " + " | ".join([g["genre"]] + [_cell(g, k, s) for k, s in PER_GENRE]) + " |" for g in per]
    return "\n".join(lines) + "\n"


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
    ap.add_argument("--cond", default="loop_cond", help="the conditional row's name (default loop_cond)")
    ap.add_argument("--uncond", default="loop", help="the unconditional row it is compared with (default loop; "
                    "none: the conditional row alone)")
    ap.add_argument("--figure", default=None, help="write the figure here (PNG), e.g. docs/conditional_drum.png")
    args = ap.parse_args(argv)
    out = Path(args.results)
    results, genre_rows = read_csv(out / "results.csv"), read_csv(out / "results_genres.csv")
    text = tables(results, genre_rows, args.cond, None if args.uncond == "none" else args.uncond)
    print(text)
    if args.figure:
        last = last_of(results, args.cond)
        figure(genre_rows_of(genre_rows, last, args.cond), out / "runs" / args.cond / "latest.pt",
               Path(args.figure), float(last["judge_acc"]))
        print(f"wrote {args.figure}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
