"""Table 1 and Figure 4 of the paper (Section 5), at the scale of the machine it runs on, in one command.

    python reproduce.py --loops drum --minutes 15              # the Table-1 rows that can run here
    python reproduce.py --loops drum --minutes 15 --clock cpu --jobs 2 --mel-only  # 2 rows at a time on 2 cores

Every row (`ROWS`: Table 1's, then ablations) is trained once per `--seeds` seed with the same budget and data,
and evaluated at `--evals` equally spaced points with the same N and evaluation seed. The default budget is
idle-machine minutes (`--clock idle`): each row's seconds per step are measured once, one thread, and kept in
pace.csv; every run then trains budget / pace steps, so a re-run on a busy machine trains the same steps.
Writes results/<loops>/: runs/<row>/seed<k>/, pace.csv, results.csv (every metric per snapshot, keyed by row,
seed and N), table.md (mean and interval over seeds; verdicts against the baseline), curve.png (Figure 4).
Resumable. Not the paper: minutes instead of GPU days, N = 300 on a CPU, the demo loops, the stand-in networks.
"""
from __future__ import annotations

import argparse
import datetime
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

import torch

import evaluate
import melgan
import featurenet
import vggish
from plumbing import paths
from plumbing.checkpoint import load_checkpoint
from plumbing.devices import default_device, machine
from plumbing.files import atomic_write, read_csv, write_csv
from demo.loops import ensure_demo_set
from evaluation.rows import append_csv, real_row
from evaluation import figure4, report
from featurenet import FeatureNetUnavailable
from train import CPU_PRESET, TrainConfig, train
from train_scnn import ensure_loop_classifier
import train_melgan

EVALS = 5               # evaluation points per row, at 1/5, 2/5, ... of its budget (a curve worth reading needs >= 5)
N_CPU, N_GPU = 300, 10_000   # loops per evaluation: the paper's 10 000 on a GPU; a CPU affords a few hundred
EVAL_SEED = 0           # the same latents, noise and real subset for every evaluation
PACE_WARMUP = 16        # steps before the pace is timed: first-step allocations, caches, one lazy R1
PACE_STEPS = 48         # timed steps: three lazy-R1 periods of 16, so R1's cost is in the average
# What a row's pace depends on: a run with the same values of these fields takes the same seconds per step.
PACE_KEYS = ("features", "batch", "g_channels", "d_channels", "csm_kernel", "csm_upsample", "adapter", "batch_stats",
             "fuse_logits", "cache_real", "augment", "conditional", "genre_shift")
BUSY_LOAD = 1.5         # load average above which a pace was measured beside other work (the measuring job is 1)
PACE_FIELDS = ["row", "key", "seconds_per_step", "steps", "threads", "device", "machine", "load", "date"]
# The headline (evaluation/report.py): KAD on musicnn's Million-Song network (evaluate.py), an embedding that
# no row's discriminator uses, fed the generated mels through its grid adapter. The mel path leaves the vocoder
# out (the same for every row, so it adds the same artefacts to all of them) and costs a seventh of the audio
# path; without --mel-only the audio columns use the data set's trained vocoder (train_melgan.ensure_vocoder,
# trained once), named per row.
TABLE_METRICS = [("IS", ".2f"), ("FAD_musicnn_mel", ".3f"), ("KID_musicnn_mel", ".4f"), ("FAD_vgg16rand", ".2f"),
                 ("density", ".2f"), ("coverage", ".2f"), ("FAD_aisfx", ".0f"), ("loop_fake", ".2f")]


def general_network() -> tuple[str, str]:
    """VGGish when its weights can be found (never downloaded here), else the offline stand-in."""
    try:
        vggish.resolve_weights(None, download=False)
        return "vgg", "VGGish"
    except FeatureNetUnavailable:
        return "aisfx", "aisfx (offline stand-in for VGGish)"


