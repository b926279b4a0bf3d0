"""The episode adaptation explorer of notebook 5: adapt a meta-learned Conv4 to one Omniglot episode, live.

Sliders: inner learning rate (log scale, 1e-3 ... 10) and inner steps (0 ... 20); an episode slider and a "new
episode" button pick the episode. The figure shows the support images, the query images framed right/wrong with
the predicted label (one ``imshow`` of a mosaic: a grid of subplots would take most of the 500 ms
budget), and query accuracy against the number of inner steps. A learning rate that blows the weights
up is drawn as "diverged", never as a crash. ``episode_adaptation`` is the plain function behind it (tests call it).
"""

from __future__ import annotations

from typing import Dict, Optional

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.colors import to_rgb
from matplotlib.ticker import MaxNLocator

from ..data import EpisodeSampler
from ..few_shot import adaptation_steps, fit_head
from ..plots.episodes import RIGHT_COLOR, WRONG_COLOR
from ..plots.style import PALETTE, mark_diverged
from ..validation import require_int
from .core import Explorer, int_slider, log_slider

INNER_LR_EXPONENTS = (-3.0, 1.0)   # 1e-3 ... 10
MAX_INNER_STEPS = 20
N_EPISODES = 100


def sample_episode(characters, episode: int, n_way: int = 5, k_shot: int = 1, k_query: int = 5):
    """Episode number ``episode`` (a seed) of ``characters``, as a ``TaskBatch`` of one task."""
    return EpisodeSampler(characters, n_way, k_shot, k_query, meta_batch_size=1, seed=int(episode)).sample()


def episode_adaptation(inner_lr: float, inner_steps: int, episode: int, model, params: Dict[str, torch.Tensor],
                       characters, n_way: int = 5, k_shot: int = 1, k_query: int = 5, bn: str = "query",
                       zero_head: bool = True, cache: Optional[dict] = None) -> dict:
    """Adapt ``params`` to one episode; return what the explorer draws.

    Returns a dict with ``batch`` (the episode), ``predictions`` (query labels after ``inner_steps``),
    ``steps`` and ``accuracies`` (query accuracy after 0..inner_steps steps, NaN after divergence),
    ``support_losses``, ``accuracy`` (final, NaN if diverged), ``diverged`` and the settings.
    ``cache``: a dict kept between calls (the explorer's); moving only the steps slider then continues or slices
    the adaptation already computed instead of starting again.
    """
    inner_steps = require_int("inner_steps", inner_steps, minimum=0)
    key = (int(episode), float(inner_lr), n_way, k_shot, k_query, bn, zero_head, id(params), id(characters))
    entry = None if cache is None else cache.get(key)
    if entry is None:
        batch = sample_episode(characters, episode, n_way, k_shot, k_query)
        steps = adaptation_steps(model, fit_head(params, n_way, zero_head), batch, inner_lr, bn=bn)
        entry = {"batch": batch, "generator": steps, "states": []}
        if cache is not None:
            cache.clear()  # one adaptation at a time: the explorer only ever continues the current one
            cache[key] = entry
    while len(entry["states"]) <= inner_steps:
        entry["states"].append(next(entry["generator"]))
    states = entry["states"][:inner_steps + 1]
    accuracies = np.array([float(state.query_accuracies[0]) for state in states])
    diverged = bool(states[-1].diverged[0])
    return {"batch": entry["batch"], "predictions": states[-1].predictions[0], "steps": np.arange(inner_steps + 1),
            "accuracies": accuracies, "support_losses": np.array([float(s.support_losses[0]) for s in states]),
            "accuracy": float("nan") if diverged else float(accuracies[-1]), "diverged": diverged,
            "inner_lr": float(inner_lr), "inner_steps": int(inner_steps), "episode": int(episode),
            "n_way": n_way, "k_shot": k_shot}


