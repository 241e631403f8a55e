"""experiments/bench_train.py's speed options run and report: the benchmark behind docs/benchmarks.md "Training speed on a CPU" (tiny sizes, the
StyleGAN2 set, one timed step; the figures themselves are the benchmark's business, not a test's)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TINY = ["--device", "cpu", "--batch", "2", "--g-channels", "8", "--steps", "1", "--warmup", "1", "--threads", "1"]


@pytest.mark.parametrize("options", [[], ["--channels-last", "no", "--bf16", "yes"]])
def test_bench_train_prints_a_row_and_the_profile(options):
    res = subprocess.run([sys.executable, "-m", "experiments.bench_train", *TINY, "--sets", "none", "--profile", "3",
                          *options], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    out = res.stdout
    assert "none: CPU seconds of one step by phase: D step" in out and "optimisers, EMA, sync" in out
    assert "Self CPU time total" in out                              # the operator table of the profiled step
    row = [line for line in out.splitlines() if line.startswith("none ")][-1].split()
    assert row[1] == "1" and float(row[2]) > 0 and float(row[4]) > 0   # processes, it/s, CPU s/it
    flag = "channels_last no, bf16 yes" if options else "channels_last yes, bf16 no"
    assert flag in out
