r"""Activation functions: sigmoid's small derivative, expansions near 0, and relu.

Lecture items L2.4/L2.5 (the sigmoid derivative and the vanishing product), L8.3/L8.4
(Taylor expansions at 0, the adjusted sigmoid :math:`4\sigma(x) - 2`) and the soft
spots S4 (how small is "near 0") and S2 (relu halves the variance).

.. math::

    \sigma'(x) = \sigma(x)\bigl(1 - \sigma(x)\bigr) \le \tfrac14, \qquad
    \mathbb{E}[\tanh(x)^2] = q - 2q^2 + O(q^3), \qquad
    \mathbb{E}[\operatorname{relu}(x)^2] = \tfrac{q}{2}
    \quad (x \sim N(0, q)).

Probes of networks predict the exact finite-width value, never the infinite-width
map compared at finite width:

* relu: the pre-activation of layer :math:`t` is Gaussian given layer :math:`t-1`
  (normal weights), and relu is positively homogeneous, so
  :math:`\mathbb{E}[\operatorname{relu}(z)^2] = \mathbb{E}[z^2]/2` holds at every
  width; the per-layer ratio :math:`n\gamma/2` is exact.
* tanh and sigmoid: the layer variance :math:`Q_t = \gamma\lVert h^{t-1}\rVert^2` is
  random at finite width, and :math:`\mathbb{E}[F(Q)] \ne F(\mathbb{E}[Q])` for the
  curved map :math:`F(q) = \mathbb{E}_z[\phi(\sqrt{q} z)^2]` (Jensen): the
  infinite-width map (Poole et al. 2016) is off by :math:`O(1/n)` per layer, 0.17% on
  the first tanh layer of width 256 (the chi-square fluctuation of the input's norm)
  and about 2% on the layer-20 second moment. But given :math:`h^{t-1}` the
  pre-activations are i.i.d. :math:`N(0, Q_t)`, so :math:`Q_1 = \gamma s^2\chi^2_n`
  and :math:`Q_{t+1} = \gamma\sum_i \phi(\sqrt{Q_t}\xi_i)^2` is a Markov chain on one
  number, exact at every width. The probes predict expectations over it
  (:class:`LayerMean`, :func:`layer_mean`): by quadrature against the chi-square
  density at layer 1, and by a backward recursion with a fourth-order moment
  expansion (whose dropped terms are :math:`O(n^{-3})`) above it, each with an error
  estimate that becomes the probe's ``bias_bound``. The sigmoid backward probe is the
  factor of a network's top layer, where the upstream gradient is independent of the
  network and the dependence of :math:`\sigma'(z_i)` on the weight it multiplies is
  exact (:func:`_sigmoid_backward_probes`).

All moments of an activation come from :mod:`derivations._gaussian`: exact
integration where SymPy finds a closed form (relu), numeric quadrature with its
error bound otherwise (tanh, sigmoid).

References
----------
.. [1] Dive into Deep Learning, Sec. 5.4.1 (vanishing gradients, the sigmoid) and the
   lecture's slides on activation functions (``lecture.md``, L2.4, L8.3, L8.4).
.. [2] X. Glorot and Y. Bengio (2010), "Understanding the difficulty of training deep
   feedforward neural networks", AISTATS, Eq. (12): :math:`\gamma_t =
   2/(n_{t-1} + n_t)`.
.. [3] K. He, X. Zhang, S. Ren and J. Sun (2015), "Delving Deep into Rectifiers",
   ICCV, Sec. 2.2: :math:`\operatorname{Var}[y_l] = n_l \operatorname{Var}[w_l]\,
   \mathbb{E}[x_l^2]`, :math:`\mathbb{E}[x_l^2] = \operatorname{Var}[y_{l-1}]/2` and the
   fix :math:`n_l \operatorname{Var}[w_l]/2 = 1`.
.. [4] B. Poole, S. Lahiri, M. Raghu, J. Sohl-Dickstein and S. Ganguli (2016),
   "Exponential expressivity in deep neural networks through transient chaos",
   NeurIPS: :math:`q^l = \sigma_w^2\,\mathbb{E}_z[\phi(\sqrt{q^{l-1}}\,z)^2] + \sigma_b^2`.
.. [5] S. Schoenholz, J. Gilmer, S. Ganguli and J. Sohl-Dickstein (2017), "Deep
   Information Propagation", ICLR: the gradient factor :math:`\chi_1 = \sigma_w^2\,
   \mathbb{E}_z[\phi'(\sqrt{q^*} z)^2]`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from functools import cache, lru_cache

import numpy as np
import sympy as sp
from scipy import integrate, optimize, stats

from ._check import Chain, check_algebraic
from ._claim import Assumption, Check, Claim, Derivation, Probe, Status
from ._gaussian import (
    evaluate,
    gaussian_integral,
    gaussian_moment,
    gaussian_square_series,
    integrate_real_line,
    moment_function,
    standard_normal_density,
)
from ._symbols import Q, gamma, i, n_prev, n_t, q, s2, v_prev, x
from ._table import TABLE, ActivationEntry, activation, family, names, relu, sigma

u = sp.Symbol("u", real=True)
h = sp.Symbol("h", real=True)
d, t = sp.symbols("d t", integer=True, positive=True)
zi = sp.IndexedBase("z")

#: The activations as SymPy expressions of ``x`` (:data:`derivations._table.TABLE`);
#: the keys are the scenario names the simulation understands.
ACTIVATIONS: dict[str, sp.Expr] = {e.name: e.expression for e in TABLE}
#: The same, written with the named functions the report shows.
DISPLAY: dict[str, sp.Expr] = {e.name: e.display for e in TABLE}

#: Glorot & Bengio (2010), Eq. (12).
XAVIER = 2 / (n_prev + n_t)
#: Xavier for equal widths, :math:`1/n_{t-1}`.
XAVIER_EQUAL = sp.simplify(XAVIER.subs(n_t, n_prev))

DEFINITIONS = (
    Assumption(
        "sigmoid-definition",
        r"$\sigma(x) = 1/(1 + e^{-x})$",
        {sigma: sp.Lambda(x, ACTIVATIONS["sigmoid"])},
    ),
    Assumption(
        "relu-definition",
        r"$\operatorname{relu}(x) = \max(0, x)$",
        {relu: sp.Lambda(x, ACTIVATIONS["relu"])},
    ),
    Assumption(
        "tanh-definition",
        r"$\tanh u = (e^{u} - e^{-u})/(e^{u} + e^{-u})$",
        {sp.tanh: sp.Lambda(u, sp.tanh(u).rewrite(sp.exp))},
    ),
)
GAUSSIAN = Assumption(
    "gaussian-input",
    r"$x \sim N(0, q)$, written $x = \sqrt{q}\,z$ with $z \sim N(0, 1)$",
)
XAVIER_ASSUMPTION = Assumption(
    "xavier-equal-widths",
    r"Xavier initialization $\gamma_t = 2/(n_{t-1} + n_t)$ with equal widths "
    r"$n_t = n_{t-1}$, i.e. $\gamma_t = 1/n_{t-1}$",
    {gamma: XAVIER_EQUAL},
)

#: Width and depth of the simulated networks, and the std of their N(0, s^2) inputs.
WIDTH = 256
INPUT_STD = 1.0
SIGMOID_DEPTH, TANH_DEPTH, RELU_DEPTH = 8, 20, 3


def _subs(*names: str) -> dict:
    out: dict = {}
    for a in DEFINITIONS:
        if a.name in names:
            out.update(a.subs)
    return out


def _explicit(expr: sp.Expr) -> sp.Expr:
    """Replace the named functions (``sigma``, ``relu``) by their definitions."""
    return (
        sp.sympify(expr)
        .replace(sigma, lambda a: ACTIVATIONS["sigmoid"].subs(x, a))
        .replace(relu, lambda a: ACTIVATIONS["relu"].subs(x, a))
    )


def _status(ok: bool, evidence: Status = Status.COMPUTED) -> Status:
    """``evidence`` (a SymPy computation by default) when ``ok``, else refuted."""
    return evidence if ok else Status.REFUTED


def _normal(std: sp.Expr) -> dict:
    return {"law": "normal", "std": float(std)}


def _evaluate_with_error(expr: sp.Expr) -> tuple[float, float]:
    """:func:`evaluate` (QUADPACK on every real-line integral), with an error bound.

    The value is exactly :func:`evaluate`'s; the error is QUADPACK's bound on each
    integral, propagated to first order through the rest of the expression.
    """
    expr = sp.sympify(expr)
    integrals = sorted(expr.atoms(sp.Integral), key=sp.default_sort_key)
    if not integrals:
        return evaluate(expr), 0.0
    dummies = [sp.Dummy(f"I{k}") for k in range(len(integrals))]
    numbers = []
    for integral in integrals:
        ((z, lo, hi),) = integral.limits
        if (lo, hi) != (-sp.oo, sp.oo):
            raise ValueError(f"only integrals over the real line are evaluated; got {integral}.")
        numbers.append(integrate_real_line(integral.function, z))
    reduced = expr.xreplace(dict(zip(integrals, dummies, strict=True)))
    at = {s: sp.Float(v, 17) for s, (v, _) in zip(dummies, numbers, strict=True)}
    error = sum(
        abs(float(sp.diff(reduced, s).subs(at))) * e
        for s, (_, e) in zip(dummies, numbers, strict=True)
    )
    return evaluate(expr), error


def _quadrature(expr: sp.Expr) -> tuple[float, float]:
    """The ``"quadrature"`` method of a probe: named activations written out, then
    :func:`_evaluate_with_error`."""
    return _evaluate_with_error(_explicit(expr))


def _scalar_probe(
    label: str,
    name: str,
    q_value: sp.Expr,
    expression: sp.Expr,
    *,
    function: str = "value",
    moment: str = "m2",
    expect: str = "agrees",
    source: str = "",
) -> Probe:
    """A scalar experiment; ``expression`` is symbolic in ``q`` and evaluated at ``q_value``.

    Exact: :math:`x \\sim N(0, q)` is what the engine draws, so the only error is the
    quadrature's, which becomes the probe's bias bound.
    """
    return Probe.derived(
        label,
        {
            "kind": "scalar",
            "activation": name,
            "q": float(q_value),
            "function": function,
            "dtype": "float64",
        },
        {"moment": moment},
        expression,
        {q: q_value},
        expect,
        method="quadrature",
        evaluator=_quadrature,
        source=source,
        note=(
            "the lecture's reading, evaluated at the probe's variance"
            if source == "lecture" or expect == "disagrees"
            else "exact Gaussian moment at the probe's variance; QUADPACK error bound"
        ),
    )


def _mean_field(f: sp.Expr, n: int, g: sp.Expr, m0: float, depth: int) -> list[float]:
    """Second moments ``m_0..m_depth`` of the outputs from the infinite-width map.

    :math:`q_t = n\\gamma\\,m_{t-1}` (the pre-activation variance, He et al. 2015) and
    :math:`m_t = \\mathbb{E}_z[f(\\sqrt{q_t} z)^2]` (Poole et al. 2016). Used only to
    say how far the infinite-width value is from the finite-width prediction.
    """
    moment = moment_function(f**2, x)
    scale = float(n * g)
    m = [m0]
    for _ in range(depth):
        m.append(moment(scale * m[-1])[0])
    return m


# --------------------------------------------------------------------------------------
# Finite width: the layer-variance chain
# --------------------------------------------------------------------------------------
#
# In a network of equal widths n with i.i.d. N(0, gamma) weights and input
# h^0 ~ N(0, s^2 I), the rows of W^t are independent of h^{t-1}, so given h^{t-1} the
# pre-activations z^t_i are i.i.d. N(0, Q_t) with Q_t = gamma ||h^{t-1}||^2. Hence
#
#     Q_1 = gamma s^2 U,  U ~ chi^2_n,     Q_{t+1} = gamma sum_{i=1}^n phi(sqrt(Q_t) xi_i)^2,
#
# with xi_i i.i.d. N(0, 1): a Markov chain on one number, exact at every width. Every
# moment of a layer is an expectation over Q_t (E[(h^t_i)^2] = E[F(Q_t)]), so the
# finite-width prediction is E[g(Q_t)], which the infinite-width map replaces by
# g(E[Q_t]) iterated (Jensen's inequality: off by O(1/n) per layer).

#: Gauss-Hermite rules (probabilists') for the moments given Q; the difference between
#: the two estimates the rule's error.
CHAIN_RULES = (160, 240)
#: Chebyshev degrees tried for each E[h(Q_{t+1}) | Q_t = q], and the relative size of
#: the trailing coefficients (the largest of the last eight) at which one is accepted.
CHAIN_DEGREES = (32, 64, 128, 256, 512)
CHAIN_TAIL = 1e-13
#: The chi-square law of Q_1 is integrated between these tail probabilities.
CHAIN_TAIL_MASS = 1e-17


class LayerMean(sp.Function):
    """:math:`\\mathbb{E}[g(Q_t)]` over the law of the layer variance :math:`Q_t`.

    Arguments ``(body, Q, t, phi, x, n, gamma, s2)``: ``body`` is :math:`g` written
    in the symbol ``Q``; :math:`Q_1 = \\gamma s^2 \\chi^2_n` and
    :math:`Q_{t+1} = \\gamma\\sum_{i=1}^n \\phi(\\sqrt{Q_t}\\,\\xi_i)^2` with ``phi``
    an expression in ``x``, a network of width ``n`` with :math:`N(0, \\gamma)`
    weights and :math:`N(0, s^2)` inputs. Evaluated by :func:`layer_mean`.
    """

    nargs = 8

    @property
    def free_symbols(self) -> set:
        body, Q, t, phi, xx, *params = self.args
        out = (body.free_symbols - {Q}) | (phi.free_symbols - {xx}) | t.free_symbols
        for p in params:
            out |= p.free_symbols
        return out

    def _latex(self, printer, exp=None):
        body, Q, t = self.args[:3]
        tex = r"\mathbb{E}_{%s \sim Q_{%s}}\left[%s\right]" % (
            printer._print(Q),
            printer._print(t),
            printer._print(body),
        )
        return tex if exp is None else r"\left(%s\right)^{%s}" % (tex, exp)


def _gauss_hermite(order: int) -> tuple[np.ndarray, np.ndarray]:
    nodes, weights = np.polynomial.hermite_e.hermegauss(order)
    return nodes, weights / math.sqrt(2 * math.pi)


def _numeric_in_q(body: sp.Expr, Q: sp.Symbol, nodes: np.ndarray, weights: np.ndarray):
    """``body`` as a vectorized function of ``Q``, each Gaussian integral by the rule."""
    integrals = sorted(body.atoms(sp.Integral), key=sp.default_sort_key)
    parts = []
    for integral in integrals:
        ((z, lo, hi),) = integral.limits
        if (lo, hi) != (-sp.oo, sp.oo):
            raise ValueError(f"only Gaussian integrals over the real line; got {integral}.")
        # the integrand is f(sqrt(Q) z) times the N(0, 1) density: take the density out
        density = standard_normal_density(z)
        weight_free = integral.function.subs(sp.exp(-(z**2) / 2), 1) * sp.sqrt(2 * sp.pi)
        gaussian_left = any(e.args[0].has(z**2) for e in weight_free.atoms(sp.exp))
        spot = {z: sp.Rational(3, 7), Q: sp.Rational(5, 11)}
        mismatch = (weight_free * density - integral.function).subs(spot).evalf(30)
        if gaussian_left or weight_free.free_symbols - {z, Q} or abs(mismatch) > 1e-25:
            raise ValueError(f"{integral} is not a Gaussian integral in {Q}.")
        parts.append(sp.lambdify((z, Q), weight_free, modules="numpy"))
    dummies = [sp.Dummy(f"I{k}") for k in range(len(integrals))]
    outer = sp.lambdify(
        (Q, *dummies), body.xreplace(dict(zip(integrals, dummies, strict=True))), "numpy"
    )

    def value(qs: np.ndarray) -> np.ndarray:
        qs = np.asarray(qs, dtype=float)
        with np.errstate(over="ignore", under="ignore"):
            ints = [
                np.broadcast_to(p(nodes, qs[..., None]), (*qs.shape, nodes.size)) @ weights
                for p in parts
            ]
            return np.broadcast_to(outer(qs, *ints), qs.shape).astype(float)

    return value


def _chain_value(
    body: sp.Expr,
    Q: sp.Symbol,
    layer: int,
    phi: sp.Expr,
    n: int,
    g: float,
    s2: float,
    order: int,
) -> tuple[float, float, float]:
    """``(E[body(Q_layer)], truncation + interpolation error, outer quadrature error)``.

    Backward recursion: :math:`h_{\\mathrm{layer}} = g`, :math:`h_t(q) =
    \\mathbb{E}[h_{t+1}(Q_{t+1}) \\mid Q_t = q]`, then
    :math:`\\mathbb{E}[h_1(\\gamma s^2 U)]` by QUADPACK against the chi-square density.
    Given :math:`Q_t = q`, :math:`Q_{t+1} = \\gamma\\sum_{i \\le n} Y_i` with
    :math:`Y = \\phi(\\sqrt q\\,\\xi)^2` i.i.d. and bounded by :math:`M`, so
    :math:`Q_{t+1} \\in [0, n\\gamma M]`; its mean :math:`\\mu = n\\gamma
    \\mathbb{E}Y`, and its central moments are those of a sum of ``n`` i.i.d. terms:
    :math:`V = n\\gamma^2\\kappa_2`, :math:`K_3 = n\\gamma^3\\kappa_3`,
    :math:`M_4 = \\gamma^4 (n\\mu_4 + 3n(n-1)\\kappa_2^2)`. Taylor's theorem at
    :math:`\\mu` gives :math:`h(\\mu) + h''V/2 + h'''K_3/6 + h''''M_4/24` plus terms of
    order :math:`n^{-3}`; each :math:`h_t` on :math:`[0, n\\gamma M]` is a Chebyshev
    interpolant (:mod:`numpy.polynomial.chebyshev`), whose derivatives are exact.

    The error returned is an estimate, as QUADPACK's is: the largest fourth-order term
    over the interval (the last term kept, larger than the ones dropped by a factor of
    order ``n``) plus the trailing Chebyshev coefficients, summed over the layers.
    """
    nodes, weights = _gauss_hermite(order)
    f = sp.lambdify(x, phi**2, modules="numpy")
    bound = max(float(sp.limit(phi**2, x, end)) for end in (sp.oo, -sp.oo))
    if not math.isfinite(bound):
        raise ValueError(f"the layer-variance chain needs a bounded activation; got {phi}.")
    top = n * g * bound

    def moments(qs: np.ndarray) -> tuple[np.ndarray, ...]:
        with np.errstate(over="ignore", under="ignore"):
            y = f(np.sqrt(np.asarray(qs, float))[..., None] * nodes)
        m1 = y @ weights
        c = y - m1[..., None]
        k2, k3, k4 = ((c**2) @ weights, (c**3) @ weights, (c**4) @ weights)
        return (
            n * g * m1,
            n * g**2 * k2,
            n * g**3 * k3,
            g**4 * (n * k4 + 3 * n * (n - 1) * k2**2),
        )

    def interpolate(func) -> tuple[np.polynomial.Chebyshev, float]:
        for degree in CHAIN_DEGREES:
            poly = np.polynomial.Chebyshev.interpolate(func, degree, domain=[0.0, top])
            tail = np.abs(poly.coef[-8:])
            if tail.max() <= CHAIN_TAIL * float(np.abs(poly.coef).max()):
                return poly, float(tail.sum())
        raise ValueError(f"no Chebyshev interpolant of degree <= {degree} reached {CHAIN_TAIL}.")

    def expectation(poly: np.polynomial.Chebyshev):
        d2, d3, d4 = (poly.deriv(k) for k in (2, 3, 4))

        def value(qs: np.ndarray, fourth: bool = False) -> np.ndarray:
            mu, v, k3, m4 = moments(qs)
            last = d4(mu) * m4 / 24
            total = poly(mu) + d2(mu) * v / 2 + d3(mu) * k3 / 6 + last
            return np.abs(last) if fourth else total

        return value

    body_num = _numeric_in_q(body, Q, nodes, weights)
    error = 0.0
    h1 = body_num
    if layer >= 2:
        grid = np.linspace(0.0, top, 2001)[1:]
        poly, tail = interpolate(body_num)
        error += tail
        for _ in range(layer - 2):
            step = expectation(poly)
            error += float(step(grid, fourth=True).max())
            poly, tail = interpolate(step)
            error += tail
        step = expectation(poly)
        error += float(step(grid, fourth=True).max())
        h1 = step
    lo = stats.chi2.ppf(CHAIN_TAIL_MASS, n)
    hi = stats.chi2.isf(CHAIN_TAIL_MASS, n)
    value, quad_error = integrate.quad(
        lambda uu: float(h1(np.array(g * s2 * uu))) * stats.chi2.pdf(uu, n),
        lo,
        hi,
        epsabs=0.0,
        epsrel=1e-12,
        limit=200,
    )
    sup = float(np.abs(h1(np.linspace(g * s2 * lo, g * s2 * hi, 201))).max())
    return value, error, quad_error + 2 * CHAIN_TAIL_MASS * sup


@lru_cache(maxsize=64)
def layer_mean(
    body: sp.Expr,
    Q: sp.Symbol,
    layer: sp.Integer,
    phi: sp.Expr,
    var: sp.Symbol,
    n: sp.Integer,
    g: sp.Expr,
    s2_value: sp.Expr,
) -> tuple[float, float]:
    """Value and error estimate of :class:`LayerMean` with numeric parameters.

    See :func:`_chain_value`; the error adds the difference between two Gauss-Hermite
    rules (:data:`CHAIN_RULES`) and QUADPACK's bound for the outer integral.
    """
    if any(sp.sympify(a).free_symbols for a in (layer, n, g, s2_value)):
        raise ValueError("layer, width, gamma and s^2 must be numbers to evaluate a LayerMean.")
    phi = _explicit(phi).subs(var, x)
    body = _explicit(body)
    args = (body, Q, int(layer), phi, int(n), float(g), float(s2_value))
    coarse, _, _ = _chain_value(*args, CHAIN_RULES[0])
    value, error, quad_error = _chain_value(*args, CHAIN_RULES[1])
    return value, error + quad_error + abs(value - coarse)


def evaluate_finite_width(expr: sp.Expr) -> tuple[float, float]:
    """Value and error estimate of an expression of :class:`LayerMean` terms.

    Every :class:`LayerMean` by :func:`layer_mean`, the rest by :func:`evaluate`; the
    errors are propagated to first order.
    """
    expr = sp.sympify(expr)
    means = sorted(expr.atoms(LayerMean), key=sp.default_sort_key)
    dummies = [sp.Dummy(f"E{k}") for k in range(len(means))]
    numbers = [layer_mean(*m.args) for m in means]
    reduced = expr.xreplace(dict(zip(means, dummies, strict=True)))
    at = {s: sp.Float(v, 17) for s, (v, _) in zip(dummies, numbers, strict=True)}
    value = evaluate(reduced.subs(at))
    error = sum(
        abs(evaluate(sp.diff(reduced, s).subs(at))) * e
        for s, (_, e) in zip(dummies, numbers, strict=True)
    )
    return value, error


# --------------------------------------------------------------------------------------
# L2.4, L2.5: the sigmoid's derivative
# --------------------------------------------------------------------------------------


def _in_terms_of_sigma(expr: sp.Expr) -> sp.Expr:
    """Write a derivative of the sigmoid as a polynomial in :math:`\\sigma(x)`.

    With :math:`u = e^{-x}`, solve :math:`s = 1/(1 + u)` for :math:`u` and substitute.
    """
    s, e = sp.Symbol("s", positive=True), sp.Symbol("u", positive=True)
    (e_of_s,) = sp.solve(sp.Eq(s, ACTIVATIONS["sigmoid"].subs(sp.exp(-x), e)), e)
    poly = sp.factor(sp.simplify(expr.subs(sp.exp(-x), e).subs(e, e_of_s)))
    # present s(1 - s)... with positive factors: s * cancel(poly / s)
    poly = s * sp.factor(sp.cancel(poly / s))
    return poly.subs(s, sigma(x))


@cache
def sigmoid_derivative() -> Claim:
    """L2.4/L2.5: :math:`\\sigma' = \\sigma(1 - \\sigma) \\le 1/4`, so products of them vanish.

    Returns
    -------
    Claim
        Derivations of :math:`\\sigma'` and :math:`\\sigma''` (``sympy.diff``, rewritten
        in :math:`\\sigma`), the maximum :math:`\\sigma'(0) = 1/4` at the only critical
        point, the bound :math:`(1/4)^{d-t}` on a product of :math:`d-t` factors and the
        per-layer gradient factor :math:`\\le 1/16` under Xavier; scalar probes of
        :math:`\\mathbb{E}[\\sigma'(x)]`, :math:`\\mathbb{E}[\\sigma'(x)^2]` and backward
        probes of the top layer of a one-layer and of a deep sigmoid network, exact at
        their width.

    Notes
    -----
    .. math::

        \\sigma'(x) = \\frac{e^{-x}}{(1 + e^{-x})^2} = \\sigma(x)(1 - \\sigma(x)),
        \\qquad \\sigma''(x) = \\sigma(x)(1 - \\sigma(x))(1 - 2\\sigma(x)),
        \\qquad \\prod_{i=t+1}^{d} \\sigma'(z_i) \\le 4^{-(d-t)}.

    The backward recursion :math:`\\mathbb{E}[(g^{t-1})^2] = n_t\\gamma_t\\,
    \\mathbb{E}[\\sigma'(z^t)^2]\\,\\mathbb{E}[(g^t)^2]` is the infinite-width one of
    Schoenholz et al. (2017).
    """
    assumptions = (DEFINITIONS[0], GAUSSIAN, XAVIER_ASSUMPTION)
    sig = ACTIVATIONS["sigmoid"]
    first = sp.diff(sig, x)
    second = sp.diff(sig, x, 2)
    derivative = (
        Chain("first derivative", sp.Derivative(sigma(x), x), assumptions=assumptions)
        .step(first, "sympy.diff", "", uses=("sigmoid-definition",))
        .step(
            _in_terms_of_sigma(first),
            "solve s = 1/(1 + u) for u = exp(-x) and substitute",
            "",
            uses=("sigmoid-definition",),
        )
        .done()
    )
    curvature = (
        Chain("second derivative", sp.Derivative(sigma(x), (x, 2)), assumptions=assumptions)
        .step(second, "sympy.diff", "", uses=("sigmoid-definition",))
        .step(
            _in_terms_of_sigma(second),
            "solve s = 1/(1 + u) for u = exp(-x) and substitute",
            "",
            uses=("sigmoid-definition",),
        )
        .done()
    )
    critical = sp.solveset(sp.Eq(second, 0), x, sp.S.Reals)
    (x0,) = tuple(critical)
    third_at_x0 = sp.simplify(sp.diff(sig, x, 3).subs(x, x0))
    limits = tuple(sp.limit(first, x, end) for end in (-sp.oo, sp.oo))
    maximum = (
        Chain("maximum", sp.Subs(derivative.result, x, x0), assumptions=assumptions)
        .step(
            sp.simplify(_explicit(derivative.result).subs(x, x0)),
            "evaluate at the critical point",
            "",
            uses=("sigmoid-definition",),
        )
        .done()
    )
    peak = maximum.result
    product = (
        Chain("product bound", sp.Product(peak, (i, t + 1, d)), assumptions=assumptions)
        .step(sp.Product(peak, (i, t + 1, d)).doit(), "sympy.Product.doit", "d - t equal factors")
        .done()
    )
    factor = (
        Chain("per-layer gradient factor bound", n_prev * gamma * peak**2, assumptions=assumptions)
        .step(
            sp.simplify((n_prev * gamma * peak**2).subs(gamma, XAVIER_EQUAL)),
            "substitute",
            "",
            uses=("xavier-equal-widths",),
        )
        .done()
    )

    tails, tail_probes, tail_check = _sigmoid_tails(first)
    grid = np.linspace(-8.0, 8.0, 16001)
    values = sp.lambdify(x, first, "numpy")(grid)
    top = int(np.argmax(values))
    confirmations = (
        Check(
            "solveset",
            _status(critical == sp.FiniteSet(0)),
            f"sigma''(x) = 0 on the reals exactly at x in {critical}: one critical point",
        ),
        Check(
            "second derivative test",
            _status(bool(third_at_x0 < 0)),
            f"sigma'''({x0}) = {third_at_x0} < 0, so sigma' has a local maximum there",
        ),
        Check(
            "limits",
            _status(all(lim == 0 for lim in limits)),
            f"sigma'(x) -> {limits[0]} as x -> -oo and {limits[1]} as x -> oo; with one "
            "critical point the local maximum is global",
        ),
        Check(
            "grid",
            _status(
                grid[top] == float(x0) and abs(values[top] - float(peak)) < 1e-15, Status.TESTED
            ),
            f"on 16001 points of [-8, 8] (NumPy, float64) the largest sigma' is "
            f"{values[top]!r} at x = {grid[top]}",
        ),
        tail_check,
    )

    # Scalar probes: E[sigma'(x)] and E[sigma'(x)^2] by quadrature of the derived sigma'.
    slope = derivative.result
    probes = [
        _scalar_probe(
            f"mean-derivative-q{qv}",
            "sigmoid",
            sp.Float(qv),
            gaussian_integral(slope, x, q),
            function="derivative",
            moment="mean",
        )
        for qv in (0.25, 1.0, 4.0)
    ]
    probes.append(
        _scalar_probe(
            "m2-derivative-q1",
            "sigmoid",
            sp.Integer(1),
            gaussian_integral(slope**2, x, q),
            function="derivative",
            moment="m2",
        )
    )
    # Sigmoid networks, Xavier weights: the gradient's second moment shrinks by
    # n*gamma*E[sigma'(z^t)^2] per layer; probed at the top layer, where the finite-width
    # factor is exact (see _sigmoid_backward_probes).
    probes += _sigmoid_backward_probes(slope)
    probes += tail_probes

    return Claim(
        id="sigmoid-derivative",
        lecture=("L2.4", "L2.5"),
        title="The sigmoid derivative is at most one quarter, so long products of it vanish",
        summary=(
            rf"${sp.latex(sp.Derivative(sigma(x), x))} = {sp.latex(derivative.result)}$ has "
            rf"one critical point, $x = {sp.latex(x0)}$, where it takes its maximum "
            rf"${sp.latex(peak)}$; a product of $d - t$ such factors is at most "
            rf"${sp.latex(product.result)}$. In a deep sigmoid network with Xavier weights "
            r"the gradient's second moment shrinks by the factor "
            rf"$n_t\gamma_t\,\mathbb{{E}}[\sigma'(z^t)^2] \le {sp.latex(factor.result)}$ "
            "per layer. Away from 0 it falls like $e^{-|x|}$ (at the edge $x = 8$ of the "
            rf"D2L plot it is ${_scientific(float(tails[1].result))}$), and for a wide input "
            r"$x \sim N(0, q)$ its mean is at most $1/\sqrt{2\pi q}$."
        ),
        assumptions=assumptions,
        derivations=(derivative, curvature, maximum, product, factor, *tails),
        conditions=(
            sp.Le(sp.Derivative(sigma(x), x), peak),
            sp.Le(
                sp.Product(sp.Subs(sp.Derivative(sigma(x), x), x, zi[i]), (i, t + 1, d)),
                product.result,
            ),
        ),
        confirmations=confirmations,
        probes=tuple(probes),
    )


#: The edge of the range D2L plots the sigmoid gradient on, and a wide input variance.
D2L_EDGE, WIDE_Q = 8, 100


def _scientific(value: float) -> str:
    """``3.35\\times 10^{-4}``: a number in LaTeX with three significant digits."""
    mantissa, exponent = f"{value:.2e}".split("e")
    return rf"{mantissa}\times 10^{{{int(exponent)}}}"


def _sigmoid_tails(first: sp.Expr) -> tuple[tuple[Derivation, ...], list[Probe], Check]:
    r"""The tails of :math:`\sigma'` and its typical size under a wide Gaussian input.

    :math:`\sigma'(x)\,e^{x} \to 1` as :math:`x \to \infty` (and :math:`\sigma'` is
    even), so :math:`\sigma'(x) \approx e^{-|x|}`; at the edge :math:`x = 8` of the D2L
    plot it is about :math:`3.4\times 10^{-4}`. Since :math:`\int\sigma' = 1` and the
    :math:`N(0, q)` density is at most :math:`1/\sqrt{2\pi q}`,
    :math:`\mathbb{E}[\sigma'(x)] \le 1/\sqrt{2\pi q}`, checked against the exact
    mean by quadrature at :math:`q = 100`, which the simulation probes.
    """
    tail = (
        Chain("tail", sp.Limit(first * sp.exp(x), x, sp.oo))
        .step(sp.limit(first * sp.exp(x), x, sp.oo), "sympy.limit", r"$\sigma'(x) \sim e^{-x}$")
        .done()
    )
    edge = (
        Chain("value at the edge of the D2L plot", sp.Subs(first, x, D2L_EDGE))
        .step(sp.simplify(first.subs(x, D2L_EDGE)), "evaluate", "")
        .done()
    )
    area = sp.Integral(first, (x, -sp.oo, sp.oo))
    wide = (
        Chain(
            "mean slope bound, wide input", sp.Mul(1 / sp.sqrt(2 * sp.pi * q), area, evaluate=False)
        )
        .step(
            1 / sp.sqrt(2 * sp.pi * q),
            "sympy.integrate",
            r"$\mathbb{E}[\sigma'(x)] = \int \sigma'(x)\,\varphi_q(x)\,dx \le "
            r"\varphi_q(0) \int \sigma'(x)\,dx$ with $\varphi_q(0) = 1/\sqrt{2\pi q}$",
        )
        .done()
    )
    probe = _scalar_probe(
        f"mean-derivative-q{WIDE_Q}",
        "sigmoid",
        sp.Integer(WIDE_Q),
        gaussian_integral(first, x, q),
        function="derivative",
        moment="mean",
    )
    bound = float(wide.result.subs(q, WIDE_Q))
    within = Check(
        "bound against quadrature",
        _status(probe.predicted <= bound, Status.TESTED),
        f"at q = {WIDE_Q}: E[sigma'(x)] = {probe.predicted:.6g} by quadrature, at most the "
        f"bound 1/sqrt(2 pi q) = {bound:.6g} (ratio {probe.predicted / bound:.4f})",
    )
    return (tail, edge, wide), [probe], within


def _finite_width_note(value: float, infinite: float, error: float, what: str) -> str:
    return (
        f"{what}; the infinite-width (mean-field) value {infinite:.8g} is off by "
        f"{100 * (infinite / value - 1):+.3f}%; numeric error estimate {error:.2g}"
    )


def _sigmoid_backward_probes(slope: sp.Expr) -> list[Probe]:
    """The gradient factor of the top layer of a sigmoid network, exact at finite width.

    With an upstream gradient :math:`u` independent of the network,
    :math:`g^{t-1}_j = \\sum_i W_{ij}\\,\\sigma'(z_i)\\,u_i`, so
    :math:`\\mathbb{E}[(g^{t-1}_j)^2] = \\sum_i \\mathbb{E}[W_{ij}^2\\,\\sigma'(z_i)^2]`.
    Given :math:`h = h^{t-1}`, :math:`W_{ij}` and :math:`z_i = \\sum_k W_{ik} h_k` are
    jointly Gaussian (variances :math:`\\gamma` and :math:`Q = \\gamma\\lVert h\\rVert^2`,
    covariance :math:`\\gamma h_j`), so with :math:`W_{ij} = c z_i + e`,
    :math:`c = \\gamma h_j/Q`, :math:`e` independent of :math:`z_i`:
    :math:`\\mathbb{E}[W_{ij}^2 \\sigma'(z_i)^2 \\mid h] = \\operatorname{Var}[e]\\,A(Q)
    + c^2 B(Q)`, :math:`A(Q) = \\mathbb{E}[\\sigma'(z)^2]`, :math:`B(Q) =
    \\mathbb{E}[z^2\\sigma'(z)^2]`, :math:`z \\sim N(0, Q)`. The average over the
    entries ``j`` replaces :math:`h_j^2` by :math:`Q/(n_{t-1}\\gamma)`. The claim's
    factor :math:`n_t\\gamma A` is the leading term; the rest is the dependence of
    :math:`\\sigma'(z_i)` on the weight it multiplies, :math:`O(1/n)`. The expectation
    over the layer variance :math:`Q_t` is exact (chi-square at layer 1, the
    layer-variance chain above it, :class:`LayerMean`). An inner layer has no such
    formula (its gradient depends on the weights below through the forward pass), so
    the probes are the top layers of a one-layer and of a deep network.
    """
    g_value = XAVIER_EQUAL.subs(n_prev, WIDTH)
    h_j = sp.Symbol("h_j", real=True)
    a_q = gaussian_integral(slope**2, x, Q)
    b_q = gaussian_integral(x**2 * slope**2, x, Q)
    cov = gamma * h_j  # Cov[W_ij, z_i | h]
    c = cov / Q  # regression of W_ij on z_i; Var[z_i | h] = Q
    a_s, b_s = sp.symbols("A B")  # the two moments, kept whole while expanding
    per_term = (gamma - c * cov) * a_s + c**2 * b_s
    averaged = sp.expand(per_term).subs(h_j**2, Q / (n_prev * gamma))
    if averaged.has(h_j):
        raise ValueError(f"h_j should enter only as h_j^2; got {averaged}.")
    factor = sp.collect(sp.expand(n_t * averaged), [a_s, b_s]).subs({a_s: a_q, b_s: b_q})
    values = {n_t: WIDTH, n_prev: WIDTH, gamma: g_value, s2: INPUT_STD**2}
    m = _mean_field(ACTIVATIONS["sigmoid"], WIDTH, g_value, INPUT_STD**2, SIGMOID_DEPTH)
    probes = []
    for depth in (1, SIGMOID_DEPTH):
        scenario = {
            "kind": "mlp",
            "widths": [WIDTH] * (depth + 1),
            "weights": _normal(sp.sqrt(g_value)),
            "activation": "sigmoid",
            "input": {"law": "normal", "mean": 0.0, "std": INPUT_STD},
            "upstream": {"law": "normal", "std": 1.0},
            "dtype": "float64",
        }
        # E[(g^t)^2] = 1, the upstream gradient's second moment: the factor itself
        expression = LayerMean(factor, Q, depth, ACTIVATIONS["sigmoid"], x, n_prev, gamma, s2)
        infinite = evaluate(
            _explicit(n_t * gamma * a_q).subs({**values, Q: WIDTH * g_value * m[depth - 1]})
        )
        probe = Probe.derived(
            f"backward-factor-layer{depth}",
            scenario,
            {"direction": "backward", "moment": "m2", "layer": depth - 1, "relative_to": depth},
            expression,
            values,
            method="finite-width chain",
            evaluator=evaluate_finite_width,
        )
        probes.append(
            replace(
                probe,
                note=_finite_width_note(
                    probe.predicted,
                    infinite,
                    probe.bias_bound,
                    f"top layer of a {depth}-layer network, upstream gradient N(0, 1): exact "
                    "factor averaged over the layer variance",
                ),
            )
        )
    return probes


# --------------------------------------------------------------------------------------
# L8.3, L8.4: Taylor expansions at 0 and the adjusted sigmoid
# --------------------------------------------------------------------------------------

SERIES_ORDER = 5
NEAR_ZERO_Q = sp.Rational(1, 100)


def _value_and_slope(name: str, assumptions: tuple[Assumption, ...]) -> list[Derivation]:
    """Chains for :math:`f(0)` and :math:`f'(0)` of a smooth activation."""
    f = DISPLAY[name]
    uses = ("sigmoid-definition",) if f.has(sigma) else ()
    at_zero = (
        Chain(f"{name}: value at 0", sp.Subs(f, x, 0), assumptions=assumptions)
        .step(sp.simplify(_explicit(f).subs(x, 0)), "evaluate", "f at 0", uses=uses)
        .done()
    )
    slope = (
        Chain(f"{name}: slope at 0", sp.Subs(sp.Derivative(f, x), x, 0), assumptions=assumptions)
        .step(
            sp.simplify(sp.diff(_explicit(f), x).subs(x, 0)),
            "sympy.diff",
            "derivative at 0",
            uses=uses,
        )
        .done()
    )
    return [at_zero, slope]


def _uses(f: sp.Expr) -> tuple[str, ...]:
    """The definitions a display form relies on."""
    named = (("sigmoid-definition", sigma), ("relu-definition", relu))
    return tuple(name for name, fn in named if f.has(fn))


#: The variable on each side of 0, for one-sided series and limits.
X_SIDES = {"x >= 0": sp.Symbol("x", nonnegative=True), "x < 0": sp.Symbol("x", negative=True)}


def _side_series(e: ActivationEntry) -> dict[str, sp.Expr]:
    """``sympy.series`` of ``e`` at 0 from each side, in the side's own variable."""
    out = {}
    for label, var in X_SIDES.items():
        out[label] = sp.series(
            e.expression.subs(x, var), var, 0, SERIES_ORDER, dir="+" if label == "x >= 0" else "-"
        )
    return out


