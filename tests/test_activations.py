"""Activation claims (L2.4, L2.5, L8.3, L8.4, S2, S4) and the Gaussian-moment tools.

Derived values are compared with independent numbers (SciPy quadrature of NumPy
activations, mpmath at 30 digits, finite differences), and wrong versions are shown
to be refuted or different.
"""

import math

import mpmath
import numpy as np
import pytest
import sympy as sp
from scipy import integrate, special

from derivations import ACTIVATION_TABLE, Status, check_algebraic
from derivations import _activations as act
from derivations._gaussian import (
    evaluate,
    gaussian_integral,
    gaussian_moment,
    gaussian_series,
    gaussian_square_series,
)

x, q = act.x, act.q
CLAIMS = [build() for build in act.BUILDERS]
BY_ID = {c.id: c for c in CLAIMS}

#: Independent NumPy forms of the activations and their derivatives.
#: The simulation's NumPy side, from the activation table (held equal to the SymPy side
#: in tests/test_activation_table.py), on scalars and arrays.
NUMPY = {
    e.name: (
        lambda v, f=e.function: f(np.asarray(v, dtype=float)),
        lambda v, d=e.derivative: d(np.asarray(v, dtype=float)),
    )
    for e in ACTIVATION_TABLE
}


def gauss_quad(func, qv: float) -> float:
    """E[func(x)] for x ~ N(0, qv), by SciPy on the raw density (not the claim's code)."""
    s = math.sqrt(qv)

    def integrand(v):
        return func(v) * math.exp(-v * v / (2 * qv)) / (s * math.sqrt(2 * math.pi))

    lo, _ = integrate.quad(integrand, -40 * s, 0.0, epsabs=0, epsrel=1e-12, limit=200)
    hi, _ = integrate.quad(integrand, 0.0, 40 * s, epsabs=0, epsrel=1e-12, limit=200)
    return lo + hi


def mp_moment(f, qv) -> mpmath.mpf:
    """E[f(x)] for x ~ N(0, qv) with mpmath at 30 digits."""
    with mpmath.workdps(30):
        qv = mpmath.mpf(qv)
        return mpmath.quad(
            lambda v: f(v) * mpmath.exp(-v * v / (2 * qv)) / mpmath.sqrt(2 * mpmath.pi * qv),
            [-mpmath.inf, 0, mpmath.inf],
        )


# --------------------------------------------------------------------------------------
# every claim


@pytest.mark.parametrize("claim", CLAIMS, ids=[c.id for c in CLAIMS])
def test_claim_is_decided(claim):
    """Every step is proved, computed or tested (never undecided or refuted), and the
    claim is as strong as its weakest step."""
    weakest = min((s.status for d in claim.derivations for s in d.steps), key=lambda s: s.rank)
    assert claim.status is weakest and weakest.rank >= Status.TESTED.rank, claim.status
    for d in claim.derivations:
        assert d.steps, d.name
        for s in d.steps:
            assert s.status.rank >= Status.TESTED.rank, (d.name, s.rule, s.checks)
    assert all(k.status.rank >= Status.TESTED.rank for k in claim.confirmations)


@pytest.mark.parametrize("claim", CLAIMS, ids=[c.id for c in CLAIMS])
def test_claim_metadata(claim):
    assert claim.id == claim.id.lower() and " " not in claim.id
    assert claim.title.isascii() and "$" not in claim.title
    assert claim.lecture and all(x[0] in "LS" for x in claim.lecture)
    labels = [p.label for p in claim.probes]
    assert len(labels) == len(set(labels)) >= 2
    for p in claim.probes:
        assert p.expect in ("agrees", "disagrees")
        assert math.isfinite(p.predicted)
        assert isinstance(p.expression, sp.Basic)


def test_builders_are_in_lecture_order_and_ids_unique():
    assert [c.id for c in CLAIMS] == [
        "sigmoid-derivative",
        "taylor-identity-near-zero",
        "relu-halves-variance",
        "taylor-range-of-validity",
    ]
    assert BY_ID["relu-halves-variance"].lecture == ("L8.3", "L8.4", "S2")
    assert BY_ID["relu-halves-variance"].corrected
    assert BY_ID["taylor-range-of-validity"].qualification


