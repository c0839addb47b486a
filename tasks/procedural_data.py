"""Data of the procedural task families (:mod:`lrgym.tasks.procedural`).

:func:`draw_data` draws a data description (plain data: the source, its settings and a
seed) from the task generator's rng; :func:`generate` turns it into the task's full
arrays ``(x, y)``, the same every time; :func:`split` deals one run's
train/validation/test split from them. Sources: teacher networks, data sets and
generators that scikit-learn ships, synthetic images and synthetic sequences.

No source is the data of a held-out or real task (see
:data:`lrgym.tasks.procedural.EXCLUDED_DATA`): ``load_wine``, ``load_diabetes`` and
``load_digits`` are never loaded, no ``make_friedman*`` and no ill-conditioned
generator is used, and nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from lrgym.task import ArraySplits

MAX_FLOATS = 600_000
"""Most feature values in one task's full data set (``n × features``), so K batched runs
of a task stay small in memory (about 2.4 MB of float32 per run)."""

SHAPES = ("square", "disk", "ring", "cross", "hbar", "vbar", "diagonal", "triangle")
"""Shape kinds of the ``shapes`` image source."""

# --- sources: (rng, settings) -> (x, y); y: int class ids or float targets ----------------


def _teacher_mlp(rng: np.random.Generator, d: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    n, dim = d["n"], d["dim"]
    x = rng.standard_normal((n, dim))
    h = x
    for _ in range(d["depth"]):
        w = rng.standard_normal((h.shape[1], d["width"])) / np.sqrt(h.shape[1])
        h = np.tanh(h @ w + 0.1 * rng.standard_normal(d["width"]))
    out = h @ (rng.standard_normal((d["width"], max(d["raw_classes"], 1))) / np.sqrt(d["width"]))
    return x, _labels(out, d)


def _labels(out: np.ndarray, d: Mapping[str, Any]) -> np.ndarray:
    """Regression: the first output. Classification: argmax of the outputs, or quantile
    bins of the first output when argmax leaves a class under 3% of the samples."""
    if d["task"] == "regression":
        return out[:, 0]
    c = d["raw_classes"]
    y = out.argmax(1)
    if c > 1 and np.bincount(y, minlength=c).min() >= 0.03 * len(y):
        return y
    edges = np.quantile(out[:, 0], np.linspace(0, 1, c + 1)[1:-1])
    return np.searchsorted(edges, out[:, 0])


def _sklearn_bundled(rng: np.random.Generator, d: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    from sklearn import datasets

    loader = {"load_breast_cancer": datasets.load_breast_cancer, "load_iris": datasets.load_iris}
    x, y = loader[d["source"]](return_X_y=True)
    return x, y


def _sklearn_generator(
    rng: np.random.Generator, d: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray]:
    from sklearn import datasets

    seed = int(rng.integers(2**31 - 1))
    n, source = d["n"], d["source"]
    if source == "make_classification":
        x, y = datasets.make_classification(
            n_samples=n,
            n_features=d["dim"],
            n_informative=d["informative"],
            n_redundant=d["redundant"],
            n_classes=d["raw_classes"],
            n_clusters_per_class=d["clusters"],
            class_sep=d["class_sep"],
            flip_y=0.0,
            random_state=seed,
        )
    elif source == "make_regression":
        x, y = datasets.make_regression(
            n_samples=n,
            n_features=d["dim"],
            n_informative=d["informative"],
            effective_rank=d["effective_rank"],
            noise=0.0,
            random_state=seed,
        )
    elif source in ("make_moons", "make_circles"):
        make = getattr(datasets, source)
        kw = {"factor": d["factor"]} if source == "make_circles" else {}
        x, y = make(n_samples=n, noise=d["noise_2d"], random_state=seed, **kw)
    elif source == "make_blobs":
        x, y = datasets.make_blobs(
            n_samples=n, n_features=d["dim"], centers=d["raw_classes"],
            cluster_std=d["cluster_std"], random_state=seed,
        )  # fmt: skip
    elif source == "make_gaussian_quantiles":
        x, y = datasets.make_gaussian_quantiles(
            n_samples=n, n_features=d["dim"], n_classes=d["raw_classes"], random_state=seed
        )
    elif source == "make_hastie_10_2":
        x, y = datasets.make_hastie_10_2(n_samples=n, random_state=seed)
        y = (y > 0).astype(np.int64)
    elif source == "make_sparse_uncorrelated":
        x, y = datasets.make_sparse_uncorrelated(
            n_samples=n, n_features=d["dim"], random_state=seed
        )
    elif source in ("make_swiss_roll", "make_s_curve"):
        x, y = getattr(datasets, source)(n_samples=n, noise=d["noise_2d"], random_state=seed)
    else:
        raise ValueError(f"unknown source {source!r}")
    return x, y


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    coords = (np.arange(size) + 0.5) / size
    return np.meshgrid(coords, coords, indexing="ij")  # (row = y, column = x)


def _colour(rng: np.random.Generator, gray: np.ndarray, channels: int) -> np.ndarray:
    """(n, S, S) -> (n, C, S, S) with a random gain per sample and channel."""
    gains = rng.uniform(0.4, 1.6, (gray.shape[0], channels, 1, 1))
    return gray[:, None] * gains


def _images(rng: np.random.Generator, d: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    n, (channels, size, _) = d["n"], d["shape"]
    yy, xx = _grid(size)
    source, c = d["source"], d["raw_classes"]
    if source == "gratings":
        y = rng.integers(0, c, n)
        theta = np.pi * (y + rng.uniform(-0.25, 0.25, n)) / c
        freq = rng.uniform(1.0, 0.35 * size, n)
        phase = rng.uniform(0, 2 * np.pi, n)
        proj = xx[None] * np.cos(theta)[:, None, None] + yy[None] * np.sin(theta)[:, None, None]
        gray = np.sin(2 * np.pi * freq[:, None, None] * proj + phase[:, None, None])
    elif source == "shapes":
        y = rng.integers(0, c, n)
        cx, cy = rng.uniform(0.3, 0.7, (2, n))
        r = rng.uniform(0.18, 0.3, n)
        dx = xx[None] - cx[:, None, None]
        dy = yy[None] - cy[:, None, None]
        r3 = r[:, None, None]
        w = max(0.07, 0.6 / size)
        masks = {
            "square": np.maximum(abs(dx), abs(dy)) < r3,
            "disk": dx**2 + dy**2 < r3**2,
            "ring": abs(np.sqrt(dx**2 + dy**2) - r3) < w,
            "cross": ((abs(dx) < w) & (abs(dy) < r3)) | ((abs(dy) < w) & (abs(dx) < r3)),
            "hbar": (abs(dy) < w) & (abs(dx) < r3),
            "vbar": (abs(dx) < w) & (abs(dy) < r3),
            "diagonal": (abs(dx - dy) < w) & (abs(dx) < r3),
            "triangle": (dy > -r3) & (dy < r3) & (abs(dx) < (dy + r3) / 2),
        }
        kinds = np.stack([masks[s] for s in d["shapes"]])  # (C, n, S, S)
        gray = kinds[y, np.arange(n)].astype(np.float64) * rng.uniform(0.6, 1.4, (n, 1, 1))
    elif source in ("blob_count", "blob_position"):
        count = rng.integers(1, c + 1, n) if source == "blob_count" else np.ones(n, int)
        gray = np.zeros((n, size, size))
        centres = rng.uniform(0.15, 0.85, (c if source == "blob_count" else 1, n, 2))
        width = rng.uniform(0.06, 0.12, n)[:, None, None]
        for b in range(centres.shape[0]):
            on = (count > b)[:, None, None]
            bump = np.exp(
                -((xx[None] - centres[b, :, 0, None, None]) ** 2
                  + (yy[None] - centres[b, :, 1, None, None]) ** 2) / (2 * width**2)
            )  # fmt: skip
            gray += on * bump
        y = count - 1 if source == "blob_count" else centres[0, :, 0]
    elif source == "teacher_cnn":
        low = max(2, size // 4)
        noise = rng.standard_normal((n, channels, low, low))
        reps = -(-size // low)
        img = np.repeat(np.repeat(noise, reps, axis=2), reps, axis=3)[:, :, :size, :size]
        img = img + 0.3 * rng.standard_normal(img.shape)
        filters = rng.standard_normal((8, channels, 3, 3)) / np.sqrt(9 * channels)
        windows = np.lib.stride_tricks.sliding_window_view(img, (3, 3), axis=(2, 3))
        feat = np.tanh(np.einsum("ncijkl,mckl->nmij", windows, filters)).mean(axis=(2, 3))
        out = feat @ (rng.standard_normal((8, max(c, 1))) * 2.0)
        return img, _labels(out, d)
    else:
        raise ValueError(f"unknown image source {source!r}")
    x = _colour(rng, gray, channels)
    return x + d["pixel_noise"] * rng.standard_normal(x.shape), y


def _tokens(rng: np.random.Generator, d: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    n, t, v, c = d["n"], d["length"], d["vocab"], d["raw_classes"]
    x = rng.integers(0, v, (n, t))
    source = d["source"]
    if source == "majority":
        counts = np.stack([(x == k).sum(1) for k in range(c)], axis=1)
        y = (counts + rng.uniform(0, 0.5, counts.shape)).argmax(1)  # ties broken at random
    elif source == "count_mod":  # how often the marker token 0 occurs, modulo c
        x = np.where(x == 0, 1 % v, x)
        marked = rng.uniform(size=(n, t)) < rng.uniform(0.15, 0.5)
        x[marked] = 0
        y = marked.sum(1) % c
    elif source == "order":
        a, b = 0, 1
        pa = rng.integers(0, t, n)
        pb = (pa + rng.integers(1, t, n)) % t  # a position different from pa
        x[x == a] = 2 % v  # exactly one a and one b per sequence
        x[x == b] = 2 % v
        x[np.arange(n), pa] = a
        x[np.arange(n), pb] = b
        y = (pa < pb).astype(np.int64)
    elif source == "first_last":
        y = rng.integers(0, 2, n)
        other = (x[:, 0] + rng.integers(1, v, n)) % v
        x[:, -1] = np.where(y == 1, x[:, 0], other)
    elif source in ("teacher_seq", "token_sum"):
        if source == "token_sum":
            values = rng.standard_normal(v)
            out = values[x].sum(1, keepdims=True) / np.sqrt(t)
        else:
            table = rng.standard_normal((v, 8))
            pos = rng.uniform(0.5, 1.5, (t, 1))
            h = np.tanh((table[x] * pos).mean(1) * 2.0)
            out = h @ rng.standard_normal((8, max(c, 1)))
        y = _labels(out, d)
    else:
        raise ValueError(f"unknown token source {source!r}")
    return x.astype(np.int64), y


def _series(rng: np.random.Generator, d: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    n, t, f, c = d["n"], d["length"], d["features"], d["raw_classes"]
    steps = np.arange(t)[None, :, None]
    source = d["source"]
    if source == "sine":
        lo, hi = 0.03, 0.3
        if d["task"] == "classification":
            y = rng.integers(0, c, n)
            freq = lo + (hi - lo) * (y + rng.uniform(0.15, 0.85, n)) / c
        else:
            freq = rng.uniform(lo, hi, n)
            y = freq
        phase = rng.uniform(0, 2 * np.pi, (n, 1, f))
        amp = rng.uniform(0.5, 2.0, (n, 1, f))
        x = amp * np.sin(2 * np.pi * freq[:, None, None] * steps + phase)
    elif source == "ar":
        phi = rng.uniform(-0.9, 0.9, (n, 1, f))
        x = np.zeros((n, t + 1, f))
        x[:, 0] = rng.standard_normal((n, f))
        for i in range(1, t + 1):
            x[:, i] = phi[:, 0] * x[:, i - 1] + 0.5 * rng.standard_normal((n, f))
        if d["task"] == "classification":
            y = (phi[:, 0, 0] > 0).astype(np.int64)
        else:
            y = x[:, t, 0]
        x = x[:, :t]
    elif source == "trend":
        slope = rng.uniform(-1, 1, n) if d["task"] == "regression" else None
        if slope is None:
            y = rng.integers(0, c, n)
            slope = np.linspace(-1, 1, c)[y] + rng.uniform(-0.3, 0.3, n) / c
        else:
            y = slope
        walk = np.cumsum(0.3 * rng.standard_normal((n, t, f)), axis=1)
        x = walk + slope[:, None, None] * steps * (3.0 / t)
    else:
        raise ValueError(f"unknown series source {source!r}")
    return x, y


SOURCES: dict[str, Callable[[np.random.Generator, dict[str, Any]], tuple[np.ndarray, np.ndarray]]]
SOURCES = {
    "teacher_mlp": _teacher_mlp,
    "load_breast_cancer": _sklearn_bundled,
    "load_iris": _sklearn_bundled,
    **dict.fromkeys(
        (
            "make_classification", "make_regression", "make_moons", "make_circles",
            "make_blobs", "make_gaussian_quantiles", "make_hastie_10_2",
            "make_sparse_uncorrelated", "make_swiss_roll", "make_s_curve",
        ),
        _sklearn_generator,
    ),
    **dict.fromkeys(("gratings", "shapes", "blob_count", "blob_position", "teacher_cnn"), _images),
    **dict.fromkeys(
        ("majority", "count_mod", "order", "first_last", "teacher_seq", "token_sum"), _tokens
    ),
    **dict.fromkeys(("sine", "ar", "trend"), _series),
}  # fmt: skip
"""Every data source by name."""

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
