"""Chunk policies: the model (flow, MLP or categorical) plus its normaliser, acting on raw env arrays."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from myreinflow.data.normalize import Normalizer
from myreinflow.flows import FLOWS
from myreinflow.nets import ChunkPolicyNet, FlowNet, OneStepPolicyNet

POLICY_KINDS = ("reflow", "meanflow", "mlp", "categorical", "onestep")


def build_model(spec: dict, device) -> nn.Module:
    """Model from a plain spec: kind, obs_dim, act_dim, horizon_steps, cond_steps, n_actions, hidden, …"""
    kind, h, a = spec["kind"], spec["horizon_steps"], spec["act_dim"]
    cond_dim = spec["obs_dim"] * spec["cond_steps"]
    hidden, activation = tuple(spec["hidden"]), spec.get("activation", "silu")
    if kind in FLOWS:
        net = FlowNet(h * a, cond_dim, hidden, spec["time_dim"], spec["max_freq"], activation)
        return FLOWS[kind](net, device, h, a, **spec.get("flow_kwargs", {}))
    if kind == "onestep":
        return OneStepPolicyNet(cond_dim, h, a, hidden, activation).to(device)
    if kind in ("mlp", "categorical"):
        n_actions = spec.get("n_actions") if kind == "categorical" else None
        return ChunkPolicyNet(cond_dim, h, a, hidden, activation, n_actions).to(device)
    raise ValueError(f"policy kind {kind!r} is not one of {POLICY_KINDS}")


class ChunkPolicy:
    """Maps a batch of stacked raw observations (n, cond_steps, obs_dim) to raw action chunks."""

    def __init__(self, spec: dict, model: nn.Module, normalizer: Normalizer, device):
        self.spec, self.model, self.device = spec, model, torch.device(device)
        self.kind = spec["kind"]
        self.horizon_steps, self.cond_steps = spec["horizon_steps"], spec["cond_steps"]
        self.normalizer = normalizer.to(self.device)

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
        if self.is_flow or self.kind == "onestep":
            chunk = self.model.sample(o, inference_steps, generator=generator)
        elif self.kind == "categorical":
            return self.model(o).argmax(dim=-1).cpu().numpy()
        else:
            chunk = self.model(o).reshape(-1, self.horizon_steps, self.spec["act_dim"]).clamp(-1, 1)
        return self.normalizer.unscale_action(chunk).cpu().numpy().astype(np.float32)
