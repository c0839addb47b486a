"""Offline data for the built-in tasks: scikit-learn's bundled sets and seeded generators.

Every function takes a ``numpy.random.Generator`` and returns
:class:`~lrgym.backends.torch_trainee.ArraySplits`: the split (and any synthetic data) follows from
the generator, and features (and regression targets) are standardised with training
statistics only.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from sklearn import datasets

from lrgym.core.task import ArraySplits

SKLEARN_LOADERS = {
    "digits": datasets.load_digits,
    "breast_cancer": datasets.load_breast_cancer,
    "wine": datasets.load_wine,
    "diabetes": datasets.load_diabetes,
    "iris": datasets.load_iris,
}


@cache
def _load_sklearn(name: str) -> tuple[np.ndarray, np.ndarray]:
    x, y = SKLEARN_LOADERS[name](return_X_y=True)
    return x.astype(np.float32), y


STANDARD_CLIP = 20.0
"""Standardised features are clipped to ``±STANDARD_CLIP``. A digits pixel that is (almost)
always 0 in a run's training split has a standard deviation near 0 there, so the same
pixel in a validation or test image became about 1e6 (73 and 76 of 200 digits run seeds);
now a constant feature is only centred and rare ones stop at 20 standard deviations.
The bundled data sets otherwise stay below 18 (breast cancer), so only digits change."""


def split_arrays(
    x: np.ndarray,
    y: np.ndarray,
    rng: np.random.Generator,
    regression: bool,
    fractions: tuple[float, float] = (0.6, 0.2),
    standardize: bool = True,
) -> ArraySplits:
    """Shuffle, split into train/val/test by ``fractions`` (rest is test), standardise.

    Features are standardised with the training split's mean and standard deviation; a
    feature constant in the training split is only centred, and standardised values are
    clipped to ``±STANDARD_CLIP`` (see there).
    """
    order = rng.permutation(len(x))
    n_train = int(fractions[0] * len(x))
    n_val = int(fractions[1] * len(x))
    parts = np.split(order, [n_train, n_train + n_val])
    xs = [x[p] for p in parts]
    if standardize:
        mean, std = xs[0].mean(0), xs[0].std(0)
        std = np.where(std > 0, std, 1.0) + 1e-6
        xs = [np.clip((v - mean) / std, -STANDARD_CLIP, STANDARD_CLIP) for v in xs]
    xs = [v.astype(np.float32) for v in xs]
    if regression:
        y = y.astype(np.float32)
        y_mean, y_std = y[parts[0]].mean(), y[parts[0]].std() + 1e-6
        ys = [((y[p] - y_mean) / y_std).astype(np.float32) for p in parts]
    else:
        ys = [y[p].astype(np.int64) for p in parts]
    return ArraySplits(xs[0], ys[0], xs[1], ys[1], xs[2], ys[2])


def sklearn_data(rng: np.random.Generator, name: str, regression: bool = False) -> ArraySplits:
    """One of scikit-learn's bundled data sets (see :data:`SKLEARN_LOADERS`), split by ``rng``."""
    x, y = _load_sklearn(name)
    return split_arrays(x, y, rng, regression)


def teacher_student(
    rng: np.random.Generator,
    n: int = 3000,
    classes: int = 0,
    noise: float = 0.1,
    features: int | None = None,
) -> ArraySplits:
    """Labels from a random teacher MLP of random input size, width and depth.

    Args:
        rng: Draws the teacher, the inputs and the split.
        n: Number of samples.
        classes: 0 for regression (teacher output plus Gaussian noise), else the number
            of classes (argmax of the teacher's logits).
        noise: Standard deviation of the regression noise, relative to the output's.
        features: Input size; None draws it from ``rng`` (8 to 32).
    """
    d = int(rng.integers(8, 33)) if features is None else int(features)
    width = int(rng.choice([16, 32, 64]))
    depth = int(rng.integers(1, 4))
    x = rng.standard_normal((n, d)).astype(np.float32)
    h = x
    for _ in range(depth):
        w = rng.standard_normal((h.shape[1], width)) / np.sqrt(h.shape[1])
        h = np.tanh(h @ w)
    out = h @ (rng.standard_normal((width, max(classes, 1))) / np.sqrt(width))
    if classes:
        y = out.argmax(1)
    else:
        y = out[:, 0] + noise * out[:, 0].std() * rng.standard_normal(n)
    return split_arrays(x, y, rng, regression=not classes)


def ill_conditioned(
    rng: np.random.Generator, n: int = 3000, d: int = 20, classification: bool = False
) -> ArraySplits:
    """A linear model on features whose scales span 10^1.5 to 10^3 (random per seed).

    Features are *not* standardised here: the ill-conditioning is the point.
    """
    log_cond = rng.uniform(1.5, 3.0)
    scales = np.logspace(0, log_cond, d)[rng.permutation(d)]
    x = (rng.standard_normal((n, d)) * scales / scales.max()).astype(np.float32)
    w = rng.standard_normal(d) * scales.max() / scales
    logits = x @ w / np.sqrt(d)
    if classification:
        y = (logits + 0.3 * rng.standard_normal(n) > 0).astype(np.int64)
    else:
        y = (logits + 0.1 * logits.std() * rng.standard_normal(n)).astype(np.float32)
    return split_arrays(x, y, rng, regression=not classification, standardize=False)


def make_classification(rng: np.random.Generator, n: int = 3000) -> ArraySplits:
    """scikit-learn's ``make_classification`` with 3 classes, seeded from ``rng``."""
    x, y = datasets.make_classification(
        n_samples=n,
        n_features=20,
        n_informative=10,
        n_classes=3,
        flip_y=0.03,
        random_state=int(rng.integers(2**31 - 1)),
    )
    return split_arrays(x.astype(np.float32), y, rng, regression=False)


def friedman(rng: np.random.Generator, n: int = 3000) -> ArraySplits:
    """scikit-learn's ``make_friedman1`` regression (10 features, noise 1), seeded."""
    x, y = datasets.make_friedman1(
        n_samples=n, n_features=10, noise=1.0, random_state=int(rng.integers(2**31 - 1))
    )
    return split_arrays(x.astype(np.float32), y, rng, regression=True)
