"""Notebook 6's Omniglot table: every method at the same budget of meta-steps, scored once on the test alphabets.

    python -m metalearn_lite.experiments.beyond_maml --out-dir metalearn_lite/checkpoints --meta-steps 600 --jobs 2

For each run below this trains a checkpoint with the package's own command (``experiments/omniglot.py``, one CPU
thread each, ``--jobs`` at a time), records its training seconds and peak memory (the training process's maximum
resident set), evaluates it on the held-out alphabets (600 seeded episodes per setting, the challenge for every
method that can output 20 classes) and writes the table to ``beyond_maml_omniglot.json`` in ``--out-dir``.

The budget is equal meta-steps, with the same meta-batch of episodes: every method sees the same number of training
episodes, and the number does not depend on how busy the machine is. The cost of each method shows in its own
column (seconds per meta-step), so the cost-vs-accuracy picture is training seconds = steps x seconds per step.

No setting below was chosen by looking at test numbers: every run shares the recipe of the shipped MAML checkpoint
(Conv4-48, 10-way 1-shot training episodes, meta-batch 5, Adam 1e-3 with a cosine schedule, 2-pixel shifts), and
each method keeps the inner settings of its paper where the recipe has none: a learned head trains on 5-way episodes
with one step at 0.4 (MAML paper, section 5.2), Reptile takes 5 inner steps (Nichol et al. 2018, appendix A) at 0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from .provenance import git_commit

PROG = "python -m metalearn_lite.experiments.beyond_maml"
TABLE_NAME = "beyond_maml_omniglot.json"

RUNS: Dict[str, List[str]] = {   # name -> flags of experiments/omniglot.py
    "maml": ["--method", "maml"],
    "fomaml": ["--method", "fomaml"],
    "meta_sgd": ["--method", "meta_sgd"],
    "protonet": ["--method", "protonet"],
    "maml_learned_head": ["--method", "maml", "--no-zero-head", "--n-way", "5"],
    "anil_learned_head": ["--method", "anil", "--no-zero-head", "--n-way", "5"],
    "reptile_learned_head": ["--method", "reptile", "--no-zero-head", "--n-way", "5", "--inner-steps", "5",
                             "--inner-lr", "0.1"],
}
EVALUATION = [(5, 1, "query", "trained"), (5, 5, "query", "trained"), (20, 1, "query", "trained")]


def checkpoint_name(run: str) -> str:
    return f"omniglot_{run}.pt"


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("--out-dir", type=Path, required=True, help="where the checkpoints and the table go")
    parser.add_argument("--meta-steps", type=int, default=600, help="the equal budget of every method")
    parser.add_argument("--jobs", type=int, default=2, help="trainings at once (one CPU thread each)")
    parser.add_argument("--episodes", type=int, default=600, help="test episodes per setting")
    parser.add_argument("--runs", nargs="+", choices=list(RUNS), default=list(RUNS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--force", action="store_true", help="retrain runs whose checkpoint exists")
    args = parser.parse_args(argv)
    for name, minimum in (("meta_steps", 1), ("jobs", 1), ("episodes", 2)):
        if getattr(args, name) < minimum:
            parser.error(f"--{name.replace('_', '-')} must be at least {minimum}, got {getattr(args, name)}")
    return args


def training_command(run: str, path: Path, meta_steps: int, seed: int) -> List[str]:
    return [sys.executable, "-m", "metalearn_lite.experiments.omniglot", "--out", str(path), *RUNS[run],
            "--meta-steps", str(meta_steps), "--seed", str(seed), "--threads", "1", "--quiet", "--force"]


def train_all(args) -> Dict[str, dict]:
    """Train the runs whose checkpoint is missing, ``--jobs`` at a time; their seconds and peak memory."""
    pending = [run for run in args.runs if args.force or not (args.out_dir / checkpoint_name(run)).exists()]
    running, costs = {}, {}
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    while pending or running:
        while pending and len(running) < args.jobs:
            run = pending.pop(0)
            command = training_command(run, args.out_dir / checkpoint_name(run), args.meta_steps, args.seed)
            print(f"training {run}: {' '.join(shlex.quote(c) for c in command[1:])}", flush=True)
            running[subprocess.Popen(command, env=env).pid] = (run, time.perf_counter())
        pid, status, usage = os.wait4(-1, 0)   # one child's own peak memory, not the largest of all children
        run, start = running.pop(pid)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"{PROG}: training {run} failed (exit {os.waitstatus_to_exitcode(status)})")
        costs[run] = {"train_seconds": round(time.perf_counter() - start, 1),
                      "peak_memory_mib": round(usage.ru_maxrss / 1024)}   # ru_maxrss is in KiB on Linux
        print(f"trained {run}: {costs[run]}", flush=True)
    return costs


def evaluate_run(path: Path, episodes: int) -> dict:
    """The table's evaluation of one checkpoint: each method adapts as it was trained (its inner lr and steps)."""
    from ..train import load_checkpoint
    from .omniglot import evaluate
    _, payload = load_checkpoint(path, task_family="omniglot")
    trained_steps = payload["metadata"]["settings"]["inner_steps"]   # Reptile: 5; the others: 1
    return evaluate(path, episodes, trained_steps, quiet=True, settings_to_run=EVALUATION,
                    challenge_adaptations=("trained",))


