"""The loop studio (python -m studio) as a spec: every button's endpoint gives audio of the promised length with
files named by seed, genre and tempo; the recipe's sample.py command remakes the very same audio; bad input is a
400 with one line; ten requests at once are all answered, one at a time; and, in headless Chromium, Make plays
a loop the page shows. The model is the tests' tiny conditional run (two training steps), the vocoder a tiny
untrained fast vocoder (its speed and shapes are a trained one's)."""
from __future__ import annotations

import importlib.util
import io
import json
import shlex
import shutil
import threading
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from fastapi.testclient import TestClient

import melgan
import sample
import train
import vocos
from experiments import bench_studio
from generator import Generator, GeneratorConfig
from mel import LOOP_SAMPLES, SR
from plumbing import paths
from plumbing.checkpoint import save_checkpoint
from studio import __main__ as studio_cli
from studio import app as S
from test_cli_help import parser_of
from train_fixtures import cfg_for, tiny_drum_set   # noqa: F401  (fixture)

TINY_VOCODER = vocos.VocosConfig(dim=16, blocks=2)


# ---------------------------------------------------------------------------------------------
# Fixtures: a tiny conditional run, a tiny vocoder, a studio on them
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cond_run(tmp_path_factory, tiny_drum_set):
    """Two conditional training steps of the StyleGAN2 baseline on the two-genre tiny set."""
    return train.train(cfg_for(tmp_path_factory.mktemp("cond"), tiny_drum_set, "none", steps=2, conditional=True),
                       device="cpu")


@pytest.fixture(scope="module")
def tiny_vocoder(tmp_path_factory) -> Path:
    """An untrained fast vocoder in train_melgan.py's checkpoint layout."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("vocoder") / "tiny_vocoder.pt"
    save_checkpoint({"kind": "vocoder", "arch": "fast", "loops": "drum", "frontend": melgan.frontend(),
                     "G": vocos.VocosGenerator(TINY_VOCODER).state_dict(), "config": asdict(TINY_VOCODER)}, path)
    return path


@pytest.fixture(scope="module")
def studio(cond_run, tiny_vocoder, tmp_path_factory):
    return S.open_studio(cond_run, tmp_path_factory.mktemp("studio_out"), str(tiny_vocoder))


@pytest.fixture(scope="module")
def client(studio):
    return TestClient(S.create_app(studio))


def fetch_wav(client, url: str) -> np.ndarray:
    res = client.get(url)
    assert res.status_code == 200, url
    audio, sr = sf.read(io.BytesIO(res.content), dtype="float32")
    assert sr == SR
    return audio


def bar_length(bpm: float) -> int:
    return round(LOOP_SAMPLES * 120 / bpm)


def post_ok(client, what: str, body: dict) -> dict:
    res = client.post(f"/api/{what}", json=body)
    assert res.status_code == 200, res.text
    return res.json()


# ---------------------------------------------------------------------------------------------
# The three buttons
# ---------------------------------------------------------------------------------------------
def test_the_page_learns_the_genres_and_limits_of_the_checkpoint(client, cond_run):
    info = client.get("/api/info").json()
    assert info["genres"] == sample.load_generator(cond_run)[1]["genres"] and info["vocoder"].startswith("fast:")
    assert info["limits"]["bpm"] == [60, 200] and info["limits"]["bars"] == 64
    page = client.get("/").text
    assert 'id="make"' in page and "/static/studio.js" in page
    assert "http" not in client.get("/static/studio.js").text.replace("HTTP ", "")   # no CDN, font or analytics
    assert "http" not in page and client.get("/static/studio.css").status_code == 200


def test_make_gives_one_bar_at_the_asked_bpm_and_x4_with_seed_genre_and_bpm_in_the_file_names(client, studio):
    genre = studio.genres[1]
    for bpm in (120, 90):
        loop = post_ok(client, "loop", {"seed": 42, "genre": genre, "truncation": 0.7, "bpm": bpm})
        assert loop["wav"].endswith(f"/loop_seed42_{genre}_{bpm}bpm.wav")
        assert loop["wav_x4"].endswith(f"/loop_seed42_{genre}_{bpm}bpm_x4.wav")
        bar = fetch_wav(client, loop["wav"])
        assert len(bar) == loop["samples"] == bar_length(bpm) and np.isfinite(bar).all() and np.abs(bar).max() > 0.1
        np.testing.assert_array_equal(fetch_wav(client, loop["wav_x4"]), np.tile(bar, 4))
        assert client.get(loop["mel"]).content[:8] == b"\x89PNG\r\n\x1a\n"
        recipe = client.get(loop["recipe_url"]).json()
        assert recipe == loop["recipe"] and (recipe["seed"], recipe["genre"], recipe["bpm"]) == (42, genre, bpm)
        assert len(recipe["z"]) == studio.G.z_dim


def test_the_recipe_command_remakes_the_same_audio_and_recipe_with_sample_py(client, studio, tmp_path):
    """The page's command, run as written, writes bit-identical WAVs and the same recipe fields."""
    genre = studio.genres[0]
    made = {"loop": post_ok(client, "loop", {"seed": 5, "genre": genre, "truncation": 0.8, "bpm": 90}),
            "variations": post_ok(client, "variations", {"seed": 6, "genre": genre, "n": 2, "spread": 0.5,
                                                         "bpm": 120}),
            "morph": post_ok(client, "morph", {"seed_a": 3, "genre_a": genre, "seed_b": 9, "genre_b": studio.genres[1],
                                               "bars": 3, "bpm": 100})}
    for kind, m in made.items():
        words = shlex.split(m["command"])
        assert words[:2] == ["python", "sample.py"] and words[-2:] == ["--out", "remade"]
        out = tmp_path / kind
        sample.main(words[2:-1] + [str(out)])
        if kind == "loop":
            pairs = [(m["wav"], m["remade"]), (m["wav_x4"], m["remade"].replace(".wav", "_x4.wav"))]
            assert json.loads((out / genre / "loop_0000.json").read_text()) == m["recipe"]
        elif kind == "variations":
            pairs = [(loop["wav"], f"remade/loop_{k:04d}.wav") for k, loop in enumerate(m["loops"])]
            assert json.loads((out / "loop_0002.json").read_text()) == m["loops"][2]["recipe"]
        else:
            pairs = [(m["wav"], m["remade"])]
            assert json.loads((out / "loop_0001.json").read_text()) == m["recipes"][1]
        for url, remade in pairs:
            again, _ = sf.read(out / remade.split("/", 1)[1], dtype="float32")
            np.testing.assert_array_equal(fetch_wav(client, url), again, err_msg=f"{kind}: {remade}")


