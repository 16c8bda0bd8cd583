"""Behaviour cloning of chunk policies: ReFlow / MeanFlow flows, a deterministic MLP, or a categorical
policy (chosen automatically for discrete action spaces).

Reads top to bottom: config → loss → `train` (data → model → epochs of minibatch updates, with
evaluation rollouts and a checkpoint every `eval_freq` epochs). The run's directory, log, checkpoint and
resume are `myreinflow.run`'s; re-running the same command resumes from the checkpoint in `out`.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from myreinflow.checkpoint import policy_name
from myreinflow.configs import BCConfig
from myreinflow.data import load_dataset
from myreinflow.data.offline import dataset_info, load_transitions, spaces_of
from myreinflow.errors import UserError
from myreinflow.evaluation import EVAL_SEED_OFFSET, eval_summary
from myreinflow.flows import FLOWS
from myreinflow.names import DEFAULT_STEPS
from myreinflow.options import RunOptions
from myreinflow.policy import ChunkPolicy, build_model, load_bc_flow, policy_spec, prediction_of
from myreinflow.run import MetricMean, TrainingRun, due, gradient_step, lr_scheduler
from myreinflow.utils import seed_everything, setup_runtime

# keys that may change between a run and its resumption without changing what is trained
RESUMABLE_KEYS = RunOptions.RUN_KEYS | {
    "epochs",
    "eval_freq",
    "eval_episodes",
    "out",
    "source",
    "reward",  # BC does not read rewards
}


def bc_loss(kind: str, model, batch: dict) -> tuple[torch.Tensor, dict]:
    """Loss of one minibatch for any policy kind; returns (loss, detached metrics)."""
    obs = batch["obs"].reshape(batch["obs"].shape[0], -1)
    if kind == "categorical":
        logits = model(obs)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch["actions"].reshape(-1))
        return loss, {"train/loss": loss.detach()}
    if kind == "mlp":
        loss = F.mse_loss(model(obs), batch["actions"].reshape(obs.shape[0], -1))
        return loss, {"train/loss": loss.detach()}
    return model.compute_loss(batch["actions"], obs)


def warm_start(model, spec: dict, path: str, device) -> None:
    """Copy the network of the BC flow at `path` into `model` (a flow of the same network and chunks)."""
    if spec["kind"] not in FLOWS:
        raise UserError(f"--warm_start needs a flow model (reflow, meanflow), not {spec['kind']!r}")
    shapes = ("obs_dim", "act_dim", "horizon_steps", "cond_steps", "hidden", "activation", "time_dim")
    expected = {k: spec[k] for k in (*shapes, "max_freq")} | {"flow_prediction": prediction_of(spec)}
    source = load_bc_flow(path, device, expected, option="--warm_start")
    model.network.load_state_dict(source.model.network.state_dict())


def train(cfg: BCConfig, progress: bool = True) -> Path:
    """Train (or resume) a BC policy; returns the path of the final checkpoint."""
    device = setup_runtime(cfg.device, cfg.threads)
    seed_everything(cfg.seed)
    dataset = load_dataset(cfg.dataset, cfg.source, progress=progress)
    task = cfg.resolve_task(dataset)
    data, normalizer = load_transitions(dataset, cfg.horizon_steps, cfg.cond_steps, device)
    obs_dim, act_dim, n_actions = spaces_of(dataset)
    kind = "categorical" if n_actions else cfg.model
    spec = policy_spec(kind, obs_dim, act_dim, cfg.horizon_steps, cfg.cond_steps, cfg, n_actions)
    model = build_model(spec, device)
    if cfg.warm_start:
        warm_start(model, spec, cfg.warm_start, device)
    policy = ChunkPolicy(spec, model, normalizer, device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    total_steps = cfg.epochs * max(1, len(data) // cfg.batch_size)
    scheduler = lr_scheduler(optimizer, cfg.lr_schedule, total_steps)
    generator = torch.Generator(device=device).manual_seed(cfg.seed)
    run = TrainingRun(
        "bc",
        cfg,
        cfg.output_dir(),
        RESUMABLE_KEYS,
        device,
        generator,
        state={"optimizer": optimizer, "scheduler": scheduler},
        policies={policy_name(kind): policy},
        run_name=f"bc-{kind}-{cfg.dataset}-s{cfg.seed}",
        progress=progress,
        step=0,
        epoch=0,
    )
    if run.resume() and run.epoch >= cfg.epochs:
        print(f"{run.ckpt_path} is complete ({run.epoch} epochs); nothing to do")
        return run.ckpt_path
    run.start()
    info = dataset_info(dataset, task, cfg.reward)  # its eval rows join FQL's of the same reward
    k_eval = cfg.inference_steps or DEFAULT_STEPS.get(kind, 1)
    bar = run.bar(cfg.epochs, run.epoch, f"bc {kind}")
    while run.epoch < cfg.epochs:
        model.train()
        mean = MetricMean()
        for batch in data.epoch(cfg.batch_size, generator):
            if kind in FLOWS:
                model.set_progress(run.step / total_steps)
            loss, metrics = bc_loss(kind, model, batch)
            gradient_step(loss, optimizer, scheduler, cfg.max_grad_norm)
            mean.add(metrics)
            run.step += 1
        run.epoch += 1
        metrics = mean.pop()
        evaluate_now = due(run.epoch, cfg.eval_freq, cfg.epochs)
        if evaluate_now:
            model.eval()
            metrics |= eval_summary(policy, info, k_eval, cfg.eval_episodes, cfg.seed + EVAL_SEED_OFFSET)
        run.log(metrics, checkpoint=evaluate_now, dataset=info)
        bar.update(1)
    run.close()
    return run.ckpt_path
