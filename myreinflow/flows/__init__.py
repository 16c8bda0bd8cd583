"""Flow models over action chunks: ReFlow (multi-step) and MeanFlow (one-step), one sampler."""

from myreinflow.flows.base import FlowModel
from myreinflow.flows.meanflow import MeanFlow
from myreinflow.flows.reflow import ReFlow

FLOWS = {"reflow": ReFlow, "meanflow": MeanFlow}

__all__ = ["FLOWS", "FlowModel", "MeanFlow", "ReFlow"]
