"""The built-in offline task suite: scikit-learn's bundled data and seeded generators.

Each function is a registry entry point returning a :class:`~lrgym.core.task.Task`.

Targets: each task's ``target`` is 0.97 × the best static baseline's median final
validation metric at the task's default LR (5 seeds, all baselines of
``lrgym.controllers.STATIC_SCHEDULES``), rounded down to two decimals; for R² tasks
the share is taken of the R² itself. They were measured once with
``python benchmarks/calibrate_targets.py`` before any learned agent was evaluated and
are never tuned afterwards (measured 2026-11-23, seeds 100-104; the script prints the
full table of medians; TeacherStudentXGB-v0, added later the same day, was calibrated
the same way before any agent trained on it was evaluated; TeacherStudentRegression-v1
and TeacherStudentClassification-v1, added 2026-12-06, were calibrated the same way on
the day they were added, before any agent trained on them was evaluated).
"""

from __future__ import annotations

from functools import partial

import numpy as np

from lrgym.backends.torch_trainee import TorchTask
from lrgym.backends.xgb_trainee import XGBoostTask
from lrgym.core.task import TaskInfo
from lrgym.tasks import data, models

SKLEARN = "scikit-learn bundled ({})"


def digits_mlp() -> TorchTask:
    """8×8 digit images, 64-64 MLP, Adam, batch 64."""
    return TorchTask(
        TaskInfo(
            "image classification",
            "MLP 64-64",
            SKLEARN.format("load_digits"),
            "accuracy",
            "meta-train",
            target=0.94,
            default_lr=1e-3,
            total_steps=1000,
            decision_interval=25,
        ),
        data=partial(data.sklearn_data, name="digits"),
        model=models.mlp,
        optimizer="adam",
        batch_size=64,
    )


def digits_cnn() -> TorchTask:
    """8×8 digit images, two-layer CNN, SGD with momentum, batch 32."""
    return TorchTask(
        TaskInfo(
            "image classification",
            "CNN conv16-conv32-pool",
            SKLEARN.format("load_digits"),
            "accuracy",
            "held-out",
            target=0.94,
            default_lr=1e-2,
            total_steps=600,
            decision_interval=20,
        ),
        data=partial(data.sklearn_data, name="digits"),
        model=models.digits_cnn,
        optimizer="sgd",
        batch_size=32,
    )


def breast_cancer_mlp() -> TorchTask:
    """Breast cancer diagnosis (30 features), 64-64 MLP, SGD with momentum, batch 32."""
    return TorchTask(
        TaskInfo(
            "tabular classification",
            "MLP 64-64",
            SKLEARN.format("load_breast_cancer"),
            "accuracy",
            "meta-train",
            target=0.94,
            default_lr=1e-2,
            total_steps=600,
            decision_interval=20,
        ),
        data=partial(data.sklearn_data, name="breast_cancer"),
        model=models.mlp,
        optimizer="sgd",
        batch_size=32,
    )


def wine_mlp() -> TorchTask:
    """Wine cultivar (13 features, 3 classes), 64-64 MLP, AdamW, batch 16."""
    return TorchTask(
        TaskInfo(
            "tabular classification",
            "MLP 64-64",
            SKLEARN.format("load_wine"),
            "accuracy",
            "held-out",
            target=0.97,
            default_lr=1e-3,
            total_steps=600,
            decision_interval=20,
        ),
        data=partial(data.sklearn_data, name="wine"),
        model=models.mlp,
        optimizer="adamw",
        batch_size=16,
        weight_decay=1e-2,
    )


def diabetes_mlp() -> TorchTask:
    """Diabetes progression regression (10 features), 64-64 MLP, Adam, batch 32."""
    return TorchTask(
        TaskInfo(
            "regression",
            "MLP 64-64",
            SKLEARN.format("load_diabetes"),
            "r2",
            "meta-train",
            target=0.4,
            default_lr=1e-3,
            total_steps=600,
            decision_interval=20,
        ),
        data=partial(data.sklearn_data, name="diabetes", regression=True),
        model=models.mlp,
        loss="mse",
        optimizer="adam",
        batch_size=32,
    )


