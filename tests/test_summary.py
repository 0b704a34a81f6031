"""Small initialization with depth (L4.1, L4.2) and the lecture summary (L8.5)."""

import math

import numpy as np
import pytest
import sympy as sp
from scipy import integrate
from scipy import stats as sst

from derivations import Status, check_algebraic
from derivations import _summary as S
from derivations._forward import gamma, n_prev, v_prev

CLAIMS = {build.__name__: build() for build in S.BUILDERS}
SMALL = CLAIMS["small_init_depth"]
SUMMARY = CLAIMS["lecture_summary"]


def _results(claim):
    return {d.name: d.result for d in claim.derivations}


def _gaussian_m2(f, q):
    """E[f(x)^2], x ~ N(0, q), by scipy quad directly (not through derivations)."""
    value, _ = integrate.quad(
        lambda z: f(math.sqrt(q) * z) ** 2 * math.exp(-z * z / 2) / math.sqrt(2 * math.pi),
        -np.inf,
        np.inf,
        epsabs=0,
        epsrel=1e-12,
        limit=200,
    )
    return value


def _scaled_sigmoid(v):
    return 4 / (1 + math.exp(-v)) - 2 if v > -700 else -2.0


# --------------------------------------------------------------------------- both claims


def test_builders_ids_and_lecture_items():
    assert [c.id for c in CLAIMS.values()] == ["small-init-depth", "lecture-summary"]
    assert SMALL.lecture == ("L4.1", "L4.2")
    assert SUMMARY.lecture == ("L8.5",)
    assert all(c.title.isascii() and "$" not in c.title for c in CLAIMS.values())


@pytest.mark.parametrize("name", list(CLAIMS))
def test_every_step_is_decided(name):
    """Every step is proved, computed or tested (never undecided or refuted), and the
    claim is as strong as its weakest step."""
    claim = CLAIMS[name]
    weakest = min((s.status for d in claim.derivations for s in d.steps), key=lambda s: s.rank)
    assert claim.status is weakest and weakest.rank >= Status.TESTED.rank, claim.status
    for d in claim.derivations:
        assert d.steps, d.name
        for s in d.steps:
            assert s.status.rank >= Status.TESTED.rank, (d.name, s.rule, s.checks)
    assert all(k.status.rank >= Status.TESTED.rank for k in claim.confirmations)


def test_verdict_fields():
    assert SMALL.qualification and SMALL.corrected is None
    assert SUMMARY.corrected and SUMMARY.qualification is None
    assert "2/n" not in SUMMARY.corrected  # rendered by sp.latex, not typed
    assert r"\frac{2}{n_{t-1}}" in SUMMARY.corrected


@pytest.mark.parametrize("name", list(CLAIMS))
def test_probes_have_both_expectations(name):
    probes = CLAIMS[name].probes
    assert {p.expect for p in probes} == {"agrees", "disagrees"}
    assert len({p.label for p in probes}) == len(probes)
    for p in probes:
        assert p.scenario["kind"] == "mlp"
        assert max(p.scenario["widths"]) <= 512 and len(p.scenario["widths"]) <= 51
        assert set(p.scenario["weights"]) == {"law", "std"}  # native parameter, no variance


# --------------------------------------------------------------------------- L4.1, L4.2


def test_depth_results_and_factors():
    r = _results(SMALL)
    d = S.d
    assert sp.simplify(r["linear: d layers"] - v_prev * (n_prev * gamma) ** d) == 0
    assert sp.simplify(r["relu: d layers"] - v_prev * (n_prev * gamma / 2) ** d) == 0
    assert r["linear: per-layer factor at n = 256, std 0.01"] == sp.Rational(16, 625)
    assert float(r["linear: per-layer factor at n = 256, std 0.01"]) == pytest.approx(
        256 * 0.01**2, rel=1e-15
    )
    assert float(r["linear: per-layer factor at n = 256, variance 0.01"]) == pytest.approx(
        256 * 0.01, rel=1e-15
    )
    assert float(r["relu: per-layer factor at n = 256, std 0.01"]) == pytest.approx(
        256 * 0.01**2 / 2, rel=1e-15
    )


def test_wrong_depth_versions_refuted():
    r = _results(SMALL)
    d = S.d
    wrong = (
        v_prev * (n_prev * gamma) ** (d - 1),  # one layer short
        v_prev * (n_prev * gamma) ** d,  # relu without the half
        v_prev,  # the lecture's constant variance
    )
    for target, w in zip(("linear", "relu", "linear"), wrong, strict=True):
        if target == "relu":
            assert check_algebraic(r["relu: d layers"], w, {}).status is Status.REFUTED
        else:
            assert check_algebraic(r["linear: d layers"], w, {}).status is Status.REFUTED


