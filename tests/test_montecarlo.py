"""The engine: validation, seeding, honest intervals, and refusing wrong claims."""

import math
import platform

import numpy as np
import pytest
import sympy as sp
from scipy import stats

import derivations
import montecarlo as mc
from derivations._forward import forward_variance, n_prev

#: The activation table's NumPy side: the engine knows no activation but the identity.
ACTS = derivations.simulation_activations()

SCENARIO = {
    "widths": [64, 256],
    "weights": {"law": "normal", "std": 0.125},
    "activation": "linear",
    "input": {"law": "normal", "mean": 0.0, "std": 1.0},
    "dtype": "float64",
}
VAR1 = {"direction": "forward", "moment": "var", "layer": 1}
CONFIDENCE = mc.per_check_confidence(0.01, 6)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"widths": [64, 0]}, r"`widths` must be a list of at least two positive integers"),
        ({"widths": [64.0, 3]}, r"`widths`"),
        (
            {"weights": {"law": "cauchy"}},
            r"`weights\[0\].law` must be one of \['normal', 'uniform'",
        ),
        ({"weights": {"law": "normal", "std": -1}}, r"`weights\[0\].std` must be finite and > 0"),
        ({"weights": {"law": "normal", "std": float("nan")}}, r"finite"),
        ({"activation": "gelu"}, r"`activation` must be one of \['linear', 'erf', 'sigmoid'"),
        ({"dtype": "float8"}, r"`dtype` must be one of \['float16', 'float32', 'float64'\]"),
        ({"input": {"law": "normal", "mean": 0.0, "std": 0}}, r"`input.std`"),
        ({"input": {"law": "cauchy"}}, r"`input.law` must be one of \['normal', 'uniform'"),
        ({"input": {"law": "uniform", "std": 1.0}}, r"`input` takes keys \['bound', 'law'\]"),
    ],
)
def test_bad_scenarios_name_the_argument(change, message):
    with pytest.raises(mc.InvalidScenario, match=message):
        mc.mlp_scenario({**SCENARIO, **change}, ACTS)


@pytest.mark.parametrize(
    ("scenario", "observable", "message"),
    [
        ({"kind": "tensor"}, {}, r"`kind` must be one of \['mlp', 'scalar', 'product'\]"),
        (
            {**SCENARIO, "upstream": {"loss": "cross_entropy"}},
            VAR1,
            r"`upstream.loss` must be one of",
        ),
        ({**SCENARIO, "residual": True}, VAR1, r"`residual` needs equal widths"),
        ({**SCENARIO, "bias": {"law": "normal", "std": 1}}, VAR1, r"unexpected \['bias'\]"),
        (
            {"kind": "scalar", "activation": "tanh", "q": -1},
            {"moment": "m2"},
            r"`q` must be finite and > 0",
        ),
        (
            {"kind": "product", "n": 4, "std": 1.0, "depth": 0},
            {"quantity": "log_growth", "moment": "var"},
            r"`depth` must be an integer in \[1, ",
        ),
        (
            {"kind": "product", "n": 4, "std": 1.0, "depth": 3},
            {"quantity": "m2_growth", "moment": "var"},
            r"`observable.moment` must be one of \['mean'\]",
        ),
        (
            SCENARIO,
            {"direction": "sideways", "moment": "var", "layer": 1},
            r"`observable.direction`",
        ),
        (
            SCENARIO,
            {**VAR1, "of": "preactivation", "layer": 0},
            r"`observable.layer` must be an integer in \[1, 1\]",
        ),
    ],
)
def test_bad_scenarios_of_every_kind_are_refused(scenario, observable, message):
    with pytest.raises(mc.InvalidScenario, match=message):
        mc.measure(scenario, observable, seed=mc.seed_for(0, "bad"), activations=ACTS)


def test_bad_observable_names_the_layer():
    with pytest.raises(
        mc.InvalidScenario, match=r"`observable.layer` must be an integer in \[0, 1\]"
    ):
        mc.measure(SCENARIO, {**VAR1, "layer": 2}, seed=mc.seed_for(0, "x"))


