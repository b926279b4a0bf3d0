"""The documented training command of the sinusoid checkpoints, on tiny runs."""

import os
import subprocess
import sys

import pytest
import torch

from metalearn_lite.experiments import sinusoid
from metalearn_lite.models import MLP
from metalearn_lite.train import load_checkpoint


@pytest.mark.parametrize("method", ["maml", "pretrained"])
def test_tiny_run_writes_a_safe_checkpoint(tmp_path, method, capsys):
    out = tmp_path / f"{method}.pt"
    path = sinusoid.main(["--method", method, "--meta-steps", "20", "--log-every", "5", "--out", str(out),
                          "--quiet"])
    assert path == out and out.stat().st_size < 2 * 1024 * 1024
    payload = torch.load(out, weights_only=True)  # nothing in it needs pickle
    model, payload = load_checkpoint(out)
    assert isinstance(model, MLP) and payload["model_config"]["hidden"] == [40, 40]
    meta = payload["metadata"]
    assert meta["method"] == method and meta["steps"] == 20 and meta["seed"] == 0
    assert meta["command"].startswith("python -m metalearn_lite.experiments.sinusoid --method " + method)
    assert meta["settings"] == {"meta_batch_size": 25, "k_shot": 10, "k_query": 10, "inner_lr": 0.01,
                                "inner_steps": 1, "meta_lr": 0.001, "init": "torch"}
    assert isinstance(meta["torch_version"], str) and meta["wall_time_s"] >= 0
    assert payload["history"]["steps"] == [5, 10, 15, 20]
    assert "done in" in capsys.readouterr().out


@pytest.mark.parametrize("method", ["fomaml", "reptile", "anil", "meta_sgd"])
def test_the_relatives_of_maml_train_and_can_be_rebuilt(tmp_path, method):
    from metalearn_lite.methods import learner_from_checkpoint, method_of
    out = sinusoid.main(["--method", method, "--meta-steps", "4", "--log-every", "2", "--out",
                         str(tmp_path / f"{method}.pt"), "--quiet"])
    model, payload = load_checkpoint(out)
    meta = payload["metadata"]
    assert meta["method"] == method and meta["steps"] == 4 and payload["history"]["steps"] == [2, 4]
    assert meta["settings"]["inner_steps"] == (5 if method == "reptile" else 1)
    learner = learner_from_checkpoint(model, payload)
    assert method_of(learner) == method
    if method == "meta_sgd":   # the learned rates travel in the metadata, and they were trained
        rates = learner.inner_lrs["0.weight"]
        assert rates.shape == model[0].weight.shape and not torch.allclose(rates, torch.full_like(rates, 0.01))


def test_reptile_needs_an_inner_step(tmp_path, capsys):
    with pytest.raises(SystemExit):
        sinusoid.main(["--method", "reptile", "--inner-steps", "0", "--out", str(tmp_path / "x.pt")])
    assert "--inner-steps must be an integer >= 1 for --method reptile" in capsys.readouterr().err


def test_runs_are_seeded(tmp_path):
    weights = []
    for name in ("a", "b"):
        _, payload = load_checkpoint(sinusoid.main(["--meta-steps", "5", "--out", str(tmp_path / f"{name}.pt"),
                                                    "--quiet"]))
        weights.append(payload["state_dict"])
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_rejects_zero_steps(tmp_path):
    with pytest.raises(SystemExit):
        sinusoid.main(["--meta-steps", "0", "--out", str(tmp_path / "x.pt")])


def test_module_command_line(tmp_path):
    out = tmp_path / "cli.pt"
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
    done = subprocess.run([sys.executable, "-m", "metalearn_lite.experiments.sinusoid", "--meta-steps", "3",
                           "--out", str(out), "--quiet"], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "done in" in done.stdout and out.is_file()
    assert load_checkpoint(out)[1]["metadata"]["command"].endswith(f"--out {out} --quiet")
