"""Chunk policies: the model (flow, MLP or categorical) plus its normaliser, acting on raw env arrays."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np
import torch
from torch import nn

from myreinflow.config import option
from myreinflow.data.normalize import Normalizer
from myreinflow.flows import FLOWS
from myreinflow.flows.base import PREDICTIONS
from myreinflow.flows.meanflow import PAPER_RECIPE
from myreinflow.nets import ChunkPolicyNet, FlowNet, OneStepPolicyNet

POLICY_KINDS = ("reflow", "meanflow", "mlp", "categorical", "onestep")
# the FlowOptions fields that --meanflow_recipe paper sets
RECIPE_FIELDS = ("meanflow_tr_sampler", "ratio_r_neq_t", "adaptive_p")


@dataclass
class FlowOptions:
    """Network and flow hyperparameters of a flow policy: the base of every trainer's config."""

    hidden: tuple[int, ...] = field(default=(256, 256, 256), metadata=option("hidden layer widths"))
    activation: str = field(
        default="silu", metadata=option("activation", choices=("silu", "gelu", "relu", "mish"))
    )
    time_dim: int = field(default=32, metadata=option("size of each sinusoidal time embedding"))
    max_freq: float = field(default=30.0, metadata=option("highest angular frequency of the time embedding"))
    flow_prediction: str = field(
        default="data",
        metadata=option(
            "what the flow network outputs: the clean chunk g (u = (z - g)/t) or the velocity u",
            choices=PREDICTIONS,
        ),
    )
    reflow_time_sampler: str = field(
        default="uniform",
        metadata=option("ReFlow training times", choices=("uniform", "logit_normal", "beta")),
    )
    meanflow_recipe: str = field(
        default="custom",
        metadata=option(
            "MeanFlow (t, r) recipe: the three options below (custom), or the paper's logit-normal pairs, "
            "a quarter of them r != t and p = 1 (paper; leave the three at their defaults)",
            choices=("custom", "paper"),
        ),
    )
    meanflow_tr_sampler: str = field(
        default="uniform",
        metadata=option("MeanFlow (t, r) pairs", choices=("logit_normal", "uniform", "full")),
    )
    ratio_r_neq_t: float = field(default=0.5, metadata=option("MeanFlow: fraction of pairs with r != t"))
    full_interval_frac: float = field(
        default=0.1, metadata=option("MeanFlow 'full' sampler: fraction of r != t pairs set to (t=1, r=0)")
    )
    adaptive_p: float = field(default=0.5, metadata=option("MeanFlow adaptive loss weight power p"))
    adaptive_c: float = field(default=1e-3, metadata=option("MeanFlow adaptive loss weight constant c"))

    def flow_rules(self) -> dict[str, tuple[bool, str]]:
        """{name: (ok, allowed)} for these fields, for `config.check_config`."""
        return {
            "hidden": (len(self.hidden) >= 1 and min(self.hidden) >= 1, "one or more widths >= 1"),
            "time_dim": (self.time_dim >= 2 and self.time_dim % 2 == 0, "an even number >= 2"),
            "ratio_r_neq_t": (0 <= self.ratio_r_neq_t <= 1, "in [0, 1]"),
            "full_interval_frac": (0 <= self.full_interval_frac <= 1, "in [0, 1]"),
            "adaptive_c": (self.adaptive_c > 0, "> 0"),
            "meanflow_recipe": (
                self.meanflow_recipe == "custom" or not self._recipe_fields_changed(),
                "'custom' when meanflow_tr_sampler, ratio_r_neq_t or adaptive_p is set ('paper' sets them)",
            ),
        }

    def _recipe_fields_changed(self) -> bool:
        defaults = {f.name: f.default for f in fields(self)}
        return any(getattr(self, k) != defaults[k] for k in RECIPE_FIELDS)

    def flow_kwargs(self, kind: str) -> dict:
        """Constructor options of flow `kind` (reflow, meanflow; none for other kinds)."""
        meanflow = {
            "tr_sampler": self.meanflow_tr_sampler,
            "ratio_r_neq_t": self.ratio_r_neq_t,
            "full_interval_frac": self.full_interval_frac,
            "adaptive_p": self.adaptive_p,
            "adaptive_c": self.adaptive_c,
        }
        if self.meanflow_recipe == "paper":
            meanflow |= PAPER_RECIPE
        return {
            "reflow": {"time_sampler": self.reflow_time_sampler, "prediction": self.flow_prediction},
            "meanflow": {**meanflow, "prediction": self.flow_prediction},
        }.get(kind, {})


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
        return FLOWS[kind](net, device, h, a, **kwargs)
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
