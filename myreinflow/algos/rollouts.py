"""ReinFlow's environment side: envs that take a whole action chunk per step, the reward scaling over a
whole rollout, GAE, and one iteration's rollout through the noisy chain of a `ReinFlowAgent`
(`algos/reinflow.py`).
"""

from __future__ import annotations

import math
from collections import defaultdict

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from myreinflow.configs import ReinFlowConfig
from myreinflow.envs import spec_from_json
from myreinflow.evaluation import online_reset_seed
from myreinflow.policy import ChunkPolicy

RETURN_CLIP = 10.0  # scaled rewards are clipped to ±10


class ChunkEnv(gym.Wrapper):
    """One step of this env runs a whole action chunk open-loop (stopping at the episode's end): the
    reward is the chunk's summed reward, `success` whether any step succeeded. With `sparse`, OGBench's
    dense reward becomes the sparse one (success − 1), as the datasets' relabelling does."""

    def __init__(self, env: gym.Env, horizon: int, sparse: bool = False):
        super().__init__(env)
        low, high = env.action_space.low, env.action_space.high
        self.action_space = gym.spaces.Box(np.stack([low] * horizon), np.stack([high] * horizon))
        self.sparse = sparse

    def step(self, chunk):
        total, success, steps = 0.0, False, 0
        for action in chunk:
            obs, reward, terminated, truncated, info = self.env.step(action)
            total += -float(reward != 0) if self.sparse else float(reward)
            success |= bool(info.get("success", False))
            steps += 1
            if terminated or truncated:
                break
        return obs, total, terminated, truncated, {**info, "success": success, "chunk_steps": steps}


class ReturnScale:
    """Running std of the discounted return (the reference's `RunningRewardScaler`): once per iteration,
    the returns of every env and step of its rollout (γR + r, restarted after an episode's end) update
    the running statistics, then each reward of the iteration is divided by their std and clipped to
    ±RETURN_CLIP."""

    def __init__(self, gamma: float):
        self.gamma = gamma
        self.count, self.mean, self.m2 = 0, 0.0, 0.0

    def __call__(self, rewards: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """(T, N) rewards of one rollout scaled; `ends` (T, N): an episode ended at that step."""
        returns, running = np.zeros_like(rewards, dtype=np.float64), np.zeros(rewards.shape[1])
        for t in range(rewards.shape[0]):
            running = running * self.gamma + rewards[t]
            returns[t] = running
            running = np.where(ends[t], 0.0, running)
        n, mean, m2 = returns.size, float(returns.mean()), float(((returns - returns.mean()) ** 2).sum())
        total = self.count + n  # Chan et al.'s merge of two sets' mean and sum of squares
        delta = mean - self.mean
        self.m2 += m2 + delta**2 * self.count * n / total
        self.mean += delta * n / total
        self.count = total
        var = self.m2 / self.count
        return np.clip(rewards / math.sqrt(var + 1e-8), -RETURN_CLIP, RETURN_CLIP)

    def state_dict(self) -> dict:  # plain floats: the checkpoint loads weights only
        return {"count": self.count, "mean": self.mean, "m2": self.m2}

    def load_state_dict(self, state: dict) -> None:
        self.count, self.mean, self.m2 = state["count"], state["mean"], state["m2"]


def chunk_envs(info: dict, num_envs: int, horizon: int) -> gym.vector.VectorEnv:
    """`num_envs` ChunkEnvs of the checkpoint's env (same-step autoreset: a finished episode's final
    observation is in the infos, the returned one is the next episode's)."""
    sparse = info.get("reward") == "sparse"
    return gym.make_vec(
        spec_from_json(info["env_spec"]),
        num_envs=num_envs,
        vectorization_mode="sync",
        vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP},
        wrappers=[lambda env: ChunkEnv(env, horizon, sparse)],
    )


def gae(rewards, values, next_values, terminated, ends, gamma: float, lam: float):
    """(advantages, returns) of (T, N) arrays: δ = r + γ(1 − terminated)V(s') − V(s), accumulated
    backwards with γλ and cut at episode ends (`ends`: terminated or truncated)."""
    advantages = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[0])
    for t in reversed(range(rewards.shape[0])):
        delta = rewards[t] + gamma * (1 - terminated[t]) * next_values[t] - values[t]
        running = delta + gamma * lam * (1 - ends[t]) * running
        advantages[t] = running
    return advantages, advantages + values


