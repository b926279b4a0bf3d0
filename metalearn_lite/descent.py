"""Gradient descent from scratch on small 1-D and 2-D losses, with divergence detection (notebook 1).

Everything here is plain NumPy so a student can read it line by line: an ``Objective`` is a loss, its gradient and
the region to plot; ``gradient_descent`` runs the update ``theta <- theta - lr * grad L(theta)`` and returns the
whole path. A run whose loss becomes non-finite or explodes (by default beyond ``1e6`` times its initial size) is
marked ``diverged=True`` and its data stop at the last point before the blow-up, so a plot can say "diverged"
instead of drawing an empty axis.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Optional, Sequence

import numpy as np

from .divergence import BLOWUP, first_divergence
from .validation import require_choice, require_float, require_int



@dataclass(frozen=True)
class Objective:
    """A loss to descend: value and gradient (NumPy, vectorised over leading axes), start point and plot region.

    ``value(theta)`` takes an array of shape ``(..., dim)`` and returns shape ``(...)``; ``gradient`` returns the
    same shape as its input. ``hessian_eigenvalues`` is set for quadratics (it decides the stable learning rates).
    """

    name: str
    formula: str
    dim: int
    value: Callable[[np.ndarray], np.ndarray]
    gradient: Callable[[np.ndarray], np.ndarray]
    start: tuple
    minimum: tuple
    bounds: tuple
    hessian_eigenvalues: Optional[tuple] = None

    @property
    def min_value(self) -> float:
        """The loss at the global minimum."""
        return float(self.value(np.asarray(self.minimum, dtype=float)))


@dataclass
class DescentPath:
    """Result of ``gradient_descent``.

    ``points``: shape ``(n + 1, dim)``, the start and each iterate; ``losses``: shape ``(n + 1,)``. When the run
    diverged, ``n < steps``: the arrays stop at the last point before the blow-up and ``diverged_at`` is the step
    at which the loss became non-finite or exploded.
    """

    objective: Objective
    lr: float
    steps: int
    points: np.ndarray
    losses: np.ndarray
    diverged: bool
    diverged_at: Optional[int] = None

    @property
    def final_loss(self) -> float:
        return float(self.losses[-1])

    @property
    def gap(self) -> np.ndarray:
        """``loss - min loss`` at each step (non-negative; what a log-scale plot shows)."""
        return np.maximum(self.losses - self.objective.min_value, 0.0)


def quadratic(eigenvalues: Sequence[float], name: str = "quadratic", start=(-4.0, 2.5),
              bounds=((-5.0, 5.0), (-3.5, 3.5))) -> Objective:
    """``L(theta) = 1/2 sum_i h_i theta_i^2``: a quadratic bowl with curvatures ``h_i`` along the axes.

    Gradient descent converges on it exactly when ``lr < 2 / max(h_i)``; the ratio ``max h / min h`` (the
    condition number) decides how slowly the flattest direction is crawled along.
    """
    h = np.asarray(eigenvalues, dtype=float)
    if h.ndim != 1 or h.size not in (1, 2) or np.any(h <= 0):
        raise ValueError(f"eigenvalues must be 1 or 2 positive numbers, got {eigenvalues!r}")
    dim = h.size
    names = [f"\\theta_{i + 1}" for i in range(dim)] if dim > 1 else ["\\theta"]
    terms = " + ".join(("" if v == 2 else f"{v / 2:g}\\,") + f"{n}^2" for v, n in zip(h, names))
    return Objective(
        name=name, formula=f"${terms}$", dim=dim,
        value=lambda theta: 0.5 * np.sum(h * np.asarray(theta, dtype=float) ** 2, axis=-1),
        gradient=lambda theta: h * np.asarray(theta, dtype=float),
        start=tuple(start[:dim]), minimum=(0.0,) * dim, bounds=tuple(bounds[:dim]),
        hessian_eigenvalues=tuple(float(v) for v in h))


def _double_well_value(theta):
    theta = np.asarray(theta, dtype=float)
    x = theta[..., 0]
    value = (x ** 2 - 1.0) ** 2 + 0.3 * x
    if theta.shape[-1] == 2:
        value = value + 2.0 * theta[..., 1] ** 2
    return value


def _double_well_gradient(theta):
    theta = np.asarray(theta, dtype=float)
    grad = np.empty_like(theta)
    x = theta[..., 0]
    grad[..., 0] = 4.0 * x * (x ** 2 - 1.0) + 0.3
    if theta.shape[-1] == 2:
        grad[..., 1] = 4.0 * theta[..., 1]
    return grad


def double_well(dim: int = 2) -> Objective:
    """A non-convex loss with two valleys: ``(x^2 - 1)^2 + 0.3 x (+ 2 y^2 in 2-D)``.

    The left valley (x near -1.04) is the global minimum; the right one (x near 0.96) is only local, and gradient
    descent started on the right ends there.
    """
    dim = require_int("dim", dim, minimum=1, maximum=2)
    x_min = _global_double_well_x()
    formula = ("$(\\theta^2-1)^2 + 0.3\\,\\theta$" if dim == 1
               else "$(\\theta_1^2-1)^2 + 0.3\\,\\theta_1 + 2\\,\\theta_2^2$")
    return Objective(name="non_convex" if dim == 2 else "double_well_1d", formula=formula, dim=dim,
                     value=_double_well_value, gradient=_double_well_gradient,
                     start=(0.4, 1.2)[:dim], minimum=(x_min, 0.0)[:dim], bounds=((-1.9, 1.9), (-1.5, 1.5))[:dim])


def _global_double_well_x() -> float:
    # Roots of the derivative 4x^3 - 4x + 0.3; the global minimum is the left one.
    roots = np.roots([4.0, 0.0, -4.0, 0.3])
    real = np.sort(roots[np.abs(roots.imag) < 1e-12].real)
    return float(real[0])


def objectives() -> Dict[str, Objective]:
    """The losses of notebook 1, by name."""
    return {
        "parabola_1d": quadratic([2.0], name="parabola_1d", start=(4.0,), bounds=((-5.0, 5.0),)),
        "double_well_1d": double_well(1),
        "well_conditioned": quadratic([1.0, 2.0], name="well_conditioned"),
        "ill_conditioned": quadratic([1.0, 20.0], name="ill_conditioned"),
        "non_convex": double_well(2),
    }


OBJECTIVE_NAMES = tuple(objectives())
OBJECTIVE_TITLES = {
    "parabola_1d": "parabola (1-D)",
    "double_well_1d": "double well (1-D)",
    "well_conditioned": "round bowl (curvatures 1, 2)",
    "ill_conditioned": "narrow valley (curvatures 1, 20)",
    "non_convex": "two valleys (2-D)",
}
"""What a student reads for each loss (the explorer's menu)."""


def get_objective(objective) -> Objective:
    """An ``Objective`` from itself or its name (one of ``OBJECTIVE_NAMES``)."""
    if isinstance(objective, Objective):
        return objective
    return objectives()[require_choice("objective", objective, OBJECTIVE_NAMES)]


def gradient_descent(objective, lr: float, steps: int, start=None, blowup: float = BLOWUP) -> DescentPath:
    """Run ``theta <- theta - lr * grad L(theta)`` for ``steps`` steps from ``start`` (default: the objective's).

    Returns the whole path. Stops early, with ``diverged=True``, when the loss becomes non-finite or grows
    beyond ``blowup`` times its initial size (at least ``blowup``).
    """
    objective = get_objective(objective)
    lr = require_float("lr", lr, positive=True)
    steps = require_int("steps", steps, minimum=0)
    theta = np.asarray(objective.start if start is None else start, dtype=float).reshape(objective.dim)
    points, losses = [theta], [float(objective.value(theta))]
    diverged_at = None
    with np.errstate(over="ignore", invalid="ignore"):
        for step in range(1, steps + 1):
            theta = theta - lr * objective.gradient(theta)
            loss = float(objective.value(theta))
            if first_divergence([loss], blowup, reference=losses[0]) is not None or not np.all(np.isfinite(theta)):
                diverged_at = step
                break
            points.append(theta)
            losses.append(loss)
    return DescentPath(objective, lr, steps, np.array(points), np.array(losses), diverged_at is not None,
                       diverged_at)


def steps_to_tolerance(path: DescentPath, tol: float = 1e-6) -> Optional[int]:
    """First step at which ``loss - min loss < tol``; None if the run never gets there (or diverged)."""
    hits = np.nonzero(path.losses - path.objective.min_value < tol)[0]
    return int(hits[0]) if hits.size else None


def critical_learning_rate(objective) -> float:
    """``2 / max curvature``: gradient descent on a quadratic converges for every smaller learning rate."""
    objective = get_objective(objective)
    if objective.hessian_eigenvalues is None:
        raise ValueError(f"{objective.name} is not a quadratic; its stable learning rates depend on the start")
    return 2.0 / max(objective.hessian_eigenvalues)


def contour_grid(objective, resolution: int = 121) -> tuple:
    """``(xs, ys, Z)`` for a contour plot of a 2-D objective, or ``(xs, values)`` for a 1-D one."""
    objective = get_objective(objective)
    resolution = require_int("resolution", resolution, minimum=2)
    xs = np.linspace(*objective.bounds[0], resolution)
    if objective.dim == 1:
        return xs, objective.value(xs[:, None])
    ys = np.linspace(*objective.bounds[1], resolution)
    grid = np.stack(np.meshgrid(xs, ys), axis=-1)
    return xs, ys, objective.value(grid)


def descent_data(objective: str = "ill_conditioned", lr: float = 0.05, steps: int = 30) -> DescentPath:
    """The descent explorer's plain function: slider values in, the path to draw out (see ``plots.descent``)."""
    return gradient_descent(objective, lr, steps)
