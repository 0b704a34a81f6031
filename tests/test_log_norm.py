"""relu-log-norm: the mean log-norm increment of a relu layer, against integrals and widths."""

import math

import numpy as np
import pytest
import sympy as sp
from scipy import integrate, stats

import montecarlo as mc
from derivations import Status, simulation_activations
from derivations._log_norm import S2, N, _total_expectation, exact_mean_increment, relu_log_norm


def test_the_mixture_matches_a_direct_integral_at_width_two():
    """n = 2, sigma = 1: E[log ||relu(z)||^2 | some unit on] by quadrature over z."""
    before_he = next(s for s in _total_expectation().steps if s.rule == "He initialization").before
    derived = float(before_he.subs({N: 2, S2: 1}).doit())
    phi = stats.norm.pdf
    both, _ = integrate.dblquad(
        lambda y, x: math.log(x * x + y * y) * phi(x) * phi(y), 0, np.inf, 0, np.inf
    )
    one, _ = integrate.quad(lambda x: math.log(x * x) * phi(x), 0, np.inf)
    # both on (mass 1/4) or exactly one on (two cases, each with the other off: 1/2 each)
    direct = (both + 2 * one * 0.5) / 0.75
    assert derived == pytest.approx(direct, rel=1e-8)


def test_he_drift_is_minus_five_over_two_n_to_leading_order():
    c = relu_log_norm()
    assert c.status is Status.COMPUTED  # the digamma sums are SymPy computations
    for n in (256, 1024):
        assert float(n * exact_mean_increment(n)) == pytest.approx(-2.5, abs=20 / n)
    # the derived expression and the fast sum agree
    he = c.derivation("mean log-norm increment of a relu layer").result
    assert float(he.subs(N, 16).doit()) == pytest.approx(float(exact_mean_increment(16)), 1e-13)


def test_probes_predict_from_the_derivation_and_the_lecture_reading_is_refused():
    c = relu_log_norm()
    confidence = mc.per_check_confidence(0.01, len(c.probes))
    outcomes = {}
    for p in c.probes:
        est = mc.measure(
            p.scenario,
            p.observable,
            seed=mc.seed_for(7, c.id, p.label),
            activations=simulation_activations(),
        )
        outcomes[p.label] = (mc.decide(p.predicted, est, confidence).outcome.value, p.expect)
    assert all(got == want for got, want in outcomes.values()), outcomes
    drift = [p for p in c.probes if p.observable["moment"] == "log_m2" and p.expect == "agrees"]
    for p in drift:
        n = p.scenario["widths"][0]
        assert p.predicted == pytest.approx(float(sp.N(p.expression.subs(N, n).doit())))
