"""The documentation site: its code runs, its API pages cover the public API, and no
model file hides in it.

Each page's python blocks run in order in one fresh Python process (a page reads like one
session: a later block may use an earlier one's names), so what a block registers or
imports never leaks into another test. A block that needs something a reader supplies
(their model, their data, a trained folder) gets a small stand-in from :data:`PAGES`,
named there with the text it replaces; every such entry is checked to still match.
``mkdocs build --strict`` itself (links, anchors, the references mkdocstrings resolves)
runs in ``.ci/run``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import lrgym

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
FENCE = re.compile(r"```python\n(.*?)```", re.S)
ENV_PAGE = "concepts/environments.md"


@dataclass(frozen=True)
class Page:
    """How a page's blocks run: a prelude of stand-ins, text replaced, blocks left out."""

    prelude: str = ""
    replace: dict[str, str] = field(default_factory=dict)
    skip: dict[int, str] = field(default_factory=dict)
    """Block index -> why it cannot run as a whole (and what runs it instead)."""
    slow: bool = False


TINY_LOOP = """
import torch
model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
gen = torch.Generator().manual_seed(0)
x, y = torch.randn(64, 4, generator=gen), torch.randint(0, 2, (64,), generator=gen)
loader = [(x[i : i + 8], y[i : i + 8]) for i in range(0, 64, 8)] * 10
loss_fn = torch.nn.functional.cross_entropy
"""

PAGES: dict[str, Page] = {
    "tutorials/your-loop.md": Page(
        prelude=TINY_LOOP,
        replace={'agent="runs/agent"': 'agent="default"'},
        skip={
            1: "HF, Lightning and XGBoost fragments (a Trainer, a LightningModule, DMatrix "
            "data); examples/ holds them whole and tests/test_examples.py runs them"
        },
    ),
    "meta_init.md": Page(
        # the shipped init stands in for the folder `lrgym meta-init --out` writes
        prelude="""
import lrgym
import numpy as np
import torch
my_model = lrgym.load_init("meta-init-digits")  # a model of the init's architecture
x_support, y_support = torch.randn(10, 64), torch.arange(10) % 2
def my_arrays():
    rng = np.random.default_rng(0)
    return rng.standard_normal((3000, 256)).astype(np.float32), np.arange(3000) % 30
""",
        replace={'"runs/init-digits"': '"meta-init-digits"'},
    ),
    "suggest.md": Page(
        slow=True,  # probes and a 600-step final run on WineMLP
    ),
}
"""Pages whose blocks need stand-ins; every other page's blocks run as written."""


def pages_with_code() -> list[str]:
    return sorted(
        str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md") if FENCE.search(p.read_text())
    )


def page_script(page: str) -> str:
    setup = PAGES.get(page, Page())
    blocks = FENCE.findall((DOCS / page).read_text(encoding="utf-8"))
    for old in setup.replace:
        assert any(old in b for b in blocks), f"{page}: {old!r} no longer appears"
    assert all(i < len(blocks) for i in setup.skip), f"{page}: skip names a missing block"
    parts = [textwrap.dedent(setup.prelude)]
    for i, block in enumerate(blocks):
        if i in setup.skip:
            continue
        for old, new in setup.replace.items():
            block = block.replace(old, new)
        parts.append(block)
    return "\n".join(parts)


def run_page(page: str, tmp_path: Path) -> str:
    script = page_script(page)
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"{page}:\n{script}\n--- stderr:\n{result.stderr[-4000:]}"
    return result.stdout


@pytest.mark.parametrize(
    "page",
    [
        pytest.param(p, marks=pytest.mark.slow) if PAGES.get(p, Page()).slow else p
        for p in pages_with_code()
        if p != ENV_PAGE  # test_env_snippet_prints_a_decision runs it
    ],
)
def test_page_code_runs(page, tmp_path):
    run_page(page, tmp_path)


def test_stand_ins_name_existing_pages():
    assert set(PAGES) <= set(pages_with_code())


def test_env_snippet_prints_a_decision(tmp_path):
    out = run_page(ENV_PAGE, tmp_path)
    lr, val_loss, val_metric, steps = out.split()
    assert float(lr) > 0 and float(val_loss) > 0 and 0 <= float(val_metric) <= 1
    assert int(steps) == lrgym.make_task("lrgym/DigitsMLP-v0").info.decision_interval


def test_docs_and_readme_share_the_task_and_loop_snippets():
    """The README's snippets are copies of the tutorials' (tests/test_readme.py runs them)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for page, needle in [
        ("tutorials/your-task.md", "# mylab/tasks.py"),
        ("tutorials/your-loop.md", "scheduler.step(loss=loss)"),
    ]:
        (doc,) = [b for b in FENCE.findall((DOCS / page).read_text()) if needle in b]
        (mine,) = [b for b in FENCE.findall(readme) if needle in b]
        assert doc == mine, page


def api_names() -> set[str]:
    """Every ``::: lrgym.NAME`` identifier on the API pages."""
    text = "\n".join(p.read_text(encoding="utf-8") for p in (DOCS / "api").glob("*.md"))
    return set(re.findall(r"^::: lrgym\.(\w+)\s*$", text, flags=re.M))


def test_api_pages_cover_every_public_name():
    missing = sorted(set(lrgym.__all__) - api_names())
    assert not missing, f"add '::: lrgym.NAME' to a page in docs/api/ for: {missing}"


def test_api_pages_name_only_public_names():
    assert api_names() <= set(lrgym.__all__)


def test_every_api_page_is_in_the_nav():
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for page in (DOCS / "api").glob("*.md"):
        assert f"api/{page.name}" in nav, page.name


def test_no_model_files_under_docs():
    models = [
        p.relative_to(ROOT)
        for p in DOCS.rglob("*")
        if p.suffix in {".pt", ".pth", ".safetensors", ".pkl", ".zip", ".ckpt", ".npz"}
    ]
    assert not models, f"model files belong beside their code, not in docs/: {models}"


def test_site_builds_strictly(tmp_path):
    """Where the docs extra is installed: broken links, anchors and API references fail."""
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert result.returncode == 0, result.stderr[-4000:]
    api = "".join(p.read_text(encoding="utf-8") for p in (tmp_path / "api").rglob("*.html"))
    assert "PolicyScheduler" in api
    assert ":class:" not in api and ":meth:" not in api  # docs/_ext/sphinx_roles.py


def test_sphinx_roles_become_code_spans():
    pytest.importorskip("griffe", reason="the docs extra (dev includes it) brings griffe")
    sys.path.insert(0, str(DOCS / "_ext"))
    try:
        from sphinx_roles import plain
    finally:
        sys.path.remove(str(DOCS / "_ext"))
    text = "See :class:`~lrgym.agent.Agent`, :meth:`step` and :data:`lrgym.signals.FEATURES`."
    assert plain(text) == "See `Agent`, `step` and `lrgym.signals.FEATURES`."