def test_seed_new_draws_a_seed_that_is_reported_and_makes_the_loop_again(client, studio):
    genre = studio.genres[0]
    first = post_ok(client, "loop", {"seed": "new", "genre": genre})
    seed = first["recipe"]["seed"]
    assert isinstance(seed, int) and 0 <= seed <= S.SEED_MAX and f"seed{seed}_" in first["wav"]
    again = post_ok(client, "loop", {"seed": str(seed), "genre": genre})              # digits, as a form sends
    np.testing.assert_array_equal(fetch_wav(client, first["wav"]), fetch_wav(client, again["wav"]))


def test_variations_are_the_loop_then_n_relatives_that_stay_nearer_with_less_spread(client, studio):
    genre = studio.genres[0]
    loop = fetch_wav(client, post_ok(client, "loop", {"seed": 11, "genre": genre})["wav"])
    near, far = (post_ok(client, "variations", {"seed": 11, "genre": genre, "n": 3, "spread": s}) for s in (0.05, 2.0))
    assert len(near["loops"]) == 4 and near["loops"][3]["wav"].endswith(f"loop_seed11_{genre}_120bpm_var3.wav")
    np.testing.assert_allclose(fetch_wav(client, near["loops"][0]["wav"]), loop, atol=1e-4)   # the loop itself
    #                                                 first (made in a batch of 4, so equal up to float rounding)
    z0 = np.array(near["loops"][0]["recipe"]["z"])
    dist = [np.mean([np.linalg.norm(np.array(v["recipe"]["z"]) - z0) for v in m["loops"][1:]]) for m in (near, far)]
    assert 0 < dist[0] < dist[1]
    for v in near["loops"][1:]:
        assert len(fetch_wav(client, v["wav"])) == LOOP_SAMPLES and v["recipe"]["variation_of"] == 11


