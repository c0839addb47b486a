"""Logged runs of configurations: what the suggester is trained on.

:func:`generate_logs` runs, on each task and seed, the probes (written to
``probes.csv``) and a seeded sample of configurations of the task's space (one row each
in ``runs.csv``, whose columns are named as in ``lrgym compare``'s ``runs.csv`` where
they mean the same, plus the configuration as JSON and one column per knob);
:func:`read_logs` reads them back for :func:`~lrgym.suggester.training.train_suggester`.
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lrgym.io._atomic import atomic_path
from lrgym.suggester.knobs import tunable
from lrgym.suggester.probes import (
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
        shared_configs: Run every seed's drawn configurations on every seed (``n_configs``
            × ``len(seeds)`` runs per task and seed), so that each configuration is
            measured on every seed and the suggester learns from its mean over seeds
            (:func:`lrgym.suggester.training.training_set`): one run's final metric is a
            noisy label (a task's best logged LR correlated at r ≈ 0.2 across two seeds).
    """

    n_configs: int = 24
    seeds: tuple[int, ...] = (0,)
    final_steps: int = 200
    probe: ProbeSettings = ProbeSettings(1, 30, 60)
    shared_configs: bool = False


def _config_rng(task_id: str, seed: int) -> np.random.Generator:
    return np.random.default_rng([zlib.crc32(task_id.encode()), int(seed), 7])


def _read(path: Path) -> pd.DataFrame | None:
    return pd.read_csv(path) if path.is_file() else None


def _write(frame: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def _draw(tt, task_id: str, seed: int, n: int) -> list[dict]:
    """The ``n`` configurations drawn for ``task_id`` and ``seed`` (the same on every call)."""
    rng = _config_rng(task_id, seed)
    return [tt.space.sample(rng) for _ in range(n)]


def _run_row(task_id: str, task, tt, config: dict, seed: int, steps: int) -> dict:
    """One logged run of ``config`` (a ``runs.csv`` row)."""
    outcome = run_config(tt, config, seed, steps)
    return {
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


def generate_logs(
    task_ids: Sequence[str],
    out: str | os.PathLike[str],
    settings: LogSettings = LogSettings(),
    progress: Callable[[str], None] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Probe each task and run sampled configurations; write ``runs.csv`` and ``probes.csv``.

    Runs already in ``out`` are kept, so an interrupted call resumes; with
    ``shared_configs`` a log of the same seeds written without it is completed with the
    runs it lacks (its probes are kept). Returns the two frames.
    """
    from lrgym.core.registration import make_task

    path = Path(out)
    path.mkdir(parents=True, exist_ok=True)
    runs = _read(path / "runs.csv")
    probes = _read(path / "probes.csv")
    for task_id in task_ids:
        task = make_task(task_id)
        tt = tunable(task)
        draws = {s: _draw(tt, task_id, s, settings.n_configs) for s in settings.seeds}
        for seed in settings.seeds:
            wanted = (
                [c for s in settings.seeds for c in draws[s]]
                if settings.shared_configs
                else draws[seed]
            )
            probed = (
                probes is not None
                and ((probes["task"] == task_id) & (probes["seed"] == seed)).any()
            )
            logged = (
                set()
                if runs is None
                else set(runs.loc[(runs["task"] == task_id) & (runs["seed"] == seed), "config"])
            )
            todo = [c for c in wanted if json.dumps(c, sort_keys=True) not in logged]
            if probed and not todo:
                continue
            if progress:
                progress(f"{task_id} seed {seed}")
            probe = None if probed else probe_task(tt, seed, settings.probe)
            rows = [_run_row(task_id, task, tt, c, seed, settings.final_steps) for c in todo]
            runs = pd.concat([runs, pd.DataFrame(rows)], ignore_index=True)
            _write(runs, path / "runs.csv")  # runs first: a probe row marks the pair done
            if probe is not None:
                prow = _probe_row(task_id, task.info.split, seed, probe, settings.probe, tt)
                prow["final_steps"] = settings.final_steps
                probes = pd.concat([probes, pd.DataFrame([prow])], ignore_index=True)
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
    from lrgym.core.registration import make_task

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
