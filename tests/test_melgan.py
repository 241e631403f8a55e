"""Spec of melgan.py: the MelGAN networks (docs/design.md §6) and the vocoder interface -- loading either
architecture from $PJLOOP_HOME/checkpoints whatever the current directory, refusing a checkpoint for another front
end, sample rate or kind in one line, the announced Griffin-Lim fallback. Training is tests/test_train_melgan.py
(the fast vocoder: tests/test_vocos.py); Griffin-Lim itself tests/test_griffinlim.py.

Networks are built with tiny widths (same structure) so the whole file runs in seconds on a CPU.
"""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

import melgan as M
import train_melgan as T
import dataset
from dataset import finalize_dataset
from plumbing import paths
from plumbing.files import read_csv
from plumbing.checkpoint import CheckpointError, save_checkpoint
from mel import HOP, LOOP_SAMPLES, N_FRAMES, N_MELS, log_mel
from vocoder_fixtures import (TINY, chirp, no_repo_vocoders, one_thread, tiny_set,   # noqa: F401  (fixtures)
                              tiny_train_config)


# ---------------------------------------------------------------------------------------------
# Generator
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("t", [N_FRAMES, 7])
def test_generator_outputs_exactly_160_samples_per_frame(t):
    g = M.MelGANGenerator(TINY)
    assert g(torch.randn(2, N_MELS, t)).shape == (2, 1, t * HOP)
    if t == N_FRAMES:
        assert t * HOP == LOOP_SAMPLES == 32000


@pytest.mark.parametrize("r", [2, 4, 5, 8])
def test_transposed_conv_padding_multiplies_length_exactly_by_stride(r):
    pad, out_pad = M.upsample_padding(r)
    conv = torch.nn.ConvTranspose1d(1, 1, kernel_size=2 * r, stride=r, padding=pad, output_padding=out_pad)
    assert conv(torch.randn(1, 1, 13)).shape[-1] == 13 * r


def test_generator_hop_t_is_driven_by_frames_centred_on_t():
    """Frame-to-sample alignment: the output hop [160 t, 160 t + 160) depends on a window of frames
    symmetric around t (so circular vocoding can crop sample-exactly), narrower than CONTEXT_FRAMES."""
    g = M.MelGANGenerator(TINY)
    x = torch.randn(1, N_MELS, 60, requires_grad=True)
    g(x)[0, 0, 30 * HOP: 31 * HOP].sum().backward()
    used = (x.grad[0].abs().sum(0) > 0).nonzero().flatten()
    lo, hi = used.min().item(), used.max().item()
    assert 30 - lo == hi - 30
    assert hi - 30 <= M.CONTEXT_FRAMES


def test_full_size_generator_starts_at_512_channels_and_halves():
    g = M.MelGANGenerator(M.MelGANConfig())
    ups = [m for m in g.modules() if isinstance(m, torch.nn.ConvTranspose1d)]
    assert [(m.in_channels, m.out_channels, m.stride[0], m.kernel_size[0]) for m in ups] == \
        [(512, 256, 5, 10), (256, 128, 4, 8), (128, 64, 4, 8), (64, 32, 2, 4)]
    res = [m for m in g.modules() if isinstance(m, M.MelGANResBlock)]
    assert [r.block[2].dilation[0] for r in res] == [1, 3, 9] * 4
    assert all(hasattr(m, "parametrizations") for m in g.modules()
               if isinstance(m, (torch.nn.Conv1d, torch.nn.ConvTranspose1d)))            # weight norm


def test_config_rejects_ratios_that_do_not_make_the_hop():
    with pytest.raises(ValueError, match="multiply to the hop 160"):
        M.MelGANConfig(ratios=(8, 8, 2, 2))


