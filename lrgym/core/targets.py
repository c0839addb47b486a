"""Calibrated targets on disk: where ``lrgym calibrate`` writes a task's target, and where
the registry reads it.

A task whose ``TaskInfo.target`` is not a finite number (``math.inf``: "not calibrated
yet") takes its target from ``lrgym_targets.json`` in the folder of the module that
defines its entry point (for ``"mylab.tasks:make_my_task"``: ``mylab/lrgym_targets.json``),
keyed by task id. A finite target in code always wins, so nothing changes behind a task
that states its own. A package ships its calibrated targets by shipping that file.

Torch-free: the registry imports this when it makes an uncalibrated task.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lrgym.io._atomic import write_text_atomic

TARGETS_FILE = "lrgym_targets.json"
"""File name of the calibrated targets, beside the module that defines a task."""

_cache: dict[Path, tuple[int, dict[str, Any]]] = {}


def entry_point_module(entry: str | Callable[..., Any]) -> str | None:
    """Name of the module that defines a task's entry point (``"module:attr"`` or a callable)."""
    if isinstance(entry, str):
        return entry.partition(":")[0]
    return getattr(entry, "__module__", None)


def targets_path(entry: str | Callable[..., Any]) -> Path | None:
    """``lrgym_targets.json`` beside the module of a task's entry point (None if that
    module has no file, e.g. one defined in an interactive session)."""
    name = entry_point_module(entry)
    if not name:
        return None
    module = sys.modules.get(name)
    file = getattr(module, "__file__", None)
    if file is None:
        try:
            found = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            found = None
        file = getattr(found, "origin", None)
    if not file or not Path(file).exists():
        return None
    return Path(file).resolve().parent / TARGETS_FILE


def read_targets(path: Path) -> dict[str, Any]:
    """The records in a targets file (empty if there is none); cached by mtime."""
    try:
        mtime = path.stat().st_mtime_ns
    except OSError:
        return {}
    cached = _cache.get(path)
    if cached and cached[0] == mtime:
        return cached[1]
    from lrgym.io.file_checks import read_json

    try:  # a regular, size-capped, strict-JSON object (lrgym.io.file_checks)
        records = read_json(path, "targets file")
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path} is not a readable targets file: {exc}") from None
    _cache[path] = (mtime, records)
    return records


def calibrated_target(task_id: str, entry: str | Callable[..., Any]) -> float | None:
    """The target ``lrgym calibrate`` wrote for ``task_id`` (entry point ``entry``), or None."""
    path = targets_path(entry)
    if path is None:
        return None
    record = read_targets(path).get(task_id)
    if isinstance(record, dict) and isinstance(record.get("target"), int | float):
        return float(record["target"])
    return None


def write_target(path: Path, task_id: str, record: dict[str, Any]) -> None:
    """Add or replace ``task_id``'s record in the targets file at ``path`` (atomically)."""
    records = dict(read_targets(path)) if path.exists() else {}
    records[task_id] = record
    text = json.dumps(dict(sorted(records.items())), indent=2) + "\n"
    write_text_atomic(path, text)
    _cache.pop(path, None)


__all__ = ["TARGETS_FILE", "calibrated_target", "read_targets", "targets_path", "write_target"]
