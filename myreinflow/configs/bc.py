"""`myreinflow bc`: behaviour cloning of a flow, MLP or categorical policy."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from myreinflow.configs.common import (
    LR_SCHEDULES,
    DataOptions,
    FlowOptions,
)
from myreinflow.names import (
    BC_MODELS,
)
from myreinflow.options import RunOptions, check_config, param


@dataclass
class BCConfig(DataOptions, FlowOptions, RunOptions):
    model: str = param(
        "reflow",
        "what BC trains: a flow or the MLP baseline (discrete actions always get a categorical policy)",
        choices=BC_MODELS,
        aliases=("flow",),
    )
    warm_start: str = param(
        "",
        "BC flow checkpoint whose network this flow starts from, e.g. a trained ReFlow for a MeanFlow "
        "(Decoupled MeanFlow's flow map from a flow); same data, chunk, prediction and network",
    )
    epochs: int = param(50, "passes over the dataset", minimum=0)
    batch_size: int = param(256, "minibatch size", minimum=1)
    lr: float = param(3e-4, "Adam learning rate", exclusive_minimum=0)
    lr_schedule: str = param("cosine", "learning rate over training", choices=LR_SCHEDULES)
    weight_decay: float = param(0.0, "AdamW weight decay", minimum=0)
    max_grad_norm: float = param(10.0, "gradient clipping (0 = off)", minimum=0)
    horizon_steps: int = param(4, "actions per chunk", minimum=1)
    cond_steps: int = param(1, "stacked observations the policy sees", minimum=1)
    inference_steps: int = param(
        0, "flow steps for evaluation during training (0 = ReFlow 4, MeanFlow 1)", minimum=0
    )
    eval_freq: int = param(5, "evaluate and checkpoint every N epochs (0 = only at the end)", minimum=0)
    eval_episodes: int = param(10, "episodes per evaluation during training", minimum=1)
    seed: int = param(42, "random seed", minimum=0)
    out: str = param("", "output directory (default results/bc/<dataset>/<model>/seed<seed>)")

    def __post_init__(self):
        check_config(self, self.flow_rules())

    def output_dir(self) -> Path:
        return Path(self.out or f"results/bc/{self.dataset.replace('/', '_')}/{self.model}/seed{self.seed}")
