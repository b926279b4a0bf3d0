"""Prototypical networks: logits are minus the squared Euclidean distances to the class means of the support
embeddings (checked entry by entry), trained by cross-entropy on the query set through MAML's interface."""

import pytest
import torch

from metalearn_lite import protonet
from metalearn_lite.maml import parameters_of
from metalearn_lite.models import Conv4
from metalearn_lite.tasks import Split, TaskBatch
from metalearn_lite.train import meta_train


def episode(n_tasks=2, n_way=3, k_shot=2, k_query=2, seed=0, dtype=torch.float64):
    generator = torch.Generator().manual_seed(seed)
    labels = lambda k: torch.arange(n_way).repeat_interleave(k).expand(n_tasks, -1)  # noqa: E731
    return TaskBatch(Split(torch.rand(n_tasks, n_way * k_shot, 1, 28, 28, generator=generator, dtype=dtype),
                           labels(k_shot)),
                     Split(torch.rand(n_tasks, n_way * k_query, 1, 28, 28, generator=generator, dtype=dtype),
                           labels(k_query)))


def test_logits_are_minus_squared_distances_to_the_class_means():
    generator = torch.Generator().manual_seed(0)
    support = torch.randn(6, 4, generator=generator, dtype=torch.float64)
    support_y = torch.tensor([2, 0, 1, 0, 2, 2])
    query = torch.randn(5, 4, generator=generator, dtype=torch.float64)
    logits = protonet.prototype_logits(query, protonet.prototypes(support, support_y, 3))
    for i in range(5):
        for c in range(3):
            members = [support[j] for j in range(6) if support_y[j] == c]
            mean = sum(members) / len(members)
            expected = -sum(float(d) ** 2 for d in (query[i] - mean))
            assert logits[i, c].item() == pytest.approx(expected, rel=1e-12)


def test_the_task_logits_come_from_the_conv4_body():
    torch.manual_seed(0)
    model = Conv4(n_way=3, hidden_channels=4).double()
    batch = episode()
    params = parameters_of(model)
    support, query = Split(batch.support.X[0], batch.support.y[0]), Split(batch.query.X[0], batch.query.y[0])
    logits, _ = protonet.task_logits(model, params, support, query, 3)
    z = model.features(torch.cat([support.X, query.X])).flatten(1)   # one batch: batch statistics over both
    centres = torch.stack([z[:6][support.y == c].mean(dim=0) for c in range(3)])
    torch.testing.assert_close(logits, -torch.cdist(z[6:], centres) ** 2, rtol=1e-10, atol=1e-10)


def test_the_meta_gradient_skips_the_head_and_matches_finite_differences():
    torch.manual_seed(0)
    model = Conv4(n_way=3, hidden_channels=4).double()
    batch = episode()
    params = parameters_of(model)
    result = protonet.meta_gradient(model, params, batch)
    assert not any(k.startswith("head.") for k in result.grads)
    name, eps = "features.1.0.weight", 1e-6
    direction = torch.randn(params[name].shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    value = lambda p: protonet.episode_losses(model, p, batch)[0].mean()  # noqa: E731
    fd = float(value({**params, name: params[name] + eps * direction})
               - value({**params, name: params[name] - eps * direction})) / (2 * eps)
    assert float((result.grads[name] * direction).sum()) == pytest.approx(fd, rel=1e-6)


def test_meta_train_trains_the_embedding_and_leaves_the_head():
    torch.manual_seed(0)
    model = Conv4(n_way=3, hidden_channels=4)
    batch = episode(dtype=torch.float32)
    head = model.head.weight.detach().clone()
    body = model.features[0][0].weight.detach().clone()
    learner = protonet.ProtoNet(model)
    history = meta_train(learner, lambda generator: batch, 5, meta_lr=1e-2, progress=False)
    assert history.losses[-1] < history.losses[0]
    assert torch.equal(model.head.weight, head) and not torch.equal(model.features[0][0].weight, body)
    result = learner.adapt(episode(n_way=5, seed=3, dtype=torch.float32))   # any number of classes
    assert result.query_accuracies.shape == (2, 1)


def test_a_class_without_support_examples_is_named():
    with pytest.raises(ValueError, match=r"support_y has no example of class\(es\) \[1\]"):
        protonet.prototypes(torch.zeros(2, 3), torch.tensor([0, 2]), 3)
