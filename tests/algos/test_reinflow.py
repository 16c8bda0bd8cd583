"""ReinFlow: the noise-injected chain's likelihood and entropy against direct Gaussian computations, the
PPO loss on a hand-made batch, a bandit that must improve, and real Pusher runs that resume bit-exact."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from torch.distributions import Normal

from myreinflow.algos.reinflow import NoiseNet, NoisyChain, ReinFlowAgent, sigma_max_at, update
from myreinflow.algos.rollouts import ReturnScale, explained_variance, gae
from myreinflow.checkpoint import load_checkpoint
from myreinflow.cli import main
from myreinflow.configs import FlowOptions, ReinFlowConfig
from myreinflow.policy import build_model, onestep_spec, policy_spec

OBS, ACT, H = 3, 2, 2


def _chain(kind: str, steps: int, sigma=(0.1, 0.3), seed=0) -> NoisyChain:
    torch.manual_seed(seed)
    flow_spec = policy_spec(
        "reflow" if kind == "onestep" else kind, OBS, ACT, H, 1, FlowOptions(hidden=(16, 16))
    )
    spec = onestep_spec(flow_spec, (16, 16), "gelu") if kind == "onestep" else flow_spec
    base = build_model(spec, "cpu")
    return NoisyChain(base, kind, steps, NoiseNet(OBS, H * ACT, (8,), *sigma))


@pytest.mark.parametrize(("kind", "steps"), [("reflow", 1), ("reflow", 3), ("meanflow", 2), ("onestep", 1)])
def test_chain_log_likelihood_and_entropy_are_the_gaussian_ones(kind, steps):
    """log π(x_{0:K}|s) = log N(x_0; 0, I) + Σ_k log N(x_{k+1}; Euler step of x_k, σ(s, t_k)²), each
    factor computed here with torch.distributions from the flow's public velocity; the same for H."""
    chain = _chain(kind, steps)
    obs = torch.randn(5, OBS)
    path = chain.sample(obs, torch.Generator().manual_seed(1))
    assert path.shape == (steps + 1, 5, H * ACT)
    expected = Normal(0.0, 1.0).log_prob(path[0]).sum(-1)
    entropy = Normal(torch.zeros(H * ACT), 1.0).entropy().sum().expand(5)
    grid = np.linspace(1.0, 0.0, steps + 1)
    for k in range(steps):
        t, r = torch.full((5,), grid[k]), torch.full((5,), grid[k + 1])
        if kind == "onestep":
            mean = chain.base(obs, path[k])
        else:
            mean = path[k] - (grid[k] - grid[k + 1]) * chain.base.average_velocity(path[k], r, t, obs)
        sigma = chain.noise(obs, t)
        assert torch.all((sigma >= 0.1 - 1e-6) & (sigma <= 0.3 + 1e-6))
        expected = expected + Normal(mean, sigma).log_prob(path[k + 1]).sum(-1)
        entropy = entropy + Normal(mean, sigma).entropy().sum(-1)
    torch.testing.assert_close(chain.log_prob(obs, path), expected)
    torch.testing.assert_close(chain.entropy(obs), entropy)


@pytest.mark.parametrize("kind", ["reflow", "meanflow"])
def test_chain_without_noise_is_the_pretrained_sampler(kind):
    chain = _chain(kind, 4)
    obs, z = torch.randn(6, OBS), torch.randn(6, H * ACT)
    with torch.no_grad():
        torch.testing.assert_close(
            chain.sample(obs, None, noisy=False, z=z)[-1], chain.base.integrate(obs, z, 4)
        )


def _agent(kind="reflow", steps=2, **cfg) -> ReinFlowAgent:
    config = ReinFlowConfig(init="unused", value_hidden=(16,), **cfg)
    return ReinFlowAgent(config, _chain(kind, steps), OBS)


