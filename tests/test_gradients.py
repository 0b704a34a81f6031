"""Gradients, exploding and vanishing products, residual layers and clipping.

Every derived value is held against an independent computation (finite differences,
SciPy special functions and quadrature, exact Python arithmetic, NumPy simulation
with a fixed seed), and wrong versions are shown to be refuted.
"""

import math
import time
from fractions import Fraction

import numpy as np
import pytest
import scipy.integrate
import scipy.special
import scipy.stats
import sympy as sp

from derivations import Status, check_algebraic
from derivations import _gradients as g

BUILT = {}
for _build in g.BUILDERS:
    _start = time.perf_counter()
    BUILT[_build.__name__] = (_build(), time.perf_counter() - _start)
CLAIMS = [c for c, _ in BUILT.values()]


def claim(name):
    return BUILT[name][0]


def derivation(c, name):
    (d,) = [d for d in c.derivations if d.name == name]
    return d


# --------------------------------------------------------------------------- all claims


@pytest.mark.parametrize("c", CLAIMS, ids=[c.id for c in CLAIMS])
def test_claim_is_decided(c):
    """Every step is proved, computed or tested (never undecided or refuted), and the
    claim is as strong as its weakest step."""
    weakest = min((s.status for d in c.derivations for s in d.steps), key=lambda s: s.rank)
    assert c.status is weakest and weakest.rank >= Status.TESTED.rank, c.status
    for d in c.derivations:
        assert d.steps, d.name
        for s in d.steps:
            assert s.status.rank >= Status.TESTED.rank, (d.name, s.rule, s.checks)
    assert all(k.status.rank >= Status.TESTED.rank for k in c.confirmations)


@pytest.mark.parametrize("c", CLAIMS, ids=[c.id for c in CLAIMS])
def test_claim_metadata(c):
    assert c.id == c.id.lower() and " " not in c.id
    assert c.title.isascii() and "$" not in c.title
    assert c.lecture and all(x[0] in "LS" for x in c.lecture)
    assert len(c.probes) >= 2
    assert len({p.label for p in c.probes}) == len(c.probes)
    assert all(p.expect in ("agrees", "disagrees") for p in c.probes)
    assert all(math.isfinite(p.predicted) for p in c.probes)


def test_builders_in_lecture_order_and_fast():
    assert [c.lecture[0] for c in CLAIMS] == ["L1.1", "L1.2", "L2.2", "L3.1"]
    assert len({c.id for c in CLAIMS}) == len(CLAIMS)
    for name, (_, seconds) in BUILT.items():
        assert seconds < 30, f"{name} took {seconds:.1f} s"


# --------------------------------------------------------------------------- mlp-jacobian


def _numeric(expr, subs_values, act=np.tanh):
    """Evaluate a SymPy matrix with sigma = tanh at numeric symbol values."""
    e = sp.ImmutableMatrix(sp.sympify(expr).doit())
    e = e.replace(g.SigmaPrime, lambda x: 1 - sp.tanh(x) ** 2).replace(g.Sigma, sp.tanh)
    symbols = sorted(e.free_symbols, key=str)
    f = sp.lambdify(symbols, e, "numpy")
    return np.array(f(*[subs_values[s] for s in symbols]), dtype=float)


def test_derived_jacobians_match_finite_differences():
    net = g.jacobian_network()
    rng = np.random.default_rng(1)
    values = {s: rng.standard_normal() for m in (net["h0"], net["W1"], net["W2"]) for s in m}
    w1 = np.array(net["W1"].subs(values), dtype=float)
    w2 = np.array(net["W2"].subs(values), dtype=float)
    h0 = np.array(net["h0"].subs(values), dtype=float).ravel()
    c = claim("mlp_jacobian")

    def fd(f, x, eps=1e-6):
        return np.stack(
            [(f(x + eps * e) - f(x - eps * e)) / (2 * eps) for e in np.eye(x.size)], axis=1
        )

    layer = _numeric(derivation(c, "layer Jacobian (3 -> 2)").result, values)
    assert layer.shape == (2, 3)
    np.testing.assert_allclose(layer, fd(lambda x: np.tanh(w1 @ x), h0), atol=1e-8)
    chain = _numeric(derivation(c, "chain rule (3 -> 2 -> 4)").result, values)
    assert chain.shape == (4, 3)
    np.testing.assert_allclose(chain, fd(lambda x: np.tanh(w2 @ np.tanh(w1 @ x)), h0), atol=1e-8)
    grad = _numeric(derivation(c, "loss gradient w.r.t. h^0").result, values)

    def loss(x):
        return np.array([0.5 * np.sum(np.tanh(w2 @ np.tanh(w1 @ x)) ** 2)])

    np.testing.assert_allclose(grad, fd(loss, h0), atol=1e-8)


