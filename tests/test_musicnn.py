"""musicnn's pre-trained music networks as a spec: the PyTorch port agrees with musicnn's own TensorFlow
graph, `mtt_vgg` is a frozen four-stage projector network fed on its native grid, and the evaluation
embedding has both ways in (standins/musicnn_port.py, standins/musicnn_features.py; docs/design.md §2, §7)."""
import importlib.util
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import demo.loops
from evaluation import embeddings as EE
from evaluation import rows as R
import evaluate as E
import featurenet
from standins import make_musicnn_fixture
import mel as M
from standins import musicnn_features as MF
from standins import musicnn_port as P
from standins.adapter import slaney_centres_hz
from discriminator import ProjectedDiscriminator
from featurenet import FeatureContext, FeatureNetUnavailable
from stubs import tone_mel

FIXTURE = Path(__file__).resolve().parent / "musicnn_reference.json"
TOLERANCE = 1e-4          # the agreed bound on the port's tag probabilities against TensorFlow's

pytestmark = pytest.mark.skipif(importlib.util.find_spec("musicnn") is None,
                                reason=f"musicnn wheel not installed ({P.PIP_INSTALL})")


@pytest.fixture(scope="module")
def reference():
    return json.loads(FIXTURE.read_text())


@pytest.fixture(scope="module")
def patches(reference):
    """The fixture's clips, rendered again and put through the port's copy of musicnn's front end."""
    assert [tuple(c) for c in reference["clips"]] == list(make_musicnn_fixture.CLIPS)
    return torch.from_numpy(P.musicnn_log_mel(make_musicnn_fixture.render_clips())[:, None, :P.PATCH_FRAMES])


@pytest.fixture(scope="module")
def mtt_vgg():
    return featurenet.build("mtt_vgg", FeatureContext())


# ---------------------------------------------------------------------------------------------
# The port against musicnn's TensorFlow graph.
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("model", P.MODELS)
def test_port_tag_probabilities_match_musicnns_tensorflow_graph_to_1e4(model, reference, patches):
    assert patches.shape == (5, 1, 187, 96)
    probs = P.tag_probabilities(P.load_musicnn(model), patches).numpy()          # (5 clips, 50 tags)
    expected = np.array([row["probs"] for row in reference["models"][model]])
    np.testing.assert_allclose(probs, expected, rtol=0, atol=TOLERANCE)


def test_port_penultimate_layer_of_msd_musicnn_matches_tensorflow(reference, patches):
    with torch.no_grad():
        emb = P.load_musicnn("MSD_musicnn").features(patches)["penultimate"].numpy()   # (5, 200)
    expected = np.array([row["penultimate"] for row in reference["models"]["MSD_musicnn"]])
    np.testing.assert_allclose(emb, expected, rtol=0, atol=TOLERANCE)


def test_tags_are_read_from_the_wheel_and_drum_loops_sound_like_drums(patches):
    tags = P.tag_names("MTT_vgg")
    assert len(tags) == P.N_TAGS and tags[5] == "drums" and P.tag_names("MSD_musicnn")[0] == "rock"
    probs = P.tag_probabilities(P.load_musicnn("MTT_vgg"), patches).numpy()
    for clip in range(3):                                                        # the three drum loops
        top5 = {tags[i] for i in np.argsort(-probs[clip])[:5]}
        assert top5 & {"drums", "beat", "beats", "techno", "electronic"}, top5


def test_vgg_pools_have_the_documented_shapes_for_a_training_patch():
    pools = P.MusicnnVGG().pools(torch.zeros(1, 1, 187, 96))
    assert [tuple(p.shape[1:]) for p in pools] == [(128, 92, 48), (128, 46, 24), (128, 23, 12), (128, 11, 6), (128, 2, 1)]


