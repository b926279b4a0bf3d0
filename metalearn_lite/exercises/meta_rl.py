"""Exercises of notebook 7 (meta-RL, 2-D navigation): the score-function estimator on a one-step Gaussian bandit,
and why a baseline lowers its variance."""

from __future__ import annotations

import torch

from . import feedback, not_answered

BANDIT = {"mu": 0.2, "sigma": 0.5, "goal": 1.0, "n": 1000, "seed": 7}
"""The one-step bandit: action a ~ N(mu, sigma^2), reward r(a) = -(a - goal)^2; J(mu) = -(mu - goal)^2 - sigma^2,
so dJ/dmu = -2 (mu - goal)."""


def bandit_sample(mu: float = BANDIT["mu"], sigma: float = BANDIT["sigma"], goal: float = BANDIT["goal"],
                  n: int = BANDIT["n"], seed: int = BANDIT["seed"]) -> tuple:
    """Seeded ``(actions (n,), rewards (n,))`` of the bandit (float64)."""
    actions = mu + sigma * torch.randn(n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return actions, -(actions - goal) ** 2


def reference_gradient(actions, rewards, mu, sigma, baseline=0.0) -> float:
    return float(((rewards - baseline) * (actions - mu) / sigma ** 2).mean())


def check_score_function(estimator) -> bool:
    """``estimator(actions, rewards, mu, sigma, baseline) -> float``: the score-function estimate of dJ/dmu,
    mean over samples of ``(r - baseline) * d log N(a; mu, sigma^2) / dmu``, by hand (no autograd needed).

    Diagnoses: the score without ``1 / sigma^2`` or with ``1 / sigma``, a sum instead of a mean, the sign of the
    score flipped, the baseline ignored or added, the pathwise (reparameterisation) gradient instead.
    """
    if estimator is None:
        return not_answered("log N(a; mu, sigma^2) = -(a - mu)^2 / (2 sigma^2) + const, so its derivative in mu is "
                            "(a - mu) / sigma^2; average (r - baseline) times that over the samples.")
    if not callable(estimator):
        raise ValueError(f"the answer must be a function estimator(actions, rewards, mu, sigma, baseline), got "
                         f"{type(estimator).__name__}")
    mu, sigma, goal = BANDIT["mu"], BANDIT["sigma"], BANDIT["goal"]
    actions, rewards = bandit_sample()
    baseline = float(rewards.mean())
    try:
        value = float(estimator(actions.clone(), rewards.clone(), mu, sigma, baseline))
        plain = float(estimator(actions.clone(), rewards.clone(), mu, sigma, 0.0))
    except Exception as error:
        return feedback(False, f"your function raised {type(error).__name__}: {error}")
    expected = reference_gradient(actions, rewards, mu, sigma, baseline)
    expected_plain = reference_gradient(actions, rewards, mu, sigma, 0.0)
    close = lambda a, b: abs(a - b) <= 1e-6 * max(1.0, abs(b))  # noqa: E731
    exact = -2 * (mu - goal)
    if close(value, expected) and close(plain, expected_plain):
        return feedback(True, f"{value:.3f} with the baseline, {plain:.3f} without; the exact gradient is "
                              f"{exact:.3f}. Both are unbiased; exercise 2 asks which is less noisy.")
    n = len(actions)
    if close(value, expected * sigma ** 2):
        return feedback(False, "the score of a Gaussian in its mean is (a - mu) / sigma^2: divide by sigma^2.")
    if close(value, expected * sigma):
        return feedback(False, "divide by sigma squared, not sigma: d/dmu of -(a - mu)^2 / (2 sigma^2).")
    if close(value, expected * n):
        return feedback(False, "that is a sum over the samples; the estimate of an expectation is their mean.")
    if close(value, -expected):
        return feedback(False, "the sign is flipped: d/dmu of -(a - mu)^2 / (2 sigma^2) is +(a - mu) / sigma^2.")
    if close(value, expected_plain):
        return feedback(False, "right without a baseline, but the baseline is ignored: use (r - baseline).")
    if close(value, reference_gradient(actions, rewards, mu, sigma, -baseline)):
        return feedback(False, "subtract the baseline from the reward, (r - baseline), do not add it.")
    if close(value, float((-2 * (actions - goal)).mean())):
        return feedback(False, "that is the pathwise (reparameterisation) gradient dr/da: it needs the reward's "
                               "derivative, which RL does not have. Use the score, d log pi / dmu, times r.")
    return feedback(False, f"{value:.4f} is not it (expected about {expected:.4f}). Hint: "
                           "((rewards - baseline) * (actions - mu) / sigma**2).mean().")


BASELINE_CHOICES = {
    "a": "it makes the estimate unbiased, which it was not before",
    "b": "E[score] = 0, so subtracting a constant changes no expectation, but it shrinks the factor (r - b) that "
         "multiplies the noisy score, and with it the variance",
    "c": "it rescales the learning rate",
    "d": "it makes rewards positive, so every action is reinforced",
}


def check_why_baseline(answer) -> bool:
    """Multiple choice: why does a baseline lower the variance of the score-function estimator?"""
    if answer is None:
        return not_answered("what is E[d log pi / dmu]? Choices: " +
                            "; ".join(f"{k}) {v}" for k, v in BASELINE_CHOICES.items()))
    key = str(answer).strip().lower().rstrip(")")
    if key not in BASELINE_CHOICES:
        raise ValueError(f"answer with one of {', '.join(map(repr, BASELINE_CHOICES))}, got {answer!r}")
    explanations = {
        "a": "the estimator is unbiased with or without a baseline (E[score] = 0); the baseline changes its variance.",
        "b": "the expected score is 0, so b * E[score] = 0 and the mean is unchanged; the variance of (r - b) * score "
             "is smallest for b near the average reward (with rewards around -1 here, the plain estimator multiplies "
             "every score by about -1 and mostly adds noise).",
        "c": "it does not rescale: the expected gradient is exactly the same with and without it.",
        "d": "the opposite: centred rewards push down actions worse than average and up those better than average.",
    }
    return feedback(key == "b", explanations[key])
