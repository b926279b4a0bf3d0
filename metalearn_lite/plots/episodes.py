"""Episode grids: the support images of each class above some of its query images, optionally with predictions.

One column per class (label 0..n_way-1); support rows framed in the support colour, query rows in the query colour,
or, when predictions are given, query frames coloured right/wrong with the predicted label written above.
"""

from __future__ import annotations

from typing import List, Optional, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.colors import to_rgb
from matplotlib.ticker import MaxNLocator

from .style import PALETTE, mark_diverged, step_axis_end

RIGHT_COLOR = PALETTE["maml"]        # blue
WRONG_COLOR = PALETTE["first_order"] # reddish purple: apart from blue and from the support orange (Okabe-Ito), also
                                     # under colour blindness; vermillion was too close to that orange


def prediction_label(right: bool, predicted) -> str:
    """The label under a query image: a mark, so that right and wrong do not rest on colour alone."""
    return f"{'✓' if right else '✗'} pred {int(predicted)}"


def plot_episode(batch, task: int = 0, predictions: Optional[Sequence[int]] = None,
                 max_query_per_class: int = 3, image_size: float = 0.9, title: Optional[str] = None):
    """Draw one task of a ``TaskBatch`` as a grid and return the figure.

    Parameters
    ----------
    batch: a ``TaskBatch`` (``support``/``query`` with ``X`` (tasks, n, 1, H, W) and ``y`` (tasks, n)).
    task: which task of the batch to draw.
    predictions: predicted labels for the task's query images (same order as ``batch.query.y[task]``).
    max_query_per_class: query images shown per class (the rest are left out to keep the figure small).
    image_size: inches per image.
    """
    support_X, support_y = _task_images(batch.support, task)
    query_X, query_y = _task_images(batch.query, task)
    predictions = None if predictions is None else np.asarray(torch.as_tensor(predictions).cpu()).reshape(-1)
    if predictions is not None and len(predictions) != len(query_y):
        raise ValueError(f"predictions must have one label per query image ({len(query_y)}), got {len(predictions)}")
    n_way = int(max(support_y.max(), query_y.max())) + 1
    support_rows = _rows_by_class(support_y, n_way, None)
    query_rows = _rows_by_class(query_y, n_way, max_query_per_class)
    n_rows = len(support_rows) + len(query_rows)
    fig, axes = plt.subplots(n_rows, n_way, figsize=(image_size * n_way, image_size * n_rows + 0.6),
                             squeeze=False)
    for row, indices in enumerate(support_rows):
        for label, index in enumerate(indices):
            _draw(axes[row, label], support_X, index, PALETTE["support"], None)
    for offset, indices in enumerate(query_rows):
        for label, index in enumerate(indices):
            color, text = PALETTE["query"], None
            if index is not None and predictions is not None:
                right = predictions[index] == query_y[index]
                color, text = (RIGHT_COLOR if right else WRONG_COLOR), prediction_label(right, predictions[index])
            _draw(axes[len(support_rows) + offset, label], support_X if index is None else query_X, index, color,
                  text)
    for label in range(n_way):
        axes[0, label].set_title(f"class {label}", fontsize=9)
    axes[0, 0].set_ylabel("support", fontsize=9)
    if query_rows:
        axes[len(support_rows), 0].set_ylabel("query", fontsize=9)
    fig.suptitle(title or f"{n_way}-way {len(support_rows)}-shot episode (task {task})", fontsize=11)
    fig.tight_layout()
    return fig


def _task_images(split, task: int):
    X = split.X[task].detach().cpu()
    return X.reshape(X.shape[0], X.shape[-2], X.shape[-1]).numpy(), split.y[task].detach().cpu().numpy()


def _rows_by_class(labels: np.ndarray, n_way: int, limit: Optional[int]) -> List[List[Optional[int]]]:
    """Rows of image indices, one column per class; ``None`` where a class has fewer images."""
    per_class = [np.flatnonzero(labels == label).tolist() for label in range(n_way)]
    depth = max(len(indices) for indices in per_class)
    depth = depth if limit is None else min(depth, limit)
    return [[indices[row] if row < len(indices) else None for indices in per_class] for row in range(depth)]


def _draw(ax, images: np.ndarray, index: Optional[int], color: str, text: Optional[str]) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    if index is None:
        ax.axis("off")
        return
    # Strokes 1.0 drawn dark on white, like the original drawings.
    ax.imshow(images[index], cmap="gray_r", vmin=0.0, vmax=1.0)
    for spine in ax.spines.values():
        spine.set_visible(True)
        spine.set_color(color)
        spine.set_linewidth(2.5)
    if text is not None:
        ax.set_xlabel(text, fontsize=8, color=color)


def episode_mosaic(data: dict, max_query_per_class: int = 2, border: int = 2) -> tuple:
    """One RGB image of the episode: a column per class, support rows then query rows, each image framed in its
    colour (support: orange; query: blue if predicted right, purple if wrong, green without predictions).

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
                colour, text = (RIGHT_COLOR if right else WRONG_COLOR), prediction_label(right, predictions[index])
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
    ax_images.set_title("support (orange) and query (✓ blue right, ✗ purple wrong)", fontsize=9)
    steps, accuracies = data["steps"], data["accuracies"]
    ax.plot(steps, 100 * accuracies, "o-", color=PALETTE["maml"], markersize=4, label="query accuracy")
    ax.axhline(100 / data["n_way"], color=PALETTE["random"], linestyle="--", label="chance")
    ax.set_xlim(-0.5, step_axis_end(int(steps[-1])) + 0.5)
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
