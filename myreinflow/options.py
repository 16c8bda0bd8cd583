"""Dataclass configs ⇄ YAML files ⇄ CLI flags, with one-line errors for unknown keys and bad values.

Precedence: dataclass defaults < `--config FILE` (YAML) < flags given on the command line.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import functools
import re
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from myreinflow.errors import UserError, unknown_key
from myreinflow.tracking import WANDB_MODES

# the bounds `option` takes, in JSON-schema words: its keyword → the schema's keyword. Numeric bounds of a
# tuple field apply to each item; min_items and distinct to the tuple.
BOUNDS = {
    "minimum": "minimum",
    "exclusive_minimum": "exclusiveMinimum",
    "maximum": "maximum",
    "exclusive_maximum": "exclusiveMaximum",
    "multiple_of": "multipleOf",
    "min_items": "minItems",
    "distinct": "uniqueItems",
}
ITEM_BOUNDS = ("minimum", "exclusive_minimum", "maximum", "exclusive_maximum", "multiple_of")


def option(help_text: str, *, choices=None, aliases: tuple[str, ...] = (), **bounds) -> dict:
    """Field metadata: the flag's help, optional `choices`, `aliases` (old names that still work as
    flags and YAML keys) and bounds in JSON-schema words (see BOUNDS), e.g. `minimum=0`,
    `exclusive_minimum=0`, `maximum=1`, `multiple_of=2`, `min_items=1`, `distinct=True`. `check_config`
    enforces them, `add_dataclass_args` makes the flags and `json_schema` the pipeline schema of them."""
    unknown = sorted(set(bounds) - set(BOUNDS))
    if unknown:
        raise TypeError(f"option() got an unknown bound {unknown[0]!r}; known: {', '.join(BOUNDS)}")
    for low, high in (("minimum", "exclusive_minimum"), ("maximum", "exclusive_maximum")):
        if low in bounds and high in bounds:
            raise TypeError(f"option() got both {low} and {high}")
    meta: dict[str, Any] = {"help": help_text}
    if choices is not None:
        meta["choices"] = tuple(choices)
    if aliases:
        meta["aliases"] = tuple(aliases)
    return meta | {k: v for k, v in bounds.items() if v is not None and v is not False}


def param(default, help_text: str, **kw) -> dataclasses.Field:
    """A config field in one line: its default, help, and `option`'s choices, aliases and bounds."""
    return dataclasses.field(default=default, metadata=option(help_text, **kw))


def inherited(base, name: str, default, help_text: str | None = None) -> dataclasses.Field:
    """A subclass's field that changes only the default of `base`'s field `name`: its choices, bounds
    and aliases stay (and its help, unless `help_text` is given)."""
    meta = dict(_fields(base)[name].metadata)
    if help_text is not None:
        meta["help"] = help_text
    return dataclasses.field(default=default, metadata=meta)


@dataclasses.dataclass
class RunOptions:
    """How a training run runs, not what it computes: device, threads and logging. The base of every
    trainer's config; changing one of these never makes a checkpoint stale."""

    device: str = param("auto", "auto (CUDA if available), cpu, cuda")
    threads: int = param(0, "torch CPU threads (0 = the CPUs allocated to the job)", minimum=0)
    wandb_mode: str = param("offline", "Weights & Biases mode", choices=WANDB_MODES)
    wandb_project: str = param("myreinflow", "Weights & Biases project")
    no_wandb: bool = param(False, "turn WandB off (same as --wandb_mode disabled)")
    replace_other_run: bool = param(
        False,
        "a checkpoint at the output directory that holds another run (other options) is replaced, not "
        "refused (the pipeline's: its runs resume where they stopped, a changed option retrains)",
    )

    RUN_KEYS: typing.ClassVar[frozenset[str]] = frozenset(
        {"device", "threads", "wandb_mode", "wandb_project", "no_wandb", "replace_other_run"}
    )

    @property
    def wandb(self) -> str:
        """The WandB mode in effect (`no_wandb` wins)."""
        return "disabled" if self.no_wandb else self.wandb_mode


@functools.cache
def type_hints(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def field_type(cls, field: dataclasses.Field):
    hint = type_hints(cls)[field.name]
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):  # Optional[X] → X
        hint = next(a for a in args if a is not type(None))
        args = typing.get_args(hint)
    return hint, args


def _coerce(cls, field: dataclasses.Field, value: Any):
    """Check and convert one value to the field's type (YAML gives lists for tuples, ints for floats)."""
    if value is None:
        return None
    hint, args = field_type(cls, field)
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


