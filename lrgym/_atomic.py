"""Atomic file writes: a reader never sees a half-written result or agent file."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_TEMP_NAME = re.compile(r"^\..*\.[a-z0-9_]{8}\.tmp")
"""Names of :func:`atomic_path`'s temporary files (``mkstemp`` adds 8 random characters)."""


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it into place only on success.

    Writers (pandas, matplotlib, torch.save, SB3's ``save``) write to the yielded path;
    ``os.replace`` then swaps it in, which is atomic on POSIX and Windows.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}"
    )
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp makes 0600; give the usual mode
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def is_temp_name(name: str) -> bool:
    """True for the name of one of :func:`atomic_path`'s temporary files."""
    return bool(_TEMP_NAME.match(name))


def remove_stale_temp_files(directory: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporary files :func:`atomic_path` left in ``directory`` when a process
    was killed mid-write (``.<stem>.<random>.tmp<suffix>``); returns what was removed.

    Call it only when no other process is writing into ``directory``.
    """
    folder = Path(directory)
    if not folder.is_dir():
        return []
    removed = []
    for path in folder.iterdir():
        name = path.name
        if _TEMP_NAME.match(name) and path.is_file():
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed
