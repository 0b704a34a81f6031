"""The engine: validation, seeding, honest intervals, and refusing wrong claims."""

import math

import numpy as np
import pytest
import sympy as sp
from scipy import stats

import montecarlo as mc
from derivations._forward import forward_variance, n_prev

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
        ({"activation": "gelu"}, r"`activation` must be one of \['linear', 'relu'"),
        ({"dtype": "float8"}, r"`dtype` must be one of \['float16', 'float32', 'float64'\]"),
        ({"input": {"law": "normal", "mean": 0.0, "std": 0}}, r"`input.std`"),
    ],
)
def test_bad_scenarios_name_the_argument(change, message):
    with pytest.raises(mc.InvalidScenario, match=message):
        mc.mlp_scenario({**SCENARIO, **change})


def test_bad_observable_names_the_layer():
    with pytest.raises(
        mc.InvalidScenario, match=r"`observable.layer` must be an integer in \[0, 1\]"
    ):
        mc.measure(SCENARIO, {**VAR1, "layer": 2}, seed=mc.seed_for(0, "x"))


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


def test_weights_are_sampled_in_their_native_parameters():
    rng = np.random.default_rng(0)
    u = mc.sample_weights(rng, mc.WeightLaw("uniform", bound=0.5), (200_000,), np.dtype("float64"))
    assert u.min() >= -0.5 and u.max() <= 0.5
    t = mc.sample_weights(
        rng, mc.WeightLaw("truncated_normal", std=2.0), (200_000,), np.dtype("float32")
    )
    assert t.dtype == np.float32 and abs(t).max() <= 4.0


def test_activations_have_independent_numpy_forms():
    x = np.linspace(-3, 3, 7)
    assert np.array_equal(mc.ACTIVATIONS["relu"](x), np.where(x > 0, x, 0.0))
    assert np.allclose(mc.ACTIVATIONS["sigmoid"](x), 1 / (1 + np.exp(-x)))
