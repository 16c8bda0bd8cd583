"""Training-step cost of each MeanFlow recipe against ReFlow's, same network and batch (prints JSON).

A MeanFlow step adds a forward-mode JVP to the flow-matching step (`identity`); iMF adds a forward pass
for the model's own velocity, the boundary term a forward and its backward, SplitMeanFlow two
gradient-free forward passes instead of the JVP, and AlphaFlow's curriculum (while it runs) one
gradient-free forward. Blocks of steps are interleaved and the median is reported, so all variants see
the same machine state: compare the ratios, not the absolute times. Targets (`TARGETS`, in ReFlow
steps): the default recipe (iMF + boundary) at most 2.5×, the JVP-only step (`v1`) at most 1.6×; each
recipe's updates/s is 1000 / `step_ms`.

    python benchmarks/flow_step.py [--hidden 256 256 256] [--batch 256] [--threads 1] [--recipes ...]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch

from myreinflow import MeanFlow, ReFlow
from myreinflow.configs import MEANFLOW_RECIPES
from myreinflow.nets import FlowNet

V1 = MEANFLOW_RECIPES["v1"]
RECIPES = {  # MeanFlow constructor options on top of the library's defaults (iMF + boundary)
    "default": {},
    "v1": V1,
    "mfql": MEANFLOW_RECIPES["mfql"],
    "imf": {"boundary_weight": 0.0},
    "split": V1 | {"target": "split"},
    "boundary": V1 | {"boundary_weight": 1.0},
    "alpha_curriculum": V1 | {"curriculum": 1.0},  # measured in the curriculum's α-Flow phase
}
TARGETS = {"default": 2.5, "v1": 1.6}  # the most a step of the recipe may cost, in ReFlow steps


def make(prediction: str, recipe: str | None, args):
    torch.manual_seed(0)
    net = FlowNet(args.horizon * args.act_dim, args.obs_dim, tuple(args.hidden))
    if recipe is None:
        flow = ReFlow(net, "cpu", args.horizon, args.act_dim, prediction=prediction)
    else:
        flow = MeanFlow(net, "cpu", args.horizon, args.act_dim, prediction=prediction, **RECIPES[recipe])
        flow.set_progress(0.5 * flow.curriculum)  # α = 0.5 under a curriculum; no effect otherwise
    return flow, torch.optim.Adam(flow.parameters(), lr=3e-4)


def step(flow, opt, x, obs):
    loss, _ = flow.compute_loss(x, obs)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hidden", type=int, nargs="+", default=[256, 256, 256])
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--horizon", type=int, default=4)
    p.add_argument("--act_dim", type=int, default=7)
    p.add_argument("--obs_dim", type=int, default=23)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=50, help="steps per timed block")
    p.add_argument("--repeats", type=int, default=7, help="interleaved timed blocks per variant")
    p.add_argument("--predictions", nargs="+", default=["velocity", "data"], choices=["velocity", "data"])
    p.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    x = torch.rand(args.batch, args.horizon, args.act_dim) * 2 - 1
    obs = torch.randn(args.batch, args.obs_dim)
    variants = {
        f"{recipe or 'reflow'}_{pred}": make(pred, recipe, args)
        for pred in args.predictions
        for recipe in (None, *args.recipes)
    }
    times: dict[str, list[float]] = {k: [] for k in variants}
    for flow, opt in variants.values():  # warm-up
        for _ in range(5):
            step(flow, opt, x, obs)
    for _ in range(args.repeats):
        for name, (flow, opt) in variants.items():
            start = time.perf_counter()
            for _ in range(args.steps):
                step(flow, opt, x, obs)
            times[name].append(1000 * (time.perf_counter() - start) / args.steps)
    med = {k: statistics.median(v) for k, v in times.items()}
    result = {
        "benchmark": "flow_train_step",
        "hidden": args.hidden,
        "batch": args.batch,
        "chunk": [args.horizon, args.act_dim],
        "obs_dim": args.obs_dim,
        "threads": args.threads,
        "torch": torch.__version__,
        "machine": platform.machine(),
        "step_ms": {k: round(v, 3) for k, v in med.items()},
        "ratio_to_reflow": {
            f"{r}_{p}": round(med[f"{r}_{p}"] / med[f"reflow_{p}"], 3)
            for p in args.predictions
            for r in args.recipes
        },
        "updates_per_s": {k: round(1000 / v, 1) for k, v in med.items()},
        "target_ratio_max": TARGETS,
        "targets_met": {
            f"{r}_{p}": med[f"{r}_{p}"] / med[f"reflow_{p}"] <= TARGETS[r]
            for p in args.predictions
            for r in args.recipes
            if r in TARGETS
        },
    }
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
