"""Notebook 3's explorer: inner learning rate and inner steps -> MAML meta-loss landscape and adaptation curves."""

from __future__ import annotations

from typing import Optional

from ..landscape import objective_data
from ..plots.landscape import ObjectiveExplorerFigure
from ..tasks import TaskBatch
from .core import Explorer, int_slider, log_slider

INNER_LR_EXPONENTS = (-3.0, 0.0)
MAX_INNER_STEPS = 10


def objective_explorer(inner_lr: float = 0.1, inner_steps: int = 1, batch: Optional[TaskBatch] = None) -> Explorer:
    """Sliders for ``inner_lr`` (1e-3 .. 1, log scale) and ``inner_steps`` (0 .. 10) on the linear family.

    One persistent figure updated in place (``plots.landscape.ObjectiveExplorerFigure``, the ``LiveFigure`` fast
    path). ``explorer.last_data`` is the ``landscape.LandscapeView`` of the current setting.
    """
    controls = {
        "inner_lr": log_slider("inner lr α", inner_lr, *INNER_LR_EXPONENTS),
        "inner_steps": int_slider("inner steps", inner_steps, 0, MAX_INNER_STEPS),
    }
    fixed = {} if batch is None else {"batch": batch}
    figure = ObjectiveExplorerFigure(max_inner_steps=MAX_INNER_STEPS)
    return Explorer(objective_data, figure, controls, fixed=fixed, title="MAML objective explorer")
