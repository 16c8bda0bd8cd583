"""Running the Snakemake workflow from tests: a copy of the workflow in a temporary directory, the tiny
config, and Snakemake as a time-bounded subprocess with this checkout importable."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
TINY = yaml.safe_load((REPO / "tests" / "data" / "pipeline_tiny.yaml").read_text())


def snakemake(workdir: Path, *args: str, check: bool = True, timeout: float = 240):
    """Runs Snakemake on `workdir`; raises with its output on failure. On timeout its whole process
    group is killed (a stuck executor must not hang the suite) and the test fails with the output."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    cmd = [sys.executable, "-m", "snakemake", "--directory", str(workdir), *args]
    with subprocess.Popen(
        cmd,
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as proc:
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            stdout, stderr = proc.communicate()
            raise AssertionError(
                f"snakemake {' '.join(args)} ran past {timeout} s:\n{stdout[-3000:]}\n{stderr[-3000:]}"
            ) from None
    result = subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{stdout[-3000:]}\n{stderr[-3000:]}")
    return result


def workflow_copy(tmp: Path, config: dict, name: str = "config.yaml") -> Path:
    """A workflow directory with only the test config (no config/config.yaml to merge it into)."""
    tmp.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "Snakefile", tmp / "Snakefile")
    for folder in ("workflow", "profiles"):  # profiles/default: the report's stylesheet
        if not (tmp / folder).exists():
            shutil.copytree(REPO / folder, tmp / folder)
    (tmp / name).write_text(yaml.safe_dump(config))
    return tmp


def tiny_config(minari_root: Path | str, **changes) -> dict:
    """The tiny test config; the `minari_root` fixture must be active (it sets the recipes)."""
    config = {**TINY, "minari_root": str(minari_root), "recipes": os.environ["MYREINFLOW_RECIPES"]}
    config.update(changes)
    return config


def planned_jobs(proc: subprocess.CompletedProcess) -> dict[str, int]:
    """Rule → job count from the 'Job stats' table of a dry run (empty when nothing is to be done)."""
    text = proc.stdout + proc.stderr
    if "Nothing to be done" in text:
        return {}
    table = text.split("Job stats:")[1].split("total")[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", table, re.M)}
