"""Notebook 2's explorer: sample a sinusoid task, fine-tune from several starts, compare fits and curves."""

from __future__ import annotations

from typing import Dict, Optional

import torch
from torch import nn

from ..baselines import fine_tuning_data
from ..plots.sinusoid import ExplorerFigure
from .core import Explorer, int_slider, log_slider

INNER_LR_EXPONENTS = (-4.0, 0.0)
MAX_INNER_STEPS = 100
MAX_TASK_SEED = 50
MAX_K_SHOT = 20


def fine_tuning_explorer(model: nn.Module, starts: Dict[str, Dict[str, torch.Tensor]], task_seed: int = 0,
                         k_shot: int = 5, inner_lr: float = 0.01, inner_steps: int = 10,
                         tasks: Optional[object] = None) -> Explorer:
    """Sliders for the task (seed), the number of support points, the inner learning rate (log) and the inner steps.

    ``starts`` maps a name to a parameter dict of ``model`` (e.g. ``{"random": ..., "pretrained": ...}``).
    The figure is notebook 4's ``plots.sinusoid.ExplorerFigure`` (one persistent figure updated in place, the
    ``LiveFigure`` fast path). ``explorer.last_data`` is the ``baselines.FineTuningView`` of the current setting.
    """
    controls = {
        "task_seed": int_slider("task", task_seed, 0, MAX_TASK_SEED),
        "k_shot": int_slider("K (support points)", k_shot, 1, MAX_K_SHOT),
        "inner_lr": log_slider("inner lr", inner_lr, *INNER_LR_EXPONENTS),
        "inner_steps": int_slider("inner steps", inner_steps, 0, MAX_INNER_STEPS),
    }
    fixed = {"starts": starts, "model": model}
    if tasks is not None:
        fixed["tasks"] = tasks
    figure = ExplorerFigure(names=list(starts), max_inner_steps=MAX_INNER_STEPS)
    return Explorer(fine_tuning_data, figure, controls, fixed=fixed, title="Fine-tuning explorer")
