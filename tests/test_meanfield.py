"""Mean-field quantities and ``initproof meanfield``, against independent closed forms.

Every expected value here comes from a closed form written in the test, never from the
module under test:

* relu: :math:`\\chi_1 = \\sigma_w^2/2` and the arc-cosine kernel
  :math:`\\mathbb{E}[\\mathrm{relu}(u_1)\\mathrm{relu}(u_2)] = q(\\sin\\theta + (\\pi -
  \\theta)\\cos\\theta)/(2\\pi)`, :math:`c = \\cos\\theta` (Cho and Saul 2009);
* erf: the arcsine kernel :math:`\\mathbb{E}[\\mathrm{erf}(u_1)\\mathrm{erf}(u_2)] =
  \\tfrac{2}{\\pi}\\arcsin\\tfrac{2qc}{1 + 2q}` and :math:`\\mathbb{E}[\\mathrm{erf}'(\\sqrt q
  z)^2] = \\tfrac{4}{\\pi}(1 + 4q)^{-1/2}` (Williams 1997), so the critical
  :math:`\\sigma_w^2` at :math:`\\sigma_b^2 = 0` is :math:`1/\\mathrm{erf}'(0)^2 = \\pi/4`;
* tanh: :math:`\\tanh'(0) = 1`, so the critical :math:`\\sigma_w^2` at :math:`\\sigma_b^2 = 0`
  is 1.
"""

from __future__ import annotations

import json
import math
import time

import pytest
from scipy import integrate, optimize

from cli import parser
from cli._commands import meanfield_command, run
from derivations._meanfield import critical_line, mean_field, pair_mean, prepare
from derivations._user import InputError


def cli(*argv: str, capsys) -> tuple[int, str, str, float]:
    args = parser().parse_args(list(argv))
    start = time.monotonic()
    code = run(args)
    out, err = capsys.readouterr()
    return code, out, err, time.monotonic() - start


# --------------------------------------------------------------------------- closed forms


@pytest.mark.parametrize("sw", [0.5, 1.5, 2.0, 3.0])
@pytest.mark.parametrize("sb", [0.0, 0.2])
def test_relu_chi1_is_half_sigma_w2(sw, sb):
    m = mean_field("Max(0, x)", sw, sb)
    assert m.chi1.value == pytest.approx(sw / 2, rel=1e-14)
    assert m.critical_sigma_w2.value == pytest.approx(2.0, rel=1e-14)
    expected = "ordered" if sw < 2 else "critical" if sw == 2 else "chaotic"
    assert m.phase == expected
    if sw < 2:  # F(q) = sw q / 2 + sb has the root sb / (1 - sw / 2)
        assert m.q_star.value == pytest.approx(sb / (1 - sw / 2), abs=1e-14)
        assert m.xi_q.value == pytest.approx(-1 / math.log(sw / 2), rel=1e-12)


def test_relu_critical_at_two_when_unbiased():
    (point,) = critical_line("Max(0, x)", [0.0])
    assert point.sigma_w2.value == pytest.approx(2.0, rel=1e-15)


def test_erf_critical_sigma_w2_is_pi_over_4():
    erf_slope_at_0 = 2 / math.sqrt(math.pi)  # d/dx erf(x) at 0
    (point,) = critical_line("erf(x)", [0.0])
    assert point.sigma_w2.value == pytest.approx(1 / erf_slope_at_0**2, rel=1e-12)
    assert point.sigma_w2.value == pytest.approx(math.pi / 4, rel=1e-12)
    m = mean_field("erf(x)", math.pi / 4, 0.0)
    assert m.phase == "critical"


def test_tanh_critical_sigma_w2_is_one():
    (point,) = critical_line("tanh(x)", [0.0])
    assert point.sigma_w2.value == pytest.approx(1.0, rel=1e-12)
    assert mean_field("tanh(x)", 0.9, 0.0).phase == "ordered"
    assert mean_field("tanh(x)", 1.0, 0.0).phase == "critical"


def _erf_q_star(sw: float, sb: float) -> float:
    """q* of erf from the arcsine closed form, by an independent root finder."""
    return optimize.brentq(
        lambda q: sw * (2 / math.pi) * math.asin(2 * q / (1 + 2 * q)) + sb - q, 1e-9, 1e3
    )


