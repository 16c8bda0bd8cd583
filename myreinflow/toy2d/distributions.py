"""2D target distributions for the toy study: a registry of samplers `fn(n, generator) -> (n, 2)`.

All live roughly in [-2, 2]² so that N(0, I) noise at t = 1 covers them. Adding one is one function
plus one line in `DISTRIBUTIONS`.
"""

from __future__ import annotations

import math

import torch


def checkerboard(n: int, generator: torch.Generator) -> torch.Tensor:
    """Uniform on the 8 'black' unit squares of a 4×4 board on [-2, 2]² (cell (i, j) with i + j even)."""
    cells = torch.tensor(
        [(i, j) for i in range(4) for j in range(4) if (i + j) % 2 == 0], dtype=torch.float32
    )
    which = torch.randint(0, len(cells), (n,), generator=generator)
    return cells[which] - 2 + torch.rand(n, 2, generator=generator)


def eight_gaussians(n: int, generator: torch.Generator) -> torch.Tensor:
    """Equal mixture of 8 isotropic Gaussians (std 0.15) at radius 2, angles k·45°."""
    angle = torch.randint(0, 8, (n,), generator=generator) * (math.pi / 4)
    centres = 2.0 * torch.stack([angle.cos(), angle.sin()], dim=1)
    return centres + 0.15 * torch.randn(n, 2, generator=generator)


def two_moons(n: int, generator: torch.Generator) -> torch.Tensor:
    """Two interleaved half circles (scikit-learn's `make_moons` shape), centred, ×1.3, noise std 0.07."""
    theta = math.pi * torch.rand(n, generator=generator)
    lower = torch.randint(0, 2, (n,), generator=generator).bool()
    x = torch.where(lower, 1 - theta.cos(), theta.cos())
    y = torch.where(lower, 0.5 - theta.sin(), theta.sin())
    points = torch.stack([x - 0.5, y - 0.25], dim=1) * 1.3
    return points + 0.07 * torch.randn(n, 2, generator=generator)


def spirals(n: int, generator: torch.Generator) -> torch.Tensor:
    """Two interleaved arms of an Archimedean spiral (1.5 turns, radius up to 2), noise std 0.08."""
    turn = 3 * math.pi * torch.rand(n, generator=generator).sqrt()
    arm = torch.randint(0, 2, (n,), generator=generator) * math.pi
    radius = 2.0 * turn / (3 * math.pi)
    points = radius[:, None] * torch.stack([(turn + arm).cos(), (turn + arm).sin()], dim=1)
    return points + 0.08 * torch.randn(n, 2, generator=generator)


DISTRIBUTIONS = {
    "checkerboard": checkerboard,
    "8gaussians": eight_gaussians,
    "moons": two_moons,
    "spirals": spirals,
}
