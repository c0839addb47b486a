"""Hypergradient descent: online LR adaptation from consecutive gradients.

Baydin, Cornish, Martínez Rubio, Schmidt and Wood, *Online Learning Rate Adaptation with
Hypergradient Descent*, ICLR 2018 (reference code: github.com/gbaydin/hypergradient-descent).

If the optimizer's step is ``θ_t = θ_{t-1} − α u_t`` (``u`` the update direction), then
``∂f(θ_{t-1})/∂α = ∇f(θ_{t-1}) · (−u_{t-1})`` and one gradient step on ``α`` with
hyper-LR ``β``, taken just before each optimizer step, is

    α_t = α_{t-1} + β ∇f(θ_{t-1}) · u_{t-1}

* **SGD-HD** (``u = ∇f``): ``α_t = α_{t-1} + β ∇f(θ_{t-1}) · ∇f(θ_{t-2})``; with momentum,
  ``u`` is torch's momentum buffer (the reference ``SGDHD`` does the same).
* **Adam-HD** (``u = m̂/(√v̂ + ε)``): ``α_t = α_{t-1} − β ∇f(θ_{t-1}) · (−m̂_{t-1}/(√v̂_{t-1}
  + ε))``, with ``m̂, v̂`` the bias-corrected moments of the previous step, exactly as torch's
  ``Adam``/``AdamW`` applied them.

L2 weight decay of ``SGD``/``Adam`` is part of the objective, so it enters both the gradient
and the direction; the decoupled decay of ``AdamW`` is not a gradient step and is left out.
Each parameter group has its own ``α`` (the dot product runs over the group's parameters).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch.optim import Optimizer

from lrgym.core.feedback_scheduler import (
    FeedbackLRScheduler,
    require_keys,
    require_optimizer,
    set_group_lr,
)

HYPER_LR_DEFAULTS: dict[str, float] = {"sgd": 1e-3, "adam": 1e-7}
"""The paper's hyper-LRs β: 1e-3 for SGD (with or without momentum), 1e-7 for Adam."""


def optimizer_kind(optimizer: Optimizer) -> str:
    """``"sgd"`` or ``"adam"``: which hypergradient rule applies to ``optimizer``.

    Raises:
        TypeError: For any other optimizer, or options the rules do not cover.
    """
    if isinstance(optimizer, torch.optim.SGD):
        for group in optimizer.param_groups:
            if group.get("nesterov") or group.get("maximize"):
                raise TypeError(
                    "hypergradient descent supports SGD without nesterov and maximize; "
                    "create the optimizer with nesterov=False, maximize=False"
                )
        return "sgd"
    if isinstance(optimizer, (torch.optim.Adam, torch.optim.AdamW)):
        for group in optimizer.param_groups:
            if group.get("amsgrad") or group.get("maximize"):
                raise TypeError(
                    "hypergradient descent supports Adam/AdamW without amsgrad and maximize; "
                    "create the optimizer with amsgrad=False, maximize=False"
                )
        return "adam"
    raise TypeError(
        f"hypergradient descent needs torch.optim.SGD, Adam or AdamW, got "
        f"{type(optimizer).__name__}; use one of those optimizers"
    )


