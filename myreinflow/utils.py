"""Small shared helpers: devices, seeding, threads, atomic file writes.

torch is imported inside the functions that need it, so the file helpers load without it."""

from __future__ import annotations

import contextlib
import os
import platform
import random
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from myreinflow.errors import UserError

if TYPE_CHECKING:
    import torch

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(device: str) -> torch.device:
    """'auto' → CUDA when available, else CPU; 'cuda' without a GPU is a clear error."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.split(":")[0] not in DEVICES[1:]:
        raise UserError(f"device {device!r} is not one of auto, cpu, cuda, cuda:N")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device {device!r} was asked for but no CUDA GPU is available; use --device auto")
    return torch.device(device)


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def allocated_cpus() -> int:
    """CPUs this process may use: a Slurm job's cpus-per-task, else the CPU affinity mask."""
    slurm = os.environ.get("SLURM_CPUS_PER_TASK", "")
    if slurm.isdigit() and int(slurm) > 0:
        return int(slurm)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def set_threads(threads: int) -> None:
    """Honour a CPU allocation: `threads` (Snakemake `threads:`) or, for 0, the CPUs allocated to this
    process (torch's own default counts every core of the node, also on a shared cluster node)."""
    import torch

    torch.set_num_threads(threads if threads > 0 else allocated_cpus())


def setup_runtime(device: str, threads: int) -> torch.device:
    """Threads and device of a job, said in one stdout line so that its log shows what it ran on.

    CUDA_VISIBLE_DEVICES is used as given (a Slurm GPU job gets the GPUs it was allocated there)."""
    import torch

    set_threads(threads)
    steady_heap()
    resolved = resolve_device(device)
    line = (
        f"runtime: device {resolved}, {torch.get_num_threads()} torch threads, "
        f"CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', '(unset)')}"
    )
    if "SLURM_JOB_ID" in os.environ:
        line += f", Slurm job {os.environ['SLURM_JOB_ID']} on {os.environ.get('SLURMD_NODENAME', '?')}"
    print(line, flush=True)
    return resolved


def steady_heap() -> None:
    """glibc only: serve blocks under 16 MB from the heap and trim its top only past 64 MB.

    glibc's defaults give a block of 128 KB or more (a 256×256 float32 activation) fresh mmap pages until
    its dynamic threshold has risen, and trim the heap's top past 128 KB, so a process can stay in a
    mode where every update's buffers are new pages, faulted in and zeroed, and runs slower than a
    process that is not (the rates with and without: docs/benchmarks.md). Memory already freed by
    `close_and_release` still goes back (its `malloc_trim` trims whatever the threshold)."""
    libc = glibc()
    if libc is not None:  # else its allocator's own policy
        m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
        libc.mallopt(m_mmap_threshold, 16 << 20)
        libc.mallopt(m_trim_threshold, 64 << 20)


def glibc():
    """The C library if it is glibc (it has `mallopt` and `malloc_trim`), else None."""
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None


def _umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it: put it straight back
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path beside `path`; on success it replaces `path`, on error it is removed. The file
    gets the mode a plain `open` would give it (0644 under umask 022), not the temp file's 0600, so that
    others on a shared file system can read results and models."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def check_writable(path: str | Path, flag: str = "--out") -> Path:
    """Fail before any long work, with one line, where `path` cannot be written: an existing directory,
    or a place where no file can be created (its parent directories are made as a run would)."""
    path = Path(path)
    if path.is_dir():
        example = str(path / "eval.csv")
        raise UserError(f"{flag} {str(path)!r} is a directory; give a file in it, e.g. {example!r}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".probe"):
            pass
    except OSError as exc:
        raise UserError(f"{flag} {str(path)!r} cannot be written ({exc.strerror or exc})") from None
    return path


def cpu_name() -> str:
    """The CPU's model name (benchmarks report it: speed differs a lot between machines)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def close_and_release(env) -> None:
    """Close a (vector) env and hand its memory back to the OS. An OGBench env is large (its compiled
    MuJoCo models); after `close` the C heap keeps most of it until glibc's `malloc_trim` (figures:
    docs/benchmarks.md, "Memory")."""
    import gc

    env.close()
    gc.collect()
    libc = glibc()
    if libc is not None:  # else the memory stays with the process
        libc.malloc_trim(0)
