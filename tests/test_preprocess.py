"""Spec of preprocess.py: the real-loop CLI (paper Section 4 "Pipeline"; docs/design.md §1):
bars (loop_tempo's evidence chain: name, metadata, length + tempo, downbeats) -> 2.000 s at 16 kHz ->
a data set, labels optional, with bad input skipped for a reason, a per-file report, resumable and
idempotent runs, and a --bpm mode that needs no madmom.

The madmom runs happen once per module-scoped fixture: `tracked_set` (two demo drum loops AND the
bad-input zoo) and `library` (loops as a loop library ships them, in a plain folder); the other
tests use --bpm mode.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pyrubberband
import pytest
import soundfile as sf

import preprocess as pp
from realloops import journal
from plumbing.audio_io import PEAK_LEVEL, SkipFile, resample
from realloops.beats import bars_at_tempo, bars_from_downbeats
from dataset import LOOP_BYTES, UNLABELLED, LoopMelDataset, is_complete
from plumbing.files import read_csv
from stubs import full_disk, temporary_files
from mel import LOOP_SAMPLES, LOOP_SECONDS, SR, log_mel

HAS_RUBBERBAND = shutil.which("rubberband") is not None
needs_rubberband = pytest.mark.skipif(not HAS_RUBBERBAND, reason="rubberband binary not installed")


# ---------------------------------------------------------------------------------------------
# Fixture helpers.
# ---------------------------------------------------------------------------------------------
def click_loop(bpm: float = 120.0, bars: int = 1, sr: int = SR, seed: int = 0) -> np.ndarray:
    """A minimal 4/4 drum loop (kick on 1 and 3, snare on 2 and 4, a hat on every beat), float32 (N,),
    N = round(bars * 4 * 60 / bpm * sr). Used where the audio content does not matter (--bpm mode)."""
    rng = np.random.default_rng(seed)
    beat = 60.0 / bpm
    n = int(round(bars * 4 * beat * sr))
    t = np.arange(int(0.2 * sr)) / sr
    kick = np.sin(2 * np.pi * (50 + 100 * np.exp(-t / 0.03)) * t) * np.exp(-t / 0.12)
    snare = rng.standard_normal(len(t)) * np.exp(-t / 0.05) * 0.6
    hat = rng.standard_normal(len(t)) * np.exp(-t / 0.01) * 0.15
    y = np.zeros(n)
    for b in range(bars * 4):
        i = int(round(b * beat * sr))
        hit = (kick if b % 2 == 0 else snare) + hat
        y[i:i + len(t)] += hit[:n - i]
    return (0.8 * y / np.abs(y).max()).astype(np.float32)


def demo_drums(seed: int, bpm: float = 97.0, bars: int = 4) -> np.ndarray:
    """The other engineer's demo renderer: a rendered house drum loop, float32 at 16 kHz."""
    renderer = pytest.importorskip("demo.loops")
    return renderer.render_loop("drum", "house", seed, bpm=bpm, bars=bars)


def to_44k_stereo(mono16k: np.ndarray) -> np.ndarray:
    """16 kHz mono -> 44.1 kHz stereo (N, 2) with different channel gains, to exercise resample + mono."""
    x = resample(mono16k, SR, 44_100)
    return np.stack([0.9 * x, 0.5 * x], axis=1)                                        # (N44, 2)


def write(path: Path, audio: np.ndarray, sr: int = SR, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, audio, sr, **kw)
    return path


def reasons(summary_or_dir) -> dict[str, str]:
    """file -> reason, from a summary dict or a data set's skipped.csv."""
    rows = summary_or_dir["skipped"] if isinstance(summary_or_dir, dict) else \
        read_csv(Path(summary_or_dir) / "skipped.csv")
    return {r["file"]: r["reason"] for r in rows}


def refuse_to_list(monkeypatch, folder: Path) -> None:
    """Simulate a folder without read permission in a way that also works as root (root can list a
    mode-000 folder): os.walk lists folders with os.scandir, so make os.scandir refuse that path."""
    real_scandir = os.scandir

    def scandir(path="."):
        if Path(path) == folder:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)
    monkeypatch.setattr(os, "scandir", scandir)


def run(loops, out, **kw):
    return pp.preprocess_folder(loops, out, show_progress=False, **kw)


