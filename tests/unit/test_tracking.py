"""Run tracking: CSV always, real WandB offline, never a prompt."""

import csv
import os

import pytest

from myreinflow.tracking import Tracker


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
