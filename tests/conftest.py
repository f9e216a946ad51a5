import torch
from hypothesis import settings

# The tests use tiny tensors, for which intra-op threads only add scheduling cost (and stall badly
# when the machine is busy): one thread.  Keep property tests short.
torch.set_num_threads(1)
settings.register_profile("odenet", max_examples=25, deadline=None)
settings.load_profile("odenet")


import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread for every test, restored afterwards, whatever an earlier test (a sweep
    worker, a benchmark helper) left behind."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same global torch seed: unseeded draws are reproducible too."""
    torch.manual_seed(0)
    yield
