import numpy as np
import pytest

from metalearn_lite import descent
from metalearn_lite.widgets.descent import LR_EXPONENTS, MAX_STEPS, descent_explorer

LRS = np.logspace(LR_EXPONENTS[0], LR_EXPONENTS[1], 9)


@pytest.mark.parametrize("name", descent.OBJECTIVE_NAMES)
def test_plain_function_over_the_whole_slider_range(name):
    for lr in LRS:
        for steps in (1, 50, MAX_STEPS):
            path = descent.descent_data(name, float(lr), steps)
            assert np.isfinite(path.points).all() and np.isfinite(path.losses).all()
            assert len(path.losses) == (path.diverged_at if path.diverged else steps + 1)
            if name in ("parabola_1d", "well_conditioned", "ill_conditioned"):
                critical = descent.critical_learning_rate(name)
                if lr < 0.99 * critical:
                    assert not path.diverged
                if lr > 1.5 * critical and steps == MAX_STEPS:
                    assert path.diverged


def test_explorer_redraws_and_flags_divergence():
    explorer = descent_explorer("ill_conditioned", lr=0.05, steps=30)
    assert not explorer.last_data.diverged and explorer.last_data.lr == 0.05
    explorer.controls["lr"].value = 10.0  # the top of the log slider
    assert explorer.last_data.diverged and explorer.last_data.diverged_at <= 2
    explorer.controls["lr"].value = 0.001  # the bottom: slow but sound
    explorer.controls["steps"].value = MAX_STEPS
    data = explorer.last_data
    assert not data.diverged and len(data.losses) == MAX_STEPS + 1 and data.losses[-1] < data.losses[0]
    explorer.controls["objective"].value = "double_well_1d"
    assert explorer.last_data.objective.dim == 1 and explorer.last_error is None


def test_the_loss_menu_shows_names_a_student_reads():
    explorer = descent_explorer("ill_conditioned", lr=0.05, steps=10)
    menu = explorer.controls["objective"]
    assert menu.value == "ill_conditioned"
    labels = [label for label, _ in menu.options]
    assert all("_" not in label for label in labels) and menu.label == "narrow valley (curvatures 1, 20)"
    menu.value = "double_well_1d"
    assert explorer.last_data.objective.name == "double_well_1d"


def test_the_explorer_updates_one_figure_in_place_and_redraws_only_what_moved():
    explorer = descent_explorer("ill_conditioned", lr=0.05, steps=30)
    figure = explorer.draw
    assert explorer.live and explorer.image.value[:8] == b"\x89PNG\r\n\x1a\n"
    full_draws = figure.n_full_draws
    explorer.set(lr=0.06)   # same loss, same step axis: the cached background is reused
    assert figure.n_full_draws == full_draws and figure.right.title.get_text() == "Loss vs step, lr = 0.06"
    path = figure.path.get_xydata()
    np.testing.assert_allclose(path, explorer.last_data.points)
    explorer.set(lr=10.0)   # diverges: badges name the run and the step, the path stops where it leaves the view
    assert figure.left_badge.get_visible() and figure.right_badge.get_visible()
    assert figure.left_badge.get_text() == f"lr = 10 diverged at step {explorer.last_data.diverged_at}"
    assert len(figure.path.get_xdata()) <= len(explorer.last_data.points)
    explorer.set(lr=0.05, objective="double_well_1d")   # a 1-D loss: the path lies on the loss curve
    assert not figure.left_badge.get_visible() and figure.objective_name == "double_well_1d"
    xs, ys = figure.path.get_data()
    np.testing.assert_allclose(xs, explorer.last_data.points[:, 0])
    np.testing.assert_allclose(ys, explorer.last_data.losses)
    assert figure.left.get_aspect() == "auto" and explorer.last_error is None


def test_an_exact_landing_on_the_minimum_is_drawn_at_the_floor_of_the_gap_axis():
    from metalearn_lite.plots.descent import GAP_FLOOR, GAP_LIMITS
    one_step = descent.critical_learning_rate("parabola_1d") / 2   # lr = 1/h: the minimum in one step
    explorer = descent_explorer("parabola_1d", lr=one_step, steps=5)
    gaps = explorer.draw.curve.get_ydata()
    assert gaps.min() == GAP_FLOOR and explorer.draw.right.get_ylim() == GAP_LIMITS
