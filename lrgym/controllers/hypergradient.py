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

from lrgym.feedback_scheduler import FeedbackLRScheduler, require_optimizer

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

    Checkpointing: :meth:`state_dict` holds plain numbers only. Adam's direction and SGD's
    momentum buffer live in the optimizer's state, so with the optimizer's checkpoint the
    next step after a reload updates the LR exactly as without the interruption; for
    momentum-free SGD the previous gradient is not saved and that one step makes no LR
    update.

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
                group["lr"] = min(self.max_lr, max(self.min_lr, lr))
                self.lr_updates += 1

    def remove(self) -> None:
        """Detach the pre-step hook; the optimizer keeps its current LRs."""
        self._hook.remove()

    def state_dict(self) -> dict[str, Any]:
        """Hyper-LR, bounds, counters and last LRs/hypergradients: plain numbers only."""
        return {
            **super().state_dict(),
            "hyper_lr": self.hyper_lr,
            "min_lr": self.min_lr,
            "max_lr": self.max_lr,
            "lr_updates": self.lr_updates,
            "last_hypergradients": list(self.last_hypergradients),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved (load the optimizer's state too)."""
        super().load_state_dict(state_dict)
        self.hyper_lr = float(state_dict["hyper_lr"])
        self.min_lr = float(state_dict["min_lr"])
        self.max_lr = float(state_dict["max_lr"])
        self.lr_updates = int(state_dict["lr_updates"])
        self.last_hypergradients = [float(x) for x in state_dict["last_hypergradients"]]
        self._prev_grads = {}
