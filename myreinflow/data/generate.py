"""Generate a Minari dataset from a recipe with scripted experts, in parallel and atomically.

Episode i uses env/policy seed ``recipe.seed + i`` and component ``recipe.episode_components()[i]``, so
the data do not depend on the number of workers. The dataset is written into a hidden temporary datasets
root next to the real one and renamed into place only when complete.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from typing import Any

import numpy as np

from myreinflow.data.manipspace import generate_manipspace
from myreinflow.data.recipes import OracleRecipe, Recipe, get_recipe
from myreinflow.data.store import run_tasks, write_dataset
from myreinflow.errors import UserError

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
        return generate_manipspace(recipe, progress, workers)
    workers = workers if workers is not None else min(2, os.cpu_count() or 1)

    results = run_tasks(_tasks(recipe), _run_episode, workers, progress, desc=recipe.id)
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
