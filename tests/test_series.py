"""Tests of :func:`derivations._series.check_series`: series steps ``before = P + O(x**k)``."""

from __future__ import annotations

import time

import pytest
import sympy as sp
from sympy import stats

from derivations._budget import CHECK_SECONDS
from derivations._claim import Check, Status
from derivations._gaussian import gaussian_integral
from derivations._series import check_series

q = sp.Symbol("q", positive=True)
x = sp.Symbol("x", real=True)
s = sp.Symbol("s", positive=True)
sigmoid = 1 / (1 + sp.exp(-x))


def E(f: sp.Expr, variance: sp.Expr = q) -> sp.Integral:
    """E[f(x)] for x ~ N(0, variance), written with the density in x."""
    density = sp.exp(-(x**2) / (2 * variance)) / sp.sqrt(2 * sp.pi * variance)
    return sp.Integral(f * density, (x, -sp.oo, sp.oo))


def run(before: sp.Expr, after: sp.Expr, **kwargs: float) -> Check:
    """``check_series`` timed: every check ends within the budget and never says proved."""
    start = time.monotonic()
    check = check_series(before, after, **kwargs)
    elapsed = time.monotonic() - start
    assert elapsed < CHECK_SECONDS, f"check took {elapsed:.1f} s"
    assert check is not None
    assert check.method == "series"
    assert check.status in (Status.COMPUTED, Status.UNDECIDED, Status.REFUTED)
    return check


# ------------------------------------------------------------------------- not a series


@pytest.mark.parametrize(
    "before, after",
    [
        (sp.sin(x), sp.sin(x)),
        (sp.sin(x), x - x**3 / 6),
        (sp.exp(1 / x), sp.O(1 / x, (x, sp.oo))),
        (sp.sin(x), x + sp.O((x - 1) ** 2, (x, 1))),
    ],
)
def test_not_a_series_step_gives_none(before, after):
    assert check_series(before, after) is None


@pytest.mark.parametrize(
    "after, reason",
    [
        (q - 2 * q**2 + sp.O(q ** sp.Rational(5, 2)), "non-integer exponent"),
        (1 + sp.O(x * q, x, q), "multivariate"),
        (1 + sp.O(x**2 * sp.log(x)), "not a power"),
    ],
)
def test_unsupported_order_terms_are_undecided(after, reason):
    check = run(E(sp.tanh(x) ** 2), after)
    assert check.status is Status.UNDECIDED
    assert reason in check.detail


# ------------------------------------------------------------------------- true steps


GAUSSIAN_TRUE = [
    pytest.param(E(sp.tanh(x) ** 2), q - 2 * q**2 + sp.O(q**3), id="tanh^2"),
    pytest.param(E((4 * sigmoid - 2) ** 2), q - q**2 / 2 + sp.O(q**3), id="(4 sigmoid - 2)^2"),
    pytest.param(E((4 * sigmoid - 2) ** 2), q + sp.O(q**2), id="(4 sigmoid - 2)^2 to O(q^2)"),
    pytest.param(E(sp.Max(0, x) ** 2), q / 2 + sp.O(q**3), id="relu^2 (exact)"),
    pytest.param(E(x**2), q + sp.O(q**2), id="x^2 (exact)"),
    pytest.param(
        E(sp.tanh(x) ** 2), q - 2 * q**2 + 17 * q**3 / 3 + sp.O(q**4), id="tanh^2 to O(q^4)"
    ),
    pytest.param(E(sp.tanh(x) ** 2) / q, 1 - 2 * q + sp.O(q**2), id="E[tanh^2]/q"),
    pytest.param(sp.sqrt(E(sp.Max(0, x) ** 2)), sp.sqrt(q / 2) + sp.O(q**2), id="sqrt E[relu^2]"),
    pytest.param(
        E(sp.tanh(x) ** 2, s**2), s**2 - 2 * s**4 + sp.O(s**6), id="variance s^2, series in s"
    ),
]


