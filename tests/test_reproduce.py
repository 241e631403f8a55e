"""reproduce.py as a spec, end to end through its CLI in miniature: two Table-1 rows, a budget of seconds,
a tiny N. It must leave the table, the CSV (one line per row and snapshot) and the Figure-4 curve, and a
second call must reuse everything instead of training or evaluating again."""
import csv
import subprocess
import sys
from pathlib import Path

import pytest

import reproduce
from plumbing.files import write_csv
from stubs import run_cli

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_two_rows_in_seconds_give_table_csv_and_curve_and_a_rerun_reuses_them(tmp_path):
    data = tmp_path / "data"
    run_cli("-m", "demo.loops", "--loops", "drum", "-n", "60", "--out", data, "--quiet", cwd=tmp_path)
    args = [REPO / "reproduce.py", "--loops", "drum", "--data", data, "--minutes", "0.15", "--evals", "2",
            "-n", "8", "--rows", "stylegan2,general", "--out", tmp_path / "results", "--threads", "1",
            "--vocoder", "griffin-lim", "--clock", "cpu"]   # CPU time: the same snapshots under load
    first = run_cli(*args, "--jobs", "2", cwd=tmp_path)          # the two rows in two processes at once
    assert "job 0: runs stylegan2:0" in first and "job 1: runs general:0" in first
    out = tmp_path / "results" / "drum"
    lines = list(csv.DictReader(open(out / "results.csv")))
    floor = [r for r in lines if r["row"] == "real_floor"]                    # once, before the jobs
    assert len(floor) == 1 and floor[0]["n"] == floor[0]["n_real"] == floor[0]["n_fake"] == "8"
    rows = [r for r in lines if r["row"] != "real_floor"]
    assert {r["row"] for r in rows} == {"stylegan2", "general"}
    assert all(len([r for r in rows if r["row"] == name]) >= 2 for name in ("stylegan2", "general"))
    assert all(r["n_fake"] == "8" and r["vocoder"] == "griffin-lim" for r in rows)   # the audio path, named
    header = open(out / "results.csv").readline().strip().split(",")
    assert len(header) == len(set(header))                                   # every column once
    table = (out / "table.md").read_text()
    assert "| stylegan2 |" in table and "| general |" in table
    assert (out / "curve.png").stat().st_size > 1000
    assert "-- training" in (out / "job1.log").read_text()                 # each job's log

    again = run_cli(*args, cwd=tmp_path)
    assert "trained (" in again and "-- training" not in again
    assert len(list(csv.DictReader(open(out / "results.csv")))) == len(lines)  # nothing evaluated twice


def _results_csv(path: Path, with_seed: bool = True, with_n_fake: bool = True) -> None:
    """A results.csv of two rows x two seeds x two snapshots, as reproduce.py writes it (or an older one)."""
    lines = []
    for row, base in (("stylegan2", 0.5), ("loop", 0.2)):
        for seed in (0, 1):
            for step in (100, 200):
                lines.append(dict(row=row, label=row, seed=seed, n=300, n_fake=300, n_real=250, ckpt=f"ckpt_{step}.pt",
                                  step=step, train_minutes=step / 20, idle_minutes=step / 10, budget_minutes=20,
                                  budget_steps=200, threads=1, clock="idle", machine="test CPU", date="2026-12-06",
                                  KAD_musicnn_mel=base + 0.01 * seed + 1 / step, density=0.9, coverage=0.5))
    drop = ({"seed", "n"} if not with_seed else set()) | ({"n_fake"} if not with_n_fake else set())
    write_csv(path, [k for k in lines[0] if k not in drop], [{k: v for k, v in ln.items() if k not in drop}
                                                             for ln in lines])


def test_the_report_comes_from_results_csv_not_from_the_command_line(tmp_path):
    out = tmp_path / "drum"
    out.mkdir()
    _results_csv(out / "results.csv")
    reproduce.main(["--report-only", "--out", str(tmp_path), "-n", "300", "--minutes", "15"])
    first = (out / "table.md").read_text()
    reproduce.main(["--report-only", "--out", str(tmp_path), "-n", "1000", "--minutes", "99", "--rows", "general",
                    "--clock", "cpu", "--threads", "1"])
    assert (out / "table.md").read_text() == first
    assert "Seeds: 0, 1." in first and "N generated: 300" in first and "Budget per row: 20 minutes" in first
    assert (out / "curve.png").stat().st_size > 1000


def test_docs_gets_the_table_between_its_markers_and_the_figure_its_path(tmp_path):
    out = tmp_path / "drum"
    out.mkdir()
    _results_csv(out / "results.csv")
    page = tmp_path / "results.md"
    page.write_text("# Results\n\nprose that stays\n")
    args = ["--report-only", "--out", str(tmp_path), "--docs", str(page), "--figure", str(tmp_path / "fig.png")]
    reproduce.main(args)
    reproduce.main(args)                                                       # idempotent: one block
    text = page.read_text()
    assert text.startswith("# Results\n\nprose that stays\n") and text.count("<!-- generated: table1-drum") == 1
    assert "| loop | 300 | 2 |" in text and "![Figure 4 at this machine's scale](fig.png)" in text
    assert (tmp_path / "fig.png").stat().st_size > 1000


