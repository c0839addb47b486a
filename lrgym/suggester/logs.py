"""Logged runs of configurations, and training the suggester from them.

:func:`generate_logs` runs, on each task and seed, the probes (written to
``probes.csv``) and a seeded sample of configurations of the task's space (one row each
in ``runs.csv``, whose columns are named as in ``lrgym compare``'s ``runs.csv`` where
they mean the same, plus the configuration as JSON and one column per knob).
:func:`train_suggester` fits the meta-model on such logs and refuses runs of held-out or
real tasks, as the LR predictor does.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from lrgym._atomic import atomic_path
from lrgym.suggester.knobs import tunable
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
    probe_task,
    run_config,
)


@dataclass(frozen=True)
class LogSettings:
    """What :func:`generate_logs` runs.

    Attributes:
        n_configs: Configurations drawn per task and seed.
        seeds: Run seeds.
        final_steps: Optimizer steps of each configuration's run (``rounds`` for XGBoost).
        probe: Probe settings (default: the shipped suggester's, one 30-step probe and
            one 60-step LR range test per optimizer).
    """

    n_configs: int = 24
    seeds: tuple[int, ...] = (0,)
    final_steps: int = 200
    probe: ProbeSettings = ProbeSettings(1, 30, 60)


def _config_rng(task_id: str, seed: int) -> np.random.Generator:
    return np.random.default_rng([zlib.crc32(task_id.encode()), int(seed), 7])


def _read(path: Path) -> pd.DataFrame | None:
    return pd.read_csv(path) if path.is_file() else None


def _write(frame: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def generate_logs(
    task_ids: Sequence[str],
    out: str | os.PathLike[str],
    settings: LogSettings = LogSettings(),
    progress: Callable[[str], None] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Probe each task and run sampled configurations; write ``runs.csv`` and ``probes.csv``.

    (task, seed) pairs already in ``out`` are kept, so an interrupted call resumes.
    Returns the two frames.
    """
    from lrgym.registration import make_task

    path = Path(out)
    path.mkdir(parents=True, exist_ok=True)
    runs = _read(path / "runs.csv")
    probes = _read(path / "probes.csv")
    done = set() if probes is None else set(zip(probes["task"], probes["seed"], strict=True))
    for task_id in task_ids:
        task = make_task(task_id)
        tt = tunable(task)
        for seed in settings.seeds:
            if (task_id, seed) in done:
                continue
            if progress:
                progress(f"{task_id} seed {seed}")
            probe = probe_task(tt, seed, settings.probe)
            rng = _config_rng(task_id, seed)
            rows = []
            for _ in range(settings.n_configs):
                config = tt.space.sample(rng)
                outcome = run_config(tt, config, seed, settings.final_steps)
                rows.append(
                    {
                        "task": task_id,
                        "split": task.info.split,
                        "scheduler": "constant",
                        "seed": seed,
                        "initial_lr": config.get("lr", task.info.default_lr),
                        "config": json.dumps(config, sort_keys=True),
                        "metric": task.info.metric,
                        "final_val_metric": outcome.val_metric,
                        "final_test_metric": outcome.test_metric,
                        "steps": outcome.steps,
                        "total_steps": outcome.steps,
                        "wall_seconds": round(outcome.wall_seconds, 3),
                        "diverged": outcome.diverged,
                        **config,
                    }
                )
            prow = _probe_row(task_id, task.info.split, seed, probe, settings.probe, tt)
            prow["final_steps"] = settings.final_steps
            runs = pd.concat([runs, pd.DataFrame(rows)], ignore_index=True)
            probes = pd.concat([probes, pd.DataFrame([prow])], ignore_index=True)
            _write(runs, path / "runs.csv")  # runs first: a probe row marks the pair done
            _write(probes, path / "probes.csv")
    if runs is None or probes is None:
        raise ValueError("no tasks to log: pass at least one task id")
    return runs, probes


def _probe_row(task_id, split, seed, probe, settings: ProbeSettings, tt) -> dict:
    names = feature_names(settings)
    return {
        "task": task_id,
        "split": split,
        "seed": seed,
        "anchor": probe.anchor,
        "n_probes": settings.n_probes,
        "probe_steps": settings.steps,
        "range_steps": settings.range_steps,
        "default_optimizer": str(tt.space.defaults().get("optimizer", "")),
        **dict(zip(names, probe.features.tolist(), strict=True)),
    }