def test_a_morph_is_one_wav_of_k_bars_at_the_asked_bpm(client, studio):
    a, b = studio.genres
    m = post_ok(client, "morph", {"seed_a": 1, "genre_a": a, "seed_b": 2, "genre_b": b, "bars": 4, "bpm": 150})
    assert m["wav"].endswith(f"/morph_seed1_{a}_to_seed2_{b}_150bpm_4bars.wav")
    audio = fetch_wav(client, m["wav"])
    assert len(audio) == m["samples"] == round(4 * LOOP_SAMPLES * 120 / 150) and np.isfinite(audio).all()
    assert [r["t"] for r in client.get(m["recipe_url"]).json()] == [0, 1 / 3, 2 / 3, 1]


# ---------------------------------------------------------------------------------------------
# Refusals and the queue
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("what, body, says", [
    ("loop", {"seed": 1, "genre": "polka"}, "unknown genre 'polka'"),
    ("loop", {"seed": 1}, "pick one of"),
    ("loop", {"seed": 1, "genre": "GENRE", "bpm": 59}, "bpm must be from 60 to 200"),
    ("loop", {"seed": 1, "genre": "GENRE", "bpm": 201}, "bpm must be from 60 to 200"),
    ("loop", {"seed": 1, "genre": "GENRE", "bpm": "fast"}, "bpm must be a number"),
    ("loop", {"seed": 4.5, "genre": "GENRE"}, "seed must be a whole number"),
    ("loop", {"seed": "forty-two", "genre": "GENRE"}, "seed must be a whole number"),
    ("loop", {"seed": -1, "genre": "GENRE"}, "seed must be from 0"),
    ("loop", {"seed": 1, "genre": "GENRE", "truncation": 0}, "truncation must be above 0 and at most 2"),
    ("loop", {"seed": 1, "genre": "GENRE", "truncation": 2.5}, "truncation must be above 0 and at most 2"),
    ("morph", {"seed_a": 1, "seed_b": 2, "genre_a": "GENRE", "bars": 65}, "from 2 to 64"),
    ("variations", {"seed": 1, "genre": "GENRE", "n": 99}, "how many variations) must be a whole number from 1 to 16"),
    ("variations", {"seed": 1, "genre": "GENRE", "spread": -1}, "spread must be from 0"),
])
def test_each_bad_input_is_a_400_whose_one_line_says_what_to_change(client, studio, what, body, says):
    body = {k: studio.genres[0] if v == "GENRE" else v for k, v in body.items()}
    res = client.post(f"/api/{what}", json=body)
    assert res.status_code == 400 and set(res.json()) == {"error"}
    message = res.json()["error"]
    assert says in message and "\n" not in message and "Traceback" not in message


def test_a_body_that_is_not_a_json_object_is_a_400_and_an_unknown_path_a_404(client):
    for content in (b"seed=42", b"[1, 2]"):
        res = client.post("/api/loop", content=content, headers={"Content-Type": "application/json"})
        assert res.status_code == 400 and "JSON object" in res.json()["error"]
    assert client.get("/files/../sample.py").status_code == 404


def test_a_failure_inside_the_worker_is_a_500_with_one_line(client, studio, monkeypatch):
    def full(*a, **k):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(S, "write_wav", full)
    res = client.post("/api/loop", json={"seed": 1, "genre": studio.genres[0]})
    assert res.status_code == 500 and res.json() == {"error": "generation failed: [Errno 28] No space left on device"}


def test_ten_requests_at_once_are_all_answered_one_at_a_time_in_their_order(client, studio, monkeypatch):
    """Single worker: no two generations overlap, and they run in the order they were queued."""
    spans, real = [], studio.make_loop

    def spy(**kw):
        start = time.perf_counter()
        out = real(**kw)
        spans.append((start, time.perf_counter(), kw["seed"]))
        return out
    monkeypatch.setattr(studio, "make_loop", spy)
    queued, lock = [], threading.Lock()
    answers = {}

    def ask(seed):
        with lock:                       # the order the worker sees is the order of submission
            queued.append(seed)
        answers[seed] = client.post("/api/loop", json={"seed": seed, "genre": studio.genres[0]})
    threads = [threading.Thread(target=ask, args=(s,)) for s in range(100, 110)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(answers) == list(range(100, 110))
    assert all(r.status_code == 200 and f"seed{s}_" in r.json()["wav"] for s, r in answers.items())
    spans.sort()
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:])), "two generations overlapped"
    assert len({r.json()["wav"].split("/")[2] for r in answers.values()}) == 10     # ten folders, nothing overwritten


