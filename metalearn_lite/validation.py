"""Argument checks that fail early with a message naming the parameter and what is allowed.

Every public function of the package validates its configuration with these helpers *before* any tensor work,
so a student sees ``ValueError: inner_steps must be an integer >= 0, got -1`` instead of a traceback from torch.
"""

from __future__ import annotations

import math
import numbers


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
