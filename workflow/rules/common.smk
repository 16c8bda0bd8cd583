"""Helpers shared by the rules: the study's datasets and targets, job environment, hyperparameters.

Logic that is more than bookkeeping lives in the package (`myreinflow ...`), not here.
"""

import json
import os
import re
import shutil

from myreinflow.names import (
    CRITIC_STAGES,
    FIGURES,
    FLOW_LABELS,
    ONLINE_PHASES,
    ONLINE_STAGES,
    CONTROL_STAGES,
    STAGE_NAMES,
    STAGE_WORDS,
)

DATASETS = {d["name"]: d for d in config["datasets"]}
if len(DATASETS) != len(config["datasets"]):
    raise ValueError("config key 'datasets': two entries have the same name")


def _sources(datasets):
    """Minari id → source. Names may share a dataset (one `data` job gets it), not disagree on how."""
    sources = {}
    for d in datasets:
        src = d.get("source", "auto")
        if sources.setdefault(d["id"], src) != src:
            raise ValueError(
                f"config key 'datasets': dataset id {d['id']!r} has two sources,"
                f" {sources[d['id']]!r} and {src!r}; give its entries the same source"
            )
    return sources


SOURCES = _sources(config["datasets"])
MINARI_ROOT = os.path.normpath(config["minari_root"])
# the {dataset_id} of the data rule matches exactly the configured ids (which contain slashes)
DATASET_IDS = "|".join(re.escape(i) for i in SOURCES)
STAGES = {name: d.get("stages", config["stages"]) for name, d in DATASETS.items()}
SEEDS = config["seeds"]


def offline_stage(stage):
    """The offline critic-based stage that an online stage ({algo}_online, {algo}_continued) continues;
    None for any other stage."""
    algo, _, phase = stage.partition("_")
    return algo if algo in CRITIC_STAGES and phase in ONLINE_PHASES else None


# an online stage needs the run it continues, a control the online run it is the control of
for name, stages in STAGES.items():
    for stage in stages:
        algo = offline_stage(stage)
        needs = f"{algo}_online" if stage.endswith("_continued") else algo
        if algo and needs not in stages:
            raise ValueError(
                f"config key 'datasets': {name!r} has stage {stage} but not {needs},"
                f" {ONLINE_PHASES[stage.partition('_')[2]]}"
            )
DISTRIBUTIONS = config["toy2d"]["distributions"]

# Every job, local or on a cluster node (which reads this file again), sees the same environment:
# datasets under the workflow directory (never a home directory), one WandB group per experiment.
os.environ.update(
    {
        "MINARI_DATASETS_PATH": os.path.abspath(MINARI_ROOT),
        "WANDB_RUN_GROUP": config["wandb"]["group"] or config["experiment"],
        "MPLBACKEND": "Agg",
    }
)
if config["recipes"]:
    os.environ.update({"MYREINFLOW_RECIPES": os.path.abspath(config["recipes"])})
# caches too stay in the workflow directory
for var in ("WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR"):
    os.environ.setdefault(var, os.path.abspath("results/wandb"))
os.environ.setdefault("MPLCONFIGDIR", os.path.abspath("results/.matplotlib"))
# OMP_WAIT_POLICY is left to OpenMP's default (threads spin briefly, then sleep): PASSIVE (never spin)
# slows the FQL update on two threads (docs/algorithms/fql.md), so it is not set here; a user's own
# setting is passed through.


def _gpu_visible():
    """An NVIDIA GPU is visible to the jobs: its driver's nvidia-smi is installed and CUDA_VISIBLE_DEVICES
    does not hide every device (checked without importing torch, which takes seconds).
    """
    if os.environ.get("CUDA_VISIBLE_DEVICES", "unset").strip() in ("", "-1"):
        return False
    return shutil.which("nvidia-smi") is not None


# Training, evaluation and 2D jobs take the `gpu` resource (so `--resources gpu=1` runs one of them at a
# time on the GPU) only where they run on one: device cuda, or auto with a GPU visible. On a CPU-only
# machine they take none and run side by side instead, each on `threads.*` cores (1 by default: two
# one-thread jobs get more done than one two-thread job on these small networks, and a rollout steps
# its envs on one core anyway), as many at once as the machine has cores: a local run never asks for
# more cores than there are (`local_cpus`), whatever `--cores` says. On a cluster, the profile's
# resources decide.
USES_GPU = config["device"].startswith("cuda") or (
    config["device"] == "auto" and _gpu_visible()
)
GPU_JOB = 1 if USES_GPU else 0
LOCAL_CPUS = (
    len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
)
if workflow.local_exec and "local_cpus" not in workflow.global_resources:
    workflow.register_resource("local_cpus", LOCAL_CPUS)