def mtat_network() -> str | None:
    """The MagnaTagATune network when one can be built here, else None (the row is skipped, and says so)."""
    for name in ("mtt_vgg", "scnn_mtat"):
        if name in featurenet.REGISTRY:
            try:
                featurenet.build(name, featurenet.FeatureContext())
                return name
            except FeatureNetUnavailable:
                continue
    return None


def rows_table() -> dict[str, dict]:
    """name -> {'features': spec, 'label': ..., **TrainConfig overrides}. Table-1 rows first."""
    gen, gen_label = general_network()
    mtat = mtat_network()
    rows = {
        "stylegan2": dict(features="none", label="StyleGAN2 (Table 1 B)"),
        "general": dict(features=gen, label=f"Projected, general: {gen_label}"),
        "loop": dict(features="scnn_loop", label="Projected, domain: SCNN_loop"),
        "mtat": dict(features=mtat, label=f"Projected, domain: {mtat}"),
        "general_loop": dict(features=f"{gen},scnn_loop", label=f"Projected, fusion: {gen} + SCNN_loop"),
        "general_mtat": dict(features=f"{gen},{mtat}", label=f"Projected, fusion: {gen} + {mtat}"),
        # Ablations (docs/results.md, "Diagnosis"): one change each from the row they name.
        "general_affine": dict(features=gen, adapter="affine", label=f"{gen} fed our grid (affine map)"),
        "general_lr2e-4": dict(features=gen, lr=2e-4, label=f"{gen}, lr 0.0002 (Projected GAN's)"),
        "general_x2": dict(features=gen, csm_upsample=True, label=f"{gen}, CSM with the trailing x2"),
        "general_b16": dict(features=gen, batch=16, label=f"{gen}, batch 16 (CPU preset: 8)"),
        "general_w64": dict(features=gen, g_channels=64, d_channels=64, label=f"{gen}, width 64 (CPU preset: 32)"),
        "loop_batchstats": dict(features="scnn_loop", batch_stats=True, label="SCNN_loop, authors' batch-stat BN"),
        "general_batchstats": dict(features=gen, batch_stats=True, label=f"{gen}, authors' batch-stat BN"),
        "general_loop_sumlogits": dict(features=f"{gen},scnn_loop", fuse_logits=True,
                                       label=f"fusion {gen} + SCNN_loop, authors' summed logits"),
        # Genre-conditional rows: the same rows with --conditional yes; evaluated with the genre judge.
        "stylegan2_cond": dict(features="none", conditional=True, label="StyleGAN2, genre-conditional"),
        "general_cond": dict(features=gen, conditional=True, label=f"Projected, general: {gen}, genre-conditional"),
        "loop_cond": dict(features="scnn_loop", conditional=True, label="Projected, SCNN_loop, genre-conditional"),
        "loop_cond_noshift": dict(features="scnn_loop", conditional=True, genre_shift=False,
                                  label="Projected, SCNN_loop, genre-conditional, --genre-shift no"),
        "general_loop_cond": dict(features=f"{gen},scnn_loop", conditional=True,
                                  label=f"Projected, fusion: {gen} + SCNN_loop, genre-conditional"),
    }
    # DiffAugment (augment.py): each Table-1 row of the comparison again with each policy.
    for base in ("stylegan2", "general", "loop", "general_loop"):
        for policy in AUGMENT_POLICIES:
            rows[f"{base}_{policy.replace(',', '')}"] = dict(rows[base], augment=policy,
                                                           label=f"{rows[base]['label']}, --augment {policy}")
    for name in ("mtat", "general_mtat"):
        if mtat is None:
            rows[name]["skip"] = "no MagnaTagATune network here (train_scnn.py --mtat ROOT, or mtt_vgg)"
    return rows


DEFAULT_ROWS = "stylegan2,general,loop,mtat,general_loop,general_mtat"
AUGMENT_POLICIES = ("shift", "cutout", "shift,cutout")   # row suffixes _shift, _cutout, _shiftcutout


