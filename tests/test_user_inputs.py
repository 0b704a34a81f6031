"""Your own activation, initializer or claim: never a crash, a hang or a confident wrong number.

* a fixed list of hostile but whitelisted inputs (nested compositions, kinks, jumps,
  poles, narrow spikes, divergent moments, size bombs) through the command line, each
  ending in exit 0 or exit 2 with a message naming the argument, within its time limit;
* a property-based test (Hypothesis) that generates whitelisted expressions, nested and
  composed, with the same assertions;
* the numbers: every Gaussian moment is exact, or numeric with an error that two
  independent quadratures support, or undecided; the spike of the issue gives 68.2465;
* the activations by name, each ``E[f(z)^2]`` at ``q = 1`` against an independent
  computation (closed forms, SciPy quadrature of hand-written NumPy forms) and, where
  PyTorch has one, against ``torch.nn.init.calculate_gain`` (values from
  ``torch/nn/init.py``: linear and sigmoid 1, tanh 5/3, relu sqrt(2), leaky_relu
  sqrt(2/(1 + slope^2)) with slope 0.01 by default, selu 3/4 (pytorch PR #50664));
* limits before allocation, the derivative cross-check, the recorded derivation.
"""

from __future__ import annotations

import json
import math
import time
import tracemalloc

import numpy as np
import pytest
import sympy as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import integrate, special, stats

from cli import parser
from cli._commands import run
from derivations._budget import BudgetExceeded
from derivations._claim import STATUSES, Status
from derivations._gaussian import (
    Budget,
    TimeLimitExceeded,
    checked_moment,
    compare_methods,
    deadline,
)
from derivations._user import (
    SELU_ALPHA,
    SELU_SCALE,
    InputError,
    _derivative_check,
    analyze_activation,
    parse_expression,
)

x = sp.Symbol("x", real=True)

#: Seconds allowed per symbolic or numeric operation in these tests, and for a command.
#: Three, not one: on a loaded two-core machine a quadrature that takes well under a
#: second alone (tanh(tanh(tanh(tanh(x))))) ran past a one-second budget.
BUDGET = "3"
TIME_LIMIT = 60.0


def cli(*argv: str, capsys) -> tuple[int, str, str, float]:
    """Run ``initproof ARGV`` in this process: exit code, stdout, stderr, seconds.

    Any exception escaping the command line (a traceback) fails the test.
    """
    args = parser().parse_args(list(argv))
    start = time.monotonic()
    code = run(args)
    seconds = time.monotonic() - start
    out, err = capsys.readouterr()
    return code, out, err, seconds


def _assert_clean(code: int, out: str, err: str, seconds: float, limit: float) -> None:
    assert code in (0, 2), (code, err)
    assert "Traceback" not in err + out
    assert "internal failure" not in err, err
    assert seconds < limit + 10, seconds
    if code == 0:
        assert err == "", err  # no warning leaks to stderr
    else:
        assert out == "" and err.startswith("initproof ") and "error:" in err
        assert "`" in err or "time limit" in err  # names the argument (or the limit)


# --------------------------------------------------------------------------- hostile inputs

