"""Argument checks that fail early with a message naming the parameter and what is allowed.

Every public function of the package validates its configuration with these helpers *before* any tensor work,
so a student sees ``ValueError: inner_steps must be an integer >= 0, got -1`` instead of a traceback from torch.
The tensor checks below are cheap (a few reductions) and run once per public call, never per inner step; they only
check (or, for float precision and integer label dtypes, convert losslessly or with a warning), so valid input gives
the same numbers as without them.
"""

from __future__ import annotations

import math
import numbers
import os
import warnings
from typing import Mapping

import torch


def require_int(name: str, value, minimum: int | None = None, maximum: int | None = None) -> int:
    """Return ``value`` as an int, or raise ValueError naming ``name`` and the allowed range."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer{_range_text(minimum, maximum)}, got {value!r}")
    value = int(value)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ValueError(f"{name} must be an integer{_range_text(minimum, maximum)}, got {value}")
    return value


def require_float(name: str, value, minimum: float | None = None, maximum: float | None = None,
                  positive: bool = False) -> float:
    """Return ``value`` as a finite float, or raise ValueError naming ``name`` and the allowed range.

    ``positive=True`` demands ``value > 0`` (for learning rates), in addition to ``minimum``/``maximum``.
    """
    allowed = ("a positive number" if positive else "a number") + _range_text(minimum, maximum)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    value = float(value)
    too_small = (minimum is not None and value < minimum) or (positive and value <= 0)
    too_large = maximum is not None and value > maximum
    if not math.isfinite(value) or too_small or too_large:
        raise ValueError(f"{name} must be {allowed}, got {value}")
    return value


def require_choice(name: str, value, choices) -> str:
    """Return ``value`` if it is one of ``choices``, else raise ValueError listing them."""
    if value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {listed}, got {value!r}")
    return value


def _range_text(minimum, maximum) -> str:
    if minimum is not None and maximum is not None:
        return f" in [{minimum}, {maximum}]"
    if minimum is not None:
        return f" >= {minimum}"
    if maximum is not None:
        return f" <= {maximum}"
    return ""


# ---------------------------------------------------------------------------------------------------------------
# Tensors: parameter dicts, dtypes, labels. Cheap (a few reductions), so they can run once per public call.


def require_params(params, model, name: str = "params") -> dict:
    """Return ``params`` as a dict if its keys are exactly the parameters of ``model`` (buffers may be added).

    ``functional_call`` silently falls back to the module's own tensor for a missing key and ignores an unknown
    one, so either mistake would compute with weights nobody asked for.
    """
    from .models import structure  # models imports this module
    if not isinstance(params, Mapping):
        raise ValueError(f"{name} must be a dict of parameter name -> tensor (e.g. maml.parameters_of(model)), "
                         f"got {type(params).__name__}")
    known = structure(model)
    expected = known.parameters
    if tuple(params) == expected:  # the usual case, in the usual order: nothing more to look at
        return dict(params)
    missing = [key for key in expected if key not in params]
    if missing:
        raise ValueError(f"{name} is missing {_keys(missing)}: expected the keys of "
                         f"{type(model).__name__}.named_parameters() ({_keys(expected)}), got {_keys(params)}")
    allowed = set(expected) | known.buffers
    unknown = [key for key in params if key not in allowed]
    if unknown:
        raise ValueError(f"{name} has unknown {_keys(unknown)}, not a parameter of {type(model).__name__} "
                         f"(expected {_keys(expected)})")
    return dict(params)


def first_nonfinite(params: Mapping) -> str | None:
    """The name of the first tensor in ``params`` with a NaN or infinite entry, or None."""
    flags = torch.stack([torch.isfinite(t).all() for t in params.values()]).tolist() if params else []
    return next((key for key, ok in zip(params, flags) if not ok), None)


def require_finite(name: str, params: Mapping) -> None:
    """Raise ValueError naming the first tensor of ``params`` that holds NaN or infinite values."""
    bad = first_nonfinite(params)
    if bad is not None:
        tensor = params[bad]
        count = int((~torch.isfinite(tensor)).sum())
        raise ValueError(f"{name}[{bad!r}] has {count} non-finite value(s) (NaN or inf) out of {tensor.numel()}: "
                         f"expected finite weights; a diverged training run (learning rate too large) gives these")


def as_dtype(name: str, X: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``X`` in the floating ``dtype`` of the weights: converted when ``X`` holds floats of another precision
    (unambiguous; the caller warns once, see ``warn_converted``), refused when it holds integers (are pixels
    0..255 or 0..1?)."""
    if X.dtype == dtype:
        return X
    if not X.is_floating_point():
        raise ValueError(f"{name} must hold floating-point numbers of dtype {dtype} (the weights' dtype), got "
                         f"{X.dtype}; convert it yourself, e.g. X.to({dtype}) (images: scaled to [0, 1])")
    return X.to(dtype)


