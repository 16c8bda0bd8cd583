"""MeanFlow (Geng et al., 2025): learn the average velocity u over [r, t] for one-step generation.

One loss with named parts, each a recipe option (`MeanFlow.__init__`):

    target   u_tgt = sg(v − (t − r)·du/dt)            `identity`: the MeanFlow identity, du/dt by a JVP
                                                      along the sample's velocity v = ε − x;
                                                      `imf`: the same along the model's own velocity
                                                      u(z_t, t, t) (improved MeanFlow, Geng et al. 2025b);
             u_tgt = sg((1 − λ)·u(z_t, s, t) + λ·u(z_s, r, s)),  s = r + λ(t − r), λ ~ U(0, 1),
                      z_s = z_t − (t − s)·u(z_t, s, t)   `split`: SplitMeanFlow's interval splitting, no JVP;
             at r = t every target is v (flow matching); `target_clip` clips it to ±c;
             `curriculum` f > 0 (AlphaFlow, Zhang et al. 2025): over the first fraction f of training the
             target moves from v (trajectory flow matching, α = 1) to the one above (α = 0) by α-Flow's
             u_α = α·v + (1 − α)·sg(u(z_s, r, s)), s = t − α(t − r), z_s = z_t − α(t − r)·v, with α =
             1 − sigmoid(25·(k/K − f/2)/f) snapped to 0 and 1 within 0.005; the loss uses the equivalent
             target sg(u + (u_α − u)/α), whose gradient is α-Flow's α⁻¹‖u − u_α‖² and tends to the
             MeanFlow identity's as α → 0 (the trainer reports k/K by `set_progress`);
    error    on what the network outputs (`output`: u, or the clean chunk for data prediction, where it is
             t²·‖u − u_tgt‖²) or on the velocity (`velocity`: ‖u − u_tgt‖² for any prediction);
    weight   per sample e = Σ or mean over dimensions (`adaptive_reduce`) of the squared error,
             loss = sg((e + c)^−p)·e — p = 0 is the MSE, p = 0.5 caps the per-sample gradient, p < 0.5
             (the MeanFlow-QL reference: p 0.2 on the mean, c 1e-4) keeps it growing with the error;
    boundary + w_b·‖u(z_t, t, t) − v‖² on the same z_t (`boundary_weight`; MVP's instantaneous-velocity
             constraint, the flow-matching loss that r = 0-only training lacks);
    (t, r)   `sample_tr`: uniform pairs or logit-normal pairs sorted, or r = 0 with t uniform (`r0`, the
             MeanFlow-QL reference); a fraction 1 − `ratio_r_neq_t` of the pairs gets r = t and a fraction
             `full_interval_frac` of the others the whole interval (t = 1, r = 0) that one step uses.

The JVP is one forward-mode pass of the network with tangent (dz, 0, 1) on (z, r, t): the network's own
`forward_and_jvp` when it has one (FlowNet: cheaper than `torch.func.jvp`, same numbers; docs/benchmarks.md).
For data prediction (u = (z − g)/t) the chain rule gives du/dt = (dz − ġ − u)/t
(`FlowModel.total_derivative`, tested against `torch.func.jvp` of u and finite differences).
`train/flow_mse` logs the unweighted per-dimension error.

The default recipe is iMF's target with the boundary term (uniform pairs, half with r ≠ t, p = 0.5 on the
summed error), because it beat the previous one on every seed of Pusher BC and of the 2D checkerboard
(docs/meanflow_recipes.md). Named recipes (`configs.MEANFLOW_RECIPES`): `v1` the previous default,
`paper` the MeanFlow paper's ImageNet recipe, `mfql` the MeanFlow-QL reference's loss.

Deliberate deviations from the references:
- `target_clip` clips in the error's space; the MeanFlow-QL reference clips z − u_tgt, as its network
  outputs z − u (which velocity prediction with the velocity error matches up to that skip term).
- `imf` takes the model's velocity from the network at r = t (iMF's boundary variant); iMF's released
  code adds an auxiliary velocity head for it.
- The boundary term is a plain squared error, reduced like the MeanFlow term but without its adaptive
  weight (MVP's weighting is not published).
- AlphaFlow's curriculum here starts at the first step and ends at the fraction `curriculum` of training;
  its α-Flow phase uses the conditional velocity v for the short segment, as its code does.
"""

from __future__ import annotations

import math

import torch
from torch.func import jvp

from myreinflow.flows.base import FlowModel, as_condition, logit_normal
from myreinflow.names import (
    MEANFLOW_ERRORS,
    MEANFLOW_REDUCTIONS,
    MEANFLOW_TARGETS,
    MEANFLOW_TR_SAMPLERS,
)

# flow_kwargs of specs written before these options existed: the values that reproduce that code
V1_KWARGS = {
    "target": "identity",
    "error_space": "output",
    "adaptive_reduce": "sum",
    "target_clip": 0.0,
    "boundary_weight": 0.0,
    "curriculum": 0.0,
}


