"""myreinflow: flow-matching policies (ReFlow, MeanFlow) for offline and online RL."""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"
__all__ = ["MeanFlow", "ReFlow", "__version__", "load_policy"]


def __getattr__(name: str) -> Any:
    # lazy, so that torch-free parts (the pipeline's summaries and figures) start without importing torch
    if name in ("MeanFlow", "ReFlow"):
        return getattr(importlib.import_module("myreinflow.flows"), name)
    if name == "load_policy":
        return importlib.import_module("myreinflow.policy").load_policy
    raise AttributeError(f"module 'myreinflow' has no attribute {name!r}")
