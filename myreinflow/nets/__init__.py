"""Networks: MLPs, time embeddings and the flow network u(z, r, t | obs)."""

from myreinflow.nets.mlp import MLP, ChunkPolicyNet, FlowNet, SinusoidalEmbedding

__all__ = ["MLP", "ChunkPolicyNet", "FlowNet", "SinusoidalEmbedding"]
