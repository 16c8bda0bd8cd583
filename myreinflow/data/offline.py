"""A loaded Minari dataset as training needs it: its spaces, what evaluation needs to know about its env,
and its chunked transitions with a fitted normaliser."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from myreinflow.data.chunks import ChunkedTransitions, episodes_of
from myreinflow.data.normalize import Normalizer
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


def dataset_info(dataset) -> dict:
    """Env and reference scores that evaluation needs (stored in every checkpoint as `dataset`)."""
    meta = dataset.storage.metadata
    spec = env_spec_json(dataset)
    return {
        "dataset_id": dataset.spec.dataset_id if hasattr(dataset, "spec") else meta["dataset_id"],
        "env_spec": spec,
        "env_id": gym.envs.registration.EnvSpec.from_json(spec).id,
        "ref_min_score": meta.get("ref_min_score"),
        "ref_max_score": meta.get("ref_max_score"),
    }


def load_transitions(
    dataset,
    horizon_steps: int,
    cond_steps: int,
    device,
    discount: float | None = None,
    normalizer: Normalizer | None = None,
) -> tuple[ChunkedTransitions, Normalizer]:
    """A Minari dataset's chunked transitions on `device`, and the normaliser (fitted unless given)."""
    _, _, n_actions = spaces_of(dataset)
    episodes = episodes_of(dataset)
    if normalizer is None:
        observations = np.concatenate([ep["observations"] for ep in episodes])
        actions = np.concatenate([ep["actions"] for ep in episodes])
        normalizer = Normalizer.fit(observations, None if n_actions else dataset.action_space, actions)
    data = ChunkedTransitions(episodes, horizon_steps, cond_steps, normalizer, device, discount)
    return data, normalizer
