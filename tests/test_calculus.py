"""The moment calculus: rules, their preconditions, and the three-valued step checks."""

import pytest
import sympy as sp

from derivations import Check, OffDiagonalSum, Status, check_algebraic, check_instance, combine
from derivations._calculus import Ex, factor_independent, linearity, substitute_moments
from derivations._forward import MODEL, gamma, h_prev, i, j, mu_prev, n_prev, v_prev, w
from derivations._kernel import discharge

k = sp.Symbol("k", integer=True, positive=True)


def test_combine_is_three_valued():
    P, R, U = Status.PROVED, Status.REFUTED, Status.UNDECIDED
    assert combine([P, P]) is P
    assert combine([P, U]) is U
    assert combine([U, R, P]) is R
    assert combine([]) is U


def test_off_diagonal_sum_counts_pairs():
    s = OffDiagonalSum(sp.Symbol("c"), j, k, n_prev)
    assert sp.simplify(s.doit() - n_prev * (n_prev - 1) * sp.Symbol("c")) == 0
    a = sp.IndexedBase("a")
    expanded = OffDiagonalSum(a[j] * a[k], j, k, 3).doit()
    want = 2 * (a[1] * a[2] + a[1] * a[3] + a[2] * a[3])
    assert sp.expand(expanded - want) == 0


def test_factoring_dependent_entries_is_undecided():
    # h^{t-1}_j and h^{t-1}_k are not declared independent, so they stay together,
    # while the weights split off.
    rw = factor_independent(Ex(h_prev[j] * h_prev[k] * w[i, j]), MODEL)
    assert rw.after == Ex(h_prev[j] * h_prev[k]) * Ex(w[i, j])
    # two weights with index symbols not known to be distinct: undecided, not proved
    rw = factor_independent(Ex(w[i, j] * w[i, k]), MODEL)
    assert discharge(factor_independent, MODEL, rw.obligations).status is Status.UNDECIDED
    # inside an off-diagonal sum j != k is known, so the same factorization is proved
    rw = factor_independent(OffDiagonalSum(Ex(w[i, j] * w[i, k]), j, k, n_prev), MODEL)
    assert discharge(factor_independent, MODEL, rw.obligations).status is Status.PROVED


def test_linearity_pulls_constants_and_sums():
    rw = linearity(Ex(3 * gamma * sp.Sum(w[i, j] * h_prev[j], (j, 1, n_prev))), MODEL)
    assert rw.after == 3 * gamma * sp.Sum(Ex(w[i, j] * h_prev[j]), (j, 1, n_prev))


def test_moments_come_from_declarations():
    rw = substitute_moments(Ex(h_prev[j] ** 2) + Ex(w[i, j] ** 2) + Ex(w[i, j]), MODEL)
    assert sp.simplify(rw.after - (v_prev + mu_prev**2 + gamma)) == 0


def test_instance_check_refutes_a_wrong_factorization():
    # E[h_j^2 w^2] = E[h_j]^2 E[w^2] is false (it drops the variance of h).
    wrong = check_instance(Ex(h_prev[1] ** 2 * w[i, 1] ** 2), Ex(h_prev[1]) ** 2 * gamma, MODEL, {})
    assert wrong.status is Status.REFUTED
    right = check_instance(
        Ex(h_prev[1] ** 2 * w[i, 1] ** 2), (v_prev + mu_prev**2) * gamma, MODEL, {}
    )
    assert right.status is Status.TESTED  # evidence on instances, never a proof


def test_instance_check_sees_dependent_inputs():
    # The instance's previous-layer entries come from one shared input through a real
    # relu layer: E[h_j^2 h_k^2] is not E[h_j^2] E[h_k^2], and the check must notice.
    before = OffDiagonalSum(Ex(h_prev[j] ** 2 * h_prev[k] ** 2), j, k, n_prev)
    after = OffDiagonalSum((v_prev + mu_prev**2) ** 2, j, k, n_prev)
    assert check_instance(before, after, MODEL, {}).status is Status.REFUTED


def test_algebraic_check_refutes_and_proves():
    x = sp.Symbol("x")
    assert check_algebraic((x + 1) ** 2, x**2 + 2 * x + 1, {}).status is Status.PROVED
    assert check_algebraic((x + 1) ** 2, x**2 + 1, {}).status is Status.REFUTED
    assert check_algebraic(x * mu_prev, 0, {mu_prev: 0}).status is Status.PROVED


@pytest.mark.parametrize("status", list(Status))
def test_check_is_frozen(status):
    c = Check("m", status, "d")
    with pytest.raises(AttributeError):
        c.status = Status.PROVED
