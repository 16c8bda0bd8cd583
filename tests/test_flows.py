"""Flow math against analytic cases: JVP vs finite differences, the MeanFlow identity on a Gaussian,
the shared sampler, and both flows fitting a bimodal target (MeanFlow's 1-step advantage)."""

import pytest
import torch
from scipy.stats import wasserstein_distance
from torch import nn

from myreinflow import MeanFlow, ReFlow
from myreinflow.flows import FlowModel
from myreinflow.nets import FlowNet

M, S = 1.5, 0.5  # 1-D Gaussian data N(M, S²); noise N(0, 1) at t = 1


class GaussianAverageVelocity(nn.Module):
    """Exact average velocity u*(z, r, t) of the straight-path flow from N(M, S²) (t=0) to N(0, 1) (t=1).

    z_t ~ N((1−t)M, σ_t²) with σ_t² = (1−t)²S² + t²; the 1-D flow map is affine,
    z_r = μ_r + σ_r/σ_t·(z − μ_t), so u* = (z − z_r)/(t − r), and v̄ = lim_{r→t} u*.
    """

    def forward(self, z, r, t, obs):
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
    _, mse = flow.loss_mean(z, t, r, torch.zeros(n, 0).double(), v_bar)
    assert mse.item() < 1e-12
    # and a wrong velocity field is caught
    _, mse_wrong = flow.loss_mean(z, t, r, torch.zeros(n, 0).double(), v_bar + 0.3)
    assert mse_wrong.item() > 1e-3


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


# Bounds on the library's default recipe (data prediction; MeanFlow uniform pairs, 50 % r != t, p 0.5),
# each at least twice the spread measured over seeds 0–5 with 1 and 2 threads away from the worst value
# (W1 relative to NOISE_W1 = 0.25; measured ranges in the comments).
BOUNDS = {
    "reflow@16": 0.6,  # measured 0.050–0.075 (0.20–0.30 × NOISE_W1)
    "meanflow@1": 0.85,  # measured 0.085–0.125 (0.34–0.50 × NOISE_W1)
    "mode_balance": 0.15,  # |positive fraction − 0.5|: measured ≤ 0.030 (0.479–0.530)
    "one_step_gap": 2.0,  # (ReFlow@1 − MeanFlow@1) / NOISE_W1: measured 2.58–2.78 (0.646–0.696)
}


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
