"""Checkpoints: one dict of tensors and plain values, saved atomically, loaded with weights_only=True.

Layout (version 2): `stage` (bc, fql, toy2d/<model>), `config` (the run's config as a dict), `dataset`
(env spec and reference scores, for evaluation), `policies` ({name: ChunkPolicy state}; the names are the
eval CSV's `policy` column: flow, onestep, mlp, categorical; the first is the checkpoint's main policy),
the training state (`step`, `epoch`, optimizer, scheduler, `rng`, ...) and whatever the algorithm adds.
Version-1 checkpoints (the flow under `policy`, FQL's actor under `onestep`, BC's `flow` option, the 2D
study's `epochs`) are read by upgrading them in memory.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import torch

from myreinflow.errors import UserError
from myreinflow.names import FLOW_KINDS
from myreinflow.utils import atomic_path

FORMAT = "myreinflow-checkpoint"
VERSION = 2
READABLE = (1, 2)
# version 1 → 2 renames of config keys, per stage prefix
V1_CONFIG_RENAMES = {
    "bc": {"flow": "model"},
    "toy2d": {"epochs": "steps", "rectified_epochs": "rectified_train_steps"},
}


def save_checkpoint(path: str | Path, payload: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, "version": VERSION, **payload}, tmp)


def load_checkpoint(path: str | Path, map_location="cpu") -> dict:
    """Load a myreinflow checkpoint; missing, corrupt or foreign files raise one clear UserError."""
    path = Path(path)
    if path.is_dir():  # a run directory stands for the checkpoint in it
        if not (path / "model.pt").is_file():
            raise UserError(f"checkpoint {str(path)!r} is a directory without a model.pt")
        path = path / "model.pt"
    if not path.is_file():
        raise UserError(f"checkpoint {str(path)!r} does not exist")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, zipfile.BadZipFile, EOFError, ValueError, OSError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        reason = reason if len(reason) <= 120 else reason[:120].rsplit(" ", 1)[0] + " …"  # whole words
        raise UserError(f"checkpoint {str(path)!r} is corrupt or not a torch file ({reason})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise UserError(f"checkpoint {str(path)!r} is not a myreinflow checkpoint (no {FORMAT!r} format tag)")
    if ckpt.get("version") not in READABLE:
        raise UserError(
            f"checkpoint {str(path)!r} has version {ckpt.get('version')}; this code reads versions "
            f"{', '.join(map(str, READABLE))}"
        )
    return _upgrade_v1(ckpt) if ckpt["version"] == 1 else ckpt


def policy_name(kind: str) -> str:
    """A policy's name in checkpoints and the eval CSV's `policy` column: flow (any flow), else its kind."""
    return "flow" if kind in FLOW_KINDS else kind


def _upgrade_v1(ckpt: dict) -> dict:
    """Version 1 → 2, in memory: `policy`/`onestep` → `policies`, renamed config keys, toy RNG key."""

    ckpt = dict(ckpt, version=VERSION, upgraded_from=1)
    policies = {}
    if "policy" in ckpt:
        state = ckpt.pop("policy")
        policies[policy_name(state["spec"]["kind"])] = state
    if "onestep" in ckpt:
        policies["onestep"] = ckpt.pop("onestep")
    if policies:
        ckpt["policies"] = policies
    renames = V1_CONFIG_RENAMES.get(str(ckpt.get("stage", "")).split("/")[0], {})
    ckpt["config"] = {renames.get(k, k): v for k, v in ckpt.get("config", {}).items()}
    rng = ckpt.get("rng", {})
    if "data" in rng:  # the 2D study's data generator
        ckpt["rng"] = {"torch": rng["torch"], "generator": rng["data"]}
    return ckpt


def load_for_resume(
    path: Path,
    stage: str,
    config: dict,
    resumable_keys: set[str],
    map_location,
    defaults: dict | None = None,
    replace: bool = False,
) -> dict | None:
    """The checkpoint at `path` if it exists and belongs to the same run (same stage, same config but for
    `resumable_keys`); None if there is none; UserError naming the first differing key otherwise (with
    `replace`: None, after a line saying what differs; the run then starts afresh and overwrites it). A
    key that the checkpoint's config lacks (an option added after it was written) matches its value in
    `defaults`: options are added with defaults that keep the earlier behaviour."""
    if not Path(path).is_file():
        return None
    ckpt = load_checkpoint(path, map_location=map_location)
    if ckpt.get("upgraded_from"):
        raise UserError(
            f"{path} is a version-{ckpt['upgraded_from']} checkpoint: it evaluates, but this code resumes "
            f"only version {VERSION}; use another --out or delete it"
        )
    old = ckpt.get("config", {})
    defaults = defaults or {}
    same = lambda k: old[k] == config[k] if k in old else k in defaults and defaults[k] == config[k]  # noqa: E731
    diff = [k for k in config if k not in resumable_keys and not same(k)]
    if ckpt.get("stage") != stage or diff:
        what = "stage"
        if diff:
            k = diff[0]
            theirs = repr(old[k]) if k in old else f"absent (so its default, {defaults.get(k)!r})"
            what = f"key {k!r}: {theirs} vs {config[k]!r}"
        if replace:
            print(f"{path} holds a different run ({what}): starting afresh (--replace_other_run)")
            return None
        raise UserError(f"{path} holds a different run ({what}); use another --out or delete it")
    return ckpt
