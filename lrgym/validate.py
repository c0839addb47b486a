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


__all__ = [
    "as_number",
    "real_number",
    "text",
    "text_list",
    "whole_number",
    "writable_dir",
]
