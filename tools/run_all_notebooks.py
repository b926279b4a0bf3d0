"""Run every notebook top to bottom and save executed copies, without opening JupyterLab.

    python tools/run_all_notebooks.py                  # notebooks/NN_*.ipynb -> executed/
    python tools/run_all_notebooks.py --output-dir out notebooks/04_maml_sinusoid.ipynb

Each notebook runs in a fresh kernel from its own folder (so relative paths behave as in JupyterLab) and is written
to the output folder under the same name, the kernel's own messages in NAME.kernel.log beside it; the sources are
never overwritten. A notebook that fails is still written (with the error in it, to read) and the command exits
with status 1. Prints a table of each notebook's result, time and the kernel's peak memory; a kernel above the
memory budget of one Binder user (``--memory-budget``, default 1024 MiB) also fails the command. Run times are
reported here, never asserted.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

from metalearn_lite.memory import KERNEL_MEMORY_BUDGET_MIB, peak_memory_mib

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class RunResult:
    """One notebook's run: passed, seconds, the kernel's peak memory (None where /proc is missing), first error."""

    passed: bool
    seconds: float
    peak_mib: Optional[float]
    error: str = ""


def run_notebook(source: Path, target: Path, kernel_name: str = "python3",
                 cell_timeout_s: int = 1200) -> RunResult:
    """Execute ``source`` into ``target`` in a fresh kernel started in the notebook's own folder."""
    nb = nbformat.read(source, as_version=4)
    client = NotebookClient(nb, kernel_name=kernel_name, timeout=cell_timeout_s,
                            resources={"metadata": {"path": str(source.parent)}})
    peak = {"mib": None}

    def read_peak(**_):  # VmHWM is a high-water mark: the reading after the last cell is the kernel's peak
        pid = getattr(getattr(client.km, "provisioner", None), "pid", None)
        peak["mib"] = peak_memory_mib(pid) if pid is not None else None

    client.on_cell_executed = read_peak
    # The notebooks draw with the inline backend; a terminal's MPLBACKEND (e.g. Agg) would hide every figure.
    env = {key: value for key, value in os.environ.items() if key != "MPLBACKEND"}
    target.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    error = ""
    # The kernel's own warnings (e.g. about TCP transport) go to a log beside the copy, not into the table.
    with open(target.with_suffix(".kernel.log"), "w") as kernel_log:
        try:
            client.execute(env=env, stderr=kernel_log)
        except (CellExecutionError, CellTimeoutError, DeadKernelError) as failure:
            error = _summary(failure)
    seconds = time.perf_counter() - started
    nbformat.write(nb, target)
    return RunResult(not error, seconds, peak["mib"], error)


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
    parser.add_argument("--memory-budget", type=int, default=KERNEL_MEMORY_BUDGET_MIB,
                        help=f"MiB a kernel may peak at (default: {KERNEL_MEMORY_BUDGET_MIB}, one Binder user)")
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
    print(f"{'notebook':<32} {'result':<8} {'time':>8} {'peak memory':>12}", flush=True)
    for source in sources:
        print(f"{source.name:<32} ", end="", flush=True)
        result = run_notebook(source, output_dir / source.name, args.kernel, args.cell_timeout)
        over_budget = result.peak_mib is not None and result.peak_mib > args.memory_budget
        failures += not result.passed or over_budget
        print(_row(result, over_budget, args.memory_budget), flush=True)
    print(f"{len(sources) - failures} of {len(sources)} notebooks passed in {time.perf_counter() - total:.1f} s; "
          f"executed copies in {output_dir}")
    return 1 if failures else 0


def _row(result: RunResult, over_budget: bool, budget_mib: int) -> str:
    status = "ok" if result.passed and not over_budget else "FAILED"
    memory = "n/a" if result.peak_mib is None else f"{result.peak_mib:,.0f} MiB"
    row = f"{status:<8} {result.seconds:6.1f} s {memory:>12}"
    if not result.passed:
        row += f"   {result.error}"
    if over_budget:
        row += f"   kernel above the {budget_mib:,} MiB memory budget"
    return row


if __name__ == "__main__":
    sys.exit(main())
