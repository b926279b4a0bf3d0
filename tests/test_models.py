import pytest
import torch

from metalearn_lite.models import MLP, Conv4, LinearModel


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
