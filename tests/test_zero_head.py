"""The zero-head closed form gives the general MAML engine's numbers (float64): loss, accuracy and every gradient,
second and first order; it agrees with finite differences of the meta-loss; ``applies`` says when it holds."""

import pytest
import torch
from torch import nn
from torch.func import functional_call
from torch.nn import functional as F

from metalearn_lite import maml, zero_head
from metalearn_lite.models import MLP, Conv4
from metalearn_lite.tasks import Split, TaskBatch
from metalearn_lite.zero_head import applies, zero_head_meta_gradient

INNER_LR = 0.4
N_TASKS, N_QUERY = 3, 3


def zero_head_problem(k_shot, n_way=5, model_way=5, seed=0, balanced=True):
    """A float64 Conv4 (8 channels) with an exactly zero ``n_way`` head, and 3 random ``n_way``-way tasks.

    ``balanced=False`` draws the support labels at random: with ``k_shot`` of every class the adapted bias
    ``b' = -alpha mean_i (1/N - onehot(y_i))`` is zero, and a wrong bias formula would go unnoticed."""
    torch.manual_seed(seed)
    model = Conv4(n_way=model_way, hidden_channels=8).double()
    params = {name: p.detach().clone() for name, p in model.named_parameters()}
    params["head.weight"] = params["head.weight"].new_zeros(n_way, params["head.weight"].shape[1])
    params["head.bias"] = params["head.bias"].new_zeros(n_way)
    generator = torch.Generator().manual_seed(seed + 1)

    def split(per_class, balanced=True):
        X = torch.randn(N_TASKS, n_way * per_class, 1, 28, 28, generator=generator, dtype=torch.float64)
        y = torch.stack([torch.randperm(n_way, generator=generator).repeat_interleave(per_class)
                         for _ in range(N_TASKS)])  # each task its own label order
        if not balanced:
            y = torch.randint(n_way, y.shape, generator=generator)
        return Split(X, y)
    return model, params, TaskBatch(split(k_shot, balanced), split(N_QUERY))


def plain_meta_gradient(model, params, batch, inner_lr, first_order):
    """Reference independent of the engine: per-task autograd, one inner step with create_graph."""
    leaves = {name: p.detach().clone().requires_grad_(True) for name, p in params.items()}
    grads = {name: torch.zeros_like(p) for name, p in leaves.items()}
    losses, accuracies = [], []
    for t in range(batch.n_tasks):
        logits, query_loss = _task_query(model, leaves, batch, t, inner_lr, create_graph=not first_order)
        for name, g in zip(leaves, torch.autograd.grad(query_loss, list(leaves.values()))):
            grads[name] += g / batch.n_tasks
        losses.append(query_loss.detach())
        accuracies.append((logits.argmax(dim=-1) == batch.query.y[t]).double().mean())
    return maml.MetaGradient(grads, torch.stack(losses).mean(), torch.stack(accuracies).mean())


def meta_loss(model, params, batch, inner_lr):
    """Mean query loss after one inner step (value only: for finite differences)."""
    leaves = {name: p.detach().clone().requires_grad_(True) for name, p in params.items()}
    return sum(float(_task_query(model, leaves, batch, t, inner_lr, create_graph=False)[1].detach())
               for t in range(batch.n_tasks)) / batch.n_tasks


def _task_query(model, leaves, batch, t, inner_lr, create_graph):
    support_loss = F.cross_entropy(functional_call(model, leaves, (batch.support.X[t],)), batch.support.y[t])
    inner = torch.autograd.grad(support_loss, list(leaves.values()), create_graph=create_graph)
    fast = {name: p - inner_lr * g for (name, p), g in zip(leaves.items(), inner)}
    logits = functional_call(model, fast, (batch.query.X[t],))
    return logits, F.cross_entropy(logits, batch.query.y[t])


def assert_same_meta_gradient(got, expected, rtol=1e-9):
    assert list(got.grads) == list(expected.grads)
    torch.testing.assert_close(got.loss, expected.loss, rtol=rtol, atol=0)
    torch.testing.assert_close(got.accuracy, expected.accuracy, rtol=0, atol=0)
    # Conv biases before batch norm have a zero gradient up to round-off: compare on the scale of all gradients.
    scale = max(float(g.abs().max()) for g in expected.grads.values())
    for name in expected.grads:
        torch.testing.assert_close(got.grads[name], expected.grads[name], rtol=rtol, atol=1e-12 * scale,
                                   msg=lambda message, name=name: f"{name}: {message}")


@pytest.mark.parametrize("first_order", [False, True], ids=["second_order", "first_order"])
@pytest.mark.parametrize("k_shot, balanced", [(1, True), (2, True), (2, False)], ids=["1shot", "2shot", "unbalanced"])
def test_equals_the_general_engine_loop(k_shot, balanced, first_order):
    model, params, batch = zero_head_problem(k_shot, balanced=balanced)
    expected = maml.meta_gradient(model, params, batch, INNER_LR, inner_steps=1, loss="cross_entropy",
                                  first_order=first_order, strategy="loop")
    got = zero_head_meta_gradient(model, params, batch, INNER_LR, first_order=first_order)
    assert_same_meta_gradient(got, expected)
    assert float(got.grads["head.weight"].abs().max()) > 1e-3  # the comparison is not between zeros


