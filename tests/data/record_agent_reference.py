"""Record the shipped agent's reference actions (``default_agent_reference.npz``).

Each member's SB3 model behind its ``VecNormalize``, rebuilt from an agent or run directory
that holds its training state (``training.safetensors``), acts deterministically on
:func:`~lrgym.deploy.agent_convert.check_observations`; ``members`` holds their actions,
shape (M, n, 1), and ``actions`` their mean (the ensemble's action; for one agent, its
own). ``tests/test_agent_format.py`` checks the shipped NumPy policies against them.

    python tests/data/record_agent_reference.py runs/seed0 runs/seed1 ... \\
        --out tests/data/default_agent_reference.npz

Run it when ``trained_agents/default`` changes, with the directories it was made from,
in its member order.
"""

from __future__ import annotations

import argparse

import numpy as np

from lrgym.agents.sb3_files import load_sb3_model
from lrgym.core.signals import FEATURES
from lrgym.deploy.agent_convert import check_observations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="+", help="member directories with training state")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    obs = check_observations(len(FEATURES))
    actions = []
    for path in args.dirs:
        model, norm = load_sb3_model(path)
        action, _ = model.predict(norm.normalize_obs(obs), deterministic=True)
        actions.append(np.asarray(action, np.float64))
    members = np.stack(actions)
    np.savez(args.out, actions=members.mean(axis=0), members=members)
    print(f"{args.out}: {len(members)} member(s), {members.shape[1]} observations")


if __name__ == "__main__":
    main()
