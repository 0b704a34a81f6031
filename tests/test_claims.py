"""Every registered claim: its derivation is fully checked and its probes are derived."""

import re

import pytest
import sympy as sp

import derivations
from derivations import Status
from derivations._forward import forward_variance, gamma, mu_prev, n_prev, v_prev

CLAIMS = derivations.claims()


@pytest.mark.parametrize("claim", CLAIMS, ids=[c.id for c in CLAIMS])
def test_every_step_is_checked(claim):
    for d in claim.derivations:
        assert d.steps, f"{claim.id}/{d.name} has no steps"
        for s in d.steps:
            assert s.checks, f"{claim.id}/{d.name}/{s.rule} was not checked"
            assert s.status is not Status.REFUTED, s


@pytest.mark.parametrize("claim", CLAIMS, ids=[c.id for c in CLAIMS])
def test_claim_has_probes_and_lecture_ids(claim):
    assert claim.lecture and all(re.fullmatch(r"L\d+\.\d+|S\d+|B\d+", x) for x in claim.lecture)
    assert len({p.label for p in claim.probes}) == len(claim.probes)
    assert len(claim.probes) >= 2


def test_forward_variance_is_proved_with_the_lecture_result():
    c = forward_variance()
    assert c.status is Status.PROVED
    mean, second, variance = c.derivations
    assert mean.result == 0
    assert sp.simplify(variance.result - n_prev * gamma * v_prev) == 0
    # the zero-mean assumption is used by exactly one step, the last
    uses = [s.uses for s in (*second.steps, *variance.steps)]
    assert uses[-1] == ("zero-mean-input",) and not any(uses[:-1])
    # before that step the result is He's second-moment form, used by name
    assert sp.simplify(second.result - n_prev * gamma * (v_prev + mu_prev**2)) == 0
    assert variance.steps[0].rule == "uses forward-variance"
    assert variance.steps[0].after == second.result
    assert sp.Eq(gamma, 1 / n_prev) in c.conditions


def test_forward_probes_follow_the_derived_formula():
    c = forward_variance()
    for p in c.probes:
        sc = p.scenario
        if p.observable["moment"] == "mean":
            assert p.predicted == 0
            continue
        n_in = sc["widths"][0]
        w = sc["weights"]
        var_w = w["std"] ** 2 if w["law"] == "normal" else w["bound"] ** 2 / 3
        var_in = sc["input"]["std"] ** 2
        assert p.predicted == pytest.approx(n_in * var_w * var_in, rel=1e-12)


def test_unknown_claim_id_lists_the_valid_ones():
    with pytest.raises(KeyError, match="forward-variance"):
        derivations.claim("no-such-claim")


def test_every_network_probe_takes_its_activation_from_the_table(all_claims):
    """The engine accepts every registered probe's scenario with the table's NumPy side,
    so every runner of the probes (the evidence, the bench) can pass the same functions."""
    import montecarlo

    table = derivations.simulation_activations()
    probes = [p for c in all_claims for p in c.probes]
    named = {p.scenario.get("activation") for p in probes} - {None}
    assert named <= set(table), named - set(table)
    for p in probes:
        pair = p.scenario.get("kind") == "pair"
        (montecarlo.pair_scenario if pair else montecarlo.scenario)(p.scenario, table)
