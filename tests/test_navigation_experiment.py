"""The 2-D navigation training command: flags checked first, a small run writes a safe, documented checkpoint,
foreign files are left alone, Ctrl-C leaves --out untouched."""

import shlex

import pytest
import torch

from metalearn_lite import meta_rl
from metalearn_lite.experiments import navigation as command
from metalearn_lite.policy import GaussianPolicy
from metalearn_lite.train import TrainingInterrupted, load_checkpoint

TINY = ["--meta-steps", "2", "--meta-batch-size", "2", "--n-trajectories", "2", "--eval-goals", "2", "--quiet"]


@pytest.mark.parametrize("method", command.METHODS)
def test_a_small_run_writes_a_checkpoint_with_its_provenance(tmp_path, method):
    out = tmp_path / f"{method}.pt"
    command.main(["--method", method, "--out", str(out), *TINY])
    torch.load(out, weights_only=True)
    policy, payload = load_checkpoint(out, task_family="navigation")
    meta = payload["metadata"]
    assert isinstance(policy, GaussianPolicy)
    assert meta["method"] == method and meta["steps"] == 2 and meta["seed"] == 0 and meta["wall_time_s"] >= 0
    assert shlex.split(meta["command"])[:3] == ["python", "-m", "metalearn_lite.experiments.navigation"]
    assert len(meta["evaluation"]["mean"]) == command.EVAL_STEPS + 1
    assert [p.name for p in tmp_path.iterdir()] == [out.name]   # no temporary file left


def test_runs_are_seeded(tmp_path):
    a, b = tmp_path / "a.pt", tmp_path / "b.pt"
    command.main(["--out", str(a), *TINY])
    command.main(["--out", str(b), *TINY])
    wa, wb = load_checkpoint(a)[1]["state_dict"], load_checkpoint(b)[1]["state_dict"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.mark.parametrize("flag, value", [("--meta-steps", "0"), ("--n-trajectories", "1"), ("--inner-lr", "-1"),
                                         ("--meta-lr", "nan"), ("--std-lr", "0"), ("--seed", "-3")])
def test_bad_flags_stop_before_the_first_step(tmp_path, capsys, flag, value):
    with pytest.raises(SystemExit) as stop:
        command.main(["--out", str(tmp_path / "x.pt"), flag, value])
    assert stop.value.code == 2 and flag in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_the_spread_has_its_own_learning_rate_and_the_others_share_meta_lr():
    policy = command.GaussianPolicy(**command.MODEL_CONFIG)
    body, spread = command.make_optimizer(policy, 1e-3, 1e-2).param_groups
    assert spread["lr"] == 1e-2 and len(spread["params"]) == 1 and spread["params"][0] is policy.log_std
    assert body["lr"] == 1e-3 and len(body["params"]) == len(list(policy.parameters())) - 1
    assert all(group["lr"] == 1e-3 for group in command.make_optimizer(policy, 1e-3).param_groups)


def test_a_file_that_is_not_a_navigation_checkpoint_is_left_alone(tmp_path, capsys):
    out = tmp_path / "notes.pt"
    out.write_text("my notes")
    with pytest.raises(SystemExit):
        command.main(["--out", str(out), *TINY])
    assert out.read_text() == "my notes" and "--force" in capsys.readouterr().err


def test_ctrl_c_leaves_out_untouched(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run.pt"

    def interrupted(args, policy):
        raise TrainingInterrupted(1, command.History())

    monkeypatch.setattr(command, "train", interrupted)
    with pytest.raises(SystemExit):
        command.main(["--out", str(out), *TINY])
    assert not out.exists() and "not touched" in capsys.readouterr().err


def test_the_defaults_are_the_papers_where_it_says():
    assert command.DEFAULTS["meta_batch_size"] == meta_rl.PAPER_SETTINGS["meta_batch_size"] == 20
    assert command.DEFAULTS["n_trajectories"] == meta_rl.PAPER_SETTINGS["n_trajectories"] == 20
    assert command.DEFAULTS["inner_lr"] == meta_rl.PAPER_SETTINGS["inner_lr"] == 0.1
