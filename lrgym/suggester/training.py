"""Training the suggester on logged runs (:mod:`lrgym.suggester.logs`).

:func:`train_suggester` fits the meta-model (a bootstrap ensemble of ridge regressions,
its penalty picked by leave-task-out cross-validation, and the ranking head of
:mod:`lrgym.suggester.ranker`) and refuses runs of held-out or real tasks, as the LR
predictor does. Its card reports the leave-task-out scores of the model with and without
probe features.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np
import pandas as pd

from lrgym._version import __version__
from lrgym.suggester.model import (
    CONFIG_FEATURES,
    TARGET_CLIP,
    Suggester,
    _ridge,
    design,
    encode_config,
    encode_relative,
)
from lrgym.suggester.probes import (
    DESCRIPTORS,
    ProbeSettings,
    feature_names,
)
from lrgym.suggester.ranker import WITHIN, RankerSettings, fit_ranker, pick, within_labels

REFUSED_SPLITS = ("held-out", "real")


@dataclass(frozen=True)
class TrainSettings:
    """How :func:`train_suggester` fits the meta-model.

    Attributes:
        alphas: Ridge penalties tried; leave-task-out cross-validation picks one.
        members: Bootstrap ensemble members (resampling tasks).
        seed: Seeds the bootstrap.
        ranker: The ranking head's settings (None: none; the ridge ensemble ranks).
    """

    alphas: tuple[float, ...] = (1.0, 10.0, 100.0, 1000.0, 10000.0)
    members: int = 16
    seed: int = 0
    ranker: RankerSettings | None = RankerSettings()


def _check_logs(runs: pd.DataFrame, probes: pd.DataFrame) -> None:
    for frame, need, name in (
        (runs, ("task", "split", "seed", "config", "final_val_metric"), "runs.csv"),
        (probes, ("task", "split", "seed", "anchor", "n_probes", "probe_steps"), "probes.csv"),
    ):
        missing = [c for c in need if c not in frame.columns]
        if missing:
            raise ValueError(
                f"{name} lacks columns {missing}; pass a directory written by "
                "`lrgym suggest-logs` (runs.csv and probes.csv)"
            )
    refused = sorted(
        set(runs.loc[runs["split"].isin(REFUSED_SPLITS), "task"])
        | set(probes.loc[probes["split"].isin(REFUSED_SPLITS), "task"])
    )
    if refused:
        raise ValueError(
            f"the logs include held-out or real tasks {refused}; the suggester must never "
            "see them. Log runs with `lrgym suggest-logs --tasks meta-train ...` and train "
            "on those"
        )


@dataclass(frozen=True)
class TrainingSet:
    """Design rows of the logs, their targets and groups.

    Attributes:
        x: Design rows (ridge columns).
        y: Targets (final val metric − anchor, clipped).
        val: Final validation metrics.
        task: Task id of each row.
        group: (task, seed) group of each row.
        rank_x: The rows the ranking head reads (``[t, z, r]``).
    """

    x: np.ndarray
    y: np.ndarray
    val: np.ndarray
    task: np.ndarray
    group: np.ndarray
    rank_x: np.ndarray


def training_set(runs: pd.DataFrame, probes: pd.DataFrame, names: Sequence[str]) -> TrainingSet:
    """Rows ``design(t, z, r)``, targets ``final val metric − anchor`` (clipped to
    ±TARGET_CLIP).

    A configuration logged on several seeds of a task (``suggest-logs
    --shared-configs``) counts with its mean final val metric over them, in the targets,
    the ranking labels and the cross-validation alike: one run's metric is a noisy label.
    """
    probe_rows = {(r["task"], int(r["seed"])): r for _, r in probes.iterrows()}
    runs = runs.assign(
        final_val_metric=runs.groupby(["task", "config"])["final_val_metric"].transform("mean")
    )
    xs, ys, vals, tasks, groups = [], [], [], [], []
    keys = sorted({(t, int(s)) for t, s in zip(runs["task"], runs["seed"], strict=True)})
    for gid, key in enumerate(keys):
        if key not in probe_rows:
            raise ValueError(f"probes.csv has no row for task {key[0]} seed {key[1]}")
        prow = probe_rows[key]
        t = np.asarray([float(prow[n]) for n in names])
        part = runs[(runs["task"] == key[0]) & (runs["seed"] == key[1])]
        configs = [json.loads(c) for c in part["config"]]
        z = np.stack([encode_config(c) for c in configs])
        default = prow.get("default_optimizer", "")
        default = "" if not isinstance(default, str) else default
        r = np.stack(
            [
                encode_relative(c, t, names, 0 if c.get("optimizer", default) == default else 1)
                for c in configs
            ]
        )
        val = part["final_val_metric"].to_numpy(dtype=float)
        xs.append(design(t, z, r))
        ys.append(np.clip(val - float(prow["anchor"]), -TARGET_CLIP, TARGET_CLIP))
        vals.append(val)
        tasks += [key[0]] * len(part)
        groups += [gid] * len(part)
    x = np.concatenate(xs)
    n_rank = x.shape[1] - len(names) * len(CONFIG_FEATURES)  # [t, z, r] of [t, z, r, t⊗z]
    return TrainingSet(
        x,
        np.concatenate(ys),
        np.concatenate(vals),
        np.asarray(tasks),
        np.asarray(groups),
        x[:, :n_rank],
    )


def config_only(ts: TrainingSet, names: Sequence[str]) -> TrainingSet:
    """The training set's configuration columns ``z`` alone (no probe features)."""
    n_t = len(names)
    z = ts.x[:, n_t : n_t + len(CONFIG_FEATURES)]
    return replace(ts, x=z, rank_x=z)


