"""The sinusoid adaptation explorer (notebook 4): its plain function over the slider ranges, and the widget."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch

from metalearn_lite import evaluation
from metalearn_lite.models import MLP
from metalearn_lite.widgets.sinusoid import INNER_LR_EXPONENTS, MAX_INNER_STEPS, SinusoidExplorer, sinusoid_explorer

NAMES = ("maml", "pretrained", "random")


@pytest.fixture(scope="module")
def shipped():
    model, starts, _ = evaluation.sinusoid_starts()
    return model, starts


def check_view(view, inner_steps, k_shot):
    """Every start either diverged (no fit, curve cut before the blow-up) or has finite fits and curves."""
    assert list(view.curves) == list(NAMES)
    assert view.support_X.shape == (k_shot,) and view.x.shape == view.truth.shape == (200,)
    for name in NAMES:
        curve = view.curves[name]
        assert np.all(np.isfinite(curve.query_losses)) and np.all(np.isfinite(curve.support_losses))
        assert curve.query_losses.shape[0] == 1 and curve.query_losses.shape[1] >= 1
        if view.diverged[name]:
            assert view.fits[name] is None and curve.query_losses.shape[1] <= inner_steps
        else:
            assert curve.query_losses.shape[1] == inner_steps + 1
            assert view.fits[name].shape == (200,) and np.all(np.isfinite(view.fits[name]))
            assert np.all(np.isfinite(view.step_fits[name]))


@pytest.mark.parametrize("inner_lr", [10 ** INNER_LR_EXPONENTS[0], 1e-2, 0.3, 10 ** INNER_LR_EXPONENTS[1]])
@pytest.mark.parametrize("inner_steps", [0, 1, MAX_INNER_STEPS])
@pytest.mark.parametrize("k_shot", [1, 5, evaluation.MAX_K_SHOT])
def test_explorer_data_over_slider_ranges(shipped, inner_lr, inner_steps, k_shot):
    model, starts = shipped
    view = evaluation.explorer_data(model, starts, inner_lr, inner_steps, k_shot, task_seed=3)
    check_view(view, inner_steps, k_shot)
    if inner_steps == 0 or inner_lr <= 1e-2:
        assert not any(view.diverged.values())


def test_diverging_learning_rate_is_flagged(shipped):
    model, starts = shipped
    view = evaluation.explorer_data(model, starts, inner_lr=1.0, inner_steps=20, k_shot=10, task_seed=0)
    assert view.diverged["maml"] and view.diverged["pretrained"]
    check_view(view, 20, 10)


def test_maml_adapts_better_than_pretrained_on_a_new_task(shipped):
    model, starts = shipped
    view = evaluation.explorer_data(model, starts, inner_lr=0.01, inner_steps=10, k_shot=5, task_seed=0)
    maml_curve = view.curves["maml"].query_losses[0]
    assert maml_curve[-1] < maml_curve[0]
    assert maml_curve[-1] < view.curves["pretrained"].query_losses[0, -1]


def test_more_shots_add_points_to_the_same_task(shipped):
    model, starts = shipped
    few, many = (evaluation.explorer_data(model, starts, 0.01, 1, k, task_seed=7) for k in (3, 12))
    np.testing.assert_array_equal(few.truth, many.truth)
    np.testing.assert_array_equal(few.support_X, many.support_X[:3])


def test_explorer_data_is_seeded(shipped):
    model, starts = shipped
    a, b = (evaluation.explorer_data(model, starts, 0.05, 5, 5, task_seed=11) for _ in range(2))
    np.testing.assert_array_equal(a.curves["maml"].query_losses, b.curves["maml"].query_losses)
    c = evaluation.explorer_data(model, starts, 0.05, 5, 5, task_seed=12)
    assert not np.array_equal(a.truth, c.truth)


@pytest.mark.parametrize("bad", [dict(k_shot=0), dict(k_shot=21), dict(inner_lr=0.0), dict(inner_steps=-1),
                                 dict(task_seed=-1)])
def test_explorer_data_rejects_bad_settings(shipped, bad):
    model, starts = shipped
    with pytest.raises(ValueError, match=next(iter(bad))):
        evaluation.explorer_data(model, starts, **bad)


def test_widget_over_slider_extremes():
    explorer = sinusoid_explorer(device="cpu")
    assert explorer.last_error is None and isinstance(explorer.last_data, evaluation.ExplorerView)
    for values in [dict(inner_lr=1e-4, inner_steps=0, k_shot=1), dict(inner_lr=1.0, inner_steps=20, k_shot=20),
                   dict(inner_lr=1.0, inner_steps=20, k_shot=1), dict(inner_lr=0.01, inner_steps=20, k_shot=5)]:
        data = explorer.set(**values)
        assert explorer.last_error is None, explorer.last_error
        assert (data.inner_steps, data.k_shot) == (values["inner_steps"], values["k_shot"])
        check_view(data, values["inner_steps"], values["k_shot"])
    explorer.set(inner_lr=1.0)
    assert any(explorer.last_data.diverged.values())


def test_widget_slider_values_are_rounded_and_clamped():
    explorer = sinusoid_explorer(device="cpu")
    explorer.controls["inner_lr"].value = 0.010000000000000002  # float noise from a browser
    assert explorer.last_data.inner_lr == 0.01
    explorer.controls["inner_steps"].value = 500  # an IntSlider clamps to its range
    assert explorer.last_data.inner_steps == MAX_INNER_STEPS


def test_new_task_button_samples_another_task():
    explorer = sinusoid_explorer(device="cpu")
    before = explorer.last_data.truth
    explorer.button.click()
    assert explorer.task.value == 1 and explorer.last_error is None
    assert not np.array_equal(before, explorer.last_data.truth)
    explorer.new_task()
    assert explorer.task.value == 2


def test_widget_with_custom_starts_and_device():
    starts = {name: evaluation.random_init(seed) for seed, name in enumerate(NAMES)}
    explorer = SinusoidExplorer(MLP(), starts, device=torch.device("cpu"), inner_steps=3, k_shot=4)
    check_view(explorer.last_data, 3, 4)
    with pytest.raises(ValueError, match="model"):
        sinusoid_explorer(starts=starts)


def test_widget_fast_path_redraws_the_image_in_place():
    explorer = sinusoid_explorer(device="cpu")
    figure, image = explorer.figure, explorer.image
    assert image.format == "png" and image.value[:4] == b"\x89PNG"
    for values in [dict(inner_lr=0.02), dict(inner_steps=3), dict(k_shot=12), dict(task_seed=4)]:
        before = image.value
        data = explorer.set(**values)
        assert explorer.last_error is None and image.value != before
        assert explorer.figure is figure and explorer.image is image  # one figure, one widget, for good
        for name in NAMES:  # normal settings: finite data, every start drawn
            assert not data.diverged[name] and np.all(np.isfinite(data.fits[name]))
            assert figure.fits[name].get_visible()
    assert not figure.diverged_left.get_visible() and not figure.diverged_right.get_visible()


def test_widget_fast_path_labels_a_diverging_run():
    explorer = sinusoid_explorer(device="cpu")
    before = explorer.image.value
    data = explorer.set(inner_lr=1.0, inner_steps=20)
    figure = explorer.figure
    assert explorer.last_error is None and explorer.image.value != before
    diverged = [name for name in NAMES if data.diverged[name]]
    assert diverged and figure.diverged_left.get_visible() and figure.diverged_right.get_visible()
    assert figure.diverged_left.get_text() == "diverged: " + ", ".join(diverged)
    for name in diverged:  # no fitted curve, the error curve up to the blow-up, "(diverged)" in the legend
        assert not figure.fits[name].get_visible()
        assert len(figure.curves[name].get_xdata()) == data.curves[name].query_losses.shape[1] >= 1
    assert {t.get_text() for t in figure.legend.get_texts()} >= {f"{name} (diverged)" for name in diverged}
    low, high = figure.right.get_ylim()
    assert 0 < low < high <= 1e4 and np.isfinite(high)   # capped: a blown-up curve does not stretch the axis
    figure.fig.canvas.draw()
    labels = [t.get_text() for t in figure.right.get_yticklabels()
              if t.get_text() and low <= t.get_position()[1] <= high]
    assert 2 <= len(labels) <= 8, labels
    explorer.set(inner_lr=0.01)  # back to normal: the labels go away
    assert not figure.diverged_left.get_visible() and all(figure.fits[n].get_visible() for n in NAMES)
