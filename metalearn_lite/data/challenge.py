"""The original Omniglot challenge: 20 runs of 20-way within-alphabet one-shot classification (Lake et al. 2015).

Each run holds one drawing of each of 20 characters from one evaluation alphabet (the support, "training" folder)
and 20 further drawings to classify (the query, "test" folder); ``class_labels.txt`` pairs each query file with the
support file of its class. ``evaluate_challenge`` scores any classifier on the 20 runs. The challenge's own
reference baseline, the modified Hausdorff distance between ink pixels (Dubuisson & Jain 1994), reproduces the
published 38.8% error; it is here as proof that the runs are read correctly.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
import torch
from tqdm.auto import tqdm

from ..tasks import Split, TaskBatch
from ..validation import require_choice
from .download import ensure_file, safe_member_names
from .images import ink_mask, open_png, to_small_image
from .settings import PathLike

CHALLENGE_ZIP = "all_runs.zip"
N_RUNS = 20
N_CLASSES = 20
PUBLISHED_HAUSDORFF_ERROR = 0.388  # Lake, Salakhutdinov & Tenenbaum (2015), modified Hausdorff baseline
IMAGE_FORMS = ("small", "ink")


@dataclass(frozen=True)
class ChallengeRun:
    """One run: 20 support images (one per class) and 20 query images, in two forms.

    ``support_X``/``query_X``: float32 ``(20, 1, 28, 28)``, strokes 1.0, prepared like the episode cache.
    ``support_ink``/``query_ink``: bool ``(20, 105, 105)``, True on ink, the original resolution.
    ``query_y``: int64 ``(20,)``, the index of the support image of each query's class.
    """

    name: str
    support_X: torch.Tensor
    query_X: torch.Tensor
    query_y: torch.Tensor
    support_ink: np.ndarray
    query_ink: np.ndarray
    support_files: Tuple[str, ...]
    query_files: Tuple[str, ...]


@dataclass(frozen=True)
class ChallengeResult:
    """Error rate (fraction wrong, 0..1) of each of the 20 runs and their mean."""

    errors_per_run: Tuple[float, ...]
    mean_error: float

    def __str__(self) -> str:
        runs = " ".join(f"{error:.0%}" for error in self.errors_per_run)
        return f"mean error {self.mean_error:.1%} over {len(self.errors_per_run)} runs ({runs})"


Classifier = Callable[[object, object], Sequence[int]]


def load_challenge_runs(data_dir: Optional[PathLike] = None, download: bool = True) -> List[ChallengeRun]:
    """Read the 20 runs from ``all_runs.zip`` (verified, downloaded if missing; see ``ensure_files``)."""
    zip_path = ensure_file(CHALLENGE_ZIP, data_dir=data_dir, download=download)
    with zipfile.ZipFile(zip_path) as archive:
        names = set(safe_member_names(archive))
        return [_read_run(archive, names, f"run{index:02d}") for index in range(1, N_RUNS + 1)]


def evaluate_challenge(classifier: Classifier, runs: Optional[Sequence[ChallengeRun]] = None,
                       images: str = "small", data_dir: Optional[PathLike] = None,
                       download: bool = True, progress: bool = False) -> ChallengeResult:
    """Score ``classifier`` on the 20 runs; return the error of each run and the mean.

    Parameters
    ----------
    classifier: ``classifier(support, query) -> 20 predicted support indices``, one per query image.
    runs: the runs (default: ``load_challenge_runs(data_dir, download)``).
    images: ``"small"`` passes ``support_X, query_X`` (float tensors, 28x28); ``"ink"`` passes
        ``support_ink, query_ink`` (bool arrays, 105x105).
    progress: a ``tqdm`` bar over the runs (for long cells).
    """
    require_choice("images", images, IMAGE_FORMS)
    runs = load_challenge_runs(data_dir, download) if runs is None else runs
    errors = []
    for run in tqdm(runs, desc="challenge runs", disable=not progress, leave=False):
        support, query = ((run.support_X, run.query_X) if images == "small" else (run.support_ink, run.query_ink))
        predictions = torch.as_tensor(np.asarray(classifier(support, query))).reshape(-1)
        if predictions.shape != run.query_y.shape:
            raise ValueError(f"the classifier must return {len(run.query_y)} predictions for {run.name}, "
                             f"got shape {tuple(predictions.shape)}")
        errors.append((predictions.long() != run.query_y).float().mean().item())
    return ChallengeResult(tuple(errors), float(np.mean(errors)))


def runs_as_task_batch(runs: Sequence[ChallengeRun]) -> TaskBatch:
    """Stack the runs as a ``TaskBatch`` of 20-way 1-shot tasks (support labels 0..19), for the MAML engine."""
    support_X = torch.stack([run.support_X for run in runs])
    support_y = torch.arange(N_CLASSES).expand(len(runs), -1)
    query_X = torch.stack([run.query_X for run in runs])
    query_y = torch.stack([run.query_y for run in runs])
    return TaskBatch(Split(support_X, support_y), Split(query_X, query_y), {"runs": [run.name for run in runs]})


def hausdorff_classifier(support_ink: np.ndarray, query_ink: np.ndarray) -> np.ndarray:
    """Lake's baseline: each query gets the support image at the smallest modified Hausdorff distance."""
    return modified_hausdorff_costs(query_ink, support_ink).argmin(axis=1)


