"""Gradient boosting as a Trainee: one boosting round is one step, ``eta`` is the LR."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import partial
from typing import Any, ClassVar

import numpy as np
import torch
import xgboost as xgb

from lrgym.backends.torch_trainee import accuracy, classification_metrics, regression_metrics
from lrgym.core.task import ArraySplits, Backend, DataFactory, Task, TaskInfo
from lrgym.core.trainee import EvalReport, StepHook, Trainee, TrainReport

BOOSTER_HPARAMS: dict[str, type] = {"max_depth": int, "subsample": float}
"""Booster parameters :class:`EtaFromOptimizer` also reads from the proxy optimizer's
param group each round, when the group carries them (see :func:`proxy_optimizer`)."""


def proxy_optimizer(lr: float, **booster_params: float) -> torch.optim.Optimizer:
    """A parameter-free torch optimizer that carries a learning rate (and booster params).

    It lets every ``torch.optim.lr_scheduler`` (and any lrgym controller) drive a
    non-torch learner: the learner reads ``param_groups[0]["lr"]`` before each step.

    Args:
        lr: The learning rate (XGBoost's ``eta``).
        **booster_params: Keys of :data:`BOOSTER_HPARAMS` (``max_depth=3``,
            ``subsample=0.8``) to carry in the param group too, so a multi-hyperparameter
            agent can move them; XGBoost reads them each round like ``eta``.
    """
    unknown = sorted(set(booster_params) - set(BOOSTER_HPARAMS))
    if unknown:
        raise ValueError(
            f"proxy_optimizer carries only {', '.join(BOOSTER_HPARAMS)}, not {', '.join(unknown)}"
        )
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    optimizer.param_groups[0].update({k: BOOSTER_HPARAMS[k](v) for k, v in booster_params.items()})
    return optimizer


class EtaFromOptimizer(xgb.callback.TrainingCallback):
    """XGBoost callback that sets ``eta`` from a (proxy) torch optimizer every round.

    Whatever moves the optimizer's LR (a ``torch.optim.lr_scheduler``, a learned
    policy) thereby schedules XGBoost's eta; booster parameters of
    :data:`BOOSTER_HPARAMS` that the param group carries are set the same way. After
    each round it steps the optimizer (a no-op on the parameter-free proxy, but it keeps
    torch's scheduler bookkeeping honest) and calls ``on_step(train_loss)``.

    Args:
        optimizer: Optimizer whose first group's LR becomes ``eta``.
        loss_key: ``(data_name, metric_name)`` in ``evals_log`` to report as loss.
        on_step: Optional hook called with the round's training loss.
        square: Report the metric squared (``rmse`` → MSE, matching torch's MSE loss).
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        loss_key: tuple[str, str],
        on_step: StepHook | None = None,
        square: bool = False,
    ) -> None:
        super().__init__()
        self.optimizer = optimizer
        self.loss_key = loss_key
        self.on_step = on_step
        self.square = square
        self.losses: list[float] = []
        self._model: Any = None
        self._applied: dict[str, float | int] = {}

    def before_iteration(self, model: Any, epoch: int, evals_log: dict) -> bool:
        group = self.optimizer.param_groups[0]
        wanted = {"eta": float(group["lr"])}
        wanted.update({k: kind(group[k]) for k, kind in BOOSTER_HPARAMS.items() if k in group})
        if model is not self._model:  # a new booster (xgb.train copies it to continue)
            self._model, self._applied = model, {}
        # only what changed: every set_param makes XGBoost reconfigure the learner at the
        # next round, which more than doubles the cost of a small tree's round
        for key, value in wanted.items():
            if self._applied.get(key) != value:
                model.set_param(key, value)
                self._applied[key] = value
        return False

    def after_iteration(self, model: Any, epoch: int, evals_log: dict) -> bool:
        data, metric = self.loss_key
        loss = float(evals_log[data][metric][-1])
        loss = loss * loss if self.square else loss
        self.losses.append(loss)
        self.optimizer.step()
        if self.on_step is not None:
            self.on_step(loss)
        return not math.isfinite(loss)  # stop boosting once it diverged


class XGBoostTrainee(Trainee):
    """Boosting rounds on in-memory arrays; ``train(k)`` adds ``k`` trees.

    Args:
        splits: Data, already split.
        objective: ``"binary:logistic"``, ``"multi:softprob"`` or ``"reg:squarederror"``.
        lr: Initial ``eta``.
        seed: XGBoost's seed (row and column subsampling).
        params: Extra booster parameters (``max_depth``, ``subsample`` ...).
    """

    def __init__(
        self,
        splits: ArraySplits,
        objective: str,
        lr: float,
        seed: int,
        params: dict[str, Any] | None = None,
    ) -> None:
        self.objective = objective
        self.classification = not objective.startswith("reg:")
        labels = [y for y in (splits.y_train, splits.y_val, splits.y_test) if len(y)]
        # classes from every split: a small table's training rows may miss the last one
        self.n_classes = int(max(np.max(y) for y in labels)) + 1 if self.classification else 0
        if objective == "binary:logistic" and self.n_classes > 2:
            raise ValueError(  # XGBoost itself fails with a C++ stack trace
                f"objective binary:logistic takes labels 0 and 1, but the training labels "
                f"go up to {self.n_classes - 1}; use multi:softprob or a binary target"
            )
        self.metric = {"binary:logistic": "logloss", "multi:softprob": "mlogloss"}.get(
            objective, "rmse"
        )
        self.params: dict[str, Any] = {
            "objective": objective,
            "eval_metric": self.metric,
            "seed": int(seed),
            "nthread": 1,
            "tree_method": "hist",
            **(params or {}),
        }
        if objective == "multi:softprob":
            self.params["num_class"] = self.n_classes
        self._dmatrix = {  # one thread, as training: the default (all cores) takes ~50x longer
            name: xgb.DMatrix(x, label=y, nthread=1)
            for name, x, y in (
                ("train", splits.x_train, splits.y_train),
                ("val", splits.x_val, splits.y_val),
                ("test", splits.x_test, splits.y_test),
            )
        }
        self._labels = {"val": splits.y_val, "test": splits.y_test}
        # max_depth and subsample ride in the proxy's param group (XGBoost's defaults
        # if unset), where a multi-hyperparameter agent moves them like eta.
        self.optimizer = proxy_optimizer(
            lr,
            max_depth=self.params.get("max_depth", 6),
            subsample=self.params.get("subsample", 1.0),
        )
        self.booster: xgb.Booster | None = None

    def train(self, steps: int, on_step: StepHook | None = None) -> TrainReport:
        """Add ``steps`` boosting rounds with eta read from :attr:`optimizer` each round."""
        callback = EtaFromOptimizer(
            self.optimizer, ("train", self.metric), on_step, square=not self.classification
        )
        dtrain = self._dmatrix["train"]
        if self.booster is None:  # every split cached: predictions then add the new trees only
            self.booster = xgb.Booster(self.params, list(self._dmatrix.values()))
        # The rounds of `xgb.train` one by one, on one booster: `xgb.train(xgb_model=...)`
        # copies the whole booster at every call, a cost that grows with the trees
        # (about half of a decision's time on the built-in tasks); same trees, same losses.
        evals_log: dict[str, dict[str, list[float]]] = {"train": {self.metric: []}}
        for _ in range(steps):
            iteration = self.booster.num_boosted_rounds()
            callback.before_iteration(self.booster, iteration, evals_log)
            self.booster.update(dtrain, iteration)
            score = self.booster.eval_set([(dtrain, "train")], iteration)
            evals_log["train"][self.metric].append(float(score.rsplit(":", 1)[1]))
            if callback.after_iteration(self.booster, iteration, evals_log):
                break
        return TrainReport(len(callback.losses), tuple(callback.losses))

    def _predict(self, split: str) -> np.ndarray:
        if self.booster is None:  # no trees yet: the base score is the prediction
            n = self._labels[split].shape[0]
            if self.classification:
                return np.full((n, self.n_classes), 1.0 / self.n_classes)
            return np.zeros(n)
        pred = self.booster.predict(self._dmatrix[split])
        if self.objective == "binary:logistic":
            pred = np.stack([1.0 - pred, pred], axis=1)
        return pred

    def evaluate(self, split: str = "val") -> EvalReport:
        """Log-loss and accuracy/macro-F1, or MSE and R²/MAE/RMSE, on ``split``."""
        if split not in ("val", "test"):
            raise ValueError(f"split must be 'val' or 'test', got {split!r}")
        pred = torch.as_tensor(self._predict(split), dtype=torch.float64)
        y = torch.as_tensor(self._labels[split])
        if self.classification:
            y = y.long()
            prob = pred.clamp(1e-7, 1.0)
            loss = float(-prob.gather(1, y[:, None]).log().mean())
            labels, y_np = pred.argmax(dim=1).numpy(), y.numpy()
            metrics = partial(classification_metrics, labels, y_np, self.n_classes)
            return EvalReport(loss, accuracy(labels, y_np), metrics)  # macro-F1 when read
        y = y.double()
        metrics = regression_metrics(pred, y)
        loss = metrics["rmse"] ** 2
        return EvalReport(loss, metrics["r2"], metrics)


@dataclass
class XGBoostTask(Task):
    """A task trained by :class:`XGBoostTrainee`; the agent controls ``eta`` per round.

    Attributes:
        info: Metadata, budget (rounds) and target.
        data: Builds the data splits from an rng.
        objective: XGBoost objective.
        params: Extra booster parameters.
    """

    backend: ClassVar[Backend] = "xgboost"

    info: TaskInfo
    data: DataFactory
    objective: str = "binary:logistic"
    params: dict[str, Any] = field(default_factory=dict)

    def build(self, seed: int, lr: float) -> XGBoostTrainee:
        """Data split and XGBoost's own seed follow from ``seed``."""
        data_seq, xgb_seq = np.random.SeedSequence(int(seed)).spawn(2)
        splits = self.data(np.random.default_rng(data_seq))
        xgb_seed = int(xgb_seq.generate_state(1)[0] % (2**31 - 1))
        return XGBoostTrainee(splits, self.objective, lr, xgb_seed, self.params)