@functools.cache
def _aliases(cls) -> dict[str, str]:
    """{alias: field name} of dataclass `cls` (an alias that is a field or another field's alias is a bug)."""
    names, aliases = set(_fields(cls)), {}
    for field in dataclasses.fields(cls):
        for alias in field.metadata.get("aliases", ()):
            if alias in names or alias in aliases:
                raise TypeError(f"{cls.__name__}: alias {alias!r} of {field.name!r} is already a name")
            aliases[alias] = field.name
    return aliases


def from_dict(cls, values: dict, source: str = "config"):
    """Build dataclass `cls` from a dict; unknown keys and ill-typed values raise UserError. A field's
    alias (an old name) stands for the field; giving a field under two names is an error."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values = dict(values)
    for name in dict.fromkeys(_aliases(cls).values()):
        given = [k for k in (name, *fields[name].metadata["aliases"]) if k in values]
        if len(given) > 1:
            raise UserError(
                f"{source}: keys {given[0]!r} and {given[1]!r} are the same option "
                f"({', '.join(fields[name].metadata['aliases'])}: old names of {name!r}); give one of them"
            )
        if given and given[0] != name:
            values[name] = values.pop(given[0])
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise unknown_key(source, unknown[0], sorted(fields))
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


class _OneSpelling(argparse.Action):
    """Base of the actions of a flag with aliases: `--new 1 --old 2` is refused (one option, two names);
    the same name twice is not (the last wins, as for any flag)."""

    def _check_spelling(self, namespace: argparse.Namespace, option_string: str | None) -> None:
        spelling = "--" + option_string.removeprefix("--").removeprefix("no-") if option_string else None
        last = getattr(self, "_last", None)
        if last is not None and last[0] is namespace and last[1] != spelling:
            raise argparse.ArgumentError(self, f"{last[1]} and {spelling} are the same option; give one")
        self._last = (namespace, spelling)


class _Store(_OneSpelling):
    def __call__(self, parser, namespace, values, option_string=None):
        self._check_spelling(namespace, option_string)
        setattr(namespace, self.dest, values)


class _StoreTrue(_OneSpelling):
    def __init__(self, option_strings, dest, default=False, help=None):
        super().__init__(option_strings, dest, nargs=0, const=True, default=default, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        self._check_spelling(namespace, option_string)
        setattr(namespace, self.dest, True)


class _BooleanOptional(_OneSpelling, argparse.BooleanOptionalAction):
    def __call__(self, parser, namespace, values, option_string=None):
        self._check_spelling(namespace, option_string)
        super().__call__(parser, namespace, values, option_string)


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser, whose error for a mistyped choice also says which choice was probably meant."""

    def error(self, message: str):
        bad = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if bad:
            close = difflib.get_close_matches(bad[1], re.findall(r"'?([^',\s]+)'?", bad[2]), n=1)
            message += f"; did you mean {close[0]!r}?" if close else ""
        super().error(message)


# the flags that say what a command runs on and where its results go: listed first in --help
MAIN_FLAGS = (
    "checkpoint",
    "dataset",
    "source",
    "task",
    "reward",
    "model",
    "init",
    "policy",
    "flow",
    "epochs",
    "env_steps",
)
MAIN_FLAGS += ("seed", "out")


def add_dataclass_args(parser: argparse.ArgumentParser, cls, skip: tuple[str, ...] = ()) -> None:
    """One `--name` flag per field (default SUPPRESS, so only flags the user typed override the YAML),
    with the field's aliases as further names of the flag; MAIN_FLAGS first, in their own group."""
    _aliases(cls)  # checks them
    main = parser.add_argument_group("what to run")
    rest = parser.add_argument_group("hyperparameters and options")
    order = {name: i for i, name in enumerate(MAIN_FLAGS)}
    fields = sorted(dataclasses.fields(cls), key=lambda f: order.get(f.name, len(order)))  # stable
    for field in fields:
        if field.name in skip:
            continue
        group = main if field.name in order else rest
        hint, args = field_type(cls, field)
        help_text = field.metadata.get("help", "")
        default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
        allowed = allowed_text(cls, field)
        help_text += f" (default: {default}" + (f"; {allowed})" if allowed else ")")
        help_text = help_text.replace("%", "%%")  # argparse formats help with %
        kw: dict[str, Any] = {"default": argparse.SUPPRESS, "help": help_text, "dest": field.name}
        metavar = field.name.upper()
        if "choices" in field.metadata:
            kw["choices"] = field.metadata["choices"]
            metavar = "{" + ",".join(kw["choices"]) + "}"
        aliases = field.metadata.get("aliases", ())
        flags = [f"--{name}" for name in (field.name, *aliases)]
        if hint is bool:
            if default is False:
                action = _StoreTrue if aliases else "store_true"
            else:
                action = _BooleanOptional if aliases else argparse.BooleanOptionalAction
            group.add_argument(*flags, action=action, **kw)
        elif typing.get_origin(hint) is tuple:
            kw |= {"action": _Store} if aliases else {}
            group.add_argument(*flags, type=args[0], nargs="+", metavar=metavar, **kw)
        else:
            kw |= {"action": _Store} if aliases else {}
            group.add_argument(*flags, type=hint, metavar=metavar, **kw)


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


