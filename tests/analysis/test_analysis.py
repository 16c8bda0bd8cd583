"""Summary tables of the pipeline (`myreinflow summarize`): known answers on small synthetic frames."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from myreinflow.analysis import curves
from myreinflow.analysis.headline import headline
from myreinflow.analysis.tables import ci_table, read_train
from myreinflow.cli import main
from myreinflow.errors import UserError


def _evals(scores: dict[tuple[str, str, str, int], list[float]]) -> pd.DataFrame:
    rows = []
    for (stage, flow, policy, k), values in scores.items():
        for e, v in enumerate(values):
            rows.append(
                dict(stage=stage, dataset="d", env_id="Pusher-v5", flow=flow, policy=policy, seed=0,
                     inference_steps=k, episode=e, normalized_score=v, final_distance=1 - v)
            )  # fmt: skip
    return pd.DataFrame(rows)


@pytest.mark.parametrize(("meanflow_1", "holds"), [(0.93, True), (0.80, False)])
def test_headline_meanflow_against_reflow_at_its_best_steps(meanflow_1, holds):
    evals = _evals(
        {
            ("bc", "reflow", "flow", 1): [0.70, 0.72],
            ("bc", "reflow", "flow", 4): [0.95, 0.97],
            ("bc", "meanflow", "flow", 1): [meanflow_1] * 2,
            ("bc", "meanflow", "flow", 4): [0.99, 0.99],
            ("bc", "mlp", "mlp", 1): [0.90, 0.90],
        }
    )
    table = ci_table(evals)
    row = headline(table).iloc[0]
    assert (row["b"], row["b_mean"]) == ("bc reflow flow K=4", pytest.approx(0.96))
    assert row["difference"] == pytest.approx(meanflow_1 - 0.96)
    assert row["holds"] == holds


def test_headline_names_a_tie_for_the_best_bc_policy():
    evals = _evals(
        {
            ("bc", "reflow", "flow", 1): [0.0, 0.0],
            ("bc", "meanflow", "flow", 1): [0.0, 0.0],
            ("fql", "reflow", "onestep", 1): [0.5, 0.5],
        }
    )
    rows = headline(ci_table(evals)).set_index("question")
    best = rows.loc["FQL reflow (onestep policy) minus the best BC policy"]
    assert best["b"] in (
        "bc meanflow flow K=1 = bc reflow flow K=1 (tie)",
        "bc reflow flow K=1 = bc meanflow flow K=1 (tie)",
    )
    assert rows["difference"].map(lambda d: round(d, 4) == d).all()  # rounded


def test_headline_fql_against_the_best_bc_policy():
    evals = _evals(
        {
            ("bc", "reflow", "flow", 2): [0.80, 0.80],
            ("bc", "mlp", "mlp", 1): [0.85, 0.85],
            ("fql", "reflow", "flow", 2): [0.84, 0.84],
            ("fql", "reflow", "onestep", 1): [0.90, 0.90],
        }
    )
    rows = headline(ci_table(evals)).set_index("question")
    onestep = rows.loc["FQL reflow (onestep policy) minus the best BC policy"]
    assert onestep["difference"] == pytest.approx(0.05) and onestep["holds"]
    # each side as numbers: label, mean, 95 % CI, final distance
    b = [onestep[f"b{c}"] for c in ("", "_mean", "_ci_low", "_ci_high", "_final_distance")]
    assert b == ["bc mlp mlp K=1", 0.85, 0.85, 0.85, pytest.approx(0.15)]
    flow = rows.loc["FQL reflow (flow policy) minus the best BC policy"]
    assert flow["difference"] == pytest.approx(-0.01) and not flow["holds"]
    start = rows.loc["FQL reflow (flow policy) minus the BC flow it started from"]
    assert start["difference"] == pytest.approx(0.04) and start["holds"]
    assert (start["b"], start["b_mean"]) == ("bc reflow flow K=2", 0.8)
    assert start["b_final_distance"] == pytest.approx(0.2)


def test_read_train_labels_rows_from_contract_paths(tmp_path):
    path = tmp_path / "results/fql/pusher-mixed/meanflow/seed3/train.csv"
    path.parent.mkdir(parents=True)
    pd.DataFrame({"step": [1, 2], "epoch": [1, 2], "train/loss": [1.0, 0.5]}).to_csv(path, index=False)
    frame = read_train([path])
    labels = frame[["stage", "dataset", "flow", "seed"]].iloc[0].tolist()
    assert labels == ["fql", "pusher-mixed", "meanflow", 3]
    with pytest.raises(UserError, match="seed<N>/train.csv"):
        read_train([tmp_path / "train.csv"])


def test_summarize_cli_writes_tables_and_a_figure(tmp_path):
    evals = _evals({("bc", "reflow", "flow", k): [0.5 + 0.1 * k, 0.6 + 0.1 * k] for k in (1, 2, 4)})
    evals["latency_ms"] = evals["inference_steps"] * 1.5
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    evals.iloc[:3].to_csv(a, index=False)
    evals.iloc[3:].to_csv(b, index=False)
    out = {k: tmp_path / f"{k}.csv" for k in ("eval", "table", "headline")}
    args = ["summarize", "eval", str(a), str(b), "--out", str(out["eval"])]
    assert main([*args, "--table", str(out["table"]), "--headline", str(out["headline"])]) == 0
    assert len(pd.read_csv(out["eval"])) == len(evals)
    table = pd.read_csv(out["table"])
    assert set(table["metric"]) == {"normalized_score", "final_distance", "latency_ms"}
    figure = ["summarize", "figure"]
    assert main([*figure, "return_vs_steps", str(out["table"]), "--out", str(tmp_path / "r.png")]) == 0
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"
    assert main([*figure, "latency_vs_steps", str(out["eval"]), "--out", str(tmp_path / "l.png")]) == 0
    assert main([*figure, "nope", str(out["table"]), "--out", str(tmp_path / "n.png")]) == 2
    # the RL figure takes train.csv and table.csv: one CSV is refused in one line, not a traceback
    rl = [*figure, "reflow_vs_meanflow_rl", str(out["table"]), "--out", str(tmp_path / "rl.png")]
    assert main(rl) == 2
    missing = ["summarize", "eval", str(tmp_path / "missing.csv"), "--out", "x", "--table", "y"]
    assert main([*missing, "--headline", "z"]) == 2


def _ogbench_evals() -> pd.DataFrame:
    """BC (MLP 2/10, ReFlow 1/10) and FQL h = 1 (one-step 6/10 from the ReFlow, 4/10 from the MeanFlow) on
    cube-single task 2; MeanFlow-QL (5/10: nothing published); QC-FQL h = 5 on
    scene-sparse (one-step 7/10, its flow 9/10: not a published method, so not compared)."""
    rows = []
    runs = [
        ("cube", "cube-single-singletask-task2-v0", "dense", 1, "bc", "mlp", "mlp", 2),
        ("cube", "cube-single-singletask-task2-v0", "dense", 1, "bc", "reflow", "flow", 1),
        ("cube", "cube-single-singletask-task2-v0", "dense", 1, "fql", "reflow", "onestep", 6),
        ("cube", "cube-single-singletask-task2-v0", "dense", 1, "fql", "meanflow", "onestep", 4),
        ("cube", "cube-single-singletask-task2-v0", "dense", 1, "mfql", "meanflow", "flow", 5),
        ("scene", "scene-singletask-task2-v0", "sparse", 5, "fql", "reflow", "onestep", 7),
        ("scene", "scene-singletask-task2-v0", "sparse", 5, "fql", "reflow", "flow", 9),
    ]
    for dataset, env_id, reward, h, stage, flow, policy, wins in runs:
        for e in range(10):
            rows.append(
                dict(stage=stage, dataset=dataset, env_id=env_id, task=2, reward=reward, horizon_steps=h,
                     flow=flow, policy=policy, seed=0, inference_steps=1, episode=e,
                     normalized_score=np.nan, success=float(e < wins))
            )  # fmt: skip
    return pd.DataFrame(rows)


def test_table_has_no_empty_rows_and_keeps_integers(tmp_path):
    """OGBench rows have no normalized score: no row for it (not n = 0 with empty means); a task column
    that Pusher rows leave empty is still written as 2, not 2.0."""
    evals = _ogbench_evals()
    pusher = evals.iloc[:3].assign(dataset="pusher", env_id="Pusher-v5", task=np.nan, normalized_score=0.9)
    table = ci_table(pd.concat([evals, pusher], ignore_index=True))
    assert (table["n"] > 0).all() and table["mean"].notna().all()
    assert set(table.loc[table["dataset"] == "cube", "metric"]) == {"success"}
    table.to_csv(tmp_path / "table.csv", index=False)
    tasks = pd.read_csv(tmp_path / "table.csv", dtype=str)["task"].dropna()
    assert set(tasks) == {"2"}


@pytest.mark.parametrize("stem", ["return_vs_steps", "bc_to_fql", "learning_curves"])
def test_figures_have_no_panel_without_data(monkeypatch, tmp_path, stem):
    """OGBench (success only) beside Pusher (normalized score, distance, success): every panel drawn has
    data, and every row and column has a visible panel."""
    from myreinflow.analysis.figures import PLOTS, style

    evals = _ogbench_evals().query("dataset == 'cube'")
    pusher = evals.assign(dataset="pusher", env_id="Pusher-v5", task=np.nan, normalized_score=0.9,
                          final_distance=0.2)  # fmt: skip
    table = ci_table(pd.concat([evals, pusher], ignore_index=True))
    drawn = []
    monkeypatch.setattr(style, "save", lambda g, out, title: drawn.append(g))
    if stem == "learning_curves":
        train = _rl_train({("fql", "reflow"): 20.0}).assign(**{"train/loss": 0.1})
        PLOTS[stem](train, tmp_path / "c.png")
    else:
        PLOTS[stem](table, tmp_path / "f.png")
    (g,) = drawn
    visible = [[ax.get_visible() for ax in row] for row in g.axes]
    assert all(ax.has_data() for ax in g.axes.flat if ax.get_visible())
    assert all(any(row) for row in visible) and all(any(col) for col in zip(*visible, strict=True))
    if stem == "return_vs_steps":  # cube has no normalized score: its panel in that row is left out
        assert not all(visible[0])


def test_published_numbers_beside_ours_at_the_nearest_budget():
    from myreinflow.analysis.published import compare

    train = pd.DataFrame(
        [dict(stage=s, dataset=d, flow="reflow", seed=0, step=n) for s, d, n in
         [("bc", "cube", 15_000), ("fql", "cube", 30_000), ("fql", "scene", 150_000),
          ("fql", "scene", 190_000)]]
    )  # fmt: skip
    rows = compare(ci_table(_ogbench_evals()), train)
    got = {(r.dataset, r.method, r.policy.split()[0], r.published_updates, r.published_tasks): r
           for r in rows.itertuples()}  # fmt: skip
    assert len(got) == len(rows)  # a published number nearest to our budget and final is listed once
    # cube-single: only the FQL paper publishes it (dense, 1M updates); our best BC is the MLP; FQL from
    # each flow is its own row; MeanFlow-QL has no published number. scene task 2: Q-chunking's 5-task
    # average and its task-2 curve
    avg, one = "5-task average", "task 2"
    assert set(got) == {("cube", "BC", "mlp", 1_000_000, avg), ("cube", "FQL", "reflow", 1_000_000, avg),
                        ("cube", "FQL", "meanflow", 1_000_000, avg),
                        ("scene", "QC-FQL", "reflow", 200_000, avg),
                        ("scene", "QC-FQL", "reflow", 1_000_000, avg),
                        ("scene", "QC-FQL", "reflow", 200_000, one),
                        ("scene", "QC-FQL", "reflow", 1_000_000, one)}  # fmt: skip
    bc, fql = got["cube", "BC", "mlp", 1_000_000, avg], got["cube", "FQL", "reflow", 1_000_000, avg]
    assert (bc.success, bc.published_success, bc.policy) == (0.2, 0.05, "mlp mlp K=1")
    assert (fql.success, fql.published_success, fql.updates, fql.budget_ratio) == (0.6, 0.96, 30_000, 0.03)
    assert got["cube", "FQL", "meanflow", 1_000_000, avg].success == 0.4
    assert np.isnan(fql.published_ci_low)  # the FQL paper's averages come without an interval here
    near = got[
        "scene", "QC-FQL", "reflow", 200_000, avg
    ]  # the last step of the run (190k) is nearest to 200k
    assert (near.success, near.published_success, near.horizon_steps, near.reward) == (0.7, 0.74, 5, "sparse")
    assert near.ci_low < 0.7 < near.ci_high
    assert got["scene", "QC-FQL", "reflow", 1_000_000, avg].published_success == 0.84
    task2 = got[
        "scene", "QC-FQL", "reflow", 200_000, one
    ]  # Q-chunking's plot data for scene task 2, with its interval
    assert (task2.published_success, task2.published_ci_low, task2.published_ci_high) == (0.814, 0.765, 0.84)


def test_published_task_curve_only_beside_its_own_task():
    from myreinflow.analysis.published import compare

    evals = _ogbench_evals().query("dataset == 'scene'").assign(task=3, env_id="scene-singletask-task3-v0")
    train = pd.DataFrame([dict(stage="fql", dataset="scene", flow="reflow", seed=0, step=100_000)])
    rows = compare(ci_table(evals), train)
    assert len(rows) and set(rows["published_tasks"]) == {"5-task average"}  # scene task 2's curve left out


def test_summarize_published_cli(tmp_path):
    table, train, out = tmp_path / "table.csv", tmp_path / "train.csv", tmp_path / "published.csv"
    ci_table(_ogbench_evals()).to_csv(table, index=False)
    runs = pd.DataFrame([dict(stage="fql", dataset="cube", flow="reflow", seed=0, step=31_240)])
    runs.to_csv(train, index=False)
    assert main(["summarize", "published", str(table), str(train), "--out", str(out)]) == 0
    rows = pd.read_csv(out)
    assert set(rows["method"]) == {"BC", "FQL", "QC-FQL"} and rows["source"].str.contains("2025").all()
    assert main(["summarize", "published", str(tmp_path / "none.csv"), str(train), "--out", str(out)]) == 2


def test_headline_on_ogbench_shows_success_without_a_distance():
    # beside a Pusher dataset the eval table has a final_distance column, empty on OGBench rows
    rows = headline(ci_table(_ogbench_evals().assign(final_distance=np.nan)))
    fql = rows.set_index("question").loc["FQL reflow (onestep policy) minus the best BC policy"]
    assert fql["metric"] == "success" and fql["difference"] == pytest.approx(0.4)
    assert fql["b"] == "bc mlp mlp K=1" and fql["b_mean"] == pytest.approx(0.2)
    assert fql["a_ci_low"] < fql["a_mean"] < fql["a_ci_high"] and np.isnan(fql["a_final_distance"])


def _rl_evals(mfql_success: float) -> pd.DataFrame:
    """Final evaluations of FQL from each flow and of MFQL: success per episode and acting latency."""
    rows = []
    runs = {
        ("fql", "reflow", "onestep"): 0.5,
        ("fql", "meanflow", "onestep"): 0.3,
        ("mfql", "meanflow", "flow"): None,
    }
    for (stage, flow, policy), success in runs.items():
        p = mfql_success if success is None else success
        for e in range(40):
            latency = 2.0 if stage == "mfql" else 1.0
            rows.append(
                dict(stage=stage, dataset="cube", env_id="cube-v0", flow=flow, policy=policy, seed=0,
                     inference_steps=1, episode=e, success=float(e < p * 40), latency_ms=latency)
            )  # fmt: skip
    return pd.DataFrame(rows)


def _rl_train(rates: dict[tuple[str, str], float]) -> pd.DataFrame:
    """Train-CSV rows of each (stage, flow) at `rates` updates/s, an evaluation every other row (its wall
    time includes 100 s of rollouts, which the updates/s leave out), success rising with the step."""
    rows = []
    for (stage, flow), rate in rates.items():
        for seed in (0, 1):
            wall = 0.0
            for i in range(1, 7):
                wall += 1000 / rate + (100 if i % 2 == 0 else 0)
                row = dict(stage=stage, dataset="cube", flow=flow, seed=seed, step=1000 * i, wall_s=wall)
                if i % 2 == 0:
                    row["eval/success"] = i / 10 + 0.05 * seed
                rows.append(row)
    return pd.DataFrame(rows)


@pytest.mark.parametrize(("mfql_success", "holds"), [(0.45, True), (0.2, False)])
def test_headline_compares_meanflow_methods_with_fql_from_reflow(mfql_success, holds):
    rates = {("fql", "reflow"): 20.0, ("fql", "meanflow"): 30.0, ("mfql", "meanflow"): 40.0}
    table = ci_table(_rl_evals(mfql_success))
    rows = headline(table, train=_rl_train(rates))
    mfql = rows[rows["stage"] == "mfql"].set_index("metric")
    assert mfql.loc["success", "difference"] == pytest.approx(mfql_success - 0.5)
    assert mfql.loc["success", "holds"] == holds  # within FQL-ReFlow's interval, or not
    assert mfql.loc["updates_per_s", "difference"] == pytest.approx(2.0)  # evaluation time left out
    assert "latency_ms" not in mfql.index  # one network evaluation each: no latency question
    fql_meanflow = rows[(rows["stage"] == "fql") & rows["question"].str.startswith("FQL from MeanFlow minus")]
    assert fql_meanflow["difference"].iloc[0] == pytest.approx(-0.2)
    assert rows[
        rows["question"].str.startswith("FQL from ReFlow")
    ].empty  # the reference is no row of its own


def _qc_evals() -> pd.DataFrame:
    """Final evaluations as the pipeline writes them (each run as it acted: `run_candidates`): FQL from
    the ReFlow at 1 step; QC over the ReFlow with 8 candidates at 10 steps (latency 8 ms) and the flow
    alone beside it (an `eval --candidates 1` row); QC over the MeanFlow at 1 step (1 ms)."""
    rows = []
    runs = {
        ("fql", "reflow", "onestep", 1, 1, 1): (0.3, 0.5),
        ("qc", "reflow", "flow", 10, 8, 8): (0.6, 8.0),
        ("qc", "reflow", "flow", 10, 1, 8): (0.05, 1.0),  # not as it acts: no headline row reads it
        ("qc", "meanflow", "flow", 1, 8, 8): (0.5, 1.0),
    }
    for (stage, flow, policy, k, n, own), (p, latency) in runs.items():
        for e in range(40):
            rows.append(
                dict(stage=stage, dataset="cube", env_id="cube-v0", flow=flow, policy=policy, seed=0,
                     inference_steps=k, candidates=n, run_candidates=own, episode=e,
                     success=float(e < p * 40), latency_ms=latency)
            )  # fmt: skip
    return pd.DataFrame(rows)


def test_headline_compares_meanflow_methods_with_qc_over_reflow_too():
    rates = {("fql", "reflow"): 20.0, ("qc", "reflow"): 5.0, ("qc", "meanflow"): 15.0}
    rows = headline(ci_table(_qc_evals()), train=_rl_train(rates)).set_index("question")
    qc_reflow = rows.loc["QC over ReFlow minus FQL from ReFlow (acting policies, as they act)"]
    assert qc_reflow["difference"] == pytest.approx(0.3)  # at its 10 steps, its 8 candidates
    assert qc_reflow["a"] == "qc reflow flow K=10"
    against_qc = rows.loc["QC over MeanFlow minus QC over ReFlow (acting policies, as they act)"]
    assert against_qc["difference"] == pytest.approx(-0.1)
    speed = rows.loc["QC over MeanFlow updates/s divided by QC over ReFlow's (same run)"]
    assert speed["difference"] == pytest.approx(3.0) and speed["holds"]
    latency = rows.loc["QC over ReFlow's acting latency divided by QC over MeanFlow's (ms per chunk)"]
    assert latency["difference"] == pytest.approx(8.0) and latency["holds"]  # >= 5x lower
    assert latency["metric"] == "latency_ms"


def test_rl_figure_has_a_panel_per_quantity_and_refuses_a_single_method(tmp_path):
    import matplotlib.image as mpimg

    from myreinflow.analysis.figures import plot_rl

    rates = {("fql", "reflow"): 20.0, ("mfql", "meanflow"): 40.0}
    train, table = _rl_train(rates), ci_table(_rl_evals(0.45))
    plot_rl(train, table, tmp_path / "rl.png")
    assert mpimg.imread(tmp_path / "rl.png").shape[1] > 1000
    with pytest.raises(UserError, match="two critic-based methods"):
        plot_rl(train[train["stage"] == "fql"], table, tmp_path / "one.png")


def test_training_speed_of_a_run_that_evaluated_at_every_row():
    from myreinflow.analysis.runs import training_speed

    train = pd.DataFrame(
        [dict(stage="fql", dataset="d", flow="reflow", seed=0, step=40, wall_s=8.0, **{"eval/success": 0.0})]
    )
    assert training_speed(train)["updates_per_s"].iloc[0] == pytest.approx(5.0)  # not NaN: a panel has data


def test_learning_curve_markers_do_not_hide_each_other(monkeypatch, tmp_path):
    """Two flows with the same evaluation at the same steps (a success of 0, as BC on cube-single): each
    marker drawn at its own position; the losses stay at their steps."""
    from myreinflow.analysis.figures import plot_curves, style

    train = pd.DataFrame(
        [dict(stage="bc", dataset="cube", flow=f, seed=0, step=s, **{"train/loss": 0.1, "eval/success": 0.0})
         for f in ("reflow", "meanflow") for s in (1000, 2000)]
    )  # fmt: skip
    drawn = []
    monkeypatch.setattr(style, "save", lambda g, out, title: drawn.append(g))
    plot_curves(train, tmp_path / "c.png")
    (g,) = drawn
    loss_ax, score_ax = g.axes[:, 0]
    markers = [tuple(xy) for line in score_ax.get_lines() for xy in line.get_xydata()]
    assert len(markers) == 4 and len(set(markers)) == 4
    assert {x for line in loss_ax.get_lines() for x, _ in line.get_xydata()} == {1000, 2000}


def test_headline_online_stages_against_their_offline_start():
    """FQL online and ReinFlow rows: the acting policy after minus the same policy before (an FQL run's
    one-step policy; ReinFlow's BC flow where there is no FQL stage, at the best steps of each)."""
    evals = _evals(
        {
            ("fql", "reflow", "onestep", 1): [0.3, 0.4],
            ("fql", "reflow", "flow", 1): [0.1, 0.1],
            ("fql_online", "reflow", "onestep", 1): [0.7, 0.8],
            ("fql_online", "reflow", "flow", 1): [0.0, 0.0],  # the flow does not act online: no row
            ("reinflow", "reflow", "onestep", 1): [0.5, 0.6],
            ("bc", "meanflow", "flow", 1): [0.2, 0.2],
            ("bc", "meanflow", "flow", 4): [0.4, 0.4],
            ("reinflow", "meanflow", "flow", 1): [0.5, 0.5],
            ("reinflow", "meanflow", "flow", 4): [0.3, 0.3],
        }
    )
    rows = headline(ci_table(evals)).set_index("question")
    online = rows.filter(like="minus offline", axis=0)
    assert sorted(online.index) == [
        "FQL online minus offline FQL (ReFlow one-step policy)",
        "ReinFlow minus offline BC (MeanFlow flow)",
        "ReinFlow minus offline FQL (ReFlow one-step policy)",
    ]
    fql = online.loc["FQL online minus offline FQL (ReFlow one-step policy)"]
    assert fql["difference"] == pytest.approx(0.4) and fql["holds"]
    assert online.loc["ReinFlow minus offline FQL (ReFlow one-step policy)", "difference"] == pytest.approx(
        0.2
    )
    bc = online.loc["ReinFlow minus offline BC (MeanFlow flow)"]
    assert (bc["a"], bc["b"]) == ("reinflow meanflow flow K=1", "bc meanflow flow K=4")
    assert bc["difference"] == pytest.approx(0.1)


def _online_train() -> pd.DataFrame:
    """An FQL online run (two offline rows, then online ones at 10 env steps/s) and a ReinFlow run (an
    evaluation at env step 0, then at 100 env steps/s), two seeds each."""
    rows = []
    for seed in (0, 1):
        base = dict(dataset="cube", flow="reflow", seed=seed)
        rows += [
            base | dict(stage="fql_online", step=100, wall_s=50.0, **{"eval/success": 0.1}),
            base | dict(stage="fql_online", step=200, wall_s=100.0, **{"eval/success": 0.3 + seed / 10}),
        ]
        for env_steps in (1000, 2000):
            online = {"online/env_steps": env_steps, "eval/success": 0.5}
            rows.append(
                base | dict(stage="fql_online", step=200 + env_steps, wall_s=100.0 + env_steps / 10, **online)
            )
        for env_steps in (0, 1000, 2000):
            online = {"online/env_steps": env_steps, "eval/success": 0.2 + env_steps / 10_000}
            rows.append(base | dict(stage="reinflow", step=env_steps, wall_s=5.0 + env_steps / 100, **online))
    return pd.DataFrame(rows)


def test_online_curves_start_at_the_offline_policy_and_share_their_time_axis(tmp_path):
    import matplotlib.image as mpimg

    from myreinflow.analysis.figures import plot_online

    lines = curves.online_curves(_online_train())
    fql = lines[(lines["stage"] == "fql_online") & (lines["seed"] == 1)]
    assert fql["env_steps"].tolist() == [0, 1000, 2000]  # the last offline evaluation, then online ones
    assert fql["value"].iloc[0] == pytest.approx(0.4)
    assert fql["minutes"].tolist() == pytest.approx([0, 100 / 60, 200 / 60])  # 10 env steps/s
    reinflow = lines[lines["stage"] == "reinflow"]
    assert reinflow.groupby("env_steps")["minutes"].nunique().eq(1).all()  # seeds share their x values
    assert reinflow["minutes"].max() == pytest.approx(20 / 60)  # 100 env steps/s
    assert set(lines["metric"]) == {"success"}
    plot_online(_online_train(), tmp_path / "online.png")
    assert mpimg.imread(tmp_path / "online.png").shape[1] > 1000
    with pytest.raises(UserError, match="no evaluations of online runs"):
        plot_online(_online_train().assign(stage="fql"), tmp_path / "none.png")


def test_run_numbers_are_the_mean_of_the_last_three_evaluations_with_seed_and_episode_intervals():
    from scipy import stats

    from myreinflow.analysis.runs import run_numbers

    rows = []
    for seed, successes in enumerate([(0.0, 0.2, 0.4, 0.6), (0.0, 0.4, 0.4, 0.4), (0.2, 0.0, 0.2, 0.2)]):
        for i, value in enumerate(successes):
            rows.append(dict(stage="qc", dataset="cube", flow="reflow", seed=seed, step=100 * (i + 1)))
            rows.append(rows[-1] | {"step": 100 * (i + 1), "eval/success": value})
    rows.append(dict(stage="bc", dataset="cube", flow="reflow", seed=0, step=100, **{"eval/success": 1.0}))
    episodes = {("qc", "cube", "reflow", s): 50 for s in range(3)}
    table = run_numbers(pd.DataFrame(rows), episodes)
    runs = table[table["level"] == "run"].set_index("seed")
    assert list(runs.index) == [0, 1, 2] and set(table["stage"]) == {"qc"}  # BC has no critic
    assert runs.loc[0, "mean"] == pytest.approx(0.4) and runs.loc[0, "last_steps"] == "200/300/400"
    assert runs.loc[0, "episodes"] == 150
    method = table[table["level"] == "method"].iloc[0]
    values = np.array([0.4, 0.4, 0.4 / 3])
    half = stats.t.ppf(0.975, 2) * values.std(ddof=1) / np.sqrt(3)
    assert method["mean"] == pytest.approx(values.mean())
    assert (method["t_low"], method["t_high"]) == (
        pytest.approx(values.mean() - half),
        pytest.approx(values.mean() + half),
    )
    # Wilson's interval of 140 successes in 450 episodes, by its formula
    p, n, z = 140 / 450, 450, stats.norm.ppf(0.975)
    centre, spread = (
        (p + z**2 / (2 * n)) / (1 + z**2 / n),
        z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n),
    )
    assert method["episodes"] == 450 and method["wilson_low"] == pytest.approx(centre - spread)
    assert method["wilson_high"] == pytest.approx(centre + spread)


