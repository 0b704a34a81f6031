r"""Coverage of the engine's intervals, one observable kind at a time, where it can fail.

Each test runs :func:`montecarlo.measure` (pilot, sequential extensions, interval) on
``N = 1000`` independent seeds at a nominal level of 90%, and counts how often the
interval covers a true value that comes from a closed form derived in the test's
docstring, never from the engine. The count must fall in the two-sided acceptance
region of a binomial test of coverage 0.9 at level 0.002 (:func:`acceptance`), which
is ``[870, 928]``.

Power (computed by :func:`power`, and held by ``test_the_coverage_tests_have_power``):
the region refuses a true coverage of 0.85 with probability 0.96, and intervals
1.25 times too wide (coverage :math:`2\Phi(1.25 z_{0.95}) - 1 = 0.960` for a t-like
statistic) with probability 1.000; a calibrated interval passes with probability
0.998. The seeds are fixed, so each test is deterministic.
"""

import math

import numpy as np
import pytest
from scipy import integrate, special, stats

import derivations
import montecarlo as mc

#: The activation table's NumPy side, what the engine simulates named activations with.
ACTS = derivations.simulation_activations()
N_SEEDS, LEVEL, TEST_ALPHA = 1000, 0.9, 0.002
#: Coverage of a t-like interval 1.25 times too wide, at nominal 90%.
TOO_WIDE = float(2 * stats.norm.cdf(1.25 * stats.norm.ppf(0.95)) - 1)


def acceptance(n: int = N_SEEDS, alpha: float = TEST_ALPHA) -> tuple[int, int]:
    """Two-sided acceptance region ``[lo, hi]`` of covered counts out of ``n`` at 0.9."""
    return (
        int(stats.binom.ppf(alpha / 2, n, LEVEL)),
        int(stats.binom.isf(alpha / 2, n, LEVEL)),
    )


def power(coverage: float, n: int = N_SEEDS, alpha: float = TEST_ALPHA) -> float:
    """Probability that a true ``coverage`` puts the count outside :func:`acceptance`."""
    lo, hi = acceptance(n, alpha)
    return float(stats.binom.cdf(lo - 1, n, coverage) + stats.binom.sf(hi, n, coverage))


def test_the_coverage_tests_have_power():
    assert acceptance() == (870, 928)
    assert power(0.85) >= 0.95
    assert power(TOO_WIDE) >= 0.999
    assert power(LEVEL) <= TEST_ALPHA


def _mlp(widths, std, activation="linear", **extra):
    return {
        "widths": list(widths),
        "weights": {"law": "normal", "std": std},
        "activation": activation,
        **extra,
    }


def _covered(scenario, observable, truth, key, *, batch, precision=mc.DEFAULT_PRECISION):
    """How many of :data:`N_SEEDS` intervals at :data:`LEVEL` contain ``truth``."""
    covered = 0
    for s in range(N_SEEDS):
        est = mc.measure(
            scenario,
            observable,
            seed=mc.seed_for(s, "coverage", key),
            batch=batch,
            precision=precision,
            activations=ACTS,
        )
        ci = est.confidence_interval(LEVEL)
        covered += ci.low <= truth <= ci.high
    return covered


def _assert_calibrated(covered):
    lo, hi = acceptance()
    assert lo <= covered <= hi, f"covered {covered}/{N_SEEDS}, acceptance [{lo}, {hi}]"


@pytest.mark.slow
def test_ratio_of_layers_is_covered():
    r"""Pre-activation second moment of layer 2 relative to layer 1, relu, widths 12.

    :math:`z^2 = W^2 \mathrm{relu}(z^1)` with :math:`W^2_{ij} \sim N(0, s^2)` independent
    of :math:`z^1`, so :math:`E[(z^2_i)^2] = s^2 \sum_j E[\mathrm{relu}(z^1_j)^2]`, and
    :math:`z^1_j = W^1_j x` is symmetric (flip the row :math:`W^1_j`), so
    :math:`E[\mathrm{relu}(z^1_j)^2] = E[(z^1_j)^2]/2`. The ratio of the expected
    second moments is therefore :math:`n_1 s^2 / 2` exactly. Power: module docstring.
    """
    n, s = 12, 0.4
    ob = {"direction": "forward", "of": "preactivation", "moment": "m2", "layer": 2}
    covered = _covered(
        _mlp([n, n, n], s, "relu"),
        {**ob, "relative_to": 1},
        n * s**2 / 2,
        "ratio",
        batch=8,
        precision=0.05,
    )
    _assert_calibrated(covered)


