"""Adaptation figures: loss vs inner step for several initialisations, and the functions fitted to one task.

Used by notebook 2 (random vs pretrained start) and reusable by notebook 4 (MAML vs pretrained): pass any mapping
``name -> curve``; colours come from ``style.PALETTE`` when the name is one of its keys.
"""

from __future__ import annotations

from typing import Mapping, Optional

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

from .style import PALETTE, mark_diverged, plain_log_yaxis

FALLBACK_COLORS = (PALETTE["maml"], PALETTE["pretrained"], PALETTE["query"], PALETTE["first_order"],
                   PALETTE["extra"], PALETTE["random"])


def color_for(name: str, index: int) -> str:
    """The palette colour of a named start (``"maml"``, ``"pretrained"``, ``"random"``...), else a fallback."""
    key = name.lower().split()[0]
    return PALETTE.get(key, FALLBACK_COLORS[index % len(FALLBACK_COLORS)])


def plot_adaptation_curves(ax, curves: Mapping[str, np.ndarray], diverged: Optional[Mapping[str, bool]] = None,
                           ylabel: str = "query loss (MSE)", log: bool = False, mark_step: Optional[int] = None,
                           title: str = "Adaptation curves") -> None:
    """Loss vs inner step, one line per start. ``curves[name]`` is 1-D (a mean) or 2-D (tasks x steps: the
    mean is drawn with a band of +/- one standard error). Diverged runs get '(diverged)' and the label."""
    diverged = diverged or {}
    for index, (name, curve) in enumerate(curves.items()):
        curve = np.asarray(curve, dtype=float)
        mean = curve.mean(axis=0) if curve.ndim == 2 else curve
        steps = np.arange(mean.shape[0])
        color = color_for(name, index)
        label = name + (" (diverged)" if diverged.get(name) else "")
        ax.plot(steps, mean, "o-", color=color, markersize=3, linewidth=1.5, label=label)
        if curve.ndim == 2 and curve.shape[0] > 1:
            error = curve.std(axis=0) / np.sqrt(curve.shape[0])
            ax.fill_between(steps, mean - error, mean + error, color=color, alpha=0.2, linewidth=0)
    if mark_step is not None:
        ax.axvline(mark_step, color=PALETTE["truth"], linestyle=":", linewidth=1,
                   label=f"{mark_step} inner step{'s' if mark_step != 1 else ''}")
    if log:
        plain_log_yaxis(ax)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("gradient step on the task")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    if any(diverged.values()):
        mark_diverged(ax, "diverged")


def plot_fits(ax, x, truth, fits: Mapping[str, Optional[np.ndarray]], support_X=None, support_y=None,
              title: str = "Fitted functions", prefix: str = "after fine-tuning: ") -> None:
    """The true function of one task, its support points and the function each start reached (None = diverged)."""
    ax.plot(x, truth, color=PALETTE["truth"], linewidth=2, label="true function")
    any_diverged = False
    for index, (name, fit) in enumerate(fits.items()):
        if fit is None:
            any_diverged = True
            continue
        ax.plot(x, fit, "--", color=color_for(name, index), linewidth=1.8, label=f"{prefix}{name}")
    if support_X is not None:
        ax.plot(support_X, support_y, "o", color=PALETTE["support"], markeredgecolor="black", markersize=7,
                label=f"support (K={len(support_X)})", zorder=5)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title(title)
    # Below the panel: a sine fills its whole box, so no corner inside is free of data.
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncols=2)
    if any_diverged:
        mark_diverged(ax, "diverged: " + ", ".join(n for n, f in fits.items() if f is None))


def fine_tuning_figure(view, figsize=(11, 4)):
    """One task's fits (left) and the adaptation curves (right) of a ``baselines.FineTuningView``."""
    fig, (left, right) = plt.subplots(1, 2, figsize=figsize)
    plot_fits(left, view.x, view.truth, view.fits, view.support_X, view.support_y,
              title=f"One task, {len(view.support_X)} support points")
    plot_adaptation_curves(right, {name: c.query_losses for name, c in view.curves.items()}, view.diverged,
                           ylabel="error on the whole curve (MSE)", log=True,
                           title=f"Fine-tuning, lr = {next(iter(view.curves.values())).inner_lr:.3g}")
    fig.tight_layout()
    return fig
