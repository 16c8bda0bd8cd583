"""Command line: `myreinflow data | bc | fql | mfql | qc | reinflow | eval | toy2d | summarize` (or
python -m)."""

from __future__ import annotations

import argparse
import importlib
import json
import sys

from myreinflow.analysis.cli import SUMMARIZE_HELP
from myreinflow.errors import UserError


def _data(args) -> None:
    from myreinflow.data import dataset_card, load_dataset, write_card

    dataset = load_dataset(args.dataset, args.source, progress=not args.quiet)
    card = dataset_card(dataset)
    if args.card:
        write_card(card, args.card)
    print(json.dumps(card, indent=1))


def _trainer(module: str, config_class: str):
    """What runs a training command: its config (defaults < --config YAML < flags), then `train`."""

    def run(args) -> None:
        from myreinflow.config import resolve

        cfg = resolve(getattr(importlib.import_module("myreinflow.configs"), config_class), args, args.config)
        path = importlib.import_module(module).train(cfg, progress=not args.quiet)
        print(f"checkpoint: {path}")

    return run


def _eval(args) -> None:
    from myreinflow.evaluation import evaluate_checkpoint
    from myreinflow.utils import atomic_path, check_writable, setup_runtime

    check_writable(args.out)  # before the rollouts, not after
    if any(k < 1 for k in args.inference_steps):
        raise UserError(f"--inference_steps {args.inference_steps} must all be >= 1")
    if args.act_steps < 0:
        raise UserError(f"--act_steps {args.act_steps} must be >= 0 (0 = the whole chunk)")
    if args.episodes < 1:
        raise UserError(f"--episodes {args.episodes} must be >= 1")
    if args.candidates < 0:
        raise UserError(
            f"--candidates {args.candidates} must be >= 0 (0 = as the run acted; 1 = no selection)"
        )
    device = setup_runtime(args.device, args.threads)
    frame = evaluate_checkpoint(
        args.checkpoint,
        args.policy,
        args.inference_steps,
        args.episodes,
        args.seed,
        args.num_envs,
        args.act_steps,
        args.dataset_name,
        device,
        progress=not args.quiet,
        vectorization_mode=args.vectorization,
        candidates=args.candidates,
        stage_name=args.stage_name,
    )
    with atomic_path(args.out) as tmp:
        frame.to_csv(tmp, index=False)
    columns = [c for c in ("return", "normalized_score", "final_distance", "success") if c in frame]
    for (policy, k), rows in frame.groupby(["policy", "inference_steps"], sort=False):
        print(f"{policy}, inference_steps={k}: " + ", ".join(f"{c}={rows[c].mean():.4g}" for c in columns))
    print(f"wrote {args.out}")


def _toy2d(args) -> None:
    import pandas as pd

    from myreinflow.config import resolve
    from myreinflow.toy2d import Toy2DConfig, run
    from myreinflow.toy2d.study import summary_table

    out = run(resolve(Toy2DConfig, args, args.config), progress=not args.quiet)
    print(summary_table(pd.read_csv(out / "metrics.csv"), pd.read_csv(out / "reference.csv")))
    print(f"wrote {out}")


def _data_args(p: argparse.ArgumentParser) -> None:
    from myreinflow.data.minari_io import SOURCES

    p.add_argument("--dataset", default="myreinflow/pusher/expert-v0", help="Minari dataset id")
    p.add_argument(
        "--source",
        default="auto",
        choices=SOURCES,
        help="auto: local, else generate known myreinflow/ ids, else download (ogbench/ ids from OGBench)",
    )
    p.add_argument("--card", default=None, help="also write the dataset card JSON here")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_data)


def _training_args(config_class: str):
    """What adds the arguments of a command configured by the dataclass `config_class` of
    `myreinflow.configs` (torch-free: `--help` does not import torch)."""

    def add(p: argparse.ArgumentParser) -> None:
        from myreinflow.config import add_dataclass_args

        p.add_argument("--config", default=None, help="YAML file of config keys (flags override it)")
        p.add_argument("--quiet", action="store_true", help="no progress bars")
        add_dataclass_args(p, getattr(importlib.import_module("myreinflow.configs"), config_class))

    return add


