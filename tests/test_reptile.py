"""Reptile: the outer update is its definition, theta + epsilon * (mean_i phi_i - theta), with phi_i from plain
gradient steps written out by hand; the grouped and the vmap paths give the same adapted weights."""

import pytest
import torch

from metalearn_lite import maml, reptile
from metalearn_lite.maml import parameters_of
from metalearn_lite.models import MLP, LinearModel
from metalearn_lite.tasks import LinearTasks, SinusoidTasks
from metalearn_lite.train import meta_train


def by_hand_phi(model, params, batch, inner_lr, inner_steps, loss="mse"):
    """Each task's weights after inner_steps plain gradient steps on its support set (autograd, no engine)."""
    forward = maml.model_forward(model)
    phis = []
    for t in range(batch.n_tasks):
        fast = {k: v.detach().clone() for k, v in params.items()}
        for _ in range(inner_steps):
            leaves = {k: v.requires_grad_() for k, v in fast.items()}
            grads = torch.autograd.grad(maml.task_losses(loss, forward(leaves, batch.support.X[t]),
                                                         batch.support.y[t]), list(leaves.values()))
            fast = {k: (v - inner_lr * g).detach() for (k, v), g in zip(leaves.items(), grads)}
        phis.append(fast)
    return phis


def tiny_problems():
    torch.manual_seed(0)
    sinusoids = SinusoidTasks().sample(3, 4, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    linear = LinearTasks(dim=2).sample(3, 4, 5, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    return [(MLP(hidden=(3,)).double(), sinusoids), (LinearModel(dim=2).double(), linear)]


@pytest.mark.parametrize("problem", [0, 1], ids=["MLP (grouped path)", "LinearModel (vmap path)"])
def test_the_outer_update_is_the_definition(problem):
    model, batch = tiny_problems()[problem]
    with torch.no_grad():   # a nonzero start for the linear model (its default is zero)
        for p in model.parameters():
            p.add_(0.1)
    theta = {k: v.clone() for k, v in parameters_of(model).items()}
    inner_lr, inner_steps, epsilon = 0.05, 3, 0.3
    phis = by_hand_phi(model, theta, batch, inner_lr, inner_steps)
    learner = reptile.Reptile(model, inner_lr=inner_lr, inner_steps=inner_steps)
    learner.meta_step(batch, torch.optim.SGD(model.parameters(), lr=epsilon))
    for name, before in theta.items():
        mean_phi = torch.stack([phi[name] for phi in phis]).mean(dim=0)
        expected = before + epsilon * (mean_phi - before)
        torch.testing.assert_close(parameters_of(model)[name], expected, rtol=1e-12, atol=1e-12)
        assert not torch.allclose(expected, before)


def test_epsilon_one_moves_the_initialisation_onto_the_mean_adapted_weights():
    model, batch = tiny_problems()[0]
    theta = parameters_of(model)
    phi, _, _ = reptile.adapted_weights(model, theta, batch, 0.05, 2)
    reptile.Reptile(model, 0.05, 2).meta_step(batch, torch.optim.SGD(model.parameters(), lr=1.0))
    for name, value in parameters_of(model).items():
        torch.testing.assert_close(value, phi[name].mean(dim=0), rtol=1e-12, atol=1e-12)


def test_one_inner_step_is_the_support_gradient():
    """With one step, theta - phi is inner_lr times the support gradient: joint training (the paper's remark)."""
    model, batch = tiny_problems()[0]
    params = parameters_of(model)
    direction = reptile.reptile_direction(model, params, batch, 0.05, 1)
    gradients = []
    for t in range(batch.n_tasks):
        leaves = {k: v.clone().requires_grad_() for k, v in params.items()}
        loss = maml.task_losses("mse", maml.model_forward(model)(leaves, batch.support.X[t]), batch.support.y[t])
        gradients.append(torch.autograd.grad(loss, list(leaves.values())))
    for i, name in enumerate(params):
        torch.testing.assert_close(direction.grads[name], 0.05 * sum(g[i] for g in gradients) / batch.n_tasks,
                                   rtol=1e-10, atol=1e-12)


def test_the_reported_loss_is_the_query_loss_after_adaptation():
    model, batch = tiny_problems()[0]
    params = parameters_of(model)
    direction = reptile.reptile_direction(model, params, batch, 0.05, 3)
    curves = maml.adapt(model, params, batch, 0.05, 3)
    torch.testing.assert_close(direction.loss, curves.query_losses[:, -1].mean(), rtol=1e-10, atol=1e-12)


def test_meta_train_trains_reptile():
    model, batch = tiny_problems()[0]
    before = {k: v.clone() for k, v in parameters_of(model).items()}
    history = meta_train(reptile.Reptile(model, 0.05, 3), lambda generator: batch, 3, progress=False)
    assert history.meta_steps_done == 3 and len(history.losses) == 3
    assert all(not torch.equal(before[k], v) for k, v in parameters_of(model).items())


@pytest.mark.parametrize("kwargs, message", [({"inner_steps": 0}, "inner_steps must be an integer >= 1"),
                                             ({"inner_lr": -0.1}, "inner_lr"), ({"loss": "l1"}, "loss")])
def test_bad_settings_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        reptile.Reptile(MLP(), **kwargs)