def episode_mosaic(data: dict, max_query_per_class: int = 2, border: int = 2) -> tuple:
    """One RGB image of the episode: a column per class, support rows then query rows, each image framed in its
    colour (support: orange; query: blue if predicted right, vermillion if wrong, green without predictions).

    Returns ``(mosaic (H, W, 3) floats, [(row, column, text, colour)] for the query labels)``. One ``imshow`` of
    this draws many times faster than a grid of subplots, which keeps the explorer's redraw under 500 ms.
    """
    batch, n_way = data["batch"], data["n_way"]
    support_X, support_y = batch.support.X[0, :, 0].numpy(), batch.support.y[0].numpy()
    query_X, query_y = batch.query.X[0, :, 0].numpy(), batch.query.y[0].numpy()
    predictions = None if data["diverged"] else np.asarray(data["predictions"])
    cells = []   # (row, column, image, colour, text)
    k_shot = int((support_y == 0).sum())
    for label in range(n_way):
        for row, index in enumerate(np.flatnonzero(support_y == label)):
            cells.append((row, label, support_X[index], PALETTE["support"], None))
        for row, index in enumerate(np.flatnonzero(query_y == label)[:max_query_per_class]):
            colour, text = PALETTE["query"], None
            if predictions is not None:
                right = predictions[index] == query_y[index]
                colour, text = (RIGHT_COLOR if right else WRONG_COLOR), f"pred {predictions[index]}"
            cells.append((k_shot + row, label, query_X[index], colour, text))
    side = support_X.shape[-1] + 2 * border
    gap = 4
    n_rows = k_shot + max_query_per_class
    mosaic = np.ones((n_rows * (side + gap), n_way * (side + gap), 3))
    labels = []
    for row, column, image, colour, text in cells:
        top, left = row * (side + gap), column * (side + gap)
        mosaic[top:top + side, left:left + side] = to_rgb(colour)
        inner = 1.0 - np.clip(image, 0.0, 1.0)   # dark strokes on white
        mosaic[top + border:top + side - border, left + border:left + side - border] = inner[..., None]
        if text is not None:
            labels.append((top + side + gap / 2, left + side / 2, text, colour))
    return mosaic, labels


def draw_episode_adaptation(data: dict, max_query_per_class: int = 2):
    """The episode (support, query images framed right/wrong) and query accuracy against inner steps."""
    result = "diverged" if data["diverged"] else f"query accuracy {data['accuracy']:.0%}"
    fig, (ax_images, ax) = plt.subplots(1, 2, figsize=(9.5, 3.6), gridspec_kw={"width_ratios": [1.25, 1]})
    mosaic, labels = episode_mosaic(data, max_query_per_class)
    ax_images.imshow(mosaic, interpolation="nearest")
    for y, x, text, colour in labels:
        ax_images.text(x, y, text, ha="center", va="center", fontsize=7, color=colour)
    ax_images.set_axis_off()
    ax_images.set_title("support (orange) and query (blue right, red wrong)", fontsize=9)
    steps, accuracies = data["steps"], data["accuracies"]
    ax.plot(steps, 100 * accuracies, "o-", color=PALETTE["maml"], markersize=4, label="query accuracy")
    ax.axhline(100 / data["n_way"], color=PALETTE["random"], linestyle="--", label="chance")
    ax.set_xlim(-0.5, max(MAX_INNER_STEPS, int(steps[-1])) + 0.5)
    ax.set_ylim(0, 105)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("inner steps")
    ax.set_ylabel("query accuracy (%)")
    ax.legend(loc="lower right")
    if data["diverged"]:
        mark_diverged(ax)
    fig.suptitle(f"inner lr {data['inner_lr']:.3g}, {data['inner_steps']} steps: {result}", fontsize=11)
    fig.subplots_adjust(left=0.02, right=0.98, bottom=0.14, top=0.84, wspace=0.15)
    return fig


class EpisodeExplorer:
    """Sliders for the inner loop, an episode slider and a "new episode" button, around ``Explorer``."""

    def __init__(self, model, params, characters, inner_lr: float = 0.4, inner_steps: int = 10, episode: int = 0,
                 n_way: int = 5, k_shot: int = 1, k_query: int = 5, bn: str = "query", zero_head: bool = True):
        controls = {
            "inner_lr": log_slider("inner lr", inner_lr, *INNER_LR_EXPONENTS),
            "inner_steps": int_slider("inner steps", inner_steps, 0, MAX_INNER_STEPS),
            "episode": int_slider("episode", episode, 0, N_EPISODES - 1),
        }
        fixed = {"model": model, "params": params, "characters": characters, "n_way": n_way, "k_shot": k_shot,
                 "k_query": k_query, "bn": bn, "zero_head": zero_head, "cache": {}}
        self.explorer = Explorer(episode_adaptation, draw_episode_adaptation, controls, fixed=fixed,
                                 title=f"Adapting to one {n_way}-way {k_shot}-shot episode from held-out alphabets")
        self.button = widgets.Button(description="new episode")
        self.button.on_click(self.new_episode)
        self.widget = widgets.VBox([self.button, self.explorer.widget])

    @property
    def controls(self):
        return self.explorer.controls

    @property
    def last_data(self) -> Optional[dict]:
        return self.explorer.last_data

    def set(self, **values):
        """Move sliders (as a student would); returns the data of the last redraw."""
        return self.explorer.set(**values)

    def new_episode(self, _button=None) -> None:
        """Show the next episode (wraps around)."""
        slider = self.controls["episode"]
        slider.value = (slider.value + 1) % (slider.max + 1)

    def _ipython_display_(self):
        from IPython.display import display
        display(self.widget)


def episode_explorer(model, params, characters, **kwargs) -> EpisodeExplorer:
    """The explorer of notebook 5 (see ``EpisodeExplorer`` for the options)."""
    return EpisodeExplorer(model, params, characters, **kwargs)
