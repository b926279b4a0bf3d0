"""Notebook 6's figures: MAML and its relatives side by side (adaptation curves, cost against accuracy)."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator

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
    ax.set(xlabel="inner steps at test time", ylabel="query accuracy (%)",
           title=f"{data['n_way']}-way {data['k_shot']}-shot, episode {data['episode']}"
                 + (f"–{data['episode'] + data['episodes'] - 1}" if data["episodes"] > 1 else "")
                 + f", inner lr {data['inner_lr']:.3g}")
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    fig.tight_layout()
    return fig


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
