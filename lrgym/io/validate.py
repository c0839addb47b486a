"""Checks of user-supplied settings: one clear ``ValueError`` naming the setting.

Shared by the training configuration, the environments, the schedulers and the CLI, so
every entry point refuses a bad value the same way, before anything is written or any
worker starts. Each check returns the value in its canonical type (an ``int`` for a whole
number, a ``float`` for a real one) and raises a ``ValueError`` (or the ``error`` class
given) whose message names ``key``, says what is allowed and shows what was given.

Numbers written as text, e.g. ``"3e-4"`` (YAML 1.1, which PyYAML follows, reads ``3e-4``
without a dot as a string), are accepted as numbers; booleans are not numbers here.
"""

from __future__ import annotations

import math
import numbers
import os
from pathlib import Path
from typing import Any


def _fail(error: type[Exception], key: str, what: str, value: Any) -> Exception:
    return error(f"{key} must be {what}, got {value!r}")


def as_number(key: str, value: Any, error: type[Exception] = ValueError) -> float | int:
    """``value`` as an ``int`` or ``float``; numeric text such as ``"3e-4"`` is parsed.

    Raises ``error`` for booleans, ``None``, non-numeric text and anything else.
    """
    if isinstance(value, bool) or value is None:
        raise _fail(error, key, "a number", value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            pass
        try:
            return float(text)  # "nan" and "inf" too: the range checks name the key
        except ValueError:
            raise _fail(error, key, "a number", value) from None
    raise _fail(error, key, "a number", value)


def whole_number(
    key: str,
    value: Any,
    minimum: int | None = None,
    maximum: int | None = None,
    error: type[Exception] = ValueError,
) -> int:
    """``value`` as an ``int`` in ``[minimum, maximum]``; 3.0 is 3, 2.7 is refused."""
    number = as_number(key, value, error)
    bounds = _bounds_text(minimum, maximum)
    what = f"a whole number{bounds}"
    if isinstance(number, float):
        if not (math.isfinite(number) and number.is_integer()):
            raise _fail(error, key, what, value)
        number = int(number)
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        raise _fail(error, key, what, value)
    return number


def real_number(
    key: str,
    value: Any,
    minimum: float | None = None,
    maximum: float | None = None,
    *,
    above: float | None = None,
    below: float | None = None,
    error: type[Exception] = ValueError,
) -> float:
    """``value`` as a finite ``float``, within the given inclusive/exclusive bounds."""
    number = as_number(key, value, error)
    parts = []
    if above is not None:
        parts.append(f"> {above:g}")
    if minimum is not None:
        parts.append(f">= {minimum:g}")
    if below is not None:
        parts.append(f"< {below:g}")
    if maximum is not None:
        parts.append(f"<= {maximum:g}")
    what = "a finite number" + (f" {' and '.join(parts)}" if parts else "")
    number = float(number)
    if not math.isfinite(number):
        raise _fail(error, key, what, value)
    if (
        (minimum is not None and number < minimum)
        or (maximum is not None and number > maximum)
        or (above is not None and number <= above)
        or (below is not None and number >= below)
    ):
        raise _fail(error, key, what, value)
    return number


def text(key: str, value: Any, error: type[Exception] = ValueError) -> str:
    """``value`` as a non-empty string (numbers are not names)."""
    if not isinstance(value, str) or not value.strip():
        raise _fail(error, key, "a non-empty text", value)
    return value


def text_list(
    key: str, value: Any, error: type[Exception] = ValueError, allow_empty: bool = True
) -> list[str]:
    """``value`` as a list of non-empty strings; a single string is a list of one."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple) or not all(
        isinstance(v, str) and v.strip() for v in value
    ):
        raise _fail(error, key, "a list of names", value)
    if not value and not allow_empty:
        raise _fail(error, key, "a non-empty list of names", value)
    return list(value)


def _bounds_text(minimum: float | None, maximum: float | None) -> str:
    if minimum is not None and maximum is not None:
        return f" in [{minimum}, {maximum}]"
    if minimum is not None:
        return f" >= {minimum}"
    if maximum is not None:
        return f" <= {maximum}"
    return ""


def writable_dir(
    key: str, path: str | os.PathLike[str], error: type[Exception] = ValueError
) -> Path:
    """``path`` as a directory that exists or can be created, and can be written.

    Nothing is created: the nearest existing ancestor must be a writable directory.
    """
    raw = os.fspath(path)
    if not str(raw).strip():
        raise error(f"{key} is empty; pass a directory path")
    target = Path(raw).expanduser()
    if target.exists() and not target.is_dir():
        raise error(f"{key} {target} is a file; pass a directory path")
    probe = target
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise error(f"{key} {target}: {probe} is a file, so no directory can be made under it")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise error(f"{key} {target}: {probe} is not writable; pass a directory you can write")
    return target


def options_mapping(
    key: str, value: Any, known: tuple[str, ...], error: type[Exception] = ValueError
) -> dict[str, Any]:
    """``value`` as a dict whose keys are all in ``known`` (``None`` is ``{}``).

    A typo such as ``intial_lr`` is an error, not a silently ignored option.

    Raises:
        TypeError: ``value`` is not a mapping (the message names ``key``).
        error: An unknown key; the message names it and the known ones.
    """
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TypeError(
            f"{key} must be a dict (e.g. {{{known[0]!r}: ...}}), got {type(value).__name__} "
            f"{value!r}"
        )
    unknown = [k for k in value if k not in known]
    if unknown:
        raise error(
            f"{key} has unknown key(s) {', '.join(map(repr, unknown))}; known keys: "
            f"{', '.join(known)}"
        )
    return dict(value)


def step_loss(value: Any, who: str = "scheduler") -> float:
    """A training loss fed to a scheduler (``step(loss=...)``) as a float.

    Accepts a real number, a NumPy scalar or a one-element tensor/array (read with
    ``.item()``, so a tensor that requires grad needs no ``detach``). NaN and inf pass (the
    schedulers leave non-finite losses out of their windows). A finite negative loss passes with
    a ``UserWarning``: the schedulers read log-loss ratios, which a loss below zero
    breaks (e.g. a log-likelihood fed instead of its negative).

    Raises:
        TypeError: A boolean, text, ``None`` or another non-number; the message names
            the argument.
        ValueError: A tensor or array with more than one value; the message says how to
            reduce it.
    """
    if isinstance(value, bool | str | bytes) or value is None:
        raise TypeError(
            f"{who}: loss must be a number or a one-element tensor, got {value!r}; pass "
            "step(loss=loss) with the step's training loss"
        )
    if hasattr(value, "item") and hasattr(value, "shape"):  # a tensor, array or NumPy scalar
        size = math.prod(tuple(value.shape))
        if size != 1:
            raise ValueError(
                f"{who}: loss must be a single value, got a {type(value).__name__} of shape "
                f"{tuple(value.shape)}; pass the batch's mean loss (loss.mean())"
            )
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"{who}: loss must be a real number or a one-element tensor, got "
            f"{type(value).__name__} {value!r}"
        )
    number = float(value)
    if -math.inf < number < 0:
        import warnings

        warnings.warn(
            f"{who}: a negative loss ({number:g}) was fed; the scheduler reads log-loss "
            "ratios, which a loss below zero breaks. Feed a loss >= 0 (e.g. the negative "
            "log-likelihood, not the log-likelihood).",
            UserWarning,
            stacklevel=2,
        )
    return number


__all__ = [
    "as_number",
    "options_mapping",
    "real_number",
    "step_loss",
    "text",
    "text_list",
    "whole_number",
    "writable_dir",
]


MAX_INITIAL_LR = 1e6
"""Largest initial LR accepted: far beyond any useful LR (divergence experiments use
10-100), and small enough that optimizers compute with it in float32 (above about 3e38 it
overflows, e.g. inside Adam)."""


def check_initial_lr(lr: Any) -> float:
    """``lr`` as a float, or a ``ValueError`` saying what a valid initial LR is."""
    if isinstance(lr, bool):
        raise ValueError(f"initial LR must be a positive number, got {lr!r}")
    try:
        value = float(lr)
    except (TypeError, ValueError):
        raise ValueError(f"initial LR must be a positive number, got {lr!r}") from None
    if not (math.isfinite(value) and 0 < value <= MAX_INITIAL_LR):
        raise ValueError(
            f"initial LR must be a finite number > 0 and <= {MAX_INITIAL_LR:g}, got {lr!r}"
        )
    return value
