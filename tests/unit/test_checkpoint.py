"""Checkpoints: a round trip with clear errors, and files written before the version-2 layout
(tests/data/v1/, made by the code of 2026-12-01: BC ReFlow and FQL from it on a 4-episode Pusher set, 16×16
networks) still evaluate; resuming one is refused with one line naming its version."""

import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch

from myreinflow.checkpoint import VERSION, load_checkpoint, save_checkpoint
from myreinflow.cli import main
from myreinflow.errors import UserError

V1 = Path(__file__).parents[1] / "data" / "v1"


def test_version_1_checkpoints_are_read_in_the_new_layout():
    bc, fql = load_checkpoint(V1 / "bc_reflow.pt"), load_checkpoint(V1 / "fql_reflow.pt")
    assert bc["version"] == fql["version"] == VERSION
    assert list(bc["policies"]) == ["flow"] and list(fql["policies"]) == ["flow", "onestep"]
    assert "policy" not in bc and "onestep" not in fql
    assert bc["config"]["model"] == "reflow" and "flow" not in bc["config"]
    assert fql["config"]["flow"] == "auto"  # FQL's option keeps its name
    assert fql["policies"]["onestep"]["spec"]["kind"] == "onestep"


def test_version_1_checkpoints_evaluate_every_policy(tmp_path):
    for name, policies in (("bc_reflow", {"flow"}), ("fql_reflow", {"flow", "onestep"})):
        csv = tmp_path / f"{name}.csv"
        args = ["eval", "--checkpoint", str(V1 / f"{name}.pt"), "--policy", "all", "--episodes", "2"]
        assert (
            main([*args, "--inference_steps", "1", "2", "--threads", "1", "--out", str(csv), "--quiet"]) == 0
        )
        frame = pd.read_csv(csv)
        assert set(frame["policy"]) == policies and set(frame["flow"]) == {"reflow"}
        assert len(frame[frame["policy"] == "flow"]) == 2 * 2  # two step counts × two episodes
        assert frame["return"].notna().all() and set(frame["env_id"]) == {"Pusher-v5"}


def test_resuming_a_version_1_run_is_refused_in_one_line(minari_root, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    shutil.copy(V1 / "bc_reflow.pt", out / "model.pt")
    args = ["bc", "--dataset", "myreinflow/pusher/tiny-v0", "--epochs", "1", "--hidden", "16", "16"]
    assert main([*args, "--no_wandb", "--threads", "1", "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "version-1 checkpoint" in err[0] and str(out / "model.pt") in err[0]
    assert sorted(p.name for p in out.iterdir()) == ["model.pt"]  # nothing written beside it


def test_a_run_written_before_an_option_existed_resumes_at_its_default(minari_root, tmp_path, capsys):
    """A checkpoint whose config lacks an option added later (here FQL's `candidates`, removed from a
    fresh run's config) resumes when the option keeps its default, and is refused for another value."""
    import torch

    out = tmp_path / "fql"
    args = ["fql", "--dataset", "myreinflow/pusher/tiny-v0", "--epochs", "1", "--hidden", "16", "16"]
    args += ["--flow_hidden", "16", "16", "--eval_episodes", "1", "--no_wandb", "--threads", "1", "--quiet"]
    assert main([*args, "--out", str(out)]) == 0
    ckpt = torch.load(out / "model.pt", weights_only=True)
    del ckpt["config"]["candidates"], ckpt["config"]["candidates_in_target"]
    torch.save(ckpt, out / "model.pt")
    assert main([*args, "--out", str(out), "--epochs", "2", "--candidates", "4"]) == 2
    assert (
        "holds a different run (key 'candidates': absent (so its default, 1) vs 4)" in capsys.readouterr().err
    )
    assert main([*args, "--out", str(out), "--epochs", "2"]) == 0
    assert load_checkpoint(out / "model.pt")["epoch"] == 2


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
