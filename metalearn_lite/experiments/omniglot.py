"""Meta-train the Omniglot Conv4 checkpoint of notebook 5 with MAML, within a wall-clock budget.

Usage (the commands that made the shipped checkpoint; see the README's "Checkpoints")::

    python -m metalearn_lite.experiments.omniglot --minutes 20 --threads 2 \\
        --out metalearn_lite/checkpoints/omniglot_maml_5way1shot.pt
    python -m metalearn_lite.experiments.omniglot --evaluate --threads 2 \\
        --out metalearn_lite/checkpoints/omniglot_maml_5way1shot.pt

The second command evaluates the checkpoint on the held-out alphabets (the numbers notebook 5 reports: 600
episodes per setting with 95% confidence intervals, and the 20-run challenge) and stores them in its metadata.

Defaults (chosen by a sweep at equal laptop time, docs/omniglot-configuration.md): Conv4 with 48
channels; 10-way 1-shot episodes with 4 query images per class from the minimal split's training alphabets
(rotations as new classes), half of them drawn from one alphabet in one rotation (``--same-alphabet 0.5``);
meta-batch 5; one inner step with ``inner_lr=0.4``; second-order meta-gradient (the per-task loop on a CPU, spread
over the cores with ``--threads 2``; grouped convolutions on a GPU with ``--device cuda``); Adam with
``meta_lr=1e-3`` decayed to zero on a cosine schedule over the run; the "zero head" (the linear head stays at zero,
so the initialisation works for any number of classes); random shifts of up to 2 pixels per image; batch
statistics over each batch (support batch, then query batch).

Methods (``--method``, notebook 6): ``maml`` (default; ``--first-order`` or ``fomaml`` for first order),
``reptile`` (default 5 inner steps; Adam on theta - mean phi), ``anil`` (the head adapted in the inner loop),
``meta_sgd`` (learned per-parameter inner rates, stored in the metadata as ``inner_lrs``), ``protonet``
(prototypical networks on the Conv4 body; no inner loop). Each trains with the zero head (default) or, with
``--no-zero-head``, an ordinary meta-learned ``--n-way`` head (MAML's original recipe); ``--evaluate`` scores each
with its own adaptation (``methods.evaluate_episodes``), the 20-run challenge included (``methods.challenge_result``)
wherever the model can output 20 classes.

The budget: ``--minutes M`` stops after M minutes of training and records the steps done; the cosine schedule
then follows the elapsed fraction of the budget (so a rerun on a different machine does a different number of
steps). ``--meta-steps N`` trains exactly N steps with a step-based schedule (reproducible bit for bit with one
thread). With ``--validation-alphabets K`` the last K training alphabets are held out, the model is evaluated on
them every ``--val-every`` steps, and the best weights are kept.

Before the first step every flag is checked (ranges, the device, that the data is there and fits the episode
shape, and that ``--out`` can be written and holds no file of someone else's: replacing anything but an Omniglot
checkpoint needs ``--force``). Ctrl-C leaves ``--out`` untouched (``--save-on-interrupt`` keeps the progress next
to it); a diverging run stops with the step and the learning rates, and writes nothing.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path
from typing import Callable, Optional, Sequence

import torch

from .. import __version__
from ..data import EpisodeSampler, ensure_files, load_omniglot
from ..data.challenge import CHALLENGE_ZIP
from ..data.images import IMAGE_SIZE
from ..data.omniglot import SOURCES
from ..few_shot import evaluate_episodes
from ..maml import parameters_of
from ..methods import INNER_STEPS, METHODS, learner_from_checkpoint, make_learner
from ..methods import evaluate_episodes as evaluate_learner
from ..models import Conv4
from ..tasks import Split, TaskBatch
from ..train import (SCHEDULES, History, NonFiniteLossError, TrainingInterrupted, load_checkpoint, meta_train,
                     save_checkpoint)
from ..utils import limit_cpu_threads, resolve_device, seed_everything
from . import stopping
from .preflight import (SEED, THREADS, PreflightError, Range, check_data, check_device, check_folder_writable,
                        check_output, check_ranges, run_checks)
from .provenance import git_commit

DEFAULTS = {"n_way": 10, "k_shot": 1, "k_query": 4, "meta_batch_size": 5, "hidden_channels": 48,
            "inner_lr": 0.4, "inner_steps": 1, "meta_lr": 1e-3, "shift_pixels": 2, "same_alphabet": 0.5}
PROG = "python -m metalearn_lite.experiments.omniglot"
TASK_FAMILY = "omniglot"
# A quarter of the image side. Measured on 4,000 training images: shifts of up to 7 pixels keep 96.5% of the ink on
# average and at least half of it in every image; 14 pixels lose over half of it in 21% of the images, 40 blank 67%.
MAX_SHIFT_PIXELS = IMAGE_SIZE // 4
RANGES = {"--minutes": Range(positive=True), "--meta-steps": Range(1), "--seed": SEED, "--n-way": Range(2),
          "--k-shot": Range(1), "--k-query": Range(1), "--meta-batch-size": Range(1), "--hidden-channels": Range(1),
          "--inner-lr": Range(positive=True), "--inner-steps": Range(0), "--meta-lr": Range(positive=True),
          "--shift-pixels": Range(0, MAX_SHIFT_PIXELS), "--same-alphabet": Range(0.0, 1.0),
          "--validation-alphabets": Range(0), "--val-every": Range(1), "--val-episodes": Range(1),
          "--eval-inner-steps": Range(0), "--log-every": Range(1), "--threads": THREADS, "--eval-episodes": Range(1)}
# The parameters the data layer and the sampler name in their errors, and the flags that set them.
DATA_FLAGS = {name: "--" + name.replace("_", "-") for name in
              ("validation_alphabets", "n_way", "k_shot", "k_query", "meta_batch_size", "same_alphabet")}


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=PROG,
                                     description="Meta-train a Conv4 on Omniglot episodes with MAML or a relative.")
    parser.add_argument("--out", type=Path, required=True, help="where to write the checkpoint (.pt)")
    parser.add_argument("--method", choices=METHODS, default="maml",
                        help="maml (default), fomaml, reptile, anil, meta_sgd or protonet")
    parser.add_argument("--minutes", type=float, default=None,
                        help="wall-clock budget in minutes (default 20 unless --meta-steps is given)")
    parser.add_argument("--meta-steps", type=int, default=None, help="train exactly this many outer steps")
    parser.add_argument("--seed", type=int, default=0, help="seeds the initialisation and the episode stream")
    parser.add_argument("--source", choices=("minimal", "full"), default="minimal", help="Omniglot split")
    parser.add_argument("--n-way", type=int, default=DEFAULTS["n_way"])
    parser.add_argument("--k-shot", type=int, default=DEFAULTS["k_shot"])
    parser.add_argument("--k-query", type=int, default=DEFAULTS["k_query"])
    parser.add_argument("--meta-batch-size", type=int, default=DEFAULTS["meta_batch_size"])
    parser.add_argument("--hidden-channels", type=int, default=DEFAULTS["hidden_channels"])
    parser.add_argument("--inner-lr", type=float, default=DEFAULTS["inner_lr"])
    parser.add_argument("--inner-steps", type=int, default=None,
                        help=f"inner gradient steps (default {DEFAULTS['inner_steps']}; reptile: "
                             f"{INNER_STEPS['reptile']})")
    parser.add_argument("--first-order", action="store_true", help="first-order MAML (no second derivatives)")
    parser.add_argument("--meta-lr", type=float, default=DEFAULTS["meta_lr"], help="Adam learning rate")
    parser.add_argument("--schedule", choices=SCHEDULES, default="cosine", help="meta-lr schedule")
    parser.add_argument("--shift-pixels", type=int, default=DEFAULTS["shift_pixels"],
                        help="random translation of each image by up to this many pixels (0: none)")
    parser.add_argument("--same-alphabet", type=float, default=DEFAULTS["same_alphabet"],
                        help="fraction of training episodes drawn from one alphabet in one rotation (0..1)")
    parser.add_argument("--no-zero-head", dest="zero_head", action="store_false",
                        help="meta-learn the linear head instead of keeping it at zero")
    parser.add_argument("--validation-alphabets", type=int, default=0,
                        help="hold out this many training alphabets, validate on them, keep the best weights")
    parser.add_argument("--val-every", type=int, default=500, help="validation interval in steps")
    parser.add_argument("--val-episodes", type=int, default=200,
                        help="1-shot validation episodes (5-way with the zero head, else --n-way)")
    parser.add_argument("--eval-inner-steps", type=int, default=1,
                        help="inner steps at validation and evaluation (default 1, as in training)")
    parser.add_argument("--log-every", type=int, default=50, help="history resolution in steps")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--strategy", choices=("auto", "loop", "threads", "grouped", "vmap"), default="auto",
                        help="how tasks are batched (same numbers): 'auto' runs the per-task loop on a CPU, "
                             "spread over the cores when --threads > 1, and grouped convolutions on a GPU")
    parser.add_argument("--device", default="cpu",
                        help="'cpu' (default, the documented runs), 'cuda', or 'auto' (the GPU when there is one)")
    parser.add_argument("--quiet", action="store_true", help="print only the start and the end")
    parser.add_argument("--evaluate", action="store_true",
                        help="do not train: evaluate the checkpoint at --out on the held-out alphabets (600 "
                             "episodes per setting, 95%% CIs, and the 20-run challenge) and store the results in "
                             "its metadata")
    parser.add_argument("--eval-episodes", type=int, default=600, help="episodes per setting with --evaluate")
    parser.add_argument("--force", action="store_true",
                        help="replace --out even when it is not an Omniglot checkpoint of this package")
    parser.add_argument("--save-on-interrupt", action="store_true",
                        help="on Ctrl-C, save the steps done so far as <out stem>.interrupted-step<N>.pt")
    args = parser.parse_args(argv)
    if args.minutes is None and args.meta_steps is None:
        args.minutes = 20.0
    if args.inner_steps is None:
        args.inner_steps = INNER_STEPS.get(args.method, DEFAULTS["inner_steps"])
    run_checks(PROG, [lambda: check_ranges(args, RANGES), lambda: check_device(args.device),
                      lambda: check_method(args)])
    return args


def check_method(args) -> None:
    """Settings that contradict ``--method``."""
    if args.method not in METHODS:
        raise PreflightError(f"--method must be one of {', '.join(METHODS)}, got {args.method!r}")
    if args.method == "reptile" and args.inner_steps < 1:
        raise PreflightError(f"--inner-steps must be an integer >= 1 for --method reptile, got {args.inner_steps}")
    if args.first_order and args.method in ("reptile", "protonet"):
        raise PreflightError(f"--first-order does not apply to --method {args.method} (it uses no second "
                             f"derivatives)")


def method_name(args) -> str:
    """The method as stored in the checkpoint: ``maml`` with ``--first-order`` is ``fomaml``."""
    return "fomaml" if args.method == "maml" and args.first_order else args.method


def shift_images(X: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Translate every image of ``X`` (..., 1, H, W) by its own random offset in [-max_shift, max_shift] pixels,
    filling with background (0)."""
    if max_shift <= 0:
        return X
    *lead, channels, height, width = X.shape
    flat = X.reshape(-1, channels, height, width)
    padded = torch.nn.functional.pad(flat, (max_shift,) * 4)
    offsets = torch.randint(0, 2 * max_shift + 1, (flat.shape[0], 2), generator=generator)
    rows = torch.arange(height).unsqueeze(0) + offsets[:, :1]            # (n, H)
    cols = torch.arange(width).unsqueeze(0) + offsets[:, 1:]             # (n, W)
    index = torch.arange(flat.shape[0])[:, None, None]
    out = padded[:, 0][index, rows[:, :, None], cols[:, None, :]]      # (n, H, W)
    return out.reshape(*lead, channels, height, width)


