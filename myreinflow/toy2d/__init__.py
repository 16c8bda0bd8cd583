"""The 2D study: ReFlow vs MeanFlow vs 2-rectified flow across inference steps (`myreinflow toy2d`)."""

from myreinflow.configs import Toy2DConfig
from myreinflow.names import TOY2D_MODELS as MODELS
from myreinflow.toy2d.distributions import DISTRIBUTIONS
from myreinflow.toy2d.study import run

__all__ = ["DISTRIBUTIONS", "MODELS", "Toy2DConfig", "run"]
