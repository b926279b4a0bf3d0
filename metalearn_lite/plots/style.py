"""A consistent, colour-blind-safe look for every figure (Okabe & Ito palette)."""

from __future__ import annotations

import math
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
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


def decade_limits(values: Sequence[np.ndarray], at_least: tuple = (0.1, 10.0),
                  at_most: tuple = (-300, 300)) -> tuple:
    """(10**a, 10**b): whole decades around every finite positive value, never narrower than ``at_least`` and
    never wider than ``at_most`` (decade exponents).

    A log axis that moves in whole decades and rarely at all (most settings share ``at_least``), so that the live
    figure's cached background (ticks, labels) is reused from one slider move to the next.
    """
    finite = [v[np.isfinite(v) & (v > 0)] for v in map(np.asarray, values)]
    finite = np.concatenate([v for v in finite if v.size]) if any(v.size for v in finite) else np.array([1.0])
    low = min(math.floor(math.log10(finite.min())), math.floor(math.log10(at_least[0])))
    high = max(math.ceil(math.log10(finite.max())), math.ceil(math.log10(at_least[1])))
    low, high = max(low, at_most[0]), min(high, at_most[1])
    return 10.0 ** low, 10.0 ** max(high, low + 1)
