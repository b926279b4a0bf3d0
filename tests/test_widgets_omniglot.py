"""Notebook 5's episode explorer: the plain compute function and the widget over their slider ranges."""

import math

import matplotlib
import numpy as np
import pytest
import torch

matplotlib.use("Agg")

from metalearn_lite.data import load_omniglot  # noqa: E402
from metalearn_lite.maml import parameters_of  # noqa: E402
from metalearn_lite.models import Conv4  # noqa: E402
from metalearn_lite.few_shot import episode_adaptation  # noqa: E402
from metalearn_lite.plots.episodes import draw_episode_adaptation  # noqa: E402
from metalearn_lite.widgets.omniglot import MAX_INNER_STEPS, episode_explorer  # noqa: E402
from metalearn_lite.data.settings import get_data_dir

# Found only through the package's data-folder setting (METALEARN_DATA, else its default folder);
# conftest.py makes sure the files are there, once, before the first test that needs them.
DATA_DIR = get_data_dir()
pytestmark = pytest.mark.omniglot


@pytest.fixture(scope="module")
def setting():
    torch.manual_seed(0)
    model = Conv4(n_way=5, hidden_channels=8)
    params = parameters_of(model)
    return model, params, load_omniglot("test", data_dir=DATA_DIR, download=False)


def check_data(data, inner_steps):
    assert data["steps"].tolist() == list(range(inner_steps + 1))
    assert data["accuracies"].shape == (inner_steps + 1,) and data["support_losses"].shape == (inner_steps + 1,)
    assert data["predictions"].shape == (25,)
    assert data["accuracies"][0] == pytest.approx(0.2)  # zero head: every class ties, argmax says class 0
    if data["diverged"]:
        assert math.isnan(data["accuracy"])
    else:
        assert 0.0 <= data["accuracy"] <= 1.0 and np.isfinite(data["accuracies"]).all()


@pytest.mark.parametrize("inner_lr", [1e-3, 0.05, 0.4, 2.0, 10.0])
@pytest.mark.parametrize("inner_steps", [0, 1, 7, MAX_INNER_STEPS])
def test_compute_over_the_slider_ranges(setting, inner_lr, inner_steps):
    model, params, characters = setting
    data = episode_adaptation(inner_lr, inner_steps, 3, model, params, characters)
    check_data(data, inner_steps)


def test_diverging_learning_rate_is_marked_and_drawn(setting):
    model, params, characters = setting
    data = episode_adaptation(1e4, 5, 0, model, params, characters)
    assert data["diverged"] and math.isnan(data["accuracy"])
    fig = draw_episode_adaptation(data)
    texts = [t.get_text() for ax in fig.axes for t in ax.texts] + [fig._suptitle.get_text()]
    assert any("diverged" in t for t in texts)


def test_cache_gives_the_same_numbers_as_a_fresh_computation(setting):
    model, params, characters = setting
    cache = {}
    for steps in (4, 12, 2):
        cached = episode_adaptation(0.4, steps, 1, model, params, characters, cache=cache)
        fresh = episode_adaptation(0.4, steps, 1, model, params, characters)
        np.testing.assert_allclose(cached["accuracies"], fresh["accuracies"])
        assert torch.equal(cached["predictions"], fresh["predictions"])


def test_explorer_sliders_and_new_episode_button(setting):
    model, params, characters = setting
    explorer = episode_explorer(model, params, characters)
    for name, control in explorer.controls.items():
        for value in (control.min, control.max):
            value = 10 ** value if name == "inner_lr" else value
            data = explorer.set(**{name: value})
            assert explorer.explorer.last_error is None, (name, value)
            check_data(data, explorer.controls["inner_steps"].value)
    explorer.set(inner_lr=10.0, inner_steps=MAX_INNER_STEPS, episode=0)
    assert explorer.explorer.last_error is None
    before = explorer.controls["episode"].value
    explorer.new_episode()
    assert explorer.last_data["episode"] == before + 1
    explorer.controls["episode"].value = explorer.controls["episode"].max
    explorer.button.click()
    assert explorer.last_data["episode"] == 0


def test_right_and_wrong_are_marked_not_only_coloured(setting):
    from metalearn_lite.plots.episodes import RIGHT_COLOR, WRONG_COLOR, episode_mosaic
    model, params, characters = setting
    data = episode_adaptation(0.4, 1, 3, model, params, characters)
    _, labels = episode_mosaic(data)
    assert labels and all(text[0] in "✓✗" for _, _, text, _ in labels)
    assert all((text[0] == "✓") == (colour == RIGHT_COLOR) for _, _, text, colour in labels)
    assert WRONG_COLOR != RIGHT_COLOR
