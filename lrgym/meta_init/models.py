"""The small models meta-init families train: an MLP and a CNN, each a body and a head.

No batch norm (``torch.func.functional_call`` then needs no buffers), so a model's state
is its parameters and an init is a plain ``{name: tensor}`` dict.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from lrgym.meta_init.contract import ModelSpec


class MLP(nn.Module):
    """``input → [Linear, ReLU] × len(hidden) → Linear head``.

    Args:
        n_in: Input features.
        hidden: Hidden widths.
        n_out: Outputs.
    """

    def __init__(self, n_in: int, hidden: tuple[int, ...], n_out: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = n_in
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits."""
        return self.head(self.body(x))


class SmallCNN(nn.Module):
    """``[Conv 3×3, ReLU, MaxPool 2] × len(channels) → global average pool → Linear head``.

    Args:
        in_channels: Image channels.
        channels: Channels of each conv block.
        n_out: Outputs.
    """

    def __init__(self, in_channels: int, channels: tuple[int, ...], n_out: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = in_channels
        for c in channels:
            layers += [nn.Conv2d(width, c, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            width = c
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits."""
        return self.head(self.body(x))


HEAD_PREFIX = "head."
"""Names of the output layer's parameters start with this."""


def build_model(spec: ModelSpec) -> nn.Module:
    """A freshly initialised model of architecture ``spec`` (torch's default init; seed
    the global RNG, or use :func:`seeded_model`)."""
    if spec.kind == "mlp":
        return MLP(math.prod(spec.input_shape), spec.hidden, spec.n_out)
    if spec.kind == "cnn":
        return SmallCNN(spec.input_shape[0], spec.hidden, spec.n_out)
    raise ValueError(f"unknown model kind {spec.kind!r}; use 'mlp' or 'cnn'")


def seeded_model(spec: ModelSpec, seed: int) -> nn.Module:
    """:func:`build_model` with its init drawn from ``seed`` (the caller's RNG untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return build_model(spec)


def model_factory(spec: ModelSpec):
    """A :data:`lrgym.backends.torch_trainee.ModelFactory` building ``spec`` (for lrgym tasks)."""

    def factory(n_inputs: int, n_outputs: int, rng, **kwargs) -> nn.Module:
        del n_inputs, rng, kwargs
        if n_outputs > spec.n_out:
            raise ValueError(f"task has {n_outputs} classes, the model {spec.n_out} outputs")
        return build_model(spec)

    return factory
