"""Shared fixtures: real Minari datasets, generated once per test session in a temporary datasets path."""

import os
from pathlib import Path

import pytest
import torch

# the tests use small networks: one thread is faster, and immune to oversubscription on a busy machine
torch.set_num_threads(1)

TINY_RECIPES = """
myreinflow/pusher/tiny-v0:
  env: Pusher-v5
  expert: pusher
  episodes: 24
  seed: 0
  ref_episodes: 8
  description: tiny expert set for tests
  components:
    - {fraction: 1.0, sigma: 0.05}
myreinflow/ogbench/cube-single-tiny-v0:
  env: cube-single-v0
  oracle: plan
  episodes: 3
  episode_steps: 120
  seed: 0
  description: tiny OGBench play set for tests
myreinflow/cartpole/tiny-v0:
  env: CartPole-v1
  expert: cartpole
  episodes: 6
  seed: 0
  ref_episodes: 8
  description: tiny discrete-action expert set for tests
  components:
    - {fraction: 1.0}
"""


@pytest.fixture(scope="session")
def minari_root(tmp_path_factory) -> Path:
    """A session-wide MINARI_DATASETS_PATH holding the tiny test datasets (set for every test)."""
    root = tmp_path_factory.mktemp("minari")
    recipes = root / "recipes.yaml"
    recipes.write_text(TINY_RECIPES)
    old = {k: os.environ.get(k) for k in ("MINARI_DATASETS_PATH", "MYREINFLOW_RECIPES")}
    os.environ["MINARI_DATASETS_PATH"] = str(root / "datasets")
    os.environ["MYREINFLOW_RECIPES"] = str(recipes)
    from myreinflow.data import load_dataset

    load_dataset("myreinflow/pusher/tiny-v0", progress=False)
    load_dataset("myreinflow/cartpole/tiny-v0", progress=False)
    yield root / "datasets"
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
