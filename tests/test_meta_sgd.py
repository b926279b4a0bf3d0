"""Meta-SGD: per-parameter learned inner rates through the engine's one inner update; their meta-gradient matches
finite differences of the objective written out by hand; with equal rates it is MAML."""

import pytest
import torch

from metalearn_lite import maml, meta_sgd
from metalearn_lite.maml import parameters_of
from metalearn_lite.train import meta_train


def random_rates(params, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return {k: 0.01 + 0.09 * torch.rand(p.shape, generator=generator, dtype=p.dtype) for k, p in params.items()}


def by_hand_objective(model, params, rates, batch, inner_steps, loss="mse"):
    """theta' = theta - alpha * grad L_S (elementwise), written out with plain autograd."""
    forward = maml.model_forward(model)
    values = []
    for t in range(batch.n_tasks):
        fast = {k: v if v.requires_grad else v.detach().requires_grad_() for k, v in params.items()}
        for _ in range(inner_steps):
            support_loss = maml.task_losses(loss, forward(fast, batch.support.X[t]), batch.support.y[t])
            grads = torch.autograd.grad(support_loss, list(fast.values()), create_graph=True)
            fast = {k: v - rates[k] * g for (k, v), g in zip(fast.items(), grads)}
        values.append(maml.task_losses(loss, forward(fast, batch.query.X[t]), batch.query.y[t]))
    return torch.stack(values).mean()


def test_sgd_step_takes_a_rate_per_entry():
    params = {"w": torch.tensor([1.0, 2.0])}
    grads = {"w": torch.tensor([10.0, 10.0])}
    stepped = maml.sgd_step(params, grads, {"w": torch.tensor([0.1, 0.01])})
    torch.testing.assert_close(stepped["w"], torch.tensor([0.0, 1.9]))
    torch.testing.assert_close(maml.sgd_step(params, grads, 0.1)["w"], torch.tensor([0.0, 1.0]))


@pytest.mark.parametrize("strategy", ["loop", "vmap", "grouped"])
def test_the_rates_gradient_matches_finite_differences(sinusoid_problem, strategy):
    model, batch = sinusoid_problem
    params = parameters_of(model)
    rates = random_rates(params)
    result = meta_sgd.meta_gradient(model, params, rates, batch, inner_steps=2, strategy=strategy)
    torch.testing.assert_close(result.loss, by_hand_objective(model, params, rates, batch, 2).detach(),
                               rtol=1e-10, atol=1e-12)
    generator, eps = torch.Generator().manual_seed(1), 1e-6
    for _ in range(3):
        direction = {k: torch.randn(p.shape, generator=generator, dtype=p.dtype) for k, p in params.items()}
        plus = {k: r + eps * direction[k] for k, r in rates.items()}
        minus = {k: r - eps * direction[k] for k, r in rates.items()}
        fd = float((by_hand_objective(model, params, plus, batch, 2)
                    - by_hand_objective(model, params, minus, batch, 2)).detach()) / (2 * eps)
        analytic = float(sum((result.inner_lr_grads[k] * direction[k]).sum() for k in params))
        assert abs(analytic - fd) / abs(fd) < 1e-5


def test_the_initialisation_gradient_matches_finite_differences(sinusoid_problem):
    model, batch = sinusoid_problem
    params = parameters_of(model)
    rates = random_rates(params, seed=2)
    result = meta_sgd.meta_gradient(model, params, rates, batch, inner_steps=1, strategy="loop")
    direction = {k: torch.randn(p.shape, generator=torch.Generator().manual_seed(3), dtype=p.dtype)
                 for k, p in params.items()}
    eps = 1e-6
    fd = float((by_hand_objective(model, {k: p + eps * direction[k] for k, p in params.items()}, rates, batch, 1)
                - by_hand_objective(model, {k: p - eps * direction[k] for k, p in params.items()}, rates, batch, 1)
                ).detach()) / (2 * eps)
    analytic = float(sum((result.grads[k] * direction[k]).sum() for k in params))
    assert abs(analytic - fd) / abs(fd) < 1e-5


def test_with_equal_rates_meta_sgd_is_maml(sinusoid_problem):
    model, batch = sinusoid_problem
    params = parameters_of(model)
    ours = meta_sgd.meta_gradient(model, params, meta_sgd.initial_inner_lrs(params, 0.05), batch, 2,
                                  strategy="loop")
    theirs = maml.meta_gradient(model, params, batch, 0.05, 2, strategy="loop")
    torch.testing.assert_close(ours.loss, theirs.loss, rtol=1e-12, atol=1e-12)
    for name in params:
        torch.testing.assert_close(ours.grads[name], theirs.grads[name], rtol=1e-10, atol=1e-12)


def test_first_order_rates_gradient_is_minus_the_support_gradient_times_the_query_gradient(sinusoid_problem):
    model, batch = sinusoid_problem
    params = parameters_of(model)
    rates = random_rates(params)
    result = meta_sgd.meta_gradient(model, params, rates, batch, 1, first_order=True, strategy="loop")
    forward = maml.model_forward(model)
    expected = {k: torch.zeros_like(p) for k, p in params.items()}
    for t in range(batch.n_tasks):
        leaves = {k: p.clone().requires_grad_() for k, p in params.items()}
        g_s = torch.autograd.grad(maml.task_losses("mse", forward(leaves, batch.support.X[t]), batch.support.y[t]),
                                  list(leaves.values()))
        adapted = {k: (p - rates[k] * g).detach().requires_grad_() for (k, p), g in zip(params.items(), g_s)}
        g_q = torch.autograd.grad(maml.task_losses("mse", forward(adapted, batch.query.X[t]), batch.query.y[t]),
                                  list(adapted.values()))
        for (k, _), gs, gq in zip(params.items(), g_s, g_q):
            expected[k] += -gs * gq / batch.n_tasks
    for name in params:
        torch.testing.assert_close(result.inner_lr_grads[name], expected[name], rtol=1e-10, atol=1e-12)


def test_meta_train_learns_the_rates_with_its_default_optimizer(sinusoid_problem):
    model, batch = sinusoid_problem
    learner = meta_sgd.MetaSGD(model, inner_lr=0.05)
    before = {k: v.detach().clone() for k, v in learner.inner_lrs.items()}
    meta_train(learner, lambda generator: batch, 3, progress=False)
    assert all(not torch.equal(before[k], v.detach()) for k, v in learner.inner_lrs.items())
    assert learner.inner_lr == 0.05 and learner.adapt(batch).query_losses.shape == (batch.n_tasks, 2)


def test_rates_round_trip_through_plain_lists(sinusoid_problem):
    model, _ = sinusoid_problem
    learner = meta_sgd.MetaSGD(model, inner_lr=0.05, inner_lrs=random_rates(parameters_of(model)))
    other = meta_sgd.MetaSGD(model)
    other.load_inner_lrs(learner.inner_lrs_as_lists())
    for name, rate in learner.inner_lrs.items():
        assert torch.equal(other.inner_lrs[name], rate)


def test_bad_rates_are_named(sinusoid_problem):
    model, batch = sinusoid_problem
    params = parameters_of(model)
    wrong_shape = dict(meta_sgd.initial_inner_lrs(params), **{"0.weight": torch.ones(3, dtype=torch.float64)})
    with pytest.raises(ValueError, match=r"inner_lrs\['0.weight'\] must be a floating tensor of the parameter's"):
        meta_sgd.meta_gradient(model, params, wrong_shape, batch)
    missing = {k: v for k, v in meta_sgd.initial_inner_lrs(params).items() if k != "4.bias"}
    with pytest.raises(ValueError, match="inner_lrs must have exactly the keys"):
        meta_sgd.MetaSGD(model, inner_lrs=missing)
    with pytest.raises(ValueError, match="inner_lrs"):
        meta_sgd.meta_gradient(model, params, 0.01, batch)
    with pytest.raises(ValueError, match="inner_steps"):
        meta_sgd.MetaSGD(model, inner_steps=-1)
    with pytest.raises(ValueError, match="inner_lr"):
        meta_sgd.MetaSGD(model, inner_lr=float("nan"))


@pytest.mark.parametrize("strategy", ["loop", "vmap", "grouped"])
def test_no_inner_step_gives_the_rates_a_zero_gradient(sinusoid_problem, strategy):
    model, batch = sinusoid_problem
    params = parameters_of(model)
    result = meta_sgd.meta_gradient(model, params, random_rates(params), batch, 0, strategy=strategy)
    assert all(torch.count_nonzero(g) == 0 for g in result.inner_lr_grads.values())
    reference = maml.meta_gradient(model, params, batch, 0.05, 0, strategy="loop")
    for name in params:
        torch.testing.assert_close(result.grads[name], reference.grads[name], rtol=1e-10, atol=1e-12)
