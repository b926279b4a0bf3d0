"""Persistent figures for live explorers: built once, updated in place, rendered to PNG on every slider move.

No ipywidgets here (``widgets.core.Explorer`` shows a ``LiveFigure`` in an ``ipywidgets.Image``). Why: on a 2-core
CPU, re-creating a two-panel figure and rendering it costs ~100-200 ms, almost all of it matplotlib laying out and
rasterising text (tick labels, titles, legend). A ``LiveFigure`` keeps one figure, keeps the parts that did not
change as a rendered background, and draws only the artists that move.
"""

from __future__ import annotations

import os
import struct
import zlib
from abc import ABC, abstractmethod
from collections import OrderedDict
from typing import Hashable, Optional

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


PIXEL_RATIO_ENV = "METALEARN_PIXEL_RATIO"
PIXEL_RATIO_RANGE = (1.0, 3.0)
DEFAULT_PIXEL_RATIO = 2.0
_pixel_ratio: Optional[float] = None


def _checked_pixel_ratio(ratio, source: str) -> float:
    try:
        value = float(ratio)
    except (TypeError, ValueError):
        value = float("nan")
    low, high = PIXEL_RATIO_RANGE
    if not low <= value <= high:   # also rejects NaN
        raise ValueError(f"{source} must be a number from {low:g} to {high:g} (image pixels per screen pixel: 1 "
                         f"for ordinary screens and projectors, 2 for HiDPI/Retina), got {ratio!r}")
    return value


def set_pixel_ratio(ratio: Optional[float]) -> None:
    """Render explorers created from now on at ``ratio`` image pixels per CSS pixel (None: back to the default).

    2 (the default) is sharp on HiDPI screens and on ordinary ones; 1 halves the pixels each move renders, for a
    slow machine. The ``METALEARN_PIXEL_RATIO`` environment variable sets it for a whole class or server."""
    global _pixel_ratio
    _pixel_ratio = None if ratio is None else _checked_pixel_ratio(ratio, "pixel_ratio")


def get_pixel_ratio() -> float:
    """The pixel ratio new explorers render at: ``set_pixel_ratio``, else ``$METALEARN_PIXEL_RATIO``, else 2."""
    if _pixel_ratio is not None:
        return _pixel_ratio
    from_env = os.environ.get(PIXEL_RATIO_ENV, "").strip()
    return _checked_pixel_ratio(from_env, PIXEL_RATIO_ENV) if from_env else DEFAULT_PIXEL_RATIO


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bytes(canvas: FigureCanvasAgg, compress_level: int = 1) -> bytes:
    """Encode what ``canvas`` holds now (no redraw) as PNG bytes: RGB, 8 bits, fast zlib level.

    Written directly (no Pillow): every row with PNG's "no filter", which is what costs Pillow half its time
    (its filter choice per row) and gains nothing on a plot's flat colours. Measured on notebook 3's explorer at 2x
    (2112 x 806 pixels): 17 ms against Pillow's 35 ms at the same zlib level, 161 kB against 167 kB."""
    height, width = canvas.get_width_height(physical=True)[::-1]
    rows = np.empty((height, 1 + 3 * width), np.uint8)
    rows[:, 0] = 0   # filter type "None"
    rows[:, 1:] = np.asarray(canvas.buffer_rgba())[:, :, :3].reshape(height, 3 * width)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, deflate, no interlace
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
            + _png_chunk(b"IDAT", zlib.compress(rows.tobytes(), compress_level)) + _png_chunk(b"IEND", b""))


class LiveFigure(ABC):
    """One figure for an explorer's whole life: built once, updated in place, rendered to PNG on every move.

    Subclasses implement ``setup(fig)`` (axes, fixed limits and ticks, legend, empty artists; mark what changes on
    every move with ``self.dynamic(...)``) and ``update(data)`` (``set_data``/``set_text``/``set_visible``/limits;
    never new axes). ``render(data)`` = ``update`` + draw + PNG bytes. The figure has its own Agg canvas and is not
    registered with pyplot, so ``plt.show()``/``plt.close`` elsewhere never touch it.

    Rendering: the static part (everything not dynamic) is drawn once per ``background_key()`` and kept as a pixel
    buffer (the last ``max_backgrounds`` keys); each render restores it and draws only the dynamic artists.
    A subclass that marks nothing dynamic is simply drawn in full every time. A dynamic artist alone in its own
    area whose pixels depend on a few values (a colour bar and its scale) can be ``dynamic_pasted``: drawn once per
    value, then pasted from a pixel copy.
    """

    figsize = (8.0, 3.5)
    css_dpi = 96
    """Shown at ``figsize`` x 96 CSS pixels (the browser's inch): about the width of a notebook's output area."""
    pixel_ratio: Optional[float] = None
    """Image pixels per CSS pixel; None: ``get_pixel_ratio()`` (2 unless set: sharp on HiDPI screens too).
    Measured in JupyterLab in Chromium by the browser test (2-core CPU, idle, key press to new picture, median /
    max of 6): notebook 3's explorer, the heaviest sinusoid-scale one, 108 / 114 ms at 1x and 115 / 141 ms at 2x
    (with its colour bar pasted and its grid in QR form); at 2x a move costs ~2.5x the pixels' drawing and PNG."""
    max_backgrounds = 8

    def __init__(self, figsize=None, dpi: Optional[float] = None):
        ratio = get_pixel_ratio() if self.pixel_ratio is None else self.pixel_ratio
        self.fig = Figure(figsize=figsize or self.figsize, dpi=dpi or self.css_dpi * ratio)
        self.pixel_ratio = self.fig.dpi / self.css_dpi   # what it renders at (an explicit dpi wins)
        self.canvas = FigureCanvasAgg(self.fig)
        self._dynamic: list = []
        self._pasted: dict = {}      # id(artist) -> function giving what its pixels depend on
        self._regions: "OrderedDict[Hashable, object]" = OrderedDict()
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

    def dynamic_pasted(self, artist, key) -> None:
        """Mark a dynamic artist that sits alone in its own area (e.g. a colour bar) and whose pixels depend only
        on ``key()``: it is drawn once per key and pasted from a pixel copy after that. Only for an artist that no
        other dynamic artist overlaps (the paste covers its whole extent)."""
        self.dynamic(artist)
        self._pasted[id(artist)] = key

    def forget(self, *artists) -> None:
        """Stop redrawing ``artists`` (ones an update removed from the figure, e.g. with ``ax.cla()``)."""
        self._dynamic = [artist for artist in self._dynamic if all(artist is not gone for gone in artists)]
        for gone in artists:
            self._pasted.pop(id(gone), None)

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
                self._draw_dynamic(artist, key)

    def _draw_dynamic(self, artist, background_key: Hashable) -> None:
        if id(artist) not in self._pasted:
            self.fig.draw_artist(artist)
            return
        key = (id(artist), background_key, self._pasted[id(artist)]())
        region = self._regions.get(key)
        if region is not None:
            self._regions.move_to_end(key)
            self.canvas.restore_region(region)
            return
        self.fig.draw_artist(artist)
        extent = artist.get_tightbbox(self.canvas.get_renderer()).padded(2)
        self._regions[key] = self.canvas.copy_from_bbox(extent)
        while len(self._regions) > 4 * self.max_backgrounds:
            self._regions.popitem(last=False)

    def png(self) -> bytes:
        """The figure as it is now, as PNG bytes."""
        self.draw()
        return png_bytes(self.canvas)

    def render(self, data) -> bytes:
        """Update the artists from ``data`` and return the PNG bytes of the result."""
        self.update(data)
        return self.png()
