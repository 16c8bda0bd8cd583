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
