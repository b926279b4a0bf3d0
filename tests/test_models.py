import pytest
import torch
from torch.nn import functional as F

from torch import nn
from torch.func import functional_call

from metalearn_lite.models import MLP, Conv4, LinearModel, MaxPool2d, max_pool_2x2, pool_before_relu


def test_mlp_is_the_papers_1_40_40_1():
    model = MLP()
    assert sum(p.numel() for p in model.parameters()) == (1 * 40 + 40) + (40 * 40 + 40) + (40 * 1 + 1)
    assert model(torch.zeros(7, 1)).shape == (7, 1)


def test_conv4_shapes_and_filters():
    model = Conv4(n_way=5)
    assert model(torch.zeros(3, 1, 28, 28)).shape == (3, 5)
    assert model.features[0][0].out_channels == 64 and model.head.in_features == 64
    assert Conv4(n_way=20, hidden_channels=32).head.out_features == 20


def test_conv4_batch_norm_uses_batch_statistics_and_keeps_no_state():
    model = Conv4(n_way=5, hidden_channels=8)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(norms) == 4 and all(m.running_mean is None for m in norms)
    model.eval()  # even in eval mode the output depends on the batch, as in the MAML paper
    x = torch.randn(4, 1, 28, 28)
    assert not torch.allclose(model(x)[:2], model(x[:2]))


def test_linear_model_starts_at_zero():
    model = LinearModel(dim=3)
    assert torch.equal(model.weight, torch.zeros(3))
    assert model(torch.ones(2, 3)).shape == (2, 1)


@pytest.mark.parametrize("make, name", [
    (lambda: Conv4(n_way=1), "n_way"),
    (lambda: Conv4(hidden_channels=0), "hidden_channels"),
    (lambda: MLP(in_features=0), "in_features"),
])
def test_bad_model_settings_name_the_parameter(make, name):
    with pytest.raises(ValueError, match=name):
        make()


# Conv4's fast max-pool: max_pool2d's values, with and without gradients

@pytest.mark.parametrize("shape", [(3, 4, 28, 28), (3, 4, 7, 7), (2, 5, 3, 3), (1, 2, 2, 5)])
def test_the_fast_max_pool_gives_max_pool2d_values(shape):
    torch.manual_seed(0)
    h = torch.relu(torch.randn(shape))          # after ReLU: many ties at zero
    h[0, 0, 0, 0], h[-1, -1, -1, -1] = float("nan"), float("inf")   # a diverged task's activations
    with torch.no_grad():
        fast = max_pool_2x2(h)
    torch.testing.assert_close(fast, F.max_pool2d(h, 2), rtol=0, atol=0, equal_nan=True)


def test_with_gradients_the_fast_max_pool_sends_a_ties_gradient_to_one_input():
    # torch.maximum would split a tie's gradient between its inputs; max_pool2d sends it to one
    h = torch.zeros(1, 1, 2, 2, requires_grad=True)
    (gradient,) = torch.autograd.grad(max_pool_2x2(h).sum(), h)
    (reference,) = torch.autograd.grad(F.max_pool2d(h, 2).sum(), h)
    assert torch.equal(gradient, reference) and gradient.sum() == 1 and (gradient > 0).sum() == 1


@pytest.mark.parametrize("shape", [(3, 4, 28, 28), (3, 4, 7, 7), (2, 5, 3, 3), (1, 2, 2, 5), (75, 8, 14, 14)])
def test_with_gradients_the_fast_max_pool_gives_max_pool2d_derivatives_to_the_bit(shape):
    torch.manual_seed(0)
    h = torch.relu(torch.randn(shape, dtype=torch.float64))   # ties at zero in many windows
    h[0, :, :2] = 1.5                                           # and flat rows: ties of positive maxima
    h.requires_grad_()
    upstream = torch.randn(F.max_pool2d(h, 2).shape, dtype=torch.float64)
    ours, plain = max_pool_2x2(h), F.max_pool2d(h, 2)
    assert torch.equal(ours, plain)
    (first_ours,) = torch.autograd.grad(ours, h, upstream, create_graph=True)
    (first_plain,) = torch.autograd.grad(plain, h, upstream, create_graph=True)
    assert torch.equal(first_ours, first_plain)
    # MAML's second order differentiates the backward pass with respect to the incoming gradient
    upstream.requires_grad_()
    (through_ours,) = torch.autograd.grad(torch.autograd.grad(max_pool_2x2(h), h, upstream, create_graph=True)[0]
                                          .pow(2).sum(), upstream)
    (through_plain,) = torch.autograd.grad(torch.autograd.grad(F.max_pool2d(h, 2), h, upstream, create_graph=True)[0]
                                           .pow(2).sum(), upstream)
    assert torch.equal(through_ours, through_plain)


