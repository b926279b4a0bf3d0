"""Redraw latency of notebook 4's sinusoid adaptation explorer: what one slider move costs.

A redraw = the explorer's plain function (sample the task, fine-tune the MAML, pretrained and random starts,
record fitted curves and loss-vs-step curves) + drawing its figure to an Agg canvas. Measured at several slider
settings (including the most expensive: 20 steps, K=20, and a diverging learning rate), repeated, median reported.
Baselines measured in the same run:
  * "per-start vmap": the same view computed with ``maml.adapt`` once per start (as notebook 2's explorer does),
    instead of one batched pass over all starts;
  * "general plot": the same data drawn with the general-purpose ``plots.adaptation.fine_tuning_figure``.
Target: median redraw < 100 ms on a 2-core CPU.  Usage: python benchmarks/explorer_latency.py [--repeats 30]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import matplotlib  # noqa: E402

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from metalearn_lite import evaluation  # noqa: E402
from metalearn_lite.baselines import fine_tuning_data  # noqa: E402
from metalearn_lite.plots.adaptation import fine_tuning_figure  # noqa: E402
from metalearn_lite.plots.sinusoid import explorer_figure  # noqa: E402
from metalearn_lite.plots.style import apply_style  # noqa: E402
from metalearn_lite.utils import default_device, limit_cpu_threads  # noqa: E402

SETTINGS = [  # (inner_lr, inner_steps, k_shot)
    (0.01, 10, 5), (0.01, 1, 5), (0.01, 20, 20), (0.1, 5, 10), (1e-4, 0, 1), (1.0, 20, 10),
]


def timed(fn, repeats: int) -> tuple:
    """Median wall and CPU milliseconds of ``fn()`` over ``repeats`` runs (settings cycled), after a warm-up."""
    fn(0)
    walls, cpus = [], []
    for i in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        fn(i)
        walls.append(1000 * (time.perf_counter() - wall))
        cpus.append(1000 * (time.process_time() - cpu))
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    limit_cpu_threads(args.threads)
    apply_style()
    device = default_device()
    model, starts, _ = evaluation.sinusoid_starts(device=device)
    model = model.to(device)

    def setting(i):
        return SETTINGS[i % len(SETTINGS)]

    def compute(i):
        lr, steps, k = setting(i)
        return evaluation.explorer_data(model, starts, lr, steps, k, task_seed=i)

    def draw(fig):
        fig.canvas.draw()
        plt.close(fig)

    def redraw(i):
        draw(explorer_figure(compute(i)))

    def per_start_compute(i):
        lr, steps, k = setting(i)
        return fine_tuning_data(starts, task_seed=i, k_shot=k, lr=lr, steps=steps, model=model)

    def general_plot(i):
        draw(fine_tuning_figure(compute(i)))

    rows = [("redraw (batched compute + lean figure)", redraw),
            ("  compute only (batched over starts)", compute)]
    if device.type == "cpu":  # notebook 2's path is CPU-only (it converts results with .numpy())
        rows.append(("  baseline: compute per start (maml.adapt x3)", per_start_compute))
    rows.append(("  baseline: batched compute + general figure", general_plot))
    print(f"device {device}, {torch.get_num_threads()} thread(s), {os.cpu_count()} cores, "
          f"{args.repeats} redraws over {len(SETTINGS)} slider settings")
    results = {}
    for label, fn in rows:
        results[label] = timed(fn, args.repeats)
        print(f"{label:<48} median {results[label][0]:7.1f} ms wall  {results[label][1]:7.1f} ms CPU", flush=True)
    wall = results[rows[0][0]][0]
    print(f"target: median redraw < 100 ms -> {'met' if wall < 100 else 'NOT met'} ({wall:.1f} ms)")


if __name__ == "__main__":
    main()
