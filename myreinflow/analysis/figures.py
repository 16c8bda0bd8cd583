"""Seaborn figures of a study, each from one summary CSV: one function per figure, one PNG each.

Every figure is a seaborn grid (`FacetGrid`, `relplot`) faceted by row and column. Legend entries are
named through the data (a `label` column), so seaborn makes the legend. Colours are fixed per flow across
every figure; baselines (MLP BC, FQL's one-step policy) are horizontal reference lines, since they have
no inference steps to sweep.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from myreinflow.analysis.aggregate import (  # noqa: E402
    CONTROL_STAGES,
    CRITIC_METHODS,
    FLOW_LABELS,
    ONLINE_STAGES,
    STAGE_NAMES,
    as_trained,
    best_steps,
    training_speed,
)
from myreinflow.errors import UserError  # noqa: E402
from myreinflow.utils import atomic_path  # noqa: E402

_CB = sns.color_palette("colorblind")
FLOW_COLORS = {"reflow": _CB[0], "meanflow": _CB[1], "rectified": _CB[2], "mlp": _CB[7]}
STAGE_LABELS = STAGE_NAMES
METRIC_LABELS = {
    "normalized_score": "normalized score",
    "final_distance": "final object–goal distance (m)\nlower is better",
    "success": "success rate",
    "return": "return",
    "latency_ms": "latency per action chunk (ms)",
}
# the rows of the return and BC → FQL figures (success: OGBench's headline; Pusher's distance < 0.1 m)
SCORE_METRICS = ("normalized_score", "success", "final_distance")
STEPS_LABEL = "inference steps (NFE, log scale)"
# the columns of table.csv that its figures read
SUMMARY_COLUMNS = (
    "stage",
    "dataset",
    "flow",
    "policy",
    "inference_steps",
    "metric",
    "mean",
    "ci_low",
    "ci_high",
)
# each critic-based method's colour, in its figures and in the online one: FQL in the flows' colours,
# MeanFlow-QL and the QCs in others
METHOD_COLORS = dict(zip(CRITIC_METHODS, [_CB[0], _CB[1], _CB[2], _CB[3], _CB[4]], strict=True))
# a solid line is swept over the inference steps; dashed and dotted ones are reference levels
POLICY_STYLES = {"flow": "-", "onestep": "--", "mlp": ":"}


def color(flow: str):
    return FLOW_COLORS.get(flow, _CB[4])


def label(flow: str) -> str:
    return FLOW_LABELS.get(flow, flow)


def _theme() -> None:
    sns.set_theme(style="whitegrid", context="paper", font_scale=1.1)


def _check(frame: pd.DataFrame, columns: tuple[str, ...], what: str) -> None:
    missing = [c for c in columns if c not in frame]
    if missing:
        raise UserError(f"{what} lacks column(s) {', '.join(missing)}")
    if frame.empty:
        raise UserError(f"{what} has no rows")


def _present(order, values) -> list:
    """The items of `order` found in `values`, in that order: facets only where there is data."""
    values = set(values)
    return [v for v in order if v in values]


def _score_metrics(table: pd.DataFrame) -> list[str]:
    metrics = _present(SCORE_METRICS, table["metric"])
    if not metrics:
        raise UserError(f"table has no {' or '.join(SCORE_METRICS)} rows")
    return metrics


def _labelled(frame: pd.DataFrame, mlp: str = "MLP BC (reference)") -> pd.DataFrame:
    """Each row's legend entry (`label`), colour and line style, from its flow and policy."""
    names = frame["flow"].map(label)
    text = np.where(frame["policy"] == "onestep", "FQL one-step policy (from " + names + ")", names + " flow")
    return frame.assign(
        label=np.where(frame["flow"] == "mlp", mlp, text),
        color=frame["flow"].map(color),
        ls=frame["policy"].map(POLICY_STYLES).fillna("-"),
    )


def _hue(data: pd.DataFrame, order: tuple[str, ...] = tuple(FLOW_LABELS)) -> dict:
    """FacetGrid's hue arguments from the `label`, `color` and `ls` columns: one level per legend entry,
    lines over the steps first, then reference levels, each in flow `order`. The line style reaches the
    drawing functions as their `ls` argument."""
    levels = data.drop_duplicates("label")
    rank = levels["flow"].map({f: i for i, f in enumerate(order)}).fillna(len(order))
    levels = levels.assign(rank=rank + len(order) * (levels["ls"] != "-")).sort_values("rank", kind="stable")
    return dict(
        hue="label",
        hue_order=list(levels["label"]),
        palette=dict(zip(levels["label"], levels["color"], strict=True)),
        hue_kws={"ls": list(levels["ls"])},
    )


