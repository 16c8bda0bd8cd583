"""Chunk policies: the model (flow, MLP or categorical) plus its normaliser, acting on raw env arrays."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from myreinflow.checkpoint import load_checkpoint
from myreinflow.configs import FlowOptions
from myreinflow.data.normalize import Normalizer
from myreinflow.errors import UserError
from myreinflow.flows import FLOWS
from myreinflow.flows.meanflow import upgrade_kwargs
from myreinflow.names import CRITIC_STAGES, POLICY_KINDS
from myreinflow.nets import ChunkPolicyNet, EnsembleMLP, FlowNet, OneStepPolicyNet

# where an FQL-family checkpoint's agent state holds each critic that can rank candidates (its `rank_critic`)
CRITIC_PREFIXES = {"critic": "critic.", "target": "target_critic."}


def policy_spec(
    kind: str,
    obs_dim: int,
    act_dim: int,
    horizon_steps: int,
    cond_steps: int,
    options: FlowOptions,
    n_actions: int | None = None,
) -> dict:
    """The plain spec `build_model` makes a BC policy of `kind` from (network options in `options`)."""
    return {
        "kind": kind,
        "obs_dim": obs_dim,
        "act_dim": act_dim,
        "n_actions": n_actions,
        "horizon_steps": horizon_steps,
        "cond_steps": cond_steps,
        "hidden": list(options.hidden),
        "activation": options.activation,
        "time_dim": options.time_dim,
        "max_freq": options.max_freq,
        "flow_kwargs": options.flow_kwargs(kind),
    }


def onestep_spec(flow_spec: dict, hidden: tuple[int, ...], activation: str) -> dict:
    """The spec of a one-step policy μ(s, z) (FQL's actor) that maps noise to chunks like `flow_spec`."""
    shapes = {k: flow_spec[k] for k in ("obs_dim", "act_dim", "horizon_steps", "cond_steps")}
    return {"kind": "onestep", **shapes, "n_actions": None, "hidden": list(hidden), "activation": activation}


def load_bc_flow(path: str, device, expected: dict, option: str = "--init") -> ChunkPolicy:
    """The flow policy of BC checkpoint `path` (given by `option`), if its spec has the `expected` values
    of flow (kind), flow_prediction, horizon_steps, cond_steps, obs_dim, act_dim and any other spec key
    (`auto` matches any)."""
    policies = load_checkpoint(path, map_location=device).get("policies", {})
    state = policies.get("flow", next(iter(policies.values()), {"spec": {}}))
    spec = state["spec"]
    if spec.get("kind") not in FLOWS:
        raise UserError(
            f"{option} {path!r} holds a {spec.get('kind')!r} policy; it must be a flow: {', '.join(FLOWS)}"
        )
    theirs = {**spec, "flow": spec["kind"], "flow_prediction": prediction_of(spec)}
    for key, ours in expected.items():
        if ours not in (theirs.get(key), "auto"):
            raise UserError(
                f"{key} = {ours!r} does not match the {option} checkpoint's {theirs.get(key)!r} ({path})"
            )
    return ChunkPolicy.from_state(state, device)


def prediction_of(spec: dict) -> str:
    """What a flow spec's network outputs; specs written before the option hold velocity-predicting flows."""
    return spec.get("flow_kwargs", {}).get("prediction", "velocity")


def build_model(spec: dict, device) -> nn.Module:
    """Model from a plain spec: kind, obs_dim, act_dim, horizon_steps, cond_steps, n_actions, hidden, …"""
    kind, h, a = spec["kind"], spec["horizon_steps"], spec["act_dim"]
    cond_dim = spec["obs_dim"] * spec["cond_steps"]
    hidden, activation = tuple(spec["hidden"]), spec.get("activation", "silu")
    if kind in FLOWS:
        net = FlowNet(h * a, cond_dim, hidden, spec["time_dim"], spec["max_freq"], activation)
        kwargs = {**spec.get("flow_kwargs", {}), "prediction": prediction_of(spec)}
        if kind == "meanflow":
            kwargs = upgrade_kwargs(kwargs)
        return FLOWS[kind](net, device, h, a, **kwargs)
    if kind == "onestep":
        return OneStepPolicyNet(cond_dim, h, a, hidden=hidden, activation=activation).to(device)
    if kind in ("mlp", "categorical"):
        n_actions = spec.get("n_actions") if kind == "categorical" else None
        return ChunkPolicyNet(cond_dim, h, a, hidden, activation, n_actions).to(device)
    raise ValueError(f"policy kind {kind!r} is not one of {POLICY_KINDS}")


class ChunkPolicy:
    """Maps a batch of stacked raw observations (n, cond_steps, obs_dim) to raw action chunks.

    With a `critic` (an ensemble Q(s, a_{0:h}) on normalised observations and scaled chunks) and
    `candidates` N > 1 it selects, as Q-chunking's best-of-N: N chunks are sampled per observation and
    the one with the highest ensemble-mean Q acts. It costs N times the policy's network evaluations
    (N·K for a flow with K steps) and N critic evaluations per chunk.
    """

    def __init__(
        self, spec: dict, model: nn.Module, normalizer: Normalizer, device, critic=None, candidates=1
    ):
        self.spec, self.model, self.device = spec, model, torch.device(device)
        self.kind = spec["kind"]
        self.horizon_steps, self.cond_steps = spec["horizon_steps"], spec["cond_steps"]
        self.normalizer = normalizer.to(self.device)
        if candidates > 1 and (critic is None or not (self.is_flow or self.kind == "onestep")):
            raise UserError(
                f"--candidates {candidates} needs a critic and a sampling policy (a flow or onestep)"
            )
        self.critic, self.candidates = critic, candidates

    def best_of(self, critic, candidates: int) -> ChunkPolicy:
        """This policy, acting with the best of `candidates` samples ranked by `critic`."""
        return ChunkPolicy(self.spec, self.model, self.normalizer, self.device, critic, candidates)

    @property
    def is_flow(self) -> bool:
        return self.kind in FLOWS

    @classmethod
    def from_state(cls, state: dict, device) -> ChunkPolicy:
        model = build_model(state["spec"], device)
        model.load_state_dict(state["model"])
        model.eval()
        return cls(state["spec"], model, Normalizer.from_state_dict(state["normalizer"]), device)

    def state(self) -> dict:
        return {
            "spec": self.spec,
            "model": self.model.state_dict(),
            "normalizer": self.normalizer.state_dict(),
        }

    @torch.no_grad()
    def act(self, obs: np.ndarray, inference_steps: int = 1, generator: torch.Generator | None = None):
        """Raw action chunks (n, H, act_dim) float32, or (n, H) int64 for discrete actions."""
        o = self.normalizer.normalize_obs(torch.as_tensor(obs, dtype=torch.float32, device=self.device))
        o = o.reshape(o.shape[0], -1)
        if self.candidates > 1:
            chunk = self._best_of_candidates(o, inference_steps, generator)
        elif self.is_flow or self.kind == "onestep":
            chunk = self.model.sample(o, inference_steps, generator=generator)
        elif self.kind == "categorical":
            return self.model(o).argmax(dim=-1).cpu().numpy()
        else:
            chunk = self.model(o).reshape(-1, self.horizon_steps, self.spec["act_dim"]).clamp(-1, 1)
        return self.normalizer.unscale_action(chunk).cpu().numpy().astype(np.float32)

    def _best_of_candidates(self, o: torch.Tensor, inference_steps: int, generator) -> torch.Tensor:
        """(n, H, A) scaled chunks: per observation the best of `candidates` samples by mean Q."""
        return best_of(
            o,
            self.candidates,
            lambda obs: self.model.sample(obs, inference_steps, generator=generator),  # clipped
            lambda obs, chunks: self.critic(torch.cat([obs, chunks], dim=-1)).squeeze(-1).mean(dim=0),
        )


def checkpoint_flow(ckpt: dict) -> str:
    """The flow (or baseline) a loaded checkpoint's run is labelled with: the one it names (a ReinFlow run
    of a one-step policy names the flow that policy was distilled from), else its main policy's kind."""
    return ckpt.get("flow") or next(iter(ckpt["policies"].values()))["spec"]["kind"]


def checkpoint_policies(
    ckpt: dict, which: str, source, device, candidates: int = 1
) -> dict[str, ChunkPolicy]:
    """The policies `which` names in a loaded checkpoint, ready to act: a name (flow, onestep, mlp,
    categorical), `auto` (the run's main policy) or `all`, as {name: ChunkPolicy}. With `candidates`
    N > 1 (FQL-family checkpoints) each acts with the best of N samples by the run's critic. `source`
    names the checkpoint in the error."""
    policies = ckpt.get("policies", {})
    names = {"all": list(policies), "auto": list(policies)[:1]}.get(which, [which])
    if not names or any(name not in policies for name in names):
        raise UserError(
            f"--policy {which!r} is not in {str(source)!r}; it has: {', '.join(policies) or 'none'}"
        )
    chosen = {name: ChunkPolicy.from_state(policies[name], device) for name in names}
    if candidates > 1:
        critic = load_critic(ckpt, device)
        chosen = {name: policy.best_of(critic, candidates) for name, policy in chosen.items()}
    return chosen


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
    prefix = CRITIC_PREFIXES[cfg.get("rank_critic", "critic")]
    critic.load_state_dict(
        {k.removeprefix(prefix): v for k, v in ckpt["agent"].items() if k.startswith(prefix)}
    )
    return critic.eval().requires_grad_(False)


def load_policy(path, policy: str = "auto", device="cpu", candidates: int = 1) -> ChunkPolicy:
    """A trained policy, ready to act: policy `policy` (auto = the run's main one; flow, onestep, mlp,
    categorical) of the checkpoint `path` (a model.pt, or the run directory holding it). With
    `candidates` N > 1 (FQL-family checkpoints) it acts with the best of N samples by the run's critic.

        policy = load_policy("results/fql/cube-single/reflow/seed0", "onestep")
        chunks = policy.act(obs, inference_steps=1)  # obs (n, obs_dim) raw → (n, horizon_steps, act_dim)
    """
    ckpt = load_checkpoint(path, map_location=device)
    (chosen,) = checkpoint_policies(ckpt, policy, path, device, candidates).values()
    return chosen


def best_of(obs: torch.Tensor, candidates: int, sample, score) -> torch.Tensor:
    """Q-chunking's best-of-N: per observation (n, d), `candidates` chunks from `sample(obs repeated)`
    and the one with the highest `score(obs repeated, flattened chunks)` (one value per chunk)."""
    n = obs.shape[0]
    repeated = obs.repeat_interleave(candidates, dim=0)
    chunks = sample(repeated)
    best = score(repeated, chunks.reshape(n * candidates, -1)).reshape(n, candidates).argmax(dim=1)
    return chunks.reshape(n, candidates, *chunks.shape[1:])[torch.arange(n, device=obs.device), best]
