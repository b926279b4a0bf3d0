"""metalearn_lite: the helper package of the metalearn-lite teaching notebooks.

Import the submodules you need (``from metalearn_lite import maml, tasks``); importing the package itself
has no side effects and loads nothing heavy.
"""

__version__ = "0.1.0"
