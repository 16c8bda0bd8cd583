"""The study's questions in numbers (headline.csv): one row per comparison, per dataset, each side's
label, mean, 95 % interval and final distance, the difference and whether it holds."""

from __future__ import annotations

import pandas as pd

from myreinflow.analysis.runs import training_speed
from myreinflow.analysis.tables import as_trained, best_steps, headline_metric, policy_rows
from myreinflow.names import (
    CONTROL_STAGES,
    CONTROL_WORDS,
    CRITIC_METHODS,
    FLOW_LABELS,
    ONLINE_STAGES,
    QC_REFERENCE,
    RL_REFERENCE,
    STAGE_NAMES,
)


def rl_headline(table: pd.DataFrame, train: pd.DataFrame | None) -> list[dict]:
    """ReFlow vs MeanFlow in RL, per dataset, against two references where they ran: FQL from the ReFlow
    (every other critic-based method) and QC over the ReFlow (the strongest multi-step method, against
    each MeanFlow-based one). Per pair: the method's acting policy (as it acts: its steps K and its
    best-of-N) minus the reference's in the headline metric (holds when its mean reaches the reference's
    95 % interval), the updates/s ratio (from the same run's train CSVs; holds at ≥ 1.5) and, against QC
    over the ReFlow (N·K network evaluations per chunk), the acting-latency ratio (holds at ≥ 5). The
    one-evaluation methods get no latency row against FQL: their sub-millisecond timings of one rollout
    are noise at that scale (docs/algorithms/fql.md, "Results")."""
    rows = []
    speed = training_speed(train) if train is not None and len(train) else None
    references = {RL_REFERENCE: [m for m in CRITIC_METHODS if m != RL_REFERENCE]}
    references[QC_REFERENCE] = [m for m in CRITIC_METHODS if m[1] == "meanflow"]
    for dataset in sorted(table["dataset"].unique()):
        metric = headline_metric(table[table["dataset"] == dataset])
        for reference, methods in references.items():
            ref, ref_name = _acting(table, dataset, reference, metric), CRITIC_METHODS[reference][1]
            for method in methods if ref is not None else ():
                ours, name = _acting(table, dataset, method, metric), CRITIC_METHODS[method][1]
                if ours is None:
                    continue
                rows.append(
                    {
                        "dataset": dataset,
                        "stage": method[0],
                        "metric": metric,
                        "question": f"{name} minus {ref_name} (acting policies, as they act)",
                        **_side("a", table, ours),
                        **_side("b", table, ref),
                        "difference": float(ours["mean"] - ref["mean"]),
                        "holds": bool(ours["mean"] >= ref["ci_low"]) if pd.notna(ref["ci_low"]) else None,
                        "criterion": "a's mean >= b's 95 % CI low",
                    }
                )
                rows += _ratio_rows(table, speed, dataset, method, reference)
    return rows


def _acting(table: pd.DataFrame, dataset: str, method: tuple[str, str], metric: str):
    """The summary row of a critic-based `method`'s acting policy on `dataset` in `metric`, as it acts
    (its CRITIC_METHODS policy and steps), or None."""
    policy, _, steps = CRITIC_METHODS[method]
    hit = policy_rows(table, method[0], dataset, method[1], policy, steps, metric)
    return hit.iloc[0] if len(hit) else None


def _rate(speed: pd.DataFrame | None, dataset: str, method: tuple[str, str]) -> float | None:
    """A method's updates per second on `dataset`, the mean over its runs (None without them)."""
    if speed is None:
        return None
    runs = speed[(speed["stage"] == method[0]) & (speed["dataset"] == dataset) & (speed["flow"] == method[1])]
    return float(runs["updates_per_s"].mean()) if len(runs) else None


