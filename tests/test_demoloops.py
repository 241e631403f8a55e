"""Spec of the embedded demo loops (demo/loops.py): deterministic, exact-length, audible, seamless,
genre-balanced one-bar loops written in the data-set layout of dataset.py."""
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from demo import loops as D
import dataset
from dataset import (LOOP_BYTES, MANIFEST_FIELDS, default_data_dir, LoopMelDataset, finalize_dataset,
                     is_complete, load_stats, save_loop)
from plumbing.audio_io import PEAK_LEVEL
from plumbing.files import read_csv
from stubs import full_disk, temporary_files
from mel import LOOP_SAMPLES, N_FRAMES, N_MELS, SR

ALL = [(loops, g) for loops, genres in D.GENRES.items() for g in genres]
RMS_FLOOR = 0.01      # a peak-0.9 loop with any real content is far above this; silence is 0


def test_public_genre_lists_have_enough_genres():
    assert len(D.DRUM_GENRES) >= 8 and len(D.SYNTH_STYLES) >= 6
    assert D.GENRES == {"drum": D.DRUM_GENRES, "synth": D.SYNTH_STYLES}
    assert D.DEFAULT_N == 2000


@pytest.mark.parametrize("loops,genre", ALL)
def test_every_genre_renders_one_bar_of_exact_length_finite_audible_and_peak_normalised(loops, genre):
    audio = D.render_loop(loops, genre, seed=7)
    assert audio.dtype == np.float32 and audio.shape == (LOOP_SAMPLES,) == (32_000,)
    assert np.all(np.isfinite(audio))
    assert np.sqrt(np.mean(audio.astype(np.float64) ** 2)) > RMS_FLOOR
    assert np.max(np.abs(audio)) <= 1.0
    assert np.max(np.abs(audio)) == pytest.approx(PEAK_LEVEL, abs=1e-4)


@pytest.mark.parametrize("loops,genre", [("drum", D.DRUM_GENRES[0]), ("synth", D.SYNTH_STYLES[1])])
def test_same_seed_gives_identical_audio_and_different_seeds_differ(loops, genre):
    a = D.render_loop(loops, genre, seed=3)
    # A loop in between must not leak synthesiser state into the next one.
    D.render_loop(loops, genre, seed=4)
    b = D.render_loop(loops, genre, seed=3)
    assert np.array_equal(a, b)
    assert not np.allclose(a, D.render_loop(loops, genre, seed=5), atol=1e-3)


def test_render_at_97_bpm_for_4_bars_has_the_length_of_four_bars():
    audio = D.render_loop("drum", "rock", seed=0, bpm=97, bars=4)
    assert audio.shape == (round(4 * 4 * 60 / 97 * SR),) == (D.loop_samples(97, 4),)
    assert np.all(np.isfinite(audio)) and np.max(np.abs(audio)) <= 1.0


def test_downbeat_kick_opens_the_loop():
    # Every drum genre has its accented kick on one, not pushed before the loop start.
    for genre in D.DRUM_GENRES:
        audio = D.render_loop("drum", genre, seed=1)
        first_30ms = np.max(np.abs(audio[: int(0.03 * SR)]))
        assert first_30ms > 0.2, genre


def test_wrap_tail_folds_what_rings_past_the_end_onto_the_start():
    x = np.arange(10, dtype=np.float64)                    # a period of 4: [0 1 2 3][4 5 6 7][8 9]
    assert np.array_equal(D.wrap_tail(x, 4), [0 + 4 + 8, 1 + 5 + 9, 2 + 6, 3 + 7])


def test_loop_is_seamless_tails_wrap_onto_the_start():
    # A pad rings through the bar line: its release must sound at the start, so that the loop
    # start is not silent and the seam (last sample -> first sample) has no jump bigger than the
    # signal's ordinary sample-to-sample steps.
    audio = D.render_loop("synth", "pad_chords", seed=2).astype(np.float64)
    steps = np.abs(np.diff(audio))
    assert abs(audio[0] - audio[-1]) <= 4 * np.percentile(steps, 99) + 1e-6


def test_bad_arguments_get_clear_errors():
    with pytest.raises(ValueError, match="loops"):
        D.render_loop("bass", "house", 0)
    with pytest.raises(ValueError, match="polka"):
        D.render_loop("drum", "polka", 0)
    with pytest.raises(ValueError, match="bars"):
        D.render_loop("drum", "house", 0, bars=0)
    with pytest.raises(ValueError, match="n "):
        D.build_demo_set("drum", 0, "/tmp/never-written")


@pytest.fixture(scope="module")
def small_synth_set(tmp_path_factory):
    n = 2 * len(D.SYNTH_STYLES)
    out = D.build_demo_set("synth", n, tmp_path_factory.mktemp("demo") / "synth", seed=11, workers=1,
                           progress=False)
    return out, n


