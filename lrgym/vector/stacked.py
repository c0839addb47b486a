"""K runs of one convolutional model as one forward pass: grouped convolutions.

:func:`stacked_forward` reads a model's layers with ``torch.fx`` and returns a function
of the K runs' stacked parameters and inputs that computes every run's output at once:
the runs' channels side by side in one channels-last image ``(B, K*C, H, W)``, each
``Conv2d`` as one convolution with ``groups = K * conv.groups`` (each run's input
channels meet only its own filters), pooling and activations on the stacked image
(they act per channel), and each ``Linear`` as one ``baddbmm`` over the runs.

Why not ``torch.func.vmap`` (the MLP path)? vmap's batching rule also turns a batched
convolution into a grouped one, but in NCHW and with extra copies and reshapes around
every layer; ``benchmarks/batched_conv.py`` measures the candidates side by side (vmap,
grouped NCHW, grouped channels-last, im2col with bmm, compiled variants), and grouped
channels-last was the fastest on this CPU. torch has no stacked-model transform of its
own besides vmap, so the layer-by-layer translation is written here; ``torch.fx`` does
the reading of the model.

Only a chain of the layers below is translated (anything else raises
:class:`NotStackable`, and the engine keeps the vmap path): ``Conv2d`` (zero padding),
``Linear``, ``MaxPool2d``, ``AvgPool2d``, ``Flatten``, ``Unflatten``, elementwise
activations and a spatial mean (``x.mean(dim=(-2, -1))``, a global-average head).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.fx
import torch.nn.functional as F
from torch import nn

ELEMENTWISE = (
    nn.ReLU,
    nn.Tanh,
    nn.GELU,
    nn.SiLU,
    nn.ELU,
    nn.LeakyReLU,
    nn.Softplus,
    nn.Sigmoid,
    nn.Identity,
)
"""Parameter-free modules that act on each element alone (any layout serves)."""

POOLS = (nn.MaxPool2d, nn.AvgPool2d)
"""Pooling modules that act on each channel alone."""

SPATIAL_DIMS = ((-2, -1), (2, 3), [-2, -1], [2, 3])

StackedForward = Callable[[dict[str, torch.Tensor], torch.Tensor], torch.Tensor]
"""``(params, x) -> out``: parameters stacked (K, ...), inputs (K, B, ...), outputs
(K, B, ...)."""


class NotStackable(ValueError):
    """A model cannot be translated by :func:`stacked_forward`; the message says why."""


@dataclass(frozen=True)
class _Layer:
    """One step of the chain: a kind, the module (if any) and its qualified name."""

    kind: str  # "conv", "linear", "pool", "elementwise", "flatten", "unflatten", "mean"
    module: nn.Module | None
    name: str


def _read_chain(model: nn.Module) -> list[_Layer]:
    """The model's layers in order, or :class:`NotStackable` (a branch, an unknown op)."""
    try:
        graph = torch.fx.symbolic_trace(model).graph
    except Exception as exc:  # noqa: BLE001 - any tracing failure means "not a plain chain"
        raise NotStackable(f"torch.fx cannot trace the model ({type(exc).__name__})") from exc
    modules = dict(model.named_modules())
    layers: list[_Layer] = []
    previous = None
    for node in graph.nodes:
        if node.op == "placeholder":
            previous = node
            continue
        if node.op == "output":
            if node.args[0] is not previous:
                raise NotStackable("the model's output is not its last layer's")
            break
        if not node.args or node.args[0] is not previous or len(node.users) > 1:
            raise NotStackable("the model is not a chain of layers (a branch or a skip)")
        layers.append(_layer(node, modules))
        previous = node
    return _pool_before_relu(layers)


def _pool_before_relu(layers: list[_Layer]) -> list[_Layer]:
    """ReLU then max-pool → max-pool then ReLU: the same values (ReLU is monotone) and
    the same gradients (the max's position is the same, and where every value is ≤ 0
    both give 0), with the ReLU and its backward on a quarter of the elements."""
    out = list(layers)
    for i in range(len(out) - 1):
        a, b = out[i], out[i + 1]
        if type(a.module) is nn.ReLU and type(b.module) is nn.MaxPool2d:
            out[i], out[i + 1] = b, a
    return out