def _panels(frame: pd.DataFrame) -> pd.DataFrame:
    """The (dataset, stage) pairs of a frame in figure order, with their titles ('dataset · stage')."""
    pairs = frame.loc[frame["stage"].isin(list(STAGE_LABELS)), ["dataset", "stage"]].drop_duplicates()
    pairs = pairs.assign(rank=pairs["stage"].map(list(STAGE_LABELS).index)).sort_values(["dataset", "rank"])
    return pairs.assign(panel=pairs["dataset"].astype(str) + " · " + pairs["stage"].map(STAGE_LABELS))


def _reference(ax, y: float, band, color, ls: str, text: str) -> None:
    """A horizontal line, with its CI band where known: a policy or level without inference steps."""
    ax.axhline(y, color=color, ls=ls, lw=1.6, label=text)
    if band is not None and np.isfinite(band).all():
        ax.axhspan(*band, color=color, alpha=0.12, lw=0)


def _estimate(data: pd.DataFrame, x: str, color, label: str, ls: str) -> None:
    """One policy in one panel from summary-table rows (mean, 95 % CI): a line with its band along the
    steps, or a reference line and band across the panel."""
    ax = plt.gca()
    if ls != "-":
        row = data.iloc[0]
        _reference(ax, row["mean"], (row["ci_low"], row["ci_high"]), color, ls, label)
        return
    data = data.sort_values(x)
    ax.plot(data[x], data["mean"], marker="o", color=color, label=label)
    ax.fill_between(data[x], data["ci_low"], data["ci_high"], color=color, alpha=0.2, lw=0)


def _aggregate(data: pd.DataFrame, x: str, y: str, color, label: str, ls: str, errorbar=None) -> None:
    """One flow or reference level in one panel from raw rows: seaborn's mean line with its `errorbar`
    band along the steps, or the mean of a reference level as a horizontal line."""
    if ls != "-":
        _reference(plt.gca(), data[y].mean(), None, color, ls, label)
        return
    sns.lineplot(data=data, x=x, y=y, color=color, label=label, marker="o", errorbar=errorbar, ax=plt.gca())


def _steps_axis(g: sns.FacetGrid, steps) -> None:
    for ax in g.axes.flat:
        ax.set_xscale("log", base=2)
        ax.set_xticks(steps, [str(s) for s in steps])
        ax.minorticks_off()


def _label_rows(g: sns.FacetGrid, xlabel: str, names: dict) -> None:
    """A panel only where there is data (a dataset without a metric gets no empty box in its row); each
    column titled above its top panel, each row's metric as the y label of its leftmost panel, the x
    label under the bottom panel of each column. A row of rates (success) spans [0, 1], so that a row
    of zeros reads as zero and not as noise around 1e-17."""
    g.set_titles(col_template="", row_template="")
    g.set_xlabels("")
    g.set_ylabels("")
    shown = np.array([[ax.has_data() for ax in row] for row in g.axes])
    for ax, visible in zip(g.axes.flat, shown.flat, strict=True):
        ax.set_visible(bool(visible))
    for i, row in enumerate(g.row_names or [""]):
        if row == "success":
            for ax in g.axes[i]:
                ax.set_ylim(-0.05, 1.05)
        if shown[i].any():
            ax = g.axes[i, shown[i].argmax()]
            ax.set_ylabel(names.get(row, row))
            ax.yaxis.label.set_visible(True)
            ax.tick_params(labelleft=True)
    for j, col in enumerate(g.col_names or [""]):
        if shown[:, j].any():
            g.axes[shown[:, j].argmax(), j].set_title(col)
            bottom = g.axes[len(shown) - 1 - shown[::-1, j].argmax(), j]
            bottom.set_xlabel(xlabel)
            bottom.xaxis.label.set_visible(True)
            bottom.tick_params(labelbottom=True)


def _save(g: sns.FacetGrid | plt.Figure, out: str | Path, title: str) -> None:
    """The figure (of a seaborn grid) with `title` above it, written atomically, then closed."""
    figure = getattr(g, "figure", g)
    figure.suptitle(title, y=1.0, va="bottom")  # above the grid; the tight bounding box keeps it
    with atomic_path(out) as tmp:
        figure.savefig(tmp, format="png", dpi=130, bbox_inches="tight")
    plt.close(figure)


