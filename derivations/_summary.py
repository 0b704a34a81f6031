r"""Small fixed initial weights with depth, and the lecture's summary (L4.1, L4.2, L8.5).

.. math::

    \mathbb{E}[(h^d_i)^2] = v\,(n\sigma^2)^d \ \text{(linear)}, \qquad
    \mathbb{E}[(h^d_i)^2] = v\,\Big(\frac{n\sigma^2}{2}\Big)^d \ \text{(relu)}, \qquad
    \chi(q) = \frac{n\gamma\,\mathbb{E}[\phi(z)^2]}{q}, \ z \sim N(0, q).

L4.2 says :math:`N(0, 0.01)` "works for small nets, not deep ones". The slide does not
say whether 0.01 is the variance or the standard deviation; the D2L book draws weights
with ``normal(0, 0.01)``, a standard deviation, so the main case here is
:math:`\sigma = 0.01` (variance :math:`10^{-4}`), and the variance reading
:math:`\sigma = 0.1` is shown beside it. Iterating the one-layer results of L5.2 and
S1 over :math:`d` layers of width :math:`n` multiplies the second moment by
:math:`n\sigma^2` (linear) or :math:`n\sigma^2/2` (relu) per layer: at width 256 and
:math:`\sigma = 0.01` that is :math:`0.0256` per layer, so the signal vanishes
geometrically, and the depth at which its root mean square falls below the smallest
normal number of a float format is solved for.

L8.5 recommends Xavier with tanh or relu, or the adjusted sigmoid :math:`4\sigma - 2`.
Each pairing is judged by the per-layer factor :math:`\chi(q)` of the pre-activation
second moment, :math:`\mathbb{E}[(z^{t+1})^2] = n\gamma\,\mathbb{E}[\phi(z^t)^2]`
(He et al. 2015): with Xavier at equal widths (:math:`n\gamma = 1`), tanh gives
:math:`1 - 2q + O(q^2)` and :math:`4\sigma - 2` gives :math:`1 - q/2 + O(q^2)` (both
keep the variance only near :math:`q = 0`), relu gives :math:`1/2` at every :math:`q`,
so relu needs He's :math:`\gamma = 2/n`.

What the network probes predict, and why it is exact
----------------------------------------------------
The simulated networks have Gaussian weights and a Gaussian input
:math:`h^0 \sim N(0, s^2 I)`.

* Linear layers: :math:`\mathbb{E}[(h^t_i)^2] = n\gamma\,\mathbb{E}[(h^{t-1}_j)^2]`
  holds exactly at every width (L5.2 with L5.1's zero mean, which holds at every
  layer), so :math:`(n\gamma)^d` is exact; the same holds backward with an upstream
  gradient independent of the weights.
* Relu layers: given :math:`h^{t-1}`, :math:`z^t_i` is :math:`N(0, \gamma\lVert
  h^{t-1}\rVert^2)`, symmetric, so :math:`\mathbb{E}[\mathrm{relu}(z^t)^2 \mid h^{t-1}]
  = \mathbb{E}[(z^t)^2 \mid h^{t-1}]/2` exactly; the factor :math:`n\gamma/2` is exact
  at every width and depth.
* tanh and :math:`4\sigma - 2`: :math:`\mathbb{E}[\phi(z)^2]` is not proportional to
  the variance, and at finite width the variance :math:`Q = \gamma\lVert h^0\rVert^2
  = \gamma s^2 U`, :math:`U \sim \chi^2_{n_0}`, of :math:`z^1` is random. Given
  :math:`h^0`, :math:`z^1_j \sim N(0, Q)` exactly, so
  :math:`\mathbb{E}[\phi(z^1_j)^2] = \mathbb{E}_U[F(\gamma s^2 U)]` with
  :math:`F(q) = \mathbb{E}_{z \sim N(0, q)}[\phi(z)^2]`, and, :math:`W^2` being
  independent of :math:`h^1`, :math:`\mathbb{E}[(z^2_i)^2] = n_1\gamma\,
  \mathbb{E}[\phi(z^1_j)^2]` exactly. The probes therefore predict

  .. math::

      \frac{\mathbb{E}[(z^2)^2]}{\mathbb{E}[(z^1)^2]}
      = \frac{n_1\gamma\int_0^\infty F(\gamma s^2 u)\,p_{\chi^2_{n_0}}(u)\,du}
             {n_0\gamma s^2},

  a nested integral done by quadrature: exact for the first two layers, at any width.
  The infinite-width value :math:`n_1\gamma F(q)/q` at :math:`q = n_0\gamma s^2`
  differs from it by Jensen's inequality (:math:`F` is concave there) by about
  0.17% at width 256, which the claim records. Deeper layers are not probed: there the
  layer variance is a random function of all earlier weights and no finite formula is
  exact.

References
----------
.. [1] Dive into Deep Learning, Sec. 5.4.2 ("Default initialization": weights drawn
   from ``normal(0, 0.01)`` in the book's code, a standard deviation) and the lecture's
   slides (``lecture.md``, L4.1, L4.2, L8.5).
.. [2] X. Glorot and Y. Bengio (2010), "Understanding the difficulty of training deep
   feedforward neural networks", AISTATS, Eq. (12): :math:`\gamma_t = 2/(n_{t-1} + n_t)`.
.. [3] K. He, X. Zhang, S. Ren and J. Sun (2015), "Delving Deep into Rectifiers",
   ICCV, Sec. 2.2: :math:`\operatorname{Var}[y_l] = n_l\operatorname{Var}[w_l]\,
   \mathbb{E}[x_l^2]`, and :math:`n_l\operatorname{Var}[w_l]/2 = 1` for relu.
.. [4] B. Poole, S. Lahiri, M. Raghu, J. Sohl-Dickstein and S. Ganguli (2016),
   "Exponential expressivity in deep neural networks through transient chaos",
   NeurIPS: the variance map :math:`q \mapsto \sigma_w^2\,\mathbb{E}_z[\phi(\sqrt{q} z)^2]`.
.. [5] NumPy, ``numpy.finfo``: ``minexp`` and ``tiny``, the smallest normal number
   :math:`2^{\mathrm{minexp}}` of IEEE 754 binary16 (:math:`2^{-14}`) and binary32
   (:math:`2^{-126}`).
.. [6] R. Piessens et al. (1983), QUADPACK (``scipy.integrate.quad``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from functools import cache

import numpy as np
import sympy as sp
from scipy import integrate, optimize
from sympy import stats

from ._activations import ACTIVATIONS, DEFINITIONS, DISPLAY
from ._building import gaussian_square_expansion, mlp_scenario
from ._check import Chain, check_algebraic
from ._claim import Assumption, Check, Claim, Derivation, Probe, Status
from ._forward import forward_variance, weight_variance
from ._gaussian import evaluate, gaussian_integral, gaussian_moment, gaussian_square_series
from ._gradients import float_format
from ._symbols import c as c_factor
from ._symbols import gamma, mu_prev, n_prev, n_t, q, s2, v_prev, x
from ._table import activation, family, names
from ._xavier import b_t, backward_variance, second_moment_recursion, xavier

d = sp.Symbol("d", integer=True, positive=True)
t = sp.Symbol("t", integer=True, positive=True)
m_prev = sp.Symbol("m_{t-1}", positive=True)
eps = sp.Symbol("epsilon", positive=True)
u = sp.Symbol("u", positive=True)  # positive, unlike the shared real u: a chi-square variable

#: The two readings of the slide's N(0, 0.01), in native parameters (a std).
STD_READING = sp.Rational(1, 100)  # D2L: normal(0, 0.01) is a standard deviation
VARIANCE_READING = sp.sqrt(STD_READING)  # variance 0.01, i.e. std 0.1

#: Width of every simulated layer; the per-layer factors are quoted at this width.
WIDTH = 256
#: Widths of the depth table.
TABLE_WIDTHS = (64, 256, 1024)
#: Formats whose smallest normal number is the level (numpy.finfo).
TABLE_FORMATS = ("float16", "float32")
#: Depths of the small-initialization probes (cheap: relative spread about sqrt(2d/n)).
PROBE_DEPTHS = (3, 5)
#: Activations of the summary slide, and the variance of the first pre-activation probed.
SUMMARY_ACTIVATIONS = names("summary")
#: Those of them the Taylor argument applies to: their factor chi(q) is expanded in q.
SERIES_ACTIVATIONS = tuple(e.name for e in family("summary") if "taylor" in e.families)
PROBE_Q = sp.Integer(1)


def _status(ok: bool, evidence: Status = Status.COMPUTED) -> Status:
    """``evidence`` (a SymPy computation by default) when ``ok``, else refuted."""
    return evidence if ok else Status.REFUTED


def _mlp(depth: int, std: sp.Expr, activation: str, *, upstream: bool = False) -> dict:
    scenario: dict = {
        "kind": "mlp",
        "widths": [WIDTH] * (depth + 1),
        "weights": {"law": "normal", "std": float(std)},
        "activation": activation,
        "input": {"law": "normal", "mean": 0.0, "std": 1.0},
        "dtype": "float64",
    }
    if upstream:
        scenario["upstream"] = {"law": "normal", "std": 1.0}
    return scenario


# =========================================================================== L4.1, L4.2

DEPTH_ASSUMPTIONS = (
    Assumption(
        "iid-weights",
        r"every layer has width $n$ and i.i.d. zero-mean weights of variance $\gamma$, "
        r"independent of the layer's input",
    ),
    Assumption(
        "zero-mean-input",
        r"the network input has mean $0$ and second moment $v$; by L5.1 every linear "
        r"layer then has mean $0$, so L5.2 applies at each layer",
    ),
    Assumption(
        "symmetric-preactivation",
        r"relu layers: given $h^{t-1}$, $z^t = W^t h^{t-1}$ is symmetric about $0$ "
        r"(Gaussian weights: $N(0, \gamma\lVert h^{t-1}\rVert^2)$), so "
        r"$\mathbb{E}[\mathrm{relu}(z^t)^2] = \mathbb{E}[(z^t)^2]/2$ (S1)",
    ),
    Assumption(
        "std-reading",
        r"the slide's $N(0, 0.01)$ read as in D2L's code, standard deviation "
        r"$\sigma = 0.01$ (the alternative reading, variance $0.01$, is $\sigma = 0.1$)",
    ),
    Assumption(
        "rms-level",
        r"the signal is the root mean square $\sqrt{\mathbb{E}[(h^d)^2]}$, the typical "
        r"magnitude of an entry; it is lost when it falls below the smallest normal "
        r"number $\varepsilon = 2^{\mathrm{minexp}}$ of the float format (numpy.finfo)",
    ),
)


def _s1_ratio() -> sp.Expr:
    """S1's pre-activation ratio :math:`n\\gamma/2`, from its recursion looked up by name."""
    return second_moment_recursion().derivation("recursion after relu").result / q