def row_config(name: str, row: dict, args, run_dir: Path, seed: int) -> TrainConfig:
    """The row's TrainConfig for one seed: the CPU preset without a GPU (the paper's config with one) and the
    row's overrides. The budget is set by `budget_config`."""
    cfg = TrainConfig(loops=args.loops, data=args.data, out=str(run_dir), seed=seed)
    if args.device == "cpu":
        for k, v in CPU_PRESET.items():
            setattr(cfg, k, v)
    for k, v in row.items():
        if k not in ("label", "skip"):
            setattr(cfg, k, v)
    cfg.minutes = cfg.steps = cfg.snapshot_minutes = None
    cfg.samples = 0                                                 # reproduce evaluates; no listening page
    cfg.snapshot_every = cfg.ckpt_every = cfg.sample_every = 10 ** 9   # only the budget's snapshots
    return cfg


def budget_config(cfg: TrainConfig, args, pace: float | None, done_minutes: float) -> TrainConfig:
    """--clock idle: stop at budget_steps(pace) and keep a snapshot every 1/evals of it. wall|cpu: stop after
    the remaining minutes of that clock, a snapshot every budget / evals minutes."""
    if args.clock == "idle":
        cfg.steps = budget_steps(args.minutes, pace, args.evals)
        cfg.snapshot_every = cfg.steps // args.evals           # the last snapshot is the last step
    else:
        cfg.clock = args.clock
        cfg.minutes = args.minutes - done_minutes
        cfg.snapshot_minutes = args.minutes / args.evals
    return cfg


def budget_steps(minutes: float, seconds_per_step: float, evals: int = 1) -> int:
    """The steps an idle machine trains in `minutes` at the measured pace, rounded to a multiple of `evals`
    (so the evaluations fall on equal steps, the last on the last step; at least one step per evaluation)."""
    return evals * max(1, round(60 * minutes / seconds_per_step / evals))


def run_dir_of(out: Path, name: str, seed: int) -> Path:
    return out / "runs" / name / f"seed{seed}"


def trained(run_dir: Path) -> tuple[int, float]:
    """(steps, minutes of its clock) of a run's latest.pt; (0, 0) before it exists."""
    ck = run_dir / "latest.pt"
    if not ck.is_file():
        return 0, 0.0
    ck = load_checkpoint(ck, map_location="cpu", required=("train_seconds", "step"))
    return int(ck["step"]), float(ck["train_seconds"]) / 60


def train_row(name: str, row: dict, args, run_dir: Path, seed: int, pace: float | None) -> None:
    step, done = trained(run_dir)
    cfg = budget_config(row_config(name, row, args, run_dir, seed), args, pace, done)
    if (step >= cfg.steps) if args.clock == "idle" else (done >= args.minutes - 0.01):
        print(f"[reproduce] {name} seed {seed}: trained ({step} steps, {done:.1f} min)")
        return
    what = f"{cfg.steps} steps ({args.minutes:g} idle-min at {pace:.3f} s/step)" if args.clock == "idle" else \
        f"{cfg.minutes:.1f} of {args.minutes:g} {args.clock}-min"
    print(f"[reproduce] {name} seed {seed}: {row['label']} -- training {what}", flush=True)
    off = [p.name for p in sorted(run_dir.glob("ckpt_*.pt")) if args.clock == "idle" and
           int(p.stem.split("_")[1]) % cfg.snapshot_every]
    if off:          # a resume to a larger budget whose earlier snapshots are not on the new schedule
        print(f"[reproduce] note: {name} seed {seed} keeps snapshots off this budget's schedule (every "
              f"{cfg.snapshot_every} steps): {', '.join(off)}; its curve mixes the two budgets", flush=True)
    train(cfg, device=args.device, resume=step > 0)


