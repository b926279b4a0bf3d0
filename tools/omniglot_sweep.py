"""Run an Omniglot configuration sweep: train several configurations in parallel, evaluate each at test time in
several adaptation settings, and print one line per result.

This is how the shipped configuration was chosen (docs/omniglot-configuration.md). Each
configuration trains a fixed number of meta-steps: the number a 20-minute run on 2 laptop cores reaches with that
configuration (measured with ``--meta-steps 60`` runs), so a sweep on a faster machine (or a GPU, ``--device cuda``)
compares configurations at equal laptop time. Usage::

    python tools/omniglot_sweep.py tools/sweeps/round1.json --device cuda --parallel 14 --variants 0.2:3,0.4:3

A configuration file is a JSON list of ``{"name": ..., "steps": N, "args": "extra training arguments"}``.
``--variants lr:steps,...`` adds test-time adaptations to the trained one (the checkpoint's inner lr, one step).

``--validation-alphabets K`` is the protocol for choosing a configuration: each run trains on the training
alphabets less the last K (keeping its best weights by validation, as ``--validation-alphabets`` does in the
training command) and is scored on those K held-out training alphabets only; the test alphabets and the challenge
runs are not opened. Usage::

    python tools/omniglot_sweep.py tools/sweeps/validation.json --parallel 2 --validation-alphabets 1 --variants 0.1:5
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import subprocess
import sys
from pathlib import Path


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", type=Path, help="JSON list of configurations")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--parallel", type=int, default=1, help="configurations trained at the same time")
    parser.add_argument("--variants", default="", help="extra test-time adaptations, 'lr:steps,lr:steps'")
    parser.add_argument("--work", type=Path, default=Path("sweep-output"), help="checkpoints and logs go here")
    parser.add_argument("--episodes", type=int, default=600, help="evaluation episodes per setting")
    parser.add_argument("--validation-alphabets", type=int, default=0,
                        help="train without the last K training alphabets and score on them (no test data)")
    return parser.parse_args(argv)


def variants_of(text: str) -> list:
    """``"0.2:3,0.4:3"`` -> ``[(0.2, 3), (0.4, 3)]``."""
    return [(float(lr), int(steps)) for lr, steps in (item.split(":") for item in text.split(",") if item)]


def evaluate(path: Path, variants: list, device: str, episodes: int, validation_alphabets: int = 0) -> list:
    """Result lines for one checkpoint: 5-way 1/5-shot, 20-way 1-shot, support-BN 5-way 1-shot, challenge.

    With ``validation_alphabets`` the episodes come from the held-out training alphabets and there is no challenge
    column (its runs are drawn from the test alphabets)."""
    from metalearn_lite.data import EpisodeSampler, evaluate_challenge, load_challenge_runs, load_omniglot
    from metalearn_lite.few_shot import challenge_classifier, evaluate_episodes, load_initialisation
    from metalearn_lite.utils import resolve_device

    model, params, payload = load_initialisation(path)
    device = resolve_device(device)
    model, params = model.to(device), {name: p.to(device) for name, p in params.items()}
    settings = payload["metadata"]["settings"]
    if validation_alphabets:
        test, runs = load_omniglot("val", source=settings["source"], validation_alphabets=validation_alphabets), None
    else:
        test, runs = load_omniglot("test", source=settings["source"]), load_challenge_runs()
    lines = []
    for inner_lr, steps in [(settings["inner_lr"], 1)] + variants:
        cells = [f"lr {inner_lr} steps {steps}:"]
        for n_way, k_shot, bn in ((5, 1, "query"), (5, 5, "query"), (20, 1, "query"), (5, 1, "support")):
            sampler = EpisodeSampler(test, n_way, k_shot, 5, 1, seed=2024)
            estimate = evaluate_episodes(model, params, sampler, episodes, inner_lr, steps, bn, settings["zero_head"])
            cells.append(f"{n_way}w{k_shot}s-{bn} {estimate.mean:.4f}")
        if runs is not None:
            challenge = evaluate_challenge(
                challenge_classifier(model, params, inner_lr, steps, "query", settings["zero_head"]), runs)
            cells.append(f"challenge {challenge.mean_error:.4f}")
        lines.append(" ".join(cells))
    return lines


def train_and_evaluate(config: dict, options: argparse.Namespace) -> str:
    checkpoint = options.work / f"{config['name']}.pt"
    log = options.work / f"{config['name']}.log"
    held_out = ["--validation-alphabets", str(options.validation_alphabets)] if options.validation_alphabets else []
    with open(log, "w") as out:
        subprocess.run([sys.executable, "-m", "metalearn_lite.experiments.omniglot", "--device", options.device,
                        "--quiet", "--meta-steps", str(config["steps"]), "--out", str(checkpoint),
                        *config["args"].split(), *held_out], stdout=out, stderr=subprocess.STDOUT, check=True)
        subprocess.run([sys.executable, __file__, "--evaluate-one", str(checkpoint), "--device", options.device,
                        "--variants", options.variants, "--episodes", str(options.episodes), *held_out],
                       stdout=out, stderr=subprocess.STDOUT, check=True)
    results = [line for line in log.read_text().splitlines() if line.startswith("lr ")]
    summary = "\n".join(f"{config['name']:<20} {line}" for line in results)
    print(summary, flush=True)
    return summary


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--evaluate-one":   # the evaluation half, run in a fresh process per checkpoint
        options = parse_args(argv[1:])
        print("\n".join(evaluate(options.configs, variants_of(options.variants), options.device,
                                 options.episodes, options.validation_alphabets)), flush=True)
        return
    options = parse_args(argv)
    options.work.mkdir(parents=True, exist_ok=True)
    configs = json.loads(options.configs.read_text())
    with concurrent.futures.ThreadPoolExecutor(options.parallel) as pool:
        summaries = list(pool.map(lambda config: train_and_evaluate(config, options), configs))
    (options.work / "summary.txt").write_text("\n".join(summaries) + "\n")


if __name__ == "__main__":
    main()