def _two_sided(e: ActivationEntry) -> bool:
    """Whether the two one-sided series at 0 agree (``sympy.series`` then holds on both)."""
    plus, minus = _side_series(e).values()
    return (
        sp.simplify(plus.removeO() - minus.removeO().subs(X_SIDES["x < 0"], X_SIDES["x >= 0"])) == 0
    )


def _series_at_zero(e: ActivationEntry, assumptions: tuple[Assumption, ...]) -> Derivation:
    """The Taylor series at 0, of the simplified form when the entry says so."""
    chain = Chain(f"{e.name}: series at 0", e.display, assumptions=assumptions)
    if e.simplify:
        chain = chain.step(
            e.form, "sympy.simplify", "", uses=("sigmoid-definition", "tanh-definition")
        ).step(sp.series(e.form, x, 0, SERIES_ORDER), "sympy.series", "Taylor series at 0")
    else:
        chain = chain.step(
            sp.series(e.expression, x, 0, SERIES_ORDER), "sympy.series", "", uses=_uses(e.display)
        )
    return chain.done()


def _one_sided(
    e: ActivationEntry, assumptions: tuple[Assumption, ...]
) -> tuple[list[Derivation], tuple[sp.Expr, ...]]:
    """Series on each side of 0, the one-sided derivatives and the value at 0.

    Returns the chains and ``(f(0), right derivative, left derivative, series on
    x >= 0, series on x < 0)``.
    """
    uses = _uses(e.display)
    chains = [
        Chain(
            f"{e.name}: series on {label}",
            e.display.subs(x, X_SIDES[label]),
            assumptions=assumptions,
        )
        .step(s, "sympy.series (one-sided)", "", uses=uses)
        .done()
        for label, s in _side_series(e).items()
    ]
    one_sided = {}
    for direction in ("+", "-"):
        quotient = sp.Limit((e.display.subs(x, h) - e.display.subs(x, 0)) / h, h, 0, direction)
        chain = (
            Chain(f"{e.name}: {direction} derivative at 0", quotient, assumptions=assumptions)
            .step(_explicit(quotient).doit(), "sympy.limit", "", uses=uses)
            .done()
        )
        one_sided[direction] = chain.result
        chains.append(chain)
    at_zero = e.expression.subs(x, 0)
    start = e.display.subs(x, 0)  # relu(0); a form that evaluates at once stays a Subs
    value = (
        Chain(
            f"{e.name}: value at 0",
            sp.Subs(e.display, x, 0) if start == at_zero else start,
            assumptions=assumptions,
        )
        .step(at_zero, "evaluate", "", uses=uses)
        .done()
    )
    chains.append(value)
    facts = (value.result, one_sided["+"], one_sided["-"], chains[0].result, chains[1].result)
    return chains, facts