def descriptors_only(ts: TrainingSet, names: Sequence[str]) -> TrainingSet:
    """Columns ``[d, z, d ⊗ z]`` with ``d`` the data and model descriptors: what the task's
    metadata, without any probe's training signal, tells the model."""
    n_t, n_z = len(names), len(CONFIG_FEATURES)
    keep = [i for i, n in enumerate(names) if n in DESCRIPTORS]
    n_r = ts.x.shape[1] - n_t - n_z - n_t * n_z
    inter = n_t + n_z + n_r + np.array([i * n_z + j for i in keep for j in range(n_z)])
    cols = np.concatenate([keep, np.arange(n_t, n_t + n_z), inter]).astype(int)
    return replace(ts, x=ts.x[:, cols], rank_x=ts.x[:, cols[: len(keep) + n_z]])


def best_fixed(
    ts: TrainingSet, names: Sequence[str], alpha: float, ranker: RankerSettings | None = None
) -> dict[str, dict]:
    """The best fixed configuration over the logged tasks, per search space.

    The logs sample configurations per task, so no single configuration was run on every
    task; the model without probe features (configuration columns only, fitted on all
    logs: the ridge, and the ranking head if ``ranker``) averages over them, and its
    top-ranked grid point of :data:`~lrgym.suggester.space.PLAN_SPACE` (torch tasks; a
    task with fewer knobs keeps the ones it has) and of
    :data:`~lrgym.suggester.space.XGB_SPACE` is what a probe-free suggester would
    recommend for every task.
    """
    from lrgym.suggester.api import candidates
    from lrgym.suggester.space import PLAN_SPACE, XGB_SPACE

    co = config_only(ts, names)
    mean, std = co.x.mean(axis=0), co.x.std(axis=0)
    std[std < 1e-9] = 1.0
    w = _ridge((co.x - mean) / std, co.y, alpha)
    head = fit_ranker(co.rank_x, within_labels(co.val, co.group), ranker) if ranker else None
    out = {}
    for key, space in (("plan", PLAN_SPACE), ("xgboost", XGB_SPACE)):
        cands = candidates(space, 0)
        z = np.stack([encode_config(c) for c in cands])
        hits = head.predict(z) if head else np.zeros(len(cands))
        out[key] = dict(cands[pick(hits, w[0] + ((z - mean) / std) @ w[1:])])
    return out


