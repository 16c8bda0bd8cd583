"""MeanFlow Q-learning (MFQL): the MeanFlow policy *is* the actor — no one-step network, no distillation.

After "One-Step Generative Policies with Q-Learning: A Reformulation of MeanFlow" (AAAI'26; JAX code
HiccupRL/MeanFlowQL, `agents/meanflowql.py`). The networks are FQL's (`algos/fql.py`) without the one-step
policy: a MeanFlow flow (from a BC checkpoint with `init`, or fresh), the critic ensemble and its target.
The acting policy is the flow's one-step sample π₁(s, ε) = ε − u(ε, 0, 1 | s) (for the default data
prediction, the network's output at t = 1, r = 0). One update on a batch of chunks:

    critic  FQL's: mean_e (Q_e(s, a) − [R + γ^h · m · agg_e Q̄_e(s', a')])²,  a' the best of N
            candidates clip π₁(s', ε'_i) by mean_e Q̄_e (N = 1: the one sample)
    actor   α · L_MeanFlow(a | s) − λ mean_e Q_e(s, clip π₁(s, ε)) + w · mean(relu(|π₁(s, ε)| − 1))

with the critic frozen in the Q term (λ = sg(1/mean|Q|) under `normalize_q_loss`, else 1), the Q
gradient flowing through the one-step sample into the flow, and the last term the reference's penalty on
pre-clip actions outside [−1, 1] (`bound_loss_weight`). L_MeanFlow is the project's MeanFlow loss
in the recipe of the BC checkpoint's flow (a fresh flow: the default recipe; `flows/meanflow.py`,
`bc --meanflow_recipe mfql` is the reference's loss), padded chunk tails masked; a curriculum counts as
finished. Critic and actor losses are summed and taken in one Adam step with the flow's and the
critic's learning rates, then the target critic moves by Polyak averaging: the critic, TD target, update
and run skeleton are FQL's.

As in the reference, by default (each an option; `--candidates 1 --lr_flow 3e-4 --actor_lr_schedule
constant --max_grad_norm 0 --rank_critic critic` is this module's earlier behaviour):
- acting and the TD target take the best of 5 one-step candidates ranked by the *target* critic (mean
  over the ensemble); the reference's halving of N for the target is lost under its jit (N stays 5);
- the flow (the actor) learns at 1e-4 warmed up linearly over 5 % of the offline updates, then
  cosine-decayed to 0.1× by their end (held online), the critic at a constant 3e-4;
- the actor's and the critic's gradients are each clipped to global norm 1.

Where this differs from the reference, deliberately:
- α weighs the MeanFlow loss and is constant, chosen by the project's training-side rule (the smallest α
  whose `train/policy_mse` stays at FQL's level; docs/reflow_vs_meanflow_rl.md). The reference's default
  "dynamic α" (every 2,000 updates after 10 % of them, α × 1.2 when the MeanFlow loss exceeds 5× its
  recent mean, × 0.8 below a fifth) and its consistency loss (weight 0 there) are not implemented.
- The flow is the project's MLP `FlowNet` over (z, r, t), trained by the project's MeanFlow loss on
  (t, r) pairs (the reference: a small DiT over (z, t) with r = 0, discrete t).
- The reference early-stops on evaluation success; here nothing is selected on evaluation.
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
