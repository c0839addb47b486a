"""Hypergradient descent matches the paper's update rules, step by step.

Scripted gradients drive a torch optimizer with :class:`HypergradientLR` attached, beside an
independent NumPy transcription of SGD-HD / Adam-HD (Baydin et al., ICLR 2018). Both the
LR trace and the parameter trace must agree, which also pins the timing: the LR is updated
*before* each step, from that step's gradient and the previous step's direction.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from lrgym.controllers import make_controller
from lrgym.controllers.hypergradient import HYPER_LR_DEFAULTS, HypergradientLR
from lrgym.core.registration import make_task
from lrgym.harness.compare import RunSpec, grid, run_one

DIM, STEPS, LR0 = 6, 8, 0.05


def scripted_grads(seed: int = 0) -> np.ndarray:
    """Correlated gradients (a drift plus noise), so the hypergradient is not trivial."""
    rng = np.random.default_rng(seed)
    return rng.normal(0.5, 1.0, size=(STEPS, DIM))


def drive(make_opt, grads: np.ndarray, **kwargs):
    """Run the optimizer on scripted gradients; return the LR of every step and θ after it."""
    p = torch.zeros(DIM, dtype=torch.float64, requires_grad=True)
    opt = make_opt([p])
    sched = HypergradientLR(opt, **kwargs)
    lrs, thetas = [], []
    for g in grads:
        p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
        thetas.append(p.detach().numpy().copy())
    return np.array(lrs), np.array(thetas), sched


def sgd_hd_reference(grads, alpha, beta, momentum=0.0, weight_decay=0.0):
    """SGD-HD: α_t = α_{t-1} + β g_t·u_{t-1}; u = g (or torch's momentum buffer)."""
    theta = np.zeros(DIM)
    u_prev, buf = None, None
    lrs, thetas = [], []
    for g in grads:
        g = g + weight_decay * theta
        if u_prev is not None:
            alpha = alpha + beta * float(g @ u_prev)
        buf = g.copy() if buf is None else momentum * buf + g
        u = buf if momentum else g
        theta = theta - alpha * u
        u_prev = u
        lrs.append(alpha)
        thetas.append(theta)
    return np.array(lrs), np.array(thetas)


def adam_hd_reference(grads, alpha, beta, b1=0.9, b2=0.999, eps=1e-8):
    """Adam-HD: α_t = α_{t-1} − β g_t·(−m̂_{t-1}/(√v̂_{t-1}+ε))."""
    theta, m, v = np.zeros(DIM), np.zeros(DIM), np.zeros(DIM)
    u_prev = np.zeros(DIM)
    lrs, thetas = [], []
    for t, g in enumerate(grads, start=1):
        alpha = alpha - beta * float(g @ (-u_prev))
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
        u_prev = m_hat / (np.sqrt(v_hat) + eps)
        theta = theta - alpha * u_prev
        lrs.append(alpha)
        thetas.append(theta)
    return np.array(lrs), np.array(thetas)


WIDE = {"min_lr": 0.0, "max_lr": 100.0}  # bounds out of the way of the exactness tests


def test_sgd_hd_matches_the_paper():
    grads = scripted_grads()
    lrs, thetas, _ = drive(lambda ps: torch.optim.SGD(ps, lr=LR0), grads, hyper_lr=1e-2, **WIDE)
    ref_lrs, ref_thetas = sgd_hd_reference(grads, LR0, 1e-2)
    assert lrs[0] == LR0  # no previous gradient yet
    np.testing.assert_allclose(lrs, ref_lrs, rtol=1e-12)
    np.testing.assert_allclose(thetas, ref_thetas, rtol=1e-12, atol=1e-14)
    assert len(set(np.round(lrs, 12))) == STEPS  # it did adapt, every step


def test_sgd_hd_with_momentum_uses_the_momentum_buffer():
    grads = scripted_grads(1)
    lrs, thetas, _ = drive(
        lambda ps: torch.optim.SGD(ps, lr=LR0, momentum=0.9), grads, hyper_lr=1e-3, **WIDE
    )
    ref_lrs, ref_thetas = sgd_hd_reference(grads, LR0, 1e-3, momentum=0.9)
    np.testing.assert_allclose(lrs, ref_lrs, rtol=1e-12)
    np.testing.assert_allclose(thetas, ref_thetas, rtol=1e-12, atol=1e-14)


def test_sgd_weight_decay_enters_gradient_and_direction():
    grads = scripted_grads(2)
    lrs, thetas, _ = drive(
        lambda ps: torch.optim.SGD(ps, lr=LR0, weight_decay=0.1), grads, hyper_lr=1e-2, **WIDE
    )
    ref_lrs, ref_thetas = sgd_hd_reference(grads, LR0, 1e-2, weight_decay=0.1)
    np.testing.assert_allclose(lrs, ref_lrs, rtol=1e-12)
    np.testing.assert_allclose(thetas, ref_thetas, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("cls", [torch.optim.Adam, torch.optim.AdamW])
def test_adam_hd_matches_the_paper(cls):
    grads = scripted_grads(3)
    make = lambda ps: cls(ps, lr=LR0, weight_decay=0.0)  # noqa: E731
    lrs, thetas, _ = drive(make, grads, hyper_lr=1e-3, **WIDE)
    ref_lrs, ref_thetas = adam_hd_reference(grads, LR0, 1e-3)
    assert lrs[0] == LR0 and np.ptp(lrs) > 1e-4
    np.testing.assert_allclose(lrs, ref_lrs, rtol=1e-12)
    np.testing.assert_allclose(thetas, ref_thetas, rtol=1e-10, atol=1e-14)


def test_default_hyper_lrs_are_the_papers():
    p = torch.zeros(1, requires_grad=True)
    assert HypergradientLR(torch.optim.SGD([p], lr=0.1)).hyper_lr == 1e-3
    assert HypergradientLR(torch.optim.Adam([p], lr=0.1)).hyper_lr == 1e-7
    assert HYPER_LR_DEFAULTS == {"sgd": 1e-3, "adam": 1e-7}


def test_bounds_hold():
    same = np.ones((STEPS, DIM))  # g·g > 0 every step: the LR only grows
    lrs, _, _ = drive(
        lambda ps: torch.optim.SGD(ps, lr=LR0), same, hyper_lr=1.0, min_lr=0.01, max_lr=0.2
    )
    assert lrs.max() == 0.2 and (lrs >= 0.01).all()
    flip = np.ones((STEPS, DIM)) * (-1.0) ** np.arange(STEPS)[:, None]  # g·g < 0: shrinks
    lrs, _, _ = drive(
        lambda ps: torch.optim.SGD(ps, lr=LR0), flip, hyper_lr=1.0, min_lr=0.01, max_lr=0.2
    )
    assert lrs.min() == 0.01 and (lrs <= 0.2).all()


def test_non_finite_hypergradient_holds_the_lr():
    grads = scripted_grads()
    grads[3, 0] = np.inf
    lrs, _, sched = drive(lambda ps: torch.optim.SGD(ps, lr=LR0), grads[:4], hyper_lr=1e-2, **WIDE)
    assert lrs[3] == lrs[2]
    assert not np.isfinite(sched.last_hypergradients[0])


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (lambda ps: torch.optim.RMSprop(ps, lr=0.1), "SGD, Adam or AdamW"),
        (lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True), "nesterov"),
        (lambda ps: torch.optim.Adam(ps, lr=0.1, amsgrad=True), "amsgrad"),
    ],
)
def test_unsupported_optimizers_are_refused(make, error):
    with pytest.raises(TypeError, match=error):
        HypergradientLR(make([torch.zeros(1, requires_grad=True)]))


