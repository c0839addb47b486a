"""ANIL (Raghu et al. 2020, "Rapid learning or feature reuse?"): a body whose head adapts.

The inner loop adapts only the output layer (the head) on the features of the task's
support set; the outer loop learns the body and the head's init by back-propagating the
query loss through those head steps (second order, which is cheap: the body runs once
per task and only the head's few parameters are stepped). All tasks of a meta-batch run
at once: the body on their examples stacked, the heads as a batch of per-task copies.

A hand-written loop because no library we depend on has ANIL (``learn2learn`` and
``higher`` are unmaintained and pin old torch versions); it is a few lines of
``torch.autograd.grad(..., create_graph=True)``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.func import functional_call

from lrgym.meta_init.contract import Episode
from lrgym.meta_init.models import HEAD_PREFIX

BODY_PREFIX = "body."
"""Names of the body's parameters start with this (see :mod:`lrgym.meta_init.models`)."""


def split_params(
    params: dict[str, torch.Tensor],
) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """``(body parameters named within the body, head weight, head bias)``."""
    body = {k[len(BODY_PREFIX) :]: v for k, v in params.items() if k.startswith(BODY_PREFIX)}
    unknown = [k for k in params if not k.startswith((BODY_PREFIX, HEAD_PREFIX))]
    if unknown:
        raise ValueError(f"ANIL needs a model of a body and a head; unexpected {unknown}")
    return body, params[HEAD_PREFIX + "weight"], params[HEAD_PREFIX + "bias"]


def adapt_heads(
    feats: torch.Tensor,
    y: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    steps: int,
    lr: float,
    momentum: float = 0.0,
    create_graph: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``steps`` SGD steps (momentum as torch's SGD) of per-task linear heads on per-task
    features.

    Args:
        feats: ``(tasks, examples, features)``.
        y: ``(tasks, examples)`` labels.
        weight: The head's init, ``(outputs, features)``.
        bias: ``(outputs,)``.
        steps: SGD steps.
        lr: SGD step size.
        momentum: SGD momentum.
        create_graph: Keep the graph of the steps (for the outer gradient).

    Returns:
        The adapted ``(tasks, outputs, features)`` weights and ``(tasks, outputs)`` biases.
    """
    n_tasks = feats.shape[0]
    w = weight.expand(n_tasks, *weight.shape)
    b = bias.expand(n_tasks, *bias.shape)
    if not (w.requires_grad or b.requires_grad):  # scoring without a graph: gradients only
        w, b = w.detach().requires_grad_(), b.detach().requires_grad_()
    vw = vb = None
    for _ in range(steps):
        loss = head_loss(feats, y, w, b) * n_tasks  # sum of the tasks' mean losses
        gw, gb = torch.autograd.grad(loss, (w, b), create_graph=create_graph)
        vw = gw if vw is None else momentum * vw + gw
        vb = gb if vb is None else momentum * vb + gb
        w, b = w - lr * vw, b - lr * vb
    return w, b


def head_loss(feats: torch.Tensor, y: torch.Tensor, w: torch.Tensor, b: torch.Tensor):
    """Mean cross-entropy of per-task heads ``(w, b)`` over every task's examples."""
    logits = torch.baddbmm(b.unsqueeze(1), feats, w.transpose(1, 2))
    return torch.nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten())


def anil_step(
    body_module: torch.nn.Module,
    params: dict[str, torch.Tensor],
    episodes: list[Episode],
    inner_steps: int,
    inner_lr: float,
    inner_momentum: float = 0.0,
) -> torch.Tensor:
    """The ANIL meta-loss of a meta-batch (query loss after head-only adaptation);
    differentiable in ``params``."""
    body, weight, bias = split_params(params)
    xs = torch.as_tensor(np.stack([e.x_support for e in episodes]))
    ys = torch.as_tensor(np.stack([e.y_support for e in episodes]))
    xq = torch.as_tensor(np.stack([e.x_query for e in episodes]))
    yq = torch.as_tensor(np.stack([e.y_query for e in episodes]))
    n_tasks, n_s = ys.shape
    x = torch.cat([xs.flatten(0, 1), xq.flatten(0, 1)])
    feats = functional_call(body_module, body, (x,))
    fs = feats[: n_tasks * n_s].unflatten(0, (n_tasks, n_s))
    fq = feats[n_tasks * n_s :].unflatten(0, (n_tasks, -1))
    w, b = adapt_heads(fs, ys, weight, bias, inner_steps, inner_lr, inner_momentum)
    return head_loss(fq, yq, w, b)


__all__ = ["BODY_PREFIX", "adapt_heads", "anil_step", "head_loss", "split_params"]
