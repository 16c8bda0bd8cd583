"""Evaluation throughput: env steps/s of `evaluate` (env construction, policy and stepping included)
against the raw step rate of the same env (one env, random actions, no policy) (prints JSON).

    python benchmarks/eval_throughput.py [--env cube-single-singletask-task2-v0] [--episodes 50]
        [--num_envs 5 10 25 50] [--modes sync async] [--inference_steps 1 4 16] [--checkpoint FILE.pt]

Without `--checkpoint` the policy is an untrained ReFlow of the project's default size with the env's
action bounds (episodes then run to the time limit, which is what evaluation costs at worst). The
`ratio` is eval steps/s over raw steps/s, both measured in this run; compare ratios, not absolute
numbers, across machines.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import gymnasium as gym
import numpy as np
import torch

from myreinflow.checkpoint import load_checkpoint
from myreinflow.data.normalize import Normalizer
from myreinflow.data.tasks import import_ogbench
from myreinflow.envs import close_shared_vec_envs, make_env
from myreinflow.evaluation import evaluate
from myreinflow.policy import ChunkPolicy, FlowOptions, build_model, policy_spec
from myreinflow.utils import cpu_name


def env_info(env_id: str) -> dict:
    """The evaluation `dataset` info of a registered env id (OGBench's ids register on its import)."""
    import_ogbench()
    spec = gym.spec(env_id).to_json()
    return {
        "dataset_id": env_id,
        "env_spec": spec,
        "env_id": env_id,
        "ref_min_score": None,
        "ref_max_score": None,
    }


def untrained_policy(info: dict, horizon: int) -> ChunkPolicy:
    env = make_env(info["env_spec"])
    obs_dim, space = env.observation_space.shape[0], env.action_space
    env.close()
    torch.manual_seed(0)
    spec = policy_spec("reflow", obs_dim, space.shape[0], horizon, 1, FlowOptions())
    normalizer = Normalizer(np.zeros(obs_dim), np.ones(obs_dim), space.low, space.high)
    return ChunkPolicy(spec, build_model(spec, "cpu").eval(), normalizer, "cpu")


def raw_rate(info: dict, steps: int) -> tuple[float, float]:
    """(env construction seconds, steps/s of one env with uniform random actions)."""
    start = time.perf_counter()
    env = make_env(info["env_spec"])
    build_s = time.perf_counter() - start
    rng = np.random.default_rng(0)
    low, high = env.action_space.low, env.action_space.high
    env.reset(seed=0)
    start = time.perf_counter()
    for _ in range(steps):
        _, _, terminated, truncated, _ = env.step(rng.uniform(low, high).astype(np.float32))
        if terminated or truncated:
            env.reset()
    rate = steps / (time.perf_counter() - start)
    env.close()
    return build_s, rate


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", default="cube-single-singletask-task2-v0", help="registered env id")
    p.add_argument("--checkpoint", default="", help="evaluate this checkpoint's policy (its env wins)")
    p.add_argument("--episodes", type=int, default=50)
    p.add_argument("--num_envs", type=int, nargs="+", default=[5, 10, 25, 50])
    p.add_argument("--modes", nargs="+", default=["sync"], choices=["sync", "async"])
    p.add_argument("--inference_steps", type=int, nargs="+", default=[1, 4, 16], help="one sweep, as eval")
    p.add_argument("--horizon", type=int, default=1)
    p.add_argument("--raw_steps", type=int, default=3000)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.checkpoint:
        ckpt = load_checkpoint(args.checkpoint, map_location="cpu")
        info = ckpt["dataset"]
        policy = ChunkPolicy.from_state(next(iter(ckpt["policies"].values())), "cpu")
    else:
        info = env_info(args.env)
        policy = untrained_policy(info, args.horizon)
    raws, builds, results = [], [], []
    for mode in args.modes:
        for n in args.num_envs:
            build_s, raw = raw_rate(info, args.raw_steps)  # interleaved: both see the same machine state
            builds.append(build_s)
            raws.append(raw)
            close_shared_vec_envs()  # each setting pays for building its envs, as one `myreinflow eval` does
            start = time.perf_counter()
            rows = evaluate(policy, info, args.inference_steps, args.episodes, 0, n, mode)
            wall = time.perf_counter() - start
            steps = sum(r["length"] for r in rows)
            results.append(
                {
                    "mode": mode,
                    "num_envs": n,
                    "env_steps": steps,
                    "wall_s": round(wall, 2),
                    "steps_per_s": round(steps / wall, 1),
                    "raw_steps_per_s": round(raw, 1),
                    "ratio": round(steps / wall / raw, 3),
                }
            )
            print(json.dumps(results[-1]), flush=True)
    out = {
        "benchmark": "eval_throughput",
        "env": info["env_id"],
        "machine": platform.machine(),
        "cpu": cpu_name(),
        "threads": args.threads,
        "policy": policy.kind if args.checkpoint else "untrained reflow",
        "inference_steps": args.inference_steps,
        "episodes": args.episodes,
        "env_build_s": round(statistics.median(builds), 3),
        "raw_steps_per_s": round(statistics.median(raws), 1),
        "results": results,
        "best": max(results, key=lambda r: r["ratio"]),
    }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
