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
