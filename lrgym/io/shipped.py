"""The artifacts that ship with lrgym: where they live, and the one way they are found.

One rule for every kind. A kind of shipped artifact has a *shipped package*: a Python
package that holds data only, one folder per artifact, named as users name it, with the
artifact's ``card.json`` inside:

* ``agent``: ``lrgym.trained_agents``, from ``trained_agents/NAME/``;
* ``suggester``: ``lrgym.suggester.shipped``, from ``lrgym/suggester/shipped/NAME/``;
* ``init``: ``lrgym.meta_init.shipped``, from ``lrgym/meta_init/shipped/NAME/``.

``pyproject.toml`` lists each package and gives it the package data ``*/*`` and
``*/*/*`` (every file of every artifact folder and of its sub-folders, an ensemble's
members), so a wheel carries them all; ``tests/test_packaging.py``
holds pyproject to :data:`SHIPPED`. They are read through ``importlib.resources``, so an
editable install, a wheel and a zip find them alike. (The training recipes of the
shipped agents, ``agents/recipes/*.yaml``, are configs, not artifacts: they travel as
package data of ``lrgym.agents``.)
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

SHIPPED = {
    "agent": "lrgym.trained_agents",
    "suggester": "lrgym.suggester.shipped",
    "init": "lrgym.meta_init.shipped",
}
"""Kind of shipped artifact -> its shipped package."""

CARD = "card.json"
"""Every shipped artifact's folder holds its card under this name."""


def shipped_root(kind: str) -> Path:
    """The folder of ``kind``'s shipped package.

    Raises:
        ValueError: ``kind`` is not a kind of :data:`SHIPPED`.
    """
    if kind not in SHIPPED:
        raise ValueError(f"no shipped artifacts of kind {kind!r}; the kinds are {list(SHIPPED)}")
    return Path(str(resources.files(SHIPPED[kind])))


def shipped_names(kind: str) -> list[str]:
    """Names of the shipped artifacts of ``kind`` (the folders with a card), sorted."""
    root = shipped_root(kind)
    return sorted(p.name for p in root.iterdir() if (p / CARD).is_file())


def shipped_path(kind: str, name: str) -> Path | None:
    """The folder of the shipped artifact ``name`` of ``kind``, or None if none ships.

    A name with a path separator, or ``.``/``..``, is never a shipped name.
    """
    if not isinstance(name, str) or name in ("", ".", "..") or "/" in name or "\\" in name:
        return None
    folder = shipped_root(kind) / name
    return folder if (folder / CARD).is_file() else None


def is_shipped(kind: str, path: str | Path) -> bool:
    """True if ``path`` lies inside ``kind``'s shipped package (an installed artifact)."""
    return Path(path).resolve().is_relative_to(shipped_root(kind).resolve())
