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
