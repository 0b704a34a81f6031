"""``initproof step``: one step of a derivation of one's own, parsed and checked.

For every kind of step (plain algebra, relu, Heaviside, Abs, sqrt, integers, Gaussian
expectations, series) one wrong step must be refuted (or undecided, with a reason; never
proved, computed or tested) and one true step must not be refuted. The command line is
run in-process through :func:`cli.main`.
"""

from __future__ import annotations

import json
import re
import shlex
import time
from pathlib import Path

import pytest
import sympy as sp

import derivations._step as step_module
from cli import main
from derivations._budget import BudgetExceeded
from derivations._claim import Check, Status
from derivations._gaussian import gaussian_integral
from derivations._step import check_step, parse_given, parse_step
from derivations._user import InputError

README = Path(__file__).resolve().parent.parent / "README.md"
PASSING = {Status.PROVED, Status.COMPUTED, Status.TESTED}

# (kind, before, after, given)
WRONG = [
    ("algebra", "(x + 1)**2", "x**2 + 1", ["x real"]),
    ("relu", "Max(0, x)", "x", ["x real"]),
    ("heaviside", "Heaviside(x)", "1", ["x real"]),
    ("abs", "Abs(x)", "x", ["x real"]),
    ("sqrt", "sqrt(x**2)", "x", ["x real"]),
    ("integer", "n*(n + 1)/2", "n**2/2", ["n integer > 0"]),
    ("integer-parity", "(-1)**n", "1", ["n positive integer"]),
    ("gaussian", "E[Max(0, x)]", "sqrt(q)/2", ["x ~ N(0, q)"]),
    ("series", "exp(q)", "1 + q + q**2 + O(q**3)", ["q > 0"]),
]
TRUE = [
    ("algebra", "(x + 1)**2", "x**2 + 2*x + 1", ["x real"]),
    ("relu", "Max(0, x)", "(x + Abs(x))/2", ["x real"]),
    ("heaviside", "x*Heaviside(x)", "Max(0, x)", ["x real"]),
    ("abs", "Abs(x)", "x", ["x > 0"]),
    ("sqrt", "sqrt(x**2)", "x", ["x >= 0"]),
    ("integer", "n*(n + 1)/2", "(n**2 + n)/2", ["n integer > 0"]),
    ("integer-parity", "(-1)**(2*n)", "1", ["n integer"]),
    ("gaussian", "E[Max(0, x)**2]", "q/2", ["x ~ N(0, q)"]),
    ("series", "E[tanh(x)**2]", "q - 2*q**2 + O(q**3)", ["x ~ N(0, q)"]),
]


def cli(capsys, *args: str) -> tuple[int, str, str]:
    rc = main(["step", *args])
    out = capsys.readouterr()
    return rc, out.out, out.err


# --------------------------------------------------------------------------- verdicts


@pytest.mark.parametrize(("kind", "before", "after", "given"), WRONG, ids=[w[0] for w in WRONG])
def test_wrong_step_is_never_passed(kind, before, after, given):
    r = check_step(before, after, given)
    assert r.status in (Status.REFUTED, Status.UNDECIDED), (r.status, r.method, r.reason)
    assert r.reason
    if r.status is Status.REFUTED and kind in ("relu", "heaviside", "abs", "sqrt"):
        # the counterexample is a point of the declared domain where the kink matters
        assert r.counterexample is not None and sp.Rational(r.counterexample["x"]) < 0


@pytest.mark.parametrize(("kind", "before", "after", "given"), TRUE, ids=[t[0] for t in TRUE])
def test_true_step_is_not_refuted(kind, before, after, given):
    r = check_step(before, after, given)
    assert r.status is not Status.REFUTED, (r.method, r.reason, r.counterexample)
    assert r.counterexample is None


def test_the_domain_decides():
    """The same text is true on one declared domain and false on a larger one."""
    assert check_step("sqrt(x**2)", "x", ["x > 0"]).status in PASSING
    assert check_step("sqrt(x**2)", "x", ["x real"]).status is Status.REFUTED
    assert check_step("sqrt(x**2)", "x", []).status is Status.REFUTED  # undeclared: real


# --------------------------------------------------------------------------- parsing


