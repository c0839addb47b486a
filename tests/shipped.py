"""The shipped agent's plain agent directories: the agent itself, or each member of an
ensemble (what holds a policy and a training state)."""

from __future__ import annotations

import json
from pathlib import Path

from lrgym.deploy.agent import CARD, resolve_agent


def shipped_agent_dirs(name: str = "default") -> list[Path]:
    """The directories of the shipped agent ``name``, or of its members."""
    path = resolve_agent(name)
    members = json.loads((path / CARD).read_text()).get("members") or []
    return [path / member for member in members] or [path]
