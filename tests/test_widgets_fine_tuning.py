import numpy as np
import pytest
import torch

from metalearn_lite import baselines
from metalearn_lite.models import MLP
from metalearn_lite.widgets.fine_tuning import INNER_LR_EXPONENTS, MAX_K_SHOT, MAX_INNER_STEPS, fine_tuning_explorer


@pytest.fixture(scope="module")
def small_setup():
    torch.manual_seed(0)
    model = MLP(hidden=(16, 16))
    random = baselines.snapshot(model)
    with torch.no_grad():
        shifted = {k: v * 0.5 for k, v in random.items()}
    return model, {"random": random, "pretrained": shifted}


def test_plain_function_over_the_slider_range(small_setup):
    model, starts = small_setup
    for lr in np.logspace(INNER_LR_EXPONENTS[0], INNER_LR_EXPONENTS[1], 5):
        for steps in (0, MAX_INNER_STEPS):
            view = baselines.fine_tuning_data(starts, task_seed=1, k_shot=MAX_K_SHOT, inner_lr=float(lr),
                                              inner_steps=steps, model=model, n_grid=40)
            for name, curve in view.curves.items():
                assert np.isfinite(curve.query_losses).all()
                assert (view.fits[name] is None) == curve.diverged
                if not curve.diverged:
                    assert curve.query_losses.shape == (1, steps + 1) and np.isfinite(view.fits[name]).all()
            if lr <= 1e-3:
                assert not any(view.diverged.values())
            if lr >= 1.0 and steps == MAX_INNER_STEPS:
                assert view.diverged["random"]


def test_explorer_follows_the_sliders(small_setup):
    model, starts = small_setup
    explorer = fine_tuning_explorer(model, starts, task_seed=0, k_shot=5, inner_lr=0.01, inner_steps=5)
    first = explorer.last_data
    assert set(first.curves) == {"random", "pretrained"} and first.support_X.shape == (5,)
    explorer.controls["task_seed"].value = 7
    assert not np.allclose(explorer.last_data.truth, first.truth)
    explorer.controls["k_shot"].value = 1
    assert explorer.last_data.support_X.shape == (1,)
    explorer.set(k_shot=MAX_K_SHOT, inner_lr=1.0, inner_steps=MAX_INNER_STEPS)
    assert explorer.last_data.diverged["random"] and explorer.last_error is None
    explorer.set(inner_steps=0)
    assert explorer.last_data.curves["random"].query_losses.shape == (1, 1)


def test_the_explorer_draws_notebook_4s_live_figure_in_place(small_setup):
    model, starts = small_setup
    explorer = fine_tuning_explorer(model, starts, task_seed=0, k_shot=5, inner_lr=0.01, inner_steps=5)
    figure = explorer.draw
    assert explorer.live and explorer.image.value[:4] == b"\x89PNG"
    assert figure.left.title.get_text() == "Fitted functions after 5 steps, K=5"
    explorer.set(k_shot=3, inner_lr=0.02)
    assert figure.left.title.get_text().endswith("K=3")
    assert figure.right.title.get_text() == "Adaptation, inner lr = 0.02"
    np.testing.assert_allclose(figure.curves["random"].get_ydata(),
                               explorer.last_data.curves["random"].query_losses.mean(axis=0))
    explorer.set(task_seed=7, k_shot=MAX_K_SHOT, inner_lr=1.0, inner_steps=MAX_INNER_STEPS)   # random diverges
    assert figure.diverged_left.get_visible() and "random" in figure.diverged_left.get_text()
    assert not figure.fits["random"].get_visible() and explorer.last_error is None