def plot_return(table: pd.DataFrame, out: str | Path) -> None:
    """Normalized score and task metric vs inference steps; rows: metrics, columns: dataset × stage."""
    _check(table, SUMMARY_COLUMNS, "table")
    metrics = _score_metrics(table)
    _theme()
    rows = _labelled(table[table["metric"].isin(metrics)])
    panels = _panels(table)
    # each panel shows its own stage's policies and, as the reference, its dataset's MLP BC baseline
    data = panels.merge(rows, on="dataset", suffixes=("", "_of_row"))
    data = data[(data["stage"] == data["stage_of_row"]) | (data["flow"] == "mlp")]
    g = sns.FacetGrid(
        data,
        row="metric",
        col="panel",
        row_order=metrics,
        col_order=list(panels["panel"]),
        sharey="row",
        margin_titles=True,
        height=3.2,
        aspect=1.2,
        **_hue(data),
    )
    g.map_dataframe(_estimate, x="inference_steps")
    _steps_axis(g, sorted(rows.loc[rows["policy"] == "flow", "inference_steps"].unique()))
    _label_rows(g, STEPS_LABEL, METRIC_LABELS)
    g.add_legend(title="policy")
    title = (
        "Policy quality vs inference steps: ReFlow vs MeanFlow\n"
        "mean over evaluation episodes with 95 % bootstrap CI; a panel where the dataset has the metric"
    )
    _save(g, out, title)


def plot_latency(evals: pd.DataFrame, out: str | Path) -> None:
    """Policy latency per action chunk vs inference steps, per stage; one line per flow and dataset."""
    keys = ("stage", "dataset", "flow", "policy", "seed", "inference_steps")
    _check(evals, (*keys, "latency_ms"), "eval table")
    _theme()
    # latency is measured per batch of vectorised envs: one value per rollout, repeated on its episodes
    runs = evals.groupby(list(keys), as_index=False)["latency_ms"].mean()
    runs = _labelled(runs[runs["stage"].isin(list(STAGE_LABELS))], mlp="MLP BC")
    runs["panel"] = runs["stage"].map(STAGE_LABELS) + " policies"
    panels = [f"{s} policies" for s in _present(STAGE_LABELS.values(), runs["stage"].map(STAGE_LABELS))]
    g = sns.FacetGrid(runs, col="panel", col_order=panels, sharey=True, height=3.6, aspect=1.3, **_hue(runs))
    # line: mean over datasets and seeds, band: their whole range
    g.map_dataframe(_aggregate, x="inference_steps", y="latency_ms", errorbar=("pi", 100))
    g.set(ylim=(0, None))  # after drawing, so the shared axis keeps every panel's data
    _steps_axis(g, sorted(runs.loc[runs["policy"] == "flow", "inference_steps"].unique()))
    g.set_titles(col_template="{col_name}")
    g.set_axis_labels(STEPS_LABEL, METRIC_LABELS["latency_ms"])
    g.add_legend(title="policy")
    title = (
        "Policy latency per action chunk (one call for the whole batch of vectorised envs)\n"
        "line: mean over datasets and seeds, band: their range"
    )
    _save(g, out, title)


VARIANTS = {("bc", "flow"): "BC flow", ("fql", "flow"): "FQL flow", ("fql", "onestep"): "FQL one-step"}
DODGE = 0.22  # x distance between the flows of one variant: room for their K labels side by side


def _points(data: pd.DataFrame, color, label: str, ls: str) -> None:
    """One flow's BC → FQL path in one panel (points with 95 % CI bars, joined), or the MLP reference."""
    ax = plt.gca()
    if ls != "-":
        row = data.iloc[0]
        _reference(ax, row["mean"], (row["ci_low"], row["ci_high"]), color, ls, label)
        return
    data = data.sort_values("x")
    err = [(data["mean"] - data["ci_low"]).clip(lower=0), (data["ci_high"] - data["mean"]).clip(lower=0)]
    ax.errorbar(data["x"], data["mean"], yerr=err, fmt="-o", color=color, lw=1.2, capsize=3, label=label)


def _k_labels(g: sns.FacetGrid, points: pd.DataFrame) -> None:
    """Each point's K as a minor tick label right under it, in its flow's colour, with the variant names
    one line lower: labels on their own dodged x positions cannot overlap, unlike annotations."""
    g.set(xticks=range(len(VARIANTS)), xticklabels=list(VARIANTS.values()), xlim=(-0.5, len(VARIANTS) - 0.5))
    g.tick_params(axis="x", which="major", pad=14)
    for dataset, ax in zip(g.col_names, g.axes[-1], strict=True):
        ticks = points[points["dataset"] == dataset].drop_duplicates("x").sort_values("x")
        ax.xaxis.remove_overlapping_locs = False  # a middle flow's K sits right on its variant's tick
        ax.set_xticks(ticks["x"], [f"{k}" for k in ticks["inference_steps"]], minor=True, fontsize=8)
        for text, c in zip(ax.get_xticklabels(minor=True), ticks["color"], strict=True):
            text.set_color(c)


