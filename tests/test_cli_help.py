"""Every user-facing command explains itself: `--help` exits cleanly and every option has a one-line help text;
booleans are typed yes/no. The commands are run as `python -m NAME --help` would run them, in this
process, with argparse's parser caught on its way to parse_args."""
from __future__ import annotations

import argparse
import dataclasses
import runpy
import sys

import pytest

from plumbing.cli import YES_NO, flags, spell, yes_no

COMMANDS = ["train", "train_scnn", "preprocess", "reproduce", "sample", "evaluate", "train_melgan", "pretrain", "demo.loops",
            "experiments.bench_train", "experiments.bench_vocoder",
            "experiments.bench_features", "experiments.bench_preprocess", "experiments.bench_demoloops",
            "experiments.bench_eval",
            "standins.make_musicnn_fixture"]


def parser_of(module: str, monkeypatch) -> argparse.ArgumentParser:
    """The parser `python -m module --help` builds (its help was printed, and it exited with status 0)."""
    caught = []
    real = argparse.ArgumentParser.parse_known_args

    def catch(self, args=None, namespace=None):
        caught.append(self)
        return real(self, args, namespace)
    monkeypatch.setattr(argparse.ArgumentParser, "parse_known_args", catch)
    monkeypatch.setattr(sys, "argv", [module, "--help"])
    with pytest.raises(SystemExit) as done:
        runpy.run_module(module, run_name="__main__", alter_sys=False)
    assert done.value.code in (0, None)
    assert caught, f"{module} built no argparse parser"
    return caught[0]


@pytest.mark.filterwarnings("ignore:.* found in sys.modules after import of package")
@pytest.mark.parametrize("module", COMMANDS)
def test_every_option_has_a_help_text(module, monkeypatch, capsys):
    ap = parser_of(module, monkeypatch)
    assert "usage:" in capsys.readouterr().out
    missing = [a.option_strings or a.dest for a in ap._actions
               if not isinstance(a, argparse._HelpAction) and a.help != argparse.SUPPRESS and not (a.help or "").strip()]
    assert not missing, f"{module}: options without a help text: {missing}"


@pytest.mark.filterwarnings("ignore:.* found in sys.modules after import of package")
@pytest.mark.parametrize("module", COMMANDS)
def test_booleans_are_yes_or_no(module, monkeypatch, capsys):
    """A boolean that takes a value takes yes/no (no 0/1, no True/False); switches (--resume) take none."""
    ap = parser_of(module, monkeypatch)
    capsys.readouterr()
    for a in ap._actions:
        assert a.type not in (bool, int) or not isinstance(a.default, bool), f"{module} {a.option_strings}"
        if isinstance(a.default, bool) and a.nargs != 0:
            assert a.type is yes_no and a.metavar == YES_NO, f"{module} {a.option_strings}: typed {a.type}"


def test_train_booleans_are_yes_or_no(monkeypatch, capsys):
    """train.py's flags default to None (the CPU preset fills what was not given): its booleans are the
    TrainConfig fields whose default is a bool."""
    import train
    ap = parser_of("train", monkeypatch)
    capsys.readouterr()
    booleans = {f"--{f.name.replace('_', '-')}" for f in dataclasses.fields(train.TrainConfig)
                if isinstance(f.default, bool)}
    assert len(booleans) >= 4
    for a in ap._actions:
        if set(a.option_strings) & booleans:
            assert a.type is yes_no and a.metavar == YES_NO, a.option_strings


def test_yes_no_spelling():
    assert yes_no("yes") is True and yes_no("NO") is False
    for wrong in ("1", "0", "True", "false", ""):
        with pytest.raises(argparse.ArgumentTypeError):
            yes_no(wrong)
    assert spell(False) == "no" and spell(3) == "3"
    assert flags({"g_channels": 32, "csm_upsample": False}) == "--g-channels 32 --csm-upsample no"
