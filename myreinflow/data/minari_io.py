"""Get a Minari dataset by id — local, generated from a recipe, or downloaded — and describe it in a card."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from myreinflow.data.generate import generate_dataset
from myreinflow.data.manipspace import create_minari, episodes_of_npz
from myreinflow.data.recipes import OGBENCH_ENV_RE, Component, Recipe, load_recipes
from myreinflow.data.store import move_into_place, new_tmp_root
from myreinflow.data.tasks import META_KEY, import_ogbench, task_card
from myreinflow.errors import UserError
from myreinflow.utils import atomic_write_text

SOURCES = ("auto", "minari", "generate", "ogbench")
OWN_NAMESPACE = "myreinflow/"
OGBENCH_NAMESPACE = "ogbench/"  # ids of OGBench's official files, converted: ogbench/cube-single-play-v0
CONNECT_TIMEOUT_S = 5.0  # offline must fail fast: one connection attempt, no retries
HTTP_TIMEOUT_S = "10"  # per-request timeouts inside huggingface_hub once online
DOWNLOAD_TIMEOUT_S = float(os.environ.get("MYREINFLOW_DOWNLOAD_TIMEOUT", 3600))

# a download in a child process (a hung connection is killed with it): `call` reads its arguments from
# sys.argv, the outcome goes to the file sys.argv[-1]
_DOWNLOAD_CHILD = """
import json, sys
try:
    {call}
    result = {{"ok": True}}
except BaseException as e:
    result = {{"ok": False, "reason": f"{{type(e).__name__}}: {{e}}"}}
with open(sys.argv[-1], "w") as f:
    json.dump(result, f)
