"""Figures for the lessons, one module per kind of figure; all share the colour-blind-safe style in ``style``.

- ``style``: palette, fonts and the "diverged" annotation used by every adaptation plot.
Other modules (e.g. ``episodes``, ``adaptation``, ``descent``) build on it.
"""
