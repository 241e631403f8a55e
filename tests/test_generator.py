"""Spec tests for layers.py (StyleGAN2 building blocks) and generator.py (docs/design.md §5).

Tiny widths (max_channels=16) keep the whole file fast on CPU.
"""
import math

import pytest
import torch

from layers import (Blur, BiasLeakyReLU, EqualConv2d, EqualLinear, MinibatchStd, Upsample,
                    bias_leaky_relu, fir_kernel)


# ------------------------------------------------------------------------------------------------
# layers.py
# ------------------------------------------------------------------------------------------------

def test_equal_linear_runtime_scale_is_one_over_sqrt_fan_in():
    torch.manual_seed(0)
    lin = EqualLinear(32, 8, bias=False)
    assert lin.scale == pytest.approx(1 / math.sqrt(32))
    x = torch.randn(5, 32)
    assert torch.allclose(lin(x), x @ (lin.weight / math.sqrt(32)).T, atol=1e-6)


def test_equal_linear_lr_mul_keeps_effective_init_but_scales_storage():
    torch.manual_seed(0)
    lin = EqualLinear(64, 64, bias_init=1.0, lr_mul=0.01)
    eff_w = lin.weight * lin.scale
    # Effective weights have std ~ 1/sqrt(fan_in) whatever lr_mul is; the stored ones are 100x larger.
    assert eff_w.std().item() == pytest.approx(1 / 8, rel=0.1)
    assert lin.weight.std().item() == pytest.approx(100, rel=0.1)
    assert torch.allclose(lin.bias * lin.lr_mul, torch.ones(64))


def test_equal_linear_activation_is_bias_leaky_relu_times_sqrt2():
    torch.manual_seed(0)
    lin = EqualLinear(4, 3, activation=True)
    with torch.no_grad():
        lin.bias.copy_(torch.tensor([0.5, -1.0, 0.0]))
    x = torch.randn(6, 4)
    pre = x @ (lin.weight * lin.scale).T + lin.bias
    assert torch.allclose(lin(x), torch.where(pre > 0, pre, 0.2 * pre) * math.sqrt(2), atol=1e-6)


def test_equal_conv2d_runtime_scale_is_one_over_sqrt_fan_in():
    torch.manual_seed(0)
    conv = EqualConv2d(3, 5, 3, padding=1)
    assert conv.scale == pytest.approx(1 / math.sqrt(3 * 9))
    x = torch.randn(2, 3, 8, 8)
    ref = torch.nn.functional.conv2d(x, conv.weight / math.sqrt(27), conv.bias, padding=1)
    assert torch.allclose(conv(x), ref, atol=1e-6)
    assert conv(x).shape == (2, 5, 8, 8)


def test_fir_kernel_is_normalised_outer_product():
    k = fir_kernel((1, 3, 3, 1))
    assert k.shape == (4, 4)
    assert k.sum().item() == pytest.approx(1.0)
    assert torch.allclose(k, torch.outer(torch.tensor([1., 3, 3, 1]), torch.tensor([1., 3, 3, 1])) / 64)


def test_blur_preserves_a_constant_image_interior_value():
    x = torch.full((2, 3, 13, 4), 2.5)
    y = Blur((1, 3, 3, 1), pad=(2, 1))(x)
    assert y.shape == (2, 3, 13, 4)                 # n + 2 + 1 - 4 + 1 = n
    assert torch.allclose(y[:, :, 2:-1, 2:-1], torch.full_like(y[:, :, 2:-1, 2:-1], 2.5))
    assert y[0, 0, 0, 0] < 2.5                      # zero padding darkens the border: the pad is real


def test_upsample_doubles_size_and_preserves_constant_interior():
    x = torch.full((1, 2, 13, 4), -1.5)
    y = Upsample()(x)
    assert y.shape == (1, 2, 26, 8)
    assert torch.allclose(y[:, :, 2:-2, 2:-2], torch.full_like(y[:, :, 2:-2, 2:-2], -1.5))


