"""One place for every hyperparameter's default, bound and help: the config dataclasses. The pipeline
schema's `$defs` are generated from them, the dataclass and the schema refuse the same values, and aliases
(old names) work as flags and YAML keys. Fast: nothing is trained."""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import math
import typing
from pathlib import Path

import jsonschema
import pytest
import yaml

from myreinflow.algos.bc import BCConfig
from myreinflow.errors import UserError
from myreinflow.options import (
    add_dataclass_args,
    allowed_text,
    check_config,
    from_dict,
    load_yaml,
    option,
    resolve,
)
from myreinflow.schema import (
    SCHEMA_DEFS,
    SCHEMA_FILE,
    json_schema,
    main,
    schema_defs,
    schema_defs_yaml,
    write_schema_defs,
)

SCHEMA = yaml.safe_load(SCHEMA_FILE.read_text())
CONFIGS = {name: getattr(importlib.import_module(mod), cls) for name, (mod, cls, _) in SCHEMA_DEFS.items()}
NUMERIC = ("minimum", "exclusive_minimum", "maximum", "exclusive_maximum", "multiple_of")


# ---- (a) the schema's $defs are generated from the dataclasses


@pytest.mark.parametrize("name", sorted(SCHEMA_DEFS))
def test_schema_defs_are_the_dataclass_fields(name):
    """Names, types, choices, bounds and descriptions: the $defs block = json_schema of the dataclass."""
    module, class_name, exclude = SCHEMA_DEFS[name]
    block = SCHEMA["$defs"][name]
    assert block["properties"] == json_schema(CONFIGS[name], exclude)
    assert block == schema_defs()[name]
    assert block["additionalProperties"] is False and f"{module}.{class_name}" in block["description"]


def test_the_known_disagreements_are_resolved_by_the_dataclass_bounds():
    defs = SCHEMA["$defs"]
    fql, bc, toy = (defs[k]["properties"] for k in ("fql_options", "bc_options", "toy2d_options"))
    assert fql["lr_flow"]["exclusiveMinimum"] == 0 and "minimum" not in fql["lr_flow"]
    assert fql["tau"]["exclusiveMinimum"] == 0 and fql["tau"]["maximum"] == 1
    assert toy["ema_decay"]["minimum"] == 0 and toy["ema_decay"]["exclusiveMaximum"] == 1
    assert "maximum" not in toy["ema_decay"]
    assert bc["adaptive_c"]["exclusiveMinimum"] == 0 and toy["adaptive_c"]["exclusiveMinimum"] == 0
    assert bc["time_dim"] == {
        "type": "integer",
        "minimum": 2,
        "multipleOf": 2,
        "description": "size of each sinusoidal time embedding",
    }
    assert bc["hidden"]["items"] == {"type": "integer", "minimum": 1} and bc["hidden"]["minItems"] == 1


def test_regenerating_the_defs_reproduces_the_schema_file(tmp_path, capsys):
    """`python -m myreinflow.schema --write-schema` leaves the file as it is (it is up to date) and
    `--schema` prints the same section."""
    copy = tmp_path / "schema.yaml"
    copy.write_text(SCHEMA_FILE.read_text())
    write_schema_defs(copy)
    assert copy.read_text() == SCHEMA_FILE.read_text()
    assert main(["--schema"]) == 0
    printed = capsys.readouterr().out
    assert printed == schema_defs_yaml() and printed in SCHEMA_FILE.read_text()
    assert yaml.safe_load(printed)["$defs"] == SCHEMA["$defs"]
    assert all(len(line) <= 110 for line in printed.splitlines())


# ---- (b) the dataclass and the schema accept and refuse the same values


def _hint(cls, field):
    hint = typing.get_type_hints(cls)[field.name]
    return (typing.get_args(hint)[0], True) if typing.get_origin(hint) is tuple else (hint, False)


def _probes(meta: dict, kind: type) -> list:
    """Each bound's boundary value, a value just past it and one just inside it."""
    eps = 1 if kind is int else 1e-6
    values = []
    for key, outward in (
        ("minimum", -1),
        ("exclusive_minimum", -1),
        ("maximum", 1),
        ("exclusive_maximum", 1),
    ):
        if key in meta:
            b = meta[key]
            values += [b, b + outward * eps, b - outward * eps]
    if "multiple_of" in meta:
        low = meta.get("minimum", meta.get("exclusive_minimum", 0))
        values += [low + meta["multiple_of"], low + meta["multiple_of"] + 1, 3 * meta["multiple_of"]]
    return [kind(v) for v in values]