def _identity_check(e: ActivationEntry, f0: sp.Expr, f1: sp.Expr) -> Check:
    """Is ``e`` the identity to first order at 0, as its family (the lecture's) says?"""
    identity = f0 == 0 and f1 == 1
    says = "taylor" in e.families
    source = "the lecture" if "lecture" in e.families else "its family"
    return Check(
        f"{e.name}: f(0), f'(0)",
        _status(identity == says),
        f"f(0) = {f0}, f'(0) = {f1}: "
        + ("the identity to first order at 0" if identity else "not the identity at 0")
        + (f", as {source} says" if identity == says else f", unlike {source}"),
    )


def _one_sided_check(
    e: ActivationEntry, f0: sp.Expr, right: sp.Expr, left: sp.Expr, plus: sp.Expr, minus: sp.Expr
) -> Check:
    """The one-sided derivatives at 0 against the entry's declared kinks."""
    kink = right != left
    text = f"{e.name}(0) = {f0}; right derivative {right}, left derivative {left}: "
    if kink:
        text += "f'(0) does not exist"
        if f0 == 0 and right == 1:
            text += f", {e.name} is the identity on x >= 0 only"
    else:
        text += (
            f"f'(0) = {right}, but the series on the two sides differ "
            f"({sp.sstr(plus.removeO())} on x >= 0, {sp.sstr(minus.removeO())} on x < 0): "
            "not analytic at 0, so sympy.series at 0, which expands one side, holds on "
            "that side only"
        )
    return Check(
        f"{e.name}: one-sided derivatives",
        _status((sp.Integer(0) in e.kinks) == kink),
        text,
    )


