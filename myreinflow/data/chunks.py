"""Chunked transitions for training: stacked observations and action chunks, sampled on the device.

For a step i of an episode the sample holds `cond_steps` observations ending at i (the episode's first
observation repeats before its start) and the `horizon_steps` actions starting at i. A chunk never crosses
into the next episode: past the episode's last action the last action repeats and `valid` is False, so
losses that care (e.g. chunked TD targets) can mask those steps. Sampling is pure tensor indexing.
"""

from __future__ import annotations

import numpy as np
import torch

from myreinflow.data.normalize import Normalizer


class ChunkedTransitions:
    """All transitions of a dataset on one device, with index tables for chunked sampling."""

    def __init__(
        self,
        episodes: list[dict],
        horizon_steps: int,
        cond_steps: int,
        normalizer: Normalizer,
        device: str | torch.device = "cpu",
    ):
        if horizon_steps < 1 or cond_steps < 1:
            raise ValueError(f"horizon_steps and cond_steps must be >= 1, got {horizon_steps}, {cond_steps}")
        self.horizon_steps, self.cond_steps, self.device = horizon_steps, cond_steps, torch.device(device)
        lengths = np.array([len(ep["actions"]) for ep in episodes])
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        ep_of_step = np.repeat(np.arange(len(episodes)), lengths)
        step = np.arange(lengths.sum())
        first, last = starts[ep_of_step], (starts + lengths - 1)[ep_of_step]
        # observation arrays hold T + 1 entries per episode: step i's observation sits at i + episode number
        obs_offset = ep_of_step

        past = step[:, None] + np.arange(-cond_steps + 1, 1)[None, :]
        self._obs_idx = np.maximum(past, first[:, None]) + obs_offset[:, None]
        future = step[:, None] + np.arange(horizon_steps)[None, :]
        self._valid = future <= last[:, None]
        self._act_idx = np.minimum(future, last[:, None])

        observations = np.concatenate([ep["observations"] for ep in episodes]).astype(np.float32)
        actions = np.concatenate([ep["actions"] for ep in episodes])
        norm = normalizer.to("cpu")
        obs_t = norm.normalize_obs(torch.as_tensor(observations))
        if normalizer.discrete:
            act_t = torch.as_tensor(actions.astype(np.int64))
        else:
            act_t = norm.scale_action(torch.as_tensor(actions, dtype=torch.float32))
        self.observations = obs_t.to(self.device)
        self.actions = act_t.to(self.device)
        self.obs_idx = torch.as_tensor(self._obs_idx, device=self.device)
        self.act_idx = torch.as_tensor(self._act_idx, device=self.device)
        self.valid = torch.as_tensor(self._valid, device=self.device)
        self.num_episodes = len(episodes)

    @classmethod
    def from_minari(cls, dataset, horizon_steps, cond_steps, normalizer, device="cpu") -> ChunkedTransitions:
        episodes = [
            {"observations": ep.observations, "actions": ep.actions} for ep in dataset.iterate_episodes()
        ]
        return cls(episodes, horizon_steps, cond_steps, normalizer, device)

    def __len__(self) -> int:
        return self.act_idx.shape[0]

    def get(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        """Batch for step indices `idx`: obs (B, cond, obs_dim), actions (B, H, act_dim) or (B, H), valid."""
        return {
            "obs": self.observations[self.obs_idx[idx]],
            "actions": self.actions[self.act_idx[idx]],
            "valid": self.valid[idx],
        }

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        idx = torch.randint(len(self), (batch_size,), device=self.device, generator=generator)
        return self.get(idx)

    def epoch(self, batch_size: int, generator: torch.Generator | None = None):
        """One pass over all steps in a random order (the last partial batch is dropped if > 1 batch)."""
        perm = torch.randperm(len(self), device=self.device, generator=generator)
        n = len(self) // batch_size * batch_size or len(self)
        for start in range(0, n, batch_size):
            yield self.get(perm[start : start + batch_size])
