"""MeanFlow Q-learning (MFQL): the MeanFlow policy *is* the actor — no one-step network, no distillation.

After "One-Step Generative Policies with Q-Learning: A Reformulation of MeanFlow" (AAAI'26; JAX code
HiccupRL/MeanFlowQL, `agents/meanflowql.py`). The networks are FQL's (`algos/fql.py`) without the one-step
policy: a MeanFlow flow (from a BC checkpoint with `init`, or fresh), the critic ensemble and its target.
The acting policy is the flow's one-step sample π₁(s, ε) = ε − u(ε, 0, 1 | s) (for the default data
prediction, the network's output at t = 1, r = 0). One update on a batch of chunks:

    critic  FQL's: mean_e (Q_e(s, a) − [R + γ^h · m · agg_e Q̄_e(s', a')])²,  a' the best of N
            candidates clip π₁(s', ε'_i) by mean_e Q̄_e (N = 1: the one sample)
    actor   α · L_MeanFlow(a | s) − λ mean_e Q_e(s, clip π₁(s, ε)) + w · mean(relu(|π₁(s, ε)| − 1))

with the critic frozen in the Q term, the Q gradient flowing through the one-step sample into the flow,
and the last term the reference's penalty on pre-clip actions outside [−1, 1] (`bound_loss_weight`).
L_MeanFlow is the project's MeanFlow loss in the recipe of the BC checkpoint's flow (`flows/meanflow.py`;
`bc --meanflow_recipe mfql` is the reference's loss). The defaults are the reference's: best of 5
one-step candidates ranked by the target critic, the flow's rate warmed up and cosine-decayed, each
group's gradient clipped to norm 1. The critic, TD target, update and run skeleton are FQL's.

Deliberate deviations from the reference (why, and the evidence: docs/algorithms/mfql.md):
- α is constant, chosen on training data; the reference's "dynamic α" and consistency loss are not here.
- The flow is the project's MLP `FlowNet` over (z, r, t), not the reference's small DiT over (z, t).
- Nothing is selected on evaluation episodes; the reference early-stops on evaluation success.
"""

from __future__ import annotations

from pathlib import Path

import torch

from myreinflow.algos import fql
from myreinflow.configs import MFQLConfig


class MeanFlowQLAgent(fql.FlowActorAgent):
    """FQL's critic and update, with the MeanFlow's one-step sample as the actor."""

    def build_actor(self, device) -> None:
        if self.flow_spec["kind"] != "meanflow":
            raise ValueError(f"MFQL needs a MeanFlow flow, got {self.flow_spec['kind']!r}")
        self.flow_steps = 1

    def actor_loss(self, batch: dict) -> tuple[torch.Tensor, dict]:
        obs = batch["obs"].flatten(1)
        bc_flow_loss, info = self.bc_flow_loss(batch)
        actions = self.acting_chunk(obs)
        bound_loss = (actions.abs() - 1).relu().mean()
        q_loss, q_policy = self.q_loss(obs, actions)
        loss = self.cfg.alpha * bc_flow_loss + q_loss + self.cfg.bound_loss_weight * bound_loss
        info["train/bound_loss"], info["train/q_loss"] = bound_loss.detach(), q_loss.detach()
        info["train/q_policy"], info["train/actor_loss"] = q_policy, loss.detach()
        info["train/policy_mse"] = self.policy_mse(actions, batch)
        return loss, info


def train(cfg: MFQLConfig, progress: bool = True) -> Path:
    """Train (or resume) MFQL offline, then online; returns the path of the final checkpoint."""
    return fql.train(cfg, progress, agent_class=MeanFlowQLAgent, stage="mfql")