# ---------------------------------------------------------------------------------------------
# Signal steps.
# ---------------------------------------------------------------------------------------------
@needs_rubberband
@pytest.mark.parametrize("bar_seconds", [1.5, 2.0004, 2.4742, 3.3])
def test_stretching_any_bar_gives_exactly_32000_samples(bar_seconds, monkeypatch):
    raw_lengths = []
    real_stretch = pyrubberband.time_stretch

    def spy(y, sr, rate, *args, **kwargs):     # Rubber Band's own output, before fix_length
        out = real_stretch(y, sr, rate, *args, **kwargs)
        raw_lengths.append(len(out))
        return out
    monkeypatch.setattr(pyrubberband, "time_stretch", spy)
    bar = np.random.default_rng(0).standard_normal(int(round(bar_seconds * SR))).astype(np.float32) * 0.3
    assert pp.stretch_to_loop(bar, bar_seconds).shape == (LOOP_SAMPLES,)
    # fix_length hides any rate: the raw stretch itself must already be ~2 s (an inverted rate
    # would give bar_seconds^2 / 2, e.g. 1.125 s for a 1.5-s bar).
    if abs(bar_seconds / LOOP_SECONDS - 1) >= pp.RATE_IDENTITY:
        assert len(raw_lengths) == 1 and abs(raw_lengths[0] - LOOP_SAMPLES) <= 0.01 * LOOP_SAMPLES
    else:
        assert raw_lengths == []               # already 2.000 s: no Rubber Band pass at all


@needs_rubberband
def test_a_short_last_bar_is_stretched_to_fill_the_loop_not_padded_with_silence(tmp_path):
    # Continuous noise, 2 bars at 120 BPM minus 2.5 % (inside BAR_TOLERANCE): the second bar must
    # fill its whole 2 s; zero-padding would leave the last ~50 ms silent.
    n = int(2 * LOOP_SAMPLES - 0.025 * LOOP_SAMPLES)
    noise = (0.3 * np.random.default_rng(2).standard_normal(n)).astype(np.float32)
    bars = bars_at_tempo(n, SR, 120)
    assert len(bars) == 2 and bars[1][1] == pytest.approx(n / SR - 2.0)         # its real length
    write(tmp_path / "noise.wav", noise)
    record = pp.process_file(tmp_path / "noise.wav", "noise.wav", tmp_path / "data", bpm=120)
    assert [r["bar"] for r in record["rows"]] == [0, 1]
    last, _ = sf.read(tmp_path / "data" / "wav" / f"{record['rows'][1]['id']}.wav")
    tail = last[-int(0.03 * SR):]                                                   # last 30 ms
    assert last.shape == (LOOP_SAMPLES,) and np.sqrt(np.mean(tail ** 2)) > 0.05


def test_bars_at_a_known_tempo_start_at_sample_zero_and_tolerate_a_few_missing_samples():
    bar = 4 * 60 / 97
    n = int(round(4 * bar * SR)) - 40           # 2.5 ms short of 4 bars: still 4 (last one padded)
    bars = bars_at_tempo(n, SR, 97)
    assert len(bars) == 4 and bars[0][0] == 0.0 and bars[1][0] == pytest.approx(bar)
    assert bars_at_tempo(int(0.9 * bar * SR), SR, 97) == []


def test_bars_are_spans_between_downbeats_plus_the_last_bar_of_a_loop_file():
    # (time, beat position): 2 full bars between 3 downbeats, and a whole bar left after the last one.
    beats = np.array([[t * 0.5, 1 + i % 4] for i, t in enumerate(range(12))], dtype=float)
    bars, bpm = bars_from_downbeats(beats, duration=6.0)
    assert [b[0] for b in bars] == [0.0, 2.0, 4.0] and all(b[1] == pytest.approx(2.0) for b in bars)
    assert bpm == pytest.approx(120.0)
    bars, _ = bars_from_downbeats(beats, duration=5.5)           # half a bar after the last downbeat
    assert len(bars) == 2
    bars, _ = bars_from_downbeats(beats, duration=5.96)          # 2 % short: kept at its real length
    assert len(bars) == 3 and bars[2] == (4.0, pytest.approx(1.96))
    with pytest.raises(SkipFile, match="^no downbeats"):
        bars_from_downbeats(np.empty((0, 2)), duration=6.0)
    with pytest.raises(SkipFile, match="^no downbeats"):         # beats, but none is a downbeat
        bars_from_downbeats(np.array([[0.0, 2], [0.5, 3], [1.0, 4]]), duration=1.2)


