"""pretrain.py's export as a spec: a shipped folder holds the EMA generator and the vocoder in fp16 and nothing
else of training, samples like the run it came from, and is what sample.py and the studio take as a model."""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch

import melgan
import pretrain
import sample
import train
import vocos
from plumbing.checkpoint import load_checkpoint, save_checkpoint
from train_fixtures import cfg_for, tiny_drum_set   # noqa: F401  (fixture)

TINY_VOCODER = vocos.VocosConfig(dim=16, blocks=2)


@pytest.fixture(scope="module")
def shipped(tmp_path_factory, tiny_drum_set):
    """A two-step conditional run and an untrained tiny fast vocoder, exported as pretrain.py does."""
    run = train.train(cfg_for(tmp_path_factory.mktemp("run"), tiny_drum_set, "none", steps=2, conditional=True),
                      device="cpu")
    torch.manual_seed(0)
    voc = tmp_path_factory.mktemp("voc") / "vocoder.pt"
    save_checkpoint({"kind": "vocoder", "arch": "fast", "loops": "drum", "frontend": melgan.frontend(),
                     "G": vocos.VocosGenerator(TINY_VOCODER).state_dict(), "config": asdict(TINY_VOCODER),
                     "D": {"w": torch.zeros(3)}, "opt_g": {}, "step": 5}, voc)
    out = tmp_path_factory.mktemp("shipped") / "drum"
    pretrain.export_generator(run / "latest.pt", out)
    pretrain.export_vocoder(voc, out)
    return run, out, voc


def test_the_shipped_generator_is_the_ema_in_fp16_without_d_or_optimisers(shipped):
    run, out, _ = shipped
    ck = load_checkpoint(out / "latest.pt", map_location="cpu")
    assert not {"g", "d", "opt_g", "opt_d", "rng"} & set(ck)
    assert all(v.dtype == torch.float16 for v in ck["g_ema"].values() if v.is_floating_point())
    assert ck["genres"] == load_checkpoint(run / "latest.pt", map_location="cpu")["genres"]
    voc = load_checkpoint(out / "vocoder.pt", map_location="cpu")
    assert "D" not in voc and "opt_g" not in voc
    assert all(v.dtype == torch.float16 for v in voc["G"].values() if v.is_floating_point())


def test_the_shipped_model_samples_like_its_run_and_carries_its_vocoder(shipped):
    run, out, _ = shipped
    G_run, ck_run = sample.load_generator(run)
    G_out, ck_out = sample.load_generator(out)
    a = sample.generate_mels(G_run, ck_run, 4, seed=3)                     # (4, 64, 200) log10 mels
    b = sample.generate_mels(G_out, ck_out, 4, seed=3)
    assert a.shape == b.shape == (4, 64, 200)
    assert np.allclose(a, b, atol=5e-2)                                    # fp16 weights: the same loops
    assert sample.folder_vocoder(out) == out / "vocoder.pt"
    audio = melgan.load_vocoder(sample.folder_vocoder(out), loops="drum")(b[:1])
    assert np.asarray(audio).shape[-1] == 32_000 and np.isfinite(np.asarray(audio)).all()


def test_export_only_without_a_run_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PJLOOP_HOME", str(tmp_path))
    assert pretrain.main(["--export-only", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "no run to export" in err and len(err.strip().splitlines()) == 1


def test_the_budget_is_steps_in_all_and_a_second_call_continues_the_run(tmp_path, monkeypatch, capsys):
    """pretrain.py trains to --steps in all whatever the machine's load: a fresh run from step 0, a run at 40 of
    100 steps resumed for the other 60, a finished one not at all."""
    monkeypatch.setenv("PJLOOP_HOME", str(tmp_path))
    calls, configs = [], []
    monkeypatch.setattr(train, "train", lambda cfg, device, resume=False: calls.append((cfg.steps, resume))
                        or configs.append(cfg))
    run = pretrain.train_run("drum", 100, "cpu")
    assert calls == [(100, False)] and "0 of 100 steps trained" in capsys.readouterr().out
    assert configs[0].minutes is None                     # no wall-clock stop (the CPU preset has one)
    run.mkdir(parents=True)
    save_checkpoint({"step": 40}, run / "latest.pt")
    pretrain.train_run("drum", 100, "cpu")
    assert calls[-1] == (100, True) and "training 60 more" in capsys.readouterr().out
    save_checkpoint({"step": 100}, run / "latest.pt")
    pretrain.train_run("drum", 100, "cpu")
    assert len(calls) == 2


def test_a_budget_below_one_step_is_one_line():
    with pytest.raises(SystemExit):
        pretrain.main(["--steps", "0"])


def test_a_run_stopped_before_its_budget_exports_nothing(tmp_path, monkeypatch, capsys):
    """Ctrl-C or SIGTERM ends train.train early with latest.pt saved: the shipped folder keeps what it had."""
    monkeypatch.setenv("PJLOOP_HOME", str(tmp_path))

    def stopped(cfg, device, resume=False):
        save_checkpoint({"step": 7}, Path(cfg.out) / "latest.pt")
    monkeypatch.setattr(train, "train", stopped)
    out = tmp_path / "shipped"
    assert pretrain.main(["--steps", "100", "--out", str(out)]) == 0
    assert "stopped at step 7 of 100; nothing exported" in capsys.readouterr().out and not out.exists()


def test_snr_is_the_signal_over_the_difference_in_db():
    assert pretrain.snr_db(np.array([1.0, 0.0]), np.array([0.9, 0.0])) == pytest.approx(20.0)   # 1 / 0.01
    assert pretrain.snr_db(np.ones(4), np.ones(4)) > 250                                         # identical


def test_the_fp16_files_cost_the_audio_less_than_a_thousandth_of_its_energy(shipped):
    run, out, voc = shipped
    assert pretrain.fp16_cost(run / "latest.pt", voc, out, n=4) > 30.0
