"""A loaded Minari dataset as training needs it: which data (`DataOptions`), its spaces, what evaluation
needs to know about its env, and its chunked transitions with a fitted normaliser."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from myreinflow.data.chunks import ChunkedTransitions, episodes_of
from myreinflow.data.normalize import Normalizer
from myreinflow.data.tasks import import_ogbench, ogbench_env, relabel_episodes, task_env_id
from myreinflow.envs import env_spec_json
from myreinflow.errors import UserError


def spaces_of(dataset) -> tuple[int, int, int | None]:
    """(obs_dim, act_dim, n_actions) for Box observations and Box or Discrete actions."""
    obs_space, act_space = dataset.observation_space, dataset.action_space
    if not isinstance(obs_space, gym.spaces.Box) or len(obs_space.shape) != 1:
        raise UserError(f"observation space {obs_space} is not supported; allowed: a flat Box")
    if isinstance(act_space, gym.spaces.Discrete):
        return obs_space.shape[0], 1, int(act_space.n)
    if isinstance(act_space, gym.spaces.Box) and len(act_space.shape) == 1:
        return obs_space.shape[0], act_space.shape[0], None
    raise UserError(f"action space {act_space} is not supported; allowed: a flat Box or Discrete")


def dataset_info(dataset, task: int | None = None, reward: str = "dense") -> dict:
    """Env and reference scores that evaluation needs (stored in every checkpoint as `dataset`). With a
    `task` (OGBench data), the env is the task's single-task env and the info names the task and reward."""
    meta = dataset.storage.metadata
    if task is None:
        spec = env_spec_json(dataset)
    else:
        import_ogbench()
        spec = gym.spec(task_env_id(ogbench_env(dataset), task)).to_json()
    info = {
        "dataset_id": dataset.spec.dataset_id if hasattr(dataset, "spec") else meta["dataset_id"],
        "env_spec": spec,
        "env_id": gym.envs.registration.EnvSpec.from_json(spec).id,
        "ref_min_score": meta.get("ref_min_score"),
        "ref_max_score": meta.get("ref_max_score"),
    }
    return info if task is None else info | {"task": task, "reward": reward}


def load_transitions(
    dataset,
    horizon_steps: int,
    cond_steps: int,
    device,
    discount: float | None = None,
    normalizer: Normalizer | None = None,
    task: int | None = None,
    reward: str = "dense",
) -> tuple[ChunkedTransitions, Normalizer]:
    """A Minari dataset's chunked transitions on `device`, and the normaliser (fitted unless given).
    With a `discount` and a `task` (OGBench data), rewards and per-step masks are the task's."""
    _, _, n_actions = spaces_of(dataset)
    episodes = episodes_of(dataset)
    if discount is not None and task is not None:
        episodes = relabel_episodes(episodes, ogbench_env(dataset), task, reward)
    if normalizer is None:
        observations = np.concatenate([ep["observations"] for ep in episodes])
        actions = np.concatenate([ep["actions"] for ep in episodes])
        normalizer = Normalizer.fit(observations, None if n_actions else dataset.action_space, actions)
    data = ChunkedTransitions(episodes, horizon_steps, cond_steps, normalizer, device, discount)
    return data, normalizer
