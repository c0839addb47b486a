"""The module paths that lrgym's wings replaced, kept importable.

Until lrgym/ was grouped into wings (``core``, ``deploy``, ``backends``, ``harness``,
``io``), its modules stood flat in lrgym/, and the documentation named some of them
(``lrgym.controller.Controller``, ``lrgym.compare.run_grid`` ...). Those paths still
import, as the very module object of the new path (``lrgym.compare is
lrgym.harness.compare``), so ``from lrgym.compare import run_grid``, ``import
lrgym.agent`` and ``unittest.mock.patch("lrgym.compare.run_one")`` keep working. The other
moved modules (the plumbing, the report) were never documented and have no alias.

Hand-written because Python has no declarative module alias: a ``sys.modules`` entry
set at import time would import every aliased module (torch with them) on ``import
lrgym``; a meta-path finder resolves an old path only when it is imported.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from types import ModuleType

MOVED = {
    "lrgym.actions": "lrgym.core.actions",
    "lrgym.controller": "lrgym.core.controller",
    "lrgym.decision": "lrgym.core.decision",
    "lrgym.env": "lrgym.core.env",
    "lrgym.feedback_scheduler": "lrgym.core.feedback_scheduler",
    "lrgym.guard": "lrgym.core.guard",
    "lrgym.hyperparams": "lrgym.core.hyperparams",
    "lrgym.registration": "lrgym.core.registration",
    "lrgym.signals": "lrgym.core.signals",
    "lrgym.task": "lrgym.core.task",
    "lrgym.trainee": "lrgym.core.trainee",
    "lrgym.torch_trainee": "lrgym.backends.torch_trainee",
    "lrgym.xgb_trainee": "lrgym.backends.xgb_trainee",
    "lrgym.agent": "lrgym.deploy.agent",
    "lrgym.scheduler": "lrgym.deploy.scheduler",
    "lrgym.compare": "lrgym.harness.compare",
}
"""Old module path -> the module it now is (the paths the docs named before the wings)."""


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds an old path of :data:`MOVED` and loads it as its new module."""

    def find_spec(self, fullname: str, path=None, target=None):
        if fullname not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        module = importlib.import_module(MOVED[spec.name])
        # the import system sets __spec__ to the alias's spec; exec_module puts it back
        spec.loader_state = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        module.__spec__ = module.__spec__.loader_state


def install() -> None:
    """Make the old paths importable (once; ``import lrgym`` calls it)."""
    if not any(isinstance(f, _MovedModules) for f in sys.meta_path):
        sys.meta_path.append(_MovedModules())