def _cases():
    for name, cls in CONFIGS.items():
        defaults = cls()
        for field in dataclasses.fields(cls):
            kind, is_tuple = _hint(cls, field)
            meta = field.metadata
            values = _probes(meta, kind) if kind in (int, float) else []
            if is_tuple:
                values = [(v,) for v in values]
                if "min_items" in meta:
                    values += [(), tuple(getattr(defaults, field.name))[: meta["min_items"]]]
                if meta.get("distinct"):
                    first = getattr(defaults, field.name)[0]
                    values += [(first, first)]
            for value in values:
                yield pytest.param(name, field.name, value, id=f"{name}-{field.name}={value!r}")


CASES = list(_cases())


def test_every_bounded_field_is_probed():
    probed = {(c.values[0], c.values[1]) for c in CASES}
    for name, cls in CONFIGS.items():
        for field in dataclasses.fields(cls):
            if {*NUMERIC, "min_items", "distinct"} & set(field.metadata):
                assert (name, field.name) in probed
    for key in [("fql_options", "lr_flow"), ("fql_options", "tau"), ("toy2d_options", "ema_decay")]:
        assert key in probed
    assert ("bc_options", "adaptive_c") in probed and ("toy2d_options", "flows") in probed


# fields whose dataclass check also reads another field (which the schema cannot say): that field is set
# so that only the probed field's own bound decides
CONTEXT = {("reinflow_options", "sigma_max"): {"sigma_min": 1e-9}}


@pytest.mark.parametrize(("name", "key", "value"), CASES)
def test_dataclass_and_schema_agree_on_boundary_values(name, key, value):
    cls = CONFIGS[name]
    _, _, exclude = SCHEMA_DEFS[name]
    if key in exclude:  # set by the pipeline: the full schema of the dataclass, as json_schema makes it
        block = {"type": "object", "additionalProperties": False, "properties": json_schema(cls)}
    else:
        block = SCHEMA["$defs"][name]
    instance = CONTEXT.get((name, key), {}) | {key: list(value) if isinstance(value, tuple) else value}
    schema_ok = jsonschema.Draft202012Validator(block).is_valid(instance)
    try:
        cfg = from_dict(cls, instance)
    except UserError as exc:
        message = str(exc)
        assert not schema_ok, f"the schema accepts {instance}, the dataclass refuses it: {message}"
        assert "\n" not in message and message.startswith(f"{key} = {value!r} is not allowed; it must be ")
    else:
        assert schema_ok, f"the dataclass accepts {instance}, the schema refuses it"
        assert getattr(cfg, key) == value


@pytest.mark.parametrize(
    ("name", "values", "message"),
    [
        ("bc_options", {"epochs": -2}, "epochs = -2 is not allowed; it must be >= 0"),
        ("bc_options", {"lr": 0}, "lr = 0.0 is not allowed; it must be > 0"),
        ("bc_options", {"time_dim": 3}, "time_dim = 3 is not allowed; it must be an even number >= 2"),
        ("bc_options", {"hidden": []}, "hidden = () is not allowed; it must be one or more values >= 1"),
        ("bc_options", {"hidden": [8, 0]}, "hidden = (8, 0) is not allowed; it must be >= 1 each"),
        ("bc_options", {"ratio_r_neq_t": 1.5}, "ratio_r_neq_t = 1.5 is not allowed; it must be in [0, 1]"),
        ("bc_options", {"threads": -1}, "threads = -1 is not allowed; it must be >= 0"),
        ("bc_options", {"seed": -1}, "seed = -1 is not allowed; it must be >= 0"),
        ("fql_options", {"tau": 0}, "tau = 0.0 is not allowed; it must be in (0, 1]"),
        ("fql_options", {"lr_flow": 0}, "lr_flow = 0.0 is not allowed; it must be > 0"),
        ("toy2d_options", {"ema_decay": 1}, "ema_decay = 1.0 is not allowed; it must be in [0, 1)"),
        ("toy2d_options", {"steps": 0}, "steps = 0 is not allowed; it must be >= 1"),
        (
            "toy2d_options",
            {"inference_steps": [0, 4]},
            "inference_steps = (0, 4) is not allowed; it must be >= 1",
        ),
        (
            "toy2d_options",
            {"inference_steps": [4, 4]},
            "inference_steps = (4, 4) is not allowed; it must be one or more distinct values >= 1",
        ),
        (
            "toy2d_options",
            {"flows": ["reflow", "reflow"]},
            "flows = ('reflow', 'reflow') is not allowed; it must be one or more distinct values",
        ),
        (
            "toy2d_options",
            {"flows": ["diffusion"]},
            "flows 'diffusion' is not one of reflow, meanflow, rectified",
        ),
        (
            "toy2d_options",
            {"meanflow_recipe": "paper", "ratio_r_neq_t": 0.3},
            "meanflow_recipe = 'paper' is not allowed; it must be 'custom' when",
        ),
    ],
)
def test_refusals_are_one_line_in_the_usual_words(name, values, message):
    with pytest.raises(UserError) as info:
        from_dict(CONFIGS[name], values)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_allowed_text_is_generated_from_the_bounds():
    bc, fql, toy = CONFIGS["bc_options"], CONFIGS["fql_options"], CONFIGS["toy2d_options"]

    def text(cls, name):
        return allowed_text(cls, next(f for f in dataclasses.fields(cls) if f.name == name))

    assert text(bc, "epochs") == ">= 0" and text(bc, "lr") == "> 0" and text(bc, "dataset") == ""
    assert text(bc, "ratio_r_neq_t") == "in [0, 1]" and text(fql, "tau") == "in (0, 1]"
    assert text(toy, "ema_decay") == "in [0, 1)" and text(bc, "time_dim") == "an even number >= 2"
    assert text(fql, "flow_hidden") == "one or more values >= 1"
    assert text(toy, "flows") == "one or more distinct values"


