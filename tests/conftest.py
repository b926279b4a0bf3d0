"""Shared fixtures: seeded generators and small float64 problems for gradient checks."""

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
