"""`myreinflow reinflow`: online PPO fine-tuning through the noise-injected sampler."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from myreinflow.options import RunOptions, check_config, param


@dataclass
class ReinFlowConfig(RunOptions):
    """ReinFlow (algos/reinflow.py): online PPO fine-tuning of a pretrained policy through its
    noise-injected sampler. The env, task, reward and normaliser come from the `init` checkpoint."""

    init: str = param("", "BC or FQL checkpoint (or run directory) whose policy is fine-tuned (required)")
    policy: str = param(
        "auto",
        "which policy of `init`: its main one (auto: the flow), the flow, or an FQL run's one-step policy",
        choices=("auto", "flow", "onestep"),
    )
    inference_steps: int = param(
        0, "steps K of the noise-injected chain (0 = ReFlow 4, MeanFlow 1; a one-step policy: 1)", minimum=0
    )
    env_steps: int = param(100_000, "env steps of fine-tuning", minimum=0)
    num_envs: int = param(16, "vectorised envs that collect each iteration's rollout", minimum=1)
    rollout_chunks: int = param(
        0,
        "action chunks per env and iteration, each a PPO transition; envs reset at each iteration "
        "(0 = one whole episode: the env's time limit / horizon_steps)",
        minimum=0,
    )
    sigma_min: float = param(
        0.08, "lower bound of the noise std σ(s, t) (in `sigma_units`)", exclusive_minimum=0
    )
    sigma_max: float = param(0.14, "upper bound of the noise std at the start", exclusive_minimum=0)
    sigma_units: str = param(
        "data",
        "units of σ per action dimension: data (its half-range in the dataset: the reference's min-max "
        "normalisation) or bounds (the action bounds' half-range: the policy's own normalisation)",
        choices=("data", "bounds"),
    )
    sigma_decay: bool = param(
        True, "hold σ_max for the first 35 % of iterations, then cosine-decay it to 0.3 σ_min + 0.7 σ_max"
    )
    noise_hidden: tuple[int, ...] = param((64, 64), "noise network σ(s, t) (tanh)", min_items=1, minimum=1)
    value_hidden: tuple[int, ...] = param((256,) * 3, "value network V(s) (mish)", min_items=1, minimum=1)
    lr_actor: float = param(
        4.5e-5, "AdamW learning rate of the policy and its noise network", exclusive_minimum=0
    )
    lr_critic: float = param(6.5e-4, "AdamW learning rate of the value network", exclusive_minimum=0)
    critic_weight_decay: float = param(1e-5, "AdamW weight decay of the value network", minimum=0)
    critic_warmup_iters: int = param(2, "first iterations that train only the value network", minimum=0)
    update_epochs: int = param(5, "passes over each iteration's rollout", minimum=1)
    minibatches: int = param(4, "minibatches per pass", minimum=1)
    clip_eps: float = param(0.01, "PPO ratio clip ε", exclusive_minimum=0)
    ent_coef: float = param(0.01, "entropy bonus weight", minimum=0)
    w2_coef: float = param(0.0, "weight of the W2 regulariser towards the starting policy", minimum=0)
    logprob_clamp: float = param(
        1.0, "clamp of the per-dimension, per-step log-likelihood in the ratio (0 = none)", minimum=0
    )
    target_kl: float = param(
        0.01,
        "stop an iteration's updates (actor and critic) once approx. KL exceeds it (0 = never)",
        minimum=0,
    )
    max_grad_norm: float = param(0.0, "gradient clipping (0 = off, as the reference)", minimum=0)
    gamma: float = param(0.99, "discount per action chunk", minimum=0, maximum=1)
    gae_lambda: float = param(0.95, "GAE λ", minimum=0, maximum=1)
    reward_scale: bool = param(True, "divide rewards by the running std of the discounted return (clip ±10)")
    eval_freq: int = param(5, "evaluate and checkpoint every N iterations (0 = only at the end)", minimum=0)
    eval_episodes: int = param(10, "episodes per evaluation (the chain without noise)", minimum=1)
    seed: int = param(42, "random seed", minimum=0)
    out: str = param("", "output directory (default results/reinflow/<dataset>/<flow>/seed<seed>)")
    # what a run written before `sigma_units` existed did (a checkpoint without the key resumes so)
    EARLIER_DEFAULTS: ClassVar[dict] = {"sigma_units": "bounds"}

    def __post_init__(self):
        # `init` is checked when training starts: a YAML file without it may get it from a flag
        check_config(
            self, {"sigma_max": (self.sigma_max >= self.sigma_min, f">= sigma_min ({self.sigma_min})")}
        )

    def output_dir(self, dataset_id: str, kind: str) -> Path:
        return Path(self.out or f"results/reinflow/{dataset_id.replace('/', '_')}/{kind}/seed{self.seed}")
