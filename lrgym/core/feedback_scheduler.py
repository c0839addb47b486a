"""The contract of LR schedulers that decide from training feedback.

torch's schedulers compute the LR from the step count alone. lrgym's adaptive schedulers
(the learned :class:`~lrgym.deploy.scheduler.PolicyScheduler`, the feedback rule, hypergradient
descent, the LR predictor) also read each step's loss and, optionally, validation
results. :class:`FeedbackLRScheduler` holds that shared contract once, so each of them
implements only its decisions.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

Loss = float | torch.Tensor

STATE_FORMAT = 2
"""Version of what :meth:`FeedbackLRScheduler.state_dict` writes.

1 (no ``"format"`` key, lrgym before this version): the update-size window and the
hypergradient of momentum-free SGD were not saved, and ``step_count`` did not count
torch's initial step. 2: everything a decision depends on is saved.
"""


def loss_value(loss: Loss) -> float:
    """A loss as a float (``.item()`` for a tensor: no warning on one that requires grad).

    Checked by :func:`lrgym.io.validate.step_loss`: a TypeError/ValueError for a wrong type or
    a tensor of several values, a warning for a negative loss.
    """
    from lrgym.io.validate import step_loss

    return step_loss(loss)


def require_optimizer(optimizer: Any) -> Optimizer:
    """``optimizer``, or a ``TypeError`` saying it is not a ``torch.optim.Optimizer``."""
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
    return optimizer


def set_group_lr(group: dict[str, Any], lr: float) -> None:
    """Set a param group's LR; a tensor LR is written in place and stays a tensor.

    torch's own schedulers do the same (``_update_param_group_val``, private to torch):
    capturable and compiled optimizers keep a reference to the tensor.
    """
    current = group["lr"]
    if isinstance(current, torch.Tensor):
        current.fill_(float(lr))
    else:
        group["lr"] = float(lr)


@contextmanager
def tensor_lrs_kept(optimizer: Optimizer) -> Iterator[None]:
    """Run code that assigns ``group["lr"]`` floats; tensor LRs then take the new values
    in place, so every tensor LR stays the same tensor (see :func:`set_group_lr`)."""
    groups = optimizer.param_groups
    tensors = [g["lr"] if isinstance(g["lr"], torch.Tensor) else None for g in groups]
    try:
        yield
    finally:
        for group, tensor in zip(groups, tensors, strict=True):
            if tensor is not None and group["lr"] is not tensor:
                new, group["lr"] = group["lr"], tensor
                tensor.fill_(float(new))


def lr_as_number(key: str, value: Any) -> float:
    """An LR saved in a state dict (a number or a one-element tensor) as a positive float.

    Raises:
        ValueError: naming ``key``, for anything else.
    """
    from lrgym.io.validate import real_number

    if isinstance(value, torch.Tensor):
        if value.numel() != 1 or not value.is_floating_point():
            raise ValueError(f"{key} must be a positive finite LR, got a tensor of {value.shape}")
        value = value.item()
    return real_number(key, value, above=0)


class FeedbackLRScheduler(LRScheduler):
    """Base class: an LR scheduler fed with losses and validation results.

    The contract, on top of torch's ``LRScheduler``:

    * call :meth:`step` after every ``optimizer.step()``, passing that step's loss as a
      keyword, ``step(loss=loss)``, or feed it first with :meth:`observe_loss` (the way
      to go inside ``torch.optim.lr_scheduler.SequentialLR``, whose ``step()`` passes
      nothing); stepping it before the first ``optimizer.step()`` gives torch's own
      warning (torch's ``LRScheduler.step`` does the counting and the check);
    * call :meth:`observe_eval` after every validation pass (schedulers that use no
      validation feedback ignore it);
    * :meth:`get_last_lr` is the LR the next optimizer step uses, with the type of the
      param group's ``lr``: a tensor LR (``Adam(params, lr=torch.tensor(1e-3))``) is
      changed in place and stays a tensor, and :meth:`get_last_lr` returns copies of it,
      as torch's schedulers do;
    * :meth:`state_dict` holds everything the decisions depend on, as numbers, lists
      and tensors (a ``torch.load(weights_only=True)`` reload works): a run saved at any
      step and resumed into a fresh optimizer and scheduler takes the same LRs as the
      uninterrupted run. :meth:`load_state_dict` refuses values it would not have
      written, and loads a state dict of the earlier format 1 (see
      :data:`STATE_FORMAT`) with a warning naming what restarts.

    The run starts when the scheduler is built, or, as the second scheduler of a
    ``SequentialLR``, at its milestone (from the LR the previous schedule left).

    Subclasses call :func:`require_optimizer` before they read the optimizer, implement
    :meth:`on_step` and may override :meth:`on_start`, :meth:`observe_eval`,
    :meth:`state_dict` and :meth:`load_state_dict` (calling ``super()``); they set LRs
    with :func:`set_group_lr`. LRs are never recomputed from the step count:
    :meth:`get_lr` returns the LRs in place.

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
        # torch's base class takes a first step here (its _step_count is then 1, which
        # its step-order check relies on); a feedback scheduler starts its run instead.
        self._step_count = 1
        self.last_epoch = 0
        self._fed_loss = None
        self.on_start()
        self._last_lr = self.get_lr()

    def _update_lr(self, epoch: int | None = None) -> None:
        # torch's LRScheduler.step calls this with None after its checks and counting;
        # SequentialLR hands over to the next scheduler with ``_update_lr(0)`` (older
        # torch: ``step(0)``): that is where this scheduler's run starts.
        if epoch is not None:
            self._initial_step()
            return
        fed, self._fed_loss = self._fed_loss, None
        self.last_epoch += 1
        self.on_step(fed)
        self._last_lr = self.get_lr()

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
        # torch's step: the step-order warning, the step count, then our _update_lr
        super().step()

    def get_lr(self) -> list[float | torch.Tensor]:
        """The LRs in place (decisions change them; the step count alone never does).

        A tensor LR is returned as a copy (as torch's schedulers do), others as floats.
        """
        return [
            g["lr"].clone() if isinstance(g["lr"], torch.Tensor) else float(g["lr"])
            for g in self.optimizer.param_groups
        ]

    def _sync_last_lr(self) -> None:
        """Record the LRs in place as the last ones (after a decision outside :meth:`step`)."""
        self._last_lr = self.get_lr()

    def _set_lrs(self, lrs: list[float]) -> None:
        """Set every param group's LR (tensor LRs in place) and record them as the last."""
        for group, lr in zip(self.optimizer.param_groups, lrs, strict=True):
            set_group_lr(group, lr)
        self._sync_last_lr()

    def state_dict(self) -> dict[str, Any]:
        """Format, step counters, a fed but not yet counted loss and the last LRs."""
        return {
            "format": STATE_FORMAT,
            "last_epoch": self.last_epoch,
            "step_count": self._step_count,
            "fed_loss": self._fed_loss,
            "last_lr": [x.clone() if isinstance(x, torch.Tensor) else x for x in self._last_lr],
        }

    def old_format_restarts(self) -> str | None:
        """What restarts when a format-1 state dict is loaded, for the warning (None: the
        format lacked nothing this scheduler needs)."""
        return None

    def is_old_format(self, state_dict: Any) -> bool:
        """Whether ``state_dict`` has the earlier format 1 (see :data:`STATE_FORMAT`).

        Raises:
            ValueError: ``state_dict`` is not a dict, or names a format this lrgym does
                not read.
        """
        from lrgym.io.validate import whole_number

        if not isinstance(state_dict, dict):
            raise ValueError(f"state_dict must be a dict, got {type(state_dict).__name__}")
        if "format" not in state_dict:
            return True
        fmt = whole_number("format", state_dict["format"], 1)
        if fmt > STATE_FORMAT:
            raise ValueError(
                f"{type(self).__name__} state_dict has format {fmt}, newer than this lrgym "
                f"reads ({STATE_FORMAT}); upgrade lrgym to load it"
            )
        return fmt < STATE_FORMAT

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved.

        Raises:
            ValueError: a key is missing or a value is not what :meth:`state_dict`
                writes (negative counters, LRs that are not positive finite numbers, one
                per param group); nothing is changed then.
        """
        from lrgym.io.validate import as_number, whole_number

        old = self.is_old_format(state_dict)
        state = require_keys(state_dict, ("last_epoch", "step_count", "fed_loss", "last_lr"))
        last_epoch = whole_number("last_epoch", state["last_epoch"], 0)
        step_count = whole_number("step_count", state["step_count"], 0 if old else 1)
        fed = state["fed_loss"]
        fed = None if fed is None else float(as_number("fed_loss", fed))
        last_lr = state["last_lr"]
        groups = self.optimizer.param_groups
        if not isinstance(last_lr, list | tuple) or len(last_lr) != len(groups):
            raise ValueError(f"last_lr must be a list of {len(groups)} LR(s), got {last_lr!r}")
        lrs = [lr_as_number(f"last_lr[{i}]", x) for i, x in enumerate(last_lr)]
        restarts = self.old_format_restarts() if old else None
        if restarts:
            warnings.warn(
                f"{type(self).__name__}: this state_dict was saved by an earlier lrgym "
                f"(format 1), so {restarts}; save it again with this "
                "version for an identical resume",
                UserWarning,
                stacklevel=3,
            )
        self.last_epoch, self._step_count, self._fed_loss = last_epoch, step_count + old, fed
        self._last_lr = [
            torch.tensor(lr, dtype=g["lr"].dtype, device=g["lr"].device)
            if isinstance(g["lr"], torch.Tensor)
            else lr
            for g, lr in zip(groups, lrs, strict=True)
        ]


def require_keys(state: Any, keys: tuple[str, ...]) -> dict[str, Any]:
    """``state`` if it is a dict holding every key, else a ``ValueError`` naming them."""
    if not isinstance(state, dict):
        raise ValueError(f"state_dict must be a dict, got {type(state).__name__}")
    missing = [k for k in keys if k not in state]
    if missing:
        raise ValueError(f"state_dict is missing {missing}; pass what state_dict() returned")
    return state
