import ipywidgets as widgets
import matplotlib.pyplot as plt
import pytest

from metalearn_lite.widgets.core import Explorer, clean_value, int_slider, log_slider


def test_clean_value_rounds_browser_noise():
    assert clean_value(1.9999999999999998) == 2.0
    assert clean_value(0.0031622776601683794) == 0.00316228
    assert clean_value(7) == 7 and clean_value("ill") == "ill"


def test_explorer_recomputes_on_every_change_and_keeps_the_data():
    calls = []

    def compute(a, n, offset):
        calls.append((a, n))
        return {"total": a * n + offset}

    def draw(data):
        fig, ax = plt.subplots()
        ax.plot([0, 1], [0, data["total"]])
        return fig

    explorer = Explorer(compute, draw, {"a": log_slider("a", 0.1, -2, 1), "n": int_slider("n", 2, 0, 5)},
                        fixed={"offset": 1.0})
    assert explorer.last_data == {"total": 1.2} and len(calls) == 1
    explorer.controls["n"].value = 4  # fires synchronously, as a browser change would
    assert explorer.last_data["total"] == pytest.approx(1.4) and calls[-1] == (0.1, 4)
    assert explorer.set(a=10.0)["total"] == pytest.approx(41.0)
    assert isinstance(explorer.widget, widgets.VBox) and isinstance(explorer.out, widgets.Output)
    assert plt.get_fignums() == []  # every figure closed
    with pytest.raises(ValueError, match="no control named"):
        explorer.set(b=1)


def test_log_slider_is_log_scale():
    slider = log_slider("lr", 0.01, -3, 1)
    assert isinstance(slider, widgets.FloatLogSlider) and slider.base == 10 and slider.min == -3


def test_compute_errors_are_kept_and_shown_not_raised():
    def compute(n):
        if n == 3:
            raise ValueError("n must not be 3")
        return n

    explorer = Explorer(compute, lambda data: plt.figure(), {"n": int_slider("n", 1, 0, 5)})
    explorer.set(n=3)
    assert isinstance(explorer.last_error, ValueError) and explorer.last_data == 1
    explorer.set(n=4)
    assert explorer.last_error is None and explorer.last_data == 4