def test_bias_leaky_relu_broadcasts_channel_bias():
    x = torch.zeros(2, 3, 4, 4)
    y = bias_leaky_relu(x, torch.tensor([1.0, -1.0, 0.0]))
    assert torch.allclose(y[:, 0], torch.full((2, 4, 4), math.sqrt(2)))
    assert torch.allclose(y[:, 1], torch.full((2, 4, 4), -0.2 * math.sqrt(2)))
    act = BiasLeakyReLU(3)
    assert torch.equal(act(x), torch.zeros_like(x))  # bias starts at zero


def test_minibatch_std_adds_one_channel_holding_the_mean_group_std():
    torch.manual_seed(0)
    x = torch.randn(8, 6, 5, 3)
    y = MinibatchStd(group_size=4, num_channels=1)(x)
    assert y.shape == (8, 7, 5, 3)
    assert torch.equal(y[:, :6], x)
    # StyleGAN2 grouping: sample i belongs to group i mod (B / G) = i mod 2.
    for m in range(2):
        members = x[m::2]                                        # (4, 6, 5, 3)
        expect = members.std(dim=0, unbiased=False).mean()
        assert torch.allclose(y[m::2, 6], expect.expand(4, 5, 3), atol=1e-5)


def test_minibatch_std_handles_batch_not_divisible_by_group_size():
    torch.manual_seed(0)
    x = torch.randn(6, 4, 2, 2)                     # 6 = 3 x 2: largest divisor <= 4 is 3
    y = MinibatchStd(group_size=4)(x)
    assert y.shape == (6, 5, 2, 2)
    expect = x[0::2].std(dim=0, unbiased=False).mean()
    assert torch.allclose(y[0, 4], expect.expand(2, 2), atol=1e-5)
    y1 = MinibatchStd(group_size=4)(x[:1])          # a single sample: group of 1, std 0 (plus the eps)
    assert y1[0, 4].abs().max() < 1e-3


# ------------------------------------------------------------------------------------------------
# generator.py
# ------------------------------------------------------------------------------------------------

from generator import (Generator, GeneratorConfig, ModulatedConv2d, count_params, ema_beta, macs_per_sample,
                       make_ema, update_ema)

TINY = GeneratorConfig(max_channels=16)


def _tiny_generator(seed: int = 0, strength: float = 0.0) -> Generator:
    torch.manual_seed(seed)
    g = Generator(TINY)
    if strength:                                   # noise strengths start at 0 (StyleGAN2); make noise matter
        with torch.no_grad():
            for name, p in g.named_parameters():
                if name.endswith("noise_strength"):
                    p.fill_(strength)
    return g


def test_config_defaults_are_the_papers_numbers():
    cfg = GeneratorConfig()
    assert (cfg.z_dim, cfg.w_dim, cfg.n_mapping, cfg.mapping_lr_mul) == (32, 64, 6, 0.01)
    assert (cfg.const_size, cfg.n_upsample, cfg.channels, cfg.width) == ((13, 4), 4, 512, 512)
    assert (cfg.style_mixing_prob, cfg.out_frames, cfg.n_mels) == (0.9, 200, 64)
    assert GeneratorConfig(max_channels=64).width == 64


def test_config_rejects_a_grid_that_does_not_give_64_mel_bands():
    with pytest.raises(ValueError, match="n_mels"):
        Generator(GeneratorConfig(const_size=(13, 3), max_channels=8))
    with pytest.raises(ValueError, match="out_frames"):
        Generator(GeneratorConfig(out_frames=209, max_channels=8))


def test_output_is_finite_b_1_200_64_in_train_and_eval_mode():
    g = _tiny_generator(strength=0.1)
    z = torch.randn(3, 32)
    out = g(z)                                     # train mode: style mixing 0.9, random noise
    assert out.shape == (3, 1, 200, 64)
    assert torch.isfinite(out).all()
    g.eval()
    for mode in ("random", "const", "none"):
        out = g(z, noise_mode=mode)
        assert out.shape == (3, 1, 200, 64) and torch.isfinite(out).all()


