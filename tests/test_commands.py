"""``initproof activation | init | claim``: parsing safety, derived values, simulation, CLI.

Derived values are checked against independent computations: SciPy quadrature of
hand-written NumPy forms, ``scipy.stats`` laws, closed forms from the literature and
finite differences.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
from scipy import integrate, optimize, special, stats

from cli._commands import activation_command, claim_command, init_command
from derivations._user import (
    InputError,
    analyze_activation,
    chi2_mixture,
    derive_quantity,
    parse_expression,
    parse_number,
    parse_widths,
    preset,
    propagate,
    truncation_constant,
    weight_init,
)

INITPROOF = str(Path(sys.executable).parent / "initproof")

# hand-written NumPy forms, independent of the SymPy parsing and lambdify
GELU = "x*(1+erf(x/sqrt(2)))/2"
SILU = "x*sigmoid(x)"
SOFTPLUS = "log(1+exp(x))"
FORMS = {
    GELU: (
        lambda t: t * stats.norm.cdf(t),
        lambda t: stats.norm.cdf(t) + t * stats.norm.pdf(t),
    ),
    SILU: (
        lambda t: t * special.expit(t),
        lambda t: special.expit(t) * (1 + t * (1 - special.expit(t))),
    ),
    "erf(x)": (special.erf, lambda t: 2 / math.sqrt(math.pi) * np.exp(-(t**2))),
    SOFTPLUS: (lambda t: np.logaddexp(0, t), special.expit),
}


def gauss(g, q: float = 1.0) -> float:
    """E[g(x)], x ~ N(0, q), by SciPy quadrature."""
    return integrate.quad(lambda z: g(math.sqrt(q) * z) * stats.norm.pdf(z), -40, 40, limit=400)[0]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [INITPROOF, *args], capture_output=True, text=True, timeout=120, check=False
    )


# --------------------------------------------------------------------------- parsing


INJECTIONS = [
    "__import__('os').system('touch {marker}')",
    "x.__class__",
    "().__class__",
    "eval('1')",
    "lambda: 1",
    "x.__class__.__mro__[1].__subclasses__()",
    'exec(\'open("{marker}", "w")\')',
    "open('{marker}', 'w')",
    "[c for c in ()]",
    "x; import os",
    "Symbol('y')",
    "sympify('x')",
    "globals()",
    "'{marker}'",
]


@pytest.mark.parametrize("payload", INJECTIONS)
def test_injection_is_refused_and_nothing_runs(payload, tmp_path):
    marker = tmp_path / "pwned"
    text = payload.format(marker=marker)
    with pytest.raises(InputError, match="EXPR"):
        parse_expression(text, argument="EXPR")
    assert not marker.exists()


def test_injection_through_the_command_line(tmp_path):
    marker = tmp_path / "pwned"
    out = run_cli("activation", f"__import__('os').system('touch {marker}')", "--no-simulate")
    assert out.returncode == 2
    assert out.stdout == ""
    assert "may contain only" in out.stderr and "__import__" in out.stderr
    assert not marker.exists()


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("9**9**9", "numeric exponents"),
        ("x**(10**6)", "numeric exponents"),
        ("foo(x)", "name 'foo'"),
        ("x +", "not a valid expression"),
        ("Max(0, x", "not an expression"),
        ("1/0", "not finite"),
        ("0x10*x", "number '0x10'"),
        ("", "empty"),
        ("x" * 400, "at most"),
    ],
)
def test_malformed_expressions(text, match):
    with pytest.raises(InputError, match=match):
        parse_expression(text, argument="EXPR")


def test_whitelisted_expressions_parse_to_the_intended_function():
    x = sp.Symbol("x", real=True)
    assert parse_expression("x*sigmoid(x)", argument="E") == x / (1 + sp.exp(-x))
    assert parse_expression("relu(x) - Max(0, x)", argument="E") == 0
    assert parse_expression("x^2", argument="E") == x**2
    n_in = sp.Symbol("n_in", integer=True, positive=True)
    assert parse_number("2**-10", argument="--expect") == sp.Rational(1, 1024)
    with pytest.raises(InputError, match="n_in"):
        parse_expression("2/n_in", argument="EXPR")  # n_in is not a symbol of an activation
    assert str(weight_init("normal", var="2/n_in").variance) == str(2 / n_in)


@pytest.mark.parametrize(
    ("widths", "match"),
    [
        ("0,5", "positive"),
        ("5,2.5", "positive integers"),
        ("5", "at least two"),
        ("5,-3", "positive integers"),
        ("5000,5000", "up to 4096"),
        ("4096,4096,4096,4096", "fit in memory"),
        ([4] * 1002, "at most 1000 layers"),
        ([3, True], "positive integers"),
    ],
)
def test_bad_widths(widths, match):
    with pytest.raises(InputError, match=match):
        parse_widths(widths)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("exp(x**2)", "diverges"),
        ("exp(x**2/4)", "diverges"),  # E[f^2] = E[exp(x^2/2)] is infinite at q = 1
        ("log(x)", "not real and finite"),
        ("1/x", "not real and finite"),
        ("sqrt(x)", "not real and finite"),
        ("exp(exp(x))", "not real and finite"),
        ("1 + 0*x", "must depend on x"),
    ],
)
def test_activations_refused(text, match):
    with pytest.raises(InputError, match=match):
        analyze_activation(text)


# --------------------------------------------------------------------------- activation


@pytest.mark.parametrize("text", list(FORMS))
def test_moments_and_gains_match_independent_quadrature(text):
    f, fp = FORMS[text]
    a = analyze_activation(text)
    m1, m2, d2 = gauss(f), gauss(lambda t: f(t) ** 2), gauss(lambda t: fp(t) ** 2)
    assert float(a.mean) == pytest.approx(m1, rel=1e-9, abs=1e-12)
    assert float(a.m2) == pytest.approx(m2, rel=1e-9)
    assert float(a.d2) == pytest.approx(d2, rel=1e-9)
    assert float(a.forward_gain) == pytest.approx(1 / m2, rel=1e-9)
    assert float(a.backward_gain) == pytest.approx(1 / d2, rel=1e-9)
    # the derivative is f' (finite differences), and the quadrature table at q = 2
    h = 1e-6
    for t in (-1.3, 0.4, 2.0):
        num = (f(t + h) - f(t - h)) / (2 * h)
        assert float(a.derivative.subs(sp.Symbol("x", real=True), t)) == pytest.approx(num, 1e-6)
    q2 = dict((row[0], row[1]) for row in a.m2_table)[2.0]
    assert q2 == pytest.approx(gauss(lambda t: f(t) ** 2, 2.0), rel=1e-9)


def test_erf_against_closed_forms():
    """E[erf(x)^2] = (2/pi) asin(2q/(1+2q)); E[erf'(x)^2] = 4/(pi sqrt(1+4q))."""
    a = analyze_activation("erf(x)")
    for qv, value, _ in a.m2_table:
        assert value == pytest.approx(2 / math.pi * math.asin(2 * qv / (1 + 2 * qv)), rel=1e-10)
    assert a.d2.exact
    assert float(a.d2) == pytest.approx(4 / (math.pi * math.sqrt(5)), rel=1e-14)
    q = sp.Symbol("q", positive=True)
    assert sp.simplify(a.d2_of_q - 4 / (sp.pi * sp.sqrt(1 + 4 * q))) == 0


@pytest.mark.parametrize(
    ("text", "f0", "slope"),
    [
        (GELU, 0.0, 0.5),
        (SILU, 0.0, 0.5),
        ("erf(x)", 0.0, 2 / math.sqrt(math.pi)),
        (SOFTPLUS, math.log(2), 0.5),
        ("tanh(x)", 0.0, 1.0),
    ],
)
def test_value_and_slope_at_zero(text, f0, slope):
    a = analyze_activation(text)
    f = FORMS.get(text, (np.tanh, None))[0]
    assert float(a.f0) == pytest.approx(f0, abs=1e-15)
    assert float(f(0.0)) == pytest.approx(f0, abs=1e-15)
    h = 1e-6
    assert float(a.slope_right) == pytest.approx((f(h) - f(-h)) / (2 * h), rel=1e-7)
    assert float(a.slope_left) == pytest.approx(slope, rel=1e-12)
    assert a.zero_at_origin == (f0 == 0)
    assert a.unit_slope == (slope == 1.0)
    # the smooth Taylor series starts with f(0) + f'(0) x
    ((_, series),) = a.taylor
    x = sp.Symbol("x", real=True)
    poly = series.removeO()
    assert float(poly.subs(x, 0)) == pytest.approx(f0, abs=1e-15)
    assert float(sp.diff(poly, x).subs(x, 0)) == pytest.approx(slope, rel=1e-12)


def test_relu_exact_and_lecture_version_differs():
    a = analyze_activation("Max(0, x)")
    q = sp.Symbol("q", positive=True)
    assert a.m2.exact and a.m2.value == sp.Rational(1, 2)
    assert a.m2_of_q == q / 2
    assert a.m2_of_q != q  # "relu passes the variance unchanged" is a different value
    assert a.forward_gain == 2 and a.every_q_fixed
    assert a.torch.name == "relu" and a.torch.squared == 2
    assert a.homogeneous == (1, 0)


def test_torch_gains_compared():
    tanh = analyze_activation("tanh(x)")
    assert tanh.torch.name == "tanh" and tanh.torch.gain == sp.Rational(5, 3)
    assert float(tanh.forward_gain) == pytest.approx(1 / gauss(lambda t: np.tanh(t) ** 2))
    assert float(tanh.torch.squared) != pytest.approx(float(tanh.forward_gain), rel=0.05)
    leaky = analyze_activation("Max(x, x/10)")
    assert leaky.torch.name == "leaky_relu" and leaky.torch.param == pytest.approx(0.1)
    # torch's sqrt(2/(1+slope^2)) squared is exactly our forward-preserving gain
    assert sp.simplify(leaky.torch.squared - leaky.forward_gain) == 0
    assert analyze_activation("sigmoid(x)").torch.squared == 1
    assert analyze_activation(SILU).torch is None
    selu = "1.0507009873554804934*(Max(0, x) + Min(0, 1.6732632423543772848*(exp(x) - 1)))"
    s = analyze_activation(selu)
    assert s.torch.name == "selu" and s.torch.gain == sp.Rational(3, 4)
    alpha, lam = 1.6732632423543772848, 1.0507009873554804934
    m2 = gauss(lambda t: (lam * np.where(t > 0, t, alpha * np.expm1(np.minimum(t, 0)))) ** 2)
    assert float(s.m2) == pytest.approx(m2, rel=1e-8)
    assert float(s.m2) == pytest.approx(1.0, abs=1e-3)  # self-normalizing: E[selu(z)^2] ~ 1


def test_fixed_point_against_independent_root():
    a = analyze_activation("tanh(x)", "2")
    assert a.gain == 2 and a.gain_source == "given"

    def F(v):
        return 2 * gauss(lambda t: np.tanh(t) ** 2, v)

    root = optimize.brentq(lambda v: F(v) - v, 0.1, 10)
    (p,) = a.fixed_points
    assert p.q == pytest.approx(root, rel=1e-8)
    assert p.stable
    h = 1e-4
    assert p.slope == pytest.approx((F(root + h) - F(root - h)) / (2 * h), rel=1e-5)
    assert p.chi == pytest.approx(2 * gauss(lambda t: 1 / np.cosh(t) ** 4, root), rel=1e-8)
    # default gain: q* = 1 by construction
    (p1,) = analyze_activation(GELU).fixed_points
    assert p1.q == pytest.approx(1.0, abs=1e-12)


# --------------------------------------------------------------------------- init


def test_law_variances_against_scipy():
    n_in, n_out = sp.symbols("n_in n_out", integer=True, positive=True)
    u = weight_init("uniform", bound="1/sqrt(n_in)")
    assert sp.simplify(u.variance - 1 / (3 * n_in)) == 0
    assert float(u.variance.subs(n_in, 10)) == pytest.approx(
        stats.uniform(-(0.1**0.5), 2 * 0.1**0.5).var()
    )
    # the bound read as a std would give a^2, a different value
    assert sp.simplify(u.variance - u.native**2) != 0
    assert float(truncation_constant()) == pytest.approx(stats.truncnorm(-2, 2).var(), rel=1e-13)
    assert math.sqrt(float(truncation_constant())) == pytest.approx(0.87962566103423978, 1e-15)
    t = weight_init("truncated_normal", std="1/sqrt(n_in)")
    assert float(t.variance.subs(n_in, 50)) == pytest.approx(
        stats.truncnorm(-2, 2, scale=50**-0.5).var()
    )
    v = weight_init("uniform", var="2/(n_in + n_out)")
    assert sp.simplify(v.native - sp.sqrt(6 / (n_in + n_out))) == 0


def test_presets_against_framework_formulas():
    n_in, n_out = sp.symbols("n_in n_out", integer=True, positive=True)
    torch = preset("torch-linear")
    assert torch.dist == "uniform" and sp.simplify(torch.native - 1 / sp.sqrt(n_in)) == 0
    assert sp.simplify(torch.variance - 1 / (3 * n_in)) == 0
    keras = preset("keras-dense")
    assert sp.simplify(keras.variance - 2 / (n_in + n_out)) == 0
    flax = preset("flax-dense")
    assert flax.dist == "truncated_normal"
    s = float(flax.native.subs(n_in, 64))
    assert s == pytest.approx(64**-0.5 / 0.87962566103423978, rel=1e-14)
    assert stats.truncnorm(-2, 2, scale=s).var() == pytest.approx(1 / 64, rel=1e-12)
    with pytest.raises(InputError, match="torch-linear"):
        preset("pytorch")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"dist": "normal", "bound": "1"}, "uniform only"),
        ({"dist": "normal", "var": "1", "std": "1"}, "exactly one"),
        ({"dist": "cauchy", "var": "1"}, "DIST"),
        ({"dist": "normal", "var": "-1/n_in"}, "> 0"),
        ({"dist": "normal", "var": "n_in.__class__"}, "token '.'"),
    ],
)
def test_bad_inits(kwargs, match):
    dist = kwargs.pop("dist")
    with pytest.raises(InputError, match=match):
        weight_init(dist, **kwargs)


