"""Meta-test tasks as lrgym tasks, so ``lrgym compare``/``evaluate`` fine-tune them.

Family ``NAME`` registers the lrgym task family ``meta-init/NAME-v0``: its task ``i``
(``meta-init/NAME-i-v0``) is meta-test task ``i`` (support set as training data, held-out
query examples as validation and test sets), trained with Adam at the family's
fine-tuning LR for its step budget, from a random init or, with ``--init DIR``, from an
init. The group ``meta-init-NAME`` (``meta-init-NAME:N``) selects the first 20 (N) tasks.
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from typing import Any

from lrgym.core.registration import drawn_id, register_family, register_group, registry

FAMILY_SIZE = 1000
"""Meta-test tasks each family offers under its task-family id."""
DEFAULT_GROUP_SIZE = 20
"""Tasks that the group ``meta-init-NAME`` selects without ``:N``."""


def task_family_id(family: str, optimizer: str | None = None, split: str = "meta-test") -> str:
    """The lrgym task-family id of a meta-init family's meta-test tasks (fine-tuned with
    ``optimizer`` instead of the family's own: ``meta-init/NAME.OPTIMIZER-v0``; drawn from
    the meta-val pool: ``meta-init/NAME[.OPTIMIZER].meta-val-v0``)."""
    opt = "" if optimizer is None else "." + optimizer
    return f"meta-init/{family}{opt}{'' if split == 'meta-test' else '.' + split}-v0"


def task_id(family: str, index: int, optimizer: str | None = None, split: str = "meta-test") -> str:
    """The lrgym task id of meta-test (or ``split``) task ``index`` of ``family``."""
    return drawn_id(task_family_id(family, optimizer, split), index)


def loaded_family(name: str, **options: Any):
    """The family ``name`` built with ``options`` once per process (per registration):
    meta-training, the card and the meta-test tasks share its loaded data and pools."""
    from lrgym.meta_init.registry import _FAMILIES

    return _family(name, _FAMILIES.get(name), tuple(sorted(options.items())))


@lru_cache(maxsize=8)
def _family(name: str, factory: Any, options: tuple[tuple[str, Any], ...]):
    """``factory`` (the registered one) is part of the key only: a re-registered name
    builds anew."""
    from lrgym.meta_init.registry import make_family

    return make_family(name, **dict(options))


def meta_test_task(
    family: str,
    index: int = 0,
    optimizer: str | None = None,
    lr: float | None = None,
    split: str = "meta-test",
    **options: Any,
):
    """The lrgym :class:`~lrgym.backends.torch_trainee.TorchTask` of meta-test task ``index``
    (fine-tuned with the family's optimizer and LR unless ``optimizer``/``lr`` say;
    ``split="meta-val"``: a task of the same shape from the meta-val pool)."""
    from lrgym.backends.torch_trainee import TorchTask
    from lrgym.core.task import TaskInfo
    from lrgym.meta_init.models import model_factory

    fam = loaded_family(family, **options)
    s = fam.settings
    splits, episode = fam.meta_test_task(index, split)  # type: ignore[arg-type]
    info = TaskInfo(
        domain="few-shot classification",
        model=f"{s.model.kind} {list(s.model.hidden)} (meta-init family {family})",
        data=f"{family} {split} task {index}: classes {list(episode.classes)}, "
        f"{s.k_shot} shots per class",
        metric="accuracy",
        split="held-out",
        target=s.target,
        default_lr=s.finetune_lr if lr is None else float(lr),
        total_steps=s.finetune_steps,
        decision_interval=s.decision_interval,
    )
    return TorchTask(
        info=info,
        data=lambda rng: splits,
        model=model_factory(s.model),
        optimizer=s.finetune_optimizer if optimizer is None else optimizer,
        batch_size=len(splits.y_train),
    )


def register_meta_test_tasks(
    family: str,
    optimizer: str | None = None,
    lr: float | None = None,
    split: str = "meta-test",
    **options: Any,
) -> str:
    """Register ``family``'s meta-test tasks (see the module docstring); returns the
    task-family id. ``options`` (e.g. ``data``) are passed to the family; ``optimizer``
    and ``lr`` register a variant fine-tuned otherwise (``meta-init/NAME.OPTIMIZER-v0``);
    ``split="meta-val"`` registers same-shaped tasks of the meta-val pool."""
    if split not in ("meta-test", "meta-val"):
        raise ValueError(f"fine-tuning tasks come from 'meta-test' or 'meta-val', not {split!r}")
    fid = task_family_id(family, optimizer, split)
    extra = {
        "optimizer": optimizer,
        "lr": lr,
        "split": None if split == "meta-test" else split,
        **options,
    }
    kwargs = {"family": family, **{k: v for k, v in extra.items() if v is not None}}
    current = registry.get(fid)
    if current is None or current.kwargs != kwargs:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # re-registering with the init's data options
            register_family(fid, "lrgym.meta_init.tasks:meta_test_task", FAMILY_SIZE, kwargs)

    def ids(n: int | None) -> list[str]:
        return [task_id(family, i) for i in range(n or DEFAULT_GROUP_SIZE)]

    if optimizer is None and split == "meta-test":
        register_group(f"meta-init-{family}", ids)
    return fid
