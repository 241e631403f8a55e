"""Readable logs: a log file gets one plain line every N steps with the figures a terminal's bar shows; under
torchrun only rank 0 writes; a passing bar (one epoch's batches) leaves no closing line."""
from __future__ import annotations

import io

from plumbing.progress import Progress


def test_a_log_file_gets_one_line_every_n_steps_and_a_last_one():
    log = io.StringIO()                               # not a terminal: no bar
    with Progress(total=7, desc="drum_aisfx", unit="step", every=3, file=log) as bar:
        for i in range(7):
            bar.update(1)
            bar.set_postfix(loss_d=f"{i / 10:.3f}")
    lines = log.getvalue().splitlines()
    assert [line.split(",")[0] for line in lines] == ["drum_aisfx: step 3/7 (43 %)", "drum_aisfx: step 6/7 (86 %)",
                                                      "drum_aisfx: step 7/7 (100 %)"]
    assert lines[0].endswith("loss_d=0.100") and lines[-1].endswith("loss_d=0.600")
    assert "\r" not in log.getvalue()                 # no carriage-return fragments, as tqdm writes


def test_only_rank_0_writes(monkeypatch):
    monkeypatch.setenv("RANK", "1")
    log = io.StringIO()
    with Progress(total=4, every=1, file=log) as bar:
        bar.update(4)
    assert log.getvalue() == ""


def test_a_passing_bar_leaves_no_closing_line_and_a_resumed_one_counts_from_its_step():
    log = io.StringIO()
    with Progress(total=5, every=10, file=log, leave=False) as bar:
        bar.update(5)
    assert log.getvalue() == ""
    with Progress(total=None, initial=100, desc="run", every=2, file=log) as bar:
        bar.update(2)
    assert log.getvalue().startswith("run: it 102,")