def test_the_fast_max_pool_passes_gradcheck_and_runs_inside_torch_func():
    x = torch.randn(2, 3, 5, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(max_pool_2x2, (x,))
    assert torch.autograd.gradgradcheck(lambda h: max_pool_2x2(h).pow(2), (x,))
    per_example = torch.func.vmap(torch.func.grad(lambda h: max_pool_2x2(h).pow(2).sum()))(x.detach())
    (reference,) = torch.autograd.grad(F.max_pool2d(x, 2).pow(2).sum(), x)
    assert torch.equal(per_example, reference)


def test_pool_before_relu_runs_a_plain_2x2_max_pool_the_fast_way():
    plain = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3), torch.nn.MaxPool2d(2))
    view = pool_before_relu(plain)
    assert type(view[1]) is MaxPool2d and type(plain[1]) is torch.nn.MaxPool2d and view[0] is plain[0]
    assert repr(view) == repr(plain)
    odd = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3), torch.nn.MaxPool2d(3))
    assert pool_before_relu(odd) is odd   # only the 2x2 window has a fast path


def test_conv4_pools_the_fast_way_and_reads_as_before():
    torch.manual_seed(0)
    model = Conv4(n_way=5, hidden_channels=8)
    pools = [m for m in model.modules() if isinstance(m, torch.nn.MaxPool2d)]
    assert len(pools) == 4 and all(isinstance(m, MaxPool2d) for m in pools)
    assert "MaxPool2d(kernel_size=2, stride=2" in repr(model)   # a student's print(model) is unchanged
    x = torch.randn(6, 1, 28, 28)
    with torch.no_grad():
        fast = model(x)
    assert torch.equal(fast, model(x))   # the no-grad path gives exactly the logits of the gradient path


def second_order_grads(model, params, X):
    """The gradient of a loss and of its gradient's norm (second derivatives), as MAML's meta-gradient needs."""
    loss = functional_call(model, params, (X,)).pow(2).mean()
    first = torch.autograd.grad(loss, list(params.values()), create_graph=True)
    second = torch.autograd.grad(sum(g.pow(2).sum() for g in first), list(params.values()))
    return [g.detach() for g in first], second


def test_pool_before_relu_gives_the_same_outputs_and_derivatives_to_the_bit():
    torch.manual_seed(0)
    model = Conv4(n_way=5, hidden_channels=6).double()
    reordered = pool_before_relu(model)
    X = torch.randn(6, 1, 28, 28, dtype=torch.float64)
    X[0] = 0.0   # flat images: ties in every window, and windows whose maximum is exactly zero after batch norm
    X[1, :, :8] = -5.0
    params = {name: p.detach().requires_grad_() for name, p in model.named_parameters()}
    assert torch.equal(functional_call(model, params, (X,)), functional_call(reordered, params, (X,)))
    for ours, plain in zip(second_order_grads(reordered, params, X), second_order_grads(model, params, X)):
        assert all(torch.equal(a, b) for a, b in zip(ours, plain))


def test_pool_before_relu_only_reorders_the_pair_and_shares_everything_else():
    model = Conv4(n_way=5, hidden_channels=4)
    reordered = pool_before_relu(model)
    assert [type(m).__name__ for m in reordered.features[0]] == ["Conv2d", "BatchNorm2d", "MaxPool2d", "ReLU"]
    assert [type(m).__name__ for m in model.features[0]] == ["Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d"]
    assert [n for n, _ in reordered.named_parameters()] == [n for n, _ in model.named_parameters()]
    assert reordered.head is model.head and reordered.features[0][0] is model.features[0][0]
    model.head = nn.Linear(4, 20)   # a layer replaced later is the one that runs
    assert pool_before_relu(model).head is model.head
    mlp = MLP()
    assert pool_before_relu(mlp) is mlp   # nothing to reorder: the model itself
    with_indices = nn.Sequential(nn.ReLU(), nn.MaxPool2d(2, return_indices=True))
    assert pool_before_relu(with_indices) is with_indices   # indices of the pre-ReLU maxima may differ
