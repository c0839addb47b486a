"""The comparison harness: every (task, scheduler, seed, initial LR) as a plain loop.

Each run is what a user would write: build the run, attach the scheduler, train,
evaluate on validation every ``eval_interval`` steps, stop on divergence, and test at
the end. Results are one row per run (``runs.csv``) and one row per evaluation
(``curves.csv``).
"""

from __future__ import annotations

import math
import multiprocessing
import numbers
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd
import torch

from lrgym.backends._lifetime import stop_pool, watch_parent
from lrgym.controllers import make_controller
from lrgym.core.registration import TaskSpec, ensure_registered, make_task, portable_specs
from lrgym.core.trainee import TrainReport, is_diverged
from lrgym.io._atomic import atomic_path
from lrgym.io.validate import check_initial_lr, whole_number

RUN_COLUMNS = (
    "task", "split", "scheduler", "seed", "initial_lr", "default_lr", "metric", "target",
    "final_val_metric", "best_val_metric", "final_test_metric", "reached_target",
    "touched_target", "steps_to_target", "seconds_to_target", "steps", "total_steps",
    "wall_seconds", "diverged",
)  # fmt: skip
"""Columns of ``runs.csv`` (test metrics by name follow as ``test_<name>``)."""


@dataclass(frozen=True)
class RunSpec:
    """One run of the grid. ``initial_lr=None`` means the task's default LR; ``init`` is
    an init folder (``lrgym meta-init``) loaded into the model after it is built.

    ``target_every=n`` also checks the validation metric against the target every ``n``
    steps between the controller's evaluations, so steps to target are resolved to ``n``
    steps instead of the decision interval. The controller never sees those extra
    evaluations (its decisions are the same); they add their time to the run's seconds.
    """

    task: str
    scheduler: str
    seed: int
    initial_lr: float | None = None
    init: str | None = None
    target_every: int | None = None


@dataclass
class RunResult:
    """A finished run: its ``runs.csv`` row and its ``curves.csv`` rows."""

    row: dict
    curve: list[dict]


def run_one(spec: RunSpec, total_steps: int | None = None) -> RunResult:
    """Train one run with one scheduler; never raises on divergence.

    Args:
        spec: Task, scheduler, seed and initial LR.
        total_steps: Override the task's step budget (for quick runs).
    """
    task = make_task(spec.task)
    info = task.info
    lr0 = check_initial_lr(info.default_lr if spec.initial_lr is None else spec.initial_lr)
    total = info.total_steps if total_steps is None else whole_number("total_steps", total_steps, 1)
    interval = min(info.decision_interval, total)
    check_every = interval
    if spec.target_every is not None:
        check_every = whole_number("target_every", spec.target_every, 1)
    spec = replace(spec, initial_lr=lr0)
    controller = make_controller(spec.scheduler)
    built = task.build(spec.seed, lr0)
    if spec.init is not None:  # a learned init replaces the model's random one
        from lrgym.meta_init.checkpoint import apply_init

        apply_init(built, spec.init)
    trainee = controller.wrap(built)
    controller.start(trainee.optimizer, total, interval)
    ev = trainee.evaluate("val")
    controller.observe(ev)
    initial_val_loss = ev.loss
    start = time.perf_counter()  # time to target counts training and evaluation only
    curve = [_curve_row(spec, 0, trainee.lr, math.nan, ev, 0.0)]
    steps, diverged, best = 0, False, ev.metric
    reached_at: tuple[int, float] | None = (0, 0.0) if ev.metric >= info.target else None
    while steps < total and not diverged:
        chunk = min(interval, total - steps)
        report, checks = _train_checking(trainee, chunk, controller.step, check_every, steps, start)
        for at, metric, seconds in checks:
            if reached_at is None and metric >= info.target:
                reached_at = (at, seconds)
        steps += report.steps
        ev = None if report.steps < chunk else trainee.evaluate("val")
        diverged = is_diverged(report, chunk, ev.loss if ev else None, initial_val_loss)
        if ev is None or diverged:
            break
        controller.observe(ev)
        seconds = time.perf_counter() - start
        best = max(best, ev.metric)
        if reached_at is None and ev.metric >= info.target:
            reached_at = (steps, seconds)
        curve.append(_curve_row(spec, steps, trainee.lr, report.mean_loss, ev, seconds))
    test = trainee.evaluate("test")
    trainee.close()
    final_val = curve[-1]["val_metric"]
    # A run reaches the target only if it ends at or above it without diverging; one that
    # touched it and then fell back or diverged counts as "touched", not "reached".
    touched = reached_at is not None
    reached = touched and not diverged and final_val >= info.target
    reached_at = reached_at if reached else None
    row = {
        "task": spec.task,
        "split": info.split,
        "scheduler": spec.scheduler,
        "seed": spec.seed,
        "initial_lr": lr0,
        "default_lr": lr0 == info.default_lr,
        "metric": info.metric,
        "target": info.target,
        "final_val_metric": final_val,
        "best_val_metric": best,
        "final_test_metric": _finite_or_nan(test.metric),
        "reached_target": reached,
        "touched_target": touched,
        "steps_to_target": reached_at[0] if reached_at else math.inf,
        "seconds_to_target": reached_at[1] if reached_at else math.inf,
        "steps": steps,
        "total_steps": total,
        "wall_seconds": time.perf_counter() - start,
        "diverged": diverged,
        **{f"test_{k}": v for k, v in test.metrics.items()},
    }
    return RunResult(row, curve)