@cache
def taylor_identity_near_zero() -> Claim:
    """L8.3/L8.4: near 0, tanh and :math:`4\\sigma - 2` are the identity; sigmoid is not.

    Returns
    -------
    Claim
        For every activation of the table's ``near-zero`` family: the series at 0
        (``sympy.series``) where the series from the two sides agree (sigmoid, tanh,
        :math:`4\\sigma - 2`, the last by simplification to :math:`2\\tanh(x/2)`), with
        :math:`f(0)` and :math:`f'(0)`; otherwise (relu, softsign) the series on each
        side of 0, the one-sided derivatives and :math:`f(0)`, checked against the
        declared kinks; scalar probes of :math:`\\mathbb{E}[f(x)^2]` at a small variance.

    Notes
    -----
    .. math::

        \\sigma(x) = \\tfrac12 + \\tfrac{x}{4} - \\tfrac{x^3}{48} + O(x^5), \\quad
        \\tanh x = x - \\tfrac{x^3}{3} + O(x^5), \\quad
        4\\sigma(x) - 2 = 2\\tanh\\tfrac{x}{2} = x - \\tfrac{x^3}{12} + O(x^5).

    An activation is the identity to first order at 0 exactly when
    :math:`f(0) = 0` and :math:`f'(0) = 1` (L8.1: :math:`\\beta = 0`,
    :math:`\\alpha = 1`). relu has :math:`f(0) = 0` but no derivative at 0: its
    one-sided derivatives are 1 (right) and 0 (left), so it is the identity on
    :math:`x \\ge 0` only. (SymPy's ``diff(Max(0, x), x)`` is ``Heaviside(x)``, whose
    value 1/2 at 0 is a convention, not a derivative.) Softsign :math:`x/(1 + |x|)` has
    :math:`f(0) = 0` and :math:`f'(0) = 1` but is not analytic at 0: its series are
    :math:`x - x^2 + \\dots` on :math:`x \\ge 0` and :math:`x + x^2 + \\dots` on
    :math:`x < 0` (``sympy.series`` at 0 returns the first for both sides), so it is
    not in the ``taylor`` family.
    """
    assumptions = (*DEFINITIONS, GAUSSIAN)
    entries = family("near-zero")
    smooth = [e for e in entries if _two_sided(e)]
    derivations = [_series_at_zero(e, assumptions) for e in smooth]
    series = {e.name: d.result for e, d in zip(smooth, derivations, strict=True)}
    sides: dict[str, tuple[sp.Expr, ...]] = {}
    for e in entries:
        if e not in smooth:
            chains, sides[e.name] = _one_sided(e, assumptions)
            derivations += chains
    at_zero: dict[str, tuple[sp.Expr, sp.Expr]] = {}
    for e in smooth:
        value, slope = _value_and_slope(e.name, assumptions)
        derivations += [value, slope]
        at_zero[e.name] = (value.result, slope.result)
    confirmations = [_identity_check(activation(n), *v) for n, v in at_zero.items()]
    confirmations += [_one_sided_check(activation(n), *v) for n, v in sides.items()]
    rewritten = [e for e in smooth if e.simplify]
    confirmations += [
        check_algebraic(e.display, e.form, _subs("sigmoid-definition", "tanh-definition"))
        for e in rewritten
    ]
    f = sp.Function("f")
    conditions = (
        sp.Eq(f(0), 0),
        sp.Eq(sp.Subs(sp.Derivative(f(x), x), x, 0), 1),
        *(sp.Eq(e.display, e.form) for e in rewritten),
    )
    probes = [
        _scalar_probe(
            f"{e.name}-m2-q{float(NEAR_ZERO_Q)}",
            e.name,
            NEAR_ZERO_Q,
            gaussian_integral(e.display**2, x, q),
        )
        for e in sorted(entries, key=lambda e: "taylor" not in e.families)
    ]
    scaled = DISPLAY["scaled_sigmoid"]
    relu_at_zero, right, left = sides["relu"][:3]
    return Claim(
        id="taylor-identity-near-zero",
        lecture=("L8.3", "L8.4"),
        title="Near zero tanh and the adjusted sigmoid are the identity, sigmoid is not",
        summary=(
            rf"At $0$: ${sp.latex(sigma(x))} = {sp.latex(series['sigmoid'])}$, "
            rf"$\tanh x = {sp.latex(series['tanh'])}$ and "
            rf"${sp.latex(scaled)} = {sp.latex(activation('scaled_sigmoid').form)} = "
            rf"{sp.latex(series['scaled_sigmoid'])}$. "
            r"The identity to first order needs $f(0) = 0$ and $f'(0) = 1$: tanh and "
            r"$4\sigma - 2$ meet both, $\sigma$ meets neither "
            rf"($\sigma(0) = {sp.latex(at_zero['sigmoid'][0])}$, "
            rf"$\sigma'(0) = {sp.latex(at_zero['sigmoid'][1])}$). "
            rf"$\operatorname{{relu}}(0) = {sp.latex(relu_at_zero)}$ but its one-sided "
            rf"derivatives are ${sp.latex(right)}$ (right) and ${sp.latex(left)}$ (left): it is "
            r"the identity on $x \ge 0$ and zero on $x < 0$."
        ),
        assumptions=assumptions,
        derivations=tuple(derivations),
        conditions=conditions,
        confirmations=tuple(confirmations),
        probes=tuple(probes),
    )


