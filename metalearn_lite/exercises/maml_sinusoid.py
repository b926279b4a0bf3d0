"""Exercises of notebook 4 (MAML on sinusoids): a confidence interval, a fine-tuning loop, reading the results."""

from __future__ import annotations

import math

import numpy as np
import torch

from .. import maml
from ..evaluation import evaluation_tasks, random_init
from ..models import MLP
from . import T_975, as_number, close, feedback, not_answered

CI_LOSSES = np.array([0.31, 0.12, 0.55, 0.24, 0.98, 0.07, 0.42, 0.36, 0.19, 0.61])
"""Per-task query MSEs of exercise 1 (ten tasks)."""


def check_ci95(answer) -> bool:
    """Half-width of the 95% confidence interval of the mean of ``CI_LOSSES`` (normal approximation)."""
    if answer is None:
        return not_answered("the standard error of a mean is std / sqrt(n) (sample std, ddof=1); "
                            "the 95% interval is mean ± 1.96 standard errors.")
    value = as_number("the half-width", answer)
    n = len(CI_LOSSES)
    sample_std, population_std = CI_LOSSES.std(ddof=1), CI_LOSSES.std(ddof=0)
    expected = 1.96 * sample_std / math.sqrt(n)
    if close(value, expected, rel=1e-2):
        return feedback(True, f"1.96 * {sample_std:.3f} / sqrt({n}) = {expected:.3f}. With 600 tasks instead of "
                              f"{n}, the same spread gives an interval sqrt(60) = 7.7 times narrower: that is why "
                              "the notebook evaluates on hundreds of tasks.")
    if close(value, 1.96 * population_std / math.sqrt(n), rel=1e-2):
        return feedback(False, "almost: use the sample standard deviation (ddof=1, divide by n - 1), "
                               "np.std's default divides by n.")
    if close(value, 1.96 * sample_std, rel=1e-2) or close(value, 1.96 * population_std, rel=1e-2):
        return feedback(False, "that is the spread of single tasks; the interval of the *mean* divides by sqrt(n).")
    if close(value, sample_std / math.sqrt(n), rel=1e-2):
        return feedback(False, "that is one standard error; a 95% interval spans 1.96 of them on each side.")
    if close(value, 2 * expected, rel=1e-2):
        return feedback(False, "that is the full width; the question asks for the half-width (mean ± this).")
    if close(value, T_975[n - 1] * sample_std / math.sqrt(n), rel=1e-2):
        return feedback(False, f"you used Student's t quantile ({T_975[n - 1]} for {n - 1} degrees of freedom): "
                               "a sound choice for so few tasks, but this notebook asks for the normal "
                               "approximation, 1.96 standard errors, which is what its tables use.")
    return feedback(False, f"{value:.3f} is not it. Hint: np.std(losses, ddof=1) / np.sqrt(len(losses)) * 1.96.")


