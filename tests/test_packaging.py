"""What the wheel carries: every module, every shipped artifact (one convention,
:mod:`lrgym.io.shipped`) and the shipped agents' recipes; and docs/ carries no model file.

The declarations in pyproject are read first (fast, and they name what to fix); then a
wheel is built from a copy of the sources (a few seconds: no build isolation, no
dependencies) and listed.
"""

from __future__ import annotations

import fnmatch
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from lrgym.io.shipped import SHIPPED, shipped_names, shipped_root

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "README.md", "lrgym", "agents", "tasks", "trained_agents")
"""What a wheel is built from (the rest of the checkout is not packaged)."""


def setuptools_config() -> dict:
    with (ROOT / "pyproject.toml").open("rb") as f:
        return tomllib.load(f)["tool"]["setuptools"]


def package_folder(package: str) -> Path:
    """The source folder of an installed package name, through pyproject's package-dir."""
    mapping = setuptools_config()["package-dir"]
    parts = package.split(".")
    for n in range(len(parts), 0, -1):
        head = ".".join(parts[:n])
        if head in mapping:
            return ROOT / mapping[head] / Path(*parts[n:])
    raise AssertionError(f"{package} is under no package-dir of pyproject.toml")


def test_the_wheel_carries_the_recipes():
    recipes = sorted((ROOT / "agents" / "recipes").glob("*.yaml"))
    assert recipes, "agents/recipes/ holds no recipe"
    patterns = setuptools_config()["package-data"].get("lrgym.agents", [])
    for recipe in recipes:
        name = recipe.relative_to(ROOT / "agents").as_posix()
        assert any(fnmatch.fnmatch(name, p) for p in patterns), (
            f"{name} is not package data of lrgym.agents in pyproject.toml"
        )


def test_pyproject_lists_every_package():
    """A folder with an ``__init__.py`` that ``packages`` leaves out is missing from the
    wheel (setuptools lists packages one by one here, because of package-dir)."""
    listed = set(setuptools_config()["packages"])
    assert {package_folder(p) for p in listed} == {
        init.parent
        for tree in ("lrgym", "agents", "tasks", "trained_agents")
        for init in (ROOT / tree).rglob("__init__.py")
        if "__pycache__" not in init.parts
    }


def test_every_shipped_package_follows_the_convention():
    """Each kind's package is listed, its data is every file of its artifact folders (and
    of their sub-folders: an ensemble's members), and it ships something."""
    config = setuptools_config()
    for kind, package in SHIPPED.items():
        assert package in config["packages"], f"add {package} to packages in pyproject.toml"
        assert config["package-data"].get(package) == ["*/*", "*/*/*"], (
            f'give {package} the package data ["*/*", "*/*/*"] in pyproject.toml'
        )
        assert shipped_root(kind) == package_folder(package)
        assert shipped_names(kind), f"no {kind} ships in {package}"
        loose = [p.name for p in shipped_root(kind).iterdir() if p.is_file()]
        assert loose == ["__init__.py"], f"{package}: files outside an artifact folder {loose}"


def _built_wheel(tmp: Path) -> zipfile.ZipFile:
    source = tmp / "source"
    source.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(
                ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            shutil.copy2(ROOT / name, source / name)
    out = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
        + ["--no-index", str(source), "-w", str(tmp / "wheel")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    (wheel,) = (tmp / "wheel").glob("lrgym-*.whl")
    return zipfile.ZipFile(wheel)


def test_the_built_wheel_carries_every_module_artifact_and_recipe(tmp_path):
    with _built_wheel(tmp_path) as wheel:
        names = set(wheel.namelist())
    wanted = {}
    for package in setuptools_config()["packages"]:
        folder = package_folder(package)
        for path in folder.glob("*.py"):
            wanted[path] = f"{package.replace('.', '/')}/{path.name}"
    for package in SHIPPED.values():
        folder = package_folder(package)
        for path in (p for pattern in ("*/*", "*/*/*") for p in folder.glob(pattern)):
            if path.is_dir():  # an ensemble's member folder: its files are globbed too
                continue
            wanted[path] = f"{package.replace('.', '/')}/{path.relative_to(folder).as_posix()}"
    for recipe in (ROOT / "agents" / "recipes").glob("*.yaml"):
        wanted[recipe] = f"lrgym/agents/recipes/{recipe.name}"
    assert any("recipes" in w for w in wanted.values())
    assert any(w.endswith("policy.safetensors") for w in wanted.values())
    missing = sorted(str(p.relative_to(ROOT)) for p, w in wanted.items() if w not in names)
    assert missing == [], f"not in the wheel: {missing}"


MODEL_FILES = ("*.pt", "*.pth", "*.ckpt", "*.safetensors", "*.pkl", "*.pickle", "*.joblib")


def test_docs_hold_no_model_file():
    """Models ship in their shipped packages; docs/ holds text and plots."""
    found = sorted(
        str(p.relative_to(ROOT)) for pattern in MODEL_FILES for p in (ROOT / "docs").rglob(pattern)
    )
    assert found == []
