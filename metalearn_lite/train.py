"""Meta-training loop and checkpoints.

``meta_train`` runs Adam on the MAML meta-gradient for a number of meta-steps, with a ``tqdm`` progress bar, a
``History`` of losses and an optional callback (e.g. a live plot). Checkpoints are plain dicts of tensors and
numbers, loaded with ``torch.load(..., weights_only=True)`` so opening one never runs code.

A run never ends silently in a bad state: a non-finite loss stops it at once (``NonFiniteLossError``, naming the
step and the learning rates), ``save_checkpoint`` refuses non-finite weights, and a Ctrl-C stops it between two
steps (``TrainingInterrupted``, carrying the step and the history so far). A file that is not a checkpoint of this
package is refused by ``load_checkpoint`` with one line saying what it is (``CheckpointError``).
"""

from __future__ import annotations

import math
import os
import pickle
import signal
import sys
import tempfile
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, List, Optional

import torch
from tqdm.auto import tqdm

from . import __version__
from .maml import MAML
from .models import MLP, Conv4, LinearModel
from .tasks import TaskBatch
from .validation import require_float, require_int

MODEL_CLASSES = {"MLP": MLP, "Conv4": Conv4, "LinearModel": LinearModel}
CHECKPOINT_FORMAT = 1
TASK_FAMILY_MODELS = {"sinusoid": "MLP", "omniglot": "Conv4"}   # the model class each training command writes
TASK_FAMILY_NAMES = {"sinusoid": "a sinusoid", "omniglot": "an Omniglot"}


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss; ``step`` is where, ``settings`` the likely culprits."""

    def __init__(self, step: int, loss: float, settings: dict):
        self.step, self.loss, self.settings = step, loss, dict(settings)
        named = ", ".join(f"{name}={value:g}" for name, value in self.settings.items())
        super().__init__(f"training stopped at step {step}: the loss is {loss} (not finite); the likely cause is "
                         f"a learning rate too large for this model ({named}): try smaller ones")


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped training between two steps; ``step`` steps were done, ``history`` holds them.

    A ``KeyboardInterrupt``, so code that does not know this class sees the interrupt it asked for. ``model`` and
    ``info`` (steps, wall time...) are set by loops that build the model themselves (the Omniglot command).
    """

    def __init__(self, step: int, history: "History", model: Optional[torch.nn.Module] = None,
                 info: Optional[dict] = None):
        self.step, self.history, self.model, self.info = step, history, model, info
        super().__init__(f"training interrupted after step {step}")


class CheckpointError(ValueError):
    """A file that cannot be used as the checkpoint asked for; the message says what it is and what was expected."""


def check_finite_loss(step: int, loss: float, **settings) -> None:
    """Raise ``NonFiniteLossError`` naming ``step`` and ``settings`` (e.g. the learning rates) unless ``loss`` is
    finite."""
    if not math.isfinite(loss):
        raise NonFiniteLossError(step, loss, settings)


