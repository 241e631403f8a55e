"""Fixtures shared by several test modules."""
import os

import pytest
import torch

from plumbing import paths


@pytest.fixture(scope="session", autouse=True)
def pjloop_home(tmp_path_factory):
    """No test writes into the repository: $PJLOOP_HOME (default checkpoints, runs, results) is a temporary
    folder for the whole session, subprocesses included. The data root stays where it was, so the rendered
    demo sets are found and not rendered again."""
    before = {k: os.environ.get(k) for k in (paths.HOME_ENV, paths.DATA_ENV)}
    os.environ[paths.DATA_ENV] = str(paths.data_root())
    os.environ[paths.HOME_ENV] = str(tmp_path_factory.mktemp("pjloop_home"))
    yield paths.home()
    for k, v in before.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="module")
def one_thread():
    """The metrics are small matrix products: on a shared 2-core machine, intra-op threads only wait
    for each other (KID ran 10x slower with 2 threads under load). Restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