def _train_checking(
    trainee, chunk: int, on_step, every: int, done: int, start: float
) -> tuple[TrainReport, list[tuple[int, float, float]]]:
    """Train ``chunk`` steps; inside it (not at its end, where the caller evaluates)
    evaluate the validation metric every ``every`` steps.

    Returns the whole chunk's report and ``(step, metric, seconds since start)`` per
    check; ``done`` steps came before the chunk.
    """
    if every >= chunk:
        return trainee.train(chunk, on_step=on_step), []
    reports, checks, trained = [], [], 0
    while trained < chunk:
        piece = min(every, chunk - trained)
        reports.append(trainee.train(piece, on_step=on_step))
        trained += reports[-1].steps
        if reports[-1].steps < piece or trained >= chunk:
            break  # diverged, or the chunk's end
        metric = trainee.evaluate("val").metric
        checks.append((done + trained, metric, time.perf_counter() - start))
    last = reports[-1]
    losses = tuple(loss for r in reports for loss in r.losses)
    report = TrainReport(trained, losses, last.grad_norm, last.update_ratio, last.update_cosine)
    return report, checks


def _finite_or_nan(metric: float) -> float:
    """A test metric as reported: a diverged model's -inf (NaN predictions) becomes NaN."""
    return metric if math.isfinite(metric) else math.nan


def _curve_row(spec: RunSpec, step: int, lr: float, train_loss: float, ev, seconds: float):
    return {
        "task": spec.task,
        "scheduler": spec.scheduler,
        "seed": spec.seed,
        "initial_lr": spec.initial_lr,
        "step": step,
        "lr": lr,
        "train_loss": train_loss,
        "val_loss": ev.loss,
        "val_metric": ev.metric,
        "seconds": seconds,
    }


def grid(
    tasks: Sequence[str],
    schedulers: Sequence[str],
    seeds: Sequence[int],
    initial_lrs: Sequence[float | None] = (None,),
    init: str | None = None,
) -> list[RunSpec]:
    """Every combination, validated up front so a typo fails before hours of runs.

    ``init`` (an init folder) is loaded into every run's model (see :class:`RunSpec`).

    A (task, scheduler) pair whose controller does not apply to the task (e.g. an
    optimizer-level baseline on an XGBoost task) is left out.
    """
    if not seeds:
        raise ValueError("no seeds given; pass at least one seed (e.g. --seeds 3)")
    for kind, names in (("task", tasks), ("scheduler", schedulers)):
        wrong = [n for n in names if not isinstance(n, str)]
        if wrong:
            raise ValueError(f"{kind} names must be text, got {wrong[0]!r}")
    if any(isinstance(s, bool) or not isinstance(s, numbers.Integral) for s in seeds):
        raise ValueError(f"seeds must be whole numbers, got {list(seeds)!r}")
    controllers = {name: make_controller(name) for name in schedulers}
    specs: dict[RunSpec, None] = {}  # ordered set: 'default' and an equal LR run once
    for t in tasks:
        task = make_task(t)
        default = task.info.default_lr
        lrs = [default if lr is None else check_initial_lr(lr) for lr in initial_lrs]
        for s in schedulers:
            if not controllers[s].applies_to(task):
                continue
            for seed in seeds:
                for lr in lrs or [default]:
                    specs[RunSpec(t, s, int(seed), lr, init)] = None
    return list(specs)