def test_depth_table_against_numpy():
    table = S.underflow_depths()
    for (act, n, dtype), depth in table.items():
        factor = n * 0.01**2 / (2 if act == "relu" else 1)
        level = np.finfo(np.dtype(dtype)).tiny
        # smallest integer d with sqrt(factor^d) < level, searched in log space
        expected = next(k for k in range(1, 10_000) if 0.5 * k * math.log(factor) < math.log(level))
        assert depth == expected, (act, n, dtype)
    assert table[("linear", 256, "float32")] == 48
    # the second moment (not the RMS) would cross at about half the depth: a different value
    assert math.ceil(math.log(np.finfo(np.float32).tiny) / math.log(0.0256)) != 48


def test_crossing_root_and_critical_widths():
    conds = {str(c.lhs): c.rhs for c in SMALL.conditions}
    root = conds[r"d^*_{\mathrm{linear}}"]
    value = float(root.subs({n_prev: 256, gamma: sp.Rational(1, 10**4), v_prev: 1, S.eps: 1e-10}))
    assert 0.5 * value * math.log(0.0256) == pytest.approx(math.log(1e-10), rel=1e-12)
    assert conds[r"n^*_{\mathrm{linear}, \mathrm{std}}"] == round(1 / 0.01**2)
    assert conds[r"n^*_{\mathrm{linear}, \mathrm{variance}}"] == round(1 / 0.01)
    assert conds[r"n^*_{\mathrm{relu}, \mathrm{std}}"] == round(2 / 0.01**2)
    assert conds[r"n^*_{\mathrm{relu}, \mathrm{variance}}"] == round(2 / 0.01)


def test_depth_probe_predictions_equal_substitution():
    for p in SMALL.probes:
        sc, obs = p.scenario, p.observable
        n, std = sc["widths"][0], sc["weights"]["std"]
        depth = len(sc["widths"]) - 1
        values = {n_prev: n, gamma: sp.nsimplify(std) ** 2, S.d: depth}
        assert p.predicted == pytest.approx(float(p.expression.subs(values)), rel=1e-12)
        if p.expect == "disagrees":
            assert p.predicted == 1.0
            continue
        half = 2 if sc["activation"] == "relu" else 1
        assert p.predicted == pytest.approx((n * std**2 / half) ** depth, rel=1e-12)
        layers = {obs["layer"], obs.get("relative_to")}
        assert layers == {0, depth}


def test_depth_probes_against_numpy_simulation():
    """Seeded Monte Carlo of small networks: the depth formula, not the constant variance."""
    rng = np.random.default_rng(20240611)
    n, depth, std, reps = 64, 3, 0.05, 400
    for act, half in (("linear", 1), ("relu", 2)):
        ratios = []
        for _ in range(reps):
            h = rng.standard_normal((n, 32))
            m0 = np.mean(h**2)
            for _ in range(depth):
                h = rng.normal(0, std, (n, n)) @ h
                if act == "relu":
                    h = np.maximum(h, 0)
            ratios.append(np.mean(h**2) / m0)
        ratios = np.array(ratios)
        predicted = (n * std**2 / half) ** depth
        se = ratios.std(ddof=1) / math.sqrt(reps)
        assert abs(ratios.mean() - predicted) < 4 * se + 0.02 * predicted
        assert abs(ratios.mean() - 1.0) > 10 * se  # the lecture's constant variance fails


# --------------------------------------------------------------------------- L8.5


def test_series_coefficients_against_quadrature():
    conds = {str(c.lhs): c.rhs for c in SUMMARY.conditions}
    tanh_series = conds[r"\chi_{\tanh}(q)"].removeO()
    scaled_series = conds[r"\chi_{4\sigma - 2}(q)"].removeO()
    q = S.q
    assert tanh_series == 1 - 2 * q
    assert scaled_series == 1 - q / 2
    small = 1e-3
    for f, series in ((math.tanh, tanh_series), (_scaled_sigmoid, scaled_series)):
        slope = (_gaussian_m2(f, small) / small - 1) / small
        assert slope == pytest.approx(float(series.coeff(q, 1)), abs=0.02)
    # a wrong coefficient is refuted by the series check
    wrong = 1 - q + sp.O(q**2)
    tanh_chain = next(d for d in SUMMARY.derivations if d.name.startswith("tanh: per-layer"))
    assert check_algebraic(tanh_chain.steps[-1].after, wrong, {}).status is Status.REFUTED


