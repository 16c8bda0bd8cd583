"""Chunked sampling, normalisation, configs, checkpoints and run tracking (CSV + real WandB offline)."""

import csv
import os
import stat

import numpy as np
import pytest
import torch
from gymnasium.spaces import Box

from myreinflow.algos.bc import BCConfig
from myreinflow.checkpoint import load_checkpoint, save_checkpoint
from myreinflow.config import from_dict, load_yaml
from myreinflow.data.chunks import ChunkedTransitions
from myreinflow.data.normalize import Normalizer
from myreinflow.errors import UserError
from myreinflow.tracking import Tracker
from myreinflow.utils import atomic_path, atomic_write_text, setup_runtime


def two_episodes():
    # observation value = 10·episode + step, action value = 100·episode + step: indices can be read back
    eps = []
    for e, n in enumerate((3, 5)):
        eps.append(
            {
                "observations": (10 * e + np.arange(n + 1, dtype=np.float32))[:, None],
                "actions": (100 * e + np.arange(n, dtype=np.float32))[:, None],
            }
        )
    return eps


def identity_normalizer():
    return Normalizer(np.zeros(1), np.ones(1), np.array([-1000.0]), np.array([1000.0]))


def raw_actions(norm, a):
    return norm.unscale_action(a)


def test_chunks_stay_inside_their_episode():
    norm = identity_normalizer()
    data = ChunkedTransitions(two_episodes(), horizon_steps=3, cond_steps=2, normalizer=norm)
    assert len(data) == 8
    batch = data.get(torch.arange(8))
    obs = batch["obs"][..., 0]
    acts = raw_actions(norm, batch["actions"])[..., 0].round()
    # episode 0 (steps 0..2): first observation repeats before the start, last action repeats after the end
    assert obs[0].tolist() == [0, 0] and obs[2].tolist() == [1, 2]
    assert acts[1].tolist() == [1, 2, 2] and batch["valid"][1].tolist() == [True, True, False]
    # episode 1 starts at flat step 3: never mixes in episode 0's data
    assert obs[3].tolist() == [10, 10] and obs[7].tolist() == [13, 14]
    assert acts[3].tolist() == [100, 101, 102] and acts[7].tolist() == [104, 104, 104]
    assert batch["valid"][7].tolist() == [True, False, False]


def test_epoch_visits_every_step_once_and_sampling_is_seeded():
    data = ChunkedTransitions(two_episodes(), 2, 1, identity_normalizer())
    seen = torch.cat([b["obs"][:, 0, 0] for b in data.epoch(4, torch.Generator().manual_seed(0))])
    assert sorted(seen.tolist()) == sorted(data.get(torch.arange(8))["obs"][:, 0, 0].tolist())
    a = data.sample(16, torch.Generator().manual_seed(3))["obs"]
    b = data.sample(16, torch.Generator().manual_seed(3))["obs"]
    assert torch.equal(a, b)


def test_normalizer_round_trip_and_bounds():
    obs = np.random.default_rng(0).normal(5, 3, size=(1000, 4))
    obs[:, 3] = 7.0  # a constant feature stays finite
    norm = Normalizer.fit(obs, Box(-2, 2, (2,)))
    z = norm.normalize_obs(torch.as_tensor(obs, dtype=torch.float32))
    assert torch.isfinite(z).all() and z[:, :3].mean().abs() < 1e-3
    a = torch.tensor([[-2.0, 2.0], [0.0, 1.0]])
    torch.testing.assert_close(norm.scale_action(a), torch.tensor([[-1.0, 1.0], [0.0, 0.5]]))
    back = Normalizer.from_state_dict(norm.state_dict())
    torch.testing.assert_close(back.unscale_action(back.scale_action(a)), a)


