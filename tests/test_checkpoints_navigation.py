"""The shipped 2-D navigation policies load safely and still give their adaptation curves (MAML paper, section 5.3).

Re-measured here on 40 fixed, seeded new goals (``meta_rl.evaluate(n_goals=40)``, 20 episodes per step, the step
sizes of the authors' evaluation 0.5, 0.25, 0.25), a smaller set than the 100 goals of the README's table so the
file stays fast. The
numbers pinned below were measured on the shipped files; the tolerance allows for floating-point differences
between machines (an episode that reaches its goal one step earlier or later changes a return by about 0.01-0.1).
"""

import shlex

import pytest
import torch

from metalearn_lite import meta_rl
from metalearn_lite.train import shipped_checkpoint

N_GOALS, INNER_LR, TOLERANCE = 40, meta_rl.AUTHORS_TEST_INNER_LRS, 1.5
MEASURED = {  # mean return after 0, 1, 2, 3 steps on evaluate(n_goals=40)
    "maml": [-38.81, -12.55, -5.04, -4.69],
    "pretrained": [-38.31, -14.42, -5.84, -5.23],
    "random": [-75.04, -63.10, -60.00, -57.80],
}


@pytest.fixture(scope="module")
def curves():
    policies = {method: meta_rl.load_policy(method)[0] for method in meta_rl.NAVIGATION_CHECKPOINTS}
    policies["random"] = meta_rl.random_policy(0)
    return {name: meta_rl.evaluate(policy, n_goals=N_GOALS, inner_lr=INNER_LR) for name, policy in policies.items()}


@pytest.mark.parametrize("method", list(meta_rl.NAVIGATION_CHECKPOINTS))
def test_checkpoint_is_small_safe_and_documented(method):
    path = shipped_checkpoint(meta_rl.NAVIGATION_CHECKPOINTS[method])
    assert path.stat().st_size < 2 * 1024 * 1024
    torch.load(path, weights_only=True)
    _, payload = meta_rl.load_policy(method)
    meta = payload["metadata"]
    assert meta["method"] == method and meta["task_family"] == "navigation" and meta["seed"] == 0
    argv = shlex.split(meta["command"])
    assert argv[:3] == ["python", "-m", "metalearn_lite.experiments.navigation"]
    assert argv[argv.index("--out") + 1] == f"metalearn_lite/checkpoints/{path.name}"
    assert meta["git_commit"] and meta["torch_version"] and meta["wall_time_s"] > 0
    assert len(meta["evaluation"]["mean"]) == 4 and meta["evaluation"]["n_goals"] == 100


@pytest.mark.parametrize("name", list(MEASURED))
def test_adaptation_curves_are_as_measured(curves, name):
    measured = [curves[name].mean(k) for k in range(4)]
    assert measured == pytest.approx(MEASURED[name], abs=TOLERANCE)


def test_maml_adapts_beats_random_init_and_beats_pretrained_after_one_step(curves):
    """Known shortfall: after 3 steps the pretrained policy is level with MAML; the paper's MAML reaches -3.33 /
    -3.23 after 2 and 3 steps, ours about -5 / -4.5 (README, Checkpoints; docs/navigation-training.md)."""
    maml, pretrained, random = curves["maml"], curves["pretrained"], curves["random"]
    assert maml.mean(3) > maml.mean(1) > maml.mean(0)
    # after one step, on the same goals: MAML is ahead by about 1.9 here (3.4 on the README's 100 goals, where the
    # two 95% intervals do not overlap)
    assert maml.mean(1) > pretrained.mean(1) + 1.5
    for k in range(4):
        assert maml.mean(k) - maml.ci95(k) > random.mean(k) + random.ci95(k) + 10
    assert maml.mean(1) == pytest.approx(meta_rl.PAPER_TABLE["maml"][1], rel=0.25)   # paper: -11.68
