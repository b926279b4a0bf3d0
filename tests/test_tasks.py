import math

import pytest
import torch

from metalearn_lite.tasks import LinearTasks, SinusoidTasks


def test_sinusoid_batch_has_leading_task_dimension(generator):
    batch = SinusoidTasks().sample(25, k_shot=10, k_query=15, generator=generator)
    assert batch.support.X.shape == (25, 10, 1) and batch.support.y.shape == (25, 10, 1)
    assert batch.query.X.shape == (25, 15, 1) and batch.n_tasks == 25


def test_sinusoid_follows_the_paper_distribution(generator):
    batch = SinusoidTasks().sample(2000, k_shot=10, generator=generator)
    amplitude, phase = batch.info["amplitude"], batch.info["phase"]
    assert 0.1 <= amplitude.min() and amplitude.max() <= 5.0
    assert 0.0 <= phase.min() and phase.max() <= math.pi
    assert -5.0 <= batch.support.X.min() and batch.support.X.max() <= 5.0
    assert abs(amplitude.mean().item() - 2.55) < 0.1  # mean of U[0.1, 5]
    expected = amplitude.view(-1, 1, 1) * torch.sin(batch.query.X - phase.view(-1, 1, 1))
    torch.testing.assert_close(batch.query.y, expected)


def test_same_seed_same_tasks_other_seed_other_tasks():
    family = SinusoidTasks()
    first = family.sample(4, 5, generator=torch.Generator().manual_seed(7))
    again = family.sample(4, 5, generator=torch.Generator().manual_seed(7))
    other = family.sample(4, 5, generator=torch.Generator().manual_seed(8))
    assert torch.equal(first.support.X, again.support.X) and torch.equal(first.query.y, again.query.y)
    assert not torch.equal(first.support.X, other.support.X)


def test_task_view_keeps_one_task(generator):
    batch = SinusoidTasks().sample(5, 3, generator=generator)
    one = batch.task(2)
    assert one.n_tasks == 1 and torch.equal(one.support.X[0], batch.support.X[2])
    assert one.info["amplitude"].item() == batch.info["amplitude"][2].item()


def test_linear_tasks_are_exactly_linear_without_noise(generator):
    batch = LinearTasks(dim=3, w_mean=[1.0, 2.0, 3.0]).sample(4, 6, 8, generator=generator)
    w = batch.info["w"]
    torch.testing.assert_close(batch.support.y, batch.support.X @ w.unsqueeze(-1))
    assert batch.query.X.shape == (4, 8, 3)


@pytest.mark.parametrize("kwargs, name", [
    ({"n_tasks": 0, "k_shot": 5}, "n_tasks"),
    ({"n_tasks": 2, "k_shot": 0}, "k_shot"),
    ({"n_tasks": 2, "k_shot": 5, "k_query": -1}, "k_query"),
    ({"n_tasks": 2, "k_shot": 2.5}, "k_shot"),
])
def test_bad_sizes_name_the_parameter(kwargs, name):
    with pytest.raises(ValueError, match=name):
        SinusoidTasks().sample(**kwargs)


def test_bad_family_settings_are_refused():
    with pytest.raises(ValueError, match="amplitude_range"):
        SinusoidTasks(amplitude_range=(5.0, 0.1))
    with pytest.raises(ValueError, match="w_mean"):
        LinearTasks(dim=2, w_mean=[1.0, 2.0, 3.0])
