"""The networks of the papers, as plain ``nn.Module``s (the MAML engine calls them functionally)."""

from __future__ import annotations

from torch import nn

from .validation import require_int


class MLP(nn.Sequential):
    """Fully connected ReLU network; the default 1-40-40-1 is the MAML paper's sinusoid regressor."""

    def __init__(self, in_features: int = 1, hidden: tuple = (40, 40), out_features: int = 1):
        widths = [require_int("in_features", in_features, minimum=1)]
        widths += [require_int("hidden width", h, minimum=1) for h in hidden]
        layers = []
        for width_in, width_out in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(width_in, width_out), nn.ReLU()]
        layers.append(nn.Linear(widths[-1], require_int("out_features", out_features, minimum=1)))
        super().__init__(*layers)


class Conv4(nn.Module):
    """Four blocks of [3x3 conv, batch norm, ReLU, 2x2 max-pool] and a linear head (Vinyals et al.; MAML paper).

    Batch norm always uses the statistics of the batch it sees (``track_running_stats=False``), as in the MAML
    paper: there is no running state, so the network is a pure function of its parameters and inputs.
    """

    def __init__(self, n_way: int = 5, hidden_channels: int = 64, in_channels: int = 1, image_size: int = 28):
        super().__init__()
        n_way = require_int("n_way", n_way, minimum=2)
        hidden_channels = require_int("hidden_channels", hidden_channels, minimum=1)
        in_channels = require_int("in_channels", in_channels, minimum=1)
        image_size = require_int("image_size", image_size, minimum=16)
        channels = [in_channels] + [hidden_channels] * 4
        self.features = nn.Sequential(*[conv_block(c_in, c_out) for c_in, c_out in zip(channels, channels[1:])])
        side = image_size
        for _ in range(4):
            side //= 2
        self.head = nn.Linear(hidden_channels * side * side, n_way)

    def forward(self, x):
        return self.head(self.features(x).flatten(start_dim=1))


def conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """3x3 convolution, batch norm with batch statistics, ReLU, 2x2 max-pool."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
        nn.BatchNorm2d(out_channels, track_running_stats=False),
        nn.ReLU(),
        nn.MaxPool2d(2),
    )


class LinearModel(nn.Module):
    """``f(x) = x w`` without bias: the model whose MAML meta-gradient has a closed form on ``LinearTasks``."""

    def __init__(self, dim: int = 2):
        super().__init__()
        self.weight = nn.Parameter(nn.init.zeros_(nn.Linear(require_int("dim", dim, minimum=1), 1).weight.data[0]))

    def forward(self, x):
        return x @ self.weight.unsqueeze(-1)
