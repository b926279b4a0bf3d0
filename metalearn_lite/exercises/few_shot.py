"""Exercises of notebook 5 (few-shot classification on Omniglot)."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from ..few_shot import mean_with_ci
from . import T_975, feedback, not_answered


CI_HINT = ("the standard error of a mean of n values is std / sqrt(n) (use the sample standard deviation, ddof=1); "
           "a 95% interval reaches 1.96 standard errors either side.")
ZERO_HEAD_HINT = ("at a zero head every class gets probability 1/n_way, so the gradient of the mean cross-entropy for "
                  "class c's weights is (1/n_support) * sum_i (1/n_way - [y_i == c]) phi_i, with n_support = n_way * k_shot "
                  "support images.")


def check_ci_half_width(function) -> bool:
    """``function(accuracies) -> half-width of the 95% confidence interval of their mean`` (normal approximation)."""
    if function is None:
        return not_answered(CI_HINT)
    if not callable(function):
        raise ValueError(f"pass your function itself (e.g. check_ci_half_width(ci_half_width)), "
                         f"got {type(function).__name__}")
    generator = torch.Generator().manual_seed(5)
    cases = [torch.rand(600, generator=generator).round(decimals=1).tolist(),
             (torch.rand(50, generator=generator) > 0.1).float().tolist(), [0.8, 1.0, 0.6, 1.0]]
    for values in cases:
        expected = mean_with_ci(values).ci95
        try:
            answer = function(list(values))
            if answer is None:  # the starter still returns None
                return not_answered(CI_HINT)
            answer = float(answer)
        except AttributeError as error:  # e.g. accuracies.std(ddof=1) on the list the function is given
            return feedback(False, f"your function raised AttributeError: {error}. The accuracies arrive as a "
                                   "Python list: convert them first, e.g. np.asarray(accuracies).")
        except Exception as error:  # a student's bug: say what happened, do not crash the cell
            return feedback(False, f"your function raised {type(error).__name__}: {error}")
        if abs(answer - expected) <= 1e-6 + 1e-4 * expected:
            continue
        n = len(values)
        population = expected * ((n - 1) / n) ** 0.5
        if abs(answer - population) <= 1e-6 + 1e-4 * expected:
            return feedback(False, "almost: use the sample standard deviation (ddof=1, divide by n - 1).")
        if abs(answer - expected / 1.96) <= 1e-6 + 1e-4 * expected:
            return feedback(False, "that is one standard error; the 95% interval is 1.96 standard errors wide "
                                   "on each side.")
        if abs(answer - 2 * expected) <= 1e-6 + 1e-4 * expected:
            return feedback(False, "that is the full width of the interval; report the half-width (mean ± h).")
        if abs(answer - 100 * expected) <= 1e-4 + 1e-4 * 100 * expected:
            return feedback(False, "that is in percentage points (x 100); return it on the scale of the accuracies, "
                                   "as a fraction (0.01 means ±1 point).")
        sample_std = expected * n ** 0.5 / 1.96
        if n - 1 in T_975 and abs(answer - T_975[n - 1] * sample_std / n ** 0.5) <= 2e-3 * expected:
            return feedback(False, f"you used Student's t quantile ({T_975[n - 1]} for {n - 1} degrees of freedom): "
                                   "sound, but the convention here (and in the papers' tables) is the normal "
                                   "approximation, 1.96 standard errors.")
        return feedback(False, f"for {n} values the half-width should be {expected:.4f}, got {answer:.4f}. "
                               "Hint: 1.96 * std(ddof=1) / sqrt(n).")
    return feedback(True, "with 600 episodes the interval is about ±1 point at 90% accuracy; with 100 it would "
                          "be 2.4 times wider: that is why papers report 600 or more episodes.")


def zero_head_reference(features: torch.Tensor, labels: torch.Tensor, n_way: int, inner_lr: float) -> torch.Tensor:
    """The head weights after one SGD step on the mean cross-entropy from a zero head, by autograd."""
    weight = torch.zeros(n_way, features.shape[1], dtype=features.dtype, requires_grad=True)
    bias = torch.zeros(n_way, dtype=features.dtype, requires_grad=True)
    loss = F.cross_entropy(features @ weight.T + bias, labels)
    grad_weight, = torch.autograd.grad(loss, weight)
    return -inner_lr * grad_weight


def check_zero_head_step(function) -> bool:
    """``function(features, labels, n_way, inner_lr) -> (n_way, d)`` head weights after one step from zero."""
    if function is None:
        return not_answered(ZERO_HEAD_HINT)
    if not callable(function):
        raise ValueError(f"pass your function itself, got {type(function).__name__}")
    generator = torch.Generator().manual_seed(3)
    for n_way, k_shot in ((5, 1), (3, 4), (20, 1)):
        features = torch.randn(n_way * k_shot, 7, generator=generator, dtype=torch.float64)
        labels = torch.arange(n_way).repeat_interleave(k_shot)
        expected = zero_head_reference(features, labels, n_way, 0.4)
        try:
            answer = function(features, labels, n_way, 0.4)
            if answer is None:  # the starter still returns None
                return not_answered(ZERO_HEAD_HINT)
            answer = torch.as_tensor(answer, dtype=torch.float64)
        except Exception as error:
            return feedback(False, f"your function raised {type(error).__name__}: {error}")
        if answer.shape != expected.shape:
            return feedback(False, f"expected shape {tuple(expected.shape)} (n_way, feature size), got "
                                   f"{tuple(answer.shape)}")
        if torch.allclose(answer, expected, atol=1e-8):
            continue
        if torch.allclose(answer, -expected, atol=1e-8):
            return feedback(False, "the sign is flipped: the step goes *against* the gradient (w = -lr * grad).")
        means = torch.stack([features[labels == c].mean(0) for c in range(n_way)])
        if torch.allclose(answer, 0.4 * means * k_shot / (n_way * k_shot), atol=1e-8) or \
                torch.allclose(answer, 0.4 * means, atol=1e-8):
            return feedback(False, "close: each class's own features pull its weights up, but every example also "
                                   "pushes all classes down by 1/n_way of its features (the softmax term).")
        return feedback(False, f"not equal to the autograd result for {n_way}-way {k_shot}-shot. Hint: "
                               "w_c = (lr / n_support) * sum_i ([y_i == c] - 1/n_way) * phi_i, with n_support = n_way * k_shot "
                               "support images.")
    return feedback(True, "one step from a zero head makes w_c a (centred) prototype of class c: the logit of "
                          "class c is lr / n_way * (prototype_c - mean prototype) . phi(x), a prototypical network "
                          "with a dot product. It works for any n_way, which is why one checkpoint serves 5-way "
                          "and 20-way tasks.")