#: (expression, expected exit code, a fragment of the output or of the error)
HOSTILE = [
    ("Heaviside(x)", 2, "jumps by 1 at x = 0"),
    ("x+sign(x)", 2, "jumps by 2"),
    ("1/(1+x**2)**32", 0, "E[f(z)^2]"),
    ("sin(x**2)", 0, "E[f(z)^2]"),
    ("tanh(tanh(tanh(tanh(x))))", 0, "E[f(z)^2]   = 0.179494  (0.1794942221"),
    ("sigmoid(sigmoid(sigmoid(x)))", 0, "E[f(z)^2]   = 0.423165  (0.4231647746"),
    ("(x,)*10**8", 2, "tuple"),
    ("[x]*10**8", 2, "token '['"),
    ("x**x", 2, "not real and finite"),
    ("exp(x**2/3)", 2, "diverges at q = 1"),
    ("exp(x**2/5)", 2, "finite only for q < 1.25"),
    ("log(Abs(x))", 2, "unbounded"),
    ("1/(x - 0.123)", 2, "unbounded (or not real) next to x = 0.123"),
    ("sqrt(Abs(x))", 2, "E[f'(z)^2] diverges"),
    ("Abs(x)**0.75", 0, "E[f(z)^2]"),
    ("9**9**9", 2, "numeric exponents"),
    ("(10**64)**64", 2, "larger than 10**1000"),
    (
        "exp(exp(exp(exp(exp(exp(exp(exp(exp(exp(exp(exp(exp(exp(exp(exp(exp(x)))))))))))))))))",
        2,
        "",
    ),
    ("+".join(["x"] * 120), 2, "more than 200"),
    ("x*0", 2, "must depend on x"),
    ("Max(0, x) - Max(0, x - 1) + Abs(x + 2)", 0, "E[f(z)^2]   ="),
    ("exp(-10**6*x**2)", 0, "E[f(z)^2]"),
    ("x + 50*exp(-10**8*(x - 0.5)**2)", 0, "E[f(z)^2]"),
    ("sin(1/x)", 2, ""),
    ("gelu(tanh(silu(x)))", 0, "E[f(z)^2]"),
    ("mish(mish(x))", 0, "E[f(z)^2]"),
    ("softsign(softsign(x))*hardtanh(2*x)", 0, "E[f(z)^2]"),
    ("Piecewise((x, x > 0), (x/10, True))", 0, "calculate_gain('leaky_relu', 0.1)"),
    ("Piecewise((x, x > 0))", 2, "condition True"),
    ("Piecewise((x, x > 0), (1, True))", 2, "jumps"),
    ("x > 0", 2, "compares"),
    ("leaky_relu(x, x)", 2, "slope a must be a number"),
    ("exp(x)", 0, "E[f(z)^2]   = exp(2)  (7.389056099; exact)"),
    ("x**64", 0, "E[f(z)^2]"),
]


@pytest.mark.parametrize(("expr", "code", "fragment"), HOSTILE)
def test_hostile_activation(expr, code, fragment, capsys):
    got, out, err, seconds = cli(
        "activation", expr, "--no-simulate", "--budget", BUDGET, "--time-limit",
        str(TIME_LIMIT), capsys=capsys,
    )  # fmt: skip
    _assert_clean(got, out, err, seconds, TIME_LIMIT)
    assert got == code, (out[-2000:], err)
    assert fragment in (out if code == 0 else err)


def test_the_spike_of_the_issue_is_68_2465_or_undecided(capsys):
    """E[f(z)^2] for tanh(x) + 1000 exp(-10^6 (x-2)^2): 68.2465, never 0.394 with an error bar."""
    code, out, err, seconds = cli(
        "activation", "tanh(x)+1000*exp(-1000000*(x-2)**2)", "--no-simulate", "--budget", "2",
        capsys=capsys,
    )  # fmt: skip
    _assert_clean(code, out, err, seconds, 300)
    line = next(s for s in out.splitlines() if s.strip().startswith("E[f(z)^2]   ="))
    assert "= 68.2465  (68.2464697" in line or "undecided" in line
    assert "0.394294" not in line
    assert " bound" not in line.replace("not a bound", "")
    # independent: E[tanh^2] + 2000 E[tanh(z) e^{-a(z-2)^2}] + 10^6 E[e^{-2a(z-2)^2}]
    a = 1e6
    tanh2 = integrate.quad(lambda t: np.tanh(t) ** 2 * stats.norm.pdf(t), -40, 40, limit=400)[0]
    cross = integrate.quad(
        lambda t: np.tanh(t) * np.exp(-a * (t - 2) ** 2) * stats.norm.pdf(t),
        1.98,
        2.02,
        points=[2.0],
        limit=400,
    )[0]
    gaussian = math.exp(-2 * a * 4 / (1 + 4 * a)) / math.sqrt(1 + 4 * a)
    assert tanh2 + 2000 * cross + 1e6 * gaussian == pytest.approx(68.2464697263136, rel=1e-9)


@pytest.mark.parametrize(
    "argv",
    [
        ["init", "normal", "--var", "1/n_in", "--activation", "Heaviside(x)", "--widths", "8,8"],
        ["init", "normal", "--var", "(n_in,)*10**8", "--widths", "8,8"],
        ["init", "uniform", "--bound", "sqrt(6/(n_in+n_out))", "--activation", "gelu(x)"],
        ["init", "normal", "--var", "exp(n_in)**64", "--widths", "8,8"],
        [
            "claim", "--dist", "normal", "--var", "1/n_in", "--activation",
            "tanh(x)+1000*exp(-1000000*(x-2)**2)", "--widths", "16,16,16", "--layer", "2",
            "--expect", "1",
        ],
        [
            "claim", "--dist", "normal", "--var", "2/n_in", "--activation", "exp(x**2/3)",
            "--widths", "8,8", "--layer", "1", "--expect", "1",
        ],
    ],
)  # fmt: skip
def test_hostile_init_and_claim(argv, capsys):
    code, out, err, seconds = cli(*argv, "--no-simulate", "--budget", BUDGET, capsys=capsys)
    assert code in (0, 1, 2, 3)
    if argv[0] == "init" or code == 2:
        _assert_clean(code, out, err, seconds, TIME_LIMIT)


