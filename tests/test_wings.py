"""lrgym/ in wings: the paths the documentation names resolve, and the old flat paths
(``lrgym.compare``, ``lrgym.agent`` ...) still import, as the very modules of the wings."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest

import lrgym
from lrgym._aliases import MOVED

ROOT = Path(__file__).resolve().parents[1]
DOTTED = re.compile(r"`~?(lrgym(?:\.[A-Za-z_]\w*)+)")
"""A dotted lrgym path in a Markdown code span (``lrgym.core.env.LRControlEnv``)."""


def resolve(name: str):
    """The object a dotted path names: the longest module prefix that imports, then
    attributes (``lrgym.harness.compare.run_grid``)."""
    parts = name.split(".")
    for n in range(len(parts), 0, -1):
        try:
            found = importlib.import_module(".".join(parts[:n]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[n:]:
            found = getattr(found, attribute)
        return found
    raise ModuleNotFoundError(name)


def documented_paths() -> dict[str, str]:
    """Dotted lrgym path -> the first page naming it: README.md and docs/ (but the
    experiment log, a record of what was true then)."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    found: dict[str, str] = {}
    for page in pages:
        if page.name == "experiments.md":
            continue
        for match in DOTTED.finditer(page.read_text(encoding="utf-8")):
            found.setdefault(match.group(1), str(page.relative_to(ROOT)))
    return found


def test_every_path_the_docs_name_resolves():
    paths = documented_paths()
    assert "lrgym.core.controller.Controller" in paths  # the pages are read
    broken = []
    for name, page in sorted(paths.items()):
        try:
            resolve(name)
        except (ImportError, AttributeError) as exc:
            broken.append(f"{name} ({page}): {exc}")
    assert broken == []


@pytest.mark.parametrize("old", sorted(MOVED))
def test_an_old_path_imports_as_the_module_of_its_wing(old):
    module = importlib.import_module(old)
    assert module is importlib.import_module(MOVED[old])
    assert module.__spec__.name == MOVED[old]  # the alias leaves the module's own spec
    assert getattr(lrgym, old.split(".")[1]) is module


def test_old_paths_serve_from_imports_and_patches():
    from lrgym.compare import run_grid
    from lrgym.controller import Controller
    from lrgym.harness import compare

    assert run_grid is compare.run_grid
    assert Controller.__module__ == "lrgym.core.controller"
    with mock.patch("lrgym.compare.run_one") as patched:
        assert compare.run_one is patched  # a patch of the old path reaches the harness


def test_an_undocumented_old_path_is_gone():
    """Only the paths the docs named stay; the plumbing moved without an alias."""
    assert "lrgym.validate" not in MOVED
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("lrgym.validate")


def test_import_lrgym_loads_no_aliased_module():
    """The aliases resolve on import only: ``import lrgym`` stays light (no torch)."""
    code = "import sys, lrgym; print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_public_api_resolves_to_the_wings():
    """``lrgym.__all__`` is unchanged by the wings: every name resolves, and each lazy
    name comes from the wing that defines it (``PolicyScheduler`` from deploy)."""
    code = (
        "import lrgym\n"
        "for name in lrgym.__all__:\n"
        "    value = getattr(lrgym, name)\n"
        "    module = getattr(value, '__module__', None) or ''\n"
        "    assert not module or module.startswith('lrgym'), (name, module)\n"
        "print(lrgym.PolicyScheduler.__module__, lrgym.load_agent.__module__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["lrgym.deploy.scheduler", "lrgym.deploy.agent"]