def row(run: str, path: Path, costs: dict, evaluation: dict) -> dict:
    from ..train import load_checkpoint
    _, payload = load_checkpoint(path)
    metadata = payload["metadata"]
    results = {f"{e['n_way']}-way {e['k_shot']}-shot": ({"accuracy": e["accuracy"], "ci95": e["ci95"],
                                                         "n_episodes": e["n_episodes"]} if "accuracy" in e
                                                        else {"skipped": e["skipped"]})
               for e in evaluation["episodes"]}
    challenge = evaluation.get("challenge_trained")
    steps = metadata["steps"]
    seconds = round(60 * metadata["minutes"], 1)   # the training loop itself (the process also loads the data)
    return {"run": run, "method": metadata.get("method", "maml"), "flags": RUNS[run],
            "zero_head": metadata["settings"]["zero_head"], "meta_steps": steps, **results,
            "challenge_error": None if challenge is None else challenge["error"],
            "train_seconds": seconds, "seconds_per_step": round(seconds / steps, 3),
            "process_seconds": costs.get("train_seconds"), "peak_memory_mib": costs.get("peak_memory_mib")}


def main(argv: Optional[Sequence[str]] = None) -> Path:
    args = parse_args(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    table_path = args.out_dir / TABLE_NAME
    old = {r["run"]: r for r in json.loads(table_path.read_text())["rows"]} if table_path.exists() else {}
    costs = train_all(args)
    from ..utils import limit_cpu_threads
    limit_cpu_threads(args.jobs)   # the trainings are done: evaluation may use the cores they used
    rows = {run: old_row for run, old_row in old.items() if run not in args.runs}   # the runs not asked for stay
    for run in args.runs:
        path = args.out_dir / checkpoint_name(run)
        if run not in costs and run in old:   # not retrained: keep the measured cost of its training
            costs[run] = {"train_seconds": old[run]["process_seconds"], "peak_memory_mib": old[run]["peak_memory_mib"]}
        print(f"evaluating {run} ...", flush=True)
        rows[run] = row(run, path, costs.get(run, {}), evaluate_run(path, args.episodes))
        print(json.dumps(rows[run]), flush=True)
    rows = [rows[run] for run in RUNS if run in rows]
    command = f"{PROG} " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    table = {"command": command, "git_commit": git_commit(), "budget": f"{args.meta_steps} meta-steps each, "
             "meta-batch 5, one CPU thread per training", "evaluation": f"{args.episodes} episodes per setting, "
             "seeded, held-out alphabets of the minimal split, batch norm over the query batch, each method's "
             "trained adaptation; challenge: 20 runs, 20-way within-alphabet 1-shot", "rows": rows}
    temporary = table_path.with_suffix(".json.tmp")   # nothing half-written if interrupted
    temporary.write_text(json.dumps(table, indent=1) + "\n")
    temporary.replace(table_path)
    print(f"wrote {table_path}")
    return table_path


if __name__ == "__main__":
    main()
