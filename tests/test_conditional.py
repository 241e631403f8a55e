"""Genre conditioning as a spec: labels in, genres out; the same z in two genres gives two loops,
the same genre twice the same loop; a morph starts at A and ends at B; variations run from copies to
strangers; the genre names survive a checkpoint; an unlabelled set and an unknown genre give one line each."""
import json
import subprocess
import sys
from dataclasses import asdict

import numpy as np
import pytest
import soundfile as sf
import torch

import conditional
import sample
import train
from dataset import REPO, finalize_dataset, save_loop
from discriminator import ProjectedDiscriminator, StyleGAN2Discriminator
from generator import Generator, GeneratorConfig
from mel import LOOP_SAMPLES
from plumbing.checkpoint import load_checkpoint, save_checkpoint
from stubs import random_mel, stub
from train_fixtures import cfg_for, tiny_drum_set   # noqa: F401  (fixture)
import demo.loops

K = 3   # genres of the hand-made generators below


def tiny_g(c_dim=K, seed=0):
    torch.manual_seed(seed)
    return Generator(GeneratorConfig(max_channels=8, c_dim=c_dim)).eval()


def test_a_conditional_generator_and_both_discriminators_take_labels_and_keep_their_shapes():
    G = tiny_g()
    z, c = torch.randn(4, 32), torch.tensor([0, 1, 2, 1])
    assert G(z, c).shape == (4, 1, 200, 64)
    assert G.mapping(z, c).shape == (4, G.num_ws, 64)
    D = ProjectedDiscriminator([stub("vgg")], c_dim=K)
    logits = D(random_mel(4), c)
    assert len(logits) == 4 and all(x.ndim == 2 and x.shape[0] == 4 for x in logits)
    assert [x.shape for x in logits] == [x.shape for x in ProjectedDiscriminator([stub("vgg")])(random_mel(4))]
    assert StyleGAN2Discriminator(max_channels=8, c_dim=K)(random_mel(4), c).shape == (4, 1)


def test_the_same_z_in_two_genres_gives_two_loops_and_the_same_genre_twice_the_same_loop():
    G = tiny_g()
    z = torch.randn(1, 32).repeat(3, 1)
    out = G(z, torch.tensor([0, 1, 0]), noise_mode="const")
    assert torch.equal(out[0], out[2])
    assert (out[0] - out[1]).abs().max() > 1e-3


def test_every_discriminator_head_judges_the_genre_too():
    c0, c1 = torch.zeros(2, dtype=torch.long), torch.ones(2, dtype=torch.long)
    D = ProjectedDiscriminator([stub("scnn")], c_dim=K).eval()
    mel = random_mel(2)
    for a, b in zip(D(mel, c0), D(mel, c1)):
        assert not torch.allclose(a, b)
    B = StyleGAN2Discriminator(max_channels=8, c_dim=K)
    assert not torch.allclose(B(mel, c0), B(mel, c1))