def per_layer_factors() -> dict[str, sp.Expr]:
    """Per-layer second-moment factors from the existing claims.

    ``linear``: L5.2's :math:`n\\gamma v / v` (forward claim); ``relu``: S1's
    pre-activation ratio :math:`n\\gamma/2`; ``backward``: L6.2's :math:`n_t\\gamma`
    at equal widths.
    """
    fwd = forward_variance().derivation("variance").result
    bwd = backward_variance().derivation("variance").result
    return {
        "linear": sp.simplify(fwd / v_prev),
        "relu": _s1_ratio(),
        "backward": sp.simplify((bwd / b_t).subs(n_t, n_prev)),
    }


def _relu_factor_chain() -> Derivation:
    """:math:`\\mathbb{E}[(h^t)^2]/\\mathbb{E}[(h^{t-1})^2]` for a relu layer, from S1 and L5.2."""
    relu2 = second_moment_recursion().derivation("relu second moment")  # q/2
    general = forward_variance().derivation("second moment").result  # n gamma (v + mu^2)
    var_z = sp.simplify(general.subs(v_prev, m_prev - mu_prev**2))  # in terms of E[h^2] = m
    at = relu2.start.xreplace({q: var_z})
    relu_second = relu2.result
    return (
        Chain("relu: per-layer factor", at / m_prev, assumptions=DEPTH_ASSUMPTIONS)
        .use("second-moment-recursion", relu2, {q: var_z}, lhs=at)
        .step(
            sp.simplify(relu_second.subs(q, var_z) / m_prev),
            "substitute and simplify",
            r"$\mathbb{E}[(h^t)^2] = \mathbb{E}[\mathrm{relu}(z^t)^2] = q/2$ at "
            r"$q = \mathbb{E}[(z^t)^2] = n\gamma\,\mathbb{E}[(h^{t-1})^2]$ (S1 and L5.2's "
            r"second-moment form)",
            uses=("symmetric-preactivation",),
        )
        .done()
    )


