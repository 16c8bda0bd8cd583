"""What several commands share: the dataset options, the flow network and MeanFlow recipe options, and
the named MeanFlow recipes."""

from __future__ import annotations

from dataclasses import dataclass, fields

from myreinflow.data.minari_io import SOURCES
from myreinflow.data.tasks import NUM_TASKS, REWARDS, ogbench_env, resolve_task
from myreinflow.names import (
    MEANFLOW_ERRORS,
    MEANFLOW_REDUCTIONS,
    MEANFLOW_TARGETS,
    MEANFLOW_TR_SAMPLERS,
    PREDICTIONS,
)
from myreinflow.options import param

LR_SCHEDULES = ("cosine", "constant")
ACTOR_LR_SCHEDULES = ("constant", "warmup_cosine")  # the FQL family's acting network (algos/fql.py)
RANK_CRITICS = ("critic", "target")  # which critic ranks best-of-N candidates
# MeanFlow's recipe: each FlowOptions field and the MeanFlow constructor option it sets
MEANFLOW_FIELDS = {
    "meanflow_tr_sampler": "tr_sampler",
    "ratio_r_neq_t": "ratio_r_neq_t",
    "full_interval_frac": "full_interval_frac",
    "meanflow_target": "target",
    "meanflow_target_clip": "target_clip",
    "meanflow_error": "error_space",
    "adaptive_p": "adaptive_p",
    "adaptive_c": "adaptive_c",
    "adaptive_reduce": "adaptive_reduce",
    "meanflow_boundary_weight": "boundary_weight",
    "meanflow_curriculum": "curriculum",
}
# named recipes (--meanflow_recipe), in MeanFlow constructor options, on top of the fields' defaults
MEANFLOW_RECIPES = {
    # the default before iMF's target with the boundary term (docs/meanflow_recipes.md)
    "v1": {"target": "identity", "boundary_weight": 0.0},
    # the MeanFlow paper's ImageNet recipe: logit-normal(-0.4, 1) pairs, a quarter r != t, p = 1
    "paper": {
        "target": "identity",
        "boundary_weight": 0.0,
        "tr_sampler": "logit_normal",
        "ratio_r_neq_t": 0.25,
        "adaptive_p": 1.0,
    },
    # the MeanFlow-QL reference's loss (HiccupRL/MeanFlowQL): r = 0 and t uniform, the error on the
    # velocity, (mean over dims + 1e-4)^-0.2, the target clipped to ±5
    "mfql": {
        "target": "identity",
        "boundary_weight": 0.0,
        "tr_sampler": "r0",
        "ratio_r_neq_t": 1.0,
        "error_space": "velocity",
        "adaptive_p": 0.2,
        "adaptive_c": 1e-4,
        "adaptive_reduce": "mean",
        "target_clip": 5.0,
    },
}


@dataclass
class DataOptions:
    """Which data a trainer learns from: the dataset, where it comes from and, for OGBench manipulation
    data, the task whose rewards are relabelled and which evaluation runs on."""

    dataset: str = param("mujoco/pusher/expert-v0", "Minari dataset id")
    source: str = param("auto", "where the dataset comes from", choices=SOURCES)
    task: int = param(
        0,
        "OGBench manipulation data: the evaluation task whose rewards are relabelled "
        "(0 = the papers' default: cube 2, scene 2, puzzle 4; other data: 0)",
        minimum=0,
        maximum=NUM_TASKS,
    )
    reward: str = param("dense", "OGBench tasks: dense (OGBench's) or sparse (success − 1)", choices=REWARDS)

    def resolve_task(self, dataset) -> int | None:
        """The task of this run on `dataset` (None for data without tasks)."""
        return resolve_task(ogbench_env(dataset), self.task, self.dataset)