def test_bad_arguments_are_refused():
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    with pytest.raises(ValueError, match="hyper_lr"):
        HypergradientLR(opt, hyper_lr=-1.0)
    with pytest.raises(ValueError, match="min_lr"):
        HypergradientLR(opt, min_lr=1.0, max_lr=0.1)


def _resume_trace(cls, kwargs, cut: int = 4):
    """LRs of an uninterrupted run and of one checkpointed at ``cut`` (through torch.save
    and ``torch.load(weights_only=True)``)."""
    grads = scripted_grads(4)
    full, _, _ = drive(lambda ps: cls(ps, lr=LR0, **kwargs), grads, hyper_lr=1e-3, **WIDE)
    p = torch.zeros(DIM, dtype=torch.float64, requires_grad=True)
    opt = cls([p], lr=LR0, **kwargs)
    sched = HypergradientLR(opt, hyper_lr=1e-3, **WIDE)
    lrs = []
    for g in grads[:cut]:
        p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    buffer = io.BytesIO()
    torch.save({"opt": opt.state_dict(), "sched": sched.state_dict()}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)
    opt_state, sched_state = saved["opt"], saved["sched"]
    q = p.detach().clone().requires_grad_(True)
    opt2 = cls([q], lr=LR0, **kwargs)
    sched2 = HypergradientLR(opt2, hyper_lr=1e-3, **WIDE)
    opt2.load_state_dict(opt_state)
    sched2.load_state_dict(sched_state)
    for g in grads[cut:]:
        q.grad = torch.tensor(g, dtype=torch.float64)
        opt2.step()
        sched2.step()
        lrs.append(opt2.param_groups[0]["lr"])
    return full, np.array(lrs)


@pytest.mark.parametrize(
    ("cls", "kwargs"),
    [(torch.optim.Adam, {}), (torch.optim.SGD, {"momentum": 0.9}), (torch.optim.SGD, {})],
    ids=["adam", "sgd-momentum", "sgd"],
)
def test_checkpoint_resumes_exactly(cls, kwargs):
    """Adam's direction and SGD's momentum are optimizer state; plain SGD's previous
    gradient is in the scheduler's state dict."""
    full, resumed = _resume_trace(cls, kwargs)
    assert resumed.tolist() == full.tolist()
    assert len(set(full.tolist())) == len(full)  # every step moved the LR: not vacuous


def test_remove_detaches_the_hook():
    p = torch.zeros(DIM, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([p], lr=LR0)
    sched = HypergradientLR(opt, hyper_lr=1.0, **WIDE)
    sched.remove()
    for _ in range(3):
        p.grad = torch.ones(DIM, dtype=torch.float64)
        opt.step()
    assert opt.param_groups[0]["lr"] == LR0


def test_drives_a_real_run_and_skips_gradient_free_tasks():
    result = run_one(RunSpec("lrgym/FriedmanMLP-v0", "hypergradient", 0), total_steps=50)
    lrs = [row["lr"] for row in result.curve]
    assert lrs[0] == 1e-2 and lrs[-1] != 1e-2
    assert all(1e-7 <= x <= 1.0 for x in lrs)
    specs = grid(["lrgym/FriedmanMLP-v0", "lrgym/DiabetesXGB-v0"], ["hypergradient"], [0])
    assert [s.task for s in specs] == ["lrgym/FriedmanMLP-v0"]
    assert not make_controller("hypergradient").applies_to(make_task("lrgym/DiabetesXGB-v0"))
