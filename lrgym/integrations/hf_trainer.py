"""The learned scheduler inside the Hugging Face ``Trainer``.

Pass a :class:`~lrgym.PolicyScheduler` to the Trainer as its scheduler and add
:class:`HFPolicyCallback`, which feeds it each step's training loss and every
evaluation's loss and metric::

    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    scheduler = lrgym.PolicyScheduler(optimizer, agent="default", decision_interval=25)
    trainer = Trainer(
        model, args, train_dataset=train, eval_dataset=val, compute_metrics=accuracy,
        optimizers=(optimizer, scheduler),
        callbacks=[HFPolicyCallback(metric="eval_accuracy")],
    )

How it lines up with the Trainer's loop: after every optimizer step the Trainer calls
``scheduler.step()`` (no arguments), then ``on_step_end``, and only then logs, evaluates
and saves. The loss it logs is an average over ``logging_steps`` and arrives after the
scheduler has stepped, so feeding the logged loss would hand every decision its window's
losses one step late. The callback instead hooks the model's forward pass, keeps the loss
of each training forward (each gradient-accumulation micro-batch), and in
``on_optimizer_step``, which runs after ``optimizer.step()`` and before
``scheduler.step()``, feeds their mean: each decision sees exactly the losses of its
window, as in a plain loop. The LR the Trainer logs is read between those two calls, so it
is the LR the optimizer used for that step.

Checkpoints need nothing extra: the Trainer saves ``scheduler.state_dict()`` (numbers,
lists and tensors) as ``scheduler.pt`` and reloads it with
``torch.load(weights_only=True)``; the callback keeps no state across optimizer steps,
and a checkpoint is taken between them. A run resumed with
``trainer.train(resume_from_checkpoint=...)`` takes the LRs of the uninterrupted run.

The gradient norm is read by the scheduler from the parameters when it decides, i.e.
after the Trainer's gradient clipping (``max_grad_norm``, 1.0 by default).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from lrgym.deploy.scheduler import PolicyScheduler
from lrgym.integrations._feed import PolicyFeed
from lrgym.integrations._require import require

transformers = require("transformers", "hf", __name__)
TrainerCallback = transformers.TrainerCallback


def _output_loss(output: Any) -> torch.Tensor | None:
    """The loss in a model output: ``output["loss"]``, a tuple's 0-d first item, a 0-d tensor."""
    if isinstance(output, Mapping):
        loss = output.get("loss")
    elif isinstance(output, tuple | list) and output:
        loss = output[0]
        if not (isinstance(loss, torch.Tensor) and loss.ndim == 0):
            return None
    else:
        loss = output
    if isinstance(loss, torch.Tensor) and loss.numel() == 1:
        return loss.detach().reshape(())
    return None


class HFPolicyCallback(PolicyFeed, TrainerCallback):
    """Feeds a :class:`~lrgym.PolicyScheduler` inside a Hugging Face ``Trainer``.

    Args:
        scheduler: The scheduler; by default the one passed as
            ``Trainer(optimizers=(optimizer, scheduler))``.
        metric: Key of a higher-is-better evaluation metric to feed as the validation
            metric (e.g. ``"eval_accuracy"``, from your ``compute_metrics``); None feeds
            the validation loss only.
        loss_key: Key of the validation loss in the evaluation metrics.
        sync_total_steps: Set ``scheduler.total_steps`` to the Trainer's ``max_steps``
            when training begins (the agent sees progress through the run).

    With ``PolicyScheduler(..., eval_feedback=True)`` every decision waits for an
    evaluation, exactly as in meta-training; the callback then checks that the Trainer
    evaluates every ``decision_interval`` steps and once before training
    (``eval_strategy="steps"``, ``eval_steps=decision_interval``, ``eval_on_start=True``).
    With the default ``eval_feedback=False`` decisions happen in ``scheduler.step()`` and
    use the latest evaluation, whenever it ran.

    If the model's output carries no loss (a custom ``compute_loss`` or
    ``compute_loss_func``), the callback falls back to the loss the Trainer logs (one
    value per ``logging_steps``, arriving one step late) and warns once.
    """

    def __init__(
        self,
        scheduler: PolicyScheduler | None = None,
        metric: str | None = None,
        loss_key: str = "eval_loss",
        sync_total_steps: bool = True,
    ) -> None:
        self.scheduler = scheduler
        self.metric = metric
        self.loss_key = loss_key
        self.sync_total_steps = sync_total_steps
        self._hook: Any = None
        self._saw_model_loss = False
        self._init_feed()

    # --- wiring ---------------------------------------------------------------------

    def _capture(self, module: torch.nn.Module, args: Any, output: Any) -> None:
        if module.training and torch.is_grad_enabled():
            loss = _output_loss(output)
            if loss is not None:
                self._step_losses.append(loss)
                self._saw_model_loss = True

    def on_train_begin(self, args, state, control, model=None, lr_scheduler=None, **kwargs):
        sched = self.scheduler if self.scheduler is not None else lr_scheduler
        if not isinstance(sched, PolicyScheduler):
            raise TypeError(
                "HFPolicyCallback drives an lrgym.PolicyScheduler, but the Trainer's scheduler "
                f"is {type(sched).__name__}. Pass it to the Trainer: "
                "Trainer(..., optimizers=(optimizer, PolicyScheduler(optimizer, ...)))"
            )
        self.scheduler = sched
        if self.sync_total_steps and state.max_steps > 0:
            sched.total_steps = int(state.max_steps)
        if sched.eval_feedback:
            self._check_eval_feedback(args, state, sched)
        if self._hook is not None:
            self._hook.remove()
        self._hook = model.register_forward_hook(self._capture) if model is not None else None
        self._step_losses.clear()

    @staticmethod
    def _check_eval_feedback(args: Any, state: Any, sched: PolicyScheduler) -> None:
        wrong = []
        if str(getattr(args.eval_strategy, "value", args.eval_strategy)) != "steps":
            wrong.append(f'eval_strategy="steps" (is {args.eval_strategy!r})')
        elif state.eval_steps != sched.decision_interval:
            wrong.append(f"eval_steps={sched.decision_interval} (is {state.eval_steps})")
        if sched.decisions == 0 and not args.eval_on_start:
            wrong.append("eval_on_start=True (the first decision waits for an evaluation)")
        if wrong:
            raise ValueError(
                "PolicyScheduler(eval_feedback=True) decides after each evaluation, every "
                f"decision_interval={sched.decision_interval} steps; set in TrainingArguments: "
                + ", ".join(wrong)
                + ". Or use eval_feedback=False to decide every decision_interval steps with "
                "the latest evaluation."
            )

    def on_train_end(self, args, state, control, **kwargs):
        if self._hook is not None:
            self._hook.remove()
            self._hook = None

    # --- feeding ------------------------------------------------------------------------

    def on_optimizer_step(self, args, state, control, **kwargs):
        # After optimizer.step(), before the Trainer's scheduler.step(): the step's loss.
        self._flush_step_loss()

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self._saw_model_loss or self.scheduler is None or not logs or "loss" not in logs:
            return
        self._warn_once(
            "fallback",
            "HFPolicyCallback: the model's output has no 'loss', so the scheduler gets the "
            "loss the Trainer logs (every logging_steps, one step late). Return the loss "
            "from the model's forward to feed every step's loss on time.",
        )
        self.scheduler.observe_loss(float(logs["loss"]))

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if self.scheduler is None or not metrics:
            return
        self._feed_eval(metrics, self.loss_key, "in the evaluation metrics")
