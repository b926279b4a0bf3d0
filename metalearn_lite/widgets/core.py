"""The shared pattern for a live explorer: sliders -> plain function -> figure, testable without a browser.

How to build a new explorer (e.g. for sinusoids or Omniglot)::

    from metalearn_lite.widgets.core import Explorer, log_slider, int_slider

    def compute(inner_lr, inner_steps):          # plain, importable, tested: values in, data out
        return my_module.my_data(inner_lr, inner_steps)

    def draw(data):                               # data in, a matplotlib Figure out
        return my_plots.my_figure(data)

    explorer = Explorer(compute, draw, {
        "inner_lr": log_slider("inner lr", 0.01, -3, 0),
        "inner_steps": int_slider("inner steps", 1, 0, 10),
    })
    explorer          # as the last expression of a cell: shows the sliders and the figure

Each control's ``value`` is passed to ``compute`` as the keyword of its name. On every change the explorer
rounds the values (a browser slider can send 1.9999999999999998 for 2.0), calls ``compute``, stores the result in
``.last_data`` (what tests check), then redraws inside its ``Output`` widget with ``clear_output(wait=True)``,
``plt.show()`` and ``plt.close(fig)``: the pattern that works in JupyterLab, Notebook, VS Code and Colab (core
widgets and the inline backend only; no ipympl). Setting ``slider.value`` in plain Python fires the callback
synchronously, so tests drive an explorer with ``explorer.set(inner_lr=1.0)`` or ``explorer.controls[...]``.
Exceptions from ``compute``/``draw`` are shown in the output area (a student sees the message) and kept in
``.last_error``; they are not swallowed silently.

The fast path (opt-in): pass a ``LiveFigure`` instead of a ``draw`` function. The explorer then keeps that one
figure for its whole life (never re-created, never closed), lets it update its artists in place, renders it to
PNG bytes and shows them in an ``ipywidgets.Image`` (a core widget: the same in JupyterLab, VS Code and Colab's
ipywidgets 7.7; no inline backend, no ``clear_output`` flicker). A ``LiveFigure`` also caches what does not
change between slider moves (axes, ticks, tick labels, legend: text rendering is most of matplotlib's cost) as a
rendered background and only draws its *dynamic* artists over it::

    class MyFigure(LiveFigure):
        def setup(self, fig):                      # once: axes, fixed limits/ticks, legend, empty artists
            self.ax = fig.add_subplot()
            self.line, = self.ax.plot([], [])
            self.dynamic(self.line, self.ax.title)   # redrawn every time, over the cached background
        def update(self, data):                    # every slider move: artists in place, no new figure
            self.line.set_data(data.x, data.y)
            self.ax.title.set_text(f"{data.n} steps")

    Explorer(compute, MyFigure(figsize=(6, 3)), controls)

Anything that is not dynamic may only change together with ``background_key()`` (by default: every axes' limits
and scales and every static title, label and legend text), which selects or re-renders the cached background.
"""

from __future__ import annotations

import base64
import io
import math
import traceback
import warnings
from typing import Callable, Dict, Mapping, Optional, Union

import ipywidgets as widgets
import matplotlib.pyplot as plt
from IPython.display import clear_output, display

from ..plots.live import LiveFigure, png_bytes  # noqa: F401  (re-exported: the fast path's figure base class)

SLIDER_STYLE = {"description_width": "initial"}
SLIDER_LAYOUT = {"width": "340px"}


def clean_value(value, significant: int = 6):
    """Round a float to ``significant`` digits (browser sliders send float noise); leave other values alone."""
    if isinstance(value, float) and math.isfinite(value) and value != 0.0:
        return float(f"{value:.{significant}g}")
    return value


def log_slider(description: str, value: float, min_exponent: float, max_exponent: float,
               step: float = 0.1, readout_format: str = ".3g") -> widgets.FloatLogSlider:
    """A log-scale slider from ``10**min_exponent`` to ``10**max_exponent`` (learning rates)."""
    return widgets.FloatLogSlider(value=value, base=10, min=min_exponent, max=max_exponent, step=step,
                                  description=description, readout_format=readout_format,
                                  continuous_update=False, style=SLIDER_STYLE, layout=SLIDER_LAYOUT)


def int_slider(description: str, value: int, minimum: int, maximum: int, step: int = 1) -> widgets.IntSlider:
    """An integer slider (steps, shots, seeds)."""
    return widgets.IntSlider(value=value, min=minimum, max=maximum, step=step, description=description,
                             continuous_update=False, style=SLIDER_STYLE, layout=SLIDER_LAYOUT)


def float_slider(description: str, value: float, minimum: float, maximum: float,
                 step: float = 0.1) -> widgets.FloatSlider:
    """A linear float slider."""
    return widgets.FloatSlider(value=value, min=minimum, max=maximum, step=step, description=description,
                               continuous_update=False, style=SLIDER_STYLE, layout=SLIDER_LAYOUT)


def dropdown(description: str, options, value) -> widgets.Dropdown:
    """A choice between named options (e.g. which loss); ``options``: values, or ``(label, value)`` pairs."""
    return widgets.Dropdown(options=list(options), value=value, description=description, style=SLIDER_STYLE)


