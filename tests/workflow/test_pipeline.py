"""The Snakemake pipeline, run for real: a tiny config (one 24-episode dataset, 2 epochs, 4 episodes) through
the whole DAG, then what must hold about re-runs, config errors, failing jobs, lint and formatting.

The workflow (Snakefile + workflow/) is copied into a temporary directory, so `.snakemake/` metadata and
`results/` stay there; jobs import this checkout through PYTHONPATH.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pandas as pd
import pytest
import yaml
from workflow_support import REPO, TINY, planned_jobs, snakemake, tiny_config, workflow_copy

from myreinflow.checkpoint import load_checkpoint

pytestmark = pytest.mark.slow  # the tiny pipeline end to end: minutes
SCHEMA = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, minari_root) -> Path:
    """The whole DAG of the tiny config, run once for this module."""
    workdir = workflow_copy(tmp_path_factory.mktemp("pipeline"), tiny_config(minari_root))
    snakemake(workdir, "--cores", "2", "--resources", "gpu=1", "--configfile", "config.yaml")
    return workdir


def test_whole_dag_writes_every_output_and_the_report(tiny_run):
    summary = tiny_run / "results" / "summary"
    evals = pd.read_csv(summary / "eval.csv")
    steps, episodes = TINY["eval"]["inference_steps"], TINY["eval"]["episodes"]
    flows = evals[(evals["policy"] == "flow") & (evals["stage"] == "bc")]
    assert sorted(flows["flow"].unique()) == ["meanflow", "reflow"]
    assert len(flows) == 2 * len(steps) * episodes
    assert set(evals.loc[evals["flow"] == "mlp", "policy"]) == {"mlp"}
    assert set(evals["dataset"]) == {"tiny"}
    assert set(evals["stage"]) == {
        "bc",
        "fql",
        "mfql",
        "qc",
        "fql_online",
        "fql_continued",
        "mfql_online",
        "reinflow",
    }
    mfql = evals[evals["stage"] == "mfql"]  # MeanFlow-QL: the MeanFlow is its only policy
    assert set(mfql["flow"]) == {"meanflow"} and set(mfql["policy"]) == {"flow"}
    assert set(mfql["candidates"]) == {5}  # evaluated as it acts: the best of its reference's 5
    qc = evals[evals["stage"] == "qc"]  # QC: each BC flow, acting with the best of its 4 samples
    assert set(qc["flow"]) == {"reflow", "meanflow"} and set(qc["policy"]) == {"flow"}
    assert set(qc["candidates"]) == {4} and set(qc["run_candidates"]) == {4}
    fql = evals[evals["stage"] == "fql"]
    assert set(fql["policy"]) == {"onestep", "flow"} and set(fql["flow"]) == {"reflow", "meanflow"}
    assert set(fql.loc[fql["policy"] == "onestep", "inference_steps"]) == {1}  # one step, nothing to sweep
    assert len(fql[fql["policy"] == "flow"]) == 2 * len(steps) * episodes
    table = pd.read_csv(summary / "table.csv")
    score = table[
        (table["metric"] == "normalized_score") & (table["flow"] == "reflow") & (table["stage"] == "bc")
    ]
    assert len(score) == len(steps)
    assert (score["ci_low"] <= score["mean"]).all() and (score["mean"] <= score["ci_high"]).all()
    headline = pd.read_csv(summary / "headline.csv")
    assert headline["question"].str.contains("MeanFlow at 1 step").any()
    assert headline["question"].str.contains("FQL meanflow \\(onestep policy\\)").any()
    rl = headline[headline["question"].str.startswith("MeanFlow-QL minus FQL from ReFlow")]
    assert len(rl) == 1 and rl["metric"].iloc[0] == "normalized_score"
    assert set(headline.loc[headline["stage"] == "mfql", "metric"]) == {"normalized_score", "updates_per_s"}
    assert headline["question"].str.startswith("QC over MeanFlow minus FQL from ReFlow").any()
    # online: FQL online continues each FQL run (its rows: the offline ones, then the online ones);
    # ReinFlow fine-tunes each FQL run's one-step policy, labelled with the flow it was distilled from
    for stage in ("fql_online", "reinflow"):
        rows = evals[evals["stage"] == stage]
        assert set(rows["flow"]) == {"reflow", "meanflow"}, stage
    assert set(evals.loc[evals["stage"] == "reinflow", "policy"]) == {"onestep"}
    online = headline[headline["question"].str.contains("minus offline")]
    assert sorted(online["stage"]) == ["fql_online"] * 2 + ["mfql_online"] + ["reinflow"] * 2
    assert online["question"].str.contains("minus offline (FQL|MeanFlow-QL)").all()
    assert set(evals.loc[evals["stage"] == "mfql_online", "flow"]) == {"meanflow"}
    # each FQL online run against its control, the offline run continued as long without the env
    controlled = headline[headline["question"].str.contains("minus its control")]
    assert sorted(controlled["stage"]) == ["fql_online"] * 2
    assert controlled["b"].str.startswith("fql_continued").all()
    steps = TINY["fql_online"]["common"]["online_steps"]
    offline = pd.read_csv(tiny_run / "results/fql/tiny/reflow/seed0/train.csv")
    for stage in ("fql_online", "fql_continued"):  # the offline rows, then the online phase's
        continued = pd.read_csv(tiny_run / f"results/{stage}/tiny/reflow/seed0/train.csv")
        assert continued["step"].iloc[: len(offline)].tolist() == offline["step"].tolist()
        assert continued["online/env_steps"].max() == steps
        assert continued["step"].max() == offline["step"].max() + steps  # one update per step, both
    control = load_checkpoint(tiny_run / "results/fql_continued/tiny/reflow/seed0/model.pt")
    assert control["config"]["online_env"] is False and control["online_episodes"] == []
    train = pd.read_csv(summary / "train.csv")
    assert {"stage", "dataset", "flow", "seed", "step", "train/loss", "train/critic_loss"} <= set(
        train.columns
    )
    assert set(train.loc[train["stage"] == "bc", "flow"]) == {"reflow", "meanflow", "mlp"}
    assert set(train.loc[train["stage"] == "fql", "flow"]) == {"reflow", "meanflow"}
    assert set(train.loc[train["stage"] == "mfql", "flow"]) == {"meanflow"}
    runs = pd.read_csv(summary / "runs.csv")  # each critic-based run's number, and each method's
    methods = runs[runs["level"] == "method"]
    assert sorted(zip(methods["stage"], methods["flow"], strict=True)) == [
        ("fql", "meanflow"), ("fql", "reflow"), ("mfql", "meanflow"), ("qc", "meanflow"), ("qc", "reflow")
    ]  # fmt: skip
    assert (runs.loc[runs["level"] == "run", "evaluations"] == 1).all()  # one evaluation: at the end
    toy = pd.read_csv(summary / "toy2d.csv")
    assert set(toy["flow"]) == {"reflow", "meanflow", "rectified", "noise", "data"}
    assert {"swd", "w2", "mmd2"} <= set(toy["metric"]) and set(toy["distribution"]) == {"checkerboard"}
    figures = ("return_vs_steps", "latency_vs_steps", "learning_curves", "bc_to_fql", "toy2d_metrics")
    for name in (*figures, "reflow_vs_meanflow_rl", "online"):
        png = tiny_run / "results" / "figures" / f"{name}.png"
        assert png.read_bytes()[:4] == b"\x89PNG" and png.stat().st_size > 10_000
    # the hyperparameters of the config reached the jobs: common < per flow, threads honoured
    run = yaml.safe_load((tiny_run / "results/bc/tiny/meanflow/seed0/config.yaml").read_text())
    assert run["epochs"] == TINY["bc"]["common"]["epochs"] and run["hidden"] == [32, 32]
    assert run["threads"] == TINY["threads"]["train"] and run["seed"] == 0
    # every job logged to its log file and was benchmarked
    logs = sorted((tiny_run / "logs").glob("bc/tiny/*/seed0.log"))
    assert len(logs) == 3 and all("checkpoint:" in p.read_text() for p in logs)
    assert len(list((tiny_run / "logs" / "benchmarks").rglob("*.tsv"))) >= 12
    snakemake(tiny_run, "--configfile", "config.yaml", "--report", "results/report.html")
    report = tiny_run / "results" / "report.html"
    assert report.stat().st_size > 100_000
    assert "align-items: safe center" in report.read_text()  # the default profile's stylesheet
    # the landing page opens on this run's headline numbers, and says what was run, in words
    page = report.read_text().split("Headline of this run", 1)[1]
    headline = pd.read_csv(summary / "headline.csv")
    key = headline[(headline["stage"] == "bc") | headline["question"].str.contains("minus FQL from ReFlow")]
    assert len(key) >= 2 and all(a in page for a in key["a"])
    assert all(f"{d:+.3f}" in page for d in key.loc[key["stage"] == "bc", "difference"])
    entry = TINY["datasets"][0]
    assert f"{entry['name']}</strong>" in page and entry["id"] in page
    assert "seeds 0)" in page  # words, not Python's "[0]"
    # what the numbers can carry: the budget against the papers', one seed is one draw
    assert "of the papers' 1,000,000 offline updates" in page and "One training seed" in page


def test_second_run_is_a_no_op(tiny_run):
    assert planned_jobs(snakemake(tiny_run, "-n", "--configfile", "config.yaml")) == {}


def test_changing_eval_steps_reruns_only_evaluation_and_summary(tiny_run, minari_root):
    changed = tiny_config(minari_root, eval={**TINY["eval"], "inference_steps": [1, 3]})
    workflow_copy(tiny_run, changed, name="changed.yaml")
    jobs = planned_jobs(snakemake(tiny_run, "-n", "--configfile", "changed.yaml"))
    # every BC, FQL, MFQL, QC, online (FQL's, its control's, MFQL's) and ReinFlow checkpoint, one job each
    assert jobs.get("eval") == 3 + 2 + 1 + 2 + (2 + 2 + 1) + 2
    assert set(jobs) == {
        "eval",
        "summary_eval",
        "figure",
        "all",
    }
    assert jobs["figure"] == 4  # return_vs_steps, latency_vs_steps, bc_to_fql, reflow_vs_meanflow_rl
    # while a training hyperparameter re-trains exactly the runs it belongs to (here: MeanFlow)
    bc = {**TINY["bc"], "meanflow": {"adaptive_p": 0.75}}
    workflow_copy(tiny_run, tiny_config(minari_root, bc=bc), name="changed.yaml")
    jobs = planned_jobs(snakemake(tiny_run, "-n", "--configfile", "changed.yaml"))
    assert jobs.get("bc") == 1 and jobs.get("fql") == 3  # FQL, MFQL and QC
    # FQL online, its control and ReinFlow from the FQL-MeanFlow run, MFQL online from the MFQL run
    assert jobs.get("online") == 3 and jobs.get("reinflow") == 1
    assert jobs.get("eval") == 8
    assert "data" not in jobs and "dataset_card" not in jobs
    # the 2D study is independent of the offline-RL runs
    toy = {**TINY["toy2d"], "steps": 30}
    workflow_copy(tiny_run, tiny_config(minari_root, toy2d=toy), name="changed.yaml")
    jobs = planned_jobs(snakemake(tiny_run, "-n", "--configfile", "changed.yaml"))
    assert set(jobs) == {"toy2d", "summary_toy2d", "figure", "all"} and jobs["figure"] == 1
    # how jobs run (device, threads, logging) is not what they compute: nothing to re-run
    how = tiny_config(minari_root, device="cpu", threads={"train": 2}, wandb={"mode": "offline"})
    workflow_copy(tiny_run, how, name="changed.yaml")
    assert planned_jobs(snakemake(tiny_run, "-n", "--configfile", "changed.yaml")) == {}


def test_deleting_a_checkpoint_reruns_only_its_dependents(tiny_run, tmp_path):
    model = tiny_run / "results/bc/tiny/meanflow/seed0/model.pt"
    shutil.move(model, tmp_path / "model.pt")
    try:
        jobs = planned_jobs(snakemake(tiny_run, "-n", "--configfile", "config.yaml"))
    finally:
        shutil.move(tmp_path / "model.pt", model)
    # its evaluation, the FQL, MFQL and QC runs that start from it, the online runs that continue the FQL
    # one, and their evaluations; nothing else trains
    assert jobs.get("bc") == 1 and jobs.get("fql") == 3 and jobs.get("eval") == 8
    assert jobs.get("online") == 3 and jobs.get("reinflow") == 1
    assert "data" not in jobs and "dataset_card" not in jobs and "toy2d" not in jobs
    trained = {"bc", "fql", "online", "reinflow"}
    assert set(jobs) <= trained | {"eval", "summary_eval", "summary_train", "summary_runs", "figure", "all"}
    assert planned_jobs(snakemake(tiny_run, "-n", "--configfile", "config.yaml")) == {}


def test_deleting_the_dataset_reruns_it_and_everything_that_reads_it(tiny_run, minari_root, tmp_path):
    dataset = minari_root / TINY["datasets"][0]["id"]
    shutil.move(dataset, tmp_path / "dataset")
    try:
        jobs = planned_jobs(snakemake(tiny_run, "-n", "--configfile", "config.yaml"))
    finally:
        shutil.move(tmp_path / "dataset", dataset)
    # got again, described again, and every run trained on it (3 BC, 2 FQL, 1 MFQL, 2 QC) trained and
    # evaluated, and every online run after them (ReinFlow's env comes from its checkpoint, FQL online
    # reads the data)
    assert jobs.get("data") == 1 and jobs.get("dataset_card") == 1
    assert jobs.get("bc") == 3 and jobs.get("fql") == 5 and jobs.get("eval") == 15
    assert jobs.get("online") == 5 and jobs.get("reinflow") == 2
    assert "toy2d" not in jobs
    assert planned_jobs(snakemake(tiny_run, "-n", "--configfile", "config.yaml")) == {}


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"eval": {"episodes": "many"}}, "episodes"),
        ({"eval": {"episodez": 4}}, "episodez"),
        ({"bc": {"common": {"epochz": 2}}}, "epochz"),
        ({"bc": {"meanflow": {"adaptive_p": "high"}}}, "adaptive_p"),
        ({"stages": ["bc", "ppo"]}, "stages"),
        ({"stages": ["bc", "fql_online"]}, "has stage fql_online but not fql"),
        ({"fql_online": {"common": {"alpha": 10}}}, "alpha"),  # FQL online resumes the fql run's options
        ({"mfql_online": {"common": {"alpha": 10}}}, "alpha"),  # likewise MeanFlow-QL online
        ({"stages": ["bc", "fql", "fql_continued"]}, "has stage fql_continued but not fql_online"),
        ({"reinflow": {"common": {"policy": "flow"}}}, "policy"),  # the stage chooses the policy
        ({"colour": "blue"}, "colour"),
        ({"datasets": [{"name": "c", "id": "myreinflow/ogbench/cube-single-tiny-v0", "task": 7}]}, "task"),
        (  # one Minari dataset, got two ways
            {
                "datasets": [
                    {"name": "a", "id": "myreinflow/pusher/tiny-v0", "source": "generate"},
                    {"name": "b", "id": "myreinflow/pusher/tiny-v0", "source": "minari"},
                ]
            },
            "two sources",
        ),
    ],
)
def test_bad_config_fails_before_any_job_naming_the_key(tmp_path, minari_root, change, named):
    workdir = workflow_copy(tmp_path, tiny_config(minari_root, **change))
    proc = snakemake(workdir, "--cores", "1", "--configfile", "config.yaml", check=False)
    assert proc.returncode != 0
    assert named in proc.stderr + proc.stdout
    assert not (workdir / "results").exists() and not (workdir / "logs").exists()


def test_a_training_job_run_again_resumes_its_checkpoint_and_other_options_retrain(tmp_path, minari_root):
    """A training job that starts again (an interrupted one, or one whose resumable budget grew) keeps
    its checkpoint and log and resumes from them; a job with other options replaces them."""
    entry = {"name": "tiny", "id": "myreinflow/pusher/tiny-v0", "flows": ["reflow"], "stages": ["bc", "fql"]}
    base = dict(datasets=[entry], baselines=[], toy2d={"distributions": []})
    workdir = workflow_copy(tmp_path, tiny_config(minari_root, **base))
    target = "results/fql/tiny/reflow/seed0/model.pt"
    snakemake(workdir, target, "--cores", "1", "--configfile", "config.yaml")
    run = workdir / "results/fql/tiny/reflow/seed0"
    first = pd.read_csv(run / "train.csv")
    longer = {**TINY["fql"], "common": {**TINY["fql"]["common"], "epochs": 2}}
    workflow_copy(workdir, tiny_config(minari_root, **base, fql=longer), name="longer.yaml")
    snakemake(workdir, target, "--cores", "1", "--configfile", "longer.yaml")
    log = (workdir / "logs/fql/tiny/reflow/seed0.log").read_text()
    assert "resuming" in log and "epoch 1" in log  # from its checkpoint, not from scratch
    resumed = pd.read_csv(run / "train.csv")
    assert (
        resumed["epoch"].max() == 2 and resumed.iloc[: len(first)]["step"].tolist() == first["step"].tolist()
    )
    other = {**TINY["fql"], "common": {**longer["common"], "alpha": 3.0}}
    workflow_copy(workdir, tiny_config(minari_root, **base, fql=other), name="other.yaml")
    snakemake(workdir, target, "--cores", "1", "--configfile", "other.yaml")
    assert "starting afresh" in (workdir / "logs/fql/tiny/reflow/seed0.log").read_text()
    assert load_checkpoint(run / "model.pt")["config"]["alpha"] == 3.0
    # a finished run made again (here forced; a changed rule's code does the same): a no-op, its files kept
    snakemake(workdir, target, "--cores", "1", "--configfile", "other.yaml", "--forcerun", "fql")
    assert "is complete" in (workdir / "logs/fql/tiny/reflow/seed0.log").read_text()
    assert (run / "config.yaml").is_file() and pd.read_csv(run / "train.csv")["epoch"].max() == 2
    # an online job run again with more env steps resumes its own copy of the offline run
    online = dict(base, datasets=[{**entry, "stages": ["bc", "fql", "fql_online"]}], fql=other)
    online_target = "results/fql_online/tiny/reflow/seed0/model.pt"
    for steps in (30, 60):
        budget = {"common": {"online_steps": steps, "online_eval_freq": 30}}
        workflow_copy(workdir, tiny_config(minari_root, **online, fql_online=budget), name="online.yaml")
        snakemake(workdir, online_target, "--cores", "1", "--configfile", "online.yaml")
    assert "env_steps 30" in (workdir / "logs/fql_online/tiny/reflow/seed0.log").read_text()
    assert load_checkpoint(workdir / online_target)["env_steps"] == 60


def test_ogbench_entry_passes_its_task_reward_and_chunk_to_training(tmp_path, minari_root):
    entry = {"name": "cube", "id": "myreinflow/ogbench/cube-single-tiny-v0", "task": 3, "reward": "sparse"}
    entry |= {"horizon_steps": 5, "fql": {"alpha": 100}}  # the entry's h reaches both stages
    entry |= {"eval": {"episodes": 7, "inference_steps": [1, 3]}}  # and its eval overrides the top level
    entry |= {"flows": ["reflow"], "stages": ["bc", "fql"]}  # its flows and stages the top-level ones
    workdir = workflow_copy(tmp_path, tiny_config(minari_root, datasets=[entry]))
    target = "results/eval/fql/cube/reflow/seed0.csv"
    proc = snakemake(workdir, target, "-n", "-p", "--configfile", "config.yaml")
    commands = [line for line in proc.stdout.splitlines() if "python -m myreinflow" in line]
    training = [c for c in commands if "myreinflow bc" in c or "myreinflow fql" in c]
    assert len(training) == 2 and all("--task 3 --reward sparse" in c for c in training)
    assert all('"horizon_steps": 5' in c for c in training) and '"alpha": 100' in training[-1]
    (evaluation,) = [c for c in commands if "myreinflow eval" in c]
    assert "--inference_steps 1 3 --episodes 7" in evaluation
    assert f"--num_envs {TINY['eval']['num_envs']}" in evaluation  # the rest from the top level
    # an OGBench study also compares its success rates with the published ones
    jobs = planned_jobs(snakemake(workdir, "-n", "--configfile", "config.yaml"))
    assert jobs["summary_published"] == 1 and (jobs["bc"], jobs["fql"]) == (1 + len(TINY["baselines"]), 1)


@pytest.mark.parametrize(("device", "gpu"), [("cpu", 0), ("cuda", 1)])
def test_jobs_take_the_gpu_only_where_they_run_on_one(tmp_path, minari_root, device, gpu):
    """Training jobs hold the `gpu` resource on a GPU (one at a time with --resources gpu=1); on a CPU they
    run side by side, each taking its threads out of the machine's cores (`local_cpus`), never more."""
    entry = {"name": "cube", "id": "myreinflow/ogbench/cube-single-tiny-v0", "stages": ["bc"]}
    entry |= {"flows": ["reflow"], "baselines": []}  # an entry's own baselines: none here
    threads = {**TINY["threads"], "train": 4}
    config = tiny_config(minari_root, datasets=[entry], device=device, threads=threads)
    workdir = workflow_copy(tmp_path, config)
    proc = snakemake(workdir, "-n", "--cores", "64", "--configfile", "config.yaml")
    assert planned_jobs(proc)["bc"] == 1  # the ReFlow only: no MLP on this entry
    jobs = [r for r in re.findall(r"resources: (.*)", proc.stdout + proc.stderr) if "gpu=" in r]
    assert jobs and all(f"gpu={gpu}" in r for r in jobs)  # BC, its evaluation, the 2D study
    assert any(f"local_cpus={min(4, len(os.sched_getaffinity(0)))}" in r for r in jobs)  # BC's 4 threads


