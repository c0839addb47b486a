"""From a loaded data set to a task's arrays: columns, train/evaluation pools, checks.

What the real tasks do with what :func:`~lrgym.tasks.sources.load_source` returns: pick
and convert columns (:func:`pick_column`, :func:`to_numpy`, :func:`numeric_columns`),
split the training and evaluation pools (:func:`train_eval_pools`), and refuse tables too
small, labels missing or classes too many with a :class:`~lrgym.tasks.sources.DataSourceError`
that names the fix. :func:`freeze`/:func:`thaw` make keyword options hashable (cache keys).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import numpy as np

from lrgym.tasks.sources import DataSourceError, take_subset

if TYPE_CHECKING:
    import datasets


def to_numpy(dataset: datasets.Dataset, column: str) -> np.ndarray:
    """One column as a numpy array, keeping its dtype (images decode to ``uint8``).

    Images must all have one size; strings come back as an object array.
    """
    if column not in dataset.column_names:
        raise DataSourceError(f"no column {column!r}; the columns are {dataset.column_names}")
    feature = dataset.features[column]
    dtype = getattr(feature, "dtype", None) or getattr(
        getattr(feature, "feature", None), "dtype", None
    )
    kwargs = {}
    if isinstance(dtype, str) and re.fullmatch(r"u?int\d+|float\d+|bool", dtype):
        kwargs["dtype"] = np.dtype(dtype)  # numpy formatting would widen to int64/float32
    values = dataset.with_format("numpy", columns=[column], **kwargs)[:][column]
    if isinstance(values, list) or (values.dtype == object and type(feature).__name__ == "Image"):
        try:
            values = np.stack([np.asarray(v) for v in values])
        except ValueError as exc:
            raise DataSourceError(
                f"column {column!r} holds arrays of different shapes (images of different "
                "sizes?); resize them to one size first"
            ) from exc
    return values


def pick_column(dataset: datasets.Dataset, candidates: tuple[str, ...], role: str) -> str:
    """The first of ``candidates`` that ``dataset`` has, else a :class:`DataSourceError`.

    Args:
        dataset: The loaded data.
        candidates: Column names to try, in order; the first one is also the name the
            task's ``*_column`` argument can set explicitly.
        role: What the column is for (``"image"``, ``"label"``, ``"text"``), for the message.
    """
    for name in candidates:
        if name in dataset.column_names:
            return name
    raise DataSourceError(
        f"no {role} column: looked for {list(candidates)}, found {dataset.column_names}. "
        f"Name the {role} column explicitly ({role}_column=...)."
    )


def train_eval_pools(
    splits: dict[str, datasets.Dataset],
    *,
    source: str,
    train_split: str = "train",
    eval_split: str = "test",
    eval_size: int | None = None,
    subset: int | None = None,
    seed: int = 0,
) -> tuple[datasets.Dataset, datasets.Dataset]:
    """A fixed training pool and a fixed evaluation pool (split later into val/test).

    The evaluation pool is ``eval_split`` (else ``"validation"``, else ``"test"``), cut to
    ``eval_size`` rows; a source with only a training split gives ``eval_size`` random
    rows of it instead. The training pool is then cut to ``subset`` rows. Both samples
    are drawn from ``seed``, so every run of a task sees the same pools.

    Args:
        splits: From :func:`load_splits`.
        source: The source's name, for error messages.
        train_split: Split to train on.
        eval_split: Preferred split to validate and test on.
        eval_size: Rows in the evaluation pool (all of the split if ``None``; required
            when it has to be carved out of the training split).
        subset: Rows in the training pool (all if ``None``).
        seed: Seeds both samples.
    """
    if train_split not in splits:
        raise DataSourceError(
            f"{source!r} has no split {train_split!r} to train on; its splits are "
            f"{sorted(splits)}. Pass train_split=..."
        )
    train = splits[train_split]
    names = (eval_split, "validation", "test")
    found = next((s for s in names if s in splits and s != train_split), None)
    if found is not None:
        evaluation = take_subset(splits[found], eval_size, seed)
    else:
        if eval_size is None or eval_size >= len(train) - 1:
            raise DataSourceError(
                f"{source!r} has only the split {train_split!r} ({len(train)} rows): "
                f"cannot carve an evaluation pool of {eval_size} rows from it"
            )
        order = np.random.default_rng(seed).permutation(len(train))
        evaluation = train.select(np.sort(order[:eval_size]))
        train = train.select(np.sort(order[eval_size:]))
    return take_subset(train, subset, seed), evaluation


MIN_ROWS = 10
"""Fewest rows a table may have: training, validation and test splits each need some."""


def check_rows(n: int, source: str, minimum: int = MIN_ROWS) -> None:
    """A :class:`DataSourceError` if a table of ``n`` rows is too small to split."""
    if n < minimum:
        raise DataSourceError(
            f"{source!r} has only {n} row(s); a task needs at least {minimum} (its training, "
            "validation and test splits each need some): pass a larger file"
        )


def numeric_columns(frame: Any, columns: list[str], source: str) -> Any:
    """``frame`` with ``columns`` as float64, checked: clear errors for text, infinities
    and columns without any value, naming the file, the column and the fix.

    Missing values (NaN, empty cells) stay: the tasks impute or refuse them.
    """
    import pandas as pd

    frame = frame.copy()
    for column in columns:
        raw = frame[column]
        values = pd.to_numeric(raw, errors="coerce")
        bad = values.isna() & raw.notna() & (raw.astype(str).str.strip() != "")
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataSourceError(
                f"{source!r}: column {column!r} should be numeric but row {row} holds "
                f"{raw.iloc[row]!r}; fix or blank out such values, or treat the column as "
                "categorical (categorical=[...]) or drop it (drop=[...])"
            )
        values = values.astype(np.float64)
        if values.isna().all():
            raise DataSourceError(
                f"{source!r}: numeric column {column!r} has no values at all; fill it, or "
                "drop it (drop=[...])"
            )
        infinite = np.isinf(values.to_numpy())
        if infinite.any():
            row = int(np.flatnonzero(infinite)[0])
            raise DataSourceError(
                f"{source!r}: column {column!r} holds an infinite value (row {row}); "
                "replace infinities (a blank cell is imputed) or drop the column (drop=[...])"
            )
        frame[column] = values
    return frame


def check_labels(labels: Any, column: str, source: str) -> None:
    """A :class:`DataSourceError` if a classification target holds fractional numbers
    (e.g. 3.7): that is a regression target, and taking each value as a class would
    silently make a task of hundreds of one-row classes."""
    import pandas as pd

    if pd.api.types.is_float_dtype(labels):
        values = labels.to_numpy(float)
        fractional = np.flatnonzero(np.isfinite(values) & (values != np.round(values)))
        if fractional.size:
            row = int(fractional[0])
            raise DataSourceError(
                f"{source!r}: the target column {column!r} holds fractional numbers (row "
                f"{row}: {float(values[row]):g}); it looks like a regression target, and this task "
                "classifies: pick a column of class labels, or register a regression task "
                "for it (see the README's 'register your own task')"
            )


def check_classes(codes: np.ndarray, column: str, source: str, maximum: int | None = None) -> None:
    """A :class:`DataSourceError` if the label column has fewer than two classes, more
    than ``maximum`` (e.g. 2 for a binary XGBoost objective), or more than half as many
    classes as rows (an id or a continuous column: a class needs rows to train on and
    rows to be evaluated on)."""
    n = len(np.unique(codes))
    if n > max(2, len(codes) // 2):
        raise DataSourceError(
            f"{source!r}: the target column {column!r} holds {n} distinct values in "
            f"{len(codes)} rows; that is an id or a continuous (regression) column, not "
            "class labels (each class needs several rows): pick a column of class labels, "
            "or register a regression task for it (see the README's 'register your own task')"
        )
    if n < 2:
        raise DataSourceError(
            f"{source!r}: the target column {column!r} holds a single class; a classifier "
            "needs at least two: pick another target column or a file with both classes"
        )
    if maximum is not None and n > maximum:
        raise DataSourceError(
            f"{source!r}: the target column {column!r} holds {n} classes, but this task "
            f"takes at most {maximum} (a binary objective); pick a binary target column or a "
            "task that takes several classes"
        )


def freeze(kwargs: dict[str, Any] | None) -> tuple[tuple[str, Any], ...]:
    """``read_kwargs`` as sorted, hashable pairs (lists become tuples) for cache keys."""
    items = sorted((kwargs or {}).items())
    return tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in items)


def thaw(frozen: tuple[tuple[str, Any], ...]) -> dict[str, Any]:
    """The inverse of :func:`freeze` (tuples become lists again)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in frozen}
