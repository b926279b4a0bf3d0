"""Notebook 4's figures: MAML on sinusoids (Finn et al., 2017, section 5.1 and Figure 2).

- ``plot_training_curve``: the meta-loss during meta-training (live or final).
- ``figure2``: the paper's Figure-2-style panels, one per initialisation: the true function, the K support
  points, and the function after 0, 1 and 10 gradient steps.
- ``evaluation_figure``: mean MSE on new tasks vs gradient steps with 95% CIs, and the paper's values as markers.
- ``explorer_figure``: the adaptation explorer's picture as a new figure (static use), drawn lean (fixed layout
  and ticks, one legend).
- ``ExplorerFigure``: the same picture as one persistent figure that the live explorer updates in place
  (``widgets.core.LiveFigure``): drawing, not computing, is what a slider move costs.
"""

from __future__ import annotations

import math
from typing import Mapping, Optional, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.lines import Line2D
from matplotlib.ticker import LogLocator, MaxNLocator

from .adaptation import color_for
from .live import LiveFigure
from .style import PALETTE, decade_limits, mark_diverged, plain_log_yaxis, step_axis_end

STEP_STYLES = {0: ":", 1: "--"}  # pre-update dotted, one step dashed, more steps solid


def plot_training_curve(ax, steps: Sequence[int], losses: Sequence[float], label: str = "MAML meta-loss",
                        smooth: int = 1, title: str = "Meta-training") -> None:
    """Meta-loss (mean query MSE after the inner step) against the meta-step; ``smooth`` > 1 adds a running mean."""
    steps, losses = np.asarray(steps), np.asarray(losses, dtype=float)
    ax.plot(steps, losses, color=PALETTE["maml"], alpha=0.35 if smooth > 1 else 1.0, linewidth=1,
            label=label if smooth <= 1 else f"{label} (every logged step)")
    if smooth > 1 and len(losses) >= smooth:
        running = np.convolve(losses, np.ones(smooth) / smooth, mode="valid")
        ax.plot(steps[smooth - 1:], running, color=PALETTE["maml"], linewidth=2,
                label=f"running mean of {smooth}")
    plain_log_yaxis(ax)
    ax.set_xlabel("meta-step")
    ax.set_ylabel("query MSE after adaptation")
    ax.set_title(title)
    ax.legend()


def figure2(view, names: Sequence[str] = ("maml", "pretrained"), steps: Sequence[int] = (0, 1, 10),
            figsize=None, labels: Optional[Mapping[str, str]] = None):
    """Figure-2-style panels (one per start) from an ``evaluation.ExplorerView`` computed with enough steps.

    Each panel: the true function, the support points, and the fitted function after each of ``steps``.
    """
    labels = labels or {"maml": "MAML", "pretrained": "pretrained on all tasks", "random": "random init"}
    figsize = figsize or (4.2 * len(names), 3.9)
    fig, axes = plt.subplots(1, len(names), figsize=figsize, sharey=True, squeeze=False)
    fig.subplots_adjust(left=0.06, right=0.99, bottom=0.13, top=0.8, wspace=0.08)
    for index, (ax, name) in enumerate(zip(axes[0], names)):
        ax.plot(view.x, view.truth, color=PALETTE["truth"], linewidth=2, label="ground truth")
        fits, color = view.step_fits[name], color_for(name, index)
        for step in steps:
            if step < len(fits):
                ax.plot(view.x, fits[step], STEP_STYLES.get(step, "-"), color=color, linewidth=1.8,
                        alpha=0.6 if step == 0 else 1.0)
        ax.plot(view.support_X, view.support_y, "^", color=PALETTE["support"], markeredgecolor="black",
                markersize=8, zorder=5)
        ax.set_title(f"{labels.get(name, name)}, K={len(view.support_X)}")
        ax.set_xlabel("x")
        if view.diverged.get(name):
            mark_diverged(ax)
    axes[0, 0].set_ylabel("y")
    key = [Line2D([], [], color=PALETTE["truth"], linewidth=2, label="ground truth")]
    key += [Line2D([], [], linestyle=STEP_STYLES.get(step, "-"), color="0.35", linewidth=1.8,
                   label="pre-update" if step == 0 else f"after {step} grad step{'s' if step != 1 else ''}")
            for step in steps]
    key += [Line2D([], [], linestyle="none", marker="^", color=PALETTE["support"], markeredgecolor="black",
                   markersize=8, label=f"{len(view.support_X)} points used for the gradient")]
    fig.legend(handles=key, loc="upper center", ncol=len(key), fontsize=9, bbox_to_anchor=(0.5, 1.0))
    return fig