def test_values_at_q1_against_scipy():
    values = S.summary_values()
    assert values["tanh"]["infinite"] == pytest.approx(_gaussian_m2(math.tanh, 1.0), rel=1e-10)
    assert values["scaled_sigmoid"]["infinite"] == pytest.approx(
        _gaussian_m2(_scaled_sigmoid, 1.0), rel=1e-10
    )
    assert _gaussian_m2(lambda v: max(v, 0.0), 1.0) == pytest.approx(0.5, rel=1e-10)
    assert values["tanh"]["infinite"] < 0.4 and values["scaled_sigmoid"]["infinite"] < 0.7


def _finite_width_independent(f, n, g, s2=1.0):
    """E_U[F(g s2 U)], U ~ chi2_n, by Gauss-Hermite inside and scipy.stats chi2 outside."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(160)
    weights = weights / math.sqrt(2 * math.pi)
    fv = np.vectorize(f)

    def big_f(qv):
        return float(np.sum(weights * fv(math.sqrt(qv) * nodes) ** 2))

    lo, hi = sst.chi2.ppf(1e-15, n), sst.chi2.isf(1e-15, n)
    value, _ = integrate.quad(
        lambda uu: big_f(g * s2 * uu) * sst.chi2.pdf(uu, n), lo, hi, epsrel=1e-11, limit=200
    )
    return n * g * value / (n * g * s2)


def test_finite_width_probe_values_independent():
    n, g = S.WIDTH, 1 / S.WIDTH
    values = S.summary_values()
    for name, f in (("tanh", math.tanh), ("scaled_sigmoid", _scaled_sigmoid)):
        exact = _finite_width_independent(f, n, g)
        assert values[name]["finite"] == pytest.approx(exact, rel=1e-8)
        # the infinite-width value is biased by Jensen (F concave): a different number
        gap = values[name]["finite"] / values[name]["infinite"] - 1
        assert -3e-3 < gap < -1e-3


def test_evaluate_nested_on_relu_is_exactly_half():
    expr = S.finite_width_expression("relu").subs({n_prev: 256, gamma: sp.Rational(1, 256)})
    assert S.evaluate_nested(expr.subs(S.s2, 1)) == pytest.approx(0.5, rel=1e-9)
    assert S.evaluate_nested(expr.subs(S.s2, sp.Rational(1, 4))) == pytest.approx(0.5, rel=1e-9)


def test_relu_factors_and_wrong_versions():
    r = _results(SUMMARY)
    assert r["relu: per-layer factor"] == n_prev * gamma / 2
    assert r["relu: per-layer factor under Xavier"] == sp.Rational(1, 2)
    assert r["relu: per-layer factor under He"] == 1
    assert S.xavier_equal_widths() == 1 / n_prev
    conds = {str(c.lhs): c.rhs for c in SUMMARY.conditions}
    assert conds["gamma_t"] == 2 / n_prev
    # Xavier's factor 1 for relu (the lecture's reading) is refuted
    subs = {gamma: 1 / n_prev}
    assert check_algebraic(r["relu: per-layer factor"], 1, subs).status is Status.REFUTED


def test_summary_probe_predictions_equal_substitution():
    for p in SUMMARY.probes:
        sc = p.scenario
        n, std = sc["widths"][0], sc["weights"]["std"]
        values = {n_prev: n, gamma: sp.nsimplify(std**2)}
        if p.expression.has(sp.Integral):
            want = S.evaluate_nested(p.expression.subs({**values, S.s2: 1}))
        else:
            want = float(p.expression.subs(values))
        assert p.predicted == pytest.approx(want, rel=1e-9), p.label
        assert p.observable == {
            "direction": "forward",
            "of": "preactivation",
            "moment": "m2",
            "layer": 2,
            "relative_to": 1,
        }
        if p.expect == "disagrees":
            assert p.predicted == 1.0
            agrees = next(o for o in SUMMARY.probes if o.label == p.label[len("lecture-") :])
            assert abs(agrees.predicted - 1.0) > 0.25
    he = next(p for p in SUMMARY.probes if p.label == "relu-he-factor-q1")
    assert he.scenario["weights"]["std"] == pytest.approx(math.sqrt(2 / 256), rel=1e-15)
