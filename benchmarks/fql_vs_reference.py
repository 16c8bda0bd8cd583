"""FQL-family updates/s side by side with the public JAX FQL, on this machine, now; prints JSON.

Runs `benchmarks/fql_update.py` (ours: FQL from a ReFlow, the reference's algorithm, and the MeanFlow
methods, FQL from a MeanFlow and MeanFlow-QL) and `benchmarks/fqlref/fql_ref_throughput.py` (the public
github.com/seohongpark/fql, JAX on CPU, in its own venv) alternately, `--rounds` times, for 4×512 and
3×256 networks with chunk 1 and 4 (the reference flattens a chunk of 4 actions of dimension 7 into one
action of dimension 28), at each thread count of `--threads`. Ours runs as training runs it: compiled
(as the pipeline's FQL jobs), with training's default fp32 matmuls; `--eager` and `--matmul_precision
bf16` measure the alternatives. Each run is pinned to that many cores
(`taskset`), so "1 thread" means one core for either implementation whatever its own thread pools do.
It prints the median updates/s of each and the ratio ours / reference per configuration and method:
only a ratio measured side by side carries over between machines (their absolute speeds differ 2–3×).
Run it with the machine otherwise idle.

The reference stays outside this repository. To get it (a few minutes, CPU JAX from the package index):

    git clone --bare https://github.com/seohongpark/fql /scratch/fql.git
    FQLREF_ROOT=/scratch/fqlref bash benchmarks/fqlref/setup.sh /scratch/fql.git
    python benchmarks/fql_vs_reference.py --fqlref_root /scratch/fqlref   # or FQLREF_ROOT in the env

Without it the benchmark prints one line saying what is missing and exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from myreinflow.utils import cpu_name

REPO = Path(__file__).resolve().parents[1]
HARNESS = REPO / "benchmarks" / "fqlref" / "fql_ref_throughput.py"
CONFIGS = [("4x512", 1), ("4x512", 4), ("3x256", 1), ("3x256", 4)]
METHODS = ("fql-reflow", "fql-meanflow", "mfql")  # fql_update.py's: the reference's algorithm first
ACT_DIM = 7


def reference(root: str | None) -> tuple[Path, Path, Path] | str:
    """(python, source, harness) of the reference, or why it cannot run."""
    if not root:
        return "no reference: set FQLREF_ROOT or --fqlref_root (see this file's docstring for the set-up)"
    python, src = Path(root) / "venv" / "bin" / "python", Path(root) / "src"
    harness = Path(os.environ.get("FQLREF_HARNESS", HARNESS))
    for path, what in ((python, "its venv"), (src / "agents" / "fql.py", "its source"), (harness, "harness")):
        if not path.exists():
            return f"no reference: {what} is missing at {path} (see this file's docstring for the set-up)"
    return python, src, harness


def last_json(stdout: str) -> dict:
    """The JSON a benchmark printed: all of stdout (ours, indented) or its last line (the harness)."""
    try:
        return json.loads(stdout)
    except json.JSONDecodeError:
        return json.loads(stdout.strip().splitlines()[-1])


def pinned(threads: int) -> list[str]:
    """`taskset` to the first `threads` cores (when there is taskset and that many cores)."""
    if shutil.which("taskset") and threads <= (os.cpu_count() or 1):
        return ["taskset", "-c", ",".join(map(str, range(threads)))]
    return []


def run_ours(method: str, name: str, horizon: int, threads: int, updates: int, args) -> dict:
    """One run of fql_update.py: its result row."""
    cmd = [sys.executable, str(REPO / "benchmarks" / "fql_update.py"), "--threads", str(threads)]
    cmd += ["--method", method, "--only", f"{name}/{horizon}", "--updates", str(updates)]
    cmd += ["--matmul_precision", args.matmul_precision] + ["--compile"] * (not args.eager)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    out = subprocess.run(pinned(threads) + cmd, capture_output=True, text=True, check=True, env=env)
    return last_json(out.stdout)["results"][0]


def run_reference(ref, name: str, horizon: int, threads: int, updates: int) -> dict:
    python, src, harness = ref
    width, layers = (512, 4) if name == "4x512" else (256, 3)
    cmd = [str(python), str(harness), "--hidden", str(width), "--layers", str(layers)]
    cmd += ["--act-dim", str(ACT_DIM * horizon), "--steps", str(updates), "--warmup", "20"]
    env = dict(os.environ, FQL_REF_SRC=str(src), JAX_PLATFORMS="cpu")
    out = subprocess.run(pinned(threads) + cmd, capture_output=True, text=True, check=True, env=env)
    return last_json(out.stdout)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fqlref_root", default=os.environ.get("FQLREF_ROOT"), help="set-up of the reference")
    p.add_argument("--rounds", type=int, default=2, help="alternating rounds (median over them)")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="cores per run")
    p.add_argument("--updates", type=int, default=0, help="timed updates per run (0: 60 for 4×512, 200 else)")
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS, help="ours (default: all)")
    p.add_argument("--only", nargs="+", default=None, help="configurations, e.g. 3x256/4 (default: all four)")
    p.add_argument("--eager", action="store_true", help="ours without torch.compile (training compiles)")
    p.add_argument("--matmul_precision", default="fp32", choices=("fp32", "bf16"), help="ours (default fp32)")
    args = p.parse_args()
    names = {f"{name}/{horizon}": (name, horizon) for name, horizon in CONFIGS}
    unknown = sorted(set(args.only or ()) - set(names))
    if unknown:
        p.error(f"--only {' '.join(unknown)}: not among {', '.join(names)}")
    configs = [names[key] for key in args.only] if args.only else CONFIGS
    ref = reference(args.fqlref_root)
    if isinstance(ref, str):
        print(json.dumps({"benchmark": "fql_vs_reference", "skipped": ref}))
        return
    rows = []
    for threads in args.threads:
        for name, horizon in configs:
            updates = args.updates or (60 if name == "4x512" else 200)
            ours: dict[str, list[dict]] = {method: [] for method in args.methods}
            theirs = []
            for i in range(args.rounds):  # who runs first alternates between rounds
                if i % 2:
                    theirs.append(run_reference(ref, name, horizon, threads, updates)["updates_per_s"])
                for method in args.methods:
                    ours[method].append(run_ours(method, name, horizon, threads, updates, args))
                if not i % 2:
                    theirs.append(run_reference(ref, name, horizon, threads, updates)["updates_per_s"])
            jax = statistics.median(theirs)
            for method, results in ours.items():
                mine = statistics.median(r["updates_per_s"] for r in results)
                rows.append(
                    {
                        "threads": threads,
                        "hidden": name,
                        "horizon_steps": horizon,
                        "method": method,
                        "matmul_precision": args.matmul_precision,
                        "ours_updates_per_s": round(mine, 2),
                        "reference_updates_per_s": round(jax, 2),
                        "ratio": round(mine / jax, 3),
                        "ours_rounds": [r["updates_per_s"] for r in results],
                        "reference_rounds": [round(x, 2) for x in theirs],
                        # each round's ratio: side by side in time, so slow drifts of the machine cancel
                        "round_ratios": [
                            round(r["updates_per_s"] / x, 3) for r, x in zip(results, theirs, strict=True)
                        ],
                    }
                )
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)  # progress
    fql = [r["ratio"] for r in rows if r["method"] == "fql-reflow"]
    print(
        json.dumps(
            {
                "benchmark": "fql_vs_reference",
                "machine": platform.processor() or platform.machine(),
                "cpu": cpu_name(),
                "rounds": args.rounds,
                "ours_compiled": not args.eager,
                "results": rows,
                "min_ratio_fql": min(fql) if fql else None,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