@pytest.mark.parametrize("before, after", GAUSSIAN_TRUE)
def test_true_gaussian_expansions_are_computed(before, after):
    check = run(before, after)
    assert check.status is Status.COMPUTED, check.detail
    assert "term-by-term Gaussian moments" in check.detail
    assert "numeric guard agrees" in check.detail


@pytest.mark.parametrize(
    "before",
    [
        pytest.param(gaussian_integral(sp.tanh(x) ** 2, x, q), id="gaussian_integral"),
        pytest.param(
            stats.Expectation(sp.tanh(stats.Normal("X", 0, sp.sqrt(q))) ** 2), id="Expectation"
        ),
        pytest.param(
            stats.E(sp.tanh(stats.Normal("Y", 0, sp.sqrt(q))) ** 2, evaluate=False), id="stats.E"
        ),
    ],
)
def test_every_form_of_the_gaussian_expectation_is_recognised(before):
    check = run(before, q - 2 * q**2 + sp.O(q**3))
    assert check.status is Status.COMPUTED, check.detail
    assert "E[tanh(u)**2], u ~ N(0, q)" in check.detail


def test_relu_expectation_form_is_exact():
    relu = sp.Max(0, stats.Normal("X", 0, sp.sqrt(q))) ** 2
    check = run(stats.Expectation(relu), q / 2 + sp.O(q**3))
    assert check.status is Status.COMPUTED, check.detail
    assert "vanishes to working precision" in check.detail


@pytest.mark.parametrize(
    "before, after",
    [
        (sp.sin(x), x - x**3 / 6 + sp.O(x**5)),
        (sp.exp(x), 1 + x + x**2 / 2 + sp.O(x**3)),
        (sp.cos(x), 1 - x**2 / 2 + sp.O(x**4)),
        (sp.log(1 + x) / x, 1 - x / 2 + x**2 / 3 + sp.O(x**3)),
    ],
)
def test_true_function_series_are_computed_on_both_sides(before, after):
    check = run(before, after)
    assert check.status is Status.COMPUTED, check.detail
    assert "sympy.series" in check.detail
    assert "x -> 0+" in check.detail and "x -> 0-" in check.detail


# ------------------------------------------------------------------------ wrong steps


@pytest.mark.parametrize(
    "before, after, term",
    [
        pytest.param(E(sp.tanh(x) ** 2), q - q**2 + sp.O(q**3), "-q**2", id="tanh^2 coefficient"),
        pytest.param(sp.sin(x), x + x**3 / 6 + sp.O(x**5), "-x**3/3", id="sin sign"),
        pytest.param(E((4 * sigmoid - 2) ** 2), 2 * q + sp.O(q**2), "-q", id="(4 sigmoid-2)^2"),
        pytest.param(E(sp.Max(0, x) ** 2), q + sp.O(q**2), "-q/2", id="relu^2 = q"),
        pytest.param(sp.Abs(x), x + sp.O(x**2), "-2*x", id="|x| on x < 0"),
    ],
)
def test_wrong_steps_are_refuted_with_a_counterexample(before, after, term):
    check = run(before, after)
    assert check.status is Status.REFUTED, check.detail
    assert f"leading term {term}" in check.detail
    assert "numeric guard confirms" in check.detail
    assert check.counterexample is not None
    assert set(check.counterexample) >= {"before - P", term}


def test_verdicts_are_deterministic():
    first = run(E(sp.tanh(x) ** 2), q - q**2 + sp.O(q**3))
    second = run(E(sp.tanh(x) ** 2), q - q**2 + sp.O(q**3))
    assert (first.status, first.detail) == (second.status, second.detail)
    assert first.counterexample == second.counterexample


