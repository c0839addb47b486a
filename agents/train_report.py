"""What `lrgym train` prints: a header, a progress bar, phase lines and a closing summary.

:class:`TrainReporter` is handed to :func:`lrgym.agents.train.train`, which calls
:meth:`~TrainReporter.start` once the model is built, adds :meth:`~TrainReporter.callback`
to PPO's callbacks and announces the export with :meth:`~TrainReporter.phase`; the CLI
prints :meth:`~TrainReporter.summary` (or :meth:`~TrainReporter.interrupted`) at the end.
Without a reporter, training prints nothing (tests, scripts).
"""

from __future__ import annotations

import math
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

VALIDATION_KEY = "validation slice (meta-train tasks, unseen seeds)"
"""The card's ``evaluation`` entry that holds the validation-slice table."""


def cli_command(argv: list[str] | None = None) -> str:
    """The command line to record in an agent's card, runnable anywhere.

    ``/home/me/.venv/bin/lrgym train ...`` and ``python -m lrgym train ...`` are recorded
    as ``lrgym train ...``; any other program keeps its own name, without its folder.
    """
    argv = list(sys.argv if argv is None else argv)
    if not argv:
        return "lrgym train"
    program = Path(argv[0])
    name = program.name
    if name in ("lrgym", "lrgym.exe", "__main__.py") or program.parent.name == "lrgym":
        name = "lrgym"
    return shlex.join([name, *argv[1:]])


def real_total(start: int, total: int, rollout: int) -> int:
    """The timestep count PPO ends at: whole rollouts of ``rollout`` steps from ``start``
    until ``total`` is reached (SB3 always finishes the rollout it started)."""
    remaining = max(total - start, 0)
    return start + math.ceil(remaining / rollout) * rollout


def _steps(n: int) -> str:
    return f"{n:,}"


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class AverageETAColumn(ProgressColumn):
    """Time left at the run's average speed so far (steady, unlike a windowed rate: PPO
    alternates fast rollouts with pauses for updates and validation)."""

    def __init__(self) -> None:
        super().__init__()
        self.started: dict[int, tuple[float, float]] = {}

    def render(self, task) -> Text:
        now = time.monotonic()
        start = self.started.setdefault(task.id, (now, task.completed))
        done = task.completed - start[1]
        if task.finished:
            return Text("done", style="progress.remaining")
        if done <= 0 or task.total is None or now - start[0] < 1:
            return Text("ETA --:--", style="progress.remaining")
        left = (task.total - task.completed) * (now - start[0]) / done
        return Text(f"ETA {_duration(left)}", style="progress.remaining")


