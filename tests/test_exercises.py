import math

import numpy as np
import pytest
import torch

from metalearn_lite.exercises import gradient_descent as ex1
from metalearn_lite.exercises import many_tasks as ex2
from metalearn_lite.exercises import maml_objective as ex3


def run(check, answer, capsys):
    result = check(answer)
    return result, capsys.readouterr().out


# --- notebook 1 ----------------------------------------------------------------------------------------------
def good_descent(gradient, start, lr, steps):
    theta = start
    for _ in range(steps):
        theta = theta - lr * gradient(theta)
    return theta


def ascent(gradient, start, lr, steps):
    theta = start
    for _ in range(steps):
        theta = theta + lr * gradient(theta)
    return theta


def one_step_short(gradient, start, lr, steps):
    return good_descent(gradient, start, lr, steps - 1)


def test_gradient_descent_checker(capsys):
    assert run(ex1.check_gradient_descent, good_descent, capsys)[0] is True
    ok, out = run(ex1.check_gradient_descent, ascent, capsys)
    assert ok is False and "subtracts the gradient" in out
    ok, out = run(ex1.check_gradient_descent, one_step_short, capsys)
    assert ok is False and "took 1 steps instead of 2" in out
    ok, out = run(ex1.check_gradient_descent, lambda g, s, lr, n: 1 / 0, capsys)
    assert ok is False and "ZeroDivisionError" in out
    ok, out = run(ex1.check_gradient_descent, None, capsys)
    assert ok is False and "Not answered yet" in out
    with pytest.raises(ValueError, match="must be a function"):
        ex1.check_gradient_descent(0.5)


def test_critical_learning_rate_checker(capsys):
    assert run(ex1.check_critical_learning_rate, 0.08, capsys)[0] is True
    assert run(ex1.check_critical_learning_rate, np.float64(2 / 25), capsys)[0] is True
    ok, out = run(ex1.check_critical_learning_rate, 0.1, capsys)     # the lesson's valley, printed above
    assert ok is False and "lesson's valley" in out and "25" in out
    ok, out = run(ex1.check_critical_learning_rate, 0.5, capsys)
    assert ok is False and "flat" in out
    ok, out = run(ex1.check_critical_learning_rate, 0.04, capsys)
    assert ok is False and "one step" in out
    ok, out = run(ex1.check_critical_learning_rate, 2 / 29, capsys)
    assert ok is False and "best" in out
    ok, out = run(ex1.check_critical_learning_rate, 0.079, capsys)   # just below the boundary: right, boundary named
    assert ok is True and "critical learning rate" in out
    ok, out = run(ex1.check_critical_learning_rate, 0.09, capsys)
    assert ok is False
    with pytest.raises(ValueError, match="single number"):
        ex1.check_critical_learning_rate("0.08")
    with pytest.raises(ValueError, match="single number"):
        ex1.check_critical_learning_rate([0.1, 0.2])


# --- notebook 2 ----------------------------------------------------------------------------------------------
def test_parameter_count_checker(capsys):
    assert run(ex2.check_parameter_count, 1761, capsys)[0] is True
    ok, out = run(ex2.check_parameter_count, 1680, capsys)
    assert ok is False and "bias" in out
    assert run(ex2.check_parameter_count, None, capsys)[0] is False
    with pytest.raises(ValueError):
        ex2.check_parameter_count("1761")


def test_average_checker(capsys):
    assert run(ex2.check_average_at_zero, -2.55 * 2 / math.pi, capsys)[0] is True
    assert run(ex2.check_average_at_zero, -1.62, capsys)[0] is True  # rounded by hand
    ok, out = run(ex2.check_average_at_zero, 0.0, capsys)
    assert ok is False and "whole period" in out
    ok, out = run(ex2.check_average_at_zero, 1.623, capsys)
    assert ok is False and "wrong sign" in out
    with pytest.raises(ValueError):
        ex2.check_average_at_zero(torch.zeros(3))


# --- notebook 3 ----------------------------------------------------------------------------------------------
def test_meta_gradient_checker(capsys):
    values = ex3.toy_values()
    assert run(ex3.check_meta_gradient, values["second_order"], capsys)[0] is True
    assert run(ex3.check_meta_gradient, torch.tensor(-3.08), capsys)[0] is True
    ok, out = run(ex3.check_meta_gradient, values["first_order"], capsys)
    assert ok is False and "first-order" in out
    ok, out = run(ex3.check_meta_gradient, values["query_grad_at_w"], capsys)
    assert ok is False and "adapted" in out
    with pytest.raises(ValueError):
        ex3.check_meta_gradient({"grad": 1.0})


def test_meta_gradient_matches_autograd():
    t = {k: torch.tensor(v, dtype=torch.float64) for k, v in ex3.TOY.items()}
    w = t["w"].clone().requires_grad_(True)
    (g,) = torch.autograd.grad((w * t["x_s"] - t["y_s"]) ** 2, w, create_graph=True)
    w_adapted = w - t["alpha"] * g
    (meta,) = torch.autograd.grad((w_adapted * t["x_q"] - t["y_q"]) ** 2, w)
    assert abs(float(meta) - ex3.toy_values()["second_order"]) < 1e-12


def good_update(w, x_s, y_s, alpha):
    (g,) = torch.autograd.grad((w * x_s - y_s) ** 2, w, create_graph=True)
    return w - alpha * g


def first_order_update(w, x_s, y_s, alpha):
    (g,) = torch.autograd.grad((w * x_s - y_s) ** 2, w)
    return w - alpha * g


def detached_update(w, x_s, y_s, alpha):
    return good_update(w, x_s, y_s, alpha).detach()


def test_inner_update_checker(capsys):
    assert run(ex3.check_inner_update, good_update, capsys)[0] is True
    ok, out = run(ex3.check_inner_update, first_order_update, capsys)
    assert ok is False and "first order" in out
    ok, out = run(ex3.check_inner_update, detached_update, capsys)
    assert ok is False and "detached" in out
    ok, out = run(ex3.check_inner_update, lambda w, x, y, a: good_update(w, x, y, a).detach().item(), capsys)
    assert ok is False and "torch tensor" in out
    ok, out = run(ex3.check_inner_update, lambda w, x, y, a: w + 1, capsys)
    assert ok is False and "should be 0.950" in out
    with pytest.raises(ValueError, match="must be a function"):
        ex3.check_inner_update(0.95)
