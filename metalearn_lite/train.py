"""Meta-training loop and checkpoints.

``meta_train`` is the package's one training loop: Adam on the MAML meta-gradient for a number of meta-steps or a
wall-clock budget, with a meta-lr schedule, a ``tqdm`` progress bar, a ``History`` of losses, an optional callback
(e.g. a live plot) and an optional validation hook that keeps the best weights. The sinusoid and Omniglot training
commands and the notebooks all call it. Checkpoints are plain dicts of tensors and
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
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Callable, Iterator, List, Optional

import torch
from tqdm.auto import tqdm

from . import __version__
from .maml import MAML
from .models import MLP, Conv4, LinearModel
from .policy import GaussianPolicy
from .tasks import TaskBatch
from .validation import require_choice, require_float, require_int

MODEL_CLASSES = {"MLP": MLP, "Conv4": Conv4, "LinearModel": LinearModel, "GaussianPolicy": GaussianPolicy}
CHECKPOINT_FORMAT = 1
TASK_FAMILY_MODELS = {"sinusoid": "MLP", "omniglot": "Conv4",   # the model class each training command writes
                      "navigation": "GaussianPolicy"}
TASK_FAMILY_NAMES = {"sinusoid": "a sinusoid", "omniglot": "an Omniglot", "navigation": "a 2-D navigation"}


SHIPPED_CHECKPOINTS = ("sinusoid_maml.pt", "sinusoid_maml_lr0.001.pt", "sinusoid_pretrained.pt",
                       "omniglot_maml_5way1shot.pt", "navigation_maml.pt", "navigation_pretrained.pt",
                       # notebook 6: the relatives at equal budgets (experiments/sinusoid.py --meta-steps 30000;
                       # experiments/beyond_maml.py, which also writes the table beyond_maml_omniglot.json)
                       *(f"sinusoid_{m}_30k.pt" for m in ("maml", "fomaml", "reptile", "anil", "meta_sgd")),
                       *(f"omniglot_{r}.pt" for r in ("maml", "fomaml", "meta_sgd", "protonet", "maml_learned_head",
                                                      "anil_learned_head", "reptile_learned_head")),
                       "beyond_maml_omniglot.json")
"""The checkpoints that ship inside the package (``metalearn_lite/checkpoints/``; the README says which command
made each)."""


def shipped_checkpoint(name: str) -> Path:
    """Where the shipped checkpoint ``name`` (one of ``SHIPPED_CHECKPOINTS``) lies: the one place that knows."""
    name = require_choice("name", name, SHIPPED_CHECKPOINTS)
    return Path(str(resources.files("metalearn_lite") / "checkpoints" / name))


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


SCHEDULES = ("constant", "cosine")


def meta_lr_at(fraction: float, meta_lr: float, schedule: str = "constant") -> float:
    """The meta learning rate at ``fraction`` (0..1) of the run: constant, or cosine from ``meta_lr`` to 0."""
    if schedule == "constant":
        return meta_lr
    return meta_lr * 0.5 * (1.0 + math.cos(math.pi * min(max(fraction, 0.0), 1.0)))


@dataclass
class History:
    """What happened during meta-training: the step number, mean query loss and accuracy of each logged step.

    Also: ``validation`` (``[step, score]`` of each validation), ``best_step`` (the weights kept: the best
    validation score, else the last step), ``meta_steps_done`` and ``wall_time_s``.
    """

    steps: List[int] = field(default_factory=list)
    losses: List[float] = field(default_factory=list)
    accuracies: List[float] = field(default_factory=list)
    validation: List[list] = field(default_factory=list)
    best_step: int = 0
    meta_steps_done: int = 0
    wall_time_s: float = 0.0

    def record(self, step: int, loss: float, accuracy: float) -> None:
        self.steps.append(step)
        self.losses.append(loss)
        self.accuracies.append(accuracy)

    def as_dict(self) -> dict:
        """The curves (what a checkpoint stores as its history)."""
        return {"steps": list(self.steps), "losses": list(self.losses), "accuracies": list(self.accuracies)}


def meta_train(maml: MAML, sample_batch: Callable[[torch.Generator], TaskBatch], meta_steps: Optional[int] = None,
               meta_lr: float = 1e-3, seed: int = 0, log_every: int = 1,
               callback: Optional[Callable[[History], None]] = None, callback_every: int = 100,
               progress: bool = True, optimizer: Optional[torch.optim.Optimizer] = None,
               minutes: Optional[float] = None, schedule: str = "constant",
               validate: Optional[Callable[[int], float]] = None, validate_every: int = 500) -> History:
    """Meta-train ``maml.model`` with Adam (the MAML paper's meta-optimiser): the package's one training loop.

    Parameters
    ----------
    sample_batch: called with a seeded ``torch.Generator``; returns the next ``TaskBatch``.
    meta_steps, minutes: stop after this many outer steps, or this many minutes of wall-clock time (at least
        one of them; whichever comes first).
    schedule: ``"constant"`` or ``"cosine"`` (from ``meta_lr`` to 0 over the run: over the steps when
        ``meta_steps`` is given, else over the elapsed fraction of ``minutes``).
    log_every: record the loss every this many steps (losses are averaged over the steps in between).
    callback: called with the ``History`` every ``callback_every`` steps and at the end (live plots).
    validate: ``validate(step) -> score`` (higher is better), called every ``validate_every`` steps and at the
        end; the model keeps the weights of the best score.
    optimizer: defaults to ``Adam(maml.model.parameters(), lr=meta_lr)``.

    Raises ``NonFiniteLossError`` at the first NaN or infinite loss, and ``TrainingInterrupted`` when Ctrl-C is
    pressed (before the next step, with the history so far; the model keeps the weights of those steps).
    """
    settings = _check_training(meta_steps, meta_lr, log_every, callback_every, minutes, schedule, validate_every)
    meta_steps, meta_lr, log_every, callback_every, minutes, schedule, validate_every = settings
    optimizer = optimizer or torch.optim.Adam(maml.model.parameters(), lr=meta_lr)
    generator = torch.Generator().manual_seed(seed)
    history, window, best = History(), _Window(), _Best(maml.model)
    clock = _Clock(meta_steps, minutes)
    bar = tqdm(total=meta_steps, desc="meta-training", disable=not progress, mininterval=0.5)
    with stop_requests() as stop_requested:
        while not clock.finished(history.meta_steps_done):
            step = history.meta_steps_done
            if stop_requested():
                window.flush(history, step)
                history.wall_time_s = clock.elapsed()
                bar.close()
                raise TrainingInterrupted(step, history)
            for group in optimizer.param_groups:
                group["lr"] = meta_lr_at(clock.fraction(step), meta_lr, schedule)
            result = maml.meta_step(sample_batch(generator), optimizer)
            history.meta_steps_done = step = step + 1
            window.add(result)
            check_finite_loss(step, window.losses[-1], inner_lr=maml.inner_lr,
                              meta_lr=optimizer.param_groups[0]["lr"])
            bar.update()
            if step % log_every == 0:
                window.flush(history, step)
                bar.set_postfix(loss=f"{history.losses[-1]:.3f}", refresh=False)
            if callback is not None and step % callback_every == 0:
                callback(history)
            if validate is not None and step % validate_every == 0:
                best.offer(history, step, validate(step))
    bar.close()
    step = history.meta_steps_done
    if window.flush(history, step) and callback is not None and step % callback_every != 0:
        callback(history)
    if validate is not None and (not history.validation or history.validation[-1][0] != step):
        best.offer(history, step, validate(step))
    history.best_step = best.restore(history, step)
    history.wall_time_s = clock.elapsed()
    return history


def _check_training(meta_steps, meta_lr, log_every, callback_every, minutes, schedule, validate_every) -> tuple:
    if meta_steps is None and minutes is None:
        raise ValueError("meta_train needs meta_steps or minutes (or both): how long to train")
    return (None if meta_steps is None else require_int("meta_steps", meta_steps, minimum=0),
            require_float("meta_lr", meta_lr, positive=True), require_int("log_every", log_every, minimum=1),
            require_int("callback_every", callback_every, minimum=1),
            None if minutes is None else require_float("minutes", minutes, positive=True),
            require_choice("schedule", schedule, SCHEDULES), require_int("validate_every", validate_every, minimum=1))


class _Clock:
    """When the run ends (steps or wall-clock budget) and how far along it is (for the schedule)."""

    def __init__(self, meta_steps: Optional[int], minutes: Optional[float]):
        self.meta_steps, self.budget_s = meta_steps, None if minutes is None else 60.0 * minutes
        self.start = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def finished(self, step: int) -> bool:
        return ((self.meta_steps is not None and step >= self.meta_steps)
                or (self.budget_s is not None and self.elapsed() >= self.budget_s))

    def fraction(self, step: int) -> float:
        if self.meta_steps is not None:
            return step / max(self.meta_steps, 1)
        return self.elapsed() / self.budget_s


class _Window:
    """Losses and accuracies of the steps since the last log; logged as their mean."""

    def __init__(self):
        self.losses, self.accuracies = [], []

    def add(self, result) -> None:
        self.losses.append(float(result.loss))
        self.accuracies.append(float(result.accuracy))

    def flush(self, history: History, step: int) -> bool:
        """Record the window's mean at ``step`` (if it holds any step) and empty it; True if it did."""
        if not self.losses:
            return False
        history.record(step, sum(self.losses) / len(self.losses), sum(self.accuracies) / len(self.accuracies))
        self.losses, self.accuracies = [], []
        return True


class _Best:
    """The weights with the best validation score so far."""

    def __init__(self, model: torch.nn.Module):
        self.model, self.score, self.step, self.state = model, -math.inf, None, None

    def offer(self, history: History, step: int, score: float) -> None:
        history.validation.append([step, round(float(score), 4)])
        if score > self.score:
            self.score, self.step = score, step
            self.state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def restore(self, history: History, last_step: int) -> int:
        """Load the best weights into the model (if any validation ran); return the step they come from."""
        if self.state is None:
            return last_step
        self.model.load_state_dict(self.state)
        return self.step


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