def test_time_limit_stops_the_command_with_exit_2(capsys):
    code, out, err, seconds = cli(
        "activation", "sin(x**2)", "--no-simulate", "--time-limit", "1.5", capsys=capsys
    )
    assert code == 2 and out == ""
    assert "time limit" in err and "--time-limit 1.5" in err
    assert seconds < 8


def test_simulation_runs_with_a_checked_derivative(capsys):
    code, out, err, seconds = cli(
        "activation", "elu(x)", "--width", "16", "--depth", "3", "--precision", "0.2",
        "--json", capsys=capsys,
    )  # fmt: skip
    _assert_clean(code, out, err, seconds, 300)
    data = json.loads(out)
    assert data["derivative_check"]["status"] == "tested"
    checks = {c["probe"]: c for c in data["checks"]}
    assert checks["m2-of-f"]["outcome"] == "agrees"
    assert checks["m2-of-derivative"]["outcome"] == "agrees"


# --------------------------------------------------------------------------- property test

UNARY = [
    "tanh", "sigmoid", "sin", "cos", "atan", "erf", "relu", "softplus", "Abs", "gelu",
    "gelu_tanh", "silu", "mish", "softsign", "elu", "selu", "hardtanh", "exp", "sqrt", "log",
    "sinh", "cosh", "sign", "Heaviside", "erfc",
]  # fmt: skip
LEAVES = st.one_of(
    st.just("x"),
    st.sampled_from(["0", "1", "2", "0.5", "3", "pi", "E", "10", "0.001", "1000"]),
)


def _expressions() -> st.SearchStrategy[str]:
    def extend(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            st.builds(lambda f, a: f"{f}({a})", st.sampled_from(UNARY), children),
            st.builds(
                lambda a, op, b: f"({a}){op}({b})", children, st.sampled_from("+-*/"), children
            ),
            st.builds(lambda a, k: f"({a})**{k}", children, st.sampled_from(["2", "3", "-1"])),
            st.builds(
                lambda f, a, b: f"{f}({a}, {b})",
                st.sampled_from(["Max", "Min"]),
                children,
                children,
            ),
            st.builds(
                lambda a, s: f"leaky_relu({a}, {s})", children, st.sampled_from(["0.2", "2"])
            ),
            st.builds(
                lambda a, b, c: f"Piecewise(({a}, x > {c}), ({b}, True))",
                children,
                children,
                st.sampled_from(["0", "1", "-0.5"]),
            ),
        )

    return st.recursive(LEAVES, extend, max_leaves=6).filter(lambda s: "x" in s)


# A SIGALRM budget that fires inside a garbage-collector callback (Hypothesis installs
# one) is reported as unraisable instead of raised; see the note in the report.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
    ],
)
@given(expr=_expressions(), as_json=st.booleans())
def test_property_whitelisted_expressions_end_in_0_or_2(expr, as_json, capsys):
    limit = 30.0
    flags = ["--json"] if as_json else []
    code, out, err, seconds = cli(
        "activation", expr, "--no-simulate", "--budget", "0.5", "--time-limit", str(limit),
        *flags, capsys=capsys,
    )  # fmt: skip
    _assert_clean(code, out, err, seconds, limit)
    if code == 0 and as_json:
        data = json.loads(out)
        assert data["status"] in {str(s) for s in STATUSES}
        for key in ("mean", "m2", "d2"):
            m = data["moments_q1"][key]
            assert m["status"] in ("exact", "numeric", "undecided")
            assert (m["value"] is None) == (m["status"] == "undecided")


