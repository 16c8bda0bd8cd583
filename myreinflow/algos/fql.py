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

Offline → online (`online_steps` > 0): then the one-step policy acts in the env (chunks open-loop),
finished episodes join a replay that also holds the dataset (sampled uniformly, as the reference does),
each env step is followed by `updates_per_step` updates, and `online/*` logs the episodes' returns.
With `online_env` false the same updates run on the offline data alone, no env step taken: the
control that attributes an online run's lift to its env data rather than to its extra updates.
The online phase differs from the references' in three ways, each measured (docs/online.md):
- An online episode joins the replay when it ends; the references add each transition at once. At
  any update the replay lacks at most the current episode: on cube-single (200-episode set) ≤ 200
  steps beside ≥ 200,000 transitions, so ≤ 0.1 % of what a batch samples from.
- Resets are seeded (`online_reset_seed`: a resumed run meets the same episodes); the references' are
  unseeded. The initial states have the same distribution: 500 resets each way on cube-single task 2,
  two-sample KS tests on the 16 varying observation dimensions, smallest p 0.042 (Bonferroni 0.67).
- Updates start at the first env step, as in FQL; Q-chunking waits 5,000 env steps
  (`online_warmup_steps 5000` does so).

As in the references: the critic is Dense → GELU → LayerNorm with Glorot init (`nets/ensemble.py`);
dataset actions are clipped to ±(1 − 1e−5) (`data/chunks.py`); the BC flow loss is masked on padded
chunk tails past an episode's end (Q-chunking's `valid`).

