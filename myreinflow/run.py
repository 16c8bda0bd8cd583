"""What every training run shares, so that an algorithm file holds only its networks, losses and update.

A run lives in one directory: `config.yaml` (what it computes), `train.csv` (a Tracker: CSV always,
WandB optionally), `model.pt`, a checkpoint written atomically with the run's counters (step, epoch,
...), the state of its stateful objects (optimizer, scheduler, networks), its chunk policies (what
evaluation reads) and the RNG states, and beside each checkpoint `metrics.json`: the run at that
checkpoint in one small file (counters, wall time, its last evaluation with intervals, provenance).
Re-running the same config resumes from that checkpoint exactly; a finished run is a no-op.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
from pathlib import Path

import torch
from tqdm import tqdm

from myreinflow.checkpoint import load_for_resume, save_checkpoint
from myreinflow.errors import UserError
from myreinflow.options import defaults_of, to_dict, to_yaml
from myreinflow.provenance import provenance
from myreinflow.tracking import Tracker
from myreinflow.utils import atomic_write_text


def lr_scheduler(optimizer: torch.optim.Optimizer, schedule: str, total_steps: int):
    """`cosine`: from the optimizer's learning rate down to 0 over `total_steps` updates (then 0);
    `constant`. Step it after each optimizer step; its state goes into the checkpoint."""
    if schedule == "constant":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda i: 1.0)
    total = max(total_steps, 1)
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda i: 0.5 * (1 + math.cos(math.pi * min(i, total) / total))
    )


def gradient_step(loss: torch.Tensor, optimizer, scheduler=None, max_grad_norm: float = 0.0) -> None:
    """One optimizer step on `loss`: gradients clipped to `max_grad_norm` (0 = off), then the schedule."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if max_grad_norm > 0:
        params = [p for group in optimizer.param_groups for p in group["params"]]
        torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
    optimizer.step()
    if scheduler is not None:
        scheduler.step()


class MetricMean:
    """Means of per-update metric tensors, summed where they live and read once per log row."""

    def __init__(self):
        self.sums: dict[str, torch.Tensor] = {}
        self.count = 0

    def add(self, metrics: dict) -> None:
        for k, v in metrics.items():
            self.sums[k] = self.sums.get(k, 0.0) + v
        self.count += 1

    def pop(self) -> dict[str, float]:
        """The means since the last pop (none without updates), as floats; starts a new window."""
        means = {k: float(v / self.count) for k, v in self.sums.items()} if self.count else {}
        self.sums, self.count = {}, 0
        return means


def due(i: int, every: int, last: int | None) -> bool:
    """Whether step/epoch `i` is an evaluation (or checkpoint) point: every `every`th, and `last`."""
    return i == last or bool(every and i % every == 0)


def _finite(value: float) -> float | None:
    """JSON has no NaN: an interval of one episode has no bounds."""
    return value if math.isfinite(value) else None