def warn_converted(names, given: torch.dtype, dtype: torch.dtype, stacklevel: int = 3) -> None:
    """The one-time note that inputs were converted. The text carries no values, so Python's default warning
    filter shows it once per call site, not on every step of a training loop."""
    warnings.warn(f"{' and '.join(names)} {'have' if len(names) > 1 else 'has'} dtype {given} but the weights are "
                  f"{dtype}: converting the inputs to {dtype}", UserWarning, stacklevel=stacklevel + 1)


def require_labels(name: str, y: torch.Tensor, n_classes: int | None) -> torch.Tensor:
    """Class labels as int64 in ``[0, n_classes)``; other integer dtypes are converted (losslessly)."""
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise ValueError(f"{name} must hold integer class labels in [0, {n_classes or 'n_classes'}) for "
                         f"loss='cross_entropy', got dtype {y.dtype}")
    if y.numel():
        low, high = (int(v) for v in torch.aminmax(y))
        if low < 0 or (n_classes is not None and high >= n_classes):
            allowed = f"[0, {n_classes - 1}] (the model has {n_classes} outputs)" if n_classes else ">= 0"
            raise ValueError(f"{name} must hold class labels in {allowed}, got labels from {low} to {high}")
    return y if y.dtype == torch.int64 else y.long()


def _keys(keys) -> str:
    keys = list(keys)
    shown = ", ".join(repr(k) for k in keys[:8]) + (", ..." if len(keys) > 8 else "")
    return f"key{'s' if len(keys) != 1 else ''} {shown}" if keys else "no keys"


# ---------------------------------------------------------------------------------------------------------------
# Memory: refuse settings whose autograd graph would not fit, before any work starts.

FALLBACK_MEMORY_BYTES = 2 * 1024 ** 3
"""Assumed free memory where the system does not say (Binder's per-user limit is about this)."""


def available_memory(device=None) -> int:
    """Bytes that can still be allocated on ``device`` (CPU: the smaller of the system's MemAvailable and the
    container's cgroup limit, which /proc/meminfo does not show; CUDA: the driver's free memory)."""
    device = torch.device(device if device is not None else "cpu")
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    readings = [r for r in (_meminfo_available(), _cgroup_available()) if r is not None]
    if readings:
        return min(readings)
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):  # not a POSIX system (Windows)
        return FALLBACK_MEMORY_BYTES


def require_memory(what: str, estimate: int, device=None, advice: str = "") -> None:
    """Raise ValueError when ``estimate`` bytes exceed the memory available on ``device``."""
    available = available_memory(device)
    if estimate > available:
        raise ValueError(f"{what} would need about {format_bytes(estimate)} of memory, but only "
                         f"{format_bytes(available)} is available{'; ' + advice if advice else ''}")


def format_bytes(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_available() -> int | None:
    pairs = (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),                        # cgroup v2
             ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"))  # v1
    for limit_path, usage_path in pairs:
        try:
            with open(limit_path) as f:
                limit = f.read().strip()
            with open(usage_path) as f:
                usage = int(f.read().strip())
        except (OSError, ValueError):
            continue
        if limit.isdigit() and int(limit) < 2 ** 60:  # "max" or a huge number: no limit
            return max(0, int(limit) - usage)
    return None
