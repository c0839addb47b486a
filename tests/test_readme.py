"""The README is a front door: short, its commands are the ones CI runs, its headline is
what the benchmark recorded, its links resolve, and its code blocks run as written.

The plain-loop snippet runs on a tiny model (with the shipped agent in place of
``runs/agent``), and the add-your-own-task snippet is written to
``mylab/tasks.py`` and driven through the CLI with the README's own commands (``--import``,
``calibrate``, ``check``, ``compare --workers 2``), shortened with extra flags only.
"""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import gymnasium
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import lrgym
from lrgym.cli import app

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def code_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def block_with(language: str, needle: str) -> str:
    (block,) = [b for b in code_blocks(language) if needle in b]
    return block


def test_ci_runs_the_readme_test_command():
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    command = next(line for line in ci_lines if line.startswith("python3 -m venv"))
    assert command.endswith("python -m pytest")
    assert command in README
    assert '-e ".[dev]"' in command  # the tests need every extra


def test_readme_main_command_trains_an_agent():
    assert 'pip install torch==2.13.0 -e ".[train]" && lrgym train' in README


def test_readme_stands_alone():
    for pointer in ("../shared", "DESIGN.md", "issue #", "issue-#"):
        assert pointer not in README, pointer


def test_readme_is_a_page_with_the_headline_on_its_first_screen():
    lines = README.splitlines()
    assert len(lines) <= 200, f"README has {len(lines)} lines; move detail into docs/"
    assert "<!-- headline:start -->" in "\n".join(lines[:80])
    assert "<!-- headline:end -->" in "\n".join(lines[:80])


def test_headline_is_what_the_benchmark_recorded(tmp_path):
    """The table is rebuilt from docs/results/recipe/summary.md, not typed in."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import headline
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    table = headline.headline(headline.SUMMARY.read_text(encoding="utf-8"), tmp_path / "r.png")
    assert f"{headline.START}\n{table}\n{headline.END}" in README
    assert (tmp_path / "r.png").stat().st_size > 0
    assert "loses" in table  # it says where the agent loses, too


def test_readme_links_resolve():
    targets = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README)
    local = [t for t in targets if not t.startswith(("http://", "https://"))]
    assert local, "no local links found"
    missing = [t for t in local if not (ROOT / t).exists()]
    assert not missing, missing


def test_plain_loop_snippet_runs():
    snippet = block_with("python", "scheduler.step(loss=loss)")
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 4, generator=gen), torch.randint(0, 2, (64,), generator=gen)
    loader = [(x[i : i + 8], y[i : i + 8]) for i in range(0, 64, 8)] * 10
    namespace = {
        "model": model,
        "optimizer": optimizer,
        "loader": loader,
        "loss_fn": torch.nn.functional.cross_entropy,
    }
    exec(snippet.replace('agent="runs/agent"', 'agent="default"'), namespace)
    scheduler = namespace["scheduler"]
    assert scheduler.steps_done == len(loader)
    assert scheduler.decisions == 1 + len(loader) // scheduler.decision_interval
    assert all(np.isfinite(scheduler.get_last_lr()))


# Extra flags that keep the README's commands short in a test (their meaning is unchanged).
SHORTER = {
    "calibrate": ["--seeds", "1", "--total-steps", "50"],
    "check": ["--steps", "30"],
    "compare": ["--seeds", "1", "--total-steps", "50", "--schedulers", "constant,cosine"],
}


@pytest.fixture
def user_project(tmp_path, monkeypatch):
    """The README's mylab/tasks.py in a fresh folder that is the current directory."""
    (tmp_path / "mylab").mkdir()
    (tmp_path / "mylab" / "__init__.py").write_text("")
    (tmp_path / "mylab" / "tasks.py").write_text(block_with("python", "# mylab/tasks.py"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LRGYM_IMPORT", "")  # restored afterwards: --import sets it
    path = list(sys.path)
    yield tmp_path
    sys.path[:] = path
    for name in [m for m in sys.modules if m == "mylab" or m.startswith("mylab.")]:
        del sys.modules[name]
    lrgym.registry.pop("mylab/MyTask-v0", None)
    gymnasium.registry.pop("mylab/MyTask-v0", None)


def test_add_your_own_task_through_the_cli(user_project):
    commands = [
        shlex.split(line)
        for line in block_with("bash", "--import mylab.tasks").splitlines()
        if line.strip()
    ]
    assert [c[3] for c in commands] == ["calibrate", "check", "compare"]
    assert "mylab/MyTask-v0" not in lrgym.registry  # only the --import makes it exist
    runner = CliRunner()
    for argv in commands:
        assert argv[:3] == ["lrgym", "--import", "mylab.tasks"]
        extra = SHORTER[argv[3]] + (["--out", "results"] if argv[3] == "compare" else [])
        result = runner.invoke(app, argv[1:] + extra)
        assert result.exit_code == 0, (argv, result.output, result.exception)
        if argv[3] == "calibrate":  # the target lands where the task reads it
            assert (user_project / "mylab" / "lrgym_targets.json").is_file()
            target = lrgym.make_task("mylab/MyTask-v0").info.target
            assert 0 < target < 1 and f"target={target:g}" in result.output
        if argv[3] == "check":
            assert "FAIL" not in result.output
    runs = (user_project / "results" / "runs.csv").read_text()
    assert runs.count("mylab/MyTask-v0") == 2  # 2 schedulers, in 2 spawned worker processes