def _iterate(name: str, start_value: sp.Symbol, factor: sp.Expr, why: str) -> Derivation:
    product = start_value * sp.Product(factor, (t, 1, d))
    return (
        Chain(name, product, assumptions=DEPTH_ASSUMPTIONS)
        .step(sp.simplify(product.doit()), "sympy.Product.doit", why)
        .done()
    )


def _confirm_rsolve(factor: sp.Expr, result: sp.Expr, what: str) -> Check:
    """The recurrence :math:`m_t = c\\,m_{t-1}`, :math:`m_0 = v`, solved by ``sympy.rsolve``."""
    m = sp.Function("m")
    k = sp.Symbol("k", integer=True)  # rsolve's index, any integer (the shared k is positive)
    solved = sp.rsolve(m(k) - factor * m(k - 1), m(k), {m(0): v_prev})
    ok = solved is not None and sp.simplify(solved.subs(k, d) - result) == 0
    return Check(
        "sympy.rsolve",
        _status(ok),
        f"{what}: rsolve(m(k) = {factor} m(k-1), m(0) = v) gives {solved}; derived {result}",
    )


def crossing_depth(factor: sp.Expr) -> sp.Expr:
    """Real depth at which :math:`\\sqrt{v\\,c^d}` equals :math:`\\varepsilon` (``sympy.solve``).

    Solved for a positive symbol ``c`` and then substituted, so the root keeps one form
    (:math:`\\log(\\varepsilon^2/v)/\\log c`) for every factor.
    """
    c, root = _generic_root()
    return root.subs(c, factor)


@cache
def _generic_root() -> tuple[sp.Symbol, sp.Expr]:
    real_d = sp.Symbol("d", positive=True)
    (root,) = sp.solve(sp.Eq(sp.sqrt(v_prev * c_factor**real_d), eps), real_d)
    return c_factor, root


@cache
def _normal_variance(std: sp.Expr) -> sp.Expr:
    """Variance of :math:`N(0, s^2)` weights from the forward claim's ``weight_variance``."""
    return weight_variance("normal", {"std": std})


@cache
def underflow_depths() -> dict[tuple[str, int, str], int]:
    """Smallest depth at which the RMS is below the smallest normal number, std 0.01.

    Keys ``(activation, width, dtype)``; input second moment :math:`v = 1`. The
    depth is :math:`\\lfloor d^* \\rfloor + 1` with :math:`d^*` from
    :func:`crossing_depth`, evaluated exactly by SymPy.
    """
    factors = per_layer_factors()
    var_w = _normal_variance(STD_READING)
    out = {}
    for act in ("linear", "relu"):
        root = crossing_depth(factors[act])
        for n in TABLE_WIDTHS:
            for dtype in TABLE_FORMATS:
                level = float_format(dtype)["tiny"]
                value = root.subs({n_prev: n, gamma: var_w, v_prev: 1, eps: level})
                out[(act, n, dtype)] = int(sp.floor(value)) + 1
    return out


def _depth_chains(factors: dict[str, sp.Expr]) -> tuple[Derivation, ...]:
    """The relu factor, then the second moment after ``d`` linear, relu, backward layers."""
    relu_chain = _relu_factor_chain()
    linear = _iterate(
        "linear: d layers",
        v_prev,
        factors["linear"],
        "L5.2 at each of the d layers: the second moment is multiplied by n gamma each time",
    )
    relu_d = _iterate(
        "relu: d layers",
        v_prev,
        relu_chain.result,
        "the relu factor n gamma / 2 at each of the d layers (layer 1 takes the Gaussian "
        "input, whose relu is not taken, and still halves: relu acts after W^1)",
    )
    backward = _iterate(
        "backward: d layers",
        b_t,
        factors["backward"],
        "L6.2 at each layer with equal widths: the gradient's second moment is multiplied "
        "by n gamma from layer d down to layer 0",
    )
    return relu_chain, linear, relu_d, backward


def _readings(std: str, variance: str) -> tuple[tuple[str, sp.Expr], ...]:
    """The two readings of :math:`N(0, 0.01)`, labelled, with their weight variances."""
    return (
        (std, _normal_variance(STD_READING)),
        (variance, _normal_variance(VARIANCE_READING)),
    )


def _factors_at_width(per_layer: dict[str, sp.Expr]) -> dict[tuple[str, str], Derivation]:
    """Each per-layer factor at ``WIDTH`` for both readings, by activation and reading."""
    at_width = {}
    for act, rho in per_layer.items():
        for reading, var_w in _readings("std 0.01", "variance 0.01"):
            at_width[(act, reading)] = (
                Chain(
                    f"{act}: per-layer factor at n = {WIDTH}, {reading}",
                    sp.Subs(rho, (n_prev, gamma), (WIDTH, var_w)),
                    assumptions=DEPTH_ASSUMPTIONS,
                )
                .step(rho.subs({n_prev: WIDTH, gamma: var_w}), "substitute", "exact arithmetic")
                .done()
            )
    return at_width


def _crossing(per_layer: dict[str, sp.Expr]) -> tuple[Derivation, dict[str, sp.Expr]]:
    """The generic crossing depth checked by substitution, and its value per activation."""
    c, generic_root = _generic_root()
    chain = (
        Chain("RMS at the crossing depth", sp.sqrt(v_prev * c**d).subs(d, generic_root))
        .step(
            eps,
            "substitute the root of sympy.solve",
            r"$d^*$ solves $\sqrt{v\,c^{d}} = \varepsilon$ for a per-layer factor $c$",
        )
        .done()
    )
    return chain, {act: generic_root.subs(c, rho) for act, rho in per_layer.items()}


def _critical_widths(per_layer: dict[str, sp.Expr]) -> dict[tuple[str, str], sp.Expr]:
    """The width at which each per-layer factor is 1, for both readings."""
    critical = {}
    for act, rho in per_layer.items():
        for reading, var_w in _readings("std", "variance"):
            (n_star,) = sp.solve(sp.Eq(rho.subs(gamma, var_w), 1), n_prev)
            critical[(act, reading)] = n_star
    return critical


def _depth_conditions(roots: dict, critical: dict, depths: dict) -> tuple[sp.Basic, ...]:
    """Crossing depths, critical widths and the depth table as equations."""
    conditions: list[sp.Basic] = [
        sp.Eq(sp.Symbol(r"d^*_{\mathrm{linear}}"), roots["linear"]),
        sp.Eq(sp.Symbol(r"d^*_{\mathrm{relu}}"), roots["relu"]),
    ]
    for (act, reading), n_star in critical.items():
        conditions.append(
            sp.Eq(sp.Symbol(rf"n^*_{{\mathrm{{{act}}}, \mathrm{{{reading}}}}}"), n_star)
        )
    for (act, n, dtype), depth in depths.items():
        conditions.append(
            sp.Eq(
                sp.Symbol(rf"d_{{\mathrm{{{act}}}}}(n = {n}, \mathrm{{{dtype}}})"),
                sp.Integer(depth),
            )
        )
    return tuple(conditions)