# ---------------------------------------------------------------------------------------------
# Idle-machine pace: each row's seconds per step, measured once (one thread, its own process time), kept in
# OUT/pace.csv. A row trains budget / pace steps on any machine and under any load, so the figures reproduce.
# ---------------------------------------------------------------------------------------------
def pace_key(cfg: TrainConfig, threads: int, device: str) -> str:
    return ";".join(f"{k}={getattr(cfg, k)}" for k in PACE_KEYS) + f";threads={threads};device={device}"


def measure_pace(name: str, cfg: TrainConfig, args) -> dict:
    """Train a throw-away copy of the row for PACE_WARMUP + PACE_STEPS steps and time the last PACE_STEPS with
    this process's CPU clock (one thread: on an idle machine CPU time is wall time; on a busy one it is the
    closer of the two). The load average at the time is recorded beside it."""
    scratch = Path(tempfile.mkdtemp(prefix=f"pace_{name}_"))
    try:
        cfg = TrainConfig(**{**asdict(cfg), "out": str(scratch / "run"), "clock": "cpu", "steps": PACE_WARMUP,
                             "minutes": None, "snapshot_minutes": None})
        with torch.random.fork_rng():
            train(cfg, device=args.device)
            before = load_checkpoint(scratch / "run" / "latest.pt", map_location="cpu")["train_seconds"]
            cfg.steps = PACE_WARMUP + PACE_STEPS
            train(cfg, device=args.device, resume=True)
            after = load_checkpoint(scratch / "run" / "latest.pt", map_location="cpu")["train_seconds"]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {"row": name, "seconds_per_step": f"{(after - before) / PACE_STEPS:.5f}", "steps": PACE_STEPS,
            "load": f"{os.getloadavg()[0]:.2f}", "date": datetime.date.today().isoformat(), "machine": machine()}


def paces(names: list[str], table: dict, args, out: Path) -> dict[str, float]:
    """Each row's idle seconds per step from OUT/pace.csv, measuring (one at a time) those not there yet."""
    path, threads = out / "pace.csv", 1
    known = {r["key"]: r for r in read_csv(path)}
    result = {}
    for n in names:
        cfg = row_config(n, table[n], args, out / "runs" / n, seed=0)
        key = pace_key(cfg, threads, args.device)
        if key not in known:
            print(f"[reproduce] {n}: measuring its pace ({PACE_WARMUP} + {PACE_STEPS} steps, one thread; once, "
                  f"kept in {path})", flush=True)
            torch_threads = torch.get_num_threads()
            torch.set_num_threads(threads)
            known[key] = {**measure_pace(n, cfg, args), "key": key, "threads": threads, "device": args.device}
            torch.set_num_threads(torch_threads)
            if float(known[key]["load"]) > BUSY_LOAD:
                print(f"[reproduce] note: the load average was {known[key]['load']} while {n}'s pace was measured; "
                      f"its steps are fixed now, but fewer than an idle machine would give (delete its line in "
                      f"{path} to measure again)", flush=True)
            write_csv(path, PACE_FIELDS, list(known.values()))
        result[n] = float(known[key]["seconds_per_step"])
    return result


def evaluate_row(name: str, row: dict, run_dir: Path, seed: int, real, args, results: Path,
                 pace: float | None) -> None:
    """Every kept snapshot of one (row, seed) not yet in results.csv at this N -> one CSV line each."""
    seen = {(r["row"], r.get("seed", "0"), r.get("n", r.get("n_fake")), r["ckpt"]) for r in read_csv(results)}
    vocoder = None if args.mel_only or args.vocoder is None else \
        melgan.load_vocoder(args.vocoder, loops=args.loops, device=args.device)    # None: evaluate's default
    for ck in sorted(run_dir.glob("ckpt_*.pt")):
        if (name, str(seed), str(args.n), ck.name) in seen:
            continue
        out = evaluate.evaluate_checkpoint(ck, real, n=args.n, seed=EVAL_SEED, device=args.device, vocoder=vocoder,
                                           with_audio=not args.mel_only, verbose=False,
                                           genre_csv=results.with_name("results_genres.csv"))
        idle = int(out["step"]) * pace / 60 if pace else float("nan")
        out.update(row=name, label=row["label"], seed=seed, n=args.n, ckpt=ck.name,
                   train_minutes=f"{float(out['train_minutes']):.3f}", idle_minutes=f"{idle:.3f}",
                   budget_minutes=args.minutes,
                   budget_steps=budget_steps(args.minutes, pace, args.evals) if pace else "",
                   threads=torch.get_num_threads(), clock=args.clock, machine=machine(),
                   date=datetime.date.today().isoformat())
        append_csv(results, out)     # atomic; one header, each column once
        print(f"[reproduce] {name} seed {seed} {ck.name}: " +
              ", ".join(f"{k} {out.get(k)}" for k, _ in TABLE_METRICS), flush=True)


