"""`lrgym tasks`, `lrgym check` and `lrgym calibrate`."""

from __future__ import annotations

import math
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from lrgym.cli import (
    TotalStepsOption,
    WorkersOption,
    _fail,
    _grid_progress,
    _help,
    _split_values,
    app,
    console,
)


@app.command(
    help=_help(
        "List every registered task and env variant: metric, target, what its env controls.",
        "One table per split. Under each id: its domain, model and data (for a variant: "
        "the task it varies). The target is the validation metric a run must reach.",
    )
)
def tasks(
    split: Annotated[
        str | None, typer.Option(help="Only this split: meta-train, held-out or real.")
    ] = None,
) -> None:
    """List every registered task and env variant (see the help text above)."""
    from lrgym.core.registration import make_task, spec, task_ids
    from lrgym.core.task import SPLITS

    if split is not None and split not in SPLITS:
        raise _fail(f"--split must be one of {', '.join(SPLITS)}, got {split!r}")
    rows: dict[str, list[tuple[str, str, str, str, str]]] = {s: [] for s in SPLITS}
    for task_id in task_ids(split, variants=True, superseded=True):
        info = make_task(task_id).info
        task_spec = spec(task_id)
        hparams = task_spec.env_kwargs.get("hparams", ["lr"])
        base = task_spec.env_kwargs.get("task") if task_spec.is_variant else None
        about = f"variant of {base}" if base else f"{info.domain}; {info.model}; {info.data}"
        metric, target, kind = info.metric, f"{info.target:g}", "variant" if base else "task"
        if task_spec.is_family:  # its drawn tasks differ in metric; their targets are floors
            about = f"procedural family: {task_spec.size:,} drawn tasks, <Name>-<index>-vN"
            metric, target, kind = "varies", "floor", "family"
        cell = f"{escape(task_id)}\n[dim]{escape(about)}[/]"
        rows.setdefault(info.split, []).append((cell, metric, target, ", ".join(hparams), kind))
    widest = max([24, *(len(t) for t in task_ids(split, variants=True, superseded=True))])
    for i, (name, found) in enumerate((n, f) for n, f in rows.items() if f):
        if i:
            console.print()
        kinds = [row[-1] for row in found]
        counted = ", ".join(
            f"{kinds.count(k)} {plural}"
            for k, plural in (("task", "tasks"), ("variant", "variants"), ("family", "families"))
            if kinds.count(k) or k == "task"
        )
        table = Table(
            title=f"[bold]{name}[/]: {counted}",
            title_justify="left",
            box=None,
            header_style="bold underline",
            pad_edge=False,
        )
        table.add_column("id (domain; model; data)", width=widest, overflow="fold")
        table.add_column("metric")
        table.add_column("target", justify="right")
        table.add_column("controls")
        for row in found:
            table.add_row(*row[:-1])
        console.print(table)


@app.command()
def check(
    task_id: Annotated[str, typer.Argument(help="Registered task id, e.g. lrgym/DigitsMLP-v0.")],
    steps: Annotated[int, typer.Option(min=1, help="Step budget of the short runs.")] = 60,
) -> None:
    """Run the contract checks on one task and say plainly what is wrong."""
    from lrgym.core.registration import UnknownTaskError
    from lrgym.harness.check import check_task

    try:
        results = check_task(task_id, steps)
    except UnknownTaskError as exc:
        raise _fail(str(exc)) from None
    for r in results:
        mark = "[green]PASS[/]" if r.passed else "[red]FAIL[/]"
        console.print(f"{mark} {escape(r.name)}" + (f": {escape(r.detail)}" if r.detail else ""))
    if not all(r.passed for r in results):
        raise typer.Exit(code=1)


@app.command(
    help=_help(
        "Measure a task's target: 0.97 × the best static schedule's median validation metric.",
        "Runs the seven static baselines at the task's default LR on seeds 100-104, which "
        "evaluations do not use, and takes the best schedule's median final validation "
        "metric (the rule of every built-in task). The target goes into lrgym_targets.json "
        "in the folder of the module that defines the task; a task whose TaskInfo says "
        "target=math.inf reads it from there (a finite target in code wins). The line "
        "target=… is printed too, to paste into the code instead.",
    )
)
def calibrate(
    tasks: Annotated[
        list[str],
        typer.Argument(
            metavar="TASK",
            help="Task ids (or the sets meta-train, held-out, real, all) to calibrate.",
        ),
    ],
    seeds: Annotated[int, typer.Option(min=1, help="Number of seeds.")] = 5,
    seed_start: Annotated[
        int, typer.Option(min=0, help="First seed (evaluations use 0 … N-1 by default).")
    ] = 100,
    workers: WorkersOption = 1,
    total_steps: TotalStepsOption = None,
    write: Annotated[
        bool,
        typer.Option(help="Write the target into lrgym_targets.json beside the task's module."),
    ] = True,
) -> None:
    """Measure tasks' targets (see the help text above)."""
    from lrgym.controllers import BASELINES
    from lrgym.core.registration import UnknownTaskError, select_tasks
    from lrgym.harness.calibrate import calibrate as run_calibration
    from lrgym.harness.calibrate import write_calibration
    from lrgym.tasks.sources import DataSourceError

    try:
        chosen = select_tasks(_split_values(tasks))
    except (UnknownTaskError, ValueError) as exc:
        raise _fail(str(exc)) from None
    with _grid_progress() as progress:
        bar = progress.add_task("calibrating", total=len(BASELINES) * seeds * len(chosen))

        def done(result) -> None:
            row = result.row
            text = escape(f"{row['task']} {row['scheduler']}")  # names are not markup
            progress.update(bar, advance=1, description=text)

        try:
            found = run_calibration(
                chosen,
                seeds=range(seed_start, seed_start + seeds),
                workers=workers,
                total_steps=total_steps,
                on_done=done,
            )
        except (ValueError, ImportError, DataSourceError) as exc:
            raise _fail(str(exc)) from None
    for cal in found:
        table = Table(title=escape(f"{cal.task}: median final validation {cal.metric}"))
        table.add_column("schedule")
        table.add_column("median", justify="right")
        for name, value in sorted(cal.medians.items(), key=lambda kv: -kv[1]):
            table.add_row(name, f"{value:.4f}")
        console.print(table)
        console.print(
            f"{escape(cal.task)}: target={cal.target:g}  (0.97 × {cal.best_median:.4f}, "
            f"{cal.best_scheduler}; seeds {cal.seeds[0]}-{cal.seeds[-1]})",
            highlight=False,
        )
        if cal.best_median <= 0:
            console.print(
                "[yellow]note:[/] the best median is not positive: the 0.97 rule assumes a "
                "metric that the task learns; check the task before using this target."
            )
        path = write_calibration(cal) if write else None
        if path is not None:
            console.print(f"  written to {escape(str(path))}", highlight=False)
        elif write and cal.task.startswith("lrgym/"):
            console.print("  (a built-in task: its target is fixed in lrgym; nothing written)")
        if path is not None and math.isfinite(cal.code_target):
            console.print(
                f"  [yellow]note:[/] the task's code sets target={cal.code_target:g}, which "
                f"takes precedence: paste target={cal.target:g} there, or set "
                "target=math.inf to read the file."
            )
