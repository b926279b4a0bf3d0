"""Settings that cannot exhaust memory (issue 17): meta_gradient refuses, before any work, an inner_steps,
meta-batch or image count whose autograd graph would not fit, saying the estimate and what to do instead; the
widgets' sliders never reach such settings."""

import pytest
import torch

from metalearn_lite import batching, maml, validation
from metalearn_lite.batch_checks import GRAPH_CHECK_FLOOR, graph_memory
from metalearn_lite.evaluation import MAX_K_SHOT
from metalearn_lite.maml import meta_gradient, parameters_of
from metalearn_lite.models import MLP, Conv4
from metalearn_lite.tasks import SinusoidTasks, Split, TaskBatch
from metalearn_lite.widgets import fine_tuning, omniglot, sinusoid

GB = 1024 ** 3


@pytest.fixture
def mlp():
    torch.manual_seed(0)
    return MLP()


@pytest.fixture
def batch():
    return SinusoidTasks().sample(25, 10, 10, generator=torch.Generator().manual_seed(0))


def count_forwards(model):
    """A counter of forward passes through ``model``'s first layer (hooks fire under functional_call too)."""
    calls = []
    first = next(m for m in model.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)))
    first.register_forward_hook(lambda *_: calls.append(1))
    return calls


def with_memory(monkeypatch, available):
    """Pretend ``available`` bytes are free, so the tests give the same answer on every machine."""
    monkeypatch.setattr(validation, "available_memory", lambda device=None: available)


def test_a_million_inner_steps_are_refused_before_any_work(mlp, batch):
    forwards = count_forwards(mlp)
    with pytest.raises(ValueError, match=r"inner_steps=1000000 with 25 tasks of 10 support and 10 query examples "
                                         r"\(second order, strategy='grouped'\) would need about [\d.]+ TB of memory "
                                         r"for the autograd graph, but only .* is available on cpu: use at most "
                                         r"about \d+ inner_steps, or fewer tasks \(meta_batch_size\)"):
        meta_gradient(mlp, parameters_of(mlp), batch, inner_steps=10 ** 6)
    assert forwards == []


def test_first_order_is_suggested_when_it_would_fit(mlp, batch, monkeypatch):
    with_memory(monkeypatch, 1 * GB)
    with pytest.raises(ValueError, match=r"inner_steps=2000 .* would need about [\d.]+ GB .* but only 1.0 GB is "
                                         r"available on cpu: use first_order=True \(about [\d.]+ MB\) or at most "
                                         r"about \d+ inner_steps"):
        meta_gradient(mlp, parameters_of(mlp), batch, inner_steps=2000)
    with pytest.raises(ValueError, match=r"\(first order, strategy='grouped'\) .* use at most about \d+ inner_steps"):
        meta_gradient(mlp, parameters_of(mlp), batch, inner_steps=20000, first_order=True)


def test_the_suggested_number_of_steps_fits(mlp, batch, monkeypatch):
    with_memory(monkeypatch, 1 * GB)
    with pytest.raises(ValueError) as refused:
        meta_gradient(mlp, parameters_of(mlp), batch, inner_steps=5000)
    steps = int(str(refused.value).split("at most about ")[1].split()[0])
    params = parameters_of(mlp)
    assert graph_memory(mlp, params, batch, steps, False, "grouped") <= 1 * GB
    assert graph_memory(mlp, params, batch, steps + 1, False, "grouped") > 1 * GB


def test_a_huge_meta_batch_is_refused(mlp, batch, monkeypatch):
    with_memory(monkeypatch, 2 * GB)
    n = 10 ** 6  # expanded views: the test itself allocates nothing
    huge = TaskBatch(Split(batch.support.X[:1].expand(n, -1, -1), batch.support.y[:1].expand(n, -1, -1)),
                     Split(batch.query.X[:1].expand(n, -1, -1), batch.query.y[:1].expand(n, -1, -1)))
    forwards = count_forwards(mlp)
    with pytest.raises(ValueError, match=r"inner_steps=1 with 1000000 tasks .* would need about [\d.]+ GB"):
        meta_gradient(mlp, parameters_of(mlp), huge)
    assert forwards == []


