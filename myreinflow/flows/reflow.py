"""ReFlow: rectified flow (flow matching on straight noise–data paths), sampled with K Euler steps."""

from __future__ import annotations

import torch

from myreinflow.flows.base import FlowModel, as_condition, logit_normal

TIME_SAMPLERS = ("uniform", "logit_normal", "beta")


class ReFlow(FlowModel):
    """Rectified flow over action chunks; the network is queried at r = t (instantaneous velocity).

    Loss, with t from `time_sampler` (uniform by default; logit-normal (mean, std) or Beta(a, b) as
    options): `velocity` prediction ‖u(z_t, t, t | obs) − (ε − x)‖²; `data` prediction
    ‖g(z_t, t, t | obs) − x‖², the clean-chunk MSE (the velocity loss weighted by t², since
    u − v = (x − g)/t).
    """

    def __init__(
        self,
        network,
        device="cpu",
        horizon_steps: int = 1,
        action_dim: int = 1,
        time_sampler: str = "uniform",
        logit_mean: float = 0.0,
        logit_std: float = 1.0,
        beta_a: float = 1.5,
        beta_b: float = 1.0,
        prediction: str = "data",
    ):
        super().__init__(network, device, horizon_steps, action_dim, prediction)
        if time_sampler not in TIME_SAMPLERS:
            raise ValueError(f"ReFlow time_sampler {time_sampler!r} is not one of {TIME_SAMPLERS}")
        self.time_sampler = time_sampler
        self.logit_mean, self.logit_std, self.beta_a, self.beta_b = logit_mean, logit_std, beta_a, beta_b

    def sample_time(self, n: int, device) -> torch.Tensor:
        if self.time_sampler == "logit_normal":
            return logit_normal(n, self.logit_mean, self.logit_std, device)
        if self.time_sampler == "beta":
            beta = torch.distributions.Beta(torch.tensor(self.beta_a), torch.tensor(self.beta_b))
            return beta.sample((n,)).to(device)
        return torch.rand(n, device=device)

    def velocity_field(self, obs):
        # ReFlow only learns the instantaneous velocity: an Euler step uses v(z_t, t) for the whole interval.
        network = self.conditioned_network(obs)
        return lambda z, r, t: self.velocity_of(network(z, t, t), z, t)

    def generate_target(self, x1: torch.Tensor):
        """Training pair for data chunks `x1` (B, H, A): returns ((z_t, t), v) with v = ε − x1."""
        x = x1.reshape(x1.shape[0], -1)
        noise = torch.randn_like(x)
        t = self.sample_time(x.shape[0], x.device)
        return (self.interpolate(x, noise, t), t), noise - x

    def loss(self, xt: torch.Tensor, t: torch.Tensor, obs, v: torch.Tensor, weight=1.0) -> torch.Tensor:
        """Flow-matching MSE on the network's output: v, or the clean chunk x = z_t − t·v; `weight`
        (per element) zeroes masked chunk steps, which still count in the mean (Q-chunking's choice)."""
        out = self.network(xt, t, t, as_condition(obs))
        return ((out - self.output_for(v, xt, t)).pow(2) * weight).mean()

    def compute_loss(self, x, obs, valid=None):
        (xt, t), v = self.generate_target(x)
        loss = self.loss(xt, t, obs, v, self.step_weights(valid, xt))
        return loss, {"train/loss": loss.detach(), "train/flow_mse": loss.detach()}
