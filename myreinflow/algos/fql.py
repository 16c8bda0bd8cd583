"""Flow Q-learning (FQL; Park, Li, Levine 2025) over action chunks (Q-chunking; Li, Zhou, Levine 2025).

Networks: the BC flow (ReFlow or MeanFlow, initialised from a BC checkpoint with `init`), a one-step
policy μ(s, z) with z ~ N(0, I) shaped like an action chunk, a critic ensemble Q_e(s, a_{0:h}) (LayerNorm
MLPs) and its Polyak-averaged target Q̄. One update on a batch of chunks (s, a, R = Σ_{j<h} γ^j r_j, s', m):

    critic  mean_e (Q_e(s, a) − [R + γ^h · m · agg_e Q̄_e(s', clip μ(s', z'))])²   over `td_valid` chunks
    actor   L_flow(a | s) + α ‖μ(s, z) − sg(clip flow(s, z; flow_steps))‖² − λ mean_e Q_e(s, clip μ(s, z))

with the critic frozen in the actor's Q term, λ = sg(1 / mean|Q|) under `normalize_q_loss` (else 1),
agg = mean (default) or min, then Q̄ ← τ Q + (1 − τ) Q̄. L_flow is the flow's own loss (ReFlow's flow
matching or MeanFlow's JVP loss). As in the reference, the critic and actor losses are summed and taken
in one optimizer step on the same batch; the three parameter groups (flow, actor, critic) have their own
learning rates (with equal rates this is the reference's single Adam). h = 1 is plain FQL.

Offline → online (`online_steps` > 0): after the offline epochs the one-step policy acts in the real env
(chunks open-loop), finished episodes join a replay that also holds the dataset (sampled uniformly, as
the reference does), and every env step is followed by `updates_per_step` updates. Online episode
returns are logged as `online/*`.

Deliberate deviations: the reference's 4×512 GELU networks become 3×256 by default (CPU-friendly; pass
`--hidden 512 512 512 512` for the reference); chunks cut off by a time-limit truncation are masked out of
the critic loss (Q-chunking's choice); an online episode joins the replay when it ends.
"""

from __future__ import annotations

import copy
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from torch.func import functional_call
from tqdm import tqdm

from myreinflow.algos.bc import config_yaml, dataset_info, load_transitions, spaces_of
from myreinflow.checkpoint import load_checkpoint, load_for_resume, save_checkpoint
from myreinflow.config import RunOptions, check_config, option, to_dict
from myreinflow.data.normalize import Normalizer
from myreinflow.errors import UserError
from myreinflow.evaluation import evaluate, normalized_score, summarize
from myreinflow.flows import FLOWS
from myreinflow.flows.base import PREDICTIONS
from myreinflow.nets import EnsembleMLP
from myreinflow.policy import ChunkPolicy, build_model, prediction_of
from myreinflow.tracking import Tracker
from myreinflow.utils import atomic_write_text, seed_everything, setup_runtime


