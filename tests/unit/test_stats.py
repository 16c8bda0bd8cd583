"""`stats`: intervals with known answers."""

from __future__ import annotations

import numpy as np

from myreinflow.stats import mean_ci


def test_mean_ci_known_answers():
    assert mean_ci(np.array([0.5] * 10)) == (0.5, 0.5, 0.5)
    mean, low, high = mean_ci(np.array([3.0]))
    assert mean == 3.0 and np.isnan(low) and np.isnan(high)
    rng = np.random.default_rng(0)
    x = rng.normal(1.0, 1.0, 400)
    mean, low, high = mean_ci(x)
    half = 1.96 * x.std(ddof=1) / np.sqrt(len(x))  # the normal-theory half width
    assert low < mean < high
    assert abs((high - low) / 2 - half) < 0.15 * half
    assert mean_ci(x) == (mean, low, high)  # seeded: the same interval every time
