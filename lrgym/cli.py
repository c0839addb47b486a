"""The `lrgym` command line: list tasks, check a task, compare schedulers."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Table

app = typer.Typer(
    help="lrgym: learn how to train neural networks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)


def _fail(message: str) -> typer.Exit:
    """Print ``message`` as an error and return the exit to raise (code 2)."""
    err_console.print(f"[bold red]error:[/] {escape(message)}")
    return typer.Exit(code=2)


def _split_values(values: list[str]) -> list[str]:
    """Accept both repeated options and comma-separated values."""
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


def _parse_lrs(values: list[str]) -> list[float | None]:
    lrs: list[float | None] = []
    for v in _split_values(values):
        if v == "default":
            lrs.append(None)
            continue
        try:
            lr = float(v)
        except ValueError:
            raise _fail(f"initial LR {v!r} is not a number; pass e.g. 1e-3 or 'default'") from None
        if not (math.isfinite(lr) and lr > 0):
            raise _fail(f"initial LR must be a finite number > 0, got {v!r}")
        lrs.append(lr)
    return lrs or [None]


def _check_out_dir(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise _fail(f"--out {out} is a file; pass a directory path")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".lrgym-write-test"
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise _fail(f"cannot write to --out {out}: {exc.strerror or exc}") from None


@app.command()
def tasks(
    split: Annotated[
        str | None, typer.Option(help="Only this split: meta-train, held-out or real.")
    ] = None,
) -> None:
    """List every registered task (and env variant) with its domain, model, data, metric,
    target, split and the hyperparameters its environment controls."""
    from lrgym.registration import make_task, spec, task_ids
    from lrgym.task import SPLITS

    if split is not None and split not in SPLITS:
        raise _fail(f"--split must be one of {', '.join(SPLITS)}, got {split!r}")
    table = Table(title="lrgym tasks")
    table.add_column("id", no_wrap=True)
    for col in ("domain", "model", "data", "metric", "target", "split", "controls"):
        table.add_column(col)
    for task_id in task_ids(split, variants=True):
        info = make_task(task_id).info
        controls = ", ".join(spec(task_id).env_kwargs.get("hparams", ["lr"]))
        table.add_row(
            task_id,
            info.domain,
            info.model,
            info.data,
            info.metric,
            f"{info.target:g}",
            info.split,
            controls,
        )
    console.print(table)


@app.command()
def check(
    task_id: Annotated[str, typer.Argument(help="Registered task id, e.g. lrgym/DigitsMLP-v0.")],
    steps: Annotated[int, typer.Option(min=1, help="Step budget of the short runs.")] = 60,
) -> None:
    """Run the contract checks on one task and say plainly what is wrong."""
    from lrgym.check import check_task
    from lrgym.registration import UnknownTaskError

    try:
        results = check_task(task_id, steps)
    except UnknownTaskError as exc:
        raise _fail(str(exc)) from None
    for r in results:
        mark = "[green]PASS[/]" if r.passed else "[red]FAIL[/]"
        console.print(f"{mark} {r.name}" + (f": {r.detail}" if r.detail else ""))
    if not all(r.passed for r in results):
        raise typer.Exit(code=1)


# Options shared by `compare` and `evaluate`.
TasksOption = Annotated[
    list[str], typer.Option("--tasks", help="Task ids, 'meta-train', 'held-out', 'real' or 'all'.")
]
SeedsOption = Annotated[int, typer.Option(help="Number of seeds (0 .. N-1).")]
InitialLrsOption = Annotated[
    list[str], typer.Option("--initial-lrs", help="Initial LRs, or 'default'.")
]
OutOption = Annotated[Path, typer.Option(help="Output directory.")]
TotalStepsOption = Annotated[
    int | None, typer.Option(min=1, help="Override every task's step budget.")
]
WorkersOption = Annotated[int, typer.Option(min=1, help="Parallel worker processes.")]


@app.command()
def compare(
    tasks: TasksOption = ["held-out"],  # noqa: B006 - typer reads list defaults this way
    schedulers: Annotated[
        list[str], typer.Option("--schedulers", help="Scheduler names, or 'baselines'.")
    ] = ["baselines"],  # noqa: B006
    seeds: SeedsOption = 3,
    initial_lrs: InitialLrsOption = ["default"],  # noqa: B006
    out: OutOption = Path("results/compare"),
    total_steps: TotalStepsOption = None,
    workers: WorkersOption = 1,
) -> None:
    """Run every (task, scheduler, seed, initial LR) and write runs.csv, curves.csv,
    summary.md and plots to OUT."""
    from lrgym.controllers import BASELINES

    names = [n for s in _split_values(schedulers) for n in (BASELINES if s == "baselines" else [s])]
    _run_comparison(tasks, names, seeds, initial_lrs, out, total_steps, workers)


def _run_comparison(
    tasks: list[str],
    schedulers: list[str],
    seeds: int,
    initial_lrs: list[str],
    out: Path,
    total_steps: int | None,
    workers: int,
):
    """Validate, run the grid with a progress bar, write runs, curves, summary and plots."""
    from lrgym.compare import grid, run_grid, write_frames
    from lrgym.registration import UnknownTaskError, select_tasks
    from lrgym.report import write_report
    from lrgym.tasks.sources import DataSourceError

    if seeds < 1:
        raise _fail("--seeds must be at least 1")
    lrs = _parse_lrs(initial_lrs)
    try:
        specs = grid(select_tasks(_split_values(tasks)), schedulers, range(seeds), lrs)
    except (UnknownTaskError, ValueError, ImportError) as exc:  # ImportError: optional extra
        raise _fail(str(exc)) from None
    _check_out_dir(out)
    progress = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )
    with progress:
        bar = progress.add_task("runs", total=len(specs))

        def done(result) -> None:
            row = result.row
            progress.update(bar, advance=1, description=f"{row['task']} {row['scheduler']}")

        try:
            runs, curves = run_grid(specs, total_steps=total_steps, workers=workers, on_done=done)
        except DataSourceError as exc:  # a real task's data could not be read
            raise _fail(str(exc)) from None
    write_frames(out, runs, curves)
    summary = write_report(out, runs, curves)
    console.print(f"wrote {len(runs)} runs to {out}/runs.csv; summary: {summary}")
    return summary


@app.command()
def train(
    config: Annotated[Path | None, typer.Option(help="YAML config (flags override it).")] = None,
    tasks: Annotated[
        list[str] | None, typer.Option("--tasks", help="Meta-train task ids or 'meta-train'.")
    ] = None,
    total_timesteps: Annotated[int | None, typer.Option(help="Env steps to train.")] = None,
    n_envs: Annotated[int | None, typer.Option(help="Parallel envs (0: one per core).")] = None,
    decision_interval: Annotated[int | None, typer.Option(help="Steps per decision.")] = None,
    episode_steps: Annotated[int | None, typer.Option(help="Optimizer steps per episode.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of everything random.")] = None,
    out: Annotated[Path | None, typer.Option(help="Agent output directory.")] = None,
    name: Annotated[str | None, typer.Option(help="Agent name for its card.")] = None,
    learning_rate: Annotated[float | None, typer.Option(help="PPO learning rate.")] = None,
    n_steps: Annotated[int | None, typer.Option(help="PPO rollout steps per env.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="PPO minibatch size.")] = None,
    ent_coef: Annotated[float | None, typer.Option(help="PPO entropy coefficient.")] = None,
    gamma: Annotated[float | None, typer.Option(help="PPO discount factor.")] = None,
    eval_every: Annotated[
        int | None, typer.Option(help="Score the validation slice every N timesteps.")
    ] = None,
    default_lr_share: Annotated[
        float | None, typer.Option(help="Share of episodes starting at the task's default LR.")
    ] = None,
    hparams: Annotated[
        list[str] | None,
        typer.Option("--hparams", help="Controlled hyperparameters, 'lr' first."),
    ] = None,
    drop_features: Annotated[
        list[str] | None,
        typer.Option("--drop-features", help="Feature groups or features to hide (ablations)."),
    ] = None,
    resume: Annotated[
        Path | None, typer.Option(help="Continue the interrupted run in this directory.")
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Meta-train a PPO agent across meta-train tasks and write an agent directory."""
    from lrgym.agents.config import ConfigError, load_config
    from lrgym.agents.train import CONFIG
    from lrgym.agents.train import train as run_training
    from lrgym.registration import UnknownTaskError

    ppo = {
        k: v
        for k, v in dict(
            learning_rate=learning_rate,
            n_steps=n_steps,
            batch_size=batch_size,
            ent_coef=ent_coef,
            gamma=gamma,
        ).items()
        if v is not None
    }
    if resume is not None:
        if not (resume / CONFIG).is_file():
            raise _fail(f"--resume {resume}: no {CONFIG} there; pass the --out of the run")
        config = resume / CONFIG
        out = resume
    try:
        cfg = load_config(
            config,
            tasks=_split_values(tasks) if tasks else None,
            total_timesteps=total_timesteps,
            n_envs=n_envs,
            decision_interval=decision_interval,
            episode_steps=episode_steps,
            seed=seed,
            out=str(out) if out else None,
            name=name,
            default_lr_share=default_lr_share,
            eval_every=eval_every,
            drop_features=_split_values(drop_features) if drop_features else None,
            hparams=_split_values(hparams) if hparams else None,
            ppo=ppo or None,
        )
        path = run_training(cfg, resume=resume is not None, progress_bar=progress)
    except (ConfigError, UnknownTaskError, ValueError) as exc:
        raise _fail(str(exc)) from None
    console.print(f"agent written to {path} (load with lrgym.load_agent({str(path)!r}))")


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
) -> None:
    """Compare a learned agent with every static baseline; same report as `compare`."""
    from lrgym.agent import AgentLoadError, load_agent
    from lrgym.controllers import BASELINES, LEARNED_PREFIX

    try:
        loaded = load_agent(agent)
    except AgentLoadError as exc:
        raise _fail(str(exc)) from None
    names = [f"{LEARNED_PREFIX}{agent}", *BASELINES]
    summary = _run_comparison(tasks, names, seeds, initial_lrs, out, total_steps, workers)
    if update_card:
        card = loaded.card
        card.evaluation[", ".join(_split_values(tasks))] = summary.read_text(encoding="utf-8")
        card.save(loaded.path)
        console.print(f"updated {loaded.path / 'card.json'}")