def modified_hausdorff_costs(query_ink: Sequence[np.ndarray], support_ink: Sequence[np.ndarray]) -> np.ndarray:
    """Modified Hausdorff distance (Dubuisson & Jain 1994) between ink pixel sets, ``(n_query, n_support)``.

    As in Lake's ``demo_classification.py``: each image's ink coordinates are centred on their mean; the cost of a
    pair is the larger of the two mean nearest-neighbour distances. Computed exactly, but without the all-pairs
    distance matrix (see ``_mean_nearest_distances``).
    """
    query_points = [_centred_points(ink) for ink in query_ink]
    support_points = [_centred_points(ink) for ink in support_ink]
    query_to_support = _directed_costs(query_points, support_points, [_row_tables(ink) for ink in support_ink])
    support_to_query = _directed_costs(support_points, query_points, [_row_tables(ink) for ink in query_ink])
    return np.maximum(query_to_support, support_to_query.T)


def modified_hausdorff_distance(ink_a: np.ndarray, ink_b: np.ndarray) -> float:
    """Modified Hausdorff distance between two ink images, by brute force (reference for tests and lessons)."""
    points_a, points_b = _centred_points(ink_a)[0], _centred_points(ink_b)[0]
    distances = np.sqrt(((points_a[:, None, :] - points_b[None, :, :]) ** 2).sum(-1))
    return float(max(distances.min(axis=1).mean(), distances.min(axis=0).mean()))


def _read_run(archive: zipfile.ZipFile, names: set, run: str) -> ChallengeRun:
    query_files, support_of_query = _read_class_labels(archive, names, run)
    support_files = tuple(f"{run}/training/class{index:02d}.png" for index in range(1, N_CLASSES + 1))
    missing = [name for name in support_files + query_files if name not in names]
    if missing:
        raise ValueError(f"{archive.filename}: {run} lacks {', '.join(missing)}")
    support_images = [open_png(archive.read(name)) for name in support_files]
    query_images = [open_png(archive.read(name)) for name in query_files]
    query_y = torch.tensor([support_files.index(name) for name in support_of_query], dtype=torch.int64)
    return ChallengeRun(run, _small_tensor(support_images), _small_tensor(query_images), query_y,
                        np.stack([ink_mask(image) for image in support_images]),
                        np.stack([ink_mask(image) for image in query_images]), support_files, query_files)


def _read_class_labels(archive: zipfile.ZipFile, names: set, run: str) -> Tuple[Tuple[str, ...], Tuple[str, ...]]:
    """Parse ``<run>/class_labels.txt``: lines "<run>/test/itemNN.png <run>/training/classMM.png"."""
    label_file = f"{run}/class_labels.txt"
    if label_file not in names:
        raise ValueError(f"{archive.filename} has no {label_file}")
    pairs = [line.split() for line in archive.read(label_file).decode("ascii").splitlines() if line.strip()]
    well_formed = all(len(pair) == 2 and PurePosixPath(pair[0]).parent.name == "test"
                      and PurePosixPath(pair[1]).parent.name == "training" for pair in pairs)
    if len(pairs) != N_CLASSES or not well_formed:
        raise ValueError(f"{archive.filename}:{label_file} should pair {N_CLASSES} test files with training files")
    return tuple(query for query, _ in pairs), tuple(support for _, support in pairs)


