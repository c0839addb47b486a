"""The learned policy as a drop-in torch LR scheduler."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from lrgym.agent import Agent, load_agent
from lrgym.signals import Feedback, SignalTracker, UpdateTracker, grad_norm


class PolicyScheduler(LRScheduler):
    """Let a trained agent set the learning rate, every ``decision_interval`` steps.

    An agent trained with more hyperparameters (``agent.card.hparams``, e.g. momentum
    and weight decay) moves them too, in every param group, exactly as in its
    environment (see :class:`~lrgym.hyperparams.HyperParamSet`; a group with weight
    decay 0 beside groups with decay is a no-decay group and stays 0).

    Follows torch's scheduler contract: call :meth:`step` after ``optimizer.step()``
    (passing the step's loss), read :meth:`get_last_lr`, checkpoint with
    :meth:`state_dict` (floats, ints and lists only, so a ``weights_only`` reload works).
    It reads gradient norm and update size from the optimizer's own parameters and
    builds observations with the same code as the training environment.

    Example:
        >>> scheduler = PolicyScheduler(optimizer, agent="default", total_steps=1000)
        >>> for x, y in loader:
        ...     loss = loss_fn(model(x), y)
        ...     optimizer.zero_grad(); loss.backward(); optimizer.step()
        ...     scheduler.step(loss)

    Args:
        optimizer: The optimizer whose param groups' LRs the agent controls (their
            ratios are kept; observations use the first group's LR). It must carry every
            hyperparameter the agent controls (``betas`` or ``momentum`` for momentum).
        agent: An :class:`~lrgym.agent.Agent`, a shipped agent name or an agent path.
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
        if total_steps < 1 or decision_interval < 1:
            raise ValueError(
                f"total_steps and decision_interval must be >= 1, got {total_steps} "
                f"and {decision_interval}"
            )
        self.agent = agent if isinstance(agent, Agent) else load_agent(agent)
        bounds = {"min_lr": min_lr, "max_lr": max_lr}
        self.action_map = replace(
            self.agent.action_map, **{k: float(v) for k, v in bounds.items() if v is not None}
        )
        if not 0 < self.action_map.min_lr < self.action_map.max_lr:
            raise ValueError(f"need 0 < min_lr < max_lr, got {min_lr} and {max_lr}")
        self.total_steps = int(total_steps)
        self.decision_interval = int(decision_interval)
        self.eval_feedback = eval_feedback
        self.hparams = self.agent.hparams
        self.hparams.check_optimizer(optimizer)
        self._params = [p for g in optimizer.param_groups for p in g["params"]]
        self._tracker = SignalTracker()
        self._updates = UpdateTracker(self._params)
        self._losses: list[float] = []
        self._val_loss: float | None = None
        self._val_metric: float | None = None
        self.prev_action = 0.0
        self.steps_done = 0
        self.decisions = 0
        self._pending = True  # the first decision is made before any training step
        super().__init__(optimizer)

    def _initial_step(self) -> None:
        # torch's base class steps once here; we decide now only without eval feedback.
        self._step_count = 0
        self._last_lr = [float(g["lr"]) for g in self.optimizer.param_groups]
        if not self.eval_feedback:
            self._decide()

    def observe_loss(self, loss: float | torch.Tensor) -> None:
        """Feed one training step's loss (if :meth:`step` is called without it)."""
        # .item() does not warn on a tensor that requires grad (float() does)
        self._losses.append(loss.item() if isinstance(loss, torch.Tensor) else float(loss))

    def observe_eval(self, val_loss: float, val_metric: float | None = None) -> None:
        """Feed validation loss (and optionally a higher-is-better metric, e.g. accuracy)."""
        self._val_loss = float(val_loss)
        self._val_metric = None if val_metric is None else float(val_metric)
        if self._pending:
            self._decide()

    def step(self, loss: float | torch.Tensor | None = None) -> None:  # type: ignore[override]
        """Advance one optimizer step; every ``decision_interval`` steps the agent decides."""
        # Runs after every optimizer step: kept to a few attribute updates between decisions.
        if self._pending:  # a decision waited for observe_eval that never came
            self._decide()
        if loss is not None:  # observe_loss, inlined
            self._losses.append(loss.item() if isinstance(loss, torch.Tensor) else float(loss))
        self._step_count += 1
        self.steps_done += 1
        self.last_epoch = self.steps_done
        if self.steps_done % self.decision_interval == 0:
            self._pending = True
            if not self.eval_feedback:
                self._decide()

    def _decide(self) -> None:
        self._pending = False
        losses, self._losses = self._losses, []
        lr = float(self.optimizer.param_groups[0]["lr"])
        if self.decisions == 0:
            obs = self._tracker.reset(lr, self._val_loss, self._val_metric)
        elif not all(map(math.isfinite, losses)):
            self._updates.measure()  # hold the LR; restart the update window
            self.prev_action = 0.0
            return
        else:
            ratio, cosine = self._updates.measure()
            obs = self._tracker.observe(
                Feedback(
                    lr=lr,
                    train_losses=losses,
                    grad_norm=grad_norm(self._params),
                    update_ratio=ratio,
                    update_cosine=cosine,
                    val_loss=self._val_loss,
                    val_metric=self._val_metric,
                    progress=min(self.steps_done / self.total_steps, 1.0),
                    prev_action=self.prev_action,
                )
            )
        if self.hparams.extras:
            obs = np.concatenate([obs, self.hparams.observe(self.optimizer)])
        action = self.agent.act(obs)
        if self.hparams.extras:
            actions = np.asarray(action, dtype=np.float64).reshape(-1)
            self.hparams.apply(self.optimizer, actions[1:])
            action = float(actions[0])
        for group in self.optimizer.param_groups:
            group["lr"] = self.action_map.apply(float(group["lr"]), action)
        self.prev_action = max(-1.0, min(1.0, action))
        self.decisions += 1
        self._last_lr = [float(g["lr"]) for g in self.optimizer.param_groups]

    def get_lr(self) -> list[float]:
        """The current LRs (decisions happen in :meth:`step`, not here)."""
        return [float(g["lr"]) for g in self.optimizer.param_groups]

    def get_last_hparams(self) -> dict[str, float]:
        """Current value of every controlled hyperparameter (first group's, ``"lr"`` too)."""
        lr = float(self.optimizer.param_groups[0]["lr"])
        return {"lr": lr, **self.hparams.values(self.optimizer)}

    def state_dict(self) -> dict[str, Any]:
        """Counters, previous action, last validation numbers and the signal references.

        Plain floats/ints/lists only. The update-size window restarts after a reload.
        """
        return {
            "steps_done": self.steps_done,
            "decisions": self.decisions,
            "step_count": self._step_count,
            "prev_action": self.prev_action,
            "val_loss": self._val_loss,
            "val_metric": self._val_metric,
            "losses": list(self._losses),
            "pending": self._pending,
            "last_lr": list(self._last_lr),
            "tracker": self._tracker.state_dict(),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved."""
        self.steps_done = int(state_dict["steps_done"])
        self.last_epoch = self.steps_done
        self.decisions = int(state_dict["decisions"])
        self._step_count = int(state_dict["step_count"])
        self.prev_action = float(state_dict["prev_action"])
        self._val_loss = state_dict["val_loss"]
        self._val_metric = state_dict["val_metric"]
        self._losses = [float(x) for x in state_dict["losses"]]
        self._pending = bool(state_dict["pending"])
        self._last_lr = [float(x) for x in state_dict["last_lr"]]
        self._tracker.load_state_dict(state_dict["tracker"])
        self._updates = UpdateTracker(self._params)