# --------------------------------------------------------------------------------------
# S4: how small must the variance be for "near 0" to hold
# --------------------------------------------------------------------------------------

#: Number of powers of q kept in the small-variance expansions.
EXPANSION_ORDER = 5
#: Tolerances on the variance ratio E[f(x)^2]/q: within 1% and within 5% of 1.
TOLERANCES = (sp.Rational(1, 100), sp.Rational(5, 100))
#: The tolerance as a symbol, for the expansion's bound.
EPS = sp.Symbol("epsilon", positive=True)
#: Variances of the scalar probes (small and not small).
RANGE_QS = (sp.Rational(1, 100), sp.Rational(1, 10), sp.Rational(1, 2), sp.Integer(2))


def _ratio_bound(name: str, eps: sp.Rational) -> tuple[float, tuple[float, float]]:
    """Smallest q with :math:`\\mathbb{E}[f(x)^2]/q = 1 - \\varepsilon`, by root-finding.

    Returns the root and the bracket ``(lo, hi)`` of the verified enclosure.
    """
    moment = moment_function(ACTIVATIONS[name] ** 2, x)
    target = 1.0 - float(eps)

    def gap(qv: float) -> float:
        return moment(qv)[0] / qv - target

    root = optimize.brentq(gap, 1e-6, 100.0, xtol=1e-15, rtol=1e-13)
    return root, (root * (1 - 1e-6), root * (1 + 1e-6))


