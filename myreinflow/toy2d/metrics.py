"""Sample-quality metrics for the 2D study, with the conventions fixed here (not config).

- `sliced_wasserstein`: sliced W1, SW₁(μ, ν) = E_θ W₁(θ#μ, θ#ν) over directions θ uniform on the
  circle, estimated with `SWD_PROJECTIONS` = 500 directions from POT's `get_random_projections` with
  a fixed seed (the same directions for every model and NFE). This is exactly POT's
  `ot.sliced_wasserstein_distance(x, y, projections=θ, p=1)`; for two equal-size, equal-weight sets we
  compute the same number with the sorted-samples closed form (one sort per set, faster than POT's
  general quantile code; equality tested). For a pure shift δ in 2D, SW₁ = |δ|·E|cos φ| = 2|δ|/π.
- `mmd2`: squared maximum mean discrepancy, the unbiased estimate (Gretton et al. 2012, eq. 3; can be
  slightly negative), with the sum-of-Gaussians kernel k(x, y) = Σ_σ exp(−|x − y|²/(2σ²)) over
  σ ∈ `MMD_BANDWIDTHS` = (1/16, 1/8, 1/4, 1/2, 1), on the first `MMD_SAMPLES` = 3000 points of each set
  (an n² kernel sum, in chunks so memory stays small).
- `w2`: exact Wasserstein-2 (`ot.emd2`, squared Euclidean cost, uniform weights) on the first
  `W2_SAMPLES` = 1000 points of each set; √ of the optimal cost.
- `straightness`: see `path_deviation`.
"""

from __future__ import annotations

import numpy as np
import ot
import torch

SWD_PROJECTIONS = 500
SWD_SEED = 0
MMD_BANDWIDTHS = (1.0, 0.5, 0.25, 0.125, 0.0625)  # each half the one before
MMD_SAMPLES = 3000
W2_SAMPLES = 1000


def _numpy(x) -> np.ndarray:
    return x.detach().cpu().numpy().astype(np.float64) if torch.is_tensor(x) else np.asarray(x, np.float64)


def projections(dim: int = 2, n: int = SWD_PROJECTIONS, seed: int = SWD_SEED) -> np.ndarray:
    """(dim, n) unit directions, POT's sampler with its own seeded RandomState (no global RNG touched)."""
    return ot.sliced.get_random_projections(dim, n, seed=np.random.RandomState(seed))


def _sorted_projections(x: np.ndarray, theta: np.ndarray) -> np.ndarray:
    return np.sort((x @ theta).astype(np.float32), axis=0)  # float32: half the sorting time


def sliced_wasserstein(x, y, n_projections: int = SWD_PROJECTIONS, seed: int = SWD_SEED) -> float:
    """Sliced W1 between the point sets x (n, d) and y (m, d), uniform weights (see module doc)."""
    x, y = _numpy(x), _numpy(y)
    theta = projections(x.shape[1], n_projections, seed)
    if x.shape[0] != y.shape[0]:
        return float(ot.sliced_wasserstein_distance(x, y, projections=theta, p=1))
    # equal sizes: the 1D optimal plan matches the i-th smallest projections
    return float(np.abs(_sorted_projections(x, theta) - _sorted_projections(y, theta)).mean(dtype=np.float64))


def _kernel_sum(a: torch.Tensor, b: torch.Tensor, chunk: int = 256) -> float:
    """Σ_ij k(a_i, b_j) over the halving bandwidths: exp(−d/(2(σ/2)²)) = exp(−d/(2σ²))⁴, one exp per pair."""
    total = 0.0
    for i in range(0, a.shape[0], chunk):
        sq = (a[i : i + chunk, None, :] - b[None, :, :]).pow(2).sum(-1)
        k = torch.exp(sq * (-0.5 / MMD_BANDWIDTHS[0] ** 2))
        for _ in MMD_BANDWIDTHS:
            total += k.sum(dtype=torch.float64).item()
            k = (k * k).square_()
    return total


def _mmd_points(x, n: int) -> torch.Tensor:
    return torch.as_tensor(_numpy(x)[:n], dtype=torch.float32)


def _self_term(x: torch.Tensor) -> float:
    """Mean of k(x_i, x_j) over i ≠ j (k(z, z) = number of bandwidths on the diagonal)."""
    n = x.shape[0]
    return (_kernel_sum(x, x) - len(MMD_BANDWIDTHS) * n) / (n * (n - 1))


def mmd2(x, y, n: int = MMD_SAMPLES) -> float:
    """Unbiased MMD² with the sum-of-Gaussians kernel over `MMD_BANDWIDTHS`, first `n` points of each."""
    x, y = _mmd_points(x, n), _mmd_points(y, n)
    return _self_term(x) + _self_term(y) - 2 * _kernel_sum(x, y) / (x.shape[0] * y.shape[0])


def wasserstein2(x, y, n: int = W2_SAMPLES) -> float:
    """Exact W2 (POT's network simplex, `ot.emd2`) between the first `n` points of x and of y."""
    x, y = _numpy(x)[:n], _numpy(y)[:n]
    cost = ot.dist(x, y)  # squared Euclidean
    return float(np.sqrt(ot.emd2([], [], cost, numItermax=10_000_000)))


class TargetMetrics:
    """`swd`, `mmd2` and `w2` of sample sets against one fixed target set (equal size for the SWD).

    The same numbers as the functions above; the target's share of each (its sorted projections, its
    kernel self-term) is computed once instead of at every model and NFE.
    """

    def __init__(self, target):
        self.target = _numpy(target)
        self.theta = projections(self.target.shape[1])
        self.target_sorted = _sorted_projections(self.target, self.theta)
        self.target_mmd = _mmd_points(self.target, MMD_SAMPLES)
        self.target_self = _self_term(self.target_mmd)

    def __call__(self, samples) -> dict[str, float]:
        x = _numpy(samples)
        if x.shape != self.target.shape:
            raise ValueError(f"samples {x.shape} must match the target set {self.target.shape}")
        xm = _mmd_points(x, MMD_SAMPLES)
        cross = _kernel_sum(xm, self.target_mmd) / (xm.shape[0] * self.target_mmd.shape[0])
        return {
            "swd": float(
                np.abs(_sorted_projections(x, self.theta) - self.target_sorted).mean(dtype=np.float64)
            ),
            "mmd2": _self_term(xm) + self.target_self - 2 * cross,
            "w2": wasserstein2(x, self.target),
        }


def path_deviation(path) -> float:
    """Straightness of sampled trajectories: 0 for straight, constant-speed paths.

    `path` is (K + 1, B, d): z_0 = noise (t = 1), …, z_K = sample (t = 0) on the sampler's uniform grid.
    Each interior point is compared with the point at the same time on the chord between the endpoints,
    ẑ_k = z_0 + (k/K)(z_K − z_0), and the value is the mean of |z_k − ẑ_k| over k = 1…K−1 and over the
    B trajectories (0 for K = 1, where the path is a single straight step).
    """
    path = torch.as_tensor(path)
    k = path.shape[0] - 1
    if k < 2:
        return 0.0
    frac = torch.linspace(0, 1, k + 1, dtype=path.dtype, device=path.device)[1:-1, None, None]
    chord = path[0] + frac * (path[-1] - path[0])
    return float((path[1:-1] - chord).norm(dim=-1).mean())