Deliberate deviations: the reference's 4×512 GELU networks become 3×256 by default (CPU-friendly; pass
`--hidden 512 512 512 512` for the reference); chunks cut off by a time-limit truncation are masked out of
the critic loss (Q-chunking's choice). A chunk's reward R sums the rewards only up to the first step
that ends the task (OGBench success, mask 0) and does not bootstrap after it, where Q-chunking sums all
h rewards of the chunk: an OGBench single-task episode ends at success, so the steps after it never
happen in evaluation. With h = 1 the two agree.

Opt-in, not a default: `matmul_precision bf16` runs the update's matmuls in bf16 (autocast; weights, Adam,
LayerNorm, the output layers and the losses stay fp32), where the reference computes in fp32. Measured
(docs/benchmarks.md): gradients per tensor at cosine ≥ 0.99998 to fp32's, Q values and losses of 40-epoch
cube-single runs following the fp32 runs seed by seed, 1.4× faster training; but held-out success of
the final policies was lower (3 seeds: ReFlow 0.40 → 0.32, MeanFlow 0.33 → 0.09): three seeds cannot
tell that from their spread, so the results are not shown to be unchanged.
"""

from __future__ import annotations

import copy
import functools
import math
from pathlib import Path

import torch
from torch import nn
from torch.func import functional_call

from myreinflow.config import RunOptions
from myreinflow.configs import CRITIC_STAGES, FQLConfig
from myreinflow.data import load_dataset
from myreinflow.data.offline import dataset_info, load_transitions, spaces_of
from myreinflow.data.replay import Episode, OnlineEpisodes
from myreinflow.envs import make_env
from myreinflow.errors import UserError
from myreinflow.evaluation import EVAL_SEED_OFFSET, eval_summary, online_reset_seed
from myreinflow.nets import EnsembleMLP
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
        self.flow_steps = cfg.flow_steps or (10 if flow_spec["kind"] == "reflow" else 1)
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


def load_critic(ckpt: dict, device) -> EnsembleMLP:
    """The critic ensemble that ranked the candidates of an FQL-family checkpoint (its `rank_critic`: the
    online critic or the target), in eval mode, for acting with the best of N candidates (`myreinflow
    eval --candidates N`)."""
    if ckpt.get("stage") not in CRITIC_STAGES or "agent" not in ckpt:
        raise UserError(
            f"--candidates needs a checkpoint with a critic ({', '.join(CRITIC_STAGES)}); "
            f"this one is {ckpt.get('stage')!r}"
        )
    cfg, spec = ckpt["config"], next(iter(ckpt["policies"].values()))["spec"]
    in_dim = spec["obs_dim"] * spec["cond_steps"] + spec["horizon_steps"] * spec["act_dim"]
    critic = EnsembleMLP(in_dim, 1, tuple(cfg["hidden"]), cfg["num_critics"], cfg["activation"]).to(device)
    prefix = "target_critic." if cfg.get("rank_critic") == "target" else "critic."
    critic.load_state_dict(
        {k.removeprefix(prefix): v for k, v in ckpt["agent"].items() if k.startswith(prefix)}
    )
    return critic.eval().requires_grad_(False)


def make_optimizer(agent: FQLAgent) -> torch.optim.Optimizer:
    # one fused kernel for all parameters (CPU and CUDA)
    return torch.optim.Adam(agent.parameter_groups(), fused=True)


def actor_lr_scheduler(cfg: FQLConfig, optimizer, acting_group: str, offline_updates: int):
    """Per-update learning-rate factors of the optimizer's groups: 1 for every group but the acting
    network's, which under `warmup_cosine` rises linearly from 0 over the first `actor_lr_warmup` of the
    `offline_updates`, falls along a cosine to `actor_lr_final` by their end and stays there online (the
    MeanFlowQL reference's schedule). Step it after each update; its state goes into the checkpoint."""
    warmup = int(cfg.actor_lr_warmup * offline_updates)
    decay = max(offline_updates - warmup, 1)

    def warmup_cosine(i: int) -> float:
        if i < warmup:
            return i / warmup
        cosine = 0.5 * (1 + math.cos(math.pi * min(i - warmup, decay) / decay))
        return cfg.actor_lr_final + (1 - cfg.actor_lr_final) * cosine

    def factor(group: dict):
        scheduled = cfg.actor_lr_schedule == "warmup_cosine" and group["name"] == acting_group
        return warmup_cosine if scheduled else constant

    return torch.optim.lr_scheduler.LambdaLR(optimizer, [factor(g) for g in optimizer.param_groups])


def constant(i: int) -> float:
    return 1.0


def clip_gradients(optimizer: torch.optim.Optimizer, max_norm: float) -> None:
    """Each parameter group's gradient scaled to global norm ≤ `max_norm`, group by group (the MeanFlowQL
    reference clips its actor's and its critic's separately); 0 = off."""
    if max_norm > 0:
        for group in optimizer.param_groups:
            torch.nn.utils.clip_grad_norm_(group["params"], max_norm, foreach=True)


def gradients(agent: FQLAgent, batch: dict) -> dict:
    """The update's losses (critic + actor) in the agent's matmul precision, their gradients accumulated into
    the parameters' `.grad`; returns detached metrics."""
    with agent.matmul_precision(batch["obs"].device.type):
        loss, info = agent.total_loss(batch)
    loss.backward()
    return info


def update(agent: FQLAgent, optimizer: torch.optim.Optimizer, batch: dict, gradients=gradients) -> dict:
    """One update: critic and actor in one optimizer step (each group's gradient clipped to
    `max_grad_norm` first), then the target; returns detached metrics."""
    optimizer.zero_grad(set_to_none=True)
    info = gradients(agent, batch)
    clip_gradients(optimizer, agent.cfg.max_grad_norm)
    optimizer.step()
    agent.update_target()
    return info


def update_step(cfg: FQLConfig, device: torch.device):
    """`update`, compiled as `cfg.compile` says.

    On CUDA the whole update is replayed as CUDA graphs (`reduce-overhead`); the metrics are copied out, as
    a graph's outputs are overwritten by its next replay. On the CPU the losses *and their backward pass*
    are one inductor program (Dynamo traces `loss.backward()` under `trace_autograd_ops`), as one XLA
    program is in the JAX reference; Adam's fused step and the target's Polyak average run after it. One
    program instead of a forward graph, the autograd engine and a backward graph: 1.06× the updates/s
    (3×256, chunk 1, one or two cores; docs/benchmarks.md). CUDA keeps the path measured on a GPU; the
    traced backward has not run on one. A learning-rate schedule changes Adam's rate at every update,
    which a CUDA graph would hold fixed: then CUDA compiles the losses and their backward only.
    """
    if cfg.compile == "off" or (cfg.compile == "auto" and device.type != "cuda"):
        return update
    if device.type == "cuda" and cfg.actor_lr_schedule != "constant":
        return functools.partial(update, gradients=torch.compile(gradients))
    if device.type == "cuda":
        compiled = torch.compile(update, mode="reduce-overhead")

        def step(agent: FQLAgent, optimizer: torch.optim.Optimizer, batch: dict) -> dict:
            return {k: v.clone() for k, v in compiled(agent, optimizer, batch).items()}

        return step
    compiled_gradients = torch.compile(gradients)

    def traced_gradients(agent: FQLAgent, batch: dict) -> dict:
        with torch._dynamo.config.patch(trace_autograd_ops=True):
            return compiled_gradients(agent, batch)

    return functools.partial(update, gradients=traced_gradients)


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
    updates_per_epoch = max(1, len(data) // cfg.batch_size)
    scheduler = actor_lr_scheduler(cfg, optimizer, agent.acting_group, cfg.epochs * updates_per_epoch)
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
    bar = run.bar(cfg.epochs, run.epoch, f"{stage} {flow_spec['kind']}")
    step = scheduled(update_step(cfg, device), scheduler)
    while run.epoch < cfg.epochs:
        mean = MetricMean()
        for _ in range(updates_per_epoch):
            mean.add(step(agent, optimizer, data.sample(cfg.batch_size, run.generator)))
            run.step += 1
        run.epoch += 1
        evaluate_now = due(run.epoch, cfg.eval_freq, None if cfg.online_steps else cfg.epochs)
        log(run, agent, info, mean.pop(), evaluate_now)
        bar.update(1)
    if run.env_steps < cfg.online_steps:
        phase = online_phase if cfg.online_env else offline_continued
        phase(cfg, agent, optimizer, data, online, run, info, step, stage)
    if not run.ckpt_path.is_file():  # nothing was trained (0 epochs, no online steps): still a valid output
        log(run, agent, info, {}, True)
    run.close()
    return run.ckpt_path


def scheduled(step, scheduler):
    """`step` (an update), then one step of the learning-rate schedule; its metrics."""

    def step_and_schedule(agent: FQLAgent, optimizer: torch.optim.Optimizer, batch: dict) -> dict:
        info = step(agent, optimizer, batch)
        scheduler.step()
        return info

    return step_and_schedule


def acting(run: TrainingRun, agent: FQLAgent, name: str) -> ChunkPolicy:
    """Policy `name` of the run as it acts: with the best of `candidates` chunks by the ranking critic if
    set."""
    policy = run.policies[name]
    return policy.best_of(agent.ranking_critic, agent.cfg.candidates) if agent.cfg.candidates > 1 else policy


def log(run: TrainingRun, agent: FQLAgent, info: dict, metrics: dict, evaluate_now: bool) -> None:
    """A train.csv row; at evaluation points, with rollouts of the agent's `eval_heads` (FQL: the
    one-step policy, `eval/`, and the fine-tuned flow, `eval_flow/`), then a checkpoint."""
    if evaluate_now:
        agent.eval()
        for prefix, name, k in agent.eval_heads():
            seed = agent.cfg.seed + EVAL_SEED_OFFSET
            metrics |= eval_summary(acting(run, agent, name), info, k, agent.cfg.eval_episodes, seed, prefix)
        agent.train()
    run.log(metrics, checkpoint=evaluate_now, dataset=info)


def online_phase(
    cfg,
    agent,
    optimizer,
    data,
    online: OnlineEpisodes,
    run: TrainingRun,
    info: dict,
    step=update,
    stage="fql",
) -> None:
    """The acting policy (the agent's first eval head: FQL's one-step policy, the flow in the flow-only
    ablation) acts in the env, chunks open-loop; each env step is followed by `updates_per_step`
    updates (none before `online_warmup_steps` env steps); finished episodes join the replay. Resets
    are seeded `online_reset_seed(seed, env_steps)` (a resumed run meets the same episodes), a range no
    evaluation seed reaches."""
    env = make_env(info["env_spec"])
    _, name, k = agent.eval_heads()[0]
    actor = acting(run, agent, name)
    episode = Episode(env.reset(seed=online_reset_seed(cfg.seed, run.env_steps))[0], cfg.cond_steps)
    chunk, mean = [], MetricMean()
    bar = run.bar(cfg.online_steps, run.env_steps, f"{stage} online")
    while run.env_steps < cfg.online_steps:
        if not chunk:
            chunk = list(actor.act(episode.history()[None], k, run.generator)[0])
        action = chunk.pop(0)
        obs, reward, terminated, truncated, _ = env.step(action)
        if info.get("reward") == "sparse":  # the env's reward is OGBench's dense one
            reward = -float(reward != 0)
        episode.add(action, reward, terminated, obs)
        run.env_steps += 1
        bar.update(1)
        step_updates(cfg, agent, optimizer, data, run, step, mean)
        if terminated or truncated:
            online.add(episode.arrays())
            reset_seed = online_reset_seed(cfg.seed, run.env_steps)
            episode, chunk = Episode(env.reset(seed=reset_seed)[0], cfg.cond_steps), []
        if due(run.env_steps, cfg.online_eval_freq, cfg.online_steps):
            log(run, agent, info, mean.pop() | online.summary(run.env_steps, info), True)
    env.close()


def step_updates(cfg, agent, optimizer, data, run: TrainingRun, step, mean: MetricMean) -> None:
    """The updates that follow one step of the online phase: `updates_per_step`, none before
    `online_warmup_steps`."""
    for _ in range(cfg.updates_per_step if run.env_steps >= cfg.online_warmup_steps else 0):
        mean.add(step(agent, optimizer, data.sample(cfg.batch_size, run.generator)))
        run.step += 1


def offline_continued(
    cfg,
    agent,
    optimizer,
    data,
    online: OnlineEpisodes,
    run: TrainingRun,
    info: dict,
    step=update,
    stage="fql",
) -> None:
    """The control of `online_phase` (`online_env` false): the same schedule of updates (none before
    `online_warmup_steps`, then `updates_per_step` per step) and evaluations, on the offline data alone.
    `env_steps` counts the phase's steps, so that its curve and the online run's share their x values;
    no step is taken in an env (evaluations roll out in their own envs, as offline)."""
    mean = MetricMean()
    bar = run.bar(cfg.online_steps, run.env_steps, f"{stage} offline-continued")
    while run.env_steps < cfg.online_steps:
        run.env_steps += 1
        bar.update(1)
        step_updates(cfg, agent, optimizer, data, run, step, mean)
        if due(run.env_steps, cfg.online_eval_freq, cfg.online_steps):
            log(run, agent, info, mean.pop() | online.summary(run.env_steps, info), True)
