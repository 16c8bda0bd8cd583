"""MLP building blocks and the flow network shared by ReFlow and MeanFlow."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

ACTIVATIONS = {"silu": nn.SiLU, "gelu": nn.GELU, "relu": nn.ReLU, "mish": nn.Mish, "tanh": nn.Tanh}


def _silu_grad(x):
    s = torch.sigmoid(x)
    return s * (1 + x * (1 - s))


def _gelu_grad(x):  # exact (erf) GELU, nn.GELU's default
    return 0.5 * (1 + torch.erf(x / math.sqrt(2))) + x * torch.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)


def _mish_grad(x):
    sp = torch.nn.functional.softplus(x)
    tsp = torch.tanh(sp)
    return tsp + x * torch.sigmoid(x) * (1 - tsp * tsp)


# derivative of each activation, for the forward-mode JVP in FlowNet.forward_and_jvp
ACTIVATION_GRADS = {
    "silu": _silu_grad,
    "gelu": _gelu_grad,
    "relu": lambda x: (x > 0).to(x.dtype),
    "mish": _mish_grad,
    "tanh": lambda x: 1 - torch.tanh(x) ** 2,
}


def full_precision(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """`layer(x)` in float32 even under autocast: a network's output layer (Q values, actions, velocities)
    keeps float32 precision when its hidden matmuls run in bf16 (`matmul_precision bf16`)."""
    if not torch.is_autocast_enabled(x.device.type):
        return layer(x)
    with torch.autocast(x.device.type, enabled=False):
        return layer(x.float())


class MLP(nn.Sequential):
    """Linear → [LayerNorm] → activation, repeated; a plain linear output layer."""

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        hidden: tuple[int, ...] = (256, 256, 256),
        activation: str = "silu",
        layer_norm: bool = False,
    ):
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation {activation!r} is not one of {sorted(ACTIVATIONS)}")
        layers: list[nn.Module] = []
        for width in hidden:
            layers.append(nn.Linear(in_dim, width))
            if layer_norm:
                layers.append(nn.LayerNorm(width))
            layers.append(ACTIVATIONS[activation]())
            in_dim = width
        layers.append(nn.Linear(in_dim, out_dim))
        super().__init__(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        *hidden, output = self
        for layer in hidden:
            x = layer(x)
        return full_precision(output, x)

    def after_first(self, h: torch.Tensor) -> torch.Tensor:
        """The layers after the first Linear, on that Linear's output h (an MLP with hidden layers)."""
        *hidden, output = list(self)[1:]
        for layer in hidden:
            h = layer(h)
        return full_precision(output, h)