def _ratio_rows(
    table, speed, dataset: str, method: tuple[str, str], reference: tuple[str, str]
) -> list[dict]:
    """`method` against `reference` on `dataset` as ratios: updates/s (holds at ≥ 1.5) and, against QC over
    the ReFlow, the reference's acting latency over the method's (holds at ≥ 5)."""
    name, ref_name = CRITIC_METHODS[method][1], CRITIC_METHODS[reference][1]
    # (metric, question, a, its value, b, its value, the bound a / b must reach)
    ratios = [
        ("updates_per_s", f"{name} updates/s divided by {ref_name}'s (same run)")
        + (name, _rate(speed, dataset, method), ref_name, _rate(speed, dataset, reference), 1.5)
    ]
    if reference == QC_REFERENCE:
        latency = [_acting(table, dataset, m, "latency_ms") for m in (reference, method)]
        ms = [None if x is None else float(x["mean"]) for x in latency]
        question = f"{ref_name}'s acting latency divided by {name}'s (ms per chunk)"
        ratios.append(("latency_ms", question, ref_name, ms[0], name, ms[1], 5))
    rows = []
    for what, question, a_name, a, b_name, b, bound in ratios:
        if a is None or b is None or b <= 0:
            continue
        rows.append(
            {
                "dataset": dataset,
                "stage": method[0],
                "metric": what,
                "question": question,
                "a": a_name,
                "a_mean": a,
                "b": b_name,
                "b_mean": b,
                "difference": a / b,
                "holds": bool(a / b >= bound),
                "criterion": f"ratio >= {bound}",
            }
        )
    return rows


def online_headline(table: pd.DataFrame, best: pd.DataFrame) -> list[dict]:
    """Online fine-tuning, per dataset, online stage and flow, in the dataset's headline metric (with
    final distances where the env has them): the acting policy after the online stage minus the same
    policy before it (an online run's against its offline run's, as it acts: CRITIC_METHODS' steps; a
    ReinFlow run's against the policy it started from, each at its best steps) and, where the control
    ran, minus the control's: the lift the env's data bought beyond the extra updates."""
    controls = {online: control for control, online in CONTROL_STAGES.items()}
    rows = []
    for dataset in sorted(table["dataset"].unique()):
        metric = headline_metric(table[table["dataset"] == dataset])
        at = best[(best["dataset"] == dataset) & (best["metric"] == metric)]
        for stage, (name, acting) in ONLINE_STAGES.items():
            for _, run in at[
                (at["stage"] == stage) & (at["policy"] == acting if acting else True)
            ].iterrows():
                flow, policy = run["flow"], run["policy"]
                if stage in controls:  # against its offline run, then its control, as it acts
                    start = stage.removesuffix("_online")
                    steps = CRITIC_METHODS[(start, flow)][2]
                    versus = {start: f"offline {STAGE_NAMES[start]}", controls[stage]: CONTROL_WORDS}
                else:  # ReinFlow: against the policy it started from, each at its best steps
                    start, steps = ("fql" if policy == "onestep" else "bc"), None
                    versus = {start: f"offline {STAGE_NAMES[start]}"}
                after = _policy_row(table, at, stage, dataset, flow, policy, steps, metric)
                what = "one-step policy" if policy == "onestep" else "flow"
                for other, other_name in versus.items():
                    before = _policy_row(table, at, other, dataset, flow, policy, steps, metric)
                    if after is None or before is None:
                        continue
                    question = f"{name} minus {other_name} ({FLOW_LABELS.get(flow, flow)} {what})"
                    rows.append(_gain_row(table, dataset, stage, metric, question, after, before))
    return rows


def _policy_row(table, best, stage, dataset, flow, policy, steps, metric):
    """The summary row of `stage`'s `policy` of `flow` at `steps` on `dataset` (None: at its best steps,
    from `best`), or None."""
    if steps is None:
        hit = best[(best["stage"] == stage) & (best["dataset"] == dataset) & (best["flow"] == flow)]
        hit = hit[hit["policy"] == policy]
    else:
        hit = policy_rows(table, stage, dataset, flow, policy, steps, metric)
    return hit.iloc[0] if len(hit) else None


SIDE_COLUMNS = ("", "_mean", "_ci_low", "_ci_high", "_final_distance")
HEADLINE_COLUMNS = [
    *("dataset", "stage", "metric", "question"),
    *(f"{side}{suffix}" for side in "ab" for suffix in SIDE_COLUMNS),
    *("difference", "holds", "criterion"),
]


def headline(table: pd.DataFrame, tolerance: float = 0.05, train: pd.DataFrame | None = None) -> pd.DataFrame:
    """The study's questions in numbers, one row each, per dataset:

    - MeanFlow at 1 step against ReFlow at its best number of steps (BC and FQL flows);
    - FQL's policies against the BC flow they started from and against the best BC policy;
    - ReFlow vs MeanFlow in RL (`rl_headline`, with `train`: the train summary, for updates/s);
    - online fine-tuning against its offline start (`online_headline`).

    Each dataset's `headline_metric` (normalized score, or success rate on OGBench tasks), with the
    final distance (when the env has it) at the same steps.
    """
    table = as_trained(table)
    best = best_steps(table)
    rows = []
    for dataset in sorted(table["dataset"].unique()):
        metric = headline_metric(table[table["dataset"] == dataset])
        rows += _flow_rows(table, best, dataset, metric, tolerance)
        if "fql" in set(table["stage"]):
            rows += _fql_rows(table, best, dataset, metric)
    rows += rl_headline(table, train)
    rows += online_headline(table, best)
    frame = pd.DataFrame(rows, columns=HEADLINE_COLUMNS)
    frame["difference"] = frame["difference"].astype(float).round(4)
    return frame


