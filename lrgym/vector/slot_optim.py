"""The optimizers of K stacked runs: one learning rate (and momentum, weight decay) per slot.

torch's own ``torch.optim`` classes take one LR per param group, not one per slot of a
stacked tensor, so the update rules are written here; they follow ``torch.optim.SGD``
(momentum, dampening 0), ``Adam`` and ``AdamW`` (no amsgrad) line by line and are tested
against them on the same seeds. :class:`StackedOptimizer` updates the stacked parameters
of :class:`~lrgym.vector.batched_runs.BatchedRuns`; :class:`SlotOptimizer` holds one
slot's hyperparameters for the decision path.
"""

from __future__ import annotations

from typing import Any

import torch


class SlotOptimizer:
    """One slot's hyperparameters as an optimizer-like object with ``param_groups``.

    It lets a :class:`~lrgym.core.decision.DecisionPath` (and every hyperparameter helper)
    read and write one run's LR, momentum or β1 and weight decay exactly as it would on
    a ``torch.optim`` optimizer; :class:`~lrgym.vector.batched_runs.BatchedRuns` reads the
    groups before each chunk.
    """

    def __init__(self, group: dict[str, Any]) -> None:
        self.param_groups = [group]


def _per_slot(h: dict[str, torch.Tensor], p: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-slot (K,) hyperparameters shaped (K, 1, ...) to broadcast against ``p``."""
    shape = (-1, *([1] * (p.dim() - 1)))
    return {key: v.to(p.dtype).reshape(shape) for key, v in h.items()}


def _store(target: torch.Tensor, value: torch.Tensor, keep: torch.Tensor) -> None:
    """``target ← value``; where ``keep`` (per slot) is False, ``target`` keeps its value."""
    target.copy_(torch.where(keep, value, target))


class StackedOptimizer:
    """SGD, Adam or AdamW on stacked parameters, each slot with its own hyperparameters.

    Args:
        kind: ``"sgd"``, ``"adam"`` or ``"adamw"`` (see
            :func:`~lrgym.vector.batchable.optimizer_kind`).
        params: The stacked parameters, (K, ...) each, updated in place.

    Attributes:
        step_all: The step of every slot at once (:meth:`step_every_slot`; the caller may
            replace it with a compiled version).
    """

    def __init__(self, kind: str, params: dict[str, torch.Tensor]) -> None:
        self.kind = kind
        self.params = params
        zeros = {n: torch.zeros_like(p) for n, p in params.items()}
        if kind == "sgd":
            self.state = {"momentum_buffer": zeros}
        else:
            self.state = {"exp_avg": zeros, "exp_avg_sq": {n: p.clone() for n, p in zeros.items()}}
        num_slots = next(iter(params.values())).shape[0] if params else 0
        self.steps = torch.zeros(num_slots, dtype=torch.float64)
        self.step_all = self.step_every_slot

    def reset(self, slot: int) -> None:
        """A fresh optimizer state for ``slot`` (a new run starts there)."""
        for buffers in self.state.values():
            for buf in buffers.values():
                buf[slot] = 0.0
        self.steps[slot] = 0

    @torch.no_grad()
    def update(
        self, grads: dict[str, torch.Tensor], mask: torch.Tensor, hyper: dict[str, torch.Tensor]
    ) -> None:
        """One optimizer step on every slot where ``mask`` is set (the others keep their
        parameters and optimizer state), with each slot's own hyperparameters."""
        h = dict(hyper)
        if self.kind != "sgd":
            self.steps += mask.double()
            # torch computes the bias corrections in Python floats (float64)
            h["neg_step_size"] = -h["lr"] / (1 - h["beta1"] ** self.steps)
            h["bias2_sqrt"] = (1 - h["beta2"] ** self.steps).sqrt()
            h["one_minus_beta1"] = 1 - h["beta1"]
            h["one_minus_beta2"] = 1 - h["beta2"]
            h["decay"] = 1 - h["lr"] * h["wd"]
        decays = bool((h["wd"] != 0).any())
        if bool(mask.all()):
            self.step_all(grads, h, decays)
            return
        h["keep"] = mask.double()
        for name, p in self.params.items():
            v = _per_slot(h, p)
            self._step_masked(name, p, grads[name], v, v["keep"].bool())

    def step_every_slot(
        self, grads: dict[str, torch.Tensor], h: dict[str, torch.Tensor], decays: bool
    ) -> None:
        """One in-place optimizer step of every slot (compiled with ``compile=True``)."""
        for name, p in self.params.items():
            self._step_in_place(name, p, grads[name], _per_slot(h, p), decays)

    def _step_in_place(
        self,
        name: str,
        p: torch.Tensor,
        g: torch.Tensor,
        v: dict[str, torch.Tensor],
        decays: bool,
    ) -> None:
        """Every slot steps: the update of ``torch.optim``'s single-tensor path, in place
        (about half the passes over memory of :meth:`_step_masked`)."""
        if self.kind == "sgd":  # torch.optim.SGD, dampening 0, not nesterov
            if decays:
                g = g.add_(p * v["wd"])
            buf = self.state["momentum_buffer"][name]
            buf.mul_(v["momentum"]).add_(g)  # a zero buffer: the first step is g
            p.addcmul_(buf, -v["lr"])
            return
        if self.kind == "adamw":  # torch.optim.Adam / AdamW, no amsgrad
            p.mul_(v["decay"])
        elif decays:
            g = g.add_(p * v["wd"])
        exp_avg = self.state["exp_avg"][name]
        exp_avg_sq = self.state["exp_avg_sq"][name]
        exp_avg.lerp_(g, v["one_minus_beta1"])
        exp_avg_sq.mul_(v["beta2"]).addcmul_(g, g * v["one_minus_beta2"])
        denom = exp_avg_sq.sqrt().div_(v["bias2_sqrt"]).add_(v["eps"])
        p.addcdiv_(exp_avg * v["neg_step_size"], denom)

    def _step_masked(
        self,
        name: str,
        p: torch.Tensor,
        g: torch.Tensor,
        v: dict[str, torch.Tensor],
        keep: torch.Tensor,
    ) -> None:
        """Slots where ``keep`` is set step; the others keep parameters and state."""
        if self.kind == "sgd":
            g = g + v["wd"] * p
            buf = self.state["momentum_buffer"][name]
            new_buf = v["momentum"] * buf + g
            new_p = p - v["lr"] * new_buf
            _store(buf, new_buf, keep)
        else:
            if self.kind == "adamw":
                base = p * v["decay"]
            else:
                base = p
                g = g + v["wd"] * p
            exp_avg = self.state["exp_avg"][name]
            exp_avg_sq = self.state["exp_avg_sq"][name]
            new_avg = exp_avg.lerp(g, v["one_minus_beta1"])
            new_sq = exp_avg_sq * v["beta2"] + v["one_minus_beta2"] * g * g
            denom = new_sq.sqrt() / v["bias2_sqrt"] + v["eps"]
            new_p = base + v["neg_step_size"] * (new_avg / denom)
            _store(exp_avg, new_avg, keep)
            _store(exp_avg_sq, new_sq, keep)
        _store(p, new_p, keep)


__all__ = ["SlotOptimizer", "StackedOptimizer"]
