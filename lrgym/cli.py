"""The `lrgym` command line: list tasks, check a task, compare schedulers."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Table

from lrgym.train_report import AverageETAColumn

app = typer.Typer(
    help="lrgym: learn how to train neural networks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)

IMPORT_ENV = "LRGYM_IMPORT"  # lrgym.registration.IMPORT_ENV (not imported: keeps help fast)


@app.callback()
def _global_options(
    import_modules: Annotated[
        list[str] | None,
        typer.Option(
            "--import",
            metavar="MODULE,...",
            help="Import these modules first (comma-separated; the current folder is "
            "searched too), so the tasks they register can be used, e.g. --import "
            f"mylab.tasks. Also read from the {IMPORT_ENV} environment variable.",
        ),
    ] = None,
) -> None:
    """lrgym: learn how to train neural networks."""
    if not import_modules:
        return
    from lrgym.registration import import_user_modules

    try:
        names = import_user_modules(import_modules)
    except ImportError as exc:
        raise _fail(f"--import: {exc}") from None
    # worker processes (compare --workers, train's environments) import them too
    known = [n for n in os.environ.get(IMPORT_ENV, "").split(",") if n.strip()]
    os.environ[IMPORT_ENV] = ",".join(dict.fromkeys([*known, *names]))


def _fail(message: str) -> typer.Exit:
    """Print ``message`` as an error and return the exit to raise (code 2)."""
    err_console.print(f"[bold red]error:[/] {escape(message)}")
    return typer.Exit(code=2)


def _split_values(values: list[str]) -> list[str]:
    """Accept both repeated options and comma-separated values."""
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


def _parse_lrs(values: list[str]) -> list[float | None]:
    from lrgym.env import MAX_INITIAL_LR

    lrs: list[float | None] = []
    for v in _split_values(values):
        if v == "default":
            lrs.append(None)
            continue
        try:
            lr = float(v)
        except ValueError:
            raise _fail(f"initial LR {v!r} is not a number; pass e.g. 1e-3 or 'default'") from None
        if not (math.isfinite(lr) and 0 < lr <= MAX_INITIAL_LR):
            raise _fail(
                f"initial LR must be a finite number > 0 and <= {MAX_INITIAL_LR:g}, got {v!r}"
            )
        lrs.append(lr)
    if not lrs:
        raise _fail("--initial-lrs is empty; pass LRs such as 1e-3,1e-2 or 'default'")
    return lrs


def _folder(value: str | os.PathLike[str]) -> Path:
    """Parse a folder option: an empty value is an error, not the current folder."""
    text = os.fspath(value)
    if not text.strip():
        raise typer.BadParameter("is empty; pass a folder path")
    return Path(text)


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


def _help(*paragraphs: str) -> str:
    """A command's help text: paragraphs without inner line breaks (the help renders each
    line break, so a wrapped docstring would break sentences at the source's margin)."""
    return "\n\n".join(paragraphs)


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
    from lrgym.registration import make_task, spec, task_ids
    from lrgym.task import SPLITS

    if split is not None and split not in SPLITS:
        raise _fail(f"--split must be one of {', '.join(SPLITS)}, got {split!r}")
    rows: dict[str, list[tuple[str, str, str, str, str]]] = {s: [] for s in SPLITS}
    for task_id in task_ids(split, variants=True):
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
    widest = max([24, *(len(t) for t in task_ids(split, variants=True))])  # ids never cut
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
    list[str],
    typer.Option(
        "--tasks",
        metavar="TASK,...",
        help="Comma-separated task ids and/or the sets meta-train, held-out, real, all, "
        "procedural.",
    ),
]
SeedsOption = Annotated[
    int, typer.Option(help="Number of seeds per (task, scheduler, initial LR).")
]
SeedStartOption = Annotated[
    int,
    typer.Option(
        min=0,
        help="First seed: runs use seeds SEED_START … SEED_START+SEEDS-1. `lrgym calibrate` "
        "measures targets on 100-104, so keep evaluations below 100.",
    ),
]
InitialLrsOption = Annotated[
    list[str],
    typer.Option(
        "--initial-lrs",
        metavar="LR,...",
        help="Comma-separated initial LRs; 'default' is each task's default LR.",
    ),
]
OutOption = Annotated[
    Path, typer.Option(help="Output folder (runs.csv, curves.csv, summary.md).", parser=_folder)
]
TotalStepsOption = Annotated[
    int | None, typer.Option(min=1, help="Override every task's step budget.")
]
WorkersOption = Annotated[int, typer.Option(min=1, help="Parallel worker processes.")]


