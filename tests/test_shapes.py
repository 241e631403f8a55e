"""The data flow of pjloop, shape by shape: the compact spec to read (and run) first, `pytest -m shapes`.

    waveform (32000,) --mel.log_mel--> log10 mel (F=64, T=200) --mel.to_gan--> (B, 1, T=200, F=64)
    --Projector--> two 1-s chunks 2 x (B, 1, 100, 64) --frozen feature net--> 4 stages (B, C_l, T_l, F_l)
    --CCM, CSM--> 4 x (B, C''_l, 2 T_l x2, F_l x2) --heads D_l--> 4 x (B, N_l) patch logits
    z (B, 32) [, genre c (B,)] --mapping--> ws (B, 10, 64) --synthesis--> (B, 1, T=200, F=64)
    --mel.from_gan--> raw log10 mel (B, 64, 200) --vocoder (MelGAN / the fast one)--> audio (B, 32000)

Every network is built with random weights and small widths where the width is a parameter (nothing is
downloaded or trained): the shapes do not depend on either. Measured on two shared CPU cores: 14 s for
`pytest -m shapes`, of which about 5 s is pytest collecting the whole test folder (`pytest tests/test_shapes.py`
skips that) and 4 s the first call of librosa's filterbank.
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import mel
import scnn
import vggish
from discriminator import ProjectedDiscriminator, StyleGAN2Discriminator
from featurenet import FeatureNet
from generator import Generator, GeneratorConfig
from melgan import MelGANConfig, MelGANGenerator, MelGANVocoder
from projector import Projector
from standins import musicnn_features, sfxnet
from standins.musicnn_port import MusicnnVGG
from vocos import VocosConfig, VocosGenerator

pytestmark = [pytest.mark.shapes, pytest.mark.usefixtures("one_thread")]     # one_thread: tests/conftest.py
B = 2                  # batch: two loops (the heads' batch-norm and minibatch-std need more than one)
WIDTH = 8              # SCNN base width and G / vocoder channel cap: the shapes are the same at any width
N_GENRES = 3           # a conditional G and D, as trained with --conditional yes


def shapes(tensors) -> list[tuple[int, ...]]:
    return [tuple(t.shape) for t in tensors]


def loops(b: int = B) -> torch.Tensor:
    """b reproducible standardised mels (b, 1, T=200, F=64), the GAN's layout."""
    return torch.randn(b, 1, mel.N_FRAMES, mel.N_MELS, generator=torch.Generator().manual_seed(0))


def scnn_loop(width: int = WIDTH) -> scnn.SCNNFeatures:
    """An SCNN_Loop-style feature net (the loop-genre classifier) with random weights, frozen."""
    net = scnn.ShortChunkCNN(scnn.SCNNConfig(n_classes=N_GENRES, width=width))
    stats = (np.zeros(mel.N_MELS), np.ones(mel.N_MELS))
    return scnn.SCNNFeatures(net, "scnn_loop", stats).freeze()


# ------------------------------------------------------------------------------------------------
# The mel front end (mel.py)
# ------------------------------------------------------------------------------------------------

def test_a_two_second_waveform_is_a_64_band_200_frame_log_mel_and_the_gan_sees_it_time_major():
    audio = np.random.default_rng(0).standard_normal(mel.LOOP_SAMPLES).astype(np.float32)   # (32000,)
    assert mel.LOOP_SAMPLES == 32_000 and mel.N_FRAMES == 200 and mel.CHUNK_FRAMES == 100
    m = mel.log_mel(audio)
    assert m.shape == (64, 200)                                                  # (F, T)
    batch = mel.log_mel(torch.from_numpy(np.stack([audio, -audio])))             # (B, 32000) -> (B, F, T)
    assert tuple(batch.shape) == (B, 64, 200)
    mean, std = mel.band_stats(batch.numpy())                                    # (64,) each
    assert mean.shape == std.shape == (64,)
    x = mel.to_gan(batch, mean, std)
    assert tuple(x.shape) == (B, 1, 200, 64)                                     # (B, 1, T, F)
    assert tuple(mel.to_gan(m, mean, std).shape) == (1, 1, 200, 64)              # one mel -> a batch of one
    torch.testing.assert_close(x[0, 0, :, 5], (batch[0, 5] - mean[5]) / std[5])  # time runs down, bands across
    raw = mel.from_gan(x, mean, std)
    assert raw.shape == (B, 64, 200) and isinstance(raw, np.ndarray)             # back to (B, F, T) for the vocoder


# ------------------------------------------------------------------------------------------------
# The discriminator side: chunks, feature networks, CCM / CSM, heads
# ------------------------------------------------------------------------------------------------

