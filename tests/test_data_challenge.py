"""The original Omniglot challenge: 20 runs read right, the evaluator, and the published Hausdorff baseline."""


import numpy as np
import pytest
import torch

from metalearn_lite.data import (evaluate_challenge, hausdorff_classifier, load_challenge_runs,
                                 modified_hausdorff_costs, modified_hausdorff_distance, runs_as_task_batch)
from metalearn_lite.data.images import to_small_image
from metalearn_lite.data.settings import get_data_dir

# Found only through the package's data-folder setting (METALEARN_DATA, else its default folder);
# conftest.py makes sure the files are there, once, before the first test that needs them.
DATA_DIR = get_data_dir()
pytestmark = pytest.mark.omniglot


@pytest.fixture(scope="module")
def runs():
    return load_challenge_runs(DATA_DIR, download=False)


def test_twenty_runs_of_twenty_way_one_shot(runs):
    assert [run.name for run in runs] == [f"run{i:02d}" for i in range(1, 21)]
    for run in runs:
        assert tuple(run.support_X.shape) == (20, 1, 28, 28) and tuple(run.query_X.shape) == (20, 1, 28, 28)
        assert run.support_ink.shape == (20, 105, 105) and run.support_ink.dtype == bool
        assert sorted(run.query_y.tolist()) == list(range(20))  # each class queried exactly once


def test_class_labels_pair_queries_with_their_support_files(runs):
    first = runs[0]
    # run01/class_labels.txt starts "run01/test/item01.png run01/training/class08.png"
    assert first.query_files[0] == "run01/test/item01.png" and first.query_y[0] == 7
    assert first.support_files[7] == "run01/training/class08.png"


def test_small_images_are_prepared_like_the_episode_cache(runs):
    from PIL import Image
    ink = runs[2].query_ink[5]
    rebuilt = to_small_image(Image.fromarray(~ink).convert("1")).astype(np.float32) / 255
    np.testing.assert_allclose(runs[2].query_X[5, 0].numpy(), rebuilt)
    assert runs[2].query_X.max() == 1.0 and runs[2].query_X.mean() < 0.2


def test_fast_hausdorff_equals_the_brute_force_definition(runs):
    run = runs[6]
    fast = modified_hausdorff_costs(run.query_ink[:3], run.support_ink[:5])
    brute = np.array([[modified_hausdorff_distance(q, s) for s in run.support_ink[:5]] for q in run.query_ink[:3]])
    np.testing.assert_allclose(fast, brute, rtol=0, atol=1e-9)


def test_hausdorff_of_an_image_with_itself_is_zero_and_symmetric(runs):
    a, b = runs[0].support_ink[0], runs[0].support_ink[1]
    assert modified_hausdorff_distance(a, a) == 0.0
    assert modified_hausdorff_distance(a, b) == pytest.approx(modified_hausdorff_distance(b, a))


def test_hausdorff_baseline_reproduces_the_published_error(runs):
    result = evaluate_challenge(hausdorff_classifier, runs, images="ink")
    assert len(result.errors_per_run) == 20
    assert result.mean_error == pytest.approx(0.388, abs=0.01)
    assert result.mean_error == pytest.approx(np.mean(result.errors_per_run))


def test_evaluator_scores_perfect_and_constant_classifiers(runs):
    answers = {id(run.query_X): run.query_y for run in runs}
    perfect = evaluate_challenge(lambda support, query: answers[id(query)], runs)
    assert perfect.errors_per_run == (0.0,) * 20 and perfect.mean_error == 0.0
    constant = evaluate_challenge(lambda support, query: np.zeros(20, dtype=int), runs)
    assert constant.mean_error == pytest.approx(19 / 20)


def test_evaluator_rejects_wrong_shapes_and_forms(runs):
    with pytest.raises(ValueError, match="20 predictions"):
        evaluate_challenge(lambda support, query: [0, 1], runs)
    with pytest.raises(ValueError, match="images"):
        evaluate_challenge(hausdorff_classifier, runs, images="105")


def test_runs_as_a_task_batch_for_the_engine(runs):
    batch = runs_as_task_batch(runs)
    assert tuple(batch.support.X.shape) == (20, 20, 1, 28, 28)
    assert torch.equal(batch.support.y[3], torch.arange(20)) and torch.equal(batch.query.y[3], runs[3].query_y)
