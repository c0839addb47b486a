"""The registry of meta-init families: register one by name, list them, build one.

Built-in: ``digits``, ``cifar10``, ``uci-sentiment``, ``uci-sentiment-relabel``
(:mod:`lrgym.meta_init.families`). Users add their own with :func:`register_init_family`.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

from lrgym.meta_init.contract import InitFamily
from lrgym.meta_init.families import (
    Cifar10Family,
    DigitsFamily,
    UciSentimentFamily,
    UciSentimentRelabelFamily,
)


class UnknownFamilyError(KeyError):
    """No meta-init family is registered under that name."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


FamilyFactory = Callable[..., InitFamily]
"""``(**kwargs) -> InitFamily``; kwargs come from ``--data``/``--cache-dir`` and the API."""

_FAMILIES: dict[str, FamilyFactory] = {
    "digits": DigitsFamily,
    "cifar10": Cifar10Family,
    "uci-sentiment": UciSentimentFamily,
    "uci-sentiment-relabel": UciSentimentRelabelFamily,
}


def register_init_family(name: str, factory: FamilyFactory) -> None:
    """Register a meta-init task family under ``name``.

    Example:
        >>> class MyFamily(InitFamily):
        ...     name = "mine"
        ...     settings = FamilySettings(2, 5, 15, 40, 100, True, ModelSpec("mlp", (16,), 2))
        ...     def load_split(self, split): ...
        >>> register_init_family("mine", MyFamily)
    """
    if not isinstance(name, str) or not name or not name.replace("-", "").isalnum():
        raise ValueError(f"a family name is letters, digits and '-', got {name!r}")
    if not callable(factory):
        raise TypeError(f"factory of family {name!r} must be callable, got {factory!r}")
    _FAMILIES[name] = factory


def family_names() -> list[str]:
    """Registered family names."""
    return sorted(_FAMILIES)


def make_family(name: str, **kwargs: Any) -> InitFamily:
    """Build the family registered as ``name``; ``None`` keyword values are left out.

    Raises:
        UnknownFamilyError: ``name`` is not registered (the message lists the names).
    """
    try:
        factory = _FAMILIES[name]
    except KeyError:
        close = difflib.get_close_matches(str(name), _FAMILIES, n=2, cutoff=0.5)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise UnknownFamilyError(
            f"unknown meta-init family {name!r}; registered: {', '.join(family_names())}.{hint} "
            "Register your own with lrgym.meta_init.register_init_family(name, factory)."
        ) from None
    import inspect

    try:
        params = inspect.signature(factory).parameters
        accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    except (TypeError, ValueError):
        params, accepts_any = {}, True
    given = {k: v for k, v in kwargs.items() if v is not None}
    unused = [k for k in given if k not in params and not accepts_any]
    if unused:
        raise TypeError(f"family {name!r} takes no option(s) {unused}")
    family = factory(**given)
    if not isinstance(family, InitFamily):
        raise TypeError(f"factory of family {name!r} returned {type(family).__name__}")
    family.name = name
    return family


__all__ = [
    "FamilyFactory",
    "UnknownFamilyError",
    "family_names",
    "make_family",
    "register_init_family",
]