class HypergradientLR(FeedbackLRScheduler):
    """Hypergradient descent on the LR, as a drop-in torch LR scheduler.

    It registers a pre-step hook on the optimizer: right before every
    ``optimizer.step()`` it reads the parameters' gradients and the previous update
    direction (from the optimizer's own state where it has one) and moves each group's
    LR by ``β ∇f(θ_{t-1}) · u_{t-1}`` (see the module docstring), clamped to
    ``[min_lr, max_lr]``. A non-finite hypergradient leaves the LR unchanged. Call
    :meth:`step` after ``optimizer.step()`` as with any scheduler (it only counts steps);
    :meth:`get_last_lr` is the LR the last optimizer step used.

    Example:
        >>> scheduler = HypergradientLR(optimizer)  # β from the paper for SGD/Adam
        >>> for x, y in loader:
        ...     optimizer.zero_grad(); loss_fn(model(x), y).backward()
        ...     optimizer.step(); scheduler.step()

    Checkpointing: Adam's direction and SGD's momentum buffer live in the optimizer's
    state; for momentum-free SGD :meth:`state_dict` holds the previous gradients (as
    tensors; a ``torch.load(weights_only=True)`` reload works). With the optimizer's
    checkpoint, every step after a reload updates the LR exactly as without the
    interruption. A tensor LR stays a tensor (updated in place).

    Args:
        optimizer: ``torch.optim.SGD`` (no nesterov), ``Adam`` or ``AdamW`` (no amsgrad).
        hyper_lr: The hyper-LR β (default: :data:`HYPER_LR_DEFAULTS` for the optimizer).
        min_lr: Lower LR bound (the additive rule can otherwise go negative).
        max_lr: Upper LR bound.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        hyper_lr: float | None = None,
        min_lr: float = 1e-7,
        max_lr: float = 1.0,
    ) -> None:
        require_optimizer(optimizer)
        self.kind = optimizer_kind(optimizer)
        beta = HYPER_LR_DEFAULTS[self.kind] if hyper_lr is None else float(hyper_lr)
        if not (math.isfinite(beta) and beta >= 0):
            raise ValueError(f"hyper_lr must be a finite number >= 0, got {hyper_lr}")
        if not 0 <= min_lr < max_lr:
            raise ValueError(f"need 0 <= min_lr < max_lr, got {min_lr} and {max_lr}")
        self.hyper_lr = beta
        self.min_lr = float(min_lr)
        self.max_lr = float(max_lr)
        self.last_hypergradients: list[float] = [math.nan] * len(optimizer.param_groups)
        self.lr_updates = 0
        self._params = [p for g in optimizer.param_groups for p in g["params"]]
        self._prev_grads: dict[int, torch.Tensor] = {}  # momentum-free SGD only
        super().__init__(optimizer)
        self._hook = optimizer.register_step_pre_hook(self._before_step)

    def _direction(self, group: dict, p: torch.Tensor) -> torch.Tensor | None:
        """The previous step's update direction ``u_{t-1}`` of ``p`` (None before one)."""
        state = self.optimizer.state.get(p, {})
        if self.kind == "adam":
            if "exp_avg" not in state or float(state["step"]) < 1:
                return None
            beta1, beta2 = group["betas"]
            k = float(state["step"])
            m_hat = state["exp_avg"] / (1 - beta1**k)
            return m_hat / (state["exp_avg_sq"].sqrt() / math.sqrt(1 - beta2**k) + group["eps"])
        if group["momentum"] != 0:
            return state.get("momentum_buffer")
        return self._prev_grads.get(id(p))

    @torch.no_grad()
    def _before_step(self, optimizer: Optimizer, args: Any, kwargs: Any) -> None:
        """Pre-step hook: the hypergradient step on every group's LR."""
        for i, group in enumerate(optimizer.param_groups):
            decoupled = isinstance(optimizer, torch.optim.AdamW)
            coupled_decay = 0.0 if decoupled else float(group["weight_decay"])
            dots: list[torch.Tensor] = []
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad if coupled_decay == 0 else p.grad + coupled_decay * p
                u = self._direction(group, p)
                if self.kind == "sgd" and group["momentum"] == 0:
                    self._prev_grads[id(p)] = grad.detach().clone()
                if u is not None:
                    dots.append(torch.vdot(grad.reshape(-1), u.reshape(-1)))
            h = float(torch.stack(dots).sum()) if dots else math.nan
            self.last_hypergradients[i] = h
            if math.isfinite(h):
                lr = float(group["lr"]) + self.hyper_lr * h
                set_group_lr(group, min(self.max_lr, max(self.min_lr, lr)))
                self.lr_updates += 1

    def remove(self) -> None:
        """Detach the pre-step hook; the optimizer keeps its current LRs."""
        self._hook.remove()

    def old_format_restarts(self) -> str | None:
        """Format 1 lacked momentum-free SGD's previous gradients."""
        if self.kind == "sgd" and any(g["momentum"] == 0 for g in self.optimizer.param_groups):
            return (
                "the first step after the reload makes no LR update (momentum-free SGD's "
                "previous gradients were not saved)"
            )
        return None

    def state_dict(self) -> dict[str, Any]:
        """Hyper-LR, bounds, counters, last LRs/hypergradients and, for momentum-free SGD,
        the previous gradients (one tensor or None per parameter, in param-group order)."""
        return {
            **super().state_dict(),
            "hyper_lr": self.hyper_lr,
            "min_lr": self.min_lr,
            "max_lr": self.max_lr,
            "lr_updates": self.lr_updates,
            "last_hypergradients": list(self.last_hypergradients),
            "prev_grads": [
                None if (g := self._prev_grads.get(id(p))) is None else g.clone()
                for p in self._params
            ],
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved (load the optimizer's state too).

        Raises:
            ValueError: a key is missing or a value is not what :meth:`state_dict`
                writes (the message names it); nothing is changed then.
        """
        from lrgym.io.validate import as_number, real_number, whole_number

        old = self.is_old_format(state_dict)
        keys = ("hyper_lr", "min_lr", "max_lr", "lr_updates", "last_hypergradients")
        state = require_keys(state_dict, keys if old else (*keys, "prev_grads"))
        hyper_lr = real_number("hyper_lr", state["hyper_lr"], 0)
        min_lr = real_number("min_lr", state["min_lr"], 0)
        max_lr = real_number("max_lr", state["max_lr"], above=min_lr)
        lr_updates = whole_number("lr_updates", state["lr_updates"], 0)
        hyper = state["last_hypergradients"]
        groups = len(self.optimizer.param_groups)
        if not isinstance(hyper, list | tuple) or len(hyper) != groups:
            raise ValueError(
                f"last_hypergradients must be a list of {groups} number(s), got {hyper!r}"
            )
        hyper = [float(as_number(f"last_hypergradients[{i}]", h)) for i, h in enumerate(hyper)]
        prev_grads = self._check_prev_grads(state.get("prev_grads", [None] * len(self._params)))
        super().load_state_dict(state)
        self.hyper_lr, self.min_lr, self.max_lr = hyper_lr, min_lr, max_lr
        self.lr_updates, self.last_hypergradients = lr_updates, hyper
        self._prev_grads = prev_grads

    def _check_prev_grads(self, saved: Any) -> dict[int, torch.Tensor]:
        """Saved previous gradients, keyed like ``_prev_grads``, or a ``ValueError``."""
        n = len(self._params)
        if not isinstance(saved, list | tuple) or len(saved) != n:
            raise ValueError(f"prev_grads must be a list of {n} tensors or None, got {saved!r}")
        out: dict[int, torch.Tensor] = {}
        for i, (p, g) in enumerate(zip(self._params, saved, strict=True)):
            if g is None:
                continue
            if not isinstance(g, torch.Tensor) or g.shape != p.shape:
                got = tuple(g.shape) if isinstance(g, torch.Tensor) else g
                raise ValueError(
                    f"prev_grads[{i}] must be a tensor of the parameter's shape "
                    f"{tuple(p.shape)}, got {got!r}: was it saved for another model?"
                )
            out[id(p)] = g.to(device=p.device, dtype=p.dtype)
        return out