def reprobe_logs(
    directory: str | os.PathLike[str],
    probe: ProbeSettings,
    progress: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Probe again every (task, seed) pair of a log directory with other probe settings.

    The probes are cheap beside the logged runs, so trying another probe design does not
    mean running the configurations again: ``runs.csv`` is kept and ``probes.csv`` is
    rewritten (atomically, once every pair is probed). Returns the new probes frame.
    """
    from lrgym.registration import make_task

    path = Path(directory)
    runs, old = read_logs(path)
    rows = []
    for _, prow in old.iterrows():
        task_id, seed = str(prow["task"]), int(prow["seed"])
        if progress:
            progress(f"{task_id} seed {seed}")
        task = make_task(task_id)
        tt = tunable(task)
        row = _probe_row(task_id, task.info.split, seed, probe_task(tt, seed, probe), probe, tt)
        row["final_steps"] = prow.get("final_steps", np.nan)
        rows.append(row)
    frame = pd.DataFrame(rows)
    _write(frame, path / "probes.csv")
    return frame


REFUSED_SPLITS = ("held-out", "real")


@dataclass(frozen=True)
class TrainSettings:
    """How :func:`train_suggester` fits the meta-model.

    Attributes:
        alphas: Ridge penalties tried; leave-task-out cross-validation picks one.
        members: Bootstrap ensemble members (resampling tasks).
        seed: Seeds the bootstrap.
    """

    alphas: tuple[float, ...] = (1.0, 10.0, 100.0, 1000.0, 10000.0)
    members: int = 16
    seed: int = 0


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
    """Design rows of the logs, their targets and groups."""

    x: np.ndarray
    y: np.ndarray
    val: np.ndarray
    task: np.ndarray
    group: np.ndarray


def training_set(runs: pd.DataFrame, probes: pd.DataFrame, names: Sequence[str]) -> TrainingSet:
    """Rows ``design(t, z, r)``, targets ``final val metric − anchor`` (clipped to
    ±TARGET_CLIP)."""
    probe_rows = {(r["task"], int(r["seed"])): r for _, r in probes.iterrows()}
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
    return TrainingSet(
        np.concatenate(xs),
        np.concatenate(ys),
        np.concatenate(vals),
        np.asarray(tasks),
        np.asarray(groups),
    )


def config_only(ts: TrainingSet, names: Sequence[str]) -> TrainingSet:
    """The training set's configuration columns ``z`` alone (no probe features)."""
    n_t = len(names)
    return replace(ts, x=ts.x[:, n_t : n_t + len(CONFIG_FEATURES)])


def descriptors_only(ts: TrainingSet, names: Sequence[str]) -> TrainingSet:
    """Columns ``[d, z, d ⊗ z]`` with ``d`` the data and model descriptors: what the task's
    metadata, without any probe's training signal, tells the model."""
    n_t, n_z = len(names), len(CONFIG_FEATURES)
    keep = [i for i, n in enumerate(names) if n in DESCRIPTORS]
    n_r = ts.x.shape[1] - n_t - n_z - n_t * n_z
    inter = n_t + n_z + n_r + np.array([i * n_z + j for i in keep for j in range(n_z)])
    cols = np.concatenate([keep, np.arange(n_t, n_t + n_z), inter]).astype(int)
    return replace(ts, x=ts.x[:, cols])


def best_fixed(ts: TrainingSet, names: Sequence[str], alpha: float) -> dict[str, dict]:
    """The best fixed configuration over the logged tasks, per search space.

    The logs sample configurations per task, so no single configuration was run on every
    task; the configuration-only model (fitted on all logs) averages over them, and its
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
    out = {}
    for key, space in (("plan", PLAN_SPACE), ("xgboost", XGB_SPACE)):
        cands = candidates(space, 0)
        z = (np.stack([encode_config(c) for c in cands]) - mean) / std
        out[key] = dict(cands[int(np.argmax(w[0] + z @ w[1:]))])
    return out


def _fit_predict(ts: TrainingSet, train: np.ndarray, test: np.ndarray, alpha: float):
    mean, std = ts.x[train].mean(axis=0), ts.x[train].std(axis=0)
    std[std < 1e-9] = 1.0
    w = _ridge((ts.x[train] - mean) / std, ts.y[train], alpha)
    xt = (ts.x[test] - mean) / std
    return w[0] + xt @ w[1:]


def _cv(ts: TrainingSet, alpha: float) -> dict[str, float]:
    """Leave-task-out: RMSE, and regret/within-5% of picking each group's argmax config."""
    pred = np.empty_like(ts.y)
    for task in np.unique(ts.task):
        test = ts.task == task
        pred[test] = _fit_predict(ts, ~test, test, alpha)
    regrets, within = [], []
    for g in np.unique(ts.group):
        rows = ts.group == g
        val = ts.val[rows]
        best, chosen = val.max(), val[int(np.argmax(pred[rows]))]
        regrets.append(best - chosen)
        within.append(chosen >= best - 0.05 * abs(best))
    return {
        "rmse": float(np.sqrt(np.mean((pred - ts.y) ** 2))),
        "median_regret": float(np.median(regrets)),
        "mean_regret": float(np.mean(regrets)),
        "within_5pct": float(np.mean(within)),
    }


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
    if "range_steps" not in probes:
        probes = probes.assign(range_steps=0)
    if probes[["n_probes", "probe_steps", "range_steps"]].drop_duplicates().shape[0] != 1:
        raise ValueError("probes.csv mixes probe settings; log all tasks with the same ones")
    probe = ProbeSettings(
        int(probes["n_probes"].iloc[0]),
        int(probes["probe_steps"].iloc[0]),
        int(probes["range_steps"].iloc[0]),
    )
    names = feature_names(probe)
    ts = training_set(runs, probes, names)
    n_tasks = len(np.unique(ts.task))
    if n_tasks < 3:
        raise ValueError(f"need runs of at least 3 tasks to cross-validate, got {n_tasks}")
    scores = {alpha: _cv(ts, alpha) for alpha in settings.alphas}
    # the plan's measure first (top pick within 5% of the best), then the mean regret
    alpha = min(
        settings.alphas, key=lambda a: (-scores[a]["within_5pct"], scores[a]["mean_regret"])
    )
    # the same model without probe features: what the probes add. Configuration features
    # alone rank configurations the same way on every task: that is the best fixed
    # configuration over the meta-train tasks (smoothed by the model).
    baseline = _cv(config_only(ts, names), alpha)
    descriptors = _cv(descriptors_only(ts, names), alpha)
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
    import lrgym

    final_steps = int(runs["total_steps"].median()) if "total_steps" in runs else 0
    plural = "s" * (probe.n_probes != 1)
    probe_text = f"{probe.n_probes} fixed-LR probe{plural} x {probe.steps} steps"
    if probe.range_steps:
        probe_text += f" + one LR range test per optimizer x {probe.range_steps} steps"
    card = {
        "kind": "lrgym suggester (ridge ensemble over probe features x configuration)",
        "trained_on": f"{len(runs)} logged runs of {n_tasks} tasks "
        f"({', '.join(sorted(set(map(str, runs['split']))))}; seeds "
        f"{sorted({int(s) for s in runs['seed']})}, {final_steps}-step runs); probes: "
        f"{probe_text}",
        "trained": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "lrgym_version": lrgym.__version__,
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
        "best_fixed": best_fixed(ts, names, alpha),
        "cross_validation": {
            "protocol": "leave-one-task-out over the logged configurations; regret = best "
            "logged final val metric - that of the config the model ranks first",
            "by_alpha": {str(a): s for a, s in scores.items()},
            "chosen": scores[alpha],
            "without_probe_features": baseline,
            "descriptors_only": descriptors,
            "probe_gain_within_5pct_points": round(
                100 * (scores[alpha]["within_5pct"] - baseline["within_5pct"]), 1
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
    )


def read_logs(directory: str | os.PathLike[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``runs.csv`` and ``probes.csv`` of a log directory.

    Raises:
        FileNotFoundError: If either file is missing.
    """
    path = Path(directory)
    for name in ("runs.csv", "probes.csv"):
        if not (path / name).is_file():
            raise FileNotFoundError(
                f"{path / name} not found; write logs with `lrgym suggest-logs --tasks "
                f"meta-train --out {path}`"
            )
    return pd.read_csv(path / "runs.csv"), pd.read_csv(path / "probes.csv")
