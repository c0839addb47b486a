"""A learned LR predictor (the plan's "ALRS"): an MLP maps recent metrics to the next LR.

At every validation (an "epoch" of the plan), a small network (2 hidden layers of 64
ReLU units, linear output) reads :data:`PREDICTOR_FEATURES`, built from the run's recent
metrics by :class:`MetricHistory`, and predicts the change of the LR for the next
evaluation interval, ``log10(lr_next / lr)``, clipped to ``[-1, 1]`` (at most ×10 or
÷10 per decision).

**Supervised target (the choice made here).** Training data are logged runs: the
``runs.csv``/``curves.csv`` that ``lrgym compare`` writes, on *meta-train* tasks only.
Runs of the same task and seed start from the same data split and initialisation and
differ only in their schedule and initial LR. At every evaluation ``s`` of such a group,
the *leader* is the run with the lowest validation loss at the group's next evaluation
``s'``; the target for every run of the group at ``s`` is
``clip(log10(lr_leader(s) / lr_run(s)), -1, 1)``: move towards the LR that the
best-performing schedule used over ``(s, s']``. Because groups pool every initial LR, a
run stuck at a tiny LR learns to raise it and a run blowing up learns to cut it.
(Look-ahead probes, the plan's alternative, would need checkpoints of every run; logged
runs need nothing beyond what the harness already writes.)

**Stability.** :func:`lr_stability` is the mean ``|Δ log10 LR|`` between consecutive
evaluations of a run, the variation of the predicted LR the plan asks for (it applies to
any controller's LR trace, so it can be compared with the static schedules').
"""

from lrgym.controllers.lr_predictor.features import PREDICTOR_FEATURES, MetricHistory
from lrgym.controllers.lr_predictor.model import (
    FORMAT,
    FORMAT_VERSION,
    HIDDEN,
    MAX_LOG10_CHANGE,
    LRPredictor,
    PredictorLoadError,
    load_predictor,
    make_network,
)
from lrgym.controllers.lr_predictor.scheduler import PredictorController, PredictorLR
from lrgym.controllers.lr_predictor.training import (
    STABILITY_LR_FLOOR,
    PredictorTraining,
    TrainingData,
    lr_stability,
    train_predictor,
    training_data,
)

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "HIDDEN",
    "MAX_LOG10_CHANGE",
    "PREDICTOR_FEATURES",
    "LRPredictor",
    "MetricHistory",
    "PredictorController",
    "PredictorLR",
    "PredictorLoadError",
    "PredictorTraining",
    "STABILITY_LR_FLOOR",
    "TrainingData",
    "load_predictor",
    "lr_stability",
    "make_network",
    "train_predictor",
    "training_data",
]
