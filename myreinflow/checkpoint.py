"""Checkpoints: one dict of tensors and plain values, saved atomically, loaded with weights_only=True."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import torch

from myreinflow.errors import UserError
from myreinflow.utils import atomic_path

FORMAT = "myreinflow-checkpoint"
VERSION = 1


def save_checkpoint(path: str | Path, payload: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, "version": VERSION, **payload}, tmp)


def load_checkpoint(path: str | Path, map_location="cpu") -> dict:
    """Load a myreinflow checkpoint; missing, corrupt or foreign files raise one clear UserError."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {str(path)!r} does not exist")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, zipfile.BadZipFile, EOFError, ValueError, OSError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"checkpoint {str(path)!r} is corrupt or not a torch file ({reason[:120]})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise UserError(f"checkpoint {str(path)!r} is not a myreinflow checkpoint (no {FORMAT!r} format tag)")
    if ckpt.get("version") != VERSION:
        raise UserError(
            f"checkpoint {str(path)!r} has version {ckpt.get('version')}; this code reads {VERSION}"
        )
    return ckpt


def load_for_resume(
    path: Path, stage: str, config: dict, resumable_keys: set[str], map_location
) -> dict | None:
    """The checkpoint at `path` if it exists and belongs to the same run (same stage, same config but for
    `resumable_keys`); None if there is none; UserError naming the first differing key otherwise."""
    if not Path(path).is_file():
        return None
    ckpt = load_checkpoint(path, map_location=map_location)
    old = ckpt.get("config", {})
    diff = [k for k in config if k not in resumable_keys and old.get(k) != config[k]]
    if ckpt.get("stage") != stage or diff:
        what = f"key {diff[0]!r}: {old.get(diff[0])!r} vs {config[diff[0]]!r}" if diff else "stage"
        raise UserError(f"{path} holds a different run ({what}); use another --out or delete it")
    return ckpt