def local_cpus(wildcards, threads):
    """Resource function: the cores a job takes out of the machine's (`local_cpus`)."""
    return min(threads, LOCAL_CPUS)


def minari_dir(dataset):
    """The Minari dataset of the config entry named `dataset`: its directory, the output of rule data."""
    return f"{MINARI_ROOT}/{DATASETS[dataset]['id']}"


def dataset_source(dataset):
    """How the dataset of the config entry named `dataset` is got: auto, minari or generate."""
    return SOURCES[DATASETS[dataset]["id"]]


def data_args(dataset):
    """What a training job learns from, as flags: the dataset, its source and (OGBench data) the task
    and reward variant of the config entry named `dataset`."""
    d = DATASETS[dataset]
    return (
        f"--dataset {d['id']} --source {dataset_source(dataset)}"
        f" --task {d.get('task', 0)} --reward {d.get('reward', 'dense')}"
    )


def run_settings(wandb=True):
    """Params function for how a job runs (device, WandB), not what it computes. Because it takes
    `threads`, Snakemake counts it as derived and leaves it out of the params rerun trigger: switching
    WandB on or moving to a GPU does not re-train anything."""

    def settings(wildcards, threads):
        args = f"--device {config['device']}"
        if wandb:
            w = config["wandb"]
            args += f" --wandb_mode {w['mode']} --wandb_project {w['project']}"
        return args

    return settings


def options(stage, dataset, flow):
    """Hyperparameters of one training job: `<stage>.common` < `<stage>.<flow>` < the dataset entry's
    `horizon_steps` (BC, FQL, MFQL and QC of an entry share their chunk length; the online stages take theirs
    from the run they continue) < the entry's `<stage>`.
    """
    d = DATASETS[dataset]
    chunked = "horizon_steps" in d and stage in ("bc", *CRITIC_STAGES)
    chunk = {"horizon_steps": d["horizon_steps"]} if chunked else {}
    return {
        **config[stage]["common"],
        **config[stage].get(flow, {}),
        **chunk,
        **d.get(stage, {}),
    }


def online_options(algo, phase, dataset, flow):
    """Hyperparameters of an online job: the offline {algo} run's (its resumption checks they are the
    same), then {algo}_online's budget; the control ({phase} continued) takes no env step.
    """
    control = {"online_env": False} if phase == "continued" else {}
    return (
        options(algo, dataset, flow)
        | options(f"{algo}_online", dataset, flow)
        | control
    )


def options_json(stage=None):
    """Params function: the job's hyperparameters as JSON (a YAML file for `--config`); the stage is
    `stage`, else the job's {algo} wildcard."""
    return lambda w: json.dumps(
        options(stage or w.algo, w.dataset, w.flow), sort_keys=True
    )


def run_dir(output):
    """The run directory of a training job (the folder of its model.pt)."""
    return os.path.dirname(output.model)


def flows(stage, dataset):
    """What a stage trains on the config entry named `dataset`: its flows (the entry's `flows`, else the
    top-level ones), and at the bc stage its baselines too (likewise); mfql fine-tunes the MeanFlow only, so bc
    trains a MeanFlow wherever mfql runs (an online stage: as the run it continues)."""
    chosen = DATASETS[dataset].get("flows", config["flows"])
    if (offline_stage(stage) or stage) == "mfql":
        return ["meanflow"]
    if stage == "bc" and "mfql" in STAGES[dataset] and "meanflow" not in chosen:
        chosen = chosen + ["meanflow"]
    baselines = DATASETS[dataset].get("baselines", config["baselines"])
    return chosen + baselines if stage == "bc" else chosen


def critic_methods(dataset):
    """(stage, flow) of every offline critic-based run (FQL and QC from each flow, MFQL) on the entry
    `dataset`."""
    return [
        (stage, flow)
        for stage in STAGES[dataset]
        if stage in CRITIC_STAGES
        for flow in flows(stage, dataset)
    ]