def test_option_refuses_unknown_and_contradictory_bounds():
    with pytest.raises(TypeError, match="minumum"):
        option("typo", minumum=0)
    with pytest.raises(TypeError, match="both minimum and exclusive_minimum"):
        option("two lower bounds", minimum=0, exclusive_minimum=0)


def test_the_cli_help_shows_the_bounds():
    parser = argparse.ArgumentParser()
    add_dataclass_args(parser, CONFIGS["fql_options"])
    text = " ".join(parser.format_help().split())
    assert "Polyak rate of the target critic (default: 0.005; in (0, 1])" in text


# ---- (c) aliases: old names of a field, as flags and as YAML keys


@dataclasses.dataclass
class Renamed:
    offline_epochs: int = dataclasses.field(
        default=3, metadata=option("offline passes", minimum=0, aliases=("epochs",))
    )
    widths: tuple[int, ...] = dataclasses.field(
        default=(8,), metadata=option("widths", min_items=1, minimum=1, aliases=("hidden", "layers"))
    )
    quiet_mode: bool = dataclasses.field(default=False, metadata=option("no bars", aliases=("quiet",)))
    verbose: bool = dataclasses.field(default=True, metadata=option("talk", aliases=("chatty",)))
    lr: float = dataclasses.field(default=0.1, metadata=option("learning rate", exclusive_minimum=0))

    def __post_init__(self):
        check_config(self)


def _parse(*argv: str) -> Renamed:
    parser = argparse.ArgumentParser(prog="renamed")
    add_dataclass_args(parser, Renamed)
    return resolve(Renamed, parser.parse_args(argv), None)


def test_alias_flags_set_the_field():
    assert _parse("--epochs", "5").offline_epochs == 5
    assert _parse("--offline_epochs", "6").offline_epochs == 6
    assert _parse("--hidden", "2", "3").widths == (2, 3) and _parse("--layers", "4").widths == (4,)
    assert _parse("--quiet").quiet_mode is True and _parse("--quiet_mode").quiet_mode is True
    assert _parse("--no-chatty").verbose is False and _parse("--no-verbose").verbose is False
    assert _parse("--epochs", "1", "--epochs", "2").offline_epochs == 2  # one name twice: the last wins
    assert _parse("--chatty", "--no-chatty").verbose is False
    assert _parse() == Renamed()
    with pytest.raises(UserError, match=r"offline_epochs = -1 is not allowed; it must be >= 0"):
        _parse("--epochs", "-1")


@pytest.mark.parametrize(
    "argv",
    [
        ("--offline_epochs", "1", "--epochs", "2"),
        ("--epochs", "1", "--offline_epochs", "2"),
        ("--hidden", "2", "--layers", "3"),
        ("--quiet", "--quiet_mode"),
        ("--chatty", "--no-verbose"),
    ],
)
def test_a_field_under_two_flag_names_is_refused(argv, capsys):
    with pytest.raises(SystemExit) as info:
        _parse(*argv)
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "error: argument" in err and "are the same option; give one" in err


