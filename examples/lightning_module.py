"""The learned scheduler inside PyTorch Lightning (``pip install 'lrgym[lightning]'``).

A small MLP on scikit-learn's bundled digits (offline), 300 optimizer steps on CPU.
``configure_optimizers`` returns the ``PolicyScheduler`` with ``interval="step"``, so
Lightning steps it and checkpoints it; ``LightningPolicyCallback`` feeds it each step's
loss and every validation's ``val_loss``/``val_acc``. With ``eval_feedback=True`` the
agent decides after each validation, every 20 steps, as it did in meta-training. Run:

    python examples/lightning_module.py
"""

import lightning.pytorch as L
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import lrgym
from lrgym.integrations.lightning_callback import LightningPolicyCallback

STEPS, K = 300, 20


class DigitsMLP(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.cross_entropy(self.net(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self.net(x)
        self.log("val_loss", nn.functional.cross_entropy(logits, y))
        self.log("val_acc", (logits.argmax(1) == y).float().mean())

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(self.parameters(), lr=1e-3)
        scheduler = lrgym.PolicyScheduler(
            optimizer, agent="default", decision_interval=K, eval_feedback=True
        )  # total_steps: the callback takes the trainer's estimated_stepping_batches
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }


class PrintDecisions(L.Callback):
    def on_validation_end(self, trainer, pl_module):
        if not trainer.sanity_checking:
            lr = trainer.optimizers[0].param_groups[0]["lr"]
            acc = float(trainer.callback_metrics["val_acc"])
            print(f"step {trainer.global_step:4d}  lr {lr:.2e}  val acc {acc:.3f}")


def main() -> None:
    torch.set_num_threads(1)  # a tiny model: one thread is fastest
    L.seed_everything(0, verbose=False)
    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x / 16.0, dtype=torch.float32)
    x_train, x_val, y_train, y_val = train_test_split(
        x, torch.tensor(y), test_size=0.3, random_state=0
    )
    train = DataLoader(TensorDataset(x_train, y_train), batch_size=32, shuffle=True)
    val = DataLoader(TensorDataset(x_val, y_val), batch_size=len(y_val))
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=STEPS,
        val_check_interval=K,  # validate where the agent decides ...
        check_val_every_n_epoch=None,
        num_sanity_val_steps=-1,  # ... and fully once before training, for its first decision
        callbacks=[PrintDecisions(), LightningPolicyCallback(metric="val_acc")],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(DigitsMLP(), train, val)
    print(f"final validation accuracy: {float(trainer.callback_metrics['val_acc']):.3f}")


if __name__ == "__main__":
    main()
