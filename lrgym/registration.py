"""The task registry, in Gymnasium's style: versioned ids, lazy entry points.

Registering a task also registers a Gymnasium environment under the same id, so
``gymnasium.make("lrgym/DigitsMLP-v0")`` works for built-in and user tasks alike.
Third-party packages add tasks through the entry-point group ``lrgym.tasks``: each entry
point names a module or a zero-argument callable that calls :func:`register_task`.
"""

from __future__ import annotations

import difflib
import importlib
import re
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

import gymnasium

from lrgym.task import SPLITS, Task

ENTRY_POINT_GROUP = "lrgym.tasks"
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
        env_kwargs: Fixed :class:`~lrgym.env.LRControlEnv` arguments of the Gymnasium
            environment under this id (e.g. ``hparams``); non-empty for a *variant*.
    """

    id: str
    entry_point: str | Callable[..., Task]
    kwargs: dict[str, Any] = field(default_factory=dict)
    env_kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def is_variant(self) -> bool:
        """True for an env variant of a task (same task, fixed env arguments)."""
        return bool(self.env_kwargs)

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
        env_kwargs: Fixed arguments of the id's :class:`~lrgym.env.LRControlEnv`
            (e.g. ``{"hparams": ["lr", "momentum"]}``). An id with them is a *variant*:
            ``lrgym.make``, ``lrgym tasks`` and ``lrgym check`` know it, but split
            selections (``meta-train``, ``held-out``, ``all``) list only plain tasks.

    Example:
        >>> lrgym.register_task(id="mylab/Tiny-v0", entry_point="mylab.tasks:make_tiny")
    """
    if not _ID_PATTERN.match(id):
        raise ValueError(f"task id {id!r} must look like 'namespace/Name-v0' (versioned)")
    if id in registry:
        warnings.warn(f"overriding the already registered task {id!r}", stacklevel=2)
    registry[id] = TaskSpec(id, entry_point, dict(kwargs or {}), dict(env_kwargs or {}))
    gymnasium.register(
        id=id,
        entry_point="lrgym.env:LRControlEnv",
        kwargs={"task": id, **(env_kwargs or {})},
        disable_env_checker=True,  # checked once in lrgym's own contract tests instead
    )


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """`` Did you mean a, b?`` naming the closest candidates, or an empty string."""
    close = difflib.get_close_matches(name, list(candidates), n=3, cutoff=0.4)
    return f" Did you mean {', '.join(close)}?" if close else ""


def spec(task_id: str) -> TaskSpec:
    """The spec of ``task_id``; an unknown id raises with the closest registered ids."""
    load_plugins()
    try:
        return registry[task_id]
    except KeyError:
        raise UnknownTaskError(
            f"unknown task {task_id!r}.{did_you_mean(task_id, registry)} "
            "Run `lrgym tasks` to list registered tasks."
        ) from None


def make_task(task_id: str, **kwargs: Any) -> Task:
    """Instantiate the registered task ``task_id``; ``kwargs`` override its registered
    keyword arguments (``make_task("lrgym/TitanicMLP-v0", source="titanic.csv")``)."""
    return spec(task_id).make(**kwargs)


def task_ids(split: str | None = None, variants: bool = False) -> list[str]:
    """Registered task ids, optionally only those of one split (``meta-train``/
    ``held-out``/``real``); env variants (see :func:`register_task`) only if ``variants``."""
    load_plugins()
    ids = sorted(i for i, s in registry.items() if variants or not s.is_variant)
    if split is None:
        return ids
    return [i for i in ids if make_task(i).info.split == split]


def select_tasks(names: Iterable[str]) -> list[str]:
    """Expand ``all`` and split names (``meta-train``/``held-out``/``real``) and check ids;
    keeps order, no repeats."""
    chosen: list[str] = []
    for name in names:
        if name == "all":
            ids = task_ids()
        elif name in SPLITS:
            ids = task_ids(name)
        else:
            ids = [spec(name).id]
        chosen.extend(i for i in ids if i not in chosen)
    if not chosen:
        raise ValueError(
            "no tasks selected; pass task ids, 'meta-train', 'held-out', 'real' or 'all'"
        )
    return chosen


_plugins_loaded = False


def load_plugins() -> None:
    """Import every ``lrgym.tasks`` entry point once (a broken plugin only warns)."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
            if callable(obj):
                obj()
        except Exception as exc:  # noqa: BLE001 - one broken plugin must not break lrgym
            warnings.warn(f"lrgym task plugin {ep.name!r} failed to load: {exc}", stacklevel=2)