def test_alias_flags_share_the_fields_help_and_dest():
    parser = argparse.ArgumentParser(prog="renamed")
    add_dataclass_args(parser, Renamed)
    text = parser.format_help()
    assert "--offline_epochs OFFLINE_EPOCHS, --epochs OFFLINE_EPOCHS" in text
    assert vars(parser.parse_args(["--epochs", "2"])) == {"offline_epochs": 2}


def test_alias_yaml_keys(tmp_path):
    assert from_dict(Renamed, {"epochs": 4, "hidden": [2]}) == Renamed(offline_epochs=4, widths=(2,))
    config = tmp_path / "c.yaml"
    config.write_text("epochs: 4\nquiet: true\n")
    parser = argparse.ArgumentParser()
    add_dataclass_args(parser, Renamed)
    cfg = resolve(Renamed, parser.parse_args(["--offline_epochs", "9"]), str(config))
    assert cfg.offline_epochs == 9 and cfg.quiet_mode is True  # flags override the file, under any name
    for values, pair in [
        ({"epochs": 4, "offline_epochs": 5}, "'offline_epochs' and 'epochs'"),
        ({"hidden": [2], "layers": [3]}, "'hidden' and 'layers'"),
    ]:
        with pytest.raises(UserError) as info:
            from_dict(Renamed, values, source="config file 'c.yaml'")
        message = str(info.value)
        assert (
            message.startswith(f"config file 'c.yaml': keys {pair} are the same option")
            and "\n" not in message
        )
    with pytest.raises(UserError, match="unknown key 'epoch'"):
        from_dict(Renamed, {"epoch": 1})


def test_aliases_are_deprecated_schema_properties():
    props = json_schema(Renamed, {"widths"})
    assert set(props) == {"offline_epochs", "epochs", "quiet_mode", "quiet", "verbose", "chatty", "lr"}
    assert props["epochs"] == {
        "type": "integer",
        "minimum": 0,
        "description": "old name of offline_epochs",
        "deprecated": True,
    }
    block = {"type": "object", "additionalProperties": False, "properties": props}
    assert jsonschema.Draft202012Validator(block).is_valid({"epochs": 0})
    assert not jsonschema.Draft202012Validator(block).is_valid({"epochs": -1})


def test_an_alias_that_is_already_a_name_is_a_bug():
    @dataclasses.dataclass
    class Clash:
        a: int = dataclasses.field(default=0, metadata=option("a", aliases=("b",)))
        b: int = dataclasses.field(default=0, metadata=option("b"))

    with pytest.raises(TypeError, match="alias 'b' of 'a' is already a name"):
        from_dict(Clash, {})


def test_nan_is_refused_by_a_bounded_field():
    with pytest.raises(UserError, match="lr = nan is not allowed; it must be > 0"):
        from_dict(Renamed, {"lr": math.nan})


def test_schema_file_comment_says_how_to_regenerate():
    text = Path(SCHEMA_FILE).read_text()
    assert "python -m myreinflow.schema --write-schema" in text.split("$defs:")[0]


def test_the_configs_name_tuples_are_the_registries_keys():
    """names.py names the flows and 2D targets without importing them (torch): the names must be the
    registries' keys."""
    from myreinflow.flows import FLOWS
    from myreinflow.names import FLOW_KINDS, TOY2D_DISTRIBUTIONS
    from myreinflow.toy2d import DISTRIBUTIONS

    assert tuple(FLOWS) == FLOW_KINDS and tuple(DISTRIBUTIONS) == TOY2D_DISTRIBUTIONS


def test_config_rejects_unknown_keys_and_bad_values(tmp_path):
    with pytest.raises(UserError, match="unknown key 'epoch'; did you mean 'epochs'"):
        from_dict(BCConfig, {"epoch": 3})
    with pytest.raises(UserError, match="unknown key 'zzz'; allowed keys: activation, adaptive_c"):
        from_dict(BCConfig, {"zzz": 3})  # nothing close: every key
    with pytest.raises(UserError, match="epochs = -1"):
        from_dict(BCConfig, {"epochs": -1})
    with pytest.raises(UserError, match="'lr' has value 'fast'"):
        from_dict(BCConfig, {"lr": "fast"})
    with pytest.raises(UserError, match="model 'diffusion'"):
        from_dict(BCConfig, {"flow": "diffusion"})
    cfg = from_dict(BCConfig, {"hidden": [64, 64], "lr": 1})
    assert cfg.hidden == (64, 64) and cfg.lr == 1.0
    (tmp_path / "bad.yaml").write_text("epochs: [1\n")
    with pytest.raises(UserError, match="not valid YAML"):
        load_yaml(tmp_path / "bad.yaml")