# ---------------------------------------------------------------------------------------------
# Start-up: the model, the vocoder, the output folder, the command line
# ---------------------------------------------------------------------------------------------
def test_an_unconditional_checkpoint_hides_the_genre_and_refuses_one(tmp_path, tiny_vocoder):
    cfg = GeneratorConfig(max_channels=8)
    save_checkpoint({"g_ema": Generator(cfg).state_dict(), "g_config": asdict(cfg), "mel_mean": torch.zeros(64) - 2,
                     "mel_std": torch.ones(64) / 2, "features": ["aisfx"], "loops": "drum", "step": 1},
                    tmp_path / "run" / "latest.pt")
    c = TestClient(S.create_app(S.open_studio(tmp_path / "run", tmp_path / "out", str(tiny_vocoder))))
    assert c.get("/api/info").json()["genres"] is None
    res = c.post("/api/loop", json={"seed": 1, "genre": "house"})
    assert res.status_code == 400 and "unconditional" in res.json()["error"]
    loop = post_ok(c, "loop", {"seed": 1, "bpm": 120})
    assert loop["wav"].endswith("/loop_seed1_120bpm.wav") and loop["recipe"]["index"] == 0
    assert "--genre" not in loop["command"] and loop["remade"] == "remade/loop_0000.wav"


def test_the_studio_writes_only_into_its_output_folder_and_never_over_an_earlier_session(cond_run, tiny_vocoder,
                                                                                          tmp_path):
    home_before = sorted(paths.home().rglob("*"))
    run_before = sorted(cond_run.rglob("*"))
    out = tmp_path / "out"
    for _ in range(2):                   # two sessions on one folder: the second numbers on
        c = TestClient(S.create_app(S.open_studio(cond_run, out, str(tiny_vocoder), warm_up=False)))
        post_ok(c, "loop", {"seed": 3, "genre": c.get("/api/info").json()["genres"][0]})
    assert sorted(p.name for p in out.iterdir()) == ["0001_loop", "0002_loop"]
    assert sorted(paths.home().rglob("*")) == home_before and sorted(cond_run.rglob("*")) == run_before
    assert studio_cli.parse_args([]).out is None and paths.studio_out() == paths.home() / "studio_out"


def test_the_vocoder_is_the_asked_one_then_the_folders_then_griffin_lim_said_aloud(cond_run, tiny_vocoder, tmp_path,
                                                                                    capsys):
    run = tmp_path / "run"
    shutil.copytree(cond_run, run)
    capsys.readouterr()
    plain = S.open_studio(run, tmp_path / "o1", warm_up=False)          # the tiny set has no trained vocoder
    assert plain.vocoder.name == "griffin-lim" and plain.vocoder_arg == "griffin-lim"
    assert "Griffin-Lim" in capsys.readouterr().err
    shutil.copy(tiny_vocoder, run / S.FOLDER_VOCODER)
    carried = S.open_studio(run, tmp_path / "o2", warm_up=False)
    assert carried.vocoder.name == f"fast:{run / S.FOLDER_VOCODER}"
    assert S.open_studio(run, tmp_path / "o3", "griffin-lim", warm_up=False).vocoder.name == "griffin-lim"


def start_line(argv, capsys) -> str:
    assert studio_cli.main(argv) == studio_cli.USER_ERROR
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_without_a_shipped_model_or_a_generator_the_command_says_so_in_one_line(monkeypatch, tmp_path, capsys,
                                                                                 tiny_vocoder):
    monkeypatch.setattr(S.paths, "REPO", tmp_path)                        # no pretrained/drum there
    line = start_line([], capsys)
    assert "no shipped model" in line and "python -m studio runs/drum_scnn_loop" in line
    assert "no checkpoint" in start_line([str(tmp_path / "nothing")], capsys)
    assert "g_ema" in start_line([str(tiny_vocoder)], capsys)             # a vocoder is not a generator


@pytest.mark.filterwarnings("ignore:.* found in sys.modules after import of package")
@pytest.mark.parametrize("module", ["studio", "experiments.bench_studio"])
def test_every_flag_of_the_studio_and_its_benchmark_has_a_help_line(module, monkeypatch, capsys):
    ap = parser_of(module, monkeypatch)
    assert all((a.help or "").strip() for a in ap._actions)
    assert studio_cli.parse_args([]).host == "127.0.0.1" and studio_cli.parse_args([]).port == 7860