def check_fine_tune(fine_tune_fn) -> bool:
    """``fine_tune_fn(model, params, X, y, inner_lr, inner_steps) -> params``: plain gradient descent on one
    task's support set.

    ``params`` is a dict of tensors (``maml.parameters_of(model)``); the function must return new parameters
    (not change the model) after ``inner_steps`` steps of ``theta <- theta - inner_lr * grad MSE(f_theta(X), y)``.
    Checked against the package's ``maml.adapt`` on a seeded task, for 0, 1 and 5 steps. The usual slips get their
    own diagnosis: no ``return``, a tuple returned, ``params`` ignored (starting from the model's own weights), the
    model or ``params`` changed in place (e.g. an optimiser on ``model.parameters()``), no ``requires_grad``.
    """
    if fine_tune_fn is None:
        return not_answered("copy params, then for each step: loss = mse(functional_call(model, p, (X,)), y); "
                            "grads = torch.autograd.grad(loss, list(p.values())); p = {k: v - inner_lr * g ...}. "
                            "Give the copies requires_grad_(True) first.")
    if not callable(fine_tune_fn):
        raise ValueError(f"the answer must be a function fine_tune(model, params, X, y, inner_lr, inner_steps), "
                         f"got {type(fine_tune_fn).__name__}")
    model, params = MLP(), random_init(1)   # the model's own weights differ from params: ignoring params shows
    batch = evaluation_tasks(1, 5, 5, seed=3)
    X, y = batch.support.X[0], batch.support.y[0]
    before = {k: v.clone() for k, v in params.items()}
    model_before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    for steps in (5, 1, 0):  # a run that moves first: changing the model in place shows at once
        try:
            adapted = fine_tune_fn(model, dict(params), X, y, 0.01, steps)
        except RuntimeError as error:
            if "does not require grad" in str(error):
                return feedback(False, "torch.autograd.grad needs tensors that require gradients: give your copies "
                                       "of params requires_grad_(True) (e.g. v.detach().clone().requires_grad_(True)) "
                                       f"before the forward pass. (The error: {error})")
            return feedback(False, f"with inner_steps={steps} your function raised RuntimeError: {error}")
        except Exception as error:
            return feedback(False, f"with inner_steps={steps} your function raised {type(error).__name__}: {error}")
        if any(not torch.equal(model_before[k], v) for k, v in model.state_dict().items()):
            return feedback(False, "your function changed the model's own weights (an optimiser on "
                                   "model.parameters(), or an in-place update): fine-tuning must leave the model "
                                   "untouched and return new parameters, so that every task starts from the same "
                                   "initialisation.")
        if any(not torch.equal(before[k], params[k]) for k in params):
            return feedback(False, "the parameters passed in were modified in place; build new tensors instead "
                                   "(MAML needs the initialisation unchanged, to adapt it to the next task).")
        message = _returned_dict_problem(adapted, params)
        if message:
            return feedback(False, message)
        expected = maml.adapt(model, before, batch, 0.01, steps).params
        from_model = maml.adapt(model, maml.parameters_of(model), batch, 0.01, steps).params
        for name, value in adapted.items():
            value = torch.as_tensor(value).detach()
            if value.shape != params[name].shape:
                return feedback(False, f"{name} has shape {tuple(value.shape)}, expected "
                                       f"{tuple(params[name].shape)}")
            if not torch.allclose(value, expected[name][0], rtol=1e-4, atol=1e-6):
                return feedback(False, f"after {steps} step(s), {name} differs from the reference. "
                                       f"{_difference_hint(value, params[name], from_model[name][0], steps)}")
    return feedback(True, "your loop matches maml.adapt for 0, 1 and 5 steps. The package runs exactly this on "
                          "every task at once, with torch.func.vmap.")


def _returned_dict_problem(adapted, params) -> str:
    """What is wrong with the returned value, or "" when it is a dict with the keys of ``params``."""
    if adapted is None:
        return "your function returned None: did it end with `return p` (the dict of adapted parameters)?"
    if isinstance(adapted, tuple) and any(isinstance(part, dict) for part in adapted):
        return (f"your function returned a tuple of {len(adapted)}; return the parameter dict alone "
                "(losses or other extras belong elsewhere).")
    if not isinstance(adapted, dict) or set(adapted) != set(params):
        return f"return a dict with the same keys as params ({', '.join(params)}), got {type(adapted).__name__}"
    return ""


def _difference_hint(value, start, from_model, steps: int) -> str:
    if torch.allclose(value, from_model, rtol=1e-4, atol=1e-6):
        return ("your function starts from the model's own weights, not from params: run the network with "
                "functional_call(model, p, (X,)), where p starts as a copy of params.")
    if steps > 0 and torch.equal(value, start):
        return "nothing moved: did you run the loop inner_steps times and return the updated dict?"
    return ("the step differs: the update is theta - inner_lr * gradient of the *mean* squared error on the support "
            "set (F.mse_loss), with the gradient taken at the current parameters.")


PRETRAINED_CHOICES = {
    "a": "the pretrained network is too small to fit a sinusoid",
    "b": "it learned the average of all tasks, one fixed wave that is the same for every task, and a few small "
         "steps on 5 points cannot move that wave to a new task's amplitude and phase",
    "c": "its learning rate 0.01 is too large, so fine-tuning diverges",
    "d": "it was trained with fewer steps than MAML",
}


def check_why_pretrained_fails(answer) -> bool:
    """Multiple choice: why does the pretrained start barely improve with fine-tuning? (``PRETRAINED_CHOICES``)."""
    if answer is None:
        return not_answered("look at the 'pre-update' curve of the pretrained panel in the Figure-2 plot, and at "
                            "its loss-vs-step curve. Choices: " +
                            "; ".join(f"{k}) {v}" for k, v in PRETRAINED_CHOICES.items()))
    key = str(answer).strip().lower().rstrip(")")
    if key not in PRETRAINED_CHOICES:
        raise ValueError(f"answer with one of {', '.join(map(repr, PRETRAINED_CHOICES))}, got {answer!r}")
    explanations = {
        "a": "the same 1-40-40-1 network fits any sinusoid after MAML's few steps, so capacity is not the issue.",
        "b": "pretraining minimises the error averaged over tasks, whose solution is E[y | x] = -1.6 cos x, whatever "
             "the task. Nothing in that training asked for a start that *moves* well; MAML's training does.",
        "c": "it does not diverge: its loss-vs-step curve goes down slowly, it does not blow up.",
        "d": "both were trained for 70,000 steps on the same task distribution.",
    }
    return feedback(key == "b", explanations[key])