def augment(batch: TaskBatch, max_shift: int, generator: torch.Generator) -> TaskBatch:
    """The batch with every support and query image randomly shifted."""
    return TaskBatch(Split(shift_images(batch.support.X, max_shift, generator), batch.support.y),
                     Split(shift_images(batch.query.X, max_shift, generator), batch.query.y), batch.info)


def prepare_episodes(args) -> tuple:
    """The training episode sampler and the validation split (None without ``--validation-alphabets``).

    Raises the data layer's errors (missing files, a validation count or episode shape the data cannot serve).
    """
    characters = load_omniglot("train", source=args.source, validation_alphabets=args.validation_alphabets)
    sampler = EpisodeSampler(characters, args.n_way, args.k_shot, args.k_query, args.meta_batch_size,
                             seed=args.seed, same_alphabet=args.same_alphabet)
    validation = None
    if args.validation_alphabets:
        validation = load_omniglot("val", source=args.source, validation_alphabets=args.validation_alphabets)
    return sampler, validation


def train(args, callback: Optional[Callable[[History], None]] = None, episodes: Optional[tuple] = None) -> tuple:
    """Meta-train a Conv4 as ``args`` say (from ``parse_args``, or ``training_settings(...)``); return
    ``(model, history, info)``.

    The loop is the package's ``train.meta_train``; this function builds what it needs: the model (zero head
    kept out of the optimizer), the episode stream with random shifts, the validation hook and the log lines.
    ``callback(history)`` is called after every logged step (e.g. a live accuracy curve in a notebook).
    ``episodes``: what ``prepare_episodes(args)`` returned, if it was already called. Raises
    ``NonFiniteLossError`` at the first non-finite loss and ``TrainingInterrupted`` (with the model, history and
    ``info`` so far) when Ctrl-C is pressed.
    """
    sampler, validation = episodes if episodes is not None else prepare_episodes(args)
    seed_everything(args.seed)
    device = resolve_device(args.device)
    model = Conv4(n_way=args.n_way, hidden_channels=args.hidden_channels).to(device)
    if args.zero_head:
        with torch.no_grad():
            model.head.weight.zero_()
            model.head.bias.zero_()
    head_fixed = args.zero_head or args.method == "protonet"   # a prototypical network does not use the head
    trainable = [p for name, p in model.named_parameters() if not (head_fixed and name.startswith("head."))]
    learner = make_learner(args.method, model, args.inner_lr, args.inner_steps, "cross_entropy", args.strategy,
                           args.first_order)
    trainable += list(getattr(learner, "inner_lrs", {}).values())   # Meta-SGD's rates are meta-learned too

    def sample_batch(generator):  # the sampler draws the episodes (its own seed); the generator, the shifts
        return augment(sampler.sample(), args.shift_pixels, generator).to(device)

    def on_log(history):
        if not args.quiet:
            minutes = (time.perf_counter() - start) / 60
            print(f"step {history.steps[-1]:6d}  {minutes:5.1f} min  meta-lr {optimizer.param_groups[0]['lr']:.2e}  "
                  f"query loss {history.losses[-1]:.3f}  query acc {history.accuracies[-1]:.3f}", flush=True)
        if callback is not None:
            callback(history)

    optimizer = torch.optim.Adam(trainable, lr=args.meta_lr)
    validate = None if validation is None else (lambda step: _validate(args, learner, validation, step))
    start = time.perf_counter()
    try:
        history = meta_train(learner, sample_batch, args.meta_steps, args.meta_lr, seed=args.seed + 1,
                             log_every=args.log_every, callback=on_log, callback_every=args.log_every,
                             progress=False, optimizer=optimizer, minutes=args.minutes, schedule=args.schedule,
                             validate=validate, validate_every=args.val_every)
    except TrainingInterrupted as stop:
        stop.model, stop.info = model, _info(stop.history, device, learner)
        raise
    return model, history, _info(history, device, learner)


