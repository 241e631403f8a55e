"""reproduce.py as a spec, end to end through its CLI in miniature: two Table-1 rows, a budget of seconds,
a tiny N. It must leave the table, the CSV (one line per row and snapshot) and the Figure-4 curve, and a
second call must reuse everything instead of training or evaluating again."""
import csv
from pathlib import Path

import pytest

import reproduce
from stubs import run_cli

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_two_rows_in_seconds_give_table_csv_and_curve_and_a_rerun_reuses_them(tmp_path):
    data = tmp_path / "data"
    run_cli("-m", "demo.loops", "--loops", "drum", "-n", "24", "--out", data, "--quiet", cwd=tmp_path)
    args = [REPO / "reproduce.py", "--loops", "drum", "--data", data, "--minutes", "0.15", "--evals", "2",
            "-n", "8", "--rows", "stylegan2,general", "--out", tmp_path / "results", "--threads", "1",
            "--vocoder", "griffin-lim"]
    first = run_cli(*args, "--jobs", "2", cwd=tmp_path)          # the two rows in two processes at once
    assert "job 0: rows stylegan2" in first and "job 1: rows general" in first
    out = tmp_path / "results" / "drum"
    rows = list(csv.DictReader(open(out / "results.csv")))
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
    assert len(list(csv.DictReader(open(out / "results.csv")))) == len(rows)  # nothing evaluated twice


def test_time_to_match_is_against_the_baseline_best_evaluation_not_its_last_dip():
    base = [dict(train_minutes="3", density="0.05"), dict(train_minutes="6", density="0.09"),
            dict(train_minutes="9", density="0.01")]                   # the late dip of a real re-run
    assert reproduce.baseline_target(base, "density", lower_is_better=False) == (0.09, 6.0)
    row = [dict(train_minutes="3", density="0.02"), dict(train_minutes="6", density="0.10")]
    target, minutes = reproduce.baseline_target(base, "density", False)
    assert reproduce.first_reach(row, "density", target, False) == 6.0   # not 3.0, as against the dip
    fad = [dict(train_minutes="3", FAD="30"), dict(train_minutes="6", FAD="20"), dict(train_minutes="9", FAD="")]
    assert reproduce.baseline_target(fad, "FAD", lower_is_better=True) == (20.0, 6.0)
    assert reproduce.baseline_target([dict(train_minutes="3", FAD="")], "FAD", True) is None


def test_augmentation_rows_repeat_the_comparison_rows_with_each_policy():
    rows = reproduce.rows_table()
    for base in ("stylegan2", "general", "loop", "general_loop"):
        assert rows[f"{base}_shift"]["augment"] == "shift"
        assert rows[f"{base}_shiftcutout"]["features"] == rows[base]["features"]
