"""Incremental, resumable comparison results: every finished run is kept.

`lrgym compare` and `lrgym evaluate` append each run to ``OUT/runs.jsonl`` the moment it
finishes (one JSON line: the run's key, its ``runs.csv`` row and its ``curves.csv``
rows; flushed and fsynced), so an interruption, even ``kill -9``, loses at most the runs
in progress. Run the same command again and the runs already recorded are skipped; the
rest run. ``runs.csv``, ``curves.csv``, ``summary.md`` and the plots are then rebuilt
from the recorded runs of the requested grid, in grid order, so an interrupted and
resumed comparison gives the same files as an uninterrupted one.

A run is the same run if its task, scheduler, seed, initial LR, step budget and lrgym
version match, and the digest of what it reads from files: a learned agent's card and
weights (``learned:PATH``; results written into the card later do not count), an LR
predictor's file (``lr-predictor:PATH``), an ``--init`` folder's card and weights. A
retrained agent or an edited card is run again. Delete ``runs.jsonl`` to start over.

Nothing in the results folder is a symbolic link lrgym writes through: a planted link
(``runs.jsonl``, ``plots/`` ...) is refused with :class:`lrgym.io._atomic.UnsafePathError`.

The set of report files is written with ``summary.md`` last and removed first: while it
is missing (an interrupted rebuild), the other files may be from different moments, and
running the command again rebuilds them all.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lrgym._version import __version__
from lrgym.harness.compare import RunResult, RunSpec, run_grid, write_frames
from lrgym.io._atomic import UnsafePathError, check_inside, refuse_links, remove_stale_temp_files
from lrgym.io.file_checks import MAX_TABLE_BYTES, FileCheckError, check_regular_file

JOURNAL = "runs.jsonl"
SUMMARY = "summary.md"
REPORT_FILES = (JOURNAL, SUMMARY, "runs.csv", "curves.csv", "plots", "init.json")
"""What lrgym writes in a results folder (none of them may be a symbolic link)."""


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


CARD = "card.json"
UNRECORDED_CARD_FIELDS = ("evaluation", "notes")
"""Card fields left out of a fingerprint: results written into the card after the runs
(``evaluate --update-card``, ``meta-init``'s fine-tuning table) and its prose notes do
not change a run."""


def folder_fingerprint(folder: str | os.PathLike[str]) -> str:
    """SHA-256 over what of an agent or init folder changes a run: its ``card.json``
    (canonical JSON, without :data:`UNRECORDED_CARD_FIELDS`), every ``*.safetensors``
    file (their bytes) and an ensemble's member folders. ``""`` if the folder has neither
    or a file cannot be read (loading it then fails with the clear error)."""
    from lrgym.io.file_checks import FileCheckError, read_json
    from lrgym.io.manifest import sha256

    root = Path(folder)
    digest = hashlib.sha256()
    try:
        if (root / CARD).exists():
            card = read_json(root / CARD, "card")
            for key in UNRECORDED_CARD_FIELDS:
                card.pop(key, None)
            digest.update(b"card\0" + json.dumps(card, sort_keys=True).encode() + b"\0")
            for member in card.get("members", []):  # an ensemble: its members' folders
                member_print = folder_fingerprint(check_inside(root, root / str(member)))
                digest.update(f"member\0{member}\0{member_print}\0".encode())
        weights = sorted(root.glob("*.safetensors")) if root.is_dir() else []
        for path in weights:
            check_regular_file(path, "weights file", max_bytes=None)
            digest.update(f"{path.name}\0{sha256(path)}\0".encode())
    except (FileCheckError, OSError, UnsafePathError):
        return ""
    if not (root / CARD).exists() and not weights:
        return ""
    return digest.hexdigest()


def scheduler_fingerprint(name: str) -> str:
    """What a scheduler is read from, as a digest (``""`` for built-in schedulers): a
    learned agent's card and weights (:func:`folder_fingerprint`), an LR predictor's file
    bytes."""
    from lrgym.controllers import LEARNED_PREFIX, PREDICTOR_PREFIX
    from lrgym.io.file_checks import FileCheckError
    from lrgym.io.manifest import sha256

    if name.startswith(LEARNED_PREFIX):
        from lrgym.deploy.agent import AgentLoadError, resolve_agent

        try:
            return folder_fingerprint(resolve_agent(name[len(LEARNED_PREFIX) :]))
        except AgentLoadError:
            return ""
    if name.startswith(PREDICTOR_PREFIX):
        path = Path(name[len(PREDICTOR_PREFIX) :])
        try:
            check_regular_file(path, "LR predictor", max_bytes=None)
        except FileCheckError:
            return ""
        return sha256(path)
    return ""


def run_key(spec: RunSpec, total_steps: int | None, fingerprints: dict[str, str]) -> str:
    """The identity of a run in the journal (see the module docstring)."""
    lr = None if spec.initial_lr is None else float(spec.initial_lr).hex()  # exact
    key = [
        spec.task,
        spec.scheduler,
        int(spec.seed),
        lr,
        total_steps,
        fingerprints.get(spec.scheduler, ""),
        __version__,
    ]
    if spec.target_every is not None:  # only then, so that earlier journals keep their keys
        key.append(spec.target_every)
    if spec.init is not None:  # the init's card and weights (see folder_fingerprint)
        key.append({"init": fingerprints.get(_init_key(spec.init), "")})
    return json.dumps(key)


def _init_key(init: str) -> str:
    """The key of an init folder's digest in run_recorded's fingerprints."""
    return f"init:{init}"


class ResultsStore:
    """The append-only journal ``OUT/runs.jsonl`` of finished runs."""

    def __init__(self, out: str | os.PathLike[str]) -> None:
        self.out = Path(out)
        self.path = self.out / JOURNAL

    def _check(self) -> bool:
        """True if the journal exists; refuses a link (the journal would be read,
        truncated and appended to outside ``out``) and anything but a regular file."""
        refuse_links(self.out, JOURNAL)
        if not self.path.exists():
            return False
        try:
            check_regular_file(self.path, "results journal", max_bytes=MAX_TABLE_BYTES)
        except FileCheckError as exc:
            raise FileCheckError(
                f"{exc.args[0].split('; ')[0]}: lrgym keeps its results journal there; move "
                "it away, or pass another output folder"
            ) from None
        return True

    def load(self) -> dict[str, RunResult]:
        """Every recorded run by key. A torn last line (a kill mid-append) is cut off.

        Raises:
            ValueError: The journal is a link, a directory or another non-regular file,
                too large, or has a line lrgym did not write (the message says what to do).
        """
        if not self._check():
            return {}
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end < len(data):  # an interrupted append: drop it so the next one starts clean
            with open(self.path, "r+b") as f:
                f.truncate(end)
                f.flush()
                os.fsync(f.fileno())
        records: dict[str, RunResult] = {}
        for number, line in enumerate(data[:end].splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                key, row, curve = record["key"], record["row"], record["curve"]
            except (ValueError, KeyError, TypeError):
                raise ValueError(
                    f"{self.path} line {number} is not a recorded run; the file was changed "
                    f"outside lrgym: delete it to start over, or restore it from a copy"
                ) from None
            records[key] = RunResult(row, curve)
        return records

    def append(self, key: str, result: RunResult) -> None:
        """Record one finished run durably (written, flushed and fsynced)."""
        line = json.dumps({"key": key, "row": result.row, "curve": result.curve}, default=_plain)
        self.out.mkdir(parents=True, exist_ok=True)
        self._check()
        # O_NOFOLLOW: a link planted after the check is not followed either
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
        with open(os.open(self.path, flags, 0o666), "a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())


def run_recorded(
    out: str | os.PathLike[str],
    specs: Sequence[RunSpec],
    total_steps: int | None = None,
    workers: int = 1,
    on_done: Callable[[RunResult], None] | None = None,
    on_skip: Callable[[int], None] | None = None,
    backend: str = "local",
    address: str | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run the specs not yet recorded in ``out``, recording each as it finishes.

    Args:
        out: Output directory (holds ``runs.jsonl``).
        specs: The grid.
        total_steps: Step budget override, as in :func:`lrgym.harness.compare.run_grid`.
        workers: Worker processes.
        on_done: Called with each newly finished run.
        on_skip: Called once with the number of runs already recorded.
        backend: ``"local"`` or ``"ray"`` (at the cluster ``address``), as in
            :func:`lrgym.harness.compare.run_grid`.
        address: Ray cluster address for ``backend="ray"``.

    Returns:
        ``(runs, curves)`` of the whole grid, rows in grid order.
    """
    store = ResultsStore(out)
    fingerprints = {s.scheduler: scheduler_fingerprint(s.scheduler) for s in specs}
    for init in {s.init for s in specs if s.init is not None}:
        fingerprints[_init_key(init)] = folder_fingerprint(init)
    keys = [run_key(s, total_steps, fingerprints) for s in specs]
    recorded = store.load()
    todo = [(k, s) for k, s in zip(keys, specs, strict=True) if k not in recorded]
    todo = list(dict((k, s) for k, s in todo).items())  # a repeated spec runs once
    if on_skip is not None:
        on_skip(len(specs) - len(todo))
    by_spec = {s: k for k, s in todo}

    def record(spec: RunSpec, result: RunResult) -> None:
        key = by_spec[spec]
        store.append(key, result)
        recorded[key] = result
        if on_done is not None:
            on_done(result)

    with _sigterm_as_exit():
        run_grid(
            [s for _, s in todo],
            total_steps=total_steps,
            workers=workers,
            on_spec=record,
            backend=backend,
            address=address,
        )
    results = [recorded[k] for k in keys]
    return frames(results)


def frames(results: Sequence[RunResult]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(runs, curves)`` frames of ``results`` (in that order)."""
    runs = pd.DataFrame([r.row for r in results])
    curves = pd.DataFrame([c for r in results for c in r.curve])
    return runs, curves


def write_results(out: str | os.PathLike[str], runs: pd.DataFrame, curves: pd.DataFrame) -> Path:
    """Write ``runs.csv``, ``curves.csv``, the plots and ``summary.md`` (last) into ``out``.

    ``summary.md`` is removed first, so its presence means the files belong together;
    temporary files of an interrupted earlier write are removed.
    """
    from lrgym.harness.report import write_report

    root = Path(out)
    # nothing is written, appended or deleted outside `out` through a planted link
    refuse_links(root, *REPORT_FILES)
    with _sigterm_as_exit():  # a SIGTERM mid-write still removes the temporary file
        for folder in (root, root / "plots"):
            remove_stale_temp_files(folder)
        (root / SUMMARY).unlink(missing_ok=True)
        write_frames(root, runs, curves)
        return write_report(root, runs, curves)


class _sigterm_as_exit:
    """While active (main thread only), SIGTERM raises ``SystemExit(143)`` instead of
    killing the process outright, so worker pools are shut down and temporary files
    removed on the way out."""

    def __enter__(self) -> None:
        self._previous = None
        if threading.current_thread() is threading.main_thread():
            if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
                self._previous = signal.signal(signal.SIGTERM, _raise_exit)

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)


def _raise_exit(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


__all__ = ["JOURNAL", "ResultsStore", "frames", "run_key", "run_recorded", "write_results"]