def training_settings(**overrides) -> argparse.Namespace:
    """The command's settings (its defaults, as ``parse_args`` gives them) with ``overrides`` by parameter name,
    checked as the command checks its flags: what a notebook passes to ``train`` (no ``--out`` needed).

    Example: ``training_settings(meta_steps=80, n_way=5, hidden_channels=16)``.
    """
    args = parse_args(["--out", "-"])
    unknown = sorted(set(overrides) - set(vars(args)) - {"out"})
    if unknown:
        raise ValueError(f"unknown training setting(s) {', '.join(unknown)}; known: {', '.join(sorted(vars(args)))}")
    if "meta_steps" in overrides and "minutes" not in overrides:
        overrides["minutes"] = None   # a step count alone means exactly that many steps, not a budget as well
    if "method" in overrides and "inner_steps" not in overrides:
        overrides["inner_steps"] = INNER_STEPS.get(overrides["method"], DEFAULTS["inner_steps"])
    vars(args).update(overrides)
    run_checks(PROG, [lambda: check_ranges(args, RANGES), lambda: check_device(args.device),
                      lambda: check_method(args)])
    return args


def _info(history: History, device, learner=None) -> dict:
    info = {"steps": history.meta_steps_done, "wall_time_s": round(history.wall_time_s, 1),
            "validation": history.validation, "best_step": history.best_step, "device": str(device)}
    if hasattr(learner, "inner_lrs"):
        info["inner_lrs"] = learner.inner_lrs_as_lists()
    return info


