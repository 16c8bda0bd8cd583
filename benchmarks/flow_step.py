"""Training-step cost of MeanFlow vs ReFlow on the same network and batch (prints JSON).

The MeanFlow step adds one forward-mode JVP to the flow-matching step; the target is a MeanFlow step of
at most 1.6x a ReFlow step, for both network outputs (`--predictions velocity data`). Runs are
interleaved and the median is reported, so all variants see the same machine state; compare the
ratios, not absolute times.

    python benchmarks/flow_step.py [--hidden 256 256 256] [--batch 256] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch

from myreinflow import MeanFlow, ReFlow
from myreinflow.nets import FlowNet


def make(flow_cls, prediction, args):
    torch.manual_seed(0)
    net = FlowNet(args.horizon * args.act_dim, args.obs_dim, tuple(args.hidden))
    flow = flow_cls(net, "cpu", args.horizon, args.act_dim, prediction=prediction)
    return flow, torch.optim.Adam(flow.parameters(), lr=3e-4)


def step(flow, opt, x, obs):
    loss, _ = flow.compute_loss(x, obs)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hidden", type=int, nargs="+", default=[256, 256, 256])
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--horizon", type=int, default=4)
    p.add_argument("--act_dim", type=int, default=7)
    p.add_argument("--obs_dim", type=int, default=23)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=50, help="steps per timed block")
    p.add_argument("--repeats", type=int, default=7, help="interleaved timed blocks per flow")
    p.add_argument("--predictions", nargs="+", default=["velocity", "data"], choices=["velocity", "data"])
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    x = torch.rand(args.batch, args.horizon, args.act_dim) * 2 - 1
    obs = torch.randn(args.batch, args.obs_dim)
    flows = {
        f"{name}_{pred}": make(cls, pred, args)
        for pred in args.predictions
        for name, cls in (("reflow", ReFlow), ("meanflow", MeanFlow))
    }
    times: dict[str, list[float]] = {k: [] for k in flows}
    for flow, opt in flows.values():  # warm-up
        for _ in range(10):
            step(flow, opt, x, obs)
    for _ in range(args.repeats):
        for name, (flow, opt) in flows.items():
            start = time.perf_counter()
            for _ in range(args.steps):
                step(flow, opt, x, obs)
            times[name].append(1000 * (time.perf_counter() - start) / args.steps)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(
        json.dumps(
            {
                "benchmark": "flow_train_step",
                "hidden": args.hidden,
                "batch": args.batch,
                "chunk": [args.horizon, args.act_dim],
                "obs_dim": args.obs_dim,
                "threads": args.threads,
                "torch": torch.__version__,
                "machine": platform.machine(),
                "step_ms": {k: round(v, 3) for k, v in med.items()},
                "ratio": {p: round(med[f"meanflow_{p}"] / med[f"reflow_{p}"], 3) for p in args.predictions},
                "target_ratio_max": 1.6,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
