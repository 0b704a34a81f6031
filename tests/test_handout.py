"""The handout a teacher prints: length, typesetting, blanks and key, worked exercises."""

import copy
import os
import re
import shutil
import subprocess

import numpy as np
import pytest
import sympy as sp

import report
from derivations import Status, check_algebraic
from derivations import _exercises as ex
from derivations._gradients import D2L_N, _lyapunov_by_products
from report import _render
from report._latex import LINE_WIDTH, display, latex, mathtext, psi_text, width

NEED_TEX = pytest.mark.skipif(
    shutil.which("latexmk") is None and not os.environ.get("CI"),
    reason="no TeX engine on this machine (CI installs it, and there this test must run)",
)
#: How much wider than the text a box may be before the log's warning counts (in pt).
OVERFULL_POINTS = 1.0
MAX_PAGES = 12
VERDICTS = ("verified", "refuted", "qualified", "undecided")


# --------------------------------------------------------------------------- typesetting


def test_psi_is_printed_instead_of_polygamma():
    n = sp.Symbol("n", positive=True)
    assert latex(sp.polygamma(0, n / 2)) == r"\psi\left(\frac{n}{2}\right)"
    assert latex(sp.polygamma(1, n)) == r"\psi'\left(n\right)"
    assert "polygamma" not in latex(sp.log(2) + sp.polygamma(0, n / 2) / 2)
    assert psi_text(sp.latex(sp.polygamma(0, n) + 1)) == r"\psi\left(n\right) + 1"


def test_large_matrices_are_shown_by_a_corner_never_shrunk():
    m = sp.Matrix(4, 3, lambda i, j: sp.Symbol(f"a_{{{i + 1}{j + 1}}}"))
    (line,) = display(m)
    assert r"\cdots" in line and r"\vdots" in line and r"_{4\times 3}" in line
    assert "a_{11}" in line and "a_{22}" in line and "a_{33}" not in line


def test_long_results_are_cut_into_lines_that_fit():
    x = sp.Symbol("x")
    z = sum(sp.Symbol(f"w_{k}") * sp.Symbol(f"h_{k}") for k in range(1, 9))
    long_entry = sp.Matrix(3, 3, lambda i, j: sp.tanh(z + i + j) * sp.tanh(z - i) + x)
    for expr in (sum(sp.Symbol(f"c_{k}") * x**k for k in range(30)), long_entry):
        lines = display(expr)
        assert max(width(line) for line in lines) <= LINE_WIDTH, lines
    # repeated parts are named and defined after the expression
    assert any(line.startswith(r"\text{where } u_{1} =") for line in display(long_entry))


@pytest.mark.parametrize(
    "label, expected",
    [
        ("dh^2/dh^1", r"$\partial h^{2}/\partial h^{1}$"),
        ("outer product: diag(sigma'(z^1))", r"$\operatorname{diag}(\sigma'(z^{1}))$"),
        ("loss gradient w.r.t. h^0", "loss gradient w.r.t. $h^{0}$"),
        ("tanh: factor as q -> 0", r"$\tanh$: factor as $q \to 0$"),
        ("sympy.integrate", r"\texttt{sympy.integrate}"),
        ("D2L demo: E log|M_ij|", r"$\mathbb{E} \log\lvert M_{ij}\rvert$"),
    ],
)
def test_rule_labels_and_titles_are_typeset_as_math(label, expected):
    tex = mathtext(label).replace(r" \allowbreak ", " ")
    assert expected.replace("  ", " ") in tex.replace("  ", " ")
    assert "^" not in re.sub(r"\$[^$]*\$", "", tex), tex  # no raw superscript outside math


# --------------------------------------------------------------------------- exercises


def test_exercises_are_worked_and_checked():
    for e in ex.exercises():
        assert e.status.rank >= Status.TESTED.rank, (e.id, e.status)
        assert e.derivations and e.checks
    sym = dict(ex.symmetries().values)
    assert sym["tanh-sign"] <= ex.SYMMETRY_TOLERANCE
    assert sym["relu-scale"] <= ex.SYMMETRY_TOLERANCE
    assert ex.symmetries().derivation("sign flip of a tanh unit").status is Status.PROVED
    lars = ex.lars()
    assert all(d.status is Status.PROVED for d in lars.derivations)


def test_symmetry_checks_refuse_what_is_not_a_symmetry():
    # the same changes applied where they are not symmetries are caught, numerically ...
    rng = np.random.default_rng(0)
    sigmoid = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    assert ex.network_symmetry(sigmoid, "sign", rng) > 1e-2
    assert ex.network_symmetry(np.tanh, "scale", rng) > 1e-2
    # ... and symbolically: flipping only the incoming weights of a tanh unit
    x, v, w = sp.symbols("x v w", real=True)
    assert check_algebraic(v * sp.tanh(-w * x), v * sp.tanh(w * x), {}).status is Status.REFUTED
    # rescaling a tanh unit (not positively homogeneous)
    c = sp.Symbol("c", positive=True)
    wrong = check_algebraic(v / c * sp.tanh(c * w * x), v * sp.tanh(w * x), {})
    assert wrong.status is Status.REFUTED


