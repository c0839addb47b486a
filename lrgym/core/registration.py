"""The task registry, in Gymnasium's style: versioned ids, lazy entry points.

Registering a task also registers a Gymnasium environment under the same id, so
``gymnasium.make("lrgym/DigitsMLP-v0")`` works for built-in and user tasks alike.
Third-party packages add tasks through the entry-point group ``lrgym.tasks``: each entry
point names a module or a zero-argument callable that calls :func:`register_task`.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import math
import os
import pickle
import re
import sys
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

import gymnasium

from lrgym.core.task import SPLITS, Task

ENTRY_POINT_GROUP = "lrgym.tasks"
IMPORT_ENV = "LRGYM_IMPORT"
"""Environment variable naming modules (comma-separated) that register tasks; what
``lrgym --import`` sets, so worker processes import them too."""
_ID_PATTERN = re.compile(r"^(?:[\w:-]+/)?[\w:.-]+-v\d+$")


class UnknownTaskError(KeyError):
    """Raised for a task id that is not registered; the message names close matches."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


@dataclass(frozen=True)
class TaskSpec:
    """A registered task: how to build it. Mirrors ``gymnasium.envs.registration.EnvSpec``.

    Attributes:
        id: Versioned id such as ``"lrgym/DigitsMLP-v0"``.
        entry_point: ``"module:attr"`` or a callable returning a :class:`Task`.
        kwargs: Keyword arguments for the entry point.
        env_kwargs: Fixed :class:`~lrgym.core.env.LRControlEnv` arguments of the Gymnasium
            environment under this id (e.g. ``hparams``); non-empty for a *variant*.
        size: For a *procedural family* (:func:`register_family`), how many tasks it
            draws, one per ``index``; 0 for any other spec.
        family: For a task drawn from a family (id ``<Name>-<index>-vN``), the family's
            id; empty for any other spec.
    """

    id: str
    entry_point: str | Callable[..., Task]
    kwargs: dict[str, Any] = field(default_factory=dict)
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    size: int = 0
    family: str = ""

    @property
    def is_variant(self) -> bool:
        """True for an env variant of a task (same task, fixed env arguments)."""
        return bool(self.env_kwargs)

    @property
    def is_family(self) -> bool:
        """True for a procedural family (its tasks are drawn by index)."""
        return self.size > 0

    def make(self, **overrides: Any) -> Task:
        """Instantiate the task (cheap: data loads when a run is built).

        ``overrides`` replace registered keyword arguments, e.g. a real task's ``source``.
        """
        factory = self.entry_point
        if isinstance(factory, str):
            module, _, attr = factory.partition(":")
            factory = getattr(importlib.import_module(module), attr)
        task = factory(**{**self.kwargs, **overrides})
        if not isinstance(task, Task):
            raise TypeError(
                f"entry point of {self.id!r} returned {type(task).__name__}, not an lrgym Task"
            )
        info = getattr(task, "info", None)
        if info is not None and not math.isfinite(info.target):
            # not calibrated in code: take what `lrgym calibrate` wrote, if anything
            from lrgym.core.targets import calibrated_target

            target = calibrated_target(self.id, self.entry_point)
            if target is not None:
                try:
                    task.info = dataclasses.replace(info, target=target)
                except AttributeError:  # a read-only ``info``: the task keeps its own
                    pass
        return task


registry: dict[str, TaskSpec] = {}
"""Every registered task spec by id."""


def register_task(
    id: str,
    entry_point: str | Callable[..., Task],
    kwargs: dict[str, Any] | None = None,
    env_kwargs: dict[str, Any] | None = None,
) -> None:
    """Register a task and a Gymnasium environment under ``id``.

    Args:
        id: Versioned id, ``"namespace/Name-vN"``; bump N when behaviour changes.
        entry_point: ``"module:attr"`` or a callable that returns a :class:`Task`.
        kwargs: Keyword arguments passed to the entry point.
        env_kwargs: Fixed arguments of the id's :class:`~lrgym.core.env.LRControlEnv`
            (e.g. ``{"hparams": ["lr", "momentum"]}``). An id with them is a *variant*:
            ``lrgym.make``, ``lrgym tasks`` and ``lrgym check`` know it, but split
            selections (``meta-train``, ``held-out``, ``all``) list only plain tasks.

    Example:
        >>> lrgym.register_task(id="mylab/Tiny-v0", entry_point="mylab.tasks:make_tiny")
    """
    _add(TaskSpec(id, entry_point, dict(kwargs or {}), dict(env_kwargs or {})))


