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
from metalearn_lite.widgets.sinusoid import SinusoidExplorer  # noqa: E402

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

    # New path, timed move by move; the settings it visits are replayed below for the other paths.
    move(0)  # warm-up
    new_wall, new_cpu, settings = [], [], []
    draws_before = explorer.figure.n_full_draws
    for i in range(1, args.repeats + 1):
        wall, cpu = time.perf_counter(), time.process_time()
        move(i)
        new_wall.append(1000 * (time.perf_counter() - wall))
        new_cpu.append(1000 * (time.process_time() - cpu))
        assert explorer.last_error is None, explorer.last_error
        settings.append(explorer.explorer.values())
    full_draws = explorer.figure.n_full_draws - draws_before

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

    precomputed = {tuple(values.items()): compute(values) for values in settings}

    def render_only(values):
        explorer.figure.render(precomputed[tuple(values.items())])

    def replay(fn):
        fn(settings[0])  # warm-up
        walls, cpus = [], []
        for values in settings:
            wall, cpu = time.perf_counter(), time.process_time()
            fn(values)
            walls.append(1000 * (time.perf_counter() - wall))
            cpus.append(1000 * (time.process_time() - cpu))
        return median_ms(walls), median_ms(cpus)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"device {device}, {torch.get_num_threads()} thread(s), {os.cpu_count()} cores, load average "
          f"{load:.2f}; {args.repeats} slider moves (lr 1e-4 ... 1, steps 0 ... 20, K 1 ... 20, new tasks)")
    rows = {"new: compute + in-place update + PNG (Image widget)": (median_ms(new_wall), median_ms(new_cpu))}
    print(f"{'path':<56} {'median wall':>12} {'median CPU':>11}")

    def show(label):
        wall, cpu = rows[label]
        print(f"{label:<56} {wall:9.1f} ms {cpu:8.1f} ms", flush=True)

    show(next(iter(rows)))
    for label, fn in [("old: compute + new figure + inline PNG (tight bbox)", old_inline),
                      ("  old, Agg draw only (no PNG; previous benchmark)", old_agg),
                      ("  compute only", compute),
                      ("  new, update + PNG only (data precomputed)", render_only)]:
        rows[label] = replay(fn)
        show(label)
    new, old = rows["new: compute + in-place update + PNG (Image widget)"][0], \
        rows["old: compute + new figure + inline PNG (tight bbox)"][0]
    print(f"speed-up old/new: {old / new:.1f}x; background re-rendered on {full_draws} of {args.repeats} moves")
    print(f"target: median redraw < 100 ms -> {'met' if new < 100 else 'NOT met'} ({new:.1f} ms)")


if __name__ == "__main__":
    main()