def _confirm_s1(relu_factor: sp.Expr, relu_ratio: sp.Expr) -> Check:
    """The relu output factor against the pre-activation ratio of the S1 claim."""
    return check_algebraic(relu_factor, relu_ratio, {}).named(
        "consistency with S1",
        f"output factor {relu_factor} equals the pre-activation ratio {relu_ratio} "
        "of the second-moment-recursion claim",
    )


def _depth_summary(moments: tuple, at_width: dict, depths: dict, critical: dict) -> str:
    """The claim's summary from the derived moments, factors, depths and widths."""
    linear, relu_d, backward = moments
    lin_std = at_width[("linear", "std 0.01")]
    levels = {dtype: f"2^{{{int(np.finfo(np.dtype(dtype)).minexp)}}}" for dtype in TABLE_FORMATS}
    return (
        rf"Iterating L5.2 over $d$ layers of width $n$ gives $\mathbb{{E}}[(h^d)^2] = "
        rf"{sp.latex(linear)}$ for linear layers and "
        rf"${sp.latex(relu_d)}$ with relu (the gradient: "
        rf"${sp.latex(backward)}$). The slide's $N(0, 0.01)$ is ambiguous; read as "
        rf"D2L's standard deviation $0.01$, the per-layer factor at $n = {WIDTH}$ is "
        rf"${sp.latex(lin_std)} = {float(lin_std):g}$ "
        rf"(relu: ${float(at_width[('relu', 'std 0.01')]):g}$), so the signal vanishes "
        rf"geometrically: for a unit-variance input its RMS falls below the float32 "
        rf"smallest normal ${levels['float32']}$ after "
        rf"{depths[('linear', WIDTH, 'float32')]} linear "
        rf"({depths[('relu', WIDTH, 'float32')]} relu) layers and below float16's "
        rf"${levels['float16']}$ after {depths[('linear', WIDTH, 'float16')]} "
        rf"({depths[('relu', WIDTH, 'float16')]}). Read as a variance, the factor is "
        rf"${float(at_width[('linear', 'variance 0.01')]):g}$ and the signal explodes. The "
        rf"variance is constant only at $n = {critical[('linear', 'std')]}$ (std reading) or "
        rf"$n = {critical[('linear', 'variance')]}$ (variance reading)."
    )


def _depth_qualification(critical: dict, depths: dict, lin_std: sp.Expr) -> str:
    """Where L4.1 and L4.2 hold: the critical width, and shallow networks."""
    return (
        r"L4.1's constant variance is not what $N(0, 0.01)$ gives: at any width "
        rf"$n \ne {critical[('linear', 'std')]}$ the second moment changes by "
        r"$n\sigma^2$ per layer ($n\sigma^2/2$ with relu). The slide's 'works for "
        r"small nets' holds in the sense that a shallow network keeps its signal "
        r"within the float range: with $\sigma = 0.01$ at width "
        rf"{WIDTH} the RMS stays above the float32 smallest normal for fewer than "
        rf"{depths[('linear', WIDTH, 'float32')]} linear layers (float16: fewer than "
        rf"{depths[('linear', WIDTH, 'float16')]}), though it still shrinks by "
        rf"${float(lin_std):g}$ per layer; if 0.01 is read as the variance, the "
        r"signal grows instead."
    )


@cache
def small_init_depth() -> Claim:
    """L4.1 and L4.2: a fixed small weight scale vanishes geometrically with depth.

    Returns
    -------
    Claim
        The second moment after :math:`d` layers (linear, relu, backward) by iterating
        the one-layer claims, the per-layer factors at width 256 for both readings of
        :math:`N(0, 0.01)`, the depth at which the signal's RMS reaches a level, the
        critical widths, and network probes.

    Notes
    -----
    .. math::

        \\mathbb{E}[(h^d)^2] = v\\,(n\\sigma^2)^d, \\qquad
        d^* = \\frac{\\log(\\varepsilon^2/v)}{\\log(n\\sigma^2)} .

    With :math:`\\sigma = 0.01` the factor :math:`n\\sigma^2 = 0.0256` at
    :math:`n = 256` loses :math:`1.6` decades of second moment per layer; the float32
    smallest normal :math:`2^{-126}` is reached by the RMS after 48 linear layers, the
    float16 one :math:`2^{-14}` after 6. With the variance reading the factor is
    :math:`2.56`: the signal explodes instead. Either way the variance is constant
    only at the critical width :math:`n = 1/\\sigma^2`.
    """
    factors = per_layer_factors()
    relu_chain, linear, relu_d, backward = _depth_chains(factors)
    per_layer = {"linear": factors["linear"], "relu": relu_chain.result}
    at_width = _factors_at_width(per_layer)
    crossing, roots = _crossing(per_layer)
    critical = _critical_widths(per_layer)
    depths = underflow_depths()
    lin_std = at_width[("linear", "std 0.01")].result
    return Claim(
        id="small-init-depth",
        lecture=("L4.1", "L4.2"),
        title="A fixed small weight scale works for shallow networks and vanishes in deep ones",
        summary=_depth_summary(
            (linear.result, relu_d.result, backward.result),
            {key: chain.result for key, chain in at_width.items()},
            depths,
            critical,
        ),
        assumptions=DEPTH_ASSUMPTIONS,
        derivations=(relu_chain, linear, relu_d, backward, *at_width.values(), crossing),
        conditions=_depth_conditions(roots, critical, depths),
        confirmations=(
            _confirm_rsolve(factors["linear"], linear.result, "linear"),
            _confirm_rsolve(relu_chain.result, relu_d.result, "relu"),
            _confirm_s1(relu_chain.result, factors["relu"]),
            _confirm_levels(),
        ),
        probes=_depth_probes(linear.result, relu_d.result, backward.result),
        qualification=_depth_qualification(critical, depths, lin_std),
    )