def _eval_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--checkpoint", required=True, help="model.pt written by bc, fql or mfql, or its run directory"
    )
    p.add_argument(
        "--inference_steps",
        type=int,
        nargs="+",
        default=[1, 2, 4, 8, 16],
        help="flow steps (NFE) to sweep (default: 1 2 4 8 16)",
    )
    p.add_argument("--episodes", type=int, default=50, help="episodes per setting (default: 50)")
    p.add_argument("--seed", type=int, default=0, help="episode e uses env seed seed+e (default: 0)")
    p.add_argument("--num_envs", type=int, default=50, help="vectorised envs (default: 50)")
    p.add_argument(
        "--vectorization",
        default="sync",
        choices=("sync", "async"),
        help="envs in this process (sync, default) or one subprocess each (async: several cores; "
        "benchmarks/eval_throughput.py measures which pays off)",
    )
    p.add_argument(
        "--act_steps",
        type=int,
        default=0,
        help="actions of each chunk run before re-planning (default 0: the whole chunk)",
    )
    p.add_argument(
        "--policy",
        default="auto",
        choices=("auto", "all", "flow", "onestep", "mlp", "categorical"),
        help="which policy of the checkpoint: its main one (auto), every one (all) or one by name "
        "(default: auto)",
    )
    p.add_argument(
        "--candidates",
        type=int,
        default=0,
        help="act with the best of N sampled chunks by the run's critic (FQL-family checkpoints; 1: no "
        "selection; default: 0, as the run acted in training: its `candidates`, else 1)",
    )
    p.add_argument(
        "--dataset_name", default=None, help="value of the CSV's dataset column (default: the dataset id)"
    )
    p.add_argument(
        "--stage_name",
        default=None,
        help="value of the CSV's stage column (default: the checkpoint's stage, e.g. fql for a run "
        "continued online)",
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda (default: auto)")
    p.add_argument(
        "--threads", type=int, default=0, help="torch CPU threads (default: 0 = the CPUs allocated to it)"
    )
    p.add_argument("--out", default="eval.csv", help="output CSV (default: eval.csv)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_eval)


def _summarize_args(p: argparse.ArgumentParser) -> None:
    from myreinflow.analysis.cli import add_commands  # the pipeline's summaries

    add_commands(p)


# command → (aliases, help, what it runs, what adds its arguments)
COMMANDS = {
    "data": ((), "get a Minari dataset (download or generate locally) and print its card", _data, _data_args),
    "bc": (
        (),
        "behaviour cloning of a flow (ReFlow/MeanFlow), MLP or categorical policy",
        _trainer("myreinflow.algos.bc", "BCConfig"),
        _training_args("BCConfig"),
    ),
    "fql": (
        (),
        "flow Q-learning fine-tuning of a BC flow, offline and offline→online",
        _trainer("myreinflow.algos.fql", "FQLConfig"),
        _training_args("FQLConfig"),
    ),
    "mfql": (
        (),
        "MeanFlow Q-learning: a MeanFlow's one step as the actor, FQL's critic",
        _trainer("myreinflow.algos.mfql", "MFQLConfig"),
        _training_args("MFQLConfig"),
    ),
    "qc": (
        (),
        "Q-chunking's best-of-N: the BC flow acts, the best of N samples by the critic (FQL's)",
        _trainer("myreinflow.algos.qc", "QCConfig"),
        _training_args("QCConfig"),
    ),
    "reinflow": (
        (),
        "ReinFlow: online PPO fine-tuning of a BC or FQL policy through its noise-injected sampler",
        _trainer("myreinflow.algos.reinflow", "ReinFlowConfig"),
        _training_args("ReinFlowConfig"),
    ),
    "eval": ((), "evaluation rollouts of a checkpoint over a sweep of inference steps", _eval, _eval_args),
    "toy2d": (
        ("mean-flow-2d",),
        "2D study: ReFlow vs MeanFlow vs 2-rectified flow across NFE",
        _toy2d,
        _training_args("Toy2DConfig"),
    ),
    "summarize": ((), SUMMARIZE_HELP, None, _summarize_args),
}


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; only the command named in `argv` gets its arguments (the others: their name and help),
    so that `myreinflow --help` lists the commands without importing torch."""
    from myreinflow import __version__
    from myreinflow.config import ArgumentParser

    words = [a for a in (sys.argv[1:] if argv is None else argv) if not a.startswith("-")]
    wanted = words[0] if words else None
    parser = ArgumentParser(prog="myreinflow", description=__doc__)
    parser.add_argument("--version", action="version", version=f"myreinflow {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (aliases, help_text, func, add_args) in COMMANDS.items():
        p = sub.add_parser(name, aliases=list(aliases), help=help_text, description=help_text)
        if func is not None:
            p.set_defaults(func=func)
        if wanted in (name, *aliases):
            add_args(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser(argv).parse_args(argv)
    try:
        args.func(args)
    except UserError as exc:
        print(f"myreinflow {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
