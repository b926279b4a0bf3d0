"""Meta-steps per second and peak memory of the MAML engine's strategies, side by side in one run.

Workloads (from the issue that set the targets):
  W1  the MAML paper's sinusoid setting: MLP 1-40-40-1, meta-batch 25, K=10, 1 inner step (lr 0.01),
      second order, Adam 1e-3.
  W2  Omniglot-shaped 5-way 1-shot, Conv4-64, 15 queries per class, meta-batch 16, 1 inner step (lr 0.4),
      second and first order (random 28x28 inputs).

Each (workload, strategy) runs in a fresh subprocess, so its peak resident memory is its own. Ratios are against
"func-loop", a plain torch.func per-task loop written here the way a peer library would (the fastest
peer-equivalent baseline; the package's own strategies must beat it), measured in the same run.
``--previous DIR`` also times the engine default of another checkout of this repository (e.g. a git worktree of
the previous release: ``git worktree add /tmp/previous <commit>``), in the same run, so that a change to the engine
shows its speed against the code it replaces.
For the side-by-side comparison with learn2learn and higher, see ``benchmarks/peer_plugin.py``.
Usage: python benchmarks/maml_speed.py [--seconds 10] [--threads N] [--previous DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

WORKLOADS = {
    "W1": {"strategies": ["func-loop", "loop", "vmap", "grouped"], "orders": ["second"]},
    "W2": {"strategies": ["func-loop", "loop", "threads", "vmap", "grouped"], "orders": ["second", "first"]},
}
BASELINE = "func-loop"


def build(workload: str):
    """The model, the MAML settings and a batch sampler for ``workload``."""
    import torch
    from metalearn_lite.models import MLP, Conv4
    from metalearn_lite.tasks import SinusoidTasks, Split, TaskBatch

    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    if workload == "W1":
        model, settings = MLP(), dict(inner_lr=0.01, inner_steps=1, loss="mse")
        family = SinusoidTasks()
        sample = lambda: family.sample(25, k_shot=10, generator=generator)  # noqa: E731
    else:
        model, settings = Conv4(n_way=5, hidden_channels=64), dict(inner_lr=0.4, inner_steps=1, loss="cross_entropy")

        def sample():
            images = lambda n: torch.rand(16, n, 1, 28, 28, generator=generator)  # noqa: E731
            labels = lambda k: torch.arange(5).repeat_interleave(k).expand(16, -1)  # noqa: E731
            return TaskBatch(Split(images(5), labels(1)), Split(images(75), labels(15)))
    return model, settings, sample


def measure(workload: str, strategy: str, order: str, seconds: float) -> dict:
    """Run meta-steps for about ``seconds`` (after warm-up); return steps/s and peak memory in MiB."""
    import torch
    from metalearn_lite.maml import MAML

    model, settings, sample = build(workload)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    if strategy == BASELINE:
        meta_step = plain_func_loop(model, optimizer, first_order=(order == "first"), **settings)
    else:
        maml = MAML(model, first_order=(order == "first"), strategy=strategy, **settings)
        meta_step = lambda batch: maml.meta_step(batch, optimizer)  # noqa: E731
    batches = [sample() for _ in range(4)]
    baseline_mib = _peak_rss_mib()
    for batch in batches[:2]:  # warm-up: allocator and kernel selection
        meta_step(batch)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        meta_step(batches[steps % len(batches)])
        steps += 1
    elapsed = time.perf_counter() - start
    return {"steps_per_s": steps / elapsed, "peak_mib": _peak_rss_mib(), "setup_mib": baseline_mib}


def plain_func_loop(model, optimizer, inner_lr: float, inner_steps: int, loss: str, first_order: bool):
    """A meta-step as a peer library writes it: for each task, ``torch.func.grad`` for the inner steps and
    ordinary autograd for the meta-gradient, then Adam. No checks, no batching: the baseline to beat."""
    from torch.func import functional_call, grad
    from torch.nn import functional as F

    loss_fn = F.mse_loss if loss == "mse" else F.cross_entropy
    params = dict(model.named_parameters())

    def meta_step(batch):
        optimizer.zero_grad()
        for t in range(batch.n_tasks):
            support_loss = lambda p: loss_fn(functional_call(model, p, (batch.support.X[t],)), batch.support.y[t])  # noqa: E731
            fast = params
            for _ in range(inner_steps):
                grads = grad(support_loss)(fast)
                if first_order:
                    grads = {k: g.detach() for k, g in grads.items()}
                fast = {k: w - inner_lr * grads[k] for k, w in fast.items()}
            query = loss_fn(functional_call(model, fast, (batch.query.X[t],)), batch.query.y[t])
            (query / batch.n_tasks).backward()
        optimizer.step()

    return meta_step


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def run_in_subprocess(workload: str, strategy: str, order: str, seconds: float, threads: int,
                      source: str = None) -> dict:
    """One measurement in a fresh process; ``source``: the checkout whose package to import (default: this one)."""
    command = [sys.executable, __file__, "--single", workload, strategy, order, "--seconds", str(seconds),
               "--threads", str(threads)]
    env = dict(os.environ)
    if source:
        env["PYTHONPATH"] = os.pathsep.join([source, env.get("PYTHONPATH", "")])
    output = subprocess.run(command, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="timed seconds per configuration")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--previous", default=None, metavar="DIR",
                        help="also time the engine default of the checkout in DIR (e.g. the previous release)")
    parser.add_argument("--single", nargs=3, metavar=("WORKLOAD", "STRATEGY", "ORDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.single:
        print(json.dumps(measure(*args.single, args.seconds)))
        return

    from metalearn_lite.batching import preferred_strategy
    from metalearn_lite.models import MLP, Conv4
    auto = {"W1": preferred_strategy(MLP()), "W2": preferred_strategy(Conv4())}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, OMP_WAIT_POLICY="
          f"{os.environ.get('OMP_WAIT_POLICY', 'unset')}; engine default: W1 -> {auto['W1']}, W2 -> {auto['W2']}")
    print(f"{'workload':8} {'order':7} {'strategy':9} {'meta-steps/s':>12} {'x func':>7} {'peak MiB':>9}")
    for workload, plan in WORKLOADS.items():
        for order in plan["orders"]:
            results = {s: run_in_subprocess(workload, s, order, args.seconds, torch.get_num_threads())
                       for s in plan["strategies"]}
            if args.previous:
                results["previous"] = run_in_subprocess(workload, "auto", order, args.seconds,
                                                        torch.get_num_threads(), args.previous)
            base_speed = results[BASELINE]["steps_per_s"]
            for strategy, r in results.items():
                marker = " <- engine default" if strategy == auto[workload] else ""
                marker = " <- previous release's default" if strategy == "previous" else marker
                print(f"{workload:8} {order:7} {strategy:9} {r['steps_per_s']:12.2f} "
                      f"{r['steps_per_s'] / base_speed:7.2f} {r['peak_mib']:9.0f}{marker}")
            if workload == "W1" and order == "second":
                minutes = 70_000 / results[auto["W1"]]["steps_per_s"] / 60
                print(f"         -> the paper's 70,000 W1 meta-steps would take {minutes:.1f} min")


if __name__ == "__main__":
    main()
