"""Train the sinusoid-regression checkpoints of notebook 4 (MAML paper, Finn et al. 2017, section 5.1).

Usage (the commands that made the shipped checkpoints)::

    python -m metalearn_lite.experiments.sinusoid --method maml --meta-steps 70000 \\
        --out metalearn_lite/checkpoints/sinusoid_maml.pt
    python -m metalearn_lite.experiments.sinusoid --method pretrained --meta-steps 70000 \\
        --out metalearn_lite/checkpoints/sinusoid_pretrained.pt

``maml``: MLP 1-40-40-1, meta-batch 25 tasks, K=10 support and 10 query points per task, one inner step with
``inner_lr=0.01``, second-order meta-gradient, Adam with ``meta_lr=1e-3`` (the paper's settings).
The relatives of MAML (notebook 6) train with the same settings and the same loop (``train.meta_train``):
``fomaml`` (first order), ``reptile`` (default 5 inner steps; Adam on theta - mean phi), ``anil`` (the last linear
layer adapted in the inner loop), ``meta_sgd`` (learned per-parameter rates, starting at ``--inner-lr``; stored in
the checkpoint's metadata as ``inner_lrs``). ``methods.learner_from_checkpoint`` rebuilds any of them.
``pretrained``: the same MLP trained by ordinary regression on the pooled points of 25 tasks per step (K=10 each),
Adam 1e-3, for the same number of steps: the paper's "pretrained on all tasks" baseline.

Before the first step every flag is checked (ranges, and that ``--out`` can be written and holds no file of
someone else's: replacing anything but a sinusoid checkpoint needs ``--force``). Ctrl-C leaves ``--out`` untouched
(``--save-on-interrupt`` keeps the progress next to it); a diverging run stops with the step and the learning rates.
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

from .. import __version__
from ..baselines import pretrain
from ..methods import INNER_STEPS, learner_from_checkpoint, make_learner
from ..models import MLP
from ..tasks import SinusoidTasks
from ..train import (History, NonFiniteLossError, TrainingInterrupted, load_checkpoint, meta_train,
                     save_checkpoint, stop_requests)
from ..utils import limit_cpu_threads, seed_everything
from . import stopping
from .preflight import SEED, THREADS, PreflightError, Range, check_output, check_ranges, run_checks
from .provenance import git_commit

METHODS = ("maml", "pretrained", "fomaml", "reptile", "anil", "meta_sgd")
INITS = ("torch", "paper")
MODEL_CONFIG = {"in_features": 1, "hidden": [40, 40], "out_features": 1}
PAPER_SETTINGS = {"meta_batch_size": 25, "k_shot": 10, "k_query": 10, "inner_lr": 0.01, "inner_steps": 1,
                  "meta_lr": 1e-3}
PROG = "python -m metalearn_lite.experiments.sinusoid"
TASK_FAMILY = "sinusoid"
RANGES = {"--meta-steps": Range(1), "--seed": SEED, "--meta-batch-size": Range(1), "--k-shot": Range(1),
          "--k-query": Range(1), "--inner-lr": Range(positive=True), "--inner-steps": Range(0),
          "--meta-lr": Range(positive=True), "--log-every": Range(1), "--threads": THREADS}


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=PROG,
                                     description="Train a sinusoid-regression checkpoint (MAML, a relative, or pretrained).")
    parser.add_argument("--method", choices=METHODS, default="maml",
                        help="maml (default), pretrained, or a relative of MAML: fomaml, reptile, anil, meta_sgd")
    parser.add_argument("--meta-steps", type=int, default=70000, help="outer steps (paper: 70000)")
    parser.add_argument("--out", type=Path, required=True, help="where to write the checkpoint (.pt)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the initialisation and the task stream")
    parser.add_argument("--meta-batch-size", type=int, default=PAPER_SETTINGS["meta_batch_size"])
    parser.add_argument("--k-shot", type=int, default=PAPER_SETTINGS["k_shot"])
    parser.add_argument("--k-query", type=int, default=PAPER_SETTINGS["k_query"])
    parser.add_argument("--inner-lr", type=float, default=PAPER_SETTINGS["inner_lr"])
    parser.add_argument("--inner-steps", type=int, default=None,
                        help=f"inner gradient steps (default {PAPER_SETTINGS['inner_steps']}; reptile: "
                             f"{INNER_STEPS['reptile']})")
    parser.add_argument("--meta-lr", type=float, default=PAPER_SETTINGS["meta_lr"])
    parser.add_argument("--init", choices=INITS, default="torch",
                        help="torch: PyTorch's default initialisation; paper: the authors' code (weights from a "
                             "truncated normal with std 0.01, zero biases)")
    parser.add_argument("--log-every", type=int, default=100, help="history resolution in steps")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: this workload is too small to gain from more)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--force", action="store_true",
                        help="replace --out even when it is not a sinusoid checkpoint of this package")
    parser.add_argument("--save-on-interrupt", action="store_true",
                        help="on Ctrl-C, save the steps done so far as <out stem>.interrupted-step<N>.pt")
    args = parser.parse_args(argv)
    if args.inner_steps is None:
        args.inner_steps = INNER_STEPS.get(args.method, PAPER_SETTINGS["inner_steps"])
    run_checks(PROG, [lambda: check_ranges(args, RANGES)])
    if args.method == "reptile" and args.inner_steps < 1:
        run_checks(PROG, [lambda: _refuse("--inner-steps must be an integer >= 1 for --method reptile, got "
                                          f"{args.inner_steps}")])
    return args


def _refuse(message: str):
    raise PreflightError(message)


def paper_init_(model: MLP, std: float = 0.01) -> MLP:
    """The initialisation of the authors' TensorFlow code (cbfinn/maml): weights ~ truncated normal(0, std^2)
    cut at 2 std, biases 0. In place; returns ``model``."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("weight"):
                torch.nn.init.trunc_normal_(p, std=std, a=-2 * std, b=2 * std)
            else:
                p.zero_()
    return model