def _small_tensor(images) -> torch.Tensor:
    stacked = np.stack([to_small_image(image) for image in images]).astype(np.float32) / 255.0
    return torch.from_numpy(stacked).unsqueeze(1)


def _centred_points(ink: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Return (ink coordinates (n, 2) as (row, column) floats, their mean)."""
    points = np.argwhere(ink).astype(np.float64)
    if len(points) == 0:
        raise ValueError("an image without ink has no modified Hausdorff distance")
    mean = points.mean(axis=0)
    return points - mean, mean


_FAR = 1e6  # stands for "no ink in this row on that side"; far beyond any real distance


def _row_tables(ink: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Per row, the nearest ink column to the left and right of each column.

    ``left[y, x + 1]`` is the largest ink column <= x and ``right[y, x + 1]`` the smallest ink column >= x + 1,
    for x in -1..W (columns outside the image are clipped into that range).
    """
    height, width = ink.shape
    columns = np.arange(width, dtype=np.float64)
    left = np.maximum.accumulate(np.where(ink, columns, -_FAR), axis=1)
    right = np.minimum.accumulate(np.where(ink, columns, _FAR)[:, ::-1], axis=1)[:, ::-1]
    left_table = np.concatenate([np.full((height, 1), -_FAR), left, left[:, -1:]], axis=1)
    right_table = np.concatenate([right, np.full((height, 2), _FAR)], axis=1)
    return left_table, right_table


def _directed_costs(from_points, to_points, to_tables) -> np.ndarray:
    """Mean distance from each ``from`` image's ink to each ``to`` image's ink, ``(n_from, n_to)``."""
    n_from, n_to = len(from_points), len(to_points)
    # Centred coordinates of A against B equal A's pixels shifted by mean_B - mean_A in B's pixel frame.
    positions, target, pair = [], [], []
    for i, (centred, _) in enumerate(from_points):
        for j, (_, to_mean) in enumerate(to_points):
            positions.append(centred + to_mean)
            target.append(np.full(len(centred), j))
            pair.append(np.full(len(centred), i * n_to + j))
    left = np.stack([table[0] for table in to_tables])
    right = np.stack([table[1] for table in to_tables])
    distances = _nearest_ink_distances(np.concatenate(positions), np.concatenate(target), left, right)
    pair = np.concatenate(pair)
    sums = np.bincount(pair, weights=distances, minlength=n_from * n_to)
    counts = np.bincount(pair, minlength=n_from * n_to)
    return (sums / counts).reshape(n_from, n_to)


def _nearest_ink_distances(positions: np.ndarray, target: np.ndarray, left: np.ndarray,
                           right: np.ndarray) -> np.ndarray:
    """Exact Euclidean distance from each position (row, col) to the nearest ink pixel of image ``target``.

    Rows are searched outwards from the position's own row; a position is finished as soon as its best squared
    distance is no larger than the squared vertical distance to every row not yet searched. Typical distances are
    a few pixels, so this visits a handful of rows instead of every ink pixel.
    """
    height, table_width = left.shape[1], left.shape[2]
    flat_left, flat_right = left.reshape(-1), right.reshape(-1)
    result = np.empty(len(positions))
    # Compact working copies of the positions still being searched (indexing shrinking arrays is the cost here).
    index = np.arange(len(positions))
    row, col = positions[:, 0].copy(), positions[:, 1].copy()
    base_row = np.floor(row).astype(np.int64)
    table_column = np.clip(np.floor(col).astype(np.int64) + 1, 0, table_width - 1)
    base_flat = target * (height * table_width) + table_column
    best = np.full(len(positions), np.inf)
    offset = 0
    while index.size:
        for rows in (base_row - offset, base_row + 1 + offset):
            flat = base_flat + np.clip(rows, 0, height - 1) * table_width
            to_left, to_right = col - flat_left[flat], col - flat_right[flat]
            d2 = (row - rows) ** 2 + np.minimum(to_left * to_left, to_right * to_right)
            np.minimum(best, np.where((rows >= 0) & (rows < height), d2, np.inf), out=best)
        all_rows_seen = (base_row - offset <= 0) & (base_row + 1 + offset >= height - 1)
        done = (best <= (offset + 1) ** 2) | all_rows_seen
        result[index[done]] = best[done]
        searching = ~done
        index, row, col, base_row, base_flat, best = (array[searching] for array in
                                                      (index, row, col, base_row, base_flat, best))
        offset += 1
    return np.sqrt(result)
