import io

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import pytest
from PIL import Image as PILImage

from metalearn_lite.widgets.core import Explorer, LiveFigure, clean_value, int_slider, log_slider, png_bytes


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


class LineFigure(LiveFigure):
    """A minimal persistent figure: one moving line over a cached background whose y limits follow the data."""

    def setup(self, fig):
        self.ax = fig.add_subplot()
        self.ax.set_xlim(0, 1)
        self.line, = self.ax.plot([], [])
        self.dynamic(self.line, self.ax.title)

    def update(self, data):
        if data["total"] < 0:
            raise ValueError("negative total")
        self.line.set_data([0, 1], [0, data["total"]])
        self.ax.set_ylim(0, 10 if data["total"] <= 10 else 100)
        self.ax.title.set_text(f"total {data['total']:.3g}")


def test_live_figure_explorer_updates_one_figure_and_the_image():
    figure = LineFigure(figsize=(3, 2))
    explorer = Explorer(lambda n: {"total": n}, figure, {"n": int_slider("n", 2, -5, 50)})
    assert explorer.live and isinstance(explorer.image, widgets.Image)
    assert explorer.image in explorer.widget.children and explorer.image.format == "png"
    first = explorer.image.value
    assert first[:8] == b"\x89PNG\r\n\x1a\n"
    explorer.set(n=5)  # same background (limits, texts), new line and title
    assert explorer.image.value != first and figure.n_full_draws == 1
    explorer.set(n=40)  # y limits change: the background is rendered again
    assert figure.n_full_draws == 2
    explorer.set(n=2)  # back to a cached background: pixels identical to the first render
    assert figure.n_full_draws == 2 and explorer.image.value == first
    assert plt.get_fignums() == []  # the live figure is not a pyplot figure: nothing to close, nothing shown twice
    assert explorer.last_error is None and explorer.last_data == {"total": 2}


def test_live_figure_errors_are_shown_and_cleared():
    explorer = Explorer(lambda n: {"total": n}, LineFigure(figsize=(3, 2)), {"n": int_slider("n", 2, -5, 50)})
    before = explorer.image.value
    explorer.set(n=-1)  # drawing fails: kept, shown in the output area, the last good image stays
    assert isinstance(explorer.last_error, ValueError) and explorer.image.value == before
    assert explorer._out_has_message
    explorer.set(n=3)
    assert explorer.last_error is None and not explorer._out_has_message and explorer.image.value != before


def test_png_bytes_encodes_the_canvas_without_redrawing():
    figure = LineFigure(figsize=(2, 1), dpi=50)
    figure.update({"total": 1})
    png = figure.png()
    from PIL import Image
    import io
    image = Image.open(io.BytesIO(png))
    assert image.size == (100, 50) and image.mode == "RGB" and png_bytes(figure.canvas) == png
    # lossless: every pixel is the canvas's (RGB of the Agg buffer)
    assert (np.asarray(image) == np.asarray(figure.canvas.buffer_rgba())[:, :, :3]).all()


def _displayed_bundle(monkeypatch, obj) -> dict:
    """What ``display`` receives when a notebook shows ``obj`` (the raw MIME bundle)."""
    from metalearn_lite.widgets import core

    shown = []
    monkeypatch.setattr(core, "display", lambda bundle, raw=False, metadata=None: shown.append((bundle, raw, metadata)))
    obj._ipython_display_()
    (bundle, raw, metadata), = shown
    assert raw
    bundle = dict(bundle, _metadata=metadata or {})
    return bundle


@pytest.mark.parametrize("live", [False, True])
def test_a_saved_notebook_keeps_a_picture_of_the_initial_view(monkeypatch, live):
    import base64

    def draw(data):
        fig, ax = plt.subplots(figsize=(3, 2))
        ax.plot([0, 1], [0, data["total"]])
        return fig

    explorer = Explorer(lambda n: {"total": n}, LineFigure(figsize=(3, 2)) if live else draw,
                        {"n": int_slider("n", 2, 0, 5)})
    bundle = _displayed_bundle(monkeypatch, explorer)
    # The live widget for frontends that run widgets (the same entry ipywidgets 7 and 8 emit) ...
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == explorer.widget.model_id
    # ... and a picture of the same view for GitHub and nbviewer, instead of "VBox(children=...)".
    png = base64.b64decode(bundle["image/png"])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    if live:   # shown at the live view's CSS width, the same in the saved picture
        assert png == explorer.image.value
        width = int(explorer.image.layout.width.removesuffix("px"))
        assert width == round(3 * LineFigure.css_dpi) and bundle["_metadata"]["image/png"]["width"] == width
        assert PILImage.open(io.BytesIO(png)).size[0] == round(width * explorer.draw.pixel_ratio)
    assert "VBox" not in bundle["text/plain"] and "run the notebook" in bundle["text/plain"]
    assert plt.get_fignums() == []


def test_an_explorer_that_could_not_compute_shows_no_stale_picture(monkeypatch):
    def compute(n):
        raise ValueError("n must be positive")

    explorer = Explorer(compute, lambda data: plt.figure(), {"n": int_slider("n", 2, 0, 5)})
    bundle = _displayed_bundle(monkeypatch, explorer)
    assert "image/png" not in bundle and explorer.last_error is not None


def test_explorers_render_at_the_pixel_ratio_set_and_refuse_a_bad_one(monkeypatch):
    from metalearn_lite.plots import live
    monkeypatch.delenv(live.PIXEL_RATIO_ENV, raising=False)
    assert live.get_pixel_ratio() == live.DEFAULT_PIXEL_RATIO == 2   # sharp on HiDPI screens unless told otherwise
    assert PILImage.open(io.BytesIO(LineFigure(figsize=(2, 1)).render({"total": 1}))).size == (384, 192)
    monkeypatch.setenv(live.PIXEL_RATIO_ENV, "1")   # a whole class's server, e.g. on slow machines
    figure = LineFigure(figsize=(2, 1))
    assert figure.pixel_ratio == 1 and PILImage.open(io.BytesIO(figure.render({"total": 1}))).size == (192, 96)
    assert figure.display_width == 192   # shown at the same size whatever it renders at
    try:
        live.set_pixel_ratio(1.5)           # the notebook's own setting wins over the environment
        assert LineFigure(figsize=(2, 1)).pixel_ratio == 1.5
    finally:
        live.set_pixel_ratio(None)
    assert live.get_pixel_ratio() == 1
    for bad in (0, 4, "two", float("nan")):
        with pytest.raises(ValueError, match=r"pixel_ratio must be a number from 1 to 3 .*got"):
            live.set_pixel_ratio(bad)
    monkeypatch.setenv(live.PIXEL_RATIO_ENV, "retina")
    with pytest.raises(ValueError, match=r"METALEARN_PIXEL_RATIO must be a number from 1 to 3 .*'retina'"):
        LineFigure(figsize=(2, 1))