def test_chi2_mixture_against_closed_form_and_scipy():
    """Layer 1, normal weights: E[relu(z)] = sqrt(gamma) E[chi_n] / sqrt(2 pi)."""
    n, g = 16, 2 / 16
    init = weight_init("normal", var="2/n_in")
    m = propagate("Max(0, x)", init, [n, n, n])
    e_chi = math.sqrt(2) * math.exp(math.lgamma((n + 1) / 2) - math.lgamma(n / 2))
    assert m.output_mean[1].exact
    assert m.output_mean[1].value == pytest.approx(math.sqrt(g) * e_chi / math.sqrt(2 * math.pi))
    assert m.output_mean[1].value != pytest.approx(math.sqrt(n * g / (2 * math.pi)), rel=1e-3)
    # tanh: the chi-square mixture against scipy.stats expectations
    mt = propagate("tanh(x)", init, [n, n])
    inner = lambda s: stats.norm.expect(lambda z: np.tanh(math.sqrt(g * s) * z) ** 2)  # noqa: E731
    assert mt.output[1].value == pytest.approx(stats.chi2(n).expect(inner), rel=1e-7)
    from derivations._gaussian import moment_function

    x = sp.Symbol("x", real=True)
    v, _ = chi2_mixture(moment_function(x**2, x), g, n)
    assert v == pytest.approx(g * n, rel=1e-9)  # E[gamma chi^2_n] = n gamma