class ChunkRecorder(FeatureNet):
    """A feature net that keeps what it is given; its 'stages' are average pools of the input."""
    name, stage_channels = "recorder", (1, 1, 1, 1)

    def __init__(self):
        super().__init__()
        self.seen = []

    def stages(self, x):
        self.seen.append(x)
        return [F.avg_pool2d(x, 2 ** k) for k in range(1, 5)]                    # 50x32, 25x16, 12x8, 6x4


def test_the_feature_network_sees_each_loop_as_two_one_second_chunks_first_second_first():
    net = ChunkRecorder()
    x = loops()
    Projector(net)(x)
    (chunks,) = net.seen                                                         # one pass for both seconds
    assert tuple(chunks.shape) == (2 * B, 1, 100, 64)                            # (2B, 1, T=100, F=64)
    assert torch.equal(chunks[:B], x[:, :, :100]) and torch.equal(chunks[B:], x[:, :, 100:])


@pytest.mark.parametrize("build, channels, sizes", [
    # SCNN (Won et al.'s stride-2 residual blocks; channels b, b, 2b, 2b): ceil halvings
    (scnn_loop, (8, 8, 16, 16), [(50, 32), (25, 16), (13, 8), (7, 4)]),
    # VGGish's conv groups (2x2 max-pools, floors), random weights in the official layout
    (lambda: vggish.VGGishFeatures(vggish.make_features()), (64, 128, 256, 512),
     [(50, 32), (25, 16), (12, 8), (6, 4)]),
    # aisfx on our own grid ('affine'): no pool after its fourth block
    (lambda: sfxnet.SfxFeatures(sfxnet.SfxCNN()), (64, 128, 256, 512), [(50, 32), (25, 16), (12, 8), (12, 8)]),
    # aisfx on its native grid ('grid', the default): 43 frames of 23 ms x 96 bands
    (lambda: sfxnet.SfxFeatures(sfxnet.SfxCNN(), sfxnet.native_grid_adapter()), (64, 128, 256, 512),
     [(21, 48), (10, 24), (5, 12), (5, 12)]),
    # musicnn's VGG (mtt_vgg) on its native grid: 62 frames of 16 ms x 96 bands, pool1..pool4
    (lambda: musicnn_features.MusicnnVGGFeatures(MusicnnVGG(), musicnn_features.native_grid_adapter()),
     (128,) * 4, [(30, 48), (15, 24), (7, 12), (3, 6)]),
], ids=["scnn_loop", "vgg", "aisfx_affine", "aisfx_grid", "mtt_vgg"])
def test_every_feature_network_turns_a_one_second_chunk_into_four_stages(build, channels, sizes):
    net = build().freeze()
    chunk = loops()[:, :, :mel.CHUNK_FRAMES]                                     # (B, 1, 100, 64)
    with torch.no_grad():
        stages = net.stages(chunk)                                               # 4 x (B, C_l, T_l, F_l)
    assert tuple(net.stage_channels) == channels
    assert shapes(stages) == [(B, c, t, f) for c, (t, f) in zip(channels, sizes)]


def test_ccm_and_csm_mix_the_four_stages_into_four_maps_of_both_seconds_side_by_side():
    net = scnn_loop()                                                            # stages 8, 8, 16, 16 channels
    p = Projector(net)                                                           # expand: the paper's widths
    assert shapes(getattr(p, f"ccm{i}_weight") for i in range(4)) == \
        [(64, 8, 1, 1), (128, 8, 1, 1), (256, 16, 1, 1), (512, 16, 1, 1)]       # CCM: 1x1, C_l -> C'_l
    assert shapes(getattr(p, f"csm{i}_weight") for i in range(4)) == \
        [(64, 64, 3, 3), (64, 128, 3, 3), (128, 256, 3, 3), (256, 512, 3, 3)]   # CSM: 3x3, C'_l -> C''_l
    with torch.no_grad():
        out = p(loops())
    # stage (T_l, F_l) of a chunk -> (2 T_l, F_l) for the two seconds -> x2 per axis by the CSM's upsampling
    assert shapes(out) == [(B, 64, 200, 64), (B, 64, 100, 32), (B, 128, 52, 16), (B, 256, 28, 8)]
    assert p.scale_sizes() == [(200, 64), (100, 32), (52, 16), (28, 8)]
    with torch.no_grad():
        plain = Projector(net, upsample=False)(loops())                          # train.py's CPU preset
    assert shapes(plain) == [(B, 64, 100, 32), (B, 64, 50, 16), (B, 128, 26, 8), (B, 256, 14, 4)]


