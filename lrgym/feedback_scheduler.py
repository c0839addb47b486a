"""The contract of LR schedulers that decide from training feedback.

torch's schedulers compute the LR from the step count alone. lrgym's adaptive schedulers
(the learned :class:`~lrgym.scheduler.PolicyScheduler`, the feedback rule, hypergradient
descent, the LR predictor) also read each step's loss and, optionally, validation
results. :class:`FeedbackLRScheduler` holds that shared contract once, so each of them
implements only its decisions.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

Loss = float | torch.Tensor


def loss_value(loss: Loss) -> float:
    """A loss as a float (``.item()`` for a tensor: no warning on one that requires grad)."""
    return loss.item() if isinstance(loss, torch.Tensor) else float(loss)


def require_optimizer(optimizer: Any) -> Optimizer:
    """``optimizer``, or a ``TypeError`` saying it is not a ``torch.optim.Optimizer``."""
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
    return optimizer


class FeedbackLRScheduler(LRScheduler):
    """Base class: an LR scheduler fed with losses and validation results.

    The contract, on top of torch's ``LRScheduler``:

    * call :meth:`step` after every ``optimizer.step()``, passing that step's loss as a
      keyword, ``step(loss=loss)``, or feed it first with :meth:`observe_loss` (the way
      to go inside ``torch.optim.lr_scheduler.SequentialLR``, whose ``step()`` passes
      nothing);
    * call :meth:`observe_eval` after every validation pass (schedulers that use no
      validation feedback ignore it);
    * :meth:`get_last_lr` is the LR the next optimizer step uses, and
      :meth:`state_dict` holds plain numbers only (a ``weights_only`` reload works).

    The run starts when the scheduler is built, or, as the second scheduler of a
    ``SequentialLR``, at its milestone (from the LR the previous schedule left).

    Subclasses call :func:`require_optimizer` before they read the optimizer, implement
    :meth:`on_step` and may override :meth:`on_start`,
    :meth:`observe_eval`, :meth:`state_dict` and :meth:`load_state_dict` (calling
    ``super()``). LRs are never recomputed from the step count: :meth:`get_lr` returns
    the LRs in place.

    Args:
        optimizer: The optimizer whose LRs it sets.

    Raises:
        TypeError: ``optimizer`` is not a ``torch.optim.Optimizer``.
    """

    def __init__(self, optimizer: Optimizer) -> None:
        require_optimizer(optimizer)
        self._fed_loss: float | None = None
        super().__init__(optimizer)

    def _initial_step(self) -> None:
        # torch's base class takes a first step here; a feedback scheduler starts instead.
        self._step_count = 0
        self.last_epoch = 0
        self._fed_loss = None
        self.on_start()
        self._last_lr = self.get_lr()

    def _update_lr(self, epoch: int | None = None) -> None:
        # SequentialLR hands over to the next scheduler with ``_update_lr(0)`` (older
        # torch: ``step(0)``): that is where this scheduler's run starts.
        if epoch is None:
            self.step()
        else:
            self._initial_step()

    def on_start(self) -> None:
        """Hook: the run starts at the optimizer's current LRs (default: nothing)."""

    def on_step(self, loss: float | None) -> None:
        """Hook: one optimizer step was taken; ``loss`` is its loss (None if not fed)."""

    def observe_loss(self, loss: Loss) -> None:
        """Feed the loss of the optimizer step that the next :meth:`step` counts."""
        self._fed_loss = loss_value(loss)

    def observe_eval(self, val_loss: float, val_metric: float | None = None) -> None:
        """Feed a validation result (loss, and a higher-is-better metric if any).

        Default: ignored (the scheduler uses no validation feedback).
        """

    def step(self, epoch: Any = None, *, loss: Loss | None = None) -> None:  # type: ignore[override]
        """Count one optimizer step, with its loss; the scheduler may change the LR.

        Args:
            epoch: Only for torch compatibility: an integer (``SequentialLR``'s ``0`` at
                a milestone) restarts the scheduler's run from the current LR. A float
                or tensor here is taken as the loss, with a ``FutureWarning``: pass
                ``loss=`` instead.
            loss: The loss of the optimizer step just taken.
        """
        if epoch is not None:
            if isinstance(epoch, int) and not isinstance(epoch, bool):
                self._initial_step()
                return
            warnings.warn(
                f"{type(self).__name__}.step(loss) is deprecated: pass step(loss=loss) "
                "(a positional argument is torch's epoch)",
                FutureWarning,
                stacklevel=2,
            )
            loss = epoch
        if loss is not None:
            self.observe_loss(loss)
        fed, self._fed_loss = self._fed_loss, None
        self._step_count += 1
        self.last_epoch += 1
        self.on_step(fed)
        self._last_lr = self.get_lr()

    def get_lr(self) -> list[float]:
        """The LRs in place (decisions change them; the step count alone never does)."""
        return [float(g["lr"]) for g in self.optimizer.param_groups]

    def _sync_last_lr(self) -> None:
        """Record the LRs in place as the last ones (after a decision outside :meth:`step`)."""
        self._last_lr = self.get_lr()

    def state_dict(self) -> dict[str, Any]:
        """Step counters, a fed but not yet counted loss and the last LRs: plain numbers."""
        return {
            "last_epoch": self.last_epoch,
            "step_count": self._step_count,
            "fed_loss": self._fed_loss,
            "last_lr": [float(x) for x in self._last_lr],
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved.

        Raises:
            ValueError: a key is missing or a value is not what :meth:`state_dict`
                writes (negative counters, LRs that are not positive finite numbers, one
                per param group); nothing is changed then.
        """
        from lrgym.validate import as_number, real_number, whole_number

        state = require_keys(state_dict, ("last_epoch", "step_count", "fed_loss", "last_lr"))
        last_epoch = whole_number("last_epoch", state["last_epoch"], 0)
        step_count = whole_number("step_count", state["step_count"], 0)
        fed = state["fed_loss"]
        fed = None if fed is None else float(as_number("fed_loss", fed))
        last_lr = state["last_lr"]
        groups = len(self.optimizer.param_groups)
        if not isinstance(last_lr, list | tuple) or len(last_lr) != groups:
            raise ValueError(f"last_lr must be a list of {groups} LR(s), got {last_lr!r}")
        lrs = [real_number(f"last_lr[{i}]", x, above=0) for i, x in enumerate(last_lr)]
        self.last_epoch, self._step_count, self._fed_loss = last_epoch, step_count, fed
        self._last_lr = lrs


def require_keys(state: Any, keys: tuple[str, ...]) -> dict[str, Any]:
    """``state`` if it is a dict holding every key, else a ``ValueError`` naming them."""
    if not isinstance(state, dict):
        raise ValueError(f"state_dict must be a dict, got {type(state).__name__}")
    missing = [k for k in keys if k not in state]
    if missing:
        raise ValueError(f"state_dict is missing {missing}; pass what state_dict() returned")
    return state
