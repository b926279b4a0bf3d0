"""Notebook 6's explorer: the same Omniglot episodes adapted by several meta-learned methods, live.

Controls: which methods (a multiple choice), the first episode, the inner learning rate (log scale) and the inner
steps. The computation is ``methods.comparison_data`` (tested without ipywidgets, with a cache kept for the
explorer's life), the figure ``plots.methods.MethodComparisonFigure`` (one persistent figure, updated in place);
this module only wires the controls to them. At first it shows four methods, one per question of notebook 6
(MAML; ANIL: does the body's inner loop matter?; Meta-SGD: can the step size be learned?; ProtoNet: no inner loop):
fewer methods, less adaptation per move. The methods a move needs adapt side by side, one per core; more steps
continue a recent adaptation where it stopped. Measured on a 2-core CPU (``benchmarks/methods_explorer_latency.py``,
24 moves, one torch thread, image at 2x): these four, median 22 ms, slowest move 314 ms; all seven, median 39 ms,
slowest 473 ms (more steps, or a new setting, for five fully fine-tuned methods).
"""

from __future__ import annotations

import ipywidgets as widgets

from ..methods import comparison_data
from ..plots.methods import MethodComparisonFigure
from .core import SLIDER_STYLE, Explorer, int_slider, log_slider

INNER_LR_EXPONENTS = (-3.0, 1.0)   # 1e-3 ... 10
MAX_INNER_STEPS = 20
N_EPISODES = 100
FIRST_CHOICE = ("maml", "anil_learned_head", "meta_sgd", "protonet")


def methods_explorer(learners: dict, characters, chosen=None, inner_lr: float = 0.4, inner_steps: int = 5,
                     episode: int = 0, episodes: int = 1) -> Explorer:
    """``learners``: name -> ``(learner, zero_head)`` (5-way heads or zero heads); ``chosen``: shown at first."""
    names = list(learners)
    chosen = chosen or [name for name in FIRST_CHOICE if name in names] or names
    controls = {
        "chosen": widgets.SelectMultiple(options=names, value=tuple(chosen), description="methods",
                                         rows=min(len(names), 7), style=SLIDER_STYLE),
        "inner_lr": log_slider("inner lr", inner_lr, *INNER_LR_EXPONENTS),
        "inner_steps": int_slider("inner steps", inner_steps, 0, MAX_INNER_STEPS),
        "episode": int_slider("first episode", episode, 0, N_EPISODES - 1),
    }
    fixed = {"learners": learners, "characters": characters, "episodes": episodes, "cache": {}}
    return Explorer(comparison_data, MethodComparisonFigure(names), controls, fixed=fixed,
                    title="MAML and its relatives on the same held-out episodes")
