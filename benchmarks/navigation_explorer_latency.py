"""Redraw latency of notebook 7's goal explorer: what one slider move costs, against the old path.

A move = ``meta_rl.explorer_data`` for the three starts (MAML, pretrained, random init) adapting to one goal with
20 episodes of 100 steps per policy-gradient step + a PNG of the figure. Replayed: a session of single-slider
moves (a new goal, a new step size, more or fewer steps), ``--moves`` of them, median, 90th percentile and
maximum reported. Both paths are timed interleaved, move by move, in the same run:
  * explorer: ``widgets.navigation.navigation_explorer`` itself (``explorer.set``): its cache of pre-update
    episodes per goal, the persistent ``NavigationExplorerFigure`` updated in place, PNG bytes into its
    ``ipywidgets.Image``;
  * old: no cache, a new two-panel figure of the same content drawn from scratch, PNG as the inline backend makes
    it (``savefig(bbox_inches="tight")``): what the explorer did before it had a live figure.
Target: every move under 200 ms on a 2-core CPU. Asserts nothing about time.
Usage: python benchmarks/navigation_explorer_latency.py [--moves 24] [--threads 1]
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

from metalearn_lite.meta_rl import explorer_data  # noqa: E402
from metalearn_lite.plots.navigation import LABELS, draw_paths, plot_return_curves, setup_arena  # noqa: E402
from metalearn_lite.plots.style import PALETTE, apply_style  # noqa: E402
from metalearn_lite.utils import limit_cpu_threads  # noqa: E402
from metalearn_lite.widgets.navigation import navigation_explorer, shipped_starts  # noqa: E402

MOVES = [{"goal_x": 0.1}, {"goal_y": 0.35}, {"inner_lr": 0.3}, {"inner_steps": 5}, {"goal_x": -0.4},
         {"inner_steps": 2}, {"inner_lr": 0.8}, {"goal_y": -0.45}, {"inner_lr": 0.5}, {"goal_x": 0.25},
         {"inner_steps": 3}, {"goal_y": 0.0}]


def old_move(starts, state) -> float:
    start = time.perf_counter()
    view = explorer_data(starts, (state["goal_x"], state["goal_y"]), state["inner_lr"], state["inner_steps"])
    fig, (left, right) = plt.subplots(1, 2, figsize=(9.5, 4.0), gridspec_kw={"width_ratios": [1, 1.15]})
    setup_arena(left, view.goal, "dashed before, solid after")
    for name in view.returns:
        draw_paths(left, *view.before[name], PALETTE[name], 5, "--", 0.35)
        draw_paths(left, *view.after[name], PALETTE[name], 5, "-", 0.9, LABELS[name])
    left.legend(loc="lower left", fontsize=8)
    plot_return_curves(right, view.returns, title=f"inner lr {view.inner_lr:g}")
    fig.tight_layout()
    fig.savefig(io.BytesIO(), format="png", bbox_inches="tight")
    plt.close(fig)
    return time.perf_counter() - start


def new_move(explorer, move: dict) -> float:
    start = time.perf_counter()
    explorer.set(**move)
    assert explorer.last_error is None, explorer.last_error
    return time.perf_counter() - start


def report(name: str, times) -> float:
    times = sorted(times)
    print(f"  {name:<40} median {1000 * statistics.median(times):6.0f} ms   "
          f"90th percentile {1000 * times[int(0.9 * (len(times) - 1))]:6.0f} ms   max {1000 * times[-1]:6.0f} ms")
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--moves", type=int, default=24)
    parser.add_argument("--threads", type=int, default=1, help="as notebook 7 sets (limit_cpu_threads(1))")
    args = parser.parse_args()
    limit_cpu_threads(args.threads)
    apply_style()
    print(f"load average: {os.getloadavg()[0]:.2f}, threads: {args.threads}, cores: {os.cpu_count()}, "
          f"{args.moves} moves (3 starts, 20 episodes of 100 steps per policy-gradient step)")
    starts = shipped_starts()
    state = {"goal_x": 0.3, "goal_y": -0.2, "inner_lr": 0.5, "inner_steps": 3}
    explorer = navigation_explorer(starts, goal=(0.3, -0.2), inner_lr=0.5, inner_steps=3)   # as notebook 7
    new, old = [], []
    for index in range(args.moves):
        move = MOVES[index % len(MOVES)]
        state.update(move)
        new.append(new_move(explorer, move))
        old.append(old_move(starts, state))
    ratio = report("old (no cache, new figure, tight PNG)", old) / report("explorer (cache, live figure)", new)
    print(f"  ratio old / explorer (median): {ratio:.2f}")


if __name__ == "__main__":
    main()