def plot_fql(table: pd.DataFrame, out: str | Path) -> None:
    """BC → FQL: each flow's BC policy, its FQL-fine-tuned flow and FQL's one-step policy, as points
    with CIs joined per flow; rows: metrics, columns: datasets with an FQL stage."""
    _check(table, SUMMARY_COLUMNS, "table")
    if "fql" not in set(table["stage"]):
        raise UserError("table has no fql rows; the BC → FQL figure needs the fql stage")
    _theme()
    keys = ["stage", "policy", "dataset", "flow", "inference_steps"]
    fql = table[table["stage"] == "fql"]
    datasets, flows = sorted(fql["dataset"].unique()), _present(FLOW_LABELS, fql["flow"])
    metrics = _score_metrics(table[table["dataset"].isin(datasets)])  # rows only for what is plotted
    # every policy at its best steps K, chosen by its dataset's headline metric, shown with all metrics at K
    variants = pd.DataFrame([(*v, i) for i, v in enumerate(VARIANTS)], columns=["stage", "policy", "variant"])
    best = best_steps(table)[keys].merge(variants, on=["stage", "policy"])
    best = best[best["dataset"].isin(datasets) & best["flow"].isin(flows)]
    points = best.merge(table[table["metric"].isin(metrics)], on=keys)
    dodge = DODGE * (points["flow"].map(flows.index) - (len(flows) - 1) / 2)
    # one solid line per flow through its three variants
    points = points.assign(label=points["flow"].map(label), color=points["flow"].map(color), ls="-")
    points["x"] = points["variant"] + dodge
    mlp = table[(table["stage"] == "bc") & (table["flow"] == "mlp") & table["dataset"].isin(datasets)]
    data = pd.concat([points, _labelled(mlp[mlp["metric"].isin(metrics)])], ignore_index=True)
    g = sns.FacetGrid(
        data,
        row="metric",
        col="dataset",
        row_order=metrics,
        col_order=datasets,
        sharex="col",
        sharey="row",
        margin_titles=True,
        height=3.4,
        aspect=1.4,
        **_hue(data),
    )
    g.map_dataframe(_points)
    _k_labels(g, points)
    _label_rows(g, "coloured numbers: each point's best inference steps K", METRIC_LABELS)
    g.add_legend(title="flow")
    title = (
        "BC → FQL per dataset and flow: mean and 95 % bootstrap CI\n"
        "flows at their best inference steps K (numbers under the points; by normalized score, or success)"
    )
    _save(g, out, title)


LOSS_COLUMNS = ("train/flow_mse", "train/loss")  # the first one a row has is its training loss
# the rows of the learning curves
LOSS, SCORE = "training loss (log scale)", "eval normalized score\n(success rate on OGBench)"
# evaluation columns of the train CSVs → the policy they evaluate (FQL logs its fine-tuned flow apart)
EVAL_COLUMNS = {"eval/normalized_score": "policy", "eval_flow/normalized_score": "fine-tuned flow"}
# where the data has no normalized score (OGBench tasks), the eval row shows the success rate
# markers of the learning curves: FQL's one-step policy as circles, its fine-tuned flow as crosses
CURVE_MARKERS = {"training loss": ".", "BC policy": "o", "one-step policy": "o", "fine-tuned flow": "X"}


def _curves(train: pd.DataFrame) -> pd.DataFrame:
    """Long frame of the learning curves: one `value` per logged step, with its `quantity` (loss or eval
    score) and `policy` (what was evaluated; the loss is its own)."""
    keys = ["dataset", "stage", "flow", "seed", "step"]
    loss = pd.Series(np.nan, index=train.index)
    for col in LOSS_COLUMNS:
        if col in train:
            loss = loss.fillna(train[col])
    frames = [train[keys].assign(value=loss, quantity=LOSS, policy="training loss")]
    for col, what in EVAL_COLUMNS.items():
        success = col.replace("normalized_score", "success")
        if col in train or success in train:
            if what == "policy":  # BC: the policy itself; FQL: its one-step policy
                what = np.where(train["stage"].isin(["fql", "mfql"]), "one-step policy", "BC policy")
            value = train.get(col, pd.Series(np.nan, index=train.index))
            value = value.fillna(train[success]) if success in train else value
            frames.append(train[keys].assign(value=value, quantity=SCORE, policy=what))
    curves = pd.concat(frames, ignore_index=True)
    return curves[curves["value"].notna()]


