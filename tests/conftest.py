"""Fixtures shared by several test modules."""
import pytest
import torch


@pytest.fixture(scope="module")
def one_thread():
    """The metrics are small matrix products: on a shared 2-core machine, intra-op threads only wait
    for each other (KID ran 10x slower with 2 threads under load). Restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