# --------------------------------------------------------------------------- size limits


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("(x,)*10**8", "tuple"),
        ("(10**64)**64", "larger than"),
        ("x**(2**7)", "numeric exponents"),
        ("-" * 40 + "x", "deep"),
        ("Max(x, y=1)", "name 'y'"),
        ("Piecewise(x, x > 0)", "not a pair"),
        ("Piecewise((x, True), (0, x > 0))", "before the last piece"),
        ("Piecewise((x, 0 < x < 1), (0, True))", "one comparison"),
        ("1e999*x", "not finite"),
    ],
)
def test_limits_are_checked_before_anything_is_built(text, match):
    tracemalloc.start()
    try:
        with pytest.raises(InputError, match=match):
            parse_expression(text, argument="EXPR")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5 * 2**20  # a few MiB at most, never the 0.9 GB of (x,)*10**8


# --------------------------------------------------------------------------- honest numbers


def test_two_methods_that_disagree_give_undecided():
    status, value, _, diff, reason = compare_methods((1.0, 1e-13), (1.001, 1e-30), ("", ""))
    assert status == "undecided" and value is None and diff == pytest.approx(1e-3)
    assert "disagree" in reason
    status, value, error, _, _ = compare_methods((0.5, 1e-15), (0.5 + 1e-16, 1e-30), ("", ""))
    assert status == "numeric" and value == 0.5 + 1e-16 and error == pytest.approx(1e-15)
    status, value, _, _, reason = compare_methods(None, (0.5, 0.0), ("QUADPACK failed", ""))
    assert status == "undecided" and "QUADPACK failed" in reason


@pytest.mark.parametrize(
    ("text", "status"),
    [("exp(2*x**2/3)", "divergent"), ("1/Abs(x)", "divergent"), ("tanh(x)**2", "numeric")],
)
def test_divergent_moments_are_said_to_diverge(text, status):
    m = checked_moment(sp.sympify(text, locals={"x": x}), x, 1.0)
    assert m.status == status
    if status == "divergent":
        assert (m.value is None and "infinite" in m.reason) or "not integrable" in m.reason


def test_budget_turns_a_timeout_into_a_reason_and_the_deadline_into_an_error():
    def slow():
        t = time.monotonic()
        while time.monotonic() - t < 5:
            pass

    start = time.monotonic()
    ok, value, why = Budget(0.2).attempt("spinning", slow)
    assert not ok and value is None and "budget of 0.2 s" in why
    assert time.monotonic() - start < 2
    with deadline(0.3), pytest.raises(TimeLimitExceeded):
        Budget(5).attempt("spinning", slow)
    assert not issubclass(TimeLimitExceeded, BudgetExceeded)


def test_the_text_never_calls_an_estimate_a_bound(capsys):
    code, out, _err, _ = cli("activation", "tanh(x)", "--no-simulate", capsys=capsys)
    assert code == 0
    assert "error <=" not in out
    assert out.count(" bound") == out.count("not a bound")


# --------------------------------------------------------------------------- derivative and steps


def test_derivative_cross_check_refutes_a_wrong_derivative():
    right = _derivative_check(sp.tanh(x), 1 - sp.tanh(x) ** 2, ())
    assert right.status is Status.TESTED
    wrong = _derivative_check(sp.tanh(x), 1 - sp.tanh(x) ** 2 / 2, ())
    assert wrong.status is Status.REFUTED and "finite differences" in wrong.detail


def test_derivation_is_recorded_step_by_step_in_json(capsys):
    code, out, err, _ = cli("activation", "relu(x)", "--no-simulate", "--json", capsys=capsys)
    assert code == 0, err
    data = json.loads(out)
    names = [d["name"] for d in data["derivations"]]
    for name in ("f'(x)", "f(0)", "E[f(z)^2]", "E[f'(z)^2]"):
        assert name in names
    assert any(n.startswith("forward-preserving gain") for n in names)
    statuses = {str(s) for s in STATUSES}
    for d in data["derivations"]:
        assert d["status"] in statuses
        for step in d["steps"]:
            assert step["status"] in statuses and step["checks"]
    m2 = next(d for d in data["derivations"] if d["name"] == "E[f(z)^2]")
    assert m2["status"] == "proved" and m2["result"] == "1/2"
    assert data["status"] in statuses


def test_numeric_moment_step_is_tested_with_both_methods_shown():
    a = analyze_activation("tanh(x)")
    step = next(d for d in a.derivations if d.name == "E[f(z)^2]").steps[0]
    assert step.status is Status.TESTED
    assert "QUADPACK" in step.checks[0].detail and "mpmath" in step.checks[0].detail
    assert a.m2.status == "numeric" and 0 < a.m2.error < 1e-12
    assert {n for n, _, _ in a.m2.estimates} == {"QUADPACK", "mpmath"}


