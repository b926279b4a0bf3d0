"""Meta-training loop and checkpoints.

``meta_train`` runs Adam on the MAML meta-gradient for a number of meta-steps, with a ``tqdm`` progress bar, a
``History`` of losses and an optional callback (e.g. a live plot). Checkpoints are plain dicts of tensors and
numbers, loaded with ``torch.load(..., weights_only=True)`` so opening one never runs code.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, List, Optional

import torch
from tqdm.auto import tqdm

from . import __version__
from .maml import MAML
from .models import MLP, Conv4, LinearModel
from .tasks import TaskBatch
from .validation import require_float, require_int

MODEL_CLASSES = {"MLP": MLP, "Conv4": Conv4, "LinearModel": LinearModel}
CHECKPOINT_FORMAT = 1


@dataclass
class History:
    """What happened during meta-training: the step number, mean query loss and accuracy of each logged step."""

    steps: List[int] = field(default_factory=list)
    losses: List[float] = field(default_factory=list)
    accuracies: List[float] = field(default_factory=list)

    def record(self, step: int, loss: float, accuracy: float) -> None:
        self.steps.append(step)
        self.losses.append(loss)
        self.accuracies.append(accuracy)

    def as_dict(self) -> dict:
        return {"steps": list(self.steps), "losses": list(self.losses), "accuracies": list(self.accuracies)}


def meta_train(maml: MAML, sample_batch: Callable[[torch.Generator], TaskBatch], meta_steps: int,
               meta_lr: float = 1e-3, seed: int = 0, log_every: int = 1,
               callback: Optional[Callable[[History], None]] = None, callback_every: int = 100,
               progress: bool = True, optimizer: Optional[torch.optim.Optimizer] = None) -> History:
    """Meta-train ``maml.model`` for ``meta_steps`` outer steps with Adam (the MAML paper's meta-optimiser).

    Parameters
    ----------
    sample_batch: called with a seeded ``torch.Generator``; returns the next ``TaskBatch``.
    log_every: record the loss every this many steps (losses are averaged over the steps in between).
    callback: called with the ``History`` every ``callback_every`` steps and at the end (live plots).
    optimizer: defaults to ``Adam(maml.model.parameters(), lr=meta_lr)``.
    """
    meta_steps = require_int("meta_steps", meta_steps, minimum=0)
    meta_lr = require_float("meta_lr", meta_lr, positive=True)
    log_every = require_int("log_every", log_every, minimum=1)
    callback_every = require_int("callback_every", callback_every, minimum=1)
    optimizer = optimizer or torch.optim.Adam(maml.model.parameters(), lr=meta_lr)
    generator = torch.Generator().manual_seed(seed)
    history, window_loss, window_acc = History(), [], []
    bar = tqdm(range(1, meta_steps + 1), desc="meta-training", disable=not progress, mininterval=0.5)
    for step in bar:
        result = maml.meta_step(sample_batch(generator), optimizer)
        window_loss.append(float(result.loss))
        window_acc.append(float(result.accuracy))
        if step % log_every == 0 or step == meta_steps:
            history.record(step, sum(window_loss) / len(window_loss), sum(window_acc) / len(window_acc))
            window_loss, window_acc = [], []
            bar.set_postfix(loss=f"{history.losses[-1]:.3f}", refresh=False)
        if callback is not None and (step % callback_every == 0 or step == meta_steps):
            callback(history)
    return history


def save_checkpoint(path, model: torch.nn.Module, model_config: dict, history: Optional[History] = None,
                    **metadata) -> Path:
    """Write the model's weights, how to rebuild it, and how it was trained; atomically (no half files)."""
    model_class = type(model).__name__
    if model_class not in MODEL_CLASSES:
        raise ValueError(f"model must be one of {sorted(MODEL_CLASSES)} to be saved, got {model_class}")
    for key, value in {**model_config, **metadata}.items():
        _check_plain(key, value)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "package_version": __version__,
        "model_class": model_class,
        "model_config": dict(model_config),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "history": history.as_dict() if history is not None else None,
        "metadata": dict(metadata),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as handle:
        torch.save(payload, handle)
    os.chmod(handle.name, 0o644)  # temporary files are private (0600); a checkpoint is meant to be shared
    os.replace(handle.name, path)
    return path


PLAIN_TYPES = (str, int, float, bool, type(None))


def _check_plain(key: str, value) -> None:
    """Refuse values that ``torch.load(weights_only=True)`` could not read back (e.g. ``torch.__version__``)."""
    if isinstance(value, (list, tuple)):
        for item in value:
            _check_plain(key, item)
    elif isinstance(value, dict):
        for inner_key, item in value.items():
            _check_plain(f"{key}.{inner_key}", item)
    elif type(value) not in PLAIN_TYPES:
        raise ValueError(f"checkpoint field {key!r} must be a str, int, float, bool, None, or a list/dict of "
                         f"those (so it loads with weights_only=True), got {type(value).__name__}; "
                         f"convert it, e.g. str(value)")


def load_checkpoint(path, map_location="cpu") -> tuple:
    """Load a checkpoint safely (``weights_only=True``); return ``(model, payload)`` with the model rebuilt."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}; see the README for the command that trains it")
    payload = torch.load(path, map_location=map_location, weights_only=True)
    if payload.get("format") != CHECKPOINT_FORMAT or payload.get("model_class") not in MODEL_CLASSES:
        raise ValueError(f"{path} is not a metalearn-lite checkpoint of format {CHECKPOINT_FORMAT}")
    model = MODEL_CLASSES[payload["model_class"]](**payload["model_config"])
    model.load_state_dict(payload["state_dict"])
    return model, payload
