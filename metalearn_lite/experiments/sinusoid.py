"""Train the sinusoid-regression checkpoints of notebook 4 (MAML paper, Finn et al. 2017, section 5.1).

Usage (the commands that made the shipped checkpoints)::

    python -m metalearn_lite.experiments.sinusoid --method maml --meta-steps 70000 \\
        --out metalearn_lite/checkpoints/sinusoid_maml.pt
    python -m metalearn_lite.experiments.sinusoid --method pretrained --meta-steps 70000 \\
        --out metalearn_lite/checkpoints/sinusoid_pretrained.pt

``maml``: MLP 1-40-40-1, meta-batch 25 tasks, K=10 support and 10 query points per task, one inner step with
``inner_lr=0.01``, second-order meta-gradient, Adam with ``meta_lr=1e-3`` (the paper's settings).
``pretrained``: the same MLP trained by ordinary regression on the pooled points of 25 tasks per step (K=10 each),
Adam 1e-3, for the same number of steps: the paper's "pretrained on all tasks" baseline.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

import torch

from .. import __version__
from ..baselines import pretrain
from ..maml import MAML
from ..models import MLP
from ..tasks import SinusoidTasks
from ..train import History, load_checkpoint, meta_train, save_checkpoint
from ..utils import limit_cpu_threads, seed_everything
from .provenance import git_commit

METHODS = ("maml", "pretrained")
INITS = ("torch", "paper")
MODEL_CONFIG = {"in_features": 1, "hidden": [40, 40], "out_features": 1}
PAPER_SETTINGS = {"meta_batch_size": 25, "k_shot": 10, "k_query": 10, "inner_lr": 0.01, "inner_steps": 1,
                  "meta_lr": 1e-3}


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m metalearn_lite.experiments.sinusoid",
                                     description="Train a sinusoid-regression checkpoint (MAML or pretrained).")
    parser.add_argument("--method", choices=METHODS, default="maml", help="maml (default) or pretrained")
    parser.add_argument("--meta-steps", type=int, default=70000, help="outer steps (paper: 70000)")
    parser.add_argument("--out", type=Path, required=True, help="where to write the checkpoint (.pt)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the initialisation and the task stream")
    parser.add_argument("--meta-batch-size", type=int, default=PAPER_SETTINGS["meta_batch_size"])
    parser.add_argument("--k-shot", type=int, default=PAPER_SETTINGS["k_shot"])
    parser.add_argument("--k-query", type=int, default=PAPER_SETTINGS["k_query"])
    parser.add_argument("--inner-lr", type=float, default=PAPER_SETTINGS["inner_lr"])
    parser.add_argument("--inner-steps", type=int, default=PAPER_SETTINGS["inner_steps"])
    parser.add_argument("--meta-lr", type=float, default=PAPER_SETTINGS["meta_lr"])
    parser.add_argument("--init", choices=INITS, default="torch",
                        help="torch: PyTorch's default initialisation; paper: the authors' code (weights from a "
                             "truncated normal with std 0.01, zero biases)")
    parser.add_argument("--log-every", type=int, default=100, help="history resolution in steps")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: this workload is too small to gain from more)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


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
    """Meta-train ``model`` in place with the paper's sinusoid settings; returns the meta-loss history."""
    family = SinusoidTasks()
    maml = MAML(model, inner_lr=args.inner_lr, inner_steps=args.inner_steps, strategy="auto")

    def sample_batch(generator):
        return family.sample(args.meta_batch_size, args.k_shot, args.k_query, generator=generator)

    return meta_train(maml, sample_batch, args.meta_steps, meta_lr=args.meta_lr, seed=args.seed,
                      log_every=args.log_every, progress=not args.quiet)


def train_pretrained(args, model: MLP) -> History:
    """Ordinary regression on the pooled points of ``meta_batch_size`` tasks per step; returns the loss history."""
    generator = torch.Generator().manual_seed(args.seed)
    losses = pretrain(model, SinusoidTasks(), steps=args.meta_steps, n_tasks=args.meta_batch_size,
                      k_shot=args.k_shot, lr=args.meta_lr, generator=generator)
    history = History()
    for start in range(0, len(losses), args.log_every):
        window = losses[start:start + args.log_every]
        history.record(start + len(window), sum(window) / len(window), float("nan"))
    return history


def main(argv: Optional[Sequence[str]] = None) -> Path:
    args = parse_args(argv)
    if args.meta_steps < 1:
        raise SystemExit("--meta-steps must be >= 1")
    threads = limit_cpu_threads(args.threads)
    seed_everything(args.seed)
    model = MLP(**MODEL_CONFIG)
    if args.init == "paper":
        paper_init_(model)
    command = "python -m metalearn_lite.experiments.sinusoid " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    print(f"{args.method}: {args.meta_steps} steps, seed {args.seed}, {threads} thread(s) -> {args.out}", flush=True)
    start = time.perf_counter()
    history = (train_maml if args.method == "maml" else train_pretrained)(args, model)
    wall_time = time.perf_counter() - start
    settings = {k: getattr(args, k) for k in PAPER_SETTINGS}
    settings["init"] = args.init
    path = save_checkpoint(
        args.out, model, MODEL_CONFIG, history,
        task_family="sinusoid", method=args.method, command=command, seed=args.seed, steps=args.meta_steps,
        settings=settings, wall_time_s=round(wall_time, 1), threads=threads, torch_version=str(torch.__version__),
        package_version=__version__, git_commit=git_commit(),
        trained_on=time.strftime("%Y-%m-%d", time.gmtime()))
    load_checkpoint(path)  # fails now, not in a student's notebook, if anything in it needs weights_only=False
    tail = history.losses[-10:]
    print(f"done in {wall_time:.0f} s ({wall_time / 60:.1f} min); final loss (mean of last {len(tail)} logs) "
          f"{sum(tail) / len(tail):.3f}; wrote {path} ({path.stat().st_size / 1024:.0f} KiB)", flush=True)
    return path


if __name__ == "__main__":
    main()