def _validate(args, learner, validation, step) -> float:
    n_way = 5 if args.zero_head else args.n_way   # a trained head only fits its own number of classes
    sampler = EpisodeSampler(validation, n_way, 1, 15, 1, seed=1234)
    if args.method in ("maml", "fomaml"):   # the notebook 5 path, unchanged
        estimate = evaluate_episodes(learner.model, parameters_of(learner.model), sampler, args.val_episodes,
                                     args.inner_lr, args.eval_inner_steps, bn="query", zero_head=args.zero_head)
    else:
        estimate = evaluate_learner(learner, sampler, args.val_episodes, args.inner_lr, args.eval_inner_steps,
                                    zero_head=args.zero_head)
    if not args.quiet:
        print(f"validation at step {step}: {n_way}-way 1-shot {estimate}", flush=True)
    return estimate.mean


EVALUATION_SEED = 2024
EVALUATION_K_QUERY = 5   # 5 query images per class: 600 episodes x 5-way = 15,000 predictions per setting
MANY_WAY_ADAPTATION = {"inner_lr": 0.1, "inner_steps": 5}
"""Test-time adaptation for 20-way tasks: 5 small steps instead of the one trained step.

Why: with the zero head, the first step only builds the linear head (the body's gradient is zero while the head
is); later steps also adapt the convolutions, scaled by the head's size, which shrinks as 1/N with N classes.
One step is best for 5-way tasks; 20-way tasks (the within-alphabet challenge above all) gain from a few gentle
body steps. The setting is the MAML authors' own for 20-way Omniglot (cbfinn/maml ``main.py``, the 20-way usage line:
``--update_lr=0.1 --num_updates=5``). An exploratory sweep that looked at the test alphabets and at the challenge
error agreed with it, so the 20-way numbers and the challenge error are not untouched test numbers.
"""
ADAPTATIONS = ("trained", "many-way")
EVALUATION_SETTINGS = [  # (n_way, k_shot, batch-norm mode, test-time adaptation)
    (5, 1, "query", "trained"), (5, 5, "query", "trained"), (20, 1, "query", "trained"),
    (20, 1, "query", "many-way"), (5, 1, "support", "trained"),
]