class TrainReporter:
    """Prints `lrgym train`'s progress to a rich console.

    Args:
        console: Where to print.
        progress: Show the progress bar (``--no-progress`` turns it off; the header,
            phase lines and summary are printed either way).
    """

    def __init__(self, console: Console | None = None, progress: bool = True) -> None:
        self.console = console or Console()
        self.show_progress = progress
        self.out: Path | None = None
        self.first_checkpoint: int | None = None
        self.started = time.perf_counter()
        self._progress: Progress | None = None

    # --- called by agents.train -------------------------------------------------------

    def start(self, config: Any, tasks: list[str], start_step: int, rollout: int) -> None:
        """Print the header (before any PPO step)."""
        self.started = time.perf_counter()
        self.out = Path(config.out)
        self.total = real_total(start_step, config.total_timesteps, rollout)
        self.start_step = start_step
        every = config.checkpoint_every
        self.first_checkpoint = start_step + math.ceil(every / rollout) * rollout
        names = ", ".join(t.removeprefix("lrgym/") for t in tasks)
        steps = _steps(config.total_timesteps)
        if self.total != config.total_timesteps:
            steps += f" (ends at {_steps(self.total)}: whole rollouts of {_steps(rollout)})"
        resuming = f", resuming at step {_steps(start_step)}" if start_step else ""
        validation = (
            f"every {_steps(config.eval_every)} steps; the best scoring model is exported"
            + (" (none in this run: the last model is)" if config.eval_every > self.total else "")
        )
        rows = [
            ("tasks", f"{len(tasks)}: {names}"),
            ("workers", f"{config.n_envs} environment processes, one torch thread each"),
            ("steps", steps),
            ("output", str(self.out)),
            ("TensorBoard", str(self.out / "tb")),
            ("checkpoints", f"every {_steps(every)} steps (Ctrl-C, then --resume {self.out})"),
            ("validation", validation),
        ]
        header = Table.grid(padding=(0, 2))
        header.add_column(style="dim", no_wrap=True)
        header.add_column()
        for key, value in rows:
            header.add_row(key, Text(value))
        self.console.print(f"[bold]lrgym train[/]{resuming}", highlight=False)
        self.console.print(header)

    def callback(self, validation: Any = None):
        """An SB3 callback that drives the progress bar (None without a bar).

        ``validation`` is the validation callback: while it scores the slice, the bar
        says so instead of looking frozen.
        """
        if not self.show_progress:
            return None
        from stable_baselines3.common.callbacks import BaseCallback

        reporter = self

        class _ProgressCallback(BaseCallback):
            def _on_training_start(self) -> None:
                reporter._open_bar(self.num_timesteps)

            def _on_step(self) -> bool:
                reporter._advance(self.num_timesteps, validation)
                return True

            def _on_training_end(self) -> None:
                reporter._advance(self.num_timesteps, None)
                reporter.close()

        return _ProgressCallback()

    def phase(self, text: str) -> None:
        """Print one line saying what happens now (after the bar has closed)."""
        self.close()
        elapsed = _duration(time.perf_counter() - self.started)
        self.console.print(f"[dim]{elapsed:>7}[/]  {text}", highlight=False)

    def close(self) -> None:
        """Stop the progress bar (idempotent)."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    # --- the bar ----------------------------------------------------------------------

    def _open_bar(self, step: int) -> None:
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("steps"),
            TimeElapsedColumn(),
            AverageETAColumn(),
            console=self.console,
        )
        self._bar = self._progress.add_task("training", total=self.total, completed=step)
        self._progress.start()

    def _advance(self, step: int, validation: Any) -> None:
        if self._progress is None:
            return
        upcoming = getattr(validation, "_next", None)
        validating = isinstance(upcoming, int | float) and step >= upcoming
        description = "validating" if validating else "training"
        self._progress.update(self._bar, completed=min(step, self.total), description=description)
        if validating:
            self._progress.refresh()

    # --- called by the CLI ------------------------------------------------------------

    def summary(self, path: Path, card: Any) -> None:
        """The closing summary: what was written, the validation table, next commands."""
        self.close()
        self.console.print()
        selected = getattr(card, "selected_timesteps", None)
        trained = card.total_timesteps
        chosen = (
            f"; exported the model from step {_steps(selected)} (best validation score)"
            if selected and selected != trained
            else ""
        )
        self.console.print(
            f"[bold green]Agent written to {escape(str(path))}[/] in "
            f"{_duration(card.wall_seconds)} "
            f"({_steps(trained)} steps{chosen}).",
            highlight=False,
        )
        table = card.evaluation.get(VALIDATION_KEY)
        if table:
            self.console.print(markdown_table(table, VALIDATION_KEY))
            self.console.print(
                "Mean return per episode = log(initial / final validation loss): higher "
                "is better. Seeds never used in training.",
                style="dim",
                highlight=False,
            )
        quoted = shlex.quote(str(path))
        workers = max(1, min(os.cpu_count() or 1, 4))
        self.console.print(
            "\n".join(
                [
                    "",
                    f"TensorBoard:  tensorboard --logdir {shlex.quote(str(path / 'tb'))}",
                    "Next:",
                    f"  lrgym evaluate --agent {quoted} --tasks held-out --seeds 5 "
                    f"--workers {workers}",
                    f"  scheduler = lrgym.PolicyScheduler(optimizer, agent={str(path)!r}, "
                    "total_steps=...)",
                ]
            ),
            highlight=False,
            markup=False,  # paths are text: a folder named "[x]" prints as is
        )

    def interrupted(self, out: Path, checkpoint_steps: int | None) -> None:
        """What to do after Ctrl-C."""
        self.close()
        self.console.print()
        quoted = escape(shlex.quote(str(out)))  # text, not rich markup
        if checkpoint_steps:
            self.console.print(
                f"[yellow]Interrupted.[/] The newest checkpoint is at step "
                f"{_steps(checkpoint_steps)}; continue with:\n  lrgym train --resume {quoted}",
                highlight=False,
            )
        else:
            first = f" (the first comes at step {_steps(self.first_checkpoint)})"
            self.console.print(
                f"[yellow]Interrupted[/] before the first checkpoint"
                f"{first if self.first_checkpoint else ''}: nothing to resume. Start again "
                f"with --overwrite to reuse {quoted}.",
                highlight=False,
            )


def markdown_table(text: str, title: str | None = None) -> Table:
    """A rich table from a GitHub-flavoured markdown table (``**bold**`` cells kept bold)."""
    rows = [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in text.strip().splitlines()
        if line.strip().startswith("|")
    ]
    header, body = rows[0], rows[2:]
    aligns = [
        "right" if cell.endswith(":") else "left" for cell in (rows[1] if len(rows) > 1 else [])
    ]
    table = Table(title=title, title_justify="left")
    for i, name in enumerate(header):
        table.add_column(name, justify=aligns[i] if i < len(aligns) else "left")
    for row in body:
        table.add_row(
            *(Text(c.strip("*"), style="bold") if c.startswith("**") else Text(c) for c in row)
        )
    return table


__all__ = ["TrainReporter", "cli_command", "markdown_table", "real_total"]
