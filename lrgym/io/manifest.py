"""SHA-256 manifests: an integrity check on the files of a run or agent folder.

lrgym writes a ``manifest.json`` beside its training states, checkpoints and selected
models, listing each file's SHA-256 digest, and verifies a file against it before reading
it: a truncated file (a run killed mid-write), a changed one or one lrgym did not write
is refused with :class:`ManifestError` (a resume then falls back to an earlier
checkpoint).

A manifest detects damage and files dropped into a folder; it cannot stop someone who
rewrites the manifest too. That is why nothing it guards is a pickle: the files are
safetensors and JSON, read as data (:mod:`lrgym.agents.training_state`), so a forged
folder can at worst give wrong numbers or a clean error, never run code. The SB3 pickles
of earlier versions are loaded only by the explicit converter, ``lrgym convert-agent``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path

from lrgym.io._atomic import write_text_atomic

MANIFEST = "manifest.json"
FORMAT = "lrgym-sha256-manifest"


class ManifestError(ValueError):
    """A file is missing from its manifest or its digest does not match."""


def sha256(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 digest of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(directory: str | os.PathLike[str]) -> dict[str, str]:
    """File name -> digest recorded in ``directory/manifest.json`` (empty if none or unreadable)."""
    from lrgym.io.file_checks import read_json

    path = Path(directory) / MANIFEST
    if not path.exists():
        return {}
    try:  # a regular, size-capped file: a FIFO here must not hang (lrgym.io.file_checks)
        data = read_json(path, "manifest")
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return {}
    files = data.get("files")
    if not isinstance(files, dict):
        return {}
    return {str(k): str(v) for k, v in files.items()}


def record(
    directory: str | os.PathLike[str],
    names: Iterable[str],
    forget: Iterable[str] = (),
) -> None:
    """Add (or refresh) the digests of ``names`` in ``directory``'s manifest, atomically.

    Call it after the files are complete; entries in ``forget`` (deleted files) are dropped.
    """
    root = Path(directory)
    files = read_manifest(root)
    for name in forget:
        files.pop(name, None)
    for name in names:
        files[name] = sha256(root / name)
    payload = {"format": FORMAT, "files": dict(sorted(files.items()))}
    write_text_atomic(root / MANIFEST, json.dumps(payload, indent=1) + "\n")


def verify(directory: str | os.PathLike[str], names: Iterable[str]) -> None:
    """Raise :class:`ManifestError` unless every file in ``names`` matches its recorded digest."""
    root = Path(directory)
    files = read_manifest(root)
    for name in names:
        path = root / name
        if name not in files:
            raise ManifestError(
                f"{path} is not listed in {root / MANIFEST}: lrgym did not write it (or its "
                "write was interrupted), so it is not loaded"
            )
        if not path.is_file():
            raise ManifestError(f"{path} is missing")
        if sha256(path) != files[name]:
            raise ManifestError(
                f"{path} does not match the digest lrgym recorded for it in {root / MANIFEST}: "
                "it is damaged (e.g. truncated) or was changed, so it is not loaded"
            )


def verified(directory: str | os.PathLike[str], names: Iterable[str]) -> bool:
    """True if :func:`verify` passes."""
    try:
        verify(directory, names)
    except ManifestError:
        return False
    return True


__all__ = ["MANIFEST", "ManifestError", "read_manifest", "record", "sha256", "verified", "verify"]
