"""Adapters that plug lrgym schedulers into other training stacks.

Each adapter is a thin layer over :class:`lrgym.PolicyScheduler`: the framework steps
the scheduler (or, for XGBoost, the callback does), the adapter feeds it what the
framework measured (the step's training loss, validation loss and metric).

* :mod:`lrgym.integrations.hf_trainer`: :class:`~lrgym.integrations.hf_trainer.HFPolicyCallback`
  for the Hugging Face ``Trainer`` (``pip install 'lrgym[hf]'``).
* :mod:`lrgym.integrations.lightning_callback`:
  :class:`~lrgym.integrations.lightning_callback.LightningPolicyCallback` for PyTorch
  Lightning (``pip install 'lrgym[lightning]'``).
* :mod:`lrgym.integrations.xgboost_callback`:
  :class:`~lrgym.integrations.xgboost_callback.XGBoostPolicyCallback`, an
  ``xgboost.callback.TrainingCallback`` that sets ``eta`` every boosting round (for
  ``xgb.train`` and the scikit-learn API; XGBoost is a core dependency).

Module names differ from the libraries they adapt (``hf_trainer``, not ``transformers``),
so none of them can shadow its library.
"""
