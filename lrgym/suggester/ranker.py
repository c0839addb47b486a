"""The suggester's ranking head: how likely a configuration is to be among a task's best.

The ridge ensemble (:mod:`lrgym.suggester.model`) predicts a configuration's validation
metric; fitted by squared error, it is pulled by every configuration and task alike, and
its probe terms did not change which configuration it ranks first (leave-task-out, on
the meta-train logs). The ranking head answers the question the suggestion asks: will
this configuration land within :data:`WITHIN` of the best one on *this* task? It is a
gradient-boosted tree ensemble (XGBoost, which lrgym already depends on) over the
task's probe features ``t``, the configuration ``z`` and its LR relative to the range
tests ``r``; the trees form the ``t × z`` interactions the ridge had to be handed, and
the 0/1 target makes a task's spread of metrics irrelevant, only which configurations
are near its top. Members differ by their seed (row and column subsampling); their mean
is the score. Members are stored in XGBoost's own JSON model format: loading one
executes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np

WITHIN = 0.05
"""A configuration is a hit when its metric is within this share of the task's best."""


@dataclass(frozen=True)
class RankerSettings:
    """How :func:`fit_ranker` grows the trees (XGBoost's parameter names).

    Attributes:
        n_estimators: Boosting rounds.
        max_depth: Depth of each tree.
        learning_rate: Shrinkage (XGBoost's ``eta``).
        min_child_weight: Fewest rows (hessian) in a leaf.
        subsample: Share of rows each tree sees.
        colsample_bytree: Share of columns each tree sees.
        reg_lambda: L2 penalty on leaf weights.
        members: Ensemble members (seeds ``seed``, ``seed + 1``, ...).
        seed: Seeds the first member.
    """

    n_estimators: int = 400
    max_depth: int = 3
    learning_rate: float = 0.03
    min_child_weight: float = 20.0
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    reg_lambda: float = 10.0
    members: int = 5
    seed: int = 0


def within_labels(val: np.ndarray, group: np.ndarray, share: float = WITHIN) -> np.ndarray:
    """1.0 where ``val`` is within ``share`` (relative) of its group's best, else 0.0."""
    val, group = np.asarray(val, dtype=float), np.asarray(group)
    labels = np.zeros(len(val))
    for g in np.unique(group):
        rows = group == g
        best = val[rows].max()
        labels[rows] = val[rows] >= best - share * abs(best)
    return labels


@dataclass
class Ranker:
    """A fitted ranking head.

    Attributes:
        boosters: One ``xgboost.Booster`` per member.
        n_columns: Width of the rows it was fitted on.
        settings: How it was fitted.
    """

    boosters: tuple
    n_columns: int
    settings: RankerSettings

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Mean over members of the predicted share of hits (one value per row of ``x``)."""
        import xgboost as xgb

        x = np.asarray(x, dtype=float)
        if x.ndim != 2 or x.shape[1] != self.n_columns:
            raise ValueError(f"the ranker takes rows of {self.n_columns} columns, got {x.shape}")
        data = xgb.DMatrix(x, nthread=1)
        return np.mean([b.predict(data) for b in self.boosters], axis=0)

    def to_json(self) -> dict:
        """JSON-ready data: settings, width and each member in XGBoost's JSON format."""
        return {
            "settings": asdict(self.settings),
            "n_columns": self.n_columns,
            "members": [json.loads(bytes(b.save_raw(raw_format="json"))) for b in self.boosters],
        }

    @classmethod
    def from_json(cls, data: Mapping, where: str = "ranker") -> Ranker:
        """Rebuild a ranker from :meth:`to_json`'s data.

        Raises:
            ValueError: A missing or unknown key, or a member XGBoost cannot load (the
                message names it).
        """
        import xgboost as xgb

        from lrgym.io.file_checks import check_keys
        from lrgym.io.validate import whole_number

        if not isinstance(data, Mapping):
            raise ValueError(f"{where} must be an object, got {type(data).__name__}")
        check_keys(data, where, required=("settings", "n_columns", "members"))
        settings = data["settings"]
        if not isinstance(settings, Mapping):
            raise ValueError(f"{where}.settings must be an object, got {settings!r}")
        fields = tuple(RankerSettings.__dataclass_fields__)
        check_keys(settings, f"{where}.settings", known=fields)
        members = data["members"]
        if not isinstance(members, list) or not members:
            raise ValueError(f"{where}.members must be a non-empty list; retrain the suggester")
        boosters = []
        for i, member in enumerate(members):
            try:
                boosters.append(xgb.Booster(model_file=bytearray(json.dumps(member).encode())))
            except (xgb.core.XGBoostError, TypeError, ValueError) as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc)
                raise ValueError(
                    f"{where}.members[{i}] is not an XGBoost model ({first}); retrain the "
                    "suggester with `lrgym train-suggester`"
                ) from None
        return cls(
            tuple(boosters),
            whole_number(f"{where}.n_columns", data["n_columns"], 1),
            RankerSettings(**settings),
        )


def fit_ranker(
    x: np.ndarray, labels: np.ndarray, settings: RankerSettings = RankerSettings()
) -> Ranker:
    """Fit the ranking head on rows ``x`` and their 0/1 ``labels`` (:func:`within_labels`).

    A squared-error fit of the 0/1 target (a linear-probability model, per leaf), so a
    member's output is a share of hits.
    """
    import xgboost as xgb

    x = np.asarray(x, dtype=float)
    data = xgb.DMatrix(x, label=np.asarray(labels, dtype=float), nthread=1)
    params = {
        "objective": "reg:squarederror",
        "max_depth": settings.max_depth,
        "eta": settings.learning_rate,
        "min_child_weight": settings.min_child_weight,
        "subsample": settings.subsample,
        "colsample_bytree": settings.colsample_bytree,
        "lambda": settings.reg_lambda,
        "nthread": 1,
    }
    boosters = tuple(
        xgb.train({**params, "seed": settings.seed + m}, data, settings.n_estimators)
        for m in range(settings.members)
    )
    return Ranker(boosters, x.shape[1], settings)


def pick(within: np.ndarray, score: np.ndarray) -> int:
    """Index of the row ranked first: highest ``within``, ties broken by ``score``, then
    by order."""
    return int(np.lexsort((np.arange(len(score)), -np.asarray(score), -np.asarray(within)))[0])


__all__ = ["Ranker", "RankerSettings", "WITHIN", "fit_ranker", "pick", "within_labels"]