def test_ppo_loss_on_a_hand_made_batch():
    """Old log-likelihoods set so that the ratios are known (1 ± 0.5 %, ± 5 %): the surrogate is
    mean max(−A r, −A clip(r, 1 ± ε)) with A normalised, computed here by hand; the entropy term adds."""
    agent = _agent(clip_eps=0.01, ent_coef=0.0, logprob_clamp=0.0)
    obs = torch.randn(4, OBS)
    path = agent.chain.sample(obs, torch.Generator().manual_seed(2))
    with torch.no_grad():
        logp = agent.normalized_log_prob(obs, path)
    ratios = torch.tensor([1.005, 0.95, 1.05, 0.995])
    advantages = torch.tensor([1.0, 2.0, -1.0, -3.0])
    batch = {"obs": obs, "path": path.transpose(0, 1), "logp": logp - ratios.log(), "advantages": advantages}
    loss, info = agent.actor_loss(batch, torch.Generator())
    a = ((advantages - advantages.mean()) / (advantages.std() + 1e-8)).numpy()
    r = ratios.numpy().astype(np.float64)
    by_hand = np.maximum(-a * r, -a * np.clip(r, 0.99, 1.01)).mean()
    assert float(info["train/pg_loss"]) == pytest.approx(by_hand, rel=1e-5)
    assert float(info["train/clip_frac"]) == 0.5
    assert loss.item() == pytest.approx(by_hand, rel=1e-5)  # ent_coef 0
    agent.cfg = ReinFlowConfig(init="unused", clip_eps=0.01, ent_coef=0.03, logprob_clamp=0.0)
    with_entropy, info = agent.actor_loss(batch, torch.Generator())
    assert with_entropy.item() == pytest.approx(by_hand - 0.03 * float(info["train/entropy"]), rel=1e-5)
    # the gradient reaches the flow and the noise network
    with_entropy.backward()
    assert all(p.grad is not None for p in agent.chain.noise.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in agent.chain.base.parameters())


def test_gae_by_hand():
    """Two envs, three chunks: env 0 terminates at t = 1 (no bootstrap, the trace cut), env 1 is
    truncated at t = 0 (bootstrapped from its final value, the trace cut)."""
    rewards = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    values = torch.tensor([[0.5, 1.0], [1.5, 2.0], [2.5, 3.0]])
    next_values = torch.tensor([[1.5, 9.0], [7.0, 3.0], [4.0, 5.0]])
    terminated = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 0.0]])
    ends = torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.0, 0.0]])
    g, lam = 0.9, 0.5
    adv, ret = gae(rewards, values, next_values, terminated, ends, g, lam)
    d = rewards + g * (1 - terminated) * next_values - values
    expected = torch.zeros(3, 2)
    expected[2] = d[2]
    expected[1, 0] = d[1, 0]  # terminated: cut
    expected[1, 1] = d[1, 1] + g * lam * expected[2, 1]
    expected[0, 0] = d[0, 0] + g * lam * expected[1, 0]
    expected[0, 1] = d[0, 1]  # truncated at t = 0: cut
    torch.testing.assert_close(adv, expected)
    torch.testing.assert_close(ret, expected + values)


def test_explained_variance_against_its_formula():
    """1 for a perfect value function, 0 for one that predicts the returns' mean, negative for one
    worse than that, and 1 − Var(returns − values) / Var(returns) in general."""
    returns = torch.tensor([1.0, 2.0, 4.0, 7.0])
    assert explained_variance(returns, returns.clone()) == 1.0
    assert explained_variance(returns, torch.full_like(returns, float(returns.mean()))) == pytest.approx(0.0)
    assert explained_variance(returns, -returns) < 0
    values = torch.tensor([1.5, 1.0, 5.0, 6.0])
    r, v = returns.numpy(), values.numpy()
    expected = 1 - np.var(r - v, ddof=1) / np.var(r, ddof=1)
    assert explained_variance(returns, values) == pytest.approx(expected, rel=1e-6)


def test_return_scale_divides_a_whole_rollout_by_the_std_of_its_discounted_returns():
    """The reference's running reward scaling: one update per iteration with every env's and step's
    discounted return, then every reward of the iteration divided by the std so far (first iteration:
    its own returns' std; second: the std of both iterations' returns together)."""
    scale = ReturnScale(0.5)
    rewards = np.array([[1.0, 2.0], [3.0, 0.0], [1.0, 1.0]])
    ends = np.array([[False, True], [False, False], [False, False]])
    returns = [1.0, 2.0, 3.5, 0.0, 2.75, 1.0]  # per step and env: γR + r, env 1's restart after step 0
    assert scale(rewards, ends) == pytest.approx(rewards / np.std(returns))
    second = np.array([[4.0, -2.0]])
    assert scale(second, np.zeros((1, 2), bool)) == pytest.approx(second / np.std(returns + [4.0, -2.0]))
    rare = np.zeros((200, 1))
    rare[-1] = 1.0  # one reward among 200 steps: 200 / √199 ≈ 14 stds, clipped
    assert ReturnScale(0.0)(rare, np.zeros((200, 1), bool)).max() == 10.0  # RETURN_CLIP