def _fit_predict(ts: TrainingSet, train: np.ndarray, test: np.ndarray, alpha: float):
    mean, std = ts.x[train].mean(axis=0), ts.x[train].std(axis=0)
    std[std < 1e-9] = 1.0
    w = _ridge((ts.x[train] - mean) / std, ts.y[train], alpha)
    xt = (ts.x[test] - mean) / std
    return w[0] + xt @ w[1:]


def leave_task_out(
    ts: TrainingSet, alpha: float, ranker: RankerSettings | None = None
) -> dict[str, float]:
    """Leave-task-out cross-validation of the suggester's model on ``ts``: the ridge (at
    ``alpha``) and, if ``ranker``, the ranking head are fitted on every other task.

    Returns:
        ``rmse`` of the predicted metric; ``median_regret``, ``mean_regret`` and
        ``within_5pct`` of each group's top-ranked configuration (by the ranking head if
        ``ranker``, ties broken by the ridge; else by the ridge).
    """
    pred, hits = np.empty_like(ts.y), np.zeros_like(ts.y)
    labels = within_labels(ts.val, ts.group) if ranker else None
    for task in np.unique(ts.task):
        test = ts.task == task
        pred[test] = _fit_predict(ts, ~test, test, alpha)
        if ranker:
            head = fit_ranker(ts.rank_x[~test], labels[~test], ranker)
            hits[test] = head.predict(ts.rank_x[test])
    regrets, within = [], []
    for g in np.unique(ts.group):
        rows = ts.group == g
        val = ts.val[rows]
        best, chosen = val.max(), val[pick(hits[rows], pred[rows])]
        regrets.append(best - chosen)
        within.append(chosen >= best - WITHIN * abs(best))
    return {
        "rmse": float(np.sqrt(np.mean((pred - ts.y) ** 2))),
        "median_regret": float(np.median(regrets)),
        "mean_regret": float(np.mean(regrets)),
        "within_5pct": float(np.mean(within)),
    }


def logged_probe_settings(probes: pd.DataFrame) -> ProbeSettings:
    """The probe settings every row of ``probes.csv`` was logged with.

    Raises:
        ValueError: If the rows mix settings.
    """
    if "range_steps" not in probes:
        probes = probes.assign(range_steps=0)
    if probes[["n_probes", "probe_steps", "range_steps"]].drop_duplicates().shape[0] != 1:
        raise ValueError("probes.csv mixes probe settings; log all tasks with the same ones")
    return ProbeSettings(
        int(probes["n_probes"].iloc[0]),
        int(probes["probe_steps"].iloc[0]),
        int(probes["range_steps"].iloc[0]),
    )


