"""VGGish: stages, freezing, weight loading (official torchvggish layout), FAD front end (docs/design.md §2, §7).

No test touches the network: weights are a fixture state dict in the official key layout with random
values, and the download function is replaced where a test needs it.
"""
import re
import shutil
import urllib.error
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

import featurenet
import vggish

ROOT = Path(__file__).resolve().parents[1]

# The torchvggish state dict, written out literally (not derived from our module) so the test pins the layout.
OFFICIAL_SHAPES = {
    "features.0.weight": (64, 1, 3, 3), "features.0.bias": (64,),
    "features.3.weight": (128, 64, 3, 3), "features.3.bias": (128,),
    "features.6.weight": (256, 128, 3, 3), "features.6.bias": (256,),
    "features.8.weight": (256, 256, 3, 3), "features.8.bias": (256,),
    "features.11.weight": (512, 256, 3, 3), "features.11.bias": (512,),
    "features.13.weight": (512, 512, 3, 3), "features.13.bias": (512,),
    "embeddings.0.weight": (4096, 12288), "embeddings.0.bias": (4096,),
    "embeddings.2.weight": (4096, 4096), "embeddings.2.bias": (4096,),
    "embeddings.4.weight": (128, 4096), "embeddings.4.bias": (128,),
}


@pytest.fixture(scope="module")
def official_state():
    # Official keys and shapes, random values. The two big embedding matrices (~260 MB) are stride-0
    # views of one random column each: torch.save stores only that column, so the file stays ~18 MB.
    g = torch.Generator().manual_seed(0)
    state = {}
    for k, s in OFFICIAL_SHAPES.items():
        if k in ("embeddings.0.weight", "embeddings.2.weight"):
            state[k] = (torch.randn(s[0], 1, generator=g) * 0.02).expand(s)
        else:
            state[k] = torch.randn(s, generator=g) * 0.02
    return state


@pytest.fixture(scope="module")
def weights_file(official_state, tmp_path_factory):
    path = tmp_path_factory.mktemp("vgg") / "vggish-10086976.pth"
    torch.save(official_state, path)
    return path


@pytest.fixture
def offline_hub(tmp_path, monkeypatch):
    """An empty hub cache, no env var, and a download function that fails like an offline machine."""
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.delenv(vggish.ENV_VAR, raising=False)

    def no_network(url, dst):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")
    monkeypatch.setattr(vggish, "_download", no_network)
    return tmp_path / "hub"


def random_features_net():
    return vggish.VGGishFeatures(vggish.VGGish().features).freeze()


def test_our_module_has_exactly_the_official_key_layout():
    assert vggish.expected_shapes() == OFFICIAL_SHAPES


def test_stage_shapes_and_channels_for_a_one_second_chunk():
    net = random_features_net()
    outs = net.stages(torch.randn(3, 1, 100, 64))
    assert [tuple(o.shape) for o in outs] == [(3, 64, 50, 32), (3, 128, 25, 16), (3, 256, 12, 8), (3, 512, 6, 4)]
    assert tuple(o.shape[1] for o in outs) == net.stage_channels == (64, 128, 256, 512)
    assert net.name == "vgg"


def test_input_is_fed_as_is_like_the_authors():
    x = torch.randn(2, 1, 100, 64)
    assert torch.equal(random_features_net().adapt(x), x)


def test_frozen_vggish_has_no_weight_gradients_and_stays_eval_inside_a_training_parent(weights_file, monkeypatch):
    monkeypatch.setenv(vggish.ENV_VAR, str(weights_file))
    net = featurenet.build("vgg", featurenet.FeatureContext())
    parent = nn.ModuleDict({"net": net, "head": nn.Conv2d(512, 1, 1)}).train(True)
    assert parent.training and not net.training
    assert not any(m.training for m in net.modules())
    assert all(not p.requires_grad for p in net.parameters())
    x = torch.randn(2, 1, 100, 64, requires_grad=True)
    parent["head"](net.stages(x)[-1]).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0          # gradients still reach the generator
    assert all(p.grad is None for p in net.parameters())


def test_fixture_weights_load_via_env_var(official_state, weights_file, monkeypatch):
    monkeypatch.setenv(vggish.ENV_VAR, str(weights_file))
    net = vggish.build_feature_net(featurenet.FeatureContext())
    assert torch.equal(net.features[13].weight, official_state["features.13.weight"])