# ---------------------------------------------------------------------------------------------
# Discriminator
# ---------------------------------------------------------------------------------------------
def test_discriminator_returns_three_scales_of_feature_maps_with_logits_last():
    d = M.MelGANDiscriminator(TINY)
    out = d(torch.randn(2, 1, 8000))
    assert len(out) == 3
    for k, scale in enumerate(out):
        assert len(scale) == 7                                    # 15-tap, 4 grouped, 5-tap, logits
        assert scale[0].shape[-1] == 8000 // 2 ** k               # each scale sees audio pooled by 2
        assert scale[-1].shape[:2] == (2, 1)


def test_full_size_discriminator_uses_melgans_grouped_convs():
    s = M.MelGANDiscriminator(M.MelGANConfig()).scales[0]
    convs = [m for m in s.modules() if isinstance(m, torch.nn.Conv1d)]
    assert [(c.out_channels, c.kernel_size[0], c.stride[0], c.groups) for c in convs] == [
        (16, 15, 1, 1), (64, 41, 4, 4), (256, 41, 4, 16), (1024, 41, 4, 64), (1024, 41, 4, 256),
        (1024, 5, 1, 1), (1, 3, 1, 1)]


# ---------------------------------------------------------------------------------------------
# Vocoding
# ---------------------------------------------------------------------------------------------
def tiny_vocoder(circular: bool = True) -> M.MelGANVocoder:
    torch.manual_seed(0)
    return M.MelGANVocoder(M.MelGANGenerator(TINY), name="melgan:test", device="cpu", circular=circular)


def test_a_vocoder_gives_exactly_32000_samples_per_loop_in_the_input_kind():
    v = tiny_vocoder()
    mel = log_mel(chirp())                                                     # (64, 200) numpy
    audio = v(mel)
    assert isinstance(audio, np.ndarray) and audio.shape == (32000,) and audio.dtype == np.float32
    batch = v(torch.from_numpy(np.stack([mel, mel, mel])))                      # (3, 64, 200) torch
    assert isinstance(batch, torch.Tensor) and batch.shape == (3, 32000)


def test_a_blob_far_above_any_sound_is_voiced_as_the_loudest_band_a_signal_can_have():
    """A generator's unbounded 'blob' (log10 mel in the thousands) reaches the vocoder as mel.MEL_CEILING."""
    from mel import MEL_CEILING
    mel = log_mel(chirp())                                                     # (64, 200)
    blob, capped = mel.copy(), mel.copy()
    blob[:8, 20:40], capped[:8, 20:40] = 6000.0, MEL_CEILING
    v = tiny_vocoder()
    assert np.array_equal(v(blob), v(capped)) and np.isfinite(v(blob)).all()


def test_circular_vocoding_equals_the_middle_of_the_loop_played_three_times():
    """Seamless looping: with the loop's own frames wrapped around it, the vocoded loop is exactly what
    the generator makes in the middle of a long repetition of that loop."""
    mel = torch.from_numpy(log_mel(chirp()))                                    # (64, 200)
    seamless = tiny_vocoder(circular=True)(mel)
    tiled = tiny_vocoder(circular=False)(mel.repeat(1, 3))[LOOP_SAMPLES: 2 * LOOP_SAMPLES]
    torch.testing.assert_close(seamless, tiled, rtol=1e-4, atol=1e-5)


def test_a_vocoder_rejects_a_mel_of_the_wrong_layout():
    with pytest.raises(ValueError, match=r"\(64, T\)"):
        tiny_vocoder()(np.zeros((200, 64), np.float32))


def test_load_vocoder_without_checkpoint_falls_back_to_griffin_lim_and_says_so(capsys):
    v = M.load_vocoder(None, loops="drum")                                       # no_repo_vocoders: none there
    assert v.name == "griffin-lim"
    err = capsys.readouterr().err
    assert "Griffin-Lim" in err and "quality is limited" in err and "python train_melgan.py --loops drum" in err


