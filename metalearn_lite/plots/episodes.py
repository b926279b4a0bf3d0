"""Episode grids: the support images of each class above some of its query images, optionally with predictions.

One column per class (label 0..n_way-1); support rows framed in the support colour, query rows in the query colour,
or, when predictions are given, query frames coloured right/wrong with the predicted label written above.
"""

from __future__ import annotations

from typing import List, Optional, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from .style import PALETTE

RIGHT_COLOR = PALETTE["maml"]        # blue: distinguishable from vermillion under colour blindness
WRONG_COLOR = PALETTE["pretrained"]  # vermillion


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
                color, text = (RIGHT_COLOR if right else WRONG_COLOR), f"pred {predictions[index]}"
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
