"""The MAML meta-loss landscape on the 2-D linear family, with the initialisations it compares."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from .adaptation import plot_adaptation_curves
from .style import PALETTE, mark_diverged

START_STYLE = {"MAML w*": ("*", PALETTE["maml"], 17), "pretrained": ("D", PALETTE["pretrained"], 7),
               "zero": ("s", PALETTE["random"], 8)}
# Drawing order (higher on top): the MAML optimum is the point of the lesson, so nothing hides it.
START_LAYER = {"MAML w*": 6, "pretrained": 5, "zero": 5}


def plot_meta_landscape(ax, view) -> None:
    """Contours of log10(meta-loss) over the initialisation (w1, w2), the task optima and the starts."""
    with np.errstate(divide="ignore", invalid="ignore"):
        log_loss = np.log10(np.clip(view.meta_loss, 1e-12, 1e300))
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
    ax.set_title(rf"Meta-loss, $\alpha$ = {view.inner_lr:.3g}, {view.inner_steps} inner step(s)"
                 f"\ninner-step factor max |1 − αλ| (spectral radius): {view.spectral_radius:.2f}")
    ax.legend(fontsize=8, loc="lower left")
    if view.diverged:
        mark_diverged(ax, "inner loop diverges")


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