def test_propagation_exact_identities():
    init = weight_init("uniform", var="1/n_in")
    m = propagate("Max(0, x)", init, [32, 64, 16, 8])
    # relu, symmetric law: P_t = n gamma M_{t-1}, M_t = P_t / 2, exactly
    assert [v.value for v in m.preactivation[1:]] == pytest.approx([1, 0.5, 0.25])
    assert all(v.exact for v in m.preactivation[1:])
    # backward: exact at the top layer only; B_{d-1} = n_d gamma_d / 2
    assert m.backward[2].value == pytest.approx(8 * (1 / 16) / 2) and m.backward[2].exact
    assert not m.backward[0].exact
    v = derive_quantity(m, "forward", "preactivation", "var", 3)
    assert v.value == pytest.approx(0.25) and v.exact
    with pytest.raises(InputError, match="layer"):
        derive_quantity(m, "forward", "output", "m2", 9)


# --------------------------------------------------------------------------- commands


def _check_fields(check: dict) -> None:
    for key in ("predicted", "estimate", "ci_low", "ci_high", "confidence", "n_samples"):
        assert isinstance(check[key], int | float)
    assert check["outcome"] in ("agrees", "disagrees", "inconclusive")


def test_activation_command_simulates_gelu():
    r = activation_command(GELU, width=32, depth=3, precision=0.1, seed=1)
    json.dumps(r, allow_nan=False)
    checks = {c["probe"]: c for c in r["checks"]}
    for label in ("m2-of-f", "m2-of-derivative", "layer1-output-m2"):
        _check_fields(checks[label])
        assert checks[label]["exact"]
        assert checks[label]["outcome"] == "agrees"
    assert checks["m2-of-f"]["predicted"] == pytest.approx(gauss(lambda t: FORMS[GELU][0](t) ** 2))


