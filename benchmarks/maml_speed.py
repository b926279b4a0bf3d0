"""Meta-steps per second and peak memory of the MAML engine's strategies, side by side in one run.

Workloads (from the issue that set the targets):
  W1  the MAML paper's sinusoid setting: MLP 1-40-40-1, meta-batch 25, K=10, 1 inner step (lr 0.01),
      second order, Adam 1e-3.
  W2  Omniglot-shaped 5-way 1-shot, Conv4-64, 15 queries per class, meta-batch 16, 1 inner step (lr 0.4),
      second and first order (random 28x28 inputs).

Each (workload, strategy) runs in a fresh subprocess, so its peak resident memory is its own. Ratios are against
the per-task loop ("loop") measured in the same run.
Usage: python benchmarks/maml_speed.py [--seconds 10] [--threads N]
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
    "W1": {"strategies": ["loop", "vmap", "grouped"], "orders": ["second"]},
    "W2": {"strategies": ["loop", "threads", "vmap", "grouped"], "orders": ["second", "first"]},
}


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
    maml = MAML(model, first_order=(order == "first"), strategy=strategy, **settings)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    batches = [sample() for _ in range(4)]
    baseline_mib = _peak_rss_mib()
    for batch in batches[:2]:  # warm-up: allocator and kernel selection
        maml.meta_step(batch, optimizer)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        maml.meta_step(batches[steps % len(batches)], optimizer)
        steps += 1
    elapsed = time.perf_counter() - start
    return {"steps_per_s": steps / elapsed, "peak_mib": _peak_rss_mib(), "setup_mib": baseline_mib}


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def run_in_subprocess(workload: str, strategy: str, order: str, seconds: float, threads: int) -> dict:
    command = [sys.executable, __file__, "--single", workload, strategy, order, "--seconds", str(seconds),
               "--threads", str(threads)]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="timed seconds per configuration")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--single", nargs=3, metavar=("WORKLOAD", "STRATEGY", "ORDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.single:
        print(json.dumps(measure(*args.single, args.seconds)))
        return

    from metalearn_lite.maml import preferred_strategy
    from metalearn_lite.models import MLP, Conv4
    auto = {"W1": preferred_strategy(MLP()), "W2": preferred_strategy(Conv4())}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, OMP_WAIT_POLICY="
          f"{os.environ.get('OMP_WAIT_POLICY', 'unset')}; engine default: W1 -> {auto['W1']}, W2 -> {auto['W2']}")
    print(f"{'workload':8} {'order':7} {'strategy':9} {'meta-steps/s':>12} {'x loop':>7} {'peak MiB':>9}")
    for workload, plan in WORKLOADS.items():
        for order in plan["orders"]:
            results = {s: run_in_subprocess(workload, s, order, args.seconds, torch.get_num_threads())
                       for s in plan["strategies"]}
            loop_speed = results["loop"]["steps_per_s"]
            for strategy, r in results.items():
                marker = " <- engine default" if strategy == auto[workload] else ""
                print(f"{workload:8} {order:7} {strategy:9} {r['steps_per_s']:12.2f} "
                      f"{r['steps_per_s'] / loop_speed:7.2f} {r['peak_mib']:9.0f}{marker}")
            if workload == "W1" and order == "second":
                minutes = 70_000 / results[auto["W1"]]["steps_per_s"] / 60
                print(f"         -> the paper's 70,000 W1 meta-steps would take {minutes:.1f} min")


if __name__ == "__main__":
    main()
