"""The FQL family's phases after the offline one, and the evaluation log they share with it: the online
phase (the acting policy in the env, its episodes joining the replay) and its control, the same updates
on the offline data alone (`online_env` false).
"""

from __future__ import annotations

from torch import nn

from myreinflow.algos.updates import update
from myreinflow.data.replay import Episode, OnlineEpisodes
from myreinflow.envs import make_env
from myreinflow.evaluation import EVAL_SEED_OFFSET, eval_summary, online_reset_seed
from myreinflow.policy import ChunkPolicy
from myreinflow.run import MetricMean, TrainingRun, due


def acting(run: TrainingRun, agent: nn.Module, name: str) -> ChunkPolicy:
    """Policy `name` of the run as it acts: with the best of `candidates` chunks by the ranking critic if
    set."""
    policy = run.policies[name]
    return policy.best_of(agent.ranking_critic, agent.cfg.candidates) if agent.cfg.candidates > 1 else policy


def log(run: TrainingRun, agent: nn.Module, info: dict, metrics: dict, evaluate_now: bool) -> None:
    """A train.csv row; at evaluation points, with rollouts of the agent's `eval_heads` (FQL: the
    one-step policy, `eval/`, and the fine-tuned flow, `eval_flow/`), then a checkpoint."""
    if evaluate_now:
        agent.eval()
        for prefix, name, k in agent.eval_heads():
            seed = agent.cfg.seed + EVAL_SEED_OFFSET
            metrics |= eval_summary(acting(run, agent, name), info, k, agent.cfg.eval_episodes, seed, prefix)
        agent.train()
    run.log(metrics, checkpoint=evaluate_now, dataset=info)


def online_phase(
    cfg,
    agent,
    optimizer,
    data,
    online: OnlineEpisodes,
    run: TrainingRun,
    info: dict,
    step=update,
    stage="fql",
) -> None:
    """The acting policy (the agent's first eval head: FQL's one-step policy, the flow in the flow-only
    ablation) acts in the env, chunks open-loop; each env step is followed by `updates_per_step`
    updates (none before `online_warmup_steps` env steps); finished episodes join the replay. Resets
    are seeded `online_reset_seed(seed, env_steps)` (a resumed run meets the same episodes), a range no
    evaluation seed reaches."""
    env = make_env(info["env_spec"])
    _, name, k = agent.eval_heads()[0]
    actor = acting(run, agent, name)
    episode = Episode(env.reset(seed=online_reset_seed(cfg.seed, run.env_steps))[0], cfg.cond_steps)
    chunk, mean = [], MetricMean()
    bar = run.bar(cfg.online_steps, run.env_steps, f"{stage} online")
    while run.env_steps < cfg.online_steps:
        if not chunk:
            chunk = list(actor.act(episode.history()[None], k, run.generator)[0])
        action = chunk.pop(0)
        obs, reward, terminated, truncated, _ = env.step(action)
        if info.get("reward") == "sparse":  # the env's reward is OGBench's dense one
            reward = -float(reward != 0)
        episode.add(action, reward, terminated, obs)
        run.env_steps += 1
        bar.update(1)
        step_updates(cfg, agent, optimizer, data, run, step, mean)
        if terminated or truncated:
            online.add(episode.arrays())
            reset_seed = online_reset_seed(cfg.seed, run.env_steps)
            episode, chunk = Episode(env.reset(seed=reset_seed)[0], cfg.cond_steps), []
        if due(run.env_steps, cfg.online_eval_freq, cfg.online_steps):
            log(run, agent, info, mean.pop() | online.summary(run.env_steps, info), True)
    env.close()


def step_updates(cfg, agent, optimizer, data, run: TrainingRun, step, mean: MetricMean) -> None:
    """The updates that follow one step of the online phase: `updates_per_step`, none before
    `online_warmup_steps`."""
    for _ in range(cfg.updates_per_step if run.env_steps >= cfg.online_warmup_steps else 0):
        mean.add(step(agent, optimizer, data.sample(cfg.batch_size, run.generator)))
        run.step += 1


def offline_continued(
    cfg,
    agent,
    optimizer,
    data,
    online: OnlineEpisodes,
    run: TrainingRun,
    info: dict,
    step=update,
    stage="fql",
) -> None:
    """The control of `online_phase` (`online_env` false): the same schedule of updates (none before
    `online_warmup_steps`, then `updates_per_step` per step) and evaluations, on the offline data alone.
    `env_steps` counts the phase's steps, so that its curve and the online run's share their x values;
    no step is taken in an env (evaluations roll out in their own envs, as offline)."""
    mean = MetricMean()
    bar = run.bar(cfg.online_steps, run.env_steps, f"{stage} offline-continued")
    while run.env_steps < cfg.online_steps:
        run.env_steps += 1
        bar.update(1)
        step_updates(cfg, agent, optimizer, data, run, step, mean)
        if due(run.env_steps, cfg.online_eval_freq, cfg.online_steps):
            log(run, agent, info, mean.pop() | online.summary(run.env_steps, info), True)
