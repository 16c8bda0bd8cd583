"""Behaviour cloning of chunk policies: ReFlow / MeanFlow flows, a deterministic MLP, or a categorical
policy (chosen automatically for discrete action spaces).

Reads top to bottom: config → data → model → resume → epochs of minibatch updates, with evaluation
rollouts, CSV/WandB logging and a checkpoint (weights, normaliser, optimizer, step, RNG) every
`eval_freq` epochs. Re-running the same command resumes from the checkpoint in `out`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from myreinflow.checkpoint import load_for_resume, save_checkpoint
from myreinflow.config import RunOptions, check_config, option, to_dict
from myreinflow.data.chunks import ChunkedTransitions, episodes_of
from myreinflow.data.normalize import Normalizer
from myreinflow.envs import env_spec_json
from myreinflow.errors import UserError
from myreinflow.evaluation import evaluate, summarize
from myreinflow.policy import ChunkPolicy, FlowOptions, build_model
from myreinflow.tracking import Tracker
from myreinflow.utils import atomic_write_text, seed_everything, setup_runtime

POLICIES = ("reflow", "meanflow", "mlp")


@dataclass
class BCConfig(FlowOptions, RunOptions):
    dataset: str = field(default="mujoco/pusher/expert-v0", metadata=option("Minari dataset id"))
    source: str = field(
        default="auto",
        metadata=option("where the dataset comes from", choices=("auto", "minari", "generate")),
    )
    flow: str = field(
        default="reflow",
        metadata=option(
            "policy: a flow or the MLP baseline (discrete action spaces always get a categorical policy)",
            choices=POLICIES,
        ),
    )
    epochs: int = field(default=50, metadata=option("passes over the dataset"))
    batch_size: int = field(default=256, metadata=option("minibatch size"))
    lr: float = field(default=3e-4, metadata=option("Adam learning rate"))
    lr_schedule: str = field(
        default="cosine", metadata=option("learning rate over training", choices=("cosine", "constant"))
    )
    weight_decay: float = field(default=0.0, metadata=option("AdamW weight decay"))
    max_grad_norm: float = field(default=10.0, metadata=option("gradient clipping (0 = off)"))
    horizon_steps: int = field(default=4, metadata=option("actions per chunk"))
    cond_steps: int = field(default=1, metadata=option("stacked observations the policy sees"))
    inference_steps: int = field(
        default=0, metadata=option("flow steps for evaluation during training (0 = ReFlow 4, MeanFlow 1)")
    )
    eval_freq: int = field(
        default=5, metadata=option("evaluate and checkpoint every N epochs (0 = only at the end)")
    )
    eval_episodes: int = field(default=10, metadata=option("episodes per evaluation during training"))
    seed: int = field(default=42, metadata=option("random seed"))
    out: str = field(
        default="", metadata=option("output directory (default results/bc/<dataset>/<flow>/seed<seed>)")
    )

    def __post_init__(self):
        rules = (
            self.flow_rules()
            | self.run_rules()
            | {
                "epochs": (self.epochs >= 0, ">= 0"),
                "batch_size": (self.batch_size >= 1, ">= 1"),
                "lr": (self.lr > 0, "> 0"),
                "horizon_steps": (self.horizon_steps >= 1, ">= 1"),
                "cond_steps": (self.cond_steps >= 1, ">= 1"),
                "inference_steps": (self.inference_steps >= 0, ">= 0"),
                "eval_freq": (self.eval_freq >= 0, ">= 0"),
                "eval_episodes": (self.eval_episodes >= 1, ">= 1"),
            }
        )
        check_config(self, rules)

    def output_dir(self) -> Path:
        return Path(self.out or f"results/bc/{self.dataset.replace('/', '_')}/{self.flow}/seed{self.seed}")


# keys that may change between a run and its resumption without changing what is trained
RESUMABLE_KEYS = RunOptions.RUN_KEYS | {
    "epochs",
    "eval_freq",
    "eval_episodes",
    "out",
    "source",
}


def policy_spec(cfg: BCConfig, obs_dim: int, act_dim: int, n_actions: int | None) -> dict:
    kind = "categorical" if n_actions else cfg.flow
    return {
        "kind": kind,
        "obs_dim": obs_dim,
        "act_dim": act_dim,
        "n_actions": n_actions,
        "horizon_steps": cfg.horizon_steps,
        "cond_steps": cfg.cond_steps,
        "hidden": list(cfg.hidden),
        "activation": cfg.activation,
        "time_dim": cfg.time_dim,
        "max_freq": cfg.max_freq,
        "flow_kwargs": cfg.flow_kwargs(kind),
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


def dataset_info(dataset) -> dict:
    """Env and reference scores that evaluation needs, stored in the checkpoint."""
    meta = dataset.storage.metadata
    spec = env_spec_json(dataset)
    return {
        "dataset_id": dataset.spec.dataset_id if hasattr(dataset, "spec") else meta["dataset_id"],
        "env_spec": spec,
        "env_id": gym.envs.registration.EnvSpec.from_json(spec).id,
        "ref_min_score": meta.get("ref_min_score"),
        "ref_max_score": meta.get("ref_max_score"),
    }


def spaces_of(dataset) -> tuple[int, int, int | None]:
    """(obs_dim, act_dim, n_actions) for Box observations and Box or Discrete actions."""
    obs_space, act_space = dataset.observation_space, dataset.action_space
    if not isinstance(obs_space, gym.spaces.Box) or len(obs_space.shape) != 1:
        raise UserError(f"observation space {obs_space} is not supported; allowed: a flat Box")
    if isinstance(act_space, gym.spaces.Discrete):
        return obs_space.shape[0], 1, int(act_space.n)
    if isinstance(act_space, gym.spaces.Box) and len(act_space.shape) == 1:
        return obs_space.shape[0], act_space.shape[0], None
    raise UserError(f"action space {act_space} is not supported; allowed: a flat Box or Discrete")


def load_transitions(
    dataset,
    horizon_steps: int,
    cond_steps: int,
    device,
    discount: float | None = None,
    normalizer: Normalizer | None = None,
) -> tuple[ChunkedTransitions, Normalizer]:
    """A Minari dataset's chunked transitions on `device`, and the normaliser (fitted unless given)."""
    _, _, n_actions = spaces_of(dataset)
    episodes = episodes_of(dataset)
    if normalizer is None:
        observations = np.concatenate([ep["observations"] for ep in episodes])
        actions = np.concatenate([ep["actions"] for ep in episodes])
        normalizer = Normalizer.fit(observations, None if n_actions else dataset.action_space, actions)
    data = ChunkedTransitions(episodes, horizon_steps, cond_steps, normalizer, device, discount)
    return data, normalizer