def _layer(node: torch.fx.Node, modules: dict[str, nn.Module]) -> _Layer:
    """One traced node as a :class:`_Layer`, or :class:`NotStackable`."""
    if node.op == "call_method" and node.target == "mean":
        dims = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else None)
        if dims in SPATIAL_DIMS and not node.kwargs.get("keepdim", False) and len(node.args) <= 2:
            return _Layer("mean", None, node.name)
        raise NotStackable("a mean over other than the two spatial dimensions")
    if node.op != "call_module" or len(node.args) != 1 or node.kwargs:
        raise NotStackable(f"the model calls {node.op} {node.target!r}")
    module = modules[str(node.target)]
    name = str(node.target)
    if type(module) is nn.Conv2d:
        if module.padding_mode != "zeros":
            raise NotStackable(f"Conv2d with padding_mode={module.padding_mode!r}")
        return _Layer("conv", module, name)
    if type(module) is nn.Linear:
        return _Layer("linear", module, name)
    if isinstance(module, POOLS):
        return _Layer("pool", module, name)
    if isinstance(module, ELEMENTWISE):
        return _Layer("elementwise", module, name)
    if type(module) is nn.Flatten and module.start_dim == 1 and module.end_dim == -1:
        return _Layer("flatten", module, name)
    if type(module) is nn.Unflatten and module.dim in (1, -1):
        return _Layer("unflatten", module, name)
    raise NotStackable(f"{type(module).__name__} layers are not stacked")


def has_convolutions(model: nn.Module) -> bool:
    """True if ``model`` contains an ``nn.Conv2d`` (where the stacked path pays off)."""
    return any(isinstance(m, nn.Conv2d) for m in model.modules())


CACHE_BYTES = 4 * 2**20
"""Bytes of one layer's output that a stacked pass should keep within: about twice one
core's L2 cache here. DigitsCNN (32 rows, 8 KiB per example of its largest output) at
K=64, model-steps per CPU-second, medians of 5 on quiet cores: 16 runs per pass (4 MiB)
1.03x 8 runs per pass (2 MiB); 32 and 64 runs per pass were slower (64: 1.2-1.3x
slower)."""


def largest_output_bytes(model: nn.Module, example: torch.Tensor) -> int:
    """Bytes of the largest layer output of ``model`` for one input ``example``.

    Args:
        model: One run's model (a ``"meta"`` copy serves: nothing is computed).
        example: One input example (its shape and dtype are read).
    """
    largest = [0]

    def record(module: nn.Module, inputs: object, output: object) -> None:
        if isinstance(output, torch.Tensor):
            largest[0] = max(largest[0], output.numel() * output.element_size())

    device = next(model.parameters()).device
    hooks = [m.register_forward_hook(record) for m in model.modules()]
    try:
        with torch.no_grad():
            model(torch.empty((1, *example.shape), dtype=example.dtype, device=device))
    finally:
        for hook in hooks:
            hook.remove()
    return largest[0]