def upgrade_kwargs(kwargs: dict) -> dict:
    """MeanFlow kwargs of a checkpoint's spec in today's terms: a spec without the recipe options keeps
    its recipe (its `full` sampler was logit-normal pairs with `full_interval_frac` of the r ≠ t pairs
    on the whole interval; other samplers ignored that fraction)."""
    if "target" in kwargs:
        return kwargs
    kwargs = {**V1_KWARGS, **kwargs}
    if kwargs.get("tr_sampler") == "full":
        kwargs["tr_sampler"] = "logit_normal"
    else:
        kwargs["full_interval_frac"] = 0.0
    return kwargs


class MeanFlow(FlowModel):
    """MeanFlow over action chunks; the recipe options are described in the module docstring."""

    def __init__(
        self,
        network,
        device="cpu",
        horizon_steps: int = 1,
        action_dim: int = 1,
        tr_sampler: str = "uniform",
        ratio_r_neq_t: float = 0.5,
        logit_mean: float = -0.4,
        logit_std: float = 1.0,
        full_interval_frac: float = 0.0,
        target: str = "imf",
        target_clip: float = 0.0,
        error_space: str = "output",
        adaptive_p: float = 0.5,
        adaptive_c: float = 1e-3,
        adaptive_reduce: str = "sum",
        boundary_weight: float = 1.0,
        curriculum: float = 0.0,
        prediction: str = "data",
    ):
        super().__init__(network, device, horizon_steps, action_dim, prediction)
        for name, value, allowed in (
            ("tr_sampler", tr_sampler, MEANFLOW_TR_SAMPLERS),
            ("target", target, MEANFLOW_TARGETS),
            ("error_space", error_space, MEANFLOW_ERRORS),
            ("adaptive_reduce", adaptive_reduce, MEANFLOW_REDUCTIONS),
        ):
            if value not in allowed:
                raise ValueError(f"MeanFlow {name} {value!r} is not one of {allowed}")
        for name, value in (
            ("ratio_r_neq_t", ratio_r_neq_t),
            ("full_interval_frac", full_interval_frac),
            ("curriculum", curriculum),
        ):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"MeanFlow {name} must be in [0, 1], got {value}")
        self.tr_sampler, self.ratio_r_neq_t = tr_sampler, ratio_r_neq_t
        self.logit_mean, self.logit_std, self.full_interval_frac = logit_mean, logit_std, full_interval_frac
        self.target, self.target_clip, self.error_space = target, target_clip, error_space
        self.adaptive_p, self.adaptive_c, self.adaptive_reduce = adaptive_p, adaptive_c, adaptive_reduce
        self.boundary_weight, self.curriculum = boundary_weight, curriculum

    def curriculum_alpha(self) -> float:
        """AlphaFlow's α at the current progress: 1 (flow matching) → 0 (MeanFlow) over `curriculum`."""
        if not self.curriculum or self.progress >= self.curriculum:
            return 0.0
        gamma, eta = 25.0, 0.005
        x = gamma * (self.progress - self.curriculum / 2) / self.curriculum
        alpha = 1.0 - 1.0 / (1.0 + math.exp(-x))
        return 0.0 if alpha < eta else 1.0 if alpha > 1 - eta else alpha

    # ---- (t, r) pairs and the training tuple

    def sample_tr(self, n: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        """(t, r) pairs with 0 ≤ r ≤ t ≤ 1."""
        if self.tr_sampler == "r0":
            t = torch.rand(n, device=device)
            r = torch.zeros_like(t)
        else:
            if self.tr_sampler == "uniform":
                pair = torch.rand(n, 2, device=device)
            else:
                pair = logit_normal(2 * n, self.logit_mean, self.logit_std, device).reshape(n, 2)
            t, r = pair.max(dim=1).values, pair.min(dim=1).values
        distinct = torch.rand(n, device=device) < self.ratio_r_neq_t
        r = torch.where(distinct, r, t)
        if not self.full_interval_frac:  # no draw: the random stream stays that of the recipes without it
            return t, r
        full = distinct & (torch.rand(n, device=device) < self.full_interval_frac)
        return torch.where(full, torch.ones_like(t), t), torch.where(full, torch.zeros_like(r), r)

    def generate_target_mean(self, x1: torch.Tensor):
        """Training tuple for data chunks `x1` (B, H, A): returns ((z_t, t, r), v) with v = ε − x1."""
        x = x1.reshape(x1.shape[0], -1)
        noise = torch.randn_like(x)
        t, r = self.sample_tr(x.shape[0], x.device)
        return (self.interpolate(x, noise, t), t, r), noise - x

    # ---- the target

    def network_and_jvp(self, zt, r, t, obs, dz) -> tuple[torch.Tensor, torch.Tensor]:
        """(network output, its JVP along the tangent (dz, 0, 1) on (z, r, t)); the JVP is detached."""
        tangents = (dz, torch.zeros_like(r), torch.ones_like(t))
        if hasattr(self.network, "forward_and_jvp"):
            return self.network.forward_and_jvp(zt, r, t, obs, *tangents)
        out, d_out = jvp(lambda z, r_, t_: self.network(z, r_, t_, obs), (zt, r, t), tangents)
        return out, d_out.detach()

    def identity_target(self, out, d_out, zt, r, t, v, dz) -> torch.Tensor:
        """u_tgt = v − (t − r)·du/dt, du/dt from the output's JVP d_out along (dz, 0, 1); detached."""
        _, dudt = self.total_derivative(out.detach(), d_out, zt, t, dz)
        return (v - (t - r)[:, None] * dudt).detach()

    @torch.no_grad()
    def split_target(self, zt, r, t, obs, v) -> torch.Tensor:
        """SplitMeanFlow: (t − r)·u(z_t, r, t) = (t − s)·u(z_t, s, t) + (s − r)·u(z_s, r, s) at a uniform
        split point s, both parts by the network without gradients; v where r = t."""
        lam = torch.rand_like(t)
        s = r + lam * (t - r)
        u_st = self.velocity_of(self.network(zt, s, t, obs), zt, t)
        z_s = zt - (t - s)[:, None] * u_st
        u_rs = self.velocity_of(self.network(z_s, r, s, obs), z_s, s)
        u_tgt = (1 - lam)[:, None] * u_st + lam[:, None] * u_rs
        return torch.where((t > r)[:, None], u_tgt, v)

    @torch.no_grad()
    def alpha_target(self, out, zt, r, t, obs, v, alpha: float) -> torch.Tensor:
        """α-Flow's target as the velocity target of equal gradient: sg(u + (u_α − u)/α)."""
        gap = alpha * (t - r)
        s, z_s = t - gap, zt - gap[:, None] * v
        u_alpha = alpha * v + (1 - alpha) * self.velocity_of(self.network(z_s, r, s, obs), z_s, s)
        u = self.velocity_of(out.detach(), zt, t)
        return torch.where((t > r)[:, None], u + (u_alpha - u) / alpha, v)

    def boundary_output(self, zt, t, obs, needed: bool) -> torch.Tensor | None:
        """The output at (z_t, t, t) (the instantaneous velocity), with its graph under the boundary term;
        None where neither the boundary term nor the target (`needed`) uses it."""
        if not (self.boundary_weight or needed):
            return None
        with torch.set_grad_enabled(bool(self.boundary_weight) and torch.is_grad_enabled()):
            return self.network(zt, t, t, obs)

    def prediction_and_target(
        self, zt, r, t, obs, v
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(network output at (z_t, r, t), the detached target velocity u_tgt, `boundary_output`)."""
        alpha = self.curriculum_alpha()
        target = "alpha" if alpha > 0 else self.target
        boundary = self.boundary_output(zt, t, obs, needed=target == "imf")
        if target in ("alpha", "split"):
            out = self.network(zt, r, t, obs)
            if target == "alpha":
                return out, self.alpha_target(out, zt, r, t, obs, v, alpha), boundary
            return out, self.split_target(zt, r, t, obs, v), boundary
        tangent = v if target == "identity" else self.velocity_of(boundary.detach(), zt, t)
        out, d_out = self.network_and_jvp(zt, r, t, obs, tangent)
        return out, self.identity_target(out, d_out, zt, r, t, v, tangent), boundary

    # ---- the loss

    def error(self, out, u_tgt, zt, t) -> torch.Tensor:
        """(B, D) error of the output against target velocity u_tgt, in `error_space`, target clipped."""
        if self.error_space == "velocity":
            out, target = self.velocity_of(out, zt, t), u_tgt
        else:
            target = self.output_for(u_tgt, zt, t)
        if self.target_clip:
            target = target.clamp(-self.target_clip, self.target_clip)
        return out - target.detach()

    def reduce(self, squared: torch.Tensor) -> torch.Tensor:
        """Per-sample squared error: summed or averaged over dimensions (`adaptive_reduce`)."""
        return squared.sum(dim=-1) if self.adaptive_reduce == "sum" else squared.mean(dim=-1)

    def loss_mean(self, zt, t, r, obs, v, weight=1.0) -> tuple[torch.Tensor, dict]:
        """The MeanFlow loss of a training tuple; returns (loss, info). `weight` (per element) zeroes
        masked chunk steps before the per-sample reduction."""
        obs = as_condition(obs)
        out, u_tgt, boundary = self.prediction_and_target(zt, r, t, obs, v)
        squared = self.error(out, u_tgt, zt, t).pow(2) * weight
        per_sample = self.reduce(squared)
        adaptive = (per_sample.detach() + self.adaptive_c).pow(-self.adaptive_p)
        loss = (adaptive * per_sample).mean()
        info = {"train/flow_mse": squared.detach().mean()}
        if self.boundary_weight:
            boundary_loss = self.reduce(self.error(boundary, v, zt, t).pow(2) * weight).mean()
            loss = loss + self.boundary_weight * boundary_loss
            info["train/boundary_loss"] = boundary_loss.detach()
        return loss, {"train/loss": loss.detach(), **info}

    def compute_loss(self, x, obs, valid=None):
        (zt, t, r), v = self.generate_target_mean(x)
        return self.loss_mean(zt, t, r, obs, v, self.step_weights(valid, zt))
