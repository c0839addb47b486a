"""The learned scheduler in a plain PyTorch loop: the lines you add are marked 1-3.

A small MLP on scikit-learn's bundled digits (offline), 400 optimizer steps on CPU; the
shipped agent decides the learning rate every 20 steps. Run:

    python examples/plain_loop.py
"""

import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

import lrgym

STEPS, K, BATCH = 400, 20, 32

torch.set_num_threads(1)  # a tiny model: one thread is fastest
torch.manual_seed(0)
x, y = load_digits(return_X_y=True)
x_train, x_val, y_train, y_val = train_test_split(
    torch.tensor(x / 16.0, dtype=torch.float32), torch.tensor(y), test_size=0.3, random_state=0
)
model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
loss_fn = nn.CrossEntropyLoss()

# 1. create: the agent now owns the optimizer's learning rate
scheduler = lrgym.PolicyScheduler(optimizer, "default", total_steps=STEPS, decision_interval=K)

batches = torch.Generator().manual_seed(0)
for step in range(1, STEPS + 1):
    idx = torch.randint(len(x_train), (BATCH,), generator=batches)
    loss = loss_fn(model(x_train[idx]), y_train[idx])
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if step % K == 0:  # evaluate where the agent decides, before the step that decides
        with torch.no_grad():
            logits = model(x_val)
        val_loss = loss_fn(logits, y_val).item()
        val_acc = (logits.argmax(1) == y_val).float().mean().item()
        scheduler.observe_eval(val_loss, val_acc)  # 3. (optional) feed validation numbers
        print(f"step {step:4d}  lr {optimizer.param_groups[0]['lr']:.2e}  val acc {val_acc:.3f}")
    scheduler.step(loss=loss)  # 2. feed the step's loss and step the scheduler

print(f"final validation accuracy: {val_acc:.3f}")