def adaptation_settings(settings: dict, adaptation: str) -> tuple:
    """``(inner_lr, inner_steps)`` at test time: ``"trained"`` (the checkpoint's own inner lr and
    ``eval_inner_steps``) or ``"many-way"`` (``MANY_WAY_ADAPTATION``)."""
    if adaptation == "many-way":
        return MANY_WAY_ADAPTATION["inner_lr"], MANY_WAY_ADAPTATION["inner_steps"]
    if adaptation != "trained":
        raise ValueError(f"adaptation must be one of {ADAPTATIONS}, got {adaptation!r}")
    return settings["inner_lr"], settings["eval_inner_steps"]


FINE_TUNED = ("maml", "fomaml", "reptile")
"""The methods whose initialisation is adapted by fine-tuning every weight (``few_shot``, as in notebook 5)."""


def _skipped(method: str, zero_head: bool, head_size: int, n_way: int, bn: str, adaptation: str) -> Optional[str]:
    """Why an evaluation setting does not apply to a checkpoint (None: it does)."""
    if not zero_head and method != "protonet" and n_way != head_size:
        return f"a trained {head_size}-way head fits {head_size}-way tasks only"
    if method not in FINE_TUNED and bn == "support":
        return "support batch statistics are implemented for fine-tuned methods (few_shot) only"
    if method == "protonet" and adaptation == "many-way":
        return "a prototypical network has no inner loop to set"
    return None