class SinusoidalEmbedding(nn.Module):
    """sin/cos features of a scalar in [0, 1] at *low* angular frequencies (geometric from 1 to max_freq).

    Low frequencies matter for MeanFlow: its target contains ∂u/∂t, and a DiT-style t·1000 embedding
    makes that derivative (and the JVP target) explode.
    """

    def __init__(self, dim: int = 32, max_freq: float = 30.0):
        super().__init__()
        if dim % 2:
            raise ValueError(f"embedding dim must be even, got {dim}")
        freqs = torch.exp(torch.linspace(0.0, math.log(max_freq), dim // 2))
        self.register_buffer("freqs", freqs, persistent=False)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        angles = t.reshape(-1, 1) * self.freqs
        return torch.cat([angles.sin(), angles.cos()], dim=-1)

    def tangent(self, t: torch.Tensor, dt: torch.Tensor) -> torch.Tensor:
        """d/dε of forward(t + ε·dt) at ε = 0."""
        angles = t.reshape(-1, 1) * self.freqs
        scale = dt.reshape(-1, 1) * self.freqs
        return torch.cat([angles.cos() * scale, -angles.sin() * scale], dim=-1)


class FlowNet(nn.Module):
    """Average velocity u(z, r, t | obs) over [r, t] for flattened action chunks.

    `z` is (B, horizon·act_dim), `obs` is (B, cond_dim) (stacked, normalised observations), `r` and `t`
    are (B,). Time enters as embeddings of t and of the interval length t − r, so ReFlow (r = t) sees a
    constant second embedding and MeanFlow learns how u depends on the interval.
    """

    def __init__(
        self,
        action_dim: int,
        cond_dim: int,
        hidden: tuple[int, ...] = (256, 256, 256),
        time_dim: int = 32,
        max_freq: float = 30.0,
        activation: str = "silu",
    ):
        super().__init__()
        self.action_dim, self.cond_dim = action_dim, cond_dim
        self.t_embed = SinusoidalEmbedding(time_dim, max_freq)
        self.dt_embed = SinusoidalEmbedding(time_dim, max_freq)
        self.mlp = MLP(action_dim + cond_dim + 2 * time_dim, action_dim, hidden, activation)
        self.activation_grad = ACTIVATION_GRADS[activation]

    def forward(self, z: torch.Tensor, r: torch.Tensor, t: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
        x = torch.cat([z, obs, self.t_embed(t), self.dt_embed(t - r)], dim=-1)
        return self.mlp(x)

    def conditioned(self, obs: torch.Tensor):
        """`forward` for one batch of observations as a function of (z, r, t), for a sampler's steps.

        The first layer's input is split by columns, W·[z, obs, emb] + b = W_z·z + (W_obs·obs + b) +
        W_emb·emb: the observation term is computed once for all steps, and r, t of shape (1,) (one
        time for the whole batch, as on a sampler's grid) are embedded once per step instead of per
        sample. The same function as `forward` up to float rounding (tested); it speeds up FQL's update,
        whose target takes 10 Euler steps (docs/benchmarks.md).
        """
        first, a, c = self.mlp[0], self.action_dim, self.cond_dim
        obs_term = F.linear(obs, first.weight[:, a : a + c], first.bias)
        w_z, w_time = first.weight[:, :a], first.weight[:, a + c :]

        def network(z: torch.Tensor, r: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            time = torch.cat([self.t_embed(t), self.dt_embed(t - r)], dim=-1)
            first_layer = torch.addmm(obs_term, z, w_z.t()).add_(F.linear(time, w_time))  # one new tensor
            return self.mlp.after_first(first_layer)

        return network

    def forward_and_jvp(self, z, r, t, obs, dz, dr, dt) -> tuple[torch.Tensor, torch.Tensor]:
        """(u, JVP of u along (dz, dr, dt)) in one pass: forward mode by hand for this MLP.

        Same numbers as `torch.func.jvp(self, …)` (tested), at about a third of its cost on CPU: the
        tangent reuses the primal's pre-activations and, since MeanFlow's target is stop-gradient, runs
        without autograd; u keeps its graph for the backward pass.
        """
        x = torch.cat([z, obs, self.t_embed(t), self.dt_embed(t - r)], dim=-1)
        with torch.no_grad():
            d_time = [self.t_embed.tangent(t, dt), self.dt_embed.tangent(t - r, dt - dr)]
            dx = torch.cat([dz, torch.zeros_like(obs), *d_time], dim=-1)
        layers = list(self.mlp)
        for i, layer in enumerate(layers):
            if isinstance(layer, nn.Linear):
                x = layer(x) if i + 1 < len(layers) else full_precision(layer, x)
                with torch.no_grad():
                    dx = torch.nn.functional.linear(dx, layer.weight)
                    if i + 1 < len(layers):
                        dx = self.activation_grad(x) * dx
            else:
                x = layer(x)
        return x, dx


class ChunkPolicyNet(nn.Module):
    """Deterministic (MLP) or categorical policy head over a whole action chunk.

    For continuous actions it outputs the chunk (B, horizon·act_dim) in [-1, 1]-scaled units (no
    squashing; the sampler clips). For discrete actions it outputs logits (B, horizon, n_actions).
    """

    def __init__(
        self,
        cond_dim: int,
        horizon: int,
        act_dim: int,
        hidden: tuple[int, ...] = (256, 256, 256),
        activation: str = "silu",
        n_actions: int | None = None,
    ):
        super().__init__()
        self.horizon, self.act_dim, self.n_actions = horizon, act_dim, n_actions
        out = horizon * (n_actions if n_actions else act_dim)
        self.mlp = MLP(cond_dim, out, hidden, activation)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        out = self.mlp(obs)
        if self.n_actions:
            return out.reshape(-1, self.horizon, self.n_actions)
        return out


class OneStepPolicyNet(ChunkPolicyNet):
    """FQL's one-step policy μ(s, z): a chunk MLP from (observation, noise chunk) to an action chunk.

    No tanh (as in the reference): actions are clipped to [-1, 1] where they are used. `sample` has the
    flows' signature so evaluation treats it like a flow sampled with one step.
    """

    def __init__(self, cond_dim: int, horizon: int, act_dim: int, **kw):
        kw.setdefault("activation", "gelu")
        super().__init__(cond_dim + horizon * act_dim, horizon, act_dim, **kw)

    def forward(self, obs: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """obs (B, cond_dim), z (B, horizon·act_dim) → unclipped chunk (B, horizon·act_dim)."""
        return super().forward(torch.cat([obs, z], dim=-1))

    @torch.no_grad()
    def sample(self, cond, inference_steps: int = 1, noise=None, generator=None, clip: float | None = 1.0):
        obs = cond.reshape(cond.shape[0], -1)
        flat = self.horizon * self.act_dim
        if noise is None:
            noise = torch.randn(obs.shape[0], flat, device=obs.device, generator=generator)
        x = self(obs, noise.reshape(-1, flat)).reshape(-1, self.horizon, self.act_dim)
        return x.clamp(-clip, clip) if clip is not None else x