def register_family(
    id: str,
    entry_point: str | Callable[..., Task],
    size: int,
    kwargs: dict[str, Any] | None = None,
) -> None:
    """Register a procedural task family: ``size`` tasks under one id, one per index.

    The entry point takes ``index`` (``0 <= index < size``) and returns that task;
    ``make_task(id, index=17)`` makes one, and ``id`` alone makes index 0. Every drawn
    task also has an id of its own, :func:`drawn_id` (``"lrgym/ProceduralMLP-v0"``, index
    17: ``"lrgym/ProceduralMLP-17-v0"``), which :func:`spec`, :func:`make_task`,
    ``lrgym.make``, ``lrgym check`` and ``lrgym train`` accept without it being listed:
    ``lrgym tasks`` shows the family once, split selections (``meta-train``, ``all``)
    leave families out as they leave variants out, and a group (:func:`register_group`)
    selects drawn tasks by name.

    Example:
        >>> lrgym.register_family("mylab/Drawn-v0", "mylab.tasks:draw", size=1000)
    """
    if int(size) < 1:
        raise ValueError(f"a family draws at least one task, got size={size!r}")
    _add(TaskSpec(id, entry_point, dict(kwargs or {}), size=int(size)))


def _add(new: TaskSpec) -> None:
    id = new.id
    if not _ID_PATTERN.match(id):
        raise ValueError(f"task id {id!r} must look like 'namespace/Name-v0' (versioned)")
    if registry.get(id) == new and id in gymnasium.registry:
        return  # the same registration again (a module imported twice): nothing changes
    if id in registry:
        warnings.warn(f"overriding the already registered task {id!r}", stacklevel=3)
    registry[id] = new
    gymnasium.register(
        id=id,
        entry_point="lrgym.core.env:LRControlEnv",
        kwargs={"task": id, **new.env_kwargs},
        disable_env_checker=True,  # checked once in lrgym's own contract tests instead
    )


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """`` Did you mean a, b?`` naming the closest candidates, or an empty string."""
    close = difflib.get_close_matches(name, list(candidates), n=3, cutoff=0.4)
    return f" Did you mean {', '.join(close)}?" if close else ""


_DRAWN_ID = re.compile(r"^(?P<base>.+)-(?P<index>0|[1-9]\d*)-v(?P<version>\d+)$")


def drawn_id(family_id: str, index: int) -> str:
    """The id of a family's task ``index``: family ``lrgym/ProceduralMLP-v0``, index 17 →
    ``lrgym/ProceduralMLP-17-v0``."""
    base, _, version = family_id.rpartition("-v")
    return f"{base}-{int(index)}-v{version}"


def _drawn_spec(task_id: str) -> TaskSpec | None:
    """The spec of a drawn task id (see :func:`register_family`), or None."""
    match = _DRAWN_ID.match(task_id)
    if match is None:
        return None
    family = registry.get(f"{match['base']}-v{match['version']}")
    if family is None or not family.is_family:
        return None
    index = int(match["index"])
    if index >= family.size:
        raise UnknownTaskError(
            f"unknown task {task_id!r}: family {family.id} draws indices 0 to {family.size - 1}"
        )
    kwargs = {**family.kwargs, "index": index}
    return TaskSpec(task_id, family.entry_point, kwargs, dict(family.env_kwargs), family=family.id)


def gymnasium_id(task_id: str) -> tuple[str, dict[str, Any]]:
    """The Gymnasium id whose env runs ``task_id``, and the keyword arguments it needs:
    a drawn task runs in its family's env with ``task`` set to its own id."""
    s = spec(task_id)
    return (s.family, {"task": s.id}) if s.family else (s.id, {})


