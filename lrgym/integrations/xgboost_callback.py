"""The learned scheduler as an XGBoost callback: it sets ``eta`` every boosting round.

Works with the native API and the scikit-learn estimators::

    callback = XGBoostPolicyCallback(total_rounds=200, decision_interval=10)
    booster = xgb.train(params, dtrain, num_boost_round=200,
                        evals=[(dtrain, "train"), (dval, "val")], callbacks=[callback])

    model = xgb.XGBClassifier(n_estimators=200, learning_rate=0.1,
                              eval_metric=["logloss", "error"], callbacks=[callback])
    model.fit(X_train, y_train, eval_set=[(X_train, y_train), (X_val, y_val)])

One boosting round is one step and ``eta`` is the learning rate, exactly as in lrgym's
XGBoost tasks: a :class:`~lrgym.PolicyScheduler` drives a parameter-free proxy
optimizer (:func:`lrgym.backends.xgb_trainee.proxy_optimizer`), and
:class:`lrgym.backends.xgb_trainee.EtaFromOptimizer` copies its LR into the booster before each
round. After each round the callback reads ``evals_log``: the training loss from the
first evaluation set, the validation loss and metric from the last one (when there are
two or more), feeds them to the scheduler and steps it. An agent trained to control
``max_depth`` and ``subsample`` too (``lrgym train --config
agents/recipes/multi-hp-xgb.yaml``) sets them the same way each round, starting from
the booster's own values.

Needs no extra: XGBoost is a core dependency of lrgym.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb

from lrgym.backends.xgb_trainee import BOOSTER_HPARAMS, EtaFromOptimizer, proxy_optimizer
from lrgym.deploy.agent import Agent, load_agent
from lrgym.deploy.scheduler import PolicyScheduler

DEFAULT_ETA = 0.3
"""XGBoost's own default ``eta``."""

XGBOOST_DEFAULTS: dict[str, float] = {"max_depth": 6, "subsample": 1.0}
"""XGBoost's own defaults of the booster parameters an agent may control."""

MAX_ETA = 1.0
"""Default upper bound on ``eta``: above 1 every tree overshoots its own Newton step."""

HIGHER_IS_BETTER = ("auc", "aucpr", "ndcg", "map", "pre", "r2", "r2_score", "accuracy_score")
"""Evaluation metrics that are scores already (fed as the validation metric as they are);
``r2``/``r2_score``/``accuracy_score`` are the names custom metrics usually get."""

ERROR_RATES = ("error", "merror")
"""Evaluation metrics fed as ``1 - value`` (accuracy)."""

AUTO_METRICS = ("error", "merror", "r2", "r2_score", "accuracy_score", "auc", "aucpr")
"""What ``val_metric="auto"`` looks for, in this order."""


def _is_score(name: str) -> bool:
    base = name.split("@")[0]
    return base in HIGHER_IS_BETTER or base in ERROR_RATES


def _find(config: Any, key: str) -> Any:
    """The first value under ``key`` in a nested JSON config (depth first), or None."""
    if isinstance(config, Mapping):
        if key in config:
            return config[key]
        for value in config.values():
            found = _find(value, key)
            if found is not None:
                return found
    return None


def booster_eta(model: xgb.Booster) -> float | None:
    """The ``eta`` a booster is configured with (None if its config has none)."""
    value = _find(json.loads(model.save_config()), "eta")
    if value is None:
        return None
    return float(str(np.float32(value)))  # XGBoost stores float32: 0.1 reads "0.100000001"


def booster_params(model: xgb.Booster, names: Sequence[str]) -> dict[str, float]:
    """The booster's values of the :data:`~lrgym.backends.xgb_trainee.BOOSTER_HPARAMS` in ``names``
    (XGBoost's defaults where its config has none)."""
    config = json.loads(model.save_config())
    values = {}
    for name in names:
        if name in BOOSTER_HPARAMS:
            value = _find(config, name)
            values[name] = BOOSTER_HPARAMS[name](
                float(value) if value is not None else XGBOOST_DEFAULTS[name]
            )
    return values


