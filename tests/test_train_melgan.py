"""Spec of train_melgan.py: MelGAN's losses and training loop, checkpoints and resuming, the command line
(docs/design.md §6). Tiny networks and a 3-loop data set keep it to seconds on a CPU.
"""
from __future__ import annotations

import os
import signal

import numpy as np
import pytest
import torch

import losses
import melgan as M
import train_melgan as T
from plumbing.checkpoint import CheckpointError, load_checkpoint
from mel import HOP, LOOP_SAMPLES
from stubs import full_disk, temporary_files
from vocoder_fixtures import TINY, no_repo_vocoders, one_thread, tiny_set, tiny_train_config   # noqa: F401  (fixtures)


# ---------------------------------------------------------------------------------------------
# Losses
# ---------------------------------------------------------------------------------------------
def test_hinge_losses_are_zero_when_d_is_confidently_right():
    real = [[torch.zeros(1), torch.full((4,), 2.0)]] * 3
    fake = [[torch.zeros(1), torch.full((4,), -2.0)]] * 3
    assert losses.d_hinge(M.scale_logits(real), M.scale_logits(fake)).item() == 0.0
    assert losses.g_hinge(M.scale_logits(fake)).item() == pytest.approx(6.0)            # -mean(-2) per scale, 3 scales
    assert T.feature_matching(real, fake).item() == 0.0            # equal features, logits excluded


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------
def test_random_segments_wrap_around_the_periodic_loop():
    loops = torch.arange(10.0)[None].repeat(2, 1)                 # (2, 10)
    seg = T.random_segments(loops, batch=64, segment=7, gen=torch.Generator().manual_seed(0))
    assert seg.shape == (64, 7)
    assert torch.all((seg[:, 1:] - seg[:, :-1]) % 10 == 1)          # consecutive samples, mod the period


def test_one_training_step_gives_finite_losses_and_changes_both_networks(tiny_set):
    torch.manual_seed(0)
    t = T.MelGANTrainer(tiny_train_config(tiny_set), torch.device("cpu"))
    g0 = [p.detach().clone() for p in t.G.parameters()]
    d0 = [p.detach().clone() for p in t.D.parameters()]
    audio = T.load_loop_audio(tiny_set)
    assert audio.shape == (3, LOOP_SAMPLES)
    losses = t.train_step(T.random_segments(audio, 2, 8 * HOP, torch.Generator().manual_seed(0)))
    assert set(losses) == {"d", "g_adv", "fm", "mel_l1"}
    assert all(np.isfinite(v) for v in losses.values())
    assert any(not torch.equal(a, b) for a, b in zip(g0, t.G.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(d0, t.D.parameters()))
    assert t.step == 1


def test_non_finite_loss_stops_before_touching_the_weights(tiny_set):
    t = T.MelGANTrainer(tiny_train_config(tiny_set), torch.device("cpu"))
    g0 = [p.detach().clone() for p in t.G.parameters()]
    with pytest.raises(FloatingPointError, match="not|nan"):
        t.train_step(torch.full((2, 8 * HOP), float("nan")))
    assert all(torch.equal(a, b) for a, b in zip(g0, t.G.parameters()))
    assert t.step == 0


def test_checkpoint_resume_continues_the_step_count(tiny_set, tmp_path):
    out = tmp_path / "melgan_drum.pt"
    T.train_melgan(tiny_train_config(tiny_set), out, steps=2, minutes=None, resume=False, save_every=1,
            device="cpu", progress=False)
    assert load_checkpoint(out)["step"] == 2
    with pytest.raises(SystemExit, match="--resume"):               # never silently overwrite a vocoder
        T.train_melgan(tiny_train_config(tiny_set), out, steps=3, minutes=None, resume=False, device="cpu",
                progress=False)
    t = T.train_melgan(tiny_train_config(tiny_set), out, steps=3, minutes=None, resume=True, device="cpu",
                progress=False)
    assert t.step == 3
    ckpt = load_checkpoint(out)
    assert ckpt["step"] == 3 and ckpt["config"]["g_channels"] == TINY.g_channels
    assert {"G", "D", "opt_g", "opt_d"} <= set(ckpt)


def test_keyboard_interrupt_saves_a_checkpoint(tiny_set, tmp_path, monkeypatch):
    """Ctrl-C during the first step: that step is finished, saved, and training stops."""
    out = tmp_path / "m.pt"
    real_step = T.MelGANTrainer.train_step

    def ctrl_c_during_first_step(self, audio):
        if self.step == 0:
            os.kill(os.getpid(), signal.SIGINT)          # as if the user pressed Ctrl-C here
        return real_step(self, audio)
    monkeypatch.setattr(T.MelGANTrainer, "train_step", ctrl_c_during_first_step)
    T.train_melgan(tiny_train_config(tiny_set), out, steps=10, minutes=None, resume=False, device="cpu",
            progress=False)
    assert load_checkpoint(out)["step"] == 1


def test_corrupt_checkpoint_gives_a_clear_error_naming_the_file(tiny_set, tmp_path, capsys):
    bad = tmp_path / "melgan_drum.pt"
    bad.write_bytes(b"PK\x03\x04 this is not a checkpoint")
    with pytest.raises(CheckpointError, match="melgan_drum.pt"):
        M.load_vocoder(bad)
    with pytest.raises(SystemExit, match="melgan_drum.pt.*not a readable"):
        T.main(["--loops", "drum", "--data", str(tiny_set), "--out", str(bad), "--resume", "--steps", "1",
                "--g-channels", "16", "--d-max-channels", "16"])


def test_missing_data_set_gives_a_clear_error(tmp_path):
    with pytest.raises(SystemExit, match="no manifest.csv"):
        T.main(["--loops", "drum", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x.pt")])


def test_a_full_disk_names_the_last_saved_step_in_one_line_and_leaves_no_temporary_file(tiny_set, tmp_path,
                                                                                      monkeypatch):
    out = tmp_path / "v.pt"
    argv = ["--loops", "drum", "--data", str(tiny_set), "--out", str(out), "--steps", "3", "--save-every", "1",
            "--dim", "16", "--blocks", "1", "--batch", "2", "--segment", "1280", "--device", "cpu",
            "--progress", "no", "--snapshot-every", "0"]
    full_disk(monkeypatch, after=1)                     # step 1's checkpoint is written, step 2's is not
    with pytest.raises(SystemExit) as e:
        T.main(argv)
    line = str(e.value.code)                            # SystemExit(str): printed on stderr, exit status 1
    assert line.startswith("train_melgan.py: no space left on the disk at step 2:") and "\n" not in line
    assert f"{out} holds step 1" in line and f"about {out.stat().st_size / 1e6:.1f} MB" in line
    assert "Free space, then run again with --resume" in line
    assert load_checkpoint(out)["step"] == 1 and not temporary_files(tmp_path)
