"""aisfx, the offline general feature network: safe loading, stages, freezing, input map, FAD stand-in
embedding (docs/design.md §2, §3, §7)."""
import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import featurenet
from standins import sfxnet
from mel import log_mel, standardise

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def net():
    return featurenet.build("aisfx", featurenet.FeatureContext(adapter="affine"))   # our own grid; the native grid: test_adapter.py


def test_checkpoint_loads_with_weights_only_and_has_the_four_conv_blocks():
    state = sfxnet.load_state()
    assert len(state) == 4 * 2 * 6          # per block: 2 conv weights + 2 x (BN weight, bias, mean, var, count)
    assert tuple(state["conv_block4.conv2.weight"].shape) == (512, 512, 3, 3)
    assert not any(k.startswith("fc.") for k in state)   # classifier heads are not kept
    assert re.findall(r"torch\.load\(([^)]*)\)", (ROOT / "standins/sfxnet.py").read_text()) == \
        ['path, map_location="cpu", weights_only=True']


def test_only_the_numpy_scalar_and_dtype_globals_are_allow_listed():
    allowed = sfxnet._numpy_safe_globals()
    assert len(allowed) == 3
    assert allowed[0][1] == "numpy.core.multiarray.scalar"      # the name the aisfx pickle uses
    assert allowed[1] is np.dtype and allowed[2] is type(np.dtype(np.int64))


def test_stage_shapes_and_channels_for_a_one_second_chunk(net):
    with torch.no_grad():
        outs = net.stages(torch.randn(1, 1, 100, 64))
    assert [tuple(o.shape) for o in outs] == [(1, 64, 50, 32), (1, 128, 25, 16), (1, 256, 12, 8), (1, 512, 12, 8)]
    assert tuple(o.shape[1] for o in outs) == net.stage_channels == (64, 128, 256, 512)
    assert net.name == "aisfx"


def test_pretrained_stages_are_finite_and_depend_on_the_input(net):
    a, b = torch.randn(1, 1, 100, 64), torch.randn(1, 1, 100, 64)
    with torch.no_grad():
        oa, ob = net.stages(a), net.stages(b)
        orand = sfxnet.SfxFeatures().eval().stages(a)
    for x, y, r in zip(oa, ob, orand):
        assert torch.isfinite(x).all() and x.abs().sum() > 0
        assert not torch.allclose(x, y)
        assert not torch.allclose(x, r)     # the checkpoint really was loaded


def test_frozen_net_batchnorm_stats_do_not_move_in_train_mode(net):
    parent = nn.ModuleDict({"net": net, "head": nn.Conv2d(512, 1, 1)}).train(True)
    assert parent.training and not any(m.training for m in net.modules())
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x = (3 * torch.randn(2, 1, 100, 64) + 2).requires_grad_(True)   # far from the running statistics
    parent["head"](net.stages(x)[-1]).mean().backward()
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(not p.requires_grad and p.grad is None for p in net.parameters())
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_input_map_constants_are_what_the_checkpoint_implies():
    mean, std = sfxnet.input_stats_from_bn(sfxnet.load_state())
    assert abs(mean - sfxnet.AISFX_INPUT_MEAN) < 1e-3 and abs(std - sfxnet.AISFX_INPUT_STD) < 1e-3
    assert 0 < mean < 1 and 0 < std < 0.5      # a [0, 1]-scaled input, as aisfx's min-max normalisation


def test_adapt_sends_z_scores_to_the_native_mean_and_spread(net):
    z = torch.randn(2, 1, 100, 64, generator=torch.Generator().manual_seed(0))
    x = net.adapt(z)
    assert torch.allclose(x.mean(), torch.tensor(sfxnet.AISFX_INPUT_MEAN) + sfxnet.AISFX_INPUT_STD * z.mean())
    assert torch.allclose(x.std(), sfxnet.AISFX_INPUT_STD * z.std())


def test_embed_audio_gives_one_512d_vector_per_second(net):
    rng = np.random.default_rng(0)
    audio = (rng.standard_normal((2, 32_000)) * np.array([[0.01], [0.5]])).astype(np.float32)
    mean, std = np.full(64, -2.0, np.float32), np.full(64, 1.0, np.float32)
    emb = sfxnet.embed_audio(net, audio, mean, std)
    assert tuple(emb.shape) == (4, 512) and torch.isfinite(emb).all()
    assert not torch.allclose(emb[0], emb[2])                           # louder clip, different embedding
    # Row 3 = clip 1, second 2, along the discriminator's own input path: log_mel -> standardise ->
    # time-major (1, 1, 100, 64) chunk -> aisfx pooling of block 4.
    z = standardise(log_mel(audio[1]), mean, std).T[None, None, 100:200]
    with torch.no_grad():
        ref = net.embed(torch.from_numpy(np.ascontiguousarray(z)))[0]
    torch.testing.assert_close(emb[3], ref)


def test_embed_audio_refuses_bad_stats_and_short_audio(net):
    with pytest.raises(ValueError, match=r"\(64,\)"):
        sfxnet.embed_audio(net, np.zeros((1, 32_000), np.float32), np.zeros(32), np.ones(32))
    with pytest.raises(ValueError, match="at least 1 s"):
        sfxnet.embed_audio(net, np.zeros((1, 8_000), np.float32), np.zeros(64), np.ones(64))


def test_missing_package_names_the_pip_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "aisfx" else real(n, *a))
    with pytest.raises(sfxnet.SfxNetMissing, match=re.escape("pip install --no-deps aisfx==0.1.2")):
        sfxnet.build_feature_net(featurenet.FeatureContext())


def test_truncated_checkpoint_is_refused_naming_the_file(tmp_path):
    bad = tmp_path / "checkpoint.pth"
    with open(sfxnet.checkpoint_path(), "rb") as f:
        bad.write_bytes(f.read(100_000))
    with pytest.raises(sfxnet.SfxNetMissing, match=re.escape(str(bad))):
        sfxnet.load_state(bad)