def test_reusing_a_seed_object_gives_the_same_numbers():
    seed = mc.seed_for(7, "claim", "probe")
    assert mc.measure(SCENARIO, VAR1, seed=seed) == mc.measure(SCENARIO, VAR1, seed=seed)


def test_same_seed_same_numbers_and_keys_are_independent():
    a = mc.measure(SCENARIO, VAR1, seed=mc.seed_for(7, "claim", "probe"))
    b = mc.measure(SCENARIO, VAR1, seed=mc.seed_for(7, "claim", "probe"))
    c = mc.measure(SCENARIO, VAR1, seed=mc.seed_for(7, "claim", "other"))
    assert a == b
    assert a.value != c.value


def test_default_precision_is_met_on_a_one_step_claim():
    est = mc.measure(SCENARIO, VAR1, seed=mc.seed_for(3, "precision"))
    assert est.precision() < 2 * mc.DEFAULT_PRECISION
    assert est.n_replicates >= 32 and est.dof == est.n_replicates - 1


def _claim_probe(label):
    c = forward_variance()
    return next(p for p in c.probes if p.label == label)


@pytest.mark.parametrize("label", ["64x256-normal-var", "100x30-normal-var", "48x96-uniform-var"])
def test_true_claim_agrees_and_wrong_fan_is_refused(label):
    probe = _claim_probe(label)
    est = mc.measure(probe.scenario, probe.observable, seed=mc.seed_for(11, label))
    assert mc.decide(probe.predicted, est, CONFIDENCE).outcome is mc.Outcome.AGREES
    # the wrong fan: n_t in place of n_{t-1}, substituted into the same SymPy result
    n_in, n_out = probe.scenario["widths"]
    wrong = float(sp.Rational(n_out, n_in) * sp.nsimplify(probe.predicted))
    assert probe.expression.has(n_prev)
    assert mc.decide(wrong, est, CONFIDENCE).outcome is mc.Outcome.DISAGREES


@pytest.mark.parametrize("factor", [1.05, 0.95, 1.03])
def test_prediction_a_few_percent_off_is_refused(factor):
    probe = _claim_probe("64x256-normal-var")
    est = mc.measure(probe.scenario, probe.observable, seed=mc.seed_for(5, "off", str(factor)))
    assert mc.decide(probe.predicted * factor, est, CONFIDENCE).outcome is mc.Outcome.DISAGREES


def test_coverage_of_true_claim_matches_the_promised_rate():
    """Over many seeds the 90% interval covers the truth about 90% of the time."""
    probe = _claim_probe("100x30-normal-var")
    runs, covered = 120, 0
    for s in range(runs):
        est = mc.measure(probe.scenario, probe.observable, seed=mc.seed_for(s, "coverage"))
        ci = est.confidence_interval(0.9)
        covered += ci.low <= probe.predicted <= ci.high
    test = stats.binomtest(covered, runs, 0.9)
    assert test.pvalue > 1e-3, f"coverage {covered}/{runs}"


def test_non_finite_values_make_a_check_inconclusive():
    exploding = {
        **SCENARIO,
        "widths": [64] * 40,
        "weights": {"law": "normal", "std": 4.0},
        "dtype": "float16",
    }
    est = mc.measure(exploding, {**VAR1, "layer": 39}, seed=mc.seed_for(0, "overflow"))
    assert est.nonfinite > 0
    dec = mc.decide(1.0, est, CONFIDENCE)
    assert dec.outcome is mc.Outcome.INCONCLUSIVE
    assert math.isnan(dec.p_value)