def train_suggester(
    runs: pd.DataFrame,
    probes: pd.DataFrame,
    settings: TrainSettings = TrainSettings(),
    source: str = "",
) -> Suggester:
    """Fit the meta-model on logged runs of meta-train tasks.

    Raises:
        ValueError: If the logs include a held-out or real task, lack columns, or mix
            probe settings.
    """
    _check_logs(runs, probes)
    probe = logged_probe_settings(probes)
    names = feature_names(probe)
    ts = training_set(runs, probes, names)
    n_tasks = len(np.unique(ts.task))
    if n_tasks < 3:
        raise ValueError(f"need runs of at least 3 tasks to cross-validate, got {n_tasks}")
    scores = {alpha: leave_task_out(ts, alpha) for alpha in settings.alphas}

    def rank_key(s: dict[str, float]) -> tuple[float, float]:
        # the plan's measure first (top pick within 5% of the best), then the mean regret
        return -s["within_5pct"], s["mean_regret"]

    alpha = min(settings.alphas, key=lambda a: rank_key(scores[a]))
    # the ranking head is kept only where it ranks better than the ridge alone, leave-task-out
    # (on a few tasks its trees have too little to split on)
    with_head = leave_task_out(ts, alpha, settings.ranker) if settings.ranker else None
    keep = with_head is not None and rank_key(with_head) < rank_key(scores[alpha])
    head = settings.ranker if keep else None
    chosen = with_head if keep else scores[alpha]
    # the same model without probe features: what the probes add. Configuration features
    # alone rank configurations the same way on every task: that is the best fixed
    # configuration over the meta-train tasks (smoothed by the model).
    baseline = leave_task_out(config_only(ts, names), alpha, head)
    descriptors = leave_task_out(descriptors_only(ts, names), alpha, head)
    ridge_baseline = leave_task_out(config_only(ts, names), alpha) if head else baseline
    mean, std = ts.x.mean(axis=0), ts.x.std(axis=0)
    std[std < 1e-9] = 1.0
    xs = (ts.x - mean) / std
    rng = np.random.default_rng(settings.seed)
    tasks = np.unique(ts.task)
    members = []
    for _ in range(settings.members):
        pick = rng.choice(tasks, size=len(tasks), replace=True)
        rows = np.concatenate([np.flatnonzero(ts.task == t) for t in pick])
        members.append(_ridge(xs[rows], ts.y[rows], alpha))
    ranker = fit_ranker(ts.rank_x, within_labels(ts.val, ts.group), head) if head else None

    final_steps = int(runs["total_steps"].median()) if "total_steps" in runs else 0
    plural = "s" * (probe.n_probes != 1)
    probe_text = f"{probe.n_probes} fixed-LR probe{plural} x {probe.steps} steps"
    if probe.range_steps:
        probe_text += f" + one LR range test per optimizer x {probe.range_steps} steps"
    card = {
        "kind": "lrgym suggester (ridge ensemble over probe features x configuration"
        + (", ranked by a gradient-boosted within-5% head)" if head else ")"),
        "trained_on": f"{len(runs)} logged runs of {n_tasks} tasks "
        f"({', '.join(sorted(set(map(str, runs['split']))))}; seeds "
        f"{sorted({int(s) for s in runs['seed']})}, {final_steps}-step runs); probes: "
        f"{probe_text}",
        "trained": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "lrgym_version": __version__,
        "source": source,
        "tasks": sorted(map(str, tasks)),
        "splits": sorted(set(map(str, runs["split"]))),
        "runs": int(len(runs)),
        "seeds": sorted({int(s) for s in runs["seed"]}),
        "final_steps": final_steps,
        "probe": asdict(probe),
        "config_features": list(CONFIG_FEATURES),
        "alpha": alpha,
        "members": settings.members,
        **({"ranker": asdict(head)} if head else {}),
        **({"ranking_head_cv": with_head, "ranking_head_kept": keep} if with_head else {}),
        "best_fixed": best_fixed(ts, names, alpha, head),
        # the configuration of the best predicted mean metric (the ridge alone), which the
        # v2 suggester called best_fixed: the benchmark runs both
        **({"best_fixed_mean": best_fixed(ts, names, alpha)} if head else {}),
        "cross_validation": {
            "protocol": "leave-one-task-out over the logged configurations; regret = best "
            "logged final val metric - that of the config the model ranks first",
            "by_alpha": {str(a): s for a, s in scores.items()},
            "chosen": chosen,
            "without_probe_features": baseline,
            "descriptors_only": descriptors,
            "ridge_only": scores[alpha],
            "ridge_only_without_probe_features": ridge_baseline,
            "probe_gain_within_5pct_points": round(
                100 * (chosen["within_5pct"] - baseline["within_5pct"]), 1
            ),
        },
    }
    return Suggester(
        probe=probe,
        feature_names=tuple(names),
        x_mean=mean,
        x_std=std,
        members=np.stack(members),
        resid_std=scores[alpha]["rmse"],
        alpha=alpha,
        final_steps=final_steps,
        metric_max=float(ts.val.max()),
        card=card,
        ranker=ranker,
    )


__all__ = [
    "REFUSED_SPLITS",
    "TrainSettings",
    "TrainingSet",
    "config_only",
    "leave_task_out",
    "logged_probe_settings",
    "train_suggester",
    "training_set",
]
