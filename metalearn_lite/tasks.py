"""Task families: each samples a *batch* of regression tasks as tensors with a leading task dimension.

A task is a small dataset split into a ``support`` set (what the learner adapts on) and a ``query`` set (what the
adapted learner is judged on). ``TaskBatch.support.X`` has shape ``(n_tasks, k_shot, ...)``.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Optional

import torch

from .validation import require_float, require_int


class Split(NamedTuple):
    """Inputs ``X`` and targets ``y`` of one support or query set (a leading task dimension when batched)."""

    X: torch.Tensor
    y: torch.Tensor

    def to(self, device) -> "Split":
        return Split(self.X.to(device), self.y.to(device))


class TaskBatch(NamedTuple):
    """A batch of tasks: ``support`` and ``query`` splits with a leading task dimension.

    ``info`` holds what generated the tasks (e.g. sinusoid amplitudes and phases), for plots and checks.
    """

    support: Split
    query: Split
    info: Optional[dict] = None

    @property
    def n_tasks(self) -> int:
        return self.support.X.shape[0]

    def task(self, index: int) -> "TaskBatch":
        """The ``index``-th task as a batch of one (keeps the leading task dimension)."""
        return self.subset(index, index + 1)

    def subset(self, start: int, stop: int) -> "TaskBatch":
        """Tasks ``start`` to ``stop - 1`` as a batch (views, no copies)."""
        pick = slice(start, stop)
        info = {k: v[pick] for k, v in self.info.items()} if self.info else None
        return TaskBatch(Split(self.support.X[pick], self.support.y[pick]),
                         Split(self.query.X[pick], self.query.y[pick]), info)

    def to(self, device) -> "TaskBatch":
        # info holds per-task tensors (moved) and names such as the challenge's run names (kept as they are)
        info = ({k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in self.info.items()}
                if self.info else None)
        return TaskBatch(self.support.to(device), self.query.to(device), info)


class SinusoidTasks:
    """Sinusoid regression as in the MAML paper (Finn et al., 2017, section 5.1).

    Each task is ``y = A sin(x - phi)`` with amplitude ``A ~ U[0.1, 5]``, phase ``phi ~ U[0, pi]``, and inputs
    ``x ~ U[-5, 5]``.
    """

    def __init__(self, amplitude_range=(0.1, 5.0), phase_range=(0.0, math.pi), x_range=(-5.0, 5.0)):
        self.amplitude_range = _check_range("amplitude_range", amplitude_range)
        self.phase_range = _check_range("phase_range", phase_range)
        self.x_range = _check_range("x_range", x_range)

    def sample(self, n_tasks: int, k_shot: int = 10, k_query: Optional[int] = None,
               generator: Optional[torch.Generator] = None, dtype=torch.float32) -> TaskBatch:
        """Sample ``n_tasks`` tasks with ``k_shot`` support and ``k_query`` (default ``k_shot``) query points."""
        n_tasks = require_int("n_tasks", n_tasks, minimum=1)
        k_shot = require_int("k_shot", k_shot, minimum=1)
        k_query = k_shot if k_query is None else require_int("k_query", k_query, minimum=1)
        amplitude = _uniform((n_tasks,), self.amplitude_range, generator, dtype)
        phase = _uniform((n_tasks,), self.phase_range, generator, dtype)
        return self.tasks_from(amplitude, phase, k_shot, k_query, generator)

    def tasks_from(self, amplitude: torch.Tensor, phase: torch.Tensor, k_shot: int, k_query: int,
                   generator: Optional[torch.Generator] = None) -> TaskBatch:
        """Sample support and query inputs for the given task parameters (1-D tensors of equal length)."""
        n_tasks, dtype = amplitude.shape[0], amplitude.dtype
        x_support = _uniform((n_tasks, k_shot, 1), self.x_range, generator, dtype)
        x_query = _uniform((n_tasks, k_query, 1), self.x_range, generator, dtype)
        return TaskBatch(Split(x_support, self.target(x_support, amplitude, phase)),
                         Split(x_query, self.target(x_query, amplitude, phase)),
                         {"amplitude": amplitude, "phase": phase})

    @staticmethod
    def target(x: torch.Tensor, amplitude: torch.Tensor, phase: torch.Tensor) -> torch.Tensor:
        """``A sin(x - phi)`` for inputs ``x`` of shape ``(n_tasks, n, 1)`` and per-task ``A``, ``phi``."""
        return amplitude.view(-1, 1, 1) * torch.sin(x - phase.view(-1, 1, 1))


class LinearTasks:
    """Linear regression tasks ``y = X w_task + noise`` with ``w_task ~ N(w_mean, w_std^2 I)``, ``X ~ N(0, I)``.

    With a linear model and squared error, the MAML meta-gradient has a closed form
    (see ``metalearn_lite.closed_form``), which makes this family the test oracle and the hand-derivation example.
    """

    def __init__(self, dim: int = 2, w_mean=None, w_std: float = 1.0, noise_std: float = 0.0):
        self.dim = require_int("dim", dim, minimum=1)
        self.w_mean = torch.zeros(dim) if w_mean is None else torch.as_tensor(w_mean, dtype=torch.float32)
        if self.w_mean.shape != (dim,):
            raise ValueError(f"w_mean must have shape ({dim},) to match dim, got {tuple(self.w_mean.shape)}")
        self.w_std = require_float("w_std", w_std, minimum=0.0)
        self.noise_std = require_float("noise_std", noise_std, minimum=0.0)

    def sample(self, n_tasks: int, k_shot: int = 10, k_query: Optional[int] = None,
               generator: Optional[torch.Generator] = None, dtype=torch.float32) -> TaskBatch:
        """Sample ``n_tasks`` tasks; ``X`` has shape ``(n_tasks, k, dim)``, ``y`` ``(n_tasks, k, 1)``."""
        n_tasks = require_int("n_tasks", n_tasks, minimum=1)
        k_shot = require_int("k_shot", k_shot, minimum=1)
        k_query = k_shot if k_query is None else require_int("k_query", k_query, minimum=1)
        w = self.w_mean.to(dtype) + self.w_std * torch.randn(n_tasks, self.dim, generator=generator, dtype=dtype)
        support, query = (self._split(w, k, generator) for k in (k_shot, k_query))
        return TaskBatch(support, query, {"w": w})

    def _split(self, w: torch.Tensor, k: int, generator) -> Split:
        X = torch.randn(w.shape[0], k, self.dim, generator=generator, dtype=w.dtype)
        noise = self.noise_std * torch.randn(w.shape[0], k, 1, generator=generator, dtype=w.dtype)
        return Split(X, X @ w.unsqueeze(-1) + noise)


def _uniform(shape, bounds, generator, dtype) -> torch.Tensor:
    low, high = bounds
    return low + (high - low) * torch.rand(shape, generator=generator, dtype=dtype)


def _check_range(name: str, bounds) -> tuple:
    low, high = (require_float(f"{name}[0]", bounds[0]), require_float(f"{name}[1]", bounds[1]))
    if low > high:
        raise ValueError(f"{name} must be (low, high) with low <= high, got {bounds}")
    return (low, high)
