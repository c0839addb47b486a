"""Built-in tasks (installed as ``lrgym.tasks``); registered on ``import lrgym``.

Like ``gymnasium/envs/__init__.py``: one ``register_task`` call per versioned id.
"""

from lrgym.core.registration import register_group, register_task

_BUILTIN = {
    "DigitsMLP-v0": "digits_mlp",
    "DigitsCNN-v0": "digits_cnn",
    "BreastCancerMLP-v0": "breast_cancer_mlp",
    "WineMLP-v0": "wine_mlp",
    "DiabetesMLP-v0": "diabetes_mlp",
    "TeacherStudentRegression-v0": "teacher_student_regression",
    "TeacherStudentClassification-v0": "teacher_student_classification",
    "TeacherStudentRegression-v1": "teacher_student_regression_v1",
    "TeacherStudentClassification-v1": "teacher_student_classification_v1",
    "IllConditionedRegression-v0": "ill_conditioned_regression",
    "IllConditionedClassification-v0": "ill_conditioned_classification",
    "SyntheticClassification-v0": "synthetic_classification",
    "FriedmanMLP-v0": "friedman_mlp",
    "BreastCancerXGB-v0": "breast_cancer_xgb",
    "DiabetesXGB-v0": "diabetes_xgb",
    "TeacherStudentXGB-v0": "teacher_student_xgb",
}

for _name, _factory in _BUILTIN.items():
    register_task(id=f"lrgym/{_name}", entry_point=f"lrgym.tasks.builtin:{_factory}")

# the held-out tasks added in round 24 (see lrgym.tasks.fresh), also a group of their own
_FRESH = {
    "SparseParityNesterov-v0": "sparse_parity_nesterov",
    "NoisyLinearAdagrad-v0": "noisy_linear_adagrad",
    "SineFitRMSprop-v0": "sine_fit_rmsprop",
    "TwoSpiralsAdamW-v0": "two_spirals_adamw",
}
for _name, _factory in _FRESH.items():
    register_task(id=f"lrgym/{_name}", entry_point=f"lrgym.tasks.fresh:{_factory}")
register_group("held-out-fresh", lambda count=None: [f"lrgym/{name}" for name in _FRESH])

# the multi-hyperparameter envs, the real-world suite and its text tasks, and the
# procedural families (one id each; `--tasks procedural` selects drawn tasks)
from lrgym.tasks import multi, procedural, real, text  # noqa: E402, F401
