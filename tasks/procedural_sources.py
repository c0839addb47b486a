"""The data sources of the procedural task families: ``(rng, settings) -> (x, y)``.

Teacher networks (MLP, CNN, sequence), the data sets and generators that scikit-learn
ships, synthetic images (gratings, shapes, blobs) and synthetic sequences (tokens,
series). :data:`SOURCES` names them all; :mod:`lrgym.tasks.procedural_data` draws a
source and its settings and calls it. No source is the data of a held-out or real task
(see :data:`lrgym.tasks.procedural.EXCLUDED_DATA`), and nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

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


__all__ = ["SHAPES", "SOURCES"]
