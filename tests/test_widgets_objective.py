import numpy as np
import pytest

from metalearn_lite import landscape
from metalearn_lite.widgets.objective import INNER_LR_EXPONENTS, MAX_INNER_STEPS, objective_explorer


@pytest.mark.parametrize("inner_steps", [0, 1, 5, MAX_INNER_STEPS])
def test_plain_function_over_the_slider_range(inner_steps):
    batch = landscape.teaching_batch(n_tasks=10)
    for inner_lr in np.logspace(INNER_LR_EXPONENTS[0], INNER_LR_EXPONENTS[1], 7):
        view = landscape.objective_data(float(inner_lr), inner_steps, batch=batch, resolution=21)
        assert view.meta_loss.shape == (21, 21) and np.isfinite(view.meta_loss).all()
        assert all(np.isfinite(w).all() for w in view.starts.values())
        for name, curve in view.curves.items():
            assert np.isfinite(curve).all() and len(curve) >= 1
            assert view.curve_diverged[name] == (len(curve) < max(10, inner_steps) + 1)
        assert view.diverged == (view.spectral_radius > 1 or any(view.curve_diverged.values()))
        if inner_lr <= 0.1:
            assert not view.diverged
        if inner_lr >= 1.0:
            assert view.diverged and view.curve_diverged["zero"]


def test_explorer_follows_the_sliders():
    explorer = objective_explorer(inner_lr=0.1, inner_steps=1)
    assert not explorer.last_data.diverged and explorer.last_data.inner_steps == 1
    explorer.controls["inner_steps"].value = MAX_INNER_STEPS
    assert explorer.last_data.inner_steps == MAX_INNER_STEPS
    explorer.controls["inner_lr"].value = 1.0
    assert explorer.last_data.diverged and explorer.last_error is None
    explorer.controls["inner_steps"].value = 0
    view = explorer.last_data
    np.testing.assert_allclose(view.starts["MAML w*"], view.starts["pretrained"])


def test_the_explorer_updates_one_figure_and_keeps_its_colour_scale_over_small_moves():
    from metalearn_lite.plots.landscape import level_window, log_meta_loss
    explorer = objective_explorer(inner_lr=0.3, inner_steps=3)
    figure = explorer.draw
    assert explorer.live and explorer.image.value[:4] == b"\x89PNG"
    view = explorer.last_data
    shown = figure.image.get_array()
    np.testing.assert_allclose(np.asarray(shown), log_meta_loss(view))   # the landscape itself, not a copy of it
    low, high = figure.window
    finite = log_meta_loss(view)
    assert low <= finite.min() and np.percentile(finite, 97) <= high
    star = figure.markers["MAML w*"].get_xydata()[0]
    np.testing.assert_allclose(star, view.starts["MAML w*"])
    assert figure.step_line.get_xdata()[0] == 3
    assert figure.left.title.get_text().startswith("Meta-loss, α = 0.3, 3 inner step(s)")
    # a scale that still holds the landscape and is at least half filled by it is kept
    assert level_window(finite, (low - 0.25, high)) == (low - 0.25, high)
    assert level_window(finite, (low - 10, high + 10)) == (low, high)
    explorer.set(inner_lr=1.0)
    assert figure.left_badge.get_visible() and "(diverged)" in figure.legend.get_texts()[2].get_text()
    assert explorer.last_error is None


def test_the_background_is_drawn_once_whatever_the_sliders_show():
    # new decades on the adaptation axis and "(diverged)" legend labels are redrawn over one cached background:
    # a full redraw per such move was the explorer's slowest case
    explorer = objective_explorer(inner_lr=0.3, inner_steps=3)
    figure = explorer.draw
    for move in ({"inner_lr": 0.001}, {"inner_lr": 0.7}, {"inner_steps": MAX_INNER_STEPS}, {"inner_lr": 1.0},
                 {"inner_steps": 0}, {"inner_lr": 0.05}):
        explorer.set(**move)
        assert explorer.last_error is None
    assert figure.n_full_draws == 1
    explorer.set(inner_lr=1.0, inner_steps=MAX_INNER_STEPS)
    assert figure.right.get_ylim()[1] > 100 and figure.n_full_draws == 1


def test_the_pasted_colour_bar_is_pixel_for_pixel_the_drawn_one():
    # the colour bar is drawn once per colour scale and pasted after that: every picture must equal drawing it anew
    from metalearn_lite.plots.landscape import ObjectiveExplorerFigure
    explorer = objective_explorer(inner_lr=0.3, inner_steps=3)
    reference = ObjectiveExplorerFigure(max_inner_steps=MAX_INNER_STEPS)
    reference._pasted.clear()   # every dynamic artist drawn on every move
    windows = set()
    for move in ({"inner_lr": 0.001}, {"inner_lr": 0.7}, {"inner_lr": 0.3}, {"inner_lr": 1.0}, {"inner_lr": 0.3},
                 {"inner_steps": 0}, {"inner_lr": 0.001}):
        explorer.set(**move)
        reference.render(explorer.last_data)
        windows.add(explorer.draw.window)
        np.testing.assert_array_equal(np.asarray(explorer.draw.canvas.buffer_rgba()),
                                      np.asarray(reference.canvas.buffer_rgba()))
    assert len(windows) >= 2 and len(explorer.draw._regions) == len(windows)
