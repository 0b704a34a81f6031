"""Beyond the lecture (B1-B3): the mean-field claims reach the published closed forms, the
checker refuses wrong versions of them, and the two-input simulation is sound."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp
from scipy import integrate, special

import montecarlo as mc
from derivations import Chain, Status, check_algebraic, simulation_activations
from derivations import _figures as F
from derivations import _mean_field_claims as M
from derivations._gaussian import gaussian_integral
from report._evidence import simulate_figure

x = M.x


@pytest.fixture(scope="module")
def q_claim():
    return M.mean_field_q_map()


@pytest.fixture(scope="module")
def chi_claim():
    return M.mean_field_chi1()


@pytest.fixture(scope="module")
def edge_claim():
    return M.edge_of_chaos()


# ------------------------------------------------------------------------- statuses


def test_claims_are_registered_beyond_the_lecture(q_claim, chi_claim, edge_claim):
    import derivations

    ids = [c.id for c in derivations.claims()]
    for c in (q_claim, chi_claim, edge_claim):
        assert c.id in ids
        assert all(item.startswith("B") and item[1:].isdigit() for item in c.lecture)
        assert c.status in (Status.PROVED, Status.COMPUTED, Status.TESTED), c.id
        assert len(c.probes) >= 2
        for d in c.derivations:
            assert d.steps and all(s.status is not Status.REFUTED for s in d.steps), d.name
        assert all(k.status is Status.TESTED for k in c.confirmations), c.confirmations


def test_q_map_comes_from_the_layer_by_the_moment_calculus(q_claim):
    second = q_claim.derivation("pre-activation second moment")
    assert second.status is Status.PROVED
    assert sp.simplify(second.result - (M.gamma * M.n * (M.v + M.mu**2) + M.sb2)) == 0
    qmap = q_claim.derivation("q-map")
    assert [s.uses for s in qmap.steps][1:] == [
        ("mean-field-weights",),
        ("gaussian-preactivations",),
    ]
    assert qmap.result.has(M.phi) and qmap.result.has(M.sw2, M.sb2)


def test_relu_q_map_fixed_point_and_slope(q_claim):
    relu = q_claim.derivation("relu q-map")
    assert relu.steps[-1].status is Status.PROVED  # the kernel's Gaussian moments
    assert sp.simplify(relu.result - (M.sw2 * M.q / 2 + M.sb2)) == 0  # He et al. 2015
    fixed = q_claim.derivation("relu fixed point")
    assert fixed.status is Status.PROVED
    assert sp.simplify(relu.result.subs(M.q, fixed.result) - fixed.result) == 0
    assert q_claim.derivation("relu q-map slope").result == M.sw2 / 2


def test_relu_chi1_is_half_sigma_w2_so_he_is_critical(chi_claim):
    chi1 = chi_claim.derivation("relu chi1")
    assert chi1.result == M.sw2 / 2
    assert chi1.steps[-1].status is Status.PROVED  # E[Heaviside] by the kernel
    assert chi_claim.derivation("relu critical point").status is Status.PROVED
    assert sp.Eq(M.sw2, 2) in chi_claim.conditions


def test_arcsine_kernel_is_reached_and_matches_a_direct_integral(chi_claim):
    kernel = chi_claim.derivation("arcsine kernel")
    williams = 2 / sp.pi * sp.asin(2 * M.q12 / sp.sqrt((1 + 2 * M.q1) * (1 + 2 * M.q2)))
    assert sp.simplify(kernel.result - williams) == 0
    assert kernel.status in (Status.TESTED, Status.COMPUTED)
    # independent of the project's quadrature: scipy's dblquad of erf(u) erf(v)
    a, b, rho = 0.7, 1.9, -0.4
    s = math.sqrt(1 - rho * rho)

    def f(z2, z1):
        u, v = math.sqrt(a) * z1, math.sqrt(b) * (rho * z1 + s * z2)
        return special.erf(u) * special.erf(v) * math.exp(-(z1**2 + z2**2) / 2) / (2 * math.pi)

    direct, _ = integrate.dblquad(f, -9, 9, -9, 9, epsabs=1e-11)
    closed = float(kernel.result.subs({M.q1: a, M.q2: b, M.q12: rho * math.sqrt(a * b)}))
    assert direct == pytest.approx(closed, abs=1e-8)


def test_erf_chi1_two_routes_and_critical_pi_over_4(chi_claim, edge_claim):
    slope = chi_claim.derivation("erf chi1 as the slope of the c-map").result
    definition = chi_claim.derivation("erf chi1").result
    assert sp.simplify(slope - definition) == 0
    assert sp.simplify(definition - 4 * M.sw2 / (sp.pi * sp.sqrt(1 + 4 * M.q))) == 0
    assert sp.Eq(M.sw2, sp.pi / 4) in chi_claim.conditions
    assert chi_claim.derivation("erf critical point at sigma_b^2 = 0").status is Status.PROVED
    assert edge_claim.derivation("erf q-map slope at q = 0").result == 4 * M.sw2 / sp.pi
    assert edge_claim.derivation("erf depth scale at the critical point").result == 0


# ------------------------------------------------------------------------- mutations


def test_wrong_relu_chi1_is_refuted():
    start = M.sw2 * gaussian_integral(sp.Heaviside(x), x, M.q)
    check = check_algebraic(start, M.sw2 / 4, {})
    assert check.status is Status.REFUTED
    chain = Chain("mutant", start).step(M.sw2 / 4, "Gaussian moments", "").done()
    assert chain.status is Status.REFUTED


def test_wrong_erf_critical_point_is_refuted(chi_claim):
    chi1 = chi_claim.derivation("erf chi1").result
    mutant = Chain("mutant", chi1.subs({M.q: 0, M.sw2: sp.pi / 2})).step(1, "simplify", "")
    assert mutant.done().status is Status.REFUTED
    wrong_chi1 = check_algebraic(
        M.sw2 * gaussian_integral(sp.diff(sp.erf(x), x) ** 2, x, M.q),
        2 * M.sw2 / (sp.pi * sp.sqrt(1 + 4 * M.q)),
        {},
    )
    assert wrong_chi1.status is Status.REFUTED


def test_wrong_arcsine_kernel_is_refuted_by_quadrature():
    start = M.pair(sp.erf(M.u_) * sp.erf(M.v_), M.q1, M.q2, M.q12)
    wrong = 2 / sp.pi * sp.asin(M.q12 / sp.sqrt((1 + 2 * M.q1) * (1 + 2 * M.q2)))
    assert M._price_check(start, wrong, "mutant").status is Status.REFUTED
    right = 2 / sp.pi * sp.asin(2 * M.q12 / sp.sqrt((1 + 2 * M.q1) * (1 + 2 * M.q2)))
    assert M._price_check(start, right, "true").status is Status.TESTED


# ------------------------------------------------------------------------- probes


def test_probes_are_derived_and_pair_probes_agree(chi_claim):
    pair_probes = [p for p in chi_claim.probes if p.scenario["kind"] == "pair"]
    assert len(pair_probes) == 2
    for p in pair_probes:
        assert p.values and p.method == "substitution" and p.bias_bound == 0
        assert p.predicted == pytest.approx(float(p.expression.subs(p.values)), rel=1e-12)
        assert p.observable == {"quantity": "correlation", "layer": M.PAIR_LAYER}
    p = pair_probes[0]
    est = mc.measure(
        p.scenario,
        p.observable,
        seed=mc.seed_for(11, p.label),
        precision=0.03,
        activations=simulation_activations(),
    )
    ci = est.confidence_interval(0.999)
    assert ci.low <= p.predicted <= ci.high, (p.predicted, est.value, ci)
    # the starting correlation is not the prediction: the check has power
    assert not ci.low <= p.scenario["c0"] <= ci.high


# ------------------------------------------------------------------------- simulation


def _pair(**kw) -> dict:
    base = {
        "kind": "pair",
        "width": 64,
        "depth": 3,
        "activation": "linear",
        "sigma_w2": 1.5,
        "sigma_b2": 0.0,
        "q0": 2.0,
        "c0": 0.3,
    }
    return {**base, **kw}


def test_pair_inputs_have_the_exact_geometry_and_runs_are_reproducible():
    seed = mc.seed_for(5, "pair")
    y = mc.simulate_pair(_pair(), 6, seed)
    assert y.shape == (6, 4, 3)
    np.testing.assert_allclose(y[:, 0, :], np.tile([2.0, 2.0, 0.6], (6, 1)), rtol=1e-12)
    assert np.array_equal(y, mc.simulate_pair(_pair(), 6, seed))
    assert np.array_equal(y[:3], mc.simulate_pair(_pair(), 3, seed))


def test_linear_network_keeps_the_correlation():
    """Linear layers without bias: E[z_a.z_b] / sqrt(E|z_a|^2 E|z_b|^2) = c0 at every layer."""
    est = mc.measure(_pair(), {"quantity": "correlation", "layer": 3}, seed=mc.seed_for(6, "lin"))
    ci = est.confidence_interval(0.999)
    assert ci.low <= 0.3 <= ci.high


@pytest.mark.parametrize(
    "bad, name",
    [
        ({"width": 0}, "width"),
        ({"activation": "softsign"}, "activation"),
        ({"c0": 1.5}, "c0"),
        ({"sigma_w2": -1.0}, "sigma_w2"),
        ({"extra": 1}, "extra"),
    ],
)
def test_bad_pair_scenarios_are_refused_with_the_argument_named(bad, name):
    with pytest.raises(mc.InvalidScenario, match=name):
        mc.measure(_pair(**bad), {"quantity": "correlation", "layer": 1}, seed=mc.seed_for(0))
    with pytest.raises(mc.InvalidScenario, match="quantity"):
        mc.measure(_pair(), {"quantity": "nope", "layer": 1}, seed=mc.seed_for(0))


# ------------------------------------------------------------------------- figures


def test_width_figure_approaches_the_map():
    fig = simulate_figure(F.correlation_widths(M.mean_field_chi1()), 2026, quick=True)
    (theory,) = [s for s in fig["series"] if s["kind"] == "theory"]
    assert all(-1 <= y <= 1 for y in theory["y"])
    assert theory["y"][0] == pytest.approx((3.0 * 0.9 + 0.1) / 3.1)  # exact layer 1
    sims = [s for s in fig["series"] if s["kind"] == "simulation"]
    assert [s["label"] for s in sims] == ["width 32", "width 128", "width 512"]
    for s in sims[1:]:  # layers 1 and 2 are exact at every width
        for t in (0, 1):
            assert s["low"][t] <= theory["y"][t] <= s["high"][t], (s["label"], t)
    assert "deviation" in fig["caption"] and "width 32" in fig["caption"]


def test_erf_map_iteration_uses_the_derived_kernel():
    got = F.erf_correlations(3.0, 0.1, 0.5, 2)
    assert got[1] == pytest.approx(
        float(
            M.layer_two_correlation(M.mean_field_chi1().derivation("arcsine kernel")).subs(
                {M.sw2: 3, M.sb2: sp.Rational(1, 10), M.q0: 1, M.c0: sp.Rational(1, 2)}
            )
        ),
        rel=1e-12,
    )


def test_the_critical_point_keeps_the_input_correlation_longest():
    """Two pairs starting at correlations 0.9 and 0.1: at layer 30 the difference of their
    correlations is far larger on the critical line than on either side of it, in the
    derived map and in simulated networks."""
    crit, depth = F.critical_erf(F.PHASES_SB2), 30
    gaps = {}
    for name, sw in (("ordered", F.PHASES_SW2[0]), ("critical", crit), ("chaotic", 3.0)):
        a, b = (F.erf_correlations(sw, F.PHASES_SB2, c, depth) for c in F.PHASES_C0)
        sims = [
            mc.measure_pair_fixed(
                F.pair_scenario(128, depth, sw, F.PHASES_SB2, c),
                F.correlation_layers(depth),
                seed=mc.seed_for(9, name, str(c)),
                replicates=32,
                activations=simulation_activations(),
            )[-1]
            for c in F.PHASES_C0
        ]
        value = sims[0].value - sims[1].value
        half = 3.5 * math.hypot(sims[0].se, sims[1].se)
        gaps[name] = (a[-1] - b[-1], value - half, value + half)
    theory = {k: g[0] for k, g in gaps.items()}
    assert theory["critical"] > 5 * max(theory["ordered"], theory["chaotic"]), theory
    # simulated at width 128: the ordered difference is gone, the chaotic one is noisy
    # (the correlation of one network fluctuates around c* < 1)
    assert gaps["critical"][1] > gaps["ordered"][2], gaps
    assert sum(gaps["critical"][1:]) > sum(gaps["chaotic"][1:]), gaps