def test_bad_inputs_get_clear_errors():
    g = _tiny_generator()
    with pytest.raises(ValueError, match="z must be"):
        g(torch.randn(2, 31))
    with pytest.raises(ValueError, match="noise_mode"):
        g(torch.randn(2, 32), noise_mode="fixed")


def test_mapping_has_six_layers_lr_mul_001_from_z32_to_w64():
    g = _tiny_generator()
    layers = list(g.mapping.layers)
    assert len(layers) == 6
    assert all(l.lr_mul == 0.01 and l.activation for l in layers)
    assert layers[0].in_dim == 32 and all(l.out_dim == 64 for l in layers)
    ws = g.mapping(torch.randn(5, 32))
    assert ws.shape == (5, g.num_ws, 64) and g.num_ws == 10
    assert torch.equal(ws[:, 0], ws[:, -1])        # without mixing every layer gets the same w


def test_mapping_tracks_w_avg_only_in_training_mode():
    g = _tiny_generator()
    z = torch.randn(8, 32)
    g.eval()
    g.mapping(z)
    assert torch.equal(g.mapping.w_avg, torch.zeros(64))
    g.train()
    w = g.mapping(z, update_w_avg=False)[:, 0]
    g.mapping(z)
    assert torch.allclose(g.mapping.w_avg, (1 - 0.995) * w.mean(0), atol=1e-6)


def test_demodulation_gives_unit_norm_weights_per_output_channel():
    torch.manual_seed(0)
    conv = ModulatedConv2d(8, 6, 3, w_dim=64, demodulate=True)
    wt = conv.modulated_weight(torch.randn(4, 64) * 3)            # (B, out, in, k, k)
    assert torch.allclose(wt.square().sum(dim=(2, 3, 4)), torch.ones(4, 6), atol=1e-4)
    # ... so a unit-variance input gives unit-variance outputs, whatever the style.
    x = torch.randn(4, 8, 64, 64)
    assert conv(x, torch.randn(4, 64) * 3)[:, :, 1:-1, 1:-1].std().item() == pytest.approx(1.0, rel=0.1)


@pytest.mark.parametrize("upsample", [False, True])
def test_modulated_conv_equals_per_sample_conv_with_explicit_weights(upsample):
    # The non-fused implementation must be exactly StyleGAN2's per-sample (grouped) modulated conv.
    torch.manual_seed(0)
    conv = ModulatedConv2d(5, 7, 3, w_dim=64, upsample=upsample)
    x, w = torch.randn(3, 5, 13, 4), torch.randn(3, 64)
    out = conv(x, w)
    wt = conv.modulated_weight(w)                                  # (3, 7, 5, 3, 3)
    for b in range(3):
        if upsample:
            ref = conv.blur(torch.nn.functional.conv_transpose2d(x[b:b + 1], wt[b].transpose(0, 1), stride=2))
        else:
            ref = torch.nn.functional.conv2d(x[b:b + 1], wt[b], padding=1)
        assert torch.allclose(out[b:b + 1], ref, atol=1e-5)
    assert out.shape == ((3, 7, 26, 8) if upsample else (3, 7, 13, 4))


def test_truncation_psi_0_gives_identical_outputs_for_different_z():
    g = _tiny_generator(strength=0.1).eval()
    with torch.no_grad():
        g.mapping.w_avg.normal_()
        out = g(torch.randn(4, 32), truncation_psi=0.0, noise_mode="const")
    assert torch.allclose(out, out[:1].expand_as(out), atol=1e-6)
    assert not torch.allclose(out, g(torch.randn(4, 32), noise_mode="const"))   # psi=1 keeps them apart


