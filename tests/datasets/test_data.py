"""Datasets: scripted experts, recipes, generation into Minari, loading, offline download, dataset cards."""

from __future__ import annotations

import dataclasses
import json
import time

import gymnasium as gym
import minari
import numpy as np
import pytest

from myreinflow.data import dataset_card, generate_dataset, get_recipe, load_dataset, write_card
from myreinflow.data.experts import Decoy, make_policy, reflected_goal
from myreinflow.data.minari_io import _remote_host, _unreachable
from myreinflow.data.recipes import load_recipes, parse_recipe
from myreinflow.errors import UserError

TRUE_GOAL = np.array([0.45, -0.05, -0.323])  # Pusher-v5's goal never moves

TINY = {
    "env": "Pusher-v5",
    "expert": "pusher",
    "episodes": 6,
    "seed": 7,
    "ref_episodes": 2,
    "description": "tiny test recipe",
    "components": [{"fraction": 0.5}, {"fraction": 0.5, "decoy": True}],
}


def rollout(env: gym.Env, policy, seed: int) -> tuple[float, np.ndarray]:
    obs, _ = env.reset(seed=seed)
    policy.reset(seed)
    ret = 0.0
    while True:
        obs, r, term, trunc, _ = env.step(policy(obs))
        ret += r
        if term or trunc:
            return ret, obs


@pytest.fixture
def root(tmp_path, monkeypatch):
    path = tmp_path / "datasets"
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(path))
    return path


@pytest.fixture
def user_recipes(tmp_path, monkeypatch):
    """A user recipe file with a tiny Pusher dataset, registered through MYREINFLOW_RECIPES."""
    path = tmp_path / "recipes.yaml"
    path.write_text(json.dumps({"myreinflow/pusher/tiny-v0": TINY}))  # JSON is YAML
    monkeypatch.setenv("MYREINFLOW_RECIPES", str(path))
    return path


def test_pusher_expert_beats_random():
    env = gym.make("Pusher-v5")
    dist = {}
    for name in ("pusher", "random"):
        finals = [rollout(env, make_policy(name, env), s)[1] for s in range(1, 6)]
        dist[name] = np.mean([np.linalg.norm(o[17:19] - o[20:22]) for o in finals])
    assert dist["pusher"] < 0.15 < 0.2 < dist["random"]


def test_cartpole_expert_reaches_cap():
    env = gym.make("CartPole-v1")
    assert [rollout(env, make_policy("cartpole", env), s)[0] for s in range(3)] == [500.0] * 3
    assert rollout(env, make_policy("random", env), 0)[0] < 100


def test_perturbations_are_seeded():
    env = gym.make("CartPole-v1")
    a = [rollout(env, make_policy("cartpole", env, eps=0.5), 3)[0] for _ in range(2)]
    assert a[0] == a[1] < 500


def test_generate_load_card_roundtrip(root, user_recipes, tmp_path, monkeypatch):
    ds = load_dataset("myreinflow/pusher/tiny-v0", progress=False)  # auto: a recipe id, so generated
    assert ds.total_episodes == 6 and ds.total_steps == 600
    again = minari.load_dataset("myreinflow/pusher/tiny-v0")
    meta = again.storage.metadata
    assert meta["ref_min_score"] < -100 < -60 < meta["ref_max_score"]
    assert minari.get_normalized_score(again, np.array([meta["ref_max_score"]])) == pytest.approx(1.0)
    assert "myreinflow" in minari.namespace.list_local_namespaces()
    assert not list(root.glob(".*")), "temporary roots must be gone"

    # decoy episodes store the true goal but push the object away from it
    comps = get_recipe("myreinflow/pusher/tiny-v0").episode_components()
    for ep, comp in zip(again.iterate_episodes(), comps, strict=True):
        np.testing.assert_allclose(ep.observations[:, 20:23], np.broadcast_to(TRUE_GOAL, (101, 3)))
        start, end = (np.linalg.norm(ep.observations[i, 17:19] - TRUE_GOAL[:2]) for i in (0, -1))
        assert (end > start) if comp == 1 else (end < start)

    card = dataset_card(again)
    assert card["source"] == "generated" and card["env_id"] == "Pusher-v5" and card["episodes"] == 6
    assert card["ref_min_score"] == meta["ref_min_score"] and 0.0 < card["final_distance_mean"] < 1.0
    expert, decoy = card["components"]
    assert expert["episodes"] == decoy["episodes"] == 3
    assert expert["final_distance_mean"] < card["final_distance_mean"] < decoy["final_distance_mean"]
    write_card(card, tmp_path / "cards" / "tiny.json")
    assert json.loads((tmp_path / "cards" / "tiny.json").read_text()) == card

    # same data whatever the number of workers
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "other"))
    one = generate_dataset("myreinflow/pusher/tiny-v0", progress=False, workers=1)
    for e1, e2 in zip(one.iterate_episodes(), again.iterate_episodes(), strict=True):
        np.testing.assert_array_equal(e1.observations, e2.observations)
        np.testing.assert_array_equal(e1.actions, e2.actions)
    assert one.storage.metadata["ref_max_score"] == meta["ref_max_score"]


