"""Fine-tuning on meta-test tasks: steps and seconds to target, final accuracy and F1.

Each fine-tuning run is an ordinary comparison-harness run
(:func:`lrgym.harness.compare.run_one`) of a meta-test task (:mod:`lrgym.meta_init.tasks`) with a
scheduler (``constant``, ``learned:default`` …) from an init folder or from the task's
random init, exactly what ``lrgym compare --init DIR`` runs.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from lrgym.meta_init.tasks import register_meta_test_tasks, task_id

RANDOM_INIT = "random"
"""Label of the task's own random initialization."""

TARGET_EVERY = 1
"""Steps between target checks in fine-tuning (see :class:`~lrgym.harness.compare.RunSpec`): one
step, where the decision interval (10) would tie every init that gets there within the
first decision."""


@dataclass(frozen=True)
class FinetuneSpec:
    """A fine-tuning grid: meta-test tasks × inits × schedulers × seeds.

    Attributes:
        family: Family name.
        inits: Label → init folder (None: random init).
        schedulers: Comparison-harness scheduler names.
        tasks: Number of meta-test tasks (``0 … tasks-1``).
        seeds: Fine-tuning seeds (model init of the random baseline, batch order).
        family_options: Options of the family (``data``, ``cache_dir``).
        optimizer: Fine-tune with this optimizer instead of the family's (``"adam"``).
        lr: Fine-tuning LR instead of the family's.
        target_every: Check the target every this many steps (default
            :data:`TARGET_EVERY`).
        split: ``"meta-test"``, or ``"meta-val"`` for same-shaped tasks of the meta-val
            pool (to fix a protocol on, see :func:`calibrate_target`).
    """

    family: str
    inits: dict[str, str | None]
    schedulers: tuple[str, ...] = ("constant",)
    tasks: int = 20
    seeds: tuple[int, ...] = (0,)
    family_options: tuple[tuple[str, str], ...] = ()
    optimizer: str | None = None
    lr: float | None = None
    target_every: int | None = TARGET_EVERY
    split: str = "meta-test"


def finetune(spec: FinetuneSpec, on_run: Callable[[int, int], None] | None = None) -> pd.DataFrame:
    """Run the grid (one process, one torch thread); one row per run.

    Columns: ``init``, ``scheduler``, ``task_index``, ``seed``, ``steps_to_target``
    (∞ when missed), ``seconds_to_target``, ``final_val_accuracy``, ``test_accuracy``,
    ``test_macro_f1``, ``wall_seconds``.
    """
    import torch

    from lrgym.harness.compare import RunSpec, run_one

    register_meta_test_tasks(
        spec.family,
        optimizer=spec.optimizer,
        lr=spec.lr,
        split=spec.split,
        **dict(spec.family_options),
    )
    runs = [
        (label, path, sched, i, seed)
        for label, path in spec.inits.items()
        for sched in spec.schedulers
        for i in range(spec.tasks)
        for seed in spec.seeds
    ]
    rows = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for n, (label, path, sched, i, seed) in enumerate(runs):
            init = None if path is None else os.fspath(path)
            task = task_id(spec.family, i, spec.optimizer, spec.split)
            run = RunSpec(task, sched, seed, None, init, target_every=spec.target_every)
            row = run_one(run).row
            rows.append(
                {
                    "init": label,
                    "scheduler": sched,
                    "task_index": i,
                    "seed": seed,
                    "steps_to_target": row["steps_to_target"],
                    "seconds_to_target": row["seconds_to_target"],
                    "final_val_accuracy": row["final_val_metric"],
                    "test_accuracy": row.get("test_accuracy", math.nan),
                    "test_macro_f1": row.get("test_macro_f1", math.nan),
                    "wall_seconds": row["wall_seconds"],
                }
            )
            if on_run is not None:
                on_run(n + 1, len(runs))
    finally:
        torch.set_num_threads(threads)
    return pd.DataFrame(rows)


def summarize(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (init, scheduler): medians of steps/seconds to target (∞ if most missed),
    reach rate, mean final test accuracy and macro-F1, and the number of runs."""
    out = []
    for (init, sched), g in runs.groupby(["init", "scheduler"], sort=False):
        out.append(
            {
                "init": init,
                "scheduler": sched,
                "runs": len(g),
                "reached": float(np.isfinite(g["steps_to_target"]).mean()),
                "median_steps": float(np.median(g["steps_to_target"])),
                "median_seconds": float(np.median(g["seconds_to_target"])),
                "test_accuracy": float(g["test_accuracy"].mean()),
                "test_macro_f1": float(g["test_macro_f1"].mean()),
            }
        )
    return pd.DataFrame(out)


def calibrate_target(final_accuracy: Sequence[float], reach: float = 0.8) -> float:
    """The highest target (to 0.01) that at least ``reach`` of the runs end at or above.

    Give it random init's final validation accuracies on meta-val tasks
    (``FinetuneSpec(split="meta-val")``): the target is then fixed from random init's own
    runs on classes that meta-test never sees, before any meta-test number exists.

    Raises:
        ValueError: No finite accuracy, or ``reach`` outside (0, 1].
    """
    values = np.sort(np.asarray([v for v in final_accuracy if np.isfinite(v)], dtype=float))
    if len(values) == 0:
        raise ValueError("calibrate_target needs at least one finite final accuracy")
    if not 0 < reach <= 1:
        raise ValueError(f"reach must be in (0, 1], got {reach!r}")
    # the k-th smallest value with k = n - ceil(reach·n): at least ceil(reach·n) runs are >= it
    k = len(values) - math.ceil(reach * len(values) - 1e-9)
    return math.floor(values[k] * 100 + 1e-9) / 100


def ratio(a: float, b: float) -> float:
    """``a / b`` for step counts: NaN when both are 0 or both ∞, ∞ when only ``b`` is 0."""
    if (a == 0 and b == 0) or (math.isinf(a) and math.isinf(b)):
        return math.nan
    if b == 0:
        return math.inf
    return a / b


def format_number(value: object, digits: int = 3) -> str:
    """A table cell: floats to ``digits`` significant figures, NaN as n/a, ∞ as ∞."""
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        if math.isinf(value):
            return "∞"
        return f"{value:.{digits}g}"
    return str(value)


def markdown_table(summary: pd.DataFrame, columns: Sequence[str] | None = None) -> str:
    """A summary frame as a Markdown table (numbers to 3 significant figures)."""
    from lrgym.harness.report import md_table

    cols = list(columns or summary.columns)
    return md_table(cols, [[format_number(r[c]) for c in cols] for _, r in summary.iterrows()])
