"""sample.py as a spec: the promised files with the promised durations, seamless loops, and a listening
page whose every player loads (checked in headless Chromium when it is installed)."""
import json
import re
import shutil
import subprocess
from dataclasses import asdict
from html import unescape
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import sample
from plumbing.checkpoint import save_checkpoint
from generator import Generator, GeneratorConfig
from mel import HOP, LOOP_SAMPLES, N_FRAMES, N_MELS, SR, log_mel
import demo.loops
import griffinlim
import melgan
from vocoder_fixtures import no_repo_vocoders, tiny_set   # noqa: F401  (fixtures)


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    """A checkpoint in train.py's layout holding an untrained tiny generator."""
    run = tmp_path_factory.mktemp("run")
    cfg = GeneratorConfig(max_channels=8)
    torch.manual_seed(0)
    G = Generator(cfg)
    save_checkpoint({"g_ema": G.state_dict(), "g_config": asdict(cfg), "mel_mean": torch.full((64,), -2.0),
                     "mel_std": torch.full((64,), 0.5), "features": ["aisfx"], "loops": "drum", "step": 7},
                    run / "latest.pt")
    return run


def test_generate_mels_are_destandardised_log_mels_and_reproducible(tiny_ckpt):
    G, ck = sample.load_generator(tiny_ckpt)
    a = sample.generate_mels(G, ck, 3, seed=5)
    b = sample.generate_mels(G, ck, 3, seed=5, batch=2)        # batching does not change the loops
    assert a.shape == (3, N_MELS, N_FRAMES) and np.allclose(a, b, atol=1e-5)
    assert not np.allclose(a, sample.generate_mels(G, ck, 3, seed=6))
    assert abs(a.mean() - (-2.0)) < 1.5                          # around the stored band means


def test_sample_writes_every_promised_file_with_exact_durations(tiny_ckpt, tmp_path):
    out = tmp_path / "s"
    sample.main([str(tiny_ckpt), "-n", "3", "--out", str(out), "--repeat", "4"])
    for i in range(3):
        wav, sr = sf.read(out / f"loop_{i:04d}.wav")
        assert sr == SR and len(wav) == LOOP_SAMPLES              # exactly 2.000 s
        assert len(sf.read(out / f"loop_{i:04d}_x4.wav")[0]) == 4 * LOOP_SAMPLES
        assert np.load(out / f"loop_{i:04d}.npy").shape == (64, 200)
        assert (out / f"mel_{i:04d}.png").stat().st_size > 0
    assert (out / "grid.png").stat().st_size > 0 and (out / "index.html").exists()
    assert (out / "vocoder.txt").read_text().strip() == "griffin-lim"   # no MelGAN checkpoint: says so
    assert json.loads((out / "info.json").read_text())["vocoder"] == "griffin-lim"


def heard_mel(loop: np.ndarray) -> np.ndarray:
    """The mel of a loop as it is heard when repeated: the middle copy of the mel of three copies."""
    n = len(loop) // HOP
    return log_mel(np.tile(loop, 3))[:, n:2 * n]                                      # (64, n), periodic


def seam_error(loop: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """Mean |log10 mel error| of the repeated loop against `target` at the seam (the frames whose windows
    straddle it) and, for scale, the median error inside the loop."""
    err = np.abs(heard_mel(loop) - target).mean(axis=0)                                 # (T,)
    return float(np.r_[err[:3], err[-3:]].mean()), float(np.median(err))


def test_loops_are_seamless_when_repeated():
    """The periodic mel of a seamless demo loop, vocoded by sample.py's path: repeated, it sounds as the mel
    says at the seam as well as inside. The same mel vocoded without circular context (Griffin-Lim with
    log_mel's reflect padding) does not: the seam error is then about 4x the inside error.
    (The target is the periodic mel, not log_mel of one copy: log_mel reflect-pads the edges, as librosa.)"""
    target = heard_mel(demo.loops.render_loop("drum", "funk", seed=3))                   # (64, 200)
    loop = sample.vocode_loops(melgan.load_vocoder(None, loops="drum"), target[None])[0]  # (32000,)
    seam, inside = seam_error(loop, target)
    assert seam < 1.5 * inside + 0.02, (seam, inside)
    not_circular = np.asarray(griffinlim.griffin_lim(target, circular=False)).reshape(-1)   # (32000,)
    assert seam_error(not_circular, target)[0] > 1.5 * inside + 0.02


def test_tempo_export_stays_seamless():
    """Stretched to 90 BPM, a seamless loop stays seamless: its seam sounds like its inside."""
    slow = sample.change_tempo(demo.loops.render_loop("drum", "funk", seed=3), 90)
    assert len(slow) == round(LOOP_SAMPLES * 120 / 90)
    flux = np.abs(np.diff(heard_mel(slow), axis=1, append=heard_mel(slow)[:, :1])).mean(axis=0)  # (T,)
    seam_flux = flux[-1]                                                                # last frame -> first frame
    assert seam_flux < np.percentile(flux, 95), (seam_flux, np.percentile(flux, 95))


def test_tempo_at_120_bpm_is_the_bar_that_rubber_band_gives_at_ratio_one():
    """The shortcut at the native tempo changes no sample: Rubber Band's middle copy at ratio 1 is the bar."""
    bar = demo.loops.render_loop("drum", "funk", seed=3)
    stretched = sample.pyrb.time_stretch(sample.tile(bar.astype(np.float32), 3), SR, 1.0)[LOOP_SAMPLES:]
    np.testing.assert_array_equal(sample.change_tempo(bar, 120), stretched[:LOOP_SAMPLES])


def test_bpm_export_has_the_length_of_a_bar_at_that_tempo(tiny_ckpt, tmp_path):
    out = tmp_path / "s"
    sample.main([str(tiny_ckpt), "-n", "1", "--out", str(out), "--bpm", "90"])
    assert len(sf.read(out / "loop_0000.wav")[0]) == round(LOOP_SAMPLES * 120 / 90)


def test_missing_checkpoint_gives_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="latest.pt"):
        sample.load_generator(tmp_path)


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed (setup.sh installs it)")
def test_listening_page_players_load_audio_of_the_right_duration(tiny_ckpt, tmp_path):
    out = tmp_path / "page"
    sample.main([str(tiny_ckpt), "-n", "2", "--out", str(out)])
    dom = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'chromium'}", "--virtual-time-budget=10000", "--dump-dom",
         (out / "index.html").as_uri()],
        capture_output=True, text=True, timeout=120).stdout
    m = re.search(r'id="status" data-durations="([^"]*)"', dom)
    assert m, "the page's status line was not filled in"
    durations = json.loads(unescape(m.group(1)))
    assert len(durations) == 4                                  # 2 loops x (loop, x4 preview)
    for src, seconds in durations.items():
        expected = 8.0 if "_x4" in src else 2.0
        assert abs(seconds - expected) < 1e-3, (src, seconds)


