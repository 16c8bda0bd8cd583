"""Flow math against analytic cases: JVP vs finite differences, the MeanFlow identity on a Gaussian,
the shared sampler, and both flows fitting a bimodal target (MeanFlow's 1-step advantage)."""

import pytest
import torch
from scipy.stats import wasserstein_distance
from torch import nn

from myreinflow import MeanFlow, ReFlow
from myreinflow.configs import MEANFLOW_RECIPES
from myreinflow.flows import FlowModel
from myreinflow.nets import FlowNet

M, S = 1.5, 0.5  # 1-D Gaussian data N(M, S²); noise N(0, 1) at t = 1


class GaussianAverageVelocity(nn.Module):
    """Exact average velocity u*(z, r, t) of the straight-path flow from N(M, S²) (t=0) to N(0, 1) (t=1).

    z_t ~ N((1−t)M, σ_t²) with σ_t² = (1−t)²S² + t²; the 1-D flow map is affine,
    z_r = μ_r + σ_r/σ_t·(z − μ_t), so u* = (z − z_r)/(t − r), and v̄ = lim_{r→t} u*.
    """

    def forward(self, z, r, t, obs):
        return self.velocity(z, r, t, M, S)

    @staticmethod
    def velocity(z, r, t, M, S):
        """u* for data N(M, S²) per dimension (M, S scalars or one per dimension)."""
        t, r = t[:, None], r[:, None]
        mu = lambda s: (1 - s) * M  # noqa: E731
        sig = lambda s: torch.sqrt((1 - s) ** 2 * S**2 + s**2)  # noqa: E731
        dsig = lambda s: ((s - 1) * S**2 + s) / sig(s)  # noqa: E731
        same = (t - r).abs() < 1e-9
        gap = torch.where(same, torch.ones_like(t), t - r)
        z_r = mu(r) + sig(r) / sig(t) * (z - mu(t))
        u = (z - z_r) / gap
        v = -M + dsig(t) / sig(t) * (z - mu(t))  # d/dt of the flow map at r = t
        return torch.where(same, v, u)


class OutputOf(nn.Module):
    """A network for `prediction` from a velocity one: the output that gives u(z, r, t) (e.g. the clean
    chunk z − t·u for data prediction)."""

    def __init__(self, velocity: nn.Module, prediction: str):
        super().__init__()
        self.velocity, self.param = velocity, FlowModel(nn.Identity(), "cpu", 1, 1, prediction)

    def forward(self, z, r, t, obs):
        return self.param.output_for(self.velocity(z, r, t, obs), z, t)


PREDICTIONS = ["velocity", "data"]


