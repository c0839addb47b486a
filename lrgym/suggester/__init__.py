"""Hyperparameter suggestion from short probe runs (``lrgym suggest``).

A task declares its knobs (:class:`SearchSpace`, see :mod:`lrgym.suggester.knobs`); a few
short probe runs describe it (:mod:`lrgym.suggester.probes`); a meta-model trained on
logged runs of meta-train tasks (:mod:`lrgym.suggester.model`, :mod:`lrgym.suggester.logs`,
:mod:`lrgym.suggester.training`)
predicts the validation metric of every configuration, a ranking head
(:mod:`lrgym.suggester.ranker`) ranks them by how likely each is to land within 5% of the
task's best, and :func:`suggest` returns the first. Optuna's TPE, random and grid
samplers are the alternative search backends (:mod:`lrgym.suggester.search`, the
``lrgym[tune]`` extra).
"""

from lrgym.suggester.api import BudgetError, Suggestion, suggest
from lrgym.suggester.knobs import NoKnobsError, Tunable, TunableTask, tunable
from lrgym.suggester.logs import LogSettings, generate_logs, read_logs, reprobe_logs
from lrgym.suggester.model import Suggester, load_suggester
from lrgym.suggester.probes import ProbeSettings, RunOutcome, probe_task, run_config
from lrgym.suggester.ranker import RankerSettings
from lrgym.suggester.search import SEARCHES, SearchResult, optuna_search
from lrgym.suggester.space import PLAN_SPACE, XGB_SPACE, Knob, SearchSpace
from lrgym.suggester.training import TrainSettings, train_suggester

__all__ = [
    "BudgetError",
    "Knob",
    "LogSettings",
    "NoKnobsError",
    "PLAN_SPACE",
    "ProbeSettings",
    "RankerSettings",
    "RunOutcome",
    "SEARCHES",
    "SearchResult",
    "SearchSpace",
    "Suggester",
    "Suggestion",
    "TrainSettings",
    "Tunable",
    "TunableTask",
    "XGB_SPACE",
    "generate_logs",
    "load_suggester",
    "optuna_search",
    "probe_task",
    "read_logs",
    "reprobe_logs",
    "run_config",
    "suggest",
    "train_suggester",
    "tunable",
]
