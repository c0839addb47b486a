"""The house's layers: the deploy path needs no stable-baselines3, the core package
imports it nowhere at module level, no import cycle runs between lrgym's files, nor
between its folders (the wings, its training wing ``agents/`` as ``lrgym.agents`` and its
tasks ``tasks/`` as ``lrgym.tasks`` among them), and every import between wings goes
down :data:`FLOORS`."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import lrgym
import lrgym.agents
import lrgym.tasks

CORE = Path(lrgym.__file__).parent
TREES = {
    "lrgym": CORE,
    "lrgym.agents": Path(lrgym.agents.__file__).parent,
    "lrgym.tasks": Path(lrgym.tasks.__file__).parent,
}


def _tree_files(package: str) -> dict[str, Path]:
    """Module name -> file for every ``.py`` of one tree (the others' files left out, in
    case a tree sits inside lrgym/ as it does in a wheel)."""
    root = TREES[package]
    others = [r for p, r in TREES.items() if p != package and r != root]
    found = {}
    for path in root.rglob("*.py"):
        if any(path.is_relative_to(o) for o in others):
            continue
        parts = path.relative_to(root).with_suffix("").parts
        parts = parts[:-1] if parts[-1] == "__init__" else parts
        found[".".join([package, *parts])] = path
    return found


def _type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _imports(path: Path, package: str) -> set[str]:
    """Modules of ``package`` that ``path`` imports, at any depth of the file (imports
    for type hints only, under ``if TYPE_CHECKING:``, never run and are left out)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    hints = {id(n) for block in ast.walk(tree) if _type_checking(block) for n in ast.walk(block)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in hints:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found.update(n for n in names if n == package or n.startswith(package + "."))
    return found


def _module_level_imports(path: Path) -> set[str]:
    """Top-level package names imported when the module is imported: its body, including
    ``if``/``try``/``with`` blocks, but not function or class bodies, nor
    ``if TYPE_CHECKING:`` blocks."""
    found: set[str] = set()

    def visit(statements: list[ast.stmt]) -> None:
        for node in statements:
            if isinstance(node, ast.Import):
                found.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
            elif isinstance(node, ast.If):
                if not _type_checking(node):
                    visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                for block in (node.body, node.orelse, node.finalbody):
                    visit(block)
                for handler in node.handlers:
                    visit(handler.body)
            elif isinstance(node, ast.With):
                visit(node.body)

    visit(ast.parse(path.read_text(encoding="utf-8")).body)
    return found


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (module -> modules it imports) as a path, or None."""
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack, node, nxt]
            if nxt not in state and (cycle := visit(nxt, [*stack, node])):
                return cycle
        state[node] = 2
        return None

    for name in sorted(graph):
        if name not in state and (cycle := visit(name, [])):
            return cycle
    return None


def import_graph() -> dict[str, set[str]]:
    """Every lrgym module (the three trees) -> the lrgym modules it imports."""
    modules = {name: path for package in TREES for name, path in _tree_files(package).items()}
    graph = {
        name: {m for m in _imports(path, "lrgym") if m in modules and m != name}
        for name, path in modules.items()
    }
    # a package's __init__ that re-exports its own submodules is not a cycle
    for name in graph:
        graph[name] = {m for m in graph[name] if not m.startswith(name + ".")}
    graph["lrgym"] = set()  # the top level re-exports; nothing imports it back
    return graph


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycle_between_lrgym_agents_and_tasks():
    graph = import_graph()
    # the mapped trees are read: the training wing imports the core, the tasks too
    assert "lrgym.agents.vec_env" in graph["lrgym.agents.workers"]
    assert "lrgym.agents.workers" in graph["lrgym.agents.train"]
    assert "lrgym.backends.torch_trainee" in graph["lrgym.tasks.builtin"]
    assert find_cycle(graph) is None


FLOORS = (
    ("lrgym._version", "lrgym._aliases", "lrgym.io"),
    ("lrgym.core",),
    ("lrgym.backends", "lrgym.deploy"),
    ("lrgym.tasks", "lrgym.vector", "lrgym.controllers", "lrgym.integrations"),
    ("lrgym.meta_init",),
    ("lrgym.harness", "lrgym.suggester"),
    ("lrgym.agents",),
    ("lrgym.cli",),
    ("lrgym", "lrgym.__main__"),
)
"""lrgym's wings from the ground up (docs/architecture.md draws them): a wing imports
only wings on lower floors, never one beside it or above it. A wing is a folder of
lrgym/ (or a tree installed under lrgym, like ``lrgym.agents``); a file at lrgym/'s top
is a wing of its own."""


def folder(module: str, depth: int) -> str:
    """The folder ``depth`` names deep that ``module`` stands in (``lrgym.core.env`` at
    depth 2: ``lrgym.core``); a file that deep or shallower stands for itself."""
    return ".".join(module.split(".")[:depth])


def folder_graph(graph: dict[str, set[str]], depth: int) -> dict[str, set[str]]:
    """``graph`` with every module replaced by its folder at ``depth`` (imports inside
    one folder left out)."""
    folders: dict[str, set[str]] = {}
    for name, imported in graph.items():
        here = folder(name, depth)
        folders.setdefault(here, set()).update(
            f for f in (folder(m, depth) for m in imported) if f != here
        )
    return folders


def test_the_folder_graph_collapses_files_into_their_folders():
    graph = {"p.a.x": {"p.b.y"}, "p.b.y": {"p.top"}, "p.a.z": {"p.a.x"}, "p.top": set()}
    assert folder_graph(graph, 2) == {"p.a": {"p.b"}, "p.b": {"p.top"}, "p.top": set()}
    assert find_cycle(folder_graph({"p.a.x": {"p.b.y"}, "p.b.z": {"p.a.w"}}, 2)) is not None


def test_no_import_cycle_between_folders():
    """Between the wings (lrgym.core, lrgym.agents, lrgym.tasks ...) and between the
    folders inside one (lrgym.tasks.text beside lrgym.tasks' own files, say)."""
    graph = import_graph()
    wings = folder_graph(graph, 2)
    assert {"lrgym.core", "lrgym.agents", "lrgym.tasks"} <= wings.keys()  # all three trees
    assert "lrgym.core" in wings["lrgym.tasks"]
    for depth in (2, 3):
        assert find_cycle(folder_graph(graph, depth)) is None, f"folders {depth} deep"


def test_every_import_between_wings_goes_down():
    graph = import_graph()
    floor_of = {wing: n for n, wings in enumerate(FLOORS) for wing in wings}
    unplaced = sorted(folder(m, 2) for m in graph if folder(m, 2) not in floor_of)
    assert unplaced == [], f"add these wings to FLOORS (and docs/architecture.md): {unplaced}"
    climbs = sorted(
        f"{name} -> {m}"
        for name, imported in graph.items()
        for m in imported
        if floor_of[folder(m, 2)] >= floor_of[folder(name, 2)] and folder(m, 2) != folder(name, 2)
    )
    assert climbs == [], f"imports that do not go down FLOORS (move the code down): {climbs}"
    # the check reads imports between wings: the harness imports the controllers below it
    assert "lrgym.controllers" in {folder(m, 2) for m in graph["lrgym.harness.compare"]}


def test_the_ray_actors_do_not_import_training():
    """The Ray env actors host workers; building them is agents.workers' job, one way."""
    graph = import_graph()
    assert "lrgym.agents.ray_vec_env" in graph["lrgym.agents.workers"]
    assert not {"lrgym.agents.train", "lrgym.agents.workers"} & graph["lrgym.agents.ray_vec_env"]


def test_the_core_does_not_import_stable_baselines3_at_module_level():
    core = _tree_files("lrgym")
    assert "lrgym.deploy.scheduler" in core and not any(n.startswith("lrgym.agents") for n in core)
    offenders = sorted(
        name for name, path in core.items() if "stable_baselines3" in _module_level_imports(path)
    )
    assert offenders == []
    # and the check sees such an import where there is one
    assert "stable_baselines3" in _module_level_imports(TREES["lrgym.agents"] / "vec_env.py")


DEPLOY_WITHOUT_SB3 = """
import sys
sys.modules["stable_baselines3"] = None  # any `import stable_baselines3` now fails
try:
    import stable_baselines3
except ImportError:
    pass
else:
    raise SystemExit("stable_baselines3 is still importable")
import torch
import lrgym

agent = lrgym.load_agent("default")
torch.manual_seed(0)
model = torch.nn.Linear(4, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
scheduler = lrgym.PolicyScheduler(optimizer, agent, total_steps=40, decision_interval=5)
x, y = torch.randn(32, 4), torch.randn(32, 1)
for _ in range(40):
    optimizer.zero_grad()
    loss = torch.nn.functional.mse_loss(model(x), y)
    loss.backward()
    optimizer.step()
    scheduler.step(loss=loss)
loaded = sorted(m for m in sys.modules if m.startswith("stable_baselines3") and sys.modules[m])
print(scheduler.steps_done, optimizer.param_groups[0]["lr"], loaded)
"""


def test_the_deploy_path_runs_without_stable_baselines3():
    out = subprocess.run(
        [sys.executable, "-c", DEPLOY_WITHOUT_SB3], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    steps, lr, loaded = out.stdout.split(maxsplit=2)
    assert int(steps) == 40
    assert float(lr) > 0 and float(lr) != pytest.approx(0.05)  # the agent moved the LR
    assert loaded.strip() == "[]"


MAX_LINES = 450
"""Longest file in lrgym/, agents/ or tasks/: a longer one holds more than one job."""


def test_no_file_is_over_450_lines():
    files = {path for root in TREES.values() for path in root.rglob("*.py")}
    assert any(path.name == "train.py" for path in files)  # agents/ is read too
    lengths = {path: len(path.read_text(encoding="utf-8").splitlines()) for path in files}
    too_long = sorted(f"{path} ({n} lines)" for path, n in lengths.items() if n > MAX_LINES)
    assert too_long == [], f"split these by job: {too_long}"


def test_the_cli_and_the_deploy_path_leave_stable_baselines3_unloaded():
    """Installed or not, SB3 loads only when training runs (`lrgym train`)."""
    pytest.importorskip("stable_baselines3")
    code = (
        "import sys, torch, lrgym, lrgym.cli\n"
        "opt = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=0.1)\n"
        "lrgym.PolicyScheduler(opt, lrgym.load_agent('default'))\n"
        "print(sorted(m for m in sys.modules if m.startswith('stable_baselines3')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
