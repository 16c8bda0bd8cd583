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
        from myreinflow.options import resolve

        cfg = resolve(getattr(importlib.import_module("myreinflow.configs"), config_class), args, args.config)
        path = importlib.import_module(module).train(cfg, progress=not args.quiet)
        print(f"checkpoint: {path}")

    return run


def _eval(args) -> None:
    from myreinflow.configs import EvalConfig
    from myreinflow.evaluation import evaluate_checkpoint
    from myreinflow.options import resolve
    from myreinflow.utils import atomic_path, check_writable, setup_runtime

    cfg = resolve(EvalConfig, args, args.config)
    if not cfg.checkpoint:
        raise UserError("--checkpoint is required: the model.pt to evaluate, or its run directory")
    check_writable(cfg.out)  # before the rollouts, not after
    device = setup_runtime(cfg.device, cfg.threads)
    frame = evaluate_checkpoint(
        cfg.checkpoint,
        cfg.policy,
        list(cfg.inference_steps),
        cfg.episodes,
        cfg.seed,
        cfg.num_envs,
        cfg.act_steps,
        cfg.dataset_name or None,
        device,
        progress=not args.quiet,
        vectorization_mode=cfg.vectorization,
        candidates=cfg.candidates,
        stage_name=cfg.stage_name or None,
    )
    with atomic_path(cfg.out) as tmp:
        frame.to_csv(tmp, index=False)
    columns = [c for c in ("return", "normalized_score", "final_distance", "success") if c in frame]
    for (policy, k), rows in frame.groupby(["policy", "inference_steps"], sort=False):
        print(f"{policy}, inference_steps={k}: " + ", ".join(f"{c}={rows[c].mean():.4g}" for c in columns))
    print(f"wrote {cfg.out}")


def _toy2d(args) -> None:
    import pandas as pd

    from myreinflow.options import resolve
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


def _config_args(config_class: str):
    """What adds the arguments of a command configured by the dataclass `config_class` of
    `myreinflow.configs` (torch-free: `--help` does not import torch)."""

    def add(p: argparse.ArgumentParser) -> None:
        from myreinflow.options import add_dataclass_args

        p.add_argument("--config", default=None, help="YAML file of config keys (flags override it)")
        p.add_argument("--quiet", action="store_true", help="no progress bars")
        add_dataclass_args(p, getattr(importlib.import_module("myreinflow.configs"), config_class))

    return add


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
        _config_args("BCConfig"),
    ),
    "fql": (
        (),
        "flow Q-learning fine-tuning of a BC flow, offline and offline→online",
        _trainer("myreinflow.algos.fql", "FQLConfig"),
        _config_args("FQLConfig"),
    ),
    "mfql": (
        (),
        "MeanFlow Q-learning: a MeanFlow's one step as the actor, FQL's critic",
        _trainer("myreinflow.algos.mfql", "MFQLConfig"),
        _config_args("MFQLConfig"),
    ),
    "qc": (
        (),
        "Q-chunking's best-of-N: the BC flow acts, the best of N samples by the critic (FQL's)",
        _trainer("myreinflow.algos.qc", "QCConfig"),
        _config_args("QCConfig"),
    ),
    "reinflow": (
        (),
        "ReinFlow: online PPO fine-tuning of a BC or FQL policy through its noise-injected sampler",
        _trainer("myreinflow.algos.reinflow", "ReinFlowConfig"),
        _config_args("ReinFlowConfig"),
    ),
    "eval": (
        (),
        "evaluation rollouts of a checkpoint over a sweep of inference steps",
        _eval,
        _config_args("EvalConfig"),
    ),
    "toy2d": (
        ("mean-flow-2d",),
        "2D study: ReFlow vs MeanFlow vs 2-rectified flow across NFE",
        _toy2d,
        _config_args("Toy2DConfig"),
    ),
    "summarize": ((), SUMMARIZE_HELP, None, _summarize_args),
}


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; only the command named in `argv` gets its arguments (the others: their name and help),
    so that `myreinflow --help` lists the commands without importing torch."""
    from myreinflow import __version__
    from myreinflow.options import ArgumentParser

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
