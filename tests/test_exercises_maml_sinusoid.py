"""The checkers of notebook 4's exercises accept right answers, explain common wrong ones, never crash."""

import numpy as np
import pytest
import torch
from torch.func import functional_call
from torch.nn import functional as F

from metalearn_lite.exercises import maml_sinusoid as ex


def fine_tune(model, params, X, y, lr, steps):
    p = {k: v.detach().clone().requires_grad_(True) for k, v in params.items()}
    for _ in range(steps):
        grads = torch.autograd.grad(F.mse_loss(functional_call(model, p, (X,)), y), list(p.values()))
        p = {k: (v - lr * g).detach().requires_grad_(True) for (k, v), g in zip(p.items(), grads)}
    return {k: v.detach() for k, v in p.items()}


def in_place(model, params, X, y, lr, steps):
    for name, value in fine_tune(model, params, X, y, lr, steps).items():
        params[name].copy_(value)
    return params


def test_ci95(capsys):
    losses = ex.CI_LOSSES
    assert ex.check_ci95(1.96 * losses.std(ddof=1) / np.sqrt(len(losses)))
    assert not ex.check_ci95(1.96 * losses.std() / np.sqrt(len(losses)))
    assert "ddof=1" in capsys.readouterr().out
    assert not ex.check_ci95(losses.std(ddof=1) / np.sqrt(len(losses)))
    assert "1.96" in capsys.readouterr().out
    assert not ex.check_ci95(None)
    with pytest.raises(ValueError, match="single number"):
        ex.check_ci95("0.2")


def test_fine_tune(capsys):
    assert ex.check_fine_tune(fine_tune)
    assert not ex.check_fine_tune(lambda model, params, X, y, lr, steps: params)
    assert "nothing moved" in capsys.readouterr().out
    assert not ex.check_fine_tune(lambda model, params, X, y, lr, steps: fine_tune(model, params, X, y, 0.02, steps))
    assert not ex.check_fine_tune(lambda *args: 1 / 0)
    assert "ZeroDivisionError" in capsys.readouterr().out
    assert not ex.check_fine_tune(lambda *args: [1, 2])
    assert not ex.check_fine_tune(in_place)
    assert "in place" in capsys.readouterr().out
    assert not ex.check_fine_tune(None)
    with pytest.raises(ValueError, match="function"):
        ex.check_fine_tune(3)


def test_why_pretrained_fails(capsys):
    assert ex.check_why_pretrained_fails("b") and ex.check_why_pretrained_fails(" B) ")
    assert not any(ex.check_why_pretrained_fails(k) for k in "acd")
    assert not ex.check_why_pretrained_fails(None)
    with pytest.raises(ValueError, match="'a'"):
        ex.check_why_pretrained_fails("e")


def no_return(model, params, X, y, lr, steps):
    fine_tune(model, params, X, y, lr, steps)


def ignores_params(model, params, X, y, lr, steps):
    return fine_tune(model, {k: v.detach() for k, v in model.named_parameters()}, X, y, lr, steps)


def optimiser_on_the_model(model, params, X, y, lr, steps):
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    for _ in range(steps):
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(X), y).backward()
        optimizer.step()
    return {k: v.detach().clone() for k, v in model.named_parameters()}


def tuple_return(model, params, X, y, lr, steps):
    return fine_tune(model, params, X, y, lr, steps), []


def no_requires_grad(model, params, X, y, lr, steps):
    from torch.func import functional_call
    p = {k: v.detach().clone() for k, v in params.items()}
    for _ in range(steps):
        loss = torch.nn.functional.mse_loss(functional_call(model, p, (X,)), y)
        grads = torch.autograd.grad(loss, list(p.values()))
        p = {k: v - lr * g for (k, v), g in zip(p.items(), grads)}
    return p


@pytest.mark.parametrize("answer, diagnosis", [
    (no_return, "returned None: did it end with `return p`"),
    (ignores_params, "starts from the model's own weights, not from params"),
    (optimiser_on_the_model, "changed the model's own weights"),
    (tuple_return, "returned a tuple of 2; return the parameter dict alone"),
    (no_requires_grad, "requires_grad_(True)"),
])
def test_fine_tune_slips_get_their_own_diagnosis(capsys, answer, diagnosis):
    assert not ex.check_fine_tune(answer)
    out = capsys.readouterr().out
    assert out.startswith("Not yet.") and diagnosis in out, out


def test_ci95_recognises_the_t_quantile(capsys):
    losses = ex.CI_LOSSES
    assert not ex.check_ci95(2.262 * losses.std(ddof=1) / np.sqrt(len(losses)))
    assert "Student's t quantile (2.262 for 9 degrees of freedom)" in capsys.readouterr().out


def deepcopy_maml(model, batch, inner_lr, optimizer):
    """The classic blog-post MAML: a deep copy per task and an inner SGD optimiser."""
    import copy
    optimizer.zero_grad()
    for t in range(batch.n_tasks):
        fast = copy.deepcopy(model)
        inner = torch.optim.SGD(fast.parameters(), lr=inner_lr)
        torch.nn.functional.mse_loss(fast(batch.support.X[t]), batch.support.y[t]).backward()
        inner.step()
        (torch.nn.functional.mse_loss(fast(batch.query.X[t]), batch.query.y[t]) / batch.n_tasks).backward()
    optimizer.step()


def in_place_maml(model, batch, inner_lr, optimizer):
    """An inner step that writes into the model's own parameters (.data), then backward from the query loss."""
    optimizer.zero_grad()
    for t in range(batch.n_tasks):
        support = torch.nn.functional.mse_loss(model(batch.support.X[t]), batch.support.y[t])
        for p, g in zip(model.parameters(), torch.autograd.grad(support, list(model.parameters()))):
            p.data -= inner_lr * g
        (torch.nn.functional.mse_loss(model(batch.query.X[t]), batch.query.y[t]) / batch.n_tasks).backward()
    optimizer.step()


def functional_maml(model, batch, inner_lr, optimizer, create_graph=True, scale=None):
    from torch.func import functional_call
    theta = dict(model.named_parameters())
    losses = []
    for t in range(batch.n_tasks):
        support = torch.nn.functional.mse_loss(functional_call(model, theta, (batch.support.X[t],)), batch.support.y[t])
        grads = torch.autograd.grad(support, list(theta.values()), create_graph=create_graph)
        adapted = {k: w - inner_lr * g for (k, w), g in zip(theta.items(), grads)}
        losses.append(torch.nn.functional.mse_loss(functional_call(model, adapted, (batch.query.X[t],)),
                                                   batch.query.y[t]))
    optimizer.zero_grad()
    (torch.stack(losses).sum() if scale == "sum" else torch.stack(losses).mean()).backward()
    optimizer.step()


@pytest.mark.parametrize("answer, correct, diagnosis", [
    (functional_maml, True, "equals maml.meta_gradient"),
    (deepcopy_maml, False, "no meta-gradient reached the initialisation"),
    (in_place_maml, False, "changed the initialisation itself"),
    (lambda m, b, lr, o: functional_maml(m, b, lr, o, create_graph=False), False, "first-order one"),
    (lambda m, b, lr, o: functional_maml(m, b, lr, o, scale="sum"), False, "4 times too large"),
    (lambda m, b, lr, o: 1 / 0, False, "ZeroDivisionError"),
])
def test_maml_step_checker(capsys, answer, correct, diagnosis):
    assert ex.check_maml_step(answer) is correct
    assert diagnosis in capsys.readouterr().out
    assert not ex.check_maml_step(None)