def test_cartpole_recipe_and_atomic_failure(root, monkeypatch):
    recipe = dataclasses.replace(get_recipe("myreinflow/cartpole/expert-v0"), episodes=3, ref_episodes=2)

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(minari, "create_dataset_from_buffers", boom)
    with pytest.raises(KeyboardInterrupt):
        generate_dataset(recipe, progress=False, workers=1)
    assert not (root / recipe.id).exists() and not list(root.glob(".*"))
    monkeypatch.undo()
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))

    ds = generate_dataset(recipe, progress=False, workers=1)
    assert ds.total_steps == 1500 and ds.storage.metadata["ref_max_score"] == 500.0
    with pytest.raises(UserError, match="already exists"):
        generate_dataset(recipe, progress=False)


def test_relative_datasets_path(tmp_path, monkeypatch):
    """A relative MINARI_DATASETS_PATH (as in the README's commands) writes the dataset where it says."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MINARI_DATASETS_PATH", "results/minari")
    recipe = dataclasses.replace(get_recipe("myreinflow/cartpole/expert-v0"), episodes=3, ref_episodes=2)
    assert generate_dataset(recipe, progress=False, workers=1).total_steps == 1500
    assert (tmp_path / "results/minari" / recipe.id / "data/main_data.hdf5").is_file()


def test_bad_inputs_name_the_value(root):
    with pytest.raises(UserError, match=r"myreinflow/pusher/nope-v0.*myreinflow/pusher/expert-v0"):
        load_dataset("myreinflow/pusher/nope-v0")
    with pytest.raises(UserError, match="'bogus'.*auto, minari, generate"):
        load_dataset("myreinflow/pusher/expert-v0", source="bogus")
    with pytest.raises(UserError, match="'myreinflow/pusher/expert-v0' is generated locally"):
        load_dataset("myreinflow/pusher/expert-v0", source="minari")
    with pytest.raises(UserError, match="mujoco/pusher/expert-v0.*known recipes"):
        load_dataset("mujoco/pusher/expert-v0", source="generate")
    with pytest.raises(UserError, match="'sigmaa'; did you mean 'sigma'"):
        parse_recipe("myreinflow/x/y-v0", {**TINY, "components": [{"fraction": 1.0, "sigmaa": 0.1}]})
    with pytest.raises(UserError, match="'episode'"):
        parse_recipe("myreinflow/x/y-v0", {**TINY, "episode": 3})
    with pytest.raises(UserError, match="sum to 0.9"):
        parse_recipe("myreinflow/x/y-v0", {**TINY, "components": [{"fraction": 0.9}]})
    with pytest.raises(UserError, match="decoy=true needs expert 'pusher'"):
        parse_recipe("myreinflow/x/y-v0", {**TINY, "expert": "cartpole", "env": "CartPole-v1"})
    assert {
        "myreinflow/pusher/expert-v0",
        "myreinflow/pusher/mixed-v0",
        "myreinflow/cartpole/expert-v0",
    } <= set(load_recipes())


def test_bad_user_recipe_file(tmp_path, monkeypatch):
    path = tmp_path / "r.yaml"
    path.write_text("myreinflow/pusher/tiny-v0:\n  env: Pusher-v5\n  colour: red\n")
    monkeypatch.setenv("MYREINFLOW_RECIPES", str(path))
    with pytest.raises(UserError, match=f"'colour'.*{path}|{path}.*'colour'"):
        get_recipe("myreinflow/pusher/tiny-v0")


def test_offline_download_fails_fast_and_clean(root):
    if _unreachable(*_remote_host()) is None:
        pytest.skip("the Minari servers are reachable here; this test is about offline machines")
    t0 = time.monotonic()
    with pytest.raises(UserError) as err:
        load_dataset("mujoco/pusher/expert-v0", source="auto", progress=False)
    assert time.monotonic() - t0 < 30
    msg = str(err.value)
    assert "\n" not in msg and "'mujoco/pusher/expert-v0'" in msg and "could not be downloaded" in msg
    assert msg.endswith("myreinflow data --dataset myreinflow/pusher/expert-v0")
    assert not (root / "mujoco").exists() and not list(root.glob(".*"))


def test_decoy_switches_goal_and_keeps_obs():
    class Recorder:
        def __init__(self):
            self.goals, self.resets = [], 0

        def reset(self, seed=None):
            self.resets += 1

        def __call__(self, obs):
            self.goals.append(obs[20:22].copy())
            return np.zeros(7)

    inner = Recorder()
    decoy = Decoy(inner, switch_every=2)
    decoy.reset(0)
    obs = np.zeros(23)
    obs[17:19], obs[20:23] = (0.4, -0.2), TRUE_GOAL
    for _ in range(6):
        decoy(obs)
    np.testing.assert_array_equal(obs[20:23], TRUE_GOAL)  # the caller's observation is untouched
    wrong = reflected_goal(obs)[:2]
    np.testing.assert_allclose(wrong, [0.35, -0.35])
    expected = [wrong, wrong, TRUE_GOAL[:2], TRUE_GOAL[:2], wrong, wrong]
    np.testing.assert_allclose(np.array(inner.goals), np.array(expected))
    assert inner.resets == 1 + 2  # episode start, then a replan at each switch
