"""Rollout throughput of the 2-D navigation environment: the batched tensor ``rollout`` vs a plain Python loop over
``PointEnv`` objects (one goal, one episode, one step at a time), measured in the same run with the same policy.

Usage: ``python benchmarks/navigation_speed.py [--goals 20] [--trajectories 20] [--horizon 100] [--threads 1]``.
Prints environment steps per second of both (a step: one agent moving once; episodes end at the goal, so steps
are counted, not assumed) and their ratio. The Python loop runs the same policy network, one observation at a time,
as a first implementation would (``loop_goals`` goals only, to keep it short; steps per second are comparable).
On a shared machine, take the ratio, not the absolute numbers, and rerun when the load is low.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

from metalearn_lite.navigation import PointEnv, rollout, sample_goals  # noqa: E402
from metalearn_lite.policy import GaussianPolicy, policy_params  # noqa: E402


def batched_steps_per_second(policy, goals, n_trajectories: int, horizon: int, repeats: int = 3) -> float:
    params = policy_params(policy)
    generator = torch.Generator().manual_seed(0)
    rollout(policy, params, goals, n_trajectories, generator, horizon)   # warm-up
    steps, start = 0, time.perf_counter()
    for _ in range(repeats):
        with torch.no_grad():
            steps += int(rollout(policy, params, goals, n_trajectories, generator, horizon).mask.sum())
    return steps / (time.perf_counter() - start)


def loop_steps_per_second(policy, goals, n_trajectories: int, horizon: int) -> float:
    generator = torch.Generator().manual_seed(0)
    steps, start = 0, time.perf_counter()
    with torch.no_grad():
        for goal in goals.tolist():
            env = PointEnv(goal)
            for _ in range(n_trajectories):
                obs = env.reset()
                for _ in range(horizon):
                    mean, log_std = policy(torch.tensor(obs))
                    action = mean + log_std.exp() * torch.randn(2, generator=generator)
                    obs, _, done = env.step(action.tolist())
                    steps += 1
                    if done:
                        break
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--goals", type=int, default=20)
    parser.add_argument("--trajectories", type=int, default=20)
    parser.add_argument("--horizon", type=int, default=100)
    parser.add_argument("--loop-goals", type=int, default=2, help="goals the Python loop runs")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    policy = GaussianPolicy()
    goals = sample_goals(args.goals, torch.Generator().manual_seed(0))
    print(f"load average {os.getloadavg()[0]:.2f}; {args.threads} thread(s); {args.goals} goals x "
          f"{args.trajectories} episodes x horizon {args.horizon}")
    batched = batched_steps_per_second(policy, goals, args.trajectories, args.horizon)
    loop = loop_steps_per_second(policy, goals[:args.loop_goals], args.trajectories, args.horizon)
    print(f"batched rollout : {batched:12,.0f} env steps/s")
    print(f"python loop     : {loop:12,.0f} env steps/s")
    print(f"ratio           : {batched / loop:12.1f}x")


if __name__ == "__main__":
    main()
