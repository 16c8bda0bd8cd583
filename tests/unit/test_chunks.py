"""Chunked transitions (`data/chunks.py`) and the normaliser (`data/normalize.py`)."""

import numpy as np
import torch
from gymnasium.spaces import Box
from helpers import episode, identity_normalizer

from myreinflow.data.chunks import ACTION_CLIP, ChunkedTransitions
from myreinflow.data.normalize import Normalizer


def two_episodes():
    # observation value = 10·episode + step, action value = 100·episode + step: indices can be read back
    eps = []
    for e, n in enumerate((3, 5)):
        eps.append(
            {
                "observations": (10 * e + np.arange(n + 1, dtype=np.float32))[:, None],
                "actions": (100 * e + np.arange(n, dtype=np.float32))[:, None],
            }
        )
    return eps


def wide_normalizer():
    return Normalizer(np.zeros(1), np.ones(1), np.array([-1000.0]), np.array([1000.0]))


def raw_actions(norm, a):
    return norm.unscale_action(a)


def test_chunks_stay_inside_theirepisode():
    norm = wide_normalizer()
    data = ChunkedTransitions(two_episodes(), horizon_steps=3, cond_steps=2, normalizer=norm)
    assert len(data) == 8
    batch = data.get(torch.arange(8))
    obs = batch["obs"][..., 0]
    acts = raw_actions(norm, batch["actions"])[..., 0].round()
    # episode 0 (steps 0..2): first observation repeats before the start, last action repeats after the end
    assert obs[0].tolist() == [0, 0] and obs[2].tolist() == [1, 2]
    assert acts[1].tolist() == [1, 2, 2] and batch["valid"][1].tolist() == [True, True, False]
    # episode 1 starts at flat step 3: never mixes in episode 0's data
    assert obs[3].tolist() == [10, 10] and obs[7].tolist() == [13, 14]
    assert acts[3].tolist() == [100, 101, 102] and acts[7].tolist() == [104, 104, 104]
    assert batch["valid"][7].tolist() == [True, False, False]


def test_epoch_visits_every_step_once_and_sampling_is_seeded():
    data = ChunkedTransitions(two_episodes(), 2, 1, wide_normalizer())
    seen = torch.cat([b["obs"][:, 0, 0] for b in data.epoch(4, torch.Generator().manual_seed(0))])
    assert sorted(seen.tolist()) == sorted(data.get(torch.arange(8))["obs"][:, 0, 0].tolist())
    a = data.sample(16, torch.Generator().manual_seed(3))["obs"]
    b = data.sample(16, torch.Generator().manual_seed(3))["obs"]
    assert torch.equal(a, b)


def test_normalizer_round_trip_and_bounds():
    obs = np.random.default_rng(0).normal(5, 3, size=(1000, 4))
    obs[:, 3] = 7.0  # a constant feature stays finite
    norm = Normalizer.fit(obs, Box(-2, 2, (2,)))
    z = norm.normalize_obs(torch.as_tensor(obs, dtype=torch.float32))
    assert torch.isfinite(z).all() and z[:, :3].mean().abs() < 1e-3
    a = torch.tensor([[-2.0, 2.0], [0.0, 1.0]])
    torch.testing.assert_close(norm.scale_action(a), torch.tensor([[-1.0, 1.0], [0.0, 0.5]]))
    back = Normalizer.from_state_dict(norm.state_dict())
    torch.testing.assert_close(back.unscale_action(back.scale_action(a)), a)


def test_chunked_returns_masks_and_next_obs_with_termination_inside_a_chunk():
    # episode A: 5 steps ending in a termination; episode B: 3 steps cut by a time limit
    episodes = [episode(5, terminated=True), episode(3, terminated=False, reward_offset=10)]
    gamma, h = 0.5, 3
    data = ChunkedTransitions(episodes, h, 1, identity_normalizer(1, 1), discount=gamma)
    b = data.get(torch.arange(len(data)))
    # A: rewards 1..5; B: rewards 11..13
    expected_reward = [
        1 + 0.5 * 2 + 0.25 * 3,
        2 + 0.5 * 3 + 0.25 * 4,
        3 + 0.5 * 4 + 0.25 * 5,
        4 + 0.5 * 5,  # the termination at step 4 ends the sum
        5,
        11 + 0.5 * 12 + 0.25 * 13,
        12 + 0.5 * 13,
        13,
    ]
    np.testing.assert_allclose(b["reward"].numpy(), expected_reward, rtol=1e-6)
    # bootstrapping stops once the termination (A's step 4) lies inside the chunk
    np.testing.assert_array_equal(b["mask"].numpy(), [1, 1, 0, 0, 0, 1, 1, 1])
    # correct targets: chunks inside the episode or ending in its termination; B's truncated tails are not
    np.testing.assert_array_equal(b["td_valid"].numpy(), [1, 1, 1, 1, 1, 1, 0, 0])
    # next observation: s_{i+h}, B's first chunk bootstraps from B's final observation (index 3)
    np.testing.assert_array_equal(b["next_obs"][:, 0, 0].numpy()[[0, 1, 5]], [3, 4, 1000 + 3])
    # chunks never mix episodes: B's steps only see B's actions
    assert torch.equal(b["actions"][7, :, 0], torch.full((3,), ACTION_CLIP))  # 1.0, clipped


def test_horizon_one_is_plain_one_step_transitions():
    episodes = [episode(4, terminated=True), episode(3, terminated=False, reward_offset=10)]
    data = ChunkedTransitions(episodes, 1, 1, identity_normalizer(1, 1), discount=0.9)
    b = data.get(torch.arange(len(data)))
    np.testing.assert_allclose(b["reward"].numpy(), [1, 2, 3, 4, 11, 12, 13])
    np.testing.assert_array_equal(b["mask"].numpy(), [1, 1, 1, 0, 1, 1, 1])
    assert b["td_valid"].all()
    np.testing.assert_array_equal(b["next_obs"][:, 0, 0].numpy(), [1, 2, 3, 4, 1001, 1002, 1003])
    np.testing.assert_array_equal(b["obs"][:, 0, 0].numpy(), [0, 1, 2, 3, 1000, 1001, 1002])


def test_extend_equals_building_at_once():
    episodes = [episode(5, True), episode(3, False, 10), episode(4, False, 20)]
    whole = ChunkedTransitions(episodes, 2, 2, identity_normalizer(1, 1), discount=0.9)
    grown = ChunkedTransitions(episodes[:1], 2, 2, identity_normalizer(1, 1), discount=0.9)
    grown.extend(episodes[1:2])
    grown.extend(episodes[2:])
    idx = torch.arange(len(whole))
    for key, value in whole.get(idx).items():
        assert torch.equal(value, grown.get(idx)[key]), key
