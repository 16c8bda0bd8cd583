"""The options of every command and pipeline stage, as dataclasses: a field's default, bounds, choices and
help are written once, here, and become the CLI's flags, the YAML keys, `config.yaml` and the pipeline
schema. Torch-free, so that `myreinflow <command> --help` answers at once; one module per command, each
algorithm module imports its config from this package.
"""

from myreinflow.configs.bc import BCConfig
from myreinflow.configs.common import MEANFLOW_FIELDS, MEANFLOW_RECIPES, DataOptions, FlowOptions
from myreinflow.configs.eval import EvalConfig
from myreinflow.configs.fql import FQLConfig, MFQLConfig, QCConfig
from myreinflow.configs.reinflow import ReinFlowConfig
from myreinflow.configs.toy2d import Toy2DConfig

__all__ = [
    "MEANFLOW_FIELDS",
    "MEANFLOW_RECIPES",
    "BCConfig",
    "DataOptions",
    "EvalConfig",
    "FQLConfig",
    "FlowOptions",
    "MFQLConfig",
    "QCConfig",
    "ReinFlowConfig",
    "Toy2DConfig",
]
