"""Redraw latency of notebook 6's methods explorer: what one control move costs, against the old path.

A move = ``methods.comparison_data`` for the chosen methods on one 5-way 1-shot episode (each adapts its own way)
+ a PNG of the figure. Replayed: a session of single-control moves (inner lr, steps, episode, one method added or
removed), ``--repeats`` moves, median and 90th percentile reported, for two selections: the explorer's first
choice (MAML, ANIL, Meta-SGD, ProtoNet) and all seven methods; then all seven at the slider's end (``LONG_MOVES``:
15 and 20 steps, each move a new inner lr or episode, the slowest moves there are). Both paths are timed interleaved, move by move, in
the same run:
  * new: ``widgets.beyond_maml.methods_explorer`` itself (``explorer.set``): its cache (longest curve per method and
    setting; Meta-SGD and ProtoNet do not depend on the inner lr), the persistent ``MethodComparisonFigure``
    updated in place, PNG bytes into its ``ipywidgets.Image``;
  * old: every chosen method adapted again, one at a time, a new ``draw_method_comparison`` figure, PNG as the
    inline backend makes it (``savefig(bbox_inches="tight")``).
Target: every move under 500 ms on a 2-core CPU (the maximum is reported: the moves that need new adaptation). Needs the shipped notebook-6 checkpoints and the Omniglot data
(``METALEARN_DATA``).
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
from metalearn_lite.widgets.beyond_maml import FIRST_CHOICE, methods_explorer  # noqa: E402

MOVES = [{"inner_lr": 0.1}, {"inner_lr": 0.4}, {"inner_steps": 10}, {"inner_steps": 5}, {"episode": 2},
         {"chosen_drop": "protonet"}, {"chosen_add": "protonet"}, {"episode": 3}, {"inner_lr": 1.0},
         {"inner_steps": 3}, {"inner_lr": 0.2}, {"episode": 4}]
LONG_MOVES = [{"inner_steps": 20}, {"inner_lr": 0.3}, {"episode": 5}, {"inner_steps": 15}, {"inner_lr": 0.6},
              {"episode": 6}]
"""The explorer's longest adaptations: 15 and 20 steps (the slider's end), a new inner lr or episode each time."""


def old_move(learners, characters, state) -> float:
    start = time.perf_counter()
    data = methods.comparison_data(learners, state["chosen"], state["episode"], state["inner_lr"],
                                   state["inner_steps"], characters, workers=1)
    fig = draw_method_comparison(data)
    fig.savefig(io.BytesIO(), format="png", bbox_inches="tight")
    plt.close(fig)
    return time.perf_counter() - start


def new_move(explorer, state) -> float:
    start = time.perf_counter()
    explorer.set(**{key: tuple(value) if key == "chosen" else value for key, value in state.items()})
    assert explorer.last_error is None, explorer.last_error
    return time.perf_counter() - start


def apply(move: dict, state: dict) -> None:
    for key, value in move.items():
        if key == "chosen_drop":
            state["chosen"] = [name for name in state["chosen"] if name != value]
        elif key == "chosen_add":
            state["chosen"] = state["chosen"] + [value]
        else:
            state[key] = value


def session(learners, characters, chosen, repeats: int, moves=MOVES) -> tuple:
    state = {"chosen": list(chosen), "episode": 1, "inner_lr": 0.4, "inner_steps": 5}
    explorer = methods_explorer(learners, characters, chosen=state["chosen"], inner_lr=0.4, inner_steps=5,
                                episode=1)   # the explorer's first view, as the notebook shows it
    new, old = [], []
    for index in range(repeats):
        apply(moves[index % len(moves)], state)
        new.append(new_move(explorer, state))
        old.append(old_move(learners, characters, state))
    return new, old


def report(name: str, times) -> float:
    times = sorted(times)
    print(f"  {name:<38} median {1000 * statistics.median(times):6.0f} ms   "
          f"90th percentile {1000 * times[int(0.9 * (len(times) - 1))]:6.0f} ms   max {1000 * times[-1]:6.0f} ms")
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=24)
    parser.add_argument("--threads", type=int, default=1, help="as notebook 6 sets (limit_cpu_threads(1))")
    args = parser.parse_args()
    limit_cpu_threads(args.threads)
    apply_style()
    print(f"load average: {os.getloadavg()[0]:.2f}, threads: {args.threads}, cores: {os.cpu_count()}, "
          f"{args.repeats} moves per selection")
    learners = {run: methods.load_learner(train.shipped_checkpoint(checkpoint_name(run))) for run in RUNS}
    characters = load_omniglot("test")
    for label, chosen, moves, repeats in (
            ("first choice: " + ", ".join(FIRST_CHOICE), FIRST_CHOICE, MOVES, args.repeats),
            ("all seven methods", list(learners), MOVES, args.repeats),
            ("all seven methods, 15 and 20 steps", list(learners), LONG_MOVES, len(LONG_MOVES))):
        print(label)
        new, old = session(learners, characters, chosen, repeats, moves)
        ratio = report("old (adapt all again, new figure)", old) / report("explorer (cache, live figure)", new)
        print(f"  ratio old / explorer (median): {ratio:.2f}")


if __name__ == "__main__":
    main()
