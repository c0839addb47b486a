"""A learned LR predictor (the plan's "ALRS"): an MLP maps recent metrics to the next LR.

At every validation (an "epoch" of the plan), a small network (2 hidden layers of 64
ReLU units, linear output) reads :data:`PREDICTOR_FEATURES`, built from the run's recent
metrics by :class:`MetricHistory`, and predicts the change of the LR for the next
evaluation interval, ``log10(lr_next / lr)``, clipped to ``[-1, 1]`` (at most ×10 or
÷10 per decision).

**Supervised target (the choice made here).** Training data are logged runs: the
``runs.csv``/``curves.csv`` that ``lrgym compare`` writes, on *meta-train* tasks only.
Runs of the same task and seed start from the same data split and initialisation and
differ only in their schedule and initial LR. At every evaluation ``s`` of such a group,
the *leader* is the run with the lowest validation loss at the group's next evaluation
``s'``; the target for every run of the group at ``s`` is
``clip(log10(lr_leader(s) / lr_run(s)), -1, 1)``: move towards the LR that the
best-performing schedule used over ``(s, s']``. Because groups pool every initial LR, a
run stuck at a tiny LR learns to raise it and a run blowing up learns to cut it.
(Look-ahead probes, the plan's alternative, would need checkpoints of every run; logged
runs need nothing beyond what the harness already writes.)

**Stability.** :func:`lr_stability` is the mean ``|Δ log10 LR|`` between consecutive
evaluations of a run, the variation of the predicted LR the plan asks for (it applies to
any controller's LR trace, so it can be compared with the static schedules').
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from lrgym._atomic import atomic_path
from lrgym.scheduler_controller import SchedulerController
from lrgym.signals import LOSS_FLOOR, OBS_BOUND

PREDICTOR_FEATURES: tuple[str, ...] = (
    "log_lr",  # (log10(lr) + 3) / 2: about -1 at 1e-5, +1 at 1e-1
    "log_lr_ratio",  # ln(lr / initial lr)
    "last_lr_change",  # log10(lr / lr at the previous evaluation)
    "log_train_loss_ratio",  # ln(mean train loss over the interval / initial val loss)
    "train_loss_slope",  # ln(train loss / previous interval's train loss)
    "log_val_loss_ratio",  # ln(val loss / initial val loss)
    "val_loss_slope",  # ln(val loss / previous val loss)
    "val_metric",  # headline validation metric, clipped to [-1, 1]
    "val_metric_gap",  # val metric minus the best so far (<= 0)
    "progress",  # optimizer steps done / total steps
)
"""What the predictor sees at each evaluation; all scale-free."""

FORMAT = "lrgym-lr-predictor"
FORMAT_VERSION = 1
"""Saved predictors carry this format name and version; loading checks both."""

MAX_LOG10_CHANGE = 1.0
"""Largest |log10 LR change| per decision (targets are clipped to it, predictions too)."""

HIDDEN = (64, 64)
"""Hidden layer widths of the predictor network."""


def _log_floor(x: float) -> float:
    return math.log(max(x, LOSS_FLOOR))


def _bounded(x: float) -> float:
    if x != x:
        return 0.0
    return max(-OBS_BOUND, min(OBS_BOUND, x))


class MetricHistory:
    """Turns a run's evaluations into predictor features (training and deployment alike).

    Call :meth:`reset` with the evaluation before training, then :meth:`features` at every
    later evaluation.
    """

    def __init__(self) -> None:
        self.initial_lr = 1.0
        self.val_ref = 0.0
        self.prev_lr = 1.0
        self.prev_train: float | None = None
        self.prev_val = 0.0
        self.best_metric: float | None = None

    def reset(self, lr: float, val_loss: float, val_metric: float | None) -> None:
        """Start a run at LR ``lr`` with its first validation loss and metric."""
        self.__init__()
        self.initial_lr = self.prev_lr = max(float(lr), 1e-30)
        if math.isfinite(val_loss):
            self.val_ref = self.prev_val = _log_floor(val_loss)
        if val_metric is not None and math.isfinite(val_metric):
            self.best_metric = float(val_metric)

    def features(
        self,
        lr: float,
        train_loss: float,
        val_loss: float,
        val_metric: float | None,
        progress: float,
    ) -> np.ndarray:
        """The :data:`PREDICTOR_FEATURES` after one evaluation interval.

        Args:
            lr: The LR in use now.
            train_loss: Mean training loss over the interval.
            val_loss: Validation loss now.
            val_metric: Validation metric now (higher is better), or None.
            progress: Optimizer steps done / total steps.
        """
        lr = max(float(lr), 1e-30)
        train = _log_floor(train_loss) if math.isfinite(train_loss) else math.nan
        val = _log_floor(val_loss) if math.isfinite(val_loss) else math.nan
        prev_train = train if self.prev_train is None else self.prev_train
        metric = 0.0
        gap = 0.0
        if val_metric is not None and math.isfinite(val_metric):
            metric = max(-1.0, min(1.0, float(val_metric)))
            best = float(val_metric) if self.best_metric is None else self.best_metric
            self.best_metric = max(best, float(val_metric))
            gap = float(val_metric) - self.best_metric
        values = (
            (math.log10(lr) + 3.0) / 2.0,
            math.log(lr / self.initial_lr),
            math.log10(lr / self.prev_lr),
            train - self.val_ref,
            train - prev_train,
            val - self.val_ref,
            val - self.prev_val,
            metric,
            gap,
            progress,
        )
        self.prev_lr = lr
        if math.isfinite(train):
            self.prev_train = train
        if math.isfinite(val):
            self.prev_val = val
        return np.array([_bounded(float(v)) for v in values], dtype=np.float32)

    def state_dict(self) -> dict[str, float | None]:
        """The history as plain floats."""
        return dict(vars(self))

    def load_state_dict(self, state: dict[str, float | None]) -> None:
        """Restore what :meth:`state_dict` returned."""
        for key, value in state.items():
            setattr(self, key, value)


def make_network(n_features: int = len(PREDICTOR_FEATURES)) -> nn.Sequential:
    """The predictor network: 2 hidden layers of 64 ReLU units, linear output."""
    layers: list[nn.Module] = []
    width = n_features
    for hidden in HIDDEN:
        layers += [nn.Linear(width, hidden), nn.ReLU()]
        width = hidden
    layers.append(nn.Linear(width, 1))
    return nn.Sequential(*layers)


@dataclass
class LRPredictor:
    """A trained predictor: network, feature standardisation and a record of its training.

    Attributes:
        network: The MLP (standardised features → log10 LR change).
        mean: Feature means used for standardisation.
        std: Feature standard deviations used for standardisation.
        info: How it was trained (tasks, rows, seed, validation errors).
    """

    network: nn.Sequential
    mean: np.ndarray
    std: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)

    @torch.no_grad()
    def predict(self, features: np.ndarray) -> np.ndarray:
        """Predicted ``log10(lr_next / lr)`` for a batch (or one row) of features."""
        x = np.atleast_2d(np.asarray(features, dtype=np.float32))
        z = torch.from_numpy((x - self.mean) / self.std)
        out = self.network(z).squeeze(-1).numpy()
        return np.clip(out, -MAX_LOG10_CHANGE, MAX_LOG10_CHANGE)

    def save(self, path: str | Path) -> Path:
        """Write the predictor to ``path`` atomically (a ``weights_only``-loadable file)."""
        payload = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "features": list(PREDICTOR_FEATURES),
            "hidden": list(HIDDEN),
            "mean": [float(v) for v in self.mean],
            "std": [float(v) for v in self.std],
            "state_dict": self.network.state_dict(),
            "info": self.info,
        }
        path = Path(path)
        with atomic_path(path) as tmp:
            torch.save(payload, tmp)
        return path


class PredictorLoadError(ValueError):
    """A predictor file is missing, unreadable or of another format/feature layout."""


def load_predictor(path: str | Path) -> LRPredictor:
    """Load a predictor written by :meth:`LRPredictor.save` (``lrgym train-predictor``)."""
    path = Path(path)
    if not path.is_file():
        raise PredictorLoadError(
            f"no LR predictor at {path}; train one with `lrgym train-predictor --out {path}`"
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same message
        raise PredictorLoadError(f"cannot read LR predictor {path}: {exc}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise PredictorLoadError(f"{path} is not an lrgym LR predictor file")
    if payload.get("version") != FORMAT_VERSION or payload.get("features") != list(
        PREDICTOR_FEATURES
    ):
        raise PredictorLoadError(
            f"{path} was written for another predictor format or feature layout "
            f"(version {payload.get('version')}); retrain it with `lrgym train-predictor`"
        )
    network = make_network()
    network.load_state_dict(payload["state_dict"])
    network.eval()
    mean = np.asarray(payload["mean"], dtype=np.float32)
    std = np.asarray(payload["std"], dtype=np.float32)
    return LRPredictor(network, mean, std, dict(payload.get("info", {})))


# --- training data from logged runs ---------------------------------------------------

_RUN_KEYS = ("task", "scheduler", "seed", "initial_lr")


@dataclass(frozen=True)
class TrainingData:
    """Features, targets and the (task, seed) group of every row."""

    x: np.ndarray
    y: np.ndarray
    groups: np.ndarray
    tasks: tuple[str, ...]


def training_data(runs: pd.DataFrame, curves: pd.DataFrame) -> TrainingData:
    """Features and leader-LR targets from the harness's frames (see the module docstring).

    Raises:
        ValueError: If a run is on a held-out task, columns are missing, or no (task,
            seed) group has two runs to compare.
    """
    need_runs = (*_RUN_KEYS, "split", "total_steps")
    need_curves = (*_RUN_KEYS, "step", "lr", "train_loss", "val_loss", "val_metric")
    for frame, need, name in ((runs, need_runs, "runs.csv"), (curves, need_curves, "curves.csv")):
        missing = [c for c in need if c not in frame.columns]
        if missing:
            raise ValueError(
                f"{name} lacks columns {missing}; pass the output directory of `lrgym compare`"
            )
    held_out = sorted(runs.loc[runs["split"] == "held-out", "task"].unique())
    if held_out:
        raise ValueError(
            f"the runs include held-out tasks {held_out}; the predictor must never see them. "
            "Log runs with `lrgym compare --tasks meta-train ...` and train on those"
        )
    totals = runs.set_index(list(_RUN_KEYS))["total_steps"]
    unknown = set(curves["task"]) - set(runs["task"])
    if unknown:
        raise ValueError(
            f"curves.csv has tasks {sorted(unknown)} that runs.csv lacks; pass both files "
            "of the same `lrgym compare --out` directory"
        )
    xs: list[np.ndarray] = []
    ys: list[float] = []
    groups: list[int] = []
    for group_id, (_, group) in enumerate(curves.groupby(["task", "seed"], sort=True)):
        by_run = {k: g.sort_values("step") for k, g in group.groupby(["scheduler", "initial_lr"])}
        if len(by_run) < 2:
            continue
        val = group.pivot_table(
            index="step", columns=["scheduler", "initial_lr"], values="val_loss", aggfunc="first"
        )
        lr = group.pivot_table(
            index="step", columns=["scheduler", "initial_lr"], values="lr", aggfunc="first"
        )
        steps = list(val.index)
        finite_val = val.where(np.isfinite(val))
        leaders = {}
        for s, s_next in zip(steps[:-1], steps[1:], strict=True):
            row = finite_val.loc[s_next].dropna()
            if len(row) >= 2:
                leaders[s] = lr.loc[s, row.idxmin()]
        task, seed = group["task"].iloc[0], group["seed"].iloc[0]
        for (scheduler, initial_lr), rows in by_run.items():
            total = float(totals.loc[(task, scheduler, seed, initial_lr)])
            history = MetricHistory()
            first = rows.iloc[0]
            history.reset(first["lr"], first["val_loss"], first["val_metric"])
            for r in rows.iloc[1:].itertuples(index=False):
                if not (math.isfinite(r.train_loss) and math.isfinite(r.val_loss)):
                    break  # the run diverged here; nothing after it is usable
                feats = history.features(
                    r.lr, r.train_loss, r.val_loss, r.val_metric, r.step / total
                )
                leader_lr = leaders.get(r.step)
                if leader_lr is None or not (leader_lr > 0 and r.lr > 0):
                    continue
                xs.append(feats)
                ys.append(float(np.clip(math.log10(leader_lr / r.lr), -1.0, 1.0)))
                groups.append(group_id)
    if not xs:
        raise ValueError(
            "no (task, seed) has two runs to compare; log several schedulers or initial LRs "
            "per task and seed (e.g. `lrgym compare --schedulers baselines --initial-lrs "
            "1e-4,1e-3,1e-2,1e-1,default`)"
        )
    return TrainingData(
        np.stack(xs).astype(np.float32),
        np.asarray(ys, dtype=np.float32),
        np.asarray(groups),
        tuple(sorted(runs["task"].unique())),
    )


@dataclass(frozen=True)
class PredictorTraining:
    """Settings of :func:`train_predictor`."""

    epochs: int = 40
    batch_size: int = 256
    learning_rate: float = 1e-3
    val_share: float = 0.2
    seed: int = 0


def train_predictor(data: TrainingData, settings: PredictorTraining | None = None) -> LRPredictor:
    """Fit the predictor by MSE regression; (task, seed) groups are split train/validation.

    The returned predictor is the epoch with the lowest validation MSE; its ``info``
    records that MSE beside the MSE of always predicting "keep the LR" (0).
    """
    cfg = settings or PredictorTraining()
    if cfg.epochs < 1 or cfg.batch_size < 1 or not 0 <= cfg.val_share < 1:
        raise ValueError(f"invalid training settings {cfg}: need epochs, batch_size >= 1")
    rng = np.random.default_rng(cfg.seed)
    unique = np.unique(data.groups)
    n_val = int(round(cfg.val_share * len(unique))) if len(unique) > 1 else 0
    val_groups = rng.choice(unique, size=n_val, replace=False)
    is_val = np.isin(data.groups, val_groups)
    x_train, y_train = data.x[~is_val], data.y[~is_val]
    x_val, y_val = (data.x[is_val], data.y[is_val]) if n_val else (x_train, y_train)
    mean = x_train.mean(axis=0)
    std = np.maximum(x_train.std(axis=0), 1e-6).astype(np.float32)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        network = make_network(data.x.shape[1])
        optimizer = torch.optim.Adam(network.parameters(), lr=cfg.learning_rate)
        xt = torch.from_numpy((x_train - mean) / std)
        yt = torch.from_numpy(y_train)
        xv = torch.from_numpy((x_val - mean) / std)
        yv = torch.from_numpy(y_val)
        generator = torch.Generator().manual_seed(cfg.seed)
        best = (math.inf, None)
        for _ in range(cfg.epochs):
            network.train()
            for idx in torch.randperm(len(xt), generator=generator).split(cfg.batch_size):
                loss = nn.functional.mse_loss(network(xt[idx]).squeeze(-1), yt[idx])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            network.eval()
            with torch.no_grad():
                val_mse = float(nn.functional.mse_loss(network(xv).squeeze(-1), yv))
            if val_mse < best[0]:
                best = (val_mse, {k: v.clone() for k, v in network.state_dict().items()})
    network.load_state_dict(best[1])
    network.eval()
    info = {
        "tasks": list(data.tasks),
        "rows": int(len(data.y)),
        "validation_rows": int(is_val.sum()),
        "validation_mse": best[0],
        "validation_mse_keep_lr": float((y_val**2).mean()),
        "settings": asdict(cfg),
    }
    return LRPredictor(network, mean.astype(np.float32), std, info)


STABILITY_LR_FLOOR = 1e-8
"""LRs below this count as this in :func:`lr_stability` (an LR of 0 has no log)."""


def lr_stability(curves: pd.DataFrame) -> pd.Series:
    """Mean ``|Δ log10 LR|`` between consecutive evaluations, per run.

    Args:
        curves: The harness's curves frame.

    Returns:
        Indexed by (task, scheduler, seed, initial_lr); 0 for a constant LR. LRs are
        floored at :data:`STABILITY_LR_FLOOR` first (cosine and OneCycle end at 0).
    """
    keys = list(_RUN_KEYS)
    ordered = curves.sort_values([*keys, "step"])
    log_lr = np.log10(ordered["lr"].astype(float).clip(lower=STABILITY_LR_FLOOR))
    change = log_lr.groupby([ordered[k] for k in keys]).diff().abs()
    return change.groupby([ordered[k] for k in keys]).mean().rename("lr_stability")


# --- deployment -----------------------------------------------------------------------


class PredictorLR(LRScheduler):
    """The LR predictor as a drop-in torch LR scheduler; decides at every validation.

    Call :meth:`step` after every optimizer step (with its loss) and
    :meth:`observe_eval` after every validation pass, once before training too. From the
    second validation on, each call sets ``lr ← lr · 10^ŷ`` (``ŷ`` the prediction,
    within ±:data:`MAX_LOG10_CHANGE`), clamped to ``[min_lr, max_lr]``; the LR is held
    when a training loss was not finite. :attr:`lr_stability` is the mean
    ``|Δ log10 LR|`` over its decisions so far.

    Example:
        >>> scheduler = PredictorLR(optimizer, "lr_predictor.pt", total_steps=1000)
        >>> scheduler.observe_eval(val_loss, val_accuracy)  # before training
        >>> for x, y in loader:
        ...     loss = loss_fn(model(x), y)
        ...     optimizer.zero_grad(); loss.backward(); optimizer.step()
        ...     scheduler.step(loss)
        >>> scheduler.observe_eval(val_loss, val_accuracy)  # after each validation pass

    Args:
        optimizer: The optimizer whose LRs it sets (group ratios are kept).
        predictor: An :class:`LRPredictor` or the path of a saved one.
        total_steps: Optimizer steps the run will take (the predictor sees progress).
        min_lr: Lower LR bound.
        max_lr: Upper LR bound.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        predictor: LRPredictor | str | Path,
        total_steps: int,
        min_lr: float = 1e-7,
        max_lr: float = 1.0,
    ) -> None:
        if total_steps < 1:
            raise ValueError(f"total_steps must be >= 1, got {total_steps}")
        if not 0 < min_lr < max_lr:
            raise ValueError(f"need 0 < min_lr < max_lr, got {min_lr} and {max_lr}")
        self.predictor = (
            predictor if isinstance(predictor, LRPredictor) else load_predictor(predictor)
        )
        self.total_steps = int(total_steps)
        self.min_lr = float(min_lr)
        self.max_lr = float(max_lr)
        self.history = MetricHistory()
        self.steps_done = 0
        self.decisions = 0
        self.total_change = 0.0
        self._losses: list[float] = []
        self._started = False
        super().__init__(optimizer)

    def _initial_step(self) -> None:
        self._step_count = 0
        self.last_epoch = 0
        self._last_lr = [float(g["lr"]) for g in self.optimizer.param_groups]

    @property
    def lr_stability(self) -> float:
        """Mean ``|Δ log10 LR|`` per decision so far (NaN before the first)."""
        return self.total_change / self.decisions if self.decisions else math.nan

    def step(self, loss: float | torch.Tensor | None = None) -> None:  # type: ignore[override]
        """Count one optimizer step and record its loss."""
        if loss is not None:
            self._losses.append(loss.item() if isinstance(loss, torch.Tensor) else float(loss))
        self._step_count += 1
        self.steps_done += 1
        self.last_epoch = self.steps_done

    def observe_eval(self, val_loss: float, val_metric: float | None = None) -> None:
        """Feed one validation result; from the second on, predict and set the next LR."""
        lr = float(self.optimizer.param_groups[0]["lr"])
        losses, self._losses = self._losses, []
        if not self._started:
            self.history.reset(lr, float(val_loss), val_metric)
            self._started = True
            return
        train_loss = sum(losses) / len(losses) if losses else math.nan
        if not (losses and all(map(math.isfinite, losses)) and math.isfinite(val_loss)):
            return  # hold the LR
        progress = min(self.steps_done / self.total_steps, 1.0)
        feats = self.history.features(lr, train_loss, float(val_loss), val_metric, progress)
        change = float(self.predictor.predict(feats)[0])
        for group in self.optimizer.param_groups:
            new = float(group["lr"]) * 10.0**change
            group["lr"] = min(self.max_lr, max(self.min_lr, new))
        new_lr = float(self.optimizer.param_groups[0]["lr"])
        self.total_change += abs(math.log10(new_lr / lr))
        self.decisions += 1
        self._last_lr = [float(g["lr"]) for g in self.optimizer.param_groups]

    def get_lr(self) -> list[float]:
        """The current LRs (decisions happen in :meth:`observe_eval`)."""
        return [float(g["lr"]) for g in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        """Counters, pending losses, history and last LRs: plain numbers only."""
        return {
            "steps_done": self.steps_done,
            "decisions": self.decisions,
            "total_change": self.total_change,
            "step_count": self._step_count,
            "started": self._started,
            "losses": list(self._losses),
            "history": self.history.state_dict(),
            "last_lr": list(self._last_lr),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved."""
        self.steps_done = int(state_dict["steps_done"])
        self.last_epoch = self.steps_done
        self.decisions = int(state_dict["decisions"])
        self.total_change = float(state_dict["total_change"])
        self._step_count = int(state_dict["step_count"])
        self._started = bool(state_dict["started"])
        self._losses = [float(x) for x in state_dict["losses"]]
        self.history.load_state_dict(state_dict["history"])
        self._last_lr = [float(x) for x in state_dict["last_lr"]]


class PredictorController(SchedulerController):
    """A comparison-harness controller running the predictor saved at ``path``.

    Args:
        path: A file written by ``lrgym train-predictor``.
    """

    def __init__(self, path: str | Path) -> None:
        predictor = load_predictor(path)
        super().__init__(lambda opt, total, interval: PredictorLR(opt, predictor, total))