CURVE_DODGE = (
    0.02  # eval points of neighbouring (flow, policy) pairs are this fraction of a panel's steps apart
)


def _dodge(curves: pd.DataFrame) -> pd.DataFrame:
    """Evaluation points of different flows (or policies) often coincide (the same step, a success of 0):
    each (flow, policy) pair's points move along x by its own multiple of CURVE_DODGE × the panel's last step,
    centred, so that none hides another. Losses stay where they are."""
    score = curves["quantity"] == SCORE
    pairs = sorted(set(zip(curves.loc[score, "flow"], curves.loc[score, "policy"], strict=True)))
    index = pd.Series(list(zip(curves["flow"], curves["policy"], strict=True)), index=curves.index)
    offset = index.map({pair: i - (len(pairs) - 1) / 2 for i, pair in enumerate(pairs)})
    span = curves.groupby("panel")["step"].transform("max")
    return curves.assign(step=curves["step"] + (CURVE_DODGE * span * offset).where(score, 0.0))


def plot_curves(train: pd.DataFrame, out: str | Path) -> None:
    """Training loss and evaluation score vs gradient step; rows: those two, columns: dataset × stage."""
    _check(train, ("stage", "dataset", "flow", "seed", "step"), "train table")
    _theme()
    panels = _panels(train)
    curves = _dodge(_curves(train).merge(panels, on=["dataset", "stage"]))
    flows = _present([*FLOW_LABELS, *sorted(set(curves["flow"]) - set(FLOW_LABELS))], curves["flow"])
    styles = _present(CURVE_MARKERS, curves["policy"])
    g = sns.relplot(
        curves.assign(flow=curves["flow"].map(label)),  # legend entries: flow names, not keys
        kind="line",
        x="step",
        y="value",
        row="quantity",
        col="panel",
        row_order=_present([LOSS, SCORE], curves["quantity"]),
        col_order=list(panels["panel"]),
        hue="flow",
        hue_order=[label(f) for f in flows],
        palette={label(f): color(f) for f in flows},
        style="policy",
        style_order=styles,
        markers={s: CURVE_MARKERS[s] for s in styles},  # short runs log a few points only
        dashes=False,
        errorbar=("ci", 95),  # over training seeds (none with one seed)
        n_boot=1000,
        seed=0,
        height=3.0,
        aspect=1.25,
        facet_kws=dict(sharex="col", sharey="row", margin_titles=True),  # each stage counts its own steps
    )
    _label_rows(g, "gradient step of the stage", {})
    for (quantity, _), ax in g.axes_dict.items():
        if quantity == LOSS:
            ax.set_yscale("log")
    title = (
        "Learning curves\nloss: flow-matching MSE of the (BC or fine-tuned) flow, action MSE for the MLP; "
        "bands: 95 % CI over seeds\neval: rollouts during training; points of different flows set apart "
        f"along x by {CURVE_DODGE:.0%} of the axis"
    )
    _save(g, out, title)


TOY_METRICS = {
    "swd": "sliced Wasserstein distance",
    "w2": "Wasserstein-2 distance",
    "mmd2": "MMD²",
    "straightness": "path deviation (0 = straight)",
}
# levels of the 2D study without a model: legend entry and line style, in grey
TOY_REFERENCES = {"noise": ("N(0, I) noise", "--"), "data": ("second draw of the target (floor)", ":")}


