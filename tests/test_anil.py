"""ANIL: the inner loop adapts the head only (the body's inner gradient is never applied); the meta-gradient
reaches every parameter and matches finite differences of the objective computed by hand."""

import pytest
import torch

from metalearn_lite import anil, maml
from metalearn_lite.maml import parameters_of
from metalearn_lite.train import meta_train


def by_hand_objective(model, params, batch, inner_lr, inner_steps, loss, head):
    """The ANIL meta-loss written out: plain autograd steps on the head, the body left as it is."""
    forward = maml.model_forward(model)
    values = []
    for t in range(batch.n_tasks):
        sX, sy, qX, qy = batch.support.X[t], batch.support.y[t], batch.query.X[t], batch.query.y[t]
        fast = {k: v if v.requires_grad else v.detach().requires_grad_() for k, v in params.items()}
        for _ in range(inner_steps):
            head_now = [fast[k] for k in head]
            support_loss = maml.task_losses(loss, forward(fast, sX), sy)
            grads = torch.autograd.grad(support_loss, head_now, create_graph=True)
            fast = {**fast, **{k: fast[k] - inner_lr * g for k, g in zip(head, grads)}}
        values.append(maml.task_losses(loss, forward(fast, qX), qy))
    return torch.stack(values).mean()


def fd_mismatches(model, batch, grads, inner_lr, inner_steps, loss, head, eps=1e-6, count=3):
    params = parameters_of(model)
    generator = torch.Generator().manual_seed(0)
    errors = []
    for _ in range(count):
        direction = {k: torch.randn(p.shape, generator=generator, dtype=p.dtype) for k, p in params.items()}
        plus = {k: p + eps * direction[k] for k, p in params.items()}
        minus = {k: p - eps * direction[k] for k, p in params.items()}
        fd = (by_hand_objective(model, plus, batch, inner_lr, inner_steps, loss, head)
              - by_hand_objective(model, minus, batch, inner_lr, inner_steps, loss, head)) / (2 * eps)
        analytic = sum((grads[k] * direction[k]).sum() for k in params)
        errors.append(abs(float(analytic - fd.detach())) / max(abs(float(fd.detach())), 1e-8))
    return errors


def test_the_head_is_the_last_linear_layer(sinusoid_problem, conv_problem):
    assert anil.head_names(sinusoid_problem[0]) == ("4.weight", "4.bias")
    assert anil.head_names(conv_problem[0]) == ("head.weight", "head.bias")


def test_the_inner_loop_leaves_the_body_unchanged(sinusoid_problem):
    model, batch = sinusoid_problem
    params = parameters_of(model)
    adapted = anil.ANIL(model, inner_lr=0.05, inner_steps=3).adapt(batch).params
    for name in ("0.weight", "0.bias", "2.weight", "2.bias"):
        for t in range(batch.n_tasks):
            assert torch.equal(adapted[name][t], params[name]), name
    assert not torch.allclose(adapted["4.weight"][0], params["4.weight"])
    # Not just "not stored": MAML's adaptation would have moved the body (its inner gradient is nonzero there).
    assert not torch.allclose(maml.adapt(model, params, batch, 0.05, 3).params["0.weight"][0], params["0.weight"])


