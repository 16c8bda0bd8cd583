"""The options of every command and pipeline stage, as dataclasses: a field's default, bounds, choices and
help are written once, here, and become the CLI's flags, the YAML keys, `config.yaml` and the pipeline
schema. This module imports no torch, so that `myreinflow <command> --help` answers at once; each
algorithm module (`algos/bc.py`, `algos/fql.py`, `algos/mfql.py`, `toy2d/study.py`) imports its config
from here. The registries that these names index (`flows.FLOWS`, `toy2d.DISTRIBUTIONS`) have the
name tuples below as their keys (a test checks it).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import ClassVar

from myreinflow.config import RunOptions, check_config, inherited, param
from myreinflow.data.minari_io import SOURCES
from myreinflow.data.tasks import NUM_TASKS, REWARDS, ogbench_env, resolve_task

FLOW_KINDS = ("reflow", "meanflow")  # the keys of flows.FLOWS
CRITIC_STAGES = ("fql", "mfql", "qc")  # the offline critic-based stages: their checkpoints hold a critic
PREDICTIONS = ("velocity", "data")  # what a flow network outputs
# MeanFlow's recipe choices (flows/meanflow.py): (t, r) samplers, targets, error spaces, error reductions
MEANFLOW_TR_SAMPLERS = ("uniform", "logit_normal", "r0")
MEANFLOW_TARGETS = ("identity", "imf", "split")
MEANFLOW_ERRORS = ("output", "velocity")
MEANFLOW_REDUCTIONS = ("sum", "mean")
LR_SCHEDULES = ("cosine", "constant")
ACTOR_LR_SCHEDULES = ("constant", "warmup_cosine")  # the FQL family's acting network (algos/fql.py)
RANK_CRITICS = ("critic", "target")  # which critic ranks best-of-N candidates
BC_MODELS = ("reflow", "meanflow", "mlp")
TOY2D_MODELS = ("reflow", "meanflow", "rectified")
TOY2D_DISTRIBUTIONS = ("checkerboard", "8gaussians", "moons", "spirals")  # the keys of toy2d.DISTRIBUTIONS
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
    reflow_time_sampler: str = param(
        "uniform", "ReFlow training times", choices=("uniform", "logit_normal", "beta")
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
            "reflow": {"time_sampler": self.reflow_time_sampler, "prediction": self.flow_prediction},
            "meanflow": {**self.meanflow_kwargs(), "prediction": self.flow_prediction},
        }.get(kind, {})


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
        "step taken (the control an online lift is measured against)",
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
        "backward as one program; pays after its ~45 s compile: 1.3x updates/s measured); off",
        choices=("auto", "on", "off"),
    )
    matmul_precision: str = param(
        "fp32",
        "the update's matmuls: fp32 (the reference's) or bf16 (autocast; weights, Adam, LayerNorm, output "
        "layers, losses in fp32): 1.3-1.5x updates/s with native bf16 (AVX512-BF16, AMX), slower "
        "without; same Q and losses, success not shown unchanged (docs/benchmarks.md)",
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


@dataclass
class Toy2DConfig(FlowOptions, RunOptions):
    """The study's options; network and flow options (FlowOptions) with toy defaults where they differ."""

    distribution: str = param("checkerboard", "2D target", choices=TOY2D_DISTRIBUTIONS)
    flows: tuple[str, ...] = param(
        TOY2D_MODELS, "models to train and evaluate", choices=TOY2D_MODELS, min_items=1, distinct=True
    )
    steps: int = param(10_000, "training steps per model", minimum=1, aliases=("epochs",))
    batch_size: int = param(256, "samples of the target per step", minimum=1)
    lr: float = param(3e-3, "Adam learning rate", exclusive_minimum=0)
    lr_schedule: str = param("cosine", "learning rate over training", choices=LR_SCHEDULES)
    ema_decay: float = param(
        0.999, "EMA of the weights that evaluation uses (0 = off)", minimum=0, exclusive_maximum=1
    )
    max_grad_norm: float = param(1.0, "gradient clipping (0 = off)", minimum=0)
    # FlowOptions with other defaults: a smaller net, velocity prediction (on the checkerboard, data
    # prediction blurs the squares: sliced W1 of ReFlow@32 0.048 vs 0.029 and of MeanFlow@1 0.105 vs
    # 0.065 at 10k steps; docs/toy2d.md), and MeanFlow pairs that cover long intervals
    hidden: tuple[int, ...] = inherited(FlowOptions, "hidden", (128, 128, 128))
    flow_prediction: str = inherited(FlowOptions, "flow_prediction", "velocity")
    meanflow_tr_sampler: str = inherited(FlowOptions, "meanflow_tr_sampler", "uniform")
    ratio_r_neq_t: float = inherited(FlowOptions, "ratio_r_neq_t", 0.75)
    adaptive_p: float = inherited(FlowOptions, "adaptive_p", 0.5)
    meanflow_warm_start: bool = param(
        False,
        "MeanFlow starts from the trained ReFlow's weights (a flow map from a flow, Decoupled MeanFlow)",
    )
    rectified_couplings: int = param(
        50_000, "2-RF: (data, noise) pairs generated by the trained 1-RF", minimum=1
    )
    rectified_steps: int = param(100, "2-RF: Euler steps of the 1-RF per coupling", minimum=1)
    rectified_train_steps: int = param(
        0,
        "2-RF: training steps from the 1-RF's weights (0 = steps)",
        minimum=0,
        aliases=("rectified_epochs",),
    )
    inference_steps: tuple[int, ...] = param(
        (1, 2, 4, 8, 16, 32), "NFEs to evaluate", min_items=1, distinct=True, minimum=1
    )
    eval_samples: int = param(20_000, "samples per model and NFE, and of the target", minimum=100)
    eval_seed: int = param(
        20_000, "seed of the evaluation's noise and target draws (another one: validation sets)", minimum=0
    )
    log_every: int = param(100, "steps per train.csv row", minimum=1)
    ckpt_every: int = param(2000, "steps between checkpoints (0 = only at the end)", minimum=0)
    seed: int = param(0, "random seed", minimum=0)
    out: str = param("", "output directory (default results/toy2d/<distribution>)")

    def __post_init__(self):
        check_config(self, self.flow_rules())

    def output_dir(self) -> Path:
        return Path(self.out or f"results/toy2d/{self.distribution}")

    def steps_of(self, model: str) -> int:
        return (self.rectified_train_steps or self.steps) if model == "rectified" else self.steps


