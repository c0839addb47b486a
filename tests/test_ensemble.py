"""Ensembles: one recipe's training seeds as one agent acting with their mean action."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import lrgym
from lrgym.agents.config import ConfigError, load_config
from lrgym.agents.ensemble import agent_files, write_ensemble
from lrgym.agents.sb3_files import check_init_from
from lrgym.cli import app
from lrgym.core.signals import FEATURES
from lrgym.deploy.agent import AgentEnsemble, AgentLoadError, load_agent
from lrgym.harness.results_store import folder_fingerprint
from lrgym.io.manifest import record, verify
from tests.synthetic_agents import linear_tanh, synthetic_card

N = len(FEATURES)


def write_member(folder, seed: int, **action):
    """A synthetic agent on disk: ``tanh`` of a seeded linear map of the features."""
    tanh = linear_tanh(np.random.default_rng(seed).normal(0, 0.3, (N, 1)))
    weights = dataclasses.replace(tanh, clip_obs=10.0)
    weights.save(folder)
    card = dataclasses.replace(synthetic_card(**action), seed=seed, policy=weights.spec())
    card.save(folder)
    return folder


@pytest.fixture
def members(tmp_path):
    return [write_member(tmp_path / f"run{s}", s) for s in (0, 1, 2)]


def test_the_ensemble_acts_with_its_members_mean_action(tmp_path, members):
    out = write_ensemble(tmp_path / "ens", members)
    ensemble = load_agent(out)
    assert isinstance(ensemble, AgentEnsemble)
    assert ensemble.card.members == ["seed0", "seed1", "seed2"]
    singles = [load_agent(m) for m in members]
    obs = np.random.default_rng(3).normal(size=(50, N)).astype(np.float32)  # within the clip
    for x in obs:
        expected = np.mean([a.act(x) for a in singles])
        assert ensemble.act(x) == pytest.approx(expected, rel=1e-12)
    assert len({round(a.act(obs[0]), 6) for a in singles}) == 3  # the members do differ
    # each member stays a whole agent, loadable (and scorable) alone
    assert load_agent(out / "seed1").act(obs[0]) == pytest.approx(singles[1].act(obs[0]))


def test_members_are_copied_as_agents_without_their_run_artifacts(tmp_path, members):
    """Card, policy, manifest and the files the manifest lists travel; a training run's
    checkpoints, TensorBoard logs and config stay behind."""
    run = members[0]
    (run / "training.json").write_text("{}")
    record(run, ["training.json"])
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / "checkpoint_100_steps.json").write_text("{}")
    (run / "config.yaml").write_text("name: x\n")
    out = write_ensemble(tmp_path / "ens", members)
    assert sorted(p.name for p in (out / "seed0").iterdir()) == sorted(agent_files(run))
    assert {"card.json", "manifest.json", "training.json"} <= set(agent_files(run))
    assert not (out / "seed0" / "checkpoints").exists()
    verify(out / "seed0", ["training.json"])  # the copy still matches its manifest


def test_an_ensemble_drives_a_torch_scheduler(tmp_path, members):
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=1e-2)
    sched = lrgym.PolicyScheduler(opt, write_ensemble(tmp_path / "ens", members), 100)
    for _ in range(100):
        loss = model(torch.ones(4, 2)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step(loss=loss.item())
    assert opt.param_groups[0]["lr"] != 1e-2  # the mean action moved it


def test_members_of_different_recipes_are_refused(tmp_path, members):
    other = write_member(tmp_path / "other", 7, guard=True)
    with pytest.raises(AgentLoadError, match="action mapping"):
        write_ensemble(tmp_path / "ens", [members[0], other])
    assert not (tmp_path / "ens").exists()  # nothing half-written


def test_bad_ensembles_are_refused_with_what_to_do(tmp_path, members):
    with pytest.raises(AgentLoadError, match="at least two"):
        write_ensemble(tmp_path / "one", members[:1])
    out = write_ensemble(tmp_path / "ens", members)
    with pytest.raises(AgentLoadError, match="already exists"):
        write_ensemble(out, members)
    with pytest.raises(AgentLoadError, match="cannot itself be an ensemble"):
        write_ensemble(tmp_path / "nested", [out, members[0]])
    card = json.loads((out / "card.json").read_text())
    card["members"] = ["seed0", "../run1"]
    (out / "card.json").write_text(json.dumps(card))
    with pytest.raises(AgentLoadError, match="not a sub-directory"):
        load_agent(out)


def test_a_changed_member_changes_the_ensembles_fingerprint(tmp_path, members):
    out = write_ensemble(tmp_path / "ens", members)
    before = folder_fingerprint(out)
    write_member(out / "seed2", 9)  # other weights under the same name
    assert folder_fingerprint(out) not in ("", before)


def test_cli_writes_an_ensemble(tmp_path, members):
    runner = CliRunner()
    args = ["ensemble", *map(str, members[:2]), "--out", str(tmp_path / "ens")]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert load_agent(tmp_path / "ens").card.members == ["seed0", "seed1"]
    bad = runner.invoke(app, ["ensemble", str(members[0]), "--out", str(tmp_path / "e2")])
    assert bad.exit_code != 0 and "at least two" in bad.output


def test_training_on_from_an_ensemble_names_a_member(tmp_path, members):
    """An ensemble has no training state of its own: --init-from says which folder has."""
    out = write_ensemble(tmp_path / "ens", members)
    with pytest.raises(ConfigError, match=r"ensemble of 3 agents.*--init-from .*seed0"):
        check_init_from(load_config(None, init_from=str(out)))
