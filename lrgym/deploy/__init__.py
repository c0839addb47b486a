"""The deploy path: a trained agent in anyone's training loop, without stable-baselines3.

* :mod:`~lrgym.deploy.agent`: agent folders (card + ``policy.safetensors``),
  ``load_agent``.
* :mod:`~lrgym.deploy.policy_weights`: the policy as data, run by a NumPy forward.
* :mod:`~lrgym.deploy.scheduler`: ``PolicyScheduler``, the agent as a torch LR scheduler.
* :mod:`~lrgym.deploy.agent_convert`: ``lrgym convert-agent`` (old agent folders to the
  current format).

Imports :mod:`lrgym.core` and :mod:`lrgym.io` only: no backend, no harness.
"""
