"""The local Minari datasets store: datasets written in a hidden temporary root and renamed into place when
complete, namespace metadata, and the order-preserving worker pool that generates their episodes.

Workers never import torch (``myreinflow.utils`` does), so that a forked worker holds no torch state.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
import tempfile
import threading
import warnings
from pathlib import Path

from myreinflow.errors import UserError
from myreinflow.utils import atomic_write_text

TMP_PREFIX = ".myreinflow-tmp-"
NAMESPACE_DESCRIPTION = (
    "Datasets generated locally by myreinflow: scripted experts, and OGBench's manipulation datasets made by "
    "the ogbench package's oracles (see recipes.yaml)."
)


def run_tasks(tasks: list[tuple], fn, workers: int, progress: bool, desc: str, unit_scale=None):
    """Runs `fn` on each task (an episode) in order-preserving parallel worker processes; with
    `unit_scale` (steps per episode) the progress bar counts steps."""
    from tqdm.auto import tqdm

    unit = {"unit": "step", "unit_scale": unit_scale} if unit_scale else {"unit": "ep"}
    bar = tqdm(total=len(tasks), desc=desc, disable=not progress, smoothing=0.05, **unit)
    results = []
    try:
        if workers <= 1:
            for t in tasks:
                results.append(fn(t))
                bar.update()
        else:
            with mp.get_context(_start_method()).Pool(workers) as pool:
                for r in pool.imap(fn, tasks, chunksize=1 if unit_scale else 4):
                    results.append(r)
                    bar.update()
    finally:
        bar.close()
    return results


def _start_method() -> str:
    """Fork when it is safe (no other Python threads that could hold a lock; workers never touch torch):
    unlike spawn it does not re-run a user's ``__main__`` script that lacks an ``if __name__`` guard."""
    others = [
        t for t in threading.enumerate() if t is not threading.main_thread() and t.name != "tqdm_monitor"
    ]
    if "fork" in mp.get_all_start_methods() and not others:
        return "fork"
    return "spawn"


def _clean_stale_tmp(root: Path) -> None:
    """Removes temporary roots left behind by killed generations (their pid no longer runs)."""
    for d in root.glob(TMP_PREFIX + "*"):
        try:
            pid = int(d.name[len(TMP_PREFIX) :].split("-")[0])
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(d, ignore_errors=True)
        except (ValueError, PermissionError):
            continue


def ensure_namespace(
    root: Path, namespace: str, description: str | None = None, like: Path | None = None
) -> None:
    """Creates Minari namespace metadata for ``namespace`` and its parents under ``root`` where missing,
    copied from the root ``like`` when it has them (e.g. downloaded ones), else ``{}``."""
    from minari.namespace import NAMESPACE_METADATA_FILENAME

    parts = namespace.split("/")
    for i in range(1, len(parts) + 1):
        d = root.joinpath(*parts[:i])
        d.mkdir(parents=True, exist_ok=True)
        meta = d / NAMESPACE_METADATA_FILENAME
        if meta.exists():
            continue
        src = like.joinpath(*parts[:i], NAMESPACE_METADATA_FILENAME) if like is not None else None
        if src is not None and src.is_file():
            data = json.loads(src.read_text())
        else:
            data = {"description": description} if i == 1 and description is not None else {}
        atomic_write_text(meta, json.dumps(data))


def new_tmp_root(root: Path) -> Path:
    """A hidden temporary datasets root on the same filesystem as ``root`` (so rename is atomic)."""
    _clean_stale_tmp(root)
    # absolute: Minari joins a relative data path with itself when it sizes the file it wrote
    return Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{os.getpid()}-", dir=root)).resolve()


def move_into_place(tmp_root: Path, root: Path, dataset_id: str) -> None:
    """Renames a finished dataset from a temporary root into the real one, with its namespace metadata."""
    namespace = dataset_id.rsplit("/", 1)[0] if "/" in dataset_id else None
    if namespace:
        ensure_namespace(root, namespace, like=tmp_root)
    dest = root / dataset_id
    if dest.exists():
        raise UserError(f"dataset {dataset_id!r} appeared at {dest} meanwhile; delete one copy and retry")
    os.rename(tmp_root / dataset_id, dest)


class DatasetsRoot:
    """Points Minari's ``MINARI_DATASETS_PATH`` at another root for the duration of a block."""

    def __init__(self, path: Path) -> None:
        self.path, self.old = str(path), None

    def __enter__(self) -> None:
        self.old = os.environ.get("MINARI_DATASETS_PATH")
        os.environ["MINARI_DATASETS_PATH"] = self.path

    def __exit__(self, *exc: object) -> None:
        if self.old is None:
            os.environ.pop("MINARI_DATASETS_PATH", None)
        else:
            os.environ["MINARI_DATASETS_PATH"] = self.old


def write_dataset(dataset_id: str, buffers: list, metadata: dict, **create_kwargs):
    """Writes Minari episode buffers as `dataset_id` (`minari.create_dataset_from_buffers` with
    `create_kwargs`, then `metadata` added) in a temporary root, renamed into place when complete;
    returns the loaded dataset."""
    import minari
    from minari.storage import get_dataset_path

    root = get_dataset_path()
    tmp_root = new_tmp_root(root)
    try:
        with DatasetsRoot(tmp_root), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # minari nags about author e-mail, permalink, ...
            ds = minari.create_dataset_from_buffers(
                dataset_id=dataset_id, buffer=buffers, author="myreinflow", **create_kwargs
            )
            ds.storage.update_metadata(metadata)
        if dataset_id.startswith("myreinflow/"):
            ensure_namespace(root, "myreinflow", NAMESPACE_DESCRIPTION)
        move_into_place(tmp_root, root, dataset_id)
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)
    return minari.load_dataset(dataset_id)
