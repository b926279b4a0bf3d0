"""Persistent figures for live explorers: built once, updated in place, rendered to PNG on every slider move.

No ipywidgets here (``widgets.core.Explorer`` shows a ``LiveFigure`` in an ``ipywidgets.Image``). Why: on a 2-core
CPU, re-creating a two-panel figure and rendering it costs ~100-200 ms, almost all of it matplotlib laying out and
rasterising text (tick labels, titles, legend). A ``LiveFigure`` keeps one figure, keeps the parts that did not
change as a rendered background, and draws only the artists that move.
"""

from __future__ import annotations

import io
from abc import ABC, abstractmethod
from collections import OrderedDict
from typing import Hashable, Optional

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image as PILImage


def png_bytes(canvas: FigureCanvasAgg, compress_level: int = 1) -> bytes:
    """Encode what ``canvas`` holds now (no redraw) as PNG bytes: RGB, fast zlib level (a few ms, ~2x bigger)."""
    width, height = canvas.get_width_height(physical=True)
    image = PILImage.frombuffer("RGBA", (width, height), canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="png", compress_level=compress_level)
    return buffer.getvalue()


class LiveFigure(ABC):
    """One figure for an explorer's whole life: built once, updated in place, rendered to PNG on every move.

    Subclasses implement ``setup(fig)`` (axes, fixed limits and ticks, legend, empty artists; mark what changes on
    every move with ``self.dynamic(...)``) and ``update(data)`` (``set_data``/``set_text``/``set_visible``/limits;
    never new axes). ``render(data)`` = ``update`` + draw + PNG bytes. The figure has its own Agg canvas and is not
    registered with pyplot, so ``plt.show()``/``plt.close`` elsewhere never touch it.

    Rendering: the static part (everything not dynamic) is drawn once per ``background_key()`` and kept as a pixel
    buffer (the last ``max_backgrounds`` keys); each render restores it and draws only the dynamic artists.
    A subclass that marks nothing dynamic is simply drawn in full every time.
    """

    figsize = (8.0, 3.5)
    css_dpi = 96
    """Shown at ``figsize`` x 96 CSS pixels (the browser's inch): about the width of a notebook's output area."""
    pixel_ratio = 1.0
    """Pixels per CSS pixel: 1 renders at the displayed size (sharp text on ordinary screens and projectors; 2
    would be sharp on HiDPI screens too). Measured with ``benchmarks/explorer_latency.py`` (notebook 4's explorer,
    22 moves, one thread, 2-core CPU), median move: 154 ms at 72 dpi (shown stretched, blurred), 169 ms at 1x
    (96 dpi), 188 ms at 1.5x: each step up costs the redraws that new axis limits need."""
    max_backgrounds = 8

    def __init__(self, figsize=None, dpi: Optional[float] = None):
        self.fig = Figure(figsize=figsize or self.figsize, dpi=dpi or self.css_dpi * self.pixel_ratio)
        self.canvas = FigureCanvasAgg(self.fig)
        self._dynamic: list = []
        self._backgrounds: "OrderedDict[Hashable, object]" = OrderedDict()
        self.n_full_draws = 0
        self.setup(self.fig)

    # -- for subclasses ------------------------------------------------------------------------------------------
    @abstractmethod
    def setup(self, fig: Figure) -> None:
        """Build the axes, fixed limits, legend and (empty) artists; mark the moving ones with ``dynamic``."""

    @abstractmethod
    def update(self, data) -> None:
        """Move the artists to show ``data``: ``set_data``/``set_text``/``set_visible``/limits, never new axes."""

    def dynamic(self, *artists) -> None:
        """Mark artists that change on every move: drawn over the cached background, left out of it."""
        for artist in artists:
            artist.set_animated(True)
            self._dynamic.append(artist)

    def forget(self, *artists) -> None:
        """Stop redrawing ``artists`` (ones an update removed from the figure, e.g. with ``ax.cla()``)."""
        self._dynamic = [artist for artist in self._dynamic if all(artist is not gone for gone in artists)]

    def background_key(self) -> Hashable:
        """What the cached background depends on: each axes' limits and scales, and the static texts (limits of a
        dynamic axis and texts of a dynamic legend are left out: they are redrawn on every move anyway)."""
        key = []
        for ax in self.fig.axes:
            if ax.get_animated():   # a dynamic axes (e.g. a colour bar) is redrawn every time, not cached
                continue
            # an axis marked dynamic (its ticks are redrawn every time) does not make a new background either
            key.append((None if ax.xaxis.get_animated() else tuple(np.round(ax.get_xlim(), 12)),
                        None if ax.yaxis.get_animated() else tuple(np.round(ax.get_ylim(), 12)), ax.get_xscale(),
                        ax.get_yscale(), ax.get_visible()))
            key.extend(text.get_text() for text in (ax.title, ax._left_title, ax._right_title, ax.xaxis.label,
                                                    ax.yaxis.label) if not text.get_animated())
        for legend in self.fig.legends + [ax.get_legend() for ax in self.fig.axes if ax.get_legend()]:
            if not legend.get_animated():
                key.extend(text.get_text() for text in legend.get_texts())
        key.extend(text.get_text() for text in self.fig.texts if not text.get_animated())
        return tuple(key)

    @property
    def display_width(self) -> int:
        """The width in CSS pixels to show the PNG at (``figsize`` x ``css_dpi``), whatever it was rendered at."""
        return round(self.fig.get_figwidth() * self.css_dpi)

    # -- rendering -----------------------------------------------------------------------------------------------
    def draw(self) -> None:
        """Bring the canvas up to date: cached background (drawn if new) + the dynamic artists."""
        if not self._dynamic:
            self.canvas.draw()
            self.n_full_draws += 1
            return
        key = self.background_key()
        background = self._backgrounds.get(key)
        if background is None:
            self.canvas.draw()  # animated (dynamic) artists are left out of a full draw
            self.n_full_draws += 1
            background = self.canvas.copy_from_bbox(self.fig.bbox)
            self._backgrounds[key] = background
            while len(self._backgrounds) > self.max_backgrounds:
                self._backgrounds.popitem(last=False)
        else:
            self._backgrounds.move_to_end(key)
            self.canvas.restore_region(background)
        for artist in self._dynamic:
            if artist.get_visible():
                self.fig.draw_artist(artist)

    def png(self) -> bytes:
        """The figure as it is now, as PNG bytes."""
        self.draw()
        return png_bytes(self.canvas)

    def render(self, data) -> bytes:
        """Update the artists from ``data`` and return the PNG bytes of the result."""
        self.update(data)
        return self.png()
