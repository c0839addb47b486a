"""`lrgym compare` and `lrgym evaluate`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from lrgym.cli import (
    AddressOption,
    BackendOption,
    InitialLrsOption,
    OutOption,
    SeedsOption,
    SeedStartOption,
    TasksOption,
    TotalStepsOption,
    WorkersOption,
    _check_out_dir,
    _connect_backend,
    _fail,
    _grid_progress,
    _help,
    _parse_lrs,
    _split_values,
    app,
    console,
)

SCHEDULERS_HELP = (
    "Comma-separated scheduler names: 'baselines' (the seven static schedules constant, "
    "step, exponential, cosine, cyclic, onecycle, plateau), any of those, feedback-rule, "
    "hypergradient, schedulefree-adamw, prodigy, pbt (Ray Tune's population-based training; "
    "pbt:P or pbt:P:I for population P, PBT every I evaluations), learned:NAME|PATH (a trained "
    "agent, e.g. learned:default or learned:runs/agent) or lr-predictor:PATH (a trained LR "
    "predictor)."
)
"""Kept in step with :data:`lrgym.controllers.CONTROLLERS` by
tests/test_first_hour.py::test_scheduler_help_names_every_controller."""

InitOption = Annotated[
    str | None,
    typer.Option(
        "--init",
        metavar="DIR",
        help="Start every run's model from this init (`lrgym meta-init --out DIR`) instead of "
        "its random init; the task's model must have the init's architecture (e.g. --tasks "
        "meta-init-digits, the init family's meta-test tasks).",
    ),
]


InitDataOption = Annotated[
    str | None,
    typer.Option(
        "--init-data",
        metavar="PATH",
        help="The data of --init's family, for families that need it (e.g. cifar10): the "
        "path given to `lrgym meta-init --data` (an init's card never names paths).",
    ),
]


INIT_MARKER = "init.json"
"""In a results folder run with ``--init``: the init's path, the digest of its weights
and card, and ``--init-data``."""


def _prepare_init(init: str | None, out: Path, data: str | None = None) -> dict[str, str] | None:
    """Check ``--init`` (an init folder), register its family's meta-test tasks (with
    ``--init-data``), and check that ``out`` holds no runs of another init (a journal is
    reused only for the same init, card and data). Returns what ``OUT/init.json`` holds
    for it: ``init`` (its path), ``sha256`` (of its weights and card) and ``data``."""
    if init is None:
        if data is not None:
            raise _fail("--init-data needs --init (it is the data of the init's family)")
        return None
    from lrgym.harness.results_store import folder_fingerprint
    from lrgym.io.file_checks import FileCheckError, read_json
    from lrgym.meta_init import register_meta_test_tasks
    from lrgym.meta_init.checkpoint import InitLoadError, read_init, resolve_init
    from lrgym.tasks.sources import DataSourceError

    path = resolve_init(init)
    try:
        _, card = read_init(path)
        options = dict(card.family_options)
        if data is not None:
            options["data"] = data
        register_meta_test_tasks(card.family, **options)
    except (InitLoadError, DataSourceError, TypeError, ValueError) as exc:
        raise _fail(f"--init: {exc}") from None
    marker = out / INIT_MARKER
    mine = {"init": str(path.resolve()), "sha256": folder_fingerprint(path), "data": data}
    if marker.exists() or marker.is_symlink():
        try:
            recorded = read_json(marker, "results marker")
        except FileCheckError as exc:
            raise _fail(
                f"{exc}; delete it (and {out / 'runs.jsonl'}) or pass another --out"
            ) from None
        if recorded != mine:
            raise _fail(
                f"{out} holds runs of another --init, init card or --init-data ({marker}); "
                "pass another --out"
            )
    elif (out / "runs.jsonl").exists():
        raise _fail(f"{out} holds runs without --init; pass another --out")
    return mine


@app.command(
    help=_help(
        "Train every task with every scheduler; write runs, curves, a summary and plots.",
        "Every (task, scheduler, seed, initial LR) is one plain training run. OUT gets "
        "runs.csv, curves.csv, summary.md and plots/. Each finished run is kept in "
        "OUT/runs.jsonl at once: after an interruption, the same command runs only the rest.",
    )
)
def compare(
    tasks: TasksOption = ["held-out"],  # noqa: B006 - typer reads list defaults this way
    schedulers: Annotated[
        list[str], typer.Option("--schedulers", metavar="NAME,...", help=SCHEDULERS_HELP)
    ] = ["baselines"],  # noqa: B006
    seeds: SeedsOption = 3,
    initial_lrs: InitialLrsOption = ["default"],  # noqa: B006
    out: OutOption = Path("results/compare"),
    total_steps: TotalStepsOption = None,
    workers: WorkersOption = 1,
    seed_start: SeedStartOption = 0,
    backend: BackendOption = "local",
    address: AddressOption = None,
    init: InitOption = None,
    init_data: InitDataOption = None,
) -> None:
    """Train every task with every scheduler (see the help text above)."""
    from lrgym.controllers import BASELINES

    names = [n for s in _split_values(schedulers) for n in (BASELINES if s == "baselines" else [s])]
    _run_comparison(
        tasks,
        names,
        seeds,
        initial_lrs,
        out,
        total_steps,
        workers,
        seed_start=seed_start,
        backend=backend,
        address=address,
        init=init,
        init_data=init_data,
    )


def _run_comparison(
    tasks: list[str],
    schedulers: list[str],
    seeds: int,
    initial_lrs: list[str],
    out: Path,
    total_steps: int | None,
    workers: int,
    seed_start: int = 0,
    backend: str = "local",
    address: str | None = None,
    init: str | None = None,
    init_data: str | None = None,
):
    """Validate, run the grid with a progress bar, write runs, curves, summary and plots.

    Each finished run is recorded in OUT/runs.jsonl at once; runs already recorded there
    are not run again (see :mod:`lrgym.harness.results_store`). ``backend="ray"`` runs each run
    as a Ray task (at the cluster ``address``). ``init`` is an init folder every run's
    model starts from (OUT/init.json names it).
    """
    from lrgym.core.registration import UnknownTaskError, select_tasks
    from lrgym.harness.compare import grid
    from lrgym.harness.results_store import JOURNAL, REPORT_FILES, run_recorded, write_results
    from lrgym.io._atomic import UnsafePathError, refuse_links, write_text_atomic
    from lrgym.tasks.sources import DataSourceError

    if seeds < 1:
        raise _fail("--seeds must be at least 1")
    lrs = _parse_lrs(initial_lrs)
    if not _split_values(tasks):
        raise _fail("--tasks is empty; pass task ids, 'meta-train', 'held-out', 'real' or 'all'")
    if not schedulers:
        raise _fail("--schedulers is empty; pass scheduler names or 'baselines'")
    marker = _prepare_init(init, out, init_data)
    init = None if marker is None else marker["init"]
    try:
        seed_range = range(seed_start, seed_start + seeds)
        specs = grid(select_tasks(_split_values(tasks)), schedulers, seed_range, lrs, init)
        if init is not None:  # an architecture mismatch fails now, not in a worker
            _check_init_fits(specs, init)
    except (UnknownTaskError, ValueError, ImportError) as exc:  # ImportError: optional extra
        raise _fail(str(exc)) from None
    if not specs:
        raise _fail(
            f"nothing to run: the schedulers ({', '.join(schedulers)}) apply to none of the "
            "tasks (e.g. optimizer-level controllers skip XGBoost tasks); pick others"
        )
    _connect_backend(backend, address)
    _check_out_dir(out)
    try:  # before any run: a planted link would have results written outside `out`
        refuse_links(out, *REPORT_FILES)
    except UnsafePathError as exc:
        raise _fail(str(exc)) from None
    if marker is not None:
        import json

        write_text_atomic(out / INIT_MARKER, json.dumps(marker) + "\n", root=out)
    progress = _grid_progress()
    with progress:
        bar = progress.add_task("runs", total=len(specs))

        def done(result) -> None:
            row = result.row
            text = escape(f"{row['task']} {row['scheduler']}")  # names are not markup
            progress.update(bar, advance=1, description=text)

        def skipped(n: int) -> None:
            if n:
                progress.update(bar, advance=n)
                console.print(
                    f"{n} of {len(specs)} runs already recorded in {escape(str(out / JOURNAL))}"
                )

        try:
            runs, curves = run_recorded(
                out,
                specs,
                total_steps,
                workers,
                on_done=done,
                on_skip=skipped,
                backend=backend,
                address=address,
            )
        except DataSourceError as exc:  # a real task's data could not be read
            raise _fail(f"{exc} (finished runs are kept in {out / JOURNAL})") from None
        except ValueError as exc:  # e.g. a runs.jsonl changed by hand
            raise _fail(str(exc)) from None
    try:
        summary = write_results(out, runs, curves)
    except ValueError as exc:  # e.g. a link planted in `out` during the runs
        raise _fail(f"{exc} (finished runs are kept in {out / JOURNAL})") from None
    # paths are text, not rich markup: a folder named "[x]" prints as is
    console.print(f"wrote {len(runs)} runs to {escape(str(out / 'runs.csv'))}; summary: ", end="")
    console.print(str(summary), markup=False, highlight=False)
    return summary


@app.command()
def evaluate(
    agent: Annotated[str, typer.Option(help="Shipped agent name or agent directory.")] = "default",
    tasks: TasksOption = ["held-out"],  # noqa: B006
    seeds: SeedsOption = 5,
    initial_lrs: InitialLrsOption = ["default"],  # noqa: B006
    out: OutOption = Path("results/evaluate"),
    total_steps: TotalStepsOption = None,
    workers: WorkersOption = 1,
    update_card: Annotated[
        bool, typer.Option(help="Also write the summary into the agent's card.")
    ] = False,
    seed_start: SeedStartOption = 0,
    backend: BackendOption = "local",
    address: AddressOption = None,
    init: InitOption = None,
    init_data: InitDataOption = None,
) -> None:
    """Compare a learned agent with every static baseline; same report as `compare`."""
    from lrgym.controllers import BASELINES, LEARNED_PREFIX
    from lrgym.deploy.agent import AgentLoadError, is_shipped, load_agent

    try:
        loaded = load_agent(agent)
    except AgentLoadError as exc:
        raise _fail(str(exc)) from None
    if update_card and is_shipped(loaded.path):
        raise _fail(
            f"--update-card: {agent!r} is shipped with lrgym and its card is part of the "
            f"installed package; copy it first (cp -r {loaded.path} my-agent) and pass "
            "--agent my-agent --update-card"
        )
    names = [f"{LEARNED_PREFIX}{agent}", *BASELINES]
    summary = _run_comparison(
        tasks,
        names,
        seeds,
        initial_lrs,
        out,
        total_steps,
        workers,
        seed_start=seed_start,
        backend=backend,
        address=address,
        init=init,
        init_data=init_data,
    )
    if update_card:
        card = loaded.card
        card.evaluation[", ".join(_split_values(tasks))] = summary.read_text(encoding="utf-8")
        card.save(loaded.path)
        console.print(f"updated {escape(str(loaded.path / 'card.json'))}")


def _check_init_fits(specs, init: str) -> None:
    """Build each task's model once and load the init into it (a mismatch is a clear
    error naming both architectures, raised before any run)."""
    from lrgym.core.registration import make_task
    from lrgym.meta_init.checkpoint import InitLoadError, apply_init

    for task in dict.fromkeys(s.task for s in specs):
        t = make_task(task)
        try:
            apply_init(t.build(0, t.info.default_lr), init)
        except InitLoadError as exc:
            raise ValueError(f"--init {init} on {task}: {exc}") from None
