"""What ReFlow and MeanFlow share: the time convention, the interpolation and the one sampler.

Convention (both flows): data x at t = 0, noise ε at t = 1, z_t = (1 − t)·x + t·ε, instantaneous velocity
v = dz_t/dt = ε − x. The network predicts the *average* velocity u(z_t, r, t | obs) over [r, t], so that
z_r = z_t − (t − r)·u(z_t, r, t). ReFlow is the case r = t (u is the instantaneous velocity).

What the network outputs (`prediction`); every loss is an MSE on that output, against the output that
would give the target velocity (`output_for`), so the parameterisation also sets the loss weighting:

- `velocity`: u itself (loss on u).
- `data`: the clean chunk g(z_t, r, t | obs), with u = (z_t − g)/t. Then z_r = (r/t)·z_t + (1 − r/t)·g,
  so one step from t = 1 to r = 0 returns g; the loss is the MSE on the clean chunk (t²·‖u − u*‖²).
  Guard: t is clamped to ≥ `T_MIN` in the division. The sampler never evaluates t = 0 (its last step
  starts at t = 1/K), so the guard only matters for callers who query u at t ≈ 0.
"""

from __future__ import annotations

import torch
from torch import nn

from myreinflow.names import PREDICTIONS


def as_condition(cond: torch.Tensor | dict) -> torch.Tensor:
    """Flatten a conditioning batch to (B, cond_dim); accepts a tensor or a dict with key 'state'."""
    if isinstance(cond, dict):
        cond = cond["state"]
    return cond.reshape(cond.shape[0], -1)


T_MIN = 1e-4  # smallest t that u = (z − g)/t divides by


def logit_normal(n: int, mean: float, std: float, device, generator=None) -> torch.Tensor:
    return torch.sigmoid(mean + std * torch.randn(n, device=device, generator=generator))


class FlowModel(nn.Module):
    """Generative model over action chunks (B, horizon_steps, action_dim), conditioned on observations."""

    def __init__(
        self,
        network: nn.Module,
        device: str | torch.device,
        horizon_steps: int,
        action_dim: int,
        prediction: str = "data",
    ):
        super().__init__()
        if prediction not in PREDICTIONS:
            raise ValueError(f"flow prediction {prediction!r} is not one of {PREDICTIONS}")
        self.network, self.prediction = network, prediction
        self.device = torch.device(device)
        self.horizon_steps, self.action_dim = horizon_steps, action_dim
        self.progress = 1.0  # fraction of training done (`set_progress`)
        self.to(self.device)

    def set_progress(self, fraction: float) -> None:
        """The trainer's progress through training, 0 at the start and 1 at the end, for a loss with a
        schedule (MeanFlow's curriculum); without a call, training is taken as over."""
        self.progress = float(fraction)

    @property
    def flat_dim(self) -> int:
        return self.horizon_steps * self.action_dim

    def velocity_of(self, out: torch.Tensor, z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """u from the network's output: the output itself, or (z − g)/t for data prediction."""
        if self.prediction == "velocity":
            return out
        return (z - out) / t.clamp_min(T_MIN)[:, None]

    def output_for(self, u: torch.Tensor, z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The network output that gives velocity u at (z, t): the inverse of `velocity_of`."""
        if self.prediction == "velocity":
            return u
        return z - t[:, None] * u

    def total_derivative(self, out, d_out, z, t, dz) -> tuple[torch.Tensor, torch.Tensor]:
        """(u, du/dt along the tangent (dz, 0, 1)) from the network output and its JVP d_out."""
        u = self.velocity_of(out, z, t)
        if self.prediction == "velocity":
            return u, d_out
        return u, (dz - d_out - u) / t.clamp_min(T_MIN)[:, None]  # u = (z − g)/t

    def average_velocity(self, z, r, t, obs) -> torch.Tensor:
        """u(z, r, t | obs), r and t of shape (B,) or (1,) (shared by the batch)."""
        return self.velocity_field(obs)(z, r, t)

    def velocity_field(self, obs: torch.Tensor):
        """u(z, r, t | obs) as a function of (z, r, t) for one batch of observations; flows that only know
        v override this."""
        network = self.conditioned_network(obs)
        return lambda z, r, t: self.velocity_of(network(z, r, t), z, t)

    def conditioned_network(self, obs: torch.Tensor):
        """The network's output as a function of (z, r, t) for one batch of observations: its own
        `conditioned` where it has one (FlowNet: what depends on obs alone computed once)."""
        if hasattr(self.network, "conditioned"):
            return self.network.conditioned(obs)
        return lambda z, r, t: self.network(z, r, t, obs)

    def interpolate(self, x: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return (1 - t)[:, None] * x + t[:, None] * noise

    def integrate(self, obs: torch.Tensor, noise: torch.Tensor, inference_steps: int, return_path=False):
        """Euler/average-velocity steps from t = 1 (noise, (B, H·A)) to t = 0 on a uniform grid of
        `inference_steps` steps (NFE); differentiable (`sample` is the no-grad, clipped version).
        Returns the unclipped (B, H·A) chunks, and with `return_path` the (K + 1, B, H·A) trajectory."""
        if inference_steps < 1:
            raise ValueError(f"inference_steps must be >= 1, got {inference_steps}")
        z = noise.reshape(obs.shape[0], self.flat_dim)
        grid = torch.linspace(1.0, 0.0, inference_steps + 1, device=obs.device)
        velocity = self.velocity_field(obs)
        path = [z]
        for k in range(inference_steps):
            t, r = grid[k : k + 1], grid[k + 1 : k + 2]  # one time for the batch
            z = z - (grid[k] - grid[k + 1]) * velocity(z, r, t)
            path.append(z)
        return (z, torch.stack(path)) if return_path else z

    @torch.no_grad()
    def sample(
        self,
        cond: torch.Tensor | dict,
        inference_steps: int,
        noise: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        clip: float | None = 1.0,
        return_path: bool = False,
    ):
        """`integrate` without gradients from noise (drawn unless given): action chunks (B, horizon_steps,
        action_dim), clipped to ±clip (None: no clipping), and with `return_path` also the trajectory
        of the unclipped states."""
        obs = as_condition(cond)
        if noise is None:
            noise = torch.randn(obs.shape[0], self.flat_dim, device=obs.device, generator=generator)
        z, path = self.integrate(obs, noise, inference_steps, return_path=True)
        x = z.reshape(obs.shape[0], self.horizon_steps, self.action_dim)
        if clip is not None:
            x = x.clamp(-clip, clip)
        return (x, path) if return_path else x

    def compute_loss(self, x: torch.Tensor, obs: torch.Tensor, valid=None) -> tuple[torch.Tensor, dict]:
        """Training loss on a batch of data chunks x (B, H, A) and observations; returns (loss, info).
        `valid` (B, H), optional: the chunk steps that count (padded tails past an episode's end do not;
        Q-chunking's masked BC flow loss)."""
        raise NotImplementedError

    def step_weights(self, valid: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor | float:
        """Per-element weights (B, H·A) of a flattened chunk from a (B, H) `valid` mask (1.0 if None)."""
        if valid is None:
            return 1.0
        return valid.to(like.dtype).repeat_interleave(self.action_dim, dim=1)
