"""A batched, seeded N-way K-shot episode sampler that works from an in-memory ``CharacterSet``."""

from __future__ import annotations

from typing import Iterator, List, Optional

import numpy as np
import torch

from ..tasks import Split, TaskBatch
from ..validation import require_float, require_int
from .omniglot import CharacterSet


class EpisodeSampler:
    """Sample batches of N-way K-shot episodes as a ``TaskBatch`` with a leading task dimension.

    Each task draws ``n_way`` distinct classes and, per class, ``k_shot + k_query`` distinct drawings, so support
    and query never share an image. Labels are remapped to ``0..n_way-1`` in the (random) order the classes were
    drawn; support and query are ordered class by class. ``X`` is float32 ``(meta_batch_size, n_way*k, 1, 28, 28)``
    with strokes 1.0 and background 0.0; ``y`` is int64 ``(meta_batch_size, n_way*k)``.
    ``info`` holds the indices used: ``classes`` (tasks, n_way), ``support_drawers`` and ``query_drawers``.

    Parameters
    ----------
    characters: a split from ``load_omniglot``.
    n_way, k_shot, k_query, meta_batch_size: episode shape (defaults: the MAML paper's 5-way 1-shot, 15 queries,
        16 tasks per meta-batch, Finn et al. 2017).
    seed: seeds the sampler's own generator (ignored when ``generator`` is given).
    same_alphabet: the fraction of episodes (0..1) whose classes all come from one alphabet in one rotation, like
        the original Omniglot challenge's within-alphabet runs (harder: the characters look alike). Default 0:
        classes drawn from the whole split.
    """

    def __init__(self, characters: CharacterSet, n_way: int = 5, k_shot: int = 1, k_query: int = 15,
                 meta_batch_size: int = 16, seed: int = 0, generator: Optional[torch.Generator] = None,
                 same_alphabet: float = 0.0):
        self.n_way = require_int("n_way", n_way, 2, characters.n_classes)
        self.k_shot = require_int("k_shot", k_shot, 1, characters.n_per_class - 1)
        self.k_query = require_int("k_query", k_query, 1, characters.n_per_class - self.k_shot)
        self.meta_batch_size = require_int("meta_batch_size", meta_batch_size, 1)
        self.same_alphabet = require_float("same_alphabet", same_alphabet, minimum=0.0, maximum=1.0)
        self.characters = characters
        self._groups = _alphabet_rotation_groups(characters, self.n_way) if self.same_alphabet > 0 else []
        if self.same_alphabet > 0 and not self._groups:
            raise ValueError(f"same_alphabet={same_alphabet} needs an alphabet with at least n_way={self.n_way} "
                             f"characters; the largest here has {_largest_group(characters)}")
        self.generator = generator if generator is not None else torch.Generator().manual_seed(
            require_int("seed", seed))
        # Converted once to one float row per image: each episode is then a single row gather. The gather uses
        # NumPy because torch's multi-threaded index_select is up to 30x slower on a busy 2-core machine.
        n_classes, n_per_class = characters.images.shape[:2]
        self._rows = characters.images.reshape(n_classes * n_per_class, -1).numpy().astype(np.float32) / 255.0
        self._support_y = torch.arange(self.n_way).repeat_interleave(self.k_shot)
        self._query_y = torch.arange(self.n_way).repeat_interleave(self.k_query)

    def sample(self) -> TaskBatch:
        """Return the next batch of ``meta_batch_size`` episodes."""
        tasks, n_way, k_shot = self.meta_batch_size, self.n_way, self.k_shot
        n_per_class = self.characters.n_per_class
        class_weights = torch.ones(tasks, self.characters.n_classes)
        classes = torch.multinomial(class_weights, n_way, replacement=False, generator=self.generator)
        if self.same_alphabet > 0:
            classes = self._within_alphabet(classes)
        drawers = torch.rand(tasks, n_way, n_per_class, generator=self.generator).argsort(-1)
        support_drawers = drawers[..., :k_shot]
        query_drawers = drawers[..., k_shot:k_shot + self.k_query]
        support_X = self._gather(classes, support_drawers, n_per_class)
        query_X = self._gather(classes, query_drawers, n_per_class)
        info = {"classes": classes, "support_drawers": support_drawers, "query_drawers": query_drawers}
        return TaskBatch(Split(support_X, self._support_y.expand(tasks, -1)),
                         Split(query_X, self._query_y.expand(tasks, -1)), info)

    def _within_alphabet(self, classes: torch.Tensor) -> torch.Tensor:
        """Replace the classes of a random ``same_alphabet`` fraction of tasks by classes of one alphabet and
        rotation (groups drawn in proportion to their size, so every class stays equally likely)."""
        chosen = torch.rand(classes.shape[0], generator=self.generator) < self.same_alphabet
        sizes = torch.tensor([len(group) for group in self._groups], dtype=torch.float)
        for task in chosen.nonzero().flatten().tolist():
            group = self._groups[int(torch.multinomial(sizes, 1, generator=self.generator))]
            order = torch.randperm(len(group), generator=self.generator)[:self.n_way]
            classes[task] = group[order]
        return classes

    def _gather(self, classes: torch.Tensor, drawers: torch.Tensor, n_per_class: int) -> torch.Tensor:
        """Images ``(tasks, n_way * k, 1, 28, 28)`` of the given drawers, class by class."""
        rows = (classes.unsqueeze(-1) * n_per_class + drawers).reshape(-1).numpy()
        side = self.characters.images.shape[-1]
        images = torch.from_numpy(np.take(self._rows, rows, axis=0))
        return images.reshape(classes.shape[0], -1, 1, side, side)

    def __iter__(self) -> Iterator[TaskBatch]:
        """Endless stream of batches (use ``itertools.islice`` or a step count to stop)."""
        while True:
            yield self.sample()


def _alphabet_rotation_groups(characters: CharacterSet, n_way: int) -> List[torch.Tensor]:
    """Class indices per (alphabet, rotation), for the groups with at least ``n_way`` classes."""
    groups = {}
    for index, key in enumerate(zip(characters.alphabets, characters.rotations)):
        groups.setdefault(key, []).append(index)
    return [torch.tensor(members) for _, members in sorted(groups.items()) if len(members) >= n_way]


def _largest_group(characters: CharacterSet) -> int:
    return max(len(group) for group in _alphabet_rotation_groups(characters, 1))