SCHEDULERS_HELP = (
    "Comma-separated scheduler names: 'baselines' (the seven static schedules constant, "
    "step, exponential, cosine, cyclic, onecycle, plateau), any of those, feedback-rule, "
    "hypergradient, schedulefree-adamw, prodigy, learned:NAME|PATH (a trained agent, e.g. "
    "learned:default or learned:runs/agent) or lr-predictor:PATH (a trained LR predictor)."
)
"""Kept in step with :data:`lrgym.controllers.CONTROLLERS` by tests/test_cli_help.py."""


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
) -> None:
    """Train every task with every scheduler (see the help text above)."""
    from lrgym.controllers import BASELINES

    names = [n for s in _split_values(schedulers) for n in (BASELINES if s == "baselines" else [s])]
    _run_comparison(
        tasks, names, seeds, initial_lrs, out, total_steps, workers, seed_start=seed_start
    )


def _grid_progress() -> Progress:
    """The progress bar of a grid of runs: done/total, elapsed, ETA at the average pace."""
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        AverageETAColumn(),
        console=console,
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
):
    """Validate, run the grid with a progress bar, write runs, curves, summary and plots.

    Each finished run is recorded in OUT/runs.jsonl at once; runs already recorded there
    are not run again (see :mod:`lrgym.results_store`).
    """
    from lrgym.compare import grid
    from lrgym.registration import UnknownTaskError, select_tasks
    from lrgym.results_store import JOURNAL, run_recorded, write_results
    from lrgym.tasks.sources import DataSourceError

    if seeds < 1:
        raise _fail("--seeds must be at least 1")
    lrs = _parse_lrs(initial_lrs)
    if not _split_values(tasks):
        raise _fail("--tasks is empty; pass task ids, 'meta-train', 'held-out', 'real' or 'all'")
    if not schedulers:
        raise _fail("--schedulers is empty; pass scheduler names or 'baselines'")
    try:
        seed_range = range(seed_start, seed_start + seeds)
        specs = grid(select_tasks(_split_values(tasks)), schedulers, seed_range, lrs)
    except (UnknownTaskError, ValueError, ImportError) as exc:  # ImportError: optional extra
        raise _fail(str(exc)) from None
    if not specs:
        raise _fail(
            f"nothing to run: the schedulers ({', '.join(schedulers)}) apply to none of the "
            "tasks (e.g. optimizer-level controllers skip XGBoost tasks); pick others"
        )
    _check_out_dir(out)
    progress = _grid_progress()
    with progress:
        bar = progress.add_task("runs", total=len(specs))

        def done(result) -> None:
            row = result.row
            progress.update(bar, advance=1, description=f"{row['task']} {row['scheduler']}")

        def skipped(n: int) -> None:
            if n:
                progress.update(bar, advance=n)
                console.print(f"{n} of {len(specs)} runs already recorded in {out / JOURNAL}")

        try:
            runs, curves = run_recorded(
                out, specs, total_steps, workers, on_done=done, on_skip=skipped
            )
        except DataSourceError as exc:  # a real task's data could not be read
            raise _fail(f"{exc} (finished runs are kept in {out / JOURNAL})") from None
        except ValueError as exc:  # e.g. a runs.jsonl changed by hand
            raise _fail(str(exc)) from None
    summary = write_results(out, runs, curves)
    console.print(f"wrote {len(runs)} runs to {out}/runs.csv; summary: {summary}")
    return summary


TRAIN_DEFAULTS = {
    "tasks": "meta-train",
    "total_timesteps": "30000",
    "n_envs": "4",
    "decision_interval": "each task's",
    "episode_steps": "each task's",
    "seed": "0",
    "out": "runs/agent",
    "name": "my-agent",
    "learning_rate": "0.0003",
    "n_steps": "128",
    "batch_size": "64",
    "ent_coef": "0.005",
    "gamma": "0.99",
    "eval_every": "6000",
    "checkpoint_every": "2000",
    "default_lr_share": "0.0",
    "hparams": "lr",
    "drop_features": "none",
}
"""`lrgym train`'s defaults as `--help` shows them (the flags default to None so that a
--config file can set them); tests/test_cli_help.py checks them against TrainConfig."""


