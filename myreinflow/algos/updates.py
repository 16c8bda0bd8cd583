"""The FQL family's optimisation: one Adam step over the agent's parameter groups (a learning rate per
network), the acting network's learning-rate schedule, per-group gradient clipping, then the target's
Polyak average; and that update compiled as the device suits.

An agent here is an FQL-family agent (`algos/fql.py`): `total_loss`, `update_target`, `matmul_precision`,
`parameter_groups` and its `cfg`.
"""

from __future__ import annotations

import functools
import math

import torch
from torch import nn

from myreinflow.configs import FQLConfig


def make_optimizer(agent: nn.Module) -> torch.optim.Optimizer:
    # one fused kernel for all parameters (CPU and CUDA)
    return torch.optim.Adam(agent.parameter_groups(), fused=True)


def actor_lr_scheduler(cfg: FQLConfig, optimizer, acting_group: str, offline_updates: int):
    """Per-update learning-rate factors of the optimizer's groups: 1 for every group but the acting
    network's, which under `warmup_cosine` rises linearly from 0 over the first `actor_lr_warmup` of the
    `offline_updates`, falls along a cosine to `actor_lr_final` by their end and stays there online (the
    MeanFlowQL reference's schedule). Step it after each update; its state goes into the checkpoint."""
    warmup = int(cfg.actor_lr_warmup * offline_updates)
    decay = max(offline_updates - warmup, 1)

    def warmup_cosine(i: int) -> float:
        if i < warmup:
            return i / warmup
        cosine = 0.5 * (1 + math.cos(math.pi * min(i - warmup, decay) / decay))
        return cfg.actor_lr_final + (1 - cfg.actor_lr_final) * cosine

    def factor(group: dict):
        scheduled = cfg.actor_lr_schedule == "warmup_cosine" and group["name"] == acting_group
        return warmup_cosine if scheduled else constant

    return torch.optim.lr_scheduler.LambdaLR(optimizer, [factor(g) for g in optimizer.param_groups])


def constant(i: int) -> float:
    return 1.0


def clip_gradients(optimizer: torch.optim.Optimizer, max_norm: float) -> None:
    """Each parameter group's gradient scaled to global norm ≤ `max_norm`, group by group (the MeanFlowQL
    reference clips its actor's and its critic's separately); 0 = off."""
    if max_norm > 0:
        for group in optimizer.param_groups:
            torch.nn.utils.clip_grad_norm_(group["params"], max_norm, foreach=True)


def gradients(agent: nn.Module, batch: dict) -> dict:
    """The update's losses (critic + actor) in the agent's matmul precision, their gradients accumulated into
    the parameters' `.grad`; returns detached metrics."""
    with agent.matmul_precision(batch["obs"].device.type):
        loss, info = agent.total_loss(batch)
    loss.backward()
    return info


def update(agent: nn.Module, optimizer: torch.optim.Optimizer, batch: dict, gradients=gradients) -> dict:
    """One update: critic and actor in one optimizer step (each group's gradient clipped to
    `max_grad_norm` first), then the target; returns detached metrics."""
    optimizer.zero_grad(set_to_none=True)
    info = gradients(agent, batch)
    clip_gradients(optimizer, agent.cfg.max_grad_norm)
    optimizer.step()
    agent.update_target()
    return info


def update_step(cfg: FQLConfig, device: torch.device):
    """`update`, compiled as `cfg.compile` says.

    On CUDA the whole update is replayed as CUDA graphs (`reduce-overhead`); the metrics are copied out, as
    a graph's outputs are overwritten by its next replay. On the CPU the losses *and their backward pass*
    are one inductor program (Dynamo traces `loss.backward()` under `trace_autograd_ops`), as one XLA
    program is in the JAX reference; Adam's fused step and the target's Polyak average run after it: one
    program instead of a forward graph, the autograd engine and a backward graph (its speed-up:
    docs/benchmarks.md). CUDA keeps the path benchmarked on a GPU; the traced backward has not run on
    one. A learning-rate schedule changes Adam's rate at every update,
    which a CUDA graph would hold fixed: then CUDA compiles the losses and their backward only.
    """
    if cfg.compile == "off" or (cfg.compile == "auto" and device.type != "cuda"):
        return update
    if device.type == "cuda" and cfg.actor_lr_schedule != "constant":
        return functools.partial(update, gradients=torch.compile(gradients))
    if device.type == "cuda":
        compiled = torch.compile(update, mode="reduce-overhead")

        def step(agent: nn.Module, optimizer: torch.optim.Optimizer, batch: dict) -> dict:
            return {k: v.clone() for k, v in compiled(agent, optimizer, batch).items()}

        return step
    compiled_gradients = torch.compile(gradients)

    def traced_gradients(agent: nn.Module, batch: dict) -> dict:
        with torch._dynamo.config.patch(trace_autograd_ops=True):
            return compiled_gradients(agent, batch)

    return functools.partial(update, gradients=traced_gradients)


def scheduled(step, scheduler):
    """`step` (an update), then one step of the learning-rate schedule; its metrics."""

    def step_and_schedule(agent: nn.Module, optimizer: torch.optim.Optimizer, batch: dict) -> dict:
        info = step(agent, optimizer, batch)
        scheduler.step()
        return info

    return step_and_schedule
