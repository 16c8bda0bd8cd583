"""FQL-family updates per second (critic + actor + target, batch sampling included); prints JSON.

`--method`: fql-reflow (FQL, ReFlow BC flow, 10-step distillation target: the reference's setting),
fql-meanflow (FQL from a MeanFlow, its one-step sample as the target), mfql (MeanFlow-QL: the
MeanFlow's one step is the actor, no one-step network; best of 5 by the target critic, as its
reference), qc-reflow / qc-meanflow (Q-chunking's best-of-N: the TD target takes the best of
`--candidates` flow samples of 10 / 1 steps).

Networks as in the reference (Park et al.: BC flow, one-step policy and a 2-critic ensemble, all the same
MLP size; ReFlow distillation target with 10 flow steps), batch 256, Pusher-sized data (obs 23, act 7)
in a ChunkedTransitions buffer on the device. Configurations: hidden 4×512 and 3×256, chunk h = 1 and 4.
The reference JAX implementation reached ≈ 12 / 50 updates/s (4×512 / 3×256, h = 1) and ≈ 11 / 47
(h = 4) on this 2-core CPU with both cores free; run this alone for numbers comparable to those.

Beside updates/s it prints a roofline: the FLOPs of one update (torch's FlopCounterMode), the GFLOP/s that
gives, this machine's GEMM throughput at the network's layer size (the ceiling for an update made of
matmuls) and the GFLOP/s the reference's updates/s would need.

    python benchmarks/fql_update.py [--method mfql] [--threads 2] [--updates 100] [--compile]
        [--matmul_precision bf16] [--device cuda]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import time

import gymnasium as gym
import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from myreinflow.algos.fql import FQLAgent, FQLConfig
from myreinflow.algos.mfql import MeanFlowQLAgent, MFQLConfig
from myreinflow.algos.qc import QCAgent, QCConfig
from myreinflow.algos.updates import make_optimizer, update, update_step
from myreinflow.data.chunks import ChunkedTransitions
from myreinflow.data.normalize import Normalizer
from myreinflow.policy import FlowOptions, build_model, policy_spec
from myreinflow.utils import resolve_device, steady_heap

OBS_DIM, ACT_DIM = 23, 7
METHODS = {
    "fql-reflow": ("fql", "reflow"),
    "fql-meanflow": ("fql", "meanflow"),
    "mfql": ("mfql", "meanflow"),
    "qc-reflow": ("qc", "reflow"),
    "qc-meanflow": ("qc", "meanflow"),
}
AGENTS = {"fql": (FQLConfig, FQLAgent), "mfql": (MFQLConfig, MeanFlowQLAgent), "qc": (QCConfig, QCAgent)}


def synthetic_episodes(n: int = 100, length: int = 100, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [
        {
            "observations": rng.normal(size=(length + 1, OBS_DIM)).astype(np.float32),
            "actions": rng.uniform(-1, 1, size=(length, ACT_DIM)).astype(np.float32),
            "rewards": rng.normal(size=length),
            "terminations": np.zeros(length, bool),
        }
        for _ in range(n)
    ]


def gemm_gflops(batch: int, width: int, device: torch.device, repeats: int = 200) -> float:
    """GFLOP/s of one (batch × width) @ (width × width) + bias: the bulk of an update's work."""
    x, w, b = (torch.randn(*shape, device=device) for shape in ((batch, width), (width, width), (width,)))
    for _ in range(20):
        torch.nn.functional.linear(x, w, b)
    sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        torch.nn.functional.linear(x, w, b)
    sync(device)
    return 2 * batch * width * width * repeats / (time.perf_counter() - start) / 1e9


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(hidden: tuple[int, ...], horizon: int, args) -> tuple[float, float]:
    """(updates per second, FLOPs per update)."""
    torch.manual_seed(0)
    algo, flow = METHODS[args.method]
    config, agent_class = AGENTS[algo]
    candidates = {"candidates": args.candidates} if args.candidates else {}
    cfg = config(
        **candidates,
        hidden=hidden,
        horizon_steps=horizon,
        flow=flow,
        batch_size=args.batch,
        flow_steps=args.flow_steps,
        matmul_precision=args.matmul_precision,
    )
    options = FlowOptions(hidden=hidden, activation="gelu")
    spec = policy_spec(flow, OBS_DIM, ACT_DIM, horizon, 1, options)
    agent = agent_class(cfg, spec, build_model(spec, args.device), args.device)
    optimizer = make_optimizer(agent)
    episodes = synthetic_episodes()
    space = gym.spaces.Box(-1, 1, (ACT_DIM,), np.float32)
    obs = np.concatenate([ep["observations"] for ep in episodes])
    normalizer = Normalizer.fit(obs, space, np.concatenate([ep["actions"] for ep in episodes]))
    data = ChunkedTransitions(episodes, horizon, 1, normalizer, args.device, discount=cfg.discount)
    generator = torch.Generator(device=args.device).manual_seed(0)
    with FlopCounterMode(display=False) as counter:
        update(agent, optimizer, data.sample(args.batch, generator))
    if not args.compile:
        step = update
    elif args.compile_mode == "training":
        step = update_step(dataclasses.replace(cfg, compile="on"), args.device)
    else:
        step = torch.compile(update, mode=args.compile_mode)
    for _ in range(args.warmup):
        step(agent, optimizer, data.sample(args.batch, generator))
    start = time.perf_counter()
    for _ in range(args.updates):
        step(agent, optimizer, data.sample(args.batch, generator))
    sync(args.device)  # wait for the last update
    return args.updates / (time.perf_counter() - start), counter.get_total_flops()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--method", default="fql-reflow", choices=tuple(METHODS), help="(default: fql-reflow)")
    p.add_argument(
        "--flow_steps",
        type=int,
        default=0,
        help="FQL's distillation-target steps (default 0: ReFlow 10, MeanFlow 1)",
    )
    p.add_argument(
        "--candidates",
        type=int,
        default=0,
        help="best-of-N of mfql and qc (default 0: the method's own, mfql 5, qc 32)",
    )
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--updates", type=int, default=100, help="timed updates per configuration")
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--compile", action="store_true", help="torch.compile the update")
    p.add_argument(
        "--compile_mode",
        default="training",
        choices=("training", "default", "reduce-overhead", "max-autotune-no-cudagraphs"),
        help="training: as `myreinflow fql --compile on` compiles (CPU: forward and backward as one "
        "program; CUDA: CUDA graphs); else the whole update in this torch.compile mode",
    )
    p.add_argument("--matmul_precision", default="fp32", choices=("fp32", "bf16"), help="(default: fp32)")
    p.add_argument("--device", default="cpu", help="cpu (the reference's setting), cuda, auto")
    p.add_argument("--only", default=None, help="one configuration, e.g. 3x256/4 (networks/chunk)")
    args = p.parse_args()
    args.device = resolve_device(args.device)
    torch.set_num_threads(args.threads)
    steady_heap()  # as training's setup_runtime
    reference = {("4x512", 1): 12, ("3x256", 1): 50, ("4x512", 4): 11, ("3x256", 4): 47}
    if args.only:
        name, _, horizon = args.only.partition("/")
        if (name, int(horizon or 0)) not in reference:
            p.error(f"--only {args.only!r} is not one of {', '.join(f'{n}/{h}' for n, h in reference)}")
        reference = {(name, int(horizon)): reference[(name, int(horizon))]}
    results = []
    for (name, horizon), ref in reference.items():
        hidden = (512,) * 4 if name == "4x512" else (256,) * 3
        ups, flops = measure(hidden, horizon, args)
        gemm = gemm_gflops(args.batch, hidden[0], args.device)
        results.append(
            {
                "hidden": name,
                "horizon_steps": horizon,
                "updates_per_s": round(ups, 2),
                "jax_reference": ref,
                "gflop_per_update": round(flops / 1e9, 2),
                "gflops": round(ups * flops / 1e9, 1),
                "gemm_gflops": round(gemm, 1),
                "matmul_bound_updates_per_s": round(gemm * 1e9 / flops, 2),
                "jax_reference_needs_gflops": round(ref * flops / 1e9, 1),
            }
        )
    print(
        json.dumps(
            {
                "benchmark": "fql_update",
                "method": args.method,
                "flow_steps": args.flow_steps,
                "candidates": args.candidates,
                "torch": torch.__version__,
                "threads": args.threads,
                "batch": args.batch,
                "compile": args.compile and args.compile_mode,
                "matmul_precision": args.matmul_precision,
                "device": str(args.device),
                "gpu": torch.cuda.get_device_name(args.device) if args.device.type == "cuda" else None,
                "machine": platform.machine(),
                "results": results,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