def _enclosure_check(name: str, eps: sp.Rational, root: float) -> Check:
    """Sign change across the root, larger than the quadrature error, and no root below."""
    moment = moment_function(ACTIVATIONS[name] ** 2, x)
    target = 1.0 - float(eps)
    lo, hi = root * (1 - 1e-6), root * (1 + 1e-6)
    (v_lo, e_lo), (v_hi, e_hi) = moment(lo), moment(hi)
    enclosed = v_lo / lo - target > e_lo / lo and target - v_hi / hi > e_hi / hi
    below = np.geomspace(1e-6, lo, 40)
    inside = all(target + err / qv < val / qv < 1.0 for qv in below for val, err in [moment(qv)])
    return Check(
        f"{name}: {float(eps):.0%} bound (quad enclosure)",
        _status(enclosed and inside, Status.TESTED),
        f"E[f(x)^2]/q - {target} changes sign on [{lo:.10g}, {hi:.10g}] by more than the "
        f"quadrature error ({max(e_lo, e_hi):.2g}), and the ratio lies in ({target}, 1) at "
        f"40 variances in [1e-6, {lo:.6g}]",
    )


def _series_prediction(series: sp.Expr, eps: sp.Rational, terms: int) -> float:
    """Smallest positive root of (truncated series)/q = 1 - eps, keeping ``terms`` powers."""
    poly = sp.expand(series.removeO() / q)
    truncated = sum(poly.coeff(q, k) * q**k for k in range(terms))
    roots = [r for r in sp.Poly(truncated - (1 - eps), q).real_roots() if r > 0]
    return float(min(roots))


def _residual_scaling(name: str, series: sp.Expr, q0: float) -> Check:
    """Residual of the series truncated before :math:`q^N` scales as :math:`q^N`.

    With coefficients :math:`c_k`, the residual at q is :math:`c_N q^N (1 + a q +
    O(q^2))`, :math:`a = c_{N+1}/c_N`, so the ratio of residuals at q and q/2 is
    :math:`2^N (1 + a q/2 + O(q^2))`; the check asks :math:`|r/2^N - 1| \\le |a| q`.
    """
    moment = moment_function(ACTIVATIONS[name] ** 2, x)
    coeffs = [series.removeO().coeff(q, k) for k in range(EXPANSION_ORDER)]
    lines, ok = [], True
    for order in range(2, EXPANSION_ORDER - 1):
        truncated = sum(coeffs[k] * q**k for k in range(order))

        def residual(qv: float, truncated: sp.Expr = truncated) -> float:
            return moment(qv)[0] - float(truncated.subs(q, qv))

        ratio = residual(q0) / residual(q0 / 2)
        a = float(coeffs[order + 1] / coeffs[order])
        deviation = abs(ratio / 2**order - 1)
        ok = ok and deviation <= abs(a) * q0
        lines.append(
            f"N={order}: R(q)/R(q/2) = {ratio:.6g} vs 2^{order} = {2**order} "
            f"(off by {deviation:.2%}, allowed |c_{order + 1}/c_{order}| q = {abs(a) * q0:.2%})"
        )
    return Check(
        f"{name}: residual scaling at q = {q0}",
        _status(ok, Status.TESTED),
        "residual of the series truncated before q^N, exact value by quadrature: "
        + "; ".join(lines),
    )