def slots_per_pass(example_bytes: int, rows: int) -> int:
    """Runs per stacked pass so that a layer output of ``example_bytes`` per example,
    over ``rows`` examples per run, fits in :data:`CACHE_BYTES` (at least 1)."""
    return max(1, CACHE_BYTES // max(1, example_bytes * rows))


def _to_image(h: torch.Tensor) -> torch.Tensor:
    """Rows (K, B, C, H, W) → the stacked channels-last image (B, K*C, H, W)."""
    if h.dim() != 5:
        raise NotStackable(f"a 2-d layer got inputs of {h.dim() - 2} dimensions per example")
    k, b, c, height, width = h.shape
    image = h.transpose(0, 1).reshape(b, k * c, height, width)
    return image.contiguous(memory_format=torch.channels_last)


class _ChannelsLastGrad(torch.autograd.Function):
    """Identity forward; the backward hands on its gradient in channels-last memory.

    The gradient that comes back through the rows view is NCHW-ordered; the channels-last
    pooling and convolution backward kernels would otherwise each convert it (a full
    copy) or pick their slower NCHW path (max-pool backward: 2.4x slower measured)."""

    @staticmethod
    def forward(ctx: object, x: torch.Tensor) -> torch.Tensor:
        return x.view_as(x)

    @staticmethod
    def backward(ctx: object, grad: torch.Tensor) -> torch.Tensor:
        return grad.contiguous(memory_format=torch.channels_last)


def _to_rows(h: torch.Tensor, k: int) -> torch.Tensor:
    """The stacked image (B, K*C, H, W) → rows (K, B, C, H, W)."""
    b, kc, height, width = h.shape
    h = _ChannelsLastGrad.apply(h) if h.requires_grad else h
    return h.reshape(b, k, kc // k, height, width).transpose(0, 1)


def _stacked_linear(h: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    """K runs' ``Linear`` at once: rows (K, ..., in), weights (K, out, in), bias (K, out).

    Computed transposed, ``(W hᵀ)ᵀ``, so that autograd's weight gradient is a product of
    contiguous operands: as ``h Wᵀ`` the backward took 2.5x the forward (MKL's batched
    product with a transposed (K, in, B) operand). DigitsCNN's 512→10 head at K=16,
    B=32, forward and backward, one thread: 0.28 ms against 0.70 ms (medians of 30; equal
    within noise for a 128-wide output); its whole stacked training step 1.07x faster
    (paired, medians of 200).
    """
    k = h.shape[0]
    rows = h.reshape(k, -1, h.shape[-1]).transpose(1, 2)
    out = torch.bmm(w, rows) if b is None else torch.baddbmm(b.unsqueeze(2), w, rows)
    return out.transpose(1, 2).contiguous().reshape(*h.shape[:-1], w.shape[1])


def stacked_forward(model: nn.Module) -> StackedForward:
    """The stacked forward pass of ``model`` (see the module docstring).

    Args:
        model: One run's model (any device, ``"meta"`` included: only its structure and
            settings are read; the parameters come with each call).

    Returns:
        ``forward(params, x)``: ``params`` maps each of ``model``'s parameter names to
        the K runs' values stacked on a new first dimension; ``x`` is (K, B, ...) with
        one run's inputs per row; the result is (K, B, ...) with one run's outputs per
        row, equal (within float tolerance) to ``model`` applied to each run alone.

    Raises:
        NotStackable: The model is not a chain of the supported layers.
    """
    layers = _read_chain(model)

    def forward(params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        k = x.shape[0]
        h, image = x, False  # image: h is (B, K*C, H, W) channels-last, else rows (K, B, ...)
        for layer in layers:
            m = layer.module
            if layer.kind == "elementwise":
                h = m(h)
            elif layer.kind in ("conv", "pool"):
                if not image:
                    h, image = _to_image(h), True
                if layer.kind == "pool":
                    h = m(h)
                    continue
                w = params[f"{layer.name}.weight"]
                w = w.reshape(-1, *w.shape[2:]).contiguous(memory_format=torch.channels_last)
                b = params.get(f"{layer.name}.bias")
                b = None if b is None else b.reshape(-1)
                groups = k * m.groups
                h = F.conv2d(h, w, b, m.stride, m.padding, m.dilation, groups)
            elif layer.kind == "mean":
                if not image:
                    raise NotStackable("a spatial mean of inputs that are not images")
                b_, kc = h.shape[:2]
                h, image = h.mean(dim=(-2, -1)).reshape(b_, k, kc // k).transpose(0, 1), False
            elif layer.kind == "flatten":
                if image:
                    h, image = _to_rows(h, k), False
                h = h.flatten(2)
            elif layer.kind == "unflatten":
                if image:
                    h, image = _to_rows(h, k), False
                h = h.unflatten(-1 if m.dim == -1 else 2, m.unflattened_size)
            else:  # linear
                if image:
                    h, image = _to_rows(h, k), False
                h = _stacked_linear(
                    h, params[f"{layer.name}.weight"], params.get(f"{layer.name}.bias")
                )
        return _to_rows(h, k) if image else h

    return forward


__all__ = [
    "CACHE_BYTES",
    "NotStackable",
    "StackedForward",
    "has_convolutions",
    "largest_output_bytes",
    "slots_per_pass",
    "stacked_forward",
]