# ---------------------------------------------------------------------------------------------
# Loading: checksum, missing package.
# ---------------------------------------------------------------------------------------------
def test_without_the_package_the_error_names_the_pip_line(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "musicnn" else real(n, *a))
    with pytest.raises(FeatureNetUnavailable, match=re.escape("pip install --no-deps musicnn==0.1.0")):
        featurenet.build("mtt_vgg", FeatureContext())      # train.py prints this one line, no traceback
    with pytest.raises(P.MusicnnMissing, match="not installed"):
        MF.load_embedding()


def test_a_checkpoint_with_another_sha256_is_refused(monkeypatch):
    monkeypatch.setitem(P.DATA_SHA256, "MTT_vgg", "0" * 64)
    with pytest.raises(P.MusicnnMissing, match=r"SHA-256.*reinstall"):
        P.load_musicnn("MTT_vgg")


# ---------------------------------------------------------------------------------------------
# The native grid and level.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("freq", [150.0, 440.0, 1000.0, 2500.0, 6000.0])
def test_pure_tone_lands_in_the_musicnn_band_with_the_matching_centre(freq):
    native = slaney_centres_hz(96, 0.0, 8000.0)
    out = MF.to_musicnn_level(MF.native_grid_adapter()(tone_mel(freq)))      # (1, 1, T', 96)
    loudest = int(out[0, 0].mean(0).argmax())
    assert abs(loudest - int(np.abs(native - freq).argmin())) <= 1, (freq, native[loudest])


def test_time_axis_goes_to_16_ms_frames():
    assert MF.native_grid_adapter()(torch.zeros(2, 1, 100, 64)).shape == (2, 1, 62, 96)
    assert MF.native_grid_adapter()(torch.zeros(2, 1, 200, 64)).shape == (2, 1, 125, 96)


def test_level_map_keeps_musicnns_floor_and_tracks_its_own_front_end():
    silence = MF.to_musicnn_level(torch.full((3,), float(np.log10(M.LOG_FLOOR))))
    assert float(silence.abs().max()) < 1e-4                                  # silence is 0, as natively
    audio = demo.loops.render_loop("drum", "funk", 7)                          # (32000,)
    ours = MF.to_musicnn_level(MF.native_grid_adapter()(torch.from_numpy(np.asarray(M.log_mel(audio))).T[None, None]))
    native = P.musicnn_log_mel(audio)[0, :125]                                # musicnn's own input, (125, 96)
    rms = float(np.sqrt(((ours[0, 0].numpy() - native) ** 2).mean()))
    assert rms < 0.7 < native.std(), rms


# ---------------------------------------------------------------------------------------------
# mtt_vgg as a frozen projector network.
# ---------------------------------------------------------------------------------------------
def test_mtt_vgg_four_stage_shapes_for_a_one_second_chunk(mtt_vgg):
    maps = mtt_vgg.stages(torch.randn(3, 1, 100, 64))
    assert [tuple(m.shape) for m in maps] == [(3, 128, 30, 48), (3, 128, 15, 24), (3, 128, 7, 12), (3, 128, 3, 6)]
    assert mtt_vgg.stage_channels == (128, 128, 128, 128)
    affine = featurenet.build("mtt_vgg", FeatureContext(adapter="affine"))
    assert [tuple(m.shape) for m in affine.stages(torch.randn(3, 1, 100, 64))] == \
        [(3, 128, 49, 32), (3, 128, 24, 16), (3, 128, 12, 8), (3, 128, 6, 4)]


def test_gradients_reach_the_input_through_the_adapter_and_the_frozen_net_but_never_its_weights(mtt_vgg):
    x = torch.randn(2, 1, 100, 64, requires_grad=True)
    sum(m.square().mean() for m in mtt_vgg.stages(x)).backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
    assert all(not p.requires_grad and p.grad is None for p in mtt_vgg.parameters())


def test_mtt_vgg_stays_in_eval_mode(mtt_vgg):
    mtt_vgg.train(True)
    assert not any(m.training for m in mtt_vgg.modules())


