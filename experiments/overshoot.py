"""How far generated mels overshoot what a sound can be, per row of a reproduce.py folder (docs/results.md).

    python -m experiments.overshoot results15/drum -n 300 --docs docs/results.md

A generator's log10 mel is unbounded; no signal in [-1, 1] gets above mel.MEL_CEILING (a full-scale square wave's
loudest band), and every vocoder hears the mel clamped there (mel.voiceable). For the final checkpoint of every run
OUT/runs/<row>/seed<k>/latest.pt: N loops with evaluate.py's seeds and noise (evaluate.generate_set), and

    clamped   the share of loops with some value above MEL_CEILING (what the vocoder clamps)
    blob      the share with some value above MEL_CEILING + BLOB_DECADES: a patch a thousand times louder than
              any band can be, which the Gaussian fit of FAD cannot absorb (the mel metrics read the raw mel)
    loudest   the largest value over the N loops

One line per run into OUT/overshoot.csv; the table (mean ± 95 % t interval over seeds; loudest: the median over
seeds) from that CSV, with --docs between the page's 'overshoot-<loops>' markers. Not in the paper.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

import evaluate
import sample
from evaluation import report
from mel import MEL_CEILING
from plumbing.files import read_csv, write_csv

BLOB_DECADES = 3.0     # a blob: 3 decades (x1000 in power, +30 dB) above the loudest band a signal can have
EVAL_SEED = 0          # reproduce.py's evaluation seed: the loops its table scored
FIELDS = ["row", "seed", "step", "n", "clamped", "blob", "loudest"]


def overshoot(mels: np.ndarray) -> dict:
    """(N, 64, T) log10 mels -> the shares of loops above the ceiling and above the blob level, the loudest value."""
    top = mels.reshape(len(mels), -1).max(axis=1)                                # (N,) each loop's loudest value
    return {"clamped": float((top > MEL_CEILING).mean()), "blob": float((top > MEL_CEILING + BLOB_DECADES).mean()),
            "loudest": float(top.max())}


def measure(out: Path, n: int) -> list[dict]:
    """One line per run folder OUT/runs/<row>/seed<k> that holds a latest.pt."""
    lines = []
    for ckpt in sorted(out.glob("runs/*/seed*/latest.pt")):
        G, ck = sample.load_generator(ckpt)
        _, mels = evaluate.generate_set(G, ck, None, n, EVAL_SEED)                # (n, 64, 200)
        lines.append({"row": ckpt.parent.parent.name, "seed": ckpt.parent.name.removeprefix("seed"),
                      "step": ck["step"], "n": n, **overshoot(mels)})
        print(f"overshoot: {ckpt.parent.parent.name} {ckpt.parent.name}: {lines[-1]}", flush=True)
    return lines


def table(lines: list[dict]) -> str:
    """The markdown: one line per row, Table 1's rows in its order first."""
    order = report.FEATURE_ROWS
    rows = sorted(dict.fromkeys(ln["row"] for ln in lines),
                  key=lambda r: (order.index(r) if r in order else len(order), r))
    ns = ", ".join(report.distinct(lines, "n"))
    head = (f"N = {ns} generated loops per run (evaluate.py's seeds and noise), the final checkpoint of each seed. "
            f"'clamped': loops with a log10 mel above {MEL_CEILING:g} (what no signal in [-1, 1] reaches; the "
            f"vocoder hears it clamped); 'blob': above {MEL_CEILING + BLOB_DECADES:g}. Mean ± 95 % interval over "
            "seeds; 'loudest': the median over seeds of each run's largest value.")
    out = ["| row | seeds | clamped | blob | loudest |", "| --- | --- | --- | --- | --- |"]
    for row in rows:
        mine = [ln for ln in lines if ln["row"] == row]
        vals = {k: [float(ln[k]) for ln in mine] for k in ("clamped", "blob", "loudest")}
        out.append(f"| {row} | {len(mine)} | {report.fmt_interval(vals['clamped'], '.2f')} | "
                   f"{report.fmt_interval(vals['blob'], '.2f')} | {report.fmt(float(np.median(vals['loudest'])))} |")
    return head + "\n\n" + "\n".join(out) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="How far generated mels overshoot a sound's range, per row (pjloop).")
    ap.add_argument("out", help="a reproduce.py folder, e.g. results15/drum (its runs/<row>/seed<k>/latest.pt)")
    ap.add_argument("-n", "--n", type=int, default=300, help="loops per run (default 300, as the tables)")
    ap.add_argument("--docs", default=None, help="also write the table into this page between its "
                                                 "'overshoot-<loops>' markers, e.g. docs/results.md")
    ap.add_argument("--report-only", action="store_true", help="only write the table from OUT/overshoot.csv")
    args = ap.parse_args(argv)
    out = Path(args.out)
    if not args.report_only:
        lines = measure(out, args.n)
        if not lines:
            print(f"overshoot: no run in {out}/runs/<row>/seed<k>/latest.pt; give a reproduce.py folder",
                  file=sys.stderr)
            return 2
        write_csv(out / "overshoot.csv", FIELDS, lines)
    text = table(read_csv(out / "overshoot.csv"))
    print(text)
    if args.docs:
        command = f"python -m experiments.overshoot {args.out} -n {args.n} --docs {args.docs}"
        report.write_generated(args.docs, f"overshoot-{out.name}", text, command=command)
        print(f"wrote {args.docs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
