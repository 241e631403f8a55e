"""train.py as a spec: one step for every kind of discriminator, frozen parts untouched, exact resume,
crash-safe checkpoints, clear refusals. Tiny widths so that the whole file runs in about a minute on CPU."""
import os
from pathlib import Path

import pytest
import torch

import train_run
import train
from plumbing.devices import autocast_for
from plumbing.distributed import World
from plumbing.checkpoint import CheckpointError, load_checkpoint
from train_fixtures import TINY, cfg_for, tiny_drum_set   # noqa: F401  (fixture)
from discriminator import ProjectedDiscriminator, frozen_fingerprint
import featurenet
from dataset import LoopMelDataset
import vggish
import signal
import subprocess
import sys
import errno

import losses
import melgan
from stubs import full_disk, temporary_files


def test_one_step_baseline_stylegan2(tmp_path, tiny_drum_set):
    out = train.train(cfg_for(tmp_path, tiny_drum_set, "none", steps=1), device="cpu")
    ck = load_checkpoint(out / "latest.pt")
    assert ck["step"] == 1 and ck["features"] == []


def test_one_step_offline_general_network_and_frozen_parts_untouched(tmp_path, tiny_drum_set):
    out = train.train(cfg_for(tmp_path, tiny_drum_set, "aisfx", steps=2), device="cpu")
    ck = load_checkpoint(out / "latest.pt")
    # the fingerprint of the feature net + CCM/CSM saved at the start equals the one after two D and G steps
    data = LoopMelDataset(tiny_drum_set)       # the adapter's level and grid come from the set's mel statistics
    ctx = featurenet.FeatureContext(data_dir=tiny_drum_set, mel_mean=data.mean, mel_std=data.std)
    net = featurenet.build("aisfx", ctx)
    D = ProjectedDiscriminator([net], seed=0, csm_kernel=3)
    D.load_state_dict(ck["d"])
    assert frozen_fingerprint(D) == ck["frozen"]
    # the D optimiser holds exactly the heads: no feature-net, CCM or CSM tensor is in it
    n_opt = len(ck["opt_d"]["param_groups"][0]["params"])
    assert n_opt == len([p for p in D.parameters() if p.requires_grad]) == len(list(D.heads.parameters()))
    fresh = featurenet.build("aisfx", ctx).state_dict()
    for k, v in fresh.items():   # the feature network's weights AND batch-norm buffers did not move
        assert torch.equal(ck["d"][next(n for n in ck["d"] if n.endswith(k) and ck["d"][n].shape == v.shape)], v)


def test_one_step_vggish_with_fixture_weights_in_official_layout(tmp_path, tiny_drum_set, monkeypatch):
    fixture = tmp_path / "vggish_fixture.pth"
    torch.save(vggish.VGGish().state_dict(), fixture)      # random values, official key layout
    out = train.train(cfg_for(tmp_path, tiny_drum_set, "vgg", steps=1, vggish=str(fixture)), device="cpu")
    assert load_checkpoint(out / "latest.pt")["features"] == ["vgg"]


def test_one_step_scnn_loop_and_fusion(tmp_path, tiny_drum_set, monkeypatch):
    monkeypatch.setenv("PJLOOP_HOME", str(tmp_path))   # scnn_loop's checkpoint is trained on first use, here
    out = train.train(cfg_for(tmp_path, tiny_drum_set, "aisfx,scnn_loop", steps=1), device="cpu")
    ck = load_checkpoint(out / "latest.pt")
    assert ck["features"] == ["aisfx", "scnn_loop"]


