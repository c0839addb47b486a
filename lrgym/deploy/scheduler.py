"""The learned policy as a drop-in torch LR scheduler."""

from __future__ import annotations

import math
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch.optim import Optimizer

from lrgym.core.decision import DecisionPath
from lrgym.core.feedback_scheduler import (
    FeedbackLRScheduler,
    require_keys,
    require_optimizer,
    tensor_lrs_kept,
)
from lrgym.core.signals import UpdateTracker, grad_norm
from lrgym.deploy.agent import Agent, load_agent
from lrgym.io.validate import as_number, real_number, whole_number


class PolicyScheduler(FeedbackLRScheduler):
    """Let a trained agent set the learning rate, every ``decision_interval`` steps.

    An agent trained with more hyperparameters (``agent.card.hparams``, e.g. momentum
    and weight decay) moves them too, in every param group, exactly as in its
    environment (see :class:`~lrgym.core.hyperparams.HyperParamSet`; a group with weight
    decay 0 beside groups with decay is a no-decay group and stays 0).

    Follows the :class:`~lrgym.core.feedback_scheduler.FeedbackLRScheduler` contract: call
    :meth:`step` after ``optimizer.step()`` with the step's loss (``step(loss=loss)``;
    before the first ``optimizer.step()`` torch's step-order warning is given), read
    :meth:`get_last_lr` (a tensor LR stays a tensor, changed in place), checkpoint with
    :meth:`state_dict`. The state dict holds everything the decisions depend on (the
    window's losses, the update-size window's parameter snapshot and previous update as
    tensors, the signal references, the decision path), so a run saved at any step and
    resumed through ``torch.save``/``torch.load(weights_only=True)`` into a fresh
    optimizer and scheduler takes exactly the LRs of the uninterrupted run;
    :meth:`load_state_dict` refuses values it would not have written, and a state dict
    of an earlier lrgym loads with a warning that the update-size window restarts. A
    non-finite step loss is left out of its window: the agent
    decides on the window's finite losses, and holds the LR only when there are none. It
    reads gradient norm and update size from the optimizer's own parameters, and observes
    and acts through the same :class:`~lrgym.core.decision.DecisionPath` as the training
    environment.

    The first decision is made when the run starts (before any training step, from the
    initial LR, as in the environment): at construction, or, with ``eval_feedback=True``,
    at the first :meth:`observe_eval`. Inside ``SequentialLR`` (e.g. after a warmup) the
    run starts at the milestone, from the warmed-up LR; ``total_steps`` then counts the
    policy's own steps.

    Example:
        >>> scheduler = PolicyScheduler(optimizer, agent="default", total_steps=1000)
        >>> for x, y in loader:
        ...     loss = loss_fn(model(x), y)
        ...     optimizer.zero_grad(); loss.backward(); optimizer.step()
        ...     scheduler.step(loss=loss)

    Args:
        optimizer: The optimizer whose param groups' LRs the agent controls (their
            ratios are kept; observations use the first group's LR). It must carry every
            hyperparameter the agent controls (``betas`` or ``momentum`` for momentum).
        agent: An :class:`~lrgym.deploy.agent.Agent`, a shipped agent name or an agent path.
        total_steps: Optimizer steps the run will take (the agent sees progress).
        decision_interval: Optimizer steps between decisions (the env's ``k``).
        min_lr: Lower LR bound (default: the agent's).
        max_lr: Upper LR bound (default: the agent's).
        eval_feedback: If True, you call :meth:`observe_eval` after every
            ``decision_interval`` steps (and once before training) and each decision
            waits for it, exactly as in the environment. If False, decisions happen in
            :meth:`step` with the latest validation numbers you fed, if any.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        agent: Agent | str | Path = "default",
        total_steps: int = 1000,
        decision_interval: int = 25,
        min_lr: float | None = None,
        max_lr: float | None = None,
        eval_feedback: bool = False,
    ) -> None:
        require_optimizer(optimizer)
        total_steps = whole_number("total_steps", total_steps, 1)
        decision_interval = whole_number("decision_interval", decision_interval, 1)
        bounds = {
            k: real_number(k, v, above=0) for k, v in (("min_lr", min_lr), ("max_lr", max_lr))
            if v is not None
        }  # fmt: skip
        self.agent = agent if isinstance(agent, Agent) else load_agent(agent)
        self.action_map = replace(self.agent.action_map, **bounds)
        if not 0 < self.action_map.min_lr < self.action_map.max_lr:
            raise ValueError(f"need 0 < min_lr < max_lr, got {min_lr} and {max_lr}")
        self.total_steps = total_steps
        self.decision_interval = decision_interval
        self.eval_feedback = eval_feedback
        self.hparams = self.agent.hparams
        self.hparams.check_optimizer(optimizer)
        self.path = DecisionPath(self.hparams, self.action_map)
        self._params = [p for g in optimizer.param_groups for p in g["params"]]
        self._warned_no_loss = False
        super().__init__(optimizer)

    def on_start(self) -> None:
        """Start the run: reset the signals; decide now unless waiting for validation.

        Raises:
            ValueError: a param group's LR is not a positive finite number (the agent
                multiplies the LR, so it cannot start from 0).
        """
        for i, group in enumerate(self.optimizer.param_groups):
            lr = group["lr"]
            if isinstance(lr, torch.Tensor):
                lr = lr.item()
            if not (isinstance(lr, int | float) and math.isfinite(lr) and lr > 0):
                raise ValueError(
                    f"PolicyScheduler needs a positive finite LR in every param group: the "
                    f"agent multiplies it, so it cannot start from {lr!r} (group {i}); set "
                    "the optimizer's lr (e.g. the task's usual LR)"
                )
        self._updates = UpdateTracker(self._params)
        self._losses: list[float] = []
        self._val_loss: float | None = None
        self._val_metric: float | None = None
        self.decisions = 0
        self._pending = True  # the first decision is made before any training step
        self._grad_norm = math.nan  # at the last step of the pending decision's window
        if not self.eval_feedback:
            self._decide()

    @property
    def steps_done(self) -> int:
        """Optimizer steps counted since the run started."""
        return self.last_epoch

    @property
    def prev_action(self) -> float:
        """The last LR action (0 after a held decision)."""
        return self.path.prev_action

    def observe_eval(self, val_loss: float, val_metric: float | None = None) -> None:
        """Feed validation loss (and optionally a higher-is-better metric, e.g. accuracy)."""
        self._val_loss = float(val_loss)
        self._val_metric = None if val_metric is None else float(val_metric)
        if self._pending:
            self._decide()

    def step(self, epoch: Any = None, *, loss: Any = None) -> None:  # type: ignore[override]
        """Advance one optimizer step; every ``decision_interval`` steps the agent decides.

        See :meth:`FeedbackLRScheduler.step`.
        """
        if self._pending and not isinstance(epoch, int):  # an evaluation was awaited in vain
            self._decide()
        super().step(epoch, loss=loss)

    def on_step(self, loss: float | None) -> None:
        """Record the step's loss; decide at the end of a decision window."""
        # Runs after every optimizer step: kept to a few attribute updates between decisions.
        if loss is not None:
            self._losses.append(loss)
        if self.last_epoch % self.decision_interval == 0:
            self._pending = True
            # read now: a decision that waits for validation must not depend on whether
            # the gradients are still there then (a loop or a reload may clear them)
            self._grad_norm = grad_norm(self._params)
            if not self.eval_feedback:
                self._decide()

    def _decide(self) -> None:
        self._pending = False
        losses, self._losses = self._losses, []
        if not losses and self.decisions > 0 and not self._warned_no_loss:
            self._warned_no_loss = True  # once per scheduler
            warnings.warn(
                f"PolicyScheduler: no loss was fed in the last {self.decision_interval} "
                "steps, so the agent cannot decide and holds the LR. Pass each step's "
                "loss: scheduler.step(loss=loss), or scheduler.observe_loss(loss) before "
                "a plain scheduler.step()",
                UserWarning,
                stacklevel=7,  # _decide, on_step, _update_lr, torch's step, two step()s
            )
        # A non-finite step loss (e.g. one bad batch under AMP) is left out of the window;
        # the decision uses the finite ones, and only a window without any holds the LR.
        losses = [x for x in losses if math.isfinite(x)]
        if self.decisions == 0:
            obs = self.path.start(self.optimizer, self._val_loss, self._val_metric)
        elif not losses:
            self._updates.measure()  # hold the LR; restart the update window
            self.path.hold()
            return
        else:
            ratio, cosine = self._updates.measure()
            obs = self.path.observe(
                self.optimizer,
                losses,
                grad_norm=self._grad_norm,
                update_ratio=ratio,
                update_cosine=cosine,
                val_loss=self._val_loss,
                val_metric=self._val_metric,
                progress=min(self.steps_done / self.total_steps, 1.0),
            )
        with tensor_lrs_kept(self.optimizer):  # DecisionPath assigns float LRs
            self.path.apply(self.agent.act(obs), self.optimizer)
        self.decisions += 1
        self._sync_last_lr()

    def get_last_hparams(self) -> dict[str, float]:
        """Current value of every controlled hyperparameter (first group's, ``"lr"`` too)."""
        return self.path.values(self.optimizer)

    def old_format_restarts(self) -> str:
        """Format 1 lacked the update-size window."""
        return "the update-size window restarts: the next decision sees update_cosine = 0"

    def state_dict(self) -> dict[str, Any]:
        """Everything the next decisions depend on; numbers, lists and tensors only.

        Counters, last validation numbers, the window's losses, whether a decision is
        pending (and the gradient norm it will see), the no-loss warning flag, the
        decision path (previous action, signal references) and the update-size window
        (parameter snapshot and previous update, as tensors: a
        ``torch.load(weights_only=True)`` reload works).
        """
        return {
            **super().state_dict(),
            "decisions": self.decisions,
            "val_loss": self._val_loss,
            "val_metric": self._val_metric,
            "losses": list(self._losses),
            "pending": self._pending,
            "grad_norm": self._grad_norm,
            "warned_no_loss": self._warned_no_loss,
            "path": self.path.state_dict(),
            "updates": self._updates.state_dict(),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved (load the model's weights too).

        A state dict of an earlier lrgym (format 1, without the update-size window) loads
        with a warning: the update-size window restarts there.

        Raises:
            ValueError: a key is missing or a value is not what :meth:`state_dict`
                writes (the message names it); the scheduler is left unchanged.
        """
        old = self.is_old_format(state_dict)
        keys = ("decisions", "val_loss", "val_metric", "losses", "pending", "path")
        new_keys = ("warned_no_loss", "updates", "grad_norm")
        state = require_keys(state_dict, keys if old else (*keys, *new_keys))
        decisions = whole_number("decisions", state["decisions"], 0)

        def optional(key: str) -> float | None:
            value = state[key]
            return None if value is None else float(as_number(key, value))

        val_loss, val_metric = optional("val_loss"), optional("val_metric")
        if not isinstance(state["losses"], list | tuple):
            raise ValueError(f"losses must be a list of numbers, got {state['losses']!r}")
        losses = [float(as_number(f"losses[{i}]", x)) for i, x in enumerate(state["losses"])]
        grad = float(as_number("grad_norm", state.get("grad_norm", math.nan)))
        if grad < 0:
            raise ValueError(f"grad_norm must not be negative, got {grad!r}")
        flags = {k: state.get(k, False) for k in ("pending", "warned_no_loss")}
        for key, value in flags.items():
            if not isinstance(value, bool):
                raise ValueError(f"{key} must be True or False, got {value!r}")
        backup = (self.last_epoch, self._step_count, self._fed_loss, self._last_lr)
        path_backup = self.path.state_dict()
        super().load_state_dict(state)
        try:
            self.path.load_state_dict(state["path"])
            if old:
                self._updates.restart()
            else:
                self._updates.load_state_dict(state["updates"])
        except ValueError:
            self.last_epoch, self._step_count, self._fed_loss, self._last_lr = backup
            self.path.load_state_dict(path_backup)
            raise
        self.decisions = decisions
        self._val_loss, self._val_metric = val_loss, val_metric
        self._losses = losses
        self._pending, self._warned_no_loss = flags["pending"], flags["warned_no_loss"]
        self._grad_norm = grad
