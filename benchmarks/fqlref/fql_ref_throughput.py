#!/usr/bin/env python
"""The reference side of benchmarks/fql_vs_reference.py: update throughput of the public FQL
implementation (github.com/seohongpark/fql, JAX/Flax, MIT) on a synthetic offline dataset with the
networks and batch of benchmarks/fql_update.py. It imports the reference's source from $FQL_REF_SRC
(required; `setup.sh` beside this file makes it and a CPU-JAX venv, outside the repository) and never
copies it. Runs in that venv, not in the project's environment.

The timed loop mirrors the offline loop of the reference main.py:
    batch = train_dataset.sample(batch_size); agent, info = agent.update(batch)
(host-side numpy sampling + async dispatch), with one block_until_ready at
the end.  --presample instead cycles through batches already on the device.

Last stdout line is one JSON object.
"""

import argparse
import json
import os
import resource
import sys
import time

SRC = os.environ["FQL_REF_SRC"]
sys.path.insert(0, SRC)

import jax  # noqa: E402
import numpy as np  # noqa: E402
from agents.fql import FQLAgent, get_config  # noqa: E402
from utils.datasets import Dataset  # noqa: E402


def cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def host_cpu_times():
    """(busy, total) jiffies for the whole machine from /proc/stat (None if unavailable)."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        idle = v[3] + (v[4] if len(v) > 4 else 0)
        return sum(v) - idle, sum(v)
    except Exception:
        return None


def make_dataset(n, obs_dim, act_dim, ep_len, seed):
    rng = np.random.default_rng(seed)
    obs = rng.standard_normal((n, obs_dim), dtype=np.float32)
    actions = rng.uniform(-1.0, 1.0, size=(n, act_dim)).astype(np.float32)
    rewards = rng.standard_normal(n, dtype=np.float32)
    terminals = np.zeros(n, dtype=np.float32)
    terminals[ep_len - 1 :: ep_len] = 1.0
    terminals[-1] = 1.0
    next_obs = np.empty_like(obs)
    next_obs[:-1] = obs[1:]
    ends = np.nonzero(terminals > 0)[0]
    next_obs[ends] = rng.standard_normal((len(ends), obs_dim), dtype=np.float32)
    masks = np.ones(n, dtype=np.float32)  # no terminal masking: a throughput measurement
    return Dataset.create(
        observations=obs,
        actions=actions,
        rewards=rewards,
        terminals=terminals,
        masks=masks,
        next_observations=next_obs,
    )


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--obs-dim", type=int, default=23)
    p.add_argument("--act-dim", type=int, default=7)
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--flow-steps", type=int, default=10)
    p.add_argument("--alpha", type=float, default=10.0)
    p.add_argument("--size", type=int, default=100_000)
    p.add_argument("--ep-len", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--presample",
        action="store_true",
        help="cycle through 64 batches already on the device, not Dataset.sample each step",
    )
    args = p.parse_args()
    np.random.seed(args.seed)  # Dataset.sample uses np.random

    ds = make_dataset(args.size, args.obs_dim, args.act_dim, args.ep_len, args.seed)

    config = get_config()
    dims = (args.hidden,) * args.layers
    config["actor_hidden_dims"] = dims
    config["value_hidden_dims"] = dims
    config["batch_size"] = args.batch
    config["flow_steps"] = args.flow_steps
    config["alpha"] = args.alpha

    ex = ds.sample(1)
    t0 = time.perf_counter()
    agent = FQLAgent.create(args.seed, ex["observations"], ex["actions"], config)
    jax.block_until_ready(agent.network.params)
    create_s = time.perf_counter() - t0

    if args.presample:
        pool = [jax.device_put(ds.sample(args.batch)) for _ in range(64)]
        get_batch = lambda i: pool[i % len(pool)]  # noqa: E731
    else:
        get_batch = lambda i: ds.sample(args.batch)  # noqa: E731

    # First update: tracing + XLA compile + one step.
    t0 = time.perf_counter()
    agent, info = agent.update(get_batch(0))
    jax.block_until_ready((agent.network.params, info))
    first_update_s = time.perf_counter() - t0

    for i in range(1, args.warmup):
        agent, info = agent.update(get_batch(i))
    jax.block_until_ready((agent.network.params, info))

    h0 = host_cpu_times()
    c0 = cpu_seconds()
    t0 = time.perf_counter()
    for i in range(args.steps):
        agent, info = agent.update(get_batch(i))
    jax.block_until_ready((agent.network.params, info))
    dt = time.perf_counter() - t0
    cpu = cpu_seconds() - c0
    h1 = host_cpu_times()
    host_busy = None
    if h0 and h1 and h1[1] > h0[1]:
        # machine-wide busy cores during the timed window; >> cpu_util means other load was present
        host_busy = (os.cpu_count() or 1) * (h1[0] - h0[0]) / (h1[1] - h0[1])

    loss = float(info["critic/critic_loss"]) + float(info["actor/actor_loss"])
    out = {
        "impl": "fql-jax-ref",
        "updates_per_s": args.steps / dt,
        "ms_per_update": 1000.0 * dt / args.steps,
        "obs_dim": args.obs_dim,
        "act_dim": args.act_dim,
        "hidden": args.hidden,
        "layers": args.layers,
        "batch": args.batch,
        "flow_steps": args.flow_steps,
        "alpha": args.alpha,
        "steps": args.steps,
        "warmup": args.warmup,
        "timed_s": dt,
        "cpu_util": cpu / dt,  # process CPU-seconds per wall-second (~2.0 = both cores busy)
        "host_busy_cores": host_busy,
        "first_update_s": first_update_s,
        "create_s": create_s,
        "sampling": "device-presampled" if args.presample else "Dataset.sample per step (as main.py)",
        "final_loss_finite": bool(np.isfinite(loss)),
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "os_cpu_count": os.cpu_count(),
        "src": SRC,
    }
    try:
        import flax

        out["flax"] = flax.__version__
    except Exception:  # pragma: no cover
        pass
    print(json.dumps(out))


if __name__ == "__main__":
    main()