def test_init_command_without_simulation():
    r = init_command("normal", var="1/n_in", activation=SOFTPLUS, widths="10,20,5", simulate=False)
    f, fp = FORMS[SOFTPLUS]
    m2, d2 = gauss(lambda t: f(t) ** 2), gauss(lambda t: fp(t) ** 2)
    first, second = r["layers"]
    assert first["forward_gain"] == pytest.approx(10 * (1 / 10) * m2, rel=1e-9)
    assert first["backward_gain"] == pytest.approx(20 * (1 / 10) * d2, rel=1e-9)
    assert second["forward_gain"] == pytest.approx(20 * (1 / 20) * m2, rel=1e-9)
    assert r["checks"][0]["predicted"] == pytest.approx(1.0)  # n_0 gamma_1 E[x^2]


def test_claim_command_answers_and_derives():
    kw = {
        "dist": "normal",
        "var": "1/n_in",
        "activation": "Max(0, x)",
        "widths": "16,16,16,16",
        "of": "preactivation",
        "layer": 3,
        "simulate": False,
    }
    wrong = claim_command(expect="1", **kw)
    assert wrong["answer"] == "disagrees" and wrong["derived"]["value"] == pytest.approx(0.25)
    right = claim_command(expect="2**-2", **kw)
    assert right["answer"] == "agrees"


