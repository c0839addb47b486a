"""The optimizers of K stacked runs: one learning rate (and momentum, weight decay) per slot.

torch's own ``torch.optim`` classes take one LR per param group, not one per slot of a
stacked tensor, so the update rules are written here; they follow the single-tensor
paths of ``torch.optim.SGD`` (momentum, plain or Nesterov, dampening 0), ``Adam`` and
``AdamW`` (no amsgrad), ``RMSprop`` (not centered, with or without momentum) and
``Adagrad`` (no LR decay, a zero initial accumulator) line by line and are tested against
them on the same seeds. :class:`StackedOptimizer` updates the stacked parameters
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


STATE_BUFFERS: dict[str, tuple[str, ...]] = {
    "sgd": ("momentum_buffer",),
    "nesterov": ("momentum_buffer",),
    "adam": ("exp_avg", "exp_avg_sq"),
    "adamw": ("exp_avg", "exp_avg_sq"),
    "rmsprop": ("square_avg", "momentum_buffer"),
    "adagrad": ("sum",),
}
"""Each optimizer kind's per-parameter state (torch's names), zero in a fresh slot."""


class StackedOptimizer:
    """An optimizer on stacked parameters, each slot with its own hyperparameters.

    Args:
        kind: ``"sgd"``, ``"nesterov"``, ``"adam"``, ``"adamw"``, ``"rmsprop"`` or
            ``"adagrad"`` (see :func:`~lrgym.vector.batchable.optimizer_kind`).
        params: The stacked parameters, (K, ...) each, updated in place.

    Attributes:
        step_all: The step of every slot at once (:meth:`step_every_slot`; the caller may
            replace it with a compiled version).
    """

    def __init__(self, kind: str, params: dict[str, torch.Tensor]) -> None:
        if kind not in STATE_BUFFERS:
            raise ValueError(
                f"unknown optimizer kind {kind!r}; use one of {', '.join(STATE_BUFFERS)}"
            )
        self.kind = kind
        self.params = params
        self.state = {
            buffer: {n: torch.zeros_like(p) for n, p in params.items()}
            for buffer in STATE_BUFFERS[kind]
        }
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
        self.steps += mask.double()
        if self.kind in ("adam", "adamw"):
            # torch computes the bias corrections in Python floats (float64)
            h["neg_step_size"] = -h["lr"] / (1 - h["beta1"] ** self.steps)
            h["bias2_sqrt"] = (1 - h["beta2"] ** self.steps).sqrt()
            h["one_minus_beta1"] = 1 - h["beta1"]
            h["one_minus_beta2"] = 1 - h["beta2"]
            h["decay"] = 1 - h["lr"] * h["wd"]
        elif self.kind == "rmsprop":
            h["one_minus_alpha"] = 1 - h["alpha"]
        decays = bool((h["wd"] != 0).any())
        # RMSprop without momentum (torch's default) skips the buffer, as torch does; once any
        # slot has momentum every slot steps through it, a slot with momentum 0 exactly as
        # torch's momentum-0 step (its buffer then holds that step, torch's stays unused)
        momentum = self.kind != "rmsprop" or bool((h["momentum"] != 0).any())
        if bool(mask.all()):
            self.step_all(grads, h, decays, momentum)
            return
        h["keep"] = mask.double()
        for name, p in self.params.items():
            v = _per_slot(h, p)
            self._step_masked(name, p, grads[name], v, v["keep"].bool(), momentum)

    def step_every_slot(
        self,
        grads: dict[str, torch.Tensor],
        h: dict[str, torch.Tensor],
        decays: bool,
        momentum: bool = True,
    ) -> None:
        """One in-place optimizer step of every slot (compiled with ``compile=True``).

        Args:
            grads: Every slot's gradients, (K, ...) per parameter (overwritten).
            h: Every slot's hyperparameters, (K,) each.
            decays: Whether any slot has weight decay.
            momentum: Whether any slot has momentum (read by RMSprop only).
        """
        for name, p in self.params.items():
            self._step_in_place(name, p, grads[name], _per_slot(h, p), decays, momentum)

    def _step_in_place(
        self,
        name: str,
        p: torch.Tensor,
        g: torch.Tensor,
        v: dict[str, torch.Tensor],
        decays: bool,
        momentum: bool,
    ) -> None:
        """Every slot steps: the update of ``torch.optim``'s single-tensor path, in place
        (about half the passes over memory of :meth:`_step_masked`)."""
        if decays and self.kind != "adamw":  # every optimizer but AdamW: L2 in the gradient
            g = g.add_(p * v["wd"])
        if self.kind in ("sgd", "nesterov"):  # torch.optim.SGD, dampening 0
            buf = self.state["momentum_buffer"][name]
            buf.mul_(v["momentum"]).add_(g)  # a zero buffer: the first step is g
            if self.kind == "nesterov":
                p.addcmul_(g.add_(buf * v["momentum"]), -v["lr"])
            else:
                p.addcmul_(buf, -v["lr"])
            return
        if self.kind == "rmsprop":  # torch.optim.RMSprop, not centered
            square_avg = self.state["square_avg"][name]
            square_avg.mul_(v["alpha"]).addcmul_(g, g * v["one_minus_alpha"])
            avg = square_avg.sqrt().add_(v["eps"])
            if momentum:
                buf = self.state["momentum_buffer"][name]
                buf.mul_(v["momentum"]).addcdiv_(g, avg)
                p.addcmul_(buf, -v["lr"])
            else:
                p.addcdiv_(g * -v["lr"], avg)
            return
        if self.kind == "adagrad":  # torch.optim.Adagrad, lr_decay 0
            state_sum = self.state["sum"][name]
            state_sum.addcmul_(g, g)
            p.addcdiv_(g * -v["lr"], state_sum.sqrt().add_(v["eps"]))
            return
        if self.kind == "adamw":  # torch.optim.Adam / AdamW, no amsgrad
            p.mul_(v["decay"])
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
        momentum: bool,
    ) -> None:
        """Slots where ``keep`` is set step; the others keep parameters and state."""
        if self.kind in ("sgd", "nesterov"):
            g = g + v["wd"] * p
            buf = self.state["momentum_buffer"][name]
            new_buf = v["momentum"] * buf + g
            step = g + v["momentum"] * new_buf if self.kind == "nesterov" else new_buf
            new_p = p - v["lr"] * step
            _store(buf, new_buf, keep)
        elif self.kind == "rmsprop":
            g = g + v["wd"] * p
            square_avg = self.state["square_avg"][name]
            new_sq = square_avg * v["alpha"] + v["one_minus_alpha"] * g * g
            avg = new_sq.sqrt() + v["eps"]
            if momentum:
                buf = self.state["momentum_buffer"][name]
                new_buf = v["momentum"] * buf + g / avg
                new_p = p - v["lr"] * new_buf
                _store(buf, new_buf, keep)
            else:
                new_p = p - v["lr"] * (g / avg)
            _store(square_avg, new_sq, keep)
        elif self.kind == "adagrad":
            g = g + v["wd"] * p
            state_sum = self.state["sum"][name]
            new_sum = state_sum + g * g
            new_p = p - v["lr"] * (g / (new_sum.sqrt() + v["eps"]))
            _store(state_sum, new_sum, keep)
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


__all__ = ["STATE_BUFFERS", "SlotOptimizer", "StackedOptimizer"]