def ensure_real_floor(real, args, results: Path, cache_dir: str | Path | None = None) -> None:
    """The real_floor line of results.csv at this N, once per results set: evaluate.real_floor, N loops of the
    data set's training part scored against the N-loop held-out reference exactly as a row's snapshot is (the
    real-vs-real value of every distance, the floor any row can reach at this N). cache_dir None: evaluate's."""
    if any(r["row"] == report.FLOOR_ROW and r.get("n") == str(args.n) for r in read_csv(results)):
        return
    floor = evaluate.real_floor(real, EVAL_SEED, **({} if cache_dir is None else {"cache_dir": cache_dir}),
                                verbose=False)
    out = real_row(floor, args.data)
    out.update(row=report.FLOOR_ROW, label="N training loops against the N held-out reference loops",
               seed=EVAL_SEED, n=args.n, ckpt="", threads=torch.get_num_threads(), machine=machine(),
               date=datetime.date.today().isoformat())
    append_csv(results, out)
    print(f"[reproduce] {report.FLOOR_ROW} at N = {args.n}: " +
          ", ".join(f"{k} {out.get(k)}" for k, _ in TABLE_METRICS), flush=True)


def parse_seeds(text: str) -> list[int]:
    """'0,1,2' -> [0, 1, 2]; ValueError (one line) for anything else."""
    try:
        seeds = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise ValueError(f"--seeds takes a comma list of integers such as 0,1,2, got {text!r}") from None
    if not seeds:
        raise ValueError("--seeds is empty: give at least one seed, e.g. --seeds 0")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds repeats a seed: {text!r}")
    return seeds


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Table 1 and Figure 4 at this machine's scale (pjloop).")
    ap.add_argument("--loops", default="drum", choices=["drum", "synth"], help="which loops (default drum)")
    ap.add_argument("--data", default=None, help="preprocessed data set (default: the demo loops)")
    ap.add_argument("--minutes", type=float, default=15.0, help="training budget per row and seed (minutes of "
                                                                "--clock; default 15)")
    ap.add_argument("--rows", default=DEFAULT_ROWS, help=f"comma list of rows (default {DEFAULT_ROWS})")
    ap.add_argument("--seeds", default="0", help="comma list of training seeds; every row is trained once per "
                                                 "seed with the same budget (default 0; tables want 3 or more)")
    ap.add_argument("--evals", type=int, default=EVALS, help="evaluation points per row")
    ap.add_argument("-n", "--n", type=int, default=None, help=f"loops per evaluation (default {N_CPU} CPU, {N_GPU} GPU)")
    ap.add_argument("--out", default=str(paths.results()), help="results folder: OUT/<loops>/ gets runs, results.csv, "
                    "table.md, curve.png (default $PJLOOP_HOME/results, the repository's results/ when unset)")
    ap.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    ap.add_argument("--clock", default="idle", choices=["idle", "wall", "cpu"],
                    help="what the budget counts: idle = minutes of an idle machine, as steps at each row's "
                         "measured pace (pace.csv; the same steps under any load; default), wall = wall-clock, "
                         "cpu = this process's CPU time")
    ap.add_argument("--mel-only", action="store_true",
                    help="evaluate without vocoding (IS, FAD/KID on mels, D&C; no audio columns): much faster")
    ap.add_argument("--vocoder", default=None, help="vocoder of the audio columns: a train_melgan.py checkpoint "
                    "or griffin-lim (default: the data set's trained vocoder, trained once if missing)")
    ap.add_argument("--report-only", action="store_true",
                    help="only rewrite table.md and curve.png (and --docs, --figure) from results.csv (no "
                         "training, no evaluation)")
    ap.add_argument("--docs", default=None, help="also write the table into this docs page (e.g. docs/results.md), "
                    "between its generated-block markers for these loops (appended if absent)")
    ap.add_argument("--readme", default=None, help="also write a short version of the table (KAD, coverage, "
                    "density with their verdicts) into this page's glance-<loops> block, e.g. README.md")
    ap.add_argument("--figure", default=None, help="also write the curve (Figure 4) to this PNG path, e.g. "
                    "docs/results_drum.png")
    ap.add_argument("--train-only", action="store_true",
                    help="train every run and evaluate nothing (a later call without it evaluates the snapshots)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    ap.add_argument("--jobs", type=int, default=1,
                    help="runs (row x seed) in this many processes at once, one thread each (a CPU of N cores: "
                         "--jobs N); their logs go to OUT/<loops>/job<k>.log")
    ap.add_argument("--runs", default=None, help="(used by --jobs) explicit row:seed pairs, comma separated, "
                                                 "instead of --rows x --seeds")
    args = ap.parse_args(argv)
    try:
        seeds = parse_seeds(args.seeds)
    except ValueError as e:
        ap.error(str(e))
    args.device = args.device or default_device()
    args.n = args.n or (N_GPU if args.device == "cuda" else N_CPU)
    if args.threads:
        torch.set_num_threads(args.threads)
    table = rows_table()
    names = [n.strip() for n in args.rows.split(",") if n.strip()]
    # Seed-major: every row's seed 0 first, so a run cut short still has one complete seed of every row.
    runs = [(n, s) for s in seeds for n in names] if args.runs is None else \
        [(p.rsplit(":", 1)[0], int(p.rsplit(":", 1)[1])) for p in args.runs.split(",")]
    unknown = sorted({n for n, _ in runs if n not in table})
    if unknown:
        ap.error(f"unknown rows {unknown}; choose from {list(table)}")
    out = Path(args.out) / args.loops
    out.mkdir(parents=True, exist_ok=True)
    results = out / "results.csv"
    if args.docs and not Path(args.docs).is_file():       # said now, not after hours of training
        raise SystemExit(f"reproduce.py: --docs {args.docs}: no such file; give an existing page, e.g. "
                         "docs/results.md")
    if args.report_only:
        write_report(out, results, args)
        return 0
    args.data = args.data or str(ensure_demo_set(args.loops))
    if not args.mel_only and args.vocoder is None:   # the audio columns: through the data set's trained vocoder
        train_melgan.ensure_vocoder(args.loops, args.data, device=args.device)
    for n in sorted({n for n, _ in runs if "skip" in table[n]}):
        print(f"[reproduce] {n}: skipped -- {table[n]['skip']}")
    runs = [(n, s) for n, s in runs if "skip" not in table[n]]
    try:
        ensure_loop_classifier(args.loops, args.data, device=args.device)   # shared by every run: made first
    except ValueError:             # unlabelled loops: no classifier; a run that needs one says so itself
        pass
    pace = paces(list(dict.fromkeys(n for n, _ in runs)), table, args, out) if args.clock == "idle" else {}
    # The real reference's embeddings are cached on disk: made here once, not by every job at the same time.
    try:
        real = None if args.train_only else \
            evaluate.prepare_real(args.data, args.n, seed=EVAL_SEED, device=args.device, verbose=False)
    except evaluate.RefusedReference as e:        # -n above the held-out loops, or none held out: before training
        raise SystemExit(f"reproduce.py: {e}") from None
    if real is not None:
        ensure_real_floor(real, args, results)              # here, before any job: one line per results set
    if args.jobs > 1:
        return run_jobs(runs, args, out, results)
    for n, s in runs:     # run by run: train, evaluate its snapshots, refresh the table and the curve
        train_row(n, table[n], args, run_dir_of(out, n, s), s, pace.get(n))
        if real is not None:
            evaluate_row(n, table[n], run_dir_of(out, n, s), s, real, args, results, pace.get(n))
            write_report(out, results, args)
    return 0


