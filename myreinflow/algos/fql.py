"""Flow Q-learning (FQL; Park, Li, Levine 2025) over action chunks (Q-chunking; Li, Zhou, Levine 2025).

The BC flow (ReFlow or MeanFlow, from a BC checkpoint with `init`) keeps training on its own loss L_flow;
a one-step policy μ(s, z), z ~ N(0, I), is distilled from the flow's sample of the same noise while it
maximises a critic ensemble Q_e(s, a_{0:h}) (LayerNorm MLPs) with a Polyak-averaged target Q̄. One update
on a batch of chunks (s, a, R = Σ_{j<h} γ^j r_j, s', m) sums the two losses in one Adam step (a learning
rate per network), then moves Q̄ ← τ Q + (1 − τ) Q̄:

    critic  mean_e (Q_e(s, a) − [R + γ^h · m · agg_e Q̄_e(s', clip μ(s', z'))])²   over `td_valid` chunks
    actor   L_flow(a | s) + α ‖μ(s, z) − sg(clip flow(s, z; flow_steps))‖² − λ mean_e Q_e(s, clip μ(s, z))

(critic frozen in the Q term, λ = sg(1 / mean|Q|) under `normalize_q_loss`, else 1; agg mean or min;
h = 1 is plain FQL). With `online_steps` > 0 the acting policy then acts in the env and finished
episodes join a replay that also holds the dataset; `online_env` false takes the same updates on the
offline data alone, the control of an online run. `FlowActorAgent` (the flow acts: `algos/mfql.py`,
`algos/qc.py`) shares the critic, its TD target and the update.

Deliberate deviations from the references (why, and the evidence: docs/algorithms/fql.md):
- 3×256 networks by default, not 4×512 (CPU-sized; `--hidden 512 512 512 512` is the reference's).
- Chunks cut off by a time-limit truncation are masked out of the critic loss (Q-chunking's choice).
- A chunk's reward stops at the step that ends the task, with no bootstrap after it (Q-chunking sums h).
- An online episode joins the replay when it ends; the references add each transition at once.
- Online resets are seeded (`online_reset_seed`), so a resumed run meets the same episodes.
- `matmul_precision bf16` (opt-in) runs the update's matmuls in bf16; the reference computes in fp32.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import nn
from torch.func import functional_call

from myreinflow.algos.online import log, offline_continued, online_phase
from myreinflow.algos.updates import actor_lr_scheduler, make_optimizer, scheduled, update_step
from myreinflow.configs import FQLConfig
from myreinflow.data import load_dataset
from myreinflow.data.offline import dataset_info, load_transitions, spaces_of
from myreinflow.data.replay import OnlineEpisodes
from myreinflow.errors import UserError
from myreinflow.names import CRITIC_FLOW_STEPS
from myreinflow.nets import EnsembleMLP
from myreinflow.options import RunOptions
from myreinflow.policy import (
    ChunkPolicy,
    FlowOptions,
    best_of,
    build_model,
    load_bc_flow,
    onestep_spec,
    policy_spec,
    prediction_of,
)
from myreinflow.run import MetricMean, TrainingRun, due
from myreinflow.utils import seed_everything, setup_runtime

# keys that may change between a run and its resumption without changing what is trained so far (`out`:
# the pipeline's online stages continue a copy of each offline run in its own directory;
# `updates_per_step`, `online_warmup_steps`, `online_env`: the offline phase does not read them)
RESUMABLE_KEYS = RunOptions.RUN_KEYS | {"epochs", "online_steps", "eval_freq", "online_eval_freq"}
RESUMABLE_KEYS |= {"updates_per_step", "online_warmup_steps", "online_env"}
RESUMABLE_KEYS |= {"eval_episodes", "eval_flow", "out", "source", "compile"}


class FQLAgent(nn.Module):
    """BC flow + one-step policy + critic ensemble + target critic, and the FQL losses.

    What another actor changes (`FlowActorAgent` below: the flow acts, `algos/mfql.py`, `algos/qc.py`):
    `acting_chunk` (the policy the TD target and online acting use), `actor_loss`, `parameter_groups`,
    `policies` and `eval_heads`; the critic, its TD target and the update are shared.
    """

    def __init__(self, cfg: FQLConfig, flow_spec: dict, flow: nn.Module, device):
        super().__init__()
        self.cfg, self.flow, self.flow_spec = cfg, flow, flow_spec
        h, a = flow_spec["horizon_steps"], flow_spec["act_dim"]
        self.flat_dim, self.gamma_h = h * a, cfg.discount**h
        self.flow_steps = cfg.flow_steps or CRITIC_FLOW_STEPS[flow_spec["kind"]]
        self.build_actor(device)
        cond_dim = flow_spec["obs_dim"] * flow_spec["cond_steps"]
        self.critic = EnsembleMLP(cond_dim + self.flat_dim, 1, cfg.hidden, cfg.num_critics, cfg.activation)
        self.critic.to(device)
        self.target_critic = copy.deepcopy(self.critic).requires_grad_(False)

    def build_actor(self, device) -> None:
        """FQL's actor: a one-step policy μ(s, z) shaped like the flow's chunks."""
        self.onestep_spec = onestep_spec(self.flow_spec, self.cfg.hidden, self.cfg.activation)
        self.actor = build_model(self.onestep_spec, device)

    def q_values(self, obs: torch.Tensor, actions: torch.Tensor, params: dict | None = None) -> torch.Tensor:
        """(E, B) Q values of flattened observations and action chunks (optionally with other params)."""
        x = torch.cat([obs, actions.reshape(obs.shape[0], -1)], dim=-1)
        if params is None:
            return self.critic(x).squeeze(-1)
        return functional_call(self.critic, params, (x,)).squeeze(-1)

    def noise(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.randn(obs.shape[0], self.flat_dim, device=obs.device)

    def acting_chunk(self, obs: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """Unclipped chunks (B, h·a) of the policy that acts (here the one-step policy), from flattened
        observations; differentiable."""
        return self.actor(obs, self.noise(obs) if noise is None else noise)

    @property
    def ranking_critic(self) -> nn.Module:
        """The critic that ranks best-of-N candidates (`rank_critic`): the online one (Q-chunking) or the
        target (MeanFlow-QL's reference)."""
        return self.target_critic if self.cfg.rank_critic == "target" else self.critic

    @torch.no_grad()
    def best_of_candidates(self, obs: torch.Tensor) -> torch.Tensor:
        """Clipped chunks (B, h·a): per observation the best of `candidates` acting chunks by the ranking
        critic (ensemble aggregated by `q_agg`), as Q-chunking's best-of-N ranks its samples."""
        critic = self.ranking_critic
        return best_of(
            obs,
            self.cfg.candidates,
            lambda repeated: self.acting_chunk(repeated).clamp(-1, 1),
            lambda repeated, chunks: self.aggregate(critic(torch.cat([repeated, chunks], -1)).squeeze(-1)),
        )

    def matmul_precision(self, device_type: str) -> torch.autocast:
        """The context the losses are computed in: bf16 autocast under `matmul_precision bf16` (weights,
        Adam state, LayerNorm and the networks' output layers stay fp32), a no-op under fp32."""
        return torch.autocast(device_type, torch.bfloat16, enabled=self.cfg.matmul_precision == "bf16")

    def aggregate(self, qs: torch.Tensor) -> torch.Tensor:
        """The ensemble's (E, B) Q values as one per sample, by `q_agg` (min or mean)."""
        return qs.min(dim=0).values if self.cfg.q_agg == "min" else qs.mean(dim=0)

    def critic_loss(self, batch: dict) -> tuple[torch.Tensor, dict]:
        obs, next_obs = batch["obs"].flatten(1), batch["next_obs"].flatten(1)
        with torch.no_grad():
            if self.cfg.candidates_in_target and self.cfg.candidates > 1:
                next_actions = self.best_of_candidates(next_obs)
            else:
                next_actions = self.acting_chunk(next_obs).clamp(-1, 1)
            next_qs = self.target_critic(torch.cat([next_obs, next_actions], dim=-1)).squeeze(-1)
            next_q = self.aggregate(next_qs)
            target = batch["reward"] + self.gamma_h * batch["mask"] * next_q
        q = self.q_values(obs, batch["actions"])
        weight = batch["td_valid"].float()
        loss = ((q - target).pow(2).mean(dim=0) * weight).sum() / weight.sum().clamp(min=1.0)
        return loss, {"train/critic_loss": loss.detach(), "train/q_mean": q.detach().mean()}

    def bc_flow_loss(self, batch: dict) -> tuple[torch.Tensor, dict]:
        """The flow's own loss on the batch's chunks, padded chunk tails masked (Q-chunking's `valid`)."""
        loss, flow_info = self.flow.compute_loss(batch["actions"], batch["obs"].flatten(1), batch["valid"])
        return loss, {"train/bc_flow_loss": loss.detach(), "train/flow_mse": flow_info["train/flow_mse"]}

    @staticmethod
    def policy_mse(actions: torch.Tensor, batch: dict) -> torch.Tensor:
        """Detached MSE of the acting policy's clipped chunks to the batch's: how far Q moved it off the
        data (a training statistic, `train/policy_mse`)."""
        return (actions.detach().clamp(-1, 1) - batch["actions"].flatten(1)).pow(2).mean()

    def q_loss(self, obs: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(−λ mean Q(s, clip a) with the critic frozen, the mean Q): λ = sg(1/mean|Q|) under
        `normalize_q_loss`, else 1."""
        frozen = {name: p.detach() for name, p in self.critic.named_parameters()}
        q = self.q_values(obs, actions.clamp(-1, 1), frozen).mean(dim=0)
        loss = -q.mean()
        if self.cfg.normalize_q_loss:
            loss = loss / q.detach().abs().mean().clamp(min=1e-6)
        return loss, q.detach().mean()

    def actor_loss(self, batch: dict) -> tuple[torch.Tensor, dict]:
        obs = batch["obs"].flatten(1)
        bc_flow_loss, info = self.bc_flow_loss(batch)
        if self.cfg.only_optimize_bc_flow:
            return bc_flow_loss, info
        noise = self.noise(obs)
        target = self.flow.sample(obs, self.flow_steps, noise=noise, clip=1.0).reshape(obs.shape[0], -1)
        actions = self.acting_chunk(obs, noise)
        distill_loss = (actions - target).pow(2).mean()
        q_loss, q_policy = self.q_loss(obs, actions)
        loss = bc_flow_loss + self.cfg.alpha * distill_loss + q_loss
        info["train/distill_loss"], info["train/q_loss"] = distill_loss.detach(), q_loss.detach()
        info["train/q_policy"], info["train/actor_loss"] = q_policy, loss.detach()
        info["train/policy_mse"] = self.policy_mse(actions, batch)
        return loss, info

    def total_loss(self, batch: dict) -> tuple[torch.Tensor, dict]:
        """Critic + actor loss of one update (the flow-only ablation trains neither critic nor actor)."""
        if self.cfg.only_optimize_bc_flow:
            return self.actor_loss(batch)
        critic_loss, info = self.critic_loss(batch)
        actor_loss, actor_info = self.actor_loss(batch)
        return critic_loss + actor_loss, {**info, **actor_info}

    @torch.no_grad()
    def update_target(self) -> None:
        torch._foreach_lerp_(
            list(self.target_critic.parameters()), list(self.critic.parameters()), self.cfg.tau
        )

    # the parameter group of the network that acts: the one `actor_lr_schedule` schedules
    acting_group = "actor"

    def parameter_groups(self) -> list[dict]:
        """Adam's groups, named: flow, actor and critic, each with its learning rate."""
        return [
            {"name": "flow", "params": list(self.flow.parameters()), "lr": self.cfg.lr_flow},
            {"name": "actor", "params": list(self.actor.parameters()), "lr": self.cfg.lr_actor},
            {"name": "critic", "params": list(self.critic.parameters()), "lr": self.cfg.lr_critic},
        ]

    def policies(self, normalizer, device) -> dict[str, ChunkPolicy]:
        """The checkpoint's policies, the main one (the flow) first (the eval CSV's `policy` names)."""
        return {
            "flow": ChunkPolicy(self.flow_spec, self.flow, normalizer, device),
            "onestep": ChunkPolicy(self.onestep_spec, self.actor, normalizer, device),
        }

    def eval_heads(self) -> list[tuple[str, str, int]]:
        """(metric prefix, policy name, steps) evaluated during training; the acting policy first."""
        if self.cfg.only_optimize_bc_flow:  # ablation: no one-step policy is trained
            return [("eval_flow/", "flow", self.flow_steps)]
        flow = [("eval_flow/", "flow", self.flow_steps)] if self.cfg.eval_flow else []
        return [("eval/", "onestep", 1), *flow]


class FlowActorAgent(FQLAgent):
    """An FQL-family agent whose flow itself acts (MeanFlow-QL, QC): no one-step network; the flow's
    `flow_steps`-step sample is the acting chunk, and the flow and the critic are Adam's two groups."""

    acting_group = "flow"

    def build_actor(self, device) -> None:
        """No one-step network: the flow acts."""

    def acting_chunk(self, obs: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """The flow's unclipped `flow_steps`-step chunks (B, h·a); differentiable."""
        return self.flow.integrate(obs, self.noise(obs) if noise is None else noise, self.flow_steps)

    def parameter_groups(self) -> list[dict]:
        return [
            {"name": "flow", "params": list(self.flow.parameters()), "lr": self.cfg.lr_flow},
            {"name": "critic", "params": list(self.critic.parameters()), "lr": self.cfg.lr_critic},
        ]

    def policies(self, normalizer, device) -> dict[str, ChunkPolicy]:
        return {"flow": ChunkPolicy(self.flow_spec, self.flow, normalizer, device)}

    def eval_heads(self) -> list[tuple[str, str, int]]:
        return [("eval/", "flow", self.flow_steps)]


def init_flow(cfg: FQLConfig, obs_dim: int, act_dim: int, device):
    """(flow spec, flow model, normaliser or None): the flow of the BC checkpoint `cfg.init`, or a fresh
    one with BC's network defaults."""
    if not cfg.init:
        prediction = FlowOptions.flow_prediction if cfg.flow_prediction == "auto" else cfg.flow_prediction
        options = FlowOptions(hidden=cfg.flow_hidden, flow_prediction=prediction)
        kind = "reflow" if cfg.flow == "auto" else cfg.flow
        spec = policy_spec(kind, obs_dim, act_dim, cfg.horizon_steps, cfg.cond_steps, options)
        return spec, build_model(spec, device), None
    expected = {k: getattr(cfg, k) for k in ("flow", "flow_prediction", "horizon_steps", "cond_steps")}
    policy = load_bc_flow(cfg.init, device, expected | {"obs_dim": obs_dim, "act_dim": act_dim})
    return policy.spec, policy.model.train(), policy.normalizer


def train(cfg: FQLConfig, progress: bool = True, agent_class=FQLAgent, stage: str = "fql") -> Path:
    """Train (or resume) FQL (or another `agent_class` of the family: `stage` names its runs) offline,
    then online; returns the path of the final checkpoint."""
    device = setup_runtime(cfg.device, cfg.threads)
    seed_everything(cfg.seed)
    dataset = load_dataset(cfg.dataset, cfg.source, progress=progress)
    obs_dim, act_dim, n_actions = spaces_of(dataset)
    if n_actions:
        raise UserError(
            f"dataset {cfg.dataset!r} has discrete actions; {stage} needs a continuous (Box) action space"
        )
    task = cfg.resolve_task(dataset)
    flow_spec, flow, normalizer = init_flow(cfg, obs_dim, act_dim, device)
    data, normalizer = load_transitions(
        dataset, cfg.horizon_steps, cfg.cond_steps, device, cfg.discount, normalizer, task, cfg.reward
    )
    agent = agent_class(cfg, flow_spec, flow, device).train()
    optimizer = make_optimizer(agent)
    offline_updates = cfg.epochs * updates_per_epoch(cfg, data)
    scheduler = actor_lr_scheduler(cfg, optimizer, agent.acting_group, offline_updates)
    online = OnlineEpisodes(data)
    run = TrainingRun(
        stage,
        cfg,
        cfg.output_dir(flow_spec["kind"]),
        # a schedule spans the offline updates: a run with more epochs is another run
        RESUMABLE_KEYS - ({"epochs"} if cfg.actor_lr_schedule != "constant" else set()),
        device,
        torch.Generator(device=device).manual_seed(cfg.seed),
        state={"agent": agent, "optimizer": optimizer, "scheduler": scheduler, "online_episodes": online},
        policies=agent.policies(normalizer, device),
        run_name=f"{stage}-{flow_spec['kind']}-{cfg.dataset}-s{cfg.seed}",
        progress=progress,
        resolved={
            "flow": flow_spec["kind"],
            "flow_prediction": prediction_of(flow_spec),
            "flow_steps": agent.flow_steps,
        },
        step=0,
        epoch=0,
        env_steps=0,
    )
    if run.resume() and run.epoch >= cfg.epochs and run.env_steps >= cfg.online_steps:
        print(f"{run.ckpt_path} is complete ({run.epoch} epochs, {run.env_steps} online steps)")
        return run.ckpt_path
    run.start()
    info = dataset_info(dataset, task, cfg.reward)
    step = scheduled(update_step(cfg, device), scheduler)
    offline_phase(cfg, agent, optimizer, data, run, info, step, f"{stage} {flow_spec['kind']}")
    if run.env_steps < cfg.online_steps:
        phase = online_phase if cfg.online_env else offline_continued
        phase(cfg, agent, optimizer, data, online, run, info, step, stage)
    if not run.ckpt_path.is_file():  # nothing was trained (0 epochs, no online steps): still a valid output
        log(run, agent, info, {}, True)
    run.close()
    return run.ckpt_path


def offline_phase(cfg, agent, optimizer, data, run: TrainingRun, info: dict, step, title: str) -> None:
    """The remaining `epochs` of updates on the offline data (an epoch: as many updates as batches fit in
    it), logged each epoch and evaluated every `eval_freq`."""
    bar = run.bar(cfg.epochs, run.epoch, title)
    while run.epoch < cfg.epochs:
        mean = MetricMean()
        for _ in range(updates_per_epoch(cfg, data)):
            mean.add(step(agent, optimizer, data.sample(cfg.batch_size, run.generator)))
            run.step += 1
        run.epoch += 1
        evaluate_now = due(run.epoch, cfg.eval_freq, None if cfg.online_steps else cfg.epochs)
        log(run, agent, info, mean.pop(), evaluate_now)
        bar.update(1)


def updates_per_epoch(cfg: FQLConfig, data) -> int:
    return max(1, len(data) // cfg.batch_size)
