"""Spec of melgan.py: the MelGAN vocoder (docs/design.md §6) and the Griffin-Lim fallback.

Networks are built with tiny widths (same structure) so the whole file runs in seconds on a CPU.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import melgan as M
import preprocess as P
from checkpoint import CheckpointError

TINY = M.MelGANConfig(g_channels=16, d_channels=4, d_max_channels=16)


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def chirp(n: int = P.LOOP_SAMPLES, f0: float = 100.0, f1: float = 7000.0) -> np.ndarray:
    """A linear sweep over almost the whole band: every mel band gets energy at some time."""
    t = np.arange(n) / P.SR
    dur = n / P.SR
    return (0.5 * np.sin(2 * np.pi * (f0 * t + (f1 - f0) / (2 * dur) * t ** 2))).astype(np.float32)


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory):
    """A 3-loop data set in the preprocess.py layout: decaying noise hits and tones, periodic in 2 s."""
    d = tmp_path_factory.mktemp("loops")
    rng = np.random.default_rng(0)
    n = np.arange(P.LOOP_SAMPLES)
    rows = []
    for i in range(3):
        hits = rng.standard_normal(P.LOOP_SAMPLES) * np.exp(-(n % 8000) / (200 + 300 * i))
        tone = np.sin(2 * np.pi * (110 * (i + 1)) * n / P.SR)                   # whole cycles in 2 s
        P.save_loop(d, f"l{i}", (0.4 * hits + 0.3 * tone).astype(np.float32))
        rows.append({"id": f"l{i}", "source": "synthetic", "bar": 0, "bpm": 120, "genre": f"g{i % 2}"})
    P.finalize_dataset(d, rows, [])
    return d


def tiny_train_config(data_dir) -> M.TrainConfig:
    return M.TrainConfig(loops="drum", data=str(data_dir), batch=2, segment=8 * P.HOP, model=TINY)


# ---------------------------------------------------------------------------------------------
# Generator
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("t", [P.N_FRAMES, 7])
def test_generator_outputs_exactly_160_samples_per_frame(t):
    g = M.Generator(TINY)
    assert g(torch.randn(2, P.N_MELS, t)).shape == (2, 1, t * P.HOP)
    if t == P.N_FRAMES:
        assert t * P.HOP == P.LOOP_SAMPLES == 32000


@pytest.mark.parametrize("r", [2, 4, 5, 8])
def test_transposed_conv_padding_multiplies_length_exactly_by_stride(r):
    pad, out_pad = M.upsample_padding(r)
    conv = torch.nn.ConvTranspose1d(1, 1, kernel_size=2 * r, stride=r, padding=pad, output_padding=out_pad)
    assert conv(torch.randn(1, 1, 13)).shape[-1] == 13 * r


def test_generator_hop_t_is_driven_by_frames_centred_on_t():
    """Frame-to-sample alignment: the output hop [160 t, 160 t + 160) depends on a window of frames
    symmetric around t (so circular vocoding can crop sample-exactly), narrower than CONTEXT_FRAMES."""
    g = M.Generator(TINY)
    x = torch.randn(1, P.N_MELS, 60, requires_grad=True)
    g(x)[0, 0, 30 * P.HOP: 31 * P.HOP].sum().backward()
    used = (x.grad[0].abs().sum(0) > 0).nonzero().flatten()
    lo, hi = used.min().item(), used.max().item()
    assert 30 - lo == hi - 30
    assert hi - 30 <= M.CONTEXT_FRAMES


def test_full_size_generator_starts_at_512_channels_and_halves():
    g = M.Generator(M.MelGANConfig())
    ups = [m for m in g.modules() if isinstance(m, torch.nn.ConvTranspose1d)]
    assert [(m.in_channels, m.out_channels, m.stride[0], m.kernel_size[0]) for m in ups] == \
        [(512, 256, 5, 10), (256, 128, 4, 8), (128, 64, 4, 8), (64, 32, 2, 4)]
    res = [m for m in g.modules() if isinstance(m, M.ResBlock)]
    assert [r.block[2].dilation[0] for r in res] == [1, 3, 9] * 4
    assert all(hasattr(m, "parametrizations") for m in g.modules()
               if isinstance(m, (torch.nn.Conv1d, torch.nn.ConvTranspose1d)))            # weight norm


def test_config_rejects_ratios_that_do_not_make_the_hop():
    with pytest.raises(ValueError, match="multiply to the hop 160"):
        M.MelGANConfig(ratios=(8, 8, 2, 2))


# ---------------------------------------------------------------------------------------------
# Discriminator and losses
# ---------------------------------------------------------------------------------------------
def test_discriminator_returns_three_scales_of_feature_maps_with_logits_last():
    d = M.Discriminator(TINY)
    out = d(torch.randn(2, 1, 8000))
    assert len(out) == 3
    for k, scale in enumerate(out):
        assert len(scale) == 7                                    # 15-tap, 4 grouped, 5-tap, logits
        assert scale[0].shape[-1] == 8000 // 2 ** k               # each scale sees audio pooled by 2
        assert scale[-1].shape[:2] == (2, 1)


def test_full_size_discriminator_uses_melgans_grouped_convs():
    s = M.Discriminator(M.MelGANConfig()).scales[0]
    convs = [m for m in s.modules() if isinstance(m, torch.nn.Conv1d)]
    assert [(c.out_channels, c.kernel_size[0], c.stride[0], c.groups) for c in convs] == [
        (16, 15, 1, 1), (64, 41, 4, 4), (256, 41, 4, 16), (1024, 41, 4, 64), (1024, 41, 4, 256),
        (1024, 5, 1, 1), (1, 3, 1, 1)]


def test_hinge_losses_are_zero_when_d_is_confidently_right():
    real = [[torch.zeros(1), torch.full((4,), 2.0)]] * 3
    fake = [[torch.zeros(1), torch.full((4,), -2.0)]] * 3
    assert M.d_hinge(real, fake).item() == 0.0
    assert M.g_hinge(fake).item() == pytest.approx(6.0)            # -mean(-2) per scale, 3 scales
    assert M.feature_matching(real, fake).item() == 0.0            # equal features, logits excluded


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------
def test_random_segments_wrap_around_the_periodic_loop():
    loops = torch.arange(10.0)[None].repeat(2, 1)                 # (2, 10)
    seg = M.random_segments(loops, batch=64, segment=7, gen=torch.Generator().manual_seed(0))
    assert seg.shape == (64, 7)
    assert torch.all((seg[:, 1:] - seg[:, :-1]) % 10 == 1)          # consecutive samples, mod the period


def test_one_training_step_gives_finite_losses_and_changes_both_networks(tiny_set):
    torch.manual_seed(0)
    t = M.Trainer(tiny_train_config(tiny_set), torch.device("cpu"))
    g0 = [p.detach().clone() for p in t.G.parameters()]
    d0 = [p.detach().clone() for p in t.D.parameters()]
    audio = M.load_loop_audio(tiny_set)
    assert audio.shape == (3, P.LOOP_SAMPLES)
    losses = t.train_step(M.random_segments(audio, 2, 8 * P.HOP, torch.Generator().manual_seed(0)))
    assert set(losses) == {"d", "g_adv", "fm", "mel_l1"}
    assert all(np.isfinite(v) for v in losses.values())
    assert any(not torch.equal(a, b) for a, b in zip(g0, t.G.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(d0, t.D.parameters()))
    assert t.step == 1


def test_non_finite_loss_stops_before_touching_the_weights(tiny_set):
    t = M.Trainer(tiny_train_config(tiny_set), torch.device("cpu"))
    g0 = [p.detach().clone() for p in t.G.parameters()]
    with pytest.raises(FloatingPointError, match="not|nan"):
        t.train_step(torch.full((2, 8 * P.HOP), float("nan")))
    assert all(torch.equal(a, b) for a, b in zip(g0, t.G.parameters()))
    assert t.step == 0


def test_checkpoint_resume_continues_the_step_count(tiny_set, tmp_path):
    out = tmp_path / "melgan_drum.pt"
    M.train(tiny_train_config(tiny_set), out, steps=2, minutes=None, resume=False, save_every=1,
            device="cpu", progress=False)
    assert M.load_checkpoint(out)["step"] == 2
    with pytest.raises(SystemExit, match="--resume"):               # never silently overwrite a vocoder
        M.train(tiny_train_config(tiny_set), out, steps=3, minutes=None, resume=False, device="cpu",
                progress=False)
    t = M.train(tiny_train_config(tiny_set), out, steps=3, minutes=None, resume=True, device="cpu",
                progress=False)
    assert t.step == 3
    ckpt = M.load_checkpoint(out)
    assert ckpt["step"] == 3 and ckpt["config"]["g_channels"] == TINY.g_channels
    assert {"G", "D", "opt_g", "opt_d"} <= set(ckpt)


def test_keyboard_interrupt_saves_a_checkpoint(tiny_set, tmp_path, monkeypatch):
    """Ctrl-C during the first step: that step is finished, saved, and training stops."""
    import os
    import signal
    out = tmp_path / "m.pt"
    real_step = M.Trainer.train_step

    def ctrl_c_during_first_step(self, audio):
        if self.step == 0:
            os.kill(os.getpid(), signal.SIGINT)          # as if the user pressed Ctrl-C here
        return real_step(self, audio)
    monkeypatch.setattr(M.Trainer, "train_step", ctrl_c_during_first_step)
    M.train(tiny_train_config(tiny_set), out, steps=10, minutes=None, resume=False, device="cpu",
            progress=False)
    assert M.load_checkpoint(out)["step"] == 1


def test_corrupt_checkpoint_gives_a_clear_error_naming_the_file(tiny_set, tmp_path, capsys):
    bad = tmp_path / "melgan_drum.pt"
    bad.write_bytes(b"PK\x03\x04 this is not a checkpoint")
    with pytest.raises(CheckpointError, match="melgan_drum.pt"):
        M.load_vocoder(bad)
    with pytest.raises(SystemExit, match="melgan_drum.pt.*not a readable"):
        M.main(["--loops", "drum", "--data", str(tiny_set), "--out", str(bad), "--resume", "--steps", "1",
                "--g-channels", "16", "--d-max-channels", "16"])


def test_missing_data_set_gives_a_clear_error(tmp_path):
    with pytest.raises(SystemExit, match="no manifest.csv"):
        M.main(["--loops", "drum", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x.pt")])


# ---------------------------------------------------------------------------------------------
# Vocoding
# ---------------------------------------------------------------------------------------------
def tiny_vocoder(circular: bool = True) -> M.MelGANVocoder:
    torch.manual_seed(0)
    return M.MelGANVocoder(M.Generator(TINY), name="melgan:test", device="cpu", circular=circular)


def test_vocode_gives_exactly_32000_samples_per_loop_in_the_input_kind():
    v = tiny_vocoder()
    mel = P.log_mel(chirp())                                                     # (64, 200) numpy
    audio = M.vocode(mel, v)
    assert isinstance(audio, np.ndarray) and audio.shape == (32000,) and audio.dtype == np.float32
    batch = M.vocode(torch.from_numpy(np.stack([mel, mel, mel])), v)             # (3, 64, 200) torch
    assert isinstance(batch, torch.Tensor) and batch.shape == (3, 32000)


def test_circular_vocoding_equals_the_middle_of_the_loop_played_three_times():
    """Seamless looping: with the loop's own frames wrapped around it, the vocoded loop is exactly what
    the generator makes in the middle of a long repetition of that loop."""
    mel = torch.from_numpy(P.log_mel(chirp()))                                    # (64, 200)
    seamless = tiny_vocoder(circular=True)(mel)
    tiled = tiny_vocoder(circular=False)(mel.repeat(1, 3))[P.LOOP_SAMPLES: 2 * P.LOOP_SAMPLES]
    torch.testing.assert_close(seamless, tiled, rtol=1e-4, atol=1e-5)


def test_vocode_rejects_a_mel_of_the_wrong_layout():
    with pytest.raises(ValueError, match=r"\(64, T\)"):
        M.vocode(np.zeros((200, 64), np.float32), tiny_vocoder())


def test_load_vocoder_without_checkpoint_falls_back_to_griffin_lim_and_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)                                                  # no checkpoints/ here
    v = M.load_vocoder(None, loops="drum")
    assert v.name == "griffin-lim"
    err = capsys.readouterr().err
    assert "Griffin-Lim" in err and "quality is limited" in err and "python melgan.py --loops drum" in err


def test_load_vocoder_finds_the_default_checkpoint_and_reproduces_its_generator(tiny_set, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    trainer = M.Trainer(tiny_train_config(tiny_set), torch.device("cpu"))
    trainer.save(M.default_checkpoint("drum"))
    v = M.load_vocoder(None, loops="drum", device="cpu")
    assert v.name == "melgan:checkpoints/melgan_drum.pt"
    mel = torch.from_numpy(P.log_mel(chirp()))[None]                              # (1, 64, 200)
    with torch.no_grad():
        want = trainer.G.eval()(mel)[0, 0]
    torch.testing.assert_close(M.MelGANVocoder(v.generator, "x", "cpu", circular=False)(mel)[0], want)


def test_load_vocoder_with_a_missing_path_is_an_error_not_a_fallback(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint"):
        M.load_vocoder(tmp_path / "missing.pt")


# ---------------------------------------------------------------------------------------------
# Griffin-Lim
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("circular", [False, True])
def test_inverse_stft_inverts_the_front_end_stft_exactly(circular):
    x = torch.randn(2, 1600, dtype=torch.float64).float()
    idx = M._pad_index(1600, circular, "cpu")
    w = torch.hann_window(P.N_FFT)
    torch.testing.assert_close(M._istft(M._stft(x, idx, w), idx, w, 1600), x, rtol=1e-4, atol=1e-4)


def test_reflect_padding_index_is_log_mels_padding():
    x = torch.randn(1, 1000)
    ref = F.pad(x[:, None], (P.PAD, P.PAD), mode="reflect")[:, 0]
    assert torch.equal(x[:, M._pad_index(1000, False, "cpu")], ref)


def test_mel_inversion_is_non_negative_and_reproduces_the_mel():
    mel_lin = torch.from_numpy(10 ** P.log_mel(chirp()))[None]                   # (1, 64, 200)
    mag = M.mel_to_magnitude(mel_lin)
    assert mag.shape == (1, P.N_FFT // 2 + 1, P.N_FRAMES) and (mag >= 0).all()
    basis = torch.from_numpy(P.mel_filterbank())
    err = (torch.log10((basis @ mag).clamp_min(P.LOG_FLOOR)) - torch.log10(mel_lin)).abs().mean()
    assert err < 0.05


@pytest.mark.parametrize("circular", [False, True])
def test_griffin_lim_of_a_chirp_reproduces_its_mel(circular):
    """Measured: mean |error| in log10 = 0.08 (reflect) / 0.075 (circular) with 64 iterations."""
    mel = P.log_mel(chirp())                                                     # (64, 200)
    audio = M.griffin_lim(mel, circular=circular)
    assert audio.shape == (32000,)
    err = np.abs(P.log_mel(audio) - mel).mean()
    assert err < 0.3, err


def test_griffin_lim_is_deterministic_and_batched():
    mel = P.log_mel(chirp())[None, :, :40]                                       # (1, 64, 40)
    a = M.griffin_lim(np.concatenate([mel, mel]), n_iter=8)
    b = M.griffin_lim(mel, n_iter=8)
    assert a.shape == (2, 40 * P.HOP)
    np.testing.assert_array_equal(a[0], a[1])
    np.testing.assert_allclose(a[0], b[0], atol=1e-4)   # batching changes only rounding


def test_griffin_lim_vocoder_is_what_vocode_uses_without_a_checkpoint(capsys):
    M._fallback = None
    audio = M.vocode(P.log_mel(chirp())[:, :20])
    assert audio.shape == (20 * P.HOP,)
    assert M._fallback.name == "griffin-lim"
    assert "Griffin-Lim" in capsys.readouterr().err