def test_missing_vggish_weights_stop_before_any_work(tmp_path, monkeypatch):
    monkeypatch.delenv("PJLOOP_VGGISH", raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(vggish, "_download", lambda *a, **k: (_ for _ in ()).throw(OSError("offline")))
    with pytest.raises(vggish.VGGishWeightsMissing, match="http"):
        train.train(train.TrainConfig(features="vgg", data=str(tmp_path / "nonexistent"), out=str(tmp_path / "r")),
                    device="cpu")
    assert not (tmp_path / "r").exists()


def _weights(path):
    return load_checkpoint(path)["g"]


def _same_state(a_path, b_path):
    a, b = load_checkpoint(a_path), load_checkpoint(b_path)
    assert a["step"] == b["step"]
    for part in ("g", "g_ema", "d"):          # d includes batch-norm and spectral-norm buffers
        for k in a[part]:
            assert torch.equal(a[part][k], b[part][k]), (part, k)


@pytest.mark.parametrize("features", ["none", "aisfx"])
def test_resume_is_exact(tmp_path, tiny_drum_set, features):
    straight = train.train(cfg_for(tmp_path / "a", tiny_drum_set, features, steps=4), device="cpu")
    train.train(cfg_for(tmp_path / "b", tiny_drum_set, features, steps=2), device="cpu")
    resumed = train.train(cfg_for(tmp_path / "b", tiny_drum_set, features, steps=4), device="cpu", resume=True)
    _same_state(straight / "latest.pt", resumed / "latest.pt")


def test_ctrl_c_finishes_the_step_saves_it_and_resume_stays_exact(tmp_path, tiny_drum_set, monkeypatch):
    straight = train.train(cfg_for(tmp_path / "a", tiny_drum_set, "none", steps=3), device="cpu")
    real_g_step, calls = train.g_step, []

    def ctrl_c_in_the_middle_of_step_2(*a):
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGINT)          # as if the user pressed Ctrl-C here
        return real_g_step(*a)
    monkeypatch.setattr(train, "g_step", ctrl_c_in_the_middle_of_step_2)
    out = train.train(cfg_for(tmp_path / "b", tiny_drum_set, "none", steps=3), device="cpu")
    assert load_checkpoint(out / "latest.pt")["step"] == 2        # step 2 completed, then saved
    monkeypatch.undo()
    train.train(cfg_for(tmp_path / "b", tiny_drum_set, "none", steps=3), device="cpu", resume=True)
    _same_state(straight / "latest.pt", out / "latest.pt")


def test_an_existing_run_is_not_overwritten_without_resume(tmp_path, tiny_drum_set):
    out = train.train(cfg_for(tmp_path, tiny_drum_set, "none", steps=1), device="cpu")
    before = _weights(out / "latest.pt")
    with pytest.raises(CheckpointError, match="--resume"):
        train.train(cfg_for(tmp_path, tiny_drum_set, "none", steps=2), device="cpu")
    assert all(torch.equal(v, _weights(out / "latest.pt")[k]) for k, v in before.items())


def test_resume_with_another_feature_set_is_refused(tmp_path, tiny_drum_set):
    train.train(cfg_for(tmp_path, tiny_drum_set, "none", steps=1), device="cpu")
    with pytest.raises(CheckpointError, match="another configuration"):
        train.train(cfg_for(tmp_path, tiny_drum_set, "aisfx", steps=2), device="cpu", resume=True)


def test_checkpoint_killed_mid_write_leaves_previous_one_loadable(tmp_path, tiny_drum_set, monkeypatch):
    out = train.train(cfg_for(tmp_path, tiny_drum_set, "none", steps=2), device="cpu")
    before = _weights(out / "latest.pt")

    def killed(obj, f, *a, **k):           # the process dies after writing half a file
        f.write(b"PK\x03\x04 half a checkpoint")
        raise KeyboardInterrupt("killed mid-write")
    monkeypatch.setattr(torch, "save", killed)
    with pytest.raises(KeyboardInterrupt):
        train.train(cfg_for(tmp_path, tiny_drum_set, "none", steps=4), device="cpu", resume=True)
    monkeypatch.undo()
    after = _weights(out / "latest.pt")
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not [p for p in os.listdir(out) if p.endswith(".tmp")]


