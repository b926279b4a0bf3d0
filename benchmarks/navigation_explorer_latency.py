"""Notebook 7's goal explorer: median latency of one slider move (compute + figure), and of the compute alone.

``python benchmarks/navigation_explorer_latency.py [--moves 10] [--threads 1]``. Prints what it measures (target
<= 200 ms per move on a 2-core laptop); asserts nothing about time.
"""

from __future__ import annotations

import argparse
import statistics
import time

import matplotlib

matplotlib.use("Agg")

import torch  # noqa: E402

from metalearn_lite.widgets.navigation import navigation_explorer, shipped_starts  # noqa: E402
from metalearn_lite.meta_rl import explorer_data  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    starts = shipped_starts()
    explorer = navigation_explorer(starts)
    xs = [round(-0.45 + 0.9 * i / max(args.moves - 1, 1), 2) for i in range(args.moves)]
    move, compute = [], []
    for x in xs:   # a new goal each move: the pre-update episodes are not cached
        start = time.perf_counter()
        explorer.set(goal_x=x)
        move.append(time.perf_counter() - start)
    for lr in (0.3, 0.4, 0.6, 0.7, 0.8):   # a new step size: pre-update episodes cached
        start = time.perf_counter()
        explorer.set(inner_lr=lr)
        move.append(time.perf_counter() - start)
    for x in xs:
        start = time.perf_counter()
        explorer_data(starts, (x, 0.1), 0.5, 3)
        compute.append(time.perf_counter() - start)
    print(f"threads {args.threads}: median per move (compute + figure) {1e3 * statistics.median(move):.0f} ms, "
          f"compute alone {1e3 * statistics.median(compute):.0f} ms, over {len(move)} / {len(compute)} moves "
          f"(3 starts, 3 steps, 20 episodes of 100 steps per step; target <= 200 ms per move)")


if __name__ == "__main__":
    main()
