"""`myreinflow fql | mfql | qc`: the FQL family, offline and offline→online, with FQL's critic."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from myreinflow.configs.common import (
    ACTOR_LR_SCHEDULES,
    RANK_CRITICS,
    DataOptions,
)
from myreinflow.names import (
    FLOW_KINDS,
    PREDICTIONS,
)
from myreinflow.options import RunOptions, check_config, inherited, param


@dataclass
class FQLConfig(DataOptions, RunOptions):
    dataset: str = inherited(DataOptions, "dataset", "myreinflow/pusher/mixed-v0")
    init: str = param("", "BC checkpoint whose flow (and normaliser) FQL starts from")
    flow: str = param("auto", "BC flow: auto = --init's (else reflow)", choices=("auto", *FLOW_KINDS))
    flow_prediction: str = param(
        "auto", "what the flow's network outputs: auto = --init's (else data)", choices=("auto", *PREDICTIONS)
    )
    epochs: int = param(20, "offline passes; one pass = transitions / batch_size updates", minimum=0)
    online_steps: int = param(0, "env steps of online fine-tuning after the offline phase", minimum=0)
    updates_per_step: int = param(1, "online: updates per env step", minimum=1)
    online_warmup_steps: int = param(
        0, "online: env steps before the first update (FQL: 0; Q-chunking: 5000)", minimum=0
    )
    online_env: bool = param(
        True,
        "online: act in the env; false: the online phase's updates on the offline data alone, no env "
        "step taken (the control an online run's lift is compared with)",
    )
    batch_size: int = param(256, "minibatch size", minimum=1)
    lr_flow: float = param(3e-4, "Adam learning rate of the BC flow", exclusive_minimum=0)
    lr_actor: float = param(3e-4, "Adam learning rate of the one-step policy", exclusive_minimum=0)
    lr_critic: float = param(3e-4, "Adam learning rate of the critic", exclusive_minimum=0)
    alpha: float = param(10.0, "distillation weight α", minimum=0)
    discount: float = param(0.99, "per-step discount γ (a chunk bootstraps with γ^h)", minimum=0, maximum=1)
    tau: float = param(0.005, "Polyak rate of the target critic", exclusive_minimum=0, maximum=1)
    q_agg: str = param("mean", "ensemble aggregate in the TD target", choices=("mean", "min"))
    normalize_q_loss: bool = param(False, "scale the Q term by 1/mean|Q|")
    flow_steps: int = param(0, "flow steps of the distillation target (0 = ReFlow 10, MeanFlow 1)", minimum=0)
    only_optimize_bc_flow: bool = param(False, "ablation: actor loss = BC flow loss (no critic is trained)")
    horizon_steps: int = param(4, "actions per chunk h (must match --init)", minimum=1)
    cond_steps: int = param(1, "stacked observations (must match --init)", minimum=1)
    hidden: tuple[int, ...] = param(
        (256,) * 3, "one-step policy and critic (ref. 4×512)", min_items=1, minimum=1
    )
    activation: str = param("gelu", "one-step policy and critic", choices=("gelu", "silu", "relu"))
    num_critics: int = param(2, "critic ensemble size", minimum=1)
    flow_hidden: tuple[int, ...] = param(
        (256,) * 3, "a fresh flow's (not with --init)", min_items=1, minimum=1
    )
    compile: str = param(
        "auto",
        "torch.compile the update: auto = on CUDA (CUDA graphs), off on CPU; on = also on CPU (losses and "
        "backward as one program, after a one-off compile); off",
        choices=("auto", "on", "off"),
    )
    matmul_precision: str = param(
        "fp32",
        "the update's matmuls: fp32 (the reference's) or bf16 (autocast; weights, Adam, LayerNorm, output "
        "layers, losses in fp32; faster only with native bf16: AVX512-BF16, AMX; docs/algorithms/fql.md)",
        choices=("fp32", "bf16"),
    )
    eval_freq: int = param(5, "offline: evaluate and checkpoint every N epochs (0 = at the end)", minimum=0)
    online_eval_freq: int = param(10_000, "online: evaluate and checkpoint every N env steps", minimum=1)
    eval_episodes: int = param(10, "episodes per evaluation during training", minimum=1)
    eval_flow: bool = param(True, "evaluations during training also roll out the fine-tuned flow")
    candidates: int = param(
        1, "act (evaluations, online) with the best of N chunks of the acting policy by the critic", minimum=1
    )
    candidates_in_target: bool = param(
        False, "the TD target's next chunk too is the best of `candidates` (no effect at 1)"
    )
    rank_critic: str = param(
        "critic",
        "the critic that ranks best-of-N candidates: critic (the online one: Q-chunking) or target "
        "(MeanFlow-QL's reference)",
        choices=RANK_CRITICS,
    )
    actor_lr_schedule: str = param(
        "constant",
        "learning rate of the acting network (FQL: the one-step policy; MFQL, QC: the flow): constant, or "
        "warmup_cosine (linear from 0 over `actor_lr_warmup` of the offline updates, then cosine down to "
        "`actor_lr_final` x by their end, held online: MeanFlow-QL's reference)",
        choices=ACTOR_LR_SCHEDULES,
    )
    actor_lr_warmup: float = param(
        0.05, "warmup_cosine: fraction of the offline updates that warm up", minimum=0, exclusive_maximum=1
    )
    actor_lr_final: float = param(
        0.1, "warmup_cosine: the final learning rate, a fraction of the initial one", minimum=0, maximum=1
    )
    max_grad_norm: float = param(
        0.0,
        "clip each parameter group's gradient (flow, actor, critic) to this global norm (0 = off)",
        minimum=0,
    )
    seed: int = param(42, "random seed", minimum=0)
    out: str = param("", "output directory (default results/fql/<dataset>/<flow>/seed<seed>)")

    def __post_init__(self):
        check_config(self, self.rules())

    def rules(self) -> dict[str, tuple[bool, str]]:
        """Cross-field rules for `check_config` ({key: (ok, what is allowed)})."""
        return {}

    def output_dir(self, flow: str) -> Path:
        return Path(self.out or f"results/fql/{self.dataset.replace('/', '_')}/{flow}/seed{self.seed}")


@dataclass
class MFQLConfig(FQLConfig):
    flow: str = inherited(FQLConfig, "flow", "meanflow", "the flow: MeanFlow (its one step is the actor)")
    alpha: float = inherited(FQLConfig, "alpha", 10.0, "weight α of the MeanFlow (BC) loss")
    bound_loss_weight: float = param(
        1.0, "weight of the penalty on one-step actions outside [-1, 1]", minimum=0
    )
    # the MeanFlowQL reference's defaults: best of 5 by the target critic (acting and TD target), the
    # actor (the flow) at 1e-4 warmed up and cosine-decayed, each group's gradient clipped to norm 1
    lr_flow: float = inherited(FQLConfig, "lr_flow", 1e-4, "Adam learning rate of the flow (the actor)")
    candidates: int = inherited(FQLConfig, "candidates", 5)
    candidates_in_target: bool = inherited(FQLConfig, "candidates_in_target", True)
    rank_critic: str = inherited(FQLConfig, "rank_critic", "target")
    actor_lr_schedule: str = inherited(FQLConfig, "actor_lr_schedule", "warmup_cosine")
    max_grad_norm: float = inherited(FQLConfig, "max_grad_norm", 1.0)
    # what a run written before these options existed did (a checkpoint without the key resumes so)
    EARLIER_DEFAULTS: ClassVar[dict] = {
        "rank_critic": "critic",
        "actor_lr_schedule": "constant",
        "max_grad_norm": 0.0,
    }
    out: str = inherited(
        FQLConfig, "out", "", "output directory (default results/mfql/<dataset>/meanflow/seed<seed>)"
    )

    def __post_init__(self):
        # the one-step network's options (lr_actor, flow_steps, the ablation) do not exist here
        check_config(
            self,
            self.rules()
            | {
                "flow": (self.flow == "meanflow", "meanflow (MFQL's actor is a MeanFlow's one step)"),
                "only_optimize_bc_flow": (not self.only_optimize_bc_flow, "false (use fql for the ablation)"),
            },
        )

    def output_dir(self, flow: str) -> Path:
        return Path(self.out or f"results/mfql/{self.dataset.replace('/', '_')}/{flow}/seed{self.seed}")


@dataclass
class QCConfig(FQLConfig):
    """Q-chunking's best-of-N (algos/qc.py): FQL's options; the flow acts, so the one-step policy's
    (`alpha`, `lr_actor`, the ablation) are not used."""

    candidates: int = inherited(
        FQLConfig, "candidates", 32, "N: act and bootstrap with the best of N flow samples by the critic"
    )
    candidates_in_target: bool = inherited(FQLConfig, "candidates_in_target", True)
    flow_steps: int = inherited(
        FQLConfig, "flow_steps", 0, "K: flow steps of each sample (0 = ReFlow 10, MeanFlow 1)"
    )
    # the reference's wait before its first online update (its `start_training`)
    online_warmup_steps: int = inherited(FQLConfig, "online_warmup_steps", 5000)
    out: str = inherited(
        FQLConfig, "out", "", "output directory (default results/qc/<dataset>/<flow>/seed<seed>)"
    )

    def __post_init__(self):
        check_config(
            self,
            self.rules()
            | {"only_optimize_bc_flow": (not self.only_optimize_bc_flow, "false (use fql for the ablation)")},
        )

    def output_dir(self, flow: str) -> Path:
        return Path(self.out or f"results/qc/{self.dataset.replace('/', '_')}/{flow}/seed{self.seed}")
