"""Networks: MLPs, time embeddings, the flow network u(z, r, t | obs), FQL's one-step policy and critic."""

from myreinflow.nets.ensemble import EnsembleMLP
from myreinflow.nets.mlp import MLP, ChunkPolicyNet, FlowNet, OneStepPolicyNet, SinusoidalEmbedding

__all__ = ["MLP", "ChunkPolicyNet", "EnsembleMLP", "FlowNet", "OneStepPolicyNet", "SinusoidalEmbedding"]
