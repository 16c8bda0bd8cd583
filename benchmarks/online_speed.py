"""Online fine-tuning speed: env steps per second of FQL online (one env, one update per env step) and of
ReinFlow (vectorised envs, PPO updates per iteration) from the same offline FQL run (prints JSON).

    python benchmarks/online_speed.py --run results/fql/cube-single/reflow/seed0 [--threads 1]
        [--fql_steps 3000] [--reinflow_steps 16000] [--rounds 2]

Each method runs as the CLI runs it, in a copy of the run (FQL online resumes it; ReinFlow fine-tunes
its one-step policy), one after the other, never side by side. The rate is taken between the first and
the last checkpoint of the online phase (from `train.csv`: Δ env steps / Δ wall seconds), so start-up
and torch.compile are left out; one-episode evaluations at each checkpoint are in. Compare the ratio,
not absolute numbers, across machines.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import yaml

from myreinflow.checkpoint import load_checkpoint
from myreinflow.utils import cpu_name


def online_rate(train_csv: Path) -> float:
    """Env steps per second between the first and the last online checkpoint of a train CSV."""
    rows = pd.read_csv(train_csv).dropna(subset=["online/env_steps"])
    rows = rows[rows["online/env_steps"] > 0]
    first, last = rows.iloc[0], rows.iloc[-1]
    return float((last["online/env_steps"] - first["online/env_steps"]) / (last["wall_s"] - first["wall_s"]))


def fql_online(run: Path, work: Path, steps: int, threads: int) -> float:
    out = work / "fql_online"
    shutil.copytree(run, out)
    config = out / "resume.yaml"  # the checkpoint's config as given: what its resumption must match
    config.write_text(yaml.safe_dump(load_checkpoint(out / "model.pt")["config"]))
    args = ["--config", str(config), "--out", str(out), "--online_steps", str(steps)]
    args += ["--online_eval_freq", str(steps // 3), "--eval_episodes", "1"]
    _cli("fql", *args, "--threads", str(threads))
    return online_rate(out / "train.csv")


def reinflow(run: Path, work: Path, steps: int, threads: int) -> float:
    out = work / "reinflow"
    args = ["--init", str(run), "--policy", "onestep", "--env_steps", str(steps), "--eval_freq", "1"]
    _cli("reinflow", *args, "--eval_episodes", "1", "--threads", str(threads), "--out", str(out))
    return online_rate(out / "train.csv")


def _cli(command: str, *args: str) -> None:
    cmd = [sys.executable, "-m", "myreinflow", command, *args, "--no_wandb", "--quiet"]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", required=True, help="an offline FQL run directory")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--fql_steps", type=int, default=3000, help="FQL online env steps per round")
    p.add_argument("--reinflow_steps", type=int, default=16000, help="ReinFlow env steps per round")
    p.add_argument("--rounds", type=int, default=2, help="alternated rounds of the two methods")
    args = p.parse_args()
    run = Path(args.run)
    if not (run / "model.pt").is_file():
        raise SystemExit(f"--run {args.run!r} is not allowed; it must be a run directory with a model.pt")
    rates: dict[str, list[float]] = {"fql_online": [], "reinflow": []}
    for _ in range(args.rounds):
        with tempfile.TemporaryDirectory() as tmp:
            rates["fql_online"].append(fql_online(run, Path(tmp), args.fql_steps, args.threads))
            rates["reinflow"].append(reinflow(run, Path(tmp), args.reinflow_steps, args.threads))
    median = {k: statistics.median(v) for k, v in rates.items()}
    print(
        json.dumps(
            {
                "run": str(run),
                "threads": args.threads,
                "env_steps_per_s": rates,
                "median": median,
                "ratio_reinflow_over_fql_online": median["reinflow"] / median["fql_online"],
                "cpu": cpu_name(),
                "platform": platform.platform(),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
