"""Checked exercises, one module per notebook.

Each ``check_*`` function prints specific feedback (what is right, what is wrong, a hint) and returns True or
False. It never raises on a wrong answer, so a student's cell does not crash; it raises a clear ValueError only
when the answer has the wrong type or shape. ``None`` means "not answered yet" and prints a hint.
"""

from __future__ import annotations

import math
import numbers


T_975 = {3: 3.182, 9: 2.262, 49: 2.010, 599: 1.964}
"""Student's t 0.975 quantiles (``scipy.stats.t.ppf(0.975, df)``) for the sample sizes the checkers use: a student
who uses the t interval instead of the normal one gets told so."""


def feedback(correct: bool, message: str) -> bool:
    """Print ``message`` marked as correct or not, and return ``correct``."""
    print(("Correct! " if correct else "Not yet. ") + message)
    return bool(correct)


def not_answered(hint: str) -> bool:
    """The message for an answer still set to None."""
    print(f"Not answered yet -- hint: {hint}")
    return False


def as_number(name: str, answer) -> float:
    """``answer`` as a float, or a ValueError that says what was expected."""
    if hasattr(answer, "item") and getattr(answer, "ndim", 0) == 0:
        answer = answer.item()
    if isinstance(answer, bool) or not isinstance(answer, numbers.Real):
        raise ValueError(f"{name} must be a single number (e.g. 0.25), got {type(answer).__name__}: {answer!r}")
    return float(answer)


def close(a: float, b: float, rel: float = 1e-3, abs_tol: float = 1e-6) -> bool:
    """``a`` and ``b`` agree to a relative tolerance (numbers computed by hand may be rounded)."""
    return math.isfinite(a) and math.isclose(a, b, rel_tol=rel, abs_tol=abs_tol)
