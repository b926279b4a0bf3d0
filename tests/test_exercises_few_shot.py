"""Notebook 5's exercise checkers: right answers pass, common slips get specific messages, None gets a hint."""

import numpy as np
import pytest
import torch

from metalearn_lite.exercises.few_shot import check_ci_half_width, check_zero_head_step


def ci_half_width(values):
    return 1.96 * np.std(values, ddof=1) / np.sqrt(len(values))


def zero_head_step(features, labels, n_way, inner_lr):
    onehot = torch.nn.functional.one_hot(labels, n_way).to(features.dtype)
    return inner_lr / len(labels) * (onehot - 1.0 / n_way).T @ features


def test_ci_checker(capsys):
    assert check_ci_half_width(ci_half_width)
    assert not check_ci_half_width(None)
    assert "hint" in capsys.readouterr().out
    assert not check_ci_half_width(lambda v: 1.96 * np.std(v) / np.sqrt(len(v)))
    assert "ddof=1" in capsys.readouterr().out
    assert not check_ci_half_width(lambda v: np.std(v, ddof=1) / np.sqrt(len(v)))
    assert "one standard error" in capsys.readouterr().out
    assert not check_ci_half_width(lambda v: 1 / 0)
    assert "ZeroDivisionError" in capsys.readouterr().out
    with pytest.raises(ValueError):
        check_ci_half_width(0.01)


def test_zero_head_checker(capsys):
    assert check_zero_head_step(zero_head_step)
    assert not check_zero_head_step(lambda f, y, n, lr: -zero_head_step(f, y, n, lr))
    assert "sign" in capsys.readouterr().out
    assert not check_zero_head_step(lambda f, y, n, lr: lr * torch.stack([f[y == c].mean(0) for c in range(n)]))
    assert "1/n_way" in capsys.readouterr().out
    assert not check_zero_head_step(lambda f, y, n, lr: torch.zeros(3))
    assert "shape" in capsys.readouterr().out
    # One meaning per symbol: N is the notebook's n_way, so the number of support images is named n_support.
    assert not check_zero_head_step(lambda f, y, n, lr: lr * torch.stack([f[y == c].sum(0) for c in range(n)]) / 7)
    out = capsys.readouterr().out
    assert "n_support = n_way * k_shot" in out and " N " not in out and "/ N" not in out


def test_starters_that_still_return_none_get_the_hint_and_a_list_slip_is_named(capsys):
    assert not check_ci_half_width(lambda accuracies: None)
    assert capsys.readouterr().out.startswith("Not answered yet -- hint: the standard error")
    assert not check_zero_head_step(lambda features, labels, n_way, inner_lr: None)
    assert capsys.readouterr().out.startswith("Not answered yet -- hint: at a zero head")
    assert not check_ci_half_width(lambda accuracies: 1.96 * accuracies.std(ddof=1) / len(accuracies) ** 0.5)
    out = capsys.readouterr().out
    assert "AttributeError" in out and "Python list" in out and "np.asarray" in out


def test_ci_checker_recognises_percent_and_the_t_quantile(capsys):
    assert not check_ci_half_width(lambda v: 100 * ci_half_width(v))
    assert "percentage points (x 100)" in capsys.readouterr().out
    t_quantiles = {600: 1.9640, 50: 2.0096, 4: 3.1824}   # scipy.stats.t.ppf(0.975, n - 1)
    assert not check_ci_half_width(lambda v: t_quantiles[len(v)] * np.std(v, ddof=1) / np.sqrt(len(v)))
    assert "Student's t quantile" in capsys.readouterr().out
