"""What the report's landing page (workflow/report/workflow.rst) says: the study in words, from the
config, and the headline numbers, from this run's results/summary/headline.csv when it exists. Both go
into `config["_report"]` (after validation), the one thing the page's template can read.
"""

import csv

# how long a stage trains, by its option: (option, unit)
BUDGETS = {
    **{f"{algo}_online": ("online_steps", "env steps") for algo in CRITIC_STAGES},
    **{
        f"{algo}_continued": ("online_steps", "steps without the env")
        for algo in CRITIC_STAGES
    },
    "reinflow": ("env_steps", "env steps"),
}


def _study_lines():
    """One line per dataset entry: what is trained on it, for how long, and how it is evaluated."""
    lines = []
    for name, d in DATASETS.items():
        task = f", task {d['task']}" if d.get("task") else ""
        stages = []
        for stage in STAGES[name]:
            trained = flows(stage, name)
            key, unit = BUDGETS.get(stage, ("epochs", "passes over the data"))
            # a control's budget is its online run's
            source = f"{offline_stage(stage)}_online" if offline_stage(stage) else stage
            amount = options(source, name, trained[0]).get(key)
            who = ", ".join(FLOW_LABELS[f] for f in trained)
            budget = f", {amount:,} {unit}" if amount is not None else ""
            stages.append(f"{STAGE_WORDS[stage]} of {who}{budget}")
        e = eval_settings(name)
        steps = ", ".join(str(k) for k in e["inference_steps"])
        lines.append(
            f"**{name}** (``{d['id']}``{task}): {'; then '.join(stages)}. Evaluation: "
            f"{e['episodes']} episodes per policy and number of flow steps K = {steps}."
        )
    return lines


def _key_question(row):
    """The rows the landing page shows: MeanFlow at 1 step against ReFlow in BC, each FQL one-step
    policy against the best BC policy, and the ReFlow-vs-MeanFlow rows in RL (headline.csv has them all).
    """
    question = row["question"]
    if question.startswith("MeanFlow at 1 step"):
        return row["stage"] == "bc"
    if question.startswith("FQL ") and "policy) minus" in question:
        return "(onestep policy) minus the best BC policy" in question
    return True


def _number(text):
    """A CSV cell as a float (an empty cell: NaN)."""
    return float(text) if text else float("nan")


def _cell(row, side, unit):
    """'label: mean [95 % CI]' of one side of a headline row (its numeric columns)."""
    mean, low, high = (
        _number(row[f"{side}{s}"]) for s in ("_mean", "_ci_low", "_ci_high")
    )
    if unit:
        return f"{row[side]}: {mean:.1f} {unit}"
    interval = f" [{low:.3f}, {high:.3f}]" if low == low and high == high else ""
    return f"{row[side]}: {mean:.3f}{interval}"


def _headline_rows(path="results/summary/headline.csv"):
    """The headline CSV's rows as text cells (differences rounded), or none before a run made it."""
    if not os.path.isfile(path):
        return []
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if "a_mean" not in (
            reader.fieldnames or []
        ):  # written by an older version: no numbers to show
            return []
        rows = [row for row in reader if _key_question(row)]
    for row in rows:
        ratio = row["metric"] in ("updates_per_s", "latency_ms")
        diff = _number(row["difference"])
        row["difference"] = f"{diff:.2f}×" if ratio else f"{diff:+.3f}"
        row["holds"] = {"True": "yes", "False": "no"}.get(row["holds"], "—")
        unit = {"updates_per_s": "updates/s", "latency_ms": "ms per chunk"}.get(
            row["metric"], ""
        )
        for side in "ab":
            row[side] = _cell(row, side, unit)
    return rows


# the offline budget of the FQL, Q-chunking and MeanFlow-QL papers' OGBench results
PAPERS_UPDATES = 1_000_000


def _reach(path="results/summary/train.csv"):
    """What this run's numbers can carry, in sentences: the critic-based runs' updates against the
    papers' budget, and the number of training seeds behind each interval (none before a run).
    """
    if not os.path.isfile(path):
        return []
    import pandas as pd

    train = pd.read_csv(path, usecols=lambda c: c in ("stage", "flow", "seed", "step"))
    critic = train[train["stage"].isin(CRITIC_STAGES)]
    lines = []
    if len(critic):
        updates = critic.groupby(["stage", "flow"])["step"].max()
        each = ", ".join(
            f"{STAGE_NAMES[stage]} from {FLOW_LABELS[flow]} {n:,}"
            for (stage, flow), n in updates.items()
        )
        onset = (
            " On OGBench cube-single every method is at 0 % success until about 20,000 updates."
            if any("cube" in d["id"] for d in DATASETS.values())
            else ""
        )
        lines.append(
            f"Critic-based runs trained {each} updates: {updates.max() / PAPERS_UPDATES:.1%} of the"
            f" papers' {PAPERS_UPDATES:,} offline updates (FQL, Q-chunking, MeanFlow-QL).{onset}"
        )
    seeds = int(train["seed"].nunique()) if len(train) else 0
    if seeds == 1:
        lines.append(
            "One training seed: every interval here is over evaluation episodes of one training run, so"
            " a *holds: yes* is one draw of training (on cube-single, single evaluations of one run swing"
            " by 15-30 points). The 3-seed study (``config/compare.yaml``; docs/reflow_vs_meanflow_rl.md)"
            " answers the question."
        )
    elif seeds > 1:
        lines.append(
            f"{seeds} training seeds: intervals are over the episodes of all seeds pooled; the seeds"
            " differ more than that (docs/reflow_vs_meanflow_rl.md reports t-intervals over seeds)."
        )
    return lines


config["_report"] = {
    "study": _study_lines(),
    "seeds": ", ".join(str(s) for s in SEEDS),
    "distributions": ", ".join(DISTRIBUTIONS),
    "headline": _headline_rows(),
    "reach": _reach(),
}
