"""Model factories for the built-in tasks: ``(n_inputs, n_outputs, rng) -> nn.Module``."""

from __future__ import annotations

import numpy as np
from torch import nn


def mlp(
    n_in: int, n_out: int, rng: np.random.Generator, hidden: tuple[int, ...] = (64, 64)
) -> nn.Module:
    """A ReLU MLP with the given hidden widths."""
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(n_in, width), nn.ReLU()]
        n_in = width
    layers.append(nn.Linear(n_in, n_out))
    return nn.Sequential(*layers)


def random_mlp(n_in: int, n_out: int, rng: np.random.Generator) -> nn.Module:
    """A ReLU MLP of random depth (1–3) and width (32, 64 or 128), drawn from ``rng``."""
    depth = int(rng.integers(1, 4))
    width = int(rng.choice([32, 64, 128]))
    return mlp(n_in, n_out, rng, hidden=(width,) * depth)


def linear(n_in: int, n_out: int, rng: np.random.Generator) -> nn.Module:
    """A linear model (logistic or least-squares regression)."""
    return nn.Linear(n_in, n_out)


class DigitsCNN(nn.Module):
    """A small CNN for 8×8 single-channel images given as flat 64-vectors."""

    def __init__(self, n_out: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Unflatten(1, (1, 8, 8)),
            nn.Conv2d(1, 16, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(32 * 4 * 4, n_out),
        )

    def forward(self, x):
        return self.net(x)


def digits_cnn(n_in: int, n_out: int, rng: np.random.Generator) -> nn.Module:
    """:class:`DigitsCNN` (expects ``n_in == 64``)."""
    if n_in != 64:
        raise ValueError(f"DigitsCNN takes 8x8 images (64 inputs), got {n_in}")
    return DigitsCNN(n_out)