# --------------------------------------------------------------------------------------
# gaussian_moment and the series


def test_relu_second_moment_is_exact_and_matches_quadrature():
    m = gaussian_moment(sp.Max(0, x) ** 2, x, q)
    assert m.exact and m.method == "sympy.integrate" and m.error == 0
    assert m.value == q / 2
    assert float(gaussian_moment(sp.Max(0, x) ** 2, x, 0.7).value) == pytest.approx(
        gauss_quad(lambda v: max(v, 0.0) ** 2, 0.7), rel=1e-10
    )


def test_relu_mean_is_exact():
    m = gaussian_moment(sp.Max(0, x), x, q)
    assert sp.simplify(m.value - sp.sqrt(q / (2 * sp.pi))) == 0


@pytest.mark.parametrize("qv", [0.01, 1.0, 3.0])
def test_tanh_second_moment_by_quadrature_matches_mpmath(qv):
    m = gaussian_moment(sp.tanh(x) ** 2, x, qv)
    assert m.method == "scipy.integrate.quad" and not m.exact
    assert 0 < m.error < 1e-10
    assert float(m) == pytest.approx(float(mp_moment(lambda v: mpmath.tanh(v) ** 2, qv)), rel=1e-11)


def test_sigmoid_derivative_moment_survives_overflow_in_the_tails():
    f = sp.diff(act.ACTIVATIONS["sigmoid"], x)  # exp(-x) overflows for x << 0
    m = gaussian_moment(f, x, 4.0)
    want = mp_moment(lambda v: mpmath.exp(-v) / (1 + mpmath.exp(-v)) ** 2, 4)
    assert float(m) == pytest.approx(float(want), rel=1e-11)


def test_diverging_moments_are_rejected_with_the_function_named():
    with pytest.raises(ValueError, match=r"diverges.*exp\(x\*\*2\)"):
        gaussian_moment(sp.exp(x**2), x, q)
    with pytest.raises(ValueError, match=r"diverges.*exp\(x\*\*2\)"):
        gaussian_moment(sp.exp(x**2), x, 1)
    with pytest.raises(ValueError, match=r"diverges.*exp\(x\*\*2\)"):
        gaussian_square_series(sp.exp(x**2 / 2), x, q, 3)
    with pytest.raises(ValueError, match=r"1/x: it is singular"):
        gaussian_moment(1 / x, x, 1)
    # below q = 1/2 the moment is finite, 1/sqrt(1 - 2q), and is not rejected
    assert float(gaussian_moment(sp.exp(x**2), x, sp.Rational(1, 10))) == pytest.approx(
        1 / math.sqrt(0.8), rel=1e-14
    )


def test_invalid_variance_is_rejected():
    with pytest.raises(ValueError, match="q"):
        gaussian_moment(x**2, x, -1)
    with pytest.raises(ValueError, match="positive=True"):
        gaussian_moment(x**2, x, sp.Symbol("s"))
    with pytest.raises(ValueError, match="no closed form"):
        gaussian_moment(sp.tanh(x) ** 2, x, q)


def test_tanh_series_and_a_wrong_coefficient_is_refuted():
    series = gaussian_square_series(sp.tanh(x), x, q, 3)
    assert series.value == q - 2 * q**2 + sp.O(q**3)
    integral = gaussian_integral(sp.tanh(x) ** 2, x, q)
    assert check_algebraic(integral, series.value, {}).status is Status.COMPUTED
    wrong = check_algebraic(integral, q - q**2 + sp.O(q**3), {})
    assert wrong.status is Status.REFUTED


def test_tanh_series_coefficients_against_mpmath():
    poly = gaussian_square_series(sp.tanh(x), x, q, 5).polynomial
    c = [poly.coeff(q, k) for k in range(5)]
    assert c == [0, 1, -2, sp.Rational(17, 3), sp.Rational(-62, 3)]
    # (E[tanh^2] - q + 2q^2)/q^3 -> 17/3 - 62/3 q + ...
    with mpmath.workdps(40):
        qv = mpmath.mpf("1e-4")
        exact = mp_moment(lambda v: mpmath.tanh(v) ** 2, qv)
        third = (exact - qv + 2 * qv**2) / qv**3
    assert float(third) == pytest.approx(17 / 3 - 62 / 3 * 1e-4, rel=1e-5)