def run_jobs(runs: list[tuple[str, int]], args, out: Path, results: Path) -> int:
    """--jobs N: the (row, seed) runs dealt round-robin to N processes of this script, one torch thread each,
    which append to the one results.csv (evaluation.rows.append_csv locks it); then the report. What the runs
    share on disk (the data set, the loop-genre classifier behind scnn_loop and IS, pace.csv) is made by the
    caller first, so no two jobs race to make it. Each run's figures are those it would get alone."""
    common = [sys.executable, str(Path(__file__).resolve()), "--loops", args.loops, "--data", args.data,
              "--minutes", str(args.minutes), "--evals", str(args.evals), "-n", str(args.n), "--out", args.out,
              "--device", args.device, "--clock", args.clock, "--threads", "1"]
    common += ["--mel-only"] if args.mel_only else []
    common += ["--train-only"] if args.train_only else []
    common += ["--vocoder", args.vocoder] if args.vocoder else []
    jobs = []
    for k in range(min(args.jobs, len(runs))):
        mine = ",".join(f"{n}:{s}" for n, s in runs[k::args.jobs])
        log = out / f"job{k}.log"
        print(f"[reproduce] job {k}: runs {mine} (log: {log})", flush=True)
        with open(log, "w") as f:
            jobs.append((mine, log, subprocess.Popen([*common, "--runs", mine], stdout=f, stderr=subprocess.STDOUT)))
    failed = [(mine, log) for mine, log, p in jobs if p.wait() != 0]
    for mine, log in failed:
        print(f"reproduce.py: the job of runs {mine} failed; see {log}", file=sys.stderr)
    if not args.train_only:
        write_report(out, results, args)
    return 1 if failed else 0


