"""Dataclass configs ⇄ YAML files ⇄ CLI flags, with one-line errors for unknown keys and bad values.

Precedence: dataclass defaults < `--config FILE` (YAML) < flags given on the command line.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from myreinflow.errors import UserError
from myreinflow.tracking import WANDB_MODES


def option(help_text: str, **kw) -> dict:
    """Field metadata for `add_dataclass_args`: the flag's help and optional `choices`."""
    return {"help": help_text, **kw}


@dataclasses.dataclass
class RunOptions:
    """How a training run runs, not what it computes: device, threads and logging. The base of every
    trainer's config; changing one of these never makes a checkpoint stale."""

    device: str = dataclasses.field(default="auto", metadata=option("auto (CUDA if available), cpu, cuda"))
    threads: int = dataclasses.field(
        default=0, metadata=option("torch CPU threads (0 = the CPUs allocated to the job)")
    )
    wandb_mode: str = dataclasses.field(
        default="offline", metadata=option("Weights & Biases mode", choices=WANDB_MODES)
    )
    wandb_project: str = dataclasses.field(default="myreinflow", metadata=option("Weights & Biases project"))
    no_wandb: bool = dataclasses.field(
        default=False, metadata=option("turn WandB off (same as --wandb_mode disabled)")
    )

    RUN_KEYS: typing.ClassVar[frozenset[str]] = frozenset(
        {"device", "threads", "wandb_mode", "wandb_project", "no_wandb"}
    )

    def run_rules(self) -> dict[str, tuple[bool, str]]:
        """{name: (ok, allowed)} for these fields, for `check_config`."""
        return {"threads": (self.threads >= 0, ">= 0")}

    @property
    def wandb(self) -> str:
        """The WandB mode in effect (`no_wandb` wins)."""
        return "disabled" if self.no_wandb else self.wandb_mode


def _field_type(cls, field: dataclasses.Field):
    hint = typing.get_type_hints(cls)[field.name]
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):  # Optional[X] → X
        hint = next(a for a in args if a is not type(None))
        args = typing.get_args(hint)
    return hint, args


def _coerce(cls, field: dataclasses.Field, value: Any):
    """Check and convert one value to the field's type (YAML gives lists for tuples, ints for floats)."""
    if value is None:
        return None
    hint, args = _field_type(cls, field)
    origin = typing.get_origin(hint)
    try:
        if origin is tuple:
            if not isinstance(value, list | tuple):
                raise TypeError
            return tuple(args[0](v) for v in value)
        if hint is bool:
            if not isinstance(value, bool):
                raise TypeError
            return value
        if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if hint is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if hint is str and isinstance(value, str):
            return value
    except (TypeError, ValueError):
        pass
    name = getattr(hint, "__name__", str(hint))
    raise UserError(f"config key {field.name!r} has value {value!r}; expected {name}")


def from_dict(cls, values: dict, source: str = "config"):
    """Build dataclass `cls` from a dict; unknown keys and ill-typed values raise UserError."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise UserError(f"{source}: unknown key {unknown[0]!r}; allowed keys: {', '.join(sorted(fields))}")
    return cls(**{k: _coerce(cls, fields[k], v) for k, v in values.items()})


def load_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file {str(path)!r} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise UserError(f"config file {str(path)!r} is not valid YAML: {exc}".splitlines()[0]) from None
    if not isinstance(data, dict):
        raise UserError(f"config file {str(path)!r} must hold a mapping of keys to values")
    return data


def add_dataclass_args(parser: argparse.ArgumentParser, cls, skip: tuple[str, ...] = ()) -> None:
    """One `--name` flag per field (default SUPPRESS, so only flags the user typed override the YAML)."""
    for field in dataclasses.fields(cls):
        if field.name in skip:
            continue
        hint, args = _field_type(cls, field)
        help_text = field.metadata.get("help", "")
        default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
        kw: dict[str, Any] = {"default": argparse.SUPPRESS, "help": f"{help_text} (default: {default})"}
        metavar = field.name.upper()
        if "choices" in field.metadata:
            kw["choices"] = field.metadata["choices"]
            metavar = "{" + ",".join(kw["choices"]) + "}"
        flag = f"--{field.name}"
        if hint is bool:
            action = "store_true" if default is False else argparse.BooleanOptionalAction
            parser.add_argument(flag, action=action, **kw)
        elif typing.get_origin(hint) is tuple:
            parser.add_argument(flag, type=args[0], nargs="+", metavar=metavar, **kw)
        else:
            parser.add_argument(flag, type=hint, metavar=metavar, **kw)


def resolve(cls, args: argparse.Namespace, config_file: str | None):
    """defaults < YAML file < flags."""
    values = load_yaml(config_file) if config_file else {}
    cfg = from_dict(cls, values, source=f"config file {config_file!r}" if config_file else "config")
    names = {f.name for f in dataclasses.fields(cls)}
    flags = {k: v for k, v in vars(args).items() if k in names}
    return dataclasses.replace(cfg, **{k: _coerce(cls, _fields(cls)[k], v) for k, v in flags.items()})


def _fields(cls) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls)}


def to_dict(cfg) -> dict:
    """Plain-YAML dict of a config (tuples become lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(cfg).items()}


def check_config(cfg, rules: dict[str, tuple[bool, str]]) -> None:
    """UserError for the first broken rule ({key: (ok, what is allowed)}) or value outside its choices
    (each item, for tuple fields)."""
    for name, (ok, allowed) in rules.items():
        if not ok:
            raise UserError(f"{name} = {getattr(cfg, name)!r} is not allowed; it must be {allowed}")
    for field in dataclasses.fields(cfg):
        choices = field.metadata.get("choices")
        value = getattr(cfg, field.name)
        for item in value if isinstance(value, tuple) else (value,):
            if choices and item not in choices:
                raise UserError(f"{field.name} {item!r} is not one of {', '.join(map(str, choices))}")
