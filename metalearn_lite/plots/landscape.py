"""The MAML meta-loss landscape on the 2-D linear family, with the initialisations it compares."""

from __future__ import annotations

import math
from typing import Optional

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import BoundaryNorm
from matplotlib.ticker import FormatStrFormatter, MaxNLocator

from .adaptation import color_for, plot_adaptation_curves
from .live import LiveFigure
from .style import PALETTE, decade_limits, mark_diverged, plain_log_yaxis

START_STYLE = {"MAML w*": ("*", PALETTE["maml"], 17), "pretrained": ("D", PALETTE["pretrained"], 7),
               "zero": ("s", PALETTE["random"], 8)}
# Drawing order (higher on top): the MAML optimum is the point of the lesson, so nothing hides it.
START_LAYER = {"MAML w*": 6, "pretrained": 5, "zero": 5}


def log_meta_loss(view) -> np.ndarray:
    """log10 of the meta-loss grid (non-finite where the loss overflowed)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log10(np.clip(view.meta_loss, 1e-12, 1e300))


def plot_meta_landscape(ax, view) -> None:
    """Contours of log10(meta-loss) over the initialisation (w1, w2), the task optima and the starts."""
    log_loss = log_meta_loss(view)
    finite = np.isfinite(log_loss)
    if finite.any():
        levels = np.linspace(log_loss[finite].min(), np.percentile(log_loss[finite], 97), 18)
        if np.ptp(levels) > 0:
            filled = ax.contourf(view.w1, view.w2, np.where(finite, log_loss, levels[-1]), levels=levels,
                                 cmap="viridis_r", extend="max")
            ax.figure.colorbar(filled, ax=ax, label="log10 meta-loss", format="%.1f")
    ax.plot(view.task_weights[:, 0], view.task_weights[:, 1], ".", color="white", markeredgecolor="black",
            markersize=6, label="task optima $w_T$")
    for name, w in view.starts.items():
        marker, color, size = START_STYLE.get(name, ("o", PALETTE["extra"], 8))
        ax.plot(w[0], w[1], marker, color=color, markeredgecolor="black", markersize=size, label=name,
                zorder=START_LAYER.get(name, 5))
    ax.set_xlim(view.w1[0], view.w1[-1])
    ax.set_ylim(view.w2[0], view.w2[-1])
    ax.set_xlabel(r"$\theta_1$")
    ax.set_ylabel(r"$\theta_2$")
    ax.set_title(landscape_title(view))
    ax.legend(fontsize=8, loc="lower left")
    if view.diverged:
        mark_diverged(ax, "inner loop diverges")


def landscape_title(view) -> str:
    """The landscape panel's title: the inner-loop settings and the spectral radius they give."""
    return (f"Meta-loss, α = {view.inner_lr:.3g}, {view.inner_steps} inner step(s)"
            f"\ninner-step factor max |1 − αλ| (spectral radius): {view.spectral_radius:.2f}")


def objective_figure(view, figsize=(11, 4.2)):
    """Meta-loss landscape (left) and query loss vs inner step from each start (right)."""
    fig, (left, right) = plt.subplots(1, 2, figsize=figsize)
    plot_meta_landscape(left, view)
    plot_adaptation_curves(right, view.curves, view.curve_diverged, log=view.diverged, mark_step=view.inner_steps,
                           title="Adaptation from each start (mean over tasks)")
    if view.diverged and not any(view.curve_diverged.values()):
        mark_diverged(right, "diverges")
    fig.tight_layout()
    return fig


N_LEVELS = 18


def level_window(log_loss: np.ndarray, current: Optional[tuple] = None) -> tuple:
    """The colour scale's ``(low, high)`` in log10 units: the grid's minimum to its 97th percentile, widened to
    half decades. ``current`` (the scale shown now) is kept while it still holds that range and the range fills
    at least half of it, so that most slider moves keep the scale (and the colour bar need not be redrawn)."""
    finite = log_loss[np.isfinite(log_loss)]
    if finite.size == 0:
        return current or (0.0, 1.0)
    low, high = float(finite.min()), float(np.percentile(finite, 97))
    if current and current[0] <= low and high <= current[1] and high - low >= 0.5 * (current[1] - current[0]):
        return current
    low, high = math.floor(2 * low) / 2, math.ceil(2 * high) / 2
    return low, max(high, low + 0.5)


