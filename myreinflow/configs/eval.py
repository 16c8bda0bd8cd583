"""`myreinflow eval`: evaluation rollouts of one checkpoint."""

from __future__ import annotations

from dataclasses import dataclass

from myreinflow.options import RunOptions, check_config, inherited, param


@dataclass
class EvalConfig:
    """`myreinflow eval`: evaluation rollouts of one checkpoint over a sweep of inference steps."""

    checkpoint: str = param("", "model.pt written by bc, fql, mfql, qc or reinflow, or its run directory")
    inference_steps: tuple[int, ...] = param(
        (1, 2, 4, 8, 16), "flow steps (NFE) to sweep", minimum=1, min_items=1, distinct=True
    )
    episodes: int = param(50, "episodes per setting", minimum=1)
    num_envs: int = param(50, "vectorised envs", minimum=1)
    seed: int = param(0, "episode e uses env seed seed + e", minimum=0)
    act_steps: int = param(
        0, "actions of each chunk executed before re-planning (0 = the whole chunk)", minimum=0
    )
    vectorization: str = param(
        "sync",
        "envs in this process (sync) or one subprocess each (async: several cores; "
        "benchmarks/eval_throughput.py compares them)",
        choices=("sync", "async"),
    )
    policy: str = param(
        "auto",
        "which policy of the checkpoint: its main one (auto), every one (all) or one by name",
        choices=("auto", "all", "flow", "onestep", "mlp", "categorical"),
    )
    candidates: int = param(
        0,
        "act with the best of N sampled chunks by the run's critic (FQL-family checkpoints; 1: no "
        "selection; 0: as the run acted in training, its `candidates`, else 1)",
        minimum=0,
    )
    dataset_name: str = param("", "value of the CSV's dataset column (empty: the dataset id)")
    stage_name: str = param(
        "",
        "value of the CSV's stage column (empty: the checkpoint's stage; the pipeline names online stages)",
    )
    device: str = inherited(RunOptions, "device", "auto")
    threads: int = inherited(RunOptions, "threads", 0)
    out: str = param("eval.csv", "output CSV")

    def __post_init__(self):
        check_config(self)  # a checkpoint is required: `myreinflow eval` checks it once flags are in
