"""A consistent, colour-blind-safe look for every figure (Okabe & Ito palette)."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

# Okabe & Ito (2008): distinguishable under the common forms of colour blindness.
PALETTE = {
    "maml": "#0072B2",        # blue
    "pretrained": "#D55E00",  # vermillion
    "random": "#999999",      # grey
    "truth": "#000000",       # black
    "support": "#E69F00",     # orange
    "query": "#009E73",       # green
    "first_order": "#CC79A7", # purple
    "extra": "#56B4E9",       # sky blue
}

# The "diverged" badge: white on near-black, a colour no series uses, so it never reads as one of them.
BADGE_FACE = "#222222"

RC_PARAMS = {
    "figure.dpi": 90,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "legend.frameon": False,
}


def apply_style() -> None:
    """Set the suite's matplotlib defaults (call once at the top of a notebook)."""
    plt.rcParams.update(RC_PARAMS)


def mark_diverged(ax, message: str = "diverged", edge_color: str = BADGE_FACE, position=(0.5, 0.5),
                  align=("center", "center"), fontsize: float = 13) -> None:
    """Write a clear 'diverged' label on ``ax`` so a run that blew up is never shown as an empty plot.

    White bold text on a near-black box; ``edge_color`` can name the series that diverged (its line colour),
    ``position`` (axes fraction) with ``align`` (horizontal, vertical alignment) moves it off the data.
    """
    ax.text(*position, message, transform=ax.transAxes, ha=align[0], va=align[1], zorder=10,
            fontsize=fontsize, color="white", fontweight="bold",
            bbox=dict(boxstyle="round", facecolor=BADGE_FACE, edgecolor=edge_color, linewidth=2.5))


def step_axis_end(steps: int) -> int:
    """Where a step axis ends for ``steps`` steps: the next of 1, 2, 5, 10, 20, 50, ... (fits the steps shown,
    and stays put while a slider moves within a range, so curves remain comparable)."""
    end = 1
    while end < steps:
        end = end * 5 // 2 if str(end)[0] == "2" else end * 2
    return end


def plain_log_yaxis(ax) -> None:
    """Log-scale y axis with ticks at 1, 2, 5 x 10^k written as plain numbers (0.5, 1, 2), no minor ticks."""
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0), numticks=8))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:.3g}"))
