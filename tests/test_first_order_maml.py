"""First-order MAML (``MAML(first_order=True)``) against second order: where they must differ, and by exactly
the Hessian term. Even a linear model differs: its MSE support loss has the constant, nonzero Hessian 2 X^T X / n,
so the two coincide only when that term vanishes (no inner step)."""

import pytest
import torch

from metalearn_lite import maml
from metalearn_lite.maml import MAML, meta_gradient, parameters_of
from metalearn_lite.models import LinearModel
from metalearn_lite.tasks import LinearTasks, Split
from metalearn_lite.train import meta_train


def linear_problem():
    batch = LinearTasks(dim=3).sample(4, 5, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    model = LinearModel(dim=3).double()
    with torch.no_grad():
        model.weight.copy_(torch.tensor([0.5, -0.3, 0.2]))
    return model, batch


def test_on_a_linear_model_the_difference_is_exactly_the_hessian_term():
    """One step: second order = mean_t (I - alpha H_t) g_t, first order = mean_t g_t, with g_t the query
    gradient at the adapted weights and H_t = 2 X_t^T X_t / n the support Hessian."""
    model, batch = linear_problem()
    params, alpha = parameters_of(model), 0.05
    second = meta_gradient(model, params, batch, alpha, 1, strategy="loop").grads["weight"]
    first = meta_gradient(model, params, batch, alpha, 1, first_order=True, strategy="loop").grads["weight"]
    adapted = maml.adapt(model, params, batch, alpha, 1).params["weight"]
    g, hessian_term = [], []
    for t in range(batch.n_tasks):
        X, y = batch.query.X[t], batch.query.y[t]
        g_t = 2 * X.T @ (X @ adapted[t].unsqueeze(-1) - y) / X.shape[0]
        S = batch.support.X[t]
        g.append(g_t.squeeze(-1))
        hessian_term.append((2 * S.T @ S / S.shape[0] @ g_t).squeeze(-1))
    torch.testing.assert_close(first, torch.stack(g).mean(dim=0), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(second, first - alpha * torch.stack(hessian_term).mean(dim=0), rtol=1e-10, atol=1e-12)
    assert (second - first).norm() > 1e-3 * first.norm()


@pytest.mark.parametrize("problem", ["sinusoid_problem", "conv_problem"])
def test_they_differ_after_a_step_and_agree_without_one(request, problem):
    model, batch = request.getfixturevalue(problem)
    loss, inner_lr = ("cross_entropy", 0.4) if problem == "conv_problem" else ("mse", 0.05)
    first, second = (MAML(model, inner_lr, 1, first_order=flag, loss=loss, strategy="loop").meta_gradient(batch)
                     for flag in (True, False))
    torch.testing.assert_close(first.loss, second.loss)   # the same adapted weights; only the gradient differs
    assert any(not torch.allclose(first.grads[k], second.grads[k], rtol=1e-3, atol=0) for k in first.grads)
    first, second = (MAML(model, inner_lr, 0, first_order=flag, loss=loss, strategy="loop").meta_gradient(batch)
                     for flag in (True, False))
    for name in first.grads:
        torch.testing.assert_close(first.grads[name], second.grads[name], rtol=0, atol=0)


def test_first_order_gradient_is_the_query_gradient_at_the_adapted_weights(sinusoid_problem):
    model, batch = sinusoid_problem
    params = parameters_of(model)
    result = meta_gradient(model, params, batch, 0.05, 2, first_order=True, strategy="loop")
    adapted = maml.adapt(model, params, batch, 0.05, 2).params
    total = {k: torch.zeros_like(p) for k, p in params.items()}
    for t in range(batch.n_tasks):
        leaves = {k: adapted[k][t].clone().requires_grad_() for k in params}
        loss = maml.loss_on(model, leaves, Split(batch.query.X[t], batch.query.y[t]))
        for k, g in zip(leaves, torch.autograd.grad(loss, list(leaves.values()))):
            total[k] += g / batch.n_tasks
    for name in params:
        torch.testing.assert_close(result.grads[name], total[name], rtol=1e-10, atol=1e-12)


def test_meta_train_trains_first_order_maml(sinusoid_problem):
    model, batch = sinusoid_problem
    history = meta_train(MAML(model, 0.05, first_order=True), lambda generator: batch, 3, progress=False)
    assert history.meta_steps_done == 3