def test_non_finite_loss_stops_with_clear_message_and_keeps_checkpoint(tmp_path, tiny_drum_set, monkeypatch):
    out = train.train(cfg_for(tmp_path, tiny_drum_set, "none", steps=2), device="cpu")
    before = _weights(out / "latest.pt")
    monkeypatch.setattr(train.losses, "d_logistic", lambda r, f: torch.tensor(float("nan"), requires_grad=True))
    with pytest.raises(FloatingPointError, match="non-finite"):
        train.train(cfg_for(tmp_path, tiny_drum_set, "none", steps=4), device="cpu", resume=True)
    after = _weights(out / "latest.pt")
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_cpu_preset_is_announced_and_applied(capsys):
    cfg, resume, device = train.parse_args(["--loops", "synth", "--features", "aisfx", "--device", "cpu"])
    assert cfg.batch == train.CPU_PRESET["batch"] and cfg.minutes == train.CPU_PRESET["minutes"]
    assert "CPU preset" in capsys.readouterr().out
    cfg, _, _ = train.parse_args(["--device", "cpu", "--batch", "32"])
    assert cfg.batch == 32


def test_ema_half_life_is_the_authors_20k_images_after_the_ramp_up():
    cfg = train.TrainConfig(batch=64)
    assert train.ema_half_life(cfg, 0) == pytest.approx(64 * 0.05)          # early: follows G closely
    assert train.ema_half_life(cfg, 1_000_000) == 20_000                     # later: the authors' ema_kimg 20
    assert train.ema_half_life(train.TrainConfig(ema_rampup=0.0), 0) == 20_000


def test_adam_follows_the_authors_lazy_ratios_g_four_fifths_d_sixteen_seventeenths():
    run = train.Run(train.TrainConfig(features="none", **{k: v for k, v in TINY.items()
                                                          if k in ("batch", "g_channels", "d_channels")}),
                    [], {}, None, World())
    (g,), (d,) = run.opt_G.param_groups, run.opt_D.param_groups
    assert g["lr"] == pytest.approx(0.002 * 4 / 5) and g["betas"] == (0.0, pytest.approx(0.99 ** (4 / 5)))
    assert d["lr"] == pytest.approx(0.002 * 16 / 17) and d["betas"] == (0.0, pytest.approx(0.99 ** (16 / 17)))


def test_the_baseline_r1_is_a_step_of_its_own_every_sixteenth_step(monkeypatch):
    """StyleGAN2's lazy R1: D's optimiser takes an extra step on steps 0, 16, 32 ... (what its 16/17 is for)."""
    run = train.Run(train.TrainConfig(features="none", **{k: v for k, v in TINY.items()
                                                          if k in ("batch", "g_channels", "d_channels")}),
                    [], {}, None, World())
    run.out, calls = Path("."), []
    monkeypatch.setattr(train, "r1_step", lambda *a: calls.append(run.step) or torch.zeros((), requires_grad=True))
    real, z = torch.randn(2, 1, 200, 64), torch.randn(2, run.g_cfg.z_dim)
    for step in (0, 1, 15, 16):
        run.step = step
        train.train_step(run, real, torch.arange(2), z, z)
    assert calls == [0, 16]


def test_augmentation_turns_the_real_feature_cache_off_and_reaches_d():
    cfg = train.TrainConfig(features="none", augment="shift,cutout", cache_real=True,
                            **{k: v for k, v in TINY.items() if k in ("batch", "g_channels", "d_channels")})
    run = train.Run(cfg, [], {}, None, World())
    assert run.policy == ("shift", "cutout") and not run.cache_real
    with pytest.raises(ValueError, match="--augment: unknown"):
        train.Run(train.TrainConfig(features="none", augment="flip"), [], {}, None, World())