def test_numeric_cross_check_backward_pass_and_slide():
    errors = g.numeric_jacobian_check(seed=3)
    for key in ("layer", "chain", "backward_h0", "backward_W1", "correct_square"):
        assert errors[key] < 1e-7, (key, errors[key])
    assert errors["slide_nonsquare"] == math.inf  # shapes do not match
    assert errors["slide_square"] > 1e-2  # the transposed form is a different matrix


def test_transposed_jacobian_is_refuted():
    shapes, square = g.lecture_jacobian_comparison()
    assert shapes.status is Status.REFUTED and "2x2" in shapes.detail and "3x2" in shapes.detail
    assert square.status is Status.REFUTED
    # the same comparison with a generic activation and symmetric weights is not refuted
    n = 3
    h = g._vector("h", n)
    w = sp.Matrix(n, n, lambda a, b: sp.Symbol(f"s_{min(a, b)}{max(a, b)}"))
    z = w * h
    jac = z.applyfunc(g.Sigma).jacobian(h)
    assert check_algebraic(jac, g._diag_derivative(g.Sigma, z) * w.T, {}).status is Status.PROVED


def test_chain_rule_in_the_wrong_order_is_refuted():
    n = 3
    h = g._vector("h", n)
    w1, w2 = g._weights(1, n, n), g._weights(2, n, n)
    composed = (w2 * (w1 * h)).jacobian(h)  # linear activation
    assert check_algebraic(composed, w2 * w1, {}).status is Status.PROVED
    assert check_algebraic(composed, w1 * w2, {}).status is Status.REFUTED
    net = g.jacobian_network()
    j1 = net["h1"].jacobian(net["h0"])
    j2 = g._diag_derivative(g.Sigma, net["z2"]) * net["W2"]
    with pytest.raises(sp.ShapeError):
        j1 * j2


def test_backward_second_moment_and_probes():
    c = claim("mlp_jacobian")
    backward = derivation(c, "backward variance")
    assert sp.simplify(backward.result - g.N_T * g.GAMMA * g.V_G) == 0
    # wrong fan: the fan-in n_{t-1} is refuted as the result
    wrong = check_algebraic(backward.result, g.N_PREV * g.GAMMA * g.V_G, {})
    assert wrong.status is Status.REFUTED
    for p in c.probes:
        sc = p.scenario
        assert sc["kind"] == "mlp" and sc["activation"] == "linear"
        widths, layer = sc["widths"], p.observable["layer"]
        var_w = sc["weights"]["std"] ** 2
        assert p.observable["direction"] == "backward"
        fan_out, fan_in = widths[layer + 1], widths[layer]
        if p.expect == "disagrees":
            assert p.predicted == pytest.approx(fan_in * var_w)
            assert fan_in != fan_out
        elif "relative_to" in p.observable:
            assert p.observable["relative_to"] == layer + 1
            assert p.predicted == pytest.approx(fan_out * var_w)
        else:
            up = sc["upstream"]["std"] ** 2
            assert p.predicted == pytest.approx(
                math.prod(widths[1:]) * var_w ** (len(widths) - 1) * up
            )
        assert p.predicted == pytest.approx(
            float(p.expression.subs({g.N_T: fan_out, g.N_PREV: fan_in, g.GAMMA: var_w, g.V_G: 1}))
        )


def test_backward_variance_by_simulation():
    rng = np.random.default_rng(7)
    n_prev, n_t, std, reps = 128, 32, 1 / 8, 4000
    w = rng.standard_normal((reps, n_t, n_prev)) * std
    up = rng.standard_normal((reps, n_t, 1))
    grad = np.swapaxes(w, 1, 2) @ up  # g^{t-1} = (W^t)^T g^t
    assert grad.var() == pytest.approx(n_t * std**2, rel=0.03)
    assert abs(grad.var() - n_prev * std**2) > 1.0


# --------------------------------------------------------------------------- gaussian-products


def _lambdify(expr, *symbols):
    return sp.lambdify(symbols, expr, modules=["scipy", "numpy"])


