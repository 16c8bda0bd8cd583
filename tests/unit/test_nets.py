"""Networks (`nets/`): the critic ensemble against separate MLPs and the references' layout."""

import torch
import torch.nn.functional as F

from myreinflow.nets import EnsembleMLP


def test_ensemble_mlp_equals_separate_mlps():
    torch.manual_seed(0)
    net = EnsembleMLP(5, 1, (16, 8), ensemble=3, activation="gelu", layer_norm=True)
    with torch.no_grad():  # non-trivial LayerNorm affine parameters
        for p in [*net.norm_scales, *net.norm_shifts]:
            p.normal_()
    x = torch.randn(7, 5)

    def member(e: int, h: torch.Tensor) -> torch.Tensor:
        for i in range(len(net.weights)):
            if i:  # the references' order: Dense → GELU (tanh) → LayerNorm (ε 1e-6)
                h = F.gelu(h, approximate="tanh")
                scale, shift = net.norm_scales[i - 1][e, 0], net.norm_shifts[i - 1][e, 0]
                h = F.layer_norm(h, h.shape[-1:], scale, shift, eps=1e-6)
            h = h @ net.weights[i][e] + net.biases[i][e, 0]
        return h

    expected = torch.stack([member(e, x) for e in range(3)])
    torch.testing.assert_close(net(x), expected)
    # per-member inputs take the batched path and agree too
    torch.testing.assert_close(net(x.expand(3, 7, 5)), expected)


def test_tanh_gelu_is_torchs_tanh_approximation():
    """The critic's GELU, written with a sigmoid, is F.gelu(approximate="tanh"): values and gradients
    within float32 rounding (1e-5; measured 2.1e-6 near x = 5, where GELU ≈ 5) over ±12."""
    from myreinflow.nets.ensemble import TanhGELU

    x = torch.linspace(-12, 12, 100_001, requires_grad=True)
    ours, torchs = TanhGELU()(x), F.gelu(x, approximate="tanh")
    torch.testing.assert_close(ours, torchs, atol=1e-5, rtol=1e-5)
    (grad_ours,) = torch.autograd.grad(ours.sum(), x)
    (grad_torchs,) = torch.autograd.grad(torchs.sum(), x)
    torch.testing.assert_close(grad_ours, grad_torchs, atol=1e-5, rtol=1e-5)


def test_ensemble_mlp_init_is_the_references():
    """Glorot-uniform weights (flax variance_scaling(1, fan_avg, uniform)) and zero biases."""
    net = EnsembleMLP(300, 1, (500,), ensemble=4)
    bound = (6 / (300 + 500)) ** 0.5
    w = net.weights[0]
    assert w.abs().max() <= bound and w.abs().max() > 0.95 * bound
    assert abs(w.var().item() - bound**2 / 3) < 0.05 * bound**2 / 3  # uniform(-b, b): var b²/3
    assert all(torch.count_nonzero(b) == 0 for b in net.biases)