def spec(task_id: str) -> TaskSpec:
    """The spec of ``task_id``; an unknown id raises with the closest registered ids.

    Ids of tasks drawn from a family (:func:`register_family`) resolve too."""
    load_plugins()
    try:
        return registry[task_id]
    except KeyError:
        drawn = _drawn_spec(task_id)
        if drawn is not None:
            return drawn
        raise UnknownTaskError(
            f"unknown task {task_id!r}.{did_you_mean(task_id, registry)} "
            "Run `lrgym tasks` to list registered tasks. Tasks of your own register when "
            "their module is imported: `lrgym --import mylab.tasks ...` or "
            f"{IMPORT_ENV}=mylab.tasks (in Python, import it first), or an installed "
            f"package's {ENTRY_POINT_GROUP!r} entry point."
        ) from None


def make_task(task_id: str, **kwargs: Any) -> Task:
    """Instantiate the registered task ``task_id``; ``kwargs`` override its registered
    keyword arguments (``make_task("lrgym/TitanicMLP-v0", source="titanic.csv")``)."""
    return spec(task_id).make(**kwargs)


def task_ids(
    split: str | None = None, variants: bool = False, superseded: bool = False
) -> list[str]:
    """Registered task ids, optionally only those of one split (``meta-train``/
    ``held-out``/``real``); env variants (see :func:`register_task`) and procedural
    families (:func:`register_family`) only if ``variants``; a version superseded by a
    newer one of the same name (``Name-v0`` beside ``Name-v1``) only if ``superseded``
    (it stays registered, so old agents' cards and results still resolve)."""
    load_plugins()
    ids = sorted(i for i, s in registry.items() if variants or not (s.is_variant or s.is_family))
    if not superseded:
        ids = [i for i in ids if not _superseded(i)]
    if split is None:
        return ids
    return [i for i in ids if make_task(i).info.split == split]


def _superseded(task_id: str) -> bool:
    """True if a newer version of ``task_id``'s name is registered."""
    match = re.fullmatch(r"(.+)-v(\d+)", task_id)
    if match is None:
        return False
    name, version = match.group(1), int(match.group(2))
    newer = (re.fullmatch(rf"{re.escape(name)}-v(\d+)", other) for other in registry)
    return any(m is not None and int(m.group(1)) > version for m in newer)


groups: dict[str, Callable[[int | None], list[str]]] = {}
"""Named selections of task ids (:func:`register_group`), e.g. ``procedural``."""


def register_group(name: str, ids: Callable[[int | None], list[str]]) -> None:
    """Name a selection of tasks for :func:`select_tasks` (and ``--tasks``).

    ``ids(None)`` gives the selection under ``name``; ``ids(n)`` the one under
    ``name:n`` (e.g. ``procedural:200``, 200 drawn tasks).
    """
    if not re.fullmatch(r"[a-z][\w-]*", name) or name in ("all", *SPLITS):
        raise ValueError(f"a group name must be a lowercase word, not a split; got {name!r}")
    groups[name] = ids


def _group_ids(name: str) -> list[str] | None:
    group, colon, count = name.partition(":")
    if group not in groups:
        return None
    n = None
    if colon:
        if not count.isdigit() or int(count) < 1:
            raise ValueError(f"{name!r}: write {group}:N with a whole number N >= 1")
        n = int(count)
    return [spec(i).id for i in groups[group](n)]


def select_tasks(names: Iterable[str]) -> list[str]:
    """Expand ``all``, split names (``meta-train``/``held-out``/``real``) and groups
    (``procedural``, ``procedural:N``; see :func:`register_group`) and check ids; keeps
    order, no repeats."""
    chosen: dict[str, None] = {}
    for name in names:
        if name == "all":
            ids = task_ids()
        elif name in SPLITS:
            ids = task_ids(name)
        else:
            load_plugins()
            ids = _group_ids(name)
            if ids is None:
                ids = [spec(name).id]
        chosen.update(dict.fromkeys(ids))
    if not chosen:
        raise ValueError(
            "no tasks selected; pass task ids, 'meta-train', 'held-out', 'real', 'all' or a "
            f"group ({', '.join(sorted(groups)) or 'none registered'})"
        )
    return list(chosen)