def teacher_student_regression() -> TorchTask:
    """Random teacher MLP → regression; random student depth/width; Adam, batch 64."""
    return TorchTask(
        TaskInfo(
            "regression",
            "random MLP (depth 1-3, width 32-128)",
            "synthetic teacher-student (seeded)",
            "r2",
            "meta-train",
            target=0.9,
            default_lr=1e-3,
            total_steps=1000,
            decision_interval=25,
        ),
        data=data.teacher_student,
        model=models.random_mlp,
        loss="mse",
        optimizer="adam",
        batch_size=64,
    )


def teacher_student_classification() -> TorchTask:
    """Random teacher MLP → 4-class labels; random student; SGD with momentum, batch 64."""
    return TorchTask(
        TaskInfo(
            "tabular classification",
            "random MLP (depth 1-3, width 32-128)",
            "synthetic teacher-student, 4 classes (seeded)",
            "accuracy",
            "meta-train",
            target=0.84,
            default_lr=1e-2,
            total_steps=1000,
            decision_interval=25,
        ),
        data=partial(data.teacher_student, classes=4),
        model=models.random_mlp,
        optimizer="sgd",
        batch_size=64,
    )


PER_TASK_SEED = 25
"""Seed of what a teacher-student ``-v1`` task draws once per task (``-v0``: per run)."""


def _per_task_draw(salt: int) -> tuple[int, tuple[int, ...]]:
    """Input size and student hidden widths of a teacher-student ``-v1`` task.

    Drawn once per task, from the distributions ``-v0`` draws per run (8-32 inputs;
    depth 1-3 of width 32, 64 or 128), so every run of the task has the same shapes and
    K runs train as one stacked computation in the batched engine.
    """
    rng = np.random.default_rng([PER_TASK_SEED, salt])
    features = int(rng.integers(8, 33))
    depth = int(rng.integers(1, 4))
    width = int(rng.choice([32, 64, 128]))
    return features, (width,) * depth


def teacher_student_regression_v1() -> TorchTask:
    """:func:`teacher_student_regression` with its input size and student drawn once per
    task (each run still draws its own teacher, data and split); Adam, batch 64."""
    features, hidden = _per_task_draw(0)
    return TorchTask(
        TaskInfo(
            "regression",
            f"MLP {'-'.join(map(str, hidden))} (drawn per task)",
            f"synthetic teacher-student, {features} inputs (seeded)",
            "r2",
            "meta-train",
            target=0.88,
            default_lr=1e-3,
            total_steps=1000,
            decision_interval=25,
        ),
        data=partial(data.teacher_student, features=features),
        model=partial(models.mlp, hidden=hidden),
        loss="mse",
        optimizer="adam",
        batch_size=64,
    )


def teacher_student_classification_v1() -> TorchTask:
    """:func:`teacher_student_classification` with its input size and student drawn once
    per task (each run still draws its own teacher, data and split); SGD, batch 64."""
    features, hidden = _per_task_draw(1)
    return TorchTask(
        TaskInfo(
            "tabular classification",
            f"MLP {'-'.join(map(str, hidden))} (drawn per task)",
            f"synthetic teacher-student, {features} inputs, 4 classes (seeded)",
            "accuracy",
            "meta-train",
            target=0.82,
            default_lr=1e-2,
            total_steps=1000,
            decision_interval=25,
        ),
        data=partial(data.teacher_student, classes=4, features=features),
        model=partial(models.mlp, hidden=hidden),
        optimizer="sgd",
        batch_size=64,
    )


def ill_conditioned_regression() -> TorchTask:
    """Linear regression on features scaled over 1.5–3 decades; SGD with momentum, batch 32."""
    return TorchTask(
        TaskInfo(
            "regression",
            "linear",
            "synthetic ill-conditioned (seeded)",
            "r2",
            "meta-train",
            target=0.5,
            default_lr=1e-2,
            total_steps=1000,
            decision_interval=25,
        ),
        data=data.ill_conditioned,
        model=models.linear,
        loss="mse",
        optimizer="sgd",
        batch_size=32,
    )


