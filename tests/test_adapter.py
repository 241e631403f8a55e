"""standins/adapter.py as a spec: our mel lands on a feature network's native grid, differentiably."""
import numpy as np
import pytest
import torch

import mel as M
from standins import sfxnet
from stubs import tone_mel
from featurenet import FeatureContext
from standins.adapter import GridAdapter, band_interpolation, fit_level_map, htk_centres_hz, our_centres_hz, SILENCE




@pytest.mark.parametrize("freq", [150.0, 440.0, 1000.0, 2500.0, 6000.0])
def test_pure_tone_lands_in_the_native_band_with_the_matching_centre(freq):
    native = htk_centres_hz(96, 0.0, 22_050.0)
    out = sfxnet.native_grid_adapter()(tone_mel(freq))                    # (1, 1, T', 96)
    loudest = int(out[0, 0].mean(0).argmax())
    nearest = int(np.abs(native - freq).argmin())
    assert abs(loudest - nearest) <= 1, (freq, native[loudest], native[nearest])


def test_time_axis_is_resampled_to_the_native_hop():
    ad = sfxnet.native_grid_adapter()
    assert ad(torch.zeros(2, 1, 100, 64)).shape == (2, 1, 43, 96)        # 1 s at 23.2 ms frames
    assert ad(torch.zeros(2, 1, 200, 64)).shape == (2, 1, 86, 96)


def test_bands_above_8khz_hold_silence_and_interpolation_weights_sum_to_one():
    w, above = band_interpolation(our_centres_hz(), htk_centres_hz(96, 0.0, 22_050.0))
    assert above.sum() > 20 and not above[:60].any()                     # aisfx's top ~26 bands
    np.testing.assert_allclose(w[~above].sum(1), 1.0, atol=1e-6)
    assert (w[above] == 0).all()
    out = sfxnet.native_grid_adapter()(torch.randn(1, 1, 100, 64))
    assert torch.all(out[0, 0][:, torch.from_numpy(above)] == SILENCE)


def test_destandardises_with_the_data_set_stats():
    mean, std = np.linspace(-3, 0, 64), np.full(64, 0.5)
    ad = GridAdapter(our_centres_hz(), M.HOP / M.SR, mean, std)          # our own grid: identity re-gridding
    z = torch.randn(1, 1, 100, 64)
    torch.testing.assert_close(ad(z), z * 0.5 + torch.from_numpy(mean).float(), atol=1e-5, rtol=1e-5)


def test_level_map_hits_the_target_moments():
    ad = sfxnet.native_grid_adapter(np.linspace(-3, -1, 64), np.full(64, 0.7))
    a, b = fit_level_map(ad, 0.164, 0.183)
    m, s = ad.level_moments()
    assert a + b * m == pytest.approx(0.164) and b * s == pytest.approx(0.183)


def test_gradients_reach_the_input_and_never_the_frozen_network():
    net = sfxnet.build_feature_net(sfxnet_ctx()).freeze()
    x = torch.randn(2, 1, 100, 64, requires_grad=True)
    sum(s.mean() for s in net.stages(x)).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in net.parameters())


def test_grid_adapter_stage_shapes_for_a_one_second_chunk():
    net = sfxnet.build_feature_net(sfxnet_ctx()).freeze()
    shapes = [tuple(s.shape) for s in net.stages(torch.zeros(2, 1, 100, 64))]
    assert shapes == [(2, 64, 21, 48), (2, 128, 10, 24), (2, 256, 5, 12), (2, 512, 5, 12)]


def sfxnet_ctx():
    return FeatureContext(adapter="grid", mel_mean=np.full(64, -2.0), mel_std=np.ones(64))
