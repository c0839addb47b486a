"""Time-series forecasting on real data: ETTh1 electricity load, or any table in time order.

:class:`WindowData` reads a table with :func:`lrgym.tasks.sources.load_source`, splits
its rows chronologically (60/20/20 by default: ETT's 12/4/4 months), standardises every
series with training-period statistics, and cuts windows: ``window`` past rows of all
series predict the target ``horizon`` rows ahead. Validation and test windows may look
back into the preceding period (as in the ETT benchmarks) but never predict a row of an
earlier split. MAE and RMSE are therefore on the standardised scale, the usual
convention for ETT results.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Any

import numpy as np
import torch
from torch import nn

from lrgym.backends.torch_trainee import TorchTask
from lrgym.core.task import ArraySplits, TaskInfo
from lrgym.tasks.columns import check_rows, freeze, numeric_columns, thaw
from lrgym.tasks.sources import DataSourceError, load_source


@dataclass(frozen=True)
class WindowData:
    """Windowed, chronologically split forecasting data (the same for every seed).

    Attributes:
        source: Hub id, URL or local file (see :mod:`lrgym.tasks.sources`).
        target: Column to forecast.
        features: Input series (``None``: every numeric column, the target included).
        time_column: Column to sort rows by (``None``: keep the file's order).
        window: Past rows per input.
        horizon: How many rows ahead the target lies (1 = the next row).
        fractions: Train and validation shares of the rows, in time order; the rest tests.
        read_kwargs: Extra ``datasets.load_dataset`` arguments as ``(name, value)`` pairs.
    """

    source: str
    target: str
    features: tuple[str, ...] | None = None
    time_column: str | None = None
    window: int = 48
    horizon: int = 1
    fractions: tuple[float, float] = (0.6, 0.2)
    read_kwargs: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if self.window < 1 or self.horizon < 1:
            raise ValueError(f"window and horizon must be >= 1, got {self.window}, {self.horizon}")
        train, val = self.fractions
        if not (0 < train and 0 < val and train + val < 1):
            raise ValueError(
                f"fractions must be two positive shares summing below 1, got {self.fractions}"
            )

    def __call__(self, rng: np.random.Generator) -> ArraySplits:
        """The chronological split (``rng`` is unused: time order fixes the split)."""
        return _windows(self)


@lru_cache(maxsize=8)
def _windows(data: WindowData) -> ArraySplits:
    frame = load_source(data.source, **thaw(data.read_kwargs)).to_pandas()
    if data.time_column is not None:
        if data.time_column not in frame:
            raise DataSourceError(f"{data.source!r} has no time column {data.time_column!r}")
        frame = frame.sort_values(data.time_column, kind="stable")
    columns = (
        list(data.features)
        if data.features is not None
        else [c for c in frame.columns if frame[c].dtype.kind in "fiu"]
    )
    if data.target not in columns:
        columns.append(data.target)
    missing = [c for c in columns if c not in frame]
    if missing:
        raise DataSourceError(
            f"{data.source!r} has no column(s) {missing}; its columns are {list(frame.columns)}"
        )
    check_rows(len(frame), data.source)
    values = numeric_columns(frame[columns], columns, data.source).to_numpy(dtype=np.float64)
    if not np.isfinite(values).all():
        column = columns[int(np.flatnonzero(~np.isfinite(values).all(0))[0])]
        raise DataSourceError(
            f"{data.source!r}: the series have gaps (NaN), e.g. in column {column!r}; "
            "fill them first (e.g. forward-fill)"
        )
    n = len(values)
    n_train, n_val = int(data.fractions[0] * n), int(data.fractions[1] * n)
    bounds = (0, n_train, n_train + n_val, n)
    mean, std = values[:n_train].mean(0), values[:n_train].std(0) + 1e-8
    series = ((values - mean) / std).astype(np.float32)
    target = series[:, columns.index(data.target)]
    lead = data.window + data.horizon - 1  # rows between a window's start and its target
    parts = []
    for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
        # Targets at rows [max(start, lead), stop); inputs are the `window` rows before.
        ends = np.arange(max(start, lead), stop) - data.horizon + 1
        if len(ends) < 2:
            raise DataSourceError(
                f"{data.source!r}: {n} rows are too few for window={data.window} and "
                f"horizon={data.horizon} in every split"
            )
        idx = ends[:, None] - data.window + np.arange(data.window)[None, :]
        parts.append((series[idx], target[ends + data.horizon - 1]))
    (xt, yt), (xv, yv), (xs, ys) = parts
    return ArraySplits(xt, yt, xv, yv, xs, ys)


class LSTMForecaster(nn.Module):
    """One LSTM layer over the window; a linear head on the last hidden state."""

    def __init__(self, n_series: int, n_out: int, hidden: int = 64) -> None:
        super().__init__()
        self.lstm = nn.LSTM(n_series, hidden, batch_first=True)
        self.head = nn.Linear(hidden, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


def lstm_forecaster(
    n_in: int, n_out: int, rng: np.random.Generator, window: int = 48, hidden: int = 64
) -> nn.Module:
    """:class:`LSTMForecaster` for windows of ``window`` rows (series count from ``n_in``)."""
    n_series, rest = divmod(n_in, window)
    if rest or n_series < 1:
        raise ValueError(f"{n_in} inputs are not windows of {window} rows")
    return LSTMForecaster(n_series, n_out, hidden)


ETTH1 = "https://raw.githubusercontent.com/zhouhaoyi/ETDataset/main/ETT-small/ETTh1.csv"
"""ETTh1 from the ETDataset repository (17 420 hourly rows); no canonical hub copy exists."""


def etth1_lstm(
    source: str = ETTH1,
    *,
    target: str = "OT",
    window: int = 48,
    horizon: int = 1,
    hidden: int = 64,
    read_kwargs: dict[str, Any] | None = None,
    total_steps: int = 600,
    decision_interval: int = 25,
) -> TorchTask:
    """ETTh1 oil temperature one hour ahead from 48 h of all 7 series; LSTM 64, Adam 1e-3.

    Chronological 60/20/20 split; headline metric R² (higher is better), with MAE and
    RMSE reported beside it (standardised scale). Target 0.91: calibrated on the
    ``../shared/data`` copy (the same file as the default URL) like the built-in tasks
    (0.97 × the best static baseline's median final validation R², seeds 100-104; best:
    plateau 0.945), before any agent ran (``benchmarks/real_tasks.py --calibrate``).
    """
    data = WindowData(
        source,
        target,
        time_column="date",
        window=window,
        horizon=horizon,
        read_kwargs=freeze(read_kwargs),
    )
    return TorchTask(
        TaskInfo(
            "time-series forecasting",
            f"LSTM {hidden}",
            f"ETTh1 electricity transformer, {target} {horizon} h ahead from {window} h ({source})",
            "r2",
            "real",
            target=0.91,
            default_lr=1e-3,
            total_steps=total_steps,
            decision_interval=decision_interval,
        ),
        data=data,
        model=partial(lstm_forecaster, window=window, hidden=hidden),
        loss="mse",
        optimizer="adam",
        batch_size=64,
    )
