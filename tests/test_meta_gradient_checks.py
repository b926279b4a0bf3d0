"""The two checks of notebook 6's gallery of wrong MAML implementations catch each bug, and pass the right one."""

import copy

import pytest
import torch
from torch.func import functional_call

from metalearn_lite import maml
from metalearn_lite.evaluation import evaluation_tasks
from metalearn_lite.meta_gradient_checks import check_meta_gradient, meta_objective, reaches_initialisation
from metalearn_lite.models import MLP

INNER_LR = 0.01


@pytest.fixture
def setting():
    torch.manual_seed(0)
    return MLP(), evaluation_tasks(4, 10, 10, seed=11)


def grads_of(model):
    return {name: p.grad for name, p in model.named_parameters()}


def test_the_engine_passes_both_checks(setting):
    model, batch = setting
    result = maml.meta_gradient(model, maml.parameters_of(model), batch, INNER_LR)
    for name, p in model.named_parameters():
        p.grad = result.grads[name]
    assert reaches_initialisation(model)
    check = check_meta_gradient(model, result.grads, batch, INNER_LR)
    assert check.passed and check.relative_error < 1e-5


def test_first_order_fails_the_finite_difference_check_by_a_small_margin(setting):
    model, batch = setting
    first = maml.meta_gradient(model, maml.parameters_of(model), batch, INNER_LR, first_order=True).grads
    check = check_meta_gradient(model, first, batch, INNER_LR)
    assert not check.passed and 1e-4 < check.relative_error < 0.5   # close, but a different gradient


def test_a_deep_copied_model_leaves_no_meta_gradient_on_theta(setting):
    model, batch = setting
    for t in range(batch.n_tasks):
        fast = copy.deepcopy(model)
        inner = torch.optim.SGD(fast.parameters(), lr=INNER_LR)
        torch.nn.functional.mse_loss(fast(batch.support.X[t]), batch.support.y[t]).backward()
        inner.step()
        torch.nn.functional.mse_loss(fast(batch.query.X[t]), batch.query.y[t]).backward()
    assert not reaches_initialisation(model)
    check = check_meta_gradient(model, grads_of(model), batch, INNER_LR)   # None grads count as zero
    assert not check.passed and check.relative_error == pytest.approx(1.0)


def test_a_sum_over_tasks_is_off_by_the_number_of_tasks(setting):
    model, batch = setting
    mean = maml.meta_gradient(model, maml.parameters_of(model), batch, INNER_LR).grads
    check = check_meta_gradient(model, {k: batch.n_tasks * g for k, g in mean.items()}, batch, INNER_LR)
    assert not check.passed
    assert torch.allclose(check.claimed / check.finite_differences, torch.full((3,), 4.0, dtype=torch.float64))


def test_meta_objective_is_the_mean_query_loss_after_the_step(setting):
    model, batch = setting
    params = {k: v.requires_grad_(True) for k, v in maml.parameters_of(model).items()}
    t = 2
    support, query = batch.task(t).support, batch.task(t).query
    loss = torch.nn.functional.mse_loss(functional_call(model, params, (support.X[0],)), support.y[0])
    grads = torch.autograd.grad(loss, list(params.values()))
    adapted = {k: v - INNER_LR * g for (k, v), g in zip(params.items(), grads)}
    by_hand = torch.nn.functional.mse_loss(functional_call(model, adapted, (query.X[0],)), query.y[0])
    per_task = [meta_objective(model, maml.parameters_of(model), batch.task(i), INNER_LR) for i in range(4)]
    assert torch.allclose(per_task[t], by_hand, rtol=1e-5)
    assert torch.allclose(meta_objective(model, maml.parameters_of(model), batch, INNER_LR), torch.stack(per_task).mean())


def test_bad_settings_name_the_parameter(setting):
    model, batch = setting
    grads = {name: torch.zeros_like(p) for name, p in model.named_parameters()}
    with pytest.raises(ValueError, match="n_directions"):
        check_meta_gradient(model, grads, batch, INNER_LR, n_directions=0)
    with pytest.raises(ValueError, match="no entry for"):
        check_meta_gradient(model, {}, batch, INNER_LR)
