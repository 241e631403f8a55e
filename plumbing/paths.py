"""Where pjloop keeps what it makes, whatever the current directory: one root, $PJLOOP_HOME (default: the
repository), and a fixed folder under it for each kind of file.

    $PJLOOP_HOME/data/          the demo sets (demo_drum, demo_synth) and the MTAT mel cache;
                                $PJLOOP_DATA_ROOT, when set, replaces this one folder
    $PJLOOP_HOME/checkpoints/   feature networks (scnn_loop_*, scnn_mtat), vocoders, eval_cache/
    $PJLOOP_HOME/runs/          train.py's run folders (runs/<loops>_<features>)
    $PJLOOP_HOME/results/       reproduce.py's tables and evaluate.py's default results.csv
    $PJLOOP_HOME/studio_out/    the loop studio's WAVs, recipes and mel pictures (python -m studio)
    $PJLOOP_HOME/samples/       sample.py's output for a shipped model (a run's goes into <run>/samples)
    <repository>/pretrained/    the shipped models (pretrain.py): part of the repository, never written by sampling

The environment is read at every call, not at import, so a test (or a script) may point it elsewhere. A path
the user types (--out, --data, --ckpt-dir) is taken as typed; only the defaults live here. Not in the paper.
"""
from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]   # plumbing/ sits one level below the repository root
HOME_ENV = "PJLOOP_HOME"                     # the one documented root
DATA_ENV = "PJLOOP_DATA_ROOT"                # older, narrower: the data folder alone


def _env_dir(name: str) -> Path | None:
    value = os.environ.get(name, "").strip()
    return Path(value).expanduser().resolve() if value else None


def home() -> Path:
    """$PJLOOP_HOME (absolute), else the repository."""
    return _env_dir(HOME_ENV) or REPO


def data_root() -> Path:
    """$PJLOOP_DATA_ROOT, else <home>/data."""
    return _env_dir(DATA_ENV) or home() / "data"


def checkpoints(given: str | Path | None = None) -> Path:
    """`given` (a --ckpt-dir as typed), else <home>/checkpoints."""
    return Path(given) if given is not None else home() / "checkpoints"


def eval_cache(ckpt_dir: str | Path | None = None) -> Path:
    """evaluate.py's caches of embedded real sets and genre references: <checkpoints>/eval_cache."""
    return checkpoints(ckpt_dir) / "eval_cache"


def runs() -> Path:
    """<home>/runs: train.py's default run folders."""
    return home() / "runs"


def results() -> Path:
    """<home>/results: reproduce.py's and evaluate.py's default result tables."""
    return home() / "results"


def studio_out() -> Path:
    """<home>/studio_out: what the loop studio (python -m studio) writes, one folder per request."""
    return home() / "studio_out"


def samples() -> Path:
    """<home>/samples: where sample.py writes for a shipped model (pretrained/<loops> holds only the model)."""
    return home() / "samples"


def shipped() -> Path:
    """<repository>/pretrained: the shipped models, one folder per kind of loop (pretrain.py exports them)."""
    return REPO / "pretrained"


def shown(path: str | Path) -> str:
    """A path as the docs and tables show it: relative to $PJLOOP_HOME when inside it (no machine's absolute
    folders in a generated table), else as it is."""
    try:
        return str(Path(path).resolve().relative_to(home().resolve()))
    except ValueError:
        return str(path)
