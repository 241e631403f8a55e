"""The shipped models' scores (docs/training.md, "Shipped models"), by the evaluation protocol of docs/results.md.

    python -m experiments.score_shipped pretrained/drum pretrained/synth -n 300 --docs docs/training.md

For each folder pretrain.py exported: N generated loops, vocoded by the folder's own vocoder (what a user hears),
scored against N held-out real loops of the demo set of its kind with every column of evaluate.py, and the real
floor at the same N (N training loops against the same reference). One line per model is appended to --csv; the
table is written from that CSV (each model's last line) and, with --docs, between the page's generated markers.
One trained model per kind: the intervals are over loops (KAD's bootstrap, Wilson for the genre accuracies), not
over training seeds, which docs/results.md and docs/conditional.md measure.
"""
from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path

import torch

import evaluate
import melgan
import sample
from demo.loops import ensure_demo_set
from evaluation import report
from evaluation.metrics import binomial_interval
from mel import MEL_CEILING
from evaluation.rows import append_csv
from plumbing import paths
from plumbing.checkpoint import load_checkpoint
from plumbing.files import read_csv
from plumbing.devices import default_device, machine

EVAL_SEED = 0          # latents, noise and the reference's choice: one set for every model, as reproduce.py
FLOOR = "floor_"       # prefix of the real floor's columns on a model's line
FLOOR_KEYS = ("KAD_musicnn", "KAD_musicnn_mel", "FAD_musicnn", "FAD_musicnn_mel")
# (label, column, format): the table's lines, one metric each (a model per column); a column with _lo/_hi
# companions is shown with its interval. FAD is biased in N: it compares only with the floor at the same N.
METRICS = [("KAD (musicnn, audio)", "KAD_musicnn", ".3g"), ("real floor", FLOOR + "KAD_musicnn", ".3g"),
           ("KAD (musicnn, mels)", "KAD_musicnn_mel", ".3g"), ("real floor", FLOOR + "KAD_musicnn_mel", ".3g"),
           ("FAD (musicnn, audio)", "FAD_musicnn", ".3g"), ("real floor", FLOOR + "FAD_musicnn", ".3g"),
           ("FAD (musicnn, mels)", "FAD_musicnn_mel", ".3g"), ("real floor", FLOOR + "FAD_musicnn_mel", ".3g"),
           ("density", "density", ".2f"), ("coverage", "coverage", ".2f"), ("copies", "copies", ".3f"),
           ("genre accuracy", "cond_acc", ".2f"), ("worst genre", "cond_acc_min", ".2f"),
           (f"genre accuracy, truncation {evaluate.JUDGE_TRUNCATION:g}", "cond_acc_trunc", ".2f"),
           (f"worst genre, truncation {evaluate.JUDGE_TRUNCATION:g}", "cond_acc_min_trunc", ".2f"),
           ("judge on real loops", "judge_acc", ".2f"), ("chance", "chance", ".2f"),
           ("loops the vocoder clamps (a mel above any signal's)", "clamped", ".2f"),
           ("fp16 files against fp32: audio SNR, dB", "fp16_snr_db", ".1f")]


class ShippedError(ValueError):
    """A folder that is not a shipped model: one line that says what to do."""


def score(folder: str | Path, n: int, device: str, seed: int = EVAL_SEED) -> dict:
    """One shipped folder -> one CSV line: evaluate.py's columns for N generated loops through the folder's
    vocoder against N held-out loops of the demo set of its kind, the real floor's KADs beside them."""
    folder = Path(folder)
    if not (folder / "latest.pt").is_file():
        raise ShippedError(f"{folder} has no latest.pt: not a shipped model (python pretrain.py --loops drum "
                           "makes pretrained/drum)")
    ck = load_checkpoint(folder / "latest.pt", map_location="cpu", required=sample.CKPT_KEYS)
    loops = ck["loops"]
    real = evaluate.prepare_real(ensure_demo_set(loops), n, seed, device, verbose=False)
    floor = evaluate.real_floor(real, seed, verbose=False)
    vocoder = melgan.load_vocoder(sample.folder_vocoder(folder), loops=loops, device=device)
    row = evaluate.evaluate_checkpoint(folder, real, n, seed, device, vocoder, verbose=False)
    row.update({FLOOR + k: floor[k] for k in FLOOR_KEYS})
    row.update(fp16_snr_db=ck.get("fp16_snr_db", float("nan")))        # measured by pretrain.py at export
    row.update(clamped_share(folder, n, seed))
    row.update(model=str(folder), n=n, threads=torch.get_num_threads(), machine=machine(),
               date=datetime.date.today().isoformat())
    return row