def test_declarations_become_assumptions():
    decls = {
        d.name: d for d in parse_given(["x ~ N(mu, q)", "n integer>0; a, b >= 0", "k integer"])
    }
    assert decls["n"].symbol.is_integer and decls["n"].symbol.is_positive
    assert decls["n"].domain == "integer > 0" and decls["n"].origin == "given"
    assert decls["a"].symbol.is_nonnegative and decls["b"].domain == "real >= 0"
    assert decls["k"].symbol.is_integer and decls["k"].symbol.is_positive is None
    # law parameters: the variance is positive, the mean real, unless declared
    assert decls["q"].symbol.is_positive and decls["q"].origin == "parameter"
    assert decls["mu"].symbol.is_real and decls["mu"].symbol.is_positive is None
    law = decls["x"].law
    assert law is not None and law.kind == "normal" and str(law) == "x ~ N(mu, q)"
    assert decls["x"].symbol.is_real


def test_declared_variance_domain_is_kept():
    (q, x) = parse_given(["x ~ N(0, q)", "q integer > 0"])
    assert q.symbol.is_integer and q.origin == "given" and x.law.second == q.symbol


def test_expectation_is_the_canonical_gaussian_integral():
    before, after, decls = parse_step("E[Max(0, x)**2]", "q/2", ["x ~ N(0, q)"])
    syms = {d.name: d.symbol for d in decls}
    x, q = syms["x"], syms["q"]
    assert before == gaussian_integral(sp.Max(0, x) ** 2, x, q)
    assert after == q / 2
    # a mean shifts the argument; an integration variable never captures a user's z
    before, _, decls = parse_step("E[x*z]", "0", ["x ~ N(m, 1)"])
    syms = {d.name: d.symbol for d in decls}
    (limit,) = before.limits
    assert limit[0] != syms["z"] and syms["z"] in before.free_symbols
    assert sp.simplify(before.doit() - syms["m"] * syms["z"]) == 0


def test_nested_expectation_is_a_constant():
    r = check_step("E[(x - E[x])**2]", "q", ["x ~ N(m, q)"])
    assert r.status is not Status.REFUTED, (r.method, r.reason)


def test_uniform_expectation():
    before, _, decls = parse_step("E[x**2]", "a**2/3", ["x ~ U(-a, a)"])
    a = {d.name: d.symbol for d in decls}["a"]
    assert a.is_positive
    assert sp.simplify(before.doit() - a**2 / 3) == 0


def test_series_term_and_undeclared_symbols():
    _, after, decls = parse_step("exp(q*y)", "1 + q*y + O(q**2)", [])
    q = {d.name: d.symbol for d in decls}["q"]
    assert after.getO() == sp.Order(q**2, (q, 0))
    assert {d.name for d in decls if d.origin == "default"} == {"q", "y"}
    r = check_step("x + y", "y + x")
    assert r.defaulted == ("x", "y")
    assert any("y is not declared: taken as real" in n for n in r.notes)


# --------------------------------------------------------------------------- command line


def test_json_output_shape(capsys):
    rc, out, err = cli(capsys, "Max(0, x)", "x", "--given", "x real", "--json")
    assert rc == 0 and err == ""
    data = json.loads(out)
    for key in ("before", "after", "given", "status", "method", "reason", "counterexample"):
        assert key in data
    assert data["before"] == "Max(0, x)" and data["after"] == "x"
    assert data["given"] == ["x real"]
    assert data["status"] in {s.value for s in Status}
    assert isinstance(data["method"], str) and isinstance(data["reason"], str)
    assert data["counterexample"] is None or all(
        isinstance(k, str) and isinstance(v, str) for k, v in data["counterexample"].items()
    )
    assert data["symbols"]["x"] == {"domain": "real", "law": None, "origin": "given"}
    rc, out, _ = cli(capsys, "E[x**2]", "q", "--given", "x ~ N(0, q)", "--json")
    data = json.loads(out)
    assert data["symbols"]["q"]["origin"] == "parameter"
    assert data["symbols"]["x"]["law"] == "x ~ N(0, q)"
    assert data["status"] != "refuted" and data["counterexample"] is None


def test_text_output_notes_undeclared_symbols(capsys):
    rc, out, _ = cli(capsys, "(a + b)**2", "a**2 + 2*a*b + b**2")
    assert rc == 0
    assert out.splitlines()[0].startswith("proved: (a + b)**2 = a**2 + 2*a*b + b**2")
    assert "a is not declared: taken as real" in out