def test_a_huge_image_count_is_refused(monkeypatch):
    with_memory(monkeypatch, 2 * GB)
    torch.manual_seed(0)
    model = Conv4(n_way=5, hidden_channels=64)
    images = torch.zeros(1, 1, 1, 28, 28).expand(4, 5000, 1, 28, 28)
    labels = torch.zeros(1, 1, dtype=torch.int64).expand(4, 5000)
    forwards = count_forwards(model)
    with pytest.raises(ValueError, match=r"with 4 tasks of 5000 support and 5000 query examples \(second order, "
                                         r"strategy='vmap'\) would need about [\d.]+ GB"):
        meta_gradient(model, parameters_of(model), TaskBatch(Split(images, labels), Split(images, labels)),
                      loss="cross_entropy", strategy="vmap")
    assert forwards == []


def test_tasks_held_at_once_depend_on_the_strategy(mlp, batch):
    params = parameters_of(mlp)
    together, one_by_one = (graph_memory(mlp, params, batch, 5, False, s) for s in ("vmap", "loop"))
    assert together == 25 * one_by_one
    assert graph_memory(mlp, params, batch, 10, False, "vmap") > graph_memory(mlp, params, batch, 5, False, "vmap")
    assert graph_memory(mlp, params, batch, 10, True, "vmap") < graph_memory(mlp, params, batch, 10, False, "vmap")


def test_ordinary_settings_never_ask_the_system(mlp, batch, monkeypatch):
    def fail(device=None):
        raise AssertionError("available_memory was consulted for a small setting")
    monkeypatch.setattr(validation, "available_memory", fail)
    assert torch.isfinite(meta_gradient(mlp, parameters_of(mlp), batch, inner_steps=5).loss)


def test_available_memory_is_a_positive_number_of_bytes():
    assert validation.available_memory() > 0
    assert validation.available_memory("cpu") <= validation._meminfo_available() or \
        validation._meminfo_available() is None


def test_the_container_limit_counts_where_meminfo_shows_the_host(monkeypatch):
    monkeypatch.setattr(validation, "_meminfo_available", lambda: 64 * GB)
    monkeypatch.setattr(validation, "_cgroup_available", lambda: GB // 2)
    assert validation.available_memory() == GB // 2
    monkeypatch.setattr(validation, "_meminfo_available", lambda: None)
    monkeypatch.setattr(validation, "_cgroup_available", lambda: None)
    assert validation.available_memory() > 0  # os.sysconf, or the fixed fallback


# --- the widgets: their sliders' maxima stay far from the bound (second order, the costliest use) -------------


def test_the_sinusoid_explorers_maxima_stay_small():
    model = MLP()
    params = parameters_of(model)
    for n_tasks, k_shot, n_query, steps in ((3, MAX_K_SHOT, 200, sinusoid.MAX_INNER_STEPS),
                                            (3, fine_tuning.MAX_K_SHOT, 200, fine_tuning.MAX_INNER_STEPS)):
        tasks = TaskBatch(Split(torch.zeros(n_tasks, k_shot, 1), torch.zeros(n_tasks, k_shot, 1)),
                          Split(torch.zeros(n_tasks, n_query, 1), torch.zeros(n_tasks, n_query, 1)))
        assert graph_memory(model, params, tasks, steps, False, "vmap") < GRAPH_CHECK_FLOOR


def test_the_omniglot_explorers_maxima_fit_binder():
    model = Conv4(n_way=5, hidden_channels=64)  # the largest Conv4 shipped
    images = torch.zeros(1, 5 * 5, 1, 28, 28)
    labels = torch.zeros(1, 25, dtype=torch.int64)
    episode = TaskBatch(Split(images[:, :5], labels[:, :5]), Split(images, labels))
    estimate = graph_memory(model, parameters_of(model), episode, omniglot.MAX_INNER_STEPS, False, "vmap")
    assert estimate < validation.FALLBACK_MEMORY_BYTES


def test_the_default_training_settings_pass_the_check():
    """Omniglot's training defaults (10-way 1-shot, 4 queries, meta-batch 5, Conv4-48) on 2 GB."""
    model = Conv4(n_way=10, hidden_channels=48)
    support = Split(torch.zeros(5, 10, 1, 28, 28), torch.zeros(5, 10, dtype=torch.int64))
    query = Split(torch.zeros(5, 40, 1, 28, 28), torch.zeros(5, 40, dtype=torch.int64))
    for strategy in batching.STRATEGIES[1:]:
        estimate = graph_memory(model, parameters_of(model), TaskBatch(support, query), 1, False, strategy)
        assert estimate < validation.FALLBACK_MEMORY_BYTES