def test_fixture_weights_load_via_path_attribute_before_env_var(official_state, weights_file, monkeypatch, tmp_path):
    monkeypatch.setenv(vggish.ENV_VAR, str(tmp_path / "elsewhere.pth"))   # would fail if it were used
    net = vggish.build_feature_net(SimpleNamespace(vggish_path=str(weights_file), device="cpu"))
    assert torch.equal(net.features[0].bias, official_state["features.0.bias"])
    model = vggish.load_vggish(weights_file)
    assert torch.equal(model.embeddings[4].weight, official_state["embeddings.4.weight"])


def test_truncated_file_is_refused_naming_the_file(weights_file, tmp_path):
    bad = tmp_path / "truncated.pth"
    with open(weights_file, "rb") as f:
        bad.write_bytes(f.read(1 << 20))                               # the first MiB of ~270 MB
    with pytest.raises(vggish.VGGishWeightsInvalid, match=re.escape(str(bad))):
        vggish.load_vggish(bad)


def test_wrong_keys_are_refused_naming_them(official_state, tmp_path):
    state = dict(official_state)
    state["features.1.weight"] = state.pop("features.0.weight")
    bad = tmp_path / "renamed.pth"
    torch.save(state, bad)
    with pytest.raises(vggish.VGGishWeightsInvalid, match=r"missing keys \['features\.0\.weight'\]"):
        vggish.load_vggish(bad)


def test_wrong_shapes_are_refused_naming_them(official_state, tmp_path):
    state = dict(official_state)
    state["embeddings.4.weight"] = torch.zeros(64, 4096)
    bad = tmp_path / "reshaped.pth"
    torch.save(state, bad)
    with pytest.raises(vggish.VGGishWeightsInvalid, match=r"embeddings\.4\.weight: \(64, 4096\) != \(128, 4096\)"):
        vggish.load_vggish(bad)


def test_absent_weights_offline_raise_a_message_naming_url_path_env_var_and_aisfx(offline_hub):
    with pytest.raises(vggish.VGGishWeightsMissing) as err:
        vggish.build_feature_net(featurenet.FeatureContext())
    msg = str(err.value)
    assert isinstance(err.value, RuntimeError)
    for needle in (vggish.VGGISH_URL, str(offline_hub / "checkpoints" / "vggish-10086976.pth"),
                   "PJLOOP_VGGISH", "--features aisfx", "URLError"):
        assert needle in msg


def test_a_missing_explicit_path_is_not_replaced_by_anything_else(offline_hub, tmp_path):
    with pytest.raises(vggish.VGGishWeightsMissing, match=re.escape(str(tmp_path / "nope.pth"))):
        vggish.load_vggish(tmp_path / "nope.pth")


def test_online_the_file_is_downloaded_once_into_the_hub_cache(offline_hub, weights_file, monkeypatch):
    calls = []

    def fake_download(url, dst):
        calls.append(url)
        shutil.copy(weights_file, dst)
    monkeypatch.setattr(vggish, "_download", fake_download)
    vggish.build_feature_net(featurenet.FeatureContext())
    vggish.build_feature_net(featurenet.FeatureContext())
    assert calls == [vggish.VGGISH_URL]
    assert (offline_hub / "checkpoints" / "vggish-10086976.pth").is_file()


def test_download_verifies_the_full_sha256_via_torch_hub(monkeypatch, tmp_path):
    seen = {}
    monkeypatch.setattr(torch.hub, "download_url_to_file",
                        lambda url, dst, hash_prefix=None, progress=True: seen.update(url=url, hash=hash_prefix))
    vggish._download(vggish.VGGISH_URL, tmp_path / "x.pth")
    assert seen == {"url": vggish.VGGISH_URL, "hash": vggish.VGGISH_SHA256}
    assert len(vggish.VGGISH_SHA256) == 64 and vggish.VGGISH_SHA256.startswith("10086976")


def test_every_torch_load_is_weights_only():
    for name in ("vggish.py", "standins/sfxnet.py", "experiments/bench_features.py"):
        src = (ROOT / name).read_text()
        calls = re.findall(r"torch\.load\(([^)]*)\)", src)
        assert all("weights_only=True" in c for c in calls), (name, calls)
    assert re.findall(r"torch\.load\(([^)]*)\)", (ROOT / "vggish.py").read_text())   # the grep sees the call


