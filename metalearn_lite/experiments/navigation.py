"""Train the 2-D navigation checkpoints of notebook 7 (MAML paper, Finn et al. 2017, section 5.3).

Usage (the commands that made the shipped checkpoints are in metalearn_lite/checkpoints/README.md)::

    python -m metalearn_lite.experiments.navigation --method maml --meta-steps N --out PATH
    python -m metalearn_lite.experiments.navigation --method pretrained --meta-steps N --out PATH

``maml``: Gaussian MLP policy 2-100-100-2, meta-batch of ``--meta-batch-size`` goals, ``--n-trajectories`` episodes
of 100 steps per goal, one policy-gradient inner step of ``--inner-lr`` (linear feature baseline, standardised
advantages), the unbiased second-order DiCE meta-gradient (``meta_rl.meta_objective``, ``--estimator``), Adam with
``--meta-lr`` as the outer optimiser (the paper used TRPO). ``pretrained``: the same policy trained by ordinary policy
gradient (Adam) on ``--meta-batch-size`` goals sampled fresh every step: the paper's "pretrained" baseline.

The shipped MAML file used ``--inner-lr 0.5 --estimator no_pre_update`` (``meta_rl``'s docstring says why).
After training the checkpoint is evaluated on ``meta_rl.evaluate``'s 100 fixed, seeded goals (return after 0..3
policy-gradient steps of ``--inner-lr`` each, 20 episodes per step) and the table is stored in its metadata. Every flag is checked before
the first step; Ctrl-C stops between two steps and leaves ``--out`` untouched (``--save-on-interrupt`` keeps the
progress next to it); the file is written atomically and read back with ``weights_only=True``.
"""

from __future__ import annotations

import argparse
import math
import shlex
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

import torch
from tqdm.auto import tqdm

from .. import __version__
from .. import meta_rl
from ..navigation import sample_goals
from ..policy import GaussianPolicy
from ..train import History, NonFiniteLossError, TrainingInterrupted, load_checkpoint, save_checkpoint, stop_requests
from ..utils import limit_cpu_threads, seed_everything
from . import stopping
from .preflight import SEED, THREADS, Range, check_output, check_ranges, run_checks
from .provenance import git_commit

METHODS = ("maml", "pretrained")
MODEL_CONFIG = {"obs_dim": 2, "action_dim": 2, "hidden": [100, 100], "init_std": 1.0}
DEFAULTS = {"meta_batch_size": 20, "n_trajectories": 20, "inner_lr": 0.1, "meta_lr": 1e-3, "std_lr": None,
            "estimator": "dice"}
"""The command's defaults: the paper's meta-batch (20 goals), episodes per goal (20) and inner step (0.1); Adam's
``meta_lr`` stands in for TRPO's step size; ``std_lr`` (None: ``meta_lr``) is Adam's rate for the policy's
log standard deviation alone."""
PROG = "python -m metalearn_lite.experiments.navigation"
TASK_FAMILY = "navigation"
EVAL_STEPS = 3
RANGES = {"--meta-steps": Range(1), "--seed": SEED, "--meta-batch-size": Range(1), "--n-trajectories": Range(2),
          "--inner-lr": Range(positive=True), "--meta-lr": Range(positive=True), "--std-lr": Range(positive=True),
          "--log-every": Range(1),
          "--threads": THREADS, "--eval-goals": Range(2)}


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=PROG, description="Train a 2-D navigation policy (MAML or pretrained).")
    parser.add_argument("--method", choices=METHODS, default="maml", help="maml (default) or pretrained")
    parser.add_argument("--meta-steps", type=int, default=1000, help="outer steps")
    parser.add_argument("--out", type=Path, required=True, help="where to write the checkpoint (.pt)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the initialisation, goals and episodes")
    parser.add_argument("--meta-batch-size", type=int, default=DEFAULTS["meta_batch_size"], help="goals per step")
    parser.add_argument("--n-trajectories", type=int, default=DEFAULTS["n_trajectories"],
                        help="episodes per goal and inner step (paper: 20)")
    parser.add_argument("--inner-lr", type=float, default=DEFAULTS["inner_lr"],
                        help="policy-gradient inner step (paper: 0.1; the authors' script: 0.5)")
    parser.add_argument("--meta-lr", type=float, default=DEFAULTS["meta_lr"], help="Adam's learning rate")
    parser.add_argument("--std-lr", type=float, default=DEFAULTS["std_lr"],
                        help="Adam's learning rate for the policy's log standard deviation (default: --meta-lr)")
    parser.add_argument("--estimator", choices=meta_rl.ESTIMATORS, default=DEFAULTS["estimator"],
                        help="meta-gradient estimator (maml only; see meta_rl)")
    parser.add_argument("--eval-goals", type=int, default=100, help="goals of the evaluation stored in the file")
    parser.add_argument("--log-every", type=int, default=10, help="history resolution in steps")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--force", action="store_true",
                        help="replace --out even when it is not a navigation checkpoint of this package")
    parser.add_argument("--save-on-interrupt", action="store_true",
                        help="on Ctrl-C, save the steps done so far as <out stem>.interrupted-step<N>.pt")
    args = parser.parse_args(argv)
    run_checks(PROG, [lambda: check_ranges(args, RANGES)])
    return args