def with_noise(G):
    """An untrained generator's noise strengths start at 0 (StyleGAN2): switch the noise on."""
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(1.0)
    return G


def test_random_noise_makes_two_loops_of_one_latent_differ_and_const_noise_does_not(tiny_ckpt):
    G, ck = sample.load_generator(tiny_ckpt)
    G = with_noise(G)
    z = torch.randn(1, G.cfg.z_dim).repeat(2, 1)                                        # (2, 32): one z twice
    const = sample.mels_from_z(G, ck, z, noise_mode="const")
    rand = sample.mels_from_z(G, ck, z, noise_mode="random")
    assert np.allclose(const[0], const[1]) and not np.allclose(rand[0], rand[1])


def test_random_noise_sets_are_reproducible_for_a_seed_and_leave_the_global_rng_alone(tiny_ckpt):
    G, ck = sample.load_generator(tiny_ckpt)
    G = with_noise(G)
    state = torch.random.get_rng_state()
    a = sample.generate_mels(G, ck, 3, seed=5, noise_mode="random")
    assert torch.equal(torch.random.get_rng_state(), state)
    assert np.array_equal(a, sample.generate_mels(G, ck, 3, seed=5, noise_mode="random"))
    assert not np.allclose(a, sample.generate_mels(G, ck, 3, seed=5, noise_mode="const"))


def test_quick_start_ends_with_wavs_and_a_page_of_generated_and_real_loops_through_the_trained_vocoder(
        tiny_ckpt, tiny_set, tmp_path, monkeypatch):
    """train.py's last step: generated loops (one bar and x4) and held-out real loops beside them, all through
    the data set's trained vocoder, which the page and vocoder.txt name."""
    import train_melgan
    import vocos
    torch.manual_seed(0)
    cfg = train_melgan.TrainConfig(loops="drum", data=str(tiny_set), fast=vocos.VocosConfig(dim=16, blocks=1))
    voc = tmp_path / "voc.pt"
    save_checkpoint(train_melgan.FastTrainer(cfg, torch.device("cpu")).generator_state(), voc)
    out = sample.finish_quick_start(tiny_ckpt, tiny_set, "drum", voc, n=2, n_real=1)
    assert out == tiny_ckpt / "samples"
    for name in ("0000", "0001", "real_0000"):
        assert len(sf.read(out / f"loop_{name}.wav")[0]) == LOOP_SAMPLES
        assert len(sf.read(out / f"loop_{name}_x4.wav")[0]) == 4 * LOOP_SAMPLES
    page = (out / "index.html").read_text()
    assert "real loops of the data set, through the same vocoder" in page and "loop_real_0000.wav" in page
    assert (out / "vocoder.txt").read_text().strip() == f"fast:{voc}"
    asked = []                                         # without a vocoder path: the data set's, via ensure_vocoder
    monkeypatch.setattr(train_melgan, "ensure_vocoder", lambda *a, **k: asked.append(a) or voc)
    sample.finish_quick_start(tiny_ckpt, tiny_set, "drum", n=1, n_real=0)
    assert asked == [("drum", tiny_set)]


def test_sample_vocoder_griffin_lim_by_name_and_real_loops_beside(tiny_ckpt, tiny_set, tmp_path):
    out = tmp_path / "s"
    ck = torch.load(tiny_ckpt / "latest.pt", weights_only=True)
    save_checkpoint({**ck, "config": {"data": str(tiny_set)}}, tmp_path / "latest.pt")
    sample.main([str(tmp_path / "latest.pt"), "-n", "1", "--out", str(out), "--vocoder", "griffin-lim", "--real", "1"])
    assert (out / "vocoder.txt").read_text().strip() == "griffin-lim"
    assert len(sf.read(out / "loop_real_0000_x4.wav")[0]) == 4 * LOOP_SAMPLES


def test_sampling_a_shipped_model_writes_under_home_never_into_the_repositorys_model_folder(tmp_path, monkeypatch):
    from plumbing import paths
    monkeypatch.setattr(paths, "REPO", tmp_path / "repo")
    monkeypatch.setenv(paths.HOME_ENV, str(tmp_path / "home"))
    shipped = tmp_path / "repo" / "pretrained" / "drum" / "latest.pt"
    assert sample.default_out(shipped) == tmp_path / "home" / "samples" / "pretrained_drum"
    run = tmp_path / "home" / "runs" / "drum_scnn_loop" / "latest.pt"
    assert sample.default_out(run) == run.parent / "samples"