def _train_option(name: str, help: str, *decls: str, **kwargs) -> typer.models.OptionInfo:
    default = f" \\[default: {TRAIN_DEFAULTS[name]}]"  # escaped: help text is rich markup
    return typer.Option(*decls, help=help + default, show_default=False, **kwargs)


@app.command(
    help=_help(
        "Meta-train a PPO agent on the meta-train tasks and write an agent folder.",
        "The defaults are the recipe of the shipped agent (trained_agents/default). Needs "
        'the training extra: pip install "lrgym\\[train]".',
    )
)
def train(
    config: Annotated[Path | None, typer.Option(help="YAML config (flags override it).")] = None,
    tasks: Annotated[
        list[str] | None,
        _train_option(
            "tasks",
            "Comma-separated meta-train task ids, meta-train, and/or procedural (32 drawn "
            "tasks; procedural:N for N).",
            "--tasks",
            metavar="TASK,...",
        ),
    ] = None,
    total_timesteps: Annotated[
        int | None, _train_option("total_timesteps", "Env steps (agent decisions) to train.")
    ] = None,
    n_envs: Annotated[
        int | None,
        _train_option(
            "n_envs",
            "Environment worker processes (0: one per core). Part of the recipe: a rollout "
            "is n-steps × n-envs.",
        ),
    ] = None,
    decision_interval: Annotated[
        int | None, _train_option("decision_interval", "Optimizer steps per decision.")
    ] = None,
    episode_steps: Annotated[
        int | None, _train_option("episode_steps", "Optimizer steps per episode.")
    ] = None,
    seed: Annotated[int | None, _train_option("seed", "Seed of everything random.")] = None,
    out: Annotated[
        Path | None, _train_option("out", "Agent output folder.", parser=_folder)
    ] = None,
    name: Annotated[str | None, _train_option("name", "Agent name for its card.")] = None,
    learning_rate: Annotated[
        float | None, _train_option("learning_rate", "PPO learning rate.")
    ] = None,
    n_steps: Annotated[int | None, _train_option("n_steps", "PPO rollout steps per env.")] = None,
    batch_size: Annotated[int | None, _train_option("batch_size", "PPO minibatch size.")] = None,
    ent_coef: Annotated[float | None, _train_option("ent_coef", "PPO entropy coefficient.")] = None,
    gamma: Annotated[float | None, _train_option("gamma", "PPO discount factor.")] = None,
    eval_every: Annotated[
        int | None,
        _train_option("eval_every", "Score the validation slice every N steps (model selection)."),
    ] = None,
    checkpoint_every: Annotated[
        int | None,
        _train_option("checkpoint_every", "Save a resumable checkpoint every N steps."),
    ] = None,
    default_lr_share: Annotated[
        float | None,
        _train_option("default_lr_share", "Share of episodes starting at the task's default LR."),
    ] = None,
    hparams: Annotated[
        list[str] | None,
        _train_option(
            "hparams",
            "Comma-separated hyperparameters to control, lr first (e.g. "
            "lr,momentum,weight_decay or lr,max_depth,subsample).",
            "--hparams",
            metavar="NAME,...",
        ),
    ] = None,
    drop_features: Annotated[
        list[str] | None,
        _train_option(
            "drop_features",
            "Comma-separated feature groups or features to hide (ablations).",
            "--drop-features",
            metavar="NAME,...",
        ),
    ] = None,
    batched: Annotated[
        int | None,
        typer.Option(
            help="Runs per task in each worker, trained as one stacked computation (0: off)."
        ),
    ] = None,
    resume: Annotated[
        Path | None,
        typer.Option(help="Continue the interrupted run in this folder (its --out)."),
    ] = None,
    overwrite: Annotated[
        bool,
        typer.Option(help="Replace an earlier run in --out (a new run needs an empty --out)."),
    ] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Meta-train a PPO agent (see the help text above)."""
    try:
        import stable_baselines3  # noqa: F401
    except ImportError:
        raise _fail(
            "`lrgym train` needs the training extra (stable-baselines3, TensorBoard): "
            'pip install "lrgym[train]"'
        ) from None
    from lrgym.agent import load_card
    from lrgym.agents.config import ConfigError, load_config
    from lrgym.agents.train import CONFIG
    from lrgym.agents.train import train as run_training
    from lrgym.registration import UnknownTaskError
    from lrgym.train_report import TrainReporter, cli_command

    reporter = TrainReporter(console, progress=progress)

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
        if overwrite:
            raise _fail("--resume continues a run and --overwrite replaces it: pass one")
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
            checkpoint_every=checkpoint_every,
            drop_features=_split_values(drop_features) if drop_features else None,
            hparams=_split_values(hparams) if hparams else None,
            batched=batched,
            ppo=ppo or None,
        )
        path = run_training(
            cfg,
            resume=resume is not None,
            progress_bar=progress,
            overwrite=overwrite,
            command=cli_command(),
            reporter=reporter,
        )
    except (ConfigError, UnknownTaskError, ValueError) as exc:
        reporter.close()
        raise _fail(str(exc)) from None
    except KeyboardInterrupt:
        run_dir = Path(reporter.out or out or TRAIN_DEFAULTS["out"])
        reporter.interrupted(run_dir, _newest_checkpoint(run_dir))
        raise typer.Exit(code=130) from None
    reporter.summary(path, load_card(path))


def _newest_checkpoint(out: Path) -> int | None:
    """Timesteps of the newest checkpoint `--resume` would load, or None."""
    try:
        from lrgym.agents.checkpoints import find_checkpoint

        found = find_checkpoint(out)
    except Exception:  # noqa: BLE001 - only a hint after Ctrl-C
        return None
    return None if found is None else found.steps


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
) -> None:
    """Compare a learned agent with every static baseline; same report as `compare`."""
    from lrgym.agent import AgentLoadError, is_shipped, load_agent
    from lrgym.controllers import BASELINES, LEARNED_PREFIX

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
        tasks, names, seeds, initial_lrs, out, total_steps, workers, seed_start=seed_start
    )
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


@app.command(
    "train-predictor",
    help=_help(
        "Train the LR predictor (a 2×64 ReLU MLP) on the runs logged by `lrgym compare`.",
        "Use the result as `--schedulers lr-predictor:OUT`.",
    ),
)
def train_predictor(
    runs: Annotated[
        list[Path],
        typer.Option(
            "--runs",
            metavar="DIR",
            help="Output folder of an `lrgym compare` on meta-train tasks; repeat --runs "
            "for several.",
        ),
    ],
    out: Annotated[Path, typer.Option(help="Predictor file to write.")] = Path(
        "runs/lr_predictor.pt"
    ),
    epochs: Annotated[int, typer.Option(min=1, help="Training epochs.")] = 40,
    seed: Annotated[int, typer.Option(help="Seed of the split, init and batch order.")] = 0,
) -> None:
    """Train the LR predictor (see the help text above)."""
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
    from lrgym.calibrate import calibrate as run_calibration
    from lrgym.calibrate import write_calibration
    from lrgym.controllers import BASELINES
    from lrgym.registration import UnknownTaskError, select_tasks
    from lrgym.tasks.sources import DataSourceError

    try:
        chosen = select_tasks(_split_values(tasks))
    except (UnknownTaskError, ValueError) as exc:
        raise _fail(str(exc)) from None
    with _grid_progress() as progress:
        bar = progress.add_task("calibrating", total=len(BASELINES) * seeds * len(chosen))

        def done(result) -> None:
            row = result.row
            progress.update(bar, advance=1, description=f"{row['task']} {row['scheduler']}")

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
        table = Table(title=f"{cal.task}: median final validation {cal.metric}")
        table.add_column("schedule")
        table.add_column("median", justify="right")
        for name, value in sorted(cal.medians.items(), key=lambda kv: -kv[1]):
            table.add_row(name, f"{value:.4f}")
        console.print(table)
        console.print(
            f"{cal.task}: target={cal.target:g}  (0.97 × {cal.best_median:.4f}, "
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
            console.print(f"  written to {path}", highlight=False)
        elif write and cal.task.startswith("lrgym/"):
            console.print("  (a built-in task: its target is fixed in lrgym; nothing written)")
        if path is not None and math.isfinite(cal.code_target):
            console.print(
                f"  [yellow]note:[/] the task's code sets target={cal.code_target:g}, which "
                f"takes precedence: paste target={cal.target:g} there, or set "
                "target=math.inf to read the file."
            )


def main() -> None:
    """Entry point for ``python -m lrgym``."""
    app()
