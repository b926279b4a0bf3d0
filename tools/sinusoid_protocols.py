"""Which protocol reproduces the MAML paper's sinusoid table? Evaluate MAML checkpoints under several protocols.

The paper's text (section 5.1) says the inner step is alpha = 0.01; the authors' code (cbfinn/maml ``main.py``) defaults
to ``update_lr = 1e-3`` for sinusoids and, at test time, scores each task on K query points (its data generator draws
2K points per task: K to adapt on, K to score). Table 2 of the paper's Appendix C.1 ("5-shot mean squared error")
reports 0.67 / 0.38 / 0.35 after 1 / 5 / 10 steps. Usage (the checkpoints come from the package's training command)::

    python -m metalearn_lite.experiments.sinusoid --method maml --meta-steps 70000 --inner-lr 0.001 --out /tmp/maml_0.001.pt
    python tools/sinusoid_protocols.py metalearn_lite/checkpoints/sinusoid_maml.pt /tmp/maml_0.001.pt

Each checkpoint is evaluated with its own training inner lr, K = 5, on the notebook's 600 fixed tasks (seed 2017) with
100 query points on the whole curve, on 2,000 more tasks (seed 2018) for tighter intervals, and with the code's
protocol (K = 5 query points per task). Every task is in every mean (none is left out); the table also counts the
tasks whose error blew up (the package's divergence rule).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from metalearn_lite import evaluation
from metalearn_lite.train import load_checkpoint

PROTOCOLS = {  # name -> (n_tasks, k_query, seed)
    "notebook: 600 tasks, 100 query points": (600, 100, evaluation.EVAL_SEED),
    "2,000 more tasks, 100 query points": (2000, 100, evaluation.EVAL_SEED + 1),
    "authors' code: 600 tasks, K = 5 query points": (600, 5, evaluation.EVAL_SEED),
}
STEPS = (1, 5, 10)


def evaluate_checkpoint(path: Path) -> list:
    """Rows ``(inner_lr, protocol, {steps: (mean, ci95)}, n_blown_up)`` for one MAML checkpoint."""
    model, payload = load_checkpoint(path, task_family="sinusoid")
    inner_lr = payload["metadata"]["settings"]["inner_lr"]
    params = {name: p.detach() for name, p in model.named_parameters()}
    rows = []
    for protocol, (n_tasks, k_query, seed) in PROTOCOLS.items():
        batch = evaluation.evaluation_tasks(n_tasks, 5, k_query, seed)
        result = evaluation.evaluate(model, params, batch, inner_lr, max(STEPS), name=path.name)
        cells = {s: (result.mean(s), result.ci95(s)) for s in STEPS}
        rows.append((inner_lr, protocol, cells, len(result.diverged_tasks())))
    return rows


def format_table(rows: list) -> str:
    paper = evaluation.PAPER_TABLE["maml"]
    lines = ["| train and test inner lr | protocol | " + " | ".join(f"{s} step{'s' if s > 1 else ''}" for s in STEPS)
             + " | tasks blown up |", "|---|---|" + "---|" * len(STEPS) + "---|"]
    for inner_lr, protocol, cells, blown_up in rows:
        values = " | ".join(_cell(m, c, paper[s]) for s, (m, c) in cells.items())
        lines.append(f"| {inner_lr:g} | {protocol} | {values} | {blown_up} |")
    lines.append("| paper (Table 2, Appendix C.1) | | " + " | ".join(f"{paper[s]:.2f}" for s in STEPS) + " | |")
    return "\n".join(lines)


def _cell(mean: float, ci95: float, paper: float) -> str:
    if mean > 100:  # a blown-up task dominates the mean: its size, not its digits, is the message
        return f"{mean:.1e} ± {ci95:.1e}"
    return f"{mean:.2f} ± {ci95:.2f} ({mean / paper - 1:+.0%})"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", type=Path, nargs="+", help="MAML sinusoid checkpoints (.pt)")
    args = parser.parse_args(argv)
    rows = [row for path in args.checkpoints for row in evaluate_checkpoint(path)]
    print(format_table(rows))


if __name__ == "__main__":
    main()