def import_user_modules(names: str | Iterable[str]) -> list[str]:
    """Import modules that register tasks, e.g. ``"mylab.tasks"`` (what ``--import`` does).

    Names may be comma-separated. As with ``python -m``, the current directory is
    searched too, so ``lrgym --import mylab.tasks`` finds ``./mylab/tasks.py``.

    Returns:
        The module names imported.

    Raises:
        ImportError: No name given, or a module cannot be imported: not found, or its own
            code raised (a syntax error, an exception at import); the message names the
            module and shows its error line.
    """
    if isinstance(names, str):
        names = [names]
    modules = [n.strip() for name in names for n in name.split(",") if n.strip()]
    if not modules:
        raise ImportError("no module named; pass module names, e.g. --import mylab.tasks")
    for name in modules:
        if not all(part.isidentifier() for part in name.split(".")):
            raise ImportError(
                f"{name!r} is not a module name; pass a dotted name such as mylab.tasks "
                "(not a file path)"
            )
        try:
            _import_checked(name)
        except ModuleNotFoundError as exc:
            here = os.getcwd()
            top = name.partition(".")[0]
            searched = any(os.path.abspath(path or ".") == here for path in sys.path)
            if exc.name != top or searched:
                raise ImportError(f"cannot import {name!r}: {exc}") from exc
            sys.path.insert(0, here)  # what `python -m` does; spawned workers inherit it
            try:
                _import_checked(name)
            except ModuleNotFoundError as again:
                sys.path.remove(here)
                raise ImportError(
                    f"cannot import {name!r}: {again}; run from the folder that holds "
                    f"{top!r}, or add that folder to PYTHONPATH"
                ) from again
    return modules


def _import_checked(name: str) -> None:
    """Import ``name``; an error raised by the module's own code (anything but a
    ``ModuleNotFoundError``) becomes an ``ImportError`` naming the module and showing
    its own error line (file and line of a syntax error)."""
    try:
        importlib.import_module(name)
    except ModuleNotFoundError:
        raise
    except Exception as exc:  # noqa: BLE001 - any error in a user's module, one clear message
        import traceback

        where = ""
        if isinstance(exc, SyntaxError) and exc.filename:
            where = f" ({exc.filename}, line {exc.lineno})"
        else:
            frames = traceback.extract_tb(exc.__traceback__)
            own = [f for f in frames if "importlib" not in f.filename]
            if own:
                where = f" ({own[-1].filename}, line {own[-1].lineno})"
        detail = traceback.format_exception_only(type(exc), exc)[-1].strip()
        raise ImportError(
            f"cannot import {name!r}: the module raised {detail}{where}; fix the module"
        ) from exc


def portable_specs(task_ids: Iterable[str]) -> list[TaskSpec]:
    """The specs of ``task_ids`` that can be sent to a worker process (picklable), so a
    spawned worker knows tasks registered only in this process (see
    :func:`ensure_registered`). Built-in ids are left out: every process has them."""
    found: dict[str, TaskSpec] = {}
    for task_id in dict.fromkeys(task_ids):
        s = registry.get(task_id)
        if s is None and _DRAWN_ID.match(task_id):  # a drawn task: send its family
            drawn = _drawn_spec(task_id)
            s = registry.get(drawn.family) if drawn is not None else None
        if s is None or s.id.startswith("lrgym/") or s.id in found:
            continue
        try:
            pickle.dumps(s)
        except Exception:  # noqa: BLE001 - e.g. a lambda entry point: the worker must import it
            continue
        found[s.id] = s
    return list(found.values())


def ensure_registered(specs: Iterable[TaskSpec]) -> None:
    """Register each spec not registered yet (in a worker process, before any run)."""
    for s in specs:
        if s.id not in registry:
            _add(s)


_plugins_loaded = False


def load_plugins() -> None:
    """Import every ``lrgym.tasks`` entry point and every module named in ``LRGYM_IMPORT``,
    once (a broken plugin only warns)."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    if os.environ.get(IMPORT_ENV, "").strip():
        try:
            import_user_modules(os.environ[IMPORT_ENV])
        except ImportError as exc:
            warnings.warn(f"{IMPORT_ENV}: {exc}", stacklevel=2)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
            if callable(obj):
                obj()
        except Exception as exc:  # noqa: BLE001 - one broken plugin must not break lrgym
            warnings.warn(f"lrgym task plugin {ep.name!r} failed to load: {exc}", stacklevel=2)