def test_kl_stop_ends_the_iterations_updates_of_both_networks():
    """Once a minibatch's approximate KL exceeds target_kl, neither the actor nor the critic takes
    another step in that iteration (the reference's break); without a target, every minibatch steps."""
    # the first minibatch's KL is 0 (nothing moved yet), the second's exceeds any positive target
    for target_kl, steps in ((1e-12, 2), (0.0, 3 * 4)):
        agent = _agent(
            target_kl=target_kl, update_epochs=3, minibatches=4, critic_warmup_iters=0, clip_eps=0.2
        )
        obs = torch.randn(64, OBS)
        gen = torch.Generator().manual_seed(0)
        with torch.no_grad():
            path = agent.chain.sample(obs, gen)
            logp = agent.normalized_log_prob(obs, path)
        batch = {"obs": obs, "path": path.transpose(0, 1), "logp": logp}
        batch |= {"advantages": torch.randn(64, generator=gen), "returns": torch.randn(64, generator=gen)}
        optimizers = {
            "actor": torch.optim.AdamW(agent.chain.parameters(), lr=1e-2),
            "critic": torch.optim.AdamW(agent.value.parameters(), lr=1e-2),
        }
        run = type("Run", (), {"iteration": 0, "step": 0, "device": torch.device("cpu"), "generator": gen})()
        info = update(agent, optimizers, batch, agent.cfg, run)
        assert run.step == steps, target_kl
        for name, optimizer in optimizers.items():
            taken = {int(state["step"]) for state in optimizer.state.values()}
            assert taken == {steps}, (name, taken)
        assert info["train/kl_stopped"] == float(target_kl > 0)


def test_sigma_in_data_units_scales_the_noise_and_measures_the_likelihood_in_them():
    """σ = u ⊙ σ̃ with u the data's half-range per dimension: each step's noise std is u times the
    unit-free one, ratios are unchanged, and the clamped per-factor likelihood is the one in the data's
    units (x/u): log-likelihood + K Σ log u."""
    units = torch.tensor([0.5, 0.2, 1.0, 0.1])
    plain, scaled = _chain("reflow", 2, seed=3), _chain("reflow", 2, seed=3)
    scaled.noise = NoiseNet(OBS, H * ACT, (8,), 0.1, 0.3, units)
    scaled.noise.net.load_state_dict(plain.noise.net.state_dict())
    obs, t = torch.randn(5, OBS), torch.full((5,), 0.5)
    torch.testing.assert_close(scaled.noise(obs, t), units * plain.noise(obs, t))
    path = scaled.sample(obs, torch.Generator().manual_seed(1))
    agent = ReinFlowAgent(ReinFlowConfig(init="x", logprob_clamp=0.0), scaled, OBS)
    # the noisy steps measured in the data's units: z' = z / u, σ' = σ / u
    expected = Normal(0.0, 1.0).log_prob(path[0]).sum(-1)
    grid = [1.0, 0.5, 0.0]
    for k in range(2):
        r, tk = torch.full((5,), grid[k + 1]), torch.full((5,), grid[k])
        mean = scaled.mean(obs, path[k], tk, r)
        expected = expected + Normal(mean / units, scaled.noise(obs, tk) / units).log_prob(
            path[k + 1] / units
        ).sum(-1)
    torch.testing.assert_close(agent.normalized_log_prob(obs, path), expected / scaled.factors)
    assert "units" not in scaled.noise.state_dict()  # recomputed from the dataset at each start


def test_sigma_max_holds_then_decays():
    cfg = ReinFlowConfig(init="x", sigma_min=0.1, sigma_max=0.3)
    assert sigma_max_at(cfg, 0, 100) == sigma_max_at(cfg, 35, 100) == pytest.approx(0.3)
    assert sigma_max_at(cfg, 100, 100) == pytest.approx(0.3 * 0.1 + 0.7 * 0.3)
    assert 0.24 < sigma_max_at(cfg, 60, 100) < 0.3
    assert sigma_max_at(ReinFlowConfig(init="x", sigma_decay=False), 100, 100) == 0.14