def test_labels_are_required_by_a_conditional_model_and_refused_by_an_unconditional_one():
    with pytest.raises(ValueError, match="conditional on 3 genres"):
        tiny_g()(torch.randn(2, 32))
    with pytest.raises(ValueError, match="unconditional"):
        tiny_g(c_dim=0)(torch.randn(2, 32), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        tiny_g()(torch.randn(1, 32), torch.tensor([3]))
    with pytest.raises(ValueError, match="unconditional"):
        ProjectedDiscriminator([stub("vgg")])(random_mel(2), torch.tensor([0, 1]))
    assert not any("embed" in k or "w_avg_c" in k for k in tiny_g(c_dim=0).state_dict())   # old checkpoints load


def test_truncation_pulls_a_genre_towards_its_own_average_w():
    G = tiny_g().train()
    for _ in range(3):
        G.mapping(torch.randn(6, 32), torch.tensor([0, 0, 1, 1, 2, 2]))   # training passes track the averages
    assert (G.mapping.w_avg_c.abs().sum(1) > 0).all()
    c = torch.tensor([0, 1, 2])
    ws = G.mapping(torch.randn(3, 32), c, truncation_psi=0.0, update_w_avg=False)
    torch.testing.assert_close(ws[:, 0], G.mapping.w_avg_c[c])


def test_the_genre_shift_starts_at_zero_and_learns_only_the_asked_genres_offsets():
    G, plain = tiny_g(), Generator(GeneratorConfig(max_channels=8, c_dim=K, genre_shift=False))
    plain.load_state_dict({k: v for k, v in G.state_dict().items() if k != "mapping.genre_w"})
    assert G.mapping.genre_w.shape == (K, 64) and plain.mapping.genre_w is None
    z, c = torch.randn(4, 32), torch.tensor([0, 2, 2, 0])
    assert torch.equal(G.mapping(z, c), plain.mapping(z, c))       # zero at the start: StyleGAN2-ADA's mapping
    G.mapping(z, c).square().sum().backward()
    moved = G.mapping.genre_w.grad.abs().sum(1) > 0                 # (K,) which genres' offsets get a gradient
    assert moved.tolist() == [True, False, True]
    with torch.no_grad():
        G.mapping.genre_w[2] += 1.0                                  # genre 2's offset moves its w, and only its
    assert torch.allclose(G.mapping(z, c)[1:3], plain.mapping(z, c)[1:3] + 1.0, atol=1e-6)
    assert torch.equal(G.mapping(z, c)[[0, 3]], plain.mapping(z, c)[[0, 3]])


def test_a_checkpoint_from_before_the_genre_shift_still_samples(tmp_path):
    G = Generator(GeneratorConfig(max_channels=8, c_dim=K, genre_shift=False))
    g_config = {k: v for k, v in asdict(G.cfg).items() if k != "genre_shift"}    # written before the flag
    save_checkpoint({"g_ema": G.state_dict(), "g_config": g_config, "mel_mean": torch.zeros(64),
                     "mel_std": torch.ones(64), "features": "none", "loops": "drum", "step": 0,
                     "genres": ["a", "b", "c"]}, tmp_path / "old.pt")
    loaded, _ = sample.load_generator(tmp_path / "old.pt")
    assert loaded.mapping.genre_w is None


def test_a_morph_starts_exactly_at_A_and_ends_exactly_at_B():
    G = tiny_g()
    ck = {"mel_mean": torch.zeros(64), "mel_std": torch.ones(64), "genres": ["a", "b", "c"]}
    mels, recipes = sample.morph(G, ck, (3, 9), 5, [0, 2], 0.8)
    za, zb = conditional.z_of_seed(3, 32), conditional.z_of_seed(9, 32)
    a = sample.mels_from_z(G, ck, za[None], 0.8, "const", torch.tensor([0]))
    b = sample.mels_from_z(G, ck, zb[None], 0.8, "const", torch.tensor([2]))
    assert mels.shape == (5, 64, 200)
    np.testing.assert_allclose(mels[0], a[0], atol=1e-5)
    np.testing.assert_allclose(mels[-1], b[0], atol=1e-5)
    steps = np.abs(np.diff(mels, axis=0)).mean(axis=(1, 2))
    assert steps.max() < np.abs(a[0] - b[0]).mean()              # a walk in steps, not a jump
    assert recipes[0]["genre"] == "a" and recipes[-1]["genre"] == "c" and recipes[2]["t"] == 0.5


def test_variations_go_from_copies_to_strangers_as_the_spread_grows():
    z = conditional.z_of_seed(5, 32)
    dist = [float((conditional.variation_latents(5, 64, s, 32) - z).norm(dim=1).mean()) for s in (0, 0.1, 0.5, 3)]
    assert dist[0] == 0 and dist[0] < dist[1] < dist[2] < dist[3]
    stranger = (torch.randn(4096, 32) - torch.randn(4096, 32)).norm(dim=1).mean()
    assert abs(dist[3] - stranger) < 0.15 * stranger             # spread 3: about as far as an unrelated loop
    assert conditional.variation_latents(5, 64, 1.0, 32).std() == pytest.approx(1.0, abs=0.1)


@pytest.fixture(scope="module")
def cond_run(tmp_path_factory, tiny_drum_set):
    """Two conditional steps of the StyleGAN2 baseline on the two-genre tiny set."""
    tmp = tmp_path_factory.mktemp("cond")
    return train.train(cfg_for(tmp, tiny_drum_set, "none", steps=2, conditional=True), device="cpu")


def test_genre_names_survive_a_checkpoint_round_trip_and_a_resume(cond_run, tiny_drum_set):
    ck = load_checkpoint(cond_run / "latest.pt")
    assert ck["genres"] == sorted(demo.loops.DRUM_GENRES[:2]) and ck["g_config"]["c_dim"] == 2
    G, ck2 = sample.load_generator(cond_run)
    assert G.c_dim == 2 and ck2["genres"] == ck["genres"]
    cfg = cfg_for(cond_run.parent, tiny_drum_set, "none", steps=3, conditional=True)
    assert load_checkpoint(train.train(cfg, device="cpu", resume=True) / "latest.pt")["step"] == 3


def test_a_checkpoint_of_the_removed_genre_guide_still_resumes_and_samples(cond_run, tiny_drum_set, tmp_path):
    """Runs trained with --genre-guide (since removed) hold `genre_guide` in their config: it is ignored."""
    ck = load_checkpoint(cond_run / "latest.pt")
    ck["config"]["genre_guide"] = 1.0
    save_checkpoint(ck, tmp_path / "run" / "latest.pt")
    G, old = sample.load_generator(tmp_path / "run")
    assert G.c_dim == 2 and old["config"]["genre_guide"] == 1.0
    cfg = cfg_for(tmp_path, tiny_drum_set, "none", steps=ck["step"] + 1, conditional=True)
    assert not hasattr(cfg, "genre_guide")
    out = train.train(cfg, device="cpu", resume=True)
    assert load_checkpoint(out / "latest.pt")["step"] == ck["step"] + 1


def test_a_conditional_checkpoint_refuses_an_unconditional_resume(cond_run, tiny_drum_set):
    cfg = cfg_for(cond_run.parent, tiny_drum_set, "none", steps=9, conditional=False)
    with pytest.raises(Exception, match="conditional"):
        train.train(cfg, device="cpu", resume=True)


def test_a_resume_keeps_the_genre_shift_the_run_was_trained_with(cond_run, tiny_drum_set):
    cfg = cfg_for(cond_run.parent, tiny_drum_set, "none", steps=9, conditional=True, genre_shift=False)
    with pytest.raises(Exception, match="genre_shift"):
        train.train(cfg, device="cpu", resume=True)


def test_sampling_by_genre_writes_a_section_per_genre_and_recipes_that_remake_every_loop(cond_run, tmp_path):
    out = tmp_path / "s"
    sample.main([str(cond_run), "-n", "2", "--out", str(out), "--genre", "all", "--truncation", "0.7"])
    G, ck = sample.load_generator(cond_run)
    page = (out / "index.html").read_text()
    for g, name in enumerate(ck["genres"]):
        assert (out / name / "grid.png").is_file() and f"<h2>{name}</h2>" in page
        r = json.loads((out / name / "loop_0001.json").read_text())
        assert (r["seed"], r["genre"], r["truncation"]) == (1, name, 0.7)
        again = sample.mels_from_z(G, ck, torch.tensor([r["z"]]), r["truncation"], "const", torch.tensor([g]))
        np.testing.assert_allclose(np.load(out / name / "loop_0001.npy"), again[0], atol=1e-5)
    assert not np.allclose(*(np.load(out / n / "loop_0000.npy") for n in ck["genres"]))   # same seed, two genres


def test_a_morph_export_is_one_wav_of_k_bars_and_variations_start_from_their_loop(cond_run, tmp_path):
    G, ck = sample.load_generator(cond_run)
    genre = ck["genres"][1]
    sample.main([str(cond_run), "--out", str(tmp_path / "m"), "--morph", "2", "7", "--steps", "3", "--genre", genre])
    wav, _ = sf.read(tmp_path / "m" / "morph.wav")
    assert len(wav) == 3 * LOOP_SAMPLES
    joined = np.load(tmp_path / "m" / "morph.npy")
    np.testing.assert_array_equal(joined, np.concatenate([np.load(tmp_path / "m" / f"loop_{k:04d}.npy")
                                                          for k in range(3)], axis=1))
    sample.main([str(cond_run), "-n", "2", "--out", str(tmp_path / "v"), "--variations-of", "2", "--genre", genre])
    np.testing.assert_allclose(np.load(tmp_path / "v" / "loop_0000.npy"), joined[:, :200], atol=1e-5)  # = morph's A
    assert json.loads((tmp_path / "v" / "loop_0002.json").read_text())["variation_of"] == 2


def one_line_error(*args) -> str:
    res = subprocess.run([sys.executable, *map(str, args)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert res.returncode != 0
    lines = [ln for ln in res.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, res.stderr
    return lines[0]


def test_an_unknown_genre_gives_one_line_listing_the_known_ones(cond_run):
    line = one_line_error("sample.py", cond_run, "--genre", "polka", "--out", cond_run.parent / "x")
    assert "polka" in line and all(g in line for g in sorted(demo.loops.DRUM_GENRES[:2]))


def test_an_unlabelled_data_set_is_refused_with_one_line_naming_the_remedy(tmp_path, tiny_drum_set):
    data = tmp_path / "unlabelled"
    rows = []
    for i in range(4):
        save_loop(data, f"u{i}", demo.loops.render_loop("drum", demo.loops.DRUM_GENRES[0], seed=i))
        rows.append({"id": f"u{i}", "source": "t", "bar": 0, "bpm": 120, "genre": ""})
    finalize_dataset(data, rows, [])
    line = one_line_error("train.py", "--data", data, "--features", "none", "--conditional", "yes",
                          "--out", tmp_path / "run", "--steps", "1", "--device", "cpu")
    assert "genre label" in line and "--labels" in line and "sub-folders" in line


def test_under_torchrun_both_ranks_end_with_the_same_conditional_generator(tmp_path, tiny_drum_set):
    """Two processes (gloo): the genre averages of w are averaged over the ranks like w_avg, so G and its EMA
    stay bit-identical on every rank."""
    from test_distributed import launch, reports
    cfg = cfg_for(tmp_path, tiny_drum_set, "none", steps=2, minutes=10.0, conditional=True)
    res = launch(cfg, tmp_path, report=tmp_path / "report")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    r0, r1 = reports(tmp_path / "report")
    assert r0["G"] == r1["G"] and r0["G_ema"] == r1["G_ema"]
    assert load_checkpoint(tmp_path / "run" / "latest.pt")["genres"] == sorted(demo.loops.DRUM_GENRES[:2])