def ill_conditioned_classification() -> TorchTask:
    """Logistic regression on ill-conditioned features; Adam, batch 128."""
    return TorchTask(
        TaskInfo(
            "tabular classification",
            "linear (logistic)",
            "synthetic ill-conditioned (seeded)",
            "accuracy",
            "held-out",
            target=0.7,
            default_lr=1e-3,
            total_steps=1000,
            decision_interval=25,
        ),
        data=partial(data.ill_conditioned, classification=True),
        model=models.linear,
        optimizer="adam",
        batch_size=128,
    )


def synthetic_classification() -> TorchTask:
    """scikit-learn ``make_classification`` (seeded), 128-128 MLP, AdamW, batch 128."""
    return TorchTask(
        TaskInfo(
            "tabular classification",
            "MLP 128-128",
            "synthetic make_classification (seeded)",
            "accuracy",
            "meta-train",
            target=0.84,
            default_lr=1e-3,
            total_steps=800,
            decision_interval=20,
        ),
        data=data.make_classification,
        model=partial(models.mlp, hidden=(128, 128)),
        optimizer="adamw",
        batch_size=128,
        weight_decay=1e-2,
    )


def friedman_mlp() -> TorchTask:
    """scikit-learn ``make_friedman1`` regression (seeded), 64-64 MLP, SGD momentum, batch 64."""
    return TorchTask(
        TaskInfo(
            "regression",
            "MLP 64-64",
            "synthetic make_friedman1 (seeded)",
            "r2",
            "held-out",
            target=0.9,
            default_lr=1e-2,
            total_steps=1000,
            decision_interval=25,
        ),
        data=data.friedman,
        model=models.mlp,
        loss="mse",
        optimizer="sgd",
        batch_size=64,
    )


def breast_cancer_xgb() -> XGBoostTask:
    """Breast cancer diagnosis with gradient-boosted trees (depth 3); eta per round."""
    return XGBoostTask(
        TaskInfo(
            "tabular classification",
            "XGBoost depth 3",
            SKLEARN.format("load_breast_cancer"),
            "accuracy",
            "meta-train",
            target=0.94,
            default_lr=0.3,
            total_steps=200,
            decision_interval=10,
        ),
        data=partial(data.sklearn_data, name="breast_cancer"),
        objective="binary:logistic",
        params={"max_depth": 3, "subsample": 0.8, "colsample_bytree": 0.8},
    )


def diabetes_xgb() -> XGBoostTask:
    """Diabetes regression with gradient-boosted trees (depth 2); eta per round."""
    return XGBoostTask(
        TaskInfo(
            "regression",
            "XGBoost depth 2",
            SKLEARN.format("load_diabetes"),
            "r2",
            "held-out",
            target=0.36,
            default_lr=0.3,
            total_steps=200,
            decision_interval=10,
        ),
        data=partial(data.sklearn_data, name="diabetes", regression=True),
        objective="reg:squarederror",
        params={"max_depth": 2, "subsample": 0.8, "colsample_bytree": 0.8},
    )


def teacher_student_xgb() -> XGBoostTask:
    """Small, noisy teacher–student regression with boosted trees (depth 3); eta per round.

    Few samples and noisy targets: a high eta overfits within a few rounds.
    """
    return XGBoostTask(
        TaskInfo(
            "regression",
            "XGBoost depth 3",
            "synthetic teacher-student, 600 samples, noise 0.5 (seeded)",
            "r2",
            "meta-train",
            target=0.58,
            default_lr=0.3,
            total_steps=200,
            decision_interval=10,
        ),
        data=partial(data.teacher_student, n=600, noise=0.5),
        objective="reg:squarederror",
        params={"max_depth": 3, "subsample": 0.8, "colsample_bytree": 0.8},
    )