@pytest.mark.slow
def test_a_bandit_improves():
    """One-chunk episodes with reward −‖a − a*‖² from a random flow: PPO through the chain moves the
    noise-free policy towards a* (the distance at least halves in 60 iterations; measured: 0.62 → 0.05
    to 0.08 over noise seeds 0-4)."""
    target = torch.tensor([0.5, -0.4, 0.3, -0.2])
    distances = {}
    for seed in (0, 1):
        agent = _agent(steps=2, lr_actor=3e-3, lr_critic=3e-3, clip_eps=0.2, ent_coef=0.0, sigma_min=0.05)
        torch.manual_seed(seed)
        obs = torch.zeros(256, OBS)
        gen = torch.Generator().manual_seed(seed)
        optimizers = {
            "actor": torch.optim.AdamW(agent.chain.parameters(), lr=3e-3, weight_decay=0.0),
            "critic": torch.optim.AdamW(agent.value.parameters(), lr=3e-3),
        }

        def distance(agent=agent, obs=obs, gen=gen) -> float:
            with torch.no_grad():
                a = agent.chain.sample(obs, gen, noisy=False)[-1].clamp(-1, 1)
            return float((a - target).norm(dim=-1).mean())

        start = distance()
        run = type("Run", (), {"iteration": 0, "step": 0, "device": torch.device("cpu"), "generator": gen})()
        for _ in range(60):
            with torch.no_grad():
                path = agent.chain.sample(obs, gen)
                logp = agent.normalized_log_prob(obs, path)
                reward = -(path[-1].clamp(-1, 1) - target).pow(2).sum(-1)
                adv = reward - agent.value(obs).squeeze(-1)
            batch = {
                "obs": obs,
                "path": path.transpose(0, 1),
                "logp": logp,
                "advantages": adv,
                "returns": reward,
            }
            update(agent, optimizers, batch, agent.cfg, run)
            run.iteration += 1
        distances[seed] = (start, distance())
    assert all(end < start / 2 for start, end in distances.values()), distances


# ---- real runs on Pusher