def test_other_symbols_get_values_and_steps_stay_checked():
    w = sp.Symbol("w", positive=True)
    good = run(E(sp.tanh(w * x) ** 2), w**2 * q - 2 * w**4 * q**2 + sp.O(q**3))
    assert good.status is Status.COMPUTED, good.detail
    bad = run(E(sp.tanh(w * x) ** 2), w**2 * q - w**4 * q**2 + sp.O(q**3))
    assert bad.status is Status.REFUTED, bad.detail


# ----------------------------------------------------------- SymPy's half-integer bug

half_sigmoid = 1 / (1 + sp.exp(-sp.sqrt(q)))
RIGHT = sp.Rational(1, 2) + sp.sqrt(q) / 4 - q ** sp.Rational(3, 2) / 48 + sp.O(q**2)


def test_sympys_dropped_sqrt_term_is_not_computed():
    # SymPy 1.14: series(1/(1 + exp(-sqrt(q))), q, 0, 2) = 1/2 + O(q**2)
    sympys_own = sp.series(half_sigmoid, q, 0, 2)
    check = run(half_sigmoid, sympys_own)
    if sympys_own.removeO().has(q):  # a fixed SymPy: its expansion is right
        assert check.status is Status.COMPUTED, check.detail
    else:
        assert check.status is Status.REFUTED, check.detail
        assert "sqrt(q)/4" in check.detail
    wrong = run(half_sigmoid, sp.Rational(1, 2) + sp.O(q**2))
    assert wrong.status is Status.REFUTED
    assert "sympy.series in t = sqrt(q)" in wrong.detail


def test_the_right_half_integer_expansion_is_computed():
    check = run(half_sigmoid, RIGHT)
    assert check.status is Status.COMPUTED, check.detail
    assert "sympy.series in t = sqrt(q)" in check.detail


def test_symbolic_and_numeric_disagreement_is_undecided():
    # for a q without assumptions the expansion stays in q, where SymPy 1.14 is wrong
    p = sp.Symbol("q")
    bare = 1 / (1 + sp.exp(-sp.sqrt(p)))
    sympys_own = sp.series(bare, p, 0, 2)
    if sympys_own.removeO().has(p):
        pytest.skip("this SymPy expands 1/(1 + exp(-sqrt(q))) correctly")
    check = run(bare, sympys_own)
    assert check.status is Status.UNDECIDED, check.detail
    assert "numeric guard disagrees" in check.detail
    assert "local exponent 0.50" in check.detail
    right = run(bare, RIGHT.subs(q, p))
    assert right.status is Status.UNDECIDED, right.detail
    assert "leading term -sqrt(q)/4, but the numeric guard disagrees" in right.detail


# ------------------------------------------------------ guard that cannot run, budgets


@pytest.mark.parametrize(
    "before, after, reason",
    [
        pytest.param(
            sp.Function("f")(x),
            sp.Function("f")(0) + sp.O(x),
            "NameError",
            id="undefined function",
        ),
        pytest.param(sp.sqrt(x - 1), sp.I * (1 - x / 2) + sp.O(x**2), "not real", id="complex"),
    ],
)
def test_a_guard_that_cannot_run_is_undecided(before, after, reason):
    check = run(before, after)
    assert check.status is Status.UNDECIDED, check.detail
    assert "the numeric guard could not run" in check.detail
    assert reason in check.detail


def test_an_unexpandable_integral_is_undecided():
    f = sp.Function("f")
    check = run(E(f(x)), f(0) + sp.O(q))
    assert check.status is Status.UNDECIDED, check.detail


def test_running_out_of_time_is_undecided_and_names_the_operation():
    check = run(E(sp.tanh(x) ** 6 + sp.sin(x) ** 8), 15 * q**3 + sp.O(q**4), seconds=0.05)
    assert check.status is Status.UNDECIDED, check.detail
    assert "took longer than" in check.detail


def test_seconds_must_be_positive():
    with pytest.raises(ValueError, match="seconds"):
        check_series(sp.sin(x), x + sp.O(x**3), seconds=0)