@pytest.mark.parametrize("strategy", ["loop", "vmap", "grouped"])
@pytest.mark.parametrize("first_order", [False, True])
def test_adaptation_is_the_by_hand_head_adaptation(sinusoid_problem, strategy, first_order):
    model, batch = sinusoid_problem
    params = parameters_of(model)
    result = anil.meta_gradient(model, params, batch, 0.05, 2, first_order=first_order, strategy=strategy)
    expected = by_hand_objective(model, params, batch, 0.05, 2, "mse", anil.head_names(model))
    torch.testing.assert_close(result.loss, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("strategy", ["loop", "vmap", "grouped"])
def test_meta_gradient_matches_finite_differences(sinusoid_problem, strategy):
    model, batch = sinusoid_problem
    result = anil.meta_gradient(model, parameters_of(model), batch, 0.05, 2, strategy=strategy)
    assert all(result.grads[k].abs().sum() > 0 for k in result.grads)   # the body is meta-learned too
    assert max(fd_mismatches(model, batch, result.grads, 0.05, 2, "mse", anil.head_names(model))) < 1e-5


def test_conv_meta_gradient_matches_finite_differences(conv_problem):
    model, batch = conv_problem
    result = anil.meta_gradient(model, parameters_of(model), batch, 0.4, 1, "cross_entropy", strategy="loop")
    assert max(fd_mismatches(model, batch, result.grads, 0.4, 1, "cross_entropy", ("head.weight", "head.bias"),
                             count=2)) < 1e-5


def test_with_every_parameter_as_the_head_anil_is_maml(sinusoid_problem):
    model, batch = sinusoid_problem
    params = parameters_of(model)
    everything = anil.meta_gradient(model, params, batch, 0.05, 2, head=list(params), strategy="loop")
    reference = maml.meta_gradient(model, params, batch, 0.05, 2, strategy="loop")
    for name in params:
        torch.testing.assert_close(everything.grads[name], reference.grads[name], rtol=1e-10, atol=1e-12)


def test_at_a_zero_head_one_maml_step_is_an_anil_step(conv_problem):
    """Notebook 5's recipe: with the head at zero the body's inner gradient is zero, so the adapted weights, the
    meta-loss and the body's meta-gradient are those of ANIL (the head's meta-gradients differ: MAML's inner step
    on the body depends on the head)."""
    model, batch = conv_problem
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.zero_()
    params = parameters_of(model)
    ours = anil.meta_gradient(model, params, batch, 0.4, 1, "cross_entropy", strategy="loop")
    theirs = maml.meta_gradient(model, params, batch, 0.4, 1, "cross_entropy", strategy="loop")
    torch.testing.assert_close(ours.loss, theirs.loss, rtol=1e-12, atol=1e-12)
    for name in params:
        if not name.startswith("head."):
            torch.testing.assert_close(ours.grads[name], theirs.grads[name], rtol=1e-8, atol=1e-12)


def test_meta_train_trains_anil(sinusoid_problem):
    model, batch = sinusoid_problem
    before = {k: v.clone() for k, v in parameters_of(model).items()}
    history = meta_train(anil.ANIL(model, inner_lr=0.05), lambda generator: batch, 3, progress=False)
    assert history.meta_steps_done == 3
    assert all(not torch.equal(before[k], v) for k, v in parameters_of(model).items())


@pytest.mark.parametrize("kwargs, name", [({"head": ["nope"]}, "head"), ({"head": []}, "head"),
                                          ({"inner_lr": 0.0}, "inner_lr"), ({"inner_steps": -1}, "inner_steps")])
def test_bad_settings_are_named(sinusoid_problem, kwargs, name):
    model, batch = sinusoid_problem
    with pytest.raises(ValueError, match=name):
        anil.ANIL(model, **kwargs)


def test_a_model_without_a_linear_head_needs_the_head_named():
    model = torch.nn.Sequential(torch.nn.Linear(1, 4), torch.nn.ReLU())
    with pytest.raises(ValueError, match="head"):
        anil.head_names(model)
    assert anil.check_head(model, ["0.bias"]) == ("0.bias",)


@pytest.mark.parametrize("problem", ["sinusoid_problem", "conv_problem"])
def test_adaptation_on_features_computed_once_equals_the_whole_network_at_every_step(request, problem):
    """``anil.adapt`` runs the frozen body once per task and adapts the head on its features (the explorer's
    speed); the curves and adapted heads are those of the whole network run at every step."""
    model, batch = request.getfixturevalue(problem)
    params = parameters_of(model)
    head = anil.head_names(model)
    assert anil.body_forward(model, head) is not None
    loss = "mse" if problem == "sinusoid_problem" else "cross_entropy"
    fast = anil.adapt(model, params, batch, 0.3, 3, loss)
    body, head_params = anil.split_head(params, head)
    forward = anil.head_forward(maml.model_forward(model), body)
    for t in range(batch.n_tasks):
        support = maml.Split(batch.support.X[t], batch.support.y[t])
        query = maml.Split(batch.query.X[t], batch.query.y[t])
        slow = maml.adaptation_curves(model, head_params, support, query, 0.3, 3, loss, forward)
        torch.testing.assert_close(fast.query_losses[t], slow.query_losses, rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(fast.support_losses[t], slow.support_losses, rtol=1e-6, atol=1e-7)
        for name in head:
            torch.testing.assert_close(fast.params[name][t], slow.params[name], rtol=1e-6, atol=1e-7)


def test_a_head_other_than_the_last_layer_runs_the_whole_network(sinusoid_problem):
    model, batch = sinusoid_problem
    assert anil.body_forward(model, ("2.weight", "2.bias")) is None
    adapted = anil.adapt(model, parameters_of(model), batch, 0.05, 2, head=("2.weight", "2.bias"))
    assert not torch.equal(adapted.params["2.weight"][0], parameters_of(model)["2.weight"])