def test_backward_variance_uses_the_fan_out():
    sc = {**SCENARIO, "widths": [100, 30], "weights": {"law": "normal", "std": 0.2}}
    ob = {"direction": "backward", "moment": "var", "layer": 0}
    est = mc.measure(sc, ob, seed=mc.seed_for(2, "backward"))
    # dl/dh^0 = W^T g with g ~ N(0, 1): variance n_1 * std^2 = 30 * 0.04
    assert mc.decide(30 * 0.04, est, CONFIDENCE).outcome is mc.Outcome.AGREES
    assert mc.decide(100 * 0.04, est, CONFIDENCE).outcome is mc.Outcome.DISAGREES


def test_recomputed_backward_pass_matches_the_stored_one(monkeypatch):
    """Checkpointing changes memory, not numbers (one replicate: the same chunking)."""
    import montecarlo._engine as engine

    sc = mc.mlp_scenario(
        {
            **SCENARIO,
            "widths": [32] * 10,
            "weights": {"law": "normal", "std": 0.2},
            "activation": "tanh",
            "biases": {"law": "normal", "std": 0.1},
        },
        ACTS,
    )
    stored = mc.simulate_mlp(sc, 1, 16, mc.seed_for(0, "ckpt"), backward=True, activations=ACTS)
    monkeypatch.setattr(engine, "STORE_BYTES", 1)
    recomputed = mc.simulate_mlp(sc, 1, 16, mc.seed_for(0, "ckpt"), backward=True, activations=ACTS)
    np.testing.assert_array_equal(stored.backward, recomputed.backward)
    np.testing.assert_array_equal(stored.forward, recomputed.forward)


def test_numbers_do_not_depend_on_the_cores_that_run_them(monkeypatch):
    """Chunks run on worker threads; one core or two, the same bytes come out."""
    import os

    import montecarlo._engine as engine

    sc = mc.mlp_scenario({**SCENARIO, "widths": [16] * 6, "activation": "relu"}, ACTS)
    layout = engine.chunk_layout(37, 100)
    assert len(layout) >= engine.WORKERS
    assert [lo for lo, _ in layout] == list(np.cumsum([0] + [r for _, r in layout])[:-1])
    assert sum(r for _, r in layout) == 37
    kw = {"backward": True, "fractions": True, "lognorm": True, "activations": ACTS}
    two = mc.simulate_mlp(sc, 37, 32, mc.seed_for(0, "cores"), **kw)
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    one = mc.simulate_mlp(sc, 37, 32, mc.seed_for(0, "cores"), **kw)
    for a, b in zip((two.forward, two.backward), (one.forward, one.backward), strict=True):
        np.testing.assert_array_equal(a, b)
    assert np.isfinite(two.backward[:, 0]).all() and np.isfinite(two.forward[:, 1:]).all()


def test_the_command_line_tunes_the_allocator_only_where_it_can():
    import platform

    from cli import tune_allocator

    assert tune_allocator() is (platform.libc_ver()[0] == "glibc")


def test_backward_pass_matches_finite_differences():
    """The engine's gradient of a real loss equals a numerical derivative of the forward pass."""
    import montecarlo._engine as engine

    sc = mc.mlp_scenario(
        {
            **SCENARIO,
            "widths": [5, 4, 3],
            "activation": "tanh",
            "weights": {"law": "normal", "std": 0.7},
            "upstream": {"loss": "half_squared"},
        },
        ACTS,
    )
    seed = mc.seed_for(0, "fd")
    ws = [engine._draw(mc.child(seed, 0, 1), sc, t, 1, np.dtype("float64"))[0][0] for t in (1, 2)]
    x = mc.sample_weights(engine.rng(mc.child(seed, 0, 0)), sc.input_law, (1, 5, 1), np.float64)
    x = x[0, :, 0]

    def loss(v):
        return 0.5 * np.sum(np.tanh(ws[1] @ np.tanh(ws[0] @ v)) ** 2)

    eps = 1e-6
    fd = np.array([(loss(x + eps * e) - loss(x - eps * e)) / (2 * eps) for e in np.eye(5)])
    z1 = ws[0] @ x
    h1 = np.tanh(z1)
    h2 = np.tanh(ws[1] @ h1)
    g1 = ws[1].T @ (h2 * (1 - h2**2))
    g0 = ws[0].T @ (g1 * (1 - h1**2))
    np.testing.assert_allclose(g0, fd, rtol=1e-6, atol=1e-9)
    st = mc.simulate_mlp(sc, 1, 1, seed, backward=True, activations=ACTS)
    np.testing.assert_allclose(st.backward[0, 0, 1], np.mean(g0**2), rtol=1e-12)