def _run_in_worker(spec: RunSpec, total_steps: int | None) -> RunResult:
    torch.set_num_threads(1)  # workers share the cores; one thread each avoids oversubscription
    return run_one(spec, total_steps)


def _init_worker(task_specs: list[TaskSpec]) -> None:
    """A spawned worker: one torch thread, and the parent's own tasks registered (a
    user's tasks exist only in the process that imported their module)."""
    torch.set_num_threads(1)
    ensure_registered(task_specs)
    watch_parent()  # never outlive the parent, even after a kill -9


def run_grid(
    specs: Sequence[RunSpec],
    total_steps: int | None = None,
    workers: int = 1,
    on_done: Callable[[RunResult], None] | None = None,
    on_spec: Callable[[RunSpec, RunResult], None] | None = None,
    backend: str = "local",
    address: str | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run every spec (in ``workers`` processes if > 1); returns (runs, curves) frames.

    ``on_done(result)`` and ``on_spec(spec, result)`` are called in this process as each
    run finishes (in finishing order); the frames keep the order of ``specs``. If this
    process stops early (an error, Ctrl-C), the workers are killed at once.

    Every run uses one torch thread (restored afterwards when ``workers`` is 1). Worker
    processes receive the specs of tasks registered in this process only (a user's
    module), so they can run them too.

    ``backend="ray"`` runs every spec as a Ray task on the cluster at ``address``
    (:func:`lrgym.backends.ray_backend.run_grid_on_ray`; ``workers`` is then unused: the cluster's
    CPUs set how many run at once); the results are the same.
    """
    from lrgym.backends.ray_backend import check_backend

    results: list[RunResult] = []
    check_backend(backend, address)
    if backend == "ray":
        from lrgym.backends.ray_backend import run_grid_on_ray

        def finished(spec: RunSpec, result: RunResult) -> None:
            if on_spec:
                on_spec(spec, result)
            if on_done:
                on_done(result)

        results = run_grid_on_ray(specs, run_one, total_steps, finished, address)
    elif workers <= 1:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # as in a worker: tiny models run fastest on one thread
        try:
            for s in specs:
                results.append(run_one(s, total_steps))
                if on_spec:
                    on_spec(s, results[-1])
                if on_done:
                    on_done(results[-1])
        finally:
            torch.set_num_threads(threads)
    else:
        spawn = multiprocessing.get_context("spawn")  # fork after torch threads is unsafe
        own_tasks = portable_specs(s.task for s in specs)
        with ProcessPoolExecutor(
            max_workers=workers,
            mp_context=spawn,
            initializer=_init_worker,
            initargs=(own_tasks,),
        ) as pool:
            futures = {pool.submit(_run_in_worker, s, total_steps): s for s in specs}
            finished: dict[RunSpec, RunResult] = {}
            try:
                for f in as_completed(futures):
                    finished[futures[f]] = f.result()
                    if on_spec:
                        on_spec(futures[f], finished[futures[f]])
                    if on_done:
                        on_done(finished[futures[f]])
            except BaseException:
                stop_pool(pool)
                raise
            results = [finished[s] for s in specs]
    runs = pd.DataFrame([r.row for r in results])
    curves = pd.DataFrame([c for r in results for c in r.curve])
    return runs, curves


def write_frames(out_dir: str | Path, runs: pd.DataFrame, curves: pd.DataFrame) -> None:
    """Write ``runs.csv`` and ``curves.csv`` atomically into ``out_dir``."""
    out = Path(out_dir)
    with atomic_path(out / "runs.csv") as tmp:
        runs.to_csv(tmp, index=False)
    with atomic_path(out / "curves.csv") as tmp:
        curves.to_csv(tmp, index=False)


__all__ = [
    "RUN_COLUMNS",
    "RunResult",
    "RunSpec",
    "grid",
    "run_grid",
    "run_one",
    "write_frames",
]
