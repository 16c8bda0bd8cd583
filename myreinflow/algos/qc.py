"""Q-chunking's best-of-N (QC; Li, Zhou, Levine 2025): the BC flow acts, the critic chooses its sample.

After arXiv 2507.07969 and its code (ColinQiyangLi/qc, `agents/acfql.py` with `actor_type best-of-n`).
The networks are FQL's (`algos/fql.py`) without the one-step policy: the BC flow (ReFlow or MeanFlow,
from a BC checkpoint with `init`, or fresh), the critic ensemble and its target. A chunk is chosen as
the best of N flow samples of K steps each (a_i = clip flow_K(s, z_i), z_i ~ N(0, I)) ranked by the
online critic's mean over the ensemble; the TD target bootstraps from the same choice at s'. One update:

    critic  mean_e (Q_e(s, a) − [R + γ^h · m · agg_e Q̄_e(s', a*')])²,  a*' = argmax_i mean_e Q_e(s', a'_i)
    flow    L_flow(a | s)      (its BC loss only: no Q term, no distillation)

in one Adam step, then the target moves by Polyak averaging: the critic, TD target, update and run
skeleton are FQL's. The reference's N = 32 and K = 10 (ReFlow; its Q-chunking setting, h = 5; its h = 1
best-of-N baseline uses N = 4) are the defaults; over a MeanFlow K = 1. Online, as in the reference, no
update is made for the first 5,000 env steps (`online_warmup_steps`).
A TD target and an acting chunk cost N·K flow evaluations each, where FQL's one-step policy pays one.

Deliberate deviations from the reference (docs/algorithms/qc.md):
- The flow starts from a BC checkpoint, as FQL's and MeanFlow-QL's do; the reference trains it from scratch.
- FQL's deviations hold here too: 3×256 networks by default, the critic loss over its valid chunks.
"""

from __future__ import annotations

from pathlib import Path

import torch

from myreinflow.algos import fql
from myreinflow.configs import QCConfig


class QCAgent(fql.FlowActorAgent):
    """FQL's critic and update, with the best of N BC-flow samples (of `flow_steps` steps) as the acting
    policy."""

    def actor_loss(self, batch: dict) -> tuple[torch.Tensor, dict]:
        return self.bc_flow_loss(batch)


def train(cfg: QCConfig, progress: bool = True) -> Path:
    """Train (or resume) QC offline, then online; returns the path of the final checkpoint."""
    return fql.train(cfg, progress, agent_class=QCAgent, stage="qc")
