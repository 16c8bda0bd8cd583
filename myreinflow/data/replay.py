"""Online experience: the episode being collected, and the finished episodes that join the replay."""

from __future__ import annotations

import numpy as np
import torch

from myreinflow.stats import normalized_score


class Episode:
    """An online episode being collected, and the policy's stacked observations."""

    def __init__(self, obs, cond_steps: int):
        self.observations, self.actions, self.rewards, self.terminations = [obs], [], [], []
        self.cond_steps = cond_steps

    def add(self, action, reward, terminated, next_obs) -> None:
        self.actions.append(action)
        self.rewards.append(reward)
        self.terminations.append(terminated)
        self.observations.append(next_obs)

    def history(self) -> np.ndarray:
        recent = self.observations[-self.cond_steps :]
        return np.stack([recent[0]] * (self.cond_steps - len(recent)) + recent)

    def arrays(self) -> dict:
        keys = ("observations", "actions", "rewards", "terminations")
        return {k: np.asarray(getattr(self, k)) for k in keys}


class OnlineEpisodes:
    """The episodes collected online: each joins the replay (`data`) and the checkpoint."""

    def __init__(self, data):
        self.data, self.episodes, self.returns = data, [], []

    def add(self, episode: dict) -> None:
        self.episodes.append(episode)
        self.data.extend([episode])
        self.returns.append(float(np.sum(episode["rewards"])))

    def summary(self, env_steps: int, dataset: dict) -> dict[str, float]:
        """`online/*` metrics: env steps and episodes so far, and the mean return and normalized score of
        the episodes finished since the last summary (none: left out)."""
        metrics = {"online/env_steps": env_steps, "online/episodes": len(self.episodes)}
        if self.returns:
            score = normalized_score(self.returns, dataset["ref_min_score"], dataset["ref_max_score"])
            metrics["online/episode_return"] = float(np.mean(self.returns))
            metrics["online/normalized_score"] = float(np.mean(score))
        self.returns = []
        return metrics

    def state_dict(self) -> list[dict]:
        return [{k: torch.as_tensor(v) for k, v in ep.items()} for ep in self.episodes]

    def load_state_dict(self, state: list[dict]) -> None:
        for episode in state:
            self.add({k: v.cpu().numpy() for k, v in episode.items()})
        self.returns = []  # a resumed run reports the episodes it collects itself
