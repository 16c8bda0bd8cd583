"""Run logging: a CSV file always, Weights & Biases optionally.

WandB never prompts and never kills training: 'online' without credentials falls back to 'offline',
and any WandB failure (init or log) is reported once and WandB is switched off for the run.
"""

from __future__ import annotations

import csv
import io
import netrc
import os
import sys
import time
import warnings
from pathlib import Path

from myreinflow.utils import atomic_write_text

WANDB_MODES = ("offline", "online", "disabled")


def _has_wandb_credentials() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


class Tracker:
    """Collects metric rows (step, epoch, wall_s, metrics…) into `csv_path`; mirrors them to WandB.

    Rows are kept in memory and the whole CSV is rewritten atomically on `flush()`, so the file is never
    half-written. On resume, rows past the checkpoint's step are dropped.
    """

    def __init__(
        self,
        csv_path: str | Path,
        config: dict | None = None,
        wandb_mode: str = "disabled",
        project: str = "myreinflow",
        run_name: str | None = None,
        resume_step: int | None = None,
    ):
        self.csv_path = Path(csv_path)
        self.rows: list[dict] = []
        self.wall_offset = 0.0
        if resume_step is not None and self.csv_path.is_file():
            with open(self.csv_path, newline="") as f:
                self.rows = [r for r in csv.DictReader(f) if int(float(r["step"])) <= resume_step]
            if self.rows:
                self.wall_offset = float(self.rows[-1].get("wall_s") or 0.0)
        self.start = time.perf_counter()
        self.run = None
        if wandb_mode not in WANDB_MODES:
            raise ValueError(f"wandb_mode {wandb_mode!r} is not one of {WANDB_MODES}")
        if wandb_mode != "disabled":
            self._init_wandb(wandb_mode, project, run_name, config or {})

    def _init_wandb(self, mode: str, project: str, run_name: str | None, config: dict) -> None:
        if mode == "online" and not _has_wandb_credentials():
            warnings.warn(
                "wandb: no API key found; logging offline instead (sync later with `wandb sync`)",
                stacklevel=2,
            )
            mode = "offline"
        os.environ.setdefault("WANDB_SILENT", "true")
        try:
            import wandb

            self.run = wandb.init(
                project=project,
                name=run_name,
                config=config,
                mode=mode,
                dir=str(self.csv_path.parent),
                reinit="finish_previous",
                settings=wandb.Settings(console="off", silent=True, x_disable_stats=True),
            )
        except Exception as exc:  # noqa: BLE001 — tracking must never stop training
            print(f"warning: wandb disabled ({type(exc).__name__}: {exc})", file=sys.stderr)
            self.run = None

    @property
    def wall_s(self) -> float:
        return self.wall_offset + time.perf_counter() - self.start

    def log(self, metrics: dict, step: int, epoch: int | None = None) -> None:
        row = {"step": step, "epoch": epoch, "wall_s": round(self.wall_s, 3)}
        row.update({k: float(v) for k, v in metrics.items()})
        self.rows.append(row)
        if self.run is not None:
            try:
                self.run.log({**metrics, "epoch": epoch}, step=step)
            except Exception as exc:  # noqa: BLE001
                print(f"warning: wandb logging failed, disabled ({exc})", file=sys.stderr)
                self.run = None

    def flush(self) -> None:
        columns = ["step", "epoch", "wall_s"]
        for row in self.rows:
            columns += [k for k in row if k not in columns]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns)
        writer.writeheader()
        writer.writerows(self.rows)
        atomic_write_text(self.csv_path, buf.getvalue())

    def close(self) -> None:
        self.flush()
        if self.run is not None:
            try:
                self.run.finish()
            except Exception as exc:  # noqa: BLE001
                print(f"warning: wandb finish failed ({exc})", file=sys.stderr)
            self.run = None
