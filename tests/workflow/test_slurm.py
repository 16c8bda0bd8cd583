"""The workflow on a real Slurm cluster, through the profile users run (workflow/profiles/slurm).

tests/slurm/cluster.sh starts a single-node Slurm cluster on this machine (Debian's slurm-wlm and munge,
a private munged, two fake GPUs, partitions `cpu` and `gpu`); the tiny config runs through the profile
and snakemake-executor-plugin-slurm; then the executor's sbatch calls and Slurm's own job records show
what every rule asked for and got. The cluster is stopped and its jobs cancelled also when a test fails.

Where the cluster cannot be hosted (not root, the packages cannot be installed, another Slurm is set up
here) the tests are skipped, with the reason.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from datetime import datetime
from pathlib import Path

import pytest
from workflow_support import REPO, planned_jobs, snakemake, tiny_config, workflow_copy

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

CLUSTER = REPO / "tests" / "slurm" / "cluster.sh"
# what the profile must send where: training (offline and online), evaluation and the 2D study to a GPU,
# the rest to CPUs
GPU_RULES = {"bc", "fql", "online", "reinflow", "eval", "toy2d"}
CPU_RULES = {
    "data",
    "dataset_card",
    "summary_eval",
    "summary_train",
    "summary_runs",
    "summary_toy2d",
    "figure",
}


def slurm_installed() -> str | None:
    """None when Slurm's daemons are here (installing them with apt-get if need be), else why not."""
    if Path("/usr/sbin/slurmctld").exists() and Path("/usr/sbin/munged").exists():
        return None
    if os.geteuid() != 0:
        return "Slurm (slurm-wlm, munge) is not installed, and installing it needs root"
    if shutil.which("apt-get") is None:
        return "Slurm (slurm-wlm, munge) is not installed, and there is no apt-get to install it"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = ["apt-get", "install", "-y", "-q", "slurm-wlm", "munge"]
    for attempt in ([], ["apt-get", "update", "-q"]):  # then once more with fresh package lists
        if attempt:
            subprocess.run(attempt, env=env, capture_output=True, timeout=300)
        proc = subprocess.run(install, env=env, capture_output=True, text=True, timeout=600)
        if proc.returncode == 0:
            return None
    return f"apt-get install slurm-wlm munge failed: {proc.stderr.strip().splitlines()[-1:]}"


@pytest.fixture(scope="module")
def slurm_cluster():
    """A running single-node cluster for this module; stopped, with its jobs cancelled, afterwards."""
    pytest.importorskip("snakemake_executor_plugin_slurm", reason="pip install -e '.[slurm]'")
    reason = slurm_installed()
    if reason:
        pytest.skip(reason)
    base = Path(tempfile.mkdtemp(prefix="myreinflow-slurm-"))
    start = subprocess.run([CLUSTER, "start", base], capture_output=True, text=True, timeout=120)
    if start.returncode == 3:  # this machine cannot host it: the script says why
        shutil.rmtree(base, ignore_errors=True)
        pytest.skip(start.stderr.strip())
    try:
        assert start.returncode == 0, f"cluster did not start:\n{start.stdout}\n{start.stderr}"
        yield base
    finally:
        subprocess.run(["scancel", "--full", "--user", "root"], capture_output=True, timeout=30)
        subprocess.run([CLUSTER, "stop", base], capture_output=True, timeout=60)
        shutil.rmtree(base, ignore_errors=True)


def sbatch_calls(log: str) -> dict[str, list[str]]:
    """Rule → the sbatch command lines the executor ran for its jobs (from its --verbose log)."""
    calls: dict[str, list[str]] = {}
    for call in re.findall(r"sbatch call: (sbatch .*)", log):
        rule = re.search(r"--comment '?rule_(\w+?)(?:_wildcards_\S*)?'?(?:\s|$)", call)
        assert rule, call
        calls.setdefault(rule[1], []).append(call)
    return calls


def slurm_jobs(base: Path) -> list[dict[str, str]]:
    """Slurm's own record of every finished job (jobcomp/filetxt: `Key=Value` fields, one job a line)."""
    text = (base / "log" / "jobcomp.txt").read_text()
    return [dict(re.findall(r"(\w+)=(\S*)", line)) for line in text.splitlines() if line.strip()]


def test_tiny_config_runs_through_the_slurm_profile(slurm_cluster, minari_root, tmp_path):
    # datasets go to the workflow's own shared path, not to a compute node's home directory
    workdir = workflow_copy(tmp_path / "wf", tiny_config("results/minari"))
    run = snakemake(
        workdir,
        "--profile",
        "workflow/profiles/slurm",
        "--configfile",
        "config.yaml",
        "--resources",
        "gpu=1",  # the local habit: with the profile's local gpu scope it must not serialise GPU jobs
        "--verbose",  # the executor logs each sbatch call
        # no accounting database on the test cluster; poll fast to keep the test short
        "--slurm-status-command",
        "squeue",
        "--slurm-init-seconds-before-status-checks",
        "1",
        "--seconds-between-status-checks",
        "2",
        timeout=600,  # a guard against a hung cluster, with room for a loaded 2-core machine
    )
    log = run.stdout + run.stderr

    # every output exists and is up to date
    assert planned_jobs(snakemake(workdir, "-n", "--configfile", "config.yaml")) == {}
    assert list((workdir / "results" / "minari").rglob("*.hdf5")), "no dataset under the workflow"

    # every job went through sbatch: GPU rules with one GPU on the gpu partition, the others without
    calls = sbatch_calls(log)
    assert set(calls) == GPU_RULES | CPU_RULES, sorted(calls)
    for rule, lines in calls.items():
        for line in lines:
            if rule in GPU_RULES:
                assert "--gpus=1" in line and " -p gpu" in line, line
            else:
                assert "--gpus" not in line and "--gres" not in line and " -p cpu" in line, line
            assert re.search(r"--cpus-per-(task|gpu)=1\b", line), line  # the config's threads: 1

    # Slurm ran them all, and two GPU jobs at once: the `gpu` limit of local runs did not throttle it
    jobs = [j for j in slurm_jobs(slurm_cluster) if j.get("Partition") in ("cpu", "gpu")]
    assert len(jobs) == sum(len(lines) for lines in calls.values())
    assert all(j["JobState"] == "COMPLETED" for j in jobs), jobs
    gpu_jobs = [j for j in jobs if j["Partition"] == "gpu"]
    spans = sorted(
        (datetime.fromisoformat(j["StartTime"]), datetime.fromisoformat(j["EndTime"])) for j in gpu_jobs
    )
    assert any(later[0] < earlier[1] for earlier, later in zip(spans, spans[1:], strict=False)), spans

    # a GPU job used the device Slurm gave it (CUDA_VISIBLE_DEVICES) and knew its Slurm job
    bc_log = (workdir / "logs" / "bc" / "tiny" / "reflow" / "seed0.log").read_text()
    # (either of the cluster's two GPUs: which one depends on which other GPU job overlapped it)
    runtime = r"runtime: device \w+, 1 torch threads, CUDA_VISIBLE_DEVICES=[01], Slurm job \d+"
    assert re.search(runtime, bc_log), bc_log
