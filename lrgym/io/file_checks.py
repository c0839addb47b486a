"""Reading the files lrgym trusts, checked at the door: regular files only, size-capped,
strict JSON, finite numbers.

Every JSON card, weights file and results marker lrgym reads goes through
:func:`read_bytes` (directly or via :func:`read_json`), so a card that is a FIFO, a
device such as ``/dev/zero`` or a directory is refused with a clear error instead of
hanging or reading until memory runs out. The standard library opens files happily
whatever they are; this module adds the one check it lacks (open non-blocking, ``fstat``
the open descriptor, refuse anything but a regular file, read at most the cap).

Written by hand because no library in lrgym's dependencies offers "read this path only
if it is a regular file of at most N bytes"; the checks are a few ``os`` calls.
"""

from __future__ import annotations

import json
import math
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

MAX_CARD_BYTES = 16 * 2**20
"""Largest JSON card, marker or weights file read (16 MiB; shipped ones are < 100 KB)."""

MAX_WEIGHTS_BYTES = 256 * 2**20
"""Largest weights file (safetensors) read (256 MiB; shipped ones are < 1 MB)."""

MAX_TABLE_BYTES = 2 * 2**30
"""Largest results table (CSV, journal) read (2 GiB)."""


class FileCheckError(ValueError):
    """A file lrgym was asked to read is missing, not a regular file, too large, or
    not what it should be; the message names the file and says what to do."""


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a named pipe (FIFO)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def check_regular_file(
    path: str | os.PathLike[str],
    what: str = "file",
    *,
    max_bytes: int | None = MAX_CARD_BYTES,
    error: type[Exception] = FileCheckError,
) -> Path:
    """``path`` if it is an existing regular file of at most ``max_bytes`` bytes.

    A symbolic link to a regular file is fine (the link's target is what is read).

    Raises:
        error: Missing, not a regular file (directory, FIFO, device, socket), or larger
            than ``max_bytes``; the message names ``what`` and the path.
    """
    target = Path(path)
    try:
        info = os.stat(target)
    except FileNotFoundError:
        raise error(f"{what} {target} does not exist") from None
    except OSError as exc:
        raise error(f"cannot read {what} {target}: {exc.strerror or exc}") from None
    _check_stat(info, target, what, max_bytes, error)
    return target


def _check_stat(
    info: os.stat_result, target: Path, what: str, max_bytes: int | None, error: type[Exception]
) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise error(
            f"{what} {target} is {_kind(info.st_mode)}, not a regular file; pass a regular file"
        )
    if max_bytes is not None and info.st_size > max_bytes:
        raise error(
            f"{what} {target} is {info.st_size:,} bytes, more than the {max_bytes:,} a {what} "
            "may have; it is not an lrgym file, pass the right one"
        )


