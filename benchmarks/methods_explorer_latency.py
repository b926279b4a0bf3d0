"""Redraw latency of notebook 6's methods explorer: what one control move costs, against a fresh recompute.

A move = ``methods.comparison_data`` for the chosen methods on one 5-way 1-shot episode (each adapts its own way)
+ a new figure rendered to PNG as the inline backend does. Replayed: a session of single-control moves (inner lr,
steps, episode, one method added or removed), ``--repeats`` moves, median and 90th percentile reported. The
baseline, timed interleaved in the same run, is the same move with an empty cache (every chosen method adapted
again), which is what a move costs without the explorer's per-method cache. Target: median under 500 ms on a 2-core
CPU. Needs the shipped notebook-6 checkpoints and the Omniglot data (``METALEARN_DATA``).
Usage: python benchmarks/methods_explorer_latency.py [--repeats 24] [--threads 1]
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

from metalearn_lite import methods, train  # noqa: E402
from metalearn_lite.data import load_omniglot  # noqa: E402
from metalearn_lite.experiments.beyond_maml import RUNS, checkpoint_name  # noqa: E402
from metalearn_lite.plots.methods import draw_method_comparison  # noqa: E402
from metalearn_lite.plots.style import apply_style  # noqa: E402
from metalearn_lite.utils import limit_cpu_threads  # noqa: E402

MOVES = [{"inner_lr": 0.1}, {"inner_lr": 0.4}, {"inner_steps": 10}, {"inner_steps": 5}, {"episode": 2},
         {"chosen_drop": "protonet"}, {"chosen_add": "protonet"}, {"episode": 3}]


def one_move(learners, characters, state, cache) -> float:
    start = time.perf_counter()
    data = methods.comparison_data(learners, state["chosen"], state["episode"], state["inner_lr"],
                                   state["inner_steps"], characters, cache=cache)
    fig = draw_method_comparison(data)
    fig.savefig(io.BytesIO(), format="png", bbox_inches="tight")
    plt.close(fig)
    return time.perf_counter() - start


def apply(move: dict, state: dict) -> None:
    for key, value in move.items():
        if key == "chosen_drop":
            state["chosen"] = [name for name in state["chosen"] if name != value]
        elif key == "chosen_add":
            state["chosen"] = state["chosen"] + [value]
        else:
            state[key] = value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=24)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    limit_cpu_threads(args.threads)
    apply_style()
    print(f"load average: {os.getloadavg()[0]:.2f}, threads: {args.threads}")
    learners = {run: methods.load_learner(train.shipped_checkpoint(checkpoint_name(run))) for run in RUNS}
    characters = load_omniglot("test")
    state = {"chosen": list(learners), "episode": 1, "inner_lr": 0.4, "inner_steps": 5}
    cache, cached, fresh = {}, [], []
    one_move(learners, characters, state, cache)   # the explorer's first view
    for index in range(args.repeats):
        apply(MOVES[index % len(MOVES)], state)
        cached.append(one_move(learners, characters, state, cache))
        fresh.append(one_move(learners, characters, state, {}))
    for name, times in (("explorer (per-method cache)", cached), ("no cache (all methods again)", fresh)):
        times = sorted(times)
        print(f"{name:<30} median {1000 * statistics.median(times):6.0f} ms   "
              f"90th percentile {1000 * times[int(0.9 * (len(times) - 1))]:6.0f} ms")
    print(f"ratio no-cache / explorer (median): {statistics.median(fresh) / statistics.median(cached):.2f}")


if __name__ == "__main__":
    main()
