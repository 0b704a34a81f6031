"""Calibration of the engine's decisions: true claims pass at the promised rate, and
claims a few percent off are refused. Slow, and run in CI."""

import numpy as np
import pytest
from scipy import stats

import derivations
import montecarlo as mc

pytestmark = pytest.mark.slow
#: The activation table's NumPy side, what the engine simulates named activations with.
ACTS = derivations.simulation_activations()

#: A run of 100 checks at the default family-wise budget.
CONFIDENCE = mc.per_check_confidence(0.01, 100)


def _linear(widths, std):
    return {
        "widths": list(widths),
        "weights": {"law": "normal", "std": std},
        "activation": "linear",
        "input": {"law": "normal", "mean": 0.0, "std": 1.0},
    }


FORWARD = {"direction": "forward", "moment": "var", "layer": 1}


def test_true_one_step_claim_is_covered_at_the_promised_rate():
    """At a per-check confidence of 0.9 (chosen so misses are frequent enough to count),
    the interval covers the truth in about 90% of seeds: a binomial test."""
    sc = _linear((64, 96), 0.125)
    truth = 64 * 0.125**2  # n_in * std^2: the exact variance of a linear layer
    runs = 300
    covered = 0
    for s in range(runs):
        est = mc.measure(sc, FORWARD, seed=mc.seed_for(s, "calibration"), activations=ACTS)
        ci = est.confidence_interval(0.9)
        covered += ci.low <= truth <= ci.high
    assert stats.binomtest(covered, runs, 0.9).pvalue > 1e-3, f"{covered}/{runs} covered"


def test_true_claims_agree_at_the_family_confidence():
    sc = _linear((64, 96), 0.125)
    outcomes = [
        mc.decide(
            64 * 0.125**2,
            mc.measure(sc, FORWARD, seed=mc.seed_for(s, "agree"), activations=ACTS),
            CONFIDENCE,
        ).outcome
        for s in range(100)
    ]
    # at confidence 1 - 1e-4 a false alarm in 100 runs has probability about 1%
    assert outcomes.count(mc.Outcome.DISAGREES) <= 1


@pytest.mark.parametrize(
    ("name", "scenario", "observable", "wrong"),
    [
        # a wrong constant: the variance 3% high
        ("constant", _linear((64, 96), 0.125), FORWARD, 1.03 * 64 * 0.125**2),
        # the wrong fan: n_out in place of n_in, widths 3% apart
        ("fan", _linear((100, 103), 0.1), FORWARD, 103 * 0.1**2),
        # a missing activation factor: relu's E[relu(z)^2] = q/2 predicted as 0.485 q
        (
            "activation",
            {**_linear((128, 128, 128), 1 / np.sqrt(128)), "activation": "relu"},
            {
                "direction": "forward",
                "of": "preactivation",
                "moment": "m2",
                "layer": 2,
                "relative_to": 1,
            },
            0.97 * 0.5,
        ),
    ],
)
def test_claims_three_percent_off_are_refused(name, scenario, observable, wrong):
    runs = 100
    refused = sum(
        mc.decide(
            wrong,
            mc.measure(scenario, observable, seed=mc.seed_for(s, "power", name), activations=ACTS),
            CONFIDENCE,
        ).outcome
        is mc.Outcome.DISAGREES
        for s in range(runs)
    )
    assert refused >= 99, f"{name}: refused {refused}/{runs}"


def test_depth_1000_width_1024_backward_fits_in_one_gib():
    """Peak memory of a full forward and backward pass, measured in a fresh process."""
    import subprocess
    import sys

    code = (
        "import resource, derivations, montecarlo as mc\n"
        "acts = derivations.simulation_activations()\n"
        "sc = mc.mlp_scenario({'widths': [1024] * 1001, 'weights': {'law': 'normal', "
        "'std': 1024 ** -0.5}, 'activation': 'tanh'}, acts)\n"
        "seed = mc.seed_for(0, 'memory')\n"
        "st = mc.simulate_mlp(sc, 1, 8, seed, backward=True, activations=acts)\n"
        "assert (st.backward[0, :, 1] > 0).all()\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    peak_kib = int(run.stdout.split()[-1])
    assert peak_kib < 1024 * 1024, f"peak {peak_kib / 1024:.0f} MiB"
