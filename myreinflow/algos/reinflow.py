"""ReinFlow (Zhang et al., NeurIPS 2025): online fine-tuning of a flow policy by PPO through its sampler
made stochastic. Public PyTorch code: ReinFlow/ReinFlow (`model/flow/ft_ppo/ppoflow.py`,
`agent/finetune/reinflow/`).

A noise network σ(s, t) ∈ [σ_min, σ_max]^D (D = horizon·act_dim) turns the K-step sampler of a
pretrained policy (a BC or FQL flow, or FQL's one-step policy with K = 1) into a Markov chain with
Gaussian transitions in normalised action space, whose log-likelihood and entropy are exact:

    x_0 ~ N(0, I),   x_{k+1} = m_k(x_k) + σ(s, t_k) ⊙ ε_k,   ε_k ~ N(0, I),   a = clip(x_K, ±1)
    log π(x_{0:K} | s) = log N(x_0; 0, I) + Σ_k log N(x_{k+1}; m_k(x_k), diag σ(s, t_k)²)

with m_k the pretrained sampler's deterministic step (`NoisyChain`); without noise the chain is that
sampler, which evaluation acts with. Each iteration rolls out `num_envs` envs, each chunk one PPO
transition (`ChunkEnv`), with GAE from a value network V(s), then takes `update_epochs` passes of
`minibatches` minibatches of the clipped PPO surrogate on the per-factor likelihood ratio (minus an
entropy bonus, plus an optional W2 term towards the starting policy) and of the value loss, two AdamW
optimizers, stopping at `target_kl`. The rest of the algorithm and the reference's choices it
follows: docs/algorithms/reinflow.md.

Deliberate deviations, each to keep the likelihood exact and the sampler the pretrained one (why, and
the evidence: docs/algorithms/reinflow.md):
- Intermediate means are not clipped to ±1, and the density is evaluated at the unclipped x_K.
- A step's noise is not truncated at ±3σ.
- The log-likelihood is recomputed on the sampling grid (the reference's ReFlow uses a shifted grid).
- The W2 regulariser couples the two chains by shared noise z ~ N(0, I) (the reference: z = 0).
- Envs reset at every iteration (seeded), so that a resumed run continues bit-exact on CPU.
- Learning rates are constant (the reference: cosine with warm restarts); samples are not repeated ×10.
- No value-loss weight: with two optimizers it only rescales the critic's gradient, which Adam undoes.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

from myreinflow.algos.rollouts import ReturnScale, chunk_envs, collect, explained_variance
from myreinflow.checkpoint import load_checkpoint
from myreinflow.configs import ReinFlowConfig
from myreinflow.data import load_dataset
from myreinflow.envs import spec_from_json
from myreinflow.errors import UserError
from myreinflow.evaluation import EVAL_SEED_OFFSET, eval_summary
from myreinflow.names import DEFAULT_STEPS
from myreinflow.nets import MLP
from myreinflow.nets.mlp import SinusoidalEmbedding
from myreinflow.options import RunOptions
from myreinflow.policy import ChunkPolicy, checkpoint_flow, checkpoint_policies
from myreinflow.run import MetricMean, TrainingRun, due, gradient_step
from myreinflow.utils import seed_everything, setup_runtime

__all__ = ["ReinFlowConfig", "train"]

LOG_2PI = math.log(2 * math.pi)
SIGMA_HOLD, SIGMA_DECAY = 0.35, 0.7  # σ_max: held for 35 % of the iterations, then towards 0.3/0.7


# ---- the stochastic policy


class NoiseNet(nn.Module):
    """σ(s, t) = u ⊙ σ̃(s, t), σ̃ ∈ [σ_min, σ_max]^D: an MLP (tanh) over the state and a sinusoidal
    embedding of t, its output h mapped to log σ̃² = log σ_min² + (log σ_max² − log σ_min²)(tanh h + 1)/2;
    u (`units`, default 1) the length of one unit of σ per dimension in the policy's action space."""

    def __init__(
        self,
        cond_dim: int,
        out_dim: int,
        hidden: tuple[int, ...],
        sigma_min: float,
        sigma_max: float,
        units: torch.Tensor | None = None,
    ):
        super().__init__()
        self.embed = SinusoidalEmbedding(16)
        self.net = MLP(cond_dim + 16, out_dim, hidden, activation="tanh")
        self.register_buffer("log_var_min", torch.tensor(2 * math.log(sigma_min)))
        self.register_buffer("log_var_max", torch.tensor(2 * math.log(sigma_max)))
        # recomputed from the dataset at each start (`sigma_units`), so not part of the checkpoint
        units = torch.ones(out_dim) if units is None else torch.as_tensor(units, dtype=torch.float32)
        self.register_buffer("units", units, persistent=False)

    def set_sigma_max(self, sigma_max: float) -> None:
        self.log_var_max.fill_(2 * math.log(sigma_max))

    def forward(self, obs: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        h = self.net(torch.cat([obs, self.embed(t)], dim=-1))
        log_var = self.log_var_min + (self.log_var_max - self.log_var_min) * (torch.tanh(h) + 1) / 2
        return self.units * torch.exp(0.5 * log_var)


class NoisyChain(nn.Module):
    """The pretrained policy `base` (a flow, or FQL's one-step policy with K = 1) plus a NoiseNet: the
    K-step Markov chain of the module docstring, its exact log-likelihood and entropy."""

    def __init__(self, base: nn.Module, kind: str, steps: int, noise: NoiseNet):
        super().__init__()
        self.base, self.kind, self.steps, self.noise = base, kind, steps, noise
        self.dim = noise.net[-1].out_features

    def times(self, n: int, device) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(t_k, t_{k+1}) for each step: the uniform grid from 1 to 0 of `FlowModel.integrate`."""
        grid = torch.linspace(1.0, 0.0, self.steps + 1, device=device)
        return [(grid[k].expand(n), grid[k + 1].expand(n)) for k in range(self.steps)]

    def mean(self, obs: torch.Tensor, z: torch.Tensor, t: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        """The deterministic step from z at time t to time r."""
        if self.kind == "onestep":
            return self.base(obs, z)
        return z - (t - r)[:, None] * self.base.average_velocity(z, r, t, obs)

    def sample(self, obs: torch.Tensor, generator: torch.Generator | None, noisy: bool = True, z=None):
        """The chain's states (K + 1, B, D) from x_0 = `z` (drawn if None), with noise or without."""
        x = torch.randn(obs.shape[0], self.dim, device=obs.device, generator=generator) if z is None else z
        path = [x]
        for t, r in self.times(obs.shape[0], obs.device):
            x = self.mean(obs, x, t, r)
            if noisy:
                x = x + self.noise(obs, t) * torch.randn(x.shape, device=x.device, generator=generator)
            path.append(x)
        return torch.stack(path)

    def log_prob(self, obs: torch.Tensor, path: torch.Tensor) -> torch.Tensor:
        """(B,) log-likelihood of the chain's states `path` (K + 1, B, D), the x_0 term included."""
        logp = -0.5 * (path[0].pow(2) + LOG_2PI).sum(-1)
        for k, (t, r) in enumerate(self.times(obs.shape[0], obs.device)):
            mean, sigma = self.mean(obs, path[k], t, r), self.noise(obs, t)
            logp = logp - (0.5 * ((path[k + 1] - mean) / sigma).pow(2) + sigma.log() + 0.5 * LOG_2PI).sum(-1)
        return logp

    def entropy(self, obs: torch.Tensor) -> torch.Tensor:
        """(B,) entropy of the chain's Gaussian factors, x_0's included."""
        h = torch.full((obs.shape[0],), 0.5 * self.dim * (1 + LOG_2PI), device=obs.device)
        for t, _ in self.times(obs.shape[0], obs.device):
            h = h + (self.noise(obs, t).log() + 0.5 * (1 + LOG_2PI)).sum(-1)
        return h

    @property
    def factors(self) -> int:
        """Gaussian factors (of one dimension each) in a chain's log-likelihood: (K + 1)·D."""
        return (self.steps + 1) * self.dim


class ReinFlowAgent(nn.Module):
    """The fine-tuned chain, its frozen starting policy (for the W2 term) and the value network."""

    def __init__(self, cfg: ReinFlowConfig, chain: NoisyChain, cond_dim: int):
        super().__init__()
        self.cfg, self.chain = cfg, chain
        self.reference = copy.deepcopy(chain.base).requires_grad_(False)
        self.value = MLP(cond_dim, 1, cfg.value_hidden, activation="mish")

    def normalized_log_prob(
        self, obs: torch.Tensor, path: torch.Tensor, clamped: bool = True
    ) -> torch.Tensor:
        """The log-likelihood per Gaussian factor, the noisy steps' densities taken in σ's units (those
        of the reference's action normalisation: + K Σ_d log u_d, which leaves every ratio as it is),
        clamped to ±logprob_clamp (0: not clamped). A clamped value has no gradient: with small σ (about
        0.05 units and below) the per-factor density exceeds 1 and the policy stops learning;
        `train/clamped` logs the fraction."""
        units = self.chain.steps * self.chain.noise.units.log().sum()
        logp = (self.chain.log_prob(obs, path) + units) / self.chain.factors
        c = self.cfg.logprob_clamp
        return logp.clamp(-c, c) if c > 0 and clamped else logp

    def actor_loss(self, batch: dict, generator: torch.Generator) -> tuple[torch.Tensor, dict]:
        """Clipped PPO surrogate − entropy bonus (+ W2 towards the starting policy)."""
        obs, adv = batch["obs"], batch["advantages"]
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        logp = self.normalized_log_prob(obs, batch["path"].transpose(0, 1), clamped=False)
        c = self.cfg.logprob_clamp
        clamped = (logp.abs() >= c).float().mean() if c > 0 else torch.zeros(())
        log_ratio = (logp.clamp(-c, c) if c > 0 else logp) - batch["logp"]
        ratio = log_ratio.exp()
        eps = self.cfg.clip_eps
        pg_loss = torch.max(-adv * ratio, -adv * ratio.clamp(1 - eps, 1 + eps)).mean()
        units = self.chain.steps * self.chain.noise.units.log().sum()  # in σ's units, as the likelihood
        entropy = ((self.chain.entropy(obs) - units) / self.chain.factors).mean()
        loss = pg_loss - self.cfg.ent_coef * entropy
        info = {"pg_loss": pg_loss, "entropy": entropy, "ratio": ratio.mean(), "clamped": clamped}
        info |= {
            "approx_kl": ((ratio - 1) - log_ratio).mean(),
            "clip_frac": ((ratio - 1).abs() > eps).float().mean(),
        }
        if self.cfg.w2_coef > 0:
            z = torch.randn(obs.shape[0], self.chain.dim, device=obs.device, generator=generator)
            ours = self.chain.sample(obs, None, noisy=False, z=z)[-1]
            with torch.no_grad():
                theirs = NoisyChain(self.reference, self.chain.kind, self.chain.steps, self.chain.noise)
                theirs = theirs.sample(obs, None, noisy=False, z=z)[-1]
            w2 = (ours - theirs).pow(2).sum(-1).mean()
            loss = loss + self.cfg.w2_coef * w2
            info["w2"] = w2
        return loss, {f"train/{k}": v.detach() for k, v in info.items()}

    def critic_loss(self, batch: dict) -> tuple[torch.Tensor, dict]:
        values = self.value(batch["obs"]).squeeze(-1)
        loss = 0.5 * (values - batch["returns"]).pow(2).mean()
        return loss, {"train/value_loss": loss.detach(), "train/value": values.detach().mean()}


# ---- training


def update(agent: ReinFlowAgent, optimizers: dict, batch: dict, cfg: ReinFlowConfig, run) -> dict:
    """`update_epochs` passes of `minibatches` minibatches over one rollout, each a step of the critic
    and (after the critic's warm-up) of the actor; once a minibatch's approximate KL exceeds
    `target_kl`, the iteration's updates stop, both networks' (as the reference's)."""
    size = batch["obs"].shape[0]
    per = max(1, size // cfg.minibatches)
    train_actor = run.iteration >= cfg.critic_warmup_iters
    mean, stopped = MetricMean(), False
    for _ in range(cfg.update_epochs):
        order = torch.randperm(size, device=run.device, generator=run.generator)
        for start in range(0, size - per + 1, per):
            minibatch = {k: v[order[start : start + per]] for k, v in batch.items()}
            critic_loss, info = agent.critic_loss(minibatch)
            gradient_step(critic_loss, optimizers["critic"], max_grad_norm=cfg.max_grad_norm)
            if train_actor:
                actor_loss, actor_info = agent.actor_loss(minibatch, run.generator)
                gradient_step(actor_loss, optimizers["actor"], max_grad_norm=cfg.max_grad_norm)
                info |= actor_info
                stopped = cfg.target_kl > 0 and float(actor_info["train/approx_kl"]) > cfg.target_kl
            mean.add(info)
            run.step += 1
            if stopped:
                break
        if stopped:
            break
    return mean.pop() | {"train/kl_stopped": float(stopped)}


def sigma_max_at(cfg: ReinFlowConfig, iteration: int, iterations: int) -> float:
    """σ_max of an iteration: constant, or held for SIGMA_HOLD of the run, then a half cosine down to
    (1 − SIGMA_DECAY) σ_min + SIGMA_DECAY σ_max."""
    if not cfg.sigma_decay:
        return cfg.sigma_max
    low = (1 - SIGMA_DECAY) * cfg.sigma_min + SIGMA_DECAY * cfg.sigma_max
    progress = min(max((iteration - SIGMA_HOLD * iterations) / ((1 - SIGMA_HOLD) * iterations), 0.0), 1.0)
    return low + (cfg.sigma_max - low) * 0.5 * (1 + math.cos(math.pi * progress))


def starting_policy(cfg: ReinFlowConfig, device) -> tuple[str, ChunkPolicy, dict, str]:
    """(policy name, the policy of `init` to fine-tune, the checkpoint's dataset info, its flow: the kind
    of its main policy, e.g. the ReFlow an FQL run's one-step policy was distilled from)."""
    if not cfg.init:
        raise UserError("init = '' is not allowed; it must be a BC or FQL checkpoint (--init PATH)")
    ckpt = load_checkpoint(cfg.init, map_location=device)
    ((name, policy),) = checkpoint_policies(ckpt, cfg.policy, cfg.init, device).items()
    if not (policy.is_flow or policy.kind == "onestep"):
        raise UserError(f"--init {cfg.init!r}: its {name!r} policy is not a flow or one-step policy")
    if policy.cond_steps != 1:
        raise UserError(f"--init {cfg.init!r} stacks {policy.cond_steps} observations; ReinFlow needs 1")
    return name, policy, ckpt["dataset"], checkpoint_flow(ckpt)


def sigma_units(cfg: ReinFlowConfig, policy: ChunkPolicy, info: dict) -> torch.Tensor | None:
    """Per dimension of a chunk, the length of one unit of σ in the policy's normalised actions (which
    span the action bounds as ±1): None (`bounds`: 1) or (`data`) each action dimension's half-range in
    the dataset, as if actions were normalised by the data's min and max (the reference's
    normalisation)."""
    if cfg.sigma_units == "bounds":
        return None
    dataset = load_dataset(info["dataset_id"], progress=False)
    actions = np.concatenate([episode.actions for episode in dataset.iterate_episodes()])
    device = policy.normalizer.act_low.device
    scaled = policy.normalizer.scale_action(torch.as_tensor(actions, dtype=torch.float32, device=device))
    half_range = ((scaled.max(0).values - scaled.min(0).values) / 2).clamp_min(1e-3)
    return half_range.repeat(policy.horizon_steps)


def rollout_chunks(cfg: ReinFlowConfig, info: dict, horizon: int) -> int:
    """Chunks per env and iteration: `rollout_chunks`, or enough for one episode up to the env's time
    limit (envs reset at every iteration, so a shorter rollout never sees an episode's later steps)."""
    if cfg.rollout_chunks:
        return cfg.rollout_chunks
    limit = spec_from_json(info["env_spec"]).max_episode_steps
    if not limit:
        raise UserError(f"the env {info['env_id']!r} has no time limit; give --rollout_chunks N")
    return math.ceil(limit / horizon)


def make_agent(cfg: ReinFlowConfig, policy: ChunkPolicy, info: dict, device) -> ReinFlowAgent:
    """The agent around `policy`: its K-step sampler (K = 1 for a one-step policy) made a noisy chain."""
    steps = 1 if policy.kind == "onestep" else cfg.inference_steps or DEFAULT_STEPS.get(policy.kind, 1)
    if policy.kind == "onestep" and cfg.inference_steps > 1:
        raise UserError(f"inference_steps = {cfg.inference_steps} is not allowed; a one-step policy has 1")
    cond_dim, dim = policy.spec["obs_dim"], policy.horizon_steps * policy.spec["act_dim"]
    units = sigma_units(cfg, policy, info)
    noise = NoiseNet(cond_dim, dim, cfg.noise_hidden, cfg.sigma_min, cfg.sigma_max, units)
    chain = NoisyChain(policy.model.train(), policy.kind, steps, noise).to(device)
    return ReinFlowAgent(cfg, chain, cond_dim).to(device)


def train(cfg: ReinFlowConfig, progress: bool = True) -> Path:
    """Fine-tune (or resume) the policy of `cfg.init` by ReinFlow; returns the final checkpoint's path."""
    device = setup_runtime(cfg.device, cfg.threads)
    seed_everything(cfg.seed)
    name, policy, info, flow = starting_policy(cfg, device)
    agent = make_agent(cfg, policy, info, device)
    chain, noise, steps = agent.chain, agent.chain.noise, agent.chain.steps
    optimizers = {
        "actor": torch.optim.AdamW(chain.parameters(), lr=cfg.lr_actor, weight_decay=0.0),
        "critic": torch.optim.AdamW(
            agent.value.parameters(), lr=cfg.lr_critic, weight_decay=cfg.critic_weight_decay
        ),
    }
    scale = ReturnScale(cfg.gamma)
    chunks = rollout_chunks(cfg, info, policy.horizon_steps)
    per_iteration = cfg.num_envs * chunks * policy.horizon_steps  # at most: episodes may end early
    iterations = max(1, math.ceil(cfg.env_steps / per_iteration)) if cfg.env_steps else 0
    run = TrainingRun(
        "reinflow",
        cfg,
        cfg.output_dir(info["dataset_id"], flow),
        RESUMABLE_KEYS,
        device,
        torch.Generator(device=device).manual_seed(cfg.seed),
        state={
            "agent": agent,
            "actor_optimizer": optimizers["actor"],
            "critic_optimizer": optimizers["critic"],
            "return_scale": scale,
        },  # fmt: skip
        policies={name: policy},
        run_name=f"reinflow-{flow}-{name}-{info['dataset_id']}-s{cfg.seed}",
        progress=progress,
        resolved={"inference_steps": steps, "policy": name},
        step=0,
        iteration=0,
        env_steps=0,
    )
    if run.resume() and run.iteration >= iterations:
        print(f"{run.ckpt_path} is complete ({run.iteration} iterations, {run.env_steps} env steps)")
        return run.ckpt_path
    run.start()
    envs = chunk_envs(info, cfg.num_envs, policy.horizon_steps)
    bar = run.bar(iterations, run.iteration, f"reinflow {policy.kind}")
    if run.iteration == 0:  # the starting policy's evaluation (the only one of a 0-step run)
        log(run, agent, policy, info, steps, {}, [], flow=flow)
    while run.iteration < iterations:
        noise.set_sigma_max(sigma_max_at(cfg, run.iteration, iterations))
        agent.eval()
        batch, episodes = collect(run, agent, envs, policy, scale, cfg, chunks)
        agent.train()
        # the rollout's values (returns − advantages) were the value network's before this update
        fit = explained_variance(batch["returns"], batch["returns"] - batch["advantages"])
        metrics = update(agent, optimizers, batch, cfg, run)
        run.iteration += 1
        sigma_max = math.exp(0.5 * float(noise.log_var_max))
        metrics |= {"train/explained_variance": fit, "train/sigma_max": sigma_max}
        evaluate_now = due(run.iteration, cfg.eval_freq, iterations)
        log(run, agent, policy, info, steps, metrics, episodes, evaluate_now, flow)
        bar.update(1)
    envs.close()
    run.close()
    return run.ckpt_path


def log(run, agent, policy, info, steps, metrics: dict, episodes: list, evaluate_now=True, flow="") -> None:
    """A train.csv row: the iteration's losses and finished episodes (`online/`); at evaluation points
    the chain without noise is rolled out (`eval/`), then a checkpoint (which names the run's `flow`,
    for the evaluation's `flow` column: a one-step policy's is the flow it was distilled from)."""
    if episodes:
        returns, successes = np.array(episodes).T
        metrics |= {"online/episode_return": returns.mean(), "online/success": np.nanmean(successes)}
    metrics |= {"online/env_steps": run.env_steps, "online/episodes": len(episodes)}
    if evaluate_now:
        policy.model.eval()
        seed = agent.cfg.seed + EVAL_SEED_OFFSET
        metrics |= eval_summary(policy, info, steps, agent.cfg.eval_episodes, seed)
    run.log(metrics, epoch=run.iteration, checkpoint=evaluate_now, dataset=info, flow=flow)


# keys that may change between a run and its resumption without changing what is trained so far
# (a longer `env_steps` continues the run; with `sigma_decay` the σ_max schedule then stretches over the
# new budget from the resumed iteration on)
RESUMABLE_KEYS = RunOptions.RUN_KEYS | {"env_steps", "eval_freq", "eval_episodes", "out"}
