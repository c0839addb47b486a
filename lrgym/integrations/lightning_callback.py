"""The learned scheduler inside PyTorch Lightning.

Return a :class:`~lrgym.PolicyScheduler` from ``configure_optimizers`` with
``interval="step"`` (Lightning then steps it after every optimizer step and saves its
state in checkpoints) and add :class:`LightningPolicyCallback`, which feeds it each
step's training loss and every validation's loss and metric::

    class Model(L.LightningModule):
        def configure_optimizers(self):
            optimizer = torch.optim.AdamW(self.parameters(), lr=1e-3)
            scheduler = lrgym.PolicyScheduler(optimizer, agent="default", decision_interval=25)
            return {"optimizer": optimizer,
                    "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    trainer = L.Trainer(max_steps=1000, callbacks=[LightningPolicyCallback(metric="val_acc")])

Leave out ``"monitor"``: Lightning passes a monitored value only to plateau schedulers
(``ReduceLROnPlateau`` or ``"reduce_on_plateau": True``), and it steps those after
validation, when it has already cleared the gradients the scheduler reads. The callback
feeds the validation numbers instead (the keys you ``self.log`` in ``validation_step``).

How it lines up with Lightning's loop (2.x): Lightning steps a ``"step"`` scheduler right
after the optimizer step and *before* ``on_train_batch_end``, so a callback that fed the
loss from there would hand every decision its window's losses one step late. The callback
takes the loss from ``on_before_backward`` (undoing Lightning's division by
``accumulate_grad_batches``) and feeds the step's mean loss in ``on_before_optimizer_step``:
each decision sees exactly the losses of its window, as in a plain loop.

Checkpoints need nothing extra: Lightning saves the scheduler's ``state_dict()``
(numbers, lists and tensors) in the checkpoint and restores it on
``trainer.fit(..., ckpt_path=...)``; the callback keeps no state across optimizer steps.
A run resumed from a checkpoint taken at the end of an epoch takes the LRs of the
uninterrupted run (a plain ``DataLoader`` cannot resume mid-epoch).

The ``lightning`` package (``pip install 'lrgym[lightning]'``) is required; the older
``pytorch_lightning`` package name is not supported (its Trainer rejects callbacks built
on ``lightning.pytorch``).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from lrgym.deploy.scheduler import PolicyScheduler
from lrgym.integrations._feed import PolicyFeed
from lrgym.integrations._require import require

L = require("lightning.pytorch", "lightning", __name__)


def find_policy_scheduler(trainer: Any) -> PolicyScheduler:
    """The :class:`~lrgym.PolicyScheduler` among the trainer's LR schedulers (exactly one)."""
    found = [c.scheduler for c in trainer.lr_scheduler_configs]
    found = [s for s in found if isinstance(s, PolicyScheduler)]
    if len(found) != 1:
        raise ValueError(
            f"LightningPolicyCallback needs exactly one lrgym.PolicyScheduler among the "
            f"schedulers configure_optimizers returns, found {len(found)}. Return "
            '{"optimizer": opt, "lr_scheduler": {"scheduler": PolicyScheduler(opt, ...), '
            '"interval": "step"}}'
        )
    return found[0]


class LightningPolicyCallback(PolicyFeed, L.Callback):
    """Feeds the :class:`~lrgym.PolicyScheduler` that ``configure_optimizers`` returned.

    Args:
        val_loss: Logged key of the validation loss (``self.log("val_loss", ...)`` in
            ``validation_step``).
        metric: Logged key of a higher-is-better validation metric (e.g. ``"val_acc"``);
            None feeds the validation loss only.
        sync_total_steps: Set ``scheduler.total_steps`` to the trainer's
            ``estimated_stepping_batches`` when training starts.

    With the default ``PolicyScheduler(eval_feedback=False)`` decisions happen when
    Lightning steps the scheduler and use the latest validation. With
    ``eval_feedback=True`` each decision waits for the next validation, as in
    meta-training: validate every ``decision_interval`` steps
    (``val_check_interval=decision_interval, check_val_every_n_epoch=None``) and run a
    full validation before training (``num_sanity_val_steps=-1``), whose result the
    callback feeds to the first decision. Partial sanity checks are never fed.

    The scheduler's ``interval`` must be ``"step"`` and its ``frequency`` 1. This is for
    automatic optimization; with manual optimization you step the scheduler yourself, so
    call ``scheduler.step(loss)`` after ``optimizer.step()`` as in a plain loop.
    """

    def __init__(
        self,
        val_loss: str = "val_loss",
        metric: str | None = None,
        sync_total_steps: bool = True,
    ) -> None:
        self.val_loss = val_loss
        self.metric = metric
        self.sync_total_steps = sync_total_steps
        self.scheduler: PolicyScheduler | None = None
        self._init_feed()

    def _resolve(self, trainer: Any) -> PolicyScheduler:
        if self.scheduler is None:
            self.scheduler = find_policy_scheduler(trainer)
            config = next(c for c in trainer.lr_scheduler_configs if c.scheduler is self.scheduler)
            if config.interval != "step" or config.frequency != 1:
                raise ValueError(
                    "LightningPolicyCallback: the PolicyScheduler must be stepped every "
                    'optimizer step: {"scheduler": ..., "interval": "step"} (got interval='
                    f"{config.interval!r}, frequency={config.frequency})"
                )
        return self.scheduler

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        self.scheduler = None  # configure_optimizers may build a new one each fit

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        sched = self._resolve(trainer)
        total = trainer.estimated_stepping_batches
        if self.sync_total_steps and isinstance(total, int | float) and math.isfinite(total):
            sched.total_steps = max(1, int(total))
        self._step_losses.clear()

    # --- feeding ------------------------------------------------------------------------

    def on_before_backward(self, trainer: Any, pl_module: Any, loss: torch.Tensor) -> None:
        # Lightning divides the loss by accumulate_grad_batches before backward.
        self._step_losses.append(loss.detach() * trainer.accumulate_grad_batches)

    def on_before_optimizer_step(self, trainer: Any, pl_module: Any, optimizer: Any) -> None:
        # Before the optimizer and scheduler steps: the step's (mean micro-batch) loss.
        self._flush_step_loss()

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        if trainer.sanity_checking and not self._full_sanity_check(trainer):
            return
        if self.scheduler is None:  # sanity check runs before on_fit_start... resolve now
            if not trainer.lr_scheduler_configs:
                return
            self._resolve(trainer)
        self._feed_eval(
            trainer.callback_metrics,
            self.val_loss,
            "among the logged metrics",
            f'log it in validation_step, e.g. self.log("{self.val_loss}", loss); ',
        )

    @staticmethod
    def _full_sanity_check(trainer: Any) -> bool:
        """Whether the sanity check covered every validation batch."""
        sanity, full = trainer.num_sanity_val_batches, trainer.num_val_batches
        return bool(full) and all(s >= f for s, f in zip(sanity, full, strict=False))