@dataclass
class FQLConfig(RunOptions):
    dataset: str = field(default="myreinflow/pusher/mixed-v0", metadata=option("Minari dataset id"))
    source: str = field(
        default="auto",
        metadata=option("where the dataset comes from", choices=("auto", "minari", "generate")),
    )
    init: str = field(
        default="", metadata=option("BC checkpoint whose flow (and normaliser) FQL starts from")
    )
    flow: str = field(
        default="auto",
        metadata=option(
            "BC flow: auto = the --init checkpoint's (reflow without one)", choices=("auto", *FLOWS)
        ),
    )
    flow_prediction: str = field(
        default="auto",
        metadata=option(
            "what the BC flow's network outputs: auto = the --init checkpoint's (data without one)",
            choices=("auto", *PREDICTIONS),
        ),
    )
    epochs: int = field(
        default=20, metadata=option("offline passes; one pass = transitions / batch_size updates")
    )
    online_steps: int = field(
        default=0, metadata=option("env steps of online fine-tuning after the offline phase")
    )
    updates_per_step: int = field(default=1, metadata=option("online: updates per env step"))
    batch_size: int = field(default=256, metadata=option("minibatch size"))
    lr_flow: float = field(default=3e-4, metadata=option("Adam learning rate of the BC flow"))
    lr_actor: float = field(default=3e-4, metadata=option("Adam learning rate of the one-step policy"))
    lr_critic: float = field(default=3e-4, metadata=option("Adam learning rate of the critic"))
    alpha: float = field(default=10.0, metadata=option("distillation weight α"))
    discount: float = field(
        default=0.99, metadata=option("per-step discount γ (a chunk bootstraps with γ^h)")
    )
    tau: float = field(default=0.005, metadata=option("Polyak rate of the target critic"))
    q_agg: str = field(
        default="mean", metadata=option("ensemble aggregate in the TD target", choices=("mean", "min"))
    )
    normalize_q_loss: bool = field(default=False, metadata=option("scale the Q term by 1/mean|Q|"))
    flow_steps: int = field(
        default=0, metadata=option("flow steps for the distillation target (0 = ReFlow 10, MeanFlow 1)")
    )
    only_optimize_bc_flow: bool = field(
        default=False,
        metadata=option("ablation: the actor loss is the BC flow loss alone (critic still trained)"),
    )
    horizon_steps: int = field(default=4, metadata=option("actions per chunk h (must match --init)"))
    cond_steps: int = field(default=1, metadata=option("stacked observations (must match --init)"))
    hidden: tuple[int, ...] = field(
        default=(256, 256, 256),
        metadata=option("hidden widths of the one-step policy and critic (reference 4×512)"),
    )
    activation: str = field(
        default="gelu",
        metadata=option("activation of one-step policy and critic", choices=("gelu", "silu", "relu")),
    )
    num_critics: int = field(default=2, metadata=option("critic ensemble size"))
    flow_hidden: tuple[int, ...] = field(
        default=(256, 256, 256), metadata=option("hidden widths of a fresh BC flow (ignored with --init)")
    )
    eval_freq: int = field(
        default=5, metadata=option("offline: evaluate and checkpoint every N epochs (0 = at the end)")
    )
    online_eval_freq: int = field(
        default=10_000, metadata=option("online: evaluate and checkpoint every N env steps")
    )
    eval_episodes: int = field(default=10, metadata=option("episodes per evaluation during training"))
    seed: int = field(default=42, metadata=option("random seed"))
    out: str = field(
        default="", metadata=option("output directory (default results/fql/<dataset>/<flow>/seed<seed>)")
    )

    def __post_init__(self):
        check_config(
            self,
            self.run_rules()
            | {
                "epochs": (self.epochs >= 0, ">= 0"),
                "online_steps": (self.online_steps >= 0, ">= 0"),
                "updates_per_step": (self.updates_per_step >= 1, ">= 1"),
                "batch_size": (self.batch_size >= 1, ">= 1"),
                "lr_flow": (self.lr_flow > 0, "> 0"),
                "lr_actor": (self.lr_actor > 0, "> 0"),
                "lr_critic": (self.lr_critic > 0, "> 0"),
                "alpha": (self.alpha >= 0, ">= 0"),
                "discount": (0 <= self.discount <= 1, "in [0, 1]"),
                "tau": (0 < self.tau <= 1, "in (0, 1]"),
                "flow_steps": (self.flow_steps >= 0, ">= 0"),
                "horizon_steps": (self.horizon_steps >= 1, ">= 1"),
                "cond_steps": (self.cond_steps >= 1, ">= 1"),
                "hidden": (len(self.hidden) >= 1 and min(self.hidden) >= 1, "one or more widths >= 1"),
                "flow_hidden": (len(self.flow_hidden) >= 1 and min(self.flow_hidden) >= 1, "widths >= 1"),
                "num_critics": (self.num_critics >= 1, ">= 1"),
                "eval_freq": (self.eval_freq >= 0, ">= 0"),
                "online_eval_freq": (self.online_eval_freq >= 1, ">= 1"),
                "eval_episodes": (self.eval_episodes >= 1, ">= 1"),
            },
        )

    def output_dir(self, flow: str) -> Path:
        return Path(self.out or f"results/fql/{self.dataset.replace('/', '_')}/{flow}/seed{self.seed}")


