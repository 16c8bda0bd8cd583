"""Environment construction (from a dataset's env spec) and env-specific task metrics."""

from __future__ import annotations

import atexit
from collections.abc import Callable

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import EnvSpec

from myreinflow.data.tasks import import_ogbench


def env_spec_json(dataset) -> str:
    """The environment a Minari dataset was collected in, as Gymnasium's EnvSpec JSON."""
    spec = dataset.spec.env_spec if hasattr(dataset, "spec") else None
    if spec is None:
        spec = dataset.recover_environment().spec
    return spec.to_json()


def spec_from_json(spec_json: str) -> EnvSpec:
    spec = EnvSpec.from_json(spec_json)
    if str(spec.entry_point).startswith("ogbench."):
        import_ogbench()  # quietly (see there)
    return spec


def make_env(spec_json: str) -> gym.Env:
    return gym.make(spec_from_json(spec_json))


def make_vec_env(spec_json: str, num_envs: int, vectorization_mode: str = "sync") -> gym.vector.VectorEnv:
    return gym.make_vec(spec_from_json(spec_json), num_envs=num_envs, vectorization_mode=vectorization_mode)


_VEC_ENVS: dict[tuple[str, int, str], gym.vector.VectorEnv] = {}


def shared_vec_env(spec_json: str, num_envs: int, vectorization_mode: str = "sync") -> gym.vector.VectorEnv:
    """A vector env built once per process and reused (closed at exit). Building costs more than
    stepping for OGBench: each env compiles its MJCF model twice (docs/benchmarks.md), and
    training evaluates the same env at every checkpoint. Every rollout resets each env with its own
    seed, so reuse does not change results."""
    key = (spec_json, num_envs, vectorization_mode)
    if key not in _VEC_ENVS:
        if not _VEC_ENVS:
            atexit.register(close_shared_vec_envs)
        _VEC_ENVS[key] = make_vec_env(spec_json, num_envs, vectorization_mode)
    return _VEC_ENVS[key]


def close_shared_vec_envs() -> None:
    while _VEC_ENVS:
        _VEC_ENVS.popitem()[1].close()


def pusher_metrics(final_obs: np.ndarray) -> dict[str, np.ndarray]:
    """Pusher-v5: obs[17:20] is the object, obs[20:23] the goal; success is distance < 0.1 m."""
    dist = np.linalg.norm(final_obs[:, 17:20] - final_obs[:, 20:23], axis=-1)
    return {"final_distance": dist, "success": (dist < 0.1).astype(np.float64)}


# env name (id without version) → metrics from the final observations of a batch of episodes
TASK_METRICS: dict[str, Callable[[np.ndarray], dict[str, np.ndarray]]] = {"Pusher": pusher_metrics}


def task_metrics(env_id: str, final_obs: np.ndarray) -> dict[str, np.ndarray]:
    name = env_id.split("/")[-1].split("-v")[0]
    fn = TASK_METRICS.get(name)
    return fn(final_obs) if fn else {}
