"""The suite runs on a user's clone: no path outside the repository, no wall-clock assert, no dangling reference.

A user's checkout has no folder beside it; data is reached only through METALEARN_DATA. A lesson or test that asserts
on elapsed time fails on a slower laptop or for a student who pauses, so run times are reported by
tools/run_all_notebooks.py and the benchmarks instead. (A hang guard, `pytest.fail` once a generous deadline has
passed while waiting for a subprocess, is not a claim about speed and is allowed.) A notebook may only point to notebooks that exist.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
TEST_FILES = sorted(path for path in (ROOT / "tests").rglob("*.py") if path != Path(__file__).resolve())

# A folder named shared beside the clone, reached through `parents[N] / ...` or a relative `..` path.
OUTSIDE_REPOSITORY = re.compile(r"""parents\[\d+\]\s*/\s*["']shared|\.\.[/\\]shared""")
TIMERS = {"perf_counter", "perf_counter_ns", "monotonic", "monotonic_ns", "time", "time_ns", "process_time"}


def timing_asserts(source: str) -> list[int]:
    """Line numbers of asserts that read a clock, directly or through a name computed from a clock reading."""
    tree = ast.parse(source)
    clocked = set()
    for node in ast.walk(tree):  # names assigned a clock reading (t0 = ..., elapsed = ...), file-wide
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if _reads_clock(node.value, clocked):
                clocked |= {target.id for target in targets if isinstance(target, ast.Name)}
    return [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Assert) and _reads_clock(node.test, clocked)]


def _reads_clock(expression: ast.AST, clocked: set) -> bool:
    for node in ast.walk(expression):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in TIMERS:
            if isinstance(node.func.value, ast.Name) and node.func.value.id == "time":
                return True
        if isinstance(node, ast.Name) and (node.id in clocked or "elapsed" in node.id):
            return True
    return False


def notebook_code(path: Path) -> str:
    """A notebook's code cells as one Python module (IPython magics and shell lines blanked)."""
    cells = [cell.source for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "code"]
    lines = "\n".join(cells).splitlines()
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in lines)


@pytest.mark.parametrize("path", TEST_FILES + NOTEBOOKS, ids=lambda path: str(path.relative_to(ROOT)))
def test_nothing_refers_to_a_folder_outside_the_repository(path):
    hits = [f"line {number}: {line.strip()}" for number, line in enumerate(path.read_text().splitlines(), 1)
            if OUTSIDE_REPOSITORY.search(line)]
    assert not hits, f"{path.name} reaches outside the repository (use METALEARN_DATA instead): {hits}"


@pytest.mark.parametrize("path", TEST_FILES + NOTEBOOKS, ids=lambda path: str(path.relative_to(ROOT)))
def test_no_assert_on_wall_clock_time(path):
    source = notebook_code(path) if path.suffix == ".ipynb" else path.read_text()
    assert not timing_asserts(source), f"{path.name} asserts on elapsed time at lines {timing_asserts(source)}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_every_notebook_reference_points_to_a_notebook_that_exists(path):
    existing = {int(notebook.name[:2]) for notebook in NOTEBOOKS}
    text = " ".join(cell.source for cell in nbformat.read(path, as_version=4).cells)
    referred = {int(number) for number in re.findall(r"[Nn]otebooks? (\d+)", text)}
    assert referred <= existing, f"{path.name} refers to notebook(s) {sorted(referred - existing)}, which do not exist"


def test_the_checks_catch_what_they_are_for():
    assert timing_asserts("import time\nstart = time.perf_counter()\nx = 1\nassert time.perf_counter() - start < 60")
    assert timing_asserts("import time\nt0 = time.time()\nduration = time.time() - t0\nassert duration < 1")
    assert timing_asserts("assert _elapsed < 60")
    assert not timing_asserts("import time\nstart = time.perf_counter()\nassert 1 + 1 == 2")
    beside = "sh" + "ared"  # spelled in two parts, so that this file does not match its own scan
    assert OUTSIDE_REPOSITORY.search(f'DATA = Path(__file__).resolve().parents[2] / "{beside}" / "data"')
    assert OUTSIDE_REPOSITORY.search(f"cp ../{beside}/data/omniglot/*.zip .")
    assert not OUTSIDE_REPOSITORY.search('path = tmp_path / "shared.pt"')


def test_solutions_stay_hidden_until_asked_for():
    """No committed output prints an exercise's answer: solution cells are saved without outputs, hidden in
    JupyterLab and as a form on Colab (tools/hide_solutions.py), and no other cell shows a checker's "Correct!"."""
    import sys
    sys.path.insert(0, str(ROOT / "tools"))
    import hide_solutions
    assert not hide_solutions.update(NOTEBOOKS, check=True), "run: python tools/hide_solutions.py"
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        solutions = [cell for cell in nb.cells if hide_solutions.is_solution(cell)]
        for cell in solutions:
            assert cell.metadata["cellView"] == "form" and cell.metadata["jupyter"]["source_hidden"]
        for index, cell in enumerate(nb.cells):
            printed = "".join(str(output.get("text", "")) for output in cell.get("outputs", []))
            assert "Correct!" not in printed, f"{path.name} cell {index} prints a checked answer"