# keys that may change between a run and its resumption without changing what is trained so far
RESUMABLE_KEYS = RunOptions.RUN_KEYS | {
    "epochs",
    "online_steps",
    "eval_freq",
    "online_eval_freq",
    "eval_episodes",
    "out",
    "source",
}


class FQLAgent(nn.Module):
    """BC flow + one-step policy + critic ensemble + target critic, and the FQL losses."""

    def __init__(self, cfg: FQLConfig, flow_spec: dict, flow: nn.Module, device):
        super().__init__()
        self.cfg, self.flow = cfg, flow
        self.flow_kind = flow_spec["kind"]
        h, a = flow_spec["horizon_steps"], flow_spec["act_dim"]
        self.flat_dim, self.gamma_h = h * a, cfg.discount**h
        self.flow_steps = cfg.flow_steps or (10 if self.flow_kind == "reflow" else 1)
        self.onestep_spec = {
            "kind": "onestep",
            **{k: flow_spec[k] for k in ("obs_dim", "act_dim", "horizon_steps", "cond_steps")},
            "n_actions": None,
            "hidden": list(cfg.hidden),
            "activation": cfg.activation,
        }
        self.actor = build_model(self.onestep_spec, device)
        cond_dim = flow_spec["obs_dim"] * flow_spec["cond_steps"]
        self.critic = EnsembleMLP(
            cond_dim + self.flat_dim, 1, cfg.hidden, cfg.num_critics, cfg.activation
        ).to(device)
        self.target_critic = copy.deepcopy(self.critic).requires_grad_(False)

    def q_values(self, obs: torch.Tensor, actions: torch.Tensor, params: dict | None = None) -> torch.Tensor:
        """(E, B) Q values of flattened observations and action chunks (optionally with other params)."""
        x = torch.cat([obs, actions.reshape(obs.shape[0], -1)], dim=-1)
        if params is None:
            return self.critic(x).squeeze(-1)
        return functional_call(self.critic, params, (x,)).squeeze(-1)

    def onestep(self, obs: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """Unclipped one-step chunks (B, h·a) from flattened observations."""
        if noise is None:
            noise = torch.randn(obs.shape[0], self.flat_dim, device=obs.device)
        return self.actor(obs, noise)

    def critic_loss(self, batch: dict) -> tuple[torch.Tensor, dict]:
        obs, next_obs = _flat(batch["obs"]), _flat(batch["next_obs"])
        with torch.no_grad():
            next_actions = self.onestep(next_obs).clamp(-1, 1)
            next_qs = self.target_critic(torch.cat([next_obs, next_actions], dim=-1)).squeeze(-1)
            next_q = next_qs.min(dim=0).values if self.cfg.q_agg == "min" else next_qs.mean(dim=0)
            target = batch["reward"] + self.gamma_h * batch["mask"] * next_q
        q = self.q_values(obs, batch["actions"])
        weight = batch["td_valid"].float()
        loss = ((q - target).pow(2).mean(dim=0) * weight).sum() / weight.sum().clamp(min=1.0)
        return loss, {"train/critic_loss": loss.detach(), "train/q_mean": q.detach().mean()}

    def actor_loss(self, batch: dict) -> tuple[torch.Tensor, dict]:
        obs = _flat(batch["obs"])
        bc_flow_loss, flow_info = self.flow.compute_loss(batch["actions"], obs)
        info = {"train/bc_flow_loss": bc_flow_loss.detach(), "train/flow_mse": flow_info["train/flow_mse"]}
        if self.cfg.only_optimize_bc_flow:
            return bc_flow_loss, info
        noise = torch.randn(obs.shape[0], self.flat_dim, device=obs.device)
        target = self.flow.sample(obs, self.flow_steps, noise=noise, clip=1.0).reshape(obs.shape[0], -1)
        actions = self.onestep(obs, noise)
        distill_loss = (actions - target).pow(2).mean()
        frozen = {name: p.detach() for name, p in self.critic.named_parameters()}
        q = self.q_values(obs, actions.clamp(-1, 1), frozen).mean(dim=0)
        q_loss = -q.mean()
        if self.cfg.normalize_q_loss:
            q_loss = q_loss / q.detach().abs().mean().clamp(min=1e-6)
        loss = bc_flow_loss + self.cfg.alpha * distill_loss + q_loss
        info.update(
            {
                "train/distill_loss": distill_loss.detach(),
                "train/q_loss": q_loss.detach(),
                "train/q_policy": q.detach().mean(),
                "train/actor_loss": loss.detach(),
            }
        )
        return loss, info

    @torch.no_grad()
    def update_target(self) -> None:
        torch._foreach_lerp_(
            list(self.target_critic.parameters()), list(self.critic.parameters()), self.cfg.tau
        )


def _flat(obs: torch.Tensor) -> torch.Tensor:
    return obs.reshape(obs.shape[0], -1)


def make_optimizer(agent: FQLAgent, cfg: FQLConfig) -> torch.optim.Optimizer:
    groups = [
        {"params": list(agent.flow.parameters()), "lr": cfg.lr_flow},
        {"params": list(agent.actor.parameters()), "lr": cfg.lr_actor},
        {"params": list(agent.critic.parameters()), "lr": cfg.lr_critic},
    ]
    return torch.optim.Adam(groups)


def update(agent: FQLAgent, optimizer: torch.optim.Optimizer, batch: dict) -> dict:
    """One FQL update (critic + actor in one step, then the target); returns detached metrics."""
    critic_loss, info = agent.critic_loss(batch)
    actor_loss, actor_info = agent.actor_loss(batch)
    optimizer.zero_grad(set_to_none=True)
    (critic_loss + actor_loss).backward()
    optimizer.step()
    agent.update_target()
    return {**info, **actor_info}


def _init_flow(cfg: FQLConfig, obs_dim: int, act_dim: int, device):
    """(flow spec, flow model, normaliser or None) from `cfg.init`, or a fresh flow."""
    if not cfg.init:
        from myreinflow.algos.bc import BCConfig, policy_spec

        flow = "reflow" if cfg.flow == "auto" else cfg.flow
        auto = cfg.flow_prediction == "auto"
        prediction = BCConfig.flow_prediction if auto else cfg.flow_prediction  # BC's default
        bc = BCConfig(
            flow=flow,
            horizon_steps=cfg.horizon_steps,
            cond_steps=cfg.cond_steps,
            hidden=cfg.flow_hidden,
            flow_prediction=prediction,
        )
        spec = policy_spec(bc, obs_dim, act_dim, None)
        return spec, build_model(spec, device), None
    state = load_checkpoint(cfg.init, map_location=device).get("policy", {})
    spec = state.get("spec", {})
    if spec.get("kind") not in FLOWS:
        raise UserError(
            f"--init {cfg.init!r} holds a {spec.get('kind')!r} policy; FQL needs one of {', '.join(FLOWS)}"
        )
    checks = {
        "flow": (cfg.flow, spec["kind"]),
        "flow_prediction": (cfg.flow_prediction, prediction_of(spec)),
        "horizon_steps": (cfg.horizon_steps, spec["horizon_steps"]),
        "cond_steps": (cfg.cond_steps, spec["cond_steps"]),
        "obs_dim": (obs_dim, spec["obs_dim"]),
        "act_dim": (act_dim, spec["act_dim"]),
    }
    for key, (ours, theirs) in checks.items():
        if ours != theirs and ours != "auto":
            raise UserError(
                f"{key} = {ours!r} does not match the --init checkpoint's {theirs!r} ({cfg.init})"
            )
    flow = build_model(spec, device)
    flow.load_state_dict(state["model"])
    return spec, flow, Normalizer.from_state_dict(state["normalizer"])


def train(cfg: FQLConfig, progress: bool = True) -> Path:
    """Train (or resume) FQL; returns the path of the final checkpoint."""
    device = setup_runtime(cfg.device, cfg.threads)
    seed_everything(cfg.seed)

    # ---- data and networks
    from myreinflow.data import load_dataset

    dataset = load_dataset(cfg.dataset, cfg.source, progress=progress)
    obs_dim, act_dim, n_actions = spaces_of(dataset)
    if n_actions:
        raise UserError(
            f"dataset {cfg.dataset!r} has discrete actions; FQL needs a continuous (Box) action space"
        )
    flow_spec, flow, normalizer = _init_flow(cfg, obs_dim, act_dim, device)
    data, normalizer = load_transitions(
        dataset, cfg.horizon_steps, cfg.cond_steps, device, cfg.discount, normalizer
    )
    info = dataset_info(dataset)
    agent = FQLAgent(cfg, flow_spec, flow, device)
    optimizer = make_optimizer(agent, cfg)
    generator = torch.Generator(device=device).manual_seed(cfg.seed)
    out = cfg.output_dir(flow_spec["kind"])
    ckpt_path = out / "model.pt"
    step, epoch, env_steps, online_episodes = 0, 0, 0, []

    # ---- resume
    ckpt = load_for_resume(ckpt_path, "fql", to_dict(cfg), RESUMABLE_KEYS, device)
    if ckpt is not None:
        agent.load_state_dict(ckpt["agent"])
        optimizer.load_state_dict(ckpt["optimizer"])
        generator.set_state(ckpt["rng"]["generator"].cpu())
        torch.set_rng_state(ckpt["rng"]["torch"].cpu())
        step, epoch, env_steps = ckpt["step"], ckpt["epoch"], ckpt["env_steps"]
        online_episodes = [{k: v.cpu().numpy() for k, v in ep.items()} for ep in ckpt["online_episodes"]]
        data.extend(online_episodes)
        if epoch >= cfg.epochs and env_steps >= cfg.online_steps:
            print(f"{ckpt_path} is complete ({epoch} epochs, {env_steps} online steps); nothing to do")
            return ckpt_path
        print(f"resuming {ckpt_path} from epoch {epoch}, online step {env_steps} (update {step})")

    atomic_write_text(out / "config.yaml", config_yaml(cfg))
    tracker = Tracker(
        out / "train.csv",
        to_dict(cfg),
        cfg.wandb,
        cfg.wandb_project,
        run_name=f"fql-{flow_spec['kind']}-{cfg.dataset}-s{cfg.seed}",
        resume_step=step if step else None,
    )
    onestep_policy = ChunkPolicy(agent.onestep_spec, agent.actor, normalizer, device)
    flow_policy = ChunkPolicy(flow_spec, agent.flow, normalizer, device)

    def evaluation() -> dict:
        agent.eval()
        metrics = {}
        for prefix, policy, k in (
            ("eval/", onestep_policy, 1),
            ("eval_flow/", flow_policy, agent.flow_steps),
        ):
            if prefix == "eval/" and cfg.only_optimize_bc_flow:
                continue  # the one-step policy is not trained in this ablation
            rows = evaluate(
                policy,
                info["env_spec"],
                info["env_id"],
                [k],
                cfg.eval_episodes,
                seed=cfg.seed + 10_000,
                ref_min=info["ref_min_score"],
                ref_max=info["ref_max_score"],
            )
            metrics.update(summarize(rows, prefix=prefix))
        agent.train()
        return metrics

    def save() -> None:
        save_checkpoint(
            ckpt_path,
            {
                "stage": "fql",
                "config": to_dict(cfg),
                "policy": flow_policy.state(),
                "onestep": onestep_policy.state(),
                "agent": agent.state_dict(),
                "dataset": info,
                "optimizer": optimizer.state_dict(),
                "step": step,
                "epoch": epoch,
                "env_steps": env_steps,
                "online_episodes": [{k: torch.as_tensor(v) for k, v in ep.items()} for ep in online_episodes],
                "rng": {"torch": torch.get_rng_state(), "generator": generator.get_state()},
            },
        )

    def log(sums: dict, n: int, evaluate_now: bool, extra: dict | None = None) -> None:
        metrics = {k: (v / max(n, 1)).item() for k, v in sums.items()}
        metrics.update(extra or {})
        if evaluate_now:
            metrics.update(evaluation())
        tracker.log(metrics, step, epoch)
        if evaluate_now:
            save()
            tracker.flush()

    # ---- offline phase
    agent.train()
    updates_per_epoch = max(1, len(data) // cfg.batch_size)
    bar = tqdm(
        range(epoch, cfg.epochs),
        desc=f"fql {flow_spec['kind']}",
        disable=not progress,
        initial=epoch,
        total=cfg.epochs,
    )
    for _ in bar:
        sums: dict[str, torch.Tensor] = {}
        for _ in range(updates_per_epoch):
            metrics = update(agent, optimizer, data.sample(cfg.batch_size, generator))
            step += 1
            for k, v in metrics.items():
                sums[k] = sums.get(k, 0.0) + v
        epoch += 1
        last = epoch == cfg.epochs and cfg.online_steps == 0
        log(sums, updates_per_epoch, last or bool(cfg.eval_freq and epoch % cfg.eval_freq == 0))

    # ---- online phase
    if env_steps < cfg.online_steps:
        env = gym.make(gym.envs.registration.EnvSpec.from_json(info["env_spec"]))
        actor = flow_policy if cfg.only_optimize_bc_flow else onestep_policy
        k_act = agent.flow_steps if cfg.only_optimize_bc_flow else 1
        obs, _ = env.reset(seed=cfg.seed + env_steps)
        history = deque([obs] * cfg.cond_steps, maxlen=cfg.cond_steps)
        episode = _new_episode(obs)
        sums, n_updates, returns = {}, 0, []
        bar = tqdm(total=cfg.online_steps, initial=env_steps, desc="fql online", disable=not progress)
        while env_steps < cfg.online_steps:
            agent.eval()
            chunk = actor.act(np.stack(history)[None], k_act, generator)[0]
            agent.train()
            for action in chunk:
                obs, reward, terminated, truncated, _ = env.step(action)
                for key, value in (("actions", action), ("rewards", reward), ("terminations", terminated)):
                    episode[key].append(value)
                episode["observations"].append(obs)
                history.append(obs)
                env_steps += 1
                bar.update(1)
                for _ in range(cfg.updates_per_step):
                    metrics = update(agent, optimizer, data.sample(cfg.batch_size, generator))
                    step += 1
                    n_updates += 1
                    for k, v in metrics.items():
                        sums[k] = sums.get(k, 0.0) + v
                if terminated or truncated:
                    online_episodes.append({k: np.asarray(v) for k, v in episode.items()})
                    data.extend(online_episodes[-1:])
                    returns.append(float(np.sum(episode["rewards"])))
                    obs, _ = env.reset(seed=cfg.seed + env_steps)
                    history = deque([obs] * cfg.cond_steps, maxlen=cfg.cond_steps)
                    episode = _new_episode(obs)
                evaluate_now = env_steps % cfg.online_eval_freq == 0 or env_steps == cfg.online_steps
                if evaluate_now:
                    extra = {"online/env_steps": env_steps, "online/episodes": len(online_episodes)}
                    if returns:
                        extra["online/episode_return"] = float(np.mean(returns))
                        score = normalized_score(returns, info["ref_min_score"], info["ref_max_score"])
                        extra["online/normalized_score"] = float(np.mean(score))
                    log(sums, n_updates, True, extra)
                    sums, n_updates, returns = {}, 0, []
                if terminated or truncated or env_steps >= cfg.online_steps:
                    break
        bar.close()
        env.close()
    if not ckpt_path.is_file():  # nothing was trained (0 epochs, no online steps): still a valid output
        log({}, 1, True)
    tracker.close()
    return ckpt_path


def _new_episode(obs) -> dict:
    return {"observations": [obs], "actions": [], "rewards": [], "terminations": []}
