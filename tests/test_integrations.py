"""The learned scheduler inside the HF Trainer, PyTorch Lightning and XGBoost.

Each framework owns its loop, so each check is about what the framework actually did:
the learning rate its optimizer used at every step (read just before ``optimizer.step``)
must be the scheduler's decision for that step, the losses must reach the scheduler
before the step that decides on them (a one-step lag would be invisible otherwise, so a
NaN placed on a window's last step must hold exactly that window's decision), state must
survive the framework's own checkpoint and resume, and a NaN loss must not stop the run.
Synthetic NumPy-policy agents (from ``test_policy_scheduler``) make the expected LRs exact.
"""

from __future__ import annotations

import importlib
import math
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from synthetic_agents import linear_tanh, synthetic_card
from test_policy_scheduler import Recording, constant_agent
from torch import nn

import lrgym
from lrgym.core.actions import LogLRAction
from lrgym.core.signals import FEATURES

VAL_METRIC = FEATURES.index("val_metric")

GEN = torch.Generator().manual_seed(0)
X = torch.randn(256, 4, generator=GEN)
Y = (X @ torch.tensor([1.0, -2.0, 0.5, 0.0]) > 0).long()


def expected_lrs(lr0: float, action: float, k: int, steps: int, held=(), first=True) -> list[float]:
    """LR used at steps 1..steps by a constant agent deciding every ``k`` steps.

    ``first``: a decision before step 1; ``held``: decision numbers (1 = after step k)
    that hold the LR because their window had a NaN loss.
    """
    apply = LogLRAction(max_log2_step=1.0, min_lr=1e-7, max_lr=10.0).apply
    lr = apply(lr0, action) if first else lr0
    out = []
    for t in range(1, steps + 1):
        out.append(lr)
        if t % k == 0 and t // k not in held:
            lr = apply(lr, action)
    return out


def every_feature_agent() -> Recording:
    """Sensitive to every feature, the update-size window's included."""
    w = 0.3 * torch.randn(len(FEATURES), 1, generator=torch.Generator().manual_seed(1))
    assert bool((w != 0).all())
    return Recording(Path("synthetic"), synthetic_card(), linear_tanh(w))


def spy(sched: lrgym.PolicyScheduler) -> list[tuple[str, float]]:
    """Record, in order, every loss fed to ``sched`` and every ``step()`` it takes."""
    events: list[tuple[str, float]] = []
    observe, step = sched.observe_loss, sched.step

    def observe_loss(loss):
        events.append(("loss", float(loss)))
        observe(loss)

    def stepped(epoch=None, loss=None):
        assert epoch is None, "the integrations pass the loss as a keyword"
        events.append(("step", math.nan if loss is None else float(loss)))
        step(loss=loss)

    sched.observe_loss, sched.step = observe_loss, stepped
    return events


class Classifier(nn.Module):
    """Tiny model returning ``{"loss", "logits"}``; adds NaN to chosen training losses.

    The NaN is added to the loss value only (a constant), so gradients stay finite and
    the run itself is unharmed: what is tested is how the scheduler treats the loss.
    """

    def __init__(self, nan_at=()) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.linear = nn.Linear(4, 2)
        self.nan_at = set(nan_at)
        self.forwards = 0
        self.losses: list[float] = []

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> dict:
        logits = self.linear(x)
        out = {"logits": logits}
        if labels is not None:
            loss = nn.functional.cross_entropy(logits, labels)
            if self.training:
                self.forwards += 1
                if self.forwards in self.nan_at:
                    loss = loss + torch.tensor(math.nan)
                self.losses.append(loss.item())
            out["loss"] = loss
        return out


# --- Hugging Face Trainer -----------------------------------------------------------------

try:
    import transformers

    from lrgym.integrations.hf_trainer import HFPolicyCallback
except ImportError:  # the [hf] extra is not installed
    transformers = None
needs_hf = pytest.mark.skipif(transformers is None, reason="needs pip install 'lrgym[hf]'")


class Pairs(torch.utils.data.Dataset):
    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"x": self.x[i], "labels": self.y[i]}


class LRsUsed(transformers.TrainerCallback if transformers else object):
    """The LR the optimizer is about to step with, once per optimizer step."""

    def __init__(self) -> None:
        self.lrs: list[float] = []

    def on_pre_optimizer_step(self, args, state, control, optimizer=None, **kwargs):
        self.lrs.append(optimizer.param_groups[0]["lr"])


