"""The 2D study: ReFlow (1-rectified flow), MeanFlow and 2-rectified flow on one network and budget,
evaluated across inference steps (NFE) against fresh samples of the target.

Reads top to bottom: config → models → one resumable training loop for every model (EMA, CSV/WandB,
checkpoints) → the 2-rectified couplings → evaluation → `run`, which does it all and writes

    OUT/config.yaml
    OUT/metrics.csv       distribution, flow, inference_steps, metric, value, seed (all models; written last)
    OUT/reference.csv     the same columns for raw N(0, I) noise (flow 'noise') and a second independent
                          draw of the target (flow 'data'), inference_steps 0: the floor and the ceiling
    OUT/samples.png, OUT/metrics.png, OUT/trajectories.png
    OUT/<flow>/model.pt   checkpoint: weights, EMA weights, optimizer, step, RNG (2-RF: its couplings)
    OUT/<flow>/train.csv  step, epoch (= step), wall_s, train/loss, train/flow_mse, train/lr
    OUT/<flow>/metrics.csv, OUT/<flow>/samples.npz (nfe{K}: samples, path_nfe{K}: a few trajectories)

`steps` counts training steps (one fresh batch of the target per step). Every model starts from the
same seed; the 2-rectified flow starts from the trained 1-RF's weights and trains on (data, noise) pairs
that the 1-RF made from noise with `rectified_steps` Euler steps (Liu et al., 2023). Re-running a
finished run is a no-op; an interrupted one resumes from each model's last checkpoint.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml
from torch.optim.swa_utils import get_ema_multi_avg_fn
from tqdm import tqdm

from myreinflow.checkpoint import load_for_resume
from myreinflow.configs import MEANFLOW_FIELDS, Toy2DConfig
from myreinflow.flows import FLOWS, FlowModel, ReFlow
from myreinflow.nets import FlowNet
from myreinflow.options import RunOptions, to_dict, to_yaml
from myreinflow.run import MetricMean, TrainingRun, due, gradient_step, lr_scheduler
from myreinflow.toy2d.distributions import DISTRIBUTIONS
from myreinflow.toy2d.metrics import TargetMetrics, path_deviation
from myreinflow.utils import atomic_path, atomic_write_text, seed_everything, setup_runtime

N_PATHS = 64  # trajectories kept per NFE in samples.npz and drawn in trajectories.png
COLUMNS = ["distribution", "flow", "inference_steps", "metric", "value", "seed"]


# what a model's checkpoint depends on: a checkpoint trained with other values is refused
COMMON_KEYS = ("distribution", "steps", "batch_size", "lr", "lr_schedule", "ema_decay", "max_grad_norm")
COMMON_KEYS += ("hidden", "activation", "time_dim", "max_freq", "flow_prediction", "seed")
MEANFLOW_KEYS = ("meanflow_recipe", *MEANFLOW_FIELDS, "meanflow_warm_start")
RECTIFIED_KEYS = ("rectified_couplings", "rectified_steps", "rectified_train_steps")
TRAIN_KEYS = {
    "reflow": COMMON_KEYS,
    "meanflow": COMMON_KEYS + MEANFLOW_KEYS,
    "rectified": COMMON_KEYS + RECTIFIED_KEYS,
}
# keys that change neither training nor the numbers: a finished run with other values is still finished
RUNTIME_KEYS = RunOptions.RUN_KEYS | {"out", "log_every", "ckpt_every"}


# ---- models


def build_flow(cfg: Toy2DConfig, model: str, device) -> FlowModel:
    """The same network for every model: u(z, r, t) on 2D points with an empty condition."""
    net = FlowNet(2, 0, cfg.hidden, cfg.time_dim, cfg.max_freq, cfg.activation)
    kind = "meanflow" if model == "meanflow" else "reflow"
    return FLOWS[kind](net, device, 1, 2, **cfg.flow_kwargs(kind))


def empty_condition(n: int, device) -> torch.Tensor:
    return torch.zeros(n, 0, device=device)


@torch.no_grad()
def make_couplings(teacher: FlowModel, cfg: Toy2DConfig, device) -> torch.Tensor:
    """(n, 2, 2) pairs [data, noise]: the 1-RF's sample from each noise with `rectified_steps` Euler steps."""
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    noise = torch.randn(cfg.rectified_couplings, 2, generator=gen).to(device)
    data = teacher.sample(empty_condition(len(noise), device), cfg.rectified_steps, noise=noise, clip=None)
    return torch.stack([data.reshape(-1, 2), noise], dim=1)