@pytest.mark.parametrize("first_order", [False, True], ids=["second_order", "first_order"])
def test_equals_a_plain_autograd_reference_with_a_resized_head(first_order):
    # A 3-way zero head on a model built 5-way (what few_shot.params_for_n_way hands the engine).
    model, params, batch = zero_head_problem(k_shot=2, n_way=3, model_way=5, seed=3, balanced=False)
    expected = plain_meta_gradient(model, params, batch, INNER_LR, first_order)
    assert_same_meta_gradient(zero_head_meta_gradient(model, params, batch, INNER_LR, first_order), expected)


def smooth_body(model):
    """The same Conv4 with Softplus and average pooling: a meta-loss without kinks (the derivation holds for any
    body). Along head directions the ReLU/max-pool meta-loss has kinks about every 1e-6 (a head change moves the
    adapted body ``-alpha J^T W^T r / n`` across many ReLU and max-pool switches), so its finite differences need
    h = 1e-6; the smooth body checks the same algebra at an ordinary step."""
    for block in model.features:
        block[2], block[3] = nn.Softplus(beta=2.0), nn.AvgPool2d(2)
    return model


@pytest.mark.parametrize("part", ["all", "head", "body"])
@pytest.mark.parametrize("body, h, rel", [("relu_maxpool", 1e-6, 1e-5), ("smooth", 1e-5, 1e-6)])
def test_second_order_matches_central_finite_differences(body, h, rel, part):
    model, params, batch = zero_head_problem(k_shot=2, seed=5, balanced=False)
    if body == "smooth":
        smooth_body(model)
    result = zero_head_meta_gradient(model, params, batch, INNER_LR)
    generator = torch.Generator().manual_seed(7)
    for _ in range(3):
        direction = {name: torch.randn(p.shape, generator=generator, dtype=p.dtype)
                     * (part == "all" or (part == "head") == name.startswith("head.")) for name, p in params.items()}
        norm = sum(float((d ** 2).sum()) for d in direction.values()) ** 0.5
        direction = {name: d / norm for name, d in direction.items()}
        shifted = [meta_loss(model, {n: p + sign * h * direction[n] for n, p in params.items()}, batch, INNER_LR)
                   for sign in (1, -1)]
        numeric = (shifted[0] - shifted[1]) / (2 * h)
        analytic = sum(float((result.grads[n] * direction[n]).sum()) for n in params)
        assert abs(analytic) > 1e-5  # a direction along which the meta-loss really changes
        assert analytic == pytest.approx(numeric, rel=rel, abs=1e-10)


def test_the_checks_fail_without_the_head_term_through_the_body(monkeypatch):
    """Dropping d theta'/dW (the jvp term) or using first order must break the comparison: the tests can fail."""
    model, params, batch = zero_head_problem(k_shot=2)
    expected = maml.meta_gradient(model, params, batch, INNER_LR, 1, "cross_entropy", strategy="loop")
    first_order = zero_head_meta_gradient(model, params, batch, INNER_LR, first_order=True)
    with pytest.raises(AssertionError):
        assert_same_meta_gradient(first_order, expected)
    monkeypatch.setattr(zero_head, "_support_feature_jvp", lambda features, body, X, direction: torch.zeros(
        X.shape[0], params["head.weight"].shape[1], dtype=X.dtype))
    without_jvp = zero_head_meta_gradient(model, params, batch, INNER_LR)
    torch.testing.assert_close(without_jvp.grads["head.bias"], expected.grads["head.bias"], rtol=1e-9, atol=1e-15)
    gap = (without_jvp.grads["head.weight"] - expected.grads["head.weight"]).abs().max()
    assert gap > 1e-4 * expected.grads["head.weight"].abs().max()
    with pytest.raises(AssertionError):
        assert_same_meta_gradient(without_jvp, expected)


def test_applies_only_to_conv4_with_an_exactly_zero_head_one_step_cross_entropy():
    model, params, _ = zero_head_problem(k_shot=1)
    assert applies(model, params, 1, "cross_entropy")
    assert not applies(model, params, 2, "cross_entropy")
    assert not applies(model, params, 0, "cross_entropy")
    assert not applies(model, params, True, "cross_entropy")
    assert not applies(model, params, 1, "mse")
    for name in ("head.weight", "head.bias"):
        nudged = dict(params, **{name: params[name].clone()})
        nudged[name].view(-1)[0] = 1e-300
        assert not applies(model, nudged, 1, "cross_entropy"), name
        assert not applies(model, {n: p for n, p in params.items() if n != name}, 1, "cross_entropy"), name
    assert not applies(model, {n: p.detach() for n, p in model.named_parameters()}, 1, "cross_entropy")
    mlp = MLP(in_features=4, out_features=3)
    mlp_params = {n: torch.zeros_like(p) for n, p in mlp.named_parameters()}
    assert not applies(mlp, mlp_params, 1, "cross_entropy")
    sequential = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(4 * 26 * 26, 5))
    assert not applies(sequential, {n: torch.zeros_like(p) for n, p in sequential.named_parameters()}, 1,
                       "cross_entropy")


def test_refuses_a_nonzero_head():
    model, _, batch = zero_head_problem(k_shot=1)
    with pytest.raises(ValueError, match="zero head"):
        zero_head_meta_gradient(model, {n: p.detach() for n, p in model.named_parameters()}, batch, INNER_LR)
