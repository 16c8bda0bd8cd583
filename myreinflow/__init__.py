"""myreinflow: flow-matching policies (ReFlow, MeanFlow) for offline RL."""

from myreinflow.flows import MeanFlow, ReFlow

__version__ = "0.1.0"
__all__ = ["MeanFlow", "ReFlow", "__version__"]
