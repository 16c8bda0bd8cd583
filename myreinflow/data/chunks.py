"""Chunked transitions for training: stacked observations and action chunks, sampled on the device.

For a step i of an episode the sample holds `cond_steps` observations ending at i (the episode's first
observation repeats before its start) and the `horizon_steps` actions starting at i (scaled to the
action box and clipped to ±(1 − 1e−5), as the FQL reference's loader does). A chunk never crosses
into the next episode: past the episode's last action the last action repeats and `valid` is False.
Sampling is pure tensor indexing.

With a `discount` γ (and episodes that carry `rewards`, `terminations`), each step also gets the chunked
TD fields of Q-chunking, for a chunk of h = `horizon_steps` actions:

- `reward`: Σ_{j<h} γ^j r_{i+j}, summed only over steps inside the episode;
- `next_obs`: the stacked observations at step i + h (the final observation when the chunk ends exactly
  at the episode's end);
- `mask`: 0 when the episode terminates inside the chunk (no bootstrapping), else 1;
- `td_valid`: the TD target is correct — the chunk lies inside the episode, or the episode terminates
  inside it. Chunks cut off by a truncation (time limit) are not: there is no s_{i+h} to bootstrap from
  and their tail actions never ran, so TD losses must mask them out.

For h = 1 every step is `td_valid` and the fields are plain one-step transitions. Episodes can be added
later (`extend`, the online replay): their index tables are built alone and appended.
"""

from __future__ import annotations

import numpy as np
import torch

from myreinflow.data.normalize import Normalizer
from myreinflow.data.tasks import STATE_KEYS

# scaled dataset actions are clipped to ±ACTION_CLIP, as FQL's loader does (`action_clip_eps` 1e-5):
# actions exactly at the bounds are targets a flow or one-step policy reaches only with clipping
ACTION_CLIP = 1.0 - 1e-5


