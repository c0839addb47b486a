"""Model builders of the procedural task families (:mod:`lrgym.tasks.procedural`).

Every model here is built from plain-data architecture settings drawn once per task
(never per run), uses only parameters (no buffers, batch-norm, dropout or fused RNN
modules) and computes with ops ``torch.func.vmap`` batches, so K runs of one drawn
task train as one stacked computation in :class:`lrgym.vector.BatchedRuns`. The GRU
and LSTM cells are written out with ``nn.Linear`` for that reason (torch's fused
``nn.GRU``/``nn.LSTM`` are not batched).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

ACTIVATIONS = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "elu": nn.ELU,
    "leaky_relu": nn.LeakyReLU,
    "softplus": nn.Softplus,
}
"""Activations the generator draws from, by name."""


class ResidualBlock(nn.Module):
    """``x + W2 act(W1 LayerNorm(x))`` (a pre-norm residual MLP block)."""

    def __init__(self, width: int, hidden: int, act: str) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, hidden)
        self.act = ACTIVATIONS[act]()
        self.fc2 = nn.Linear(hidden, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fc2(self.act(self.fc1(self.norm(x))))


def mlp(arch: Mapping[str, Any], n_in: int, n_out: int) -> nn.Module:
    """A plain MLP (``hidden`` widths) or a residual one (``blocks`` of ``width``)."""
    act = arch["activation"]
    layers: list[nn.Module] = [nn.Flatten()]  # image inputs arrive as (N, C, H, W)
    if arch["style"] == "residual":
        width = arch["width"]
        layers += [nn.Linear(n_in, width)]
        layers += [ResidualBlock(width, 2 * width, act) for _ in range(arch["blocks"])]
        layers += [nn.LayerNorm(width), nn.Linear(width, n_out)]
        return nn.Sequential(*layers)
    for width in arch["hidden"]:
        layers += [nn.Linear(n_in, width), ACTIVATIONS[act]()]
        n_in = width
    layers.append(nn.Linear(n_in, n_out))
    return nn.Sequential(*layers)


class GlobalAvgPool(nn.Module):
    """Mean over the spatial dimensions: (N, C, H, W) -> (N, C)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(-2, -1))


