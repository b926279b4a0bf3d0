"""Redraw latency of notebook 4's sinusoid adaptation explorer: what one slider move costs, old path vs new.

A slider move = the explorer's plain function (sample the task, fine-tune the MAML, pretrained and random starts,
record fitted curves and loss-vs-step curves) + getting a new PNG of the figure to the browser. Replayed: a
student's session of single-control moves (learning rate down to 1e-4 and up to a diverging 1, steps 0 and 20, K 1
and 20, "new task"), ``--repeats`` moves in all (default 36), median reported. Both paths in the same run, over
the same settings:
  * new: ``widgets.sinusoid.SinusoidExplorer`` itself (``explorer.set``): compute, update the persistent
    ``ExplorerFigure`` in place (cached background + the moving artists), PNG bytes into its ``ipywidgets.Image``;
  * old: compute, a new ``explorer_figure``, PNG as the inline backend makes it (``savefig(bbox_inches="tight")``);
  * old, Agg only: compute, a new ``explorer_figure``, ``canvas.draw()``, no PNG (the previous benchmark's number).
Target: median redraw < 100 ms on a 2-core CPU.
Paths are timed interleaved, move by move, so that all see the same load on a shared machine (wall times there
can be twice the CPU times: report the load average printed at the top).
Usage: python benchmarks/explorer_latency.py [--repeats 36] [--threads 1]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import matplotlib  # noqa: E402

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from metalearn_lite import evaluation  # noqa: E402
from metalearn_lite.plots.sinusoid import explorer_figure  # noqa: E402
from metalearn_lite.plots.style import apply_style  # noqa: E402
from metalearn_lite.utils import default_device, limit_cpu_threads  # noqa: E402
from metalearn_lite.plots.sinusoid import ExplorerFigure  # noqa: E402
from metalearn_lite.widgets.sinusoid import MAX_INNER_STEPS, SinusoidExplorer  # noqa: E402

SESSION = [  # one control per move, as a student drags sliders; "task" = the new-task button
    ("inner_lr", 0.03), ("inner_lr", 0.1), ("inner_lr", 0.3), ("inner_lr", 1.0), ("inner_steps", 20),
    ("inner_lr", 0.3), ("inner_lr", 0.01), ("inner_lr", 1e-3), ("inner_lr", 1e-4), ("inner_steps", 0),
    ("inner_steps", 1), ("inner_lr", 0.01), ("inner_steps", 5), ("k_shot", 1), ("k_shot", 10), ("k_shot", 20),
    ("task", None), ("inner_steps", 20), ("task", None), ("k_shot", 5), ("inner_steps", 10), ("inner_lr", 0.05),
]


def median_ms(samples) -> float:
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=36, help="slider moves per path (the session is cycled)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    limit_cpu_threads(args.threads)
    apply_style()
    device = default_device()
    model, starts, _ = evaluation.sinusoid_starts(device=device)
    explorer = SinusoidExplorer(model, starts, device=device)

    def move(i):
        control, value = SESSION[i % len(SESSION)]
        if control == "task":
            explorer.new_task()
        else:
            explorer.set(**{control: value})

    def compute(values):
        return evaluation.explorer_data(explorer.model, explorer.starts, **values)

    def old_inline(values):
        fig = explorer_figure(compute(values))
        fig.savefig(io.BytesIO(), format="png", bbox_inches="tight")  # IPython's inline backend default
        plt.close(fig)

    def old_agg(values):
        fig = explorer_figure(compute(values))
        fig.canvas.draw()
        plt.close(fig)

    spare = ExplorerFigure(names=list(explorer.starts), max_inner_steps=MAX_INNER_STEPS)  # same moves, its own cache

    def render_only(values, data):
        spare.render(data)

    def timed(fn, *fn_args):
        wall, cpu = time.perf_counter(), time.process_time()
        fn(*fn_args)
        return 1000 * (time.perf_counter() - wall), 1000 * (time.process_time() - cpu)

    # Interleaved, move by move, so that every path sees the same load on a shared machine: the new path is the
    # explorer itself; the others replay the setting it just reached.
    move(0)  # warm-up
    for fn in (old_inline, old_agg, compute):
        fn(explorer.explorer.values())
    labels = ["new: compute + in-place update + PNG (Image widget)",
              "old: compute + new figure + inline PNG (tight bbox)",
              "  old, Agg draw only (no PNG; previous benchmark)",
              "  compute only",
              "  new, update + PNG only (data precomputed)"]
    samples = {label: ([], []) for label in labels}
    draws_before = explorer.figure.n_full_draws
    for i in range(1, args.repeats + 1):
        result = timed(move, i)
        assert explorer.last_error is None, explorer.last_error
        values = explorer.explorer.values()
        results = [result, timed(old_inline, values), timed(old_agg, values), timed(compute, values),
                   timed(render_only, values, explorer.last_data)]
        for label, (wall, cpu) in zip(labels, results):
            samples[label][0].append(wall)
            samples[label][1].append(cpu)
    full_draws = explorer.figure.n_full_draws - draws_before
    new_wall = samples[labels[0]][0]

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"device {device}, {torch.get_num_threads()} thread(s), {os.cpu_count()} cores, load average "
          f"{load:.2f}; {args.repeats} slider moves (lr 1e-4 ... 1, steps 0 ... 20, K 1 ... 20, new tasks)")
    print(f"{'path':<56} {'median wall':>12} {'median CPU':>11}")
    rows = {}
    for label in labels:
        rows[label] = median_ms(samples[label][0]), median_ms(samples[label][1])
        print(f"{label:<56} {rows[label][0]:9.1f} ms {rows[label][1]:8.1f} ms")
    new, old = rows[labels[0]][0], rows[labels[1]][0]
    new_cpu, old_cpu = rows[labels[0]][1], rows[labels[1]][1]
    p90 = statistics.quantiles(new_wall, n=10)[-1]
    print(f"speed-up old/new: {old / new:.1f}x wall, {old_cpu / new_cpu:.1f}x CPU; new path 90th percentile "
          f"{p90:.1f} ms wall (its background, axes + ticks + legend, was re-rendered on {full_draws} of "
          f"{args.repeats} moves: new y decades or a '(diverged)' label)")
    print(f"target: median redraw < 100 ms -> {'met' if new < 100 else 'NOT met'} ({new:.1f} ms)")


if __name__ == "__main__":
    main()
