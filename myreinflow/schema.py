"""The pipeline schema's option blocks (`$defs` of workflow/schemas/config.schema.yaml), generated from
the config dataclasses, so that a default, bound or help text is written once: in the dataclass field.

    python -m myreinflow.schema --schema          # print the $defs section
    python -m myreinflow.schema --write-schema    # rewrite it in the schema file
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from pathlib import Path
from typing import Any

import yaml

from myreinflow.errors import UserError
from myreinflow.options import BOUNDS, ITEM_BOUNDS, RunOptions, field_type, type_hints

_JSON_TYPES = {int: "integer", float: "number", str: "string", bool: "boolean"}


def _json_field(cls, field: dataclasses.Field) -> dict:
    """The JSON schema of one field: its type (or enum), bounds and help."""
    hint, args = field_type(cls, field)
    meta = field.metadata
    numeric = {BOUNDS[k]: meta[k] for k in ITEM_BOUNDS if k in meta}
    choices = {"enum": list(meta["choices"])} if "choices" in meta else None
    if typing.get_origin(hint) is tuple:
        prop: dict[str, Any] = {
            "type": "array",
            "items": choices or {"type": _JSON_TYPES[args[0]], **numeric},
        }
        prop |= {BOUNDS[k]: meta[k] for k in ("min_items", "distinct") if k in meta}
    else:
        prop = choices or {"type": _JSON_TYPES[hint], **numeric}
    if type_hints(cls)[field.name] != hint:  # Optional[X]
        prop = {"anyOf": [prop, {"type": "null"}]}
    return prop | {"description": meta.get("help", "")}


def json_schema(cls, exclude: set[str] | frozenset[str] = frozenset(), defaults: bool = False) -> dict:
    """The JSON-schema `properties` of dataclass `cls`'s fields, leaving out the names in `exclude`: the
    type (integer, number, string, boolean, array with `items`), `enum` from the choices, the bounds and
    the help as `description`, and with `defaults` the field's default (Snakemake fills it in). A
    field's aliases are properties too (deprecated, same schema)."""
    properties = {}
    for field in dataclasses.fields(cls):
        if field.name in exclude:
            continue
        properties[field.name] = _json_field(cls, field)
        if defaults:
            value = field.default
            properties[field.name]["default"] = list(value) if isinstance(value, tuple) else value
        for alias in field.metadata.get("aliases", ()):
            old = _json_field(cls, field) | {"description": f"old name of {field.name}", "deprecated": True}
            properties[alias] = old
    return properties


# the `$defs` of workflow/schemas/config.schema.yaml: {name: (module, dataclass, the keys it leaves out)};
# the pipeline sets these keys of a job itself (BC's epochs and inference_steps, FQL's epochs are options)
PIPELINE_KEYS = RunOptions.RUN_KEYS | {"dataset", "source", "task", "reward", "model", "flow", "seed", "out"}
PIPELINE_KEYS |= {"init", "online_env"}  # online_env: the control stages set it
PIPELINE_KEYS |= {"distribution", "flows", "epochs", "steps", "inference_steps"}
SCHEMA_DEFS = {
    "bc_options": ("myreinflow.configs", "BCConfig", PIPELINE_KEYS - {"epochs", "inference_steps"}),
    "fql_options": ("myreinflow.configs", "FQLConfig", PIPELINE_KEYS - {"epochs"}),
    "mfql_options": ("myreinflow.configs", "MFQLConfig", PIPELINE_KEYS - {"epochs"}),
    "qc_options": ("myreinflow.configs", "QCConfig", PIPELINE_KEYS - {"epochs"}),
    "toy2d_options": ("myreinflow.configs", "Toy2DConfig", PIPELINE_KEYS),
    # ReinFlow's chain steps are a hyperparameter; the policy it fine-tunes is the stage's choice
    "reinflow_options": (
        "myreinflow.configs",
        "ReinFlowConfig",
        PIPELINE_KEYS - {"inference_steps"} | {"policy"},
    ),
}
# evaluation: the pipeline sets which checkpoint, policy and CSV labels, and how the job runs
EVAL_PIPELINE_KEYS = {"checkpoint", "policy", "dataset_name", "stage_name", "device", "threads", "out"}
EVAL_PIPELINE_KEYS |= {"vectorization", "candidates"}
# an online stage resumes its offline run: only the keys of its online phase may differ
ONLINE_KEYS = {
    "online_steps",
    "online_eval_freq",
    "updates_per_step",
    "online_warmup_steps",
    "eval_episodes",
}
SCHEMA_FILE = Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.schema.yaml"
SCHEMA_HEADER = """\
# Generated from the config dataclasses by `python -m myreinflow.schema --schema` (prints this block) or
# `python -m myreinflow.schema --write-schema` (rewrites it here): change a default, bound or help text in
# the dataclass (`option(...)` in myreinflow/), never here. tests/unit/test_configs.py checks the match.
"""


