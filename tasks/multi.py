"""Multi-hyperparameter variants of built-in tasks, each a Gymnasium id of its own.

Like ``gymnasium/envs/__init__.py``: one ``register_task`` call per versioned id. A
variant is :class:`~lrgym.core.env.LRControlEnv` on the base task with ``hparams`` fixed, so
``gymnasium.make("lrgym/DigitsMLP-MultiHP-v0")`` equals
``gymnasium.make("lrgym/DigitsMLP-v0", hparams=["lr", "momentum", "weight_decay"])``.
Torch variants control LR, momentum (SGD momentum or Adam β1) and weight decay;
XGBoost variants control eta, ``max_depth`` and ``subsample``. The base task's split
(meta-train or held-out) applies to its variant.
"""

from __future__ import annotations

from lrgym.core.hyperparams import TORCH_HPARAMS, XGBOOST_HPARAMS
from lrgym.core.registration import register_task, registry

MULTI_HP_VARIANTS: dict[str, tuple[str, tuple[str, ...]]] = {
    # meta-train
    "lrgym/DigitsMLP-MultiHP-v0": ("lrgym/DigitsMLP-v0", TORCH_HPARAMS),
    "lrgym/TeacherStudentClassification-MultiHP-v0": (
        "lrgym/TeacherStudentClassification-v0",
        TORCH_HPARAMS,
    ),
    "lrgym/SyntheticClassification-MultiHP-v0": (
        "lrgym/SyntheticClassification-v0",
        TORCH_HPARAMS,
    ),
    "lrgym/BreastCancerXGB-MultiHP-v0": ("lrgym/BreastCancerXGB-v0", XGBOOST_HPARAMS),
    "lrgym/TeacherStudentXGB-MultiHP-v0": ("lrgym/TeacherStudentXGB-v0", XGBOOST_HPARAMS),
    # held-out
    "lrgym/WineMLP-MultiHP-v0": ("lrgym/WineMLP-v0", TORCH_HPARAMS),
    "lrgym/FriedmanMLP-MultiHP-v0": ("lrgym/FriedmanMLP-v0", TORCH_HPARAMS),
    "lrgym/DiabetesXGB-MultiHP-v0": ("lrgym/DiabetesXGB-v0", XGBOOST_HPARAMS),
}
"""Variant id → (base task id, controlled hyperparameters)."""

for _id, (_task, _hparams) in MULTI_HP_VARIANTS.items():
    _base = registry[_task]
    register_task(
        id=_id,
        entry_point=_base.entry_point,
        kwargs=_base.kwargs,
        env_kwargs={"task": _task, "hparams": list(_hparams)},
    )