def coupled_loss(flow: ReFlow, pairs: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """Flow matching on fixed (data, noise) pairs instead of independent draws."""
    x, noise = pairs[:, 0], pairs[:, 1]
    t = flow.sample_time(len(x), x.device)
    loss = flow.loss(flow.interpolate(x, noise, t), t, empty_condition(len(x), x.device), noise - x)
    return loss, {"train/loss": loss.detach(), "train/flow_mse": loss.detach()}


# ---- training


def load_model_checkpoint(path: Path, model: str, cfg: Toy2DConfig, device="cpu") -> dict | None:
    """`model`'s checkpoint, None if there is none; one trained with other TRAIN_KEYS values is refused."""
    config = to_dict(cfg)
    return load_for_resume(path, f"toy2d/{model}", config, resumable_keys(cfg, model), device)


def resumable_keys(cfg: Toy2DConfig, model: str) -> set[str]:
    warm = model == "meanflow" and cfg.meanflow_warm_start  # then it depends on the ReFlow's training too
    return set(to_dict(cfg)) - set(TRAIN_KEYS[model]) - (set(TRAIN_KEYS["reflow"]) if warm else set())


def train_model(
    model: str, cfg: Toy2DConfig, out: Path, device, progress: bool = True, teacher: FlowModel | None = None
) -> FlowModel:
    """Train (or resume, or load when finished) one model; returns the weights evaluation uses (EMA)."""
    total = cfg.steps_of(model)
    seed_everything(cfg.seed)
    flow = build_flow(cfg, model, device)
    if teacher is not None:  # the 2-RF (and a warm-started MeanFlow) starts from the 1-RF
        flow.load_state_dict(teacher.state_dict())
    params = list(flow.parameters())
    ema = copy.deepcopy(flow).requires_grad_(False) if cfg.ema_decay else None
    optimizer = torch.optim.Adam(params, lr=cfg.lr, foreach=True)
    scheduler = lr_scheduler(optimizer, cfg.lr_schedule, total)
    run = TrainingRun(
        f"toy2d/{model}",
        cfg,
        out / model,
        resumable_keys(cfg, model),
        device,
        torch.Generator().manual_seed(cfg.seed),  # the target's samples: drawn on the CPU
        state={"flow": flow, "optimizer": optimizer, "scheduler": scheduler} | ({"ema": ema} if ema else {}),
        run_name=f"toy2d-{cfg.distribution}-{model}-s{cfg.seed}",
        progress=progress,
        write_config=False,  # the study's config.yaml is one level up
        step=0,
    )
    couplings = (run.resume() or {}).get("couplings")
    trained = ema if ema is not None else flow
    if run.step >= total:
        return trained.eval()
    if model == "rectified" and couplings is None:
        couplings = make_couplings(teacher, cfg, device)
    run.start()
    ema_update = get_ema_multi_avg_fn(cfg.ema_decay)
    ema_params = list(ema.parameters()) if ema is not None else []
    cond = empty_condition(cfg.batch_size, device)
    mean = MetricMean()
    flow.train()
    bar = run.bar(total, run.step, f"{cfg.distribution} {model}")
    while run.step < total:
        if model == "rectified":
            pick = torch.randint(0, len(couplings), (cfg.batch_size,), generator=run.generator)
            loss, metrics = coupled_loss(flow, couplings[pick.to(device)])
        else:
            x = DISTRIBUTIONS[cfg.distribution](cfg.batch_size, run.generator).to(device)
            flow.set_progress(run.step / total)
            loss, metrics = flow.compute_loss(x.reshape(-1, 1, 2), cond)
        lr = optimizer.param_groups[0]["lr"]
        gradient_step(loss, optimizer, scheduler, cfg.max_grad_norm)
        if ema is not None:
            ema_update(ema_params, params, None)
        mean.add(metrics)
        run.step += 1
        bar.update(1)
        if due(run.step, cfg.log_every, total):
            run.log({**mean.pop(), "train/lr": lr}, epoch=run.step)
        if due(run.step, cfg.ckpt_every, total):
            run.save(**({"couplings": couplings} if couplings is not None else {}))
    run.close()
    return trained.eval()


# ---- evaluation


def long_rows(cfg: Toy2DConfig, flow: str, inference_steps: int, metrics: dict) -> list[dict]:
    return [
        {
            "distribution": cfg.distribution,
            "flow": flow,
            "inference_steps": inference_steps,
            "metric": m,
            "value": v,
            "seed": cfg.seed,
        }
        for m, v in metrics.items()
    ]


def eval_sets(cfg: Toy2DConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """(target, noise): `eval_samples` fresh target points and the N(0, I) starts every model shares."""
    n = cfg.eval_samples
    noise = torch.randn(n, 2, generator=torch.Generator().manual_seed(cfg.eval_seed))
    target = DISTRIBUTIONS[cfg.distribution](n, torch.Generator().manual_seed(cfg.eval_seed + 1))
    return target, noise


@torch.no_grad()
def evaluate_model(
    name: str, flow: FlowModel, cfg: Toy2DConfig, target: TargetMetrics, noise
) -> tuple[list, dict]:
    """Metric rows at every NFE, and the arrays of samples.npz (samples, the first trajectories)."""
    rows, arrays = [], {}
    start = noise.to(flow.device)
    for k in cfg.inference_steps:
        x, path = flow.sample(
            empty_condition(len(start), flow.device), k, noise=start, clip=None, return_path=True
        )
        samples = x.reshape(-1, 2).cpu()
        metrics = {**target(samples), "straightness": path_deviation(path)}
        rows += long_rows(cfg, name, k, metrics)
        arrays[f"nfe{k}"] = samples.numpy().astype(np.float32)
        arrays[f"path_nfe{k}"] = path[:, :N_PATHS].cpu().numpy().astype(np.float32)
    return rows, arrays


def reference_rows(cfg: Toy2DConfig, target: TargetMetrics, noise) -> list[dict]:
    """Raw noise (what an untrained sampler gives) and a second target draw (the best attainable)."""
    seed = torch.Generator().manual_seed(cfg.eval_seed + 2)
    second = DISTRIBUTIONS[cfg.distribution](cfg.eval_samples, seed)
    return long_rows(cfg, "noise", 0, target(noise)) + long_rows(cfg, "data", 0, target(second))


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def write_npz(arrays: dict, path: Path) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)


# ---- the study


def is_complete(cfg: Toy2DConfig, out: Path) -> bool:
    """A finished run: its last output exists and it was made with the same (non-runtime) config."""
    if not (out / "metrics.csv").is_file() or not (out / "config.yaml").is_file():
        return False
    old = yaml.safe_load((out / "config.yaml").read_text()) or {}
    new = to_dict(cfg)
    return all(old.get(k) == v for k, v in new.items() if k not in RUNTIME_KEYS)


def run(cfg: Toy2DConfig, progress: bool = True) -> Path:
    """Train, evaluate and plot every model of `cfg.flows`; returns the output directory."""
    from myreinflow.analysis.figures.toy2d import plot_toy2d
    from myreinflow.toy2d.figures import plot_samples, plot_trajectories

    out = cfg.output_dir()
    if is_complete(cfg, out):
        print(f"{out} is complete; nothing to do")
        return out
    device = setup_runtime(cfg.device, cfg.threads)
    needs_reflow = "rectified" in cfg.flows or ("meanflow" in cfg.flows and cfg.meanflow_warm_start)
    needed = set(cfg.flows) | ({"reflow"} if needs_reflow else set())
    for model in needed:  # refuse a different run before touching anything
        load_model_checkpoint(out / model / "model.pt", model, cfg)
    (out / "metrics.csv").unlink(missing_ok=True)  # written last: its presence marks a finished run
    atomic_write_text(out / "config.yaml", to_yaml(cfg))

    target, noise = eval_sets(cfg)
    scores = TargetMetrics(target)
    trained: dict[str, FlowModel] = {}
    if "reflow" in needed:
        trained["reflow"] = train_model("reflow", cfg, out, device, progress)
    if "rectified" in cfg.flows:
        trained["rectified"] = train_model("rectified", cfg, out, device, progress, teacher=trained["reflow"])
    if "meanflow" in cfg.flows:
        teacher = trained["reflow"] if cfg.meanflow_warm_start else None
        trained["meanflow"] = train_model("meanflow", cfg, out, device, progress, teacher=teacher)

    rows, arrays = [], {}
    for name in tqdm(cfg.flows, desc="evaluate", disable=not progress):
        flow_rows, arrays[name] = evaluate_model(name, trained[name], cfg, scores, noise)
        write_csv(pd.DataFrame(flow_rows, columns=COLUMNS), out / name / "metrics.csv")
        write_npz(arrays[name], out / name / "samples.npz")
        rows += flow_rows
    metrics = pd.DataFrame(rows, columns=COLUMNS)
    reference = pd.DataFrame(reference_rows(cfg, scores, noise), columns=COLUMNS)
    write_csv(reference, out / "reference.csv")

    title = f"{cfg.distribution}: {cfg.steps} training steps per model, seed {cfg.seed}"
    target_np = target.numpy()
    plot_samples(arrays, target_np, cfg.inference_steps, out / "samples.png", title, metrics)
    plot_toy2d(pd.concat([metrics, reference], ignore_index=True), out / "metrics.png", title)
    plot_trajectories(arrays, target_np, max(cfg.inference_steps), out / "trajectories.png", title)
    write_csv(metrics, out / "metrics.csv")
    return out


def summary_table(metrics: pd.DataFrame, reference: pd.DataFrame, metric: str = "swd") -> str:
    """A plain-text table of one metric: models × NFE, with the noise and data references."""
    table = metrics[metrics.metric == metric].pivot(index="flow", columns="inference_steps", values="value")
    ref = reference[reference.metric == metric].set_index("flow")["value"]
    refs = ", ".join(f"{k} {v:.4g}" for k, v in ref.items())
    return f"{metric} (reference: {refs})\n{table.to_string(float_format=lambda v: f'{v:.4g}')}"