def schema_defs() -> dict[str, dict]:
    """The `$defs` blocks of the pipeline schema: the options of BC, FQL, MFQL, QC, the 2D study,
    ReinFlow and the online stages."""
    import importlib

    defs = {}
    for name, (module, class_name, exclude) in SCHEMA_DEFS.items():
        cls = getattr(importlib.import_module(module), class_name)
        defs[name] = {
            "type": "object",
            "additionalProperties": False,
            "description": f"keys of {module}.{class_name} that the pipeline does not set itself",
            "properties": json_schema(cls, exclude),
        }
    configs = importlib.import_module("myreinflow.configs")
    evaluation = {
        "eval_settings": (True, "evaluation of every checkpoint"),
        "eval_options": (False, "a dataset entry's evaluation (overrides the top-level eval key by key)"),
    }
    for name, (defaults, what) in evaluation.items():
        defs[name] = {
            "type": "object",
            "additionalProperties": False,
            "description": f"keys of myreinflow.configs.EvalConfig: {what}",
            "properties": json_schema(configs.EvalConfig, EVAL_PIPELINE_KEYS, defaults),
        }
    fql = configs.FQLConfig
    others = {f.name for f in dataclasses.fields(fql)} - ONLINE_KEYS
    defs["online_options"] = {
        "type": "object",
        "additionalProperties": False,
        "description": "keys of myreinflow.configs.FQLConfig for the online phase (the rest: the offline"
        " run's)",
        "properties": json_schema(fql, others),
    }
    return defs


def _yaml_lines(key: str, value, indent: int, width: int = 110) -> list[str]:
    """`key: value` as one flow-style line when it fits in `width`, else as a block (nested)."""

    def dump(v, **kw) -> str:
        return yaml.safe_dump(v, allow_unicode=True, sort_keys=False, **kw).removesuffix("...\n").strip()

    pad = " " * indent
    line = f"{pad}{key}: {dump(value, default_flow_style=True, width=10**6)}"
    if len(line) <= width:
        return [line]
    if not isinstance(value, dict):  # a long text, folded
        return [
            pad + x
            for x in dump({key: value}, default_flow_style=False, width=width - indent - 12).split("\n")
        ]
    lines = [f"{pad}{key}:"]
    for k, v in value.items():
        lines += _yaml_lines(k, v, indent + 2, width)
    return lines


def schema_defs_yaml() -> str:
    """`schema_defs()` as the YAML of the schema file's `$defs` section, with its header comment."""
    lines = ["$defs:"]
    for name, block in schema_defs().items():
        lines.append(f"  {name}:")
        for key, value in block.items():
            if key == "properties":
                lines.append("    properties:")
                for prop, schema in value.items():
                    lines += _yaml_lines(prop, schema, 6)
            else:
                lines += _yaml_lines(key, value, 4)
    return SCHEMA_HEADER + "\n".join(lines) + "\n"


def write_schema_defs(path: str | Path = SCHEMA_FILE) -> None:
    """Replace the `$defs` section (from its header comment, or the `$defs:` line, to the end of the
    file: it is the last section) of the schema file with `schema_defs_yaml()`."""
    path = Path(path)
    text = path.read_text()
    first = SCHEMA_HEADER.splitlines()[0]
    start = text.find(first) if first in text else text.find("\n$defs:") + 1
    if start <= 0:
        raise UserError(f"{path}: no top-level $defs section to replace")
    path.write_text(text[:start] + schema_defs_yaml())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m myreinflow.schema",
        description="The pipeline schema's `$defs` (workflow/schemas/config.schema.yaml), generated from "
        "the config dataclasses.",
    )
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--schema", action="store_true", help="print the $defs section as YAML")
    group.add_argument(
        "--write-schema",
        nargs="?",
        const=str(SCHEMA_FILE),
        metavar="FILE",
        help=f"rewrite the $defs section of FILE (default {SCHEMA_FILE})",
    )
    args = parser.parse_args(argv)
    if args.schema:
        print(schema_defs_yaml(), end="")
    else:
        write_schema_defs(args.write_schema)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