class ChunkedTransitions:
    """All transitions of a dataset on one device, with index tables for chunked sampling."""

    def __init__(
        self,
        episodes: list[dict],
        horizon_steps: int,
        cond_steps: int,
        normalizer: Normalizer,
        device: str | torch.device = "cpu",
        discount: float | None = None,
    ):
        if horizon_steps < 1 or cond_steps < 1:
            raise ValueError(f"horizon_steps and cond_steps must be >= 1, got {horizon_steps}, {cond_steps}")
        self.horizon_steps, self.cond_steps, self.device = horizon_steps, cond_steps, torch.device(device)
        self.normalizer, self.discount = normalizer.to("cpu"), discount
        self.num_episodes, self.num_obs = 0, 0
        self.fields: dict[str, torch.Tensor] = {}
        self.extend(episodes)

    def __len__(self) -> int:
        return self.fields["act_idx"].shape[0] if self.fields else 0

    def extend(self, episodes: list[dict]) -> None:
        """Append episodes ({observations (T+1, d), actions (T, …)[, rewards, terminations]})."""
        if not episodes:
            return
        tables = self._tables(episodes, step_offset=len(self), obs_offset=self.num_obs)
        for name, value in tables.items():
            value = value.to(self.device)
            self.fields[name] = torch.cat([self.fields[name], value]) if name in self.fields else value
        self.num_episodes += len(episodes)
        self.num_obs += sum(len(ep["observations"]) for ep in episodes)

    def _tables(self, episodes: list[dict], step_offset: int, obs_offset: int) -> dict[str, torch.Tensor]:
        h, c = self.horizon_steps, self.cond_steps
        lengths = np.array([len(ep["actions"]) for ep in episodes])
        starts = step_offset + np.concatenate([[0], np.cumsum(lengths)[:-1]])
        ep_of_step = np.repeat(np.arange(len(episodes)), lengths)
        step = step_offset + np.arange(lengths.sum())
        first, last = starts[ep_of_step], (starts + lengths - 1)[ep_of_step]
        # observation arrays hold T + 1 entries per episode: step i's observation sits at i + episodes before
        obs_shift = obs_offset - step_offset + ep_of_step

        def stacked_obs(at: np.ndarray) -> np.ndarray:
            past = at[:, None] + np.arange(-c + 1, 1)[None, :]
            return np.maximum(past, first[:, None]) + obs_shift[:, None]

        future = step[:, None] + np.arange(h)[None, :]
        inside = future <= last[:, None]
        tables = {
            "obs_idx": stacked_obs(step),
            "act_idx": np.minimum(future, last[:, None]),
            "valid": inside,
        }

        observations = np.concatenate([ep["observations"] for ep in episodes]).astype(np.float32)
        actions = np.concatenate([ep["actions"] for ep in episodes])
        tables["observations"] = self.normalizer.normalize_obs(torch.as_tensor(observations))
        if self.normalizer.discrete:
            tables["actions"] = torch.as_tensor(actions.astype(np.int64))
        else:
            scaled = self.normalizer.scale_action(torch.as_tensor(actions, dtype=torch.float32))
            tables["actions"] = scaled.clamp(-ACTION_CLIP, ACTION_CLIP)

        if self.discount is not None:
            rewards = np.concatenate([ep["rewards"] for ep in episodes]).astype(np.float64)
            masks = np.concatenate([step_masks(ep) for ep in episodes])
            local = np.minimum(future, last[:, None]) - step_offset
            # a step of the chunk counts while no earlier step of it ended the task (mask 0)
            ended = (masks[local] == 0) & inside
            counts = inside & (np.cumsum(ended, axis=1) - ended == 0)
            stops = ended.any(axis=1)
            tables["reward"] = (rewards[local] * counts * self.discount ** np.arange(h)).sum(axis=1)
            tables["next_obs_idx"] = stacked_obs(np.minimum(step + h, last + 1))
            tables["mask"] = 1.0 - stops
            tables["td_valid"] = inside.all(axis=1) | stops
        return {
            k: v if isinstance(v, torch.Tensor) else torch.as_tensor(v, dtype=_DTYPES.get(k))
            for k, v in tables.items()
        }

    def get(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        """Batch for step indices `idx`: obs (B, cond, obs_dim), actions (B, H, act_dim) or (B, H), valid;
        with a discount also reward, next_obs, mask (float) and td_valid (bool), each (B,) but next_obs."""
        f = self.fields
        batch = {
            "obs": f["observations"][f["obs_idx"][idx]],
            "actions": f["actions"][f["act_idx"][idx]],
            "valid": f["valid"][idx],
        }
        if self.discount is not None:
            batch["next_obs"] = f["observations"][f["next_obs_idx"][idx]]
            for k in ("reward", "mask", "td_valid"):
                batch[k] = f[k][idx]
        return batch

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        idx = torch.randint(len(self), (batch_size,), device=self.device, generator=generator)
        return self.get(idx)

    def epoch(self, batch_size: int, generator: torch.Generator | None = None):
        """One pass over all steps in a random order (the last partial batch is dropped if > 1 batch)."""
        perm = torch.randperm(len(self), device=self.device, generator=generator)
        n = len(self) // batch_size * batch_size or len(self)
        for start in range(0, n, batch_size):
            yield self.get(perm[start : start + batch_size])


_DTYPES = {
    "obs_idx": torch.int64,
    "act_idx": torch.int64,
    "next_obs_idx": torch.int64,
    "reward": torch.float32,
    "mask": torch.float32,
    "valid": torch.bool,
    "td_valid": torch.bool,
}


def step_masks(episode: dict) -> np.ndarray:
    """Per-step masks of an episode: its own `masks` (a task's success, OGBench data), else 0 only at a
    final step that terminates the episode."""
    if "masks" in episode:
        return np.asarray(episode["masks"], dtype=np.float64)
    masks = np.ones(len(episode["actions"]))
    masks[-1] = 1.0 - bool(episode["terminations"][-1])
    return masks


def episodes_of(dataset) -> list[dict]:
    """A Minari dataset's episodes as plain dicts (observations, actions, rewards, terminations, and the
    `states` of every observation where the infos keep them)."""
    episodes = []
    for ep in dataset.iterate_episodes():
        episode = {
            "observations": ep.observations,
            "actions": ep.actions,
            "rewards": ep.rewards,
            "terminations": ep.terminations,
        }
        states = {k: ep.infos[k] for k in STATE_KEYS if k in (ep.infos or {})}
        if states:
            episode["states"] = states
        episodes.append(episode)
    return episodes