def test_scalar_and_product_kinds_agree_with_known_values():
    from scipy import integrate, special

    q = 0.7
    exact, _ = integrate.quad(lambda x: np.tanh(x) ** 2 * np.exp(-x * x / (2 * q)), -40, 40)
    exact /= np.sqrt(2 * np.pi * q)
    est = mc.measure(
        {"kind": "scalar", "activation": "tanh", "q": q},
        {"moment": "m2"},
        seed=mc.seed_for(0, "scalar"),
        activations=ACTS,
    )
    assert mc.decide(exact, est, CONFIDENCE).outcome is mc.Outcome.AGREES
    n, depth = 4, 30
    # Newman (1986): log-norm growth is a sum of depth i.i.d. 1/2 log(chi2_n) terms
    mean = depth * 0.5 * (np.log(2) + special.digamma(n / 2))
    est = mc.measure(
        {"kind": "product", "n": n, "std": 1.0, "depth": depth},
        {"quantity": "log_growth", "moment": "mean"},
        seed=mc.seed_for(0, "prod"),
    )
    assert mc.decide(mean, est, CONFIDENCE).outcome is mc.Outcome.AGREES
    assert mc.decide(mean * 1.05, est, CONFIDENCE).outcome is mc.Outcome.DISAGREES


def test_weights_are_sampled_in_their_native_parameters():
    rng = np.random.default_rng(0)
    u = mc.sample_weights(rng, mc.WeightLaw("uniform", bound=0.5), (200_000,), np.dtype("float64"))
    assert u.min() >= -0.5 and u.max() <= 0.5
    t = mc.sample_weights(
        rng, mc.WeightLaw("truncated_normal", std=2.0), (200_000,), np.dtype("float32")
    )
    assert t.dtype == np.float32 and abs(t).max() <= 4.0


def _box_muller_with_half_circle(gen, shape, dtype=np.float64):
    """A wrong sampler: angles on half the circle, so every second draw is non-negative."""
    z = mc.standard_normal(gen, shape, dtype)
    m = (z.size + 1) // 2
    z.reshape(-1)[m:] = np.abs(z.reshape(-1)[m:])
    return z


@pytest.mark.parametrize(
    ("sampler", "normal"), [(mc.standard_normal, True), (_box_muller_with_half_circle, False)]
)
def test_the_normal_sampler_is_normal_and_its_pairs_independent(sampler, normal):
    """Kolmogorov-Smirnov on 2^20 draws, and the correlation of the two halves of a draw
    (``r cos``, ``r sin``) and of their squares, each at level 1e-4 (Bonferroni over three:
    a correct sampler fails with probability below 3e-4). The half-circle mutation
    shifts the mean by 0.4 and the KS distance by 0.16, far beyond the thresholds."""
    z = sampler(np.random.Generator(np.random.SFC64(mc.seed_for(0, "box-muller"))), (1 << 20,))
    assert z.shape == (1 << 20,) and z.dtype == np.float64
    a, b = z[: 1 << 19], z[1 << 19 :]
    p_ks = stats.kstest(z, "norm").pvalue
    p_lin = stats.pearsonr(a, b).pvalue
    p_sq = stats.pearsonr(a * a, b * b).pvalue
    assert bool(min(p_ks, p_lin, p_sq) > 1e-4) is normal
    f32 = mc.standard_normal(
        np.random.Generator(np.random.SFC64(mc.seed_for(0, "box-muller"))), (3, 5), np.float32
    )
    assert f32.shape == (3, 5) and f32.dtype == np.float32