def read_bytes(
    path: str | os.PathLike[str],
    what: str = "file",
    *,
    max_bytes: int | None = MAX_CARD_BYTES,
    error: type[Exception] = FileCheckError,
) -> bytes:
    """The contents of a regular file of at most ``max_bytes`` bytes.

    The file is opened non-blocking (a FIFO cannot hang the open) and checked on the
    open descriptor (no swap between check and read); at most ``max_bytes + 1`` bytes
    are read, so a file that grows meanwhile is refused too.

    Raises:
        error: As :func:`check_regular_file`.
    """
    target = Path(path)
    check_regular_file(target, what, max_bytes=max_bytes, error=error)
    try:
        fd = os.open(target, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise error(f"cannot read {what} {target}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as f:
        _check_stat(os.fstat(f.fileno()), target, what, max_bytes, error)
        data = f.read() if max_bytes is None else f.read(max_bytes + 1)
    if max_bytes is not None and len(data) > max_bytes:
        raise error(f"{what} {target} is larger than the {max_bytes:,} bytes a {what} may have")
    return data


def read_text(
    path: str | os.PathLike[str],
    what: str = "file",
    *,
    max_bytes: int | None = MAX_CARD_BYTES,
    error: type[Exception] = FileCheckError,
) -> str:
    """:func:`read_bytes` decoded as UTF-8 (a clear error if it is not text)."""
    data = read_bytes(path, what, max_bytes=max_bytes, error=error)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{what} {path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number strict JSON allows")


def read_json(
    path: str | os.PathLike[str],
    what: str = "file",
    *,
    max_bytes: int | None = MAX_CARD_BYTES,
    error: type[Exception] = FileCheckError,
    expect: type | None = dict,
) -> Any:
    """A strict-JSON file (no ``NaN``/``Infinity``; numbers that overflow to inf, such
    as ``1e400``, are refused too), read with :func:`read_text`.

    Args:
        path: The file.
        what: What it is, for messages (``"agent card"``).
        max_bytes: Size cap.
        error: Exception class raised.
        expect: The JSON type the top level must have (``dict``: an object); None: any.

    Raises:
        error: Unreadable, not JSON, a non-finite number, or not of type ``expect``.
    """
    text = read_text(path, what, max_bytes=max_bytes, error=error)
    try:
        data = json.loads(text, parse_constant=_no_constant, parse_float=_finite_float)
    except ValueError as exc:  # JSONDecodeError is a ValueError
        raise error(f"{what} {path} is not valid JSON: {exc}") from None
    if expect is not None and not isinstance(data, expect):
        kind = {dict: "object", list: "array"}.get(expect, expect.__name__)
        raise error(
            f"{what} {path} must hold a JSON {kind}, not {_json_kind(data)}; it is not an "
            "lrgym file, pass the right one"
        )
    return data


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text} is too large for a float")
    return value


def _json_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return "a number"


def check_keys(
    data: Mapping[str, Any],
    where: str,
    *,
    required: tuple[str, ...] = (),
    known: tuple[str, ...] | None = None,
    error: type[Exception] = FileCheckError,
) -> None:
    """Refuse a mapping that lacks a ``required`` key or has one not in ``known``.

    Raises:
        error: Naming the missing or unknown keys and the allowed ones.
    """
    missing = [k for k in required if k not in data]
    if missing:
        raise error(f"{where} lacks {', '.join(map(repr, missing))}; it is incomplete")
    if known is not None:
        unknown = [k for k in data if k not in known]
        if unknown:
            raise error(
                f"{where} has unknown key(s) {', '.join(map(repr, unknown))}; known keys: "
                f"{', '.join(known)}"
            )


def finite_array(
    value: Any,
    where: str,
    *,
    ndim: int | None = None,
    shape: tuple[int | None, ...] | None = None,
    error: type[Exception] = FileCheckError,
) -> np.ndarray:
    """``value`` (nested lists of numbers) as a float64 array of finite values.

    Args:
        value: The JSON value.
        where: Names the file and field, for messages.
        ndim: Number of axes it must have.
        shape: Its shape; ``None`` in an axis allows any length.
        error: Exception class raised.

    Raises:
        error: Not numbers, ragged, wrong shape, or a NaN/inf value.
    """
    if isinstance(value, str | bytes | bool) or value is None:
        raise error(f"{where} must be an array of numbers, got {_json_kind(value)}")
    try:
        array = np.asarray(value, dtype=np.float64)
    except (ValueError, TypeError):
        raise error(f"{where} must be a (rectangular) array of numbers") from None
    if ndim is not None and array.ndim != ndim:
        raise error(f"{where} must have {ndim} axis/axes, got shape {array.shape}")
    if shape is not None and (
        len(shape) != array.ndim
        or any(w is not None and w != got for w, got in zip(shape, array.shape, strict=True))
    ):
        wanted = tuple("any" if s is None else s for s in shape)
        raise error(f"{where} must have shape {wanted}, got {array.shape}")
    if not np.isfinite(array).all():
        raise error(f"{where} holds NaN or infinite values; the file is corrupt")
    return array


__all__ = [
    "MAX_CARD_BYTES",
    "MAX_TABLE_BYTES",
    "MAX_WEIGHTS_BYTES",
    "FileCheckError",
    "check_keys",
    "check_regular_file",
    "finite_array",
    "read_bytes",
    "read_json",
    "read_text",
]
