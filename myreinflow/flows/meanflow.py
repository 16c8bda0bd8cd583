"""MeanFlow (Geng et al., 2025): learn the average velocity u over [r, t] for one-step generation.

The MeanFlow identity u(z_t, r, t) = v − (t − r)·d/dt u(z_t, r, t), with the total derivative
d/dt u = v·∂_z u + ∂_t u, is computed as one forward-mode JVP of the network with tangent (v, 0, 1)
on (z, r, t): `torch.func.jvp` for any network (no double backward), or the network's own
`forward_and_jvp` when it has one (FlowNet: same numbers, ~3× cheaper on CPU). The target is
stop-gradient; the loss per sample is the squared error summed over dimensions, with the paper's
adaptive weight 1/(err + c)^p (detached). With p = 1 the weighted loss sits near 1 whatever the error,
so `train/flow_mse` (unweighted, per dimension) is logged too.

Other network outputs (`prediction`, see `flows/base.py`): the JVP of the network gives the output's
derivative and the chain rule gives du/dt (`FlowModel.total_derivative`): for data prediction, where
the network outputs the clean chunk g and u = (z − g)/t, du/dt = (v − ġ − u)/t (checked against
`torch.func.jvp` of u and finite differences in the tests). The target u_tgt is the same identity;
the error is measured on the network's output: for data prediction ‖g − g_tgt‖² with g_tgt = z − t·u_tgt
= z − t·v + (t − r)·(v − ġ − u), which is t²·‖u − u_tgt‖² (bounded as t → 0, since r ≤ t). At r = t
it is the clean-chunk MSE of data-prediction flow matching, ‖g − x‖².

Defaults (`tr_sampler="uniform"`, `ratio_r_neq_t=0.5`, `adaptive_p=0.5`) are the recipe measured to work
on this project's tasks (docs/measurements.md); the paper's ImageNet recipe is `PAPER_RECIPE`
(logit-normal(−0.4, 1) pairs, 25 % r ≠ t, p = 1), the CLI's `--meanflow_recipe paper`.
"""

from __future__ import annotations

import torch
from torch.func import jvp

from myreinflow.flows.base import FlowModel, as_condition, logit_normal

TR_SAMPLERS = ("logit_normal", "uniform", "full")


class MeanFlow(FlowModel):
    """MeanFlow over action chunks.

    (t, r) sampling (`tr_sampler`): `logit_normal` — two logit-normal(mean, std) draws sorted so r ≤ t
    (the paper); `uniform` — two uniform draws sorted; `full` — logit-normal pairs, but a fraction
    `full_interval_frac` of the r ≠ t pairs is the whole interval (t = 1, r = 0) that 1-step sampling
    uses. In every case a fraction 1 − `ratio_r_neq_t` of the pairs gets r = t (plain flow matching).
    """

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
        full_interval_frac: float = 0.1,
        adaptive_p: float = 0.5,
        adaptive_c: float = 1e-3,
        prediction: str = "data",
    ):
        super().__init__(network, device, horizon_steps, action_dim, prediction)
        if tr_sampler not in TR_SAMPLERS:
            raise ValueError(f"MeanFlow tr_sampler {tr_sampler!r} is not one of {TR_SAMPLERS}")
        if not 0.0 <= ratio_r_neq_t <= 1.0:
            raise ValueError(f"ratio_r_neq_t must be in [0, 1], got {ratio_r_neq_t}")
        self.tr_sampler, self.ratio_r_neq_t = tr_sampler, ratio_r_neq_t
        self.logit_mean, self.logit_std, self.full_interval_frac = logit_mean, logit_std, full_interval_frac
        self.adaptive_p, self.adaptive_c = adaptive_p, adaptive_c

    def sample_tr(self, n: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        """(t, r) pairs with 0 ≤ r ≤ t ≤ 1."""
        if self.tr_sampler == "uniform":
            pair = torch.rand(n, 2, device=device)
        else:
            pair = logit_normal(2 * n, self.logit_mean, self.logit_std, device).reshape(n, 2)
        t, r = pair.max(dim=1).values, pair.min(dim=1).values
        distinct = torch.rand(n, device=device) < self.ratio_r_neq_t
        r = torch.where(distinct, r, t)
        if self.tr_sampler == "full":
            full = distinct & (torch.rand(n, device=device) < self.full_interval_frac)
            t, r = torch.where(full, torch.ones_like(t), t), torch.where(full, torch.zeros_like(r), r)
        return t, r

    def generate_target_mean(self, x1: torch.Tensor):
        """Training tuple for data chunks `x1` (B, H, A): returns ((z_t, t, r), v) with v = ε − x1."""
        x = x1.reshape(x1.shape[0], -1)
        noise = torch.randn_like(x)
        t, r = self.sample_tr(x.shape[0], x.device)
        return (self.interpolate(x, noise, t), t, r), noise - x

    def network_and_jvp(self, zt, r, t, obs, v) -> tuple[torch.Tensor, torch.Tensor]:
        """(network output, its JVP along the tangent (v, 0, 1) on (z, r, t)); the JVP is detached."""
        tangents = (v, torch.zeros_like(r), torch.ones_like(t))
        if hasattr(self.network, "forward_and_jvp"):
            return self.network.forward_and_jvp(zt, r, t, obs, *tangents)
        out, d_out = jvp(lambda z, r_, t_: self.network(z, r_, t_, obs), (zt, r, t), tangents)
        return out, d_out.detach()

    def loss_mean(self, zt, t, r, obs, v, weight=1.0) -> tuple[torch.Tensor, torch.Tensor]:
        """Adaptive-weighted MeanFlow loss; returns (weighted loss, unweighted per-dimension MSE).
        `weight` (per element) zeroes masked chunk steps before the per-sample sum."""
        obs = as_condition(obs)
        out, d_out = self.network_and_jvp(zt, r, t, obs, v)
        _, dudt = self.total_derivative(out.detach(), d_out, zt, t, v)
        u_tgt = v - (t - r)[:, None] * dudt
        # the error is measured on what the network outputs: u, or the clean chunk g = z − t·u
        err = ((out - self.output_for(u_tgt, zt, t).detach()).pow(2) * weight).sum(dim=-1)
        weight = (err.detach() + self.adaptive_c).pow(-self.adaptive_p)
        return (weight * err).mean(), err.detach().mean() / zt.shape[-1]

    def compute_loss(self, x, obs, valid=None):
        (zt, t, r), v = self.generate_target_mean(x)
        loss, mse = self.loss_mean(zt, t, r, obs, v, self.step_weights(valid, zt))
        return loss, {"train/loss": loss.detach(), "train/flow_mse": mse}

    def sample_one_step(self, cond, **kwargs):
        """One network evaluation: x = ε − u(ε, 0, 1 | obs)."""
        return self.sample(cond, 1, **kwargs)

    def sample_mean_flow(self, cond, inference_steps: int, **kwargs):
        """K-step sampling with average velocities over each interval of the uniform grid."""
        return self.sample(cond, inference_steps, **kwargs)
