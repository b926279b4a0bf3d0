"""Figures for gradient descent: the path on the loss (contour map in 2-D, curve in 1-D) and loss vs step."""

from __future__ import annotations

from typing import Optional, Sequence

import matplotlib.pyplot as plt
import numpy as np

from ..descent import DescentPath, contour_grid
from .style import PALETTE, mark_diverged

PATH_COLORS = (PALETTE["maml"], PALETTE["pretrained"], PALETTE["query"], PALETTE["first_order"])


def plot_path(ax, paths: Sequence[DescentPath], labels: Optional[Sequence[str]] = None) -> None:
    """Draw one or more descent paths on the loss: contours in 2-D, the loss curve in 1-D."""
    objective = paths[0].objective
    labels = labels or [f"lr = {p.lr:.3g}" for p in paths]
    if objective.dim == 2:
        xs, ys, Z = contour_grid(objective)
        levels = np.quantile(Z, np.linspace(0.0, 1.0, 16) ** 2)
        ax.contourf(xs, ys, Z, levels=np.unique(levels), cmap="Greys", alpha=0.45)
        ax.contour(xs, ys, Z, levels=np.unique(levels), colors="0.45", linewidths=0.6)
        for path, label, color in zip(paths, labels, PATH_COLORS):
            ax.plot(path.points[:, 0], path.points[:, 1], "o-", color=color, markersize=3, linewidth=1.2,
                    label=label)
        starts = np.array([p.points[0] for p in paths])
        ax.plot(starts[:, 0], starts[:, 1], "s", color=PALETTE["truth"], markersize=6, label="start")
        ax.plot(*objective.minimum, "*", color=PALETTE["support"], markersize=13, markeredgecolor="black",
                label="minimum")
        ax.set_xlim(objective.bounds[0])
        ax.set_ylim(objective.bounds[1])
        ax.set_xlabel(r"$\theta_1$")
        ax.set_ylabel(r"$\theta_2$")
        ax.set_aspect("equal", adjustable="box")
    else:
        xs, values = contour_grid(objective)
        ax.plot(xs, values, color=PALETTE["truth"], linewidth=1.5, label="loss")
        for path, label, color in zip(paths, labels, PATH_COLORS):
            ax.plot(path.points[:, 0], path.losses, "o-", color=color, markersize=4, linewidth=1.0, label=label)
        ax.set_xlim(objective.bounds[0])
        ax.set_ylim(values.min() - 0.1 * np.ptp(values), values.max())
        ax.set_xlabel(r"$\theta$")
        ax.set_ylabel(r"$L(\theta)$")
    ax.set_title(f"Descent path on {objective.formula}")
    ax.legend(loc="lower right" if objective.dim == 2 else "upper center", fontsize=8)
    if any(p.diverged for p in paths):
        mark_diverged(ax, "diverged")


def plot_loss_curve(ax, paths: Sequence[DescentPath], labels: Optional[Sequence[str]] = None) -> None:
    """Loss above the minimum vs step (log scale); a run that blew up gets the 'diverged' label."""
    labels = labels or [f"lr = {p.lr:.3g}" for p in paths]
    for path, label, color in zip(paths, labels, PATH_COLORS):
        gap = np.maximum(path.gap, 1e-16)
        suffix = f" (diverged at step {path.diverged_at})" if path.diverged else ""
        ax.plot(np.arange(len(gap)), gap, "o-", color=color, markersize=3, linewidth=1.2, label=label + suffix)
    ax.set_yscale("log")
    ax.set_xlim(0, max(max(p.steps for p in paths), 1))
    ax.set_xlabel("step")
    ax.set_ylabel(r"$L(\theta) - L_{\min}$")
    ax.set_title("Loss vs step")
    ax.legend(loc="upper right", fontsize=8)
    if any(p.diverged for p in paths):
        mark_diverged(ax, "diverged")


def descent_figure(paths, labels: Optional[Sequence[str]] = None, figsize=(10, 4)):
    """Path and loss curve side by side for one ``DescentPath`` or a list of them; returns the figure."""
    paths = [paths] if isinstance(paths, DescentPath) else list(paths)
    fig, (left, right) = plt.subplots(1, 2, figsize=figsize, gridspec_kw={"width_ratios": [1.1, 1]})
    plot_path(left, paths, labels)
    plot_loss_curve(right, paths, labels)
    fig.tight_layout()
    return fig
