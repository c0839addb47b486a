"""`lrgym suggest`, `lrgym train-config`, `lrgym suggest-logs` and `lrgym train-suggester`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from lrgym.cli import _check_out_dir, _fail, _folder, _help, _split_values, app, console


def _fmt(config: dict) -> str:
    return ", ".join(
        f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in config.items()
    )


@app.command(
    help=_help(
        "Suggest hyperparameters for TASK from a few short probe runs.",
        "The probes' optimizer steps count against --budget. A meta-model trained on "
        "logged runs of meta-train tasks ranks the task's configurations (its knobs: LR, "
        "batch size, layers, units, dropout, optimizer; eta, depth, subsample and rounds "
        "for XGBoost) and prints the best, its predicted validation metric ± one standard "
        "deviation and the command that trains it. --train trains it too; --search tpe, "
        'random or grid spends the budget on an Optuna search instead (pip install "lrgym'
        '\\[tune]").',
    )
)
def suggest(
    task: Annotated[str, typer.Argument(help="Task id, e.g. lrgym/WineMLP-v0.")],
    budget: Annotated[int, typer.Option(min=1, help="Optimizer steps to spend, probes included.")],
    seed: Annotated[int, typer.Option(help="Seed of probes, search and final run.")] = 0,
    suggester: Annotated[
        str, typer.Option(help="Suggester folder (`lrgym train-suggester --out`) or 'default'.")
    ] = "default",
    search: Annotated[
        str, typer.Option(help="suggest (the meta-model), tpe, random or grid (Optuna).")
    ] = "suggest",
    train: Annotated[bool, typer.Option("--train", help="Train the suggestion.")] = False,
    steps: Annotated[
        int | None, typer.Option(min=1, help="Steps of the final run \\[default: the task's].")
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(
            help="LR scheduler of the final run: 'learned' (the shipped agent), "
            "'learned:NAME|PATH', or any `lrgym compare` scheduler name."
        ),
    ] = None,
) -> None:
    """Suggest hyperparameters (see the help text above)."""
    import torch

    from lrgym.core.registration import UnknownTaskError
    from lrgym.suggester import suggest as run_suggest
    from lrgym.suggester.model import interval

    torch.set_num_threads(1)

    def report(trial) -> None:
        console.print(
            f"  run {_fmt(trial.config)}: val {trial.outcome.val_metric:.4f} "
            f"({trial.steps_used} steps used)"
        )

    try:
        result = run_suggest(
            task, budget, seed=seed, suggester=suggester, search=search, train=train,
            final_steps=steps, scheduler=scheduler, on_trial=report,
        )  # fmt: skip
    except (UnknownTaskError, ValueError, FileNotFoundError, ImportError) as exc:
        raise _fail(str(exc)) from None  # ValueError: NoKnobsError and BudgetError among them
    console.print(f"suggestion for {task} ({result.method}, seed {seed}):")
    console.print(f"  {_fmt(result.config)}")
    if result.method == "suggest":
        metric = result.metric or "metric"
        console.print(
            f"  predicted validation {metric} {result.predicted_val:.4f} (one-std interval "
            f"{result.predicted_low:.4f} to {result.predicted_high:.4f}, on the logit scale "
            f"of the metric's range; probes: {result.probe_steps} steps)"
        )
        for config, mean, std in result.ranked[:3]:
            low, high = interval(mean, std, result.metric)
            console.print(
                f"  next: {_fmt(config)} -> {mean:.4f} ({float(low):.4f} to {float(high):.4f})",
                style="dim",
            )
        card = _card_line(suggester)
        if card:
            console.print(f"  suggester: {card}", style="dim")
    else:
        console.print(f"  best validation metric {result.predicted_val:.4f}")
    if result.final is not None:
        console.print(
            f"  trained: val {result.final.val_metric:.4f}, test {result.final.test_metric:.4f}"
            f" ({result.final.steps} steps{', diverged' if result.final.diverged else ''})"
        )
    console.print(f"  steps used {result.steps_used} of {result.budget}")
    for note in result.notes:
        console.print(f"  note: {note}")
    console.print(f"train it with:\n  {result.command(scheduler)}", soft_wrap=True)


def _card_line(suggester: str) -> str:
    """What the suggester was trained on, from its card (empty if it has none)."""
    from lrgym.suggester import load_suggester

    card = load_suggester(suggester).card
    return str(card.get("trained_on", ""))


@app.command(
    "train-config",
    help=_help(
        "Train TASK once with a configuration of its knobs (what `lrgym suggest` prints).",
        "--scheduler learned runs the shipped learned scheduler on top of the configuration's LR.",
    ),
)
def train_config(
    task: Annotated[str, typer.Argument(help="Task id.")],
    config: Annotated[str, typer.Option(help="Knob values as JSON, e.g. '{\"lr\": 0.003}'.")],
    steps: Annotated[
        int | None, typer.Option(min=1, help="Optimizer steps \\[default: the task's].")
    ] = None,
    seed: Annotated[int, typer.Option(help="Run seed.")] = 0,
    scheduler: Annotated[
        str | None, typer.Option(help="'learned', 'learned:NAME|PATH' or a scheduler name.")
    ] = None,
) -> None:
    """Train one configuration (see the help text above)."""
    import torch

    from lrgym.core.registration import UnknownTaskError, make_task
    from lrgym.suggester import NoKnobsError, tunable
    from lrgym.suggester.api import train_final

    torch.set_num_threads(1)
    try:
        values = json.loads(config)
        if not isinstance(values, dict):
            raise ValueError("--config must be a JSON object of knob values")
        tt = tunable(make_task(task))
        full = tt.space.validate(values)
        outcome = train_final(tt, full, seed, steps or tt.task.info.total_steps, scheduler)
    except json.JSONDecodeError as exc:
        raise _fail(f"--config is not valid JSON: {exc}") from None
    except (UnknownTaskError, NoKnobsError, ValueError) as exc:
        raise _fail(str(exc)) from None
    console.print(f"{task} {_fmt(full)}")
    console.print(
        f"val {outcome.val_metric:.4f}, test {outcome.test_metric:.4f} ({outcome.steps} steps"
        f"{', diverged' if outcome.diverged else ''}, {outcome.wall_seconds:.1f} s)"
    )


@app.command(
    "suggest-logs",
    help=_help(
        "Log runs of sampled configurations on meta-train tasks, to train a suggester on.",
        "Per task and seed: the probes (probes.csv) and --configs configurations drawn from "
        "the task's knobs, each trained --steps steps (runs.csv, in `lrgym compare`'s "
        "columns plus one per knob). Rerunning resumes: logged (task, seed) pairs are kept.",
    ),
)
def suggest_logs(
    tasks: Annotated[
        list[str], typer.Option("--tasks", metavar="TASK,...", help="Task ids or sets.")
    ] = ["meta-train"],  # noqa: B006 - typer reads the default, never mutates it
    out: Annotated[Path, typer.Option(parser=_folder, help="Folder to write.")] = Path(
        "runs/suggest_logs"
    ),
    configs: Annotated[int, typer.Option(min=1, help="Configurations per task and seed.")] = 24,
    seeds: Annotated[int, typer.Option(min=1, help="Seeds 0 … N-1.")] = 1,
    steps: Annotated[int, typer.Option(min=10, help="Steps of each run.")] = 200,
    probes: Annotated[int, typer.Option(min=1, help="Fixed-LR probe runs per task.")] = 1,
    probe_steps: Annotated[int, typer.Option(min=10, help="Steps of each probe.")] = 30,
    range_steps: Annotated[
        int, typer.Option(min=0, help="Steps of each LR range test (0: none).")
    ] = 60,
    shared_configs: Annotated[
        bool,
        typer.Option(
            "--shared-configs",
            help="Run every seed's configurations on every seed (--configs x --seeds runs "
            "per task and seed): the suggester then learns from each configuration's mean "
            "over seeds. Completes a log of the same seeds written without it.",
        ),
    ] = False,
    reprobe: Annotated[
        bool,
        typer.Option(
            "--reprobe",
            help="Probe the logged (task, seed) pairs of --out again with these probe "
            "settings; runs.csv is kept.",
        ),
    ] = False,
) -> None:
    """Log configuration runs (see the help text above)."""
    import torch

    from lrgym.core.registration import UnknownTaskError, select_tasks
    from lrgym.suggester import LogSettings, NoKnobsError, ProbeSettings, generate_logs
    from lrgym.suggester.logs import reprobe_logs

    torch.set_num_threads(1)
    try:
        probe = ProbeSettings(probes, probe_steps, range_steps)
        if reprobe:
            frame = reprobe_logs(out, probe, progress=console.print)
            console.print(  # a path is text, not rich markup
                f"{len(frame)} (task, seed) pairs probed again in {out}/probes.csv", markup=False
            )
            return
        _check_out_dir(out)
        ids = select_tasks(_split_values(tasks))
        settings = LogSettings(configs, tuple(range(seeds)), steps, probe, shared_configs)
        runs, _ = generate_logs(ids, out, settings, progress=console.print)
    except (UnknownTaskError, NoKnobsError, ValueError, FileNotFoundError) as exc:
        raise _fail(str(exc)) from None
    console.print(f"{len(runs)} runs logged in {out} (runs.csv, probes.csv)", markup=False)


@app.command(
    "train-suggester",
    help=_help(
        "Train a suggester on logs of meta-train tasks (`lrgym suggest-logs --out`).",
        "Held-out and real tasks are refused. Writes suggester.json (weights as JSON) and "
        "card.json (what it was trained on, its leave-task-out scores) into --out.",
    ),
)
def train_suggester(
    runs: Annotated[
        list[Path], typer.Option("--runs", metavar="DIR", help="Log folder; repeat for several.")
    ],
    out: Annotated[Path, typer.Option(parser=_folder, help="Suggester folder to write.")] = Path(
        "runs/suggester"
    ),
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap ensemble.")] = 0,
    note: Annotated[
        str, typer.Option(help="Free text for the card, e.g. how the logs were made.")
    ] = "",
) -> None:
    """Train a suggester (see the help text above)."""
    import pandas as pd

    from lrgym.suggester import TrainSettings, read_logs
    from lrgym.suggester import train_suggester as fit

    _check_out_dir(out)
    try:
        frames = [read_logs(d) for d in runs]
        model = fit(
            pd.concat([f[0] for f in frames], ignore_index=True),
            pd.concat([f[1] for f in frames], ignore_index=True),
            TrainSettings(seed=seed),
            source=", ".join(map(str, runs)),
        )
        if note:
            model.card["note"] = note
        path = model.save(out)
    except (FileNotFoundError, ValueError) as exc:
        raise _fail(str(exc)) from None
    except OSError as exc:
        raise _fail(f"cannot write --out {out}: {exc.strerror or exc}") from None
    cv = model.card["cross_validation"]["chosen"]
    console.print(
        f"trained on {model.card['runs']} runs of {len(model.card['tasks'])} tasks; "
        f"leave-task-out: top pick within 5% of the best logged config in "
        f"{cv['within_5pct']:.0%} of (task, seed) pairs, median regret {cv['median_regret']:.4f}"
    )
    console.print(f"suggester written to {path} (use it as --suggester {path})")
