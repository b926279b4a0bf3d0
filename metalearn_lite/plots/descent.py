"""Figures for gradient descent: the path on the loss (contour map in 2-D, curve in 1-D) and loss vs step."""

from __future__ import annotations

from typing import Optional, Sequence

import matplotlib.pyplot as plt
import numpy as np

from ..descent import DescentPath, contour_grid
from .style import PALETTE, mark_diverged

PATH_COLORS = (PALETTE["maml"], PALETTE["pretrained"], PALETTE["query"], PALETTE["first_order"])


def visible_part(path: DescentPath, points: np.ndarray, inside) -> np.ndarray:
    """The points of a path up to the first one outside the view (so a diverging path does not cover the panel)."""
    outside = np.flatnonzero(~inside)
    return points if not path.diverged or len(outside) == 0 else points[:outside[0] + 1]


def plot_path(ax, paths: Sequence[DescentPath], labels: Optional[Sequence[str]] = None,
              legend: bool = True) -> None:
    """Draw one or more descent paths on the loss: contours in 2-D, the loss curve in 1-D."""
    objective = paths[0].objective
    labels = labels or [f"lr = {p.lr:.3g}" for p in paths]
    if objective.dim == 2:
        xs, ys, Z = contour_grid(objective)
        levels = np.quantile(Z, np.linspace(0.0, 1.0, 16) ** 2)
        ax.contourf(xs, ys, Z, levels=np.unique(levels), cmap="Greys", alpha=0.45)
        ax.contour(xs, ys, Z, levels=np.unique(levels), colors="0.45", linewidths=0.6)
        (x_low, x_high), (y_low, y_high) = objective.bounds
        for path, label, color in zip(paths, labels, PATH_COLORS):
            p = path.points
            inside = (p[:, 0] >= x_low) & (p[:, 0] <= x_high) & (p[:, 1] >= y_low) & (p[:, 1] <= y_high)
            shown = visible_part(path, p, inside)
            ax.plot(shown[:, 0], shown[:, 1], "o-", color=color, markersize=3, linewidth=1.2, label=label)
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
        x_low, x_high = objective.bounds[0]
        for path, label, color in zip(paths, labels, PATH_COLORS):
            p = np.column_stack([path.points[:, 0], path.losses])
            inside = (p[:, 0] >= x_low) & (p[:, 0] <= x_high) & (p[:, 1] <= values.max())
            shown = visible_part(path, p, inside)
            ax.plot(shown[:, 0], shown[:, 1], "o-", color=color, markersize=4, linewidth=1.0, label=label)
        ax.set_xlim(objective.bounds[0])
        ax.set_ylim(values.min() - 0.1 * np.ptp(values), values.max())
        ax.set_xlabel(r"$\theta$")
        ax.set_ylabel(r"$L(\theta)$")
    ax.set_title(f"Descent path on {objective.formula}")
    if legend:
        ax.legend(loc="lower right" if objective.dim == 2 else "upper center", fontsize=8)
    # 1-D: the parabola's top centre is free; 2-D: the contour map's lower right (paths start upper left).
    mark_diverged_paths(ax, paths, labels, corner="lower right" if objective.dim == 2 else "upper center")


def mark_diverged_paths(ax, paths: Sequence[DescentPath], labels: Sequence[str], corner: str) -> None:
    """One badge in a ``corner`` of ``ax`` naming the runs that diverged, framed in the first one's colour.

    ``corner``: e.g. ``"upper right"``, ``"upper center"``; where the data are not: a diverging run leaves the path panel at its top and ends early on the
    loss curve, while converging runs end low on the right.
    """
    diverged = [(f"{label} diverged at step {path.diverged_at}", color)
                for path, label, color in zip(paths, labels, PATH_COLORS) if path.diverged]
    if diverged:
        vertical, horizontal = corner.split()
        position = ({"left": 0.03, "center": 0.5, "right": 0.97}[horizontal], 0.95 if vertical == "upper" else 0.05)
        mark_diverged(ax, "\n".join(text for text, _ in diverged), edge_color=diverged[0][1], position=position,
                      align=(horizontal, "top" if vertical == "upper" else "bottom"), fontsize=10)


def plot_loss_curve(ax, paths: Sequence[DescentPath], labels: Optional[Sequence[str]] = None,
                    legend: bool = True) -> None:
    """Loss above the minimum vs step (log scale); a run that blew up gets the 'diverged' label."""
    labels = labels or [f"lr = {p.lr:.3g}" for p in paths]
    for path, label, color in zip(paths, labels, PATH_COLORS):
        gap = np.maximum(path.gap, 1e-16)
        ax.plot(np.arange(len(gap)), gap, "o-", color=color, markersize=3, linewidth=1.2, label=label)
    ax.set_yscale("log")
    ax.set_xlim(0, max(max(p.steps for p in paths), 1))
    ax.set_xlabel("step")
    ax.set_ylabel(r"$L(\theta) - L_{\min}$")
    ax.set_title("Loss vs step")
    if legend:
        ax.legend(loc="lower left", fontsize=8)
    mark_diverged_paths(ax, paths, labels, corner="upper right")


def descent_figure(paths, labels: Optional[Sequence[str]] = None, figsize=(10, 4)):
    """Path and loss curve side by side for one ``DescentPath`` or a list of them; returns the figure."""
    paths = [paths] if isinstance(paths, DescentPath) else list(paths)
    labels = labels or [f"lr = {p.lr:.3g}" for p in paths]
    fig, (left, right) = plt.subplots(1, 2, figsize=figsize, gridspec_kw={"width_ratios": [1.1, 1]})
    plot_path(left, paths, labels, legend=False)
    plot_loss_curve(right, paths, labels, legend=False)
    # One legend for both panels, below them: never on top of a path or a curve.
    handles, names = left.get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncols=len(names), fontsize=9)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig
