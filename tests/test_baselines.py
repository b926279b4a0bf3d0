import numpy as np
import pytest
import torch

from metalearn_lite import baselines
from metalearn_lite.models import MLP
from metalearn_lite.tasks import SinusoidTasks


def test_sinusoid_average_matches_monte_carlo(generator):
    batch = SinusoidTasks().sample(20000, k_shot=1, generator=generator, dtype=torch.float64)
    amplitude, phase = batch.info["amplitude"], batch.info["phase"]
    for x in (-2.0, 0.0, 1.3):
        monte_carlo = (amplitude * torch.sin(x - phase)).mean().item()
        assert abs(monte_carlo - baselines.sinusoid_average(x)) < 0.03
    assert abs(baselines.sinusoid_average(0.0) + 2.55 * 2 / np.pi) < 1e-9


def test_pretraining_learns_the_average_function():
    torch.manual_seed(0)
    model = MLP(hidden=(20, 20))
    losses = baselines.pretrain(model, SinusoidTasks(), steps=400, lr=3e-3,
                                generator=torch.Generator().manual_seed(0))
    assert np.mean(losses[-50:]) < np.mean(losses[:50])
    x = torch.linspace(-5, 5, 101).view(-1, 1)
    prediction = model(x).detach()[:, 0].numpy()
    average = baselines.sinusoid_average(x[:, 0].numpy())
    assert baselines.rms(prediction - average) < 0.5 * baselines.rms(average)


def test_snapshot_is_a_copy():
    model = MLP(hidden=(4,))
    copy = baselines.snapshot(model)
    with torch.no_grad():
        model[0].weight.add_(1.0)
    assert not torch.equal(copy["0.weight"], model[0].weight)


def test_fine_tune_curves_and_divergence(sinusoid_problem):
    model, batch = sinusoid_problem
    params = baselines.snapshot(model)
    calm = baselines.fine_tune(model, params, batch, inner_lr=0.01, inner_steps=5)
    assert calm.query_losses.shape == (3, 6) and calm.support_losses.shape == (3, 6)
    assert not calm.diverged and np.isfinite(calm.query_losses).all()
    assert calm.support_losses[:, -1].mean() < calm.support_losses[:, 0].mean()
    wild = baselines.fine_tune(model, params, batch, inner_lr=50.0, inner_steps=30)
    assert wild.diverged and wild.params is None
    assert wild.query_losses.shape[1] == wild.diverged_at < 31
    assert np.isfinite(wild.query_losses).all()


def test_fine_tuning_data_for_the_explorer():
    torch.manual_seed(0)
    model = MLP(hidden=(8, 8))
    starts = {"random": baselines.snapshot(model)}
    view = baselines.fine_tuning_data(starts, task_seed=2, k_shot=5, inner_lr=0.01, inner_steps=3, model=model, n_grid=50)
    assert view.x.shape == view.truth.shape == view.fits["random"].shape == (50,)
    assert view.support_X.shape == (5,) and view.diverged == {"random": False}
    same = baselines.fine_tuning_data(starts, task_seed=2, k_shot=5, inner_lr=0.01, inner_steps=3, model=model, n_grid=50)
    np.testing.assert_array_equal(view.truth, same.truth)
    other = baselines.fine_tuning_data(starts, task_seed=3, k_shot=5, inner_lr=0.01, inner_steps=3, model=model, n_grid=50)
    assert not np.allclose(view.truth, other.truth)


def test_predict_shared_and_per_task(sinusoid_problem):
    model, batch = sinusoid_problem
    params = baselines.snapshot(model)
    x = torch.linspace(-1, 1, 7, dtype=torch.float64).view(-1, 1)
    torch.testing.assert_close(baselines.predict(model, params, x), model(x).detach())
    adapted = baselines.fine_tune(model, params, batch, 0.01, 2).params
    assert baselines.predict(model, adapted, x).shape == (3, 7, 1)


def test_count_parameters():
    assert baselines.count_parameters(MLP()) == 1761
    with pytest.raises(ValueError, match="steps"):
        baselines.pretrain(MLP(), SinusoidTasks(), steps=-1)