def test_config_rejects_unknown_keys_and_bad_values(tmp_path):
    with pytest.raises(UserError, match="unknown key 'epoch'; did you mean 'epochs'"):
        from_dict(BCConfig, {"epoch": 3})
    with pytest.raises(UserError, match="unknown key 'zzz'; allowed keys: activation, adaptive_c"):
        from_dict(BCConfig, {"zzz": 3})  # nothing close: every key
    with pytest.raises(UserError, match="epochs = -1"):
        from_dict(BCConfig, {"epochs": -1})
    with pytest.raises(UserError, match="'lr' has value 'fast'"):
        from_dict(BCConfig, {"lr": "fast"})
    with pytest.raises(UserError, match="model 'diffusion'"):
        from_dict(BCConfig, {"flow": "diffusion"})
    cfg = from_dict(BCConfig, {"hidden": [64, 64], "lr": 1})
    assert cfg.hidden == (64, 64) and cfg.lr == 1.0
    (tmp_path / "bad.yaml").write_text("epochs: [1\n")
    with pytest.raises(UserError, match="not valid YAML"):
        load_yaml(tmp_path / "bad.yaml")


def test_checkpoint_round_trip_and_clear_errors(tmp_path):
    path = tmp_path / "model.pt"
    save_checkpoint(path, {"stage": "bc", "w": torch.arange(3), "config": {"hidden": [1, 2]}})
    ckpt = load_checkpoint(path)
    assert torch.equal(ckpt["w"], torch.arange(3)) and ckpt["config"]["hidden"] == [1, 2]
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]  # no temp file left
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="corrupt or not a torch file"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"state_dict": {}}, tmp_path / "foreign.pt")
    with pytest.raises(UserError, match="not a myreinflow checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    with pytest.raises(UserError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.csv"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640)])
def test_atomic_writes_get_the_mode_of_a_plain_open(tmp_path, umask, mode):
    """Results and models are readable by others as the umask allows (the temp file alone is 0600)."""
    old = os.umask(umask)
    try:
        atomic_write_text(tmp_path / "table.csv", "a,b\n1,2\n")
        with atomic_path(tmp_path / "model.pt") as tmp:
            torch.save({"w": torch.zeros(2)}, tmp)
        assert os.umask(umask) == umask  # the umask is left as it was
    finally:
        os.umask(old)
    for name in ("table.csv", "model.pt"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode


def test_tracker_csv_resume_and_real_wandb_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    tracker = Tracker(tmp_path / "train.csv", {"lr": 1e-3}, wandb_mode="offline", run_name="test")
    assert tracker.run is not None
    for step in range(1, 6):
        tracker.log({"train/loss": 1.0 / step}, step=step, epoch=step)
    tracker.close()
    rows = list(csv.DictReader((tmp_path / "train.csv").read_text().splitlines()))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4, 5] and float(rows[1]["train/loss"]) == 0.5
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and any(runs[0].glob("*.wandb"))
    resumed = Tracker(tmp_path / "train.csv", resume_step=3)
    resumed.log({"train/loss": 9.0}, step=4, epoch=4)
    resumed.close()
    rows = list(csv.DictReader((tmp_path / "train.csv").read_text().splitlines()))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4] and float(rows[-1]["train/loss"]) == 9.0


def test_tracker_online_without_credentials_falls_back_to_offline(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.warns(UserWarning, match="logging offline"):
        tracker = Tracker(tmp_path / "train.csv", wandb_mode="online")
    assert tracker.run is None or tracker.run.settings.mode in ("offline", "disabled")
    tracker.close()
    assert os.path.exists(tmp_path / "train.csv")


def test_runtime_honours_the_cpu_allocation_and_says_what_it_got(monkeypatch, capsys):
    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("SLURM_CPUS_PER_TASK", "1")  # a Slurm job's allocation, for --threads 0
        monkeypatch.setenv("SLURM_JOB_ID", "17")
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
        assert setup_runtime("cpu", 0) == torch.device("cpu") and torch.get_num_threads() == 1
        line = capsys.readouterr().out
        assert "device cpu, 1 torch threads, CUDA_VISIBLE_DEVICES=3, Slurm job 17" in line
        monkeypatch.delenv("SLURM_CPUS_PER_TASK")
        setup_runtime("cpu", 0)  # outside Slurm: the CPUs this process may run on
        assert torch.get_num_threads() == len(os.sched_getaffinity(0))
        setup_runtime("cpu", 2)  # an explicit count wins
        assert torch.get_num_threads() == 2
        with pytest.raises(UserError, match="'gpu'"):
            setup_runtime("gpu", 1)
    finally:
        torch.set_num_threads(before)
