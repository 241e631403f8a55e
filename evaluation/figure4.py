"""Figure 4 (paper Section 5): the key metrics against training minutes, one line per row of Table 1.

Per (row, n) of a results.csv (grouped by evaluation.report.read_results): the k-th snapshots of its seeds are
taken together (budgets in minutes or steps put them at the same point), and each panel draws their mean over
seeds with the 95 % Student-t interval as a band (no band with one seed). Distances are drawn on a log axis,
since a collapsed row sits orders of magnitude above the others.

    python reproduce.py ... --figure docs/results_drum.png       # calls plot(read_results(lines), path)
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from evaluation.metrics import mean_interval
from evaluation.report import LEVEL, Results, value
from plumbing.files import atomic_write

# (column, panel title): a panel per column that some line measured
PANELS = [("KAD_musicnn_mel", "KAD (musicnn MSD, mels)"), ("FAD_musicnn_mel", "FAD (musicnn MSD, mels)"),
          ("FAD_vgg16rand", "FAD (random VGG16)"), ("density", "density"), ("coverage", "coverage"),
          ("IS", "IS (loop classifier)"), ("cond_acc", "genre accuracy (conditional rows)")]


def curve(res: Results, row: str, n: int, key: str) -> list[tuple[float, float, float, float]]:
    """[(minutes, mean, lo, hi)] of (row, n): the k-th snapshots of its seeds taken together (budgets in steps
    put them at the same steps), minutes their mean; lo, hi NaN with one seed."""
    runs = [res.runs[(row, s, n)] for s in res.seeds(row, n)]
    points = []
    for k in range(max(map(len, runs), default=0)):
        snaps = [r[k] for r in runs if k < len(r)]
        vals = [v for v in (value(ln, key) for ln in snaps) if not math.isnan(v)]
        if vals:
            points.append((float(np.nanmean([value(ln, res.time_key) for ln in snaps])), *mean_interval(vals, LEVEL)))
    return points


def plot(res: Results, path: str | Path) -> None:
    """One panel per metric that was measured; per (row, n) the mean over seeds, its interval as a band."""
    import matplotlib                    # plotting only: an optional heavy import kept out of the table path
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    measured = {k for snaps in res.runs.values() for ln in snaps for k, v in ln.items() if (v or "").strip()}
    panels = [(k, title) for k, title in PANELS if k in measured] or PANELS[:1]
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.2), squeeze=False)
    several_n = len({n for _, _, n in res.runs}) > 1
    for row, n in res.table_keys():
        for ax, (key, title) in zip(axes[0], panels):
            pts = curve(res, row, n, key)
            if not pts:
                continue
            t, mean, lo, hi = (np.array(c) for c in zip(*pts))
            line, = ax.plot(t, mean, marker="o", label=f"{row} (N = {n})" if several_n else row)
            ax.fill_between(t, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)   # NaN (1 seed): no band
            ax.set_title(title, fontsize=9)
            ax.set_xlabel(res.time_key.replace("_", " "))
            if key.startswith(("FAD", "KAD")) and np.all(mean[np.isfinite(mean)] > 0):
                ax.set_yscale("log")          # collapsed rows are orders of magnitude off
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=80))
    plt.close(fig)