@pytest.mark.slow
def test_log_m2_is_covered():
    r"""Mean log of each input's mean square at layer 2 against layer 0, linear, Gaussian.

    For Gaussian :math:`W` with entries :math:`N(0, s_t^2)` and any fixed :math:`h`,
    :math:`\|W h\|^2 = s_t^2 \|h\|^2 \chi^2_{n_t}` with the :math:`\chi^2` independent of
    :math:`h` (rotation invariance), so each layer adds
    :math:`\log(s_t^2 n_{t-1}/n_t) + \log 2 + \psi(n_t/2)` to
    :math:`E \log(\|h\|^2/n)` (Newman 1986), inputs sharing the network or not.
    Power: module docstring.
    """
    widths, stds = (10, 6, 8), (0.5, 0.3)
    truth = sum(
        math.log(s * s * widths[t] / widths[t + 1])
        + math.log(2)
        + special.digamma(widths[t + 1] / 2)
        for t, s in enumerate(stds)
    )
    scenario = {
        "widths": list(widths),
        "weights": [{"law": "normal", "std": s} for s in stds],
        "activation": "linear",
    }
    ob = {"direction": "forward", "moment": "log_m2", "layer": 2, "relative_to": 0}
    _assert_calibrated(_covered(scenario, ob, truth, "log_m2", batch=8, precision=0.07))


@pytest.mark.slow
def test_backward_moment_is_covered():
    r"""Second moment of :math:`\partial l/\partial h^0` of one relu layer, uniform weights.

    With an upstream gradient :math:`g \sim N(0, I)` independent of the network,
    :math:`(\partial l/\partial h^0)_k = \sum_i W_{ik} g_i 1[z_i > 0]`; the cross terms
    vanish (:math:`g_i` independent, mean 0) and flipping the row :math:`W_i` turns
    :math:`1[z_i > 0]` into :math:`1[z_i < 0]` without changing :math:`W_{ik}^2`, so
    :math:`E[(\partial l/\partial h^0_k)^2] = n_1 E[W^2]/2 = n_1 b^2/6` for
    :math:`U[-b, b]` weights. Power: module docstring.
    """
    n0, n1, b = 8, 14, 0.5
    scenario = {
        "widths": [n0, n1],
        "weights": {"law": "uniform", "bound": b},
        "activation": "relu",
    }
    ob = {"direction": "backward", "moment": "m2", "layer": 0}
    _assert_calibrated(_covered(scenario, ob, n1 * b * b / 6, "backward", batch=8, precision=0.05))


@pytest.mark.slow
@pytest.mark.xfail(
    reason=(
        "heavy tails: the replicates' logs are close to normal with variance 2.4 (a "
        "lognormal's skewness would be 42; 200000 replicates show 12), so the sample skewness "
        "understates it and the skew-corrected interval covers about 87% at a nominal 90%. "
        "300-seed runs: 85% at this target (R about 950), 87% at a fixed R of the same "
        "size, 88% at target 0.1 (R about 5300), 87% at target 0.05 (R about 19600); "
        "a larger R does not close the gap"
    ),
    strict=False,
)
def test_deep_relu_he_network_is_covered():
    r"""Pre-activation second moment at layer 10 of a relu network, He weights, width 16.

    :math:`E[(z^t_i)^2] = s^2 \sum_j E[\mathrm{relu}(z^{t-1}_j)^2] = n s^2 E[(z^{t-1})^2]/2`
    (the symmetry argument of the ratio test, layer by layer), and
    :math:`E[(z^1_i)^2] = s^2 E\|x\|^2 = n s^2`: with :math:`s^2 = 2/n` every layer's
    expected second moment is exactly 2. At width 16 and depth 10 the per-replicate
    value is strongly right-skewed (its log has variance of order :math:`5t/n`): the
    hard case for a t interval and for sizing from a pilot. Power: module docstring.
    """
    n, depth = 16, 10
    scenario = _mlp([n] * (depth + 1), math.sqrt(2 / n), "relu")
    ob = {"direction": "forward", "of": "preactivation", "moment": "m2", "layer": depth}
    _assert_calibrated(_covered(scenario, ob, 2.0, "deep-relu", batch=4, precision=0.3))


