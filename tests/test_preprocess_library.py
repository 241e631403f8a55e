"""Spec of preprocess.py on loops as a loop library ships them (realloops/tempo.py's evidence chain): a plain
folder, no labels, one-bar files, tempi in the names (right, implausible), a long recording that is no
loop, and the per-file report.

madmom and Rubber Band run once, in the module-scoped `library` fixture (about 20 s of CPU).
"""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import soundfile as sf

import preprocess as pp
from dataset import REPORT_FIELDS, UNLABELLED
from plumbing.files import read_csv
from realloops.tempo import RULE_DOWNBEATS, RULE_LENGTH, RULE_NAME
from mel import LOOP_SAMPLES, SR

ONE_BAR_BPMS = (105, 128, 160, 195)   # one bar only fits these lengths: two would be over 200 BPM
RECORDING_BPM = 97


def demo(loops: str, genre: str, bpm: float, bars: int, seed: int = 0) -> np.ndarray:
    renderer = pytest.importorskip("demo.loops")
    return renderer.render_loop(loops, genre, seed, bpm=bpm, bars=bars)


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    pytest.importorskip("madmom")
    if shutil.which("rubberband") is None:
        pytest.skip("rubberband binary not installed")
    root = tmp_path_factory.mktemp("library")
    loops, out = root / "loops", root / "data"
    loops.mkdir()
    for i, bpm in enumerate(ONE_BAR_BPMS):                  # a plain folder: no sub-folders, no tempo in names
        sf.write(loops / f"one_bar_{chr(97 + i)}.wav", demo("drum", "house" if bpm < 150 else "dnb", bpm, 1), SR)
    two_bars_120 = demo("drum", "house", 120, 2, seed=1)                              # 4.0 s
    sf.write(loops / "house groove.wav", two_bars_120, SR)                           # tracking decides
    sf.write(loops / "house groove 60 BPM.wav", two_bars_120, SR)                    # the name decides
    sf.write(loops / "house loop 999bpm.wav", demo("drum", "house", 128, 1, seed=2), SR)   # implausible
    # A recording, not a loop: 8 bars at 97 BPM entered 0.31 s late and left before the end.
    take = demo("drum", "funk", RECORDING_BPM, 8, seed=3)
    sf.write(loops / "jam_take.wav", take[int(0.31 * SR):int(19.0 * SR)], SR)
    (loops / "funk").mkdir()
    sf.write(loops / "funk" / "labelled.wav", demo("drum", "funk", 110, 1, seed=4), SR)
    summary = pp.preprocess_folder(loops, out, show_progress=False)
    report = {r["file"]: r for r in read_csv(out / "report.csv")}
    return out, summary, report


def test_a_plain_folder_of_unlabelled_loops_is_kept_and_the_summary_counts_the_labelled(library):
    out, summary, report = library
    assert summary["n_skipped"] == 0 and summary["kept_files"] == len(report) == 9
    genres = {r["source"]: r["genre"] for r in read_csv(out / "manifest.csv")}
    assert genres["funk/labelled.wav"] == "funk" and genres["one_bar_a.wav"] == UNLABELLED
    assert summary["labelled_files"] == 1
    assert "labelled: 1 of 9 kept files have a genre" in pp.summary_lines(summary)[1]


@pytest.mark.parametrize("i", range(len(ONE_BAR_BPMS)))
def test_one_bar_loops_at_any_tempo_are_kept_each_as_one_two_second_bar(library, i):
    out, _, report = library
    name = f"one_bar_{chr(97 + i)}.wav"
    row = report[name]
    assert row["bars_kept"] == "1" and row["rule"] == RULE_LENGTH, row
    assert float(row["bpm"]) == pytest.approx(ONE_BAR_BPMS[i], rel=0.01)
    (loop,) = [r for r in read_csv(out / "manifest.csv") if r["source"] == name]
    assert sf.info(out / "wav" / f"{loop['id']}.wav").frames == LOOP_SAMPLES          # exactly 2.000 s


def test_a_bpm_in_the_file_name_wins_over_tracking(library):
    _, _, report = library
    tracked, named = report["house groove.wav"], report["house groove 60 BPM.wav"]
    assert (tracked["rule"], tracked["bars_kept"]) == (RULE_LENGTH, "2") and float(tracked["bpm"]) == pytest.approx(120, rel=0.01)
    assert (named["rule"], named["bars_kept"], named["bpm"]) == (RULE_NAME, "1", "60.00")


def test_an_implausible_bpm_in_the_name_is_ignored(library):
    row = library[2]["house loop 999bpm.wav"]
    assert row["rule"] == RULE_LENGTH and row["bars_kept"] == "1" and float(row["bpm"]) == pytest.approx(128, rel=0.01)


def test_a_long_recording_that_is_no_loop_still_goes_through_downbeat_tracking(library):
    row = library[2]["jam_take.wav"]
    assert row["rule"] == RULE_DOWNBEATS, row
    assert float(row["bpm"]) == pytest.approx(RECORDING_BPM, rel=0.04) and 5 <= int(row["bars_kept"]) <= 8


def test_the_report_has_a_row_per_file_with_its_rule_and_confidence(library):
    out, summary, report = library
    with open(out / "report.csv") as f:
        assert f.readline().strip().split(",") == REPORT_FIELDS
    assert all(0 < float(r["confidence"]) <= 1 and r["skipped"] == "" for r in report.values())
    assert sum(summary["rules"].values()) == 9 and summary["rules"][RULE_NAME] == 1
    assert sum(int(r["bars_kept"]) for r in report.values()) == summary["kept_bars"]
