"""Exercises of notebook 6 (beyond MAML). Exercise 1 (find the bug in a MAML step) is checked by notebook 4's
``check_maml_step``, which diagnoses each wrong implementation of the gallery."""

from __future__ import annotations

from . import feedback, not_answered

ZERO_HEAD_QUESTION = {
    "a": "ANIL's meta-gradient skips the second-order term through the convolutions, so it is a first-order method.",
    "b": "Nothing: with one step from a zero head, the inner step changes only the head in both.",
    "c": "MAML also adapts the batch-norm parameters, which ANIL keeps frozen, so MAML adapts more.",
    "d": "ANIL needs a learned head; with a zero head it cannot adapt at all.",
}


def check_zero_head_anil(answer) -> bool:
    """Which of ``ZERO_HEAD_QUESTION`` is right: with a zero head and one inner step, what separates MAML from
    ANIL? ("b": at a zero head the inner gradient reaching the body is exactly zero.)"""
    if answer is None:
        return not_answered("write down the inner gradient of the loss with respect to a convolution weight when the "
                            "head's weights are all zero. What does the step then change?")
    key = str(answer).strip().lower()
    if key not in ZERO_HEAD_QUESTION:
        raise ValueError(f'answer with "a", "b", "c" or "d", got {answer!r}')
    explanations = {
        "a": "no: both differentiate through the inner step (second order) to the body. The body's gradient flows "
             "through the adapted head, which depends on the body's features.",
        "b": "yes: the loss depends on the body only through head.weight @ features, so at head.weight = 0 the "
             "gradient reaching every body parameter (convolutions and batch norm alike) is zero. One step from a "
             "zero head adapts the head only: exactly ANIL's inner loop. From the second step on they differ.",
        "c": "no: batch-norm scales and shifts are body parameters too, and their inner gradient is zero as well at a "
             "zero head (the head's zero weights block every path to the body).",
        "d": "no: one step from a zero head gives each class a centred prototype as its weights (notebook 5's "
             "Exercise 2): ANIL adapts fine, and so does MAML, the same way.",
    }
    return feedback(key == "b", explanations[key])
