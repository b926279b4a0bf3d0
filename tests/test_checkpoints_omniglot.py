"""Each shipped Omniglot checkpoint loads safely and still reaches its recorded headline numbers.

The headline: 5-way 1-shot accuracy on the held-out alphabets, batch norm over the query batch, recomputed on a
fixed, seeded set of 200 episodes (5 queries per class, the first 200 of the 600-episode evaluation) with the
adaptation settings recorded with each number, and the 20-run challenge error. Tolerance: 2.5 points around the recorded
600-episode value (the 95% CI of a 200-episode mean is about ±1.5 points; the rest is floating-point drift across
machines), and a floor below which the lesson's claims would no longer hold.
"""

from pathlib import Path

import pytest
import torch

from metalearn_lite.data import EpisodeSampler, evaluate_challenge, load_challenge_runs, load_omniglot
from metalearn_lite.experiments.omniglot import EVALUATION_K_QUERY, EVALUATION_SEED
from metalearn_lite.few_shot import challenge_classifier, evaluate_episodes, load_initialisation
from metalearn_lite.data.settings import get_data_dir

# Found only through the package's data-folder setting (METALEARN_DATA, else its default folder);
# conftest.py makes sure the files are there, once, before the first test that needs them.
DATA_DIR = get_data_dir()
pytestmark = pytest.mark.omniglot
CHECKPOINTS = sorted((Path(__file__).resolve().parents[1] / "metalearn_lite" / "checkpoints").glob("omniglot_*.pt"))
# Notebook 5's MAML checkpoint: its headline and challenge error (notebook 6's learners at a short, equal budget
# have their own pinned numbers in test_checkpoints_beyond_maml.py).
NOTEBOOK_5 = [path for path in CHECKPOINTS if path.name == "omniglot_maml_5way1shot.pt"]
FLOOR_5WAY_1SHOT = 0.85
CEILING_CHALLENGE_ERROR = 0.40


def test_there_is_a_shipped_omniglot_checkpoint():
    assert CHECKPOINTS, "no metalearn_lite/checkpoints/omniglot_*.pt"
    assert NOTEBOOK_5, "no metalearn_lite/checkpoints/omniglot_maml_5way1shot.pt"


@pytest.fixture(scope="module")
def test_split():
    return load_omniglot("test", data_dir=DATA_DIR, download=False)


@pytest.mark.parametrize("path", CHECKPOINTS, ids=lambda p: p.name)
def test_checkpoint_is_small_safe_and_documented(path):
    assert path.stat().st_size < 2 * 1024 * 1024
    payload = torch.load(path, map_location="cpu", weights_only=True)
    meta = payload["metadata"]
    assert meta["command"].startswith("python -m metalearn_lite.experiments.omniglot")
    assert meta["steps"] > 0 and meta["git_commit"] and meta["torch_version"]
    assert meta["evaluation"]["episodes"][0]["n_episodes"] >= 600


@pytest.mark.parametrize("path", NOTEBOOK_5, ids=lambda p: p.name)
def test_headline_accuracy_is_reproduced(path, test_split):
    model, params, payload = load_initialisation(path)
    settings, evaluation = payload["metadata"]["settings"], payload["metadata"]["evaluation"]
    recorded = evaluation["episodes"][0]
    assert (recorded["n_way"], recorded["k_shot"], recorded["bn"]) == (5, 1, "query")
    sampler = EpisodeSampler(test_split, 5, 1, EVALUATION_K_QUERY, 1, seed=EVALUATION_SEED)
    estimate = evaluate_episodes(model, params, sampler, 200, recorded["inner_lr"], recorded["inner_steps"],
                                 "query", settings["zero_head"])
    print(f"{path.name}: 5-way 1-shot {estimate} vs recorded {recorded['accuracy']:.1%} (600 episodes)")
    assert abs(estimate.mean - recorded["accuracy"]) < 0.025
    assert estimate.mean > FLOOR_5WAY_1SHOT


@pytest.mark.parametrize("path", NOTEBOOK_5, ids=lambda p: p.name)
def test_challenge_error_is_reproduced(path):
    model, params, payload = load_initialisation(path)
    settings, challenge = payload["metadata"]["settings"], payload["metadata"]["evaluation"]["challenge"]
    classifier = challenge_classifier(model, params, challenge["inner_lr"], challenge["inner_steps"], "query",
                                      settings["zero_head"])
    result = evaluate_challenge(classifier, load_challenge_runs(DATA_DIR, download=False))
    recorded = challenge["error"]
    print(f"{path.name}: challenge {result} vs recorded {recorded:.1%}")
    assert abs(result.mean_error - recorded) < 0.0126   # at most 5 of the 400 challenge images change
    assert result.mean_error < CEILING_CHALLENGE_ERROR