def _confirm_levels() -> Check:
    """The levels :math:`2^{\\mathrm{minexp}}` against numpy's ``finfo(...).tiny``."""
    rows = []
    ok = True
    for dtype in TABLE_FORMATS:
        info = np.finfo(np.dtype(dtype))
        level = sp.Integer(2) ** int(info.minexp)
        ok = ok and level == float_format(dtype)["tiny"] and float(level) == float(info.tiny)
        rows.append(f"{dtype}: 2^{int(info.minexp)} = {float(level):.6g}")
    return Check(
        "numpy.finfo", _status(ok, Status.TESTED), "smallest normal numbers " + "; ".join(rows)
    )


_EXACT = "exact at every width: L5.2 iterated, the weights independent of the layer below"
_EXACT_RELU = (
    "exact at every width: L5.2 iterated, with E[relu(z)^2] = E[z^2]/2 given the layer "
    "below (z is Gaussian and symmetric given it)"
)
_LECTURE_CONSTANT = "the lecture's L4.1 'constant variance at every layer', a literal ratio 1"


def _forward_m2(depth: int) -> dict:
    """The output's second moment at ``depth`` relative to the input."""
    return {
        "direction": "forward",
        "of": "output",
        "moment": "m2",
        "layer": depth,
        "relative_to": 0,
    }


def _shallow_probes(scenario: dict, depth: int, bwd_ratio: sp.Expr, values: dict) -> list:
    """At the first probed depth: the lecture's constant ratio, and the gradient back."""
    constant = sp.Integer(1)  # L4.1: Var[h^t] = a at every layer, so the ratio is a/a
    return [
        Probe(
            f"lecture-constant-linear-std0.01-d{depth}-m2",
            scenario,
            _forward_m2(depth),
            float(constant),
            constant,
            expect="disagrees",
            source="lecture",
            note=_LECTURE_CONSTANT,
        ),
        Probe.derived(
            f"linear-std0.01-d{depth}-backward-m2",
            scenario,
            {"direction": "backward", "moment": "m2", "layer": 0, "relative_to": depth},
            bwd_ratio,
            values,
            note=_EXACT,
        ),
    ]


def _depth_probes(linear: sp.Expr, relu_d: sp.Expr, backward: sp.Expr) -> tuple[Probe, ...]:
    """Second moment after ``d`` layers relative to the input (and the gradient back)."""
    var_std = _normal_variance(STD_READING)
    var_var = _normal_variance(VARIANCE_READING)
    lin_ratio, relu_ratio = linear / v_prev, relu_d / v_prev
    probes = []
    for depth in PROBE_DEPTHS:
        values = {n_prev: WIDTH, gamma: var_std, d: depth}
        scenario = _mlp(depth, STD_READING, "linear", upstream=True)
        probes.append(
            Probe.derived(
                f"linear-std0.01-d{depth}-m2",
                scenario,
                _forward_m2(depth),
                lin_ratio,
                values,
                note=_EXACT,
            )
        )
        if depth == PROBE_DEPTHS[0]:
            probes += _shallow_probes(scenario, depth, backward / b_t, values)
    depth = PROBE_DEPTHS[0]
    for label, std, act, ratio, var_w, note in (
        ("relu-std0.01", STD_READING, "relu", relu_ratio, var_std, _EXACT_RELU),
        ("linear-variance0.01", VARIANCE_READING, "linear", lin_ratio, var_var, _EXACT),
    ):
        probes.append(
            Probe.derived(
                f"{label}-d{depth}-m2",
                _mlp(depth, std, act),
                _forward_m2(depth),
                ratio,
                {n_prev: WIDTH, gamma: var_w, d: depth},
                note=note,
            )
        )
    return tuple(probes)


# =========================================================================== L8.5

SERIES_ORDER = 3
#: The outer weight is cut where it is below exp(-WEIGHT_DROP) of its peak.
WEIGHT_DROP = 80.0
#: Relative tolerances of the nested quadrature (inner, outer).
INNER_EPSREL, OUTER_EPSREL = 1e-11, 1e-10

SUMMARY_ASSUMPTIONS = (
    Assumption(
        "gaussian-preactivation",
        r"$z^t \sim N(0, q)$; the next pre-activation has second moment "
        r"$\mathbb{E}[(z^{t+1})^2] = n\gamma\,\mathbb{E}[\phi(z^t)^2]$ (L5.2's second-moment "
        r"form, He et al. 2015), so the per-layer factor is $\chi(q) = n\gamma\,"
        r"\mathbb{E}[\phi(z)^2]/q$",
    ),
    Assumption(
        "xavier-equal-widths",
        r"Xavier $\gamma_t = 2/(n_{t-1} + n_t)$ at equal widths $n_t = n_{t-1} = n$, "
        r"i.e. $n\gamma = 1$",
        {gamma: sp.Integer(1) / n_prev},
    ),
    *(a for a in DEFINITIONS if a.name in ("sigmoid-definition", "tanh-definition")),
    Assumption(
        "finite-width",
        r"probes: widths $n_0 = n_1 = n_2 = 256$, Gaussian weights, input "
        r"$h^0 \sim N(0, s^2 I)$; given $h^0$, $z^1 \sim N(0, \gamma\lVert h^0\rVert^2)$ "
        r"exactly, with $\lVert h^0\rVert^2/s^2 \sim \chi^2_{n_0}$",
    ),
)


def xavier_equal_widths() -> sp.Expr:
    """Xavier's :math:`\\gamma` (from the Xavier claim) at equal widths: :math:`1/n`."""
    (gamma_x,) = [c.rhs for c in xavier().conditions if c.lhs == gamma and c.rhs.has(n_t)]
    return sp.simplify(gamma_x.subs(n_t, n_prev))


def _form(name: str) -> sp.Expr:
    """The activation in the form whose series SymPy expands correctly (tanh for 4 sigma - 2)."""
    return activation(name).form


def chi_expression(name: str) -> sp.Expr:
    """Infinite-width per-layer factor :math:`n\\gamma\\,\\mathbb{E}[\\phi(z)^2]/q` (integral)."""
    return n_prev * gamma * gaussian_integral(ACTIVATIONS[name] ** 2, x, q) / q


