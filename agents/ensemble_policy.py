"""An ensemble as one stable-baselines3 model: the ``ppo.zip`` of an ensemble directory.

:class:`EnsemblePolicy` is an SB3 ``ActorCriticPolicy`` that holds every member's actor
and critic with the member's own observation normalisation (mean, std, clip) inside, and
acts with the mean of the members' mean actions (each clipped to the action box
[-1, 1]), as
:class:`~lrgym.deploy.agent.AgentEnsemble` does. It takes *raw* observations (each
member normalises them itself), so ``PPO.load(ens / "ppo.zip").predict(obs,
deterministic=True)`` is the ensemble's action, and ``model.learn`` trains the members
together on the mean action (their normalisation frozen). The members cannot be folded
into one SB3 ``MlpPolicy``: each clips its own normalised observation, and a mean of
clipped inputs is not a clipped mean, so the policy class is written here (SB3 has no
ensemble policy). The value is the mean of the members' values; the action's log-std is
one parameter, started at the mean of the members'.

:func:`write_sb3_ensemble` writes it into an ensemble directory from the members'
training states (``lrgym ensemble`` calls it); lrgym itself never reads it (SB3's format
holds cloudpickled entries): ``lrgym train --init-from ENSEMBLE`` trains each member on
from its own training state.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch
from stable_baselines3.common.distributions import Distribution
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.torch_layers import MlpExtractor
from torch import nn

from lrgym.agents.config import TrainConfig
from lrgym.agents.sb3_files import load_sb3_model, make_ppo, save_sb3_model, spaces_only
from lrgym.deploy.agent import load_card


class _Member(nn.Module):
    """One member's networks, named as in its own SB3 policy (its state dict loads)."""

    def __init__(self, n_obs: int, n_actions: int, net_arch: list[int], activation: type) -> None:
        super().__init__()
        self.mlp_extractor = MlpExtractor(n_obs, net_arch, activation)
        self.action_net = nn.Linear(self.mlp_extractor.latent_dim_pi, n_actions)
        self.value_net = nn.Linear(self.mlp_extractor.latent_dim_vf, 1)


class EnsemblePolicy(ActorCriticPolicy):
    """SB3 policy of ``n_members`` member MLPs acting with their mean action (see the
    module docstring). ``net_arch``: each member's hidden layers (shared by actor and
    critic, as lrgym trains them)."""

    def __init__(self, *args: Any, n_members: int = 2, **kwargs: Any) -> None:
        self.n_members = n_members
        super().__init__(*args, **kwargs)

    def _build(self, lr_schedule: Any) -> None:
        n_obs = self.observation_space.shape[0]
        n_actions = self.action_space.shape[0]
        arch = list(self.net_arch) if isinstance(self.net_arch, list) else self.net_arch["pi"]
        self.members = nn.ModuleList(
            _Member(n_obs, n_actions, arch, self.activation_fn) for _ in range(self.n_members)
        )
        self.register_buffer("obs_mean", torch.zeros(self.n_members, n_obs))
        self.register_buffer("obs_std", torch.ones(self.n_members, n_obs))
        self.register_buffer("obs_clip", torch.full((self.n_members,), 10.0))
        self.log_std = nn.Parameter(torch.full((n_actions,), self.log_std_init))
        self.optimizer = self.optimizer_class(
            self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs
        )

    def _heads(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean of the members' mean actions and of their values, from raw ``obs``."""
        obs = obs.float()
        actions, values = [], []
        for i, member in enumerate(self.members):
            clip = self.obs_clip[i]
            x = torch.clamp((obs - self.obs_mean[i]) / self.obs_std[i], -clip, clip)
            latent_pi, latent_vf = member.mlp_extractor(x)
            # each member's action is clipped to the action box before the mean, as
            # AgentEnsemble averages the members' (clipped) actions
            actions.append(torch.clamp(member.action_net(latent_pi), -1.0, 1.0))
            values.append(member.value_net(latent_vf))
        return torch.stack(actions).mean(0), torch.stack(values).mean(0)

    def _distribution(self, mean: torch.Tensor) -> Distribution:
        return self.action_dist.proba_distribution(mean, self.log_std)

    def forward(self, obs: torch.Tensor, deterministic: bool = False):
        mean, values = self._heads(obs)
        distribution = self._distribution(mean)
        actions = distribution.get_actions(deterministic=deterministic)
        return actions, values, distribution.log_prob(actions)

    def evaluate_actions(self, obs: torch.Tensor, actions: torch.Tensor):
        mean, values = self._heads(obs)
        distribution = self._distribution(mean)
        return values, distribution.log_prob(actions), distribution.entropy()

    def get_distribution(self, obs: torch.Tensor) -> Distribution:
        return self._distribution(self._heads(obs)[0])

    def predict_values(self, obs: torch.Tensor) -> torch.Tensor:
        return self._heads(obs)[1]

    def _predict(self, observation: torch.Tensor, deterministic: bool = False) -> torch.Tensor:
        return self.get_distribution(observation).get_actions(deterministic=deterministic)


def write_sb3_ensemble(ensemble_dir: str | Path) -> Path:
    """Write ``ppo.zip`` (an :class:`EnsemblePolicy` PPO with the PPO settings of the
    ensemble card, i.e. the first member's) into ``ensemble_dir`` from its members'
    training states, and record it in the directory's manifest."""
    ensemble_dir = Path(ensemble_dir)
    card = load_card(ensemble_dir)
    n_obs, n_actions = len(card.features), len(card.hparams)
    members = [load_sb3_model(ensemble_dir / name) for name in card.members]
    config = TrainConfig(**{"action": card.action, **card.config})  # the first member's
    with warnings.catch_warnings():  # SB3's batch-size hint, for the one spaces-only env
        warnings.simplefilter("ignore", UserWarning)
        model = make_ppo(
            spaces_only(n_obs, n_actions), config, policy=EnsemblePolicy, n_members=len(members)
        )
    policy = model.policy
    with torch.no_grad():
        for i, (member, norm) in enumerate(members):
            weights = {k: v for k, v in member.policy.state_dict().items() if k != "log_std"}
            policy.members[i].load_state_dict(weights)
            policy.obs_mean[i] = torch.as_tensor(norm.obs_rms.mean, dtype=torch.float32)
            policy.obs_std[i] = torch.as_tensor((norm.obs_rms.var + norm.epsilon) ** 0.5)
            policy.obs_clip[i] = float(norm.clip_obs)
        policy.log_std.copy_(torch.stack([m.policy.log_std for m, _ in members]).mean(0))
    return save_sb3_model(model, ensemble_dir)


__all__ = ["EnsemblePolicy", "write_sb3_ensemble"]
