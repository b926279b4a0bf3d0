"""Exercises of notebook 2 (many tasks, one starting point)."""

from __future__ import annotations

import math

from ..models import MLP
from ..baselines import count_parameters, sinusoid_average
from . import as_number, close, feedback, not_answered


def check_parameter_count(answer) -> bool:
    """The number of trainable parameters of the paper's 1-40-40-1 MLP (weights and biases)."""
    if answer is None:
        return not_answered("a Linear(n_in, n_out) layer has n_in * n_out weights and n_out biases; "
                            "the MLP has layers 1->40, 40->40 and 40->1.")
    value = as_number("the number of parameters", answer)
    expected = count_parameters(MLP())
    if value == expected:
        return feedback(True, f"{expected} parameters, fitted from K = 5 points: hundreds of times more unknowns "
                              "than equations, so training from scratch can fit the 5 points in many ways "
                              "that are wrong everywhere else.")
    if value == 40 + 1600 + 40:
        return feedback(False, "you counted the weights only; each layer also has one bias per output.")
    return feedback(False, f"{value:g} is not it. Hint: 1->40 gives 40 weights + 40 biases; add the 40->40 "
                           "and 40->1 layers the same way.")


def check_average_at_zero(answer) -> bool:
    """``E_T[y(x = 0)]`` over the sinusoid family (A ~ U[0.1, 5], phi ~ U[0, pi]), to 2 decimals."""
    if answer is None:
        return not_answered("y(0) = A sin(-phi) = -A sin(phi). A and phi are independent, so "
                            "E[y(0)] = -E[A] E[sin(phi)]; compute both means of the uniform distributions.")
    value = as_number("the average of y at x = 0", answer)
    expected = float(sinusoid_average(0.0))
    if close(value, expected, rel=5e-3):
        return feedback(True, f"E[y(0)] = -2.55 * 2/pi = {expected:.3f}. The average function is "
                              f"{expected:.2f} cos(x): every task is pulled towards it by pretraining.")
    if abs(value) < 1e-2:
        return feedback(False, "zero would be right if the phase covered a whole period [0, 2 pi]; here "
                               "phi ~ U[0, pi], and sin(phi) >= 0 there, so the average does not cancel.")
    if close(value, -expected, rel=5e-3):
        return feedback(False, "right size, wrong sign: y(0) = A sin(0 - phi) = -A sin(phi).")
    if close(value, -2.55, rel=5e-3) or close(value, -2.55 * 0.5, rel=5e-3):
        return feedback(False, "E[sin(phi)] for phi ~ U[0, pi] is (1/pi) * integral of sin from 0 to pi = 2/pi.")
    return feedback(False, f"{value:.3f} is not it. Hint: E[A] = (0.1 + 5) / 2 and "
                           f"E[sin(phi)] = 2/pi ~ {2 / math.pi:.3f}.")
