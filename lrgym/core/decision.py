"""The one decision path shared by the training environment and the deployed scheduler.

:class:`DecisionPath` owns everything between a run's feedback and its hyperparameters:
the signal references (:class:`~lrgym.core.signals.SignalTracker`), the extra
hyperparameters' features and moves (:class:`~lrgym.core.hyperparams.HyperParamSet`) and the
LR mapping (:class:`~lrgym.core.actions.LogLRAction`). :class:`~lrgym.core.env.LRControlEnv` and
:class:`~lrgym.deploy.scheduler.PolicyScheduler` both call it and neither builds an observation
or applies an action itself, so what an agent saw and did in meta-training is what it
sees and does in deployment, by construction.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from torch.optim import Optimizer

from lrgym.core.actions import GUARD_RULES, LogLRAction
from lrgym.core.guard import HarmGuard
from lrgym.core.hyperparams import HyperParamSet
from lrgym.core.signals import Feedback, SignalTracker


class DecisionPath:
    """Observations from a run's feedback, and actions onto its optimizer.

    Call :meth:`start` once when the run starts, then alternate :meth:`apply` (the
    agent's action) and :meth:`observe` (feedback of the chunk trained since).

    ``start(..., val_every=n)`` shows the agent validation feedback only at every n-th
    decision (the start counts as decision 0) and the latest shown values in between, as
    a user's loop that validates every n decisions does; ``val_every=0`` never shows
    any. Meta-training draws it per episode so that the deployed agent does not depend
    on how often its user validates; the deployed scheduler shows what it is fed (1).

    Args:
        hparams: The controlled hyperparameters (action dimensions), ``"lr"`` first.
        action_map: How action dimension 0 changes the LR.
    """

    def __init__(self, hparams: HyperParamSet, action_map: LogLRAction) -> None:
        self.hparams = hparams
        self.action_map = action_map
        self.tracker = SignalTracker()
        self.prev_action = 0.0
        self.val_every = 1
        self._decisions = 0
        self._shown: tuple[float | None, float | None] = (None, None)
        self.guard = (
            HarmGuard(**{rule: getattr(action_map, rule) for rule in GUARD_RULES})
            if action_map.guard
            else None
        )
        self._progress = 0.0  # the run's progress at the last observation
        self._base = 0.0  # log2 of the base schedule at the last applied decision
        self._residual = 0.0  # log2 of the first group's LR over the base, at that decision

    @property
    def size(self) -> int:
        """Length of an observation: the standard features, then one per extra."""
        return self.tracker.size + len(self.hparams.extras)

    @staticmethod
    def lr(optimizer: Optimizer) -> float:
        """The LR observations use: the first param group's."""
        return float(optimizer.param_groups[0]["lr"])

    def start(
        self,
        optimizer: Optimizer,
        val_loss: float | None = None,
        val_metric: float | None = None,
        *,
        val_every: int = 1,
    ) -> np.ndarray:
        """Start a run at the optimizer's current LR; returns the first observation.

        Args:
            optimizer: The run's optimizer.
            val_loss: Validation loss before training (None if unknown).
            val_metric: Validation metric before training (None if unknown).
            val_every: Show validation feedback at every n-th decision (0: never).
        """
        if isinstance(val_every, bool) or not isinstance(val_every, int) or val_every < 0:
            raise ValueError(f"val_every must be a whole number >= 0, got {val_every!r}")
        self.prev_action = 0.0
        self.val_every = val_every
        self._decisions = 0
        self._shown = (val_loss, val_metric) if val_every else (None, None)
        self._progress = 0.0
        self._base = self.action_map.base_log2(0.0)
        self._residual = _log2(self.lr(optimizer)) - self._base
        if self.guard is not None:
            self.guard.start(self._residual, self._shown[0])
        return self._with_hparams(self.tracker.reset(self.lr(optimizer), *self._shown), optimizer)

    def observe(
        self,
        optimizer: Optimizer,
        train_losses: Sequence[float],
        *,
        grad_norm: float = math.nan,
        update_ratio: float = math.nan,
        update_cosine: float = math.nan,
        val_loss: float | None = None,
        val_metric: float | None = None,
        progress: float = 0.0,
    ) -> np.ndarray:
        """The observation after a chunk trained at the optimizer's current LR.

        Args:
            optimizer: The run's optimizer (LR and extra hyperparameters are read here).
            train_losses: Training loss of every step in the chunk.
            grad_norm: Gradient norm at the chunk's last step (NaN if none).
            update_ratio: ``|Δθ| / |θ|`` over the chunk (NaN if unknown).
            update_cosine: Cosine of this and the previous chunk's update (NaN if unknown).
            val_loss: Latest validation loss (None if none yet).
            val_metric: Latest validation metric (None if none yet).
            progress: Fraction of the step budget done, in [0, 1].
        """
        self._decisions += 1
        if self.val_every and self._decisions % self.val_every == 0:
            self._shown = (val_loss, val_metric)
        val_loss, val_metric = self._shown
        self._progress = progress
        if self.guard is not None:
            self.guard.observe(self._residual, train_losses, val_loss)
        feedback = Feedback(
            lr=self.lr(optimizer),
            train_losses=train_losses,
            grad_norm=grad_norm,
            update_ratio=update_ratio,
            update_cosine=update_cosine,
            val_loss=val_loss,
            val_metric=val_metric,
            progress=progress,
            prev_action=self.prev_action,
        )
        return self._with_hparams(self.tracker.observe(feedback), optimizer)

    def apply(self, action: float | Sequence[float] | np.ndarray, optimizer: Optimizer) -> None:
        """Move the optimizer's hyperparameters by one action.

        Dimension 0 multiplies every param group's LR by the same factor (their ratios are
        kept, up to the LR bounds): the action's change (``action_map.step_at`` octaves
        at most), the base schedule's change since the last decision, and whatever the
        :class:`~lrgym.core.guard.HarmGuard` allows, if the action map has one. Further
        dimensions move the extra hyperparameters. Each value is clipped to ``[-1, 1]``;
        a non-finite value counts as 0 (hold).

        Raises:
            ValueError: ``action`` does not have one value per controlled hyperparameter.
        """
        actions = np.asarray(action, dtype=np.float64).reshape(-1).tolist()
        if len(actions) != len(self.hparams):
            raise ValueError(
                f"action must have {len(self.hparams)} value(s), one per hyperparameter "
                f"{list(self.hparams.names)}, got shape {np.shape(action)}"
            )
        # plain floats from here: per decision, NumPy scalar ops cost more than the work
        actions = [v if math.isfinite(v) else 0.0 for v in actions]
        a = actions[0]
        amap = self.action_map
        change = max(-1.0, min(1.0, a)) * amap.step_at(self._decisions)
        base = amap.base_log2(self._progress)
        if self.guard is not None:
            exempt = self._decisions < amap.early_decisions
            current = _log2(self.lr(optimizer)) - self._base
            change = self.guard.limit(current, current + change, exempt) - current
        factor = 2.0 ** (change + base - self._base)
        for group in optimizer.param_groups:
            group["lr"] = amap.clip(float(group["lr"]) * factor)
        self._base = base
        self._residual = _log2(self.lr(optimizer)) - base
        if self.hparams.extras:
            self.hparams.apply(optimizer, actions[1:])
        self.prev_action = max(-1.0, min(1.0, a))

    def hold(self) -> None:
        """Record that no action was taken (the next observation's previous action is 0)."""
        self.prev_action = 0.0

    def values(self, optimizer: Optimizer) -> dict[str, float]:
        """Current value of every controlled hyperparameter (first group's, ``"lr"`` too)."""
        return {"lr": self.lr(optimizer), **self.hparams.values(optimizer)}

    def state_dict(self) -> dict[str, Any]:
        """Previous action and signal references, as plain numbers."""
        state = {"prev_action": self.prev_action, "tracker": self.tracker.state_dict()}
        # the base schedule's and the guard's references (absent for a plain action map)
        amap = self.action_map
        if amap.base != "constant" or self.guard is not None or amap.early_decisions > 0:
            state["schedule"] = {
                "decisions": self._decisions,
                "progress": self._progress,
                "base": self._base,
                "residual": self._residual,
            }
        if self.guard is not None:
            state["guard"] = self.guard.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned.

        Raises:
            ValueError: a key is missing or a value is out of range (nothing is changed).
        """
        from lrgym.io.validate import real_number

        if not isinstance(state, dict) or not {"prev_action", "tracker"} <= set(state):
            raise ValueError(f"path state must hold 'prev_action' and 'tracker', got {state!r}")
        prev = real_number("path.prev_action", state["prev_action"], -1.0, 1.0)
        schedule = state.get("schedule")
        if schedule is not None:
            if not isinstance(schedule, dict) or set(schedule) != {
                "decisions", "progress", "base", "residual"
            }:  # fmt: skip
                raise ValueError(f"path state 'schedule' is malformed: {schedule!r}")
            schedule = {k: real_number(f"path.schedule.{k}", v) for k, v in schedule.items()}
        if self.guard is not None:
            self.guard.load_state_dict(state.get("guard"))
        self.tracker.load_state_dict(state["tracker"])
        self.prev_action = prev
        if schedule is not None:
            self._decisions = int(schedule["decisions"])
            self._progress, self._base = schedule["progress"], schedule["base"]
            self._residual = schedule["residual"]

    def _with_hparams(self, obs: np.ndarray, optimizer: Optimizer) -> np.ndarray:
        """``obs`` followed by the extra hyperparameters' features (if any)."""
        if not self.hparams.extras:
            return obs
        return np.concatenate([obs, self.hparams.observe(optimizer)])


def _log2(lr: float) -> float:
    """log2 of a positive LR (floored at 1e-30, below any LR bound)."""
    return math.log2(max(lr, 1e-30))
