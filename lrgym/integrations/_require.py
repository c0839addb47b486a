"""Import an optional dependency, or fail with the pip command that installs it."""

from __future__ import annotations

import importlib
from types import ModuleType


def require(module: str, extra: str, needed_by: str) -> ModuleType:
    """Import ``module``; if it is missing, raise an ImportError naming the extra.

    Args:
        module: The module to import, e.g. ``"transformers"``.
        extra: The lrgym extra that installs it, e.g. ``"hf"``.
        needed_by: The lrgym module that needs it (for the message).
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"{needed_by} needs the optional dependency {module!r}, which is not installed "
            f"({exc}). Install it with: pip install 'lrgym[{extra}]'"
        ) from exc
