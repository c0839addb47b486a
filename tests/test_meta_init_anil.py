"""ANIL, the momentum inner loop, meta-val fine-tuning tasks and the calibrated target
(issue 28's CIFAR-10 protocol), on scikit-learn's digits and tiny synthetic tensors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from lrgym.harness.finetune import FinetuneSpec, calibrate_target, finetune
from lrgym.meta_init import make_family
from lrgym.meta_init.algorithms import MetaInitConfig, _Functional, meta_train
from lrgym.meta_init.anil import adapt_heads, anil_step, split_params
from lrgym.meta_init.models import MLP
from lrgym.meta_init.tasks import meta_test_task, task_id

pytestmark = pytest.mark.usefixtures("forget_tasks")  # meta-test tasks and groups


def _sgd_reference(model: torch.nn.Module, x, y, steps: int, lr: float, momentum: float):
    """``steps`` of torch's own SGD on ``model`` (the reference the inner loops must match)."""
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return {k: p.detach() for k, p in model.named_parameters()}


def test_inner_loop_with_momentum_is_torch_sgd():
    torch.manual_seed(0)
    model = MLP(4, (8,), 3)
    x, y = torch.randn(12, 4), torch.randint(0, 3, (12,))
    params = {k: p.detach().clone() for k, p in model.named_parameters()}
    adapted = _Functional(model, 4, 0.05, momentum=0.9).adapt(params, x, y)
    expected = _sgd_reference(model, x, y, 4, 0.05, 0.9)
    for k in expected:
        torch.testing.assert_close(adapted[k], expected[k])


def test_anil_head_steps_are_torch_sgd_on_the_head_per_task():
    torch.manual_seed(1)
    feats, y = torch.randn(3, 10, 5), torch.randint(0, 2, (3, 10))
    head = torch.nn.Linear(5, 2)
    w, b = adapt_heads(
        feats, y, head.weight.detach(), head.bias.detach(), 3, 0.1, 0.9, create_graph=False
    )
    for t in range(3):  # each task's head is stepped on that task's examples only
        ref = torch.nn.Linear(5, 2)
        ref.load_state_dict(head.state_dict())
        expected = _sgd_reference(ref, feats[t], y[t], 3, 0.1, 0.9)
        torch.testing.assert_close(w[t], expected["weight"])
        torch.testing.assert_close(b[t], expected["bias"])


def test_anil_meta_gradient_reaches_the_body_through_the_head_steps():
    fam = make_family("digits")
    torch.manual_seed(0)
    model = MLP(64, (16,), 2)
    params = {k: p.detach().clone().requires_grad_() for k, p in model.named_parameters()}
    rng = np.random.default_rng(0)
    episodes = [fam.sample_episode("meta-train", rng) for _ in range(3)]
    loss = anil_step(model.get_submodule("body"), params, episodes, 2, 0.1, 0.9)
    loss.backward()
    body_grad = params["body.1.weight"].grad
    assert body_grad is not None and body_grad.abs().sum() > 0
    with pytest.raises(ValueError, match="body and a head"):
        split_params({"encoder.weight": torch.zeros(1)})


def test_anil_outer_steps_lower_the_query_loss_after_head_adaptation():
    fam = make_family("digits")
    torch.manual_seed(0)
    model = MLP(64, (32,), 2)
    params = {k: torch.nn.Parameter(p.detach().clone()) for k, p in model.named_parameters()}
    body = model.get_submodule("body")
    rng = np.random.default_rng(0)
    fixed = [fam.sample_episode("meta-train", rng) for _ in range(8)]
    opt = torch.optim.Adam(params.values(), lr=1e-2)
    before = anil_step(body, params, fixed, 3, 0.1).item()
    for _ in range(25):
        opt.zero_grad()  # trained on fresh tasks, measured on the fixed ones
        tasks = [fam.sample_episode("meta-train", rng) for _ in range(4)]
        anil_step(body, params, tasks, 3, 0.1).backward()
        opt.step()
    assert anil_step(body, params, fixed, 3, 0.1).item() < 0.8 * before