def test_log_chi_square_moments_against_scipy():
    c = claim("gaussian_products")
    mean = derivation(c, "mean of log chi-square").result
    var = derivation(c, "variance of log chi-square").result
    for n in range(1, 11):
        want_mean = math.log(2) + scipy.special.digamma(n / 2)
        want_var = scipy.special.polygamma(1, n / 2)
        assert float(mean.subs(g.N_DOF, n)) == pytest.approx(want_mean, rel=1e-12, abs=1e-12)
        assert float(var.subs(g.N_DOF, n)) == pytest.approx(want_var, rel=1e-12)
    for n in (3, 4, 7):
        dist = scipy.stats.chi2(n)
        m1 = scipy.integrate.quad(lambda x, f=dist.pdf: math.log(x) * f(x), 0, np.inf)[0]
        m2 = scipy.integrate.quad(lambda x, f=dist.pdf: math.log(x) ** 2 * f(x), 0, np.inf)[0]
        assert float(mean.subs(g.N_DOF, n)) == pytest.approx(m1, rel=1e-7)
        assert float(var.subs(g.N_DOF, n)) == pytest.approx(m2 - m1**2, rel=1e-7)


def test_wrong_digamma_argument_is_refuted():
    mean = derivation(claim("gaussian_products"), "mean of log chi-square").result
    wrong = sp.log(2) + sp.polygamma(0, g.N_DOF)
    assert check_algebraic(mean, wrong, {}).status is Status.REFUTED
    assert check_algebraic(mean, sp.polygamma(0, g.N_DOF / 2), {}).status is Status.REFUTED


def test_moment_function_matches_scipy():
    moment = derivation(claim("gaussian_products"), "moment function of chi-square").result
    s = sp.Symbol("s", nonnegative=True)
    for n, power in ((4, 0.5), (5, 1.0), (64, 2.0)):
        assert float(moment.subs({g.N_DOF: n, s: power})) == pytest.approx(
            scipy.stats.chi2(n).expect(lambda x, p=power: x**p), rel=1e-8
        )


def test_gaussian_products_by_simulation():
    c = claim("gaussian_products")
    mean = derivation(c, "mean log growth").result
    var = derivation(c, "variance of log growth").result
    rng = np.random.default_rng(2024)
    n, depth, samples, std = 4, 20, 40000, 1.0
    x = np.zeros((samples, n))
    x[:, 0] = 1.0
    log_growth = np.zeros(samples)
    for _ in range(depth):
        w = rng.standard_normal((samples, n, n)) * std
        x = np.einsum("sij,sj->si", w, x)
        norm = np.linalg.norm(x, axis=1)
        log_growth += np.log(norm)
        x /= norm[:, None]
    values = {g.N_DOF: n, g.SIGMA_W: std, g.DEPTH: depth}
    want_mean, want_var = float(mean.subs(values)), float(var.subs(values))
    se = math.sqrt(want_var / samples)
    assert abs(log_growth.mean() - want_mean) < 5 * se
    assert log_growth.var() == pytest.approx(want_var, rel=0.05)
    # the typical growth is far below the mean-square growth
    m2 = float(derivation(c, "mean-square growth").result.subs(values))
    assert math.exp(2 * log_growth.mean()) < m2 / 100


def test_product_probes_follow_the_formulas():
    c = claim("gaussian_products")
    for p in c.probes:
        sc = p.scenario
        n, s, d = sc["n"], sc["std"], sc["depth"]
        if p.observable["quantity"] == "log_growth":
            if p.observable["moment"] == "mean":
                want = d * (math.log(s) + 0.5 * (math.log(2) + scipy.special.digamma(n / 2)))
            else:
                want = d * scipy.special.polygamma(1, n / 2) / 4
        else:
            want = (n * s**2) ** d
        assert p.predicted == pytest.approx(want, rel=1e-12, abs=1e-12)
        exact = {g.N_DOF: n, g.SIGMA_W: sp.nsimplify(s), g.DEPTH: d}
        assert p.predicted == float(p.expression.subs(exact))


def test_d2l_demo_prediction():
    c = claim("gaussian_products")
    demo = derivation(c, "D2L demo: E log|M_ij| after 101 factors").result
    want = 101 * 0.5 * (math.log(2) + scipy.special.digamma(2)) + 0.5 * (
        scipy.special.digamma(0.5) - scipy.special.digamma(2)
    )
    assert float(demo) == pytest.approx(want, rel=1e-12)
    assert derivation(c, "D2L demo: decade of a typical entry").result == 23
    # the D2L experiment itself, repeated: the median log10 |entry| is near 24
    rng = np.random.default_rng(0)
    logs = []
    for _ in range(400):
        m = rng.standard_normal((4, 4))
        scale = 0.0
        for _ in range(100):
            m = m @ rng.standard_normal((4, 4))
            top = np.abs(m).max()
            scale += math.log(top)
            m /= top
        logs.extend((np.log(np.abs(m)) + scale).ravel())
    assert np.mean(logs) / math.log(10) == pytest.approx(float(demo) / math.log(10), abs=0.3)


