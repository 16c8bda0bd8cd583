"""A fused ensemble of MLPs (the FQL critic): every member's layer is one batched matmul."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from myreinflow.nets.mlp import ACTIVATIONS, full_precision

LN_EPS = 1e-6  # flax.linen.LayerNorm's default


class TanhGELU(nn.Module):
    """GELU's tanh approximation, 0.5·x·(1 + tanh(u)) with u = √(2/π)(x + 0.044715x³), written as the same
    function x·σ(2u): compiled for the CPU, the sigmoid's exp is cheaper than tanh (docs/benchmarks.md);
    the two agree within float32 rounding (tested)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(2 * math.sqrt(2 / math.pi) * (x + 0.044715 * x * x * x))


class EnsembleMLP(nn.Module):
    """`ensemble` independent MLPs, Linear → activation → [LayerNorm] per hidden layer, linear output.

    The layout of the FQL and Q-chunking references' critic (`utils/networks.py`: Dense → GELU →
    LayerNorm; flax defaults): weights variance-scaling fan-avg uniform (Glorot), biases zero, LayerNorm
    ε = 1e-6, and `gelu` is the tanh approximation (`jax.nn.gelu`'s default). Weights of layer l are one
    (E, in, out) tensor, so the E members run as one `baddbmm` instead of E small matmuls. Input (B, in)
    is shared by all members, or (E, B, in) gives each its own; output is (E, B, out).
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int = 1,
        hidden: tuple[int, ...] = (256, 256, 256),
        ensemble: int = 2,
        activation: str = "gelu",
        layer_norm: bool = True,
    ):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation {activation!r} is not one of {sorted(ACTIVATIONS)}")
        self.ensemble, self.layer_norm = ensemble, layer_norm
        self.act = TanhGELU() if activation == "gelu" else ACTIVATIONS[activation]()
        dims = [in_dim, *hidden, out_dim]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for d_in, d_out in zip(dims[:-1], dims[1:], strict=True):
            bound = math.sqrt(6.0 / (d_in + d_out))  # variance_scaling(1, fan_avg, uniform)
            self.weights.append(nn.Parameter(torch.empty(ensemble, d_in, d_out).uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(torch.zeros(ensemble, 1, d_out)))
        n_norm = len(hidden) if layer_norm else 0
        self.norm_scales = nn.ParameterList(nn.Parameter(torch.ones(ensemble, 1, w)) for w in hidden[:n_norm])
        self.norm_shifts = nn.ParameterList(
            nn.Parameter(torch.zeros(ensemble, 1, w)) for w in hidden[:n_norm]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            # shared input: one (B, in) @ (in, E·out) matmul instead of E copies of the batch
            w0, b0 = self.weights[0], self.biases[0]
            e, d_in, d_out = w0.shape
            h = (x @ w0.permute(1, 0, 2).reshape(d_in, e * d_out)).reshape(-1, e, d_out).transpose(0, 1) + b0
        else:
            h = torch.baddbmm(self.biases[0], x, self.weights[0])
        for i in range(1, len(self.weights)):
            h = self.act(h)
            if self.layer_norm:
                h = (
                    F.layer_norm(h, h.shape[-1:], eps=LN_EPS) * self.norm_scales[i - 1]
                    + self.norm_shifts[i - 1]
                )
            if i + 1 < len(self.weights):
                h = torch.baddbmm(self.biases[i], h, self.weights[i])
            else:
                h = full_precision(self.output_layer, h)
        return h

    def output_layer(self, h: torch.Tensor) -> torch.Tensor:
        w, b = self.weights[-1], self.biases[-1]
        if w.shape[-1] == 1:
            # one output (a Q value): a dot product per row, which inductor fuses; a batched GEMM with one
            # column is slow on the CPU (docs/benchmarks.md)
            return (h * w.transpose(1, 2)).sum(-1, keepdim=True) + b
        return torch.baddbmm(b, h, w)