def clamped_share(folder: Path, n: int, seed: int = EVAL_SEED) -> dict:
    """The share of the n evaluated loops (evaluate.generate_set's seeds and noise) that the vocoder hears
    clamped: some mel value above mel.MEL_CEILING, louder than any signal in [-1, 1] can be (from a slight
    overshoot to a "blob" thousands of decades up), with its 95 % Wilson interval."""
    G, ck = sample.load_generator(folder)
    _, mels = evaluate.generate_set(G, ck, None, n, seed)                          # (n, 64, 200) log10 mels
    k = int((mels.reshape(len(mels), -1).max(axis=1) > MEL_CEILING).sum())
    lo, hi = binomial_interval(k, len(mels))
    return {"clamped": k / len(mels), "clamped_lo": lo, "clamped_hi": hi}


def cell(line: dict, key: str, spec: str) -> str:
    """'0.42 [0.31, 0.55]' where the line has the column's _lo and _hi, else '0.42'; '-' for none."""
    v = report.value(line, key)
    lo, hi = report.value(line, key + "_lo"), report.value(line, key + "_hi")
    text = report.fmt(v, spec)
    return text if lo != lo or hi != hi else f"{text} [{report.fmt(lo, spec)}, {report.fmt(hi, spec)}]"


def table(lines: list[dict]) -> str:
    """The markdown: a header from the CSV's lines, then one line per metric and a column per model (its last
    line in the CSV)."""
    last = list({ln["model"]: ln for ln in lines}.values())
    if not last:
        return "No shipped model scored yet.\n"
    one = lambda key: ", ".join(report.distinct(last, key)) or "-"  # noqa: E731  (one cell of the CSV, said once)
    head = (f"{report.said(last, 'date', 'Measured')} on {one('machine')}, {one('threads')} thread(s). "
            f"N = {one('n_fake')} generated loops per model, vocoded by the model's own vocoder.pt, against "
            f"{one('n_real')} held-out "
            "real loops of the demo set of its kind; 'real floor': N training loops against the same reference. One "
            "model per kind: [intervals] are 95 % over loops (KAD: bootstrap; genre accuracies: Wilson), not over "
            "training seeds.")
    rows = ["| metric | " + " | ".join(ln["model"] for ln in last) + " |", "|" + " --- |" * (1 + len(last)),
            "| steps trained | " + " | ".join(ln.get("step") or "-" for ln in last) + " |"]
    for label, key, spec in METRICS:
        rows.append(f"| {label} | " + " | ".join(cell(ln, key, spec) for ln in last) + " |")
    return head + "\n\n" + "\n".join(rows) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Score the shipped models (pjloop).")
    ap.add_argument("folders", nargs="+", help="shipped model folders, e.g. pretrained/drum pretrained/synth")
    ap.add_argument("-n", "--n", type=int, default=300, help="generated and real loops per model (default 300)")
    ap.add_argument("--csv", default=None, help="append the lines here (default $PJLOOP_HOME/results/shipped.csv)")
    ap.add_argument("--docs", default=None, help="also write the table into this page between its generated "
                                                 "markers, e.g. docs/training.md")
    ap.add_argument("--report-only", action="store_true", help="only write the table from the CSV")
    ap.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    args = ap.parse_args(argv)
    csv_path = Path(args.csv) if args.csv else paths.results() / "shipped.csv"
    if args.docs and not Path(args.docs).is_file():
        ap.error(f"--docs {args.docs}: no such file; give an existing page, e.g. docs/training.md")
    if not args.report_only:
        device = args.device or default_device()
        for folder in args.folders:
            try:
                line = score(folder, args.n, device)
            except (ShippedError, evaluate.RefusedReference) as e:
                print(f"score_shipped: {e}", file=sys.stderr)
                return 2
            append_csv(csv_path, line)
    text = table(read_csv(csv_path))
    print(text)
    if args.docs:
        command = f"python -m experiments.score_shipped {' '.join(args.folders)} -n {args.n} --docs {args.docs}"
        report.write_generated(args.docs, "shipped-models", text, command=command)
        print(f"wrote {args.docs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
