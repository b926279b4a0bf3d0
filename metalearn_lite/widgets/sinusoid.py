"""Notebook 4's adaptation explorer: MAML vs pretrained vs random initialisation on a new sinusoid task.

Sliders for the inner learning rate (log scale, 1e-4 ... 1), the number of inner steps (0 ... 20) and the shots K
(1 ... 20), and a "new task" button. Every change calls the plain function ``evaluation.explorer_data`` (tested
directly; its result is kept as ``.last_data``) and updates one persistent ``plots.sinusoid.ExplorerFigure`` in
place, shown as PNG in an ``ipywidgets.Image`` (``core.Explorer``'s fast path: ~3x cheaper per slider move than
re-creating the figure; ``benchmarks/explorer_latency.py``). Runs on the GPU when one is there (``utils.default_device``), on the CPU otherwise.
"""

from __future__ import annotations

from typing import Dict, Optional

import ipywidgets as widgets
import torch
from torch import nn

from ..evaluation import MAX_K_SHOT, explorer_data
from ..plots.sinusoid import ExplorerFigure
from ..utils import default_device
from .core import display_with_snapshot, Explorer, int_slider, log_slider

INNER_LR_EXPONENTS = (-4.0, 0.0)
MAX_INNER_STEPS = 20


class SinusoidExplorer:
    """The adaptation explorer: a ``core.Explorer`` plus a "new task" button.

    ``explorer.last_data`` is the ``evaluation.ExplorerView`` of the current setting (fitted curves, loss-vs-step
    curves and ``diverged`` flags per initialisation). ``explorer.set(inner_lr=..., inner_steps=..., k_shot=...)``
    moves sliders as a student would; ``explorer.new_task()`` is what the button does.
    """

    def __init__(self, model: nn.Module, starts: Dict[str, Dict[str, torch.Tensor]], inner_lr: float = 0.01,
                 inner_steps: int = 10, k_shot: int = 5, task_seed: int = 0, device=None):
        device = torch.device(device) if device is not None else default_device()
        self.model = model.to(device)
        self.starts = {name: {k: p.detach().to(device) for k, p in params.items()} for name, params in starts.items()}
        self.task = widgets.IntText(value=task_seed, description="task #", disabled=True,
                                    layout={"width": "140px"})
        self.button = widgets.Button(description="new task", icon="refresh", tooltip="sample a new sinusoid task")
        self.button.on_click(lambda _: self.new_task())
        controls = {
            "inner_lr": log_slider("inner lr", inner_lr, *INNER_LR_EXPONENTS),
            "inner_steps": int_slider("inner steps", inner_steps, 0, MAX_INNER_STEPS),
            "k_shot": int_slider("shots K", k_shot, 1, MAX_K_SHOT),
            "task_seed": self.task,
        }
        self.figure = ExplorerFigure(names=list(self.starts), max_inner_steps=MAX_INNER_STEPS)
        self.explorer = Explorer(explorer_data, self.figure, controls,
                                 fixed={"model": self.model, "starts": self.starts},
                                 title="Adaptation explorer: MAML vs pretrained vs random initialisation")
        self.widget = widgets.VBox([widgets.HBox([self.button]), self.explorer.widget])

    @property
    def controls(self):
        return self.explorer.controls

    @property
    def last_data(self):
        return self.explorer.last_data

    @property
    def image(self) -> widgets.Image:
        """The plot: an ``ipywidgets.Image`` whose ``value`` is the PNG of the current setting."""
        return self.explorer.image

    @property
    def last_error(self) -> Optional[BaseException]:
        return self.explorer.last_error

    def set(self, **values):
        """Move sliders (``inner_lr``, ``inner_steps``, ``k_shot``, ``task_seed``); returns the new data."""
        return self.explorer.set(**values)

    def new_task(self):
        """Sample the next task (what the button does); returns the new data."""
        return self.explorer.set(task_seed=self.task.value + 1)

    def _ipython_display_(self):
        display_with_snapshot(self.widget, self.explorer)

    def __repr__(self) -> str:
        return f"Sinusoid{self.explorer!r}"


def sinusoid_explorer(model: Optional[nn.Module] = None, starts: Optional[Dict[str, Dict[str, torch.Tensor]]] = None,
                      device=None, **initial) -> SinusoidExplorer:
    """The explorer over the shipped checkpoints (``evaluation.sinusoid_starts``) unless ``model``/``starts`` given."""
    if starts is None:
        from ..evaluation import sinusoid_starts
        model, starts, _ = sinusoid_starts()
    if model is None:
        raise ValueError("pass the model that the parameter dicts in starts belong to")
    return SinusoidExplorer(model, starts, device=device, **initial)
