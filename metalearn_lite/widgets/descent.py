"""Notebook 1's explorer: learning rate (log scale), number of steps and loss -> descent path and loss curve."""

from __future__ import annotations

from ..descent import OBJECTIVE_NAMES, OBJECTIVE_TITLES, descent_data
from ..plots.descent import DescentExplorerFigure
from .core import Explorer, dropdown, int_slider, log_slider

LR_EXPONENTS = (-3.0, 1.0)
MAX_STEPS = 200


def descent_explorer(objective: str = "ill_conditioned", lr: float = 0.05, steps: int = 30) -> Explorer:
    """Sliders for ``lr`` (1e-3 .. 10, log scale) and ``steps`` (1 .. 200), and a choice of loss.

    Redraws the path on the loss and the loss vs step together; a run that blows up is labelled "diverged".
    One persistent figure updated in place (``plots.descent.DescentExplorerFigure``, the ``LiveFigure`` fast
    path), so a move redraws only the path and the curve. ``explorer.last_data`` is the ``descent.DescentPath`` of
    the current setting.
    """
    controls = {
        "objective": dropdown("loss", [(OBJECTIVE_TITLES[name], name) for name in OBJECTIVE_NAMES], objective),
        "lr": log_slider("learning rate", lr, *LR_EXPONENTS),
        "steps": int_slider("steps", steps, 1, MAX_STEPS),
    }
    return Explorer(descent_data, DescentExplorerFigure(), controls, title="Gradient descent explorer")
