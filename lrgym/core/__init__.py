"""The contracts and the environment: what every other wing builds on.

* The contracts: :mod:`~lrgym.core.task` (a registered task builds a trainee),
  :mod:`~lrgym.core.trainee` (train k steps, evaluate), :mod:`~lrgym.core.controller`
  (anything that decides hyperparameters in the harness) and
  :mod:`~lrgym.core.feedback_scheduler` (a torch LR scheduler fed with losses).
* The registry: :mod:`~lrgym.core.registration` (task ids, families, plugins) with its
  calibrated :mod:`~lrgym.core.targets`.
* The decision path: :mod:`~lrgym.core.signals` (the observation),
  :mod:`~lrgym.core.actions`, :mod:`~lrgym.core.hyperparams`, :mod:`~lrgym.core.guard`
  and :mod:`~lrgym.core.decision`, which the env and the deployed scheduler share.
* :mod:`~lrgym.core.env`: ``LRControlEnv``, one episode = one training run.

Imports only :mod:`lrgym.io`.
"""
