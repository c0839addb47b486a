"""Training the LR predictor from logged runs, and the LR-stability measure of any trace."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from lrgym.controllers.lr_predictor.features import MetricHistory
from lrgym.controllers.lr_predictor.model import LRPredictor, make_network

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
