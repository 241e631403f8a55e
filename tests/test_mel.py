"""Spec of mel.py: the one mel front end (docs/design.md §1), its band statistics, and the two layouts
of a mel: raw (F=64, T=200) log10 on disk, standardised (B, 1, T=200, F=64) inside the GAN."""
from __future__ import annotations


import librosa
import numpy as np
import pytest
import torch

from mel import (LOOP_SAMPLES, N_FRAMES, N_MELS, PAD, SR, STD_FLOOR, band_stats, band_stats_of_files,
                 destandardise, from_gan, log_mel, standardise, to_gan)


def test_log_mel_of_a_two_second_loop_is_64_bands_by_200_frames_and_matches_librosa():
    rng = np.random.default_rng(0)
    t = np.arange(LOOP_SAMPLES) / SR
    x = (0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(LOOP_SAMPLES)).astype(np.float32)
    ours = log_mel(x)
    assert ours.shape == (64, 200) and ours.dtype == np.float32

    # The straightforward reference: reflect-pad by (1024 - 160) / 2, un-centred STFT, Slaney mel.
    padded = np.pad(x.astype(np.float64), (PAD, PAD), mode="reflect")
    spec = np.abs(librosa.stft(padded, n_fft=1024, hop_length=160, win_length=1024, window="hann",
                               center=False))                                          # (513, 200)
    mel = librosa.feature.melspectrogram(S=spec, sr=16000, power=1, n_mels=64, fmin=0, fmax=8000)
    ref = np.log10(np.maximum(mel, 1e-5))                                              # (64, 200)
    assert ref.shape == (64, 200)
    np.testing.assert_allclose(ours, ref, atol=1e-4)


def test_band_stats_streamed_over_mel_files_equal_band_stats_of_the_stacked_array(tmp_path):
    rng = np.random.default_rng(3)
    # Bands with very different means and spreads, one nearly constant (hits STD_FLOOR), and files
    # of different lengths, so that a wrong merge of per-file moments would show.
    spread, level, drift = (np.linspace(*r, 64)[:, None] for r in [(0.0001, 2), (-5, 1), (0, 0.5)])
    mels = [(rng.standard_normal((64, 200)) * spread + level + i * drift).astype(np.float32) for i in range(5)]
    paths = []
    for i, m in enumerate(mels):
        paths.append(tmp_path / f"m{i}.npy")
        np.save(paths[-1], m)
    mean, std = band_stats(np.stack(mels))                                          # (64,), (64,)
    s_mean, s_std = band_stats_of_files(paths)
    assert s_mean.dtype == s_std.dtype == np.float32
    np.testing.assert_allclose(s_mean, mean, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(s_std, std, rtol=1e-6, atol=1e-6)
    stacked = np.stack(mels).astype(np.float64)                                        # numpy's own two-pass std
    np.testing.assert_allclose(std, np.maximum(stacked.std(axis=(0, 2)), STD_FLOOR), rtol=1e-6)
    assert std[0] == pytest.approx(STD_FLOOR)
    ragged = [np.load(paths[0])[:, :120], np.load(paths[1])]                            # (64, 120), (64, 200)
    np.save(paths[0], ragged[0])
    r_mean, r_std = band_stats_of_files(paths[:2])
    flat = np.concatenate(ragged, axis=1).astype(np.float64)                          # (64, 320)
    np.testing.assert_allclose(r_mean, flat.mean(axis=1), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(r_std, np.maximum(flat.std(axis=1), STD_FLOOR), rtol=1e-6)


def test_torch_input_gives_the_same_mel_as_numpy_and_is_differentiable():
    x = (0.1 * np.random.default_rng(2).standard_normal((2, LOOP_SAMPLES))).astype(np.float32)
    xt = torch.from_numpy(x).requires_grad_(True)
    out = log_mel(xt)                                                                  # (2, 64, 200)
    assert out.shape == (2, N_MELS, N_FRAMES)
    np.testing.assert_allclose(out.detach().numpy(), log_mel(x), atol=1e-6)
    out.sum().backward()
    assert xt.grad is not None and torch.isfinite(xt.grad).all()


def stats(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.uniform(-4, 1, N_MELS).astype(np.float32), rng.uniform(0.2, 2, N_MELS).astype(np.float32)


def test_to_gan_gives_standardised_time_major_b_1_200_64_from_one_mel_or_a_batch():
    mean, std = stats()
    mels = np.random.default_rng(1).uniform(-5, 2, (3, N_MELS, N_FRAMES)).astype(np.float32)  # (B, F, T)
    x = to_gan(mels, mean, std)
    assert isinstance(x, torch.Tensor) and x.dtype == torch.float32 and x.shape == (3, 1, 200, 64)
    # element [b, 0, t, f] is band f of frame t, standardised with band f's stats
    np.testing.assert_allclose(x[2, 0, 17, 5].item(), (mels[2, 5, 17] - mean[5]) / std[5], rtol=1e-5)
    np.testing.assert_allclose(x[:, 0].transpose(1, 2).numpy(), standardise(mels, mean, std), rtol=1e-5, atol=1e-6)
    assert to_gan(mels[0], mean, std).shape == (1, 1, 200, 64)                         # a single (F, T) mel
    assert torch.equal(to_gan(torch.from_numpy(mels), torch.from_numpy(mean), torch.from_numpy(std)), x)


def test_from_gan_inverts_to_gan_and_gives_raw_b_64_200_numpy():
    mean, std = stats(3)
    mels = np.random.default_rng(4).uniform(-5, 2, (2, N_MELS, N_FRAMES)).astype(np.float32)
    x = to_gan(mels, mean, std).requires_grad_(True)                                   # a generator's output
    back = from_gan(x, mean, std)
    assert isinstance(back, np.ndarray) and back.dtype == np.float32 and back.shape == (2, 64, 200)
    np.testing.assert_allclose(back, mels, atol=1e-5)
    np.testing.assert_allclose(from_gan(x.detach().numpy(), torch.from_numpy(mean), torch.from_numpy(std)), mels,
                               atol=1e-5)
    np.testing.assert_allclose(destandardise(standardise(mels, mean, std), mean, std), mels, atol=1e-5)


def test_the_ceiling_is_above_what_full_scale_signals_reach_and_voiceable_clamps_only_outside():
    from mel import LOG_FLOOR, MEL_CEILING, voiceable
    t = np.arange(LOOP_SAMPLES) / SR
    for x in (np.sin(2 * np.pi * 60 * t), np.sign(np.sin(2 * np.pi * 50 * t)), np.ones(LOOP_SAMPLES)):
        assert log_mel(x.astype(np.float32)).max() <= MEL_CEILING                 # full scale stays below it
    inside = torch.tensor([-5.0, -2.0, 0.0, MEL_CEILING])
    assert torch.equal(voiceable(inside), inside)
    assert voiceable(torch.tensor([6000.0, -40.0])).tolist() == pytest.approx([MEL_CEILING, np.log10(LOG_FLOOR)])
