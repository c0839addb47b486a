"""What every framework callback does with a PolicyScheduler: per-step loss, evaluations."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import torch

from lrgym.deploy.scheduler import PolicyScheduler


class PolicyFeed:
    """Mixin: collects a step's micro-batch losses and feeds losses and evaluations.

    Subclasses set ``scheduler`` (once known), ``metric`` (or None) and call
    :meth:`_init_feed` in ``__init__``.
    """

    scheduler: PolicyScheduler | None
    metric: str | None

    def _init_feed(self) -> None:
        self._step_losses: list[torch.Tensor] = []
        self._warned: set[str] = set()

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            warnings.warn(message, RuntimeWarning, stacklevel=3)

    def _flush_step_loss(self) -> None:
        """Feed the mean of the losses collected since the last optimizer step."""
        if self._step_losses and self.scheduler is not None:
            losses, self._step_losses = self._step_losses, []
            loss = losses[0] if len(losses) == 1 else torch.stack(losses).float().mean()
            self.scheduler.observe_loss(loss)

    def _feed_eval(
        self, metrics: Mapping[str, Any], loss_key: str, where: str, hint: str = ""
    ) -> None:
        """Feed ``metrics[loss_key]`` and ``metrics[self.metric]``; warn once for missing keys."""
        name = type(self).__name__
        if loss_key not in metrics:
            self._warn_once(
                "loss",
                f"{name}: no {loss_key!r} {where} ({sorted(metrics)}); {hint}"
                "the scheduler gets no validation numbers.",
            )
            return
        value = None
        if self.metric is not None:
            if self.metric in metrics:
                value = float(metrics[self.metric])
            else:
                self._warn_once(
                    "metric",
                    f"{name}: no {self.metric!r} {where} ({sorted(metrics)}); "
                    "feeding the validation loss only.",
                )
        assert self.scheduler is not None
        self.scheduler.observe_eval(float(metrics[loss_key]), value)