def test_relative_variance_of_the_squared_growth():
    rel = derivation(
        claim("gaussian_products"), "relative second moment of the squared growth"
    ).result
    assert rel.subs({g.N_DOF: 4, g.DEPTH: 1}) == Fraction(3, 2)
    # chi2_n: E[X^2]/E[X]^2 = (2n + n^2)/n^2
    for n in (1, 4, 64):
        assert float(rel.subs({g.N_DOF: n, g.DEPTH: 1})) == pytest.approx(
            scipy.stats.chi2(n).moment(2) / n**2
        )


# --------------------------------------------------------------------------- float-range


def _threshold_depth(c: Fraction, bound: Fraction) -> int:
    """Smallest d with c^d beyond the bound (above for c > 1, at or below for c < 1)."""
    d, x = 0, Fraction(1)
    while (x < bound) if c > 1 else (x > bound):
        d += 1
        x *= c
    return d


def test_lecture_numbers_exactly():
    c = claim("float_range")
    big, small = Fraction(3, 2) ** 100, Fraction(4, 5) ** 100
    k_big = math.floor(math.log10(1.5**100))
    k_small = math.floor(math.log10(0.8**100))
    got = [
        int(derivation(c, f"{factor}: {part}").result)
        for factor in ("1.5^100", "0.8^100")
        for part in ("decade", "leading digit")
    ]
    assert got == [
        k_big,
        math.floor(big / Fraction(10) ** k_big),
        k_small,
        math.floor(small / Fraction(10) ** k_small),
    ]
    assert got == [17, 4, -10, 2]


def test_float_limits_match_numpy():
    c = claim("float_range")
    for dt in ("float16", "float32"):
        info = np.finfo(dt)
        d = derivation(c, f"{dt} max, smallest normal, smallest subnormal")
        want = [float(info.max), float(info.tiny), float(info.smallest_subnormal)]
        assert [float(x) for x in d.result] == want
        # a wrong constant (the lecture's rounded 6e4) is refuted
        wrong = sp.Matrix([60000, d.result[1], d.result[2]])
        assert check_algebraic(d.start, wrong, {}).status is Status.REFUTED


def test_threshold_depths_against_exact_iteration():
    c = claim("float_range")
    got = [int(x) for x in derivation(c, g.THRESHOLD_NAME).result]
    f16, f32 = np.finfo(np.float16), np.finfo(np.float32)
    up, down = Fraction(3, 2), Fraction(4, 5)
    want = [
        _threshold_depth(up, Fraction(float(f16.max))),
        _threshold_depth(up, Fraction(float(f32.max))),
        _threshold_depth(down, Fraction(float(f16.tiny))),
        _threshold_depth(down, Fraction(float(f16.smallest_subnormal))),
        _threshold_depth(down, Fraction(float(f32.tiny))),
        _threshold_depth(down, Fraction(float(f32.smallest_subnormal))),
    ]
    assert got == want
    with np.errstate(over="ignore"):
        assert np.isinf(np.float16(1.5) ** np.float16(got[0]))
        assert np.isfinite(np.float16(1.5) ** np.float16(got[0] - 1))


def test_overflow_bound_and_simulation():
    expr, values = g.overflow_bound()
    n = g.OVERFLOW_WIDTH
    t = float(values[g.T_CHERNOFF])
    gam = float(values[sp.Symbol("gamma", positive=True)])
    a = float(values[sp.Symbol("a", positive=True)])
    L = g.OVERFLOW_DEPTH
    log_m = t * math.log(2) * -1 + scipy.special.gammaln(n / 2 - t) - scipy.special.gammaln(n / 2)
    log_bound = t * a - t * (L - 1) * math.log(gam) + L * log_m
    assert float(expr.subs(values)) == pytest.approx(math.exp(log_bound), rel=1e-9)
    assert math.exp(log_bound) < 1e-9
    probe = next(p for p in claim("float_range").probes if p.observable["moment"] == "nonfinite")
    assert probe.predicted == pytest.approx(1 - math.exp(log_bound), abs=1e-15)
    # simulate the float16 probe directly
    rng = np.random.default_rng(5)
    std, batch = probe.scenario["weights"]["std"], 256
    x = rng.standard_normal((n, batch)).astype(np.float16)
    m2 = [float(np.mean(x.astype(float) ** 2))]
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(L):
            w = (rng.standard_normal((n, n)) * std).astype(np.float16)
            x = w @ x
            m2.append(float(np.mean(x.astype(float) ** 2)))
    assert np.all(~np.isfinite(x))
    # before the overflow, float16 grows the second moment by n gamma = 9/4 per layer
    assert (m2[15] / m2[5]) ** (1 / 10) == pytest.approx(9 / 4, rel=0.15)


