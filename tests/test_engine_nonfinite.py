"""NaN never passes silently (issue 18): a diverging inner_lr in the engine warns naming it, and evaluation refuses
non-finite weights naming the tensor instead of scoring them."""

import warnings

import pytest
import torch

from metalearn_lite import evaluation
from metalearn_lite.few_shot import adapt_tasks, challenge_classifier, evaluate_episodes
from metalearn_lite.maml import MAML, adapt, meta_gradient, parameters_of
from metalearn_lite.models import MLP, Conv4
from metalearn_lite.tasks import SinusoidTasks, Split, TaskBatch


@pytest.fixture
def sinusoid():
    """The paper's 1-40-40-1 MLP: at inner_lr=1e6 its meta-loss overflows to inf (the issue's case)."""
    torch.manual_seed(0)
    return MLP(), SinusoidTasks().sample(4, 5, generator=torch.Generator().manual_seed(0))


@pytest.fixture
def conv():
    torch.manual_seed(0)
    return Conv4(n_way=3, hidden_channels=4)


def poisoned(params, key):
    out = {k: v.clone() for k, v in params.items()}
    out[key].view(-1)[0] = float("nan")
    return out


class RandomEpisodes:
    """Stands in for an ``EpisodeSampler``: random 3-way 1-shot episodes (no data files needed)."""

    n_way = 3

    def __init__(self, meta_batch_size=1):
        self.meta_batch_size = meta_batch_size
        self.generator = torch.Generator().manual_seed(0)
        self.sampled = 0

    def sample(self):
        self.sampled += 1
        n = self.meta_batch_size
        return TaskBatch(Split(torch.rand(n, 3, 1, 28, 28, generator=self.generator), torch.arange(3).expand(n, 3)),
                         Split(torch.rand(n, 6, 1, 28, 28, generator=self.generator),
                               torch.arange(3).repeat(2).expand(n, 6)))


@pytest.mark.parametrize("strategy", ["grouped", "vmap", "loop"])
def test_a_diverging_inner_lr_warns_naming_it(sinusoid, strategy):
    model, batch = sinusoid
    with pytest.warns(RuntimeWarning, match=r"meta_gradient: the meta-loss is not finite \(.*\); the inner loop "
                                            r"diverged with inner_lr=1e\+06 over 1 step\(s\): use a smaller inner_lr"):
        result = meta_gradient(model, parameters_of(model), batch, inner_lr=1e6, strategy=strategy)
    assert not torch.isfinite(result.loss)  # the result itself is what it is; the warning says so


def test_the_maml_class_warns_too(sinusoid):
    model, batch = sinusoid
    with pytest.warns(RuntimeWarning, match="inner_lr=1e\\+06"):
        MAML(model, inner_lr=1e6).meta_gradient(batch)


def test_non_finite_weights_in_training_are_named(sinusoid):
    model, batch = sinusoid
    with pytest.warns(RuntimeWarning, match=r"params\['2.weight'\] already holds non-finite values \(an earlier "
                                            r"meta-step diverged"):
        meta_gradient(model, poisoned(parameters_of(model), "2.weight"), batch)


def test_a_finite_meta_gradient_gives_no_warning(sinusoid):
    model, batch = sinusoid
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert torch.isfinite(meta_gradient(model, parameters_of(model), batch).loss)


def test_adaptation_refuses_non_finite_starting_weights(sinusoid):
    model, batch = sinusoid
    bad = poisoned(parameters_of(model), "0.bias")
    message = r"params\['0.bias'\] has 1 non-finite value\(s\) \(NaN or inf\) out of 40: expected finite weights"
    with pytest.raises(ValueError, match=message):
        adapt(model, bad, batch, 0.01, 1)
    with pytest.raises(ValueError, match=message):
        evaluation.evaluate(model, bad, batch)


def test_the_explorer_engine_names_the_non_finite_start(sinusoid):
    model, batch = sinusoid
    good = parameters_of(model)
    with pytest.raises(ValueError, match=r"starts\['maml'\]\['4.weight'\] has 1 non-finite value"):
        evaluation.adapt_starts(model, {"maml": poisoned(good, "4.weight"), "random": good}, batch, 0.01, 1)


def test_evaluate_episodes_refuses_nan_weights_before_drawing_an_episode(conv):
    sampler = RandomEpisodes()
    with pytest.raises(ValueError, match=r"params\['features.1.0.weight'\] has 1 non-finite value\(s\)"):
        evaluate_episodes(conv, poisoned(parameters_of(conv), "features.1.0.weight"), sampler, n_episodes=4,
                          inner_steps=1, zero_head=False)
    assert sampler.sampled == 0


def test_few_shot_adaptation_and_the_challenge_classifier_refuse_nan_weights(conv):
    bad = poisoned(parameters_of(conv), "head.bias")
    with pytest.raises(ValueError, match=r"params\['head.bias'\] has 1 non-finite value"):
        adapt_tasks(conv, bad, RandomEpisodes().sample(), 0.4, 1)
    with pytest.raises(ValueError, match=r"params\['head.bias'\] has 1 non-finite value"):
        challenge_classifier(conv, bad, zero_head=False)


def test_evaluate_episodes_warns_when_adaptation_diverged(conv):
    with pytest.warns(RuntimeWarning, match=r"evaluate_episodes: adaptation diverged in [1-4] of 4 episodes with "
                                            r"inner_lr=1e\+08, inner_steps=3: use a smaller inner_lr"):
        evaluate_episodes(conv, parameters_of(conv), RandomEpisodes(), n_episodes=4, inner_lr=1e8, inner_steps=3,
                          zero_head=False)


def test_evaluate_episodes_at_a_sane_learning_rate_gives_no_warning(conv):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        estimate = evaluate_episodes(conv, parameters_of(conv), RandomEpisodes(), n_episodes=4, inner_lr=0.4,
                                     inner_steps=1, zero_head=False)
    assert 0.0 <= estimate.mean <= 1.0
