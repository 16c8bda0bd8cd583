"""Vectorised evaluation rollouts of chunk policies over a sweep of inference steps.

Each episode e runs in its own env seeded with `seed + e`; the policy's sampling noise for a sweep entry
comes from a generator seeded with (seed, inference_steps), so results are deterministic and do not
depend on the order of the sweep. Chunks run open-loop: all `horizon_steps` actions, then re-plan.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from myreinflow.checkpoint import load_checkpoint
from myreinflow.envs import shared_vec_env, task_metrics
from myreinflow.errors import UserError
from myreinflow.policy import ChunkPolicy, checkpoint_flow, checkpoint_policies
from myreinflow.stats import mean_ci, normalized_score

# evaluation during training uses env seeds from the run's seed + this: apart from the seeds that
# `myreinflow eval` uses by default (0, 1, ...)
EVAL_SEED_OFFSET = 10_000
# online training resets its env with seeds from here on: evaluation seeds (`myreinflow eval`'s
# seed + e, training's seed + EVAL_SEED_OFFSET + e) stay below it, so no evaluation episode is one
# the policy was trained on
ONLINE_SEED_OFFSET = 1_000_000_000


def online_reset_seed(seed: int, env_steps: int) -> int:
    """The env seed of the online episode that starts after `env_steps` steps of run seed `seed`."""
    return ONLINE_SEED_OFFSET + seed * 10_000_000 + env_steps


def rollout(
    policy: ChunkPolicy, envs, seeds: list[int], inference_steps: int, generator, act_steps: int = 0
) -> dict:
    """One episode per env of `envs` (len(seeds) envs); returns per-episode arrays.

    Each chunk's first `act_steps` actions run open-loop before re-planning (0 = the whole chunk).
    """
    act_steps = act_steps or policy.horizon_steps
    n = len(seeds)
    obs, _ = envs.reset(seed=seeds)
    history = np.repeat(obs[:, None], policy.cond_steps, axis=1)
    done = np.zeros(n, bool)
    returns, lengths = np.zeros(n), np.zeros(n, int)
    success = None  # envs that report `success` in their infos (OGBench): did the episode reach it
    final_obs = np.array(obs, dtype=np.float64)
    latencies = []
    while not done.all():
        start = time.perf_counter()
        chunk = policy.act(history, inference_steps, generator)
        latencies.append(1000 * (time.perf_counter() - start))
        for j in range(act_steps):
            obs, reward, terminated, truncated, infos = envs.step(chunk[:, j])
            active = ~done
            returns[active] += reward[active]
            lengths[active] += 1
            if "success" in infos:
                success = np.zeros(n, bool) if success is None else success
                success[active] |= np.asarray(infos["success"], bool)[active]
            ended = active & (terminated | truncated)
            # next-step autoreset: the observation returned with done is the episode's last one
            final_obs[ended] = obs[ended]
            done |= ended
            history = np.concatenate([history[:, 1:], obs[:, None]], axis=1)
            if done.all():
                break
    out = {"return": returns, "length": lengths, "final_obs": final_obs, "latency_ms": np.mean(latencies)}
    return out if success is None else out | {"success": success.astype(np.float64)}


def evaluate(
    policy: ChunkPolicy,
    dataset: dict,
    inference_steps: list[int],
    episodes: int = 50,
    seed: int = 0,
    num_envs: int = 50,
    vectorization_mode: str = "sync",
    progress: bool = False,
    act_steps: int = 0,
) -> list[dict]:
    """Per-episode rows: inference_steps, act_steps, episode, return, length, normalized_score,
    latency_ms, task metrics. `dataset` is a checkpoint's dataset info (env spec, env id, ref scores)."""
    if not 0 <= act_steps <= policy.horizon_steps:
        raise UserError(f"act_steps {act_steps} must be in [0, horizon_steps={policy.horizon_steps}]")
    act_steps = act_steps or policy.horizon_steps
    from tqdm import tqdm

    env_spec = dataset["env_spec"]
    num_envs = max(1, min(num_envs, episodes))
    rows = []
    for k in tqdm(inference_steps, desc="eval", disable=not progress):
        generator = torch.Generator(device=policy.device).manual_seed(seed * 100_003 + k)
        for first in range(0, episodes, num_envs):
            ids = list(range(first, min(first + num_envs, episodes)))
            envs = shared_vec_env(env_spec, len(ids), vectorization_mode)
            out = rollout(policy, envs, [seed + e for e in ids], k, generator, act_steps)
            rows += _episode_rows(out, dataset, ids, k, act_steps)
    return rows