@pytest.mark.parametrize(("sw", "sb"), [(2.0, 0.1), (1.2, 0.05), (0.5, 0.3)])
def test_erf_against_the_arcsine_kernel(sw, sb):
    m = mean_field("erf(x)", sw, sb)
    q = _erf_q_star(sw, sb)
    chi1 = sw * (4 / math.pi) / math.sqrt(1 + 4 * q)
    assert m.q_star.value == pytest.approx(q, rel=1e-10)
    assert m.chi1.value == pytest.approx(chi1, rel=1e-10)
    assert m.phase == ("chaotic" if chi1 > 1 else "ordered")
    # the stated error estimates are consistent with the closed forms
    assert abs(m.q_star.value - q) <= max(10 * m.q_star.error, 1e-12 * q)
    if m.phase == "chaotic":  # c* solves C(c) = c with the arcsine kernel

        def c_map(c):
            return (sw * (2 / math.pi) * math.asin(2 * q * c / (1 + 2 * q)) + sb) / q

        c_star = optimize.brentq(lambda c: c_map(c) - c, -1 + 1e-12, 0.999)
        assert m.c_star.value == pytest.approx(c_star, abs=1e-9)
        # C'(c*) = sw E[erf'(u1) erf'(u2)] = sw (4/pi) / sqrt((1 + 2q)^2 - (2qc)^2)
        slope = sw * (4 / math.pi) / math.sqrt((1 + 2 * q) ** 2 - (2 * q * c_star) ** 2)
        assert m.chi_c.value == pytest.approx(slope, rel=1e-8)
        assert m.xi_c.value == pytest.approx(-1 / math.log(slope), rel=1e-7)


@pytest.mark.parametrize("c", [-0.9, -0.2, 0.0, 0.5, 0.95])
def test_pair_means_against_kernels(c):
    a = prepare("Max(0, x)")
    theta = math.acos(c)
    arccos = (math.sin(theta) + (math.pi - theta) * c) / (2 * math.pi)
    v = pair_mean(a.f, a.f, 1.0, c)
    assert v.status == "numeric"
    assert v.value == pytest.approx(arccos, abs=1e-12)
    e = prepare("erf(x)")
    q = 1.7
    assert pair_mean(e.f, e.f, q, c).value == pytest.approx(
        (2 / math.pi) * math.asin(2 * q * c / (1 + 2 * q)), abs=1e-12
    )


def test_tanh_chaotic_fixed_point_against_quadrature():
    """tanh at torch's gain 5/3: q* from SciPy's own quadrature; c* = 0 by oddness."""
    sw = 25 / 9

    def m2(q):
        return integrate.quad(
            lambda z: math.tanh(math.sqrt(q) * z) ** 2 * math.exp(-z * z / 2), -40, 40, limit=200
        )[0] / math.sqrt(2 * math.pi)

    q = optimize.brentq(lambda v: sw * m2(v) - v, 0.1, 10)
    m = mean_field("tanh(x)", sw, 0.0)
    assert m.q_star.value == pytest.approx(q, rel=1e-9)
    assert m.phase == "chaotic"
    assert abs(m.c_star.value) < 1e-10  # C(0) = 0 for an odd f without bias
    assert 0 < m.chi_c.value < 1


def test_wrong_answers_would_be_caught():
    """The comparisons above can fail: a shifted kernel is outside the stated error."""
    a = prepare("Max(0, x)")
    v = pair_mean(a.f, a.f, 1.0, 0.3)
    theta = math.acos(0.3)
    arccos = (math.sin(theta) + (math.pi - theta) * 0.3) / (2 * math.pi)
    assert abs(v.value - (arccos + 1e-6)) > 100 * v.error


# --------------------------------------------------------------------------- command


def test_command_json_fields(capsys):
    code, out, err, _ = cli(
        "meanfield", "erf(x)", "--sigma-w2", "2", "--sigma-b2", "0.1", "--json", capsys=capsys
    )
    assert code == 0, err
    r = json.loads(out)
    assert r["command"] == "meanfield"
    assert r["phase"] == "chaotic"
    assert r["q_star"]["value"] == pytest.approx(_erf_q_star(2.0, 0.1), rel=1e-10)
    for key in ("q_star", "q_slope", "chi1", "c_star", "chi_c", "xi_q", "xi_c"):
        assert r[key]["status"] in ("exact", "numeric"), (key, r[key])
        assert r[key]["method"]
    assert r["critical"]["sigma_w2"]["status"] == "numeric"
    names = [p["name"] for p in r["presets"]]
    assert "He" in names and any("Xavier" in n for n in names)


def test_command_default_is_critical_and_text(capsys):
    code, out, err, _ = cli("meanfield", "tanh(x)", capsys=capsys)
    assert code == 0, err
    assert "phase: CRITICAL" in out
    assert "torch calculate_gain('tanh')" in out


