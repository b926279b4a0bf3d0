"""Seeding, device choice and environment detection, shared by notebooks, tests and training commands."""

from __future__ import annotations

import os
import random
import sys

import numpy as np
import torch


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed Python, NumPy and torch; return a fresh ``torch.Generator`` seeded with ``seed``.

    Functions in this package take an explicit generator, so passing the returned one around makes a notebook
    reproducible even when cells are re-run in another order.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def default_device() -> torch.device:
    """CUDA when a GPU is there (e.g. Colab with a GPU runtime), otherwise the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_device(device) -> torch.device:
    """``"auto"`` -> ``default_device()``; ``"cpu"``/``"cuda"``/a ``torch.device`` -> itself, with a clear error
    when CUDA is asked for on a machine without a GPU."""
    if device is None or device == "auto":
        return default_device()
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}") from error
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {str(device)!r}")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was asked for, but torch sees no GPU here; use device='cpu' or 'auto'")
    return device


def in_colab() -> bool:
    """True when running inside Google Colab."""
    return "google.colab" in sys.modules


def limit_cpu_threads(n_threads: int | None = None) -> int:
    """Use at most ``n_threads`` intra-op threads (default: all cores, but at least 1); return the number set.

    Small meta-learning workloads pay more for thread hand-offs than they gain, and busy-waiting OpenMP threads
    slow everything down when anything else runs on a 2-core laptop.
    """
    n_threads = n_threads or max(1, os.cpu_count() or 1)
    torch.set_num_threads(n_threads)
    return n_threads
