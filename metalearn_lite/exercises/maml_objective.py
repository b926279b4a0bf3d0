"""Exercises of notebook 3 (the MAML objective), on one scalar linear-regression task.

The toy problem: model ``f(x) = w x``, squared error, one support point ``(x_s, y_s) = (1, 2)``, one query point
``(x_q, y_q) = (2, 3)``, inner learning rate ``alpha = 0.15``, initialisation ``w = 0.5``, one inner step.
"""

from __future__ import annotations

import torch

from . import as_number, close, feedback, not_answered

TOY = {"w": 0.5, "x_s": 1.0, "y_s": 2.0, "x_q": 2.0, "y_q": 3.0, "alpha": 0.15}


def toy_values(w=TOY["w"], x_s=TOY["x_s"], y_s=TOY["y_s"], x_q=TOY["x_q"], y_q=TOY["y_q"], alpha=TOY["alpha"]):
    """The hand derivation as numbers: adapted weight, its derivative, and the two meta-gradients."""
    support_grad = 2 * x_s * (w * x_s - y_s)
    w_adapted = w - alpha * support_grad
    jacobian = 1 - 2 * alpha * x_s ** 2
    query_grad = 2 * x_q * (w_adapted * x_q - y_q)
    return {"w_adapted": w_adapted, "jacobian": jacobian, "first_order": query_grad,
            "second_order": jacobian * query_grad, "query_grad_at_w": 2 * x_q * (w * x_q - y_q)}


def check_meta_gradient(answer) -> bool:
    """``d L_Q(w') / d w`` for the toy problem (second order, the exact MAML meta-gradient)."""
    if answer is None:
        return not_answered("chain rule: d L_Q(w')/dw = L_Q'(w') * dw'/dw with w' = w - alpha * L_S'(w). "
                            "Compute w' first, then dw'/dw = 1 - alpha * L_S''(w).")
    value = as_number("the meta-gradient", answer)
    v = toy_values()
    if close(value, v["second_order"]):
        return feedback(True, f"w' = {v['w_adapted']:.2f}, dw'/dw = {v['jacobian']:.2f}, "
                              f"L_Q'(w') = {v['first_order']:.2f}, so the meta-gradient is "
                              f"{v['jacobian']:.2f} * {v['first_order']:.2f} = {v['second_order']:.3f}.")
    if close(value, v["first_order"]):
        return feedback(False, f"{value:.3f} is L_Q'(w'): the *first-order* approximation. Multiply by "
                               "dw'/dw = 1 - 2 alpha x_s^2, the factor that carries the second-order term.")
    if close(value, v["query_grad_at_w"]):
        return feedback(False, "you differentiated the query loss at w, not at the adapted w'. "
                               "MAML scores the parameters *after* the inner step.")
    if close(value, v["jacobian"] * v["query_grad_at_w"]):
        return feedback(False, "right Jacobian, but evaluate L_Q' at the adapted w' = "
                               "w - alpha * 2 x_s (w x_s - y_s), not at w.")
    return feedback(False, f"{value:.3f} is not it. Hint: first compute w' (it should be larger than w, "
                           "since the support point wants w = 2).")


def check_inner_update(inner_update) -> bool:
    """A differentiable inner step ``inner_update(w, x_s, y_s, alpha) -> w'`` on torch tensors.

    Checks the value of ``w'`` and that the meta-gradient flows through it: ``dw'/dw`` must be
    ``1 - 2 alpha x_s^2``, not 1 (first order) and not missing (detached).
    """
    if inner_update is None:
        return not_answered("compute the support loss (w * x_s - y_s)**2, its gradient with "
                            "torch.autograd.grad(..., create_graph=True), and return w - alpha * gradient.")
    if not callable(inner_update):
        raise ValueError("the answer must be a function inner_update(w, x_s, y_s, alpha), got "
                         f"{type(inner_update).__name__}")
    v = toy_values()
    w = torch.tensor(TOY["w"], dtype=torch.float64, requires_grad=True)
    args = [torch.tensor(TOY[k], dtype=torch.float64) for k in ("x_s", "y_s")]
    try:
        w_adapted = inner_update(w, *args, TOY["alpha"])
    except Exception as error:
        return feedback(False, f"your function raised {type(error).__name__}: {error}")
    if not isinstance(w_adapted, torch.Tensor):
        return feedback(False, f"return a torch tensor (got {type(w_adapted).__name__}); .item() or float() "
                               "cut the graph, and then no meta-gradient can flow back to w.")
    if w_adapted.numel() != 1:
        return feedback(False, f"w' should be a single number like w, got shape {tuple(w_adapted.shape)}.")
    if not close(float(w_adapted.detach()), v["w_adapted"]):
        return feedback(False, f"w' should be {v['w_adapted']:.3f}, got {float(w_adapted.detach()):.3f}. "
                               "Hint: gradient of (w x_s - y_s)^2 is 2 x_s (w x_s - y_s); subtract alpha times it.")
    if not w_adapted.requires_grad:
        return feedback(False, "the value is right but w' is detached from w (torch.no_grad, .detach() or a "
                               "new tensor): the outer loop could not differentiate through the inner step.")
    (jacobian,) = torch.autograd.grad(w_adapted.reshape(()), w, allow_unused=True)
    if jacobian is None:
        return feedback(False, "w' does not depend on w in the graph; build it from w itself.")
    if close(float(jacobian), 1.0):
        return feedback(False, "dw'/dw came out as 1: the inner gradient was treated as a constant (first order)."
                               " Use torch.autograd.grad(..., create_graph=True) so it stays differentiable.")
    if not close(float(jacobian), v["jacobian"]):
        return feedback(False, f"dw'/dw should be 1 - 2 alpha x_s^2 = {v['jacobian']:.2f}, got {float(jacobian):.3f}.")
    return feedback(True, f"w' = {float(w_adapted.detach()):.2f} and dw'/dw = {float(jacobian):.2f}: the inner step is a "
                          "differentiable function of w, so the meta-gradient flows through it.")