def finite_width_expression(name: str) -> sp.Expr:
    """Exact :math:`\\mathbb{E}[(z^2)^2]/\\mathbb{E}[(z^1)^2]` for widths ``n0 = n1``.

    Built from the claim's per-layer factor :math:`\\chi(q) = n\\gamma\\,
    \\mathbb{E}[\\phi(z)^2]/q` (:func:`chi_expression`), not written out: given
    :math:`h^0`, :math:`z^1 \\sim N(0, Q)` with :math:`Q = \\gamma\\lVert h^0\\rVert^2
    = \\gamma s^2 U`, :math:`U \\sim \\chi^2_n` (assumption ``finite-width``), and
    :math:`\\mathbb{E}[(z^2)^2 \\mid Q] = n\\gamma\\,\\mathbb{E}[\\phi(z^1)^2 \\mid Q] =
    Q\\,\\chi(Q)` (assumption ``gaussian-preactivation``), so

    .. math::

        \\frac{\\mathbb{E}[(z^2)^2]}{\\mathbb{E}[(z^1)^2]}
        = \\frac{\\mathbb{E}_U[Q\\,\\chi(Q)]}{\\mathbb{E}_U[Q]}
        = \\frac{n\\gamma\\int_0^\\infty F(\\gamma s^2 u)\\,p_{\\chi^2_n}(u)\\,du}{n\\gamma s^2},
        \\qquad F(q) = \\mathbb{E}_{z \\sim N(0, q)}[\\phi(z)^2],

    a :math:`Q`-weighted average of :math:`\\chi`, with the chi-square density and
    :math:`\\mathbb{E}_U[Q]` from ``sympy.stats``. The infinite-width value
    :math:`\\chi(\\mathbb{E}[Q])` differs from it by Jensen's inequality.
    """
    chi_square = stats.ChiSquared("U", n_prev)
    layer_variance = gamma * s2 * u  # Q given ||h^0||^2 = s^2 u
    weighted = layer_variance * chi_expression(name).subs(q, layer_variance)
    numerator = sp.Integral(weighted * stats.density(chi_square)(u), (u, 0, sp.oo))
    denominator = sp.simplify(stats.E(gamma * s2 * chi_square))
    return numerator / denominator


def evaluate_nested(expr: sp.Expr) -> float:
    """Numeric value of ``c * Integral(Integral(f(z, u), z) * w(u), u)`` by quadrature.

    The inner integral over the real line and the outer one over the weight's support
    are both done by :func:`scipy.integrate.quad`; the weight is evaluated from its
    logarithm (``expand_log``), so chi-square densities of high degree do not overflow.
    """
    return evaluate_nested_with_error(expr)[0]


def evaluate_nested_with_error(expr: sp.Expr) -> tuple[float, float]:
    """:func:`evaluate_nested` and an error estimate.

    The outer QUADPACK error bound, plus the inner relative tolerance
    (:data:`INNER_EPSREL`) on the whole integral, plus an estimate of what lies outside
    the integration range (the weight there is below :math:`e^{-80}` of its peak), all
    times the prefactor.
    """
    (outer,) = [i for i in expr.atoms(sp.Integral) if i.function.has(sp.Integral)]
    (inner,) = outer.function.atoms(sp.Integral)
    ((var, lo, hi),) = outer.limits
    ((z, zlo, zhi),) = inner.limits
    if (zlo, zhi) != (-sp.oo, sp.oo):
        raise ValueError(f"the inner integral must run over the real line; got {inner}.")
    weight = sp.simplify(outer.function / inner)
    log_weight = sp.expand_log(sp.log(weight), force=True).evalf(30)
    (mode,) = sp.solve(sp.diff(log_weight, var), var)
    f = sp.lambdify((z, var), inner.function, modules=["scipy", "numpy"])
    log_w = sp.lambdify(var, log_weight, modules=["scipy", "numpy"])

    def inner_value(v: float) -> float:
        with np.errstate(over="ignore"):
            parts = [
                integrate.quad(f, a, b, args=(v,), epsabs=0.0, epsrel=INNER_EPSREL, limit=200)[0]
                for a, b in ((-np.inf, 0.0), (0.0, np.inf))
            ]
        return parts[0] + parts[1]

    def outer_integrand(v: float) -> float:
        return inner_value(v) * math.exp(log_w(v))

    # the weight is negligible (below e^-80 of its peak) outside [a, b]: integrate there
    peak = float(mode)
    drop = log_w(peak) - WEIGHT_DROP

    def below(v: float) -> float:
        return log_w(v) - drop

    a = float(lo)
    if below(max(a, 1e-300)) < 0:
        a = optimize.brentq(below, max(a, 1e-300), peak)
    b = 2 * peak + 1 if hi == sp.oo else float(hi)
    while hi == sp.oo and below(b) > 0:
        b *= 2
    if below(b) < 0:
        b = optimize.brentq(below, peak, b)
    total, error = 0.0, 0.0
    for left, right in ((a, peak), (peak, b)):
        value, bound = integrate.quad(
            outer_integrand, left, right, epsabs=0.0, epsrel=OUTER_EPSREL, limit=200
        )
        total, error = total + value, error + bound
    largest = max(abs(inner_value(v)) for v in np.linspace(a, b, 9))
    dropped = largest * math.exp(log_w(peak) - WEIGHT_DROP) * (b - a)
    error += INNER_EPSREL * abs(total) + dropped
    prefactor = float(expr.xreplace({outer: sp.Integer(1)}))
    return prefactor * total, abs(prefactor) * error


def _series_chains(name: str) -> tuple[list[Derivation], sp.Expr]:
    """Small-q expansion of :math:`\\chi(q)` under Xavier; returns chains and the series."""
    chains = []
    form = _form(name)
    if activation(name).simplify:
        chains.append(
            Chain("scaled_sigmoid: as tanh", DISPLAY[name], assumptions=SUMMARY_ASSUMPTIONS)
            .step(
                sp.simplify(ACTIVATIONS[name]),
                "sympy.simplify",
                "",
                uses=("sigmoid-definition", "tanh-definition"),
            )
            .done()
        )
    expansion = gaussian_square_series(form, x, q, SERIES_ORDER)
    chains.append(
        gaussian_square_expansion(
            f"{name}: E[f(z)^2] near q = 0", form, expansion, SUMMARY_ASSUMPTIONS
        )
    )
    factor = n_prev * gamma * expansion.value / q
    chain = (
        Chain(f"{name}: per-layer factor near q = 0", factor, assumptions=SUMMARY_ASSUMPTIONS)
        .step(sp.expand(factor), "expand", "divide the expansion by q")
        .step(
            sp.expand(factor.subs(gamma, xavier_equal_widths())),
            "substitute Xavier",
            "",
            uses=("xavier-equal-widths",),
        )
    )
    series = chain.current
    chains.append(chain.done())
    chains.append(
        Chain(f"{name}: factor as q -> 0", sp.Limit(series.removeO(), q, 0, "+"))
        .step(sp.limit(series.removeO(), q, 0, "+"), "sympy.limit", "")
        .done()
    )
    return chains, series


