"""The meta-model: predicts a configuration's validation metric from the task's probes.

A bootstrap ensemble of ridge regressions on ``[1, t, z, r, t ⊗ z]``, where ``t`` are the
task's probe features, ``z`` encodes a configuration (log LR and its square, each
also for SGD only, batch size, layers, units, dropout, and XGBoost's depth, subsample
and rounds) and ``r`` places the configuration's LR relative to what the task's LR
range test measured for its optimizer (:data:`RELATIVE_FEATURES`; empty for probes
without range tests). ``r`` is what lets the probes move the suggested LR: ``z`` alone
can only learn which absolute LRs work across tasks. The target is the run's final
validation metric minus the best probe's (the *anchor*), clipped to
±:data:`TARGET_CLIP`, so tasks with different metric levels share one model. The
ensemble's spread plus the cross-validated residual gives the uncertainty; intervals
are computed on the logit scale of the metric's range (:func:`interval`), so they stay
in it. A ranking head (:mod:`lrgym.suggester.ranker`, format version 3), where present,
ranks the configurations by how likely each is to land within 5% of the task's best; the
ridge then breaks its ties and gives the predicted metric. Weights are plain JSON (NumPy
arrays as lists, trees in XGBoost's JSON format): loading one executes nothing.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from lrgym.io._atomic import write_text_atomic
from lrgym.suggester.probes import METRIC_FLOOR, PER_RANGE, RANGE_SLOTS, ProbeSettings
from lrgym.suggester.ranker import Ranker
from lrgym.suggester.space import Config

FORMAT = "lrgym-suggester"
FORMAT_VERSION = 3
"""Version 2 added the LR range tests (probe ``range_steps``) and the relative block;
version 3 the optional ranking head (``ranker``)."""
READABLE_VERSIONS = (1, 2, FORMAT_VERSION)
"""Version 1 files (no range tests, so no relative block) and version 2 files (no ranking
head) still load and predict alike."""

METRIC_RANGES: dict[str, tuple[float, float]] = {
    "accuracy": (0.0, 1.0),
    "macro_f1": (0.0, 1.0),
    "r2": (METRIC_FLOOR, 1.0),
}
"""The values a validation metric can take here (R² is floored at
:data:`~lrgym.suggester.probes.METRIC_FLOOR`, as every logged metric is). Other metrics
are unbounded."""

TARGET_CLIP = 0.5
"""Targets (final val metric − anchor) are clipped to ±this, and so are predictions: a
diverged run only needs to rank low, and its exact loss would dominate the squared error."""

CONFIG_FEATURES = (
    "log_lr",
    "log_lr_sq",
    "sgd",
    "sgd_log_lr",
    "sgd_log_lr_sq",
    "log_batch",
    "layers",
    "log_units",
    "dropout",
    "max_depth",
    "subsample",
    "log_rounds",
)
"""How :func:`encode_config` lays out a configuration (0 = the knob's centre or absent)."""


def encode_config(config: Config) -> np.ndarray:
    """The configuration's feature vector ``z`` (knobs the model does not know are ignored)."""
    lr = float(config.get("lr", 10**-2.5))
    log_lr = math.log10(lr) + 2.5
    sgd = 1.0 if config.get("optimizer") == "sgd" else 0.0
    return np.array(
        [
            log_lr,
            log_lr**2,
            sgd,
            sgd * log_lr,
            sgd * log_lr**2,
            math.log2(float(config.get("batch_size", 64)) / 64),
            float(config.get("layers", 3)) - 3,
            math.log2(float(config.get("units", 128)) / 128),
            float(config.get("dropout", 0.3)) - 0.3,
            float(config.get("max_depth", 4)) - 4,
            float(config.get("subsample", 0.8)) - 0.8,
            math.log2(float(config.get("rounds", 100)) / 100),
        ]
    )


RELATIVE_FEATURES = ("d_steep", "d_steep_sq", "d_min", "d_min_sq", "over_blowup")
"""How :func:`encode_relative` lays out a configuration's LR against its range test: log10
distance to the LR of steepest descent and to the LR of lowest loss (and their squares),
and how far (decades) it lies above half a decade below the blow-up LR (0 if not)."""


def encode_relative(
    config: Config, task_features: np.ndarray, names: Sequence[str], slot: int
) -> np.ndarray:
    """The configuration's relative block ``r`` (empty if the probes ran no range test).

    Args:
        config: The configuration.
        task_features: The task's probe features.
        names: Their names (:func:`~lrgym.suggester.probes.feature_names`).
        slot: Which range test matches the configuration's optimizer
            (:func:`~lrgym.suggester.probes.range_slot`).
    """
    key = f"rt_{RANGE_SLOTS[slot]}_"
    if key + PER_RANGE[0] not in names:
        return np.zeros(0)
    index = {n: i for i, n in enumerate(names)}
    steep, low, blow = (task_features[index[key + n]] for n in PER_RANGE[:3])
    log_lr = math.log10(float(config.get("lr", 10**-2.5)))
    d_steep, d_min = log_lr - steep, log_lr - low
    return np.array([d_steep, d_steep**2, d_min, d_min**2, max(0.0, log_lr - blow + 0.5)])


def design(
    task_features: np.ndarray, configs: np.ndarray, relative: np.ndarray | None = None
) -> np.ndarray:
    """Rows ``[t, z, r, t ⊗ z]`` for one task's features, a matrix of encoded configs and
    their relative blocks (None: no ``r``)."""
    t = np.broadcast_to(task_features, (configs.shape[0], task_features.shape[-1]))
    inter = (t[:, :, None] * configs[:, None, :]).reshape(configs.shape[0], -1)
    r = np.zeros((configs.shape[0], 0)) if relative is None else relative
    return np.concatenate([t, configs, r, inter], axis=1)


def metric_range(metric: str) -> tuple[float, float]:
    """The range of ``metric``'s values (:data:`METRIC_RANGES`; others unbounded)."""
    return METRIC_RANGES.get(str(metric), (-math.inf, math.inf))


INTERVAL_EDGE = 1e-3
"""A prediction is kept this share of the range away from its ends before the logit."""


def interval(
    mean: np.ndarray, std: np.ndarray, metric: str, z: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """An interval of ``z`` standard deviations around ``mean``, symmetric on the logit
    scale of the metric's range, so both ends always lie inside the range.

    For a bounded metric (accuracy, macro-F1 in [0, 1]; R² in [-1, 1] here) the mean
    maps to ``u = logit(p)``, ``p = (m - lo) / (hi - lo)`` (kept :data:`INTERVAL_EDGE`
    from the ends). The half-width ``w`` on that scale is set so that the side facing
    away from the nearer end spans ``z·std`` on the metric's own scale (down to the
    edge, if it would pass it); the interval is ``logistic(u ± w)`` mapped back. Near
    an end the interval is lopsided: a predicted accuracy of 0.999 ± 0.137 becomes
    0.862 to 0.99999, not 0.862 to 1.136. (The delta method, ``std / (p (1 - p))``,
    would stretch that to nearly the whole range.) An unbounded metric gets the plain
    ``mean ± z·std``. A mean at an end of the range (a capped prediction of 1.0) is kept
    inside its interval.
    """
    lo, hi = metric_range(metric)
    mean, std = np.asarray(mean, dtype=float), np.asarray(std, dtype=float)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return mean - z * std, mean + z * std

    def logit(q: np.ndarray) -> np.ndarray:
        q = np.clip(q, INTERVAL_EDGE, 1 - INTERVAL_EDGE)
        return np.log(q / (1 - q))

    p = np.clip((mean - lo) / (hi - lo), INTERVAL_EDGE, 1 - INTERVAL_EDGE)
    u, d = logit(p), z * std / (hi - lo)
    w = np.where(p >= 0.5, u - logit(p - d), logit(p + d) - u)
    low, high = (lo + (hi - lo) / (1 + np.exp(-(u + sign * w))) for sign in (-1, 1))
    return np.minimum(low, mean), np.maximum(high, mean)  # a mean at an end is inside


def _ridge(x: np.ndarray, y: np.ndarray, alpha: float) -> np.ndarray:
    """Ridge weights with an unpenalised intercept (``x`` already standardised)."""
    xa = np.concatenate([np.ones((x.shape[0], 1)), x], axis=1)
    penalty = alpha * np.eye(xa.shape[1])
    penalty[0, 0] = 0.0
    return np.linalg.solve(xa.T @ xa + penalty, xa.T @ y)


@dataclass(frozen=True)
class Prediction:
    """Predicted validation metric of configurations.

    Attributes:
        mean: Predicted final validation metric of each configuration (capped at the
            best metric the suggester saw in training, or the probes' best if higher,
            and clipped to the metric's range).
        std: Its uncertainty (one standard deviation, on the metric's scale).
        score: The uncapped prediction, which ranks the configurations (after ``within``).
        low: Lower end of the one-standard-deviation interval (logit scale, in range).
        high: Upper end of that interval.
        within: The ranking head's estimate that each configuration lands within 5% of
            the task's best; it ranks first (zeros without a ranking head).
    """

    mean: np.ndarray
    std: np.ndarray
    score: np.ndarray
    low: np.ndarray
    high: np.ndarray
    within: np.ndarray | None = None


@dataclass
class Suggester:
    """A trained meta-model (see the module docstring).

    Attributes:
        probe: The probe settings its training features were computed with (a new task
            is probed the same way).
        feature_names: Names of the task features ``t``.
        x_mean: Means of the design columns (standardisation).
        x_std: Standard deviations of the design columns.
        members: Ridge weights of each ensemble member (intercept first).
        resid_std: Cross-validated residual standard deviation (leave-task-out).
        alpha: Ridge penalty.
        final_steps: Optimizer steps of the logged runs it learned from.
        metric_max: Best final validation metric in its training logs (caps predictions).
        card: What it was trained on and how it scored (written as ``card.json``).
        ranker: The ranking head (None: the ridge ensemble ranks alone).
    """

    probe: ProbeSettings
    feature_names: tuple[str, ...]
    x_mean: np.ndarray
    x_std: np.ndarray
    members: np.ndarray
    resid_std: float
    alpha: float
    final_steps: int
    metric_max: float = math.inf
    card: dict = field(default_factory=dict)
    ranker: Ranker | None = None

    def predict(
        self,
        task_features: np.ndarray,
        anchor: float,
        configs: Sequence[Config],
        slots: Sequence[int] | None = None,
        metric: str = "",
    ) -> Prediction:
        """Predicted final validation metric (mean ± std, and an in-range interval) of
        each configuration.

        Args:
            task_features: The task's probe features.
            anchor: The probes' best validation metric.
            configs: The configurations.
            slots: Range-test slot of each configuration's optimizer (None: all 0).
            metric: The task's metric name: predictions are clipped to its range.
        """
        if task_features.shape != (len(self.feature_names),):
            raise ValueError(
                f"expected {len(self.feature_names)} task features, got {task_features.shape}; "
                "probe the task with this suggester's probe settings"
            )
        slots = [0] * len(configs) if slots is None else list(slots)
        z = np.stack([encode_config(c) for c in configs])
        r = np.stack(
            [
                encode_relative(c, task_features, self.feature_names, s)
                for c, s in zip(configs, slots, strict=True)
            ]
        )
        rows = design(task_features, z, r)
        within = np.zeros(len(configs))
        if self.ranker is not None:  # it reads [t, z, r], the columns before t ⊗ z
            within = self.ranker.predict(rows[:, : self.ranker.n_columns])
        x = (rows - self.x_mean) / self.x_std
        xa = np.concatenate([np.ones((x.shape[0], 1)), x], axis=1)
        preds = xa @ self.members.T  # (configs, members)
        score = anchor + np.clip(preds.mean(axis=1), -TARGET_CLIP, TARGET_CLIP)
        std = np.sqrt(preds.var(axis=1) + self.resid_std**2)
        lo, hi = metric_range(metric)
        mean = np.clip(np.minimum(score, max(self.metric_max, anchor)), lo, hi)
        low, high = interval(mean, std, metric)
        return Prediction(mean, std, score, low, high, within)

    def to_json(self) -> dict:
        """The weights as JSON-ready data."""
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "probe": asdict(self.probe),
            "feature_names": list(self.feature_names),
            "config_features": list(CONFIG_FEATURES),
            "x_mean": [float(f"{v:.7g}") for v in self.x_mean],
            "x_std": [float(f"{v:.7g}") for v in self.x_std],
            "members": [[float(f"{v:.7g}") for v in row] for row in self.members],
            "resid_std": self.resid_std,
            "alpha": self.alpha,
            "final_steps": self.final_steps,
            # strict JSON has no inf: no cap is written as no key
            **({"metric_max": self.metric_max} if math.isfinite(self.metric_max) else {}),
            **({"ranker": self.ranker.to_json()} if self.ranker is not None else {}),
        }

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``suggester.json`` and ``card.json`` into ``directory`` (atomically)."""
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path / "suggester.json", json.dumps(self.to_json()) + "\n")
        write_text_atomic(path / "card.json", json.dumps(self.card, indent=2) + "\n")
        return path

    @classmethod
    def from_json(cls, data: Mapping, card: dict | None = None) -> Suggester:
        """Rebuild a suggester from :meth:`to_json`'s data.

        Raises:
            ValueError: Not a suggester file of this version, a missing or unknown key, a
                value of the wrong type or shape, or a NaN/inf weight (the message names
                the key).
        """
        from lrgym.io.file_checks import check_keys, finite_array
        from lrgym.io.validate import real_number, text_list, whole_number

        if not isinstance(data, Mapping):
            raise ValueError(f"suggester data must be a JSON object, got {type(data).__name__}")
        if data.get("format") != FORMAT or data.get("format_version") not in READABLE_VERSIONS:
            raise ValueError(
                f"not a {FORMAT} v{FORMAT_VERSION} file (format={data.get('format')!r}, "
                f"version={data.get('format_version')!r}); retrain with `lrgym train-suggester`"
            )
        where = "suggester.json"
        required = tuple(k for k in _JSON_KEYS if k not in ("metric_max", "ranker"))
        check_keys(data, where, required=required, known=_JSON_KEYS)
        if data["config_features"] != list(CONFIG_FEATURES):
            raise ValueError("the suggester encodes configurations differently; retrain it")
        probe = data["probe"]
        if not isinstance(probe, Mapping):
            raise ValueError(f"{where}: probe must be an object, got {probe!r}")
        fields = tuple(f.name for f in dataclasses.fields(ProbeSettings))
        check_keys(probe, f"{where} probe", known=fields)
        names = tuple(text_list(f"{where}: feature_names", data["feature_names"]))
        relative = len(RELATIVE_FEATURES) if f"rt_{RANGE_SLOTS[0]}_{PER_RANGE[0]}" in names else 0
        width = len(names) + len(CONFIG_FEATURES) * (1 + len(names)) + relative  # [t,z,r,t⊗z]
        x_std = finite_array(data["x_std"], f"{where}: x_std", shape=(width,))
        if not (x_std > 0).all():
            raise ValueError(f"{where}: x_std must be positive; the file is corrupt")
        members = finite_array(data["members"], f"{where}: members", shape=(None, width + 1))
        if not members.shape[0]:
            raise ValueError(f"{where}: members is empty; the file is corrupt")
        ranker = Ranker.from_json(data["ranker"], f"{where}: ranker") if "ranker" in data else None
        if ranker is not None and ranker.n_columns != width - len(CONFIG_FEATURES) * len(names):
            raise ValueError(f"{where}: ranker reads {ranker.n_columns} columns; retrain it")
        return cls(
            probe=ProbeSettings(
                **{k: whole_number(f"{where}: probe.{k}", v) for k, v in probe.items()}
            ),
            feature_names=names,
            x_mean=finite_array(data["x_mean"], f"{where}: x_mean", shape=(width,)),
            x_std=x_std,
            members=members,
            resid_std=real_number(f"{where}: resid_std", data["resid_std"], 0.0),
            alpha=real_number(f"{where}: alpha", data["alpha"], above=0.0),
            final_steps=whole_number(f"{where}: final_steps", data["final_steps"], 1),
            metric_max=_metric_cap(data.get("metric_max", math.inf)),
            card=card or {},
            ranker=ranker,
        )


DEFAULT_SUGGESTER = "default"
"""Name of the suggester that ships with lrgym (``lrgym/suggester/shipped/default``)."""


def default_path() -> Path:
    """Directory of the shipped suggester (see :mod:`lrgym.io.shipped`)."""
    from lrgym.io.shipped import shipped_root

    return shipped_root("suggester") / DEFAULT_SUGGESTER


def load_suggester(path: str | os.PathLike[str] | None = None) -> Suggester:
    """Load a suggester directory (``suggester.json`` + ``card.json``); None: the shipped one.

    Raises:
        FileNotFoundError: If the directory has no ``suggester.json``.
        ValueError: A file that is not a regular file, too large, not strict JSON, or not
            a valid suggester (missing or unknown keys, wrong shapes, NaN/inf weights);
            the message names the file (``FileCheckError`` is a ValueError).
        TypeError: ``path`` is not a path.
    """
    from lrgym.io.file_checks import read_json

    if path is not None and not isinstance(path, str | os.PathLike):
        raise TypeError(f"load_suggester takes a directory path, got {type(path).__name__}")
    directory = default_path() if path in (None, DEFAULT_SUGGESTER) else Path(path)
    weights = directory / "suggester.json"
    if not weights.exists():
        raise FileNotFoundError(
            f"no suggester.json in {directory}; train one with `lrgym train-suggester "
            "--runs DIR --out DIR`"
        )
    card_path = directory / "card.json"  # regular files, size-capped, strict JSON
    card = read_json(card_path, "suggester card") if card_path.exists() else {}
    data = read_json(weights, "suggester weights")
    try:
        return Suggester.from_json(data, card)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{weights} is not a valid suggester file: {exc}") from None


_JSON_KEYS = (
    "format", "format_version", "probe", "feature_names", "config_features", "x_mean",
    "x_std", "members", "resid_std", "alpha", "final_steps", "metric_max", "ranker",
)  # fmt: skip
"""The keys of :meth:`Suggester.to_json`'s data."""


def _metric_cap(value: object) -> float:
    """``metric_max``: a finite number, or +inf (no cap)."""
    from lrgym.io.validate import as_number

    number = float(as_number("suggester.json: metric_max", value))
    if math.isnan(number) or number == -math.inf:
        raise ValueError(f"suggester.json: metric_max must be a number or +inf, got {value!r}")
    return number