@cache
def validity_bounds() -> dict[str, dict[str, float]]:
    """The variance bounds below which :math:`\\mathbb{E}[f(x)^2]/q` stays within 1%/5% of 1.

    For ``"tanh"`` and ``"scaled_sigmoid"``: the exact bound by root-finding on the
    quadrature (keys ``"1%"``, ``"5%"``) and what the expansion predicts from its
    first-order term (``"1% first order"``) and from all its kept terms
    (``"1% series"``).
    """
    out: dict[str, dict[str, float]] = {}
    for name in names("taylor"):
        series = gaussian_square_series(ACTIVATIONS[name], x, q, EXPANSION_ORDER).value
        row: dict[str, float] = {}
        for eps in TOLERANCES:
            key = f"{float(eps):.0%}"
            row[key] = _ratio_bound(name, eps)[0]
            row[f"{key} first order"] = _series_prediction(series, eps, 2)
            row[f"{key} series"] = _series_prediction(series, eps, EXPANSION_ORDER)
        out[name] = row
    return out


@cache
def taylor_range_of_validity() -> Claim:
    """S4: "near 0" means a small variance, and how small is computed, not assumed.

    Returns
    -------
    Claim
        The exact small-variance expansions of :math:`\\mathbb{E}[\\tanh(x)^2]` and
        :math:`\\mathbb{E}[(4\\sigma(x) - 2)^2]`, the variance bounds for 1% and 5%
        (root-finding on the quadrature, with the expansion's prediction), a check
        that the truncation error scales as the next term, and scalar and network
        probes; qualified: the lecture's "passes the variance unchanged" holds only
        below the derived bounds.

    Notes
    -----
    .. math::

        \\mathbb{E}[\\tanh(x)^2] = q - 2q^2 + \\tfrac{17}{3}q^3 - \\tfrac{62}{3}q^4
        + O(q^5), \\qquad x \\sim N(0, q),

    each coefficient a Taylor coefficient of :math:`\\tanh^2` times a Gaussian moment
    :math:`\\mathbb{E}[x^{2k}] = q^k (2k - 1)!!`. The series is asymptotic (the
    coefficients grow), so it is useful only where it is also accurate.
    """
    assumptions = (*DEFINITIONS, GAUSSIAN, XAVIER_ASSUMPTION)
    derivations: list[Derivation] = []
    series: dict[str, sp.Expr] = {}
    first_bounds: dict[str, sp.Expr] = {}
    # 4 sigma(x) - 2 = 2 tanh(x/2), proved here as in the L8.3/L8.4 claim; the scaled
    # sigmoid's expansion is then checked on the tanh form, because SymPy 1.14
    # mis-expands 1/(1 + exp(-sqrt(q) z)) in q (it drops the sqrt(q) term)
    as_tanh = sp.simplify(ACTIVATIONS["scaled_sigmoid"])
    derivations.append(
        Chain("scaled_sigmoid: as tanh", DISPLAY["scaled_sigmoid"], assumptions=assumptions)
        .step(as_tanh, "sympy.simplify", "", uses=("sigmoid-definition", "tanh-definition"))
        .done()
    )
    forms = {e.name: e.form for e in family("taylor")}
    for name in names("taylor"):
        expansion = gaussian_square_series(ACTIVATIONS[name], x, q, EXPANSION_ORDER)
        series[name] = expansion.value
        chain = Chain(
            f"{name}: expansion of E[f(x)^2]",
            gaussian_integral(forms[name] ** 2, x, q),
            assumptions=assumptions,
        )
        chain.step(
            expansion.terms,
            "Taylor series of f(x)^2 at 0 (sympy.series), expectation term by term",
            "linearity of E; the Taylor remainder O(x^(2N)) of a bounded function adds O(q^N)",
        ).step(
            expansion.value,
            "Gaussian moments E[x^k] (sympy.stats)",
            "E[x^(2k)] = q^k (2k-1)!! and odd moments vanish, computed by sympy.stats",
        )
        derivations.append(chain.done())
        ratio = sp.expand(expansion.value / q)
        derivations.append(
            Chain(
                f"{name}: variance ratio",
                gaussian_integral(forms[name] ** 2, x, q) / q,
                assumptions=assumptions,
            )
            .step(ratio, "divide the expansion by q", "the expansion above, divided by q")
            .done()
        )
        first_order = ratio.removeO().coeff(q, 1)
        (bound,) = sp.solve(sp.Eq(1 + first_order * q, 1 - EPS), q)
        first_bounds[name] = bound
        derivations.append(
            Chain(
                f"{name}: first-order bound",
                sp.Subs(1 + first_order * q, q, bound),
                assumptions=assumptions,
            )
            .step(
                1 - EPS,
                "evaluate at the root of 1 + c_1 q = 1 - epsilon (sympy.solve)",
                "the first-order ratio reaches 1 - epsilon at this q",
            )
            .done()
        )

    bounds = validity_bounds()
    confirmations = []
    for name in names("taylor"):
        for eps in TOLERANCES:
            confirmations.append(_enclosure_check(name, eps, bounds[name][f"{float(eps):.0%}"]))
    confirmations.append(_residual_scaling("tanh", series["tanh"], 0.01))
    confirmations.append(_residual_scaling("scaled_sigmoid", series["scaled_sigmoid"], 0.04))

    conditions = []
    for name in names("taylor"):
        for eps in TOLERANCES:
            key = f"{float(eps):.0%}"
            label = name.replace("_", " ")
            symbol = sp.Symbol(rf"q_{{\text{{{label}}}, {int(eps * 100)}\%}}")
            conditions.append(sp.Eq(symbol, sp.Float(bounds[name][key], 4)))
        first = sp.Symbol(rf"q^{{(1)}}_{{\text{{{name.replace('_', ' ')}}}}}")
        conditions.append(sp.Eq(first, first_bounds[name]))

    # Probes: exact E[f(x)^2] at small and not-small q; the lecture's "unchanged".
    probes = []
    for name, qs in (("tanh", RANGE_QS), ("scaled_sigmoid", (sp.Rational(1, 10), sp.Integer(2)))):
        for qv in qs:
            probes.append(
                _scalar_probe(
                    f"{name}-m2-q{float(qv)}", name, qv, gaussian_integral(DISPLAY[name] ** 2, x, q)
                )
            )
    probes.append(
        _scalar_probe(
            "lecture-tanh-unchanged-q0.5", "tanh", sp.Rational(1, 2), q, expect="disagrees"
        )
    )
    probes.append(
        _scalar_probe(
            "lecture-scaled-sigmoid-unchanged-q2",
            "scaled_sigmoid",
            sp.Integer(2),
            q,
            expect="disagrees",
        )
    )
    probes += _tanh_network_probes()

    tb, sb = bounds["tanh"], bounds["scaled_sigmoid"]
    qualification = (
        rf"holds only for $q$ below {tb['1%']:.3g} (tanh keeps $\mathbb{{E}}[f(x)^2]/q$ "
        rf"within 1% of 1) or {tb['5%']:.3g} (within 5%); for $4\sigma - 2$ below "
        rf"{sb['1%']:.3g} and {sb['5%']:.3g}. The first term of the expansion predicts "
        rf"{tb['1% first order']:.3g} and {sb['1% first order']:.3g} for 1%."
    )
    return Claim(
        id="taylor-range-of-validity",
        lecture=("S4",),
        title="How small the variance must be for tanh to pass it through unchanged",
        summary=(
            rf"For $x \sim N(0, q)$, $\mathbb{{E}}[\tanh(x)^2] = {sp.latex(series['tanh'])}$ "
            rf"and $\mathbb{{E}}[(4\sigma(x) - 2)^2] = {sp.latex(series['scaled_sigmoid'])}$, "
            r"so the variance passes through unchanged only while $q$ is small: the ratio "
            rf"$\mathbb{{E}}[f(x)^2]/q$ stays within 1% of 1 for $q < {tb['1%']:.3g}$ (tanh) "
            rf"and $q < {sb['1%']:.3g}$ ($4\sigma - 2$), within 5% for $q < {tb['5%']:.3g}$ "
            rf"and $q < {sb['5%']:.3g}$."
        ),
        assumptions=assumptions,
        derivations=tuple(derivations),
        conditions=tuple(conditions),
        confirmations=tuple(confirmations),
        probes=tuple(probes),
        qualification=qualification,
    )


