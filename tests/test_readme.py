"""The README's commands are the ones CI runs."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command():
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    command = next(line for line in ci_lines if line.startswith("python3 -m venv"))
    assert command.endswith("python -m pytest")
    assert command in (ROOT / "README.md").read_text()


def test_readme_main_command_trains_an_agent():
    readme = (ROOT / "README.md").read_text()
    assert 'pip install torch==2.13.0 -e ".[dev]" && lrgym train' in readme