def evaluation_figure(results: Mapping[str, object], paper: Optional[Mapping[str, Mapping[int, float]]] = None,
                      ax=None, title: Optional[str] = None, leave_out_diverged: bool = True):
    """Mean MSE on the new tasks after each gradient step (95% CI band) per start; the paper's values as stars.

    ``results`` maps a name to an ``evaluation.Evaluation``. With ``leave_out_diverged``, tasks on which
    fine-tuning blew up (``Evaluation.diverged_tasks``) are left out of that start's curve, and the legend says how
    many. Returns the figure.
    """
    fig, ax = (plt.subplots(figsize=(6, 3.8)) if ax is None else (ax.figure, ax))
    for index, (name, result) in enumerate(results.items()):
        color = color_for(name, index)
        losses, label = result.query_losses, name
        if leave_out_diverged and result.diverged_tasks().size:
            keep = np.ones(result.n_tasks, dtype=bool)
            keep[result.diverged_tasks()] = False
            losses = losses[keep]
            label = f"{name} ({result.n_tasks - keep.sum()} blown-up task(s) left out)"
        steps = np.arange(losses.shape[1])
        mean = losses.mean(axis=0)
        ci = 1.96 * losses.std(axis=0, ddof=1) / np.sqrt(losses.shape[0])
        ax.plot(steps, mean, "o-", color=color, markersize=3, label=label)
        ax.fill_between(steps, mean - ci, mean + ci, color=color, alpha=0.2, linewidth=0)
        if paper and name in paper:
            ax.plot(list(paper[name]), list(paper[name].values()), "*", color=color, markersize=12,
                    markeredgecolor="black", label=f"{name}: paper")
    plain_log_yaxis(ax)
    ax.set_xlabel("gradient steps on the new task")
    ax.set_ylabel("query MSE (mean, 95% CI)")
    any_result = next(iter(results.values()))
    ax.set_title(title or f"New tasks, K={any_result.k_shot}, step size {any_result.inner_lr:g} "
                          f"({any_result.n_tasks} tasks)")
    ax.legend(fontsize=8, ncol=2)
    return fig


def explorer_figure(view, figsize=(10, 3.8), dpi: int = 72):
    """The explorer's redraw: fitted functions after ``view.inner_steps`` steps (left), error vs step (right).

    Drawn lean on purpose (it runs on every slider move): fixed limits and ticks on the left, no minor ticks on
    the log axis, and one shared legend; this halves the drawing time of the general-purpose ``plot_fits`` +
    ``plot_adaptation_curves`` pair. A diverged start keeps its curve up to the blow-up, gets "(diverged)" in the
    legend, and the panels carry the "diverged" label.
    """
    fig, (left, right) = plt.subplots(1, 2, figsize=figsize, dpi=dpi)
    fig.subplots_adjust(left=0.06, right=0.98, bottom=0.14, top=0.78, wspace=0.25)
    steps, handles = view.inner_steps, []
    handles += left.plot(view.x, view.truth, color=PALETTE["truth"], linewidth=2, label="true function")
    handles += left.plot(view.support_X, view.support_y, "o", color=PALETTE["support"], markeredgecolor="black",
                         markersize=7, zorder=5, label=f"support (K={view.k_shot})")
    for index, (name, curve) in enumerate(view.curves.items()):
        color = color_for(name, index)
        if view.fits[name] is not None:
            left.plot(view.x, view.fits[name], "--", color=color, linewidth=1.8)
        losses = curve.query_losses.mean(axis=0)
        label = name + (" (diverged)" if curve.diverged else "")
        handles += right.plot(np.arange(len(losses)), losses, "o-", color=color, markersize=3, linewidth=1.5,
                              label=label)
    left.set(xlim=view.x[[0, -1]], ylim=(-6, 6), xticks=[-5, 0, 5], yticks=[-5, 0, 5], xlabel="x", ylabel="y",
             title=f"Fitted functions after {steps} step{'s' if steps != 1 else ''}")
    plain_log_yaxis(right)
    right.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
    right.set(xlim=(-0.5, max(steps, 1) + 0.5), xlabel="gradient step on the task",
              ylabel="MSE on the whole curve", title=f"Adaptation, inner lr = {view.inner_lr:.3g}")
    fig.legend(handles=handles, loc="upper center", ncol=len(handles), fontsize=9)
    diverged = [name for name, flag in view.diverged.items() if flag]
    if diverged:
        mark_diverged(left, "diverged: " + ", ".join(diverged))
        mark_diverged(right, "diverged")
    return fig


MAX_DECADES = (-3, 4)
"""The explorer's error axis never goes beyond 1e-3 ... 1e4: a curve is cut at its blow-up (100 times its start,
``divergence``), so larger values carry no lesson and would only crowd the axis with labels."""