def train_maml(args, model: MLP) -> History:
    """Meta-train ``model`` in place with the paper's sinusoid settings (``args.method``: maml or a relative);
    returns the meta-loss history. The learner (a ``MetaSGD``'s rates) is kept as ``args.learner``."""
    family = SinusoidTasks()
    args.learner = make_learner(args.method, model, args.inner_lr, args.inner_steps, "mse", "auto")

    def sample_batch(generator):
        return family.sample(args.meta_batch_size, args.k_shot, args.k_query, generator=generator)

    return meta_train(args.learner, sample_batch, args.meta_steps, meta_lr=args.meta_lr, seed=args.seed,
                      log_every=args.log_every, progress=not args.quiet)


def train_pretrained(args, model: MLP) -> History:
    """Ordinary regression on the pooled points of ``meta_batch_size`` tasks per step; returns the loss history."""
    generator = torch.Generator().manual_seed(args.seed)
    with stop_requests() as stop_requested:
        tasks = _SteppedTasks(SinusoidTasks(), model, args.meta_lr, stop_requested)
        losses = pretrain(model, tasks, steps=args.meta_steps, n_tasks=args.meta_batch_size,
                          k_shot=args.k_shot, lr=args.meta_lr, generator=generator)
    for step, loss in enumerate(losses, start=1):
        tasks.check_loss(step, loss)
    history = History()
    for start in range(0, len(losses), args.log_every):
        window = losses[start:start + args.log_every]
        history.record(start + len(window), sum(window) / len(window), float("nan"))
    return history


class _SteppedTasks:
    """The task family, passed through unchanged (same numbers), that lets Ctrl-C and divergence stop
    ``pretrain`` between two steps.

    Why a wrapper: ``pretrain`` has no per-step hook, but it calls ``tasks.sample`` exactly once at the start of
    each step, so every call but the first marks the end of a step.
    """

    def __init__(self, family: SinusoidTasks, model: MLP, meta_lr: float, stop_requested):
        self.family, self.model, self.meta_lr, self.stop_requested = family, model, meta_lr, stop_requested
        self.steps_done = -1

    def sample(self, *args, **kwargs):
        self.steps_done += 1
        if self.steps_done:
            weights = sum(float(p.detach().sum()) for p in self.model.parameters())
            self.check_loss(self.steps_done, weights)   # NaN weights give NaN losses from the next step on
            if self.stop_requested():
                raise TrainingInterrupted(self.steps_done, History())
        return self.family.sample(*args, **kwargs)

    def check_loss(self, step: int, value: float) -> None:
        if not math.isfinite(value):
            raise NonFiniteLossError(step, value if math.isnan(value) else float("nan"), {"meta_lr": self.meta_lr})


def main(argv: Optional[Sequence[str]] = None) -> Path:
    args = parse_args(argv)
    run_checks(PROG, [lambda: check_output(args.out, args.force, TASK_FAMILY)])
    threads = limit_cpu_threads(args.threads)
    seed_everything(args.seed)
    model = MLP(**MODEL_CONFIG)
    if args.init == "paper":
        paper_init_(model)
    command = f"{PROG} " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    print(f"{args.method}: {args.meta_steps} steps, seed {args.seed}, {threads} thread(s) -> {args.out}", flush=True)
    start = time.perf_counter()
    try:
        history = (train_pretrained if args.method == "pretrained" else train_maml)(args, model)
    except NonFiniteLossError as error:
        stopping.diverged(PROG, error)
    except TrainingInterrupted as stop:
        save = (lambda path, stop=stop: _save(path, args, model, stop.history, stop.step, time.perf_counter() - start,
                                   command, threads, interrupted=True)) if args.save_on_interrupt else None
        stopping.interrupted(args.out, stop.step, save, TASK_FAMILY)
    except KeyboardInterrupt:   # a second Ctrl-C: stopped at once, possibly inside a step
        stopping.interrupted(args.out, None, None, TASK_FAMILY)
    wall_time = time.perf_counter() - start
    path = _save(args.out, args, model, history, args.meta_steps, wall_time, command, threads)
    tail = history.losses[-10:]
    print(f"done in {wall_time:.0f} s ({wall_time / 60:.1f} min); final loss (mean of last {len(tail)} logs) "
          f"{sum(tail) / len(tail):.3f}; wrote {path} ({path.stat().st_size / 1024:.0f} KiB)", flush=True)
    return path


def _save(path: Path, args, model: MLP, history: History, steps: int, wall_time: float, command: str,
          threads: int, **extra) -> Path:
    """Write the checkpoint with its provenance, and read it back as a student would."""
    settings = {k: getattr(args, k) for k in PAPER_SETTINGS}
    settings["init"] = args.init
    if args.method == "meta_sgd":
        extra["inner_lrs"] = args.learner.inner_lrs_as_lists()
    path = save_checkpoint(
        path, model, MODEL_CONFIG, history,
        task_family=TASK_FAMILY, method=args.method, command=command, seed=args.seed, steps=steps,
        settings=settings, wall_time_s=round(wall_time, 1), threads=threads, torch_version=str(torch.__version__),
        package_version=__version__, git_commit=git_commit(),
        trained_on=time.strftime("%Y-%m-%d", time.gmtime()), **extra)
    model, payload = load_checkpoint(path)  # fails now, not in a student's notebook, if it needs weights_only=False
    if args.method != "pretrained":
        learner_from_checkpoint(model, payload)   # and the learner can be rebuilt from it
    return path


if __name__ == "__main__":
    main()