def _tanh_network_probes() -> list[Probe]:
    """Deep tanh network, Xavier weights: per-layer ratios of the output's second moment.

    :math:`\\mathbb{E}[(h^t_i)^2] = \\mathbb{E}[F(Q_t)]` exactly, with :math:`F(q) =
    \\mathbb{E}[\\tanh(x)^2]`, :math:`x \\sim N(0, q)` (the claim's Gaussian moment) and
    :math:`Q_t` the random layer variance (:class:`LayerMean`): chi-square at layer 1,
    so the layer-1 ratio averages :math:`F` over the input's norm; the layer-variance
    chain above it. The infinite-width map :math:`m_t = F(n\\gamma m_{t-1})` replaces
    :math:`\\mathbb{E}[F(Q_t)]` by :math:`F(\\mathbb{E}[Q_t])`: by Jensen (:math:`F` is
    concave) it is high, by 0.17% at layer 1 and 0.12% on the layer-20 ratio. The
    lecture's reading, "tanh passes the variance unchanged", predicts ratio 1.
    """
    g_value = XAVIER_EQUAL.subs(n_prev, WIDTH)
    m = _mean_field(ACTIVATIONS["tanh"], WIDTH, g_value, INPUT_STD**2, TANH_DEPTH)
    moment = gaussian_integral(sp.tanh(x) ** 2, x, q).subs(q, Q)

    def second_moment(layer: int) -> sp.Expr:
        """E[(h^layer)^2]: the input's variance at layer 0."""
        if layer == 0:
            return s2
        return LayerMean(moment, Q, layer, ACTIVATIONS["tanh"], x, n_prev, gamma, s2)

    scenario = {
        "kind": "mlp",
        "widths": [WIDTH] * (TANH_DEPTH + 1),
        "weights": _normal(sp.sqrt(g_value)),
        "activation": "tanh",
        "input": {"law": "normal", "mean": 0.0, "std": INPUT_STD},
        "dtype": "float64",
    }
    values = {n_prev: WIDTH, gamma: g_value, s2: INPUT_STD**2}
    probes = []
    for layer in (1, TANH_DEPTH):
        probe = Probe.derived(
            f"tanh-net-ratio-layer{layer}",
            scenario,
            {
                "direction": "forward",
                "of": "output",
                "moment": "m2",
                "layer": layer,
                "relative_to": layer - 1,
            },
            second_moment(layer) / second_moment(layer - 1),
            values,
            method="finite-width chain",
            evaluator=evaluate_finite_width,
        )
        probes.append(
            replace(
                probe,
                note=_finite_width_note(
                    probe.predicted,
                    m[layer] / m[layer - 1],
                    probe.bias_bound,
                    "exact ratio of second moments, each averaged over the layer variance",
                ),
            )
        )
    unchanged = sp.Integer(1)
    probes.append(
        Probe(
            label="lecture-tanh-net-unchanged-layer1",
            scenario=scenario,
            observable={
                "direction": "forward",
                "of": "output",
                "moment": "m2",
                "layer": 1,
                "relative_to": 0,
            },
            predicted=float(unchanged),
            expression=unchanged,
            expect="disagrees",
            source="lecture",
            note="the lecture's 'tanh passes the variance through unchanged' (L8.3, L8.4), "
            "a literal ratio 1",
        )
    )
    return probes


# --------------------------------------------------------------------------------------
# S2: relu halves the variance
# --------------------------------------------------------------------------------------


@cache
def relu_halves_variance() -> Claim:
    """S2: :math:`\\mathbb{E}[\\operatorname{relu}(x)^2] = q/2`, so Xavier halves the variance.

    Returns
    -------
    Claim
        The exact second moment of relu (``sympy.integrate``), He's recursion for the
        pre-activation variance, its per-layer factor under Xavier (1/2) and under
        He's :math:`\\gamma_t = 2/n_{t-1}` (from ``sympy.solve``; 1), with network and
        scalar probes; refuted as stated, with the correction.

    Notes
    -----
    .. math::

        \\mathbb{E}[\\operatorname{relu}(x)^2]
        = \\int_0^\\infty q z^2 \\varphi(z)\\,dz = \\frac{q}{2}, \\qquad
        \\operatorname{Var}[z^t] = n_{t-1}\\gamma_t\\,
        \\mathbb{E}[\\operatorname{relu}(z^{t-1})^2]
        = \\frac{n_{t-1}\\gamma_t}{2}\\operatorname{Var}[z^{t-1}].

    The first equality of the recursion is the forward claim's second-moment form
    (He et al. 2015, Sec. 2.2), which needs no zero mean; relu's output has mean
    :math:`\\sqrt{q/(2\\pi)} \\neq 0`.
    """
    he = Assumption(
        "he-initialization",
        r"He initialization $\gamma_t = 2/n_{t-1}$",
    )
    assumptions = (DEFINITIONS[1], GAUSSIAN, XAVIER_ASSUMPTION, he)
    square = relu(x) ** 2
    moment = gaussian_moment(ACTIVATIONS["relu"] ** 2, x, q)
    z = gaussian_integral(x, x, q).limits[0][0]
    z_pos = sp.Symbol(str(z), positive=True)
    # on z > 0, relu(sqrt(q) z) = sqrt(q) z: the integrand of the positive half
    positive_half = (ACTIVATIONS["relu"] ** 2).subs(x, sp.sqrt(q) * z_pos).subs(z_pos, z)
    density = gaussian_integral(sp.Integer(1), x, q).function
    second = (
        Chain("second moment", gaussian_integral(square, x, q), assumptions=assumptions)
        .step(
            sp.Integral(positive_half * density, (z, 0, sp.oo)),
            "relu vanishes for z < 0 and is the identity for z > 0",
            "relu(x) = max(0, x); both sides integrated by sympy.integrate in the check",
        )
        .step(moment.value, "sympy.integrate", "exact Gaussian integral")
        .done()
    )
    half = sp.simplify(second.result / q)
    recursion = (
        Chain(
            "pre-activation recursion",
            n_prev * gamma * gaussian_integral(square, x, v_prev),
            assumptions=assumptions,
        )
        .step(
            n_prev * gamma * half * v_prev,
            "second moment of relu at variance v_{t-1}",
            "the second moment derived above, at q = v_{t-1}",
        )
        .done()
    )
    factor = sp.simplify(recursion.result / v_prev)
    xavier = (
        Chain("per-layer factor under Xavier", factor, assumptions=assumptions)
        .step(
            sp.simplify(factor.subs(gamma, XAVIER_EQUAL)),
            "substitute",
            "",
            uses=("xavier-equal-widths",),
        )
        .done()
    )
    (gamma_he,) = sp.solve(sp.Eq(factor, 1), gamma)
    he_chain = (
        Chain("per-layer factor under He", factor.subs(gamma, gamma_he), assumptions=assumptions)
        .step(
            sp.simplify(factor.subs(gamma, gamma_he)),
            "simplify",
            "gamma_t from sympy.solve(factor = 1, gamma_t)",
        )
        .done()
    )
    mean = gaussian_moment(ACTIVATIONS["relu"], x, q)

    probes = []
    # the lecture's reading: relu(x) = x, so E[relu(x)^2] = E[x^2] = q, factor n*gamma
    lecture_factor = factor / half
    for label, g_value, expected in (
        ("xavier", XAVIER_EQUAL, "agrees"),
        ("he", gamma_he, "agrees"),
    ):
        g_num = g_value.subs(n_prev, WIDTH)
        scenario = {
            "kind": "mlp",
            "widths": [WIDTH] * (RELU_DEPTH + 1),
            "weights": _normal(sp.sqrt(g_num)),
            "activation": "relu",
            "input": {"law": "normal", "mean": 0.0, "std": INPUT_STD},
            "dtype": "float64",
        }
        observable = {
            "direction": "forward",
            "of": "preactivation",
            "moment": "m2",
            "layer": RELU_DEPTH,
            "relative_to": RELU_DEPTH - 1,
        }
        values = {n_prev: WIDTH, gamma: g_num}
        probes.append(
            Probe.derived(
                f"{label}-preactivation-ratio",
                scenario,
                observable,
                factor,
                values,
                expected,
                note="exact at every width: given the layer below, z is Gaussian and "
                "symmetric, so E[relu(z)^2] = E[z^2]/2",
            )
        )
        if label == "xavier":
            probes.append(
                Probe.derived(
                    "lecture-xavier-preactivation-ratio",
                    scenario,
                    observable,
                    lecture_factor,
                    values,
                    "disagrees",
                    source="lecture",
                    note="the lecture's reading relu(x) = x, i.e. the factor n gamma",
                )
            )
    probes.append(
        _scalar_probe("relu-m2-q1", "relu", sp.Integer(1), gaussian_integral(square, x, q))
    )
    probes.append(_scalar_probe("lecture-relu-m2-q1", "relu", sp.Integer(1), q, expect="disagrees"))

    return Claim(
        id="relu-halves-variance",
        lecture=("L8.3", "L8.4", "S2"),
        title="Relu halves the second moment, so Xavier halves the variance at every layer",
        summary=(
            rf"For $x \sim N(0, q)$, $\mathbb{{E}}[\operatorname{{relu}}(x)^2] = "
            rf"{sp.latex(second.result)}$: relu zeroes the half of its input below 0. Hence "
            rf"$\operatorname{{Var}}[z^t] = n_{{t-1}}\gamma_t\,"
            rf"\mathbb{{E}}[\operatorname{{relu}}(z^{{t-1}})^2] = {sp.latex(factor)}\,"
            rf"\operatorname{{Var}}[z^{{t-1}}]$: with Xavier weights (equal widths) the "
            rf"factor is ${sp.latex(xavier.result)}$, so the pre-activation variance halves at "
            rf"every layer; $\gamma_t = {sp.latex(gamma_he)}$ makes it "
            rf"${sp.latex(he_chain.result)}$."
        ),
        assumptions=assumptions,
        derivations=(second, recursion, xavier, he_chain),
        conditions=(
            sp.Eq(gaussian_integral(square, x, q), second.result),
            sp.Eq(gamma, gamma_he),
            sp.Eq(gaussian_integral(relu(x), x, q), mean.value),
        ),
        confirmations=(),
        probes=tuple(probes),
        corrected=(
            r"relu is the identity only for $x \ge 0$; for $x \sim N(0, q)$, "
            r"$\mathbb{E}[\operatorname{relu}(x)^2] = q/2$, so with Xavier weights the "
            r"pre-activation variance halves at every layer (a factor $2^{-d}$ after $d$ "
            r"layers). He et al. (2015) fix it with $\gamma_t = 2/n_{t-1}$."
        ),
    )


#: The claims of this module, in the lecture's order.
BUILDERS: tuple[Callable[[], Claim], ...] = (
    sigmoid_derivative,
    taylor_identity_near_zero,
    relu_halves_variance,
    taylor_range_of_validity,
)