def _cli(tmp_path, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "reproduce.py"), "--report-only", "--out", str(tmp_path),
                           *args], cwd=tmp_path, capture_output=True, text=True, timeout=300)


def test_bad_report_input_is_one_line_not_a_traceback(tmp_path):
    missing = _cli(tmp_path, "--docs", str(tmp_path / "nope.md"))
    assert missing.returncode != 0 and "no such file" in missing.stderr
    _results_csv(tmp_path / "drum" / "results.csv", with_seed=False, with_n_fake=False)
    old = _cli(tmp_path)
    assert old.returncode != 0 and "run reproduce.py again" in old.stderr
    for proc in (missing, old):
        assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_augmentation_rows_repeat_the_comparison_rows_with_each_policy():
    rows = reproduce.rows_table()
    for base in ("stylegan2", "general", "loop", "general_loop"):
        assert rows[f"{base}_shift"]["augment"] == "shift"
        assert rows[f"{base}_shiftcutout"]["features"] == rows[base]["features"]


def test_seeds_are_a_comma_list_of_distinct_integers():
    assert reproduce.parse_seeds("0,1,2") == [0, 1, 2]
    for bad in ("0,x", "", ",", "1,1"):
        with pytest.raises(ValueError, match="--seeds"):
            reproduce.parse_seeds(bad)


def test_bad_seeds_are_one_line_not_a_traceback(tmp_path):
    proc = subprocess.run([sys.executable, str(REPO / "reproduce.py"), "--seeds", "0,x", "--out", str(tmp_path)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "--seeds takes a comma list" in proc.stderr and "Traceback" not in proc.stderr


def test_idle_budget_is_steps_at_the_stored_pace_whatever_the_load(tmp_path, monkeypatch):
    """--clock idle: each row's pace is measured once and kept in pace.csv; the budget is steps, so a later call
    (on a busy machine, with another measurement at hand) trains the same steps."""
    measured = []

    def fake_measure(name, cfg, args):
        measured.append(name)
        return {"row": name, "seconds_per_step": "0.5", "steps": 48, "load": "0.1", "date": "2026-12-06",
                "machine": "test"}

    monkeypatch.setattr(reproduce, "measure_pace", fake_measure)
    args = reproduce.argparse.Namespace(loops="drum", data=None, device="cpu", minutes=15.0, evals=3, clock="idle")
    table = reproduce.rows_table()
    pace = reproduce.paces(["stylegan2", "loop"], table, args, tmp_path)
    assert pace == {"stylegan2": 0.5, "loop": 0.5} and measured == ["stylegan2", "loop"]
    assert reproduce.paces(["stylegan2", "loop"], table, args, tmp_path) == pace and len(measured) == 2  # reused
    cfg = reproduce.budget_config(reproduce.row_config("loop", table["loop"], args, tmp_path, seed=1), args,
                                  pace["loop"], done_minutes=0.0)
    assert cfg.steps == 1800 and cfg.snapshot_every == 600 and cfg.minutes is None and cfg.seed == 1


def test_a_larger_budget_resumes_the_run_and_names_snapshots_off_its_schedule(tmp_path, monkeypatch, capsys):
    """15 idle-minutes with 3 evaluations continue a run of 10 minutes with 2 (same pace): its snapshots at 600 and
    1200 steps are the new schedule's first two, so it resumes without a note; one off the schedule is named."""
    from plumbing.checkpoint import save_checkpoint
    trained = []
    monkeypatch.setattr(reproduce, "train", lambda cfg, device, resume: trained.append((cfg.steps, resume)))
    args = reproduce.argparse.Namespace(loops="drum", data=None, device="cpu", minutes=15.0, evals=3, clock="idle")
    row = reproduce.rows_table()["loop"]
    run = tmp_path / "loop" / "seed0"
    run.mkdir(parents=True)
    save_checkpoint({"step": 1200, "train_seconds": 600.0}, run / "latest.pt")
    for step in (600, 1200):
        save_checkpoint({"step": step}, run / f"ckpt_{step:07d}.pt")
    reproduce.train_row("loop", row, args, run, seed=0, pace=0.5)
    assert trained == [(1800, True)] and "note:" not in capsys.readouterr().out
    save_checkpoint({"step": 500}, run / "ckpt_0000500.pt")
    reproduce.train_row("loop", row, args, run, seed=0, pace=0.5)
    assert "off this budget's schedule (every 600 steps): ckpt_0000500.pt" in capsys.readouterr().out
