"""Train the public JAX FQL (github.com/seohongpark/fql) with its own `main.py`, WandB off.

The reference's `main.py` logs to WandB in online mode, hard-coded (`utils/log_utils.setup_wandb`), which
prompts for a login or fails without a network. This wrapper makes every `wandb.init` a disabled run and
then runs `main.py` unchanged with the flags given here, so the reference's own training, evaluation and
CSV logs (`<save_dir>/.../train.csv`, `eval.csv`) are what is compared. The reference stays outside this
repository (`benchmarks/fqlref/setup.sh` builds its source tree and venv; add `ogbench wandb tqdm
pillow` to that venv: checked with ogbench 1.2.2 and wandb 0.31). OGBench's loader reads the data from
`$HOME/.ogbench/data/<dataset>.npz` and `-val.npz` (`myreinflow.data.manipspace.write_npz` writes them).

    FQL_REF_SRC=<ref>/src MUJOCO_GL=egl JAX_PLATFORMS=cpu <ref>/venv/bin/python benchmarks/fql_ref_train.py \
        --env_name=cube-single-play-singletask-task2-v0 --seed=0 --offline_steps=31240 ...
"""

from __future__ import annotations

import os
import runpy
import sys


def main() -> None:
    src = os.environ.get("FQL_REF_SRC")
    if not src or not os.path.isfile(os.path.join(src, "main.py")):
        sys.exit(f"FQL_REF_SRC={src!r} is not the reference's source tree (a directory with main.py)")
    import wandb

    init = wandb.init

    def disabled_init(*args, **kwargs):
        kwargs.pop("settings", None)
        return init(*args, **{**kwargs, "mode": "disabled"})

    wandb.init = disabled_init
    wandb.Settings = lambda **kwargs: None  # its keys (start_method, ...) are refused by newer WandB versions
    sys.path.insert(0, src)
    # main.py finds its agent config by a path relative to the source tree; keep the caller's directory
    agent = [f"--agent={os.path.join(src, 'agents', 'fql.py')}"]
    given = any(a.split("=")[0] == "--agent" for a in sys.argv[1:])
    sys.argv = [os.path.join(src, "main.py"), *([] if given else agent), *sys.argv[1:]]
    runpy.run_path(sys.argv[0], run_name="__main__")


if __name__ == "__main__":
    main()
