r"""Beyond the lecture: the mean-field maps, :math:`\chi_1` and the edge of chaos (B1-B3).

For a fully connected network with weights :math:`N(0, \sigma_w^2/n)` and biases
:math:`N(0, \sigma_b^2)`, the pre-activation variance of one input and the covariance
of two inputs follow, at infinite width,

.. math::

    q \mapsto F(q) = \sigma_w^2\,\mathbb{E}_z[\phi(\sqrt{q}\,z)^2] + \sigma_b^2, \qquad
    c \mapsto C(c) = \frac{\sigma_w^2\,\mathbb{E}[\phi(u)\phi(v)] + \sigma_b^2}{q^*},
    \qquad \chi_1 = C'(1) = \sigma_w^2\,\mathbb{E}_z[\phi'(\sqrt{q^*}\,z)^2],

with :math:`(u, v)` centred Gaussian, variances :math:`q^*` and correlation :math:`c`.
The q-map is derived from one layer with the moment calculus; the closed forms are
reached by the kernel's Gaussian moments (relu: :math:`\chi_1 = \sigma_w^2/2`, so He's
:math:`\sigma_w^2 = 2` is critical) and by Price's theorem (erf: the arcsine kernel,
critical :math:`\sigma_w^2 = \pi/4` at :math:`\sigma_b^2 = 0`). Where no closed form
exists (tanh) the numbers come from :mod:`derivations._meanfield` (quadrature, with an
error estimate).

Probes: the layer-2 correlation of two inputs is exact at every width (given fixed
inputs, the layer-1 pre-activations are exactly jointly Gaussian), so it checks the
c-map itself; relu's q-map is exact at every layer and width (its square moment is
linear in the variance). Deeper, the finite-width correlation deviates from the map by
:math:`O(1/n)`; the report's figures measure that deviation.

References
----------
.. [1] B. Poole, S. Lahiri, M. Raghu, J. Sohl-Dickstein and S. Ganguli (2016),
   "Exponential expressivity in deep neural networks through transient chaos",
   NeurIPS: the q-map, the c-map and :math:`\chi_1`.
.. [2] S. Schoenholz, J. Gilmer, S. Ganguli and J. Sohl-Dickstein (2017), "Deep
   Information Propagation", ICLR: the depth scales :math:`\xi_q = -1/\ln F'(q^*)`,
   :math:`\xi_c = -1/\ln C'(c^*)` and the critical line.
.. [3] C. K. I. Williams (1997), "Computing with infinite networks", NeurIPS: the
   arcsine kernel of erf,
   :math:`\mathbb{E}[\operatorname{erf}(u)\operatorname{erf}(v)] = \frac{2}{\pi}
   \arcsin\frac{2 q_{12}}{\sqrt{(1 + 2 q_1)(1 + 2 q_2)}}`.
.. [4] R. Price (1958), "A useful theorem for nonlinear devices having Gaussian inputs",
   IRE Trans. Inform. Theory 4(2): :math:`\partial_{q_{12}}\mathbb{E}[f(u) g(v)] =
   \mathbb{E}[f'(u) g'(v)]`.
.. [5] K. He, X. Zhang, S. Ren and J. Sun (2015), "Delving Deep into Rectifiers", ICCV.
.. [6] neural-tangents, ``neural_tangents/_src/stax/elementwise.py``, ``Erf``: the same
   kernel, with the denominators :math:`1 + 2\,\mathrm{cov}` of the two variances.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cache

import numpy as np
import sympy as sp

from ._calculus import (
    MOMENT_OF_SUM,
    Ex,
    Model,
    RandomFamily,
)
from ._check import Chain
from ._claim import Assumption, Check, Claim, Derivation, Probe, Status
from ._gaussian import checked_moment, gaussian_integral
from ._meanfield import critical_line, mean_field, pair_mean
from ._symbols import i, j, q
from ._table import family
from ._user import x

# --------------------------------------------------------------------------- symbols

n = sp.Symbol("n", integer=True, positive=True)
gamma, v, sw2 = sp.symbols("gamma v sigma_w^2", positive=True)
mu = sp.Symbol("mu", real=True)
sb2 = sp.Symbol("sigma_b^2", nonnegative=True)
q1, q2 = sp.symbols("q_1 q_2", positive=True)
q12, s, c = sp.symbols("q_12 s c", real=True)
u_, v_ = sp.symbols("u v", real=True)
w = sp.IndexedBase("w")
h = sp.IndexedBase("h")
b = sp.IndexedBase("b")
zz = sp.IndexedBase("z")
phi = sp.Function("phi")

#: :math:`\mathbb{E}_z[\phi(\sqrt{q} z)^2]` for a generic activation.
PHI_SQUARE = gaussian_integral(phi(x) ** 2, x, q)


class PairMean(sp.Function):
    r""":math:`\mathbb{E}[f(u, v)]` for centred Gaussian :math:`(u, v)` with variances
    :math:`q_1, q_2` and covariance :math:`q_{12}`: arguments ``(Lambda((u, v), f), q1, q2,
    q12)``.

    Left unevaluated; its steps are checked by two-dimensional quadrature
    (:func:`derivations._meanfield.pair_mean`). It has no numeric value of its own, so a
    generic numeric route stops at it (``ValueError``) instead of guessing.
    """

    nargs = 4

    @staticmethod
    def _imp_(*args):
        raise ValueError("a two-dimensional Gaussian expectation has no generic numeric route")

    def _code(self, printer, **kwargs) -> str:
        return "PairMean()"  # evaluated by ``_imp_``, which refuses

    _mpmathcode = _pythoncode = _numpycode = _lambdacode = _code

    def _sympystr(self, printer) -> str:
        f, a, bb, cc = (printer._print(e) for e in (self.args[0].expr, *self.args[1:]))
        return f"E[{f}; Var u = {a}, Var v = {bb}, Cov = {cc}]"

    def _latex(self, printer, exp=None):
        f, a, bb, cc = self.args
        a, bb, cc = (printer._print(e) for e in (a, bb, cc))
        tex = (
            r"\mathbb{E}_{(u, v) \sim N\left(0, \left[\begin{smallmatrix} %s & %s \\ %s & %s"
            r"\end{smallmatrix}\right]\right)}\left[%s\right]"
            % (a, cc, cc, bb, printer._print(f.expr))
        )
        return tex if exp is None else r"%s^{%s}" % (tex, exp)


def pair(f: sp.Expr, a: sp.Expr, bb: sp.Expr, cov: sp.Expr) -> PairMean:
    """:class:`PairMean` of ``f``, an expression in ``u`` and ``v``."""
    return PairMean(sp.Lambda((u_, v_), f), a, bb, cov)


# --------------------------------------------------------------------------- the q-map

LAYER_MODEL = Model(
    families=(
        RandomFamily(w, "weights of the layer, i.i.d.", sp.Integer(0), gamma, True),
        RandomFamily(
            h, "outputs of the layer below, identically distributed", mu, v, False, computed=True
        ),
        RandomFamily(b, "biases of the layer, i.i.d.", sp.Integer(0), sb2, True),
    ),
    definitions={zz: ((i,), sp.Sum(w[i, j] * h[j], (j, 1, n)) + b[i])},
    mutually_independent=frozenset({w, h, b}),
    width=n,
    free_indices={i: 1},
)

GAUSSIAN_PREACTIVATIONS = Assumption(
    "gaussian-preactivations",
    r"$h_j = \phi(z'_j)$ with the pre-activations $z'_j$ of the layer below "
    r"$N(0, q)$ (the mean-field approximation: exact at infinite width; at finite width "
    r"$q$ is itself random)",
    {v: PHI_SQUARE - mu**2},
)

ASSUMPTIONS = (
    Assumption(
        "iid-weights",
        r"the weights $w_{ij}$ are i.i.d. with mean 0 and variance $\gamma$, the biases "
        r"$b_i$ i.i.d. with mean 0 and variance $\sigma_b^2$",
    ),
    Assumption("independent-layers", r"$W$, $b$ and the layer below $h$ are independent"),
    Assumption(
        "identical-inputs",
        r"the $h_j$ share mean $\mu$ and variance $v$; they need not be independent",
    ),
    Assumption(
        "mean-field-weights",
        r"$\gamma = \sigma_w^2/n$ (the weight variance times the fan-in is $\sigma_w^2$)",
        {gamma: sw2 / n},
    ),
    GAUSSIAN_PREACTIVATIONS,
)

Q_ID, C_ID, EDGE_ID = "mean-field-q-map", "mean-field-chi1", "edge-of-chaos"
RELU = Assumption("relu", r"$\phi(x) = \max(0, x)$")
ERF = Assumption("erf", r"$\phi(x) = \operatorname{erf}(x)$")
#: The integration variable of :data:`PHI_SQUARE`.
Z = PHI_SQUARE.limits[0][0]


def _activation(f: Callable[[sp.Expr], sp.Expr]) -> dict:
    """The instance of the generic q-map for the activation ``f``: its argument replaced."""
    arg = sp.sqrt(q) * Z
    return {phi(arg): f(arg)}


#: Width of the simulated networks of the probes, and the std of the network input.
WIDTH, INPUT_STD = 256, sp.Integer(1)
#: (label, sigma_w^2, sigma_b^2) of the relu network probes: He with a bias, and ordered.
RELU_POINTS = (
    ("he-bias", sp.Integer(2), sp.Rational(1, 10)),
    ("ordered", sp.Rational(6, 5), sp.Rational(1, 2)),
)
RELU_DEPTH = 3
#: tanh at sigma_b^2 = 0.05 (Schoenholz et al. 2017, Fig. 1): ordered and chaotic.
TANH_SB2 = 0.05
TANH_SW2 = (1.3, 2.5)


def _numeric_check(method: str, ok: bool | None, detail: str) -> Check:
    """A numeric route: ``tested`` when it agrees, ``refuted`` when not, ``undecided``
    when no value could be stated (``ok is None``)."""
    status = Status.UNDECIDED if ok is None else Status.TESTED if ok else Status.REFUTED
    return Check(method, status, detail)


def _layer_chains() -> tuple[Derivation, Derivation]:
    """The second moment of a pre-activation (moment calculus), then the q-map."""
    second = (
        Chain("pre-activation second moment", Ex(zz[i] ** 2), LAYER_MODEL, ASSUMPTIONS)
        .apply_all(MOMENT_OF_SUM)
        .done()
    )
    qmap = (
        Chain("q-map", Ex(zz[i] ** 2), LAYER_MODEL, ASSUMPTIONS)
        .use(Q_ID, second)
        .assume("mean-field-weights")
        .assume("gaussian-preactivations")
        .done()
    )
    return second, qmap


def _relu_q_chains(qmap: Derivation) -> tuple[Derivation, Derivation, Derivation]:
    """relu's q-map in closed form (the kernel's Gaussian moments), its fixed point and slope."""
    relu_map = (
        Chain("relu q-map", qmap.start, LAYER_MODEL, (*ASSUMPTIONS, RELU))
        .use(Q_ID, qmap, _activation(lambda a: sp.Max(0, a)))
        .step(
            sw2 * q / 2 + sb2,
            "Gaussian moments",
            r"$\mathbb{E}[\max(0, x)^2] = q/2$ "
            "from the symmetrised integrand",
        )
        .done()
    )
    (q_star,) = sp.solve(sp.Eq(relu_map.result, q), q)
    fixed = (
        Chain("relu fixed point", relu_map.result.subs(q, q_star))
        .step(
            q_star,
            "simplify",
            r"$q^*$ from sympy.solve($F(q) = q$, $q$); a variance "
            r"(positive) only when $\sigma_w^2 < 2$",
        )
        .done()
    )
    slope = (
        Chain("relu q-map slope", sp.Derivative(relu_map.result, q))
        .step(sp.diff(relu_map.result, q), "sympy.diff", r"$F'(q)$, the same at every $q$")
        .done()
    )
    return relu_map, fixed, slope


def _relu_network_probes(second: Derivation, relu_map: Derivation) -> list[Probe]:
    """Pre-activation second moment of layer 3 of relu networks with biases: exact at
    every width (given the layer below, each pre-activation is centred Gaussian)."""
    s2 = sp.Symbol("s^2", positive=True)
    first = second.result.subs({gamma: sw2 / n, mu: 0, v: s2})  # layer 1, from the input
    expr = first
    for _ in range(RELU_DEPTH - 1):
        expr = relu_map.result.subs(q, expr)
    probes = []
    for label, a, bb in RELU_POINTS:
        scenario = {
            "kind": "mlp",
            "widths": [WIDTH] * (RELU_DEPTH + 1),
            "weights": {"law": "normal", "std": float(sp.sqrt(a / WIDTH))},
            "biases": {"law": "normal", "std": float(sp.sqrt(bb))},
            "activation": "relu",
            "input": {"law": "normal", "mean": 0.0, "std": float(INPUT_STD)},
            "dtype": "float64",
        }
        observable = {
            "direction": "forward",
            "of": "preactivation",
            "moment": "m2",
            "layer": RELU_DEPTH,
        }
        probes.append(
            Probe.derived(
                f"relu-{label}-layer-{RELU_DEPTH}",
                scenario,
                observable,
                expr,
                {sw2: a, sb2: bb, s2: INPUT_STD**2},
                note="the q-map iterated from the input; exact at every width for relu",
            )
        )
    return probes


@cache
def _tanh_mean_field(sigma_w2: float, sigma_b2: float = TANH_SB2):
    """:func:`derivations._meanfield.mean_field` of tanh (quadrature, with error estimates)."""
    return mean_field(sp.tanh(x), sigma_w2, sigma_b2)


def _tanh_fixed_point(qmap: Derivation, sigma_w2: float) -> tuple[Check, Probe | None]:
    """tanh's q* by quadrature, checked by a second quadrature of :math:`F(q^*)`, and a
    scalar probe of :math:`\\mathbb{E}[\\tanh(\\sqrt{q^*} z)^2]` from the fixed-point
    equation solved for the moment."""
    m = _tanh_mean_field(sigma_w2)
    q_star, slope = m.q_star, m.q_slope
    where = f"tanh, sigma_w^2 = {sigma_w2:g}, sigma_b^2 = {TANH_SB2:g}"
    if not (q_star.decided and slope.decided):
        why = q_star.reason or slope.reason
        return _numeric_check("quadrature", None, f"{where}: q* undecided: {why}"), None
    (integral,) = qmap.result.atoms(sp.Integral)
    (solved,) = sp.solve(sp.Eq(qmap.result, q), integral)
    solved = sp.simplify(sp.simplify(PHI_SQUARE).subs(integral, solved))  # E[phi^2] at q*
    probe = Probe.derived(
        f"tanh-m2-at-q-star-sw2-{sigma_w2:g}",
        {
            "kind": "scalar",
            "activation": "tanh",
            "q": float(q_star.value),
            "function": "value",
            "dtype": "float64",
        },
        {"moment": "m2"},
        solved,
        {q: sp.Float(q_star.value, 17), sw2: sp.Float(sigma_w2), sb2: sp.Float(TANH_SB2)},
        bias_bound=q_star.error / sigma_w2,
        note="the fixed-point equation q* = F(q*) solved for E[tanh(x)^2], x ~ N(0, q*); "
        "q* by quadrature, its error estimate as the bias bound",
    )
    again = checked_moment(sp.tanh(x) ** 2, x, q_star.value, exact=False)
    if not again.decided:
        return _numeric_check(
            "quadrature", None, f"{where}: F(q*) undecided: {again.reason}"
        ), probe
    residual = abs(sigma_w2 * float(again.value) + TANH_SB2 - q_star.value)
    agrees = residual <= 10 * (q_star.error + sigma_w2 * again.error) + 1e-12
    stable = abs(slope.value) < 1
    check = _numeric_check(
        "quadrature",
        agrees and stable,
        f"{where}: q* = {q_star.value:.10g} (+- {q_star.error:.1g}, {q_star.method}); F(q*) by "
        f"a second quadrature ({again.method}) differs from q* by {residual:.2g}; "
        f"F'(q*) = {slope.value:.6g}, so q* is " + ("stable" if stable else "not stable"),
    )
    return check, probe


@cache
def mean_field_q_map() -> Claim:
    """B1: the q-map from one layer, its fixed point and its stability.

    Returns
    -------
    Claim
        The pre-activation second moment of a layer with biases (moment calculus), the
        q-map under :math:`\\gamma = \\sigma_w^2/n` and Gaussian pre-activations, relu's
        closed form, fixed point and slope; tanh's fixed points by quadrature; probes.

    Notes
    -----
    .. math::

        \\mathbb{E}[z_i^2] = n\\gamma(v + \\mu^2) + \\sigma_b^2
        \\;\\to\\; F(q) = \\sigma_w^2\\,\\mathbb{E}_z[\\phi(\\sqrt q z)^2] + \\sigma_b^2,
        \\qquad F_{\\mathrm{relu}}(q) = \\frac{\\sigma_w^2}{2} q + \\sigma_b^2 .
    """
    second, qmap = _layer_chains()
    relu_map, fixed, slope = _relu_q_chains(qmap)
    tanh = [_tanh_fixed_point(qmap, a) for a in TANH_SW2]
    probes = _relu_network_probes(second, relu_map) + [p for _, p in tanh if p is not None]
    return Claim(
        id=Q_ID,
        lecture=("B1",),
        title="The variance map of a deep network: fixed point and stability",
        summary=(
            r"A layer with weights of variance $\sigma_w^2/n$ and biases of variance "
            r"$\sigma_b^2$ maps the pre-activation variance $q$ of the layer below to "
            rf"${sp.latex(qmap.result)}$ when those pre-activations are $N(0, q)$ (the "
            r"mean-field limit). For relu this is "
            rf"${sp.latex(relu_map.result)}$, with slope ${sp.latex(slope.result)}$: the "
            rf"fixed point $q^* = {sp.latex(fixed.result)}$ exists and is stable only for "
            r"$\sigma_w^2 < 2$; at He's $\sigma_w^2 = 2$ the variance grows by $\sigma_b^2$ "
            r"per layer. tanh has a stable $q^*$ on both sides of its critical line "
            "(quadrature)."
        ),
        assumptions=(*ASSUMPTIONS, RELU),
        derivations=(second, qmap, relu_map, fixed, slope),
        conditions=(sp.StrictLessThan(slope.result, 1), sp.Eq(q, fixed.result)),
        confirmations=tuple(c for c, _ in tanh),
        probes=tuple(probes),
    )


# --------------------------------------------------------------------------- chi1 and the c-map

#: (q1, q2, q12) where the steps of the arcsine kernel are checked by quadrature.
KERNEL_POINTS = ((1.0, 1.0, 0.5), (0.5, 2.0, -0.3), (3.0, 0.2, 0.6))
#: Agreement asked of two quadratures of one step (absolute, on values of order 1).
KERNEL_TOLERANCE = 1e-7


def _pair_value(f: sp.Expr, a: float, bb: float, cov: float) -> tuple[float, float]:
    """:math:`\\mathbb{E}[g(u) h(v)]` for ``f = g(u) h(v)`` by two-dimensional quadrature."""
    g, hh = f.expr.as_independent(v_)
    value = pair_mean(
        sp.sympify(g).subs(u_, math.sqrt(a) * x),
        sp.sympify(hh).subs(v_, math.sqrt(bb) * x),
        1.0,
        cov / math.sqrt(a * bb),
    )
    if not value.decided:
        raise ValueError(f"two-dimensional quadrature undecided: {value.reason}")
    return value.value, value.error


def evaluate_pairs(expr: sp.Expr) -> tuple[float, float]:
    """A number from ``expr`` with every :class:`PairMean` done by quadrature, and its
    error (the quadratures' estimates, propagated to first order)."""
    atoms = sorted(sp.sympify(expr).atoms(PairMean), key=sp.default_sort_key)
    dummies = [sp.Dummy(f"P{k}") for k in range(len(atoms))]
    values = [_pair_value(a.args[0], *(float(t) for t in a.args[1:])) for a in atoms]
    reduced = sp.sympify(expr).xreplace(dict(zip(atoms, dummies, strict=True)))
    at = {d: val for d, (val, _) in zip(dummies, values, strict=True)}
    error = sum(
        abs(float(sp.diff(reduced, d).subs(at))) * e
        for d, (_, e) in zip(dummies, values, strict=True)
    )
    return float(reduced.subs(at)), error


#: Gauss-Legendre nodes of the integral over the covariance in :func:`_price_check`.
COVARIANCE_NODES = 12


def _side(e: sp.Expr, point: dict) -> float:
    """One side of a step at ``point``: :class:`PairMean` by quadrature, an integral over
    the covariance by Gauss-Legendre (its integrand is smooth on the interval)."""
    e = e.subs(point)
    if not isinstance(e, sp.Integral):
        return evaluate_pairs(e)[0]
    ((var, lo, hi),) = e.limits
    nodes, weights = np.polynomial.legendre.leggauss(COVARIANCE_NODES)
    lo, hi = float(lo), float(hi)
    mid, half = (lo + hi) / 2, (hi - lo) / 2
    return half * sum(
        wk * evaluate_pairs(e.function.subs(var, mid + half * tk))[0]
        for tk, wk in zip(nodes, weights, strict=True)
    )


def _price_check(before: sp.Expr, after: sp.Expr, what: str) -> Check:
    """Both sides at :data:`KERNEL_POINTS` by two-dimensional quadrature."""
    shown = []
    for a, bb, cov in KERNEL_POINTS:
        point = {q1: a, q2: bb, q12: cov, s: cov}
        lhs, rhs = _side(before, point), _side(after, point)
        if not abs(lhs - rhs) <= KERNEL_TOLERANCE:
            return Check(
                "quadrature",
                Status.REFUTED,
                f"{what}: {lhs:.12g} against {rhs:.12g} at {point}",
                {str(k): str(val) for k, val in point.items()},
            )
        shown.append(f"(q1, q2, q12) = ({a:g}, {bb:g}, {cov:g}): {lhs:.10f} and {rhs:.10f}")
    return Check(
        "quadrature",
        Status.TESTED,
        f"{what}, both sides by two-dimensional quadrature agree within "
        f"{KERNEL_TOLERANCE:g} at " + "; ".join(shown),
    )


def _derivative_moment() -> Derivation:
    r""":math:`\mathbb{E}[\operatorname{erf}'(u)\operatorname{erf}'(v)]`: a Gaussian
    integral of the exponential of a quadratic form."""
    d = sp.diff(sp.erf(u_), u_) * sp.diff(sp.erf(v_), v_)
    start = pair(d, q1, q2, s)
    det = sp.Matrix([[1 + 2 * q1, 2 * s], [2 * s, 1 + 2 * q2]]).det()
    after = sp.Rational(4) / sp.pi / sp.sqrt(det)
    return (
        Chain("moment of the derivatives", start)
        .step(
            after,
            "Gaussian integral",
            r"$\mathbb{E}[e^{-u^2 - v^2}] = \det(I + 2\Sigma)^{-1/2}$ for "
            r"$(u, v) \sim N(0, \Sigma)$, and $\operatorname{erf}'(t) = 2e^{-t^2}/\sqrt{\pi}$",
            extra=(_price_check(start, after, "the Gaussian integral"),),
        )
        .done()
    )


def _arcsine_kernel(moment: Derivation) -> Derivation:
    """Williams' arcsine kernel: Price's theorem, the moment of the derivatives, and
    ``sympy.integrate`` over the covariance."""
    start = pair(sp.erf(u_) * sp.erf(v_), q1, q2, q12)
    price = sp.Integral(moment.start, (s, 0, q12))
    return (
        Chain("arcsine kernel", start)
        .step(
            price,
            "Price's theorem",
            r"$\partial_{q_{12}}\mathbb{E}[f(u)g(v)] = \mathbb{E}[f'(u)g'(v)]$; at "
            r"$q_{12} = 0$, $u$ and $v$ are independent and erf is odd, so the value is 0",
            extra=(_price_check(start, price, "Price's theorem"),),
        )
        .use(C_ID, moment, lhs=moment.start)
        .step(
            2 / sp.pi * sp.asin(2 * q12 / sp.sqrt((1 + 2 * q1) * (1 + 2 * q2))),
            "sympy.integrate",
            "the integral over the covariance",
        )
        .done()
    )


def _erf_chains(kernel: Derivation) -> tuple[Derivation, Derivation, Derivation, Derivation]:
    """erf's q-map and c-map from the kernel; :math:`\\chi_1` as the slope of the c-map at
    :math:`c = 1` and from its definition; the two must agree."""
    same = pair(sp.erf(u_) * sp.erf(v_), q, q, q)
    qmap = (
        Chain("erf q-map", sw2 * same + sb2)
        .use(C_ID, kernel, {q1: q, q2: q, q12: q}, lhs=same)
        .step(sw2 * 2 / sp.pi * sp.asin(2 * q / (1 + 2 * q)) + sb2, "simplify", "")
        .done()
    )
    pair_c = pair(sp.erf(u_) * sp.erf(v_), q, q, c * q)
    cmap = (
        Chain("erf c-map", (sw2 * pair_c + sb2) / q)
        .use(C_ID, kernel, {q1: q, q2: q, q12: c * q}, lhs=pair_c)
        .step((sw2 * 2 / sp.pi * sp.asin(2 * c * q / (1 + 2 * q)) + sb2) / q, "simplify", "")
        .done()
    )
    slope_at_1 = sp.Subs(sp.Derivative(cmap.result, c), c, 1)
    slope = (
        Chain("erf chi1 as the slope of the c-map", slope_at_1)
        .step(sp.simplify(slope_at_1.doit()), "sympy.diff", r"$C'(1)$ at the variance $q$")
        .done()
    )
    derivative = sp.diff(sp.erf(x), x)
    chi1 = (
        Chain("erf chi1", sw2 * gaussian_integral(derivative**2, x, q))
        .step(
            slope.result,
            "sympy.integrate",
            r"$\sigma_w^2\,\mathbb{E}_z[\operatorname{erf}'(\sqrt{q} z)^2]$ equals the slope",
        )
        .done()
    )
    return qmap, cmap, slope, chi1


def _relu_chi1() -> tuple[Derivation, Derivation]:
    """relu's :math:`\\chi_1 = \\sigma_w^2/2` by the kernel's Gaussian moments, and He's
    :math:`\\sigma_w^2 = 2` as the solution of :math:`\\chi_1 = 1`."""
    derivative = sp.diff(sp.Max(0, x), x)  # Heaviside(x)
    chi1 = (
        Chain("relu chi1", sw2 * gaussian_integral(derivative**2, x, q))
        .step(
            sw2 * gaussian_integral(derivative, x, q),
            "null set",
            r"$H(x)^2 = H(x)$ except at $x = 0$, which has probability 0",
        )
        .step(
            sw2 / 2,
            "Gaussian moments",
            r"$\mathbb{E}[H(x)] = 1/2$ from the symmetrised "
            "integrand",
        )
        .done()
    )
    (he,) = sp.solve(sp.Eq(chi1.result, 1), sw2)
    critical = (
        Chain("relu critical point", chi1.result.subs(sw2, he))
        .step(
            sp.Integer(1),
            "simplify",
            rf"$\sigma_w^2 = {sp.latex(he)}$ from sympy.solve"
            r"($\chi_1 = 1$); $\chi_1$ does not depend on $q^*$, so this holds for every "
            r"$\sigma_b^2$",
        )
        .done()
    )
    return chi1, critical


def _erf_critical(qmap: Derivation, chi1: Derivation) -> tuple[Derivation, Derivation]:
    """At :math:`\\sigma_b^2 = 0`, :math:`q^* = 0` and :math:`\\chi_1 = 4\\sigma_w^2/\\pi`."""
    at_zero = {sb2: 0, q: 0}
    fixed = (
        Chain("erf fixed point at sigma_b^2 = 0", qmap.result.subs(at_zero))
        .step(sp.Integer(0), "simplify", r"$q^* = 0$ is a fixed point when $\sigma_b^2 = 0$")
        .done()
    )
    (crit,) = sp.solve(sp.Eq(chi1.result.subs(q, 0), 1), sw2)
    critical = (
        Chain("erf critical point at sigma_b^2 = 0", chi1.result.subs({q: 0, sw2: crit}))
        .step(
            sp.Integer(1),
            "simplify",
            rf"$\sigma_w^2 = {sp.latex(crit)}$ from sympy.solve"
            r"($\chi_1 = 1$) at $q^* = 0$",
        )
        .done()
    )
    return fixed, critical


q0, c0 = sp.Symbol("q_0", positive=True), sp.Symbol("c_0", real=True)
CHI1 = sp.Symbol("chi_1", positive=True)
#: (label, activation, sigma_w^2, sigma_b^2, c0) of the layer-2 correlation probes (q0 = 1):
#: erf in its chaotic phase (decorrelating) and in its ordered phase (correlating).
PAIR_PROBES = (
    ("chaotic", "erf", sp.Integer(3), sp.Rational(1, 10), sp.Rational(1, 2)),
    ("ordered", "erf", sp.Integer(1), sp.Rational(1, 2), sp.Rational(1, 5)),
)
#: Layer of the correlation probes: the first whose correlation the c-map moves.
PAIR_LAYER = 2


def layer_two_correlation(kernel: Derivation) -> sp.Expr:
    """The correlation of two inputs at layer 2, symbolic in ``sigma_w^2, sigma_b^2, q_0,
    c_0``: the c-map of ``kernel`` applied to the exact layer-1 variance and covariance.

    Layer 1's are the pre-activation second moment of B1 with the input's
    :math:`\\|x\\|^2/n = q_0` (for the covariance, :math:`x_a \\cdot x_b/n = c_0 q_0`: the
    same steps with the cross moment).
    """
    second = mean_field_q_map().derivation("pre-activation second moment").result
    var1, cov1 = (second.subs({gamma: sw2 / n, mu: 0, v: val}) for val in (q0, c0 * q0))

    def expectation(cov: sp.Expr) -> sp.Expr:
        return kernel.result.subs({q1: var1, q2: var1, q12: cov})

    return (sw2 * expectation(cov1) + sb2) / (sw2 * expectation(var1) + sb2)


def _pair_probes(kernel: Derivation) -> list[Probe]:
    """Layer-2 correlation of two inputs: exact at every width (fixed inputs make the
    layer-1 pre-activations exactly jointly Gaussian)."""
    probes = []
    for label, name, a, bb, start in PAIR_PROBES:
        scenario = {
            "kind": "pair",
            "width": WIDTH,
            "depth": PAIR_LAYER,
            "activation": name,
            "sigma_w2": float(a),
            "sigma_b2": float(bb),
            "q0": 1.0,
            "c0": float(start),
        }
        probes.append(
            Probe.derived(
                f"{name}-{label}-correlation-layer-{PAIR_LAYER}",
                scenario,
                {"quantity": "correlation", "layer": PAIR_LAYER},
                layer_two_correlation(kernel),
                {sw2: a, sb2: bb, q0: 1, c0: start},
                note="the c-map of the arcsine kernel applied to the exact layer-1 variance and "
                "covariance; exact at every width",
            )
        )
    return probes


def _erf_q_map_confirmation(qmap: Derivation) -> Check:
    """erf's closed-form q-map against a one-dimensional quadrature of its definition."""
    rows = []
    for qv in (0.1, 1.0, 10.0):
        m = checked_moment(sp.erf(x) ** 2, x, qv, exact=False)
        closed = float(((qmap.result - sb2) / sw2).subs(q, qv))
        if not m.decided:
            return _numeric_check("quadrature", None, f"E[erf(x)^2] at q = {qv}: {m.reason}")
        if abs(float(m.value) - closed) > 10 * m.error + 1e-12:
            return _numeric_check(
                "quadrature",
                False,
                f"at q = {qv}: quadrature {float(m.value):.15g}, closed form {closed:.15g}",
            )
        rows.append(f"q = {qv:g}: {closed:.12f} (+- {m.error:.1g})")
    return _numeric_check(
        "quadrature",
        True,
        "E[erf(x)^2] = (2/pi) asin(2q/(1 + 2q)) against QUADPACK and mpmath at " + "; ".join(rows),
    )


def _relu_scalar_probe(relu_chi1: Derivation) -> Probe:
    """:math:`\\mathbb{E}[\\operatorname{relu}'(x)^2] = \\chi_1/\\sigma_w^2` for one scalar."""
    return Probe.derived(
        "relu-derivative-m2",
        {
            "kind": "scalar",
            "activation": "relu",
            "q": 1.0,
            "function": "derivative",
            "dtype": "float64",
        },
        {"moment": "m2"},
        CHI1 / sw2,
        {CHI1: relu_chi1.result.subs(sw2, 2), sw2: 2},
        note="E[relu'(x)^2] = chi1/sigma_w^2, with the derived chi1 at He's sigma_w^2 = 2",
    )


@cache
def mean_field_chi1() -> Claim:
    """B2: the correlation map, :math:`\\chi_1`, and the two closed forms.

    Returns
    -------
    Claim
        The arcsine kernel of erf (Price's theorem, a Gaussian integral, ``sympy.integrate``),
        erf's q-map and c-map, :math:`\\chi_1` as the c-map's slope at 1 and by its
        definition; relu's :math:`\\chi_1 = \\sigma_w^2/2` (so He is critical) and erf's
        critical :math:`\\sigma_w^2 = \\pi/4` at :math:`\\sigma_b^2 = 0`; probes of the
        layer-2 correlation of two inputs.

    Notes
    -----
    .. math::

        \\mathbb{E}[\\operatorname{erf}(u)\\operatorname{erf}(v)] = \\frac{2}{\\pi}
        \\arcsin\\frac{2q_{12}}{\\sqrt{(1 + 2q_1)(1 + 2q_2)}}, \\qquad
        \\chi_1^{\\mathrm{erf}} = \\frac{4\\sigma_w^2}{\\pi\\sqrt{1 + 4q^*}}, \\qquad
        \\chi_1^{\\mathrm{relu}} = \\frac{\\sigma_w^2}{2}.
    """
    moment = _derivative_moment()
    kernel = _arcsine_kernel(moment)
    qmap, cmap, slope, chi1 = _erf_chains(kernel)
    relu_chi1, he = _relu_chi1()
    fixed0, critical0 = _erf_critical(qmap, chi1)
    return Claim(
        id=C_ID,
        lecture=("B2",),
        title="Two inputs: the correlation map and its slope chi1",
        summary=(
            r"Two inputs whose pre-activations have variance $q$ and correlation $c$ come out "
            r"of a layer with correlation $C(c) = (\sigma_w^2\,\mathbb{E}[\phi(u)\phi(v)] + "
            r"\sigma_b^2)/q$; $C(1) = 1$ at the fixed point $q^*$, and its slope there is "
            r"$\chi_1 = \sigma_w^2\,\mathbb{E}[\phi'(\sqrt{q^*}z)^2]$. For erf the "
            rf"expectation is the arcsine kernel ${sp.latex(kernel.result)}$ (Price's "
            rf"theorem), so $\chi_1 = {sp.latex(chi1.result)}$ both as the slope and by the "
            rf"definition; for relu $\chi_1 = {sp.latex(relu_chi1.result)}$. $\chi_1 = 1$ "
            r"gives He's $\sigma_w^2 = 2$ for relu at every $\sigma_b^2$, and "
            r"$\sigma_w^2 = \pi/4$ for erf at $\sigma_b^2 = 0$."
        ),
        assumptions=(GAUSSIAN_PREACTIVATIONS, RELU, ERF),
        derivations=(moment, kernel, qmap, cmap, slope, chi1, relu_chi1, he, fixed0, critical0),
        conditions=(
            sp.Eq(CHI1, chi1.result),
            sp.Eq(CHI1, relu_chi1.result),
            sp.Eq(sw2, sp.solve(sp.Eq(relu_chi1.result, 1), sw2)[0]),
            sp.Eq(sw2, sp.solve(sp.Eq(chi1.result.subs(q, 0), 1), sw2)[0]),
        ),
        confirmations=(_erf_q_map_confirmation(qmap),),
        probes=tuple([*_pair_probes(kernel), _relu_scalar_probe(relu_chi1)]),
    )


# --------------------------------------------------------------------------- the edge of chaos

#: Bias variances of the critical line shown (and checked) for erf and tanh.
LINE_SB2 = (0.05, 0.5)
#: tanh's phases at sigma_b^2 = 0.05: ordered, critical (from the line), chaotic.
PHASE_SB2 = 0.05


def _relu_depth_scale(relu_map: sp.Expr) -> Derivation:
    """:math:`\\xi_q = -1/\\ln F'(q^*)` for relu, from the slope of B1's q-map."""
    start = -1 / sp.log(sp.Derivative(relu_map, q))
    return (
        Chain("relu variance depth scale", start)
        .step(
            -1 / sp.log(sp.diff(relu_map, q)),
            "sympy.diff",
            r"$\xi_q$: $|q_t - q^*| \propto e^{-t/\xi_q}$; finite for $\sigma_w^2 < 2$, "
            r"infinite at He's $\sigma_w^2 = 2$",
        )
        .done()
    )


def _erf_depth_scale(qmap: sp.Expr) -> tuple[Derivation, Derivation]:
    """erf at :math:`\\sigma_b^2 = 0`: :math:`F'(0) = 4\\sigma_w^2/\\pi = \\chi_1`, and the
    depth scale :math:`\\xi_q` diverges at the critical :math:`\\sigma_w^2 = \\pi/4`."""
    slope0 = sp.Subs(sp.Derivative(qmap.subs(sb2, 0), q), q, 0)
    slope = (
        Chain("erf q-map slope at q = 0", slope0)
        .step(sp.simplify(slope0.doit()), "sympy.diff", r"equal to $\chi_1$ at $q^* = 0$")
        .done()
    )
    (crit,) = sp.solve(sp.Eq(slope.result, 1), sw2)
    inverse = sp.Limit(sp.log(slope.result), sw2, crit)  # 1/xi_q = -ln F'(0)
    diverges = (
        Chain("erf depth scale at the critical point", inverse)
        .step(
            inverse.doit(),
            "sympy.limit",
            rf"$1/\xi_q = -\ln F'(0) \to 0$ as $\sigma_w^2 \to {sp.latex(crit)}$: the "
            "signal's depth scale is infinite at the critical point",
        )
        .done()
    )
    return slope, diverges


def _phase_check() -> Check:
    """tanh on both sides of its critical line and on it: :math:`\\chi_1`, :math:`c^*`,
    :math:`\\xi_c` by quadrature, and whether the phases are as the theory says."""
    (point,) = critical_line(sp.tanh(x), [PHASE_SB2])
    crit = float(point.sigma_w2)
    rows, ok = [], True
    for sw in (TANH_SW2[0], crit, TANH_SW2[1]):
        m = _tanh_mean_field(sw, PHASE_SB2)
        if not (m.chi1.decided and m.c_star.decided):
            return _numeric_check("quadrature", None, f"tanh at sigma_w^2 = {sw:g} undecided")
        chi, cs = m.chi1.value, m.c_star.value
        ok &= (chi < 1 and cs == 1) or (chi > 1 and cs < 1) or abs(chi - 1) <= 1e-6
        xi = "infinite" if not m.xi_c.decided or math.isinf(m.xi_c.value) else f"{m.xi_c.value:.4g}"
        rows.append(
            f"sigma_w^2 = {sw:.6g}: chi1 = {chi:.6f}, {m.phase}, c* = {cs:.6g}, xi_c = {xi}"
        )
    return _numeric_check(
        "quadrature",
        ok,
        f"tanh at sigma_b^2 = {PHASE_SB2:g}: "
        + "; ".join(rows)
        + " (chi1 < 1: c* = 1, chi1 > 1: c* < 1)",
    )


def _line_check() -> Check:
    """The critical line :math:`\\chi_1 = 1` by quadrature (:mod:`derivations._meanfield`)
    for erf and tanh, with erf's :math:`\\pi/4` at :math:`\\sigma_b^2 = 0` as a cross-check."""
    rows = []
    for name, f in ((e.name, e.expression) for e in family("mean-field")):
        for p in critical_line(f, [0.0, *LINE_SB2]):
            if not p.sigma_w2.decided:
                return _numeric_check("quadrature", None, f"{name}: {p.sigma_w2.reason}")
            rows.append(f"{name}, sigma_b^2 = {p.sigma_b2:g}: {p.sigma_w2.value:.10g}")
    erf0 = critical_line(sp.erf(x), [0.0])[0].sigma_w2.value
    return _numeric_check(
        "quadrature",
        abs(erf0 - math.pi / 4) < 1e-12,
        "critical sigma_w^2 (chi1 = 1): " + "; ".join(rows) + "; erf at sigma_b^2 = 0 equals "
        f"pi/4 = {math.pi / 4:.10g} to {abs(erf0 - math.pi / 4):.1g}",
    )


def _critical_probes() -> list[Probe]:
    """tanh on its critical line (sigma_b^2 = 0.05): :math:`\\mathbb{E}[\\tanh'(x)^2] =
    1/\\sigma_w^2` and :math:`\\mathbb{E}[\\tanh(x)^2] = (q^* - \\sigma_b^2)/\\sigma_w^2`
    at :math:`x \\sim N(0, q^*)`: the two equations that define the line."""
    (point,) = critical_line(sp.tanh(x), [PHASE_SB2])
    sw, qc, err = point.sigma_w2.value, point.q_star, point.sigma_w2.error
    moment = sp.Symbol("M", positive=True)
    (derivative,) = sp.solve(sp.Eq(sw2 * moment, 1), moment)  # chi1 = 1
    (value,) = sp.solve(sp.Eq(sw2 * moment + sb2, q), moment)  # q* = F(q*)
    values = {sw2: sp.Float(sw, 17), sb2: sp.Float(PHASE_SB2), q: sp.Float(qc, 17)}
    return [
        Probe.derived(
            f"tanh-critical-{fn}-m2",
            {"kind": "scalar", "activation": "tanh", "q": qc, "function": fn, "dtype": "float64"},
            {"moment": "m2"},
            expr,
            values,
            bias_bound=bias,
            note=f"on the critical line at sigma_b^2 = {PHASE_SB2:g}: sigma_w^2 = {sw:.10g}, "
            f"q* = {qc:.10g} by quadrature ({why})",
        )
        for fn, expr, bias, why in (
            ("derivative", derivative, err / sw**2, "chi1 = 1"),
            ("value", value, 10 * err, "the fixed point; bias bound 10x the line's error"),
        )
    ]


@cache
def edge_of_chaos() -> Claim:
    """B3: phases, depth scales and the critical line.

    Returns
    -------
    Claim
        relu's :math:`\\xi_q`; erf's :math:`F'(0) = \\chi_1` and the divergence of
        :math:`\\xi_q` at :math:`\\pi/4`; tanh's phases and the critical lines of erf and
        tanh by quadrature; probes on tanh's critical line.

    Notes
    -----
    .. math::

        \\xi_q = -\\frac{1}{\\ln F'(q^*)}, \\qquad \\xi_c = -\\frac{1}{\\ln C'(c^*)},
        \\qquad \\chi_1(\\sigma_w^2, \\sigma_b^2) = 1 \\text{ on the critical line.}
    """
    relu_map = mean_field_q_map().derivation("relu q-map").result
    erf_map = mean_field_chi1().derivation("erf q-map").result
    relu_scale = _relu_depth_scale(relu_map)
    slope0, diverges = _erf_depth_scale(erf_map)
    return Claim(
        id=EDGE_ID,
        lecture=("B3",),
        title="The edge of chaos: depth scales diverge on the critical line",
        summary=(
            r"Perturbations of the variance decay like $e^{-t/\xi_q}$ and of the correlation "
            r"like $e^{-t/\xi_c}$, with $\xi_q = -1/\ln F'(q^*)$ and $\xi_c = -1/\ln C'(c^*)$. "
            r"In the ordered phase ($\chi_1 < 1$) two inputs merge ($c^* = 1$, "
            r"$C'(1) = \chi_1$); in the chaotic phase ($\chi_1 > 1$) they decorrelate to "
            r"$c^* < 1$. On the critical line $\chi_1 = 1$ the depth scale is infinite: "
            rf"relu's $\xi_q = {sp.latex(relu_scale.result)}$ diverges at He's "
            r"$\sigma_w^2 = 2$, erf's at $\sigma_w^2 = \pi/4$ ($\sigma_b^2 = 0$), where "
            rf"$F'(0) = {sp.latex(slope0.result)} = \chi_1$. tanh's phases and the critical "
            "lines of erf and tanh are computed by quadrature."
        ),
        assumptions=(GAUSSIAN_PREACTIVATIONS, RELU, ERF),
        derivations=(relu_scale, slope0, diverges),
        conditions=(sp.Eq(CHI1, 1),),
        confirmations=(_phase_check(), _line_check()),
        probes=tuple(_critical_probes()),
    )


#: The claims of this module, in order.
BUILDERS: tuple[Callable[[], Claim], ...] = (mean_field_q_map, mean_field_chi1, edge_of_chaos)
