"""Acting latency of the critic-based methods' acting policies, as each acts: milliseconds per action
chunk for a batch of observations (policy and best-of-N selection only, no env; prints JSON).

    python benchmarks/acting_latency.py [--envs 1 10] [--candidates 8] [--threads 1] [--calls 200]

Methods (cube-single sizes: obs 28, act 5, h = 1; the default 3×256 networks, untrained: latency does
not depend on the weights): FQL's one-step policy (1 network evaluation per chunk), MeanFlow-QL's best of
5 one-step MeanFlow samples by the critic (5 + 5 critic), QC over the MeanFlow (N one-step samples + N
critic) and QC over the ReFlow (N samples of 10 steps + N critic). Each method's calls alternate with the
others' in rounds, so a change of the machine's speed touches all alike; the median over rounds is
reported, with the ratio of QC over the ReFlow's latency to each method's.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import numpy as np
import torch

from myreinflow.data.normalize import Normalizer
from myreinflow.nets import EnsembleMLP
from myreinflow.policy import ChunkPolicy, FlowOptions, build_model, onestep_spec, policy_spec
from myreinflow.utils import steady_heap

OBS_DIM, ACT_DIM, HIDDEN = 28, 5, (256, 256, 256)


def policies(candidates: int) -> dict[str, tuple[ChunkPolicy, int]]:
    """{method: (its acting policy, the flow steps it acts with)}."""
    normalizer = Normalizer(np.zeros(OBS_DIM), np.ones(OBS_DIM), -np.ones(ACT_DIM), np.ones(ACT_DIM))
    critic = EnsembleMLP(OBS_DIM + ACT_DIM, 1, HIDDEN, 2, "gelu").eval().requires_grad_(False)
    options = FlowOptions(hidden=HIDDEN)
    spec = {flow: policy_spec(flow, OBS_DIM, ACT_DIM, 1, 1, options) for flow in ("reflow", "meanflow")}
    model = {flow: build_model(s, "cpu").eval() for flow, s in spec.items()}
    onestep = onestep_spec(spec["reflow"], HIDDEN, "gelu")
    fql = ChunkPolicy(onestep, build_model(onestep, "cpu").eval(), normalizer, "cpu")
    flow = {f: ChunkPolicy(spec[f], model[f], normalizer, "cpu") for f in spec}
    return {
        "FQL (one-step policy)": (fql, 1),
        "MeanFlow-QL (best of 5)": (flow["meanflow"].best_of(critic, 5), 1),
        f"QC over MeanFlow (best of {candidates})": (flow["meanflow"].best_of(critic, candidates), 1),
        f"QC over ReFlow (best of {candidates}, K = 10)": (flow["reflow"].best_of(critic, candidates), 10),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--envs", type=int, nargs="+", default=[1, 10], help="observations per call")
    p.add_argument("--candidates", type=int, default=8, help="QC's N (default 8, the study's)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--calls", type=int, default=200, help="timed calls per method and batch")
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    steady_heap()
    torch.manual_seed(0)
    methods = policies(args.candidates)
    results = []
    for n in args.envs:
        obs = np.random.default_rng(0).normal(size=(n, OBS_DIM)).astype(np.float32)
        times = {name: [] for name in methods}
        for policy, k in methods.values():  # warm-up
            for _ in range(10):
                policy.act(obs, k)
        for _ in range(args.rounds):
            for name, (policy, k) in methods.items():
                start = time.perf_counter()
                for _ in range(args.calls):
                    policy.act(obs, k)
                times[name].append((time.perf_counter() - start) / args.calls * 1e3)
        qc_reflow = statistics.median(times[list(methods)[-1]])
        for name, values in times.items():
            ms = statistics.median(values)
            results.append(
                {
                    "method": name,
                    "envs": n,
                    "ms_per_chunk": round(ms, 4),
                    "rounds_ms": [round(v, 4) for v in values],
                    "qc_reflow_over_this": round(qc_reflow / ms, 2),
                }
            )
    print(
        json.dumps(
            {
                "benchmark": "acting_latency",
                "torch": torch.__version__,
                "threads": args.threads,
                "candidates": args.candidates,
                "machine": platform.machine(),
                "results": results,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