def defaults_of(cls) -> dict:
    """{field: its default} of a config dataclass, as plain YAML values (tuples become lists)."""
    values = {}
    for f in dataclasses.fields(cls):
        value = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        values[f.name] = list(value) if isinstance(value, tuple) else value
    return values


def to_yaml(cfg) -> str:
    """A config as the YAML of `config.yaml` (keys in field order)."""
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)


def _range_text(meta) -> str:
    """What the numeric bounds of `meta` allow: '>= 0', '> 0', 'in (0, 1]', 'an even number >= 2'
    ('' when there are none)."""
    low = next(((b, meta[k]) for k, b in (("minimum", "["), ("exclusive_minimum", "(")) if k in meta), None)
    high = next(((b, meta[k]) for k, b in (("maximum", "]"), ("exclusive_maximum", ")")) if k in meta), None)
    if low and high:
        text = f"in {low[0]}{low[1]}, {high[1]}{high[0]}"
    elif low:
        text = {"[": ">= ", "(": "> "}[low[0]] + str(low[1])
    elif high:
        text = {"]": "<= ", ")": "< "}[high[0]] + str(high[1])
    else:
        text = ""
    if "multiple_of" in meta:
        step = meta["multiple_of"]
        text = f"{'an even number' if step == 2 else f'a multiple of {step}'} {text}".strip()
    return text


def _in_range(meta, value) -> bool:
    """Whether a number keeps the numeric bounds of `meta` (NaN keeps none)."""
    checks = {
        "minimum": lambda b: value >= b,
        "exclusive_minimum": lambda b: value > b,
        "maximum": lambda b: value <= b,
        "exclusive_maximum": lambda b: value < b,
        "multiple_of": lambda b: value % b == 0,
    }
    return all(check(meta[k]) for k, check in checks.items() if k in meta)


def _is_tuple(cls, field: dataclasses.Field) -> bool:
    return typing.get_origin(field_type(cls, field)[0]) is tuple


def allowed_text(cls, field: dataclasses.Field) -> str:
    """The values a field's bounds allow, in words ('' when unbounded): '>= 0', 'in [0, 1)', … and for
    tuple fields e.g. 'one or more values >= 1', 'one or more distinct values'."""
    meta, text = field.metadata, _range_text(field.metadata)
    if not _is_tuple(cls, field):
        return text
    if not ({"min_items", "distinct"} & set(meta) or text):
        return ""
    count = meta.get("min_items", 0)
    words = ["one or more" if count == 1 else f"{count} or more" if count else "any number of"]
    words += ["distinct"] * bool(meta.get("distinct")) + ["values"] + [text] * bool(text)
    return " ".join(words)


def field_error(cls, field: dataclasses.Field, value) -> str | None:
    """The one-line error for a value outside the field's choices or bounds (None when it is allowed)."""
    if value is None:
        return None
    meta = field.metadata
    is_tuple = _is_tuple(cls, field) and isinstance(value, list | tuple)
    choices = meta.get("choices")
    for item in value if is_tuple else (value,):
        if choices and item not in choices:
            return f"{field.name} {item!r} is not one of {', '.join(map(str, choices))}"
    allowed = ""
    if is_tuple:
        distinct = len(set(value)) == len(value) or not meta.get("distinct")
        if len(value) < meta.get("min_items", 0) or not distinct:
            allowed = allowed_text(cls, field)
        elif not all(_in_range(meta, item) for item in value):
            allowed = f"{_range_text(meta)} each"
    elif not _in_range(meta, value):
        allowed = _range_text(meta)
    return f"{field.name} = {value!r} is not allowed; it must be {allowed}" if allowed else None


def check_config(cfg, rules: dict[str, tuple[bool, str]] | None = None) -> None:
    """UserError for the first field outside its choices or bounds (each item, for tuple fields; see
    `option`), then for the first broken cross-field rule of `rules` ({key: (ok, what is allowed)})."""
    for field in dataclasses.fields(cfg):
        error = field_error(type(cfg), field, getattr(cfg, field.name))
        if error:
            raise UserError(error)
    for name, (ok, allowed) in (rules or {}).items():
        if not ok:
            raise UserError(f"{name} = {getattr(cfg, name)!r} is not allowed; it must be {allowed}")
