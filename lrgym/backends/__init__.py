"""What trains and where it runs.

* :mod:`~lrgym.backends.torch_trainee`: ``TorchTask``/``TorchTrainee``, the generic torch
  trainee.
* :mod:`~lrgym.backends.xgb_trainee`: ``XGBoostTask``/``XGBoostTrainee`` (boosting rounds
  as steps).
* :mod:`~lrgym.backends.ray_backend`: ``--backend ray`` (the connection, comparison grids
  as Ray tasks).
* :mod:`~lrgym.backends._lifetime`: no worker process outlives its parent.

Imports :mod:`lrgym.core` and :mod:`lrgym.io`.
"""
