"""Environment construction (from a dataset's env spec) and env-specific task metrics."""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import EnvSpec


def env_spec_json(dataset) -> str:
    """The environment a Minari dataset was collected in, as Gymnasium's EnvSpec JSON."""
    spec = dataset.spec.env_spec if hasattr(dataset, "spec") else None
    if spec is None:
        spec = dataset.recover_environment().spec
    return spec.to_json()


def _spec(spec_json: str) -> EnvSpec:
    spec = EnvSpec.from_json(spec_json)
    if str(spec.entry_point).startswith("ogbench."):
        from myreinflow.data.tasks import import_ogbench

        import_ogbench()  # quietly (see there)
    return spec


def make_env(spec_json: str) -> gym.Env:
    return gym.make(_spec(spec_json))


def make_vec_env(spec_json: str, num_envs: int, vectorization_mode: str = "sync") -> gym.vector.VectorEnv:
    return gym.make_vec(_spec(spec_json), num_envs=num_envs, vectorization_mode=vectorization_mode)


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