# ---------------------------------------------------------------------------------------------
# The page in a real browser
# ---------------------------------------------------------------------------------------------
def browser_missing() -> str | None:
    if not Path(bench_studio.CHROMIUM).exists():
        return f"no Chromium at {bench_studio.CHROMIUM} (apt-get install chromium)"
    if importlib.util.find_spec("playwright") is None:
        return "playwright is not installed (pip install playwright; no `playwright install` needed)"
    return None


@pytest.mark.slow
@pytest.mark.skipif(browser_missing() is not None, reason=browser_missing() or "")
def test_in_chromium_make_plays_a_loop_on_repeat_and_the_page_shows_it(cond_run, tiny_vocoder, tmp_path):
    from playwright.sync_api import sync_playwright
    with bench_studio.serve(cond_run, tmp_path / "out", tiny_vocoder) as url, sync_playwright() as pw:
        browser = bench_studio.launch_chromium(pw)
        page = browser.new_page(viewport={"width": 1000, "height": 760})
        page.goto(url)
        page.wait_for_selector("body[data-ready=yes]")
        assert page.locator("#genre option").count() == 2
        page.fill("#seed", "42")
        page.click("#make")
        page.wait_for_function("document.getElementById('now-status').textContent.startsWith('playing')",
                               timeout=60_000)
        status = page.locator("#now-status")
        wav_url = status.get_attribute("data-url")
        assert "loop_seed42_" in wav_url and "_120bpm.wav" in wav_url
        assert float(status.get_attribute("data-duration")) == pytest.approx(2.0, abs=1e-3)   # decoded, looping
        assert page.locator("#now-title").inner_text().startswith("seed 42")
        page.wait_for_function("document.getElementById('now-mel').naturalWidth > 0")
        assert "seed" in page.locator("#now-recipe").text_content()
        audio, sr = sf.read(io.BytesIO(page.request.get(url + wav_url).body()), dtype="float32")
        assert sr == SR and len(audio) == LOOP_SAMPLES and np.isfinite(audio).all() and np.abs(audio).max() > 0.1
        page.fill("#seed", "oops")
        page.click("#make")
        page.wait_for_selector("#message.error:not([hidden])")
        assert "seed must be a whole number" in page.locator("#message").inner_text()
        page.screenshot(path=str(tmp_path / "studio.png"))
        browser.close()
    assert (tmp_path / "studio.png").stat().st_size > 0


def test_the_latency_table_says_per_action_whether_the_target_is_met_and_by_how_much_it_is_missed():
    assert bench_studio.met({"function": (0.40, 0.30), "HTTP": (0.45, 0.31)}, 0.5) == "yes"
    assert bench_studio.met({"function": (0.40, 0.30), "HTTP": (0.62, 0.31)}, 0.5) == "no: +0.12 s"  # the larger
    rows = [{"action": a, "bpm": b, "via": v, "seconds": (0.1 if a != "variations" else 2.5, 0.1)}
            for a in bench_studio.TARGETS_S for b in (120.0, bench_studio.SLOW_BPM) for v in ("function", "HTTP")]
    lines = bench_studio.table(rows).splitlines()
    assert len(lines) == 2 + 2 * len(bench_studio.TARGETS_S)
    assert lines[2].endswith("| 0.5 | yes |") and "| 2 | no: +0.50 s |" in lines[4]


def test_each_input_is_checked_by_a_pure_function_that_returns_the_value_or_one_line():
    from studio import inputs as I
    import random
    assert I.parse_seed("42") == 42 and I.parse_seed(7) == 7
    assert 0 <= I.parse_seed("new", random.Random(0)) <= I.SEED_MAX
    assert I.parse_whole(8.0, "bars", 1, I.MAX_BARS) == 8 and I.parse_bpm("90") == 90.0
    for bad in (lambda: I.parse_seed(4.5), lambda: I.parse_seed(True), lambda: I.parse_bpm(59),
                lambda: I.parse_whole(8.5, "bars", 1, 64), lambda: I.parse_whole(65, "bars", 1, 64),
                lambda: I.parse_truncation(0), lambda: I.parse_genre("polka", ["house", "funk"])):
        with pytest.raises(I.StudioError) as e:
            bad()
        assert len(str(e.value).splitlines()) == 1
