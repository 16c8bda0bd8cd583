"""MeanFlow Q-learning (MFQL): the MeanFlow policy *is* the actor — no one-step network, no distillation.

After "One-Step Generative Policies with Q-Learning: A Reformulation of MeanFlow" (AAAI'26; JAX code
HiccupRL/MeanFlowQL, `agents/meanflowql.py`). The networks are FQL's (`algos/fql.py`) without the one-step
policy: a MeanFlow flow (from a BC checkpoint with `init`, or fresh), the critic ensemble and its target.
The acting policy is the flow's one-step sample π₁(s, ε) = ε − u(ε, 0, 1 | s) (for the default data
prediction, the network's output at t = 1, r = 0). One update on a batch of chunks:

    critic  FQL's: mean_e (Q_e(s, a) − [R + γ^h · m · agg_e Q̄_e(s', clip π₁(s', ε'))])²
    actor   α · L_MeanFlow(a | s) − λ mean_e Q_e(s, clip π₁(s, ε)) + w · mean(relu(|π₁(s, ε)| − 1))

with the critic frozen in the Q term (λ = sg(1/mean|Q|) under `normalize_q_loss`, else 1), the Q
gradient flowing through the one-step sample into the flow, and the last term the reference's penalty on
pre-clip actions outside [−1, 1] (`bound_loss_weight`). L_MeanFlow is the project's MeanFlow loss
in the recipe of the BC checkpoint's flow (a fresh flow: the default recipe; `flows/meanflow.py`,
`bc --meanflow_recipe mfql` is the reference's loss), padded chunk tails masked; a curriculum counts as
finished. Critic and actor losses are summed and taken in one Adam step with the flow's and the
critic's learning rates, then the target critic moves by Polyak averaging: the critic, TD target, update
and run skeleton are FQL's.

Where this differs from the reference, deliberately:
- α weighs the MeanFlow loss and is constant. The reference also defaults to a schedule of α (dynamic,
  or cosine from α to α/10), a consistency loss (weight 0 by default there) and a warmup-cosine
  learning rate with gradient clipping on the actor; none is used here (not measured to help on this
  project's tasks; each would be an option if it were).
- The flow is the project's MLP `FlowNet` over (z, r, t), trained by the project's MeanFlow loss on
  (t, r) pairs (the reference: a small DiT over (z, t) with r = 0, discrete t).
- The reference acts with the best of 5 one-step candidates ranked by the target critic, and
  early-stops on evaluation success; here one sample acts, and nothing is selected on evaluation.
"""

from __future__ import annotations

from pathlib import Path

import torch

from myreinflow.algos import fql
from myreinflow.configs import MFQLConfig
from myreinflow.policy import ChunkPolicy


class MeanFlowQLAgent(fql.FQLAgent):
    """FQL's critic and update, with the MeanFlow's one-step sample as the actor."""

    def build_actor(self, device) -> None:
        if self.flow_spec["kind"] != "meanflow":
            raise ValueError(f"MFQL needs a MeanFlow flow, got {self.flow_spec['kind']!r}")
        self.flow_steps = 1

    def acting_chunk(self, obs: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """The flow's unclipped one-step chunks (B, h·a); differentiable."""
        return self.flow.integrate(obs, self.noise(obs) if noise is None else noise, 1)

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

    def parameter_groups(self) -> list[dict]:
        return [
            {"params": list(self.flow.parameters()), "lr": self.cfg.lr_flow},
            {"params": list(self.critic.parameters()), "lr": self.cfg.lr_critic},
        ]

    def policies(self, normalizer, device) -> dict[str, ChunkPolicy]:
        return {"flow": ChunkPolicy(self.flow_spec, self.flow, normalizer, device)}

    def eval_heads(self) -> list[tuple[str, str, int]]:
        return [("eval/", "flow", 1)]


def train(cfg: MFQLConfig, progress: bool = True) -> Path:
    """Train (or resume) MFQL offline, then online; returns the path of the final checkpoint."""
    return fql.train(cfg, progress, agent_class=MeanFlowQLAgent, stage="mfql")
