"""Live explorers for the notebooks: sliders that redraw a figure (the only place ipywidgets is imported).

Every explorer is a thin shell around a plain function (slider values in, figure data out) that lives in an
importable module without ipywidgets (``metalearn_lite.descent``, ``.baselines``, ``.landscape``) and is tested
directly. ``core.Explorer`` is the shared pattern: core ipywidgets only, an ``Output`` widget, and on every change
compute -> keep the data as ``.last_data`` -> draw with the inline backend; or, for explorers that opt in with a
``plots.live.LiveFigure`` (notebook 4's), one persistent figure updated in place and shown as PNG in an
``ipywidgets.Image``. It works with ipywidgets 7.6+ (Colab)
and 8 (JupyterLab). Modules: ``core`` (the pattern and slider helpers), ``descent`` (notebook 1),
``fine_tuning`` (notebook 2), ``objective`` (notebook 3).
"""
