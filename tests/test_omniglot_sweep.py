"""tools/omniglot_sweep.py: configurations train, evaluate in every test-time variant, and land in a summary."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("omniglot_sweep", ROOT / "tools" / "omniglot_sweep.py")
sweep = importlib.util.module_from_spec(spec)
sys.modules["omniglot_sweep"] = sweep
spec.loader.exec_module(sweep)

pytestmark = pytest.mark.omniglot  # the tiny sweep trains on the Omniglot files (conftest.py)


def test_variants_are_parsed_as_learning_rate_and_steps():
    assert sweep.variants_of("0.2:3,0.4:5") == [(0.2, 3), (0.4, 5)]
    assert sweep.variants_of("") == []
    with pytest.raises(ValueError):
        sweep.variants_of("0.2")


def test_shipped_sweep_files_spell_out_every_changed_default():
    for path in (ROOT / "tools" / "sweeps").glob("*.json"):
        for config in json.loads(path.read_text()):
            assert config["steps"] > 0 and config["name"]
            assert "--n-way" in config["args"] and "--hidden-channels" in config["args"], (path.name, config)


def test_a_tiny_sweep_trains_evaluates_and_summarises(tmp_path, monkeypatch):
    configs = tmp_path / "configs.json"
    configs.write_text(json.dumps([{"name": "tiny", "steps": 2,
                                    "args": "--hidden-channels 4 --n-way 5 --k-query 1 --meta-batch-size 2"}]))
    sweep.main([str(configs), "--variants", "0.1:2", "--episodes", "2", "--work", str(tmp_path / "out")])
    lines = (tmp_path / "out" / "summary.txt").read_text().splitlines()
    settings = [line.split(":")[0].split()[1:] for line in lines]   # "tiny  lr 0.4 steps 1: ..." -> lr, steps
    assert settings == [["lr", "0.4", "steps", "1"], ["lr", "0.1", "steps", "2"]]
    assert all("challenge" in line and "20w1s-query" in line for line in lines)
    assert (tmp_path / "out" / "tiny.pt").exists()


def test_a_validation_sweep_trains_without_the_held_out_alphabets_and_never_opens_the_test_ones(tmp_path,
                                                                                                 monkeypatch):
    import metalearn_lite.data as data
    opened = []
    real_load = data.load_omniglot

    def recording_load(split, *args, **kwargs):
        opened.append(split)
        return real_load(split, *args, **kwargs)
    monkeypatch.setattr(data, "load_omniglot", recording_load)
    monkeypatch.setattr(data, "load_challenge_runs", lambda *a, **k: pytest.fail("the challenge runs were opened"))
    configs = tmp_path / "configs.json"
    configs.write_text(json.dumps([{"name": "tiny", "steps": 2, "args": "--hidden-channels 4 --n-way 5 --k-query 1 "
                                    "--meta-batch-size 2 --val-every 1 --val-episodes 2"}]))
    work = tmp_path / "out"
    sweep.main([str(configs), "--episodes", "2", "--work", str(work), "--validation-alphabets", "1"])
    # the training ran with the last training alphabet held out (its checkpoint records it) ...
    from metalearn_lite.few_shot import load_initialisation
    assert load_initialisation(work / "tiny.pt")[2]["metadata"]["settings"]["validation_alphabets"] == 1
    # ... and the scores are on that held-out alphabet: no challenge column, no test split
    sweep.main(["--evaluate-one", str(work / "tiny.pt"), "--episodes", "2", "--validation-alphabets", "1"])
    assert opened and set(opened) == {"val"}
    line = (work / "summary.txt").read_text()
    assert "challenge" not in line and "20w1s-query" in line
