"""Generate a Minari dataset from a recipe with scripted experts, in parallel and atomically.

Episode i uses env/policy seed ``recipe.seed + i`` and component ``recipe.episode_components()[i]``, so
the data do not depend on the number of workers. The dataset is written into a hidden temporary datasets
root next to the real one and renamed into place only when complete.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
import tempfile
import threading
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from myreinflow.data.recipes import OracleRecipe, Recipe, get_recipe
from myreinflow.errors import UserError

TMP_PREFIX = ".myreinflow-tmp-"
NAMESPACE_DESCRIPTION = (
    "Datasets generated locally by myreinflow: scripted experts, and OGBench's manipulation datasets made by "
    "the ogbench package's oracles (see recipes.yaml)."
)

# per worker process: env and policies are built once and reused across episodes
_CACHE: dict[Any, Any] = {}


def _policy(env_id: str, expert: str, comp: dict | None):
    import gymnasium as gym

    from myreinflow.data.experts import make_policy

    if env_id not in _CACHE:
        _CACHE.clear()  # envs of other recipes; their policies hold references to them
        _CACHE[env_id] = gym.make(env_id)
    env = _CACHE[env_id]
    key = (env_id, expert, json.dumps(comp, sort_keys=True))
    if key not in _CACHE:
        if comp is None:
            _CACHE[key] = make_policy("random", env)
        else:
            kw = {k: comp[k] for k in ("sigma", "eps", "decoy", "switch_every")}
            _CACHE[key] = make_policy(expert, env, **kw)
    return env, _CACHE[key]


def _run_episode(task: tuple) -> dict[str, Any]:
    """One episode; ``comp`` None means uniform random. ``full`` False returns only the return."""
    env_id, expert, comp, seed, full = task
    env, policy = _policy(env_id, expert, comp)
    obs, _ = env.reset(seed=int(seed))
    policy.reset(int(seed))
    observations, actions, rewards, terms, truncs = [obs], [], [], [], []
    while True:
        action = policy(obs)
        obs, reward, terminated, truncated, _ = env.step(action)
        observations.append(obs)
        actions.append(action)
        rewards.append(float(reward))
        terms.append(bool(terminated))
        truncs.append(bool(truncated))
        if terminated or truncated:
            break
    out: dict[str, Any] = {"seed": int(seed), "return": float(np.sum(rewards))}
    if full:
        out.update(
            observations=np.asarray(observations),
            actions=np.asarray(actions),
            rewards=np.asarray(rewards),
            terminations=np.asarray(terms),
            truncations=np.asarray(truncs),
        )
    return out


def _tasks(recipe: Recipe) -> list[tuple]:
    comps = [asdict(c) for c in recipe.components]
    tasks = [
        (recipe.env, recipe.expert, comps[c], int(s), True)
        for c, s in zip(recipe.episode_components(), recipe.episode_seeds(), strict=True)
    ]
    clean = {"fraction": 1.0, "sigma": 0.0, "eps": 0.0, "decoy": False, "switch_every": None}
    for comp in (None, clean):  # reference scores: uniform random, then the clean expert
        tasks += [(recipe.env, recipe.expert, comp, int(s), False) for s in recipe.ref_seeds()]
    return tasks


def run_tasks(tasks: list[tuple], workers: int, progress: bool, desc: str, fn=None, unit_scale=None):
    """Runs episodes (`fn` of each task, default a scripted-expert episode) in order-preserving parallel
    worker processes; with `unit_scale` (steps per episode) the progress bar counts steps."""
    from tqdm.auto import tqdm

    fn = fn or _run_episode
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

    from myreinflow.utils import atomic_write_text  # imports torch: not at module level (spawned workers)

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


def generate_dataset(recipe: Recipe | OracleRecipe | str, progress: bool = True, workers: int | None = None):
    """Generates ``recipe`` (a :class:`Recipe`, an :class:`OracleRecipe` or its id) into the local Minari
    datasets root (an OracleRecipe: see `data/manipspace.py`).

    Stores ``ref_min_score`` (uniform random) and ``ref_max_score`` (clean scripted expert), each the mean
    return over ``recipe.ref_episodes`` episodes on seeds disjoint from the dataset's. Returns the loaded
    ``minari.MinariDataset``. Raises :class:`UserError` if the dataset already exists.
    """
    from minari.data_collector import EpisodeBuffer
    from minari.storage import get_dataset_path

    if isinstance(recipe, str):
        recipe = get_recipe(recipe)
    root = get_dataset_path()
    if (root / recipe.id).exists():
        raise UserError(
            f"dataset {recipe.id!r} already exists at {root / recipe.id}; delete it to regenerate"
        )
    if isinstance(recipe, OracleRecipe):
        from myreinflow.data.manipspace import generate_manipspace

        return generate_manipspace(recipe, progress, workers)
    workers = workers if workers is not None else min(2, os.cpu_count() or 1)

    results = run_tasks(_tasks(recipe), workers, progress, desc=recipe.id)
    data, refs = results[: recipe.episodes], results[recipe.episodes :]
    ref_min = float(np.mean([r["return"] for r in refs[: recipe.ref_episodes]]))
    ref_max = float(np.mean([r["return"] for r in refs[recipe.ref_episodes :]]))
    buffers = [
        EpisodeBuffer(
            id=i,
            seed=r["seed"],
            observations=r["observations"],
            actions=r["actions"],
            rewards=r["rewards"],
            terminations=r["terminations"],
            truncations=r["truncations"],
        )
        for i, r in enumerate(data)
    ]

    # the recipe marks the dataset as generated and keeps how (dataset_card reads it back)
    return write_dataset(
        recipe.id,
        buffers,
        {"myreinflow_recipe": json.dumps(asdict(recipe))},
        env=recipe.env,
        eval_env=recipe.env,
        algorithm_name=f"scripted-{recipe.expert}-expert",
        description=recipe.description or None,
        ref_min_score=ref_min,
        ref_max_score=ref_max,
        num_episodes_average_score=recipe.ref_episodes,
    )


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