def test_series_moments_come_from_sympy_stats():
    s = gaussian_series(x**6, x, q, 4)
    assert s.value.removeO() == 15 * q**3  # E[x^6] = 5!! q^3
    relu = gaussian_square_series(sp.Max(0, x), x, q, 3)
    assert [label for label, _ in relu.branches] == ["x >= 0", "x < 0"]
    assert relu.value == q / 2 + sp.O(q**3)


def test_relu_second_moment_lecture_version_is_refuted():
    integral = gaussian_integral(sp.Max(0, x) ** 2, x, q)
    assert check_algebraic(integral, q, {}).status is Status.REFUTED
    assert check_algebraic(integral, q / 2, {}).status is Status.PROVED


# --------------------------------------------------------------------------------------
# sigmoid-derivative


def test_sigmoid_derivative_against_finite_differences():
    c = BY_ID["sigmoid-derivative"]
    derivative = c.derivation("first derivative")
    f = sp.lambdify(x, act._explicit(derivative.result))
    for v in (-3.0, -0.5, 0.0, 1.2, 4.0):
        eps = 1e-6
        fd = (special.expit(v + eps) - special.expit(v - eps)) / (2 * eps)
        assert f(v) == pytest.approx(fd, rel=1e-8)
    maximum = c.derivation("maximum")
    assert maximum.result == sp.Rational(1, 4)
    grid = np.linspace(-10, 10, 200001)
    assert NUMPY["sigmoid"][1](grid).max() == pytest.approx(0.25, abs=1e-12)
    assert c.derivation("product bound").result == sp.Rational(1, 4) ** (act.d - act.t)
    assert c.derivation("per-layer gradient factor bound").result == sp.Rational(1, 16)


def test_sigmoid_derivative_wrong_versions_are_refuted():
    sig = act.ACTIVATIONS["sigmoid"]
    first = sp.diff(sig, x)
    assert check_algebraic(first, sig * (1 + sig), {}).status is Status.REFUTED
    assert check_algebraic(first.subs(x, 0), sp.Rational(1, 2), {}).status is Status.REFUTED


# --------------------------------------------------------------------------------------
# taylor-identity-near-zero


def test_taylor_series_against_mpmath():
    c = BY_ID["taylor-identity-near-zero"]
    results = {d.name: d.result for d in c.derivations}
    with mpmath.workdps(30):
        for name, func in (
            ("sigmoid: series at 0", lambda v: 1 / (1 + mpmath.exp(-v))),
            ("tanh: series at 0", mpmath.tanh),
            ("scaled_sigmoid: series at 0", lambda v: 4 / (1 + mpmath.exp(-v)) - 2),
        ):
            want = mpmath.taylor(func, 0, 4)
            got = [results[name].removeO().coeff(x, k) for k in range(5)]
            assert [float(g) for g in got] == pytest.approx([float(w) for w in want], abs=1e-20)


def test_scaled_sigmoid_is_twice_tanh_of_half():
    grid = np.linspace(-20, 20, 4001)
    assert np.allclose(4 * special.expit(grid) - 2, 2 * np.tanh(grid / 2), rtol=0, atol=1e-14)
    c = BY_ID["taylor-identity-near-zero"]
    assert sp.Eq(act.DISPLAY["scaled_sigmoid"], 2 * sp.tanh(x / 2)) in c.conditions