@pytest.fixture(scope="module")
def bc_flow(minari_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("bc") / "reflow"
    args = ["bc", "--dataset", "myreinflow/pusher/tiny-v0", "--epochs", "2", "--hidden", "32", "32"]
    args += ["--eval_episodes", "2", "--no_wandb", "--threads", "1", "--device", "cpu", "--out", str(out)]
    assert main([*args, "--quiet"]) == 0
    return out


def _reinflow_args(init, out, *extra):
    args = [
        "reinflow",
        "--init",
        str(init),
        "--env_steps",
        "400",
        "--num_envs",
        "2",
    ]
    args += [
        "--value_hidden",
        "32",
        "--eval_freq",
        "1",
        "--eval_episodes",
        "2",
        "--critic_warmup_iters",
        "0",
        "--no_wandb",
        "--threads",
        "1",
    ]
    return [*args, "--device", "cpu", "--out", str(out), "--quiet", *extra]


def test_reinflow_on_pusher_writes_the_contract_and_resumes_bit_exact(bc_flow, tmp_path):
    """Two iterations of 2 envs × one episode each (by default: Pusher's 100-step time limit / h 4 = 25
    chunks, 200 env steps per iteration). Straight through, and one iteration then a resumption: the
    same weights."""
    full = tmp_path / "full"
    assert main(_reinflow_args(bc_flow, full)) == 0
    ckpt = load_checkpoint(full / "model.pt")
    assert (ckpt["stage"], ckpt["iteration"], ckpt["env_steps"]) == ("reinflow", 2, 400)
    assert list(ckpt["policies"]) == ["flow"] and ckpt["dataset"]["env_id"] == "Pusher-v5"
    train = pd.read_csv(full / "train.csv")
    assert train["online/episodes"].tolist() == [0, 2, 2] and train["online/env_steps"].tolist() == [
        0,
        200,
        400,
    ]
    assert train["eval/final_distance"].notna().all()  # the starting policy too, at step 0
    train = train.iloc[1:]
    for key in (
        "train/pg_loss",
        "train/value_loss",
        "train/entropy",
        "train/explained_variance",
        "eval/final_distance",
        "online/episode_return",
    ):
        assert train[key].notna().all(), key
    assert train["step"].tolist() == [20, 40]  # 5 epochs × 4 minibatches per iteration
    metrics = json.loads((full / "metrics.json").read_text())
    assert metrics["stage"] == "reinflow" and metrics["last_evaluation"]["eval/final_distance"]["mean"] > 0
    # the policy moved, and `myreinflow eval` reads the checkpoint
    start = load_checkpoint(bc_flow / "model.pt")["policies"]["flow"]["model"]
    tuned = ckpt["policies"]["flow"]["model"]
    assert any(not torch.equal(start[k], tuned[k]) for k in start)
    csv = tmp_path / "eval.csv"
    assert (
        main(
            [
                "eval",
                "--checkpoint",
                str(full),
                "--episodes",
                "2",
                "--inference_steps",
                "4",
                "--out",
                str(csv),
            ]
        )
        == 0
    )
    assert pd.read_csv(csv)["policy"].unique().tolist() == ["flow"]
    # a run extended by resumption (σ_max constant) ends with the weights of one run straight through
    straight, extended = tmp_path / "straight", tmp_path / "extended"
    assert main(_reinflow_args(bc_flow, straight, "--no-sigma_decay")) == 0
    assert main(_reinflow_args(bc_flow, extended, "--no-sigma_decay", "--env_steps", "200")) == 0
    assert load_checkpoint(extended / "model.pt")["iteration"] == 1
    assert main(_reinflow_args(bc_flow, extended, "--no-sigma_decay")) == 0
    a, b = (load_checkpoint(d / "model.pt") for d in (straight, extended))
    assert a["env_steps"] == b["env_steps"] == 400
    for name in ("agent", "actor_optimizer"):
        flat_a, flat_b = _tensors(a[name]), _tensors(b[name])
        assert len(flat_a) == len(flat_b) and all(
            torch.equal(x, y) for x, y in zip(flat_a, flat_b, strict=True)
        )
    assert pd.read_csv(extended / "train.csv")["online/env_steps"].tolist() == [0, 200, 400]


def test_reward_scale_changes_the_critic_targets_not_the_rollout(bc_flow, tmp_path):
    """`--no-reward_scale` trains on the raw rewards: the first iteration collects the same episodes (the
    same policy and seeds), and its value loss, over differently scaled returns, differs."""
    runs = {}
    for name, extra in {"scaled": (), "raw": ("--no-reward_scale",)}.items():
        out = tmp_path / name
        assert main(_reinflow_args(bc_flow, out, "--env_steps", "200", *extra)) == 0
        runs[name] = pd.read_csv(out / "train.csv").iloc[1]
    assert runs["scaled"]["online/episode_return"] == runs["raw"]["online/episode_return"]
    assert runs["scaled"]["train/value_loss"] != runs["raw"]["train/value_loss"]


def _tensors(state) -> list[torch.Tensor]:
    if isinstance(state, torch.Tensor):
        return [state]
    if isinstance(state, dict):
        return [t for k in sorted(state, key=str) for t in _tensors(state[k])]
    if isinstance(state, list | tuple):
        return [t for item in state for t in _tensors(item)]
    return []


def test_reinflow_refuses_bad_input_in_one_line(bc_flow, tmp_path, capsys):
    cases = {
        ("--init", str(tmp_path / "nope.pt")): "does not exist",
        ("--init", str(bc_flow), "--policy", "onestep"): "'onestep' is not in",
        ("--init", str(bc_flow), "--sigma_min", "0.5"): "sigma_max = 0.14 is not allowed",
    }
    for extra, needle in cases.items():
        assert main([*_reinflow_args(bc_flow, tmp_path / "o"), *extra]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and needle in err[0], (extra, err)
    assert not (tmp_path / "o").exists()


def test_the_log_likelihood_clamp_stops_learning_at_small_noise():
    """The reference's clamp of the per-factor log-likelihood to ±1: with small σ (0.01 here) every
    factor's density exceeds e, so every value is clamped and the policy gets no gradient (logged as
    `train/clamped` 1); without the clamp it does."""
    for clamp, learns in ((1.0, False), (0.0, True)):
        agent = ReinFlowAgent(
            ReinFlowConfig(init="x", sigma_min=0.01, sigma_max=0.01, logprob_clamp=clamp, ent_coef=0.0),
            _chain("reflow", 2, sigma=(0.01, 0.01)),
            OBS,
        )
        obs = torch.randn(16, OBS)
        path = agent.chain.sample(obs, torch.Generator().manual_seed(0))
        with torch.no_grad():
            logp = agent.normalized_log_prob(obs, path)
        batch = {"obs": obs, "path": path.transpose(0, 1), "logp": logp, "advantages": torch.randn(16)}
        loss, info = agent.actor_loss(batch, torch.Generator())
        loss.backward()
        grad = sum(p.grad.abs().sum() for p in agent.chain.base.parameters() if p.grad is not None)
        assert float(info["train/clamped"]) == (1.0 if clamp else 0.0)
        assert (float(grad) > 0) == learns
