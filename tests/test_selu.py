"""``initproof selu``: SELU's lambda and alpha for any fixed point, against published values.

The expected numbers are published, not derived here:

* Klambauer, Unterthiner, Mayr and Hochreiter (2017), "Self-Normalizing Neural Networks",
  and their ``selu.py`` (bioinf-jku/SNNs): for the fixed point (0, 1),
  alpha = 1.6732632423543772848170429916717, lambda = 1.0507009873554804934193349852946;
  Theorem 1: the Jacobian at (0, 1) has spectral norm about 0.7877 (< 1);
* their notebook ``getSELUparameters.ipynb`` (z ~ N(mean, var), i.e. omega = tau = 1):
  for (mean, var) = (-0.1, 2), alpha = 1.9769021954241999, lambda = 1.073851239616047
  (``sympy.nsolve`` in double precision).
"""

from __future__ import annotations

import json

import pytest
import sympy as sp

from cli import parser
from cli._commands import run
from derivations._claim import Status
from derivations._gaussian import Budget
from derivations._selu import _halves, _moment_step, alpha, closed_forms, lam, m, s, selu_parameters
from derivations._user import InputError

PUBLISHED_ALPHA = "1.6732632423543772848170429916717"
PUBLISHED_LAMBDA = "1.0507009873554804934193349852946"


def cli(*argv: str, capsys) -> tuple[int, str, str]:
    code = run(parser().parse_args(list(argv)))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def standard():
    return selu_parameters(0, 1, budget=120)


def test_published_constants_to_30_digits(standard):
    # the first 30 significant digits, rounded as mpmath rounds them
    assert standard.alpha == "1.67326324235437728481704299167"
    assert standard.lam == "1.05070098735548049341933498529"
    assert PUBLISHED_ALPHA.startswith(standard.alpha[:-1])
    assert PUBLISHED_LAMBDA.startswith(standard.lam[:-1])
    assert standard.residual < 1e-40


def test_stability_at_the_standard_fixed_point(standard):
    assert standard.spectral_norm == pytest.approx(0.7877, abs=5e-5)  # Theorem 1
    assert standard.stable
    assert "agrees" in standard.jacobian_check
    # omega = 0: the output does not depend on the input mean
    assert standard.jacobian[0][0] == 0 and standard.jacobian[1][0] == 0


def test_derivation_is_checked(standard):
    assert [d.name for d in standard.derivations] == ["selu mean", "selu second moment"]
    assert all(d.status is Status.COMPUTED for d in standard.derivations)


def test_a_wrong_closed_form_is_refuted():
    zs = sp.Symbol("z")
    mean, _ = closed_forms()
    at = {m: 0, s: 1}
    wrong = (mean + lam * alpha / 1000).subs(at)
    start = _halves(lam * zs, lam * alpha * (sp.exp(zs) - 1)).subs(at)
    d = _moment_step("selu mean", start, wrong, Budget(120))
    assert d.status is Status.REFUTED


def test_notebook_values_for_another_target():
    p = selu_parameters("-1/10", 2, omega_=1, tau_=1, budget=120)
    assert float(p.alpha) == pytest.approx(1.9769021954241999, rel=1e-13)
    assert float(p.lam) == pytest.approx(1.073851239616047, rel=1e-13)
    assert "agrees" in p.jacobian_check


def test_cli_json(capsys):
    code, out, err = cli("selu", "--mean", "0", "--var", "1", "--json", capsys=capsys)
    assert code == 0, err
    r = json.loads(out)
    assert r["alpha"].startswith("1.6732632423543772848")
    assert r["lambda"].startswith("1.0507009873554804934")
    assert r["stable"] is True and r["status"] == "computed"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("--var", "0"), "`--var`"),
        (("--var", "-2"), "`--var`"),
        (("--var", "__import__('os')"), "`--var`"),
        (("--mean", "nan"), "`--mean`"),
        (("--mean", "5", "--var", "0.01"), "no (lambda, alpha)"),
        (("--var", "1e9"), "`--var`"),
    ],
)
def test_bad_input_exits_2(args, fragment, capsys):
    code, out, err = cli("selu", *args, capsys=capsys)
    assert code == 2 and out == ""
    assert err.startswith("initproof selu: error:") and fragment in err
    assert "Traceback" not in err


def test_input_error_from_python():
    with pytest.raises(InputError, match="--var"):
        selu_parameters(0, -1)