def _episode_rows(out: dict, dataset: dict, ids: list[int], k: int, act_steps: int) -> list[dict]:
    scores = normalized_score(out["return"], dataset.get("ref_min_score"), dataset.get("ref_max_score"))
    extra = task_metrics(dataset["env_id"], out["final_obs"])
    if "success" in out:  # the env's own judgement wins over one from the final observation
        extra["success"] = out["success"]
    return [
        {
            "inference_steps": k,
            "act_steps": act_steps,
            "episode": e,
            "return": float(out["return"][i]),
            "length": int(out["length"][i]),
            "normalized_score": float(scores[i]),
            "latency_ms": float(out["latency_ms"]),
            **{m: float(v[i]) for m, v in extra.items()},
        }
        for i, e in enumerate(ids)
    ]


# vectorised envs of an evaluation during training: OGBench envs are large, so one env per episode takes
# a training job's memory far past what it needs; episodes run in batches of this many instead. Fewer
# OGBench envs are also faster (building one costs more than batching saves); a cheap env like Pusher
# loses little at 10 training episodes. Figures: docs/benchmarks.md ("Memory")
TRAINING_EVAL_ENVS = 2


def eval_summary(
    policy: ChunkPolicy, dataset: dict, inference_steps: int, episodes: int, seed: int, prefix: str = "eval/"
) -> dict[str, float]:
    """Evaluation during training: the mean metrics of `episodes` rollouts at one number of steps, in
    batches of TRAINING_EVAL_ENVS envs."""
    return summarize(evaluate(policy, dataset, [inference_steps], episodes, seed, TRAINING_EVAL_ENVS), prefix)


def evaluate_checkpoint(
    path: str,
    which: str = "auto",
    inference_steps: list[int] = (1, 2, 4, 8, 16),
    episodes: int = 50,
    seed: int = 0,
    num_envs: int = 50,
    act_steps: int = 0,
    dataset_name: str | None = None,
    device="cpu",
    progress: bool = False,
    vectorization_mode: str = "sync",
    candidates: int = 1,
    stage_name: str | None = None,
):
    """Rows (a DataFrame) of every evaluated policy of a checkpoint: `which` is a policy name (flow,
    onestep, mlp, categorical), `auto` (the checkpoint's main policy) or `all`. Flows sweep
    `inference_steps`; a policy without steps is evaluated once (inference_steps 1). With `candidates`
    N > 1 (FQL-family checkpoints), each policy acts with the best of N samples by the run's critic;
    0: as the run acted in training (its `candidates`: QC's N, else 1)."""
    import pandas as pd

    ckpt = load_checkpoint(path, map_location=device)
    info, config = ckpt["dataset"], ckpt.get("config", {})
    candidates = candidates or config.get("candidates", 1)  # 0: as the run acted in training
    chosen = checkpoint_policies(ckpt, which, path, device, candidates)
    main_kind = checkpoint_flow(ckpt)
    frames = []
    for name, policy in chosen.items():
        steps = list(inference_steps) if policy.is_flow else [1]
        rows = evaluate(
            policy, info, steps, episodes, seed, num_envs, vectorization_mode, progress, act_steps
        )
        meta = {
            "stage": stage_name or ckpt.get("stage"),
            "dataset": dataset_name or info["dataset_id"],
            "env_id": info["env_id"],
            "flow": main_kind,
            "policy": name,
            "seed": config.get("seed"),
            "eval_seed": seed,
            "horizon_steps": policy.horizon_steps,
            "candidates": candidates,
            "run_candidates": config.get("candidates", 1),  # the best-of-N the run acted with in training
            # OGBench: which task and reward variant the policy was trained for (published numbers differ)
            **{k: info[k] for k in ("task", "reward") if k in info},
        }
        frames.append(pd.DataFrame([{**meta, **r} for r in rows]))
    return pd.concat(frames, ignore_index=True)


def summarize(rows: list[dict], prefix: str = "eval/") -> dict[str, float]:
    """Training-log summary of evaluation rows (one inference-steps setting): means, and for the
    metrics that results are judged by, `_ci_low` / `_ci_high`, the 95 % bootstrap interval of the mean
    (as in the pipeline's tables)."""
    ret = np.array([r["return"] for r in rows])
    out = {
        f"{prefix}mean_return": ret.mean(),
        f"{prefix}std_return": ret.std(),
        f"{prefix}mean_length": np.mean([r["length"] for r in rows]),
    }
    columns = {"mean_return": "return", "normalized_score": "normalized_score"}
    columns |= {key: key for key in ("final_distance", "success") if key in rows[0]}
    for name, column in columns.items():
        mean, low, high = mean_ci(np.array([r[column] for r in rows], dtype=np.float64))
        out |= {f"{prefix}{name}": mean, f"{prefix}{name}_ci_low": low, f"{prefix}{name}_ci_high": high}
    return out
