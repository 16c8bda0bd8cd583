"""Small known-answer data shared by the unit and algorithm tests (tests/ is importable: conftest.py lives
there)."""

import numpy as np

from myreinflow.data.normalize import Normalizer


def identity_normalizer(obs_dim: int, act_dim: int) -> Normalizer:
    """Identity normaliser: observations as they are, actions already in [-1, 1]."""
    return Normalizer(np.zeros(obs_dim), np.ones(obs_dim), -np.ones(act_dim), np.ones(act_dim))


def episode(length: int, terminated: bool, reward_offset: float = 0.0) -> dict:
    """Observation t (+ 100·offset), actions evenly from −1 to 1, reward t + 1 (+ offset)."""
    return {
        "observations": np.arange(length + 1, dtype=np.float32)[:, None] + 100 * reward_offset,
        "actions": np.linspace(-1, 1, length, dtype=np.float32)[:, None],
        "rewards": np.arange(1, length + 1, dtype=np.float64) + reward_offset,
        "terminations": np.array([False] * (length - 1) + [terminated]),
    }