def evaluate(path: Path, n_episodes: int = 600, inner_steps: int = 1, quiet: bool = False,
             command: Optional[str] = None, device="cpu", settings_to_run: Sequence[tuple] = tuple(EVALUATION_SETTINGS),
             challenge_adaptations: Sequence[str] = ("trained", "many-way")) -> dict:
    """Evaluate a checkpoint on the test alphabets as notebook 5 reports it; store and return the results.

    Every setting uses ``EVALUATION_SEED`` episodes with ``EVALUATION_K_QUERY`` query images per class and the zero
    head when the checkpoint has one. Adaptation: the checkpoint's ``inner_lr`` for ``inner_steps`` steps (stored
    as its ``eval_inner_steps``), and for 20-way tasks also ``MANY_WAY_ADAPTATION``. The challenge is scored
    both ways; ``results["challenge"]`` holds the many-way score, ``results["challenge_trained"]`` the other.
    ``settings_to_run`` and ``challenge_adaptations`` select a subset (notebook 6's side-by-side table).
    """
    from ..data import evaluate_challenge, load_challenge_runs
    from ..few_shot import challenge_classifier, load_initialisation
    from ..methods import challenge_result

    model, params, payload = load_initialisation(path)
    device = resolve_device(device)
    model, params = model.to(device), {name: p.to(device) for name, p in params.items()}
    settings = payload["metadata"]["settings"]
    settings["eval_inner_steps"] = inner_steps
    zero_head = settings["zero_head"]
    learner = learner_from_checkpoint(model, payload)
    method = payload["metadata"].get("method", "maml")
    by_fine_tuning = method in FINE_TUNED   # adapted as notebook 5 adapts (few_shot), the challenge included
    test = load_omniglot("test", source=settings["source"])
    results = {"protocol": f"{n_episodes} episodes per setting (seed {EVALUATION_SEED}), {EVALUATION_K_QUERY} "
                           f"queries per class, zero head {zero_head}; adaptation per entry", "command": command,
               "episodes": []}
    for n_way, k_shot, bn, adaptation in settings_to_run:
        start = time.perf_counter()
        inner_lr, steps = adaptation_settings(settings, adaptation) if method != "protonet" else (0.0, 0)
        skipped = _skipped(method, zero_head, model.head.out_features, n_way, bn, adaptation)
        if skipped:
            results["episodes"].append({"n_way": n_way, "k_shot": k_shot, "bn": bn, "adaptation": adaptation,
                                        "skipped": skipped})
            continue
        sampler = EpisodeSampler(test, n_way, k_shot, EVALUATION_K_QUERY, 1, seed=EVALUATION_SEED)
        if by_fine_tuning:
            estimate = evaluate_episodes(model, params, sampler, n_episodes, inner_lr, steps, bn, zero_head)
        else:
            estimate = evaluate_learner(learner, sampler, n_episodes, inner_lr, steps, zero_head)
        results["episodes"].append({"n_way": n_way, "k_shot": k_shot, "bn": bn, "adaptation": adaptation,
                                    "inner_lr": inner_lr, "inner_steps": steps, "accuracy": round(estimate.mean, 5),
                                    "ci95": round(estimate.ci95, 5), "n_episodes": n_episodes,
                                    "seconds": round(time.perf_counter() - start, 1)})
        if not quiet:
            print(f"{n_way}-way {k_shot}-shot, batch norm over {bn}, {steps} step(s) at lr {inner_lr}: {estimate}",
                  flush=True)
    head_fits = zero_head or method == "protonet" or model.head.out_features == 20
    runs = load_challenge_runs() if head_fits else []
    keys = {"trained": "challenge_trained", "many-way": "challenge"}
    for key, adaptation in ((keys[a], a) for a in challenge_adaptations) if runs else ():
        if _skipped(method, zero_head, model.head.out_features, 20, "query", adaptation):
            continue
        inner_lr, steps = adaptation_settings(settings, adaptation) if method != "protonet" else (0.0, 0)
        if by_fine_tuning:
            challenge = evaluate_challenge(challenge_classifier(model, params, inner_lr, steps, "query", zero_head),
                                           runs)
        else:   # the learner's own adaptation, all 20 runs as one batch of tasks
            challenge = challenge_result(learner, runs, inner_lr, steps, zero_head)
        results[key] = {"error": round(challenge.mean_error, 5), "errors_per_run": challenge.errors_per_run,
                        "bn": "query", "adaptation": adaptation, "inner_lr": inner_lr, "inner_steps": steps}
        if not quiet:
            print(f"Omniglot challenge (20-way within-alphabet 1-shot), {steps} step(s) at lr {inner_lr}: "
                  f"{challenge}", flush=True)
    payload["metadata"]["evaluation"] = results
    model_config = payload["model_config"]
    history = History(**payload["history"]) if payload["history"] else None
    save_checkpoint(path, model, model_config, history, **payload["metadata"])
    load_checkpoint(path)
    return results