@app.command("convert-agent")
def convert_agent(
    directory: Annotated[Path, typer.Argument(help="Agent directory with card.json + policy.pt.")],
    out: Annotated[
        Path | None, typer.Option(help="Write the converted agent here (default: in place).")
    ] = None,
) -> None:
    """Convert an old TorchScript agent (policy.pt) to policy.safetensors.

    This loads and RUNS the TorchScript in policy.pt: convert only agents you trust.

    The result must match it within 1e-6 on 10,000 seeded observations.

    Then policy.pt is removed (in place), or the source is left as it is (--out).
    """
    from lrgym.agent import AgentLoadError
    from lrgym.agent_convert import convert_agent as run_conversion

    try:
        done = run_conversion(directory, out)
    except AgentLoadError as exc:
        raise _fail(str(exc)) from None
    except OSError as exc:
        raise _fail(f"cannot write the converted agent: {exc.strerror or exc}") from None
    console.print(
        f"converted {directory} -> {done.path}: max |action difference| "
        f"{done.max_abs_diff:.3g} on {done.observations} observations"
    )


@app.command("train-predictor")
def train_predictor(
    runs: Annotated[
        list[Path],
        typer.Option("--runs", help="Output directories of `lrgym compare` on meta-train tasks."),
    ],
    out: Annotated[Path, typer.Option(help="Predictor file to write.")] = Path(
        "runs/lr_predictor.pt"
    ),
    epochs: Annotated[int, typer.Option(min=1, help="Training epochs.")] = 40,
    seed: Annotated[int, typer.Option(help="Seed of the split, init and batch order.")] = 0,
) -> None:
    """Train the LR predictor (2×64 ReLU MLP) on logged runs; use it as
    `--schedulers lr-predictor:OUT`."""
    import pandas as pd

    from lrgym.controllers.lr_predictor import PredictorTraining, training_data
    from lrgym.controllers.lr_predictor import train_predictor as fit

    frames: dict[str, list[pd.DataFrame]] = {"runs.csv": [], "curves.csv": []}
    for directory in runs:
        for name, found in frames.items():
            path = directory / name
            if not path.is_file():
                raise _fail(f"--runs {directory}: no {name} there; pass an `lrgym compare --out`")
            found.append(pd.read_csv(path))
    if out.exists() and out.is_dir():
        raise _fail(f"--out {out} is a directory; pass a file path such as {out}/lr_predictor.pt")
    try:
        data = training_data(pd.concat(frames["runs.csv"]), pd.concat(frames["curves.csv"]))
        predictor = fit(data, PredictorTraining(epochs=epochs, seed=seed))
        path = predictor.save(out)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    except OSError as exc:
        raise _fail(f"cannot write --out {out}: {exc.strerror or exc}") from None
    info = predictor.info
    console.print(
        f"trained on {info['rows']} decisions from {len(info['tasks'])} tasks; validation MSE "
        f"{info['validation_mse']:.4f} (keeping the LR: {info['validation_mse_keep_lr']:.4f})"
    )
    console.print(f"predictor written to {path} (use it as --schedulers lr-predictor:{path})")


def main() -> None:
    """Entry point for ``python -m lrgym``."""
    app()