def test_site_statistics_count_overflow_underflow_and_the_log_norm():
    tiny = np.finfo(np.float16).tiny
    x = np.array(
        [[[np.inf, 1.0], [np.nan, 0.0], [tiny / 4, 2.0], [-np.inf, 3.0]]], dtype=np.float16
    )
    st = dict(zip(mc.STATS, mc.site_stats(x, fractions=True, lognorm=True)[0], strict=True))
    assert st["nonfinite"] == 3 / 8 and st["overflow"] == 2 / 8
    assert st["zero"] == 1 / 8 and st["subnormal"] == 1 / 8
    assert math.isnan(st["m2"]) and math.isnan(st["log_m2"])
    y = np.arange(1.0, 7.0).reshape(1, 3, 2)
    st = dict(zip(mc.STATS, mc.site_stats(y, lognorm=True)[0], strict=True))
    per_input = [(1 + 9 + 25) / 3, (4 + 16 + 36) / 3]
    assert st["log_m2"] == pytest.approx(np.mean(np.log(per_input)), rel=1e-14)
    assert st["m2"] == pytest.approx(np.mean(per_input), rel=1e-14)
    assert math.isnan(st["zero"]) and st["nonfinite"] == 0


def test_log_norm_increment_of_a_gaussian_linear_layer():
    """Newman (1986): log of sigma^2 chi^2_n per layer; a 3% error in the log is refused."""
    from scipy import special

    n = 16
    scenario = {**SCENARIO, "widths": [n] * 4, "weights": {"law": "normal", "std": 0.5}}
    ob = {"direction": "forward", "moment": "log_m2", "layer": 3, "relative_to": 2}
    est = mc.measure(scenario, ob, seed=mc.seed_for(0, "log-norm"))
    exact = math.log(0.25) + math.log(2) + special.digamma(n / 2)
    # the replicate count comes from a 32-replicate pilot: the target is met only roughly
    assert est.scale == 1.0 and est.precision() <= 1.5 * mc.DEFAULT_PRECISION
    assert mc.decide(exact, est, CONFIDENCE).outcome is mc.Outcome.AGREES
    assert mc.decide(exact + 0.03, est, CONFIDENCE).outcome is mc.Outcome.DISAGREES


def test_a_fraction_at_its_edge_gets_an_exact_bound_and_enough_replicates():
    """Every entry overflows: the exact bound reaches the target; a 5% lower value is refused."""
    exploding = {
        **SCENARIO,
        "widths": [32] * 41,
        "weights": {"law": "normal", "std": 4.0},
        "dtype": "float16",
    }
    ob = {"direction": "forward", "moment": "nonfinite", "layer": 40}
    est = mc.measure(exploding, ob, seed=mc.seed_for(0, "edge"))
    assert est.value == 1.0 and est.se == 0
    ci = est.confidence_interval(0.99)
    assert ci.high == 1.0 and ci.low == pytest.approx(0.01 ** (1 / est.n_replicates))
    assert est.precision() <= mc.DEFAULT_PRECISION
    assert mc.decide(1.0, est, CONFIDENCE).outcome is mc.Outcome.AGREES
    assert mc.decide(0.95, est, CONFIDENCE).outcome is mc.Outcome.DISAGREES
    # the p-value is the level at which the interval's edge reaches the prediction
    edge = est.confidence_interval(CONFIDENCE).low
    assert est.p_value(edge) == pytest.approx(1 - CONFIDENCE)
    assert est.p_value(1.0) == 1.0 and mc.decide(0.999, est, CONFIDENCE).p_value > 1 - CONFIDENCE