def train(cfg: BCConfig, progress: bool = True) -> Path:
    """Train (or resume) a BC policy; returns the path of the final checkpoint."""
    out = cfg.output_dir()
    ckpt_path = out / "model.pt"
    device = setup_runtime(cfg.device, cfg.threads)
    seed_everything(cfg.seed)

    # ---- data
    from myreinflow.data import load_dataset

    dataset = load_dataset(cfg.dataset, cfg.source, progress=progress)
    data, normalizer = load_transitions(dataset, cfg.horizon_steps, cfg.cond_steps, device)
    obs_dim, act_dim, n_actions = spaces_of(dataset)
    info = dataset_info(dataset)

    # ---- model
    spec = policy_spec(cfg, obs_dim, act_dim, n_actions)
    model = build_model(spec, device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    generator = torch.Generator(device=device).manual_seed(cfg.seed)
    step, start_epoch = 0, 0

    # ---- resume
    ckpt = load_for_resume(ckpt_path, "bc", to_dict(cfg), RESUMABLE_KEYS, device)
    if ckpt is not None:
        model.load_state_dict(ckpt["policy"]["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        # RNG states are CPU byte tensors whatever the device (map_location may have moved them)
        generator.set_state(ckpt["rng"]["generator"].cpu())
        torch.set_rng_state(ckpt["rng"]["torch"].cpu())
        step, start_epoch = ckpt["step"], ckpt["epoch"]
        if start_epoch >= cfg.epochs:
            print(f"{ckpt_path} is complete ({start_epoch} epochs); nothing to do")
            return ckpt_path
        print(f"resuming {ckpt_path} from epoch {start_epoch} (step {step})")

    atomic_write_text(out / "config.yaml", config_yaml(cfg))
    tracker = Tracker(
        out / "train.csv",
        to_dict(cfg),
        cfg.wandb,
        cfg.wandb_project,
        run_name=f"bc-{cfg.flow}-{cfg.dataset}-s{cfg.seed}",
        resume_step=step if step else None,
    )
    policy = ChunkPolicy(spec, model, normalizer, device)
    k_eval = cfg.inference_steps or (4 if spec["kind"] == "reflow" else 1)

    def save(epoch: int) -> None:
        save_checkpoint(
            ckpt_path,
            {
                "stage": "bc",
                "config": to_dict(cfg),
                "policy": policy.state(),
                "dataset": info,
                "optimizer": optimizer.state_dict(),
                "step": step,
                "epoch": epoch,
                "rng": {"torch": torch.get_rng_state(), "generator": generator.get_state()},
            },
        )

    steps_per_epoch = max(1, len(data) // cfg.batch_size)
    total_steps = cfg.epochs * steps_per_epoch

    def lr_at(i: int) -> float:
        if cfg.lr_schedule == "constant":
            return cfg.lr
        return cfg.lr * 0.5 * (1 + math.cos(math.pi * min(i, total_steps) / max(total_steps, 1)))

    # ---- train
    bar = tqdm(
        range(start_epoch, cfg.epochs),
        desc=f"bc {spec['kind']}",
        disable=not progress,
        initial=start_epoch,
        total=cfg.epochs,
    )
    for epoch in bar:
        model.train()
        sums: dict[str, torch.Tensor] = {}
        n_batches = 0
        for batch in data.epoch(cfg.batch_size, generator):
            loss, metrics = bc_loss(spec["kind"], model, batch)
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            optimizer.step()
            step += 1
            n_batches += 1
            for k, v in metrics.items():
                sums[k] = sums.get(k, 0.0) + v
        logged = {k: (v / n_batches).item() for k, v in sums.items()}
        last = epoch + 1 == cfg.epochs
        if last or (cfg.eval_freq and (epoch + 1) % cfg.eval_freq == 0):
            model.eval()
            rows = evaluate(
                policy,
                info["env_spec"],
                info["env_id"],
                [k_eval],
                cfg.eval_episodes,
                seed=cfg.seed + 10_000,
                ref_min=info["ref_min_score"],
                ref_max=info["ref_max_score"],
            )
            logged.update(summarize(rows))
            tracker.log(logged, step, epoch + 1)
            save(epoch + 1)
            tracker.flush()
        else:
            tracker.log(logged, step, epoch + 1)
        bar.set_postfix(
            {k.split("/")[-1]: f"{v:.3g}" for k, v in logged.items() if "loss" in k or "score" in k}
        )
    tracker.close()
    return ckpt_path


def config_yaml(cfg) -> str:
    import yaml

    return yaml.safe_dump(to_dict(cfg), sort_keys=False)