def accuracy(pred) -> dict[str, float]:
    return {"accuracy": float((pred.predictions.argmax(-1) == pred.label_ids).mean())}


def hf_trainer(tmp_path, model, sched, callbacks, trainer_kwargs=None, **kwargs):
    args = {
        "output_dir": str(tmp_path),
        "max_steps": 20,
        "per_device_train_batch_size": 16,
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": [],
        "use_cpu": True,
        "disable_tqdm": True,
        "seed": 0,
        **kwargs,
    }
    return transformers.Trainer(
        model,
        transformers.TrainingArguments(**args),
        train_dataset=Pairs(X[:192], Y[:192]),
        eval_dataset=Pairs(X[192:], Y[192:]),
        compute_metrics=accuracy,
        optimizers=(sched.optimizer, sched),
        callbacks=callbacks,
        **(trainer_kwargs or {}),
    )


@needs_hf
@pytest.mark.parametrize("accumulation", [1, 2])
def test_hf_lr_used_each_step_is_the_decision_and_losses_come_first(tmp_path, accumulation):
    model = Classifier()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    sched = lrgym.PolicyScheduler(opt, constant_agent(0.5), decision_interval=4)
    events = spy(sched)
    used = LRsUsed()
    trainer = hf_trainer(
        tmp_path, model, sched, [HFPolicyCallback(), used], gradient_accumulation_steps=accumulation
    )
    trainer.train()

    assert used.lrs == expected_lrs(0.01, 0.5, 4, 20)
    logged = [h["learning_rate"] for h in trainer.state.log_history if "learning_rate" in h]
    assert logged == used.lrs  # what the Trainer logs is what the optimizer used
    assert sched.total_steps == 20 and sched.steps_done == 20 and sched.decisions == 1 + 5
    # every step: its loss (mean over micro-batches) first, then the Trainer's step()
    assert [kind for kind, _ in events] == ["loss", "step"] * 20
    step_losses = np.reshape(model.losses, (20, accumulation)).mean(axis=1)
    np.testing.assert_allclose([v for kind, v in events if kind == "loss"], step_losses, rtol=1e-6)


@needs_hf
def test_hf_nan_loss_holds_that_windows_decision_and_run_finishes(tmp_path):
    # window 2 (steps 5-8) all NaN: held; one NaN in window 3 (step 10): decides on the rest
    model = Classifier(nan_at={5, 6, 7, 8, 10, 17, 18, 19, 20})
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    sched = lrgym.PolicyScheduler(opt, constant_agent(0.5), decision_interval=4)
    used = LRsUsed()
    trainer = hf_trainer(tmp_path, model, sched, [HFPolicyCallback(), used])
    trainer.train()
    assert trainer.state.global_step == 20
    assert used.lrs == expected_lrs(0.01, 0.5, 4, 20, held={2})  # not 3: no lag
    assert sched.get_last_lr() == [opt.param_groups[0]["lr"]]
    assert math.isfinite(opt.param_groups[0]["lr"])


@needs_hf
def test_hf_eval_feedback_decides_after_each_evaluation(tmp_path):
    agent = constant_agent(-0.5)
    model = Classifier()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    sched = lrgym.PolicyScheduler(opt, agent, decision_interval=4, eval_feedback=True)
    assert sched.decisions == 0
    used = LRsUsed()
    trainer = hf_trainer(
        tmp_path,
        model,
        sched,
        [HFPolicyCallback(metric="eval_accuracy"), used],
        eval_strategy="steps",
        eval_steps=4,
        eval_on_start=True,
    )
    trainer.train()
    assert used.lrs == expected_lrs(0.01, -0.5, 4, 20)
    evals = [h["eval_accuracy"] for h in trainer.state.log_history if "eval_accuracy" in h]
    assert len(evals) == len(agent.seen) == 1 + 5  # on start, then every 4 steps
    np.testing.assert_allclose([o[VAL_METRIC] for o in agent.seen], evals, rtol=1e-6)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"eval_strategy": "no"}, 'eval_strategy="steps"'),
        ({"eval_strategy": "steps", "eval_steps": 5, "eval_on_start": True}, "eval_steps=4"),
        ({"eval_strategy": "steps", "eval_steps": 4}, "eval_on_start=True"),
    ],
)
@needs_hf
def test_hf_eval_feedback_misconfiguration_is_a_clear_error(tmp_path, kwargs, message):
    model = Classifier()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    sched = lrgym.PolicyScheduler(opt, constant_agent(0.5), decision_interval=4, eval_feedback=True)
    trainer = hf_trainer(tmp_path, model, sched, [HFPolicyCallback()], **kwargs)
    with pytest.raises(ValueError, match=message):
        trainer.train()