def test_inputs_follow_any_weight_law_around_a_mean():
    """A uniform input of variance b^2/3 around a mean: the first layer's variance follows."""
    from derivations._forward import weight_variance

    bound, mean = 1.5, 0.5
    var_in = weight_variance("uniform", {"bound": bound})
    scenario = {**SCENARIO, "input": {"law": "uniform", "bound": bound, "mean": mean}}
    est = mc.measure(scenario, VAR1, seed=mc.seed_for(0, "uniform-input"))
    n_in, std = SCENARIO["widths"][0], SCENARIO["weights"]["std"]
    predicted = float(n_in * std**2 * (var_in + mean**2))  # second moment of the input
    assert mc.decide(predicted, est, CONFIDENCE).outcome is mc.Outcome.AGREES
    lecture = float(n_in * std**2 * var_in)  # Var in place of the second moment (S1)
    assert mc.decide(lecture, est, CONFIDENCE).outcome is mc.Outcome.DISAGREES


def test_p_value_and_interval_tell_the_same_story():
    est = mc.measure(SCENARIO, VAR1, seed=mc.seed_for(0, "p-value"))
    for confidence in (0.9, 0.99, CONFIDENCE):
        ci = est.confidence_interval(confidence)
        for edge in (ci.low, ci.high):
            assert est.p_value(edge) == pytest.approx(1 - confidence, rel=1e-6)


def test_holm_levels_step_down_and_match_holms_refusals():
    alpha = 0.01
    p = [0.5, 0.0001, math.nan, 0.003, 0.0024]
    levels = mc.holm_levels(p, alpha)
    # sorted: 0.0001 <= alpha/5, 0.0024 <= alpha/4, 0.003 <= alpha/3, 0.5 > alpha/2: stop
    assert levels[1] == pytest.approx(1 - alpha / 5)
    assert levels[4] == pytest.approx(1 - alpha / 4)
    assert levels[3] == pytest.approx(1 - alpha / 3)
    assert levels[0] == levels[2] == pytest.approx(1 - alpha / 2)
    refused = [x <= 1 - lv for x, lv in zip(p, levels, strict=True)]
    assert refused == [False, True, False, True, True]
    # Bonferroni refuses only the smallest
    assert sum(x <= alpha / len(p) for x in p) == 1
    with pytest.raises(ValueError, match="`alpha` must be in"):
        mc.holm_levels(p, 0)


def test_family_decisions_are_consistent_with_their_intervals():
    est = mc.measure(SCENARIO, VAR1, seed=mc.seed_for(0, "family"))
    truth = 64 * 0.125**2
    predicted = [truth, truth * 1.05, truth * 0.99, truth]
    decisions = mc.decide_family(predicted, [est] * 4, 0.01)
    assert [d.outcome for d in decisions][:2] == [mc.Outcome.AGREES, mc.Outcome.DISAGREES]
    for d in decisions:
        inside = d.ci.low <= d.predicted <= d.ci.high
        assert inside == (d.outcome is mc.Outcome.AGREES)
        assert 1 - 0.01 <= d.confidence <= 1 - 0.01 / 4
    with pytest.raises(ValueError, match="same length"):
        mc.decide_family(predicted, [est], 0.01)


def test_the_readme_example_runs(tmp_path):
    """The README's engine example is real code: extract it and run it as a user would."""
    import pathlib
    import re
    import subprocess
    import sys

    readme = pathlib.Path(__file__).resolve().parents[1] / "README.md"
    (code,) = re.findall(r"```python\n(.*?)```", readme.read_text(encoding="utf-8"), re.S)
    script = tmp_path / "example.py"
    script.write_text(code, encoding="utf-8")
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True)
    value, *_ = run.stdout.split()
    assert 0 < float(value) < 1  # softsign under Xavier shrinks the gradient