def test_values_and_slopes_at_zero():
    c = BY_ID["taylor-identity-near-zero"]
    r = {d.name: d.result for d in c.derivations}
    assert (r["sigmoid: value at 0"], r["sigmoid: slope at 0"]) == (
        sp.Rational(1, 2),
        sp.Rational(1, 4),
    )
    assert (r["tanh: value at 0"], r["tanh: slope at 0"]) == (0, 1)
    assert (r["scaled_sigmoid: value at 0"], r["scaled_sigmoid: slope at 0"]) == (0, 1)
    # relu: one-sided derivatives from finite differences
    eps = 1e-8
    relu = NUMPY["relu"][0]
    assert float(r["relu: + derivative at 0"]) == (relu(eps) - relu(0.0)) / eps == 1.0
    assert float(r["relu: - derivative at 0"]) == (relu(0.0) - relu(-eps)) / eps == 0.0
    assert r["relu: series on x >= 0"] == sp.Symbol("x", nonnegative=True)
    assert r["relu: series on x < 0"] == 0


# --------------------------------------------------------------------------------------
# taylor-range-of-validity


def test_validity_bounds_against_mpmath_root_finding():
    bounds = act.validity_bounds()
    funcs = {
        "tanh": lambda v: mpmath.tanh(v) ** 2,
        "scaled_sigmoid": lambda v: (4 / (1 + mpmath.exp(-v)) - 2) ** 2,
    }
    for name, f in funcs.items():
        for eps in (0.01, 0.05):
            guess = bounds[name][f"{eps:.0%}"]
            with mpmath.workdps(25):
                root = mpmath.findroot(
                    lambda s, f=f, eps=eps: mp_moment(f, s) / s - (1 - eps), guess
                )
            assert guess == pytest.approx(float(root), rel=1e-9)
    tb, sb = bounds["tanh"], bounds["scaled_sigmoid"]
    assert tb["1%"] == pytest.approx(0.0050716, rel=1e-4)
    assert (tb["1% first order"], sb["1% first order"]) == pytest.approx((0.005, 0.02))
    # the first-order bound is too pessimistic (c_2 > 0); more terms get close
    for row in (tb, sb):
        for key in ("1%", "5%"):
            assert row[f"{key} first order"] < row[key]
            assert row[f"{key} series"] == pytest.approx(row[key], rel=1e-2)
    # and the derived numbers are the ones the claim states
    c = BY_ID["taylor-range-of-validity"]
    assert f"{tb['1%']:.3g}" in c.qualification and f"{tb['5%']:.3g}" in c.qualification


def test_scaled_sigmoid_expansion_matches_tanh_form():
    a = gaussian_square_series(act.ACTIVATIONS["scaled_sigmoid"], x, q, 5).value
    b = gaussian_square_series(2 * sp.tanh(x / 2), x, q, 5).value
    assert a == b
    assert a.removeO().coeff(q, 2) == sp.Rational(-1, 2)


def test_series_residual_scaling_would_catch_a_wrong_coefficient():
    # with c_2 = -1 (wrong) the residual at q = 0.01 is dominated by -q^2, ratio ~ 4, not 8
    moment = lambda qv: float(mp_moment(lambda v: mpmath.tanh(v) ** 2, qv))  # noqa: E731
    good = [moment(s) - (s - 2 * s**2) for s in (0.01, 0.005)]
    bad = [moment(s) - (s - s**2) for s in (0.01, 0.005)]
    assert good[0] / good[1] == pytest.approx(8, rel=0.0365)
    assert abs(bad[0] / bad[1] / 8 - 1) > 0.4


# --------------------------------------------------------------------------------------
# relu-halves-variance


def test_relu_recursion_and_he_fix():
    c = BY_ID["relu-halves-variance"]
    r = {d.name: d.result for d in c.derivations}
    assert r["second moment"] == q / 2
    assert r["per-layer factor under Xavier"] == sp.Rational(1, 2)
    assert r["per-layer factor under He"] == 1
    assert sp.Eq(act.gamma, 2 / act.n_prev) in c.conditions
    # wrong fan or constant: not a fixed point
    factor = act.gamma * act.n_prev / 2
    assert factor.subs(act.gamma, 1 / act.n_prev) != 1


# --------------------------------------------------------------------------------------
# probes


def _all_probes():
    return [(c.id, p) for c in CLAIMS for p in c.probes]


