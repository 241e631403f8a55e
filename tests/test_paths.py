"""Where pjloop keeps what it makes (plumbing/paths.py): one root, $PJLOOP_HOME (default: the repository),
never the current directory; a path typed on the command line is taken as typed. (That a whole train.py run
started elsewhere writes nothing into its folder: tests/test_train.py.)"""
from pathlib import Path

import pytest

import sample
import scnn
import train
import train_run
from dataset import REPO, manifest_hash
from plumbing import paths
from train_fixtures import tiny_drum_set   # noqa: F401  (fixture)


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    """Standing in an unrelated folder, with neither variable set."""
    monkeypatch.delenv(paths.HOME_ENV, raising=False)
    monkeypatch.delenv(paths.DATA_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_without_pjloop_home_everything_lives_in_the_repository(elsewhere):
    assert paths.REPO == REPO == Path(train.__file__).resolve().parent
    assert paths.home() == REPO
    assert (paths.data_root(), paths.checkpoints(), paths.runs(), paths.results()) == \
        (REPO / "data", REPO / "checkpoints", REPO / "runs", REPO / "results")
    assert paths.eval_cache() == REPO / "checkpoints" / "eval_cache"


def test_pjloop_home_moves_every_default_folder_and_pjloop_data_root_only_the_data(elsewhere, monkeypatch):
    monkeypatch.setenv(paths.HOME_ENV, "home")                     # relative: made absolute once, when read
    home = elsewhere / "home"
    assert paths.home() == home and paths.checkpoints() == home / "checkpoints" and paths.runs() == home / "runs"
    assert paths.data_root() == home / "data"
    monkeypatch.setenv(paths.DATA_ENV, str(elsewhere / "loops"))
    assert paths.data_root() == elsewhere / "loops" and paths.checkpoints() == home / "checkpoints"


def test_a_folder_given_on_the_command_line_is_taken_as_typed(elsewhere):
    assert paths.checkpoints("my_ckpts") == Path("my_ckpts")
    assert paths.eval_cache("my_ckpts") == Path("my_ckpts") / "eval_cache"
    cfg = train.TrainConfig(out="my_run")
    assert train_run.run_dir(cfg, ["aisfx"]) == Path("my_run")


def test_default_run_classifier_and_cache_paths_do_not_depend_on_the_current_directory(elsewhere, monkeypatch,
                                                                                      tiny_drum_set):
    monkeypatch.setenv(paths.HOME_ENV, str(elsewhere / "home"))
    home = elsewhere / "home"
    assert train_run.run_dir(train.TrainConfig(loops="synth"), ["aisfx", "scnn_loop"]) == \
        home / "runs" / "synth_aisfx_scnn_loop"
    assert train_run.run_dir(train.TrainConfig(), []) == home / "runs" / "drum_stylegan2"
    assert scnn.loop_checkpoint_path(tiny_drum_set) == \
        home / "checkpoints" / f"scnn_loop_{tiny_drum_set.name}_{manifest_hash(tiny_drum_set)}.pt"
    monkeypatch.delenv(scnn.MTAT_ENV, raising=False)
    assert scnn.mtat_checkpoint_path() == home / "checkpoints" / scnn.MTAT_CKPT_NAME


def test_a_bare_run_name_is_found_among_the_default_runs(elsewhere, monkeypatch):
    monkeypatch.setenv(paths.HOME_ENV, str(elsewhere / "home"))
    latest = elsewhere / "home" / "runs" / "drum_aisfx" / "latest.pt"
    latest.parent.mkdir(parents=True)
    latest.write_bytes(b"")
    assert sample.resolve_checkpoint("drum_aisfx") == latest
    (elsewhere / "drum_aisfx").mkdir()                                # a folder of that name here wins ...
    (elsewhere / "drum_aisfx" / "latest.pt").write_bytes(b"")
    assert sample.resolve_checkpoint("drum_aisfx") == Path("drum_aisfx") / "latest.pt"
    with pytest.raises(FileNotFoundError, match="no checkpoint at nothing_here.*also looked for in"):
        sample.resolve_checkpoint("nothing_here")



def test_a_path_inside_pjloop_home_is_shown_relative_to_it_and_others_as_they_are(tmp_path, monkeypatch):
    monkeypatch.setenv("PJLOOP_HOME", str(tmp_path))
    assert paths.shown(tmp_path / "data" / "demo_drum") == "data/demo_drum"
    assert paths.shown("/elsewhere/loops") == "/elsewhere/loops"