def test_failing_job_leaves_no_outputs_and_logs_why(tmp_path, minari_root):
    import torch

    if torch.cuda.is_available():
        pytest.skip("the failure is asking for CUDA on a machine without one")
    workdir = workflow_copy(tmp_path, tiny_config(minari_root, device="cuda", baselines=[]))
    target = "results/bc/tiny/reflow/seed0/model.pt"
    proc = snakemake(workdir, target, "--cores", "1", "--configfile", "config.yaml", check=False)
    assert proc.returncode != 0
    run = workdir / "results/bc/tiny/reflow/seed0"
    assert not run.exists() or not any(p.is_file() for p in run.rglob("*")), list(run.rglob("*"))
    log = (workdir / "logs/bc/tiny/reflow/seed0.log").read_text()
    assert "no CUDA GPU" in log


def test_lint_and_snakefmt_are_clean():
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--lint"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0 and "Congratulations" in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    snakefmt = shutil.which("snakefmt")
    if snakefmt is None:
        pytest.fail("snakefmt is not installed (pip install -e '.[dev]')")
    proc = subprocess.run([snakefmt, "--check", "."], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_config_files_are_valid():
    """Every shipped config passes the schema (Snakemake validates it while parsing, in a dry run)."""
    for config in sorted((REPO / "config").glob("*.yaml")):
        proc = subprocess.run(
            [sys.executable, "-m", "snakemake", "-n", "--configfile", str(config)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, f"{config.name}: {proc.stderr[-2000:]}"


PIPELINE_SET = {"dataset", "source", "task", "reward", "model", "flow", "seed", "threads", "out", "device"}
PIPELINE_SET |= {"wandb_project", "no_wandb", "distribution", "flows", "epochs", "steps", "inference_steps"}
PIPELINE_SET |= {"init", "wandb_mode", "policy", "replace_other_run", "online_env"}


def _bc_config():
    from myreinflow.algos.bc import BCConfig

    return BCConfig, {"epochs", "inference_steps"}  # BC's epochs and eval steps are hyperparameters


def _reinflow_config():
    from myreinflow.configs import ReinFlowConfig

    return ReinFlowConfig, {"inference_steps"}  # the chain's steps are a hyperparameter; its policy is not


def _toy2d_config():
    from myreinflow.toy2d.study import Toy2DConfig

    return Toy2DConfig, set()


def _fql_config():
    from myreinflow.algos.fql import FQLConfig

    return FQLConfig, {"epochs"}


def _mfql_config():
    from myreinflow.algos.mfql import MFQLConfig

    return MFQLConfig, {"epochs"}


def _qc_config():
    from myreinflow.algos.qc import QCConfig

    return QCConfig, {"epochs"}


@pytest.mark.parametrize(
    ("options", "config"),
    [
        ("bc_options", _bc_config),
        ("fql_options", _fql_config),
        ("mfql_options", _mfql_config),
        ("qc_options", _qc_config),
        ("toy2d_options", _toy2d_config),
        ("reinflow_options", _reinflow_config),
    ],
)
def test_schema_hyperparameters_match_the_cli_config(options, config):
    """Option blocks of the schema = the CLI dataclass's fields the pipeline leaves to the config, same
    types (a new CLI key must be added to workflow/schemas/config.schema.yaml)."""
    from myreinflow.options import field_type

    cls, keep = config()
    json_types = {int: "integer", float: "number", str: "string", bool: "boolean"}
    options = {k: v for k, v in SCHEMA["$defs"][options]["properties"].items() if not v.get("deprecated")}
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name not in PIPELINE_SET - keep}
    assert sorted(options) == sorted(fields)
    for name, field in fields.items():
        hint, _ = field_type(cls, field)
        if "choices" in field.metadata:
            assert options[name]["enum"] == list(field.metadata["choices"]), name
        else:
            assert options[name]["type"] == json_types.get(hint, "array"), name


def test_conda_env_lists_the_package_dependencies():
    env = yaml.safe_load((REPO / "workflow" / "envs" / "myreinflow.yaml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    names = {re.split(r"[<>=\[]", p)[0] for p in pip}
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    needed = {re.split(r"[<>=\[]", d)[0] for d in deps} - {"snakemake"}
    assert needed <= names, needed - names
