"""Each shipped sinusoid checkpoint loads safely and still gives its headline numbers (MAML paper, section 5.1).

The evaluation set is fixed and seeded (``evaluation.EVAL_SEED``): 600 new tasks, K=5 support points,
100 query points, fine-tuning with step size 0.01. The target was "MAML within 15% of the paper's numbers or
better". What the shipped checkpoint achieves, and what these tests pin down:
- after 1 step, the mean is within 15% of the paper (0.62 vs 0.67);
- after 5 and 10 steps, fine-tuning blows up on ONE of the 600 tasks (task 110: amplitude 4.75, all 5 support points
  at x < -3), which dominates the plain mean; over the other 599 tasks the means are 0.47 (paper 0.38: 23% above,
  target NOT met) and 0.38 (paper 0.35: within 15%);
- MAML beats the pretrained network at every step count in the median and over the non-diverged tasks.
"""

import shlex

import pytest
import torch

from metalearn_lite import evaluation
from metalearn_lite.train import load_checkpoint

STEPS = (1, 5, 10)
BAND = 1 + evaluation.PAPER_TOLERANCE


@pytest.fixture(scope="module")
def results():
    model, starts, _ = evaluation.sinusoid_starts()
    return evaluation.compare(model, starts, k_shot=5, inner_lr=0.01, inner_steps=10, n_tasks=600)


@pytest.mark.parametrize("name", list(evaluation.SINUSOID_CHECKPOINTS))
def test_checkpoint_is_small_safe_and_documented(name):
    path = evaluation.checkpoint_path(name)
    assert path.is_file(), f"{path} is missing: retrain it with the command in metalearn_lite/experiments"
    assert path.stat().st_size < 2 * 1024 * 1024
    torch.load(path, weights_only=True)
    model, payload = load_checkpoint(path)
    meta = payload["metadata"]
    assert meta["method"] == name and meta["steps"] == 70000 and meta["task_family"] == "sinusoid"
    argv = shlex.split(meta["command"])
    assert argv[:3] == ["python", "-m", "metalearn_lite.experiments.sinusoid"]
    assert argv[argv.index("--out") + 1] == f"metalearn_lite/checkpoints/{path.name}"
    assert meta["git_commit"] and meta["torch_version"]


def test_maml_one_step_within_the_paper_band(results):
    assert results["maml"].mean(1) <= BAND * evaluation.PAPER_TABLE["maml"][1]


def test_maml_blows_up_on_one_task_only(results):
    assert results["maml"].diverged_tasks().tolist() == [110]
    assert results["pretrained"].diverged_tasks().size == 0


def test_maml_without_the_diverged_task(results):
    maml = results["maml"]
    assert maml.mean_without_diverged(10) <= BAND * evaluation.PAPER_TABLE["maml"][10]
    # Known shortfall: 0.47 after 5 steps vs the paper's 0.38 (23% above; the 15% target is not met).
    assert maml.mean_without_diverged(5) <= 1.25 * evaluation.PAPER_TABLE["maml"][5]


def test_maml_beats_pretrained_and_random_at_every_step_count(results):
    for steps in STEPS:
        for other in ("pretrained", "random"):
            assert results["maml"].median(steps) < results[other].median(steps)
            assert results["maml"].mean_without_diverged(steps) < results[other].mean_without_diverged(steps)


def test_pretrained_matches_the_paper(results):
    for steps in STEPS:
        paper = evaluation.PAPER_TABLE["pretrained"][steps]
        assert abs(results["pretrained"].mean(steps) - paper) <= evaluation.PAPER_TOLERANCE * paper


def test_one_place_knows_where_the_shipped_checkpoints_are():
    from metalearn_lite import few_shot, train
    for name in train.SHIPPED_CHECKPOINTS:
        assert train.shipped_checkpoint(name).is_file(), name
    assert evaluation.checkpoint_path("maml") == train.shipped_checkpoint("sinusoid_maml.pt")
    assert few_shot.default_checkpoint() == train.shipped_checkpoint("omniglot_maml_5way1shot.pt")
    with pytest.raises(ValueError, match="name"):
        train.shipped_checkpoint("reptile.pt")


def test_the_code_default_checkpoint_reproduces_the_paper_without_leaving_a_task_out():
    """Notebook 4's "hidden default": trained and evaluated with the authors' code's inner step (1e-3)."""
    from metalearn_lite import train
    model, payload = train.load_checkpoint(train.shipped_checkpoint("sinusoid_maml_lr0.001.pt"), task_family="sinusoid")
    assert payload["metadata"]["settings"]["inner_lr"] == 0.001
    batch = evaluation.evaluation_tasks(600, k_shot=5, k_query=100)
    result = evaluation.evaluate(model, {k: v.detach() for k, v in model.named_parameters()}, batch, 0.001, 10)
    assert len(result.diverged_tasks()) == 0
    for steps in (1, 5, 10):
        assert result.mean(steps) <= 1.15 * evaluation.PAPER_TABLE["maml"][steps]