# --- the data the figures draw (analysis.curves): known answers on small frames ---------------------------


def test_every_figure_stem_has_a_plot_and_summary_inputs():
    from myreinflow.analysis.figures import PLOTS
    from myreinflow.names import FIGURES

    assert list(PLOTS) == list(FIGURES)
    summaries = {"table", "eval", "train", "toy2d"}  # results/summary/{name}.csv
    assert all(set(f["inputs"]) <= summaries and f["category"] and f["labels"] for f in FIGURES.values())


def test_figure_help_names_every_stem(capsys):
    from myreinflow.names import FIGURES

    with pytest.raises(SystemExit):
        main(["summarize", "figure", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert all(stem in text for stem in FIGURES)


def test_panels_are_offline_stages_in_figure_order():
    frame = pd.DataFrame(
        {"dataset": ["b", "b", "a", "a", "a", "a"], "stage": ["qc", "bc", "fql", "reinflow", "bc", "bc"]}
    )
    got = curves.panels(frame)
    assert got["panel"].tolist() == ["a · BC", "a · FQL", "b · BC", "b · QC"]  # no online stage


def _summary(rows) -> pd.DataFrame:
    """table.csv rows (stage, flow, policy, K, metric, mean) on dataset d, with a CI of ± 0.1."""
    table = pd.DataFrame(rows, columns=["stage", "flow", "policy", "inference_steps", "metric", "mean"])
    return table.assign(dataset="d", ci_low=table["mean"] - 0.1, ci_high=table["mean"] + 0.1, n=10)


def test_steps_panels_put_the_mlp_baseline_in_every_panel_of_its_dataset():
    table = _summary(
        [("bc", "reflow", "flow", 1, "success", 0.2), ("bc", "mlp", "mlp", 1, "success", 0.3),
         ("fql", "reflow", "flow", 1, "success", 0.5), ("fql", "reflow", "flow", 1, "return", 9.0)]
    )  # fmt: skip
    data = curves.steps_panels(table, ["success"])
    got = sorted(zip(data["panel"], data["stage_of_row"], data["flow"], strict=True))
    assert got == [("d · BC", "bc", "mlp"), ("d · BC", "bc", "reflow"), ("d · FQL", "bc", "mlp"),
                   ("d · FQL", "fql", "reflow")]  # fmt: skip


def test_latency_runs_average_a_rollout_and_keep_offline_stages():
    evals = pd.DataFrame(
        [dict(stage=s, dataset="d", flow="reflow", policy="flow", seed=0, inference_steps=2, episode=e,
              latency_ms=ms) for s in ("bc", "reinflow") for e, ms in enumerate((1.0, 3.0))]
    )  # fmt: skip
    runs = curves.latency_runs(evals)
    assert runs[["stage", "latency_ms", "panel"]].values.tolist() == [["bc", 2.0, "BC policies"]]


def test_bc_to_fql_points_at_their_best_steps_dodged_by_flow():
    table = _summary(
        [("bc", "reflow", "flow", 1, "success", 0.1), ("bc", "reflow", "flow", 4, "success", 0.3),
         ("fql", "reflow", "flow", 4, "success", 0.4), ("fql", "reflow", "onestep", 1, "success", 0.6),
         ("bc", "meanflow", "flow", 1, "success", 0.2), ("fql", "meanflow", "onestep", 1, "success", 0.5),
         ("bc", "mlp", "mlp", 1, "success", 0.25)]
    )  # fmt: skip
    points, mlp, datasets, metrics = curves.bc_to_fql(table)
    got = {(r.flow, r.variant): (r.inference_steps, round(r.x, 2)) for r in points.itertuples()}
    # ReFlow's BC flow at its best K = 4; ReFlow left of each variant, MeanFlow right of it
    assert got == {("reflow", 0): (4, -0.11), ("reflow", 1): (4, 0.89), ("reflow", 2): (1, 1.89),
                   ("meanflow", 0): (1, 0.11), ("meanflow", 2): (1, 2.11)}  # fmt: skip
    assert mlp["mean"].tolist() == [0.25] and datasets == ["d"] and metrics == ["success"]


def test_learning_curves_name_each_policy_and_dodge_only_evaluations():
    train = pd.DataFrame(
        [dict(stage="fql", dataset="d", flow=f, seed=0, step=s,
              **{"train/loss": 0.5, "eval/success": 0.0, "eval_flow/success": 0.1})
         for f in ("reflow", "meanflow") for s in (100, 200)]
    )  # fmt: skip
    lines = curves.learning_curves(train)
    assert set(zip(lines["quantity"], lines["policy"], strict=True)) == {
        (curves.LOSS, "training loss"), (curves.SCORE, "one-step policy"), (curves.SCORE, "fine-tuned flow")
    }  # fmt: skip
    moved = curves.dodge(lines.assign(panel="d · FQL"))
    loss = moved[moved["quantity"] == curves.LOSS]
    assert set(loss["step"]) == {100, 200}  # losses stay at their steps
    # four (flow, policy) pairs, centred: offsets -1.5 … 1.5 times 2 % of the panel's last step (200)
    at_200 = moved[(moved["quantity"] == curves.SCORE) & (lines["step"] == 200)]
    assert sorted(at_200["step"]) == pytest.approx([194.0, 198.0, 202.0, 206.0])


def test_rl_curves_leave_evaluation_time_out_of_the_seconds():
    train = _rl_train({("fql", "reflow"): 20.0, ("mfql", "meanflow"): 40.0})
    speed = curves.method_speed(train)
    assert speed["updates_per_s"].tolist() == pytest.approx([20.0, 40.0])
    lines = curves.rl_curves(train, speed)
    fql = lines[(lines["method"] == "FQL from ReFlow") & (lines["seed"] == 1)]
    assert fql["step"].tolist() == [2000, 4000, 6000]
    assert fql["seconds"].tolist() == pytest.approx([100.0, 200.0, 300.0])  # 20 updates/s
    assert fql["value"].tolist() == pytest.approx([0.25, 0.45, 0.65]) and set(fql["metric"]) == {"success"}
    assert curves.rl_datasets(lines) == ["cube"]
    with pytest.raises(UserError, match="two critic-based methods"):
        curves.rl_datasets(lines[lines["method"] == "FQL from ReFlow"])


def test_rl_finals_are_each_method_as_it_acts_with_its_speed():
    train = _rl_train({("fql", "reflow"): 20.0, ("mfql", "meanflow"): 40.0})
    table = ci_table(_rl_evals(0.45))
    bars = curves.rl_finals(table, curves.method_speed(train), "cube", "success")
    assert bars["method"].tolist() == ["FQL from ReFlow", "MeanFlow-QL"]  # FQL from MeanFlow: no train rows
    assert bars["label"].tolist() == ["FQL from\nReFlow\n20.0/s", "MeanFlow-QL\n40.0/s"]
    assert bars["mean"].tolist() == pytest.approx([0.5, 0.45])


def test_toy2d_lines_name_models_and_reference_levels():
    toy = pd.DataFrame(
        [dict(distribution="moons", flow=f, inference_steps=k, metric=m, value=1.0)
         for f in ("reflow", "noise", "data") for m in ("zeta", "straightness", "swd") for k in (1, 2)]
    )  # fmt: skip
    data, metrics = curves.toy2d_lines(toy)
    assert metrics == ["swd", "straightness", "zeta"]  # the known metrics first, in their order
    assert not len(data[(data["flow"] != "reflow") & (data["metric"] == "straightness")])
    labels = data.drop_duplicates("flow").set_index("flow")[["label", "ls"]].to_dict("index")
    assert labels == {"reflow": {"label": "ReFlow", "ls": "-"},
                      "noise": {"label": "N(0, I) noise", "ls": "--"},
                      "data": {"label": "second draw of the target (floor)", "ls": ":"}}  # fmt: skip


def test_save_writes_atomically_with_a_plain_files_permissions(tmp_path):
    import os

    from matplotlib.figure import Figure

    from myreinflow.analysis.figures.style import save

    out = tmp_path / "sub" / "f.png"
    fig = Figure()
    fig.subplots().plot([0, 1], [1, 0])
    save(fig, out, "a title")
    umask = os.umask(0)
    os.umask(umask)
    assert out.read_bytes()[:4] == b"\x89PNG" and out.stat().st_mode & 0o777 == 0o666 & ~umask
    assert fig.get_suptitle() == "a title" and os.listdir(out.parent) == ["f.png"]  # no temp file left