class ObjectiveExplorerFigure(LiveFigure):
    """``objective_figure`` as one persistent figure for notebook 3's explorer, updated in place.

    Left: log10 of the meta-loss over the initialisation as an image in ``N_LEVELS`` colour bands (the contour
    map's look, but an artist whose pixels can be replaced), the task optima and the three starts; right: the mean
    query loss after each inner step from each start (log scale in whole decades; the dotted line marks the steps
    the objective scores). The colour scale moves in half decades (``level_window``). The axes frames, the x axes and
    the left legend are the cached background, which therefore never changes; the colour bar is drawn once per
    colour scale and pasted after that; the landscape, markers, the right panel's y axis (its decades follow the
    curves), curves, right legend, titles and "diverged" badges are redrawn on every move.
    """

    figsize = (11, 4.2)

    def __init__(self, names=("MAML w*", "pretrained", "zero"), max_inner_steps: int = 10, figsize=None, dpi=None):
        self.names, self.max_inner_steps = list(names), int(max_inner_steps)
        super().__init__(figsize=figsize, dpi=dpi)

    def setup(self, fig) -> None:
        self.left, self.right = fig.subplots(1, 2)
        fig.subplots_adjust(left=0.06, right=0.98, bottom=0.13, top=0.85, wspace=0.3)
        # interpolated before the colour bands are applied: smooth band edges, as a contour map has
        self.image = self.left.imshow(np.zeros((2, 2)), origin="lower", aspect="auto", cmap="viridis_r",
                                      interpolation="bilinear", interpolation_stage="data")
        self.window = None
        self.colorbar = fig.colorbar(self.image, ax=self.left, label="log10 meta-loss")
        self.optima, = self.left.plot([], [], ".", color="white", markeredgecolor="black", markersize=6,
                                      label="task optima $w_T$")
        self.markers, self.curves = {}, {}
        for index, name in enumerate(self.names):
            marker, color, size = START_STYLE.get(name, ("o", PALETTE["extra"], 8))
            self.markers[name], = self.left.plot([], [], marker, color=color, markeredgecolor="black",
                                                 markersize=size, label=name, zorder=START_LAYER.get(name, 5),
                                                 linestyle="")
            self.curves[name], = self.right.plot([], [], "o-", color=color_for(name, index), markersize=3,
                                                 linewidth=1.5, label=name)
        self.left.set(xlabel=r"$\theta_1$", ylabel=r"$\theta_2$")
        self.left.legend(fontsize=8, loc="lower left")
        self.step_line = self.right.axvline(0, color=PALETTE["truth"], linestyle=":", linewidth=1,
                                            label="inner steps scored")
        plain_log_yaxis(self.right)
        self.right.xaxis.set_major_locator(MaxNLocator(integer=True))
        self.right.set(xlim=(-0.5, self.max_inner_steps + 0.5), xlabel="gradient step on the task",
                       ylabel="query loss (MSE)", title="Adaptation from each start (mean over tasks)")
        self.legend = self.right.legend(fontsize=8, loc="upper right")
        mark_diverged(self.left, "inner loop diverges", position=(0.5, 0.04), align=("center", "bottom"))
        mark_diverged(self.right, "diverges")
        self.left_badge, self.right_badge = self.left.texts[-1], self.right.texts[-1]
        # the colour bar, the adaptation panel's y axis and its legend too: they follow the settings (scale,
        # decades, "(diverged)" labels), and redrawing a few labels costs less than a full redraw of the figure
        # the colour bar changes only with the colour scale (a half-decade window): drawn once per window, pasted
        self.dynamic(self.image)
        self.dynamic_pasted(self.colorbar.ax, key=lambda: self.window)
        self.dynamic(self.optima, *self.markers.values(), self.right.yaxis,
                     *self.curves.values(), self.step_line, self.legend, self.left.title, self.left_badge,
                     self.right_badge)

    def update(self, view) -> None:
        log_loss = log_meta_loss(view)
        window = level_window(log_loss, self.window)
        if window != self.window:   # a new colour scale: new bands, and the colour bar's ticks follow
            levels = np.linspace(*window, N_LEVELS + 1)
            self.image.set_norm(BoundaryNorm(levels, plt.get_cmap("viridis_r").N, extend="max"))
            self.colorbar.update_normal(self.image)
            self.colorbar.set_ticks(MaxNLocator(6).tick_values(*window))
            self.colorbar.ax.yaxis.set_major_formatter(FormatStrFormatter("%.1f"))
            self.window = window
        self.image.set_data(np.where(np.isfinite(log_loss), log_loss, window[1] + 1.0))
        step = (view.w1[1] - view.w1[0]) / 2, (view.w2[1] - view.w2[0]) / 2
        self.image.set_extent((view.w1[0] - step[0], view.w1[-1] + step[0], view.w2[0] - step[1],
                               view.w2[-1] + step[1]))
        self.left.set(xlim=(view.w1[0], view.w1[-1]), ylim=(view.w2[0], view.w2[-1]))
        self.optima.set_data(view.task_weights[:, 0], view.task_weights[:, 1])
        for name, text in zip(self.names, self.legend.get_texts()):
            w = view.starts[name]
            self.markers[name].set_data([w[0]], [w[1]])
            curve = np.asarray(view.curves[name], dtype=float)
            self.curves[name].set_data(np.arange(len(curve)), curve)
            text.set_text(name + (" (diverged)" if view.curve_diverged.get(name) else ""))
        self.right.set_ylim(*decade_limits(list(view.curves.values()), at_least=(1.0, 10.0), at_most=(-3, 8)))
        self.step_line.set_xdata([view.inner_steps, view.inner_steps])
        self.left.title.set_text(landscape_title(view))
        self.left_badge.set_visible(view.diverged)
        self.right_badge.set_visible(view.diverged and not any(view.curve_diverged.values()))

