"""The statistics every layer reports with: Minari's normalised score and 95 % intervals of a mean.

Bootstrap intervals are percentile bootstraps of the mean (`scipy.stats.bootstrap`, fixed seed); the
interval over seeds is Student's t; a success rate's is Wilson's score interval.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

CI_LEVEL = 0.95
N_RESAMPLES = 2000


def normalized_score(returns, ref_min: float | None, ref_max: float | None):
    """Minari's normalisation (return − ref_min)/(ref_max − ref_min); NaN without reference scores."""
    returns = np.asarray(returns, dtype=np.float64)
    if ref_min is None or ref_max is None:
        return np.full_like(returns, np.nan)
    return (returns - ref_min) / (ref_max - ref_min)


def mean_ci(values: np.ndarray, seed: int = 0) -> tuple[float, float, float]:
    """(mean, low, high) with a 95 % percentile-bootstrap interval; NaN bounds for fewer than 2 values."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return np.nan, np.nan, np.nan
    mean = float(values.mean())
    if len(values) < 2:
        return mean, np.nan, np.nan
    if np.all(values == values[0]):
        return mean, mean, mean
    res = stats.bootstrap(
        (values,),
        np.mean,
        confidence_level=CI_LEVEL,
        n_resamples=N_RESAMPLES,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return mean, float(res.confidence_interval.low), float(res.confidence_interval.high)


def t_half_width(values: np.ndarray) -> float:
    """Half the width of the 95 % Student-t interval of the mean of `values` (NaN for fewer than 2)."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) < 2:
        return np.nan
    return float(stats.t.ppf(0.5 + CI_LEVEL / 2, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values)))


def wilson(successes: int, n: int) -> tuple[float, float]:
    """The 95 % Wilson score interval of `successes` out of `n` trials."""
    ci = stats.binomtest(successes, n).proportion_ci(confidence_level=CI_LEVEL, method="wilson")
    return float(ci.low), float(ci.high)