def test_augmentation_reaches_d_on_both_batches_of_the_d_step_in_r1_and_in_the_g_step(monkeypatch):
    """--augment: D sees the augmented mel wherever it sees one -- the real and the fake batch of the D step,
    the real batch of the baseline's R1 step and the fake batch of the G step -- with the run's policy each
    time. R1 penalises the gradient at the un-augmented real batch, through the augmentation (StyleGAN2-ADA),
    and G's fake keeps its graph, so G learns through the augmentation too."""
    import losses
    tiny = {k: v for k, v in TINY.items() if k in ("batch", "g_channels", "d_channels")}
    run = train.Run(train.TrainConfig(features="none", augment="shift,cutout", **tiny), [], {}, None, World())
    run.out, run.step = Path("."), 0                                # step 0: the baseline's lazy R1 runs too
    seen, fed, penalised = [], [], []                               # (call site, policy, input, output); D's inputs
    augment, r1_penalty = train.augment, losses.r1_penalty

    def spy(mel, policy, gen=None):
        out = augment(mel, policy, gen)
        seen.append((sys._getframe(1).f_code.co_name, policy, mel, out))
        return out
    monkeypatch.setattr(train, "augment", spy)
    monkeypatch.setattr(losses, "r1_penalty", lambda logits, x: penalised.append(x) or r1_penalty(logits, x))
    run.D.register_forward_pre_hook(lambda module, args: fed.append(args[0]))
    real, z = torch.randn(4, 1, 200, 64), torch.randn(4, run.g_cfg.z_dim)   # (B, 1, T=200, F=64), (B, z_dim)
    train.train_step(run, real, torch.arange(4), z, z)

    assert [site for site, *_ in seen] == ["d_step", "d_step", "r1_step", "g_step"]
    assert all(policy == ("shift", "cutout") for _, policy, *_ in seen)
    (_, _, d_real, _), (_, _, d_fake, _), (_, _, r1_real, _), (_, _, g_fake, _) = seen
    assert d_real is real                                           # the D step's real batch
    assert not d_fake.requires_grad and not torch.equal(d_fake, real)   # ... and its detached fake
    assert torch.equal(r1_real, real) and r1_real.is_leaf and r1_real.requires_grad and penalised == [r1_real]
    assert g_fake.grad_fn is not None                               # the G step's fake, G's graph attached
    assert [id(x) for x in fed] == [id(out) for *_, out in seen]    # D got the augmented batch every time