def overflow_fraction(n_in: int, std: float, threshold: float) -> float:
    r"""Expected fraction of entries of :math:`W x` beyond ``threshold`` in magnitude.

    Given :math:`x \sim N(0, I_{n})`, :math:`(Wx)_i \sim N(0, s^2 \|x\|^2)` and
    :math:`\|x\|^2 \sim \chi^2_n`, so the fraction is
    :math:`\int_0^\infty 2 \bar\Phi(T / (s \sqrt u)) f_{\chi^2_n}(u)\, du`, by quadrature.
    """
    value, _ = integrate.quad(
        lambda u: 2 * stats.norm.sf(threshold / (std * math.sqrt(u))) * stats.chi2.pdf(u, n_in),
        0,
        np.inf,
        epsabs=1e-14,
        epsrel=1e-10,
    )
    return value


#: float16 rounds a float32 product of magnitude >= 65520 (the largest float16,
#: 65504, plus half its spacing) to infinity.
F16_OVERFLOW = 65520.0


@pytest.mark.slow
def test_fraction_near_the_edge_is_covered():
    r"""Fraction of non-finite entries of one float16 linear layer, near 0 but not at it.

    Products are accumulated in float32 and rounded to float16, so an entry is infinite
    exactly when :math:`|(Wx)_i| \ge 65520`; its expected fraction is
    :func:`overflow_fraction` (about 0.002 here), so a replicate of 16 x 16 entries is
    at 0 in most seeds' replicates and off it in some: the fraction sits near its edge.
    The rounding of :math:`W` and :math:`x` to float16 moves the threshold by a relative
    :math:`2^{-11}` at most, far below the interval's width. Power: module docstring.
    """
    n_in, n_out, s = 16, 16, 5000.0
    truth = overflow_fraction(n_in, s, F16_OVERFLOW)
    assert 0.001 < truth < 0.01
    scenario = _mlp([n_in, n_out], s, dtype="float16")
    ob = {"direction": "forward", "moment": "nonfinite", "layer": 1}
    _assert_calibrated(_covered(scenario, ob, truth, "fraction", batch=16, precision=5e-4))


@pytest.mark.slow
def test_heavy_tailed_ratio_reaches_its_target_precision_in_every_seed():
    r"""Sizing that holds for heavy tails: a relu/He ratio of layers 10 and 9, width 16.

    The per-replicate second moments are strongly right-skewed, so a 32-replicate pilot
    misjudges the spread by a large factor in some seeds (a two-stage design sized from
    it ended between 0.43 and 2.1 times the target). The run is extended, at most
    fourfold per stage and each stage aiming short of the count the spread asks for,
    until the interval over all replicates meets the target, so over 60 seeds no seed
    ends short of the target, 95% end within :math:`[0.7, 1]` times it (the median at
    0.98), and none below 0.35 (a replicate far in the tail can still inflate one
    stage's spread: the lowest seed ends at 0.42 after five fourfold extensions).
    """
    n, target = 16, 0.05
    scenario = _mlp([n] * 11, math.sqrt(2 / n), "relu")
    ob = {"direction": "forward", "of": "preactivation", "moment": "m2", "layer": 10}
    achieved, replicates = [], []
    for s in range(60):
        est = mc.measure(
            scenario,
            {**ob, "relative_to": 9},
            seed=mc.seed_for(s, "sizing"),
            batch=8,
            precision=target,
            activations=ACTS,
        )
        achieved.append(est.precision() / target)
        replicates.append(est.n_replicates)
    assert max(replicates) > 2 * min(replicates)  # the spread does vary by seed
    assert max(achieved) <= 1.0, max(achieved)
    assert np.quantile(achieved, 0.05) >= 0.7 and min(achieved) >= 0.35, sorted(achieved)[:4]
    assert np.median(achieved) >= 0.9, np.median(achieved)
