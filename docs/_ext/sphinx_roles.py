"""A griffe extension for the API pages: Sphinx roles in docstrings become code spans.

lrgym's docstrings are Google style but cross-reference with Sphinx roles
(``:class:`~lrgym.deploy.agent.Agent```), which Markdown shows as raw text. No mkdocstrings
or griffe option converts them, so this does, to plain code spans (``Agent``; the full path
without ``~``): links would fail ``mkdocs build --strict`` for roles naming objects the
API pages do not document.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(?:class|meth|func|data|attr|mod|exc|obj|const):`(~?)([^`]+)`")


def plain(text: str) -> str:
    """``text`` with every Sphinx role replaced by a code span of its target."""

    def span(match: re.Match[str]) -> str:
        tilde, target = match[1], match[2]
        return f"`{target.rsplit('.', 1)[-1] if tilde else target}`"

    return ROLE.sub(span, text)


class SphinxRoles(griffe.Extension):
    """Rewrites each object's docstring once griffe has read it."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = plain(obj.docstring.value)
