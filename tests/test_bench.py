"""The bench's baselines stop where they say they stop (``cli/_bench.py``).

The ratios themselves are timings and are printed by ``make bench``, never asserted.
"""

import math

import numpy as np
from scipy import stats

from cli import _bench


def _half_width(values: np.ndarray) -> np.ndarray:
    r = values.shape[0]
    return stats.t.ppf(0.995, r - 1) * values.std(axis=0, ddof=1) / math.sqrt(r)


def test_stopping_rule_is_the_99_percent_t_half_width():
    values = np.array([[1.0, 10.0], [1.1, 10.0], [0.9, 10.1]])
    half = _half_width(values)
    rel = half / np.abs(values.mean(axis=0))
    assert _bench._half_width_met(values, float(rel.max()) * 1.001)
    assert not _bench._half_width_met(values, float(rel.max()) * 0.999)
    assert not _bench._half_width_met(values[:1], 1.0)


def test_user_probe_loop_stops_at_the_first_replicate_that_meets_the_target():
    n, target, seed = 16, 0.05, 3
    used = _bench.user_loop_probe(n, target, seed)
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(used):
        w = rng.standard_normal((n, n)) / math.sqrt(n)
        values.append((w @ rng.standard_normal((n, n))).var())
    values = np.array(values)
    assert _bench._half_width_met(values, target)
    assert not _bench._half_width_met(values[:-1], target)


def test_user_family_loop_times_its_products_without_changing_its_answer():
    gemm = [0.0]
    plain = _bench.user_loop_family(8, 3, 16, 0.2, 5)
    timed = _bench.user_loop_family(8, 3, 16, 0.2, 5, gemm)
    assert plain == timed > 2
    assert gemm[0] > 0


def test_user_probe_loop_times_its_product_without_changing_its_answer():
    gemm = [0.0]
    assert _bench.user_loop_probe(16, 0.05, 3) == _bench.user_loop_probe(16, 0.05, 3, gemm)
    assert gemm[0] > 0
