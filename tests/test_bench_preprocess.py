"""Spec of experiments/bench_preprocess.py: the hidden-answer set covers what the benchmark promises, its files are
what the answers say, and the scoring counts bars and BPM as stated. (The benchmark itself takes minutes:
python -m experiments.bench_preprocess.)"""
from __future__ import annotations


import numpy as np
import pytest
import soundfile as sf

from experiments import bench_preprocess as bp
from realloops.tags import read_tags, tempo_from_name

pytest.importorskip("tinysoundfont")


@pytest.fixture(scope="module")
def cases():
    return bp.plan_cases(bp.DEFAULT_N, seed=0)


def test_the_set_covers_tempi_bar_counts_names_rates_channels_silence_tails_and_traps(cases):
    assert len(cases) == bp.DEFAULT_N and len({c["file"] for c in cases}) == len(cases)
    assert min(c["bpm"] for c in cases) == 60 and max(c["bpm"] for c in cases) == 200
    assert {c["bars"] for c in cases} == {1, 2, 4}
    assert {c["bpm"] for c in cases if c["bars"] == 1} >= set(bp.SWEEP_BPMS)     # one bar, 60..200 BPM
    assert {c["name"] for c in cases} == {"right", "none", "wrong"}
    assert {c["sr"] for c in cases} == set(bp.SAMPLE_RATES) and {c["channels"] for c in cases} == {1, 2}
    assert any(c["lead_s"] > 0 for c in cases) and any(c["rt60"] > 0 for c in cases)
    assert any(c["acid"] for c in cases) and {c["fmt"] for c in cases} == {"wav", "flac"}
    traps = [c for c in cases if c["group"] == "traps"]
    assert {c["genre"] for c in traps} == {"trap", "dnb", "hiphop", "funk"}
    for c in traps:                          # each trap's length is also a whole number of bars an octave away
        other = 2 * c["bars"] if c["bars"] == 1 else c["bars"] // 2
        assert 60 <= c["bpm"] * other / c["bars"] <= 200


def test_names_state_the_right_tempo_a_wrong_one_never_an_octave_off_or_none(cases):
    for c in cases:
        found = tempo_from_name(c["file"], 60, 200)
        if c["name"] == "none":
            assert found == [], c["file"]
        else:
            assert found[0] == c["name_bpm"], c["file"]
        if c["name"] == "wrong":
            octaves = np.log2(c["name_bpm"] / c["bpm"])
            assert abs(octaves - round(octaves)) > 0.05


def test_a_rendered_file_is_lead_silence_then_the_bars_then_the_tail(cases, tmp_path):
    c = dict(next(c for c in cases if c["rt60"] > 0), channels=2, lead_s=0.2, acid=True, fmt="wav")
    c["file"] = "x.wav"
    path = bp.write_case(tmp_path, c)
    audio, sr = sf.read(path)
    bars_s = c["bars"] * 240 / c["bpm"]
    assert sr == c["sr"] and audio.shape[1] == 2
    assert len(audio) / sr == pytest.approx(0.2 + bars_s + c["rt60"], abs=0.01)
    assert np.abs(audio[:int(0.2 * sr) - 1]).max() == 0 and np.abs(audio).max() == pytest.approx(0.9, abs=1e-3)
    tags = read_tags(path)
    assert (tags.bpm, tags.beats) == (c["bpm"], 4 * c["bars"])


def test_scoring_counts_the_bars_and_a_bpm_within_two_percent():
    cases = [{"file": f, "bars": 2, "bpm": 100} for f in "abcd"]
    report = {"a": {"bars_kept": "2", "bpm": "101.9", "rule": "name"},
              "b": {"bars_kept": "2", "bpm": "102.1", "rule": "length+tempo"},
              "c": {"bars_kept": "4", "bpm": "200", "rule": "length+tempo"}}
    scored = bp.score(cases, report)
    assert [(r["right_bars"], r["right_bpm"]) for r in scored] == [(True, True), (True, False), (False, False),
                                                                    (False, False)]
    assert scored[3]["rule"] == "skipped"
