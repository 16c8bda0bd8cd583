"""Single-task rewards of OGBench manipulation data, relabelled from the stored states by OGBench itself.

A manipulation dataset is task-agnostic play: its rewards are 0 and its infos keep the simulator state of
every observation (qpos, qvel and, for scene and puzzle, the button states). Choosing one of the env's 5
evaluation tasks gives rewards and masks through ``ogbench.relabel_utils.relabel_dataset``, exactly as
``ogbench.make_env_and_datasets('<dataset>-singletask-task<N>-v0')`` computes them:

- ``dense`` (OGBench's): reward = satisfied subtasks − all subtasks of the state s_t, so −1/0 on
  cube-single; ``sparse`` (Q-chunking's ``--sparse``): reward = success(s_t) − 1;
- mask = 0 where s_t solves the task. The singletask envs also judge success *before* the action
  (``success_timing='pre'``), so the reward of a transition belongs to its first state.

Play episodes go on past a success; the chunked sampler stops bootstrapping there (`data/chunks.py`).
"""

from __future__ import annotations

import json
import os
import re
import warnings

import numpy as np

from myreinflow.errors import UserError
from myreinflow.utils import close_and_release

STATE_KEYS = ("qpos", "qvel", "button_states")  # simulator states that OGBench data keeps in its infos
META_KEY = "myreinflow_ogbench_env"  # dataset metadata: the OGBench env the data was collected in
TASK_STATS_KEY = "myreinflow_task_goal_reached"  # and per task, the fraction of episodes reaching its goal
NUM_TASKS = 5  # every OGBench manipulation env has 5 evaluation tasks
DEFAULT_TASKS = {"cube": 2, "scene": 2, "puzzle": 4}  # the FQL and Q-chunking papers' default tasks
REWARDS = ("dense", "sparse")


def import_ogbench():
    """The `ogbench` package, its envs registered with Gymnasium, quietly: no display here, so glfw (its
    default renderer) would complain on import, and its float64 action bounds make Gymnasium warn."""
    os.environ.setdefault("MUJOCO_GL", "egl")
    warnings.filterwarnings("ignore", message=".*precision lowered by casting to float32.*")
    import ogbench

    return ogbench


def ogbench_env(dataset) -> str | None:
    """The OGBench env (e.g. ``cube-single-v0``) of a Minari dataset made from OGBench data, else None."""
    return dataset.storage.metadata.get(META_KEY)


def default_task(env_name: str) -> int:
    return DEFAULT_TASKS[env_name.split("-")[0]]


def task_env_id(env_name: str, task: int) -> str:
    """The evaluation env of one task: cube-single-v0, 2 → cube-single-singletask-task2-v0."""
    if not 1 <= task <= NUM_TASKS:
        raise UserError(f"task {task} of {env_name} is not allowed; use 1..{NUM_TASKS} (0 = the default)")
    name, version = re.fullmatch(r"(.+)-(v\d+)", env_name).groups()
    return f"{name}-singletask-task{task}-{version}"


def resolve_task(env_name: str | None, task: int, dataset_id: str) -> int | None:
    """The task a run uses: `task`, or the env's default for 0; None for data that is not OGBench's
    (then `task` must be 0)."""
    if env_name is None:
        if task:
            raise UserError(
                f"task {task} is not allowed for dataset {dataset_id!r}: only OGBench manipulation datasets "
                "have tasks; use task 0"
            )
        return None
    return task or default_task(env_name)


def make_task_env(env_name: str, task: int, **kwargs):
    import gymnasium as gym

    import_ogbench()
    return gym.make(task_env_id(env_name, task), **kwargs)


def relabel(env_name: str, task: int, reward: str, states: dict[str, np.ndarray], env=None):
    """(rewards, masks) of the states ``{qpos (N, nq)[, button_states (N, nb)]}`` for one task."""
    from ogbench.relabel_utils import relabel_dataset

    if reward not in REWARDS:
        raise UserError(f"reward {reward!r} is not allowed; use one of: {', '.join(REWARDS)}")
    data = {k: np.asarray(v) for k, v in states.items()}
    own_env = env is None  # released at once: a training job builds its own envs for evaluation
    env = make_task_env(env_name, task) if own_env else env
    try:
        relabel_dataset(task_env_id(env_name, task), env, data)
    finally:
        if own_env:
            close_and_release(env)
    rewards, masks = data["rewards"], data["masks"]
    if reward == "sparse":
        rewards = -(rewards != 0).astype(np.float32)
    return rewards, masks


def _stacked_states(episodes: list[dict], lengths: list[int]) -> tuple[dict, np.ndarray]:
    """The first `lengths[i]` states of each episode, concatenated, and the episodes' bounds in them."""
    parts = list(zip(episodes, lengths, strict=True))
    states = {k: np.concatenate([ep["states"][k][:n] for ep, n in parts]) for k in episodes[0]["states"]}
    return states, np.cumsum([0, *lengths])


def relabel_episodes(episodes: list[dict], env_name: str, task: int, reward: str) -> list[dict]:
    """Episodes with `rewards` and per-step `masks` of one task, from their stored `states` (one per
    observation; the transition of step t gets the reward and mask of its state s_t)."""
    states, bounds = _stacked_states(episodes, [len(ep["actions"]) for ep in episodes])
    rewards, masks = relabel(env_name, task, reward, states)
    return [
        {**ep, "rewards": rewards[a:b], "masks": masks[a:b]}
        for ep, a, b in zip(episodes, bounds[:-1], bounds[1:], strict=True)
    ]


def task_card(meta: dict) -> dict:
    """The card entries of an OGBench dataset (from its Minari metadata): its env, default task, and per
    task its evaluation env and the fraction of episodes that reach the task's goal."""
    env_name = meta[META_KEY]
    reached = json.loads(meta[TASK_STATS_KEY])
    return {
        "ogbench_env": env_name,
        "default_task": default_task(env_name),
        "tasks": [
            {"task": t, "env_id": task_env_id(env_name, t), "episodes_reaching_goal": r}
            for t, r in enumerate(reached, start=1)
        ],
    }


def goal_reached(episodes: list[dict], env_name: str) -> list[float]:
    """Per task 1..5, the fraction of episodes in which some state solves the task."""
    states, bounds = _stacked_states(episodes, [len(ep["observations"]) for ep in episodes])
    env_ranges = list(zip(bounds[:-1], bounds[1:], strict=True))
    out = []
    env = make_task_env(env_name, 1)  # one env for all tasks: building one takes a second
    try:
        for task in range(1, NUM_TASKS + 1):
            env.unwrapped._reward_task_id = task  # all that tells the single-task envs apart
            _, masks = relabel(env_name, task, "dense", states, env)
            out.append(float(np.mean([(masks[a:b] == 0).any() for a, b in env_ranges])))
    finally:
        close_and_release(env)
    return out
