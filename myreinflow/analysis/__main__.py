"""`python -m myreinflow.analysis CMD ...` = `myreinflow summarize CMD ...`, without importing torch
(the pipeline's summary and figure jobs start faster)."""

import argparse
import sys

from myreinflow.analysis.cli import add_parser
from myreinflow.errors import UserError

parser = argparse.ArgumentParser(prog="python -m myreinflow.analysis")
add_parser(parser.add_subparsers(dest="command", required=True))
args = parser.parse_args(["summarize", *sys.argv[1:]])
try:
    args.func(args)
except UserError as exc:
    print(f"myreinflow summarize: error: {exc}", file=sys.stderr)
    sys.exit(2)
