"""The grouped (task-stacked) forward pass: its fast max-pool gives max_pool2d's values, with and without grad."""

import pytest
import torch
from torch.nn import functional as F

from metalearn_lite.models import MaxPool2d, max_pool_2x2


@pytest.mark.parametrize("shape", [(3, 4, 28, 28), (3, 4, 7, 7), (2, 5, 3, 3), (1, 2, 2, 5)])
def test_the_fast_max_pool_gives_max_pool2d_values(shape):
    torch.manual_seed(0)
    h = torch.relu(torch.randn(shape))          # after ReLU: many ties at zero
    h[0, 0, 0, 0], h[-1, -1, -1, -1] = float("nan"), float("inf")   # a diverged task's activations
    with torch.no_grad():
        fast = max_pool_2x2(h)
    torch.testing.assert_close(fast, F.max_pool2d(h, 2), rtol=0, atol=0, equal_nan=True)


def test_with_gradients_the_fast_max_pool_is_max_pool2d_itself():
    # torch.maximum would split a tie's gradient between its inputs; max_pool2d sends it to one
    h = torch.zeros(1, 1, 2, 2, requires_grad=True)
    (gradient,) = torch.autograd.grad(max_pool_2x2(h).sum(), h)
    (reference,) = torch.autograd.grad(F.max_pool2d(h, 2).sum(), h)
    assert torch.equal(gradient, reference) and gradient.sum() == 1 and (gradient > 0).sum() == 1


def test_conv4_pools_the_fast_way_and_reads_as_before():
    from metalearn_lite.models import Conv4
    torch.manual_seed(0)
    model = Conv4(n_way=5, hidden_channels=8)
    pools = [m for m in model.modules() if isinstance(m, torch.nn.MaxPool2d)]
    assert len(pools) == 4 and all(isinstance(m, MaxPool2d) for m in pools)
    assert "MaxPool2d(kernel_size=2, stride=2" in repr(model)   # a student's print(model) is unchanged
    x = torch.randn(6, 1, 28, 28)
    with torch.no_grad():
        fast = model(x)
    assert torch.equal(fast, model(x))   # the no-grad path gives exactly the logits of the gradient path