def test_the_four_heads_give_patch_logits_unconditional_and_per_genre():
    D = ProjectedDiscriminator([scnn_loop()])
    x = loops()
    with torch.no_grad():
        logits = D(x)                                                            # 4 x (B, N_l)
        cond = ProjectedDiscriminator([scnn_loop()], c_dim=N_GENRES)(x, torch.tensor([0, 2]))
    # each head pools its map to about 8 px per axis, then a 4x4 conv: 200x64 -> 6x8 -> 3x5 patches ...
    assert shapes(logits) == [(B, 15), (B, 15), (B, 15), (B, 20)]                # ... 28x8 -> 7x8 -> 4x5
    assert [h.out_size for h in D.heads[0]] == [(3, 5), (3, 5), (3, 5), (4, 5)]
    assert shapes(cond) == shapes(logits)                                        # genre-projected, same patches
    with torch.no_grad():
        fusion = ProjectedDiscriminator([scnn_loop(), sfxnet.SfxFeatures(sfxnet.SfxCNN()).freeze()],
                                        expand=False, upsample=False)(x)
    assert len(fusion) == 8 and all(t.shape[0] == B for t in fusion)             # 4 heads per network


def test_the_baseline_discriminator_gives_one_logit_per_loop():
    D = StyleGAN2Discriminator(max_channels=WIDTH)                               # --features none
    with torch.no_grad():
        assert tuple(D(loops()).shape) == (B, 1)
        assert D.final_size == (12, 4)                                           # 200x64 halved four times
        assert tuple(StyleGAN2Discriminator(WIDTH, c_dim=N_GENRES)(loops(), torch.tensor([1, 0])).shape) == (B, 1)


# ------------------------------------------------------------------------------------------------
# The generator: mapping z -> w, synthesis w -> mel
# ------------------------------------------------------------------------------------------------

def test_mapping_turns_z_and_an_optional_genre_into_one_w_per_synthesis_layer():
    z = torch.randn(B, 32)                                                       # (B, z_dim=32)
    G = Generator(GeneratorConfig(max_channels=WIDTH))
    assert G.num_ws == 10                                                        # const conv + tomel, 2 per upsampling block x4
    assert tuple(G.mapping(z).shape) == (B, 10, 64)                              # (B, num_ws, w_dim=64)
    Gc = Generator(GeneratorConfig(max_channels=WIDTH, c_dim=N_GENRES))
    assert tuple(Gc.mapping(z, torch.tensor([0, 2])).shape) == (B, 10, 64)
    assert tuple(Gc.mapping.embed.weight.shape) == (32, N_GENRES)                # one-hot genre -> z_dim


def test_synthesis_grows_the_13x4_constant_to_208x64_and_crops_it_to_200_frames():
    G = Generator(GeneratorConfig(max_channels=WIDTH)).eval()
    sizes = []
    hooks = [conv.register_forward_hook(lambda m, i, o: sizes.append(tuple(o.shape)))
             for conv in [G.synthesis.conv1, *G.synthesis.convs]]
    with torch.no_grad():
        ws = G.mapping(torch.randn(B, 32))                                       # (B, 10, 64)
        out = G.synthesis(ws)
    for h in hooks:
        h.remove()
    assert sizes == [(B, WIDTH, 13, 4), (B, WIDTH, 26, 8), (B, WIDTH, 52, 16), (B, WIDTH, 104, 32),
                     (B, WIDTH, 208, 64)]
    assert tuple(out.shape) == (B, 1, 200, 64)                                   # (B, 1, T, F): D's input layout
    with torch.no_grad():
        assert tuple(G(torch.randn(B, 32)).shape) == (B, 1, 200, 64)


# ------------------------------------------------------------------------------------------------
# The vocoders: raw log10 mel (B, 64, 200) -> audio (B, 32000)
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("generator", [
    lambda: MelGANGenerator(MelGANConfig(g_channels=16)),                      # the paper's MelGAN
    lambda: VocosGenerator(VocosConfig(dim=16, blocks=2)),                      # the fast vocoder (vocos.py)
], ids=["melgan", "fast"])
def test_a_vocoder_turns_each_200_frame_mel_into_exactly_32000_samples(generator):
    G = Generator(GeneratorConfig(max_channels=WIDTH)).eval()
    with torch.no_grad():
        fake = G(torch.randn(B, 32))                                             # (B, 1, 200, 64) standardised
    raw = mel.from_gan(fake, np.zeros(64), np.ones(64))                          # (B, 64, 200) log10 mel
    net = generator()
    with torch.no_grad():
        assert tuple(net(torch.from_numpy(raw)).shape) == (B, 1, 32_000)         # 160 samples per frame
    audio = MelGANVocoder(net, "test", device="cpu")(raw)                        # circular: the loop's seam
    assert audio.shape == (B, 32_000) and audio.dtype == np.float32
    assert mel.log_mel(audio).shape == (B, 64, 200)                              # and back to the front end