class Explorer:
    """Controls + a plain ``compute`` function + a ``draw`` function = a live figure.

    Parameters
    ----------
    compute: called with one keyword per control (its rounded value) plus ``fixed``; returns the figure data.
    draw: called with that data; returns a matplotlib Figure (the explorer shows and closes it). Or a
        ``LiveFigure``: the fast path (one persistent figure, updated in place, shown as PNG in ``.image``).
    controls: name -> ipywidgets control (``log_slider``, ``int_slider``, ``dropdown``...).
    fixed: extra keyword arguments for ``compute`` that have no control (a model, a batch of tasks).
    title: an optional line of text above the controls.
    """

    def __init__(self, compute: Callable, draw: Union[Callable, LiveFigure], controls: Mapping[str, widgets.Widget],
                 fixed: Optional[dict] = None, title: Optional[str] = None):
        self.compute, self.draw = compute, draw
        self.controls: Dict[str, widgets.Widget] = dict(controls)
        self.fixed = dict(fixed or {})
        self.out = widgets.Output()
        self.live = isinstance(draw, LiveFigure)
        # an explicit width: a VBox would otherwise stretch the image to the output area and blur its text
        self.image: Optional[widgets.Image] = (widgets.Image(format="png", layout=widgets.Layout(
            width=f"{draw.display_width}px", max_width="100%", height="auto")) if self.live else None)
        self._out_has_message = False
        self.last_data = None
        self.last_error: Optional[BaseException] = None
        self.n_updates = 0
        rows = [widgets.HTML(f"<b>{title}</b>")] if title else []
        rows += [widgets.HBox(list(self.controls.values())[i:i + 3]) for i in range(0, len(self.controls), 3)]
        self.widget = widgets.VBox(rows + ([self.image] if self.live else []) + [self.out])
        for control in self.controls.values():
            control.observe(self._on_change, names="value")
        self.update()

    def values(self) -> dict:
        """The controls' current values, rounded."""
        return {name: clean_value(control.value) for name, control in self.controls.items()}

    def set(self, **values) -> object:
        """Move controls (as a student would), which redraws; returns ``.last_data``. For tests and demos."""
        for name, value in values.items():
            if name not in self.controls:
                raise ValueError(f"no control named {name!r}; controls: {', '.join(self.controls)}")
            self.controls[name].value = value
        return self.last_data

    def update(self) -> None:
        """Recompute the data from the current values and redraw."""
        self.n_updates += 1
        try:
            self.last_data = self.compute(**self.values(), **self.fixed)
            self.last_error = None
        except Exception as error:  # shown to the student, kept for tests
            self.last_error = error
            self._message(f"Could not compute this setting: {format_error(error)}")
            return
        if self.live:
            self._show_live()
            return
        with self.out:
            clear_output(wait=True)
            fig = self.draw(self.last_data)
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*non-interactive.*")  # plain Python (tests): Agg
                plt.show()
            plt.close(fig)

    def _show_live(self) -> None:
        """The fast path: update the persistent figure in place, PNG bytes into the Image widget."""
        try:
            self.image.value = self.draw.render(self.last_data)
        except Exception as error:  # a drawing bug: the student sees it, tests see it
            self.last_error = error
            self._message(f"Could not draw this setting: {format_error(error)}")
            return
        if self._out_has_message:  # only then: clearing an empty Output still costs a message
            self.out.clear_output()
            self._out_has_message = False

    def _message(self, text: str) -> None:
        with self.out:
            clear_output(wait=True)
            print(text)
        self._out_has_message = self.live

    def _on_change(self, change) -> None:
        self.update()

    def snapshot(self) -> Optional[bytes]:
        """PNG bytes of the current view (what a saved notebook shows where no widget can run), or None."""
        if self.last_data is None or self.last_error is not None:  # the view shows a message, not this picture
            return None
        if self.live:
            return self.image.value or None
        fig = self.draw(self.last_data)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        plt.close(fig)
        return buffer.getvalue()

    def show(self) -> None:
        """Display the controls and the figure."""
        display_with_snapshot(self.widget, self)

    def _ipython_display_(self):  # ipywidgets 7 and IPython: ``explorer`` as the last expression shows it
        self.show()

    def __repr__(self) -> str:
        return f"Explorer({', '.join(f'{k}={v!r}' for k, v in self.values().items())})"


def display_with_snapshot(widget: widgets.Widget, explorer: "Explorer") -> None:
    """Display ``widget`` live, with a PNG of the explorer's current view as the saved notebook's fallback.

    One output, two representations: JupyterLab, Notebook, VS Code and Colab render the widget view (the live
    explorer); GitHub, nbviewer and rendered sites cannot run widgets and show the picture of the initial view
    instead of the text ``VBox(children=...)``. The widget-view entry is the one ipywidgets 7 and 8 both emit.
    """
    bundle = {"text/plain": f"{explorer!r} (a live explorer: run the notebook to move its controls)",
              "application/vnd.jupyter.widget-view+json": {"version_major": 2, "version_minor": 0,
                                                           "model_id": widget.model_id}}
    png = explorer.snapshot()
    metadata = {}
    if png:
        bundle["image/png"] = base64.b64encode(png).decode("ascii")
        if explorer.live:   # shown at the live view's size, not at its pixel count
            metadata["image/png"] = {"width": explorer.draw.display_width}
    display(bundle, raw=True, metadata=metadata)


def format_error(error: BaseException) -> str:
    """One line naming the exception type and message (for messages in the output area)."""
    return "".join(traceback.format_exception_only(type(error), error)).strip()
