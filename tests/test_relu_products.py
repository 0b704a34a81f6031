"""L2.2: relu masks the Jacobian product; mean-square growth n*gamma/2 versus n*gamma.

Derived values are held against finite differences, SciPy quadrature, exact Python
integers and a NumPy simulation with a fixed seed; wrong versions are refuted.
"""

import math
import time

import numpy as np
import pytest
import scipy.integrate
import scipy.stats
import sympy as sp

from derivations import Status, check_algebraic
from derivations import _relu_products as r

_start = time.perf_counter()
CLAIM = r.relu_jacobian_product()
SECONDS = time.perf_counter() - _start


def derivation(name):
    (d,) = [d for d in CLAIM.derivations if d.name == name]
    return d


def test_claim_is_decided_and_fast():
    """Every step is proved, computed or tested (never undecided or refuted), and the
    claim is as strong as its weakest step."""
    weakest = min((s.status for d in CLAIM.derivations for s in d.steps), key=lambda s: s.rank)
    assert CLAIM.status is weakest and weakest.rank >= Status.TESTED.rank, CLAIM.status
    for d in CLAIM.derivations:
        assert d.steps, d.name
        for s in d.steps:
            assert s.status.rank >= Status.TESTED.rank, (d.name, s.rule, s.checks)
    assert all(k.status.rank >= Status.TESTED.rank for k in CLAIM.confirmations)
    assert r.BUILDERS == (r.relu_jacobian_product,)
    assert SECONDS < 10


def test_metadata():
    assert CLAIM.id == "relu-jacobian-product" and CLAIM.lecture == ("L2.2",)
    assert CLAIM.title.isascii() and "$" not in CLAIM.title
    assert len({p.label for p in CLAIM.probes}) == len(CLAIM.probes) == 3
    assert sorted(p.expect for p in CLAIM.probes) == ["agrees", "agrees", "disagrees"]


# --------------------------------------------------------------------------- relu'


def test_relu_derivative_matches_finite_differences():
    right = derivation("relu derivative, x > 0").result
    left = derivation("relu derivative, x < 0").result
    step = derivation("relu derivative as a step function").result
    assert step == sp.Heaviside(r.X)
    eps = 1e-7
    for x0 in (-2.0, -0.3, 0.4, 3.0):
        fd = (max(0.0, x0 + eps) - max(0.0, x0 - eps)) / (2 * eps)
        want = right if x0 > 0 else left
        assert fd == pytest.approx(float(want), abs=1e-6)
        assert float(step.subs(r.X, x0)) == pytest.approx(fd, abs=1e-6)
    # at 0 the one-sided quotients differ: no derivative
    assert (max(0.0, eps) - 0.0) / eps == pytest.approx(1.0)
    assert (max(0.0, -eps) - 0.0) / -eps == pytest.approx(0.0)
    assert derivation("relu: + derivative at 0").result == 1
    assert derivation("relu: - derivative at 0").result == 0


# --------------------------------------------------------------------------- Jacobian


def _point():
    net = r._network()
    values = dict(zip(net["h0"], r.PATTERN_POINT["h0"], strict=True))
    mats = {}
    for t in (1, 2):
        w = net[f"W{t}"]
        mats[t] = np.array(r.PATTERN_POINT[f"W{t}"], dtype=float)
        for a in range(w.rows):
            for b in range(w.cols):
                values[w[a, b]] = r.PATTERN_POINT[f"W{t}"][a][b]
    return net, values, mats


def test_jacobian_in_pattern_matches_finite_differences():
    _, values, mats = _point()
    w1, w2 = mats[1], mats[2]
    h0 = np.array(r.PATTERN_POINT["h0"], dtype=float)

    def f(x):
        return np.maximum(w2 @ np.maximum(w1 @ x, 0), 0)

    eps = 1e-6
    fd = np.stack([(f(h0 + eps * e) - f(h0 - eps * e)) / (2 * eps) for e in np.eye(3)], axis=1)
    d1, d2 = (np.diag(m).astype(float) for m in r.PATTERN)
    assert np.allclose(fd, d2 @ w2 @ d1 @ w1, atol=1e-8)
    jac = derivation("relu Jacobian (3 -> 2 -> 3)")
    derived = np.array(sp.Matrix(jac.result.doit()).subs(values), dtype=float)
    assert np.allclose(derived, fd, atol=1e-8)
    # the masks really mask: the unmasked product differs at this point
    assert not np.allclose(w2 @ w1, fd)


def test_unmasked_jacobian_is_refuted():
    jac = derivation("relu Jacobian (3 -> 2 -> 3)")
    pattern = next(a for a in r.ASSUMPTIONS if a.name == "activation-pattern").subs
    steps = {s.rule: s for s in jac.steps}
    symbolic = steps["Matrix.jacobian"].after
    net = r._network()
    wrong = check_algebraic(symbolic, net["W2"] * net["W1"], pattern)
    assert wrong.status is Status.REFUTED
    right = check_algebraic(symbolic, steps["fix the activation pattern"].after, pattern)
    assert right.status is Status.PROVED


# --------------------------------------------------------------------------- factors


