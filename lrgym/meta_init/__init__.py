"""Meta-learned initializations for fast transfer (``lrgym meta-init``).

* :mod:`~lrgym.meta_init.contract`: what a task family is: declared meta-train /
  meta-val / meta-test splits, episodes (:class:`InitFamily`).
* :mod:`~lrgym.meta_init.families`, :mod:`~lrgym.meta_init.registry`: the built-in
  families (``digits``, ``cifar10``, ``uci-sentiment``), yours via
  :func:`register_init_family`.
* :mod:`~lrgym.meta_init.algorithms`: first-order MAML, Reptile, ANIL
  (:mod:`~lrgym.meta_init.anil`) and the multi-task pre-training baseline, on
  ``torch.func`` (``functional_call``, ``grad``, ``vmap``).
* :mod:`~lrgym.meta_init.checkpoint`: ``init.safetensors`` + ``card.json``,
  :func:`load_init`.
* :mod:`~lrgym.meta_init.tasks`: meta-test tasks as lrgym tasks (``meta-init/NAME-i-v0``)
  for ``lrgym compare --init DIR``.
* Fine-tuning on meta-test tasks (steps to target, a target calibrated on random init's
  meta-val runs) runs in the comparison harness: :mod:`lrgym.harness.finetune`.

Importing this package registers no lrgym task: a family's meta-test tasks are
registered on demand (:func:`register_meta_test_tasks`; ``--init DIR`` registers those of
the init's family, with its data from ``--init-data PATH``: a card never names paths;
``--import lrgym.meta_init.builtin_tasks`` registers the offline ``digits`` ones).
"""

from __future__ import annotations

import importlib as _importlib

from lrgym.meta_init.contract import (
    META_SPLITS,
    Episode,
    FamilySettings,
    InitFamily,
    ModelSpec,
    SplitHygieneError,
    SplitPool,
)
from lrgym.meta_init.registry import UnknownFamilyError, family_names, make_family
from lrgym.meta_init.registry import register_init_family as _register_init_family
from lrgym.meta_init.tasks import register_meta_test_tasks

_LAZY = {
    "MetaInitConfig": "lrgym.meta_init.algorithms",
    "MetaInitResult": "lrgym.meta_init.algorithms",
    "meta_train": "lrgym.meta_init.algorithms",
    "InitCard": "lrgym.meta_init.checkpoint",
    "InitLoadError": "lrgym.meta_init.checkpoint",
    "load_init": "lrgym.meta_init.checkpoint",
    "save_init": "lrgym.meta_init.checkpoint",
    "apply_init": "lrgym.meta_init.checkpoint",
}


def register_init_family(name: str, factory) -> None:
    """Register a meta-init family (see :func:`lrgym.meta_init.registry.register_init_family`)
    and, if the factory builds it without options, its meta-test tasks as the lrgym task
    family ``meta-init/NAME-v0`` (otherwise call :func:`register_meta_test_tasks` with
    the options)."""
    _register_init_family(name, factory)
    try:
        make_family(name)
    except (TypeError, ValueError):  # needs options such as data=...
        return
    register_meta_test_tasks(name)


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(_importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "META_SPLITS",
    "Episode",
    "FamilySettings",
    "InitCard",
    "InitFamily",
    "InitLoadError",
    "MetaInitConfig",
    "MetaInitResult",
    "ModelSpec",
    "SplitHygieneError",
    "SplitPool",
    "UnknownFamilyError",
    "apply_init",
    "family_names",
    "load_init",
    "make_family",
    "meta_train",
    "register_init_family",
    "register_meta_test_tasks",
    "save_init",
]