# --------------------------------------------------------------------------- command line


def test_cli_claim_exit_codes_and_json():
    base = [
        "claim",
        "--dist",
        "normal",
        "--var",
        "1/n_in",
        "--activation",
        "Max(0,x)",
        "--widths",
        "32,32,32,32",
        "--of",
        "preactivation",
        "--layer",
        "3",
        "--precision",
        "0.1",
        "--json",
    ]
    wrong = run_cli(*base, "--expect", "1")
    assert wrong.returncode == 1, wrong.stderr
    data = json.loads(wrong.stdout)
    assert data["answer"] == "disagrees"
    user, derived = data["checks"]
    for c in (user, derived):
        _check_fields(c)
    assert derived["outcome"] == "agrees" and derived["predicted"] == pytest.approx(0.25)
    right = run_cli(*base, "--expect", "1/4")
    assert right.returncode == 0, right.stderr
    assert json.loads(right.stdout)["answer"] == "agrees"


def test_cli_init_preset_and_activation_text():
    out = run_cli(
        "init",
        "--preset",
        "keras-dense",
        "--activation",
        SILU,
        "--widths",
        "24,16,16",
        "--precision",
        "0.1",
        "--json",
    )
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["law"]["variance"] == "2/(n_in + n_out)"
    first = data["checks"][0]
    _check_fields(first)
    assert first["exact"] and first["outcome"] == "agrees"
    assert first["predicted"] == pytest.approx(24 * 2 / 40)
    text = run_cli("activation", "erf(x)", "--no-simulate")
    assert text.returncode == 0, text.stderr
    assert "2/sqrt(pi)" in text.stdout and "calculate_gain has no entry" in text.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["activation", "exp(x**2)", "--no-simulate"],
        ["activation", "x", "--depth", "100000", "--no-simulate"],
        ["activation", "Heaviside(x)", "--no-simulate"],
        ["activation", "(x,)*10**8", "--no-simulate"],
        ["activation", "tanh(x)", "--budget", "0", "--no-simulate"],
        ["activation", "tanh(x)", "--time-limit", "nan", "--no-simulate"],
        ["init", "normal", "--var", "1/n_in", "--widths", "8,2.5", "--no-simulate"],
        ["init", "normal", "--var=-1/n_in", "--widths", "8,8", "--no-simulate"],
        [
            "claim",
            "--dist",
            "normal",
            "--var",
            "1",
            "--widths",
            "4,4",
            "--layer",
            "1",
            "--expect",
            "1/0",
            "--no-simulate",
        ],
    ],
)
def test_cli_errors_exit_2_with_nothing_on_stdout(args):
    out = run_cli(*args)
    assert out.returncode == 2
    assert out.stdout == ""
    assert "error" in out.stderr and "Traceback" not in out.stderr
