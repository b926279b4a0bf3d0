"""A consistent, colour-blind-safe look for every figure (Okabe & Ito palette)."""

from __future__ import annotations

import matplotlib.pyplot as plt

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


def mark_diverged(ax, message: str = "diverged") -> None:
    """Write a clear 'diverged' label on ``ax`` so a run that blew up is never shown as an empty plot."""
    ax.text(0.5, 0.5, message, transform=ax.transAxes, ha="center", va="center",
            fontsize=16, color=PALETTE["pretrained"], fontweight="bold",
            bbox=dict(boxstyle="round", facecolor="white", edgecolor=PALETTE["pretrained"]))