def test_command_line_names_the_missing_vggish_file_without_a_traceback(tmp_path):
    env = {**os.environ, "PJLOOP_VGGISH": str(tmp_path / "absent.pth")}   # never touches the network
    res = subprocess.run([sys.executable, str(Path(train.__file__)), "--features", "vgg", "--out", str(tmp_path / "r")],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert res.returncode != 0
    assert "VGGish weights not available" in res.stderr and "--features aisfx" in res.stderr
    assert "Traceback" not in res.stderr


def test_real_feature_cache_trains_the_same_weights(tmp_path, tiny_drum_set):
    plain = train.train(cfg_for(tmp_path / "a", tiny_drum_set, "aisfx", steps=3), device="cpu")
    cached = train.train(cfg_for(tmp_path / "b", tiny_drum_set, "aisfx", steps=3, cache_real=True), device="cpu")
    a = torch.load(plain / "latest.pt", weights_only=False)
    b = torch.load(cached / "latest.pt", weights_only=False)
    for key in ("g", "d"):
        for name, t in a[key].items():
            torch.testing.assert_close(b[key][name], t, rtol=1e-5, atol=1e-6, msg=f"{key}.{name}")


@pytest.mark.parametrize("features, cached", [("none", False), ("aisfx", True)])
def test_real_feature_cache_is_off_for_the_baseline_and_on_for_a_projected_d(tmp_path, tiny_drum_set, monkeypatch,
                                                                            features, cached):
    """--cache-real yes: the StyleGAN2 baseline has no projected features to keep, so its D never gets the
    real batch's indices; the projected D gets them at every step."""
    real_idx, d_step = [], train.d_step

    def spy(*a, **kw):
        real_idx.append(kw.get("real_idx"))
        return d_step(*a, **kw)
    monkeypatch.setattr(train, "d_step", spy)
    out = train.train(cfg_for(tmp_path, tiny_drum_set, features, steps=2, cache_real=True), device="cpu")
    assert load_checkpoint(out / "latest.pt")["step"] == 2 and len(real_idx) == 2
    assert all((i is not None) == cached for i in real_idx)


def test_real_feature_cache_is_off_with_batch_statistics():
    """Under batch statistics a loop's features depend on its batch, so they cannot be kept."""
    from plumbing.distributed import World
    tiny = {k: v for k, v in TINY.items() if k in ("batch", "g_channels", "d_channels")}
    net = featurenet.build("aisfx", featurenet.FeatureContext(batch_stats=True))
    run = train.Run(train.TrainConfig(features="aisfx", cache_real=True, batch_stats=True, **tiny), ["aisfx"],
                    {"aisfx": net}, None, World())
    assert not run.cache_real and run.D.real_cache is None


def test_channels_last_changes_the_speed_not_the_math(monkeypatch):
    """train.MEMORY_FORMAT (NHWC) against the plain NCHW layout: the same D and G losses and gradients for
    one step of the projected discriminator (after Adam, weights would differ wherever a gradient is ~0:
    Adam's first steps move every weight by about lr, whatever the gradient's size)."""
    from plumbing.distributed import World

    def one_step(fmt):
        monkeypatch.setattr(train_run, "MEMORY_FORMAT", fmt)
        ctx = featurenet.FeatureContext(device="cpu")
        cfg = train.TrainConfig(features="aisfx", **{k: v for k, v in TINY.items() if k in ("batch", "g_channels", "d_channels")})
        run = train.Run(cfg, ["aisfx"], {"aisfx": featurenet.build("aisfx", ctx)}, None, World())
        torch.manual_seed(1)
        real = torch.randn(4, 1, 200, 64).contiguous(memory_format=fmt)            # (B, 1, T=200, F=64)
        z = torch.randn(4, run.g_cfg.z_dim)
        for p in run.d_params:
            p.requires_grad_(True)
        loss_d = train.d_step(run.G, run.D, real, z, False, autocast_for("cpu"))
        loss_d.backward()
        loss_g = train.g_step(run.G, run.D, z, False, autocast_for("cpu"))
        loss_g.backward()
        grads = {n: p.grad.clone() for n, p in [*run.G.named_parameters(), *run.D.named_parameters()]
                 if p.grad is not None}
        return torch.stack([loss_d.detach(), loss_g.detach()]), grads

    losses_nchw, grads_nchw = one_step(torch.contiguous_format)
    losses_nhwc, grads_nhwc = one_step(torch.channels_last)
    torch.testing.assert_close(losses_nhwc, losses_nchw, rtol=1e-5, atol=1e-6)
    assert grads_nhwc.keys() == grads_nchw.keys() and len(grads_nchw) > 10
    for model in ("synthesis", "mapping", "heads"):
        # G's and D's whole gradients as vectors: forward passes agree to ~1e-6, and the gradients to ~1e-3 of
        # their norm (float reordering, amplified by the heads' batch-norm of 4 samples; a one-element gradient
        # such as a noise strength is a sum that cancels, so no per-tensor bound). A layout bug, such as
        # swapped axes, moves them by ~100 %.
        a = torch.cat([g.flatten() for n, g in grads_nchw.items() if n.startswith(model)])
        b = torch.cat([g.flatten() for n, g in grads_nhwc.items() if n.startswith(model)])
        assert float((a - b).norm() / a.norm()) < 1e-2, model


# ---------------------------------------------------------------------------------------------
# Where a run writes, what it says before it starts, and a full disk
# ---------------------------------------------------------------------------------------------
TINY_FLAGS = ["--batch", "4", "--g-channels", "16", "--d-channels", "16", "--sample-every", "1000",
              "--snapshot-every", "1000", "--device", "cpu", "--paper"]   # --paper: no CPU preset, as cfg_for


def test_a_run_started_from_another_folder_writes_nothing_there(tmp_path, tiny_drum_set):
    here, home = tmp_path / "here", tmp_path / "home"
    here.mkdir()
    env = {**os.environ, "PJLOOP_HOME": str(home)}
    res = subprocess.run([sys.executable, str(Path(train.__file__)), "--data", str(tiny_drum_set),
                          "--features", "none", "--steps", "2", "--samples", "0", *TINY_FLAGS],
                         cwd=here, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert list(here.iterdir()) == []
    assert load_checkpoint(home / "runs" / "drum_stylegan2" / "latest.pt")["step"] == 2


def test_a_first_run_with_samples_says_before_training_that_it_also_trains_the_vocoder(tmp_path, tiny_drum_set,
                                                                                       monkeypatch, capsys):
    said_before = []
    monkeypatch.setattr(train, "train", lambda *a, **k: said_before.append(capsys.readouterr().out) or tmp_path)
    monkeypatch.setattr(train, "finish_quick_start", lambda *a, **k: None)
    with pytest.raises(SystemExit) as e:
        train.main(["--data", str(tiny_drum_set), "--features", "none", "--out", str(tmp_path / "r"), *TINY_FLAGS])
    assert e.value.code == 0
    assert "also trains one" in said_before[0] and "--samples 0 skips it" in said_before[0] \
        and "8 minutes on a CPU" in said_before[0]
    cfg = cfg_for(tmp_path, tiny_drum_set, "none", samples=8)
    assert train.vocoder_notice(train.TrainConfig(**{**vars(cfg), "samples": 0})) is None
    assert train.vocoder_notice(train.TrainConfig(**{**vars(cfg), "vocoder": "griffin-lim"})) is None
    vocoder = melgan.default_checkpoint("drum", tiny_drum_set)            # once the data set has its vocoder ...
    vocoder.parent.mkdir(parents=True, exist_ok=True)
    vocoder.write_bytes(b"a trained vocoder")
    try:
        assert train.vocoder_notice(cfg) is None                          # ... nothing more to announce
    finally:
        vocoder.unlink()


def test_a_full_disk_names_the_safe_checkpoint_in_one_line_and_leaves_no_temporary_file(tmp_path, tiny_drum_set,
                                                                                       monkeypatch, capsys):
    out = train.train(cfg_for(tmp_path, tiny_drum_set, "none", steps=2), device="cpu")
    before = _weights(out / "latest.pt")
    full_disk(monkeypatch)
    argv = ["--data", str(tiny_drum_set), "--features", "none", "--out", str(out), "--steps", "4",
            "--ckpt-every", "2", "--samples", "0", "--resume", *TINY_FLAGS]
    with pytest.raises(SystemExit) as e:
        train.main(argv)
    assert e.value.code == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    size = (out / "latest.pt").stat().st_size / 1e6
    assert err.startswith("train.py: no space left on the disk at step 4:")
    assert f"{out / 'latest.pt'} holds step 2" in err and f"about {size:.1f} MB" in err
    assert "free space, then run again with --resume" in err.lower()
    after = _weights(out / "latest.pt")
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not temporary_files(out)


def test_a_full_disk_before_the_first_checkpoint_estimates_its_size(tmp_path, tiny_drum_set, monkeypatch):
    full_disk(monkeypatch)
    with pytest.raises(OSError, match="no checkpoint of this run was written yet; writing a checkpoint needs "
                                      r"about \d+\.\d MB free") as e:
        train.train(cfg_for(tmp_path, tiny_drum_set, "none", steps=2), device="cpu")
    assert e.value.errno == errno.ENOSPC and not temporary_files(tmp_path / "run")


def test_ceiling_weight_adds_its_penalty_to_the_g_loss_and_is_off_by_default(tiny_drum_set):
    """--ceiling-weight (not in the paper): G's loss + weight x losses.ceiling_penalty of the same fake batch;
    at the default 0 the run has no penalty at all (the paper's step)."""
    dims = {k: v for k, v in TINY.items() if k in ("batch", "g_channels", "d_channels")}
    data = LoopMelDataset(tiny_drum_set)
    assert train.Run(train.TrainConfig(features="none", **dims), [], {}, data, World()).ceiling is None
    run = train.Run(train.TrainConfig(features="none", ceiling_weight=0.5, **dims), [], {}, data, World())
    weight, mean, std = run.ceiling                            # the data set's per-band statistics
    assert weight == 0.5 and torch.equal(mean, torch.from_numpy(data.mean)) and std.shape == (64,)
    loud = (0.5, torch.full((64,), 3.0), torch.ones(64))       # every bin of every loop ~2 decades too loud
    z = torch.randn(2, run.g_cfg.z_dim)

    def loss(ceiling):
        torch.manual_seed(0)                                   # the same noise inputs, so the same fake batch
        return train.g_step(run.G, run.D, z, True, autocast_for("cpu"), ceiling=ceiling)

    torch.manual_seed(0)
    fake = run.G(z)                                            # (2, 1, 200, 64)
    expected = loss(None) + 0.5 * losses.ceiling_penalty(fake, loud[1], loud[2])
    assert losses.ceiling_penalty(fake, loud[1], loud[2]) > 1.0
    torch.testing.assert_close(loss(loud), expected)