def test_plot_is_written_and_reproducible(tmp_path):
    paths = [tmp_path / "a.png", tmp_path / "b.png"]
    for p in paths:
        r = meanfield_command("Max(0, x)", sigma_w2="1.5", sigma_b2="0.1", plot=str(p))
        assert r["plot"] == str(p)
    data = [p.read_bytes() for p in paths]
    assert data[0][:8] == b"\x89PNG\r\n\x1a\n"
    assert data[0] == data[1]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("__import__('os').system('true')",), "`EXPR`"),
        (("exp(x**2)",), "diverge"),
        (("Heaviside(x)",), "jumps"),
        (("1/(x - 0.5)",), "EXPR"),
        (("tanh(x)", "--sigma-w2", "-1"), "`--sigma-w2`"),
        (("tanh(x)", "--sigma-w2", "0"), "`--sigma-w2`"),
        (("tanh(x)", "--sigma-b2", "-0.1"), "`--sigma-b2`"),
        (("tanh(x)", "--sigma-b2", "y"), "`--sigma-b2`"),
        (("tanh(x)", "--plot", "out.txt"), "`--plot`"),
        (("tanh(x)", "--plot", "/no/such/folder/p.png"), "`--plot`"),
        (("2",), "depend on x"),
    ],
)
def test_hostile_input_exits_2_naming_the_argument(args, fragment, capsys):
    code, out, err, seconds = cli("meanfield", *args, "--budget", "2", capsys=capsys)
    assert code == 2, (out, err)
    assert out == ""
    assert "Traceback" not in err and "internal failure" not in err
    assert err.startswith("initproof meanfield: error:")
    assert fragment in err
    assert seconds < 60


def test_prepare_refuses_divergent_moments():
    with pytest.raises(InputError, match=r"diverges|infinite"):
        prepare("exp(x**2/3)")


# --------------------------------------------------------------------------- framework gains


def _gauss(f) -> float:
    return integrate.quad(lambda z: f(z) * math.exp(-z * z / 2), -40, 40, limit=400, points=[0])[
        0
    ] / math.sqrt(2 * math.pi)


def test_activation_command_reports_mean_field_at_torch_gain():
    from cli._commands import activation_command

    r = activation_command("tanh(x)", simulate=False)
    rows = {row["gain"]: row for row in r["mean_field"]}
    torch = rows["torch calculate_gain('tanh')"]
    assert torch["sigma_w2"] == pytest.approx(25 / 9)
    sw = 25 / 9
    q = optimize.brentq(
        lambda v: sw * _gauss(lambda z: math.tanh(math.sqrt(v) * z) ** 2) - v, 0.1, 10
    )
    assert torch["q_star"]["value"] == pytest.approx(q, rel=1e-8)
    std = math.sqrt(_gauss(lambda z: math.tanh(math.sqrt(q) * z) ** 2))  # odd: mean 0
    assert torch["post_std"]["value"] == pytest.approx(std, rel=1e-8)
    chi1 = sw * _gauss(lambda z: (1 - math.tanh(math.sqrt(q) * z) ** 2) ** 2)
    assert torch["chi1"]["value"] == pytest.approx(chi1, rel=1e-8)
    assert torch["phase"] == "chaotic"


def test_gains_table():
    from report._evidence import gains_evidence

    rows = {r["activation"]: r for r in gains_evidence()}
    assert set(rows) == {
        "linear / identity",
        "sigmoid",
        "tanh",
        "relu",
        "leaky_relu (slope 0.01)",
        "selu",
    }
    for name in ("linear / identity", "relu", "leaky_relu (slope 0.01)"):
        assert rows[name]["preserves"] == "both", rows[name]["why"]
    for name in ("sigmoid", "tanh", "selu"):
        assert rows[name]["preserves"] == "neither", rows[name]["why"]
    # F(1) = gain^2 E[f(z)^2], by SciPy: tanh 25/9 E[tanh^2], sigmoid E[sigmoid^2]
    tanh_ratio = 25 / 9 * _gauss(lambda z: math.tanh(z) ** 2)
    assert rows["tanh"]["ratio_at_1"]["value"] == pytest.approx(tanh_ratio, rel=1e-9)
    sig_ratio = _gauss(lambda z: 1 / (1 + math.exp(-z)) ** 2)
    assert rows["sigmoid"]["ratio_at_1"]["value"] == pytest.approx(sig_ratio, rel=1e-9)
    # torch's selu gain 3/4: F(1) = 9/16 since E[selu(z)^2] = 1 at the published constants
    assert rows["selu"]["ratio_at_1"]["value"] == pytest.approx(9 / 16, rel=1e-9)