@needs_hf
@pytest.mark.parametrize("cut", [8, 10], ids=["at-decision", "mid-window"])
def test_hf_resume_from_checkpoint_continues_the_same_lr_trajectory(tmp_path, cut):
    def run(out: Path, resume: Path | None = None):
        model = Classifier()
        opt = torch.optim.AdamW(model.parameters(), lr=0.01)
        sched = lrgym.PolicyScheduler(opt, every_feature_agent(), decision_interval=4)
        used = LRsUsed()
        trainer = hf_trainer(
            out,
            model,
            sched,
            [HFPolicyCallback(), used],
            max_steps=24,
            save_strategy="steps",
            save_steps=cut,
        )
        trainer.train(resume_from_checkpoint=str(resume) if resume else None)
        return used.lrs, sched

    reference, _ = run(tmp_path / "a")
    checkpoint = tmp_path / "a" / f"checkpoint-{cut}"
    saved = torch.load(checkpoint / "scheduler.pt", weights_only=True)  # as the Trainer loads it
    assert saved["last_epoch"] == cut and len(saved["losses"]) == cut % 4

    resumed, sched = run(tmp_path / "b", resume=checkpoint)
    assert len(resumed) == 24 - cut
    assert len(set(reference[cut:])) > 2, "the agent never moved the LR: the test would be vacuous"
    assert resumed == reference[cut:]
    assert sched.steps_done == 24 and sched.decisions == 1 + 24 // 4


@needs_hf
def test_hf_callback_needs_a_policy_scheduler(tmp_path):
    model = Classifier()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    other = torch.optim.lr_scheduler.StepLR(opt, 5)
    trainer = transformers.Trainer(
        model,
        transformers.TrainingArguments(
            str(tmp_path), max_steps=2, report_to=[], use_cpu=True, save_strategy="no"
        ),
        train_dataset=Pairs(X, Y),
        optimizers=(opt, other),
        callbacks=[HFPolicyCallback()],
    )
    with pytest.raises(TypeError, match="PolicyScheduler"):
        trainer.train()


@needs_hf
def test_hf_model_without_loss_output_falls_back_to_logged_loss(tmp_path):
    class LogitsOnly(Classifier):
        def forward(self, x, labels=None):
            return {"logits": self.linear(x)}

    def cross_entropy(outputs, labels, num_items_in_batch=None):
        return nn.functional.cross_entropy(outputs["logits"], labels)

    model = LogitsOnly()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    sched = lrgym.PolicyScheduler(opt, constant_agent(0.5), decision_interval=4)
    events = spy(sched)
    trainer = hf_trainer(
        tmp_path,
        model,
        sched,
        [HFPolicyCallback()],
        max_steps=8,
        trainer_kwargs={"compute_loss_func": cross_entropy},
    )
    with pytest.warns(RuntimeWarning, match="no 'loss'"):
        trainer.train()
    assert [kind for kind, _ in events].count("loss") == 8
    assert sched.decisions == 1 + 2


# --- PyTorch Lightning --------------------------------------------------------------------

try:
    import lightning.pytorch as pl

    from lrgym.integrations.lightning_callback import LightningPolicyCallback
except ImportError:  # the [lightning] extra is not installed
    pl = None
needs_lightning = pytest.mark.skipif(pl is None, reason="needs pip install 'lrgym[lightning]'")


class LitClassifier(pl.LightningModule if pl else nn.Module):
    def __init__(self, make_scheduler, nan_at=()) -> None:
        super().__init__()
        self.model = Classifier(nan_at)
        self.make_scheduler = make_scheduler
        self.scheduler: lrgym.PolicyScheduler | None = None

    def training_step(self, batch, batch_idx):
        x, y = batch
        return self.model(x, y)["loss"]

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self.model(x)["logits"]
        self.log("val_loss", nn.functional.cross_entropy(logits, y))
        self.log("val_acc", (logits.argmax(1) == y).float().mean())

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.parameters(), lr=0.01)
        self.scheduler = self.make_scheduler(opt)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": self.scheduler, "interval": "step"}}


class LitLRsUsed(pl.Callback if pl else object):
    def __init__(self) -> None:
        self.lrs: list[float] = []

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        self.lrs.append(optimizer.param_groups[0]["lr"])


