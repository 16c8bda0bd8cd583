"""Dataset recipes as data: ``recipes.yaml`` in this package plus an optional user file.

Two kinds of recipe. A :class:`Recipe` generates a dataset with a scripted expert: environment, expert,
number of episodes, seed and a mix of behaviour components (noise, random actions, decoy goals). An
:class:`OracleRecipe` (an entry with an ``oracle`` key) generates an OGBench manipulation dataset with the
oracles of the ``ogbench`` package, following OGBench's ``generate_manipspace.py``. Set
``MYREINFLOW_RECIPES`` to one or more YAML files (``os.pathsep``-separated) in the same format to add your
own.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from myreinflow.errors import UserError, unknown_key

BUILTIN_FILE = Path(__file__).with_name("recipes.yaml")
USER_ENV_VAR = "MYREINFLOW_RECIPES"
EXPERT_NAMES = ("pusher", "cartpole")  # keys of experts.EXPERTS, kept here so recipes load without gymnasium
_ID_RE = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*-v\d+$")


@dataclass(frozen=True)
class Component:
    """One behaviour in a dataset: the expert with optional perturbations."""

    fraction: float
    sigma: float = 0.0  # std of Gaussian action noise
    eps: float = 0.0  # probability of a uniform-random action
    decoy: bool = False  # steer to a wrong goal; observations keep the true goal
    switch_every: int | None = None  # with decoy: alternate decoy / true goal every N steps


@dataclass(frozen=True)
class Recipe:
    id: str
    env: str
    expert: str
    components: tuple[Component, ...]
    episodes: int
    seed: int = 0
    ref_episodes: int = 100
    description: str = ""

    def episode_components(self) -> np.ndarray:
        """Component index of every episode: counts from the fractions (largest remainder), order shuffled
        with the recipe seed so any prefix of the dataset holds a similar mix."""
        fr = np.array([c.fraction for c in self.components])
        raw = fr / fr.sum() * self.episodes
        counts = np.floor(raw).astype(int)
        counts[np.argsort(-(raw - counts), kind="stable")[: self.episodes - counts.sum()]] += 1
        labels = np.repeat(np.arange(len(self.components)), counts)
        return np.random.default_rng(self.seed).permutation(labels)

    def episode_seeds(self) -> np.ndarray:
        return self.seed + np.arange(self.episodes)

    def ref_seeds(self) -> np.ndarray:
        """Seeds for the reference scores, disjoint from the dataset's."""
        return self.seed + self.episodes + np.arange(self.ref_episodes)


@dataclass(frozen=True)
class OracleRecipe:
    """An OGBench manipulation dataset made by the package's oracles (OGBench's published recipe).

    ``plan`` is OGBench's ``play`` data (the non-Markovian plan oracle with temporally smoothed noise),
    ``markov`` its ``noisy`` data (the closed-loop oracle with per-episode Gaussian noise xi ~ U(0, noise) and
    ``p_random_action``). Each episode runs ``episode_steps`` steps; the oracle takes a new random target
    whenever it is done with the current one."""

    id: str
    env: str  # an OGBench manipulation env: cube-single-v0, cube-double-v0, scene-v0, puzzle-3x3-v0, ...
    oracle: str  # plan (OGBench's play datasets) or markov (noisy)
    episodes: int
    episode_steps: int = 1000
    noise: float = 0.1
    noise_smoothing: float = 0.5  # plan oracle only
    min_norm: float = 0.4  # markov oracle only
    p_random_action: float = 0.0
    seed: int = 0
    description: str = ""

    def episode_seeds(self) -> np.ndarray:
        return self.seed + np.arange(self.episodes)


ORACLES = ("plan", "markov")
OGBENCH_ENV_RE = re.compile(r"^(cube-(single|double|triple|quadruple|octuple)|scene|puzzle-\d+x\d+)-v\d+$")


def _check_keys(where: str, data: Any, cls: type, required: set[str]) -> None:
    if not isinstance(data, dict):
        raise UserError(f"{where}: expected a mapping, got {type(data).__name__} {data!r}")
    allowed = [f.name for f in dataclasses.fields(cls) if f.name != "id"]
    for key in data:
        if key not in allowed:
            raise unknown_key(where, key, allowed)
    missing = sorted(required - set(data))
    if missing:
        raise UserError(f"{where}: missing key(s) {', '.join(map(repr, missing))}")


def _number(where: str, key: str, value: Any, lo: float, hi: float | None = None, integer: bool = False):
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type or value < lo or (hi is not None and value > hi):
        kind = "an integer" if integer else "a number"
        bound = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise UserError(f"{where}: {key}={value!r} is not allowed; use {kind} {bound}")
    return int(value) if integer else float(value)


def parse_component(where: str, data: Any) -> Component:
    _check_keys(where, data, Component, {"fraction"})
    decoy = data.get("decoy", False)
    if not isinstance(decoy, bool):
        raise UserError(f"{where}: decoy={decoy!r} is not allowed; use true or false")
    switch = data.get("switch_every")
    if switch is not None:
        switch = _number(where, "switch_every", switch, 1, integer=True)
        if not decoy:
            raise UserError(f"{where}: switch_every={switch} needs decoy: true")
    return Component(
        fraction=_number(where, "fraction", data["fraction"], 0.0, 1.0),
        sigma=_number(where, "sigma", data.get("sigma", 0.0), 0.0),
        eps=_number(where, "eps", data.get("eps", 0.0), 0.0, 1.0),
        decoy=decoy,
        switch_every=switch,
    )


