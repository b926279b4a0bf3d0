"""The learners by name: each is built, named back, and scored on episodes its own way."""

import pytest
import torch

from metalearn_lite import methods
from metalearn_lite.models import Conv4
from metalearn_lite.tasks import Split, TaskBatch


class FakeSampler:
    """``sample()`` gives ``meta_batch_size`` random 5-way 1-shot episodes (as ``EpisodeSampler`` does)."""

    def __init__(self, n_way=5):
        self.n_way, self.meta_batch_size, self.generator = n_way, 1, torch.Generator().manual_seed(0)

    def sample(self):
        labels = torch.arange(self.n_way).expand(self.meta_batch_size, -1)
        X = lambda: torch.rand(self.meta_batch_size, self.n_way, 1, 28, 28, generator=self.generator)  # noqa: E731
        return TaskBatch(Split(X(), labels), Split(X(), labels))


@pytest.mark.parametrize("method", methods.METHODS)
def test_each_method_is_built_named_and_scored_on_episodes_of_another_size(method):
    torch.manual_seed(0)
    model = Conv4(n_way=3, hidden_channels=4)
    learner = methods.make_learner(method, model, 0.4, 1, "cross_entropy")
    assert methods.method_of(learner) == method and learner.model is model
    batch = FakeSampler().sample()
    accuracies = methods.episode_accuracies(learner, batch, zero_head=True)
    assert accuracies.shape == (1,) and 0 <= float(accuracies) <= 1
    estimate = methods.evaluate_episodes(learner, FakeSampler(), n_episodes=4, chunk=2)
    assert estimate.n_episodes == 4 and 0 <= estimate.mean <= 1


def test_meta_sgd_head_rates_for_another_number_of_classes():
    rates = {"head.weight": torch.arange(6.0).reshape(3, 2), "head.bias": torch.tensor([1.0, 2.0, 3.0])}
    resized = methods.rates_for_n_way(rates, 5)
    assert resized["head.weight"].shape == (5, 2) and torch.equal(resized["head.weight"][4], torch.tensor([2.0, 3.0]))
    assert torch.equal(resized["head.bias"], torch.full((5,), 2.0))


def test_an_unknown_method_is_named():
    with pytest.raises(ValueError, match="method must be one of"):
        methods.make_learner("mamll", Conv4())


def test_query_loss_curves_adapt_each_method_its_own_way():
    from metalearn_lite import anil as anil_module, maml as maml_module
    from metalearn_lite.evaluation import evaluation_tasks
    from metalearn_lite.models import MLP
    torch.manual_seed(0)
    batch = evaluation_tasks(3, 5, 20, seed=4)
    for method in ("maml", "reptile", "anil", "meta_sgd"):
        learner = methods.make_learner(method, MLP(), inner_lr=0.01)
        curves = methods.query_loss_curves(learner, batch, inner_steps=3)
        assert curves.shape == (3, 4)
        params = maml_module.parameters_of(learner.model)
        if method == "anil":
            expected = anil_module.adapt(learner.model, params, batch, 0.01, 3).query_losses
        else:   # Meta-SGD starts with every rate at inner_lr: MAML's adaptation
            expected = maml_module.adapt(learner.model, params, batch, 0.01, 3).query_losses
        assert torch.allclose(curves, expected, rtol=1e-5), method
    with pytest.raises(ValueError, match="classify"):
        methods.query_loss_curves(methods.make_learner("protonet", MLP()), batch, 1)


@pytest.fixture(scope="module")
def challenge_runs():
    from metalearn_lite.data import load_challenge_runs
    return load_challenge_runs(download=False)[:4]


def test_the_challenge_for_maml_is_notebook_5s_per_run_classifier_all_runs_at_once(challenge_runs):
    from metalearn_lite.data import evaluate_challenge
    from metalearn_lite.few_shot import challenge_classifier
    torch.manual_seed(0)
    model = Conv4(n_way=5, hidden_channels=8)
    learner = methods.make_learner("maml", model, 0.4, 1, "cross_entropy")
    batched = methods.challenge_result(learner, challenge_runs, 0.4, 2)
    params = {name: p.detach() for name, p in model.named_parameters()}
    per_run = evaluate_challenge(challenge_classifier(model, params, 0.4, 2, "query", True), challenge_runs)
    assert batched.errors_per_run == pytest.approx(per_run.errors_per_run, abs=1e-6)
    assert batched.mean_error == pytest.approx(per_run.mean_error, abs=1e-6)
    assert 0 < per_run.mean_error < 1   # not every query right or wrong: the comparison means something


@pytest.mark.parametrize("method", ["meta_sgd", "protonet", "anil"])
def test_the_challenge_is_scored_for_every_method_that_can_output_20_classes(method, challenge_runs):
    torch.manual_seed(0)
    learner = methods.make_learner(method, Conv4(n_way=5, hidden_channels=8), 0.4, 1, "cross_entropy")
    result = methods.challenge_result(learner, challenge_runs)
    assert len(result.errors_per_run) == len(challenge_runs)
    assert all(20 * error == pytest.approx(round(20 * error), abs=1e-4) for error in result.errors_per_run)  # of 20
    assert result.mean_error == pytest.approx(sum(result.errors_per_run) / len(challenge_runs))


def test_the_challenge_needs_runs():
    learner = methods.make_learner("maml", Conv4(n_way=5, hidden_channels=4), 0.4, 1, "cross_entropy")
    with pytest.raises(ValueError, match="runs"):
        methods.challenge_result(learner, [])