def test_affine_map_gives_the_input_batch_norm_the_z_scores_themselves():
    net = featurenet.build("mtt_vgg", FeatureContext(adapter="affine"))
    z = torch.randn(2, 1, 100, 64)
    bn = net.vgg.bn_input
    np.testing.assert_allclose(((net.adapt(z) - bn.running_mean) / (bn.running_var + bn.eps).sqrt()).numpy(),
                               z.numpy(), atol=1e-4)


# ---------------------------------------------------------------------------------------------
# The evaluation embedding.
# ---------------------------------------------------------------------------------------------
def test_embedding_has_both_ways_in_and_they_see_the_same_loop_alike():
    emb = MF.load_embedding()
    audio = np.stack([demo.loops.render_loop("drum", g, 11) for g in ("house", "rock")] +
                     [demo.loops.render_loop("synth", "pad_chords", 11)])     # (3, 32000)
    from_audio = MF.embed_audio(emb, audio)                                   # (3, 200)
    from_mels = MF.embed_mels(emb, np.stack([M.log_mel(a) for a in audio]))  # (3, 200)
    assert from_audio.shape == from_mels.shape == (3, MF.EMBED_DIM)
    dist = torch.cdist(from_audio, from_mels)                                 # (3, 3)
    assert int(dist[2].argmin()) == 2 and int(dist[:, 2].argmin()) == 2      # the synth loop finds itself


def test_evaluation_leads_with_kad_on_msd_musicnn_from_audio_and_from_mels_beside_fad_and_kid():
    rng = np.random.default_rng(0)
    audio = np.stack([demo.loops.render_loop("drum", g, s) for g, s in (("house", 1), ("rock", 2), ("funk", 3))] +
                     [(0.1 * rng.standard_normal(M.LOOP_SAMPLES)).astype(np.float32) for _ in range(3)])
    nets = EE.EvalNets("cpu", np.zeros(64, np.float32), np.ones(64, np.float32), EE.RandomVGG16(fc_dim=64))
    nets.musicnn = MF.load_embedding()
    feats = EE.embed_set(audio, np.stack([M.log_mel(a) for a in audio]), nets, verbose=False)
    assert feats["musicnn"].shape == feats["musicnn_mel"].shape == (6, MF.EMBED_DIM)
    m = E.compute_metrics(EE.take(feats, slice(0, 3)), EE.take(feats, slice(3, 6)), k=2, kid_subsets=2, kid_subset_size=3)
    assert m["FAD_musicnn"] > 0 and m["FAD_musicnn_mel"] > 0 and np.isfinite(m["KID_musicnn"])
    assert np.isfinite(m["KAD_musicnn"]) and np.isfinite(m["KAD_musicnn_mel"]) and 0 < m["KAD_musicnn_p"] <= 1
    assert R.ROW_FIELDS.index("KAD_musicnn") == R.ROW_FIELDS.index("IS_clf_acc") + 1      # the headline column
    line = R.format_row(R.checkpoint_row({"step": 1}, "runs/x/a.pt", m))
    assert line.index("KAD_musicnn") < line.index("IS ") and "FAD_musicnn" in line     # printed first


def test_mtt_vgg_drives_a_projected_discriminator_alone_and_beside_aisfx(mtt_vgg):
    nets = [mtt_vgg] + ([featurenet.build("aisfx", FeatureContext())] if importlib.util.find_spec("aisfx") else [])
    D = ProjectedDiscriminator(nets)                                          # row E; with aisfx, row G
    logits = D(torch.randn(2, 1, M.N_FRAMES, M.N_MELS))
    assert len(logits) == 4 * len(nets) and all(l.shape[0] == 2 and torch.isfinite(l).all() for l in logits)
    assert D.projectors[0].scale_sizes() == [(120, 96), (60, 48), (28, 24), (12, 12)]   # 2 chunks x2 upsampled
