"""Notebook 6's figures: MAML and its relatives side by side (adaptation curves, cost against accuracy)."""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator

from .live import LiveFigure
from .style import PALETTE, step_axis_end

METHOD_STYLE = {   # name -> (colour, line style, marker): one look per method in every figure of notebook 6
    "maml": (PALETTE["maml"], "-", "o"),
    "fomaml": (PALETTE["extra"], "--", "o"),
    "meta_sgd": (PALETTE["first_order"], "-", "^"),
    "anil": (PALETTE["query"], "-", "s"),
    "reptile": (PALETTE["pretrained"], "-", "D"),
    "protonet": (PALETTE["support"], ":", "*"),
}


def method_style(name: str) -> tuple:
    """Colour, line style and marker of a run name such as ``"maml_learned_head"`` (learned heads: dash-dot)."""
    base = next((key for key in sorted(METHOD_STYLE, key=len, reverse=True) if name.startswith(key)), None)
    color, line, marker = METHOD_STYLE.get(base, (PALETTE["random"], "-", "o"))
    return color, ("-." if "learned_head" in name and line == "-" else line), marker


def draw_method_comparison(data: dict):
    """Query accuracy against inner steps, one line per method, on the same episodes; legend beside the axes."""
    fig, ax = plt.subplots(figsize=(8.5, 3.6))
    for name, curve in data["curves"].items():
        color, line, marker = method_style(name)
        ax.plot(data["steps"], 100 * curve, line, marker=marker, markersize=4, color=color, label=name)
    ax.axhline(100 / data["n_way"], color=PALETTE["random"], linestyle="--", linewidth=1, label="chance")
    ax.set_xlim(-0.5, step_axis_end(int(data["steps"][-1])) + 0.5)
    ax.set_ylim(0, 102)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(xlabel="inner steps at test time", ylabel="query accuracy (%)", title=comparison_title(data))
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    fig.tight_layout()
    return fig


def comparison_title(data: dict) -> str:
    episodes = f"–{data['episode'] + data['episodes'] - 1}" if data["episodes"] > 1 else ""
    return (f"{data['n_way']}-way {data['k_shot']}-shot, episode {data['episode']}{episodes}, "
            f"inner lr {data['inner_lr']:.3g}")


class MethodComparisonFigure(LiveFigure):
    """``draw_method_comparison`` as one persistent figure for the explorer: one line per method, built once.

    The axes, ticks and legend (of the chosen methods) are the cached background; the curves and the title are
    redrawn on every move. The x axis ends at the next of 1, 2, 5, 10, 20 steps (``step_axis_end``), so that moving
    the steps slider within a range re-uses the background.
    """

    figsize = (8.5, 3.6)

    def __init__(self, names: Sequence[str], figsize=None, dpi=None):
        self.names = list(names)
        super().__init__(figsize=figsize, dpi=dpi)

    def setup(self, fig) -> None:
        self.ax = ax = fig.add_subplot()
        fig.subplots_adjust(left=0.08, right=0.76, bottom=0.15, top=0.9)
        self.lines = {}
        for name in self.names:
            color, line, marker = method_style(name)
            self.lines[name], = ax.plot([], [], line, marker=marker, markersize=4, color=color, label=name)
        self.chance = ax.axhline(20, color=PALETTE["random"], linestyle="--", linewidth=1, label="chance")
        ax.set_ylim(0, 102)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set(xlabel="inner steps at test time", ylabel="query accuracy (%)")
        self.shown = None
        self.dynamic(*self.lines.values(), self.chance, ax.title)

    def update(self, data: dict) -> None:
        for name, line in self.lines.items():
            curve = data["curves"].get(name)
            line.set_visible(curve is not None)
            if curve is not None:
                line.set_data(data["steps"], 100 * curve)
        self.chance.set_ydata([100 / data["n_way"]] * 2)
        self.ax.set_xlim(-0.5, step_axis_end(int(data["steps"][-1])) + 0.5)
        self.ax.title.set_text(comparison_title(data))
        shown = tuple(data["curves"])
        if shown != self.shown:   # the legend lists the chosen methods: a new background, once per choice
            handles = [self.lines[name] for name in shown] + [self.chance]
            self.ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
            self.shown = shown


def draw_cost_accuracy(rows, key: str = "5-way 1-shot"):
    """Held-out accuracy (with its 95% interval) against training seconds, one point per run of the table."""
    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    for row in rows:
        result = row.get(key, {})
        if "accuracy" not in result:
            continue
        color, _, marker = method_style(row["run"])
        ax.errorbar(row["train_seconds"], 100 * result["accuracy"], yerr=100 * result["ci95"], fmt=marker,
                    color=color, markersize=8, markeredgecolor="black", capsize=3, label=row["run"])
    ax.set(xlabel="training seconds (equal meta-steps, one CPU thread)", ylabel=f"{key} accuracy (%)",
           title="What each method costs and what it buys")
    ax.set_xlim(left=0)
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    fig.tight_layout()
    return fig