def _description(where: str, data: dict) -> str:
    description = data.get("description", "")
    if not isinstance(description, str):
        raise UserError(f"{where}: description must be text, got {description!r}")
    return description.strip()


def parse_oracle_recipe(dataset_id: str, data: dict, where: str) -> OracleRecipe:
    _check_keys(where, data, OracleRecipe, {"env", "oracle", "episodes"})
    env, oracle = data["env"], data["oracle"]
    if not isinstance(env, str) or not OGBENCH_ENV_RE.match(env):
        raise UserError(
            f"{where}: env={env!r} is not an OGBench manipulation env; use e.g. cube-single-v0, "
            "cube-double-v0, scene-v0, puzzle-3x3-v0"
        )
    if oracle not in ORACLES:
        raise UserError(f"{where}: oracle={oracle!r} is not allowed; use one of: {', '.join(ORACLES)}")
    return OracleRecipe(
        id=dataset_id,
        env=env,
        oracle=oracle,
        episodes=_number(where, "episodes", data["episodes"], 1, integer=True),
        episode_steps=_number(where, "episode_steps", data.get("episode_steps", 1000), 1, integer=True),
        noise=_number(where, "noise", data.get("noise", 0.1), 0.0),
        noise_smoothing=_number(where, "noise_smoothing", data.get("noise_smoothing", 0.5), 0.0),
        min_norm=_number(where, "min_norm", data.get("min_norm", 0.4), 0.0),
        p_random_action=_number(where, "p_random_action", data.get("p_random_action", 0.0), 0.0, 1.0),
        seed=_number(where, "seed", data.get("seed", 0), 0, integer=True),
        description=_description(where, data),
    )


def parse_recipe(dataset_id: str, data: Any, source: str = "recipe") -> Recipe | OracleRecipe:
    """Validates one YAML entry into a :class:`Recipe` (or an :class:`OracleRecipe`, for entries with an
    ``oracle`` key); errors name the id, the key and the value."""
    where = f"recipe {dataset_id!r} ({source})"
    if not isinstance(dataset_id, str) or not _ID_RE.match(dataset_id):
        raise UserError(
            f"{where}: bad dataset id; use 'namespace/name-vN', e.g. 'myreinflow/pusher/expert-v0'"
        )
    if isinstance(data, dict) and "oracle" in data:
        return parse_oracle_recipe(dataset_id, data, where)
    _check_keys(where, data, Recipe, {"env", "expert", "components", "episodes"})
    env, expert = data["env"], data["expert"]
    if not isinstance(env, str) or not env:
        raise UserError(f"{where}: env={env!r} is not allowed; use a Gymnasium id such as 'Pusher-v5'")
    if expert not in EXPERT_NAMES:
        raise UserError(
            f"{where}: expert={expert!r} is not allowed; known experts: {', '.join(EXPERT_NAMES)}"
        )
    comps = data["components"]
    if not isinstance(comps, list) or not comps:
        raise UserError(f"{where}: components must be a non-empty list, got {comps!r}")
    components = tuple(parse_component(f"{where} component {i}", c) for i, c in enumerate(comps))
    total = sum(c.fraction for c in components)
    if abs(total - 1.0) > 1e-6:
        raise UserError(f"{where}: component fractions sum to {total:g}; they must sum to 1")
    for i, c in enumerate(components):
        if c.decoy and expert != "pusher":
            raise UserError(f"{where} component {i}: decoy=true needs expert 'pusher', not {expert!r}")
        if c.sigma > 0 and expert == "cartpole":
            raise UserError(f"{where} component {i}: sigma={c.sigma} needs continuous actions; use eps")
    return Recipe(
        id=dataset_id,
        env=env,
        expert=expert,
        components=components,
        episodes=_number(where, "episodes", data["episodes"], 1, integer=True),
        seed=_number(where, "seed", data.get("seed", 0), 0, integer=True),
        ref_episodes=_number(where, "ref_episodes", data.get("ref_episodes", 100), 1, integer=True),
        description=_description(where, data),
    )


def _load_file(path: Path) -> dict[str, Recipe | OracleRecipe]:
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as e:
        raise UserError(f"cannot read recipe file {str(path)!r}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise UserError(f"recipe file {str(path)!r} is not valid YAML: {str(e).splitlines()[0]}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"recipe file {str(path)!r}: expected a mapping of dataset id -> recipe")
    return {k: parse_recipe(k, v, source=str(path)) for k, v in data.items()}


def load_recipes() -> dict[str, Recipe | OracleRecipe]:
    """Built-in recipes plus those in the files named by ``MYREINFLOW_RECIPES``."""
    recipes = _load_file(BUILTIN_FILE)
    for name in filter(None, os.environ.get(USER_ENV_VAR, "").split(os.pathsep)):
        for rid, recipe in _load_file(Path(name)).items():
            if rid in recipes:
                raise UserError(f"recipe {rid!r} in {name!r} is already defined; pick a new id or version")
            recipes[rid] = recipe
    return recipes


def get_recipe(dataset_id: str) -> Recipe | OracleRecipe:
    """The recipe for ``dataset_id``; :class:`UserError` listing the known ids if there is none."""
    recipes = load_recipes()
    if dataset_id not in recipes:
        raise UserError(f"no recipe for dataset {dataset_id!r}; known recipes: {', '.join(sorted(recipes))}")
    return recipes[dataset_id]