def test_build_demo_set_writes_preprocess_layout_with_balanced_genres(small_synth_set):
    out, n = small_synth_set
    assert is_complete(out)
    rows = read_csv(out / "manifest.csv")
    assert len(rows) == n and set(rows[0]) == set(MANIFEST_FIELDS)
    counts = {g: sum(r["genre"] == g for r in rows) for g in D.SYNTH_STYLES}
    assert set(counts.values()) == {2}                                                # every style, balanced
    mean, std = load_stats(out)
    assert mean.shape == std.shape == (N_MELS,)
    for r in rows:
        assert r["bar"] == "0" and r["bpm"] == "120"
        kind, genre, seed = r["source"].split(":")
        assert kind == "demo" and genre == r["genre"]
        audio, sr = sf.read(out / "wav" / f"{r['id']}.wav", dtype="float32")
        assert sr == SR and audio.shape == (LOOP_SAMPLES,)
        assert np.load(out / "mel" / f"{r['id']}.npy").shape == (N_MELS, N_FRAMES)
    # The manifest's source reproduces the loop exactly.
    r = rows[3]
    audio, _ = sf.read(out / "wav" / f"{r['id']}.wav", dtype="float32")
    assert np.array_equal(audio, D.render_loop("synth", r["genre"], int(r["source"].split(":")[2])))
    info = json.loads((out / D.DEMO_JSON).read_text())
    assert info["n"] == n and info["seed"] == 11 and info["loops"] == "synth"
    # And the data set loads as training data.
    ds = LoopMelDataset(out)
    assert len(ds) == n and ds.genres == sorted(D.SYNTH_STYLES)


def test_build_demo_set_is_cached_on_a_second_call(small_synth_set, monkeypatch):
    out, n = small_synth_set
    def boom(*a, **k):
        raise AssertionError("rendered again although the set is cached")
    monkeypatch.setattr(D, "render_loop", boom)
    assert D.build_demo_set("synth", n, out, seed=11, workers=1, progress=False) == out


def test_a_different_request_rebuilds_and_removes_stale_loops(tmp_path):
    out = tmp_path / "drum"
    D.build_demo_set("drum", 3, out, seed=0, workers=1, progress=False)
    D.build_demo_set("drum", 2, out, seed=0, workers=1, progress=False)
    rows = read_csv(out / "manifest.csv")
    assert [r["genre"] for r in rows] == list(D.DRUM_GENRES[:2])                     # round-robin
    assert len(list((out / "wav").glob("*.wav"))) == 2 == len(list((out / "mel").glob("*.npy")))
    assert json.loads((out / D.DEMO_JSON).read_text())["n"] == 2


def test_refuses_to_overwrite_a_data_set_it_did_not_write(tmp_path):
    save_loop(tmp_path, "real", D.render_loop("drum", "house", 0))
    finalize_dataset(tmp_path, [{"id": "real", "source": "x.wav", "bar": 0, "bpm": 120, "genre": "x"}], [])
    with pytest.raises(FileExistsError, match="demo/loops.py"):
        D.build_demo_set("drum", 4, tmp_path, progress=False)


def test_one_and_two_workers_give_identical_sets(tmp_path, small_synth_set):
    ref, n = small_synth_set
    out = D.build_demo_set("synth", n, tmp_path / "w2", seed=11, workers=2, progress=False)
    assert read_csv(out / "manifest.csv") == read_csv(ref / "manifest.csv")
    for r in read_csv(ref / "manifest.csv"):
        # Samples, not bytes: libsndfile stamps a PEAK chunk with the time of writing.
        assert np.array_equal(sf.read(out / "wav" / f"{r['id']}.wav")[0], sf.read(ref / "wav" / f"{r['id']}.wav")[0])
        assert np.array_equal(np.load(out / "mel" / f"{r['id']}.npy"), np.load(ref / "mel" / f"{r['id']}.npy"))
    assert np.array_equal(load_stats(out)[0], load_stats(ref)[0])


def test_default_data_dir_follows_pjloop_data_root_then_pjloop_home_then_the_repository(monkeypatch, tmp_path):
    monkeypatch.delenv("PJLOOP_DATA_ROOT", raising=False)
    monkeypatch.delenv("PJLOOP_HOME", raising=False)
    monkeypatch.chdir(tmp_path)                                   # never the current directory
    assert default_data_dir("drum") == Path(dataset.__file__).resolve().parent / "data" / "demo_drum"
    monkeypatch.setenv("PJLOOP_HOME", str(tmp_path / "home"))
    assert default_data_dir("drum") == tmp_path / "home" / "data" / "demo_drum"
    monkeypatch.setenv("PJLOOP_DATA_ROOT", str(tmp_path))
    assert default_data_dir("synth") == tmp_path / "demo_synth"


def test_cli_writes_a_data_set_and_a_second_call_reports_it_cached(tmp_path, capsys):
    out = tmp_path / "synth"
    argv = ["--loops", "synth", "-n", "6", "--out", str(out), "--workers", "1", "--quiet"]
    assert D.main(argv) == 0
    first = capsys.readouterr().out
    assert is_complete(out) and len(read_csv(out / "manifest.csv")) == 6
    assert f"{out}: kept 6 synth loops" in first and "(cached)" not in first
    assert D.main(argv) == 0
    assert "(cached)" in capsys.readouterr().out
    assert D.main(["--loops", "synth", "-n", "0", "--out", str(out), "--quiet"]) == 2    # user error: no traceback
    assert "demo/loops.py: error:" in capsys.readouterr().err


def test_a_full_disk_while_rendering_is_one_line_exit_status_1_and_no_temporary_file(tmp_path, monkeypatch, capsys):
    out = tmp_path / "synth"
    full_disk(monkeypatch, after=2)                       # the first loop's WAV and mel fit, nothing after them
    assert D.main(["--loops", "synth", "-n", "3", "--out", str(out), "--workers", "1", "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"demo/loops.py: no space left on the disk of {out}:") and "\n" not in err
    assert f"3 synth demo loops need about {3 * LOOP_BYTES / 1e6:.1f} MB" in err and "Free space" in err
    assert not is_complete(out) and not temporary_files(out)
