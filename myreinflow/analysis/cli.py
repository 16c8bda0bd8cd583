"""`myreinflow summarize ...`: the pipeline's aggregation and figures, one command per output kind."""

from __future__ import annotations

import argparse
from pathlib import Path

from myreinflow.errors import UserError
from myreinflow.names import FIGURES
from myreinflow.utils import atomic_path


def _write(frame, path) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)
    print(f"wrote {path} ({len(frame)} rows)")


def _concat(args) -> None:
    from myreinflow.analysis.tables import read_csvs

    _write(read_csvs(args.inputs), args.out)


def _eval(args) -> None:
    import pandas as pd

    from myreinflow.analysis.headline import headline
    from myreinflow.analysis.tables import ci_table, read_csvs

    if args.train and not Path(args.train).is_file():
        raise UserError(f"input {args.train!r} does not exist")
    evals = read_csvs(args.inputs)
    table = ci_table(evals)
    _write(evals, args.out)
    _write(table, args.table)
    _write(headline(table, train=pd.read_csv(args.train) if args.train else None), args.headline)


def _train(args) -> None:
    from myreinflow.analysis.tables import read_train

    _write(read_train(args.inputs), args.out)


def _runs(args) -> None:
    import yaml

    from myreinflow.analysis.runs import run_numbers
    from myreinflow.analysis.tables import TRAIN_PATH, read_train

    train = read_train(args.inputs)  # checks the paths
    episodes = {}
    for path in args.inputs:  # each run's evaluation episodes, from the config.yaml beside its train.csv
        config = Path(path).with_name("config.yaml")
        if not config.is_file():
            raise UserError(f"input {str(path)!r} has no config.yaml beside it (its evaluation episodes)")
        run = TRAIN_PATH.search(Path(path).as_posix())
        key = (run["stage"], run["dataset"], run["flow"], int(run["seed"]))
        episodes[key] = int(yaml.safe_load(config.read_text()).get("eval_episodes", 0))
    _write(run_numbers(train, episodes), args.out)


def _published(args) -> None:
    import pandas as pd

    from myreinflow.analysis.published import compare

    for path in (args.table, args.train):
        if not Path(path).is_file():
            raise UserError(f"input {path!r} does not exist")
    _write(compare(pd.read_csv(args.table), pd.read_csv(args.train)), args.out)


def _figure(args) -> None:
    import pandas as pd

    from myreinflow.analysis.figures import PLOTS

    if args.stem not in FIGURES:
        raise UserError(f"figure {args.stem!r} is not one of {', '.join(FIGURES)}")
    want = FIGURES[args.stem]["inputs"]
    if len(args.inputs) != len(want):
        csvs = " and ".join(f"{name}.csv" for name in want)
        raise UserError(
            f"figure {args.stem} is drawn from {csvs}: give {len(want)} CSV(s), not {len(args.inputs)}"
        )
    for path in args.inputs:
        if not Path(path).is_file():
            raise UserError(f"input {path!r} does not exist")
    PLOTS[args.stem](*[pd.read_csv(path) for path in args.inputs], args.out)
    print(f"wrote {args.out}")


SUMMARIZE_HELP = "summary tables and figures of a study (used by the pipeline)"


def add_parser(sub) -> None:
    """Adds `summarize` and its commands to the `myreinflow` subparsers `sub`."""
    add_commands(sub.add_parser("summarize", help=SUMMARIZE_HELP))


def add_commands(p: argparse.ArgumentParser) -> None:
    """Adds the commands of `summarize` (concat, eval, train, toy2d, runs, published, figure) to its parser
    `p`."""
    commands = p.add_subparsers(dest="summary_command", required=True)

    def command(name: str, help_text: str, func, inputs: str = "") -> argparse.ArgumentParser:
        """A command; with `inputs`, one that reads CSV files and writes one CSV (`--out`)."""
        c = commands.add_parser(name, help=help_text, description=help_text.replace("%%", "%"))
        c.set_defaults(func=func)
        if inputs:
            c.add_argument("inputs", nargs="+", help=inputs)
            c.add_argument("--out", required=True, help="output CSV")
        return c

    command("concat", "rows of several CSVs in one CSV", _concat, "CSV files")
    c = command(
        "eval", "eval CSVs → eval.csv, table.csv (means, 95 %% CIs), headline.csv", _eval, "eval CSVs"
    )
    c.add_argument("--table", required=True, help="mean and 95 %% bootstrap CI per group and metric")
    c.add_argument("--headline", required=True, help="the study's comparisons in numbers")
    c.add_argument("--train", help="train.csv summary (the runs' updates/s for the RL comparison)")
    command("train", "train CSVs → one tidy CSV", _train, "<stage>/<dataset>/<flow>/seed<N>/train.csv files")
    command("toy2d", "2D-study metrics CSVs → one tidy CSV", _concat, "metrics.csv files of mean-flow-2d")
    command(
        "runs",
        "critic-based train CSVs → runs.csv: each run's mean of its last 3 evaluations, each method's mean "
        "over seeds with t- and Wilson intervals",
        _runs,
        "<stage>/<dataset>/<flow>/seed<N>/train.csv files (config.yaml beside each)",
    )

    c = command("published", "our OGBench success beside the published numbers (published.yaml)", _published)
    c.add_argument("table", help="table.csv (means and CIs)")
    c.add_argument("train", help="train.csv (the update budget of each run)")
    c.add_argument("--out", required=True, help="output CSV")

    c = command("figure", "one figure (PNG) from summary CSVs", _figure)
    figures = "; ".join(
        f"{stem} ({' and '.join(f'{name}.csv' for name in f['inputs'])})" for stem, f in FIGURES.items()
    )
    c.add_argument("stem", metavar="figure", help=f"the figure, by its file stem: {figures}")
    c.add_argument("inputs", nargs="+", help="the summary CSV(s) the figure is drawn from, in that order")
    c.add_argument("--out", required=True, help="output PNG")
