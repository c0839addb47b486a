"""The learned scheduler inside the Hugging Face Trainer (``pip install 'lrgym[hf]'``).

A small MLP on scikit-learn's bundled digits (offline, no downloads), 300 optimizer
steps on CPU. The Trainer steps the ``PolicyScheduler`` after every optimizer step;
``HFPolicyCallback`` feeds it each step's loss and every evaluation. With
``eval_feedback=True`` the agent decides after each evaluation, every 20 steps, exactly
as it did in meta-training. Run:

    python examples/hf_trainer.py
"""

import tempfile

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from transformers import PrinterCallback, Trainer, TrainingArguments

import lrgym
from lrgym.integrations.hf_trainer import HFPolicyCallback

STEPS, K = 300, 20


class Digits(torch.utils.data.Dataset):
    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        self.x, self.y = torch.tensor(x / 16.0, dtype=torch.float32), torch.tensor(y)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"x": self.x[i], "labels": self.y[i]}


class MLP(nn.Module):
    """Any model that returns its loss works; a tiny one keeps the example fast."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> dict:
        logits = self.net(x)
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = nn.functional.cross_entropy(logits, labels)
        return out


def accuracy(pred) -> dict[str, float]:
    return {"accuracy": float((pred.predictions.argmax(-1) == pred.label_ids).mean())}


def main() -> None:
    torch.set_num_threads(1)  # a tiny model: one thread is fastest
    torch.manual_seed(0)
    x, y = load_digits(return_X_y=True)
    x_train, x_val, y_train, y_val = train_test_split(x, y, test_size=0.3, random_state=0)
    model = MLP()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    scheduler = lrgym.PolicyScheduler(
        optimizer, agent="default", decision_interval=K, eval_feedback=True
    )  # total_steps: the callback takes the Trainer's max_steps
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(
            output_dir=out,
            max_steps=STEPS,
            per_device_train_batch_size=32,
            eval_strategy="steps",
            eval_steps=K,  # evaluate where the agent decides ...
            eval_on_start=True,  # ... and once before training, for its first decision
            logging_steps=K,
            save_strategy="no",
            report_to=[],
            use_cpu=True,
            disable_tqdm=True,
            seed=0,
        )
        trainer = Trainer(
            model,
            args,
            train_dataset=Digits(x_train, y_train),
            eval_dataset=Digits(x_val, y_val),
            compute_metrics=accuracy,
            optimizers=(optimizer, scheduler),
            callbacks=[HFPolicyCallback(metric="eval_accuracy")],
        )
        trainer.remove_callback(PrinterCallback)  # this script prints its own summary
        trainer.train()
    lrs = {h["step"]: h["learning_rate"] for h in trainer.state.log_history if "learning_rate" in h}
    evals = [h for h in trainer.state.log_history if "eval_accuracy" in h]
    for h in evals[1:]:
        print(f"step {h['step']:4d}  lr {lrs[h['step']]:.2e}  val acc {h['eval_accuracy']:.3f}")
    print(f"final validation accuracy: {evals[-1]['eval_accuracy']:.3f}")


if __name__ == "__main__":
    main()
