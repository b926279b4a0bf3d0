"""Keep the notebooks' reference solutions hidden until a student asks for them, in JupyterLab and on Colab.

A solution cell is a code cell tagged ``solution``. This tool makes each one:
- start with a Colab form title (``#@title ...``) and carry ``cellView: form``, so Colab shows the title, not the code;
- carry ``jupyter.source_hidden``, so JupyterLab collapses the code;
- committed without outputs (its checker's "Correct!" message would print the answer) and tagged
  ``nbval-ignore-output``, so ``pytest --nbval`` still runs it (its asserts must hold) without comparing outputs.

Run it after re-executing a notebook, before ``tools/update_links.py`` (which numbers the cells):
``python tools/hide_solutions.py [--check] [NOTEBOOK ...]``; ``--check`` changes nothing and exits 1 when a notebook is
out of date (``tests/test_suite_hygiene.py`` runs it).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional

import nbformat

ROOT = Path(__file__).resolve().parents[1]
TITLE = "#@title Reference solution: run to check it; open the cell to read the code"


def is_solution(cell) -> bool:
    return cell.cell_type == "code" and "solution" in cell.metadata.get("tags", [])


def hide(nb) -> None:
    """Hide every solution cell of ``nb`` in place (see the module docstring)."""
    for cell in filter(is_solution, nb.cells):
        if not cell.source.startswith("#@title"):
            cell.source = TITLE + "\n" + cell.source
        cell.metadata["cellView"] = "form"
        cell.metadata.setdefault("jupyter", {})["source_hidden"] = True
        tags = cell.metadata.setdefault("tags", [])
        if "nbval-ignore-output" not in tags:
            tags.append("nbval-ignore-output")
        cell.outputs = []
        if cell.get("execution_count") is None:  # it was run; tools/update_links.py numbers the cells in order
            cell.execution_count = 1


def update(paths: List[Path], check: bool = False) -> List[Path]:
    """Hide the solutions of ``paths``; return those that were (with ``check``: would be) changed."""
    changed = []
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        before = nbformat.writes(nb)
        hide(nb)
        if nbformat.writes(nb) != before:
            changed.append(path)
            if not check:
                nbformat.write(nb, path)
    return changed


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every notebooks/NN_*.ipynb")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a notebook is out of date")
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    changed = update(paths, args.check)
    for path in changed:
        print(f"{'out of date' if args.check else 'hid solutions in'}: {path}")
    return 1 if args.check and changed else 0


if __name__ == "__main__":
    sys.exit(main())
