"""There is one implementation of the inner update: every adaptation path of the package runs through
``maml.inner_update``. Replace it by a broken one (a step that does not move) and every path must change.

The relatives of MAML are paths too: first-order MAML, Reptile, ANIL (head-only inner loop) and Meta-SGD (learned
rates). Prototypical networks have no inner loop, so they are not among them."""

import numpy as np
import pytest
import torch

from metalearn_lite import anil, baselines, batching, evaluation, few_shot, maml, meta_sgd, reptile
from metalearn_lite.models import MLP, Conv4, LinearModel
from metalearn_lite.tasks import SinusoidTasks, Split, TaskBatch

real_inner_update = maml.inner_update


def standing_still(model, params, support, inner_lr, loss="mse", first_order=False, forward=None):
    """The engine's inner update with a zero step: adaptation that never moves."""
    _, losses = real_inner_update(model, params, support, inner_lr, loss, first_order, forward)
    return {name: p + 0.0 for name, p in params.items()}, losses


@pytest.fixture
def sinusoid_setup():
    torch.manual_seed(0)
    model = MLP()
    batch = SinusoidTasks().sample(4, 5, 7, generator=torch.Generator().manual_seed(1))
    return model, maml.parameters_of(model), batch


@pytest.fixture
def conv_setup():
    torch.manual_seed(0)
    model = Conv4(n_way=3, hidden_channels=4)
    generator = torch.Generator().manual_seed(2)
    labels = torch.arange(3).repeat(2).expand(3, -1)
    batch = TaskBatch(Split(torch.rand(3, 6, 1, 28, 28, generator=generator), labels),
                      Split(torch.rand(3, 6, 1, 28, 28, generator=generator), labels))
    return model, maml.parameters_of(model), batch


def sinusoid_paths(model, params, batch):
    """Every adaptation path on sinusoids, as arrays of numbers that depend on the inner update."""
    starts = {"a": params, "b": {k: v * 0.5 for k, v in params.items()}}
    out = {f"meta_gradient[{s}]": maml.meta_gradient(model, params, batch, 0.1, 2, strategy=s).grads["0.weight"]
           for s in ("loop", "vmap", "grouped")}
    out["adapt"] = maml.adapt(model, params, batch, 0.1, 3).query_losses
    out["MAML.adapt"] = maml.MAML(model, inner_lr=0.1, inner_steps=3).adapt(batch).query_losses
    out["evaluation.evaluate"] = evaluation.evaluate(model, params, batch, 0.1, 3).query_losses
    out["evaluation.adapt_starts"] = evaluation.adapt_starts(model, starts, batch, 0.1, 3).query_losses
    out["evaluation.explorer_data"] = evaluation.explorer_data(model, starts, 0.1, 3).curves["a"].query_losses
    out["baselines.fine_tune"] = baselines.fine_tune(model, params, batch, 0.1, 3).query_losses
    out["baselines.fine_tuning_data"] = baselines.fine_tuning_data(starts, inner_lr=0.1, inner_steps=3,
                                                                   model=model).curves["a"].query_losses
    out.update(relative_paths(model, params, batch, 0.1, "mse", "0.weight", ("loop", "vmap", "grouped")))
    linear = LinearModel(dim=1)
    with torch.no_grad():
        linear.weight.fill_(0.3)
    out["reptile.reptile_direction[vmap path]"] = reptile.reptile_direction(linear, maml.parameters_of(linear),
                                                                            batch, 0.1, 2).grads["weight"]
    return out


def relative_paths(model, params, batch, inner_lr, loss, name, strategies):
    """The relatives of MAML: first-order MAML, Reptile, ANIL and Meta-SGD, each meta-gradient and adaptation."""
    rates = meta_sgd.initial_inner_lrs(params, inner_lr)
    out = {f"maml.meta_gradient[first order, {s}]": maml.meta_gradient(
        model, params, batch, inner_lr, 1, loss, first_order=True, strategy=s).grads[name] for s in strategies}
    for s in strategies:
        out[f"anil.meta_gradient[{s}]"] = anil.meta_gradient(model, params, batch, inner_lr, 2, loss,
                                                             strategy=s).grads[name]
        out[f"meta_sgd.meta_gradient[{s}]"] = meta_sgd.meta_gradient(model, params, rates, batch, 1, loss,
                                                                     strategy=s).inner_lr_grads[name]
    out["anil.adapt"] = anil.adapt(model, params, batch, inner_lr, 2, loss).query_losses
    out["meta_sgd.adapt"] = meta_sgd.adapt(model, params, rates, batch, 2, loss).query_losses
    out["reptile.reptile_direction"] = reptile.reptile_direction(model, params, batch, inner_lr, 2, loss).grads[name]
    return out


def conv_paths(model, params, batch):
    """Every adaptation path on a Conv4, including the few-shot evaluation and the explorer's step generator."""
    out = {f"meta_gradient[{s}]": maml.meta_gradient(model, params, batch, 0.4, 1, "cross_entropy",
                                                     strategy=s).grads["features.0.0.weight"]
           for s in batching.STRATEGIES[1:]}
    out["few_shot.adapt_tasks"] = few_shot.adapt_tasks(model, params, batch, 0.4, 2).support_losses
    out["few_shot.adapt_tasks[last step only]"] = few_shot.adapt_tasks(model, params, batch, 0.4, 2,
                                                                       record_curve=False).support_losses
    steps = few_shot.adaptation_steps(model, params, batch, 0.4)
    out["few_shot.adaptation_steps"] = torch.stack([next(steps).support_losses for _ in range(3)])
    out["few_shot.adapt_tasks[bn=support]"] = few_shot.adapt_tasks(model, params, batch, 0.4, 2,
                                                                   bn="support").support_losses
    out.update(relative_paths(model, params, batch, 0.4, "cross_entropy", "features.0.0.weight",
                              batching.STRATEGIES[1:]))
    return out


def _changed(before, after) -> bool:
    a, b = (np.asarray(torch.as_tensor(x, dtype=torch.float64).detach()) for x in (before, after))
    return a.shape != b.shape or not np.allclose(a, b, equal_nan=True)


@pytest.mark.parametrize("setup, paths", [("sinusoid_setup", sinusoid_paths), ("conv_setup", conv_paths)])
def test_every_adaptation_path_runs_through_the_one_inner_update(request, monkeypatch, setup, paths):
    model, params, batch = request.getfixturevalue(setup)
    before = paths(model, params, batch)
    calls = []

    def counted(*args, **kwargs):
        calls.append(1)
        return standing_still(*args, **kwargs)

    monkeypatch.setattr(maml, "inner_update", counted)
    after = paths(model, params, batch)
    unchanged = [name for name in before if not _changed(before[name], after[name])]
    assert not unchanged, f"these paths do not run through maml.inner_update: {unchanged}"
    assert calls


def test_the_inner_loop_is_the_inner_update_repeated(sinusoid_setup):
    model, params, batch = sinusoid_setup
    support = Split(batch.support.X[0], batch.support.y[0])
    by_hand = params
    for _ in range(3):
        by_hand, _ = maml.inner_update(model, by_hand, support, 0.1)
    looped = maml.inner_loop(model, params, support, 0.1, 3)
    for name in params:
        torch.testing.assert_close(looped[name], by_hand[name], rtol=0, atol=0)