@pytest.mark.parametrize(
    "cid,probe", _all_probes(), ids=[f"{c}/{p.label}" for c, p in _all_probes()]
)
def test_probe_scenarios_follow_the_contract(cid, probe):
    sc, ob = probe.scenario, probe.observable
    if sc["kind"] == "scalar":
        assert sc["activation"] in NUMPY and sc["function"] in ("value", "derivative")
        assert sc["q"] > 0 and ob["moment"] in ("mean", "var", "m2")
    else:
        assert sc["kind"] == "mlp"
        assert max(sc["widths"]) <= 512 and len(sc["widths"]) - 1 <= 50
        assert sc["weights"]["law"] == "normal" and isinstance(sc["weights"]["std"], float)
        assert ob["direction"] in ("forward", "backward") and ob["moment"] == "m2"
        assert 0 <= ob["layer"] < len(sc["widths"]) and "relative_to" in ob


@pytest.mark.parametrize(
    "cid,probe", _all_probes(), ids=[f"{c}/{p.label}" for c, p in _all_probes()]
)
def test_scalar_probe_predictions_are_exact(cid, probe):
    sc, ob = probe.scenario, probe.observable
    if sc["kind"] != "scalar":
        return
    value, slope = NUMPY[sc["activation"]]
    f = value if sc["function"] == "value" else slope
    power = 2 if ob["moment"] == "m2" else 1
    exact = gauss_quad(lambda v: f(v) ** power, sc["q"])
    # the prediction is the claim's expression with the scenario's q substituted
    substituted = evaluate(act._explicit(probe.expression).subs(q, sc["q"]))
    assert probe.predicted == pytest.approx(substituted, rel=1e-13, abs=1e-16)
    if probe.expect == "agrees":
        assert probe.predicted == pytest.approx(exact, rel=1e-9, abs=1e-14)
    else:  # the lecture's "unchanged": E[f(x)^2] = q, off by far more than 1%
        assert probe.predicted == sc["q"]
        assert abs(probe.predicted / exact - 1) > 0.5


def _mean_field_numpy(f, n, std, m0, depth):
    m = [m0]
    for _ in range(depth):
        m.append(gauss_quad(lambda v: f(v) ** 2, n * std**2 * m[-1]))
    return m


def test_network_probe_predictions_are_near_an_independent_mean_field():
    """The finite-width predictions (exact values in test_predictions.py) stay within 1% of
    the infinite-width mean field computed here independently, and relu's are exact."""
    checked = 0
    for c in CLAIMS:
        for p in c.probes:
            sc, ob = p.scenario, p.observable
            if sc["kind"] != "mlp":
                continue
            n, std, depth = sc["widths"][1], sc["weights"]["std"], len(sc["widths"]) - 1
            name = sc["activation"]
            if name == "relu":
                want = n * std**2 / 2  # E[relu(z)^2] = E[z^2]/2 at every width
                if p.expect == "disagrees":
                    want = n * std**2  # the lecture's identity reading
            elif p.expect == "disagrees":
                want = 1.0
            else:
                f, fprime = NUMPY[name]
                m = _mean_field_numpy(f, n, std, sc["input"]["std"] ** 2, depth)
                if ob["direction"] == "forward":
                    layer = ob["layer"]
                    want = m[layer] / m[layer - 1]
                else:
                    layer = ob["relative_to"]
                    qt = n * std**2 * m[layer - 1]
                    want = n * std**2 * gauss_quad(lambda v, g=fprime: g(v) ** 2, qt)
            exact = name == "relu" or p.expect == "disagrees"
            assert p.predicted == pytest.approx(want, rel=1e-9 if exact else 1e-2), (c.id, p.label)
            checked += 1
    assert checked == 8


def test_relu_network_probes_expect_the_lecture_to_fail():
    c = BY_ID["relu-halves-variance"]
    probes = {p.label: p for p in c.probes}
    assert probes["xavier-preactivation-ratio"].predicted == 0.5
    assert probes["he-preactivation-ratio"].predicted == 1.0
    assert probes["he-preactivation-ratio"].scenario["weights"]["std"] == pytest.approx(
        math.sqrt(2 / 256)
    )
    lecture = probes["lecture-xavier-preactivation-ratio"]
    assert lecture.expect == "disagrees" and lecture.predicted == 1.0
