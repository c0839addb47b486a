"""Data of the procedural task families (:mod:`lrgym.tasks.procedural`).

:func:`draw_data` draws a data description (plain data: the source, its settings and a
seed) from the task generator's rng; :func:`generate` turns it into the task's full
arrays ``(x, y)``, the same every time; :func:`split` deals one run's
train/validation/test split from them. The sources (teacher networks, data sets and
generators that scikit-learn ships, synthetic images and synthetic sequences) are in
:mod:`lrgym.tasks.procedural_sources`.

No source is the data of a held-out or real task (see
:data:`lrgym.tasks.procedural.EXCLUDED_DATA`): ``load_wine``, ``load_diabetes`` and
``load_digits`` are never loaded, no ``make_friedman*`` and no ill-conditioned
generator is used, and nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from lrgym.core.task import ArraySplits
from lrgym.tasks.procedural_sources import SHAPES, SOURCES

MAX_FLOATS = 600_000
"""Most feature values in one task's full data set (``n × features``), so K batched runs
of a task stay small in memory (about 2.4 MB of float32 per run)."""

TABULAR = {
    # source: (weight, tasks it serves, bundled size (n, features) or None)
    "teacher_mlp": (3.0, ("classification", "regression"), None),
    "make_classification": (2.0, ("classification",), None),
    "make_regression": (1.0, ("regression",), None),
    "load_breast_cancer": (1.0, ("classification",), (569, 30)),
    "load_iris": (0.5, ("classification",), (150, 4)),
    "make_moons": (0.5, ("classification",), None),
    "make_circles": (0.5, ("classification",), None),
    "make_blobs": (0.5, ("classification",), None),
    "make_gaussian_quantiles": (0.5, ("classification",), None),
    "make_hastie_10_2": (0.5, ("classification",), None),
    "make_sparse_uncorrelated": (0.5, ("regression",), None),
    "make_swiss_roll": (0.25, ("regression",), None),
    "make_s_curve": (0.25, ("regression",), None),
}
IMAGES = {
    "gratings": (1.0, ("classification",)),
    "shapes": (1.0, ("classification",)),
    "blob_count": (0.5, ("classification",)),
    "blob_position": (0.5, ("regression",)),
    "teacher_cnn": (1.0, ("classification", "regression")),
}
TOKENS = {
    "majority": (1.0, ("classification",)),
    "count_mod": (1.0, ("classification",)),
    "order": (0.5, ("classification",)),
    "first_last": (0.5, ("classification",)),
    "teacher_seq": (1.0, ("classification", "regression")),
    "token_sum": (0.5, ("regression",)),
}
SERIES = {
    "sine": (1.0, ("classification", "regression")),
    "ar": (1.0, ("classification", "regression")),
    "trend": (1.0, ("classification", "regression")),
}


def _pick(rng: np.random.Generator, table: Mapping[str, tuple]) -> str:
    names = list(table)
    weights = np.array([table[s][0] for s in names])
    return names[int(rng.choice(len(names), p=weights / weights.sum()))]


def _int(rng: np.random.Generator, low: int, high: int) -> int:
    """An integer in [low, high], both included."""
    return int(rng.integers(low, high + 1))


def _log_int(rng: np.random.Generator, low: int, high: int) -> int:
    return int(round(np.exp(rng.uniform(np.log(low), np.log(high)))))


def draw_data(rng: np.random.Generator, kind: str, max_length: int = 24) -> dict[str, Any]:
    """A data description for ``kind`` (``tabular``, ``image``, ``tokens`` or ``series``;
    sequences of length 8 to ``max_length``).

    Every value is plain data; ``seed`` seeds :func:`generate`.
    """
    d: dict[str, Any] = {"kind": kind, "seed": int(rng.integers(2**31 - 1))}
    table = {"tabular": TABULAR, "image": IMAGES, "tokens": TOKENS, "series": SERIES}[kind]
    source = _pick(rng, table)
    tasks = table[source][1]
    d["source"] = source
    d["task"] = tasks[int(rng.integers(len(tasks)))]
    d["n"] = _log_int(rng, 600, 4000)
    d["raw_classes"] = 0
    if d["task"] == "classification":
        d["raw_classes"] = _int(rng, 2, 8)
    if kind == "tabular":
        _draw_tabular(rng, d, table[source][2])
    elif kind == "image":
        channels = int(rng.choice([1, 3]))
        size = int(rng.choice([8, 12, 16]))
        d["shape"] = [channels, size, size]
        d["pixel_noise"] = round(float(rng.uniform(0.05, 0.6)), 3)
        if source == "gratings":
            d["raw_classes"] = _int(rng, 2, 6)
        if source == "shapes":
            d["shapes"] = sorted(rng.choice(SHAPES, d["raw_classes"], replace=False).tolist())
        if source == "blob_count":
            d["raw_classes"] = _int(rng, 2, 5)
        d["n"] = min(d["n"], MAX_FLOATS // (channels * size * size))
    else:
        d["length"] = _int(rng, 8, max_length)
        if kind == "tokens":
            d["vocab"] = _int(rng, 4, 16)
            if source in ("majority", "count_mod"):
                d["raw_classes"] = _int(rng, 2, min(d["vocab"], 5))
            if source in ("order", "first_last"):
                d["raw_classes"] = 2
        else:
            d["features"] = _int(rng, 1, 3)
            if source == "ar" and d["task"] == "classification":
                d["raw_classes"] = 2
            if source == "trend" and d["task"] == "classification":
                d["raw_classes"] = _int(rng, 2, 4)
            d["n"] = min(d["n"], MAX_FLOATS // (d["length"] * d["features"]))
    _draw_labels(rng, d)
    return d


def _draw_tabular(rng: np.random.Generator, d: dict[str, Any], bundled) -> None:
    source = d["source"]
    if bundled is not None:  # scikit-learn's bundled sets: their size, a feature subset
        d["n"], full = bundled
        d["raw_classes"] = 2 if source == "load_breast_cancer" else 3
    else:
        full = _int(rng, 2, 64) if source != "make_hastie_10_2" else 10
        if source in ("make_moons", "make_circles", "make_swiss_roll", "make_s_curve"):
            full = 2 if source in ("make_moons", "make_circles") else 3
            d["noise_2d"] = round(float(rng.uniform(0.05, 0.3)), 3)
            if source == "make_circles":
                d["factor"] = round(float(rng.uniform(0.3, 0.8)), 3)
        if source in ("make_moons", "make_circles", "make_hastie_10_2"):
            d["raw_classes"] = 2
        if source == "make_sparse_uncorrelated":
            full = max(full, 4)
        d["dim"] = full
        if source == "teacher_mlp":
            d["depth"] = _int(rng, 1, 3)
            d["width"] = int(rng.choice([8, 16, 32, 64]))
        if source == "make_classification":  # needs classes × clusters <= 2**informative
            low = min(full, max(2, int(np.ceil(np.log2(d["raw_classes"] * 2)))))
            d["informative"] = _int(rng, low, full)
            d["clusters"] = _int(rng, 1, 2)
            while d["raw_classes"] * d["clusters"] > 2 ** d["informative"]:
                if d["clusters"] > 1:
                    d["clusters"] -= 1
                else:
                    d["raw_classes"] -= 1
            d["redundant"] = _int(rng, 0, min(4, full - d["informative"]))
            d["class_sep"] = round(float(rng.uniform(0.5, 2.0)), 3)
        if source == "make_regression":
            d["informative"] = _int(rng, 1, full)
            d["effective_rank"] = None if rng.uniform() < 0.5 else _int(rng, 1, max(1, full // 2))
        if source == "make_blobs":
            d["cluster_std"] = round(float(rng.uniform(0.5, 4.0)), 3)
        if source == "make_gaussian_quantiles":
            d["raw_classes"] = min(d["raw_classes"], 6)
    # a random feature subset (bundled sets and wide inputs), and extra noise features
    d["features_kept"] = full
    if rng.uniform() < 0.6 and full > 2:
        d["features_kept"] = _int(rng, max(2, full // 3), full)
    d["noise_features"] = _int(rng, 1, 16) if rng.uniform() < 0.25 else 0
    width = d["features_kept"] + d["noise_features"]
    if bundled is None:
        d["n"] = min(d["n"], MAX_FLOATS // max(width, full))


def _draw_labels(rng: np.random.Generator, d: dict[str, Any]) -> None:
    """Class merges and label noise (classification) or target noise (regression)."""
    if d["task"] == "classification":
        raw = d["raw_classes"]
        d["classes"] = raw
        if raw >= 3 and rng.uniform() < 0.3:  # merge classes into fewer groups
            d["classes"] = _int(rng, 2, raw - 1)
        d["label_noise"] = round(float(rng.uniform(0, 0.2)), 3) if rng.uniform() < 0.5 else 0.0
    else:
        d["classes"] = 0
        d["target_noise"] = round(float(rng.uniform(0, 0.5)), 3) if rng.uniform() < 0.5 else 0.0


def generate(d: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """The full data set ``(x, y)`` described by ``d`` (deterministic in ``d``).

    ``x`` is float32 (int64 token ids for ``tokens``); ``y`` holds class ids
    ``0..classes-1`` (every class present) or float32 regression targets.
    """
    rng = np.random.default_rng(d["seed"])
    x, y = SOURCES[d["source"]](rng, dict(d))
    if d["kind"] == "tabular":
        x = np.asarray(x, dtype=np.float64)
        if d["features_kept"] < x.shape[1]:
            keep = np.sort(rng.choice(x.shape[1], d["features_kept"], replace=False))
            x = x[:, keep]
        if d["noise_features"]:
            x = np.concatenate([x, rng.standard_normal((len(x), d["noise_features"]))], axis=1)
            x = x[:, rng.permutation(x.shape[1])]
    if d["task"] == "classification":
        y = np.asarray(y, dtype=np.int64)
        raw = int(y.max()) + 1
        if d["classes"] < raw:  # merge: a random grouping, every group non-empty
            groups = np.concatenate(
                [np.arange(d["classes"]), rng.integers(0, d["classes"], raw - d["classes"])]
            )
            y = rng.permutation(groups)[y]
        if d["label_noise"]:
            flip = rng.uniform(size=len(y)) < d["label_noise"]
            y = np.where(flip, rng.integers(0, d["classes"], len(y)), y)
        # every class holds at least 2% of the samples (and 5): a rarer class takes
        # random samples of the largest one (more label noise), so splits hold all classes
        floor = max(5, int(np.ceil(0.02 * len(y))))
        for c in range(d["classes"]):
            short = floor - int((y == c).sum())
            if short > 0:
                largest = int(np.bincount(y, minlength=d["classes"]).argmax())
                y[rng.choice(np.flatnonzero(y == largest), short, replace=False)] = c
    else:
        y = np.asarray(y, dtype=np.float64)
        if d["target_noise"]:
            y = y + d["target_noise"] * y.std() * rng.standard_normal(len(y))
        y = y.astype(np.float32)
    if d["kind"] != "tokens":
        x = np.asarray(x, dtype=np.float32)
    return x, y


def split(
    x: np.ndarray, y: np.ndarray, rng: np.random.Generator, classification: bool
) -> ArraySplits:
    """One run's 60/20/20 split, stratified by class (so every class is in every split
    and the split sizes are the same for every run); features standardised with
    training statistics (token ids left as they are), regression targets too."""
    if classification:
        parts: list[list[np.ndarray]] = [[], [], []]
        for c in range(int(y.max()) + 1):
            members = rng.permutation(np.flatnonzero(y == c))
            n_train, n_val = int(0.6 * len(members)), int(0.2 * len(members))
            for part, chunk in zip(
                parts, np.split(members, [n_train, n_train + n_val]), strict=True
            ):
                part.append(chunk)
        index = [np.concatenate(p) for p in parts]
    else:
        order = rng.permutation(len(x))
        n_train, n_val = int(0.6 * len(x)), int(0.2 * len(x))
        index = np.split(order, [n_train, n_train + n_val])
    xs = [x[i] for i in index]
    if np.issubdtype(x.dtype, np.floating):
        mean, std = xs[0].mean(0), xs[0].std(0) + 1e-6
        xs = [((v - mean) / std).astype(np.float32) for v in xs]
    ys = [y[i] for i in index]
    if not classification:
        mean, std = ys[0].mean(), ys[0].std() + 1e-6
        ys = [((v - mean) / std).astype(np.float32) for v in ys]
    return ArraySplits(xs[0], ys[0], xs[1], ys[1], xs[2], ys[2])