class ExplorerFigure(LiveFigure):
    """``explorer_figure`` as one persistent figure for the live explorer: built once, updated in place.

    Left: the true function, the support points and each start's function after ``inner_steps`` steps; right: the
    error on the whole curve after each step (log scale; x from 0 to the next of 1, 2, 5, 10, 20 steps, so that
    curves stay comparable while the steps slider moves within a range; y in whole decades). The axes, ticks and legend are a cached background (see
    ``LiveFigure``); the curves, the titles and the "diverged" labels are redrawn on every move. A start that
    diverged keeps its error curve up to the blow-up, loses its fitted curve, gets "(diverged)" in the legend, and
    both panels carry the ``style.mark_diverged`` label (on the left naming the starts).
    """

    figsize = (10, 3.8)

    def __init__(self, names: Sequence[str] = ("maml", "pretrained", "random"), max_inner_steps: int = 20,
                 x_range: tuple = (-5.0, 5.0), figsize=None, dpi=None):
        self.names, self.max_inner_steps, self.x_range = list(names), int(max_inner_steps), tuple(x_range)
        super().__init__(figsize=figsize, dpi=dpi)

    def setup(self, fig) -> None:
        left, right = self.left, self.right = fig.subplots(1, 2)
        fig.subplots_adjust(left=0.06, right=0.98, bottom=0.14, top=0.78, wspace=0.25)
        self.truth, = left.plot([], [], color=PALETTE["truth"], linewidth=2, label="true function")
        self.support, = left.plot([], [], "o", color=PALETTE["support"], markeredgecolor="black", markersize=7,
                                  zorder=5, label="support points")
        self.fits, self.curves = {}, {}
        for index, name in enumerate(self.names):
            color = color_for(name, index)
            self.fits[name], = left.plot([], [], "--", color=color, linewidth=1.8)
            self.curves[name], = right.plot([], [], "o-", color=color, markersize=3, linewidth=1.5, label=name)
        left.set(xlim=self.x_range, ylim=(-6, 6), xticks=[-5, 0, 5], yticks=[-5, 0, 5], xlabel="x", ylabel="y")
        plain_log_yaxis(right)
        right.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
        right.set(xlim=(-0.5, self.max_inner_steps + 0.5), ylim=(0.1, 10), xlabel="gradient step on the task",
                  ylabel="MSE on the whole curve")
        self.legend = fig.legend(handles=[self.truth, self.support, *self.curves.values()], loc="upper center",
                                 ncol=2 + len(self.names), fontsize=9)
        mark_diverged(left, "diverged")
        mark_diverged(right, "diverged")
        self.diverged_left, self.diverged_right = left.texts[-1], right.texts[-1]
        self.dynamic(self.truth, *self.fits.values(), self.support, *self.curves.values(), left.title, right.title,
                     self.diverged_left, self.diverged_right)

    def update(self, view) -> None:
        # from the curves, so that notebook 2's FineTuningView and notebook 4's ExplorerView both draw here
        first = next(iter(view.curves.values()))
        steps, inner_lr, k_shot = first.inner_steps, first.inner_lr, len(view.support_X)
        self.truth.set_data(view.x, view.truth)
        self.support.set_data(view.support_X, view.support_y)
        losses = {}
        for name, text in zip(self.names, self.legend.get_texts()[2:]):
            curve, fit = view.curves[name], view.fits[name]
            self.fits[name].set_visible(fit is not None)
            if fit is not None:
                self.fits[name].set_data(view.x, fit)
            losses[name] = curve.query_losses.mean(axis=0)
            self.curves[name].set_data(np.arange(len(losses[name])), losses[name])
            text.set_text(name + (" (diverged)" if curve.diverged else ""))
        self.left.title.set_text(f"Fitted functions after {steps} step{'s' if steps != 1 else ''}, K={k_shot}")
        self.right.title.set_text(f"Adaptation, inner lr = {inner_lr:.3g}")
        low, high = decade_limits(list(losses.values()), at_most=MAX_DECADES)
        self.right.set_ylim(low, high)
        self.right.set_xlim(-0.5, step_axis_end(steps) + 0.5)
        # 1, 2, 5 per decade reads well over the usual two decades; over more, one label per decade
        wide = math.log10(high / low) > 2.5
        self.right.yaxis.set_major_locator(LogLocator(subs=(1.0,) if wide else (1.0, 2.0, 5.0), numticks=8))
        diverged = [name for name, flag in view.diverged.items() if flag]
        self.diverged_left.set_text("diverged: " + ", ".join(diverged))
        for label in (self.diverged_left, self.diverged_right):
            label.set_visible(bool(diverged))


class LiveTrainingCurve:
    """A ``train.meta_train`` callback that redraws the meta-loss curve in place in a notebook.

    Use as ``meta_train(..., callback=LiveTrainingCurve(total_steps), callback_every=100)``. The figure is
    replaced in one display slot (``IPython.display`` handle), so the cell shows one plot that grows; outside a
    notebook the handle does nothing visible. Close it with ``.close()`` when training is done.
    """

    def __init__(self, total_steps: int, smooth: int = 5, figsize=(6, 3.2)):
        from IPython.display import display

        self.total_steps, self.smooth = total_steps, smooth
        self.fig, self.ax = plt.subplots(figsize=figsize)
        plt.close(self.fig)  # shown through the display handle only, not again at the end of the cell
        self.handle = display(self.fig, display_id=True)

    def __call__(self, history) -> None:
        self.ax.clear()
        plot_training_curve(self.ax, history.steps, history.losses, smooth=self.smooth,
                            title=f"Meta-training, step {history.steps[-1]} of {self.total_steps}")
        self.ax.set_xlim(0, self.total_steps)
        if self.handle is not None:
            self.handle.update(self.fig)

    def close(self) -> None:
        plt.close(self.fig)