def reinflow_start(dataset):
    """(stage, policy) that ReinFlow fine-tunes on the entry `dataset`: the FQL run's one-step policy
    where the entry has the fql stage, else the BC flow."""
    return ("fql", "onestep") if "fql" in STAGES[dataset] else ("bc", "flow")


def reinflow_init(wildcards):
    """Input function: the checkpoint of the run whose policy ReinFlow fine-tunes (`reinflow_start`)."""
    stage, _ = reinflow_start(wildcards.dataset)
    return f"results/{stage}/{wildcards.dataset}/{wildcards.flow}/seed{wildcards.seed}/model.pt"


def runs():
    """(stage, dataset, flow, seed) of every training run of the study."""
    return [
        (stage, dataset, flow, seed)
        for dataset in DATASETS
        for stage in STAGES[dataset]
        for flow in flows(stage, dataset)
        for seed in SEEDS
    ]


def eval_csvs():
    return [f"results/eval/{s}/{d}/{f}/seed{seed}.csv" for s, d, f, seed in runs()]


def run_files(name):
    """`name` (model.pt, train.csv) of every training run of the study."""
    return [f"results/{s}/{d}/{f}/seed{seed}/{name}" for s, d, f, seed in runs()]


def critic_run_files(name):
    """`name` (train.csv, config.yaml) of every offline critic-based run of the study."""
    return [
        f"results/{s}/{d}/{f}/seed{seed}/{name}"
        for s, d, f, seed in runs()
        if s in CRITIC_STAGES
    ]


def toy2d_csvs():
    """Metrics of every distribution, and its reference levels (noise, a second draw of the target)."""
    return [
        f"results/toy2d/{d}/{name}.csv"
        for d in DISTRIBUTIONS
        for name in ("metrics", "reference")
    ]


def toy2d_files():
    per_flow = ["metrics.csv", "samples.npz", "train.csv", "model.pt"]
    return [
        f"results/toy2d/{d}/{name}"
        for d in DISTRIBUTIONS
        for name in ["samples.png", "metrics.png", "trajectories.png"]
        + [f"{flow}/{f}" for flow in config["toy2d"]["flows"] for f in per_flow]
    ]


def figures():
    """The figures of names.FIGURES that the config has data for, as results/figures/{stem}.png."""
    stages = [set(names) for names in STAGES.values()]
    drawn = {
        "bc_to_fql": any("fql" in names for names in stages),
        "reflow_vs_meanflow_rl": any(len(critic_methods(d)) > 1 for d in DATASETS),
        "online": any((set(ONLINE_STAGES) | set(CONTROL_STAGES)) & s for s in stages),
        "toy2d_metrics": bool(DISTRIBUTIONS),
    }
    return [f"results/figures/{stem}.png" for stem in FIGURES if drawn.get(stem, True)]


def final_outputs():
    summaries = ["eval", "table", "headline", "train"] + (
        ["toy2d"] if DISTRIBUTIONS else []
    )
    if any(critic_methods(d) for d in DATASETS):
        summaries.append("runs")
    if any("ogbench/" in d["id"] or d.get("task", 0) for d in DATASETS.values()):
        summaries.append("published")  # the papers' numbers are OGBench's
    summaries = [f"results/summary/{name}.csv" for name in summaries]
    # the datasets, their cards, the checkpoints and 2D-study files too: products of the study; a deleted
    # or newly configured one (another toy2d flow) is made again (Snakemake re-makes a missing file only
    # when it is a target or a job that needs to run reads it)
    datasets = [f"{MINARI_ROOT}/{i}" for i in SOURCES]
    cards = [f"results/datasets/{name}.json" for name in DATASETS]
    return (
        datasets + cards + run_files("model.pt") + toy2d_files() + summaries + figures()
    )


def eval_settings(dataset):
    """The evaluation settings of the config entry named `dataset`: the top-level `eval` < the entry's."""
    return {**config["eval"], **DATASETS[dataset].get("eval", {})}


def eval_args(wildcards):
    """What an evaluation computes, as flags: a change re-runs evaluations, never training."""
    e = eval_settings(wildcards.dataset)
    steps = " ".join(str(k) for k in e["inference_steps"])
    return (
        f"--inference_steps {steps} --episodes {e['episodes']} --num_envs {e['num_envs']}"
        f" --seed {e['seed']} --act_steps {e['act_steps']} --dataset_name {wildcards.dataset}"
    )