def test_bounds_and_bias_bounds_are_decided_by_the_range_they_allow():
    """A lower bound agrees with any larger value, a point widened by its bias bound with
    any value within it; the p-value is that of the allowed point nearest the estimate."""
    from montecarlo._estimate import Estimate, Outcome, decide

    est = Estimate(1.0, 0.001, 99, 100, 100, 1.0, 0.0, "0", "test")
    assert decide(1.1, est, 0.99).outcome is Outcome.DISAGREES
    assert decide(0.9, est, 0.99).outcome is Outcome.DISAGREES
    assert decide(0.9, est, 0.99, allowed=(0.9, math.inf)).outcome is Outcome.AGREES
    assert decide(1.1, est, 0.99, allowed=(1.1, math.inf)).outcome is Outcome.DISAGREES
    assert decide(1.02, est, 0.99, allowed=(1.0, 1.04)).outcome is Outcome.AGREES
    assert decide(1.02, est, 0.99, allowed=(1.01, 1.03)).outcome is Outcome.DISAGREES
    inside = decide(0.5, est, 0.99, allowed=(0.5, math.inf))
    assert inside.p_value == pytest.approx(1.0)
    # the family passes each check's range through Holm's procedure
    (d,) = mc.decide_family([0.9], [est], 0.01, allowed=[(0.9, math.inf)])
    assert d.outcome is Outcome.AGREES


def test_one_shared_network_serves_every_observable_of_a_scenario():
    """``measure_many`` runs one simulation: one replicate count, each target met, and the
    same numbers as reading each observable from that one run."""
    sc = {**SCENARIO, "widths": [32, 32, 32], "activation": "tanh"}
    obs = [
        {"direction": "forward", "moment": "m2", "layer": 2},
        {"direction": "forward", "of": "preactivation", "moment": "var", "layer": 1},
        {"direction": "backward", "moment": "m2", "layer": 0},
        {"direction": "forward", "moment": "m2", "layer": 2, "relative_to": 1},
        {"direction": "forward", "moment": "m2", "layer": 1},
    ]
    seed = mc.seed_for(0, "family")
    ests = mc.measure_many(sc, obs, seed=seed, precision=0.02, activations=ACTS)
    assert len({e.n_replicates for e in ests}) == 1
    assert all(e.precision() <= 0.02 for e in ests)
    assert mc.measure_many(sc, obs, seed=seed, precision=0.02, activations=ACTS) == ests
    # the ratio is the ratio of the two second moments read from the same replicates
    assert ests[3].value == pytest.approx(ests[0].value / ests[4].value, rel=1e-12)
    with pytest.raises(ValueError, match="`observables` must be a non-empty list"):
        mc.measure_many(sc, [], seed=seed, activations=ACTS)


def test_the_pilot_is_kept_and_the_run_stops_at_the_target():
    """Sequential sizing: the pilot's replicates count in the estimate, and the run
    stops at the first stage that meets the target precision."""
    est = mc.measure(SCENARIO, VAR1, seed=mc.seed_for(0, "seq"), precision=0.003)
    assert est.n_replicates > 32 and est.precision() <= 0.003
    assert "pilot of 32 replicates" in est.method and f"R = {est.n_replicates}" in est.method
    floor = mc.measure(SCENARIO, VAR1, seed=mc.seed_for(0, "seq"), precision=0.5)
    assert floor.n_replicates == 32 and floor.precision() <= 0.5


def test_fraction_score_interval_leans_away_from_the_edge():
    """Near 0 the fraction's interval reaches further up than down, stays in [0, 1],
    is the t interval far from the edges, and agrees with its p-value."""
    from montecarlo._estimate import Estimate

    near = Estimate(0.004, 0.002, 99, 100, 100, 1.0, 0.0, "0", "test", fraction=True)
    ci = near.confidence_interval(0.9)
    assert 0 < ci.low < near.value < ci.high < 1
    assert ci.high - near.value > near.value - ci.low
    for confidence in (0.9, 0.99):
        ci = near.confidence_interval(confidence)
        for edge in (ci.low, ci.high):
            assert near.p_value(edge) == pytest.approx(1 - confidence, rel=1e-6)
    assert near.p_value(0.0) == 0.0
    middle = Estimate(0.5, 1e-4, 99, 100, 100, 1.0, 0.0, "0", "test", fraction=True)
    t = Estimate(0.5, 1e-4, 99, 100, 100, 1.0, 0.0, "0", "test")
    assert middle.confidence_interval(0.99).high == pytest.approx(
        t.confidence_interval(0.99).high, rel=1e-7
    )


