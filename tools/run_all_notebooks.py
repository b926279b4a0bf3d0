"""Run every notebook top to bottom and save executed copies, without opening JupyterLab.

    python tools/run_all_notebooks.py                  # notebooks/NN_*.ipynb -> executed/
    python tools/run_all_notebooks.py --output-dir out notebooks/04_maml_sinusoid.ipynb

Each notebook runs in a fresh kernel from its own folder (so relative paths behave as in JupyterLab) and is written
to the output folder under the same name; the sources are never overwritten. A notebook that fails is still
written (with the error in it, to read) and the command exits with status 1. Prints each notebook's time and result.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import List, Optional, Tuple

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

ROOT = Path(__file__).resolve().parents[1]


def run_notebook(source: Path, target: Path, kernel_name: str = "python3",
                 cell_timeout_s: int = 1200) -> Tuple[bool, float, str]:
    """Execute ``source`` into ``target``; return (passed, seconds, first line of the error or '')."""
    nb = nbformat.read(source, as_version=4)
    client = NotebookClient(nb, kernel_name=kernel_name, timeout=cell_timeout_s,
                            resources={"metadata": {"path": str(source.parent)}})
    # The notebooks draw with the inline backend; a terminal's MPLBACKEND (e.g. Agg) would hide every figure.
    env = {key: value for key, value in os.environ.items() if key != "MPLBACKEND"}
    started = time.perf_counter()
    error = ""
    try:
        client.execute(env=env)
    except (CellExecutionError, CellTimeoutError, DeadKernelError) as failure:
        error = _summary(failure)
    seconds = time.perf_counter() - started
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, target)
    return not error, seconds, error


def _summary(failure: Exception) -> str:
    lines = [line for line in str(failure).splitlines() if line.strip()]
    named = [line for line in lines if "Error" in line or "Exception" in line]
    return (named or lines or [type(failure).__name__])[-1].strip()


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="notebooks to run (default: every notebooks/NN_*.ipynb)")
    parser.add_argument("--output-dir", type=Path, default=ROOT / "executed",
                        help="where the executed copies go (default: executed/)")
    parser.add_argument("--kernel", default="python3", help="Jupyter kernel name (default: python3)")
    parser.add_argument("--cell-timeout", type=int, default=1200, help="seconds one cell may take (default: 1200)")
    args = parser.parse_args(argv)

    sources = [path.resolve() for path in args.notebooks] or sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    output_dir = args.output_dir.resolve()
    if any(output_dir == source.parent for source in sources):
        parser.error(f"--output-dir {output_dir} holds the source notebooks; choose another folder")
    if not sources:
        parser.error("no notebooks found")
    output_dir.mkdir(parents=True, exist_ok=True)
    ignore = output_dir / ".gitignore"
    if not ignore.exists():  # executed copies are outputs, never commits
        ignore.write_text("*\n")

    failures = 0
    total = time.perf_counter()
    for source in sources:
        print(f"{source.name:<32} ", end="", flush=True)
        passed, seconds, error = run_notebook(source, output_dir / source.name, args.kernel, args.cell_timeout)
        failures += not passed
        print(f"{'ok' if passed else 'FAILED':<6} {seconds:7.1f} s" + ("" if passed else f"   {error}"), flush=True)
    print(f"{len(sources) - failures} of {len(sources)} notebooks ran in {time.perf_counter() - total:.1f} s; "
          f"executed copies in {output_dir}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