def cheap_vggish():
    """A full VGGish without randomly initialising 67 M embedding weights: the two big matrices are zero,
    the conv stages and the small layers random."""
    with torch.device("meta"):
        model = vggish.VGGish()
    model = model.to_empty(device="cpu")
    model.features = vggish.make_features()
    with torch.no_grad():
        for name, p in model.embeddings.named_parameters():
            p.zero_() if name in ("0.weight", "2.weight") else p.normal_(0, 0.1)
    return model.eval()


def test_embedding_flattens_channels_last_like_the_tensorflow_original():
    # Route exactly one input of embeddings.0 -- column (t=1, f=2, c=5) in TF's (time, freq, channel)
    # order -- straight to output 0; forward must then return features[:, 5, 1, 2].
    torch.manual_seed(0)   # random weights and input, but fixed: that feature must be non-zero (after ReLU)
    model = cheap_vggish()
    with torch.no_grad():
        for p in model.embeddings.parameters():
            p.zero_()
        model.embeddings[0].weight[0, (1 * 4 + 2) * 512 + 5] = 1.0
        model.embeddings[2].weight[0, 0] = 1.0
        model.embeddings[4].weight[0, 0] = 1.0
        x = torch.randn(2, 1, 96, 64)
        conv = model.features(x)                                        # (2, 512, 6, 4), >= 0
        assert conv[:, 5, 1, 2].abs().sum() > 0
        torch.testing.assert_close(model(x)[:, 0], conv[:, 5, 1, 2])


def test_front_end_two_seconds_give_two_windows_of_96_by_64():
    audio = np.random.default_rng(0).standard_normal((3, 32_000)).astype(np.float32) * 0.1
    ex = vggish.examples(audio)
    assert tuple(ex.shape) == (6, 1, 96, 64)
    assert vggish.vggish_log_mel(torch.from_numpy(audio)).shape == (3, 198, 64)   # 1 + (32000 - 400) // 160
    # window order: both windows of clip 0 first, each one the clip's own frames
    assert torch.equal(ex[1, 0], vggish.vggish_log_mel(torch.from_numpy(audio[:1]))[0, 96:192])


def test_front_end_puts_a_1khz_tone_in_the_band_centred_nearest_1khz():
    t = np.arange(16_000) / 16_000
    lm = vggish.vggish_log_mel(torch.from_numpy(np.sin(2 * np.pi * 1000 * t).astype(np.float32))[None])
    centres = np.linspace(vggish._hz_to_mel_htk(125.0), vggish._hz_to_mel_htk(7500.0), 66)[1:-1]
    assert lm[0].mean(0).argmax().item() == np.abs(centres - vggish._hz_to_mel_htk(1000.0)).argmin()
    assert lm.min().item() >= np.log(vggish.LOG_OFFSET) - 1e-6      # ln(mel + 0.01) floor


def test_front_end_matches_a_direct_numpy_transcription():
    # Google's stft_magnitude: complete 400-sample frames, periodic Hann, rfft zero-padded to 512, |.|
    audio = np.random.default_rng(1).standard_normal(4000)
    frames = np.stack([audio[i * 160:i * 160 + 400] for i in range(1 + (4000 - 400) // 160)])   # (23, 400)
    hann = 0.5 - 0.5 * np.cos(2 * np.pi / 400 * np.arange(400))
    ref = np.log(np.abs(np.fft.rfft(frames * hann, 512)) @ vggish.vggish_mel_matrix().astype(np.float64) + 0.01)
    ours = vggish.vggish_log_mel(torch.from_numpy(audio[None]).double())[0].numpy()
    np.testing.assert_allclose(ours, ref, atol=1e-5)


def test_embedding_is_128_dims_and_pre_relu():
    emb = vggish.embed_audio(cheap_vggish(), np.random.default_rng(2).standard_normal((2, 32_000)).astype(np.float32))
    assert tuple(emb.shape) == (4, 128)
    assert (emb < 0).any()        # the port's final ReLU would make every value >= 0


def test_audio_shorter_than_one_window_is_refused():
    with pytest.raises(ValueError, match="at least 15600 samples"):
        vggish.examples(np.zeros((1, 8000), np.float32))
