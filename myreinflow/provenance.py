"""What a result was made with: the project's git commit, the versions of the packages that decide the
numbers, and the machine (float results of the same run differ between CPUs)."""

from __future__ import annotations

import functools
import platform
import subprocess
from importlib import metadata
from pathlib import Path

from myreinflow.utils import cpu_name

# the packages whose versions can change a run's numbers
PACKAGES = ("myreinflow", "torch", "numpy", "scipy", "gymnasium", "minari", "mujoco", "ogbench")


def git_commit(where: Path = Path(__file__).parent) -> dict:
    """{"commit": HEAD's hash, "dirty": uncommitted changes?} of the checkout holding `where` (the
    package's source: an editable install), or Nones outside a git checkout."""
    try:
        run = functools.partial(subprocess.run, cwd=where, capture_output=True, text=True, timeout=10)
        head = run(["git", "rev-parse", "HEAD"])
        if head.returncode != 0:
            return {"commit": None, "dirty": None}
        status = run(["git", "status", "--porcelain", "--untracked-files=no"])
        return {"commit": head.stdout.strip(), "dirty": bool(status.stdout.strip())}
    except (OSError, subprocess.SubprocessError):  # no git, or it hung
        return {"commit": None, "dirty": None}


@functools.cache
def provenance() -> dict:
    """Git commit, package versions (None where not installed), Python, OS and CPU; computed once."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "git": git_commit(),
        "versions": {"python": platform.python_version(), **versions},
        "platform": platform.platform(),
        "cpu": cpu_name(),
    }