def plot_toy2d(toy: pd.DataFrame, out: str | Path, subtitle: str = "") -> None:
    """2D study: each metric vs sampling steps per flow, with the noise and target-resample levels;
    rows: distributions, columns: metrics. The pipeline's figure of every distribution and the
    `metrics.png` of one `myreinflow toy2d` run (`subtitle`: that run's budget and seed)."""
    _check(toy, ("distribution", "flow", "inference_steps", "metric", "value"), "toy2d table")
    _theme()
    refs = toy["flow"].isin(list(TOY_REFERENCES))
    models = toy[~refs]
    metrics = _present(TOY_METRICS, models["metric"]) + sorted(set(models["metric"]) - set(TOY_METRICS))
    # a one-step path is straight: deviation 0, no reference level and no log scale
    data = toy[~(refs & (toy["metric"] == "straightness"))]
    ref = data["flow"].map(TOY_REFERENCES)  # (legend entry, line style); NaN for a flow
    data = data.assign(
        label=ref.str[0].fillna(data["flow"].map(label)),
        color=data["flow"].map(lambda f: (0.4, 0.4, 0.4) if f in TOY_REFERENCES else color(f)),
        ls=ref.str[1].fillna("-"),
    )
    g = sns.FacetGrid(
        data,
        row="distribution",
        col="metric",
        row_order=sorted(models["distribution"].unique()),
        col_order=metrics,
        sharey=False,
        height=3.0,
        aspect=1.2,
        **_hue(data, (*FLOW_LABELS, *TOY_REFERENCES)),
    )
    errorbar = ("ci", 95) if "seed" in toy and toy["seed"].nunique() > 1 else None
    g.map_dataframe(_aggregate, x="inference_steps", y="value", errorbar=errorbar)
    _steps_axis(g, sorted(models["inference_steps"].unique()))
    for (dist, metric), ax in g.axes_dict.items():
        ax.set_title(f"{dist} · {TOY_METRICS.get(metric, metric)}")
        if metric != "straightness":
            ax.set_yscale("log")
    g.set_axis_labels(STEPS_LABEL, "distances: log scale")
    g.add_legend(title="flow")
    title = (
        "2D study: distance to the target distribution vs sampling steps (lower is better)\n"
        "samples from the same noise for every flow; grey lines: reference levels"
    )
    _save(g, out, title + (f"\n{subtitle}" if subtitle else ""))


def _method_lines(ax, data: pd.DataFrame, x: str, methods: list, palette: dict, seeds: int, **kw) -> None:
    """`value` against `x`, one line per `method` in `methods` order: the mean over seeds, with its 95 %
    bootstrap band where there are several."""
    sns.lineplot(
        data=data,
        x=x,
        y="value",
        hue="method",
        hue_order=methods,
        palette=palette,
        marker="o",
        errorbar=("ci", 95) if seeds > 1 else None,
        n_boot=1000,
        seed=0,
        ax=ax,
        **kw,
    )


def _rl_curves(train: pd.DataFrame, speed: pd.DataFrame) -> pd.DataFrame:
    """Evaluations during training of the critic-based methods (CRITIC_METHODS), one row per run and
    evaluation: `method`, `step`, `seconds` (the method's training time at that step, evaluations left
    out: step / its updates per second `speed`, the mean over its seeds, so that seeds share their x
    values) and `value` (success, or the normalized score where there is none)."""
    runs = train.merge(speed, on=["stage", "dataset", "flow"])
    frames = []
    for (stage, flow), (_, name, _) in CRITIC_METHODS.items():
        rows = runs[(runs["stage"] == stage) & (runs["flow"] == flow)]
        success = rows["eval/success"] if "eval/success" in rows else pd.Series(np.nan, index=rows.index)
        score = rows.get("eval/normalized_score", pd.Series(np.nan, index=rows.index))
        has_success = success.notna().groupby([rows["dataset"], rows["seed"]]).transform("any")
        value = success.where(has_success, score)
        metric = np.where(has_success, "success", "normalized_score")
        rows = rows.assign(
            method=name, metric=metric, value=value, seconds=rows["step"] / rows["updates_per_s"]
        )
        frames.append(
            rows.loc[value.notna(), ["dataset", "seed", "method", "metric", "step", "seconds", "value"]]
        )
    return pd.concat(frames, ignore_index=True)