# --------------------------------------------------------------------------- activations by name


def _gauss(f, points=()) -> float:
    """E[f(z)], z ~ N(0, 1), by SciPy quadrature of a NumPy form (independent of SymPy)."""
    return integrate.quad(
        lambda t: f(t) * stats.norm.pdf(t), -40, 40, points=list(points) or None, limit=400
    )[0]


def _elu(t, alpha=1.0):
    return np.where(t > 0, t, alpha * np.expm1(np.minimum(t, 0)))


# E[(e^z - 1)^2 1{z < 0}] = e^2 Phi(-2) - 2 e^{1/2} Phi(-1) + 1/2,
# from E[e^{az} 1{z < 0}] = e^{a^2/2} Phi(-a)
_ELU_NEG = math.e**2 * special.ndtr(-2) - 2 * math.exp(0.5) * special.ndtr(-1) + 0.5
_ALPHA, _LAMBDA = float(SELU_ALPHA), float(SELU_SCALE)
_HARDTANH = (2 * special.ndtr(1) - 1) - 2 * stats.norm.pdf(1) + 2 * special.ndtr(-1)


def _silu(t, beta=1.0):
    return t * special.expit(beta * t)


NAMED = {
    # name: (independent E[f(z)^2], torch's calculate_gain squared or None)
    "elu(x)": (0.5 + _ELU_NEG, None),
    "elu(x, 0.5)": (0.5 + 0.25 * _ELU_NEG, None),
    "selu(x)": (_LAMBDA**2 * (0.5 + _ALPHA**2 * _ELU_NEG), (3 / 4) ** 2),
    "gelu(x)": (_gauss(lambda t: (t * special.ndtr(t)) ** 2), None),
    "gelu_tanh(x)": (
        _gauss(
            lambda t: (0.5 * t * (1 + np.tanh(math.sqrt(2 / math.pi) * (t + 0.044715 * t**3)))) ** 2
        ),
        None,
    ),
    "silu(x)": (_gauss(lambda t: _silu(t) ** 2), None),
    "swish(x)": (_gauss(lambda t: _silu(t) ** 2), None),
    "swish(x, 2)": (_gauss(lambda t: _silu(t, 2.0) ** 2), None),
    "leaky_relu(x)": ((1 + 0.01**2) / 2, 2 / (1 + 0.01**2)),
    "leaky_relu(x, 0.2)": ((1 + 0.2**2) / 2, 2 / (1 + 0.2**2)),
    "mish(x)": (_gauss(lambda t: (t * np.tanh(np.logaddexp(0, t))) ** 2), None),
    "hardtanh(x)": (_HARDTANH, None),
    "softsign(x)": (_gauss(lambda t: (t / (1 + np.abs(t))) ** 2, points=[0.0]), None),
    "Piecewise((x, x > 0), (x/10, True))": ((1 + 0.1**2) / 2, 2 / (1 + 0.1**2)),
    "relu(x)": (0.5, 2.0),
    "tanh(x)": (_gauss(lambda t: np.tanh(t) ** 2), (5 / 3) ** 2),
    "sigmoid(x)": (_gauss(lambda t: special.expit(t) ** 2), 1.0),
    "x": (1.0, 1.0),
}


@pytest.mark.parametrize("name", list(NAMED))
def test_named_activation_second_moment_and_torch_gain(name):
    expected, torch_squared = NAMED[name]
    a = analyze_activation(name, budget=2.0)
    assert a.m2.decided, a.m2.reason
    assert float(a.m2) == pytest.approx(expected, rel=1e-8)
    if a.m2.status == "numeric":
        assert abs(float(a.m2) - expected) <= max(1e3 * a.m2.error, 1e-12)
    assert a.derivative_check is not None and a.derivative_check.status is Status.TESTED
    if torch_squared is None:
        assert a.torch is None
    else:
        assert a.torch is not None, name
        assert float(a.torch.squared) == pytest.approx(torch_squared, rel=1e-12)
    assert a.status is not Status.REFUTED, [
        (d.name, str(d.status)) for d in a.derivations if d.status is Status.REFUTED
    ]


def test_gelu_tanh_approximates_gelu():
    exact = analyze_activation("gelu(x)", budget=2.0)
    approx = analyze_activation("gelu_tanh(x)", budget=2.0)
    assert abs(float(exact.m2) - float(approx.m2)) < 1e-4
    assert float(exact.m2) != float(approx.m2)