@dataclass
class ReinFlowConfig(RunOptions):
    """ReinFlow (algos/reinflow.py): online PPO fine-tuning of a pretrained policy through its
    noise-injected sampler. The env, task, reward and normaliser come from the `init` checkpoint."""

    init: str = param("", "BC or FQL checkpoint (or run directory) whose policy is fine-tuned (required)")
    policy: str = param(
        "auto",
        "which policy of `init`: its main one (auto: the flow), the flow, or an FQL run's one-step policy",
        choices=("auto", "flow", "onestep"),
    )
    inference_steps: int = param(
        0, "steps K of the noise-injected chain (0 = ReFlow 4, MeanFlow 1; a one-step policy: 1)", minimum=0
    )
    env_steps: int = param(100_000, "env steps of fine-tuning", minimum=0)
    num_envs: int = param(16, "vectorised envs that collect each iteration's rollout", minimum=1)
    rollout_chunks: int = param(
        0,
        "action chunks per env and iteration, each a PPO transition; envs reset at each iteration "
        "(0 = one whole episode: the env's time limit / horizon_steps)",
        minimum=0,
    )
    sigma_min: float = param(
        0.08, "lower bound of the noise std σ(s, t) (in `sigma_units`)", exclusive_minimum=0
    )
    sigma_max: float = param(0.14, "upper bound of the noise std at the start", exclusive_minimum=0)
    sigma_units: str = param(
        "data",
        "units of σ per action dimension: data (its half-range in the dataset: the reference's min-max "
        "normalisation) or bounds (the action bounds' half-range: the policy's own normalisation)",
        choices=("data", "bounds"),
    )
    sigma_decay: bool = param(
        True, "hold σ_max for the first 35 % of iterations, then cosine-decay it to 0.3 σ_min + 0.7 σ_max"
    )
    noise_hidden: tuple[int, ...] = param((64, 64), "noise network σ(s, t) (tanh)", min_items=1, minimum=1)
    value_hidden: tuple[int, ...] = param((256,) * 3, "value network V(s) (mish)", min_items=1, minimum=1)
    lr_actor: float = param(
        4.5e-5, "AdamW learning rate of the policy and its noise network", exclusive_minimum=0
    )
    lr_critic: float = param(6.5e-4, "AdamW learning rate of the value network", exclusive_minimum=0)
    critic_weight_decay: float = param(1e-5, "AdamW weight decay of the value network", minimum=0)
    critic_warmup_iters: int = param(2, "first iterations that train only the value network", minimum=0)
    update_epochs: int = param(5, "passes over each iteration's rollout", minimum=1)
    minibatches: int = param(4, "minibatches per pass", minimum=1)
    clip_eps: float = param(0.01, "PPO ratio clip ε", exclusive_minimum=0)
    ent_coef: float = param(0.01, "entropy bonus weight", minimum=0)
    w2_coef: float = param(0.0, "weight of the W2 regulariser towards the starting policy", minimum=0)
    logprob_clamp: float = param(
        1.0, "clamp of the per-dimension, per-step log-likelihood in the ratio (0 = none)", minimum=0
    )
    target_kl: float = param(
        0.01,
        "stop an iteration's updates (actor and critic) once approx. KL exceeds it (0 = never)",
        minimum=0,
    )
    max_grad_norm: float = param(0.0, "gradient clipping (0 = off, as the reference)", minimum=0)
    gamma: float = param(0.99, "discount per action chunk", minimum=0, maximum=1)
    gae_lambda: float = param(0.95, "GAE λ", minimum=0, maximum=1)
    reward_scale: bool = param(True, "divide rewards by the running std of the discounted return (clip ±10)")
    eval_freq: int = param(5, "evaluate and checkpoint every N iterations (0 = only at the end)", minimum=0)
    eval_episodes: int = param(10, "episodes per evaluation (the chain without noise)", minimum=1)
    seed: int = param(42, "random seed", minimum=0)
    out: str = param("", "output directory (default results/reinflow/<dataset>/<flow>/seed<seed>)")
    # what a run written before `sigma_units` existed did (a checkpoint without the key resumes so)
    EARLIER_DEFAULTS: ClassVar[dict] = {"sigma_units": "bounds"}

    def __post_init__(self):
        # `init` is checked when training starts: a YAML file without it may get it from a flag
        check_config(
            self, {"sigma_max": (self.sigma_max >= self.sigma_min, f">= sigma_min ({self.sigma_min})")}
        )

    def output_dir(self, dataset_id: str, kind: str) -> Path:
        return Path(self.out or f"results/reinflow/{dataset_id.replace('/', '_')}/{kind}/seed{self.seed}")