@dataclass
class FlowOptions:
    """Network and flow hyperparameters of a flow policy: the base of every trainer's config."""

    hidden: tuple[int, ...] = param((256, 256, 256), "hidden layer widths", min_items=1, minimum=1)
    activation: str = param("silu", "activation", choices=("silu", "gelu", "relu", "mish"))
    time_dim: int = param(32, "size of each sinusoidal time embedding", minimum=2, multiple_of=2)
    max_freq: float = param(30.0, "highest angular frequency of the time embedding", exclusive_minimum=0)
    flow_prediction: str = param(
        "data",
        "what the flow network outputs: the clean chunk g (u = (z - g)/t) or the velocity u",
        choices=PREDICTIONS,
    )
    meanflow_recipe: str = param(
        "custom",
        "MeanFlow recipe: the options below (custom), or a named one that sets them (leave those at "
        "their defaults): v1 (the previous default), paper (the MeanFlow paper's), mfql (the MeanFlow-QL "
        "reference's loss)",
        choices=("custom", *MEANFLOW_RECIPES),
    )
    meanflow_tr_sampler: str = param(
        "uniform",
        "MeanFlow (t, r) pairs: two uniform or logit-normal draws sorted, or r = 0 with t uniform (r0)",
        choices=MEANFLOW_TR_SAMPLERS,
    )
    ratio_r_neq_t: float = param(0.5, "MeanFlow: fraction of pairs with r != t", minimum=0, maximum=1)
    full_interval_frac: float = param(
        0.0,
        "MeanFlow: fraction of r != t pairs set to the whole interval (t=1, r=0)",
        minimum=0,
        maximum=1,
    )
    meanflow_target: str = param(
        "imf",
        "MeanFlow target: the MeanFlow identity with a JVP along the sample's velocity (identity) or the "
        "model's own (imf: improved MeanFlow), or interval splitting without a JVP (split: SplitMeanFlow)",
        choices=MEANFLOW_TARGETS,
    )
    meanflow_target_clip: float = param(0.0, "MeanFlow: clip the target to ±this (0 = off)", minimum=0)
    meanflow_error: str = param(
        "output",
        "MeanFlow error on what the network outputs (data prediction: t² × velocity's) or on the velocity",
        choices=MEANFLOW_ERRORS,
    )
    adaptive_p: float = param(0.5, "MeanFlow adaptive loss weight power p: (e + c)^-p (0 = MSE)")
    adaptive_c: float = param(1e-3, "MeanFlow adaptive loss weight constant c", exclusive_minimum=0)
    adaptive_reduce: str = param(
        "sum", "MeanFlow: per-sample error e summed or averaged over dimensions", choices=MEANFLOW_REDUCTIONS
    )
    meanflow_boundary_weight: float = param(
        1.0, "MeanFlow: weight of the flow-matching term at r = t on every sample (MVP's)", minimum=0
    )
    meanflow_curriculum: float = param(
        0.0,
        "MeanFlow: fraction of training over which the target moves from flow matching to MeanFlow's "
        "(AlphaFlow's curriculum; 0 = off)",
        minimum=0,
        maximum=1,
    )

    def flow_rules(self) -> dict[str, tuple[bool, str]]:
        """{name: (ok, allowed)} of the rules that relate several of these fields, for
        `config.check_config` (each field's own bounds are in its `option`)."""
        changed = [k for k in MEANFLOW_FIELDS if getattr(self, k) != self._field_default(k)]
        return {
            "meanflow_recipe": (
                self.meanflow_recipe == "custom" or not changed,
                f"'custom' when a recipe option is set (here {', '.join(changed)}); a named recipe sets them",
            ),
        }

    def _field_default(self, name: str):
        default = {f.name: f.default for f in fields(self)}[name]
        return list(default) if isinstance(default, tuple) else default

    def meanflow_kwargs(self) -> dict:
        """MeanFlow's constructor options: the recipe fields, or the named recipe over their defaults."""
        if self.meanflow_recipe == "custom":
            return {arg: getattr(self, name) for name, arg in MEANFLOW_FIELDS.items()}
        defaults = {arg: self._field_default(name) for name, arg in MEANFLOW_FIELDS.items()}
        return defaults | MEANFLOW_RECIPES[self.meanflow_recipe]

    def flow_kwargs(self, kind: str) -> dict:
        """Constructor options of flow `kind` (reflow, meanflow; none for other kinds)."""
        return {
            "reflow": {"prediction": self.flow_prediction},
            "meanflow": {**self.meanflow_kwargs(), "prediction": self.flow_prediction},
        }.get(kind, {})
