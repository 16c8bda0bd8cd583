"""The 2D study: ReFlow vs MeanFlow vs 2-rectified flow across inference steps (`myreinflow mean-flow-2d`)."""

from myreinflow.toy2d.distributions import DISTRIBUTIONS
from myreinflow.toy2d.study import MODELS, Toy2DConfig, run

__all__ = ["DISTRIBUTIONS", "MODELS", "Toy2DConfig", "run"]