@pytest.mark.parametrize("name", list(ACTS))
def test_derivatives_from_the_output_equal_those_from_the_input(name):
    """The backward pass reads f' from h = f(z) when the caller gives that form: bit for
    bit the same as f'(z), non-finite entries included; residual layers read f'(z)."""
    import montecarlo._engine as engine

    f, fprime, *rest = ACTS[name]
    for dtype in (np.float64, np.float16):
        z = np.random.default_rng(0).standard_normal(1000).astype(dtype) * dtype(4)
        z[:4] = [np.nan, np.inf, -np.inf, 0.0]
        from_output, factor = engine._backward_factor(name, False, ACTS)
        assert from_output == bool(rest and rest[0] is not None)
        g = np.random.default_rng(1).standard_normal(1000).astype(dtype)
        g[4:6] = [np.inf, np.nan]
        with np.errstate(all="ignore"):
            expected = g * fprime(z)
            got = g * factor(f(z) if from_output else z)
        assert got.dtype == expected.dtype
        np.testing.assert_array_equal(got, expected)
    assert engine._backward_factor(name, True, ACTS) == (False, fprime)


def test_the_built_in_identity_skips_the_product_and_yields_to_the_callers_linear():
    """``linear`` is the one name the engine knows without callables: the identity, whose
    backward factor is one (no product); a caller's ``linear`` is used instead when given."""
    import montecarlo._engine as engine

    z = np.array([np.nan, -np.inf, -0.0, 1.5])
    f, fprime = engine._activation("linear", None)
    np.testing.assert_array_equal(f(z), z)
    np.testing.assert_array_equal(fprime(z), np.ones_like(z))
    assert engine._backward_factor("linear", False, None) == (True, None)
    assert engine._activation("linear", ACTS) is ACTS["linear"]
    st = [
        mc.simulate_mlp(mc.mlp_scenario(SCENARIO, acts), 3, 8, mc.seed_for(0, "id"), **kw)
        for acts in (None, ACTS)
        for kw in [{"backward": True, "activations": acts}]
    ]
    np.testing.assert_array_equal(st[0].backward, st[1].backward)
    np.testing.assert_array_equal(st[0].forward, st[1].forward)


@pytest.mark.parametrize(
    "scenario",
    [
        {**SCENARIO, "activation": "tanh"},
        {"kind": "scalar", "activation": "relu", "q": 1.0},
        {
            "kind": "pair",
            "width": 8,
            "depth": 2,
            "activation": "erf",
            "sigma_w2": 1.0,
            "q0": 1.0,
            "c0": 0.5,
        },
    ],
    ids=["mlp", "scalar", "pair"],
)
def test_a_named_activation_needs_its_functions_from_the_caller(scenario):
    """The engine has no copy of any activation but the identity: a name the caller gave
    no functions for is refused, naming ``activation`` and the valid options."""
    observable = (
        {"quantity": "correlation", "layer": 1}
        if scenario.get("kind") == "pair"
        else ({"moment": "m2"} if scenario.get("kind") == "scalar" else VAR1)
    )
    seed = mc.seed_for(0, "unknown")
    with pytest.raises(mc.InvalidScenario, match=r"`activation` must be one of \['linear'\]"):
        mc.measure(scenario, observable, seed=seed)
    unknown = {**scenario, "activation": "gelu"}
    with pytest.raises(
        mc.InvalidScenario, match=r"one of \['linear', 'erf', .*got activation='gelu'"
    ):
        mc.measure(unknown, observable, seed=seed, activations=ACTS)
    with pytest.raises(mc.InvalidScenario, match=r"`activations` must be a mapping"):
        mc.measure(scenario, observable, seed=seed, activations=[ACTS["tanh"]])
    est = mc.measure(scenario, observable, seed=seed, activations=ACTS, precision=0.2)
    assert math.isfinite(est.value)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_the_engine_keeps_freed_memory_for_reuse_under_glibc():
    assert mc.retain_freed_memory() is True
