"""Shared fixtures: seeded generators and small float64 problems for gradient checks."""

import os

import pytest
import torch

from metalearn_lite.models import MLP, Conv4
from metalearn_lite.tasks import SinusoidTasks, Split, TaskBatch


@pytest.fixture
def generator():
    return torch.Generator().manual_seed(1234)


@pytest.fixture
def sinusoid_problem(generator):
    """A float64 MLP and a batch of 3 sinusoid tasks (K=5 support, 7 query)."""
    torch.manual_seed(0)
    model = MLP(hidden=(16, 16)).double()
    batch = SinusoidTasks().sample(3, k_shot=5, k_query=7, generator=generator, dtype=torch.float64)
    return model, batch


@pytest.fixture
def conv_problem(generator):
    """A small float64 Conv4 (4 channels, batch norm with batch statistics) and 2 random 3-way 2-shot tasks."""
    torch.manual_seed(0)
    model = Conv4(n_way=3, hidden_channels=4).double()
    labels = torch.arange(3).repeat_interleave(2).expand(2, 6)
    support = Split(torch.randn(2, 6, 1, 28, 28, generator=generator, dtype=torch.float64), labels)
    query = Split(torch.randn(2, 6, 1, 28, 28, generator=generator, dtype=torch.float64), labels)
    return model, TaskBatch(support, query)


# --- Omniglot files: found through the package's own data-folder setting, checked once per session ---------------

_omniglot_state: dict = {}


def _omniglot_problem():
    """Return None when the minimal Omniglot files are in the data folder (downloading them there when online),
    else the package's own message saying which file to put where."""
    if "problem" not in _omniglot_state:
        from metalearn_lite.data import MissingDataError, ensure_files
        from metalearn_lite.data.download import ChecksumError
        try:
            ensure_files()
            _omniglot_state["problem"] = None
        except (MissingDataError, ChecksumError) as error:
            _omniglot_state["problem"] = str(error)
    return _omniglot_state["problem"]


@pytest.hookimpl(tryfirst=True)  # before any fixture, so that module fixtures loading the data never run
def pytest_runtest_setup(item):
    """Tests marked ``omniglot`` need the files. Without them, the first such test fails with the data layer's
    message; the rest are skipped pointing at it, so a user reads one explanation, not dozens of tracebacks.
    Under CI=true nothing is skipped: each of them fails."""
    if item.get_closest_marker("omniglot") is None:
        return
    problem = _omniglot_problem()
    if problem is None:
        return
    if "reported_by" not in _omniglot_state:
        _omniglot_state["reported_by"] = item.nodeid
        pytest.fail(problem, pytrace=False)
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"Omniglot files missing (see {_omniglot_state['reported_by']})", pytrace=False)
    pytest.skip(f"Omniglot files missing: see the failure of {_omniglot_state['reported_by']}")
