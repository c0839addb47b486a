"""Write an ensemble: the agents of one recipe's training seeds, acting with their mean action.

An ensemble directory holds ``card.json`` (an :class:`~lrgym.deploy.agent.AgentCard` whose
``members`` names its sub-directories) and one complete agent per member: its card, its
policy and the files its manifest lists (training state, SB3 model), so each member can
still be evaluated alone (``learned:DIR/seed1``) or trained on (``lrgym train
--init-from DIR/seed1``). A training run's other files (checkpoints, TensorBoard logs,
its config) stay behind. :func:`lrgym.load_agent` loads the directory
as an :class:`~lrgym.deploy.agent.AgentEnsemble`; the directory's own ``ppo.zip`` is the
ensemble as one stable-baselines3 model (:mod:`lrgym.agents.ensemble_policy`), written
when every member has its training state.

    lrgym ensemble runs/broad-seed0 runs/broad-seed1 runs/broad-seed2 --out runs/broad
"""

from __future__ import annotations

import shlex
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from lrgym._version import __version__
from lrgym.agents.ensemble_policy import write_sb3_ensemble
from lrgym.agents.sb3_files import TRAINING_FILES
from lrgym.deploy.agent import CARD, Agent, AgentCard, AgentEnsemble, AgentLoadError, load_agent
from lrgym.deploy.policy_weights import POLICY
from lrgym.io.manifest import MANIFEST, read_manifest


def member_names(members: Sequence[Agent]) -> list[str]:
    """Sub-directory names for ``members``: ``seed{S}`` from each card, ``member{i}`` if
    two members share a seed."""
    names = [f"seed{m.card.seed}" for m in members]
    return names if len(set(names)) == len(names) else [f"member{i}" for i in range(len(names))]


def agent_files(directory: str | Path) -> list[str]:
    """The files that make ``directory`` an agent: card, policy, manifest and the files
    the manifest lists (those present)."""
    names = [CARD, POLICY, MANIFEST, *read_manifest(directory)]
    return [n for n in dict.fromkeys(names) if (Path(directory) / n).is_file()]


def write_ensemble(out: str | Path, members: Sequence[str | Path], name: str | None = None) -> Path:
    """Copy ``members`` (agent directories of one recipe) into the ensemble ``out``.

    The directory appears whole or not at all (built beside ``out``, then renamed).

    Args:
        out: The ensemble directory to create (it must not exist).
        members: At least two agent directories trained with the same features,
            hyperparameters and action mapping (typically one recipe's seeds).
        name: The ensemble's name (default: ``out``'s folder name).

    Returns:
        ``out``, loadable with :func:`lrgym.load_agent`.

    Raises:
        AgentLoadError: fewer than two members, a member that does not load, an ensemble
            as a member, members that differ in features, hyperparameters or action
            mapping, or ``out`` already exists.
    """
    out = Path(out)
    if len(members) < 2:
        raise AgentLoadError(f"an ensemble needs at least two member agents, got {len(members)}")
    if out.exists() or out.is_symlink():
        raise AgentLoadError(f"{out} already exists; choose a new folder for the ensemble")
    agents = [load_agent(m) for m in members]
    if any(isinstance(a, AgentEnsemble) for a in agents):
        raise AgentLoadError("an ensemble member cannot itself be an ensemble")
    names = member_names(agents)
    first = agents[0].card
    described = ", ".join(
        f"{n}: seed {a.card.seed}, {a.card.total_timesteps} steps"
        for n, a in zip(names, agents, strict=True)
    )
    card = AgentCard(
        name=name or out.name,
        lrgym_version=__version__,
        obs_layout_version=first.obs_layout_version,
        features=list(first.features),
        action=dict(first.action),
        tasks=list(dict.fromkeys(t for a in agents for t in a.card.tasks)),
        total_timesteps=sum(a.card.total_timesteps for a in agents),
        seed=first.seed,
        wall_seconds=sum(a.card.wall_seconds for a in agents),
        command=shlex.join(["lrgym", "ensemble", *map(str, members), "--out", str(out)]),
        config=dict(first.config),
        hparams=list(first.hparams),
        hparam_specs=dict(first.hparam_specs),
        notes=[
            f"Mean action of {len(agents)} agents ({described}); each member's own card "
            "holds its training and its scores. total_timesteps and wall_seconds are the "
            "members' sums; seed and config are the first member's."
        ],
        members=names,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        for member, agent in zip(names, agents, strict=True):
            (tmp / member).mkdir()
            for file in agent_files(agent.path):
                shutil.copyfile(Path(agent.path) / file, tmp / member / file)
        card.save(tmp)
        AgentEnsemble(tmp, card, [load_agent(tmp / n) for n in names])  # the copy loads
        if all((tmp / n / f).is_file() for n in names for f in TRAINING_FILES):
            write_sb3_ensemble(tmp)  # the ensemble as one SB3 model, for SB3 users
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


__all__ = ["agent_files", "member_names", "write_ensemble"]