"""
MINARI_CHILD = _DOWNLOAD_CHILD.format(call="import minari; minari.download_dataset(sys.argv[1])")
OGBENCH_CHILD = _DOWNLOAD_CHILD.format(
    call="from ogbench.utils import download_datasets; download_datasets([sys.argv[1]], sys.argv[2])"
)


def _run_download(child: str, args: list[str], result_file: Path, progress: bool, fail, env=None) -> None:
    """Runs a download `child` script on `args`, killed after DOWNLOAD_TIMEOUT_S; raises `fail(reason)`
    unless it reports success in `result_file`."""
    out = None if progress else subprocess.DEVNULL
    try:
        subprocess.run(
            [sys.executable, "-c", child, *args, str(result_file)],
            env=env,
            stdout=out,
            stderr=out,
            timeout=DOWNLOAD_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise fail(f"no complete download within {DOWNLOAD_TIMEOUT_S:g} s") from None
    try:
        result = json.loads(result_file.read_text())
    except (OSError, ValueError):
        result = {"ok": False, "reason": "the download process died"}
    if not result["ok"]:
        raise fail(result["reason"])


def _datasets_root() -> Path:
    from minari.storage import get_dataset_path

    return get_dataset_path()


def _is_local(dataset_id: str) -> bool:
    return (_datasets_root() / dataset_id / "data").is_dir()


def _recipe_ids() -> list[str]:
    return sorted(load_recipes())


def load_dataset(dataset_id: str, source: str = "auto", progress: bool = True):
    """Returns the ``minari.MinariDataset`` ``dataset_id``, getting it first if it is not local.

    ``source``: ``auto`` generates known recipe ids, downloads ``ogbench/<name>`` ids from OGBench and
    anything else from Minari; ``generate`` only generates (the id must be a recipe), ``minari`` only
    downloads from the Minari servers, ``ogbench`` only downloads OGBench's official files (ids
    ``ogbench/<OGBench dataset name>``, converted to Minari). A local copy (under ``MINARI_DATASETS_PATH``
    or ``~/.minari/datasets``) is always used as is.
    """
    import minari

    if source not in SOURCES:
        raise UserError(f"source={source!r} is not allowed; use one of: {', '.join(SOURCES)}")
    if not isinstance(dataset_id, str) or not dataset_id:
        raise UserError(f"dataset id {dataset_id!r} is not allowed; use e.g. 'myreinflow/pusher/expert-v0'")
    if _is_local(dataset_id):
        return minari.load_dataset(dataset_id)
    recipes = _recipe_ids()
    if dataset_id in recipes and source in ("auto", "generate"):
        return generate_dataset(dataset_id, progress=progress)
    if dataset_id in recipes:
        raise UserError(
            f"dataset {dataset_id!r} is generated locally, not downloaded; use source 'auto' or 'generate'"
        )
    if source == "ogbench" or (source == "auto" and dataset_id.startswith(OGBENCH_NAMESPACE)):
        return _download_ogbench(dataset_id, recipes, progress)
    if source == "generate" or dataset_id.startswith(OWN_NAMESPACE):
        raise UserError(f"no recipe for dataset {dataset_id!r}; known recipes: {', '.join(recipes)}")
    _download(dataset_id, recipes, progress)
    return minari.load_dataset(dataset_id)


def _proxy() -> tuple[str, int] | None:
    """The HTTPS proxy a download talks to first, if one is set."""
    proxy = os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy")
    if proxy:
        u = urlparse(proxy if "://" in proxy else f"http://{proxy}")
        return u.hostname or "", u.port or 80
    return None


def _remote_host() -> tuple[str, int]:
    """The host a Minari download talks to first (or the HTTPS proxy in between)."""
    if _proxy():
        return _proxy()
    remote = os.environ.get("MINARI_REMOTE", "hf://farama-minari")
    if remote.startswith("gcp://"):
        return "storage.googleapis.com", 443
    u = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    return u.hostname or "huggingface.co", u.port or 443


def _unreachable(host: str, port: int, timeout: float = CONNECT_TIMEOUT_S) -> str | None:
    """Why ``host:port`` cannot be reached, or None. Runs in a thread: name resolution has no timeout."""
    result: list[str | None] = []

    def probe() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            result.append(None)
        except OSError as e:
            result.append(f"{host}:{port} unreachable: {e.strerror or e}")

    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(timeout + 1.0)
    return result[0] if result else f"{host}:{port} unreachable: no answer in {timeout:g} s"


def _local_alternative(dataset_id: str, recipes: list[str]) -> str:
    """A recipe standing in for a remote id: mujoco/pusher/expert-v0 → myreinflow/pusher/expert-v0."""
    tail = dataset_id.split("/", 1)[-1]
    if OWN_NAMESPACE + tail in recipes:
        return OWN_NAMESPACE + tail
    parts = dataset_id.split("/")
    same_env = [r for r in recipes if len(parts) >= 2 and r.split("/")[-2:-1] == [parts[-2]]]
    if same_env:
        return same_env[0]
    return f"ID with ID one of: {', '.join(recipes)}"


def _download(dataset_id: str, recipes: list[str], progress: bool) -> None:
    """Downloads into a hidden temporary root (in a child process) and renames it into place when complete."""
    root = _datasets_root()
    alt = _local_alternative(dataset_id, recipes)

    def fail(reason: str) -> UserError:
        reason = " ".join(reason.split())[:200]
        return UserError(
            f"dataset {dataset_id!r} is not in {root} and could not be downloaded ({reason}); "
            f"for a local alternative run: myreinflow data --dataset {alt}"
        )

    reason = _unreachable(*_remote_host())
    if reason:
        raise fail(reason)
    tmp_root = new_tmp_root(root)
    try:
        result_file = tmp_root / "result.json"
        env = dict(os.environ, MINARI_DATASETS_PATH=str(tmp_root))
        env.setdefault("HF_HUB_ETAG_TIMEOUT", HTTP_TIMEOUT_S)
        env.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", HTTP_TIMEOUT_S)
        if not progress:
            env["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
        _run_download(MINARI_CHILD, [dataset_id], result_file, progress, fail, env)
        move_into_place(tmp_root, root, dataset_id)
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)


def _download_ogbench(dataset_id: str, recipes: list[str], progress: bool):
    """Downloads OGBench's official file of ``ogbench/<name>`` with the package's own downloader into its
    cache (``OGBENCH_DATA_DIR``, default ``~/.ogbench/data``) and converts it to a Minari dataset."""
    name = dataset_id.removeprefix(OGBENCH_NAMESPACE)
    match = re.fullmatch(r"(.+)-(play|noisy)-(v\d+)", name)
    env_name = f"{match[1]}-{match[3]}" if match else ""
    if not dataset_id.startswith(OGBENCH_NAMESPACE) or not OGBENCH_ENV_RE.match(env_name):
        raise UserError(
            f"dataset {dataset_id!r} is not an OGBench manipulation dataset; use "
            "ogbench/<env>-<play|noisy>-v0 with env cube-single, cube-double, scene, puzzle-3x3, ... "
            "(e.g. ogbench/cube-single-play-v0)"
        )
    local = OWN_NAMESPACE + "ogbench/" + name
    ours = [r for r in recipes if r.startswith(OWN_NAMESPACE + "ogbench/")]
    alt = local if local in recipes else "one of " + ", ".join(ours)

    def fail(reason: str) -> UserError:
        reason = " ".join(reason.split())[:200]
        return UserError(
            f"dataset {dataset_id!r} could not be downloaded from OGBench ({reason}); to generate it "
            f"locally from OGBench's recipe run: myreinflow data --dataset {alt}"
        )

    import_ogbench()
    from ogbench.utils import DATASET_URL

    url = urlparse(DATASET_URL)
    reason = _unreachable(*(_proxy() or (url.hostname or "", url.port or 443)))
    if reason:
        raise fail(reason)
    cache = Path(os.environ.get("OGBENCH_DATA_DIR", "~/.ogbench/data")).expanduser()
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        _run_download(OGBENCH_CHILD, [name, str(cache)], Path(tmp) / "result.json", progress, fail)
    episodes = episodes_of_npz(cache / f"{name}.npz")
    description = f"OGBench's official {name} ({DATASET_URL}/{name}.npz), converted to Minari."
    meta = {"myreinflow_ogbench_file": f"{DATASET_URL}/{name}.npz"}
    return create_minari(dataset_id, env_name, episodes, meta, description, "ogbench-official")


def dataset_card(dataset) -> dict[str, Any]:
    """Summary of a ``minari.MinariDataset``: id, source, env, size, returns, reference scores and, for
    tasks with a distance metric in ``myreinflow.envs.TASK_METRICS`` (Pusher), its mean at episode ends."""
    meta = dataset.storage.metadata
    env_spec = dataset.spec.env_spec
    env_id = env_spec.id if env_spec is not None else None
    returns, final_obs = [], []
    for ep in dataset.iterate_episodes():
        returns.append(float(np.sum(ep.rewards)))
        if isinstance(ep.observations, np.ndarray):
            final_obs.append(ep.observations[-1])
    returns_arr = np.asarray(returns)

    def opt_float(key: str) -> float | None:
        return float(meta[key]) if meta.get(key) is not None else None

    card: dict[str, Any] = {
        "id": dataset.spec.dataset_id,
        "source": "generated" if "myreinflow_recipe" in meta else "minari",
        "env_id": env_id,
        "episodes": int(dataset.total_episodes),
        "steps": int(dataset.total_steps),
        "return_mean": float(returns_arr.mean()) if len(returns) else None,
        "return_std": float(returns_arr.std()) if len(returns) else None,
        "ref_min_score": opt_float("ref_min_score"),
        "ref_max_score": opt_float("ref_max_score"),
    }
    dist = None
    if env_id and len(final_obs) == len(returns) > 0:
        from myreinflow.envs import task_metrics

        dist = task_metrics(env_id, np.stack(final_obs)).get("final_distance")
        if dist is not None:
            card["final_distance_mean"] = float(dist.mean())
    if "myreinflow_recipe" in meta:
        card["recipe"] = recipe = json.loads(meta["myreinflow_recipe"])
        if "components" in recipe:
            card["components"] = _component_stats(recipe, returns_arr, dist)
    if META_KEY in meta:  # task-agnostic OGBench data: returns say nothing, its tasks do
        for key in ("return_mean", "return_std", "ref_min_score", "ref_max_score"):
            card.pop(key)
        card["source"] = "generated" if "myreinflow_recipe" in meta else "ogbench"
        card |= task_card(meta)
        if "myreinflow_unhealthy_retries" in meta:
            card["unhealthy_episodes_retried"] = int(meta["myreinflow_unhealthy_retries"])
    return card


def _component_stats(recipe: dict, returns: np.ndarray, dist: np.ndarray | None) -> list[dict[str, Any]]:
    """Per-component episode count, mean return and (Pusher) mean final distance of a generated dataset."""
    comps = tuple(Component(**c) for c in recipe["components"])
    labels = Recipe(**{**recipe, "components": comps}).episode_components()
    if len(labels) != len(returns):
        return []
    stats = []
    for i, c in enumerate(recipe["components"]):
        mask = labels == i
        row = {**c, "episodes": int(mask.sum()), "return_mean": float(returns[mask].mean())}
        if dist is not None:
            row["final_distance_mean"] = float(dist[mask].mean())
        stats.append(row)
    return stats


def write_card(card: dict[str, Any], path: str | os.PathLike) -> None:
    """Writes ``card`` as JSON atomically (temporary file in the same folder, then rename)."""
    atomic_write_text(path, json.dumps(card, indent=2, sort_keys=False))
