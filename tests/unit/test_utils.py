"""`utils`: atomic files with a plain file's permissions, and the runtime's CPU allocation."""

import os
import stat

import pytest
import torch

from myreinflow.errors import UserError
from myreinflow.utils import atomic_path, atomic_write_text, setup_runtime


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