BAD = [
    (["foo(x)", "x"], "BEFORE", "not an allowed function"),
    (["x", "gamma(x)"], "AFTER", "not an allowed function"),
    (["__import__('os').system('touch {marker}')", "x"], "BEFORE", "Nothing was evaluated"),
    (["x", "__import__"], "AFTER", "cannot be a symbol"),
    (["x.__class__", "x"], "BEFORE", "'.'"),
    (["x", "x", "--given", "x is nice"], "--given", "Accepted forms"),
    (["x", "x", "--given", "x ~ Poisson(1)"], "--given", "Accepted forms"),
    (["x", "x", "--given", "x ~ N(0, -1)"], "--given", "variance"),
    (["x", "x", "--given", "x > 0", "--given", "x < 0"], "--given", "contradictory"),
    (["x", "x", "--given", "exp real"], "--given", "reserved"),
    (["E[x**2]", "q"], "BEFORE", "--given 'x ~ N(0, q)'"),
    (["E[x**2]", "q", "--given", "x real"], "BEFORE", "--given 'x ~ N(0, q)'"),
    (["x", "E[y]"], "AFTER", "--given 'y ~ N(0, q)'"),
    (["E(x)", "0", "--given", "x ~ N(0, 1)"], "BEFORE", "E[...]"),
    (["x + O(x**2)", "x"], "BEFORE", "only in AFTER"),
    (["sin(x)", "x*(1 + O(x**2))"], "AFTER", "P + O(q**k)"),
    (["1/0", "x"], "BEFORE", "not finite"),
]


@pytest.mark.parametrize(("args", "argument", "message"), BAD)
def test_bad_input_exits_2_with_one_line(capsys, tmp_path, args, argument, message):
    marker = tmp_path / "pwned"
    args = [a.replace("{marker}", str(marker)) for a in args]
    rc, out, err = cli(capsys, *args)
    assert rc == 2
    assert out == ""
    assert err.startswith("initproof step: error: ") and err.count("\n") == 1
    assert f"`{argument}`" in err and message in err
    assert "Traceback" not in err
    assert not marker.exists()


def test_bad_input_raises_input_error_from_python():
    with pytest.raises(InputError, match="--given"):
        check_step("x", "x", ["n integer > 1"])
    with pytest.raises(InputError, match="BEFORE"):
        check_step("lambda", "x", [])


# --------------------------------------------------------------------------- failures


def test_kernel_failure_or_timeout_is_undecided(monkeypatch):
    def broken(before, after, subs):
        raise TypeError("cannot determine truth value of Relational")

    monkeypatch.setattr(step_module, "check_algebraic", broken)
    r = check_step("x", "x", ["x real"])
    assert r.status is Status.UNDECIDED and "TypeError" in r.reason

    def slow(before, after, subs):
        time.sleep(5)
        return Check("simplify", Status.PROVED, "too late")

    monkeypatch.setattr(step_module, "check_algebraic", slow)
    monkeypatch.setattr(step_module, "STEP_SECONDS", 0.2)
    start = time.monotonic()
    r = check_step("x", "x", ["x real"])
    assert r.status is Status.UNDECIDED and "longer than" in r.reason
    assert time.monotonic() - start < 3

    def budget(before, after, subs):
        raise BudgetExceeded("series took longer than 30 s")

    monkeypatch.setattr(step_module, "check_algebraic", budget)
    assert check_step("x", "x", ["x real"]).status is Status.UNDECIDED


# --------------------------------------------------------------------------- README


def readme_examples() -> list[tuple[list[str], str]]:
    """The ``initproof step`` lines of the README's Commands section, with their status."""
    text = README.read_text()
    section = text.split("## Commands", 1)[1].split("\n## ", 1)[0]
    out = []
    for line in section.splitlines():
        m = re.match(r"^initproof (step .*?)\s+#\s*(\w+):", line)
        if m:
            out.append((shlex.split(m.group(1)), m.group(2)))
    return out


def test_readme_has_the_two_step_examples():
    examples = readme_examples()
    assert [status for _, status in examples] == ["refuted", "proved"]
    assert examples[0][0] == ["step", "Max(0, x)", "x", "--given", "x real"]
    assert examples[1][0] == ["step", "E[Max(0, x)**2]", "q/2", "--given", "x ~ N(0, q)"]


@pytest.mark.parametrize(("args", "status"), readme_examples())
def test_readme_examples_as_documented(capsys, args, status):
    rc = main(args)
    out = capsys.readouterr().out
    assert rc == 0
    first = out.splitlines()[0]
    assert first.split(":")[0] == status, out
    if status == "refuted":
        m = re.search(r"fails at x = (\S+)", first)
        assert m is not None and sp.Rational(m.group(1)) < 0, first
