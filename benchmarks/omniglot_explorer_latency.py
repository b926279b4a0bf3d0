"""Redraw latency of notebook 5's Omniglot episode explorer: what one slider move costs, compute + PNG.

A redraw = ``episode_adaptation`` (adapt the checkpoint to one 5-way 1-shot episode, query accuracy after every
step) + ``draw_episode_adaptation`` + rendering the figure to PNG (what the inline backend does). The slider moves
replayed: learning-rate changes at 10 and 20 steps (a fresh adaptation), step changes (continued or sliced from
the explorer's cache), a new episode, a diverging learning rate. Median over repeats.
Baseline measured in the same run: the same moves without the cache, drawn with the general ``plot_episode``
grid of subplots (one subplot per image) next to the accuracy curve.
Target: median redraw < 500 ms on a 2-core CPU.  Usage: python benchmarks/omniglot_explorer_latency.py [--repeats 3]
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

from metalearn_lite.data import load_omniglot  # noqa: E402
from metalearn_lite.few_shot import default_checkpoint, load_initialisation  # noqa: E402
from metalearn_lite.plots.episodes import plot_episode  # noqa: E402
from metalearn_lite.plots.style import apply_style  # noqa: E402
from metalearn_lite.utils import limit_cpu_threads  # noqa: E402
from metalearn_lite.few_shot import episode_adaptation  # noqa: E402
from metalearn_lite.plots.episodes import draw_episode_adaptation  # noqa: E402

MOVES = [  # (inner_lr, inner_steps, episode): a student's session
    (0.4, 10, 0), (0.4, 15, 0), (0.4, 3, 0), (1.0, 3, 0), (1.0, 10, 0), (0.1, 10, 0), (0.1, 20, 0),
    (0.1, 20, 1), (10.0, 20, 1), (0.4, 10, 2), (0.4, 0, 2), (0.02, 10, 2),
]


def redraw(data, grid: bool) -> None:
    if grid:
        fig = plot_episode(data["batch"], predictions=data["predictions"], max_query_per_class=2)
        curve = plt.figure(figsize=(4, 3))
        curve.gca().plot(data["steps"], data["accuracies"], "o-")
        figures = [fig, curve]
    else:
        figures = [draw_episode_adaptation(data)]
    for fig in figures:
        fig.savefig(io.BytesIO(), format="png")
        plt.close(fig)


def session(model, params, characters, cached: bool, grid: bool) -> list:
    cache = {} if cached else None
    times = []
    for inner_lr, inner_steps, episode in MOVES:
        start = time.perf_counter()
        data = episode_adaptation(inner_lr, inner_steps, episode, model, params, characters, cache=cache)
        redraw(data, grid)
        times.append(1000 * (time.perf_counter() - start))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    limit_cpu_threads(args.threads)
    apply_style()
    model, params, _ = load_initialisation(default_checkpoint())
    characters = load_omniglot("test")
    session(model, params, characters, True, False)  # warm-up
    results = {}
    for name, cached, grid in (("explorer (cache, mosaic)", True, False), ("baseline (no cache, subplots)", False,
                                                                              True)):
        times = [t for _ in range(args.repeats) for t in session(model, params, characters, cached, grid)]
        results[name] = times
        print(f"{name:32s} median {statistics.median(times):6.0f} ms   max {max(times):6.0f} ms   "
              f"({len(times)} redraws)")
    ours, base = (statistics.median(t) for t in results.values())
    print(f"speed-up of the median redraw: {base / ours:.1f}x; target < 500 ms: "
          f"{'met' if ours < 500 else 'NOT met'}")


if __name__ == "__main__":
    main()