def _step_squared_density(z, s):
    return float(s * z > 0) ** 2 * scipy.stats.norm.pdf(z)


def test_slope_moments_against_quadrature():
    relu_m2 = derivation("second moment of the slope, relu").result
    linear_m2 = derivation("second moment of the slope, linear (unmasked)").result
    for q in (0.3, 1.0, 4.0):
        relu_quad = sum(
            scipy.integrate.quad(_step_squared_density, lo, hi, args=(math.sqrt(q),))[0]
            for lo, hi in ((-np.inf, 0.0), (0.0, np.inf))
        )
        linear_quad, _ = scipy.integrate.quad(scipy.stats.norm.pdf, -np.inf, np.inf)
        assert float(relu_m2) == pytest.approx(relu_quad, abs=1e-12)
        assert float(linear_m2) == pytest.approx(linear_quad, abs=1e-12)
    assert relu_m2 == sp.Rational(1, 2) and linear_m2 == 1


def test_factor_values_and_wrong_factor_refuted():
    masked = derivation("per-layer factor, relu").result
    unmasked = derivation("per-layer factor, linear (unmasked)").result
    n, gamma = r.N_T, r.GAMMA
    for nv, gv in ((128, 2 / 128), (4, 1.0), (64, 0.01)):
        assert float(masked.subs({n: nv, gamma: gv})) == pytest.approx(nv * gv * 0.5)
        assert float(unmasked.subs({n: nv, gamma: gv})) == pytest.approx(nv * gv)
    # the lecture's reading for relu (no mask): refuted
    assert check_algebraic(masked, unmasked, {}).status is Status.REFUTED
    assert check_algebraic(masked, n * gamma / 2, {}).status is Status.PROVED
    # the backward derivation's result before dividing by v_u
    assert derivation("backward second moment through a masked layer").result == n * gamma * r.V_U


def test_powers_he_and_d2l():
    assert sp.solve(sp.Eq(derivation("per-layer factor, relu").result, 1), r.GAMMA) == [2 / r.N_T]
    assert derivation("relu factor under He").result == 1
    assert derivation("unmasked factor under He").result == 2
    assert derivation("unmasked product under He after L layers").result == 2**r.LAYERS
    (relu_demo,) = [d for d in CLAIM.derivations if d.name.startswith("relu product, D2L")]
    (lin_demo,) = [d for d in CLAIM.derivations if d.name.startswith("unmasked product, D2L")]
    assert int(relu_demo.result) == (4 * 1 // 2) ** 100
    assert int(lin_demo.result) == (4 * 1) ** 100
    assert int(lin_demo.result) != int(relu_demo.result)


# --------------------------------------------------------------------------- probes


def test_probe_predictions_are_substituted_results():
    masked = derivation("per-layer factor, relu").result
    unmasked = derivation("per-layer factor, linear (unmasked)").result
    for p in CLAIM.probes:
        n = p.scenario["widths"][p.observable["layer"] + 1]
        std = p.scenario["weights"]["std"]
        assert n * std**2 == pytest.approx(2.0)  # He: gamma = 2 / n
        assert p.observable == {
            "direction": "backward",
            "moment": "m2",
            "layer": r.PROBE_DEPTH - 1,
            "relative_to": r.PROBE_DEPTH,
        }
        assert p.scenario["upstream"] == {"law": "normal", "std": 1.0}
        values = {r.N_T: n, r.GAMMA: sp.nsimplify(std**2)}
        want = masked if p.label == "he-relu-masked-factor" else unmasked
        assert p.expression == want
        assert p.predicted == pytest.approx(float(want.subs(values)), rel=1e-12)
    by_label = {p.label: p for p in CLAIM.probes}
    assert by_label["he-relu-masked-factor"].predicted == pytest.approx(1.0)
    assert by_label["he-relu-unmasked-factor"].predicted == pytest.approx(2.0)
    assert by_label["he-linear-unmasked-factor"].scenario["activation"] == "linear"


def test_masked_factor_by_simulation():
    """Top-layer backward ratio of a He relu layer, simulated with NumPy."""
    rng = np.random.default_rng(20240611)
    n, reps, batch = 128, 400, 64
    std = math.sqrt(2 / n)
    ratios = []
    for _ in range(reps):
        w1 = std * rng.standard_normal((n, n))
        w2 = std * rng.standard_normal((n, n))
        h1 = np.maximum(w1 @ rng.standard_normal((n, batch)), 0)
        z2 = w2 @ h1
        g2 = rng.standard_normal((n, batch))
        g1 = w2.T @ ((z2 > 0) * g2)
        ratios.append((np.mean(g1**2), np.mean(g2**2)))
    num, den = np.mean(ratios, axis=0)
    masked = float(derivation("per-layer factor, relu").result.subs({r.N_T: n, r.GAMMA: 2 / n}))
    unmasked = float(
        derivation("per-layer factor, linear (unmasked)").result.subs({r.N_T: n, r.GAMMA: 2 / n})
    )
    assert num / den == pytest.approx(masked, rel=0.02)
    assert abs(num / den - unmasked) > 0.5