def _flow_rows(table, best, dataset: str, metric: str, tolerance: float) -> list[dict]:
    """Per stage: MeanFlow at 1 step minus ReFlow at its best steps (holds within `tolerance`)."""
    rows = []
    for stage in sorted(table["stage"].unique()):
        ref = best[(best["stage"] == stage) & (best["dataset"] == dataset) & (best["flow"] == "reflow")]
        ref = ref[ref["policy"] == "flow"]
        mf = policy_rows(table, stage, dataset, "meanflow", "flow", 1, metric)
        if len(ref) and len(mf):
            gap = float(mf["mean"].iloc[0] - ref["mean"].iloc[0])
            rows.append(
                {
                    "dataset": dataset,
                    "stage": stage,
                    "metric": metric,
                    "question": "MeanFlow at 1 step minus ReFlow at its best steps",
                    **_side("a", table, mf.iloc[0]),
                    **_side("b", table, ref.iloc[0]),
                    "difference": gap,
                    "holds": bool(gap >= -tolerance),
                    "criterion": f"difference >= -{tolerance}",
                }
            )
    return rows


def _fql_rows(table, best, dataset: str, metric: str) -> list[dict]:
    """Each FQL policy (at its best steps) minus the BC flow it started from and minus the best BC policy
    (naming every BC policy tied with it)."""
    bc = best[(best["stage"] == "bc") & (best["dataset"] == dataset)]
    if not len(bc):
        return []
    top = bc.loc[bc["mean"].idxmax()]
    # every other BC policy at the same mean: the best BC policy is a tie, said so
    others = bc[(bc["mean"] == top["mean"]) & (bc.index != top.name)]
    top_ties = [_label(r) for _, r in others.iterrows()]
    rows = []
    for _, fql in best[(best["stage"] == "fql") & (best["dataset"] == dataset)].iterrows():
        start = bc[(bc["flow"] == fql["flow"]) & (bc["policy"] == "flow")]
        refs = [("the BC flow it started from", r) for _, r in start.iterrows()]
        for name, ref in refs + [("the best BC policy", top)]:
            tied = top_ties if name == "the best BC policy" else []
            question = f"FQL {fql['flow']} ({fql['policy']} policy) minus {name}"
            rows.append(_gain_row(table, dataset, "fql", metric, question, fql, ref, tied))
    return rows


def _label(row) -> str:
    """'stage flow policy K=k' of a table row."""
    return f"{row['stage']} {row['flow']} {row['policy']} K={int(row['inference_steps'])}"


def _gain_row(table, dataset, stage, metric, question, a, b, tied_b: list[str] = ()) -> dict:
    """A headline row asking whether side `a` is above side `b` (`tied_b`: policies tied with `b`)."""
    return {
        "dataset": dataset,
        "stage": stage,
        "metric": metric,
        "question": question,
        **_side("a", table, a),
        **_side("b", table, b, tied_b),
        "difference": float(a["mean"] - b["mean"]),
        "holds": bool(a["mean"] > b["mean"]),
        "criterion": "difference > 0",
    }


def _side(prefix: str, table: pd.DataFrame, row, tied: list[str] = ()) -> dict:
    """One side of a headline comparison as columns: `prefix` (its label: stage flow policy K, with any
    policies tied with it named), `prefix`_mean, _ci_low, _ci_high and _final_distance (metres, where
    the env has it)."""
    k = int(row["inference_steps"])
    d = policy_rows(table, row["stage"], row["dataset"], row["flow"], row["policy"], k, "final_distance")
    return {
        prefix: " = ".join([_label(row), *tied]) + (" (tie)" if tied else ""),
        f"{prefix}_mean": float(row["mean"]),
        f"{prefix}_ci_low": float(row["ci_low"]),
        f"{prefix}_ci_high": float(row["ci_high"]),
        f"{prefix}_final_distance": float(d["mean"].iloc[0]) if len(d) else float("nan"),
    }