class XGBoostPolicyCallback(EtaFromOptimizer):
    """Sets XGBoost's ``eta`` each round from a learned policy.

    Args:
        total_rounds: Boosting rounds of the run (``num_boost_round`` /
            ``n_estimators``); the agent sees progress through them.
        agent: An :class:`~lrgym.deploy.agent.Agent`, a shipped agent name or an agent path.
        decision_interval: Rounds between decisions (lrgym's XGBoost tasks use 10).
        eta: Initial ``eta``; None reads it from the booster (``params["eta"]`` or the
            estimator's ``learning_rate``; XGBoost's default 0.3 if unset).
        min_lr: Lower ``eta`` bound (default: the agent's).
        max_lr: Upper ``eta`` bound (default: the agent's, at most :data:`MAX_ETA`).
        train_set: Name in ``evals_log`` of the set whose metric is the training loss
            (default: the first evaluation set).
        val_set: Name of the validation set (default: the last evaluation set when there
            are two or more; none otherwise).
        loss_metric: Metric read as the loss (default: the first evaluation metric that
            is not a score such as ``error`` or ``auc``). ``rmse`` is squared, so the
            scheduler sees mean squared error as the agent did in meta-training.
        val_metric: Higher-is-better validation metric: ``"auto"`` takes the first of
            :data:`AUTO_METRICS` the validation set reports (``error`` and ``merror`` as
            ``1 - value``, i.e. accuracy; for regression add a custom R² metric, e.g.
            ``eval_metric=["rmse", sklearn.metrics.r2_score]``); a metric name picks that
            one; None feeds the validation loss only.

    Attributes:
        scheduler: The run's :class:`~lrgym.PolicyScheduler` (made anew in each
            training run, so one callback serves repeated ``fit`` calls).
        etas: ``eta`` used in each round of the last run.
        hparams: Every controlled booster parameter in each round of the last run
            (``{"eta": ..., "max_depth": ..., ...}``).
        losses: Training loss of each round of the last run.

    A round whose training loss is NaN or infinite ends boosting without an error, as in
    lrgym's XGBoost tasks: later rounds cannot repair a booster whose predictions have
    diverged. A non-finite validation loss is not fed (the previous one stays).
    """

    def __init__(
        self,
        total_rounds: int,
        agent: Agent | str | Path = "default",
        decision_interval: int = 10,
        eta: float | None = None,
        min_lr: float | None = None,
        max_lr: float | None = None,
        train_set: str | None = None,
        val_set: str | None = None,
        loss_metric: str | None = None,
        val_metric: str | None = "auto",
    ) -> None:
        if total_rounds < 1 or decision_interval < 1:
            raise ValueError(
                f"total_rounds and decision_interval must be >= 1, got {total_rounds} "
                f"and {decision_interval}"
            )
        self.agent = agent if isinstance(agent, Agent) else load_agent(agent)
        self.total_rounds = int(total_rounds)
        self.decision_interval = int(decision_interval)
        self.eta = eta
        self.min_lr, self.max_lr = min_lr, max_lr
        self._agent_max = self.agent.action_map.max_lr
        self.train_set, self.val_set = train_set, val_set
        self.loss_metric, self.val_metric = loss_metric, val_metric
        self.scheduler: PolicyScheduler | None = None
        self.etas: list[float] = []
        self.hparams: list[dict[str, float]] = []
        super().__init__(proxy_optimizer(eta or DEFAULT_ETA), loss_key=("", ""))
        self._resolved = False

    def before_training(self, model: xgb.Booster) -> xgb.Booster:
        """Start a fresh scheduler at the initial ``eta``."""
        eta = self.eta if self.eta is not None else booster_eta(model) or DEFAULT_ETA
        self.optimizer = proxy_optimizer(eta, **booster_params(model, self.agent.card.hparams))
        self.scheduler = PolicyScheduler(
            self.optimizer,
            self.agent,
            total_steps=self.total_rounds,
            decision_interval=self.decision_interval,
            min_lr=self.min_lr,
            max_lr=self.max_lr if self.max_lr is not None else min(self._agent_max, MAX_ETA),
        )
        self.on_step = self._step_scheduler
        self.losses, self.etas, self.hparams = [], [], []
        self._resolved = False
        return model

    def _step_scheduler(self, loss: float) -> None:
        self.scheduler.step(loss=loss)

    def before_iteration(self, model: xgb.Booster, epoch: int, evals_log: dict) -> bool:
        group = self.optimizer.param_groups[0]
        self.etas.append(float(group["lr"]))
        booster = {k: BOOSTER_HPARAMS[k](group[k]) for k in BOOSTER_HPARAMS if k in group}
        self.hparams.append({"eta": float(group["lr"]), **booster})
        return super().before_iteration(model, epoch, evals_log)

    def _resolve(self, evals_log: Mapping[str, Mapping[str, Any]]) -> None:
        names = list(evals_log)
        if not names:
            raise ValueError(
                "XGBoostPolicyCallback reads the training loss from the evaluation log, which "
                "is empty: pass evals=[(dtrain, 'train'), (dval, 'val')] to xgb.train, or "
                "eval_set=[(X_train, y_train), (X_val, y_val)] to fit()"
            )
        train = self.train_set or names[0]
        val = self.val_set or (names[-1] if len(names) > 1 else None)
        for name in (train, val):
            if name is not None and name not in evals_log:
                raise ValueError(f"no evaluation set {name!r} in the evaluation log ({names})")
        metrics = list(evals_log[train])
        loss = self.loss_metric or next((m for m in metrics if not _is_score(m)), None)
        if loss is None or loss not in metrics:
            raise ValueError(
                f"no loss metric {loss!r} among the evaluation metrics {metrics}: add one to "
                "eval_metric (e.g. 'logloss' or 'rmse') or pass loss_metric="
            )
        score = self.val_metric
        if val is not None and score == "auto":
            score = next((m for m in AUTO_METRICS if m in evals_log[val]), None)
        elif val is not None and score is not None and score not in evals_log[val]:
            raise ValueError(f"no metric {score!r} for {val!r} in the evaluation log")
        self.loss_key = (train, loss)
        self.square = loss == "rmse"
        self._val = val
        self._score = None if val is None or score == "auto" else score
        self._resolved = True

    def _loss(self, data: str, metric: str, evals_log: Mapping) -> float:
        value = float(evals_log[data][metric][-1])
        return value * value if metric == "rmse" else value

    def after_iteration(self, model: xgb.Booster, epoch: int, evals_log: dict) -> bool:
        """Feed this round's validation numbers, then its training loss (which steps)."""
        if not self._resolved:
            self._resolve(evals_log)
        if self._val is not None:
            val_loss = self._loss(self._val, self.loss_key[1], evals_log)
            metric = None
            if self._score is not None:
                metric = float(evals_log[self._val][self._score][-1])
                if self._score.split("@")[0] in ERROR_RATES:
                    metric = 1.0 - metric
            if math.isfinite(val_loss):
                assert self.scheduler is not None
                self.scheduler.observe_eval(val_loss, metric)
        return super().after_iteration(model, epoch, evals_log)
