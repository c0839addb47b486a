"""The `lrgym` command line: the Typer app, shared option helpers, and its commands.

Commands live in one module per group: :mod:`lrgym.cli.task_commands` (tasks, check,
calibrate), :mod:`lrgym.cli.compare_commands` (compare, evaluate),
:mod:`lrgym.cli.train_commands` (train, train-predictor, convert-agent) and
:mod:`lrgym.cli.meta_init_commands` (meta-init).
"""

from __future__ import annotations

import importlib
import math
import os
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

from lrgym.agents.train_report import AverageETAColumn

app = typer.Typer(
    help="lrgym: learn how to train neural networks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)

IMPORT_ENV = "LRGYM_IMPORT"  # lrgym.core.registration.IMPORT_ENV (not imported: keeps help fast)


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
    from lrgym.core.registration import import_user_modules

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
    from lrgym.io.validate import MAX_INITIAL_LR

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
        fd, probe = tempfile.mkstemp(dir=out, prefix=".lrgym-write-test.")  # a new file:
        os.close(fd)  # never a link planted under a fixed name
        os.unlink(probe)
    except OSError as exc:
        raise _fail(f"cannot write to --out {out}: {exc.strerror or exc}") from None


def _help(*paragraphs: str) -> str:
    """A command's help text: paragraphs without inner line breaks (the help renders each
    line break, so a wrapped docstring would break sentences at the source's margin)."""
    return "\n\n".join(paragraphs)


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
WorkersOption = Annotated[
    int, typer.Option(min=1, help="Parallel worker processes (local backend).")
]
BackendOption = Annotated[
    str,
    typer.Option(
        metavar="local|ray",
        help="Where the runs execute: local (worker processes here) or ray (one Ray task per "
        'run on a Ray cluster; pip install "lrgym\\[ray]"). Same results either way.',
    ),
]
AddressOption = Annotated[
    str | None,
    typer.Option(
        metavar="HOST:PORT",
        help="Ray cluster address (what `ray start --head` printed); default RAY_ADDRESS, "
        "else a new local Ray instance. Needs --backend ray.",
    ),
]


def _connect_backend(backend: str, address: str | None) -> None:
    """Check ``--backend``/``--address`` and, for Ray, connect now: a missing extra or an
    unreachable cluster fails in seconds, before any run or file."""
    from lrgym.backends.ray_backend import RayBackendError, check_backend, connect

    try:
        check_backend(backend, address)
        if backend == "ray":
            connect(address)
    except (ValueError, RayBackendError) as exc:
        raise _fail(str(exc)) from None


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


def main() -> None:
    """Entry point for ``python -m lrgym``."""
    app()


# the commands register themselves on `app`, in the order `lrgym --help` lists them
for _module in (
    "task_commands",
    "compare_commands",
    "train_commands",
    "meta_init_commands",
    "suggest_commands",
):
    importlib.import_module(f"lrgym.cli.{_module}")