def test_float_probes_follow_the_formulas():
    for p in claim("float_range").probes:
        sc = p.scenario
        n, std = sc["widths"][0], sc["weights"]["std"]
        if p.observable["moment"] == "m2":
            assert p.predicted == pytest.approx(n * std**2, rel=1e-12)
            assert p.predicted == pytest.approx(1.5**2, rel=1e-12)
        else:
            assert sc["dtype"] == "float16" and 0.999999 < p.predicted <= 1


# --------------------------------------------------------------------------- residual-and-clipping


def test_residual_moments():
    c = claim("residual_and_clipping")
    m2 = g.V_U + g.MU_U**2
    res = derivation(c, "residual layer second moment").result
    plain = derivation(c, "plain layer second moment").result
    assert sp.simplify(res - (1 + g.N_RES * g.GAMMA_RES) * m2) == 0
    assert sp.simplify(plain - g.N_RES * g.GAMMA_RES * m2) == 0
    # the plain-layer factor is a wrong answer for the residual layer
    assert check_algebraic(res, plain, {}).status is Status.REFUTED
    assert derivation(c, "scaled residual stack").result == sp.exp(g.C_FACTOR)


def test_residual_jacobian_matches_finite_differences():
    c = claim("residual_and_clipping")
    jac = derivation(c, "residual Jacobian (3 -> 3)").result
    rng = np.random.default_rng(11)
    symbols = sorted(sp.sympify(jac.doit()).free_symbols, key=str)
    values = {s: rng.standard_normal() for s in symbols}
    got = _numeric(jac, values)
    w = np.array([[values[sp.Symbol(f"w^{{1}}_{{{a}{b}}}")] for b in (1, 2, 3)] for a in (1, 2, 3)])
    h = np.array([values[sp.Symbol(f"h_{{{k}}}")] for k in (1, 2, 3)])
    eps = 1e-6
    fd = np.stack(
        [
            (
                (h + eps * e + np.tanh(w @ (h + eps * e)))
                - (h - eps * e + np.tanh(w @ (h - eps * e)))
            )
            / (2 * eps)
            for e in np.eye(3)
        ],
        axis=1,
    )
    np.testing.assert_allclose(got, fd, atol=1e-8)


def test_residual_variance_by_simulation():
    rng = np.random.default_rng(3)
    n, reps, batch = 64, 300, 32
    std = 1 / 8  # n gamma = 1
    h = rng.standard_normal((reps, n, batch))
    w = rng.standard_normal((reps, n, n)) * std
    out = h + w @ h
    assert np.mean(out**2) / np.mean(h**2) == pytest.approx(2.0, rel=0.03)
    for p in claim("residual_and_clipping").probes:
        sc = p.scenario
        assert sc["residual"] is True and sc["activation"] == "linear"
        n_p, s = sc["widths"][0], sc["weights"]["std"]
        assert p.predicted == pytest.approx(1 + n_p * s**2, rel=1e-12)


def test_clipping_bound_numerically_and_wrong_clip_refuted():
    rng = np.random.default_rng(9)
    theta = 1.5
    for scale in (0.1, 1.0, 10.0):
        grads = rng.standard_normal((1000, 5)) * scale
        norms = np.linalg.norm(grads, axis=1)
        clipped = np.minimum(1, theta / norms)[:, None] * grads
        got = np.linalg.norm(clipped, axis=1)
        assert np.all(got <= theta * (1 + 1e-12))
        np.testing.assert_allclose(got, np.minimum(norms, theta), rtol=1e-12)
    c = claim("residual_and_clipping")
    assert derivation(c, "clipping, case norm > theta").result == 0
    # a wrong clip max(1, theta/r) exceeds theta in the large-norm case
    r, th, d = g.G_NORM, g.THETA, g.DELTA1
    wrong_gap = (th - sp.Max(1, th / r) * r).subs(r, th * (1 + d))
    assert check_algebraic(wrong_gap, 0, {}).status is Status.REFUTED


def test_typical_growth_threshold():
    c = claim("gaussian_products")
    (_, threshold) = c.conditions
    assert c.qualification and "0.5724" in c.qualification
    for n in (4, 64):
        sigma_star = float(threshold.rhs.subs(g.N_DOF, n))
        assert math.log(sigma_star) + 0.5 * (
            math.log(2) + scipy.special.digamma(n / 2)
        ) == pytest.approx(0, abs=1e-12)
        assert sigma_star > 1 / math.sqrt(n)  # so sigma = 1/sqrt(n) shrinks typical norms