def _relu_chains() -> tuple[list[Derivation], sp.Expr, sp.Expr, sp.Expr]:
    """relu: :math:`\\chi = n\\gamma/2` from S1's second moment; Xavier and He."""
    second = second_moment_recursion().derivation("relu second moment")  # q/2, integrated
    factor = (
        Chain(
            "relu: per-layer factor",
            n_prev * gamma * second.start / q,
            assumptions=SUMMARY_ASSUMPTIONS,
        )
        .use("second-moment-recursion", second, lhs=second.start)
        .step(
            sp.simplify(n_prev * gamma * second.result / q),
            "simplify",
            r"$\mathbb{E}[\mathrm{relu}(z)^2] = q/2$",
        )
        .done()
    )
    xav = (
        Chain("relu: per-layer factor under Xavier", factor.result, assumptions=SUMMARY_ASSUMPTIONS)
        .step(
            sp.simplify(factor.result.subs(gamma, xavier_equal_widths())),
            "substitute Xavier",
            "",
            uses=("xavier-equal-widths",),
        )
        .done()
    )
    (gamma_he,) = sp.solve(sp.Eq(factor.result, 1), gamma)
    he = (
        Chain("relu: per-layer factor under He", factor.result.subs(gamma, gamma_he))
        .step(sp.simplify(factor.result.subs(gamma, gamma_he)), "simplify", "")
        .done()
    )
    return [second, factor, xav, he], factor.result, xav.result, gamma_he


def _confirm_gauss_hermite(name: str, value: float) -> Check:
    """:math:`F(1)` by Gauss-Hermite quadrature (NumPy), a route independent of QUADPACK."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(200)
    f = sp.lambdify(x, ACTIVATIONS[name] ** 2, modules="numpy")
    with np.errstate(over="ignore"):
        other = float(np.sum(weights * f(nodes)) / math.sqrt(2 * math.pi))
    err = abs(other - value)
    return Check(
        "Gauss-Hermite (200 nodes)",
        _status(err < 1e-9, Status.TESTED),
        f"{name}: E[f(z)^2] at q = 1 is {value:.12f} by QUADPACK and {other:.12f} by "
        f"Gauss-Hermite; difference {err:.1e}",
    )


@cache
def summary_values() -> dict[str, dict[str, float]]:
    """Per-layer factors at :math:`q = 1`: infinite width and exact at width 256."""
    g_value = xavier_equal_widths().subs(n_prev, WIDTH)
    out = {}
    for name in SERIES_ACTIVATIONS:
        chi = chi_expression(name).subs({n_prev: WIDTH, gamma: g_value, q: PROBE_Q})
        moment = gaussian_moment(ACTIVATIONS[name] ** 2, x, PROBE_Q)
        infinite = evaluate(chi)
        finite = evaluate_nested(
            finite_width_expression(name).subs({n_prev: WIDTH, gamma: g_value, s2: PROBE_Q})
        )
        out[name] = {"infinite": infinite, "finite": finite, "error": moment.error}
    return out


def _series_derivations() -> tuple[list[Derivation], dict[str, sp.Expr]]:
    """The small-q chains of every series activation, and each one's expansion by name."""
    derivations: list[Derivation] = []
    series = {}
    for name in SERIES_ACTIVATIONS:
        chains, expansion = _series_chains(name)
        derivations += chains
        series[name] = expansion
    return derivations, series


def _chi_confirmations(relu_factor: sp.Expr, values: dict) -> tuple[Check, ...]:
    """Gauss-Hermite values, relu's consistency with S1, and each factor below 1 at q = 1."""
    confirmations = [
        _confirm_gauss_hermite(name, values[name]["infinite"]) for name in SERIES_ACTIVATIONS
    ]
    confirmations.append(
        check_algebraic(relu_factor, _s1_ratio(), {}).named(
            "consistency with S1",
            f"relu factor {relu_factor} equals the second-moment-recursion claim's ratio",
        )
    )
    for name in SERIES_ACTIVATIONS:
        below = values[name]["infinite"] < 1 and values[name]["finite"] < 1
        confirmations.append(
            Check(
                f"{name}: below 1 at q = 1",
                _status(below, Status.TESTED),
                f"chi(1) = {values[name]['infinite']:.6f} (infinite width), "
                f"{values[name]['finite']:.6f} (exact, width {WIDTH})",
            )
        )
    return tuple(confirmations)


def _chi_conditions(
    series: dict, relu_xavier: sp.Expr, gamma_he: sp.Expr, values: dict
) -> tuple[sp.Basic, ...]:
    """The expansions, relu's factor, He's variance and the factors at q = 1."""
    chi_symbol = {
        name: sp.Symbol(rf"\chi_{{\mathrm{{{name.replace('_', ' ')}}}}}")
        for name in SUMMARY_ACTIVATIONS
    }
    conditions: list[sp.Basic] = [
        sp.Eq(sp.Symbol(r"\chi_{\tanh}(q)"), series["tanh"]),
        sp.Eq(sp.Symbol(r"\chi_{4\sigma - 2}(q)"), series["scaled_sigmoid"]),
        sp.Eq(sp.Symbol(r"\chi_{\mathrm{relu}}"), relu_xavier),
        sp.Eq(gamma, gamma_he),
    ]
    for name in SERIES_ACTIVATIONS:
        conditions.append(sp.Eq(chi_symbol[name], sp.Float(values[name]["infinite"], 6)))
    return tuple(conditions)


def _chi_summary(text: dict, values: dict) -> str:
    """The claim's summary from the derived factors (``text``) and the quadrature values."""
    gap = max(abs(values[n]["finite"] / values[n]["infinite"] - 1) for n in SERIES_ACTIVATIONS)
    return (
        r"Each recommendation is judged by the per-layer factor $\chi(q) = n\gamma\,"
        r"\mathbb{E}[\phi(z)^2]/q$, $z \sim N(0, q)$, of the pre-activation second "
        r"moment. With Xavier at equal widths ($n\gamma = 1$): tanh gives "
        rf"${text['tanh']}$ and $4\sigma - 2$ gives "
        rf"${text['scaled_sigmoid']}$, both $1$ only as $q \to 0$ "
        rf"(at $q = 1$, by quadrature, ${text['tv']:.3f}$ and ${text['sv']:.3f}$); relu gives "
        rf"${text['relu']}$ at every $q$, so the variance halves per layer and "
        rf"relu needs He's $\gamma = {text['he']}$. At width {WIDTH} the exact "
        rf"factor of the first layers differs from the infinite-width one by "
        rf"{100 * gap:.2f}%."
    )