def test_wrong_steps_of_the_other_exercises_are_refused():
    # LARS: a rescaling by a factor of either sign is not invisible (|c| g, not c g)
    c = sp.Symbol("c", real=True)
    step = ex.lars_step(ex.WV, c * ex.G)
    assert check_algebraic(step, ex.lars_step(ex.WV, ex.G), {}).status is Status.REFUTED
    # softmax regression: claiming identical gradient rows at constant weights is refused
    (soft,) = [d for d in ex.constant_initialization().derivations if "softmax" in d.name]
    same_rows = sp.Matrix(3, 2, lambda a, b: soft.result[0, b])
    assert check_algebraic(soft.start, same_rows, {}).status is Status.REFUTED


def test_eigenvalue_counterexample_and_bounds():
    e = ex.eigenvalue_products()
    polys = {d.name: d.result for d in e.derivations}
    lam = ex.LAMBDA
    assert sp.expand(polys["characteristic polynomial of A"] - lam**2) == 0
    assert sp.expand(polys["characteristic polynomial of AB"] - lam * (lam - 1)) == 0
    values = dict(e.values)
    assert all(v <= 1e-12 for k, v in values.items() if not k.startswith("fraction"))
    assert 0 < values["fraction with rho(AB) > rho(A) rho(B)"] < 1


def test_lyapunov_check_refuses_a_wrong_exponent():
    right = sp.Rational(1, 2) * (sp.log(2) + 1 - sp.EulerGamma)  # psi(2) = 1 - gamma
    assert D2L_N == 4
    assert _lyapunov_by_products(right).status is Status.TESTED
    assert _lyapunov_by_products(right + sp.Rational(1, 50)).status is Status.REFUTED


# --------------------------------------------------------------------------- the PDFs


@pytest.fixture(scope="module")
def evidence(shared_quick_evidence):
    return copy.deepcopy(shared_quick_evidence)


@pytest.fixture(scope="module")
def built(evidence, tmp_path_factory):
    """handout.tex, handout-key.tex and report.tex compiled, their logs kept."""
    from report._figures import render_figures

    out = tmp_path_factory.mktemp("handout")
    render_figures(evidence["figures"], out / "figures")
    sources = {
        "handout": report.render_handout(evidence),
        "handout-key": report.render_handout(evidence, key=True),
        "report": report.render_latex(evidence),
    }
    for stem, text in sources.items():
        (out / f"{stem}.tex").write_text(text, encoding="utf-8")
        if shutil.which("latexmk"):
            _render.compile_pdf(out / f"{stem}.tex", clean=False)
    return out


def _pages(pdf) -> int:
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True)
    return int(next(x for x in info.stdout.splitlines() if x.startswith("Pages:")).split()[1])


def _text(pdf) -> str:
    run = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True)
    return " ".join(run.stdout.split())


@NEED_TEX
def test_handout_fits_on_twelve_pages_plus_its_key(built):
    assert _pages(built / "handout.pdf") <= MAX_PAGES
    assert _pages(built / "handout-key.pdf") >= 1


@NEED_TEX
@pytest.mark.parametrize("stem", ["handout", "handout-key", "report"])
def test_log_has_no_overfull_box_and_no_undefined_reference(built, stem):
    log = (built / f"{stem}.log").read_text(errors="replace")
    widths = [float(w) for w in re.findall(r"Overfull \\[hv]box \(([\d.]+)pt too", log)]
    assert all(w <= OVERFULL_POINTS for w in widths), sorted(widths)[-5:]
    assert not re.search(r"undefined", log, re.I), re.findall(r".*undefined.*", log, re.I)[:5]


@pytest.mark.parametrize("stem", ["handout", "handout-key", "report"])
def test_nothing_is_shrunk_and_no_ascii_math(built, stem):
    tex = (built / f"{stem}.tex").read_text(encoding="utf-8")
    for shrink in (r"\resizebox", "adjustbox", r"\scalebox", r"\tiny", r"\scriptsize"):
        assert shrink not in tex
    assert "polygamma" not in tex
    for raw in (r"\\\^\{\}", r"(?<!\\)sigma'\(", r"\bdh\^", r"\bdiag\("):
        for line in tex.splitlines():
            if line.startswith((r"\subsection", r"\section", r"\textbf{Derivation", "{}(")):
                rule = line.split("&")[1] if line.startswith("{}(") else line
                assert not re.search(raw, rule), line


@NEED_TEX
def test_student_version_shows_no_results_and_no_verdicts(evidence, built):
    tex = (built / "handout.tex").read_text(encoding="utf-8")
    text = _text(built / "handout.pdf").lower()
    for word in VERDICTS:
        assert word not in text, word
    ctx = _render.handout_context(evidence)
    blanks = [(b, st) for s in ctx["sections"] for b in s["blanks"] for st in b["steps"]]
    assert tex.count(r"\blank \tag*") == len(blanks) > 10
    for b, st in blanks:
        # a result is never printed, unless it is a visible part of the question itself
        if len(st["after"]) > 6 and st["after"] not in " ".join(b["start"]):
            assert st["after"] not in tex, st["label"]


@NEED_TEX
def test_key_has_every_blank_answer(evidence, built):
    tex = (built / "handout-key.tex").read_text(encoding="utf-8")
    text = _text(built / "handout-key.pdf")
    ctx = _render.handout_context(evidence, key=True)
    for s in ctx["sections"]:
        for b in s["blanks"]:
            for st in b["steps"]:
                assert f"[{st['label']}]" in text
                for line in st["lines"]:
                    assert line in tex, st["label"]
    for e in evidence["exercises"]:
        for d in e["symbolic"]["derivations"]:
            assert all(line in tex for line in d["start_display"])
