"""Notebook 6's explorer: every method adapts the same episodes; curves, cache and controls."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from metalearn_lite import methods
from metalearn_lite.data import EpisodeSampler, load_omniglot
from metalearn_lite.models import Conv4
from metalearn_lite.widgets.beyond_maml import methods_explorer


@pytest.fixture(scope="module")
def characters():
    return load_omniglot("test")


@pytest.fixture(scope="module")
def learners():
    torch.manual_seed(0)
    built = {}
    for name, zero_head in (("maml", True), ("meta_sgd", True), ("protonet", True), ("anil_learned_head", False)):
        method = name.replace("_learned_head", "")
        built[name] = (methods.make_learner(method, Conv4(n_way=5, hidden_channels=8), inner_lr=0.4,
                                            loss="cross_entropy"), zero_head)
    return built


def test_curves_start_at_the_initialisation_and_protonet_is_flat(learners, characters):
    data = methods.comparison_data(learners, list(learners), episode=3, inner_lr=0.4, inner_steps=4,
                                   characters=characters, episodes=2)
    assert list(data["steps"]) == [0, 1, 2, 3, 4]
    for name, curve in data["curves"].items():
        assert curve.shape == (5,) and np.all((0 <= curve) & (curve <= 1))
    assert np.ptp(data["curves"]["protonet"]) == 0          # no inner steps: the same accuracy at every step
    assert data["curves"]["maml"][0] == pytest.approx(0.2)  # a zero head predicts one class: chance, 5-way


def test_last_point_of_a_curve_is_the_methods_accuracy(learners, characters):
    batch = EpisodeSampler(characters, 5, 1, 5, meta_batch_size=2, seed=5).sample()
    for name, (learner, zero_head) in learners.items():
        curve = methods.accuracy_curves(learner, batch, 0.4, 2, zero_head)
        final = methods.episode_accuracies(learner, batch, 0.4, 2, zero_head)
        assert torch.allclose(curve[:, -1], final), name


def count_adaptations(monkeypatch) -> list:
    """Record every adaptation comparison_data asks for: (learner type, continued from a cached one?)."""
    calls, original = [], methods.extended_curve

    def counted(cached, learner, *args, **kwargs):
        calls.append((type(learner).__name__, cached is not None and cached.steps is not None))
        return original(cached, learner, *args, **kwargs)
    monkeypatch.setattr(methods, "extended_curve", counted)
    return calls


def test_a_cached_method_is_not_adapted_again(learners, characters, monkeypatch):
    cache, calls = {}, count_adaptations(monkeypatch)
    for chosen in (["maml"], ["maml", "protonet"]):
        methods.comparison_data(learners, chosen, 0, 0.4, 2, characters, cache=cache)
    assert len(calls) == 2   # maml once, protonet once


def test_explorer_redraws_for_the_chosen_methods(learners, characters):
    explorer = methods_explorer(learners, characters, chosen=["maml"], inner_steps=2)
    assert explorer.last_error is None and list(explorer.last_data["curves"]) == ["maml"]
    explorer.set(chosen=("maml", "protonet"), inner_steps=3)
    assert list(explorer.last_data["curves"]) == ["maml", "protonet"]
    assert len(explorer.last_data["curves"]["protonet"]) == 4
    assert plt.get_fignums() == []
    with pytest.raises(ValueError, match="method"):
        methods.comparison_data(learners, ["nope"], 0, 0.4, 2, characters)


def test_fewer_steps_and_a_new_inner_lr_reuse_what_does_not_change(learners, characters, monkeypatch):
    cache, calls = {}, count_adaptations(monkeypatch)
    long = methods.comparison_data(learners, list(learners), 0, 0.4, 4, characters, cache=cache)
    calls.clear()
    short = methods.comparison_data(learners, list(learners), 0, 0.4, 2, characters, cache=cache)
    assert calls == []   # fewer steps: a prefix of the cached curves
    for name in learners:
        np.testing.assert_array_equal(short["curves"][name], long["curves"][name][:3])
    fresh = methods.comparison_data(learners, ["maml"], 0, 0.4, 2, characters)
    np.testing.assert_allclose(short["curves"]["maml"], fresh["curves"]["maml"], atol=1e-6)
    calls.clear()
    methods.comparison_data(learners, list(learners), 0, 0.1, 6, characters, cache=cache)
    # Meta-SGD: more steps, continued from its cached adaptation; ProtoNet: nothing to adapt
    assert sorted(calls) == [("ANIL", False), ("MAML", False), ("MetaSGD", True)]
    calls.clear()
    methods.comparison_data(learners, list(learners), 0, 0.2, 6, characters, cache=cache)
    assert sorted(calls) == [("ANIL", False), ("MAML", False)]   # a new inner lr: Meta-SGD's rates are learned


def test_more_steps_continue_the_adaptation_where_it_stopped(learners, characters, monkeypatch):
    # what a student's "more steps" costs: only the new steps, for the methods that fine-tune every weight
    cache, calls = {}, count_adaptations(monkeypatch)
    methods.comparison_data(learners, ["maml"], 1, 0.4, 2, characters, cache=cache, episodes=2)
    steps_taken = []
    original = methods.few_shot.maml.inner_update
    monkeypatch.setattr(methods.few_shot.maml, "inner_update",
                        lambda *a, **k: steps_taken.append(1) or original(*a, **k))
    continued = methods.comparison_data(learners, ["maml"], 1, 0.4, 5, characters, cache=cache, episodes=2)
    assert calls[-1] == ("MAML", True) and len(steps_taken) == 3   # steps 3, 4, 5 (and the update after 5)
    fresh = methods.comparison_data(learners, ["maml"], 1, 0.4, 5, characters, episodes=2)
    np.testing.assert_allclose(continued["curves"]["maml"], fresh["curves"]["maml"], atol=1e-6)
    # only the most recent settings keep their adaptation alive (memory): older curves stay, their weights go
    for inner_lr in (0.2, 0.3, 0.5, 0.6):
        methods.comparison_data(learners, ["maml"], 1, inner_lr, 2, characters, cache=cache, episodes=2)
    alive = [key[-1] for key, curve in cache.items() if curve.steps is not None]
    assert alive == [0.2, 0.3, 0.5, 0.6] and len(cache) == 5   # 0.4, the oldest of five, keeps its curve only


def test_the_live_figure_shows_the_chosen_methods_only(learners, characters):
    from metalearn_lite.plots.methods import MethodComparisonFigure
    figure = MethodComparisonFigure(list(learners))
    data = methods.comparison_data(learners, ["maml", "protonet"], 0, 0.4, 3, characters)
    assert figure.render(data).startswith(b"\x89PNG")
    assert [name for name, line in figure.lines.items() if line.get_visible()] == ["maml", "protonet"]
    assert [t.get_text() for t in figure.ax.get_legend().get_texts()] == ["maml", "protonet", "chance"]
    assert figure.ax.get_xlim() == (-0.5, 5.5)   # 3 steps: the axis runs to the next of 1, 2, 5, 10, 20


def test_methods_adapted_side_by_side_give_the_numbers_of_one_at_a_time(learners, characters):
    one = methods.comparison_data(learners, list(learners), 2, 0.3, 3, characters, episodes=2, workers=1)
    two = methods.comparison_data(learners, list(learners), 2, 0.3, 3, characters, episodes=2, workers=2)
    for name in learners:
        np.testing.assert_array_equal(one["curves"][name], two["curves"][name])


def test_side_by_side_keeps_the_order_of_the_items():
    assert methods.map_side_by_side(lambda x: x * x, [3, 1, 2], workers=2) == [9, 1, 4]
    assert methods.map_side_by_side(lambda x: x, [], workers=4) == []


def test_the_explorers_meta_sgd_curve_is_its_adaptation_with_the_learned_rates(learners, characters):
    learner, zero_head = learners["meta_sgd"]
    saved = {name: rate.clone() for name, rate in learner.inner_lrs.items()}
    torch.manual_seed(2)
    learner.load_inner_lrs({name: 0.2 + 0.4 * torch.rand_like(rate) for name, rate in saved.items()})
    try:
        data = methods.comparison_data(learners, ["meta_sgd"], 4, 0.4, 3, characters, episodes=2)
        batch = EpisodeSampler(characters, 5, 1, 5, meta_batch_size=2, seed=4).sample()
        reference = methods.accuracy_curves(learner, batch, None, 3, zero_head).mean(dim=0)
        np.testing.assert_allclose(data["curves"]["meta_sgd"], reference.numpy(), atol=1e-6)
    finally:
        learner.load_inner_lrs(saved)
