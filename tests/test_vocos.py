"""Spec of the fast vocoder (vocos.py) and its training (train_melgan.py --arch fast): frame alignment and exact
lengths, seamless circular vocoding, the reconstruction distances against hand-computed values, a short run
that must lower its multi-resolution STFT loss, resume, the held-out split and the once-per-data-set cache.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

import melgan as M
import train_melgan as T
import vocos as V
from mel import HOP, LOOP_SAMPLES, N_FRAMES, N_MELS, log_mel
from plumbing.checkpoint import load_checkpoint
from vocoder_fixtures import (TINY_FAST, chirp, no_repo_vocoders, one_thread, tiny_set,   # noqa: F401  (fixtures)
                              tiny_train_config)


# ---------------------------------------------------------------------------------------------
# Generator: lengths, alignment, seamless loops
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("t", [N_FRAMES, 7])
def test_generator_outputs_exactly_160_samples_per_frame(t):
    g = V.VocosGenerator(TINY_FAST)
    assert g(torch.randn(2, N_MELS, t)).shape == (2, 1, t * HOP)


def test_frame_istft_inverts_frames_laid_on_the_front_ends_grid_exactly():
    """Frames whose window is centred on sample 160 t + 80 (where the front end centres mel frame t) come
    back as the very signal: the synthesis grid is the mel's grid, not torch.istft's (half a hop early)."""
    x = torch.randn(2, 40 * HOP, dtype=torch.float64).float()
    lead = V.N_FFT // 2 - HOP // 2                                                    # 240
    padded = torch.cat([x[:, -lead:], x, x[:, :lead]], dim=1)                         # circular, (2, N + 480)
    spec = torch.stft(padded, V.N_FFT, HOP, window=torch.hann_window(V.N_FFT), center=False, return_complex=True)
    assert spec.shape[-1] == 40                                                       # one frame per mel frame
    torch.testing.assert_close(V.frame_istft(spec, V.N_FFT), x, rtol=1e-4, atol=1e-4)


def test_output_hop_t_is_driven_by_frames_centred_on_t_within_the_context():
    g = V.VocosGenerator(TINY_FAST)
    x = torch.randn(1, N_MELS, 60, requires_grad=True)
    g(x)[0, 0, 30 * HOP: 31 * HOP].sum().backward()
    used = (x.grad[0].abs().sum(0) > 0).nonzero().flatten()
    lo, hi = used.min().item(), used.max().item()
    assert 30 - lo == hi - 30 <= g.context_frames


def test_circular_vocoding_equals_the_middle_of_the_loop_played_three_times():
    torch.manual_seed(0)
    g = V.VocosGenerator(TINY_FAST)
    mel = torch.from_numpy(log_mel(chirp()))                                          # (64, 200)
    seamless = M.MelGANVocoder(g, "fast:test", "cpu", circular=True)(mel)
    tiled = M.MelGANVocoder(g, "fast:test", "cpu", circular=False)(mel.repeat(1, 3))[LOOP_SAMPLES: 2 * LOOP_SAMPLES]
    assert seamless.shape == (LOOP_SAMPLES,)
    torch.testing.assert_close(seamless, tiled, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# Distances (the losses and the benchmark's columns)
# ---------------------------------------------------------------------------------------------
def test_spectral_convergence_and_log_magnitude_l1_match_hand_computed_values():
    real = torch.tensor([[[3.0, 4.0]]])                                               # ||real|| = 5
    assert V.spectral_convergence(torch.tensor([[[3.0, 0.0]]]), real).item() == pytest.approx(0.8)   # |(0, 4)| / 5
    assert V.spectral_convergence(real, real).item() == 0.0
    e = torch.tensor([[[np.e, np.e ** 3]]])
    assert V.log_magnitude_l1(torch.tensor([[[1.0, np.e]]]), e).item() == pytest.approx(1.5)        # (1 + 2) / 2


def test_identical_audio_is_at_distance_zero_and_silence_is_far():
    x = torch.from_numpy(chirp(8000))[None]                                           # (1, 8000)
    sc, mag = V.multi_resolution_stft(x, x)
    assert sc.item() == 0.0 and mag.item() == 0.0
    sc, mag = V.multi_resolution_stft(torch.zeros_like(x), x)
    assert sc.item() == pytest.approx(1.0) and mag.item() > 1.0


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------
def test_a_short_run_on_a_fixed_batch_lowers_the_multi_resolution_stft_loss(tiny_set):
    torch.manual_seed(0)
    cfg = tiny_train_config(tiny_set, arch="fast")
    cfg.lr = 3e-3
    t = T.FastTrainer(cfg, torch.device("cpu"))
    batch = T.random_segments(T.load_loop_audio(tiny_set), 2, 16 * HOP, torch.Generator().manual_seed(0))

    def stft_loss():
        with torch.no_grad():
            sc, mag = V.multi_resolution_stft(t.G(log_mel(batch))[:, 0], batch)
        return (sc + mag).mean().item()
    before = stft_loss()
    for _ in range(40):
        losses = t.train_step(batch)
    assert set(losses) == {"sc", "mag", "mel_l1"}                                     # no adversary by default
    assert stft_loss() < 0.75 * before, (before, stft_loss())


def test_the_spectrogram_discriminator_joins_after_gan_after_minutes(tiny_set):
    cfg = tiny_train_config(tiny_set, arch="fast")
    cfg.gan_after = 0.0
    t = T.FastTrainer(cfg, torch.device("cpu"))
    d0 = [p.detach().clone() for p in t.D.parameters()]
    losses = t.train_step(T.random_segments(T.load_loop_audio(tiny_set), 2, 8 * HOP, torch.Generator()))
    assert {"d", "g_adv", "fm"} <= set(losses) and all(np.isfinite(v) for v in losses.values())
    assert any(not torch.equal(a, b) for a, b in zip(d0, t.D.parameters()))


def test_fast_checkpoint_resumes_and_loads_as_a_vocoder(tiny_set, tmp_path):
    out = tmp_path / "fast.pt"
    T.train_melgan(tiny_train_config(tiny_set, "fast"), out, steps=2, minutes=None, resume=False, device="cpu",
                   progress=False, snapshot_every=None)
    cfg = tiny_train_config(tiny_set, "melgan")                        # the checkpoint decides the architecture
    t = T.train_melgan(cfg, out, steps=3, minutes=None, resume=True, device="cpu", progress=False)
    assert t.arch == "fast" and t.step == 3
    ckpt = load_checkpoint(out)
    assert ckpt["arch"] == "fast" and ckpt["loops"] == "drum" and ckpt["frontend"] == M.frontend()
    assert ckpt["config"]["dim"] == TINY_FAST.dim and {"D", "opt_g", "opt_d", "minutes"} <= set(ckpt)
    v = M.load_vocoder(out, loops="drum", device="cpu")
    assert v.name == f"fast:{out}" and v(log_mel(chirp())).shape == (LOOP_SAMPLES,)


def test_timed_run_writes_a_log_and_loadable_snapshots(tiny_set, tmp_path):
    out = tmp_path / "v.pt"
    T.train_melgan(tiny_train_config(tiny_set, "fast"), out, steps=None, minutes=0.02, resume=False,
                   device="cpu", progress=False, snapshot_every=0.005)
    log, snaps = T.log_paths(out)
    from experiments.bench_vocoder import read_log
    _, points = read_log(log)
    assert points[0][0] == 0.0 and len(points) >= 2 and all(p.is_file() for _, p in points)
    assert M.load_vocoder(points[-1][1], loops="drum").name.startswith("fast:")


def test_ensure_vocoder_trains_once_per_data_set_and_announces_it(tiny_set, monkeypatch, capsys):
    real_train = T.train_melgan

    def tiny_train(cfg, out, *args, **kwargs):
        cfg.fast, cfg.batch, cfg.segment = TINY_FAST, 2, 8 * HOP
        return real_train(cfg, out, *args, **{**kwargs, "steps": 1})
    monkeypatch.setattr(T, "train_melgan", tiny_train)
    path = T.ensure_vocoder("drum", tiny_set, minutes=1, device="cpu")
    assert path == M.default_checkpoint("drum", tiny_set) and path.is_file()
    assert "training the fast vocoder" in capsys.readouterr().out
    monkeypatch.setattr(T, "train_melgan", lambda *a, **k: pytest.fail("trained twice"))
    assert T.ensure_vocoder("drum", tiny_set, device="cpu") == path
    assert M.load_vocoder(None, loops="drum", data_dir=tiny_set).name == f"fast:{path}"


def test_train_melgan_trains_the_fast_vocoder_on_a_gpu_too_unless_melgan_is_asked_for(tiny_set, tmp_path, monkeypatch,
                                                                                        capsys):
    asked = []
    monkeypatch.setattr(T, "train_melgan", lambda cfg, *a, **k: asked.append(cfg.arch))     # no CUDA needed
    argv = ["--loops", "drum", "--data", str(tiny_set), "--out", str(tmp_path / "v.pt"), "--device", "cuda"]
    T.main(argv)
    T.main(argv + ["--arch", "melgan"])
    assert asked == ["fast", "melgan"]
    first = capsys.readouterr().out.splitlines()[0]
    assert "fast vocoder" in first and "on cuda" in first and "--arch melgan" in first


def test_first_line_announces_the_fast_vocoder_on_a_cpu(tiny_set, tmp_path, capsys):
    T.main(["--loops", "drum", "--data", str(tiny_set), "--out", str(tmp_path / "v.pt"), "--steps", "1",
            "--dim", "16", "--blocks", "1", "--batch", "2", "--segment", "1280", "--device", "cpu",
            "--progress", "no", "--snapshot-every", "0"])
    first = capsys.readouterr().out.splitlines()[0]
    assert "fast vocoder" in first and "cpu" in first and "--arch melgan" in first