# ---------------------------------------------------------------------------------------------
# The full pipeline with madmom, once for the whole module: two demo drum loops + the bad-input zoo.
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tracked_set(tmp_path_factory):
    pytest.importorskip("madmom")
    if not HAS_RUBBERBAND:
        pytest.skip("rubberband binary not installed")
    root = tmp_path_factory.mktemp("tracked")
    loops, out = root / "loops", root / "data"
    drums = demo_drums(seed=0)                                                         # 97 BPM, 4 bars
    write(loops / "house" / "demo97.wav", drums)
    write(loops / "techno" / "demo97_44k_stereo.flac", to_44k_stereo(demo_drums(seed=3)), sr=44_100)
    # The bad-input zoo, one file per way to fail.
    t = np.arange(3 * SR) / SR
    write(loops / "house" / "silent.wav", np.zeros(3 * SR, np.float32))
    write(loops / "house" / "short.wav", click_loop(bpm=120, bars=1)[: SR // 2])  # 0.5 s < any bar
    write(loops / "house" / "tone.wav", (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32))  # no beat
    (loops / "house" / "empty.wav").write_bytes(b"")
    (loops / "house" / "notes.wav").write_text("this is a text file, not a WAV\n")
    good = (loops / "house" / "demo97.wav").read_bytes()
    (loops / "house" / "corrupt.wav").write_bytes(good[:12] + b"junkjunk" + good[20:4000])
    os.symlink(loops / "nowhere.wav", loops / "house" / "broken_link.wav")
    write(loops / "loose.wav", drums)                 # not inside a <genre>/ folder: kept, unlabelled
    write(loops / "locked" / "x.wav", drums)
    (loops / "house" / "readme.txt").write_text("not audio: ignored, not reported")

    with pytest.MonkeyPatch.context() as mp:
        refuse_to_list(mp, loops / "locked")
        summary = run(loops, out)
    return loops, out, summary


def test_demo_drums_at_97_bpm_come_back_as_about_four_bars_of_exactly_two_seconds(tracked_set):
    loops, out, summary = tracked_set
    rows = read_csv(out / "manifest.csv")
    for source, genre in [("house/demo97.wav", "house"), ("techno/demo97_44k_stereo.flac", "techno")]:
        mine = [r for r in rows if r["source"] == source]
        assert 3 <= len(mine) <= 5, (source, mine)
        assert {r["genre"] for r in mine} == {genre}
        assert all(abs(float(r["bpm"]) - 97) < 2 for r in mine)
        for r in mine:
            audio, sr = sf.read(out / "wav" / f"{r['id']}.wav", dtype="float32")
            assert sr == SR and audio.shape == (LOOP_SAMPLES,)                   # 2.000 s mono
            assert np.abs(audio).max() == pytest.approx(PEAK_LEVEL, abs=1e-4)
            assert np.load(out / "mel" / f"{r['id']}.npy").shape == (64, 200)
    assert is_complete(out) and len(LoopMelDataset(out)) == len(rows) == summary["kept_bars"]


def test_stretched_bars_have_their_beats_every_half_second_as_at_120_bpm(tracked_set):
    _, out, _ = tracked_set
    for r in read_csv(out / "manifest.csv"):
        audio, _ = sf.read(out / "wav" / f"{r['id']}.wav", dtype="float32")
        flux = np.maximum(np.diff(log_mel(audio).sum(axis=0), append=0), 0)        # (200,) onsets
        flux -= flux.mean()
        ac = np.array([np.dot(flux, np.roll(flux, k)) for k in range(200)])            # circular: a loop
        # One beat is 50 frames at 120 BPM; an unstretched 97 BPM beat would be 62 frames.
        assert ac[50] > ac[62] and ac[50] > ac[40], r


def test_bad_input_is_skipped_with_a_reason_and_never_crashes_the_run(tracked_set):
    _, out, summary = tracked_set
    why = reasons(out)
    assert why == reasons(summary)
    expected = {
        "house/silent.wav": "silent",
        "house/short.wav": "shorter than a bar",
        "house/tone.wav": "no downbeats",
        "house/empty.wav": "empty file",
        "house/notes.wav": "unreadable audio",
        "house/corrupt.wav": "unreadable audio",
        "house/broken_link.wav": "unreadable audio",
        "locked/": "unreadable directory",
    }
    assert set(why) == set(expected)                                   # readme.txt is not audio: ignored
    for file, category in expected.items():
        assert why[file].startswith(category + ":"), (file, why[file])
    assert "permission denied" in why["locked/"]
    assert summary["n_skipped"] == len(expected) and summary["kept_files"] == 3
    sources = {(r["source"], r["genre"]) for r in read_csv(out / "manifest.csv")}
    assert sources == {("house/demo97.wav", "house"), ("techno/demo97_44k_stereo.flac", "techno"),
                       ("loose.wav", UNLABELLED)}                      # labels are optional


def test_summary_says_kept_and_skipped_counts_and_groups_the_reasons(tracked_set):
    _, _, summary = tracked_set
    lines = pp.summary_lines(summary)
    assert lines[0] == f"kept {summary['kept_bars']} bars from 3 files, skipped 8 files"
    assert "labelled: 2 of 3 kept files have a genre" in lines[1] and "--labels" in lines[1]
    assert lines[2].startswith("  bars found by: ")
    assert any(line.split() == ["3", "unreadable", "audio"] for line in lines[1:]), lines


def test_rerunning_is_idempotent_and_processes_nothing_again(tracked_set, monkeypatch):
    loops, out, first = tracked_set
    manifest, skipped = (out / "manifest.csv").read_bytes(), (out / "skipped.csv").read_bytes()
    stats = np.load(out / "stats.npz")["mean"]

    def must_not_run(*a, **k):
        raise AssertionError("a finished file was processed again")
    monkeypatch.setattr(pp, "process_file", must_not_run)
    refuse_to_list(monkeypatch, loops / "locked")
    again = run(loops, out)
    assert first["processed"] == 10 and again["processed"] == 0 and again["reused"] == 10
    assert (out / "manifest.csv").read_bytes() == manifest
    assert (out / "skipped.csv").read_bytes() == skipped
    np.testing.assert_array_equal(np.load(out / "stats.npz")["mean"], stats)
    assert pp.summary_lines(again) == pp.summary_lines(first)


# ---------------------------------------------------------------------------------------------
# Known-tempo mode, labels CSV, resuming after a kill, workers: all without madmom.
# ---------------------------------------------------------------------------------------------
def test_bpm_mode_works_without_madmom(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "madmom", None)       # `import madmom` now raises ImportError
    loops, out = tmp_path / "loops", tmp_path / "data"
    write(loops / "funk" / "a.wav", click_loop(bpm=97, bars=4))
    write(loops / "funk" / "b.wav", click_loop(bpm=97, bars=2, seed=1))
    with pytest.raises(RuntimeError, match="--bpm"):
        run(loops, out)                                    # tracking needs madmom: a clear error
    if not HAS_RUBBERBAND:
        pytest.skip("rubberband binary not installed")
    summary = run(loops, out, bpm=97)
    rows = read_csv(out / "manifest.csv")
    assert [(r["source"], r["bar"]) for r in rows] == [("funk/a.wav", str(i)) for i in range(4)] + \
        [("funk/b.wav", "0"), ("funk/b.wav", "1")]
    assert {r["bpm"] for r in rows} == {"97.0"} and summary["n_skipped"] == 0
    assert all(sf.info(out / "wav" / f"{r['id']}.wav").frames == LOOP_SAMPLES for r in rows)


def test_stereo_multichannel_and_odd_sample_rates_are_converted_not_skipped(tmp_path):
    loops, out = tmp_path / "loops", tmp_path / "data"
    for sr, channels in [(11_025, 2), (22_050, 1), (48_000, 3), (44_100, 2)]:
        mono = click_loop(bpm=120, bars=2, sr=sr)                                     # (N,) at sr
        gains = np.linspace(1.0, 0.4, channels)
        write(loops / "rock" / f"{sr}_{channels}ch.wav", mono[:, None] * gains[None, :], sr=sr)  # (N, C)
    summary = run(loops, out, bpm=120)                                 # 120 BPM: resampling only
    assert summary["n_skipped"] == 0 and summary["kept_bars"] == 8
    for r in summary["rows"]:
        audio, sr = sf.read(out / "wav" / f"{r['id']}.wav", dtype="float32")
        assert sr == SR and audio.shape == (LOOP_SAMPLES,)
        # The kick of beat 1 lands at the start at every input rate: resampling kept the timing.
        assert np.argmax(np.abs(audio[:4000])) < 0.02 * SR


def test_labels_csv_gives_genres_keeps_unlabelled_files_and_flags_missing_and_conflicting_ones(tmp_path):
    loops, out = tmp_path / "loops", tmp_path / "data"
    for name in ["a.wav", "sub/b.flac", "c.wav", "d.wav", "e.wav"]:
        write(loops / name, click_loop(bpm=120, bars=1))
    (tmp_path / "labels.csv").write_text("file,genre\na.wav,rock\n./sub/b.flac,jazz\nghost.wav,rock\n"
                                         "d.wav,\ne.wav,rock\ne.wav,pop\n")
    summary = run(loops, out, labels=tmp_path / "labels.csv", bpm=120)   # 120 BPM: no stretching needed
    assert {(r["source"], r["genre"]) for r in summary["rows"]} == {
        ("a.wav", "rock"), ("sub/b.flac", "jazz"), ("c.wav", UNLABELLED), ("d.wav", UNLABELLED)}
    assert summary["labelled_files"] == 2 and summary["kept_files"] == 4
    why = reasons(out)
    assert set(why) == {"ghost.wav", "e.wav"}             # not listed or no label: kept, unlabelled
    assert why["ghost.wav"].startswith("missing file:")
    assert why["e.wav"].startswith("conflicting genre labels:")
    (tmp_path / "bad.csv").write_text("path,label\na.wav,rock\n")
    with pytest.raises(ValueError, match="bad.csv.*'file' and 'genre'"):
        run(loops, out, labels=tmp_path / "bad.csv", bpm=120)


def test_a_kill_mid_run_keeps_finished_files_and_the_rerun_resumes(tmp_path, monkeypatch):
    loops, out = tmp_path / "loops", tmp_path / "data"
    for i in range(2):
        write(loops / "rock" / f"{i}.wav", click_loop(bpm=120, bars=2, seed=i))
    run(loops, out, bpm=120)                               # a complete data set ...
    manifest_before = (out / "manifest.csv").read_bytes()
    for i in range(2, 5):                                  # ... then new loops arrive
        write(loops / "rock" / f"{i}.wav", click_loop(bpm=120, bars=2, seed=i))

    calls = []
    real = pp.process_file

    def dies_on_the_second_file(*a, **k):
        calls.append(a[1])
        if len(calls) == 2:
            raise KeyboardInterrupt                        # Ctrl-C / SIGTERM while file 2 is in flight
        return real(*a, **k)
    monkeypatch.setattr(pp, "process_file", dies_on_the_second_file)
    with pytest.raises(KeyboardInterrupt):
        run(loops, out, bpm=120)
    # The old data set is untouched and loadable; the file finished before the kill is on record.
    assert (out / "manifest.csv").read_bytes() == manifest_before and len(LoopMelDataset(out)) == 4
    done = journal.load_progress(out)
    assert sorted(done) == ["rock/0.wav", "rock/1.wav", "rock/2.wav"]
    # A torn last line (killed during the append itself) must not poison the resume either.
    with open(out / journal.PROGRESS_FILE, "a") as f:
        f.write('{"source": "rock/3.wav", "ro')

    monkeypatch.setattr(pp, "process_file", real)
    summary = run(loops, out, bpm=120)
    assert summary["processed"] == 2 and summary["reused"] == 3          # only rock/3 and rock/4 redone
    assert len(read_csv(out / "manifest.csv")) == 10 and len(LoopMelDataset(out)) == 10
    lines = (out / journal.PROGRESS_FILE).read_text().splitlines()
    assert all(json.loads(line) for line in lines)                       # every line parses again

    # --force redoes everything, same result.
    again = run(loops, out, bpm=120, force=True)
    assert again["processed"] == 5 and again["rows"] == summary["rows"]


def test_an_unexpected_error_skips_the_file_and_is_retried_on_the_next_run(tmp_path, monkeypatch):
    loops, out = tmp_path / "loops", tmp_path / "data"
    for name in ["a.wav", "b.wav"]:
        write(loops / "rock" / name, click_loop(bpm=120, bars=1))
    real = pp.process_file

    def fails_on_b(path, source, *a, **k):
        if source == "rock/b.wav":
            raise RuntimeError("rubberband: exited with status 1")
        return real(path, source, *a, **k)
    monkeypatch.setattr(pp, "process_file", fails_on_b)
    s = run(loops, out, bpm=120)
    assert reasons(s)["rock/b.wav"].startswith("error: RuntimeError") and s["kept_bars"] == 1
    monkeypatch.setattr(pp, "process_file", real)
    s = run(loops, out, bpm=120)
    assert s["processed"] == 1 and s["kept_bars"] == 2 and s["n_skipped"] == 0


def test_a_full_disk_ends_the_run_in_one_line_keeps_finished_files_and_the_rerun_resumes(tmp_path, monkeypatch,
                                                                                       capsys):
    loops, out = tmp_path / "loops", tmp_path / "data"
    for name in ["a.wav", "b.wav", "c.wav"]:
        write(loops / "rock" / name, click_loop(bpm=120, bars=1))
    argv = [str(loops), "--out", str(out), "--bpm", "120"]
    full_disk(monkeypatch, after=2)                      # a.wav's loop (its WAV and mel) fits, then the disk is full
    assert pp.main(argv) == 1                            # not skipped file by file: the run stops
    *progress, err = capsys.readouterr().err.strip().splitlines()          # the progress log, then one line
    assert all(p.startswith("preprocess: file") for p in progress)
    assert err.startswith(f"preprocess.py: no space left on the disk of {out}:")
    assert "the 1 files finished so far (1 loops) are recorded in progress.jsonl" in err
    assert f"about {LOOP_BYTES / 1e6:.1f} MB" in err and "run the same command again" in err
    assert sorted(journal.load_progress(out)) == ["rock/a.wav"] and not temporary_files(out)
    monkeypatch.undo()
    s = run(loops, out, bpm=120)
    assert s["reused"] == 1 and s["processed"] == 2 and len(read_csv(out / "manifest.csv")) == 3


def test_a_changed_source_file_or_tempo_is_processed_again(tmp_path):
    loops, out = tmp_path / "loops", tmp_path / "data"
    write(loops / "rock" / "a.wav", click_loop(bpm=120, bars=2))
    assert run(loops, out, bpm=120)["kept_bars"] == 2
    write(loops / "rock" / "a.wav", click_loop(bpm=120, bars=3))
    os.utime(loops / "rock" / "a.wav", ns=(1, 1))                      # a different stamp for sure
    s = run(loops, out, bpm=120)
    assert s["processed"] == 1 and s["kept_bars"] == 3
    if HAS_RUBBERBAND:
        s = run(loops, out, bpm=90)                                    # 3 bars at 120 = 2.25 bars at 90
        assert s["processed"] == 1 and s["kept_bars"] == 2


@needs_rubberband
@pytest.mark.slow   # each spawned worker imports torch: ~15 s of CPU on its own
def test_two_workers_give_the_same_data_set_as_one(tmp_path):
    loops = tmp_path / "loops"
    for i in range(3):
        write(loops / "rock" / f"{i}.wav", click_loop(bpm=100, bars=2, seed=i))
    one = run(loops, tmp_path / "one", bpm=100)
    two = run(loops, tmp_path / "two", bpm=100, workers=2)
    assert one["rows"] == two["rows"] and two["processed"] == 3
    for r in one["rows"]:
        np.testing.assert_array_equal(np.load(tmp_path / "one" / "mel" / f"{r['id']}.npy"),
                                      np.load(tmp_path / "two" / "mel" / f"{r['id']}.npy"))


def test_cli_prints_the_summary_and_reports_user_errors_without_a_traceback(tmp_path, capsys):
    loops, out = tmp_path / "loops", tmp_path / "data"
    write(loops / "rock" / "a.wav", click_loop(bpm=120, bars=2))
    (loops / "rock" / "bad.wav").write_text("nope")
    assert pp.main([str(loops), "--out", str(out), "--bpm", "120"]) == 0
    assert "kept 2 bars from 1 files, skipped 1 files" in capsys.readouterr().out
    assert pp.main([str(tmp_path / "nope"), "--out", str(out), "--bpm", "120"]) == 2
    assert "is not a directory" in capsys.readouterr().err
    (loops / "rock" / "a.wav").unlink()
    assert pp.main([str(loops), "--out", str(tmp_path / "d2"), "--bpm", "120"]) == 1
    assert "no loops kept" in capsys.readouterr().err


def test_unlabelled_loops_are_kept_and_scnn_loop_then_names_the_remedy(tmp_path):
    train_scnn = pytest.importorskip("train_scnn")
    loops, out = tmp_path / "loops", tmp_path / "data"
    for i in range(3):
        write(loops / f"{i}.wav", click_loop(bpm=120, bars=1, seed=i))   # a plain folder: no genres
    summary = run(loops, out, bpm=120)
    assert summary["kept_files"] == 3 and summary["labelled_files"] == 0
    with pytest.raises(ValueError, match=r"scnn_loop.*3 of 3 loops.*<genre>/ sub-folders.*--labels"):
        train_scnn.train_loop_classifier(out, train_scnn.LoopTrainConfig(width=8, epochs=1), ckpt_dir=tmp_path)
