"""Small building blocks shared by the encoder and decoder networks."""

import torch
from torch import nn


class ResBlock(nn.Module):
    """conv - ReLU - conv with an identity skip; ``kernel2=1`` makes the second conv pointwise
    (half the cost and half the receptive-field growth)."""

    def __init__(self, channels: int, kernel2: int = 3):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.act = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(channels, channels, kernel2, padding=kernel2 // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.act(self.conv1(x)))


def zero_init(layer: nn.Module) -> nn.Module:
    """Start a residual branch at zero so an untrained network is its plain baseline."""
    nn.init.zeros_(layer.weight)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)
    return layer