def test_load_vocoder_finds_the_data_sets_checkpoint_from_any_directory(tiny_set, tmp_path, monkeypatch):
    trainer = T.MelGANTrainer(tiny_train_config(tiny_set), torch.device("cpu"))
    path = M.default_checkpoint("drum", tiny_set)
    trainer.save(path)
    monkeypatch.chdir(tmp_path)                                                   # not the repository
    assert M.default_checkpoint("drum", tiny_set) == path and path.is_absolute()
    v = M.load_vocoder(None, loops="drum", device="cpu", data_dir=tiny_set)
    assert v.name == f"melgan:{path}"
    mel = torch.from_numpy(log_mel(chirp()))[None]                              # (1, 64, 200)
    with torch.no_grad():
        want = trainer.G.eval()(mel)[0, 0]
    torch.testing.assert_close(M.MelGANVocoder(v.generator, "x", "cpu", circular=False)(mel)[0], want)


def test_default_checkpoint_lives_under_pjloop_home_and_names_the_data_sets_fingerprint(tiny_set, tmp_path,
                                                                                         monkeypatch):
    name = f"vocoder_drum_{tiny_set.name}_{dataset.manifest_hash(tiny_set)}.pt"
    monkeypatch.delenv(paths.HOME_ENV)
    assert M.default_checkpoint("drum", tiny_set) == dataset.REPO / "checkpoints" / name
    monkeypatch.setenv(paths.HOME_ENV, str(tmp_path / "elsewhere"))
    monkeypatch.chdir(tmp_path)
    assert M.default_checkpoint("drum", tiny_set) == tmp_path / "elsewhere" / "checkpoints" / name


def test_two_data_sets_in_folders_of_the_same_name_do_not_share_a_vocoder(tiny_set, tmp_path):
    a, b = tmp_path / "a" / "my_loops", tmp_path / "b" / "my_loops"
    shutil.copytree(tiny_set, a)
    shutil.copytree(tiny_set, b)
    rows = read_csv(b / "manifest.csv")
    finalize_dataset(b, rows[:2], [])                                             # b: other loops, same name
    assert M.default_checkpoint("drum", a) != M.default_checkpoint("drum", b)
    T.MelGANTrainer(tiny_train_config(a), torch.device("cpu")).save(M.default_checkpoint("drum", a))
    assert M.load_vocoder(None, loops="drum", data_dir=a).name.startswith("melgan:")
    assert M.load_vocoder(None, loops="drum", data_dir=b).name == "griffin-lim"   # a's vocoder is not b's


def test_a_data_set_that_is_not_there_has_no_vocoder_and_gets_griffin_lim(tmp_path, capsys):
    assert M.trained_default("drum", tmp_path / "absent") is None
    assert M.load_vocoder(None, loops="drum", data_dir=tmp_path / "absent").name == "griffin-lim"
    assert "no trained vocoder for" in capsys.readouterr().err


@pytest.mark.parametrize("change, message", [
    ({"frontend": {**M.frontend(), "sr": 22050}}, "another sample rate .*sr 22050 here 16000"),
    ({"frontend": {**M.frontend(), "n_mels": 80}}, "another mel front end .*n_mels 80 here 64"),
    ({"loops": "synth"}, "for synth loops, not drum loops"),
    ({"kind": "scnn_loop"}, "'scnn_loop' checkpoint, not a vocoder"),
])
def test_a_vocoder_for_another_front_end_rate_or_kind_is_refused_in_one_line(tiny_set, tmp_path, change, message):
    state = {**T.MelGANTrainer(tiny_train_config(tiny_set), torch.device("cpu")).generator_state(), **change}
    path = tmp_path / "v.pt"
    save_checkpoint(state, path)
    with pytest.raises(CheckpointError, match=message) as e:
        M.load_vocoder(path, loops="drum")
    assert "\n" not in str(e.value)


def test_griffin_lim_can_be_asked_for_by_name():
    assert M.load_vocoder("griffin-lim", loops="drum").name == "griffin-lim"


def test_load_vocoder_with_a_missing_path_is_an_error_not_a_fallback(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint"):
        M.load_vocoder(tmp_path / "missing.pt")