def loaders(batch: int = 16, val_batch: int = 64):
    train = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(X[:192], Y[:192]), batch_size=batch
    )
    val = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(X[192:], Y[192:]), batch_size=val_batch
    )
    return train, val


def lit_trainer(callbacks, **kwargs):
    args = {
        "accelerator": "cpu",
        "max_steps": 20,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "num_sanity_val_steps": 0,
        "limit_val_batches": 0,
        **kwargs,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # GPU/TPU availability, litlogger tips ...
        return pl.Trainer(callbacks=callbacks, **args)


def quiet_fit(trainer, module, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*does not have many workers.*")
        warnings.filterwarnings("ignore", ".*LeafSpec.*")
        warnings.filterwarnings("ignore", ".*no `val_dataloader`.*")
        warnings.filterwarnings("ignore", ".*exists and is not empty.*")
        trainer.fit(module, *args, **kwargs)


@needs_lightning
@pytest.mark.parametrize("accumulation", [1, 2])
def test_lightning_lr_used_each_step_is_the_decision_and_losses_come_first(accumulation):
    events: list = []

    def make(opt):
        sched = lrgym.PolicyScheduler(opt, constant_agent(0.5), decision_interval=4)
        events.append(spy(sched))
        return sched

    module, used = LitClassifier(make), LitLRsUsed()
    trainer = lit_trainer([LightningPolicyCallback(), used], accumulate_grad_batches=accumulation)
    quiet_fit(trainer, module, loaders()[0])

    assert used.lrs == expected_lrs(0.01, 0.5, 4, 20)
    sched = module.scheduler
    assert sched.total_steps == 20 and sched.steps_done == 20 and sched.decisions == 1 + 5
    assert [kind for kind, _ in events[0]] == ["loss", "step"] * 20
    step_losses = np.reshape(module.model.losses, (20, accumulation)).mean(axis=1)
    np.testing.assert_allclose(
        [v for kind, v in events[0] if kind == "loss"], step_losses, rtol=1e-6
    )


@needs_lightning
def test_lightning_nan_loss_holds_that_windows_decision_and_run_finishes():
    module = LitClassifier(
        lambda opt: lrgym.PolicyScheduler(opt, constant_agent(0.5), decision_interval=4),
        nan_at={5, 6, 7, 8, 10, 17, 18, 19, 20},  # as in the HF test above
    )
    used = LitLRsUsed()
    trainer = lit_trainer([LightningPolicyCallback(), used])
    quiet_fit(trainer, module, loaders()[0])
    assert trainer.global_step == 20
    assert used.lrs == expected_lrs(0.01, 0.5, 4, 20, held={2})


@needs_lightning
def test_lightning_eval_feedback_uses_each_validation_and_a_full_sanity_pass():
    agent = constant_agent(-0.5)
    module = LitClassifier(
        lambda opt: lrgym.PolicyScheduler(opt, agent, decision_interval=4, eval_feedback=True)
    )
    used = LitLRsUsed()

    class ValAccs(pl.Callback):
        def __init__(self) -> None:
            self.accs: list[float] = []

        def on_validation_end(self, trainer, pl_module):
            self.accs.append(float(trainer.callback_metrics["val_acc"]))

    accs = ValAccs()
    trainer = lit_trainer(
        [accs, LightningPolicyCallback(metric="val_acc"), used],
        val_check_interval=4,
        check_val_every_n_epoch=None,
        num_sanity_val_steps=-1,
        limit_val_batches=None,
    )
    quiet_fit(trainer, module, *loaders())
    assert used.lrs == expected_lrs(0.01, -0.5, 4, 20)
    assert len(accs.accs) == len(agent.seen) == 1 + 5  # the full sanity pass, then every 4
    np.testing.assert_allclose([o[VAL_METRIC] for o in agent.seen], accs.accs, rtol=1e-6)


@needs_lightning
def test_lightning_partial_sanity_check_is_not_fed():
    evals: list[float] = []

    def make(opt):
        sched = lrgym.PolicyScheduler(opt, constant_agent(0.5), decision_interval=4)
        observe = sched.observe_eval
        sched.observe_eval = lambda loss, metric=None: (evals.append(loss), observe(loss, metric))
        return sched

    trainer = lit_trainer(
        [LightningPolicyCallback()],
        val_check_interval=10,
        check_val_every_n_epoch=None,
        num_sanity_val_steps=1,  # one of 4 validation batches
        limit_val_batches=None,
    )
    quiet_fit(trainer, LitClassifier(make), *loaders(val_batch=16))
    assert len(evals) == 2  # after steps 10 and 20, not the sanity check


@needs_lightning
def test_lightning_resume_from_checkpoint_continues_the_same_lr_trajectory(tmp_path):
    """Saved at step 12, the end of an epoch (a plain DataLoader cannot resume mid-epoch)
    and mid-window for k=5."""

    def run(resume: Path | None = None):
        module = LitClassifier(
            lambda opt: lrgym.PolicyScheduler(opt, every_feature_agent(), decision_interval=5)
        )
        used = LitLRsUsed()
        checkpoints = pl.callbacks.ModelCheckpoint(
            dirpath=tmp_path, filename="{step}", every_n_train_steps=12, save_top_k=-1
        )
        trainer = lit_trainer(
            [LightningPolicyCallback(), used, checkpoints],
            max_steps=30,
            enable_checkpointing=True,
        )
        quiet_fit(trainer, module, loaders()[0], ckpt_path=resume)
        return used.lrs, module.scheduler

    reference, _ = run()
    checkpoint = tmp_path / "step=12.ckpt"
    saved = torch.load(checkpoint, weights_only=True)["lr_schedulers"][0]
    assert saved["last_epoch"] == 12 and len(saved["losses"]) == 2
    resumed, sched = run(resume=checkpoint)
    assert len(resumed) == 30 - 12
    assert len(set(reference[12:])) > 2, "the agent never moved the LR: the test would be vacuous"
    assert resumed == reference[12:]
    assert sched.steps_done == 30 and sched.decisions == 1 + 30 // 5


@needs_lightning
def test_lightning_scheduler_must_step_every_step():
    class EpochInterval(LitClassifier):
        def configure_optimizers(self):
            config = super().configure_optimizers()
            config["lr_scheduler"]["interval"] = "epoch"
            return config

    module = EpochInterval(lambda opt: lrgym.PolicyScheduler(opt, constant_agent(0.5)))
    with pytest.raises(ValueError, match='"interval": "step"'):
        quiet_fit(lit_trainer([LightningPolicyCallback()]), module, loaders()[0])


# --- missing extras -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "module, dependency, extra",
    [
        ("lrgym.integrations.hf_trainer", "transformers", "hf"),
        ("lrgym.integrations.lightning_callback", "lightning.pytorch", "lightning"),
    ],
)
def test_missing_extra_names_the_install_command(monkeypatch, module, dependency, extra):
    monkeypatch.setitem(sys.modules, dependency, None)  # makes `import dependency` fail
    monkeypatch.delitem(sys.modules, module)
    with pytest.raises(ImportError, match=rf"pip install 'lrgym\[{extra}\]'"):
        importlib.import_module(module)


# --- XGBoost ------------------------------------------------------------------------------

import xgboost as xgb  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.datasets import load_breast_cancer, load_diabetes  # noqa: E402
from sklearn.metrics import r2_score  # noqa: E402

from lrgym.integrations.xgboost_callback import XGBoostPolicyCallback  # noqa: E402


@pytest.fixture(scope="module")
def cancer():
    x, y = load_breast_cancer(return_X_y=True)
    return x[:400], y[:400], x[400:], y[400:]


PARAMS = {
    "objective": "binary:logistic",
    "eval_metric": ["logloss", "error"],
    "max_depth": 2,
    "subsample": 0.8,
    "seed": 0,
    "nthread": 1,
}


def test_xgb_native_eta_each_round_is_the_decision(cancer):
    x, y, xv, yv = cancer
    dtrain, dval = xgb.DMatrix(x, label=y), xgb.DMatrix(xv, label=yv)
    agent = constant_agent(-0.5)
    callback = XGBoostPolicyCallback(total_rounds=40, agent=agent, decision_interval=10)
    log: dict = {}
    booster = xgb.train(
        {**PARAMS, "eta": 0.2},
        dtrain,
        40,
        evals=[(dtrain, "train"), (dval, "val")],
        callbacks=[callback],
        verbose_eval=False,
        evals_result=log,
    )
    assert callback.etas == pytest.approx(expected_lrs(0.2, -0.5, 10, 40), rel=1e-12)
    assert callback.scheduler.decisions == 1 + 4
    # the agent saw 1 - error on the validation set at each decision
    error = log["val"]["error"][9]  # after round 10
    assert agent.seen[1][VAL_METRIC] == pytest.approx(1 - error, abs=1e-6)

    # Booster-level proof that each eta was used: XGBoost's own schedule with the same
    # etas gives the same trees (its callback sets the *next* round's eta after a round).
    etas = callback.etas
    replay = xgb.train(
        {**PARAMS, "eta": etas[0]},
        dtrain,
        40,
        callbacks=[xgb.callback.LearningRateScheduler(lambda i: etas[min(i + 1, 39)])],
    )
    np.testing.assert_array_equal(booster.predict(dval), replay.predict(dval))
    constant = xgb.train({**PARAMS, "eta": etas[0]}, dtrain, 40)
    assert not np.array_equal(booster.predict(dval), constant.predict(dval))


def test_xgb_sklearn_reads_initial_eta_and_reinitialises_each_fit(cancer):
    x, y, xv, yv = cancer
    callback = XGBoostPolicyCallback(
        total_rounds=30, agent=constant_agent(0.5), decision_interval=10
    )
    model = xgb.XGBClassifier(
        n_estimators=30,
        learning_rate=0.05,
        max_depth=2,
        eval_metric=["logloss", "error"],
        callbacks=[callback],
        n_jobs=1,
        random_state=0,
    )
    model.fit(x, y, eval_set=[(x, y), (xv, yv)], verbose=False)
    first = list(callback.etas)
    assert first == pytest.approx(expected_lrs(0.05, 0.5, 10, 30), rel=1e-12)
    assert callback.loss_key == ("validation_0", "logloss")
    model.fit(x, y, eval_set=[(x, y), (xv, yv)], verbose=False)  # the same callback again
    assert callback.etas == first and len(callback.losses) == 30
    cloned = clone(model).fit(x, y, eval_set=[(x, y), (xv, yv)], verbose=False)
    assert cloned.callbacks[0].etas == first
    np.testing.assert_array_equal(cloned.predict_proba(xv), model.predict_proba(xv))


def test_xgb_regression_feeds_mse_and_a_custom_r2():
    x, y = load_diabetes(return_X_y=True)
    agent = constant_agent(0.0)
    callback = XGBoostPolicyCallback(total_rounds=20, agent=agent, decision_interval=10)
    model = xgb.XGBRegressor(
        n_estimators=20,
        learning_rate=0.1,
        max_depth=2,
        eval_metric=["rmse", r2_score],
        callbacks=[callback],
        n_jobs=1,
    )
    model.fit(x[:300], y[:300], eval_set=[(x[:300], y[:300]), (x[300:], y[300:])], verbose=False)
    rmse = model.evals_result()["validation_0"]["rmse"]
    assert callback.losses == pytest.approx(np.square(rmse), rel=1e-12)  # MSE, as in training
    r2 = model.evals_result()["validation_1"]["r2_score"]
    assert [o[VAL_METRIC] for o in agent.seen[1:]] == pytest.approx([r2[9], r2[19]], abs=1e-6)


def test_xgb_eta_is_capped_at_one_by_default(cancer):
    x, y, xv, yv = cancer
    callback = XGBoostPolicyCallback(
        total_rounds=60, agent=constant_agent(1.0), decision_interval=5
    )
    xgb.XGBClassifier(n_estimators=60, learning_rate=0.3, callbacks=[callback], n_jobs=1).fit(
        x, y, eval_set=[(x, y)], verbose=False
    )
    assert max(callback.etas) == 1.0 and callback.etas[-1] == 1.0


def test_xgb_nan_loss_stops_boosting_without_an_exception(cancer):
    x, y, _, _ = cancer
    dtrain = xgb.DMatrix(x, label=y)
    rounds = iter(range(1, 1000))

    def nan_from_round_12(predt, dmatrix):
        return "nanloss", math.nan if next(rounds) >= 12 else 0.5

    callback = XGBoostPolicyCallback(
        total_rounds=40, agent=constant_agent(0.5), decision_interval=10, loss_metric="nanloss"
    )
    booster = xgb.train(
        {**PARAMS, "eta": 0.1},
        dtrain,
        40,
        evals=[(dtrain, "train")],
        custom_metric=nan_from_round_12,
        callbacks=[callback],
        verbose_eval=False,
    )
    assert booster.num_boosted_rounds() == 12
    assert all(math.isfinite(e) for e in callback.etas)


def test_xgb_without_evals_is_a_clear_error(cancer):
    x, y, _, _ = cancer
    callback = XGBoostPolicyCallback(total_rounds=5, agent=constant_agent(0.5))
    with pytest.raises(ValueError, match="evals="):
        xgb.train(PARAMS, xgb.DMatrix(x, label=y), 5, callbacks=[callback])
