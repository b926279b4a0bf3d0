"""Exercises of notebook 1 (gradient descent)."""

from __future__ import annotations

import numpy as np

from . import as_number, close, feedback, not_answered

# The problems the student's function is run on: (gradient, start, lr, steps).
_PROBLEMS = (
    (lambda x: 2.0 * x, np.array([3.0]), 0.25, 2),                                       # f = x^2
    (lambda x: np.array([1.0, 20.0]) * x, np.array([-4.0, 2.5]), 0.05, 5),              # ill-conditioned
    (lambda x: 4.0 * x * (x ** 2 - 1.0) + 0.3, np.array([0.4]), 0.1, 3),                 # double well
)


def _reference(gradient, start, lr, steps):
    x = np.array(start, dtype=float)
    for _ in range(steps):
        x = x - lr * gradient(x)
    return x


def check_gradient_descent(gradient_descent_fn) -> bool:
    """Check a from-scratch ``gradient_descent_fn(gradient, start, lr, steps) -> final theta`` on three losses.

    The function should apply ``theta <- theta - lr * gradient(theta)`` exactly ``steps`` times from ``start``.
    """
    if gradient_descent_fn is None:
        return not_answered("write a function with a for-loop that repeats theta = theta - lr * gradient(theta).")
    if not callable(gradient_descent_fn):
        raise ValueError("the answer must be a function gradient_descent(gradient, start, lr, steps), "
                         f"got {type(gradient_descent_fn).__name__}")
    for gradient, start, lr, steps in _PROBLEMS:
        expected = _reference(gradient, start, lr, steps)
        try:
            got = np.asarray(gradient_descent_fn(gradient, start.copy(), lr, steps), dtype=float).reshape(-1)
        except Exception as error:
            return feedback(False, f"your function raised {type(error).__name__}: {error}. It is called as "
                                   "gradient_descent(gradient, start, lr, steps) with start a NumPy array.")
        if got.shape != expected.shape:
            return feedback(False, f"it should return the final theta, of shape {expected.shape}; got shape "
                                   f"{got.shape}. Return theta, not the list of all iterates or the loss.")
        if np.allclose(got, expected, rtol=1e-6, atol=1e-9):
            continue
        if np.allclose(got, _reference(lambda x: -gradient(x), start, lr, steps), rtol=1e-6):
            return feedback(False, "you went *up* the slope: the update subtracts the gradient, "
                                   "theta - lr * gradient(theta).")
        for wrong_steps in (steps - 1, steps + 1):
            if wrong_steps >= 0 and np.allclose(got, _reference(gradient, start, lr, wrong_steps), rtol=1e-6):
                return feedback(False, f"you took {wrong_steps} steps instead of {steps}: check your loop range.")
        if np.allclose(got, start):
            return feedback(False, "theta did not move: did you update a copy, or forget to assign "
                                   "theta = theta - lr * gradient(theta)?")
        return feedback(False, f"from start {start.tolist()} with lr={lr} and {steps} steps, expected "
                               f"{np.round(expected, 4).tolist()}, got {np.round(got, 4).tolist()}. "
                               "Hint: evaluate the gradient at the *current* theta at every step.")
    return feedback(True, "your gradient descent matches the reference on a 1-D, an ill-conditioned 2-D and a "
                          "non-convex loss.")


# Exercise 2's quadratic, L = 2 theta_1^2 + 12.5 theta_2^2: not the lesson's valley (curvatures 1 and 20, whose
# critical learning rate the notebook shows), so the student transfers the rule instead of copying a printed number.
EXERCISE_CURVATURES = (4.0, 25.0)
_LESSON_CRITICAL = 2.0 / 20.0


def check_critical_learning_rate(answer) -> bool:
    """The critical learning rate of ``L = 2 theta_1^2 + 12.5 theta_2^2`` (curvatures 4 and 25): gradient descent
    converges below it and diverges above it. A value just below (e.g. 0.079) is also right, with the boundary
    named."""
    h_min, h_max = EXERCISE_CURVATURES
    if answer is None:
        return not_answered("along each axis the update multiplies theta_i by (1 - lr * h_i). "
                            f"When is |1 - lr * h_i| < 1 for both curvatures h = {h_min:g} and h = {h_max:g}?")
    value = as_number("the critical learning rate", answer)
    expected = 2.0 / h_max
    if close(value, expected):
        return feedback(True, f"lr < 2 / h_max = 2 / {h_max:g} = {expected:g}. Above it, the steep direction "
                              "overshoots more each step and the loss explodes.")
    if close(value, _LESSON_CRITICAL):
        return feedback(False, f"{value:g} is the critical rate of the lesson's valley (curvature 20). This loss "
                               f"is steeper: its largest curvature is {h_max:g}.")
    if close(value, 2.0 / h_min):
        return feedback(False, f"2 / {h_min:g} uses the *flat* direction; the steep one (curvature {h_max:g}) "
                               "breaks first.")
    if close(value, 1.0 / h_max):
        return feedback(False, f"1 / h_max = {1 / h_max:g} is the learning rate that reaches the minimum of the "
                               "steep direction in one step; it still converges a little above that. "
                               f"Solve |1 - lr * {h_max:g}| < 1.")
    if close(value, 2.0 / (h_min + h_max)):
        return feedback(False, "2 / (h_min + h_max) is the *best* learning rate (fastest convergence), "
                               "not the largest one that still converges.")
    if 0.97 * expected <= value < expected:
        return feedback(True, f"{value:g} converges, and so does every learning rate up to the boundary "
                              f"2 / h_max = 2 / {h_max:g} = {expected:g}, the critical learning rate (at exactly "
                              f"{expected:g} the steep direction flips sign forever without shrinking).")
    return feedback(False, f"{value:g} is not it. Hint: the factor on theta_2 per step is (1 - {h_max:g} lr); "
                           "convergence needs its absolute value below 1.")