def check_maml_step(step_fn) -> bool:
    """``step_fn(model, batch, inner_lr, optimizer)``: one second-order MAML meta-step that updates ``model``.

    Run on a seeded MLP and sinusoid batch; the meta-gradient the step leaves in the model's ``.grad`` is compared
    with ``maml.meta_gradient`` (second order, mean over tasks). Diagnoses: no meta-gradient reaching the
    initialisation (the ``copy.deepcopy`` + inner-optimiser version), an inner step that overwrites the
    initialisation in place (``p.data -= ...``), first order, a sum instead of a mean over tasks, no optimiser step.
    """
    if step_fn is None:
        return not_answered("for each task: adapted = theta - inner_lr * grad(support loss, create_graph=True), "
                            "query loss with functional_call(model, adapted, (X,)); then backward on the mean and "
                            "optimizer.step().")
    if not callable(step_fn):
        raise ValueError(f"pass your function itself, maml_step(model, batch, inner_lr, optimizer), "
                         f"got {type(step_fn).__name__}")
    torch.manual_seed(0)
    model = MLP()
    batch = evaluation_tasks(4, 10, 10, seed=11)
    params = maml.parameters_of(model)
    before = {k: v.clone() for k, v in params.items()}
    second, first = (maml.meta_gradient(model, before, batch, 0.01, 1, first_order=order).grads
                     for order in (False, True))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    try:
        step_fn(model, batch, 0.01, optimizer)
    except Exception as error:
        return feedback(False, f"your function raised {type(error).__name__}: {error}")
    grads = {name: p.grad for name, p in model.named_parameters()}
    moved = any(not torch.equal(before[name], p.detach()) for name, p in model.named_parameters())
    if all(g is None or not bool(g.abs().sum()) for g in grads.values()):
        return feedback(False, "no meta-gradient reached the initialisation: after your step every parameter of "
                               "`model` has no gradient (.grad is None or zero), so the optimiser had nothing to "
                               "apply and the model learns nothing. Which tensors did the query loss's backward() "
                               "reach? (Look at what copy.deepcopy and the inner optimiser's step do to the graph.)")
    if not moved:
        return feedback(False, "the meta-gradient is there, but the model's parameters did not change: call "
                               "optimizer.step() after the backward pass.")
    if not _moved_only_by_the_outer_step(model, before, grads):
        return feedback(False, "your inner step changed the initialisation itself: after the meta-step, theta is not "
                               "where one Adam step with your .grad would take it from where it started. An "
                               "in-place update (p.data -= inner_lr * g, or an inner optimiser stepping the model's "
                               "own parameters) moves theta to each task's adapted weights in turn, and the graph "
                               "back to theta is lost. Build new tensors instead: adapted = theta - inner_lr * g.")
    if _all_close(grads, second):
        return feedback(True, "the meta-gradient your step leaves in .grad equals maml.meta_gradient (second "
                              "order): the query loss is differentiated through the inner step back to theta.")
    if _all_close(grads, first):
        return feedback(False, "your meta-gradient is the first-order one: the inner gradient was treated as a "
                               "constant. Take it with torch.autograd.grad(..., create_graph=True).")
    if _all_close(grads, {k: batch.n_tasks * g for k, g in second.items()}):
        return feedback(False, f"your meta-gradient is {batch.n_tasks} times too large: average the query losses "
                               "over the tasks of the batch (the mean, as in the paper), not their sum.")
    return feedback(False, "the meta-gradient in .grad differs from maml.meta_gradient on the same batch. Check the "
                           "inner step (theta - inner_lr * grad of the mean squared error on the support set) and "
                           "that optimizer.zero_grad() comes before the backward pass.")


def _moved_only_by_the_outer_step(model, before: dict, grads: dict) -> bool:
    """Whether ``model``'s parameters equal one fresh Adam(1e-3) step from ``before`` with ``grads``."""
    replay = {name: before[name].clone().requires_grad_(True) for name in before}
    for name, p in replay.items():
        p.grad = None if grads[name] is None else grads[name].detach().clone()
    torch.optim.Adam(list(replay.values()), lr=1e-3).step()
    return all(torch.allclose(replay[name].detach(), p.detach(), rtol=1e-5, atol=1e-7)
               for name, p in model.named_parameters())


def _all_close(grads, reference) -> bool:
    return all(grads[k] is not None and torch.allclose(grads[k], reference[k], rtol=1e-4, atol=1e-7)
               for k in reference)
