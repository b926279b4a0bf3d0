"""Few-shot evaluation: the fast adaptation agrees with the engine, batch-norm modes, CIs, zero head, challenge."""

import math

import pytest
import torch

from metalearn_lite.data import EpisodeSampler, evaluate_challenge, load_challenge_runs, load_omniglot
from metalearn_lite.few_shot import (adapt_tasks, challenge_classifier, evaluate_episodes, mean_with_ci,
                                     params_for_n_way, query_logits)
from metalearn_lite.maml import adapt, parameters_of
from metalearn_lite.models import Conv4
from metalearn_lite.data.settings import get_data_dir

# Found only through the package's data-folder setting (METALEARN_DATA, else its default folder);
# conftest.py makes sure the files are there, once, before the first test that needs them.
DATA_DIR = get_data_dir()
pytestmark = pytest.mark.omniglot


@pytest.fixture(scope="module")
def test_split():
    return load_omniglot("test", data_dir=DATA_DIR, download=False)


@pytest.fixture
def small_model():
    torch.manual_seed(0)
    model = Conv4(n_way=5, hidden_channels=8)
    return model, parameters_of(model)


def test_fast_adaptation_matches_the_engines_adapt(test_split, small_model):
    model, params = small_model
    batch = EpisodeSampler(test_split, 5, 2, 3, meta_batch_size=3, seed=1).sample()
    reference = adapt(model, params, batch, 0.3, 3, loss="cross_entropy")
    ours = adapt_tasks(model, params, batch, 0.3, 3)
    torch.testing.assert_close(ours.support_losses, reference.support_losses, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(ours.query_accuracies, reference.query_accuracies)
    last_only = adapt_tasks(model, params, batch, 0.3, 3, record_curve=False)
    torch.testing.assert_close(last_only.query_accuracies[:, 0], ours.query_accuracies[:, -1])
    assert torch.equal(last_only.predictions, ours.predictions)


def test_support_statistics_classify_each_query_on_its_own(test_split, small_model):
    model, params = small_model
    batch = EpisodeSampler(test_split, 5, 1, 4, meta_batch_size=2, seed=2).sample()
    stacked = {k: v.unsqueeze(0).expand(2, *v.shape) for k, v in params.items()}
    full = query_logits(model, stacked, batch, bn="support")
    half = batch._replace(query=batch.query._replace(X=batch.query.X[:, :7], y=batch.query.y[:, :7]))
    torch.testing.assert_close(query_logits(model, stacked, half, bn="support"), full[:, :7], atol=1e-5, rtol=1e-4)
    transductive = query_logits(model, stacked, batch, bn="query")
    assert not torch.allclose(transductive[:, :7], query_logits(model, stacked, half, bn="query"), atol=1e-4)


def test_diverging_learning_rate_is_flagged_not_raised(test_split, small_model):
    model, params = small_model
    batch = EpisodeSampler(test_split, 5, 1, 2, meta_batch_size=2, seed=3).sample()
    curve = adapt_tasks(model, params_for_n_way(params, 5), batch, 1e4, 5)
    assert curve.diverged.all()
    assert torch.isnan(curve.query_accuracies[:, -1]).all()


def test_confidence_interval():
    estimate = mean_with_ci([0.0, 1.0] * 50)
    assert estimate.mean == 0.5 and estimate.n_episodes == 100
    assert estimate.ci95 == pytest.approx(1.96 * math.sqrt(100 / 99 * 0.25) / 10)
    with pytest.raises(ValueError):
        mean_with_ci([1.0])


def test_evaluation_is_seeded_and_counts_episodes(test_split, small_model):
    model, params = small_model
    results = [evaluate_episodes(model, params, EpisodeSampler(test_split, 5, 1, 3, seed=4), 7, 0.4, 1,
                                 chunk=3) for _ in range(2)]
    assert results[0] == results[1] and results[0].n_episodes == 7
    with pytest.raises(ValueError, match="zero_head"):
        evaluate_episodes(model, params, EpisodeSampler(test_split, 20, 1, 1, seed=4), 2, zero_head=False)


def test_zero_head_serves_any_number_of_classes(small_model):
    _, params = small_model
    twenty = params_for_n_way(params, 20)
    assert twenty["head.weight"].shape == (20, params["head.weight"].shape[1])
    assert torch.count_nonzero(twenty["head.weight"]) == 0 and twenty["features.0.0.weight"] is params[
        "features.0.0.weight"]


def test_challenge_classifier_runs_on_the_twenty_runs(small_model):
    model, params = small_model
    runs = load_challenge_runs(DATA_DIR, download=False)[:2]
    result = evaluate_challenge(challenge_classifier(model, params, inner_steps=1), runs=runs)
    assert len(result.errors_per_run) == 2 and 0.0 <= result.mean_error <= 1.0


def test_adapting_fewer_episodes_at_a_time_only_saves_memory(test_split, small_model):
    model, params = small_model
    estimates = [evaluate_episodes(model, params, EpisodeSampler(test_split, 5, 1, 3, 1, seed=3), 12, 0.4, 1,
                                   chunk=12, adapt_chunk=adapt_chunk, progress=adapt_chunk == 5)
                 for adapt_chunk in (12, 5, 1)]
    assert estimates[0].mean == estimates[1].mean == estimates[2].mean   # a progress bar changes nothing either
    with pytest.raises(ValueError, match="adapt_chunk must be an integer >= 1, got 0"):
        evaluate_episodes(model, params, EpisodeSampler(test_split, 5, 1, 3, 1, seed=3), 12, adapt_chunk=0)


def test_learned_rates_adapt_as_meta_sgd_does(test_split, small_model):
    from itertools import islice

    from metalearn_lite import meta_sgd
    from metalearn_lite.few_shot import adaptation_steps
    model, params = small_model
    batch = EpisodeSampler(test_split, 5, 1, 3, meta_batch_size=2, seed=6).sample()
    torch.manual_seed(1)
    rates = {name: 0.2 + 0.3 * torch.rand_like(p) for name, p in params.items()}   # a different rate per weight
    states = list(islice(adaptation_steps(model, params, batch, rates), 4))
    reference = meta_sgd.adapt(model, params, rates, batch, 3, "cross_entropy")
    torch.testing.assert_close(torch.stack([s.support_losses for s in states], 1), reference.support_losses,
                               atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(torch.stack([s.query_accuracies for s in states], 1), reference.query_accuracies)
    uniform = {name: torch.full_like(p, 0.3) for name, p in params.items()}   # one rate everywhere: plain SGD
    for a, b in zip(islice(adaptation_steps(model, params, batch, uniform), 3),
                    islice(adaptation_steps(model, params, batch, 0.3), 3)):
        assert all(torch.equal(a.params[name], b.params[name]) for name in params)
    with pytest.raises(ValueError, match=r"inner_lrs\['head.bias'\] must be a floating tensor"):
        adaptation_steps(model, params, batch, {**rates, "head.bias": torch.ones(3)})


def test_a_test_time_step_on_autograd_leaves_is_the_engines_step(test_split, small_model):
    from metalearn_lite import maml
    from metalearn_lite.few_shot import first_order_step, stacked_forward, task_copies
    model, params = small_model
    batch = EpisodeSampler(test_split, 5, 1, 3, meta_batch_size=2, seed=7).sample()
    stacked = task_copies(params, 2)
    ours, losses = first_order_step(model, stacked, batch.support, 0.4)
    engine, engine_losses = maml.inner_update(model, stacked, batch.support, 0.4, "cross_entropy", True,
                                              stacked_forward(model))   # detached: through torch.func.grad
    for name in params:
        torch.testing.assert_close(ours[name], engine[name], atol=1e-6, rtol=1e-5)
        assert not ours[name].requires_grad and ours[name].grad_fn is None   # nothing kept alive between steps
    torch.testing.assert_close(losses, engine_losses)
    with torch.no_grad():   # an evaluation under no_grad still takes its steps
        assert torch.equal(first_order_step(model, stacked, batch.support, 0.4)[0]["head.bias"], ours["head.bias"])