def cnn(arch: Mapping[str, Any], shape: tuple[int, int, int], n_out: int) -> nn.Module:
    """Conv blocks (conv, activation, optional 2×2 pooling), then a linear head."""
    channels, size, _ = shape
    layers: list[nn.Module] = []
    for out_ch, pool in zip(arch["channels"], arch["pools"], strict=True):
        k = arch["kernel"]
        layers += [
            nn.Conv2d(channels, out_ch, k, padding=k // 2),
            ACTIVATIONS[arch["activation"]](),
        ]
        if pool == "max":
            layers.append(nn.MaxPool2d(2))
        elif pool == "avg":
            layers.append(nn.AvgPool2d(2))
        if pool != "none":
            size //= 2
        channels = out_ch
    if arch["head"] == "gap":
        layers.append(GlobalAvgPool())
        n_feat = channels
    else:
        layers.append(nn.Flatten())
        n_feat = channels * size * size
    if arch["fc"]:
        layers += [nn.Linear(n_feat, arch["fc"]), ACTIVATIONS[arch["activation"]]()]
        n_feat = arch["fc"]
    layers.append(nn.Linear(n_feat, n_out))
    return nn.Sequential(*layers)


class SequenceInput(nn.Module):
    """Token ids (N, T) through an embedding, or features (N, T, F) through a linear map."""

    def __init__(self, kind: str, vocab: int, features: int, dim: int) -> None:
        super().__init__()
        self.tokens = kind == "tokens"
        self.proj = nn.Embedding(vocab, dim) if self.tokens else nn.Linear(features, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class SelfAttention(nn.Module):
    """Multi-head self-attention written out (q, k, v projections; softmax; output map)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, d = x.shape
        h = self.heads
        q, k, v = self.qkv(x).reshape(n, t, 3, h, d // h).permute(2, 0, 3, 1, 4).unbind(0)
        weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(d // h), dim=-1)
        return self.out((weights @ v).transpose(1, 2).reshape(n, t, d))


class AttentionBlock(nn.Module):
    """A transformer block: attention and an MLP, each residual, LayerNorm pre or post."""

    def __init__(self, dim: int, heads: int, ratio: int, act: str, norm: str) -> None:
        super().__init__()
        self.pre = norm == "pre"
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, heads)
        self.mlp = nn.Sequential(
            nn.Linear(dim, ratio * dim), ACTIVATIONS[act](), nn.Linear(ratio * dim, dim)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pre:
            x = x + self.attn(self.norm1(x))
            return x + self.mlp(self.norm2(x))
        x = self.norm1(x + self.attn(x))
        return self.norm2(x + self.mlp(x))


class AttentionNet(nn.Module):
    """Input map, learned positions (optional), attention blocks, pooling, linear head."""

    def __init__(self, arch: Mapping[str, Any], data: Mapping[str, Any], n_out: int) -> None:
        super().__init__()
        dim = arch["dim"]
        self.input = SequenceInput(data["kind"], data.get("vocab", 0), data.get("features", 0), dim)
        self.pos = (
            nn.Parameter(0.02 * torch.randn(data["length"], dim)) if arch["positions"] else None
        )
        self.blocks = nn.ModuleList(
            AttentionBlock(dim, arch["heads"], arch["ratio"], arch["activation"], arch["norm"])
            for _ in range(arch["layers"])
        )
        self.norm = nn.LayerNorm(dim)
        self.pool = arch["pool"]
        self.head = nn.Linear(dim, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.input(x)
        if self.pos is not None:
            h = h + self.pos
        for block in self.blocks:
            h = block(h)
        h = self.norm(h)
        h = h.mean(dim=1) if self.pool == "mean" else h[:, -1]
        return self.head(h)


class RecurrentNet(nn.Module):
    """A GRU or LSTM (one or two layers) unrolled over time with ``nn.Linear`` gates.

    The equations of ``torch.nn.GRU``/``torch.nn.LSTM`` (gate order aside); the
    read-out is the last hidden state or the mean over time, then a linear head.
    """

    def __init__(self, arch: Mapping[str, Any], data: Mapping[str, Any], n_out: int) -> None:
        super().__init__()
        self.cell = arch["cell"]
        gates = 3 if self.cell == "gru" else 4
        hidden = arch["hidden"]
        self.input = SequenceInput(
            data["kind"], data.get("vocab", 0), data.get("features", 0), arch["embed"]
        )
        sizes = [arch["embed"]] + [hidden] * (arch["layers"] - 1)
        self.x_maps = nn.ModuleList(nn.Linear(s, gates * hidden) for s in sizes)
        self.h_maps = nn.ModuleList(nn.Linear(hidden, gates * hidden) for _ in sizes)
        self.hidden = hidden
        self.readout = arch["readout"]
        self.head = nn.Linear(hidden, n_out)

    def _layer(
        self, xs: torch.Tensor, x_map: nn.Linear, h_map: nn.Linear, keep: bool
    ) -> torch.Tensor:
        """One layer over time; all hidden states (N, T, H) if ``keep``, else the last."""
        n, t, _ = xs.shape
        size = self.hidden
        h = c = xs.new_zeros(n, size)
        outs = []
        for gx in x_map(xs).unbind(1):  # the input gates of every time step at once
            gh = h_map(h)
            if self.cell == "gru":  # gates r, z, n as in torch.nn.GRU
                rz = torch.sigmoid(gx[:, : 2 * size] + gh[:, : 2 * size])
                r, z = rz.chunk(2, dim=-1)
                cand = torch.tanh(gx[:, 2 * size :] + r * gh[:, 2 * size :])
                h = cand + z * (h - cand)
            else:  # gates i, f, o (sigmoid) and g (tanh)
                g = gx + gh
                i, f, o = torch.sigmoid(g[:, : 3 * size]).chunk(3, dim=-1)
                c = f * c + i * torch.tanh(g[:, 3 * size :])
                h = o * torch.tanh(c)
            if keep:
                outs.append(h)
        return torch.stack(outs, dim=1) if keep else h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.input(x)
        last = len(self.x_maps) - 1
        for i, (x_map, h_map) in enumerate(zip(self.x_maps, self.h_maps, strict=True)):
            h = self._layer(h, x_map, h_map, keep=i < last or self.readout == "mean")
        return self.head(h.mean(dim=1) if self.readout == "mean" else h)


def build_model(
    family: str, arch: Mapping[str, Any], data: Mapping[str, Any], n_in: int, n_out: int
) -> nn.Module:
    """The model of a drawn task (architecture ``arch`` on data described by ``data``)."""
    if family == "mlp":
        return mlp(arch, n_in, n_out)
    if family == "cnn":
        return cnn(arch, tuple(data["shape"]), n_out)
    if family == "attention":
        return AttentionNet(arch, data, n_out)
    if family == "rnn":
        return RecurrentNet(arch, data, n_out)
    raise ValueError(f"unknown procedural family {family!r}")
