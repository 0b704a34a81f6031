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


def test_user_family_loop_stops_no_later_at_a_looser_target():
    # the same seed draws the same replicates; a row that meets a target meets a looser one
    tight = _bench.user_loop_family(8, 3, 16, 0.1, 5)
    loose = _bench.user_loop_family(8, 3, 16, 0.2, 5)
    assert 2 < loose < tight


class _Estimate:
    def __init__(self, n):
        self.n_replicates = n


def test_comparison_keeps_each_seeds_replicates():
    seen = []

    def user(seed):
        seen.append(seed)
        return 10 * seed

    c = _bench._compare(user, lambda seed: (_Estimate(100 + seed),))
    assert seen == [s + 1 for s in range(_bench.SEEDS) for _ in range(_bench.REPEATS)]
    assert c.user_replicates == tuple(10 * (s + 1) for s in range(_bench.SEEDS))
    assert c.engine_replicates == tuple(100 + s for s in range(_bench.SEEDS))
    assert c.repeat_spread >= 0.0


def _comparison(user, engine, repeat_spread=0.0):
    return _bench.Comparison(user, engine, (30, 30), (10, 40), repeat_spread)


def test_speedup_is_the_ratio_of_summed_times_and_refuses_a_disturbed_baseline():
    ratio, detail = _bench._speedup(_comparison((2.0, 4.0), (1.0, 2.0)))
    assert ratio == 2.0 and "mean R 30" in detail
    ratio, detail = _bench._speedup(_comparison((2.0, 4.0), (1.0, 2.0), 0.5))
    assert math.isnan(ratio) and detail.startswith("WARNING")


def test_a_best_run_counts_only_when_a_second_run_comes_near_it():
    assert math.isclose(_bench._spread([1.0, 5.0, 1.1]), 0.1)
    assert _bench._spread([1.0, 1.5, 2.0]) > _bench.SPREAD_LIMIT
