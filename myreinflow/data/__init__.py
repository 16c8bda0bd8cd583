"""Datasets: Minari I/O, locally generated datasets (scripted experts), normalisation, chunked sampling.

The public functions are imported lazily so that e.g. ``myreinflow.data.chunks`` loads without MuJoCo,
Minari or Gymnasium.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "load_dataset": "myreinflow.data.minari_io",
    "dataset_card": "myreinflow.data.minari_io",
    "write_card": "myreinflow.data.minari_io",
    "get_recipe": "myreinflow.data.recipes",
    "generate_dataset": "myreinflow.data.generate",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'myreinflow.data' has no attribute {name!r}")