def plot_rl(train: pd.DataFrame, table: pd.DataFrame, out: str | Path) -> None:
    """ReFlow vs MeanFlow in RL, per dataset (rows) with two or more critic-based methods: the acting
    policy's evaluation success during training against gradient updates and against training seconds,
    and its final evaluation (1 step, 95 % interval) labelled with the method's training updates/s."""
    _check(train, ("stage", "dataset", "flow", "seed", "step", "wall_s"), "train table")
    _check(table, SUMMARY_COLUMNS, "table")
    # each method's updates per second, the mean over its seeds: the time axis and the final bars' labels
    keys = ["stage", "dataset", "flow"]
    speed = training_speed(train).groupby(keys, as_index=False)["updates_per_s"].mean()
    curves = _rl_curves(train, speed)
    rate = speed.set_index(keys)["updates_per_s"]
    counts = curves.groupby("dataset")["method"].nunique() if len(curves) else pd.Series(dtype=int)
    datasets = sorted(counts[counts > 1].index)
    if not datasets:
        raise UserError("train table has no dataset with two critic-based methods (fql, mfql and qc runs)")
    _theme()
    names = [name for _, name, _ in CRITIC_METHODS.values()]
    palette = {name: METHOD_COLORS[method] for method, (_, name, _) in CRITIC_METHODS.items()}
    table = as_trained(table)
    fig, axes = plt.subplots(len(datasets), 3, figsize=(15, 3.8 * len(datasets)), squeeze=False)
    for row, dataset in zip(axes, datasets, strict=True):
        data = curves[curves["dataset"] == dataset]
        present = _present(names, data["method"])
        metric = data["metric"].iloc[0]
        seeds = data.groupby("method")["seed"].nunique().min()
        for ax, x, xlabel in (
            (row[0], "step", "gradient updates"),
            (row[1], "seconds", "training time (s, evaluations left out)"),
        ):
            _method_lines(ax, data, x, present, palette, seeds, legend=ax is row[0])
            during = "during training" + (f" ({seeds} seeds, 95 % CI)" if seeds > 1 else " (one seed)")
            ax.set(xlabel=xlabel, ylabel=METRIC_LABELS.get(metric, metric), title=f"{dataset} · {during}")
        final = []
        for (stage, flow), (policy, name, steps) in CRITIC_METHODS.items():
            hit = table[
                (table["dataset"] == dataset)
                & (table["stage"] == stage)
                & (table["flow"] == flow)
                & (table["policy"] == policy)
                & (table["inference_steps"] == steps)
                & (table["metric"] == metric)
            ]
            if len(hit) and (stage, dataset, flow) in rate:
                wrapped = name.replace(" from ", " from\n").replace(" over ", " over\n")  # bars side by side
                label = f"{wrapped}\n{rate[(stage, dataset, flow)]:.1f}/s"
                final.append(hit.iloc[0].to_dict() | {"method": name, "label": label})
        ax = row[2]
        if final:
            bars = pd.DataFrame(final)
            ax.bar(bars["label"], bars["mean"], color=[palette[m] for m in bars["method"]])
            ax.errorbar(
                bars["label"],
                bars["mean"],
                yerr=[bars["mean"] - bars["ci_low"], bars["ci_high"] - bars["mean"]],
                fmt="none",
                color="black",
                capsize=3,
            )
            episodes = int(bars["n"].min())
            ax.set(
                ylabel=METRIC_LABELS.get(metric, metric),
                xlabel="acting policy (training updates per second)",
                title=f"{dataset} · final evaluation ({episodes} episodes, 95 % CI)",
            )
        else:
            ax.set_axis_off()
        if metric == "success":  # the whole range of a rate, as in the other figures
            for ax in row:
                ax.set_ylim(-0.05, 1.05)
        if row[0].get_legend() is not None:
            sns.move_legend(row[0], "upper left", title="method (acting policy)")
    fig.tight_layout()
    present = _present(names, curves[curves["dataset"].isin(datasets)]["method"])
    title = f"ReFlow vs MeanFlow in RL: {', '.join(present)}\n"
    _save(fig, out, title + "success of each acting policy as it acts (its flow steps and best-of-N)")


# what an online curve shows, by preference: Pusher is judged by final distance, OGBench by success
ONLINE_METRICS = ("final_distance", "success", "normalized_score")


# the online figure's lines: each online stage (solid; ReinFlow dashed) and each control (dotted) in the
# colour of the offline method it continues (ReinFlow: its flow's, FQL's)
ONLINE_LINES = {
    **{stage: (name, (4, 2) if stage == "reinflow" else "") for stage, (name, _) in ONLINE_STAGES.items()},
    **{
        c: (f"{ONLINE_STAGES[o][0].removesuffix(' online')}, control", (1, 1.5))
        for c, o in CONTROL_STAGES.items()
    },
}


