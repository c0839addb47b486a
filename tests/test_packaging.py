"""What the wheel carries: pyproject's package data declares every shipped file kind.

Building a wheel takes a minute, so this reads the declaration instead; the build itself
was checked by hand (``pip wheel --no-deps -w /tmp/wheel .`` and listing the wheel).
"""

from __future__ import annotations

import fnmatch
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

ROOT = Path(__file__).resolve().parents[1]


def package_data() -> dict[str, list[str]]:
    with (ROOT / "pyproject.toml").open("rb") as f:
        return tomllib.load(f)["tool"]["setuptools"]["package-data"]


def test_the_wheel_carries_the_recipes():
    recipes = sorted((ROOT / "agents" / "recipes").glob("*.yaml"))
    assert recipes, "agents/recipes/ holds no recipe"
    patterns = package_data().get("lrgym.agents", [])
    for recipe in recipes:
        name = recipe.relative_to(ROOT / "agents").as_posix()
        assert any(fnmatch.fnmatch(name, p) for p in patterns), (
            f"{name} is not package data of lrgym.agents in pyproject.toml"
        )
