"""Observation standardisation and action scaling to [-1, 1]; travels inside checkpoints."""

from __future__ import annotations

import numpy as np
import torch


class Normalizer:
    """obs → (obs − mean)/std; continuous actions ↔ [-1, 1] by the bounds [low, high].

    Discrete actions (`low is None`) pass through unchanged.
    """

    def __init__(self, obs_mean, obs_std, act_low=None, act_high=None):
        self.obs_mean = torch.as_tensor(obs_mean, dtype=torch.float32)
        self.obs_std = torch.as_tensor(obs_std, dtype=torch.float32)
        self.act_low = None if act_low is None else torch.as_tensor(act_low, dtype=torch.float32)
        self.act_high = None if act_high is None else torch.as_tensor(act_high, dtype=torch.float32)

    @classmethod
    def fit(cls, observations: np.ndarray, action_space=None, actions: np.ndarray | None = None):
        """Statistics of the dataset's observations; action bounds from the space (finite) or the data."""
        obs = np.asarray(observations, dtype=np.float64)
        std = np.maximum(obs.std(axis=0), 1e-3)  # constant features (e.g. a fixed goal) stay finite
        low = high = None
        if action_space is not None and hasattr(action_space, "low"):
            low, high = np.asarray(action_space.low, float), np.asarray(action_space.high, float)
            if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
                low, high = actions.min(axis=0), actions.max(axis=0)
            high = np.where(high - low < 1e-6, low + 1e-6, high)
        return cls(obs.mean(axis=0), std, low, high)

    @property
    def discrete(self) -> bool:
        return self.act_low is None

    def to(self, device) -> Normalizer:
        move = lambda x: None if x is None else x.to(device)  # noqa: E731
        return Normalizer(move(self.obs_mean), move(self.obs_std), move(self.act_low), move(self.act_high))

    def normalize_obs(self, obs: torch.Tensor) -> torch.Tensor:
        return (obs - self.obs_mean) / self.obs_std

    def scale_action(self, action: torch.Tensor) -> torch.Tensor:
        if self.discrete:
            return action
        return 2 * (action - self.act_low) / (self.act_high - self.act_low) - 1

    def unscale_action(self, action: torch.Tensor) -> torch.Tensor:
        if self.discrete:
            return action
        return self.act_low + (action + 1) * 0.5 * (self.act_high - self.act_low)

    def state_dict(self) -> dict:
        state = {"obs_mean": self.obs_mean.cpu(), "obs_std": self.obs_std.cpu()}
        if not self.discrete:
            state.update(act_low=self.act_low.cpu(), act_high=self.act_high.cpu())
        return state

    @classmethod
    def from_state_dict(cls, state: dict) -> Normalizer:
        return cls(state["obs_mean"], state["obs_std"], state.get("act_low"), state.get("act_high"))