def explained_variance(returns: torch.Tensor, values: torch.Tensor) -> float:
    """1 − Var(returns − values) / Var(returns): how much of the rollout's returns the value network
    predicted before the iteration's updates (1: all, 0: no better than their mean, < 0: worse)."""
    var = returns.var()
    return float(1 - (returns - values).var() / var) if var > 0 else float("nan")


def step_info(infos: dict, key: str, ended: np.ndarray) -> np.ndarray:
    """Per env, the value of `key` in its last step's info (0 where absent): a finished episode's is in
    `final_info` (same-step autoreset puts the next episode's reset info in its place)."""
    values = np.zeros(len(ended))
    for source, rows in ((infos, ~ended), (infos.get("final_info", {}), ended)):
        if key in source:
            mask = rows & source[f"_{key}"]
            values[mask] = np.asarray(source[key], dtype=np.float64)[mask]
    return values


def collect(
    run, agent: nn.Module, envs, policy: ChunkPolicy, scale: ReturnScale, cfg: ReinFlowConfig, chunks: int
):
    """One iteration's rollout from freshly reset envs: a flat batch of chunk transitions (normalised
    observations, chain states, their log-likelihoods, GAE advantages and returns) and the finished
    episodes' (return, success)."""
    n, device = cfg.num_envs, run.device
    first_seed = online_reset_seed(cfg.seed, run.env_steps)
    raw, _ = envs.reset(seed=[first_seed + i for i in range(n)])

    def tensor(array) -> torch.Tensor:
        return torch.as_tensor(np.asarray(array), dtype=torch.float32, device=device)

    steps: dict[str, list] = defaultdict(list)
    episode_return, episodes = np.zeros(n), []
    for _ in range(chunks):
        obs = policy.normalizer.normalize_obs(tensor(raw))
        with torch.no_grad():
            path = agent.chain.sample(obs, run.generator)
            logp = agent.normalized_log_prob(obs, path)
            value = agent.value(obs).squeeze(-1)
        chunk = path[-1].clamp(-1, 1).reshape(n, policy.horizon_steps, -1)
        raw, reward, terminated, truncated, infos = envs.step(
            policy.normalizer.unscale_action(chunk).cpu().numpy()
        )
        ended = terminated | truncated
        last = raw.copy()
        if ended.any():  # the finished episodes' last observations, for bootstrapping truncations
            last[ended] = np.stack(infos["final_obs"][ended])
        with torch.no_grad():
            next_value = agent.value(policy.normalizer.normalize_obs(tensor(last))).squeeze(-1)
        run.env_steps += int(step_info(infos, "chunk_steps", ended).sum())
        episode_return += reward
        success = step_info(infos, "success", ended)
        for i in np.flatnonzero(ended):
            episodes.append((float(episode_return[i]), float(success[i])))
        episode_return[ended] = 0.0
        items = {"obs": obs, "path": path.transpose(0, 1), "logp": logp, "value": value}
        items |= {"next_value": next_value, "reward": reward, "terminated": tensor(terminated), "end": ended}
        for key, item in items.items():
            steps[key].append(item)
    rewards, ends = np.stack(steps.pop("reward")), np.stack(steps.pop("end"))
    scaled = scale(rewards, ends) if cfg.reward_scale else rewards  # the whole rollout at once
    stacked = {k: torch.stack(v) for k, v in steps.items()} | {"reward": tensor(scaled), "end": tensor(ends)}
    advantages, returns = gae(
        stacked["reward"], stacked["value"], stacked["next_value"], stacked["terminated"],
        stacked["end"], cfg.gamma, cfg.gae_lambda,
    )  # fmt: skip
    batch = {k: stacked[k].flatten(0, 1) for k in ("obs", "path", "logp")}
    return batch | {"advantages": advantages.flatten(), "returns": returns.flatten()}, episodes