def test_jvp_matches_finite_differences():
    torch.manual_seed(0)
    net = FlowNet(6, 3, (64, 64)).double()
    z, obs, v = torch.randn(5, 6).double(), torch.randn(5, 3).double(), torch.randn(5, 6).double()
    t = torch.rand(5).double()
    r = t * torch.rand(5).double()
    f = lambda z_, r_, t_: net(z_, r_, t_, obs)  # noqa: E731
    _, dudt = torch.func.jvp(f, (z, r, t), (v, torch.zeros_like(r), torch.ones_like(t)))
    h = 1e-5
    fd = (f(z + h * v, r, t + h) - f(z - h * v, r, t - h)) / (2 * h)
    torch.testing.assert_close(dudt, fd, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("activation", ["silu", "gelu", "relu", "mish", "tanh"])
def test_flownet_handwritten_jvp_matches_torch_func(activation):
    torch.manual_seed(0)
    net = FlowNet(6, 3, (32, 32), activation=activation).double()
    z, obs, v = torch.randn(9, 6).double(), torch.randn(9, 3).double(), torch.randn(9, 6).double()
    t = torch.rand(9).double()
    r = t * torch.rand(9).double()
    dr, dt = torch.randn(9).double(), torch.randn(9).double()
    ref_u, ref_du = torch.func.jvp(lambda a, b, c: net(a, b, c, obs), (z, r, t), (v, dr, dt))
    u, du = net.forward_and_jvp(z, r, t, obs, v, dr, dt)
    torch.testing.assert_close(u, ref_u)
    torch.testing.assert_close(du, ref_du)
    assert u.requires_grad and not du.requires_grad


@pytest.mark.parametrize("prediction", PREDICTIONS)
def test_total_derivative_matches_jvp_and_finite_differences(prediction):
    """du/dt from the network's JVP (data prediction: (v − ġ − u)/t for u = (z − g)/t) against
    torch.func.jvp of u and central differences."""
    torch.manual_seed(0)
    net = FlowNet(6, 3, (64, 64)).double()
    flow = MeanFlow(net, "cpu", 1, 6, prediction=prediction)
    z, obs, v = torch.randn(5, 6).double(), torch.randn(5, 3).double(), torch.randn(5, 6).double()
    t = 0.2 + 0.8 * torch.rand(5).double()
    r = t * torch.rand(5).double()
    u_of = lambda z_, r_, t_: flow.average_velocity(z_, r_, t_, obs)  # noqa: E731
    _, ref = torch.func.jvp(u_of, (z, r, t), (v, torch.zeros_like(r), torch.ones_like(t)))
    out, d_out = flow.network_and_jvp(z, r, t, obs, v)
    u, dudt = flow.total_derivative(out, d_out, z, t, v)
    torch.testing.assert_close(u, u_of(z, r, t))
    torch.testing.assert_close(dudt, ref)
    h = 1e-5
    fd = (u_of(z + h * v, r, t + h) - u_of(z - h * v, r, t - h)) / (2 * h)
    torch.testing.assert_close(dudt, fd, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("prediction", PREDICTIONS)
def test_meanflow_identity_holds_for_the_exact_average_velocity(prediction):
    """With u = u* and the marginal velocity v̄, the MeanFlow target equals u* (loss ≈ 0), whatever the
    network outputs (u* or the clean chunk z − t·u*)."""
    exact = GaussianAverageVelocity().double()
    net = OutputOf(exact, prediction)
    flow = MeanFlow(net, "cpu", 1, 1, ratio_r_neq_t=1.0, tr_sampler="uniform", prediction=prediction)
    n = 512
    t, r = flow.sample_tr(n, "cpu")
    t, r = t.double(), r.double()
    z = torch.randn(n, 1).double() * 2
    v_bar = exact(z, t, t, None)
    _, info = flow.loss_mean(z, t, r, torch.zeros(n, 0).double(), v_bar)
    assert info["train/flow_mse"].item() < 1e-12
    # and a wrong velocity field is caught
    _, wrong = flow.loss_mean(z, t, r, torch.zeros(n, 0).double(), v_bar + 0.3)
    assert wrong["train/flow_mse"].item() > 1e-3


@pytest.mark.parametrize("prediction", PREDICTIONS)
@pytest.mark.parametrize("steps", [1, 3, 10])
def test_sampler_with_exact_velocity_reaches_the_gaussian(steps, prediction):
    exact = GaussianAverageVelocity()
    net = OutputOf(exact, prediction)
    flow = MeanFlow(net, "cpu", 1, 1, prediction=prediction)
    x = flow.sample(
        torch.zeros(200_000, 0), steps, clip=None, generator=torch.Generator().manual_seed(0)
    ).flatten()
    assert abs(x.mean().item() - M) < 0.01 and abs(x.std().item() - S) < 0.01


def test_reflow_losses_are_known_weightings_of_the_velocity_error():
    """Known answers: data prediction's loss is ‖g − x‖² = t²·‖u − v‖²; velocity's is ‖u − v‖²."""
    torch.manual_seed(0)
    net = FlowNet(6, 3, (32,))
    x, obs = torch.randn(64, 2, 3), torch.randn(64, 3)
    for prediction, weight in (("velocity", torch.ones_like), ("data", torch.square)):
        flow = ReFlow(net, "cpu", 2, 3, prediction=prediction)
        (zt, t), v = flow.generate_target(x)
        u = flow.average_velocity(zt, t, t, obs)
        loss = flow.loss(zt, t, obs, v)
        torch.testing.assert_close(loss, (weight(t)[:, None] * (u - v).pow(2)).mean())
    torch.testing.assert_close(loss, (net(zt, t, t, obs) - x.reshape(64, 6)).pow(2).mean())


def test_reflow_euler_converges_with_steps():
    flow = ReFlow(GaussianAverageVelocity(), "cpu", 1, 1, prediction="velocity")
    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    err = [
        abs(flow.sample(torch.zeros(100_000, 0), k, clip=None, generator=gen()).std().item() - S)
        for k in (1, 4, 128)
    ]
    # one Euler step from t = 1 lands every sample on the data mean (the collapse MeanFlow avoids)
    assert err[0] == pytest.approx(S, abs=1e-4)
    assert err[0] > err[1] > err[2] and err[2] < 0.01


def test_sample_shapes_clip_and_path():
    flow = ReFlow(FlowNet(2 * 3, 5, (16,)), "cpu", horizon_steps=2, action_dim=3)
    assert flow.prediction == "data"  # the library default
    x, path = flow.sample({"state": torch.randn(7, 1, 5)}, 4, return_path=True)
    assert x.shape == (7, 2, 3) and path.shape == (5, 7, 6)
    assert x.abs().max() <= 1.0
    with pytest.raises(ValueError):
        flow.sample(torch.randn(7, 5), 0)


def bimodal(n, gen):
    sign = torch.randint(0, 2, (n, 1), generator=gen) * 2 - 1
    return (0.8 * sign + 0.3 * torch.randn(n, 1, generator=gen)).reshape(n, 1, 1)


NOISE_W1 = 0.25  # W1 between raw N(0, 1) noise and this mixture; two independent data draws score 0.013


def fit(flow_cls, prediction=None, steps=2000, batch=512, seed=0):
    """Train a flow with the library's default recipe (and `prediction`, default: the library's)."""
    torch.manual_seed(seed)
    kwargs = {"prediction": prediction} if prediction else {}
    flow = flow_cls(FlowNet(1, 0, (64, 64), time_dim=16), "cpu", 1, 1, **kwargs)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(flow.parameters(), lr=3e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    for _ in range(steps):
        loss, _ = flow.compute_loss(bimodal(batch, gen), torch.zeros(batch, 0))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return flow


def samples(flow, steps, n=20_000):
    gen = torch.Generator().manual_seed(1)
    return flow.sample(torch.zeros(n, 0), steps, generator=gen, clip=None).flatten()


def w1(flow, steps, n=20_000):
    x = samples(flow, steps, n).numpy()
    return wasserstein_distance(x, bimodal(n, torch.Generator().manual_seed(2)).flatten().numpy())


def bimodal_statistics(seed=0, prediction=None, steps=4000) -> dict:
    """What the bimodal tests assert on, for one training seed: the 1-D W1 of ReFlow at 16 and 1
    steps and MeanFlow at 1 step, and the fraction of each flow's samples in the positive mode."""
    reflow, meanflow = fit(ReFlow, prediction, steps, seed=seed), fit(MeanFlow, prediction, steps, seed=seed)
    return {
        "reflow@16": w1(reflow, 16),
        "reflow@1": w1(reflow, 1),
        "meanflow@1": w1(meanflow, 1),
        "reflow@16_positive": (samples(reflow, 16) > 0).float().mean().item(),
        "meanflow@1_positive": (samples(meanflow, 1) > 0).float().mean().item(),
    }


@pytest.fixture(scope="module")
def bimodal_fit():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield bimodal_statistics(seed=0)
    torch.set_num_threads(threads)


# Bounds on the library's default recipe (data prediction; MeanFlow: iMF + boundary, uniform pairs, 50 %
# r != t, p 0.5), each at least twice the spread measured over seeds 0–5 (one thread; seed 0 also on two)
# away from the worst value (W1 relative to NOISE_W1 = 0.25; measured ranges in the comments).
BOUNDS = {
    "reflow@16": 0.6,  # measured 0.050–0.075 (0.20–0.30 × NOISE_W1)
    "meanflow@1": 1.0,  # measured 0.089–0.143 (0.36–0.57 × NOISE_W1); ReFlow@1 0.77–0.78 (3.1 ×)
    "mode_balance": 0.15,  # |positive fraction − 0.5|: measured ≤ 0.035 (0.465–0.515)
    "one_step_gap": 2.0,  # (ReFlow@1 − MeanFlow@1) / NOISE_W1: measured 2.55–2.77
}


@pytest.mark.slow
def test_both_flows_fit_a_bimodal_mixture_and_keep_both_modes(bimodal_fit):
    got = bimodal_fit
    assert got["reflow@16"] < BOUNDS["reflow@16"] * NOISE_W1, got
    assert got["meanflow@1"] < BOUNDS["meanflow@1"] * NOISE_W1, got
    for key in ("reflow@16_positive", "meanflow@1_positive"):
        assert abs(got[key] - 0.5) < BOUNDS["mode_balance"], got


def test_meanflow_one_step_beats_reflow_one_step(bimodal_fit):
    # one Euler step collapses every sample onto the mean; MeanFlow's one step keeps the two modes
    gap = (bimodal_fit["reflow@1"] - bimodal_fit["meanflow@1"]) / NOISE_W1
    assert gap > BOUNDS["one_step_gap"], bimodal_fit


@pytest.mark.parametrize("per_sample_time", [False, True])
def test_conditioned_network_is_the_network(per_sample_time):
    """`FlowNet.conditioned` (the first layer split by columns, the observation term computed once) gives
    `forward`'s outputs and gradients, for one time shared by the batch (the sampler's) or one per sample;
    and the sampler built on it takes the Euler steps of `forward` exactly."""
    torch.manual_seed(0)
    net = FlowNet(6, 3, (32, 32)).double()
    z, obs = torch.randn(5, 6, dtype=torch.double), torch.randn(5, 3, dtype=torch.double)
    t = torch.rand(5 if per_sample_time else 1, dtype=torch.double)
    r = t * torch.rand_like(t)
    split = net.conditioned(obs)(z, r, t)
    whole = net(z, r.expand(5), t.expand(5), obs)
    torch.testing.assert_close(split, whole, rtol=1e-12, atol=1e-12)
    grads = [torch.autograd.grad(out.square().sum(), list(net.parameters())) for out in (split, whole)]
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    flow, noise = ReFlow(net, "cpu", 2, 3, prediction="velocity"), torch.randn(5, 6, dtype=torch.double)
    euler = noise
    for k in range(4):
        t_k = torch.full((5,), 1 - k / 4, dtype=torch.double)
        euler = euler - 0.25 * net(euler, t_k, t_k, obs)
    torch.testing.assert_close(flow.integrate(obs, noise, 4), euler, rtol=1e-12, atol=1e-12)


# ---- MeanFlow recipes: every loss is minimised by the exact average velocity of a Gaussian target

M2, S2 = torch.tensor([1.5, -0.5], dtype=torch.double), torch.tensor([0.5, 0.3], dtype=torch.double)


class PerturbedGaussianVelocity(nn.Module):
    """The exact 2-D average velocity u* (independent dimensions N(M2, S2²)) plus a·φ(z, r, t), a learnable
    scalar a (0: the exact field), as the output of `prediction`."""

    def __init__(self, prediction: str):
        super().__init__()
        self.a = nn.Parameter(torch.zeros((), dtype=torch.double))
        self.exact, self.param = GaussianAverageVelocity(), FlowModel(nn.Identity(), "cpu", 1, 2, prediction)

    def forward(self, z, r, t, obs):
        u = self.exact.velocity(z, r, t, M2, S2) + self.a * (torch.sin(z) * (1 + t[:, None]) + r[:, None])
        return self.param.output_for(u, z, t)


V1 = MEANFLOW_RECIPES["v1"]  # the recipe before iMF + boundary was the default
RECIPES = {  # MeanFlow options of each recipe the library offers (and combinations of them)
    "default": {},
    "v1": V1,
    "mfql": MEANFLOW_RECIPES["mfql"],
    "paper": MEANFLOW_RECIPES["paper"],
    "mvp": {"target": "identity", "tr_sampler": "r0", "ratio_r_neq_t": 1.0, "boundary_weight": 1.0},
    "imf": {"target": "imf", "boundary_weight": 0.0, "tr_sampler": "logit_normal", "adaptive_p": 1.0}
    | {"adaptive_c": 0.01},
    "imf_boundary": {"target": "imf", "boundary_weight": 0.5, "adaptive_p": 0.0},
    "split": V1 | {"target": "split", "full_interval_frac": 0.3},
    "split_velocity_error": V1 | {"target": "split", "error_space": "velocity", "adaptive_reduce": "mean"},
}


@pytest.mark.parametrize("prediction", PREDICTIONS)
@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_every_meanflow_recipe_is_minimised_by_the_exact_average_velocity(recipe, prediction):
    """Known answer: at u* the loss is lower than at u* ± 0.2·φ and its gradient is ≈ 0 (measured ≤ 0.4 %
    of the perturbed gradients' on 400k samples; the bound 5 % allows 100k samples' noise)."""
    net = PerturbedGaussianVelocity(prediction)
    flow = MeanFlow(net, "cpu", 1, 2, prediction=prediction, **RECIPES[recipe])
    n = 100_000
    x = M2 + S2 * torch.randn(n, 2, generator=torch.Generator().manual_seed(1), dtype=torch.double)
    losses, grads = [], []
    for a in (0.0, 0.2, -0.2):
        net.a.data.fill_(a)
        torch.manual_seed(2)  # the same noise and (t, r) pairs at every a
        loss, _ = flow.compute_loss(x.reshape(n, 1, 2), torch.zeros(n, 0, dtype=torch.double))
        losses.append(loss.item())
        grads.append(torch.autograd.grad(loss, net.a)[0].item())
    assert losses[0] < min(losses[1:]), losses
    assert grads[1] > 0 > grads[2] and abs(grads[0]) < 0.05 * min(abs(g) for g in grads[1:]), grads


def test_split_target_of_the_exact_average_velocity_is_itself():
    """SplitMeanFlow's identity: the target built from u* on two sub-intervals is u* (v where r = t)."""
    exact = GaussianAverageVelocity().double()
    flow = MeanFlow(exact, "cpu", 1, 1, target="split", ratio_r_neq_t=0.8, prediction="velocity")
    t, r = flow.sample_tr(4096, "cpu")
    t, r, z = t.double(), r.double(), 2 * torch.randn(4096, 1, dtype=torch.double)
    v = torch.randn(4096, 1, dtype=torch.double)
    target = flow.split_target(z, r, t, None, v)
    same = t == r
    torch.testing.assert_close(target[~same], exact(z, r, t, None)[~same], rtol=1e-10, atol=1e-10)
    assert torch.equal(target[same], v[same]) and same.any()


@pytest.mark.parametrize("prediction", PREDICTIONS)
def test_alpha_flow_target_runs_from_flow_matching_to_the_meanflow_identity(prediction):
    """AlphaFlow's target: v at α = 1, the MeanFlow identity's target as α → 0; the curriculum's α."""
    torch.manual_seed(0)
    flow = MeanFlow(FlowNet(3, 2, (32, 32)).double(), "cpu", 1, 3, prediction=prediction)
    z, obs, v = torch.randn(6, 3).double(), torch.randn(6, 2).double(), torch.randn(6, 3).double()
    t = 0.3 + 0.7 * torch.rand(6).double()
    r = t * torch.rand(6).double()
    out, d_out = flow.network_and_jvp(z, r, t, obs, v)
    identity = flow.identity_target(out, d_out, z, r, t, v, v)
    torch.testing.assert_close(flow.alpha_target(out, z, r, t, obs, v, 1.0), v)
    torch.testing.assert_close(flow.alpha_target(out, z, r, t, obs, v, 1e-6), identity, rtol=1e-4, atol=1e-5)
    flow.curriculum = 0.5
    alphas = []
    for progress in (0.0, 0.1, 0.25, 0.4, 0.5, 1.0):
        flow.set_progress(progress)
        alphas.append(flow.curriculum_alpha())
    assert alphas[0] == 1.0 and alphas[2] == pytest.approx(0.5) and alphas[-2:] == [0.0, 0.0]
    assert alphas == sorted(alphas, reverse=True)


@pytest.mark.parametrize("prediction", PREDICTIONS)
def test_boundary_term_is_flow_matching_at_r_equals_t(prediction):
    """With p = 0 and the mean over dimensions, the boundary term is ReFlow's flow-matching loss; and a
    MeanFlow whose pairs all have r = t (ratio 0) trains exactly that loss too."""
    torch.manual_seed(0)
    net = FlowNet(6, 3, (32,)).double()
    kwargs = {"adaptive_p": 0.0, "adaptive_reduce": "mean", "prediction": prediction}
    x, obs = torch.randn(64, 2, 3).double(), torch.randn(64, 3).double()
    reflow = ReFlow(net, "cpu", 2, 3, prediction=prediction)
    (zt, t), v = reflow.generate_target(x)
    flow_matching = reflow.loss(zt, t, obs, v)
    meanflow = MeanFlow(net, "cpu", 2, 3, boundary_weight=1.0, **kwargs)
    _, info = meanflow.loss_mean(zt, t, t * torch.rand_like(t), obs, v)
    torch.testing.assert_close(info["train/boundary_loss"], flow_matching)
    only_r_eq_t = MeanFlow(net, "cpu", 2, 3, ratio_r_neq_t=0.0, boundary_weight=0.0, **kwargs)
    loss, _ = only_r_eq_t.loss_mean(zt, t, t, obs, v)
    torch.testing.assert_close(loss, flow_matching)
    with_boundary = MeanFlow(net, "cpu", 2, 3, ratio_r_neq_t=0.0, boundary_weight=0.5, **kwargs)
    loss, _ = with_boundary.loss_mean(zt, t, t, obs, v)
    torch.testing.assert_close(loss, 1.5 * flow_matching)


def test_imf_target_differentiates_along_the_models_own_velocity():
    """iMF's du/dt is the derivative of u along (u(z, t, t), 0, 1): against central differences."""
    torch.manual_seed(0)
    net = FlowNet(4, 2, (32, 32)).double()
    flow = MeanFlow(net, "cpu", 1, 4, target="imf", prediction="velocity")
    z, obs, v = torch.randn(5, 4).double(), torch.randn(5, 2).double(), torch.randn(5, 4).double()
    t = 0.2 + 0.8 * torch.rand(5).double()
    r = t * torch.rand(5).double()
    _, target, _ = flow.prediction_and_target(z, r, t, obs, v)
    with torch.no_grad():
        tangent, h = net(z, t, t, obs), 1e-5
        dudt = (net(z + h * tangent, r, t + h, obs) - net(z - h * tangent, r, t - h, obs)) / (2 * h)
    torch.testing.assert_close(target, v - (t - r)[:, None] * dudt, rtol=1e-6, atol=1e-7)


def test_specs_written_before_the_recipe_options_keep_their_recipe():
    from myreinflow.flows.meanflow import upgrade_kwargs

    old = {"tr_sampler": "uniform", "ratio_r_neq_t": 0.5, "full_interval_frac": 0.1, "adaptive_p": 0.5}
    new = upgrade_kwargs(old | {"adaptive_c": 1e-3, "prediction": "data"})
    assert (
        new["full_interval_frac"] == 0.0 and new["target"] == "identity" and new["adaptive_reduce"] == "sum"
    )
    full = upgrade_kwargs({**old, "tr_sampler": "full"})
    assert full["tr_sampler"] == "logit_normal" and full["full_interval_frac"] == 0.1
    assert upgrade_kwargs(new) == new
    MeanFlow(FlowNet(1, 0, (8,)), "cpu", 1, 1, **full)  # constructs


def test_flow_step_benchmark_times_every_recipe():
    """benchmarks/flow_step.py at tiny sizes, so that it cannot rot: a ratio for every recipe."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[2] / "benchmarks" / "flow_step.py"
    spec = importlib.util.spec_from_file_location("flow_step", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    args = ["--hidden", "8", "--batch", "8", "--steps", "1", "--repeats", "1", "--predictions", "data"]
    result = bench.main(args)
    assert set(result["ratio_to_reflow"]) == {f"{r}_data" for r in bench.RECIPES}
    assert all(v > 0 for v in result["ratio_to_reflow"].values())


def test_the_meanflow_class_and_the_commands_share_one_default_recipe():
    """`MeanFlow(...)` in the API trains what `myreinflow bc --model meanflow` trains."""
    import inspect

    from myreinflow.configs import BCConfig

    defaults = {k: p.default for k, p in inspect.signature(MeanFlow).parameters.items()}
    assert BCConfig(model="meanflow").flow_kwargs("meanflow") == {
        k: defaults[k] for k in BCConfig(model="meanflow").flow_kwargs("meanflow")
    }


def test_recipe_v1_is_what_a_checkpoint_from_before_the_recipe_options_trains():
    """A spec written before the recipe options (v1's options, none of the new ones) rebuilds the loss
    that `--meanflow_recipe v1` trains today."""
    from myreinflow.configs import BCConfig
    from myreinflow.flows.meanflow import upgrade_kwargs

    v1 = BCConfig(model="meanflow", meanflow_recipe="v1").flow_kwargs("meanflow")
    old_spec = {k: v1[k] for k in ("tr_sampler", "ratio_r_neq_t", "full_interval_frac", "adaptive_p")}
    assert upgrade_kwargs(old_spec | {"adaptive_c": v1["adaptive_c"], "prediction": "data"}) == v1
    assert v1["target"] == "identity" and v1["boundary_weight"] == 0.0


@pytest.mark.parametrize(
    "sampler, kwargs, mean, var",
    [
        ("uniform", {}, 0.5, 1 / 12),
        ("beta", {"beta_a": 2.0, "beta_b": 5.0}, 2 / 7, 10 / (49 * 8)),  # ab / ((a+b)²(a+b+1))
    ],
)
def test_reflow_training_times_have_their_distributions_moments(sampler, kwargs, mean, var):
    """ReFlow's training-time samplers (library options: `ReFlow(..., time_sampler=...)`)."""
    torch.manual_seed(0)
    flow = ReFlow(FlowNet(2, 2, hidden=(8,)), horizon_steps=1, action_dim=2, time_sampler=sampler, **kwargs)
    t = flow.sample_time(200_000, "cpu")
    assert t.min() >= 0 and t.max() <= 1
    assert abs(float(t.mean()) - mean) < 3e-3 and abs(float(t.var()) - var) < 2e-3


def test_reflow_logit_normal_times_are_a_normal_in_logit_space():
    torch.manual_seed(0)
    flow = ReFlow(FlowNet(2, 2, hidden=(8,)), horizon_steps=1, action_dim=2, time_sampler="logit_normal")
    logit = torch.logit(flow.sample_time(200_000, "cpu").double())
    assert abs(float(logit.mean()) - flow.logit_mean) < 0.01
    assert abs(float(logit.std()) - flow.logit_std) < 0.01
