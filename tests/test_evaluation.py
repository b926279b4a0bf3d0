"""Seeded evaluation of initialisations on new sinusoid tasks (notebook 4, the checkpoint test)."""

import math

import numpy as np
import pytest
import torch

from metalearn_lite import evaluation, maml
from metalearn_lite.models import MLP


@pytest.fixture
def starts():
    return {name: evaluation.random_init(seed) for seed, name in enumerate(("a", "b", "c"))}


def test_evaluation_tasks_are_fixed_and_seeded():
    a, b = evaluation.evaluation_tasks(10, 5, 100), evaluation.evaluation_tasks(10, 5, 100)
    torch.testing.assert_close(a.support.X, b.support.X, rtol=0, atol=0)
    assert a.support.X.shape == (10, 5, 1) and a.query.X.shape == (10, 100, 1)
    assert not torch.equal(a.support.X, evaluation.evaluation_tasks(10, 5, 100, seed=1).support.X)


def test_random_init_is_seeded_and_leaves_the_global_rng_alone():
    torch.manual_seed(5)
    expected = torch.rand(1)
    torch.manual_seed(5)
    a = evaluation.random_init(3)
    assert torch.equal(torch.rand(1), expected)
    assert all(torch.equal(a[k], v) for k, v in evaluation.random_init(3).items())


def test_adapt_starts_matches_maml_adapt_start_by_start(starts):
    model, batch = MLP(), evaluation.evaluation_tasks(6, 5, 30)
    result = evaluation.adapt_starts(model, starts, batch, 0.02, 4, keep_predictions=True)
    assert result.query_losses.shape == (3, 6, 5) and result.predictions.shape == (3, 6, 5, 30)
    for i, name in enumerate(result.names):
        reference = maml.adapt(model, starts[name], batch, 0.02, 4)
        np.testing.assert_allclose(result.query_losses[i], reference.query_losses.double().numpy(), rtol=1e-5,
                                   atol=1e-6)
        np.testing.assert_allclose(result.support_losses[i], reference.support_losses.double().numpy(),
                                   rtol=1e-5, atol=1e-6)


def test_adapt_starts_gives_non_finite_numbers_not_errors_when_diverging(starts):
    result = evaluation.adapt_starts(MLP(), starts, evaluation.evaluation_tasks(2, 20, 10), 50.0, 20)
    assert not np.all(np.isfinite(result.query_losses))


def test_evaluate_statistics(starts):
    batch = evaluation.evaluation_tasks(50, 5, 100)
    result = evaluation.evaluate(MLP(), starts["a"], batch, 0.01, 3, name="a")
    assert result.n_tasks == 50 and result.inner_steps == 3 and result.k_shot == 5
    column = result.query_losses[:, 2]
    assert math.isclose(result.mean(2), column.mean())
    assert math.isclose(result.ci95(2), 1.96 * column.std(ddof=1) / math.sqrt(50))
    np.testing.assert_allclose(result.mean_curve, result.query_losses.mean(axis=0))


def test_results_table_and_paper_band(starts):
    results = evaluation.compare(MLP(), {"maml": starts["a"], "random": starts["b"]}, n_tasks=20)
    table = evaluation.results_table(results)
    assert "paper" in table and "0.67" in table and "±" in table and "random" in table
    flags = evaluation.within_paper(results["maml"])
    assert set(flags) == {1, 5, 10} and not any(flags.values())  # an untrained net is far from the paper


def test_checkpoint_path_names():
    assert evaluation.checkpoint_path("maml").name == "sinusoid_maml.pt"
    with pytest.raises(ValueError, match="maml"):
        evaluation.checkpoint_path("reptile")