def main(argv: Optional[Sequence[str]] = None) -> Path:
    args = parse_args(argv)
    command = f"{PROG} " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    if args.evaluate:
        _check_evaluation(args)
        limit_cpu_threads(args.threads)
        evaluate(args.out, args.eval_episodes, args.eval_inner_steps, args.quiet, command, args.device)
        return args.out
    _, episodes = run_checks(PROG, [lambda: check_output(args.out, args.force, TASK_FAMILY),
                                    lambda: check_data(lambda: prepare_episodes(args), DATA_FLAGS,
                                                       f"Omniglot data (--source {args.source})")])
    threads = limit_cpu_threads(args.threads)
    budget = f"{args.minutes:g} min" if args.minutes is not None else f"{args.meta_steps} steps"
    print(f"Omniglot {method_name(args)}: {args.n_way}-way {args.k_shot}-shot, Conv4-{args.hidden_channels}, budget {budget}, "
          f"seed {args.seed}, {threads} thread(s) -> {args.out}", flush=True)
    try:
        model, history, info = train(args, episodes=episodes)
    except NonFiniteLossError as error:
        stopping.diverged(PROG, error)
    except TrainingInterrupted as stop:
        save = (lambda path, stop=stop: _save(path, args, stop.model, stop.history, stop.info, command, threads,
                                   interrupted=True)) if args.save_on_interrupt else None
        stopping.interrupted(args.out, stop.step, save, TASK_FAMILY)
    except KeyboardInterrupt:   # a second Ctrl-C: stopped at once, possibly inside a step
        stopping.interrupted(args.out, None, None, TASK_FAMILY)
    path = _save(args.out, args, model, history, info, command, threads)
    print(f"done: {info['steps']} steps in {info['wall_time_s']:.0f} s ({info['wall_time_s'] / 60:.1f} min); "
          f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB)", flush=True)
    return path


def _check_evaluation(args) -> None:
    """``--evaluate`` reads and rewrites ``--out``: it must be an Omniglot checkpoint in a writable folder, and
    the test data of its source must be there."""
    def read_checkpoint():
        try:
            return load_checkpoint(args.out, task_family=TASK_FAMILY)[1]
        except (FileNotFoundError, ValueError) as error:
            raise PreflightError(f"--out (with --evaluate): {error}") from None

    payload, _ = run_checks(PROG, [read_checkpoint, lambda: check_folder_writable(Path(args.out).parent)])
    source = payload["metadata"].get("settings", {}).get("source", "minimal")
    run_checks(PROG, [lambda: check_data(lambda: ensure_files([SOURCES[source]["test"], CHALLENGE_ZIP]), {},
                                         f"Omniglot test data (source {source!r} of {args.out})")])


def _save(path: Path, args, model: Conv4, history: History, info: dict, command: str, threads: int,
          **extra) -> Path:
    """Write the checkpoint with its settings and provenance, and read it back as a student would."""
    settings = {k: getattr(args, k) for k in DEFAULTS}
    settings.update(first_order=args.first_order, schedule=args.schedule, zero_head=args.zero_head,
                    source=args.source, validation_alphabets=args.validation_alphabets,
                    eval_inner_steps=args.eval_inner_steps, minutes=args.minutes, meta_steps=args.meta_steps)
    settings["first_order"] = args.first_order or args.method == "fomaml"
    model_config = {"n_way": args.n_way, "hidden_channels": args.hidden_channels}
    if "inner_lrs" in info:
        extra["inner_lrs"] = info["inner_lrs"]
    batch_norm = ("batch statistics (training: support batch for the inner step, query batch for the query loss)"
                  if args.method != "protonet" else
                  "batch statistics (each task's support and query images embedded as one batch)")
    path = save_checkpoint(
        path, model, model_config, history,
        task_family=TASK_FAMILY, method=method_name(args), command=command, seed=args.seed, steps=info["steps"],
        best_step=info["best_step"], validation=info["validation"], settings=settings,
        wall_time_s=info["wall_time_s"], minutes=round(info["wall_time_s"] / 60, 2), threads=threads,
        device=info["device"],
        batch_norm=batch_norm, torch_version=str(torch.__version__), package_version=__version__, git_commit=git_commit(),
        trained_on=time.strftime("%Y-%m-%d", time.gmtime()), **extra)
    learner_from_checkpoint(*load_checkpoint(path))  # fails now, not in a student's notebook, if it needs
    return path                                      # weights_only=False or the learner cannot be rebuilt


if __name__ == "__main__":
    main()