class TrainingRun:
    """One training run's directory, checkpoint and log.

    `state`: objects with `state_dict`/`load_state_dict` saved under their names; `policies`: ChunkPolicy
    objects saved under `policies` (the names of the eval CSV's `policy` column, main one first);
    `counters`: plain values (step — always —, epoch, ...), attributes of the run (`run.step += 1`) that
    the checkpoint saves and restores. Keys in `resumable` may differ between a run and its resumption.
    `resolved`: what the run made of the config's `auto` values (e.g. the flow taken over from `--init`),
    written into config.yaml; the checkpoint keeps the config as given, which resumption compares.
    """

    def __init__(
        self,
        stage: str,
        cfg,
        out: Path,
        resumable: set[str],
        device,
        generator: torch.Generator,
        state: dict,
        policies: dict | None = None,
        run_name: str = "",
        progress: bool = True,
        write_config: bool = True,
        resolved: dict | None = None,
        **counters,
    ):
        self.stage, self.cfg, self.out, self.resumable = stage, cfg, Path(out), resumable
        self.device, self.generator, self.state, self.policies = device, generator, state, policies or {}
        self.run_name, self.progress, self.write_config = run_name, progress, write_config
        self.resolved = resolved or {}
        self.counter_names = tuple(counters)
        for name, value in counters.items():
            setattr(self, name, value)
        self.ckpt_path = self.out / "model.pt"
        self.tracker: Tracker | None = None
        self._bar: tqdm | None = None

    def resume(self) -> dict | None:
        """Restores this run's checkpoint if there is one (a different run's is refused); returns it."""
        # a key the checkpoint lacks matches what runs did before it existed: its default, unless the
        # config class says otherwise (`EARLIER_DEFAULTS`: a default changed when the option came in)
        config = to_dict(self.cfg)
        defaults = defaults_of(type(self.cfg)) | getattr(self.cfg, "EARLIER_DEFAULTS", {})
        replace = getattr(self.cfg, "replace_other_run", False)
        ckpt = load_for_resume(
            self.ckpt_path, self.stage, config, self.resumable, self.device, defaults, replace
        )
        if ckpt is None:
            return None
        for name, obj in self.state.items():
            if name in ckpt:
                obj.load_state_dict(ckpt[name])
            elif isinstance(obj, torch.optim.lr_scheduler.LambdaLR):  # written before the run had one
                obj.last_epoch = ckpt["step"]
            else:
                raise UserError(f"{self.ckpt_path} has no {name!r} state; use another --out or delete it")
        for name, policy in self.policies.items():
            policy.model.load_state_dict(ckpt["policies"][name]["model"])
        for scheduler in self.state.values():  # the schedule may span more updates now (more epochs)
            if isinstance(scheduler, torch.optim.lr_scheduler.LambdaLR):
                for group, base, factor in zip(
                    scheduler.optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas, strict=True
                ):
                    group["lr"] = base * factor(scheduler.last_epoch)
        # RNG states are CPU byte tensors whatever the device (map_location may have moved them)
        self.generator.set_state(ckpt["rng"]["generator"].cpu())
        torch.set_rng_state(ckpt["rng"]["torch"].cpu())
        for name in self.counter_names:
            setattr(self, name, ckpt[name])
        return ckpt

    @property
    def counters(self) -> dict:
        return {name: getattr(self, name) for name in self.counter_names}

    def start(self) -> None:
        """Writes config.yaml and opens the log (cut back to the checkpoint's step when resuming)."""
        if self.write_config:
            resolved = dataclasses.replace(self.cfg, **self.resolved)
            atomic_write_text(self.out / "config.yaml", to_yaml(resolved))
        step = self.step
        if step:
            print(f"resuming {self.ckpt_path} at " + ", ".join(f"{k} {v}" for k, v in self.counters.items()))
        self.tracker = Tracker(
            self.out / "train.csv",
            to_dict(self.cfg),
            self.cfg.wandb,
            self.cfg.wandb_project,
            run_name=self.run_name,
            resume_step=step or None,
        )

    def bar(self, total: int, initial: int, desc: str) -> tqdm:
        """A progress bar; each logged row shows its losses and scores on it."""
        self._bar = tqdm(total=total, initial=initial, desc=desc, disable=not self.progress)
        return self._bar

    def log(self, metrics: dict, epoch: int | None = None, checkpoint: bool = False, **extra) -> None:
        """A row of train.csv at the current step; with `checkpoint`, then a checkpoint (`extra`: more
        values for it) and the CSV on disk."""
        self.tracker.log(metrics, self.step, getattr(self, "epoch", None) if epoch is None else epoch)
        if self._bar is not None:
            shown = {k: v for k, v in metrics.items() if "loss" in k or "score" in k or "success" in k}
            self._bar.set_postfix({k.split("/")[-1]: f"{v:.3g}" for k, v in shown.items()})
        if checkpoint:
            self.save(**extra)

    def save(self, **extra) -> None:
        payload = {
            "stage": self.stage,
            "config": to_dict(self.cfg),
            **{name: obj.state_dict() for name, obj in self.state.items()},
            "policies": {name: policy.state() for name, policy in self.policies.items()},
            **self.counters,
            "rng": {"torch": torch.get_rng_state(), "generator": self.generator.get_state()},
            **extra,
        }
        save_checkpoint(self.ckpt_path, payload)
        self.tracker.flush()
        atomic_write_text(self.out / "metrics.json", json.dumps(self.summary(), indent=1) + "\n")

    def summary(self) -> dict:
        """metrics.json: the run at its last checkpoint. `last_evaluation` is the last train.csv row with
        evaluation columns (`eval/success`: {mean, ci_low, ci_high}, ...; null before one); `wall_s`
        counts training and its evaluations, over resumptions."""
        last = None
        for row in reversed(self.tracker.rows):  # rows read back on resumption hold strings, "" if unset
            values = {k: float(v) for k, v in row.items() if k.startswith("eval") and v not in ("", None)}
            if values:
                last = {"step": int(float(row["step"])), "episodes": getattr(self.cfg, "eval_episodes", None)}
                for name in (k for k in values if not k.endswith(("_ci_low", "_ci_high"))):
                    bounds = [values.get(f"{name}_ci_low"), values.get(f"{name}_ci_high")]
                    last[name] = _finite(values[name])
                    if bounds[0] is not None:
                        last[name] = {
                            "mean": last[name],
                            "ci_low": _finite(bounds[0]),
                            "ci_high": _finite(bounds[1]),
                        }
                break
        return {
            "stage": self.stage,
            "run_name": self.run_name,
            **self.counters,
            "wall_s": round(self.tracker.wall_s, 3),
            "last_evaluation": last,
            "device": str(self.device),
            "threads": torch.get_num_threads(),
            "written": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            **provenance(),
        }

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        self.tracker.close()