def make_optimizer(policy: GaussianPolicy, meta_lr: float, std_lr: Optional[float] = None) -> torch.optim.Adam:
    """Adam over the policy: ``meta_lr`` for the mean network, ``std_lr`` (default ``meta_lr``) for ``log_std``.

    Why a rate of its own: Adam moves each parameter by at most about its rate per step, and at 1e-3 the learned
    spread stayed near its initial value (log std -0.12 after 800 MAML steps, still -0.13 after 500 steps at 3e-3),
    while the paper's TRPO bounds the policy's change in KL, in which a change of log std weighs no more than a
    change of the mean. A 10x rate for ``log_std`` alone moved it (about -0.5 within 500 steps); it keeps falling
    with longer training (-0.95 after 2,500 steps), and then the returns after 2-3 steps get worse again.
    """
    spread = [policy.log_std]
    body = [p for name, p in policy.named_parameters() if name != "log_std"]
    return torch.optim.Adam([{"params": body, "lr": meta_lr},
                             {"params": spread, "lr": meta_lr if std_lr is None else std_lr}])


def train(args, policy: GaussianPolicy) -> History:
    """Train ``policy`` in place; returns the history (``losses``: minus the mean return the step optimised,
    after adaptation for MAML, before for pretrained). Stops between steps on Ctrl-C (``TrainingInterrupted``)."""
    generator = torch.Generator().manual_seed(args.seed)
    optimizer = make_optimizer(policy, args.meta_lr, args.std_lr)
    settings = {"n_trajectories": args.n_trajectories}
    if args.method == "maml":
        settings.update(inner_lr=args.inner_lr, estimator=args.estimator)
    step_fn = meta_rl.meta_step if args.method == "maml" else meta_rl.pretrain_step
    history, window = History(), []
    bar = tqdm(total=args.meta_steps, desc=args.method, disable=args.quiet, mininterval=1.0)
    with stop_requests() as stop_requested:
        for step in range(1, args.meta_steps + 1):
            if stop_requested():
                bar.close()
                raise TrainingInterrupted(step - 1, history)
            goals = sample_goals(args.meta_batch_size, generator)
            result = step_fn(policy, optimizer, goals, generator, **settings)
            history.meta_steps_done = step
            value = result.post_return
            if not math.isfinite(value) or not all(torch.isfinite(p).all() for p in policy.parameters()):
                raise NonFiniteLossError(step, float("nan") if math.isfinite(value) else value,
                                         {"meta_lr": args.meta_lr, "std_lr": args.std_lr or args.meta_lr,
                                          "inner_lr": args.inner_lr})
            window.append(-value)
            bar.update()
            if step % args.log_every == 0 or step == args.meta_steps:
                history.record(step, sum(window) / len(window), float("nan"))
                bar.set_postfix(ret=f"{-history.losses[-1]:.1f}", refresh=False)
                window = []
    bar.close()
    return history


def main(argv: Optional[Sequence[str]] = None) -> Path:
    args = parse_args(argv)
    run_checks(PROG, [lambda: check_output(args.out, args.force, TASK_FAMILY)])
    threads = limit_cpu_threads(args.threads)
    seed_everything(args.seed)
    policy = GaussianPolicy(**MODEL_CONFIG)
    command = f"{PROG} " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    print(f"{args.method}: {args.meta_steps} steps, seed {args.seed}, {threads} thread(s) -> {args.out}", flush=True)
    start = time.perf_counter()
    try:
        history = train(args, policy)
    except NonFiniteLossError as error:
        stopping.diverged(PROG, error)
    except TrainingInterrupted as stop:
        save = (lambda path, stop=stop: _save(path, args, policy, stop.history, stop.step,
                                              time.perf_counter() - start, command, threads, None,
                                              interrupted=True)) if args.save_on_interrupt else None
        stopping.interrupted(args.out, stop.step, save, TASK_FAMILY)
    except KeyboardInterrupt:   # a second Ctrl-C: stopped at once, possibly inside a step
        stopping.interrupted(args.out, None, None, TASK_FAMILY)
    wall_time = time.perf_counter() - start
    curve = meta_rl.evaluate(policy, n_goals=args.eval_goals, inner_steps=EVAL_STEPS, inner_lr=args.inner_lr,
                             n_trajectories=args.n_trajectories)
    evaluation = {"n_goals": args.eval_goals, "seed": meta_rl.EVAL_SEED, "inner_lr": args.inner_lr,
                  "n_trajectories": args.n_trajectories,
                  "mean": [round(curve.mean(k), 3) for k in range(EVAL_STEPS + 1)],
                  "ci95": [round(curve.ci95(k), 3) for k in range(EVAL_STEPS + 1)]}
    path = _save(args.out, args, policy, history, args.meta_steps, wall_time, command, threads, evaluation)
    print(f"done in {wall_time:.0f} s ({wall_time / 60:.1f} min); return after 0..{EVAL_STEPS} steps on "
          f"{args.eval_goals} new goals: {curve.row()}; wrote {path} ({path.stat().st_size / 1024:.0f} KiB)",
          flush=True)
    return path


def _save(path: Path, args, policy: GaussianPolicy, history: History, steps: int, wall_time: float, command: str,
          threads: int, evaluation: Optional[dict], **extra) -> Path:
    """Write the checkpoint with its provenance, and read it back as a student would."""
    settings = {k: getattr(args, k) for k in DEFAULTS}
    path = save_checkpoint(
        path, policy, MODEL_CONFIG, history,
        task_family=TASK_FAMILY, method=args.method, command=command, seed=args.seed, steps=steps,
        settings=settings, evaluation=evaluation, wall_time_s=round(wall_time, 1), threads=threads,
        torch_version=str(torch.__version__), package_version=__version__, git_commit=git_commit(),
        trained_on=time.strftime("%Y-%m-%d", time.gmtime()), **extra)
    load_checkpoint(path, task_family=TASK_FAMILY)  # fails now, not in a notebook, if anything needs pickles
    return path


if __name__ == "__main__":
    main()