def write_report(out: Path, results: Path, args) -> None:
    """table.md and curve.png from results.csv alone (evaluation/report.py; nothing of this command line goes
    into them); --docs: the table into that page too, between this loop set's markers; --figure: the curve there."""
    try:
        res = report.read_results(read_csv(results))
    except report.ReportError as e:
        raise SystemExit(f"reproduce.py: {results}: {e}") from None
    text = report.markdown(res)
    atomic_write(out / "table.md", lambda tmp: Path(tmp).write_text(text))
    figure4.plot(res, out / "curve.png")
    if args.figure:
        figure4.plot(res, args.figure)
    if args.docs:
        png = os.path.relpath(args.figure, Path(args.docs).parent) if args.figure else None
        figure = f"\n![Figure 4 at this machine's scale]({png})\n" if png else ""
        command = f"python reproduce.py --loops {args.loops} --out {args.out} --report-only --docs {args.docs}" + \
            (f" --figure {args.figure}" if args.figure else "")
        report.write_generated(args.docs, f"table1-{args.loops}", text + figure, command=command)
    if args.readme:
        report.write_generated(args.readme, f"glance-{args.loops}", report.glance(res),
                               command=f"python reproduce.py --loops {args.loops} --out {args.out} --report-only "
                                       f"--readme {args.readme}")
    print(text)
    print(f"[reproduce] wrote {out / 'table.md'}, {out / 'curve.png'}"
          + "".join(f", {p}" for p in (args.docs, args.figure, args.readme) if p))


if __name__ == "__main__":
    sys.exit(main())
