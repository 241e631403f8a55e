"""reproduce.py as a spec, end to end through its CLI in miniature: two Table-1 rows, a budget of seconds,
a tiny N. It must leave the table, the CSV (one line per row and snapshot) and the Figure-4 curve, and a
second call must reuse everything instead of training or evaluating again."""
import csv
from pathlib import Path

import pytest

from stubs import run_cli

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_two_rows_in_seconds_give_table_csv_and_curve_and_a_rerun_reuses_them(tmp_path):
    data = tmp_path / "data"
    run_cli("-m", "demo.loops", "--loops", "drum", "-n", "24", "--out", data, "--quiet", cwd=tmp_path)
    args = [REPO / "reproduce.py", "--loops", "drum", "--data", data, "--minutes", "0.15", "--evals", "2",
            "-n", "8", "--rows", "stylegan2,general", "--out", tmp_path / "results", "--threads", "1"]
    first = run_cli(*args, "--jobs", "2", cwd=tmp_path)          # the two rows in two processes at once
    assert "job 0: rows stylegan2" in first and "job 1: rows general" in first
    out = tmp_path / "results" / "drum"
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert {r["row"] for r in rows} == {"stylegan2", "general"}
    assert all(len([r for r in rows if r["row"] == name]) >= 2 for name in ("stylegan2", "general"))
    assert all(r["n_fake"] == "8" for r in rows)
    header = open(out / "results.csv").readline().strip().split(",")
    assert len(header) == len(set(header))                                   # every column once
    table = (out / "table.md").read_text()
    assert "| stylegan2 |" in table and "| general |" in table
    assert (out / "curve.png").stat().st_size > 1000
    assert "-- training" in (out / "job1.log").read_text()                 # each job's log

    again = run_cli(*args, cwd=tmp_path)
    assert "trained (" in again and "-- training" not in again
    assert len(list(csv.DictReader(open(out / "results.csv")))) == len(rows)  # nothing evaluated twice