def test_truncation_cutoff_only_touches_the_first_layers():
    g = _tiny_generator().eval()
    z = torch.randn(2, 32)
    ws = g.mapping(z)
    wt = g.mapping(z, truncation_psi=0.0, truncation_cutoff=4)
    assert torch.allclose(wt[:, :4], g.mapping.w_avg.expand(2, 4, 64))
    assert torch.equal(wt[:, 4:], ws[:, 4:])


def test_same_seed_and_const_noise_give_identical_outputs():
    g = _tiny_generator(strength=0.1).eval()
    z = torch.randn(2, 32)
    assert torch.equal(g(z, noise_mode="const"), g(z, noise_mode="const"))
    assert torch.equal(_tiny_generator(5)(z, noise_mode="const", style_mixing_prob=0),
                       _tiny_generator(5)(z, noise_mode="const", style_mixing_prob=0))
    assert not torch.equal(g(z, noise_mode="random"), g(z, noise_mode="random"))


def test_style_mixing_produces_ws_with_two_distinct_segments():
    g = _tiny_generator().train()
    z = torch.randn(16, 32)
    _, ws = g(z, style_mixing_prob=1.0, return_ws=True)
    own = g.mapping(z, update_w_avg=False)
    for b in range(16):
        same = (ws[b] == own[b]).all(dim=1)                        # (num_ws,) layers taken from z itself
        k = int(same.sum())
        assert 1 <= k < g.num_ws                                   # crossover layer in [1, num_ws)
        assert same[:k].all() and not same[k:].any()               # a prefix from z, the rest from z2
        assert torch.equal(ws[b, k:], ws[b, k:k + 1].expand(g.num_ws - k, 64))   # one second w
    g.eval()                                                       # eval default: no mixing
    _, ws = g(z, return_ws=True)
    assert torch.equal(ws, g.mapping(z))


def test_ema_beta_is_half_life_10k_images():
    assert ema_beta(64) == pytest.approx(0.5 ** (64 / 10_000))
    assert ema_beta(64) ** (10_000 / 64) == pytest.approx(0.5)


def test_update_ema_moves_parameters_towards_the_model_and_copies_buffers():
    g = _tiny_generator(0)
    ema = make_ema(g)
    with torch.no_grad():
        for p in g.parameters():
            p.add_(1.0)
        g.mapping.w_avg.fill_(3.0)
    before = [p.clone() for p in ema.parameters()]
    update_ema(ema, g, beta=0.75)
    for p0, pe, pm in zip(before, ema.parameters(), g.parameters()):
        assert torch.allclose(pe, 0.75 * p0 + 0.25 * pm, atol=1e-5)
    assert torch.equal(ema.mapping.w_avg, g.mapping.w_avg)
    assert not any(p.requires_grad for p in ema.parameters())


def test_gradients_flow_to_every_trainable_parameter():
    g = _tiny_generator(strength=0.1).train()
    g(torch.randn(2, 32), noise_mode="random").square().mean().backward()
    missing = [n for n, p in g.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert not missing, missing


def test_macs_and_params_of_the_paper_width():
    # 512 channels everywhere: ~21.8 M parameters, ~52 GMAC per sample (transposed-conv upsampling).
    cfg = GeneratorConfig()
    assert 45e9 < macs_per_sample(cfg) < 60e9
    assert count_params(Generator(GeneratorConfig(max_channels=64))) < 1e6


def test_state_dict_round_trip_reproduces_const_noise_outputs(tmp_path):
    # w_avg and the constant noise maps are persistent buffers, so a checkpoint restores samples exactly.
    g = _tiny_generator(1, strength=0.1).eval()
    torch.save(g.state_dict(), tmp_path / "g.pt")
    h = _tiny_generator(2).eval()
    h.load_state_dict(torch.load(tmp_path / "g.pt", weights_only=True))
    z = torch.randn(2, 32)
    assert torch.equal(g(z, noise_mode="const"), h(z, noise_mode="const"))