def _chi_corrected(text: dict) -> str:
    """The corrected claim: Xavier near zero for tanh and 4 sigma - 2, He for relu."""
    return (
        r"Xavier keeps the variance with tanh and with $4\sigma - 2$ only while the "
        rf"pre-activations are near $0$: the per-layer factor is "
        rf"${text['tanh']}$ and ${text['scaled_sigmoid']}$ "
        rf"(${text['tv']:.3f}$ and ${text['sv']:.3f}$ at $q = 1$). With relu it is "
        rf"${text['relu']}$ at every variance, so relu needs He's "
        rf"$\gamma_t = {text['he']}$, not "
        r"Xavier."
    )


@cache
def lecture_summary() -> Claim:
    """L8.5: Xavier with tanh, relu and :math:`4\\sigma - 2`, judged by the per-layer factor.

    Returns
    -------
    Claim
        Small-q expansions of the per-layer factor :math:`\\chi(q)` for tanh and
        :math:`4\\sigma - 2` under Xavier, relu's exact :math:`\\chi = n\\gamma/2` (1/2
        under Xavier, 1 under He's :math:`\\gamma = 2/n` from ``sympy.solve``), values at
        :math:`q = 1` by quadrature (infinite width, and exact at width 256), and
        network probes. Refuted as stated (relu), with the correction.

    Notes
    -----
    .. math::

        \\chi_{\\tanh}(q) = 1 - 2q + O(q^2), \\quad
        \\chi_{4\\sigma - 2}(q) = 1 - \\tfrac{q}{2} + O(q^2), \\quad
        \\chi_{\\mathrm{relu}} = \\tfrac12 \\quad (n\\gamma = 1).

    At :math:`q = 1` quadrature gives :math:`\\chi_{\\tanh} \\approx 0.394` and
    :math:`\\chi_{4\\sigma-2} \\approx 0.694`: Xavier keeps these variances only while the
    pre-activations stay near 0.
    """
    derivations, series = _series_derivations()
    relu_chains, relu_factor, relu_xavier, gamma_he = _relu_chains()
    values = summary_values()
    text = {
        "tanh": sp.latex(series["tanh"]),
        "scaled_sigmoid": sp.latex(series["scaled_sigmoid"]),
        "relu": sp.latex(relu_xavier),
        "he": sp.latex(gamma_he),
        "tv": values["tanh"]["infinite"],
        "sv": values["scaled_sigmoid"]["infinite"],
    }
    return Claim(
        id="lecture-summary",
        lecture=("L8.5",),
        title="Lecture summary: Xavier suits tanh and the adjusted sigmoid near zero, relu "
        "needs He",
        summary=_chi_summary(text, values),
        assumptions=SUMMARY_ASSUMPTIONS,
        derivations=(*derivations, *relu_chains),
        conditions=_chi_conditions(series, relu_xavier, gamma_he, values),
        confirmations=_chi_confirmations(relu_factor, values),
        probes=_summary_probes(relu_factor),
        corrected=_chi_corrected(text),
    )


_RELU_EXACT = "exact at every width: E[relu(z)^2] = E[z^2]/2 given the layer below"
_LECTURE_CHI = "the lecture's reading: phi(z) = z near 0, so the factor is n gamma"
#: Pre-activation factor of layer 2 over layer 1.
_CHI_OBSERVABLE = {
    "direction": "forward",
    "of": "preactivation",
    "moment": "m2",
    "layer": 2,
    "relative_to": 1,
}


def _chi_scenario(name: str, weight_variance: sp.Expr, input_std: sp.Expr) -> dict:
    """Three layers of width ``WIDTH`` with normal weights of the given variance."""
    weights = {"law": "normal", "std": float(sp.sqrt(weight_variance))}
    return mlp_scenario([WIDTH] * 3, weights, activation=name, input_std=input_std)


def _chi_probe(name: str, scenario: dict, relu_factor: sp.Expr, values: dict) -> Probe:
    """The exact factor: relu's at every width, else the nested quadrature at ``WIDTH``."""
    label = f"{name}-xavier-factor-q1"
    if "homogeneous" in activation(name).families:
        return Probe.derived(
            label, scenario, _CHI_OBSERVABLE, relu_factor, values, note=_RELU_EXACT
        )
    probe = Probe.derived(
        label,
        scenario,
        _CHI_OBSERVABLE,
        finite_width_expression(name),
        {**values, s2: PROBE_Q},
        method="nested quadrature",
        evaluator=evaluate_nested_with_error,
    )
    infinite = summary_values()[name]["infinite"]
    return replace(
        probe,
        note=(
            "exact at width "
            f"{WIDTH}: chi averaged over the chi-square law of the input's norm "
            f"(nested quadrature, error {probe.bias_bound:.2g}); the infinite-width "
            f"chi(1) = {infinite:.8g} is off by "
            f"{100 * (infinite / probe.predicted - 1):+.3f}% (Jensen)"
        ),
    )


def _summary_probes(relu_factor: sp.Expr) -> tuple[Probe, ...]:
    """Pre-activation factor of layer 2 over layer 1, widths 256, Xavier (and He) weights."""
    g_value = xavier_equal_widths().subs(n_prev, WIDTH)
    lecture = n_prev * gamma  # the lecture's reading: phi(z) = z near 0, so chi = n gamma
    values = {n_prev: WIDTH, gamma: g_value}
    probes = []
    for name in SUMMARY_ACTIVATIONS:
        scenario = _chi_scenario(name, g_value, sp.sqrt(PROBE_Q))
        probes.append(_chi_probe(name, scenario, relu_factor, values))
        probes.append(
            Probe.derived(
                f"lecture-{name}-xavier-factor-q1",
                scenario,
                _CHI_OBSERVABLE,
                lecture,
                values,
                "disagrees",
                source="lecture",
                note=_LECTURE_CHI,
            )
        )
    (gamma_he,) = sp.solve(sp.Eq(relu_factor, 1), gamma)
    he_value = gamma_he.subs(n_prev, WIDTH)
    probes.append(
        Probe.derived(
            "relu-he-factor-q1",
            _chi_scenario("relu", he_value, 1.0),
            _CHI_OBSERVABLE,
            relu_factor,
            {n_prev: WIDTH, gamma: he_value},
            note=_RELU_EXACT,
        )
    )
    return tuple(probes)


#: Builders of this module's claims, in the lecture's order.
BUILDERS: tuple[Callable[[], Claim], ...] = (small_init_depth, lecture_summary)
