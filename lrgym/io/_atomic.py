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


class UnsafePathError(ValueError):
    """A path inside an output folder is a symbolic link: lrgym would write, append or
    delete outside the folder through it."""


def refuse_links(root: str | os.PathLike[str], *names: str) -> None:
    """Refuse symbolic links where lrgym writes inside the output folder ``root``.

    Each of ``names`` (a file or folder directly in ``root``, e.g. ``"runs.jsonl"``,
    ``"plots"``) must not be a link; a folder's own entries must not be links either.
    ``root`` itself may be a link (the user chose it).

    Raises:
        UnsafePathError: Naming the link, where it points and what to do.
    """
    folder = Path(root)
    for name in names:
        path = folder / name
        _refuse_link(folder, path)
        if path.is_dir():
            for entry in path.iterdir():
                _refuse_link(folder, entry)


def _refuse_link(root: Path, path: Path) -> None:
    if path.is_symlink():
        raise UnsafePathError(
            f"{path} is a symbolic link (to {os.readlink(path)}); lrgym does not write, "
            f"append or delete through links inside an output folder: remove the link "
            f"from {root}, or pass another output folder"
        )


def check_inside(root: str | os.PathLike[str], path: str | os.PathLike[str]) -> Path:
    """``path`` if it lies in ``root`` with no symbolic link on the way down from
    ``root`` (the last component included).

    Raises:
        UnsafePathError: ``path`` is outside ``root`` or reached through a link.
    """
    base, target = Path(root), Path(path)
    try:
        parts = target.relative_to(base).parts
    except ValueError:
        raise UnsafePathError(f"{target} is not inside the output folder {base}") from None
    if ".." in parts:
        raise UnsafePathError(f"{target} leaves the output folder {base} ('..')")
    current = base
    for part in parts:
        current = current / part
        _refuse_link(base, current)
    return target


@contextmanager
def atomic_path(
    path: str | os.PathLike[str], root: str | os.PathLike[str] | None = None
) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it into place only on success.

    Writers (pandas, matplotlib, torch.save, SB3's ``save``) write to the yielded path;
    ``os.replace`` then swaps it in, which is atomic on POSIX and Windows (a link at
    ``path`` is replaced, never written through).

    Args:
        path: The file to write.
        root: The output folder ``path`` lies in, if any: a symbolic link between it and
            ``path`` is refused (:func:`check_inside`), so nothing is written outside it.

    Raises:
        UnsafePathError: ``path`` is reached through a link below ``root``.
    """
    target = Path(path)
    if root is not None:
        check_inside(root, target)
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


def write_text_atomic(
    path: str | os.PathLike[str], text: str, root: str | os.PathLike[str] | None = None
) -> None:
    """Write ``text`` to ``path`` atomically (``root``: as in :func:`atomic_path`)."""
    with atomic_path(path, root) as tmp:
        tmp.write_text(text, encoding="utf-8")


def is_temp_name(name: str) -> bool:
    """True for the name of one of :func:`atomic_path`'s temporary files."""
    return bool(_TEMP_NAME.match(name))


def remove_stale_temp_files(directory: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporary files :func:`atomic_path` left in ``directory`` when a process
    was killed mid-write (``.<stem>.<random>.tmp<suffix>``); returns what was removed.

    Call it only when no other process is writing into ``directory`` (and check a
    sub-folder of an output folder with :func:`refuse_links` first). Temporary-named
    links are left alone.
    """
    folder = Path(directory)
    if not folder.is_dir():
        return []
    removed = []
    for path in folder.iterdir():
        name = path.name
        if _TEMP_NAME.match(name) and not path.is_symlink() and path.is_file():
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed
