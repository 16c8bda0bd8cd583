"""Behaviour cloning and evaluation end to end on real (tiny, locally generated) Minari datasets."""

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from myreinflow.algos.bc import BCConfig, train
from myreinflow.checkpoint import load_checkpoint
from myreinflow.cli import main
from myreinflow.policy import ChunkPolicy

PUSHER = "myreinflow/pusher/tiny-v0"
EVAL_COLUMNS = [
    "stage",
    "dataset",
    "env_id",
    "flow",
    "policy",
    "seed",
    "inference_steps",
    "episode",
    "return",
    "length",
    "normalized_score",
    "latency_ms",
    "final_distance",
    "success",
]


def quick(tmp_path, name, **kw) -> BCConfig:
    base = dict(
        dataset=PUSHER,
        epochs=2,
        batch_size=128,
        hidden=(64, 64),
        eval_freq=1,
        eval_episodes=2,
        no_wandb=True,
        threads=1,
        device="cpu",
        out=str(tmp_path / name),
    )
    return BCConfig(**{**base, **kw})


@pytest.mark.parametrize("flow", ["reflow", "meanflow", "mlp"])
def test_bc_writes_the_contract_and_checkpoint_round_trips(minari_root, tmp_path, flow):
    path = train(quick(tmp_path, flow, model=flow), progress=False)
    out = path.parent
    assert sorted(p.name for p in out.iterdir()) == ["config.yaml", "metrics.json", "model.pt", "train.csv"]
    log = pd.read_csv(out / "train.csv")
    metrics = json.loads((out / "metrics.json").read_text())
    last = log.iloc[-1]
    assert metrics["stage"] == "bc" and (metrics["step"], metrics["epoch"]) == (last.step, 2)
    distance = metrics["last_evaluation"]["eval/final_distance"]
    assert distance["mean"] == pytest.approx(last["eval/final_distance"])
    assert distance["ci_low"] <= distance["mean"] <= distance["ci_high"]  # 2 episodes: an interval
    assert metrics["last_evaluation"]["episodes"] == 2 and metrics["wall_s"] >= last.wall_s
    assert metrics["versions"]["torch"] == torch.__version__
    root = Path(__file__).parents[2]
    if (root / ".git").exists():  # a git checkout (an editable install): the commit it ran
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True)
        assert metrics["git"]["commit"] == head.stdout.strip()
    assert {
        "step",
        "epoch",
        "wall_s",
        "train/loss",
        "eval/mean_return",
        "eval/std_return",
        "eval/mean_length",
        "eval/normalized_score",
        "eval/final_distance",
    } <= set(log.columns)
    assert log["epoch"].tolist() == [1, 2] and log["train/loss"].notna().all()
    ckpt = load_checkpoint(path)
    assert ckpt["stage"] == "bc" and ckpt["epoch"] == 2 and ckpt["dataset"]["env_id"] == "Pusher-v5"
    # save → load gives identical actions for the same noise
    name = "mlp" if flow == "mlp" else "flow"
    assert list(ckpt["policies"]) == [name]
    policy = ChunkPolicy.from_state(ckpt["policies"][name], "cpu")
    again = ChunkPolicy.from_state(load_checkpoint(path)["policies"][name], "cpu")
    obs = np.random.default_rng(0).normal(size=(5, 1, 23))
    a = policy.act(obs, 3, torch.Generator().manual_seed(1))
    b = again.act(obs, 3, torch.Generator().manual_seed(1))
    assert a.shape == (5, 4, 7) and np.array_equal(a, b) and np.abs(a).max() <= 2.0
    if flow != "mlp":
        assert ckpt["policies"]["flow"]["spec"]["flow_kwargs"]["prediction"] == "data"  # the default
        assert policy.model.prediction == "data"


def test_flow_prediction_reaches_the_checkpoint_and_old_specs_load_as_velocity(minari_root, tmp_path):
    path = train(quick(tmp_path, "v", model="meanflow", flow_prediction="velocity", epochs=1), progress=False)
    state = load_checkpoint(path)["policies"]["flow"]
    assert state["spec"]["flow_kwargs"]["prediction"] == "velocity"
    assert ChunkPolicy.from_state(state, "cpu").model.prediction == "velocity"
    # a checkpoint written before the option existed holds a velocity-predicting flow
    del state["spec"]["flow_kwargs"]["prediction"]
    assert ChunkPolicy.from_state(state, "cpu").model.prediction == "velocity"
    paper = BCConfig(model="meanflow", meanflow_recipe="paper").flow_kwargs("meanflow")
    assert (paper["tr_sampler"], paper["ratio_r_neq_t"], paper["adaptive_p"]) == ("logit_normal", 0.25, 1.0)


def test_a_meanflow_warm_started_from_a_reflow_is_that_reflow_at_r_equals_t(minari_root, tmp_path):
    """`--warm_start`: the MeanFlow's network starts as the ReFlow's (at r = t the same velocity; its
    interval embedding, constant for ReFlow, is what MeanFlow learns to use); another network is refused."""
    from myreinflow.algos.bc import warm_start
    from myreinflow.errors import UserError
    from myreinflow.policy import build_model

    reflow = train(quick(tmp_path, "reflow", epochs=1, eval_freq=0), progress=False)
    teacher = ChunkPolicy.from_state(load_checkpoint(reflow)["policies"]["flow"], "cpu").model
    spec = {**load_checkpoint(reflow)["policies"]["flow"]["spec"], "kind": "meanflow"}
    spec["flow_kwargs"] = BCConfig(model="meanflow").flow_kwargs("meanflow")
    student = build_model(spec, "cpu")
    warm_start(student, spec, str(reflow), "cpu")
    z, obs, t = torch.randn(8, teacher.flat_dim), torch.randn(8, 23), torch.rand(8)
    torch.testing.assert_close(student.average_velocity(z, t, t, obs), teacher.average_velocity(z, t, t, obs))
    assert not torch.allclose(
        student.average_velocity(z, 0 * t, t, obs), teacher.average_velocity(z, t, t, obs)
    )
    with pytest.raises(UserError, match="hidden = \\[32, 32\\] does not match the --warm_start checkpoint's"):
        train(
            quick(tmp_path, "other", model="meanflow", hidden=(32, 32), warm_start=str(reflow)),
            progress=False,
        )


def test_resume_continues_exactly_where_it_stopped(minari_root, tmp_path):
    straight = train(quick(tmp_path, "straight", lr_schedule="constant"), progress=False)
    part = quick(tmp_path, "resumed", lr_schedule="constant", epochs=1)
    train(part, progress=False)
    resumed = train(quick(tmp_path, "resumed", lr_schedule="constant", epochs=2), progress=False)
    w1 = load_checkpoint(straight)["policies"]["flow"]["model"]
    w2 = load_checkpoint(resumed)["policies"]["flow"]["model"]
    assert all(torch.equal(w1[k], w2[k]) for k in w1)
    assert pd.read_csv(resumed.parent / "train.csv")["step"].is_monotonic_increasing
    # a finished run re-run is a no-op; another config in the same directory is refused
    assert train(quick(tmp_path, "resumed", lr_schedule="constant", epochs=2), progress=False) == resumed
    from myreinflow.errors import UserError

    with pytest.raises(UserError, match="holds a different run"):
        train(quick(tmp_path, "resumed", lr_schedule="constant", epochs=2, lr=1e-2), progress=False)


def cartpole_bc_eval(out: Path, seed: int, threads: int = 1) -> tuple[Path, pd.DataFrame]:
    """BC of the tiny CartPole set (needs `minari_root`) and 4 evaluation episodes of the checkpoint."""
    path = train(
        quick(
            out,
            "cartpole",
            dataset="myreinflow/cartpole/tiny-v0",
            epochs=10,
            eval_freq=0,
            horizon_steps=1,
            lr=1e-3,
            seed=seed,
            threads=threads,
        ),
        progress=False,
    )
    csv = out / "cartpole.csv"
    args = ["eval", "--checkpoint", str(path), "--episodes", "4", "--seed", str(seed), "--out", str(csv)]
    assert main([*args, "--threads", str(threads), "--quiet"]) == 0
    return path, pd.read_csv(csv)


def test_discrete_actions_get_a_categorical_policy_that_learns(minari_root, tmp_path):
    path, rows = cartpole_bc_eval(tmp_path, seed=0)
    assert load_checkpoint(path)["policies"]["categorical"]["spec"]["kind"] == "categorical"
    assert (rows["policy"] == "categorical").all() and rows["inference_steps"].unique().tolist() == [1]
    # measured 474.5–500 (mean of the 4 episodes) over seeds 0–5, 1 and 2 threads; a uniform-random
    # policy averages ~22, and one episode that fails at once still leaves the mean above 370
    assert rows["return"].mean() > 300


def test_eval_cli_sweeps_steps_deterministically(minari_root, tmp_path):
    path = train(quick(tmp_path, "mf", model="meanflow", epochs=1), progress=False)
    args = [
        "eval",
        "--checkpoint",
        str(path),
        "--inference_steps",
        "1",
        "2",
        "--episodes",
        "3",
        "--num_envs",
        "2",
        "--seed",
        "5",
        "--quiet",
    ]
    assert main([*args, "--out", str(tmp_path / "a.csv")]) == 0
    run_dir = ["--checkpoint", str(path.parent)]  # a run directory stands for its model.pt
    assert main([*args, *run_dir, "--out", str(tmp_path / "b.csv")]) == 0
    a, b = pd.read_csv(tmp_path / "a.csv"), pd.read_csv(tmp_path / "b.csv")
    assert set(
        EVAL_COLUMNS + ["eval_seed", "act_steps", "horizon_steps", "candidates", "run_candidates"]
    ) == set(a.columns)
    assert list(a.columns[:6]) == EVAL_COLUMNS[:6] and (a["act_steps"] == 4).all()
    assert (a["horizon_steps"] == 4).all()
    assert len(a) == 6 and a["episode"].tolist() == [0, 1, 2, 0, 1, 2]
    assert (a["policy"] == "flow").all() and (a["flow"] == "meanflow").all() and (a["stage"] == "bc").all()
    pd.testing.assert_series_equal(a["return"], b["return"])
    assert (a["length"] == 100).all() and a["final_distance"].between(0, 1).all()