def _online_curves(train: pd.DataFrame) -> pd.DataFrame:
    """Evaluations of the online runs (ONLINE_LINES: the online stages and their controls), one row per
    run and evaluation, from the offline start (step 0 of the online phase: an online run's last offline
    evaluation, a ReinFlow run's first) on: `method` (stage and flow), `env_steps` (a control's: the
    phase's steps, none in the env), `minutes` (env_steps at the method's mean steps per second over its
    seeds, evaluations included, so that seeds share their x values), `metric` and `value`."""
    frames = []
    for stage, (name, _) in ONLINE_LINES.items():
        runs = train[train["stage"] == stage]
        if not len(runs) or "online/env_steps" not in runs:
            continue
        for (dataset, flow, seed), run in runs.sort_values("step").groupby(["dataset", "flow", "seed"]):
            metric = next(
                (m for m in ONLINE_METRICS if run.get(f"eval/{m}", pd.Series()).notna().any()), None
            )
            if metric is None:  # a run without evaluations yet
                continue
            env = run["online/env_steps"].fillna(0)  # offline rows (online stages): before step 0
            evals = run[run[f"eval/{metric}"].notna()].assign(env_steps=env)
            start = evals[evals["env_steps"] == 0].tail(1)  # the offline policy's last evaluation
            evals = pd.concat([start, evals[evals["env_steps"] > 0]])
            seconds = evals["wall_s"] - start["wall_s"].iloc[0] if len(start) else np.nan
            frames.append(
                pd.DataFrame(
                    {
                        "dataset": dataset,
                        "seed": seed,
                        "stage": stage,
                        "flow": flow,
                        "method": f"{name} · {label(flow)}",
                        "metric": metric,
                        "env_steps": evals["env_steps"].to_numpy(),
                        "seconds": np.asarray(seconds, dtype=float),
                        "value": evals[f"eval/{metric}"].to_numpy(),
                    }
                )
            )
    if not frames:
        raise UserError(f"train table has no evaluations of online runs ({', '.join(ONLINE_LINES)} stages)")
    curves = pd.concat(frames, ignore_index=True)
    keys = ["stage", "dataset", "flow"]
    last = curves.sort_values("env_steps").groupby([*keys, "seed"]).tail(1)
    rate = (last["env_steps"] / last["seconds"]).groupby([last[k] for k in keys]).mean().rename("rate")
    curves = curves.join(rate, on=keys)
    return curves.assign(minutes=curves["env_steps"] / curves["rate"] / 60)


def _online_color(stage: str, flow: str):
    """The colour of an online line: the offline method's it continues (ReinFlow: its flow's)."""
    algo = stage.partition("_")[0]
    return METHOD_COLORS.get((algo, flow), color(flow))


def plot_online(train: pd.DataFrame, out: str | Path) -> None:
    """Online fine-tuning per dataset (rows): the acting policy's evaluations against env steps and
    against wall-clock minutes, per method in the colour of the offline method it continues (solid
    online, dotted the control without the env, dashed ReinFlow), from the offline start."""
    _check(train, ("stage", "dataset", "flow", "seed", "step", "wall_s"), "train table")
    curves = _online_curves(train)
    _theme()
    datasets = sorted(curves["dataset"].unique())
    order = {k: i for i, k in enumerate([*ONLINE_LINES, *FLOW_LABELS])}
    methods = curves.drop_duplicates("method").sort_values(["flow", "stage"], key=lambda c: c.map(order))
    palette = {
        m: _online_color(st, f)
        for m, st, f in zip(methods["method"], methods["stage"], methods["flow"], strict=True)
    }
    dashes = {m: ONLINE_LINES[stage][1] for m, stage in zip(methods["method"], methods["stage"], strict=True)}
    fig, axes = plt.subplots(len(datasets), 2, figsize=(12, 4.2 * len(datasets)), squeeze=False)
    for row, dataset in zip(axes, datasets, strict=True):
        data = curves[curves["dataset"] == dataset]
        present = [m for m in methods["method"] if m in set(data["method"])]
        metric = data["metric"].iloc[0]
        seeds = int(data.groupby("method")["seed"].nunique().min())
        for ax, x, xlabel in (
            (row[0], "env_steps", "env steps of online fine-tuning (a control: its steps without the env)"),
            (row[1], "minutes", "wall-clock minutes (evaluations included)"),
        ):
            style = dict(style="method", style_order=present, dashes=dashes)
            _method_lines(ax, data, x, present, palette, seeds, legend=ax is row[0], **style)
            ax.axvline(0, color="0.4", ls=":", lw=1)
            ax.annotate(
                "offline\nstart",
                (0, 1),
                xycoords=("data", "axes fraction"),
                xytext=(3, -3),
                textcoords="offset points",
                va="top",
                fontsize=8,
                color="0.3",
            )
            spread = f"{seeds} seeds, 95 % CI" if seeds > 1 else "one seed"
            ax.set(xlabel=xlabel, ylabel=METRIC_LABELS.get(metric, metric), title=f"{dataset} ({spread})")
            if metric == "success":
                ax.set_ylim(-0.05, 1.05)
        if row[0].get_legend() is not None:
            sns.move_legend(row[0], "best", title="method · flow it started from", fontsize=8)
    fig.tight_layout()
    _save(
        fig,
        out,
        "Online fine-tuning from the offline policies: evaluations of the acting policy (without noise)",
    )


FIGURES = {
    "online": plot_online,
    "rl": plot_rl,
    "return": plot_return,
    "latency": plot_latency,
    "fql": plot_fql,
    "curves": plot_curves,
    "toy2d": plot_toy2d,
}