@contextmanager
def stop_requests() -> Iterator[Callable[[], bool]]:
    """Turn the first Ctrl-C (SIGINT) into a request that the training loop checks between steps.

    Why: an interrupt that lands inside ``optimizer.step`` leaves some tensors updated and others not; stopping at
    a step boundary keeps the weights of a whole number of steps, worth saving. A second Ctrl-C interrupts at
    once. Yields a function telling whether a stop was asked for. Outside the main thread, where Python cannot
    install signal handlers, or where SIGINT is ignored (``nohup``, a background job), it only yields
    ``lambda: False`` and leaves SIGINT as it was.
    """
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is signal.SIG_IGN):
        yield lambda: False
        return
    requested = []

    def handler(signum, frame):
        if requested:
            raise KeyboardInterrupt
        requested.append(signum)
        print("\ninterrupt: stopping after the current step (press Ctrl-C again to stop at once)",
              file=sys.stderr, flush=True)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield lambda: bool(requested)
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.default_int_handler)


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

    Raises ``NonFiniteLossError`` at the first NaN or infinite loss, and ``TrainingInterrupted`` when Ctrl-C is
    pressed (after the step in progress, with the history so far; the model keeps the weights of those steps).
    """
    meta_steps = require_int("meta_steps", meta_steps, minimum=0)
    meta_lr = require_float("meta_lr", meta_lr, positive=True)
    log_every = require_int("log_every", log_every, minimum=1)
    callback_every = require_int("callback_every", callback_every, minimum=1)
    optimizer = optimizer or torch.optim.Adam(maml.model.parameters(), lr=meta_lr)
    generator = torch.Generator().manual_seed(seed)
    history, window_loss, window_acc = History(), [], []
    with stop_requests() as stop_requested:
        bar = tqdm(range(1, meta_steps + 1), desc="meta-training", disable=not progress, mininterval=0.5)
        for step in bar:
            result = maml.meta_step(sample_batch(generator), optimizer)
            window_loss.append(float(result.loss))
            window_acc.append(float(result.accuracy))
            check_finite_loss(step, window_loss[-1], inner_lr=maml.inner_lr,
                              meta_lr=optimizer.param_groups[0]["lr"])
            stopping = stop_requested() and step < meta_steps   # a finished run is not an interrupted one
            if step % log_every == 0 or step == meta_steps or stopping:
                history.record(step, sum(window_loss) / len(window_loss), sum(window_acc) / len(window_acc))
                window_loss, window_acc = [], []
                bar.set_postfix(loss=f"{history.losses[-1]:.3f}", refresh=False)
            if callback is not None and (step % callback_every == 0 or step == meta_steps):
                callback(history)
            if stopping:
                bar.close()
                raise TrainingInterrupted(step, history)
    return history


def save_checkpoint(path, model: torch.nn.Module, model_config: dict, history: Optional[History] = None,
                    **metadata) -> Path:
    """Write the model's weights, how to rebuild it, and how it was trained; atomically (no half files).

    Refuses (``ValueError``, nothing written) a model with NaN or infinite weights: such a file would only fail
    later, far from the run that made it.
    """
    model_class = type(model).__name__
    if model_class not in MODEL_CLASSES:
        raise ValueError(f"model must be one of {sorted(MODEL_CLASSES)} to be saved, got {model_class}")
    for key, value in {**model_config, **metadata}.items():
        _check_plain(key, value)
    _check_finite_weights(path, model)
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


def _check_finite_weights(path, model: torch.nn.Module) -> None:
    bad = [name for name, value in model.state_dict().items()
           if value.is_floating_point() and not bool(torch.isfinite(value).all())]
    if bad:
        raise ValueError(f"refusing to write the checkpoint {path}: the model's tensors {', '.join(bad)} hold NaN "
                         f"or infinite values (training diverged; try smaller learning rates)")


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


def load_checkpoint(path, map_location="cpu", *, task_family: Optional[str] = None) -> tuple:
    """Load a checkpoint safely (``weights_only=True``); return ``(model, payload)`` with the model rebuilt.

    ``task_family`` (``"sinusoid"`` or ``"omniglot"``): refuse checkpoints of the other family. Anything that is
    not such a checkpoint (an empty or truncated file, another kind of file, pickled objects that could run code)
    raises ``CheckpointError`` with one line saying what the file is and what was expected; nothing in it runs.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}; see the README for the command that trains it")
    if task_family is not None and task_family not in TASK_FAMILY_MODELS:
        raise ValueError(f"task_family must be one of {sorted(TASK_FAMILY_MODELS)} or None, got {task_family!r}")
    expected = _expected_text(task_family)
    payload = _read_payload(path, map_location, expected)
    _check_format(path, payload, expected)
    if task_family is not None:
        _check_task_family(path, payload, task_family, expected)
    try:
        model = MODEL_CLASSES[payload["model_class"]](**payload["model_config"])
        model.load_state_dict(payload["state_dict"])
    except (TypeError, ValueError, RuntimeError, KeyError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(f"{path} is a damaged metalearn-lite checkpoint: its weights do not fit its "
                              f"{payload['model_class']} description ({first_line})") from None
    return model, payload


def _expected_text(task_family: Optional[str]) -> str:
    if task_family is None:
        return "a metalearn-lite checkpoint (written by save_checkpoint or a training command)"
    return f"{TASK_FAMILY_NAMES[task_family]} checkpoint of metalearn-lite ({_a(TASK_FAMILY_MODELS[task_family])})"


def _a(model_class: str) -> str:
    return "an MLP" if model_class == "MLP" else f"a {model_class}"   # the model classes are MLP, Conv4, LinearModel


def _read_payload(path: Path, map_location, expected: str) -> dict:
    """``torch.load(weights_only=True)``, with every failure turned into one line about what the file is.

    Why our own words: torch's refusal of pickled objects suggests ``weights_only=False``, which would run whatever
    the file holds; a checkpoint of this package never needs it.
    """
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(f"{path} is empty (0 bytes); expected {expected}")
    try:
        with open(path, "rb") as handle:
            header = handle.read(4)
    except OSError as error:
        raise CheckpointError(f"{path} cannot be read ({error.strerror or error}); expected {expected}") from None
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:   # torch.load raises many kinds (EOFError, RuntimeError, OSError...) for such bytes
        raise CheckpointError(f"{path} {_unreadable(header, size, error)}; expected {expected}") from None
    if not isinstance(payload, dict):
        raise CheckpointError(f"{path} is a torch file holding a {type(payload).__name__}, not a checkpoint "
                              f"dict; expected {expected}")
    return payload


def _unreadable(header: bytes, size: int, error: Exception) -> str:
    """What a file is that ``torch.load(weights_only=True)`` could not read, judged by its first bytes."""
    if not (header.startswith(b"PK\x03\x04") or header.startswith(b"\x80")):   # torch's zip format, or a pickle
        return f"is not a torch file ({size} bytes)"
    if isinstance(error, pickle.UnpicklingError):
        return ("holds pickled Python objects besides tensors and numbers, so it was refused unopened (loading "
                "them could run code)")
    return f"is a truncated or damaged torch file ({size} bytes)"


def _check_format(path: Path, payload: dict, expected: str) -> None:
    if payload.get("format") == CHECKPOINT_FORMAT and payload.get("model_class") in MODEL_CLASSES:
        return
    if "format" not in payload:
        found = f"a dict with the keys {', '.join(sorted(map(str, payload))[:6]) or '(none)'}"
    elif payload["format"] != CHECKPOINT_FORMAT:
        found = f"checkpoint format {payload['format']!r}"
    else:
        found = f"model class {payload.get('model_class')!r}"
    raise CheckpointError(f"{path} is not a metalearn-lite checkpoint of format {CHECKPOINT_FORMAT} (it holds "
                          f"{found}); expected {expected}")


def _check_task_family(path: Path, payload: dict, task_family: str, expected: str) -> None:
    metadata = payload.get("metadata") if isinstance(payload.get("metadata"), dict) else {}
    found_family = metadata.get("task_family")
    model_class = payload["model_class"]
    if found_family == task_family or (found_family is None and model_class == TASK_FAMILY_MODELS[task_family]):
        return
    found = (f"{TASK_FAMILY_NAMES.get(found_family, repr(found_family))} checkpoint ({_a(model_class)})"
             if found_family else f"a checkpoint of {_a(model_class)}")
    raise CheckpointError(f"{path} is {found}; expected {expected}")