def test_anil_keeps_a_zero_head_when_labels_are_drawn_per_task():
    fam = make_family("digits")  # permute_labels: no head init can favour a class
    config = MetaInitConfig(algorithm="anil", meta_iterations=3, meta_batch=2, val_every=1)
    result = meta_train(fam, config)
    assert torch.count_nonzero(result.state["head.weight"]) == 0
    assert torch.count_nonzero(result.state["head.bias"]) == 0
    assert [i for i, _ in result.val_history] == [0, 1, 2, 3]


def test_inner_momentum_is_validated():
    with pytest.raises(ValueError, match="inner_momentum must be in"):
        MetaInitConfig(inner_momentum=1.0)
    assert MetaInitConfig(inner_momentum=0.9).to_json()["inner_momentum"] == 0.9


def test_calibrated_target_is_reached_by_the_asked_share_of_runs():
    finals = [0.70, 0.655, 0.61, 0.72, 0.66, 0.69, 0.58, 0.68, 0.671, 0.64]
    target = calibrate_target(finals, 0.8)
    assert target == 0.64  # 8 of 10 end at or above 0.64; anything higher leaves 7
    assert np.mean(np.asarray(finals) >= target) >= 0.8
    assert calibrate_target(finals + [math.nan], 0.8) == target
    assert calibrate_target([0.5, 0.6], 1.0) == 0.5
    with pytest.raises(ValueError, match="at least one finite"):
        calibrate_target([math.nan])
    with pytest.raises(ValueError, match="reach must be"):
        calibrate_target([0.5], 0)


def test_meta_val_fine_tuning_tasks_come_from_the_meta_val_pool():
    fam = make_family("digits")
    val_classes = set(fam.pools()["meta-val"].classes)
    for i in range(5):
        _, episode = fam.meta_test_task(i, "meta-val")
        assert set(episode.classes) <= val_classes
    with pytest.raises(ValueError, match="'meta-test' or 'meta-val'"):
        fam.meta_test_task(0, "meta-train")
    task = meta_test_task("digits", 0, split="meta-val")
    assert "meta-val task 0" in task.info.data
    runs = finetune(FinetuneSpec("digits", {"random": None}, tasks=2, split="meta-val"))
    assert len(runs) == 2 and runs["final_val_accuracy"].between(0, 1).all()
    assert task_id("digits", 1, split="meta-val") == "meta-init/digits.meta-val-1-v0"


def test_cifar10_target_is_an_option_read_as_a_number():
    fam = make_family("cifar10", data="unread-until-used.npz", target="0.66")
    assert fam.settings.target == 0.66
    with pytest.raises(ValueError, match="target must be a number"):
        make_family("cifar10", data="x.npz", target="high")
    with pytest.raises(ValueError, match="0 < target <= 1"):
        make_family("cifar10", data="x.npz", target=1.5)


def test_cli_meta_init_anil_with_a_momentum_inner_loop(tmp_path):
    from typer.testing import CliRunner

    import lrgym
    from lrgym.cli import app

    out = tmp_path / "anil"
    args = [
        "meta-init", "--family", "digits", "--algorithm", "anil", "--out", str(out),
        "--meta-iterations", "3", "--meta-batch", "2", "--inner-steps", "2", "--inner-lr",
        "0.01", "--inner-momentum", "0.9", "--val-every", "3", "--val-tasks", "2",
        "--eval-tasks", "0",
    ]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    card = json.loads((out / "card.json").read_text())
    assert card["algorithm"] == "anil" and card["config"]["inner_momentum"] == 0.9
    model = lrgym.load_init(out)
    assert torch.count_nonzero(model.state_dict()["head.weight"]) == 0
    bad = CliRunner().invoke(app, [*args[:-2], "--inner-momentum", "1.5", "--overwrite"])
    assert bad.exit_code == 2 and "inner-momentum" in bad.output
