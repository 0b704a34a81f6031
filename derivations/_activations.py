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

from ._building import assumptions_named, by_name, gaussian_square_expansion, mlp_scenario
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
from ._symbols import Q, gamma, i, n_prev, n_t, q, s2, u, v_prev, x
from ._symbols import s as s_value
from ._table import TABLE, ActivationEntry, activation, family, names, relu, sigma

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


def _layer_moments(
    f: Callable, nodes: np.ndarray, weights: np.ndarray, n: int, g: float
) -> Callable:
    """Mean and central moments 2 to 4 of :math:`Q_{t+1}` given :math:`Q_t = q` (a sum of
    ``n`` i.i.d. terms :math:`\\gamma f(\\sqrt q\\,\\xi)`), by the Gauss-Hermite rule."""

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

    return moments


def _chebyshev(func: Callable, top: float) -> tuple[np.polynomial.Chebyshev, float]:
    """The first interpolant on ``[0, top]`` whose trailing coefficients are small, and
    their sum."""
    for degree in CHAIN_DEGREES:
        poly = np.polynomial.Chebyshev.interpolate(func, degree, domain=[0.0, top])
        tail = np.abs(poly.coef[-8:])
        if tail.max() <= CHAIN_TAIL * float(np.abs(poly.coef).max()):
            return poly, float(tail.sum())
    raise ValueError(f"no Chebyshev interpolant of degree <= {degree} reached {CHAIN_TAIL}.")


def _one_layer_down(poly: np.polynomial.Chebyshev, moments: Callable) -> Callable:
    """:math:`q \\mapsto \\mathbb{E}[h(Q_{t+1}) \\mid Q_t = q]` to fourth order in the
    moments; with ``fourth=True``, the size of the fourth-order term."""
    d2, d3, d4 = (poly.deriv(k) for k in (2, 3, 4))

    def value(qs: np.ndarray, fourth: bool = False) -> np.ndarray:
        mu, v, k3, m4 = moments(qs)
        last = d4(mu) * m4 / 24
        total = poly(mu) + d2(mu) * v / 2 + d3(mu) * k3 / 6 + last
        return np.abs(last) if fourth else total

    return value


def _backward_recursion(
    body_num: Callable, layer: int, top: float, moments: Callable
) -> tuple[Callable, float]:
    """:math:`h_1` from :math:`h_{\\mathrm{layer}} = g`, with the summed error estimate."""
    error = 0.0
    h1 = body_num
    if layer >= 2:
        grid = np.linspace(0.0, top, 2001)[1:]
        poly, tail = _chebyshev(body_num, top)
        error += tail
        for _ in range(layer - 2):
            step = _one_layer_down(poly, moments)
            error += float(step(grid, fourth=True).max())
            poly, tail = _chebyshev(step, top)
            error += tail
        step = _one_layer_down(poly, moments)
        error += float(step(grid, fourth=True).max())
        h1 = step
    return h1, error


def _chi_square_mean(h1: Callable, n: int, g: float, s2: float) -> tuple[float, float]:
    """:math:`\\mathbb{E}[h_1(\\gamma s^2 U)]`, :math:`U \\sim \\chi^2_n`, by QUADPACK
    between the tail probabilities, with its error plus the tails' bound."""
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
    return value, quad_error + 2 * CHAIN_TAIL_MASS * sup


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
    bound = max(float(sp.limit(phi**2, x, end)) for end in (sp.oo, -sp.oo))
    if not math.isfinite(bound):
        raise ValueError(f"the layer-variance chain needs a bounded activation; got {phi}.")
    moments = _layer_moments(sp.lambdify(x, phi**2, modules="numpy"), nodes, weights, n, g)
    body_num = _numeric_in_q(body, Q, nodes, weights)
    h1, error = _backward_recursion(body_num, layer, n * g * bound, moments)
    value, quad_error = _chi_square_mean(h1, n, g, s2)
    return value, error, quad_error


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
    s, e = s_value, sp.Symbol("u", positive=True)  # e = exp(-x) > 0, unlike the shared real u
    (e_of_s,) = sp.solve(sp.Eq(s, ACTIVATIONS["sigmoid"].subs(sp.exp(-x), e)), e)
    poly = sp.factor(sp.simplify(expr.subs(sp.exp(-x), e).subs(e, e_of_s)))
    # present s(1 - s)... with positive factors: s * cancel(poly / s)
    poly = s * sp.factor(sp.cancel(poly / s))
    return poly.subs(s, sigma(x))


def _sigma_derivative_chain(
    name: str, order: int, assumptions: tuple[Assumption, ...]
) -> Derivation:
    """:math:`\\sigma^{(k)}` by ``sympy.diff``, then written as a polynomial in :math:`\\sigma`."""
    start = sp.Derivative(sigma(x), x) if order == 1 else sp.Derivative(sigma(x), (x, order))
    derived = sp.diff(ACTIVATIONS["sigmoid"], x, order)
    return (
        Chain(name, start, assumptions=assumptions)
        .step(derived, "sympy.diff", "", uses=("sigmoid-definition",))
        .step(
            _in_terms_of_sigma(derived),
            "solve s = 1/(1 + u) for u = exp(-x) and substitute",
            "",
            uses=("sigmoid-definition",),
        )
        .done()
    )


@cache
def _sigmoid_critical_point() -> tuple[sp.Set, sp.Expr]:
    """The real zeros of :math:`\\sigma''` (``sympy.solveset``) and the only one."""
    critical = sp.solveset(sp.Eq(sp.diff(ACTIVATIONS["sigmoid"], x, 2), 0), x, sp.S.Reals)
    (x0,) = tuple(critical)
    return critical, x0


def _sigmoid_peak_chains(
    derivative: Derivation, assumptions: tuple[Assumption, ...]
) -> tuple[Derivation, ...]:
    """The maximum :math:`\\sigma'(0)`, the product bound and the per-layer factor bound."""
    _, x0 = _sigmoid_critical_point()
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
    return maximum, product, factor


def _sigmoid_maximum_checks(peak: sp.Expr) -> tuple[Check, ...]:
    """One critical point, a maximum there, zero limits, and the largest value on a grid."""
    first = sp.diff(ACTIVATIONS["sigmoid"], x)
    critical, x0 = _sigmoid_critical_point()
    third_at_x0 = sp.simplify(sp.diff(ACTIVATIONS["sigmoid"], x, 3).subs(x, x0))
    limits = tuple(sp.limit(first, x, end) for end in (-sp.oo, sp.oo))
    grid = np.linspace(-8.0, 8.0, 16001)
    values = sp.lambdify(x, first, "numpy")(grid)
    top = int(np.argmax(values))
    return (
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
    )


def _sigmoid_scalar_probes(slope: sp.Expr) -> list[Probe]:
    """:math:`\\mathbb{E}[\\sigma'(x)]` and :math:`\\mathbb{E}[\\sigma'(x)^2]` by quadrature."""
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
    return probes


def _sigmoid_summary(found: dict[str, Derivation]) -> str:
    """The claim's summary, from its derivations by name."""
    _, x0 = _sigmoid_critical_point()
    edge = float(found["value at the edge of the D2L plot"].result)
    return (
        rf"${sp.latex(sp.Derivative(sigma(x), x))} = "
        rf"{sp.latex(found['first derivative'].result)}$ has "
        rf"one critical point, $x = {sp.latex(x0)}$, where it takes its maximum "
        rf"${sp.latex(found['maximum'].result)}$; a product of $d - t$ such factors is at most "
        rf"${sp.latex(found['product bound'].result)}$. In a deep sigmoid network with Xavier "
        r"weights the gradient's second moment shrinks by the factor "
        rf"$n_t\gamma_t\,\mathbb{{E}}[\sigma'(z^t)^2] \le "
        rf"{sp.latex(found['per-layer gradient factor bound'].result)}$ "
        "per layer. Away from 0 it falls like $e^{-|x|}$ (at the edge $x = 8$ of the "
        rf"D2L plot it is ${_scientific(edge)}$), and for a wide input "
        r"$x \sim N(0, q)$ its mean is at most $1/\sqrt{2\pi q}$."
    )


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
    definition = assumptions_named(DEFINITIONS, "sigmoid-definition")
    assumptions = (*definition, GAUSSIAN, XAVIER_ASSUMPTION)
    derivative = _sigma_derivative_chain("first derivative", 1, assumptions)
    curvature = _sigma_derivative_chain("second derivative", 2, assumptions)
    peaks = _sigmoid_peak_chains(derivative, assumptions)
    tails, tail_probes, tail_check = _sigmoid_tails(sp.diff(ACTIVATIONS["sigmoid"], x))
    found = by_name((derivative, curvature, *peaks, *tails))
    peak, slope = found["maximum"].result, derivative.result
    # sigmoid networks, Xavier weights: the gradient's second moment shrinks by
    # n*gamma*E[sigma'(z^t)^2] per layer; probed at the top layer, where the finite-width
    # factor is exact (see _sigmoid_backward_probes)
    probes = _sigmoid_scalar_probes(slope) + _sigmoid_backward_probes(slope) + tail_probes
    return Claim(
        id="sigmoid-derivative",
        lecture=("L2.4", "L2.5"),
        title="The sigmoid derivative is at most one quarter, so long products of it vanish",
        summary=_sigmoid_summary(found),
        assumptions=assumptions,
        derivations=tuple(found.values()),
        conditions=(
            sp.Le(sp.Derivative(sigma(x), x), peak),
            sp.Le(
                sp.Product(sp.Subs(sp.Derivative(sigma(x), x), x, zi[i]), (i, t + 1, d)),
                found["product bound"].result,
            ),
        ),
        confirmations=(*_sigmoid_maximum_checks(peak), tail_check),
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


def _mlp_scenario(
    activation_name: str, depth: int, g_value: sp.Expr, upstream: dict | None = None
) -> dict:
    """A network of ``depth`` layers of width :data:`WIDTH` with :math:`N(0, \\gamma)`
    weights and :math:`N(0, s^2)` inputs (:func:`._building.mlp_scenario`)."""
    return mlp_scenario(
        [WIDTH] * (depth + 1),
        _normal(sp.sqrt(g_value)),
        activation=activation_name,
        input_std=INPUT_STD,
        upstream=upstream,
    )


def _finite_width_probe(
    label: str,
    scenario: dict,
    observable: dict,
    expression: sp.Expr,
    values: dict,
    infinite: float,
    what: str,
) -> Probe:
    """A probe predicted by the layer-variance chain, its note comparing the infinite-width
    value ``infinite``."""
    probe = Probe.derived(
        label,
        scenario,
        observable,
        expression,
        values,
        method="finite-width chain",
        evaluator=evaluate_finite_width,
    )
    return replace(
        probe,
        note=_finite_width_note(probe.predicted, infinite, probe.bias_bound, what),
    )


def _top_layer_factor(slope: sp.Expr) -> sp.Expr:
    """:math:`n_t(\\operatorname{Var}[e]A(Q) + c^2B(Q))`, averaged over the entries ``j``
    (see :func:`_sigmoid_backward_probes`)."""
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
    return sp.collect(sp.expand(n_t * averaged), [a_s, b_s]).subs({a_s: a_q, b_s: b_q})


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
    factor = _top_layer_factor(slope)
    leading = _explicit(n_t * gamma * gaussian_integral(slope**2, x, Q))
    values = {n_t: WIDTH, n_prev: WIDTH, gamma: g_value, s2: INPUT_STD**2}
    m = _mean_field(ACTIVATIONS["sigmoid"], WIDTH, g_value, INPUT_STD**2, SIGMOID_DEPTH)
    return [
        _finite_width_probe(
            f"backward-factor-layer{depth}",
            _mlp_scenario("sigmoid", depth, g_value, upstream={"law": "normal", "std": 1.0}),
            {"direction": "backward", "moment": "m2", "layer": depth - 1, "relative_to": depth},
            # E[(g^t)^2] = 1, the upstream gradient's second moment: the factor itself
            LayerMean(factor, Q, depth, ACTIVATIONS["sigmoid"], x, n_prev, gamma, s2),
            values,
            evaluate(leading.subs({**values, Q: WIDTH * g_value * m[depth - 1]})),
            f"top layer of a {depth}-layer network, upstream gradient N(0, 1): exact "
            "factor averaged over the layer variance",
        )
        for depth in (1, SIGMOID_DEPTH)
    ]


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


def _one_sided(e: ActivationEntry, assumptions: tuple[Assumption, ...]) -> list[Derivation]:
    """Series on each side of 0, the one-sided derivatives and the value at 0.

    Their results are read by name with :func:`_one_sided_facts`.
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
    for direction in ("+", "-"):
        quotient = sp.Limit((e.display.subs(x, h) - e.display.subs(x, 0)) / h, h, 0, direction)
        chains.append(
            Chain(f"{e.name}: {direction} derivative at 0", quotient, assumptions=assumptions)
            .step(_explicit(quotient).doit(), "sympy.limit", "", uses=uses)
            .done()
        )
    at_zero = e.expression.subs(x, 0)
    start = e.display.subs(x, 0)  # relu(0); a form that evaluates at once stays a Subs
    chains.append(
        Chain(
            f"{e.name}: value at 0",
            sp.Subs(e.display, x, 0) if start == at_zero else start,
            assumptions=assumptions,
        )
        .step(at_zero, "evaluate", "", uses=uses)
        .done()
    )
    return chains


#: The results of :func:`_one_sided` that its check reads, in the check's order.
ONE_SIDED_FACTS = (
    "value at 0",
    "+ derivative at 0",
    "- derivative at 0",
    "series on x >= 0",
    "series on x < 0",
)


def _one_sided_facts(found: dict[str, Derivation], name: str) -> tuple[sp.Expr, ...]:
    """``(f(0), right derivative, left derivative, series on x >= 0, series on x < 0)``."""
    return tuple(found[f"{name}: {fact}"].result for fact in ONE_SIDED_FACTS)


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


def _near_zero_derivations(
    entries: tuple[ActivationEntry, ...],
    smooth: list[ActivationEntry],
    assumptions: tuple[Assumption, ...],
) -> dict[str, Derivation]:
    """Series at 0 of the smooth entries, one-sided facts of the others, then
    :math:`f(0)` and :math:`f'(0)` of the smooth ones, by name."""
    derivations = [_series_at_zero(e, assumptions) for e in smooth]
    for e in entries:
        if e not in smooth:
            derivations += _one_sided(e, assumptions)
    for e in smooth:
        derivations += _value_and_slope(e.name, assumptions)
    return by_name(tuple(derivations))


def _near_zero_checks(
    entries: tuple[ActivationEntry, ...],
    smooth: list[ActivationEntry],
    found: dict[str, Derivation],
) -> tuple[Check, ...]:
    """Identity to first order (smooth), one-sided derivatives (the others), rewrites."""
    checks = [
        _identity_check(
            activation(e.name),
            found[f"{e.name}: value at 0"].result,
            found[f"{e.name}: slope at 0"].result,
        )
        for e in smooth
    ]
    checks += [
        _one_sided_check(activation(e.name), *_one_sided_facts(found, e.name))
        for e in entries
        if e not in smooth
    ]
    checks += [
        check_algebraic(e.display, e.form, _subs("sigmoid-definition", "tanh-definition"))
        for e in smooth
        if e.simplify
    ]
    return tuple(checks)


def _near_zero_probes(entries: tuple[ActivationEntry, ...]) -> tuple[Probe, ...]:
    """:math:`\\mathbb{E}[f(x)^2]` at a small variance, the ``taylor`` family first."""
    return tuple(
        _scalar_probe(
            f"{e.name}-m2-q{float(NEAR_ZERO_Q)}",
            e.name,
            NEAR_ZERO_Q,
            gaussian_integral(e.display**2, x, q),
        )
        for e in sorted(entries, key=lambda e: "taylor" not in e.families)
    )


def _near_zero_summary(found: dict[str, Derivation]) -> str:
    """The claim's summary, from its derivations by name."""

    def tex(name: str) -> str:
        return sp.latex(found[name].result)

    return (
        rf"At $0$: ${sp.latex(sigma(x))} = {tex('sigmoid: series at 0')}$, "
        rf"$\tanh x = {tex('tanh: series at 0')}$ and "
        rf"${sp.latex(DISPLAY['scaled_sigmoid'])} = "
        rf"{sp.latex(activation('scaled_sigmoid').form)} = "
        rf"{tex('scaled_sigmoid: series at 0')}$. "
        r"The identity to first order needs $f(0) = 0$ and $f'(0) = 1$: tanh and "
        r"$4\sigma - 2$ meet both, $\sigma$ meets neither "
        rf"($\sigma(0) = {tex('sigmoid: value at 0')}$, "
        rf"$\sigma'(0) = {tex('sigmoid: slope at 0')}$). "
        rf"$\operatorname{{relu}}(0) = {tex('relu: value at 0')}$ but its one-sided "
        rf"derivatives are ${tex('relu: + derivative at 0')}$ (right) and "
        rf"${tex('relu: - derivative at 0')}$ (left): it is "
        r"the identity on $x \ge 0$ and zero on $x < 0$."
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
    found = _near_zero_derivations(entries, smooth, assumptions)
    f = sp.Function("f")
    return Claim(
        id="taylor-identity-near-zero",
        lecture=("L8.3", "L8.4"),
        title="Near zero tanh and the adjusted sigmoid are the identity, sigmoid is not",
        summary=_near_zero_summary(found),
        assumptions=assumptions,
        derivations=tuple(found.values()),
        conditions=(
            sp.Eq(f(0), 0),
            sp.Eq(sp.Subs(sp.Derivative(f(x), x), x, 0), 1),
            *(sp.Eq(e.display, e.form) for e in smooth if e.simplify),
        ),
        confirmations=_near_zero_checks(entries, smooth, found),
        probes=_near_zero_probes(entries),
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


def _first_order(series: sp.Expr) -> sp.Expr:
    """:math:`c_1` in :math:`\\mathbb{E}[f(x)^2]/q = 1 + c_1 q + O(q^2)`."""
    return sp.expand(series / q).removeO().coeff(q, 1)


def _first_order_bound(series: sp.Expr) -> sp.Expr:
    """The q at which the first-order ratio :math:`1 + c_1 q` reaches :math:`1 - \\varepsilon`."""
    (bound,) = sp.solve(sp.Eq(1 + _first_order(series) * q, 1 - EPS), q)
    return bound


def _expansion_chains(
    name: str, form: sp.Expr, assumptions: tuple[Assumption, ...]
) -> list[Derivation]:
    """The expansion of :math:`\\mathbb{E}[f(x)^2]`, the ratio to q and its first-order bound."""
    expansion = gaussian_square_series(ACTIVATIONS[name], x, q, EXPANSION_ORDER)
    expansion_chain = gaussian_square_expansion(
        f"{name}: expansion of E[f(x)^2]",
        form,
        expansion,
        assumptions,
        why=(
            "linearity of E; the Taylor remainder O(x^(2N)) of a bounded function adds O(q^N)",
            "E[x^(2k)] = q^k (2k-1)!! and odd moments vanish, computed by sympy.stats",
        ),
    )
    ratio = (
        Chain(
            f"{name}: variance ratio", gaussian_integral(form**2, x, q) / q, assumptions=assumptions
        )
        .step(
            sp.expand(expansion.value / q),
            "divide the expansion by q",
            "the expansion above, divided by q",
        )
        .done()
    )
    bound = (
        Chain(
            f"{name}: first-order bound",
            sp.Subs(1 + _first_order(expansion.value) * q, q, _first_order_bound(expansion.value)),
            assumptions=assumptions,
        )
        .step(
            1 - EPS,
            "evaluate at the root of 1 + c_1 q = 1 - epsilon (sympy.solve)",
            "the first-order ratio reaches 1 - epsilon at this q",
        )
        .done()
    )
    return [expansion_chain, ratio, bound]


def _range_derivations(assumptions: tuple[Assumption, ...]) -> dict[str, Derivation]:
    """The scaled sigmoid as tanh, then the expansions of the ``taylor`` family, by name."""
    # 4 sigma(x) - 2 = 2 tanh(x/2), proved here as in the L8.3/L8.4 claim; the scaled
    # sigmoid's expansion is then checked on the tanh form, because SymPy 1.14
    # mis-expands 1/(1 + exp(-sqrt(q) z)) in q (it drops the sqrt(q) term)
    as_tanh = sp.simplify(ACTIVATIONS["scaled_sigmoid"])
    derivations = [
        Chain("scaled_sigmoid: as tanh", DISPLAY["scaled_sigmoid"], assumptions=assumptions)
        .step(as_tanh, "sympy.simplify", "", uses=("sigmoid-definition", "tanh-definition"))
        .done()
    ]
    for e in family("taylor"):
        derivations += _expansion_chains(e.name, e.form, assumptions)
    return by_name(tuple(derivations))


def _expansion(found: dict[str, Derivation], name: str) -> sp.Expr:
    """The small-variance expansion of :math:`\\mathbb{E}[f(x)^2]`, by name."""
    return found[f"{name}: expansion of E[f(x)^2]"].result


def _range_checks(
    bounds: dict[str, dict[str, float]], found: dict[str, Derivation]
) -> tuple[Check, ...]:
    """The enclosures of the bounds, and the residual scaling of two expansions."""
    checks = [
        _enclosure_check(name, eps, bounds[name][f"{float(eps):.0%}"])
        for name in names("taylor")
        for eps in TOLERANCES
    ]
    checks.append(_residual_scaling("tanh", _expansion(found, "tanh"), 0.01))
    checks.append(_residual_scaling("scaled_sigmoid", _expansion(found, "scaled_sigmoid"), 0.04))
    return tuple(checks)


def _range_conditions(
    bounds: dict[str, dict[str, float]], found: dict[str, Derivation]
) -> tuple[sp.Basic, ...]:
    """The bounds as equations of named symbols, with the first-order ones."""
    conditions = []
    for name in names("taylor"):
        label = name.replace("_", " ")
        for eps in TOLERANCES:
            symbol = sp.Symbol(rf"q_{{\text{{{label}}}, {int(eps * 100)}\%}}")
            conditions.append(sp.Eq(symbol, sp.Float(bounds[name][f"{float(eps):.0%}"], 4)))
        first = sp.Symbol(rf"q^{{(1)}}_{{\text{{{label}}}}}")
        conditions.append(sp.Eq(first, _first_order_bound(_expansion(found, name))))
    return tuple(conditions)


def _range_probes() -> list[Probe]:
    """Exact :math:`\\mathbb{E}[f(x)^2]` at small and not-small q; the lecture's "unchanged"."""
    probes = [
        _scalar_probe(
            f"{name}-m2-q{float(qv)}", name, qv, gaussian_integral(DISPLAY[name] ** 2, x, q)
        )
        for name, qs in (
            ("tanh", RANGE_QS),
            ("scaled_sigmoid", (sp.Rational(1, 10), sp.Integer(2))),
        )
        for qv in qs
    ]
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
    return probes + _tanh_network_probes()


def _range_qualification(bounds: dict[str, dict[str, float]]) -> str:
    """Where the lecture's "unchanged" holds, from the derived bounds."""
    tb, sb = bounds["tanh"], bounds["scaled_sigmoid"]
    return (
        rf"holds only for $q$ below {tb['1%']:.3g} (tanh keeps $\mathbb{{E}}[f(x)^2]/q$ "
        rf"within 1% of 1) or {tb['5%']:.3g} (within 5%); for $4\sigma - 2$ below "
        rf"{sb['1%']:.3g} and {sb['5%']:.3g}. The first term of the expansion predicts "
        rf"{tb['1% first order']:.3g} and {sb['1% first order']:.3g} for 1%."
    )


def _range_summary(bounds: dict[str, dict[str, float]], found: dict[str, Derivation]) -> str:
    """The claim's summary, from its expansions and bounds."""
    tb, sb = bounds["tanh"], bounds["scaled_sigmoid"]
    return (
        rf"For $x \sim N(0, q)$, $\mathbb{{E}}[\tanh(x)^2] = "
        rf"{sp.latex(_expansion(found, 'tanh'))}$ "
        rf"and $\mathbb{{E}}[(4\sigma(x) - 2)^2] = "
        rf"{sp.latex(_expansion(found, 'scaled_sigmoid'))}$, "
        r"so the variance passes through unchanged only while $q$ is small: the ratio "
        rf"$\mathbb{{E}}[f(x)^2]/q$ stays within 1% of 1 for $q < {tb['1%']:.3g}$ (tanh) "
        rf"and $q < {sb['1%']:.3g}$ ($4\sigma - 2$), within 5% for $q < {tb['5%']:.3g}$ "
        rf"and $q < {sb['5%']:.3g}$."
    )


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
    found = _range_derivations(assumptions)
    bounds = validity_bounds()
    return Claim(
        id="taylor-range-of-validity",
        lecture=("S4",),
        title="How small the variance must be for tanh to pass it through unchanged",
        summary=_range_summary(bounds, found),
        assumptions=assumptions,
        derivations=tuple(found.values()),
        conditions=_range_conditions(bounds, found),
        confirmations=_range_checks(bounds, found),
        probes=tuple(_range_probes()),
        qualification=_range_qualification(bounds),
    )


def _tanh_second_moment(layer: int) -> sp.Expr:
    """:math:`\\mathbb{E}[(h^t)^2]` of the tanh network: the input's variance at layer 0."""
    if layer == 0:
        return s2
    moment = gaussian_integral(sp.tanh(x) ** 2, x, q).subs(q, Q)
    return LayerMean(moment, Q, layer, ACTIVATIONS["tanh"], x, n_prev, gamma, s2)


def _forward_m2(layer: int, relative_to: int, of: str = "output") -> dict:
    """The observable: the ratio of a layer's second moment to another layer's."""
    return {
        "direction": "forward",
        "of": of,
        "moment": "m2",
        "layer": layer,
        "relative_to": relative_to,
    }


#: The lecture's reading of tanh in a network, a literal ratio 1.
TANH_UNCHANGED_NOTE = (
    "the lecture's 'tanh passes the variance through unchanged' (L8.3, L8.4), a literal ratio 1"
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
    scenario = _mlp_scenario("tanh", TANH_DEPTH, g_value)
    values = {n_prev: WIDTH, gamma: g_value, s2: INPUT_STD**2}
    probes = [
        _finite_width_probe(
            f"tanh-net-ratio-layer{layer}",
            scenario,
            _forward_m2(layer, layer - 1),
            _tanh_second_moment(layer) / _tanh_second_moment(layer - 1),
            values,
            m[layer] / m[layer - 1],
            "exact ratio of second moments, each averaged over the layer variance",
        )
        for layer in (1, TANH_DEPTH)
    ]
    unchanged = sp.Integer(1)
    probes.append(
        Probe(
            label="lecture-tanh-net-unchanged-layer1",
            scenario=scenario,
            observable=_forward_m2(1, 0),
            predicted=float(unchanged),
            expression=unchanged,
            expect="disagrees",
            source="lecture",
            note=TANH_UNCHANGED_NOTE,
        )
    )
    return probes


# --------------------------------------------------------------------------------------
# S2: relu halves the variance
# --------------------------------------------------------------------------------------


HE_ASSUMPTION = Assumption(
    "he-initialization",
    r"He initialization $\gamma_t = 2/n_{t-1}$",
)
#: The correction of the lecture's reading of relu as the identity.
RELU_CORRECTED = (
    r"relu is the identity only for $x \ge 0$; for $x \sim N(0, q)$, "
    r"$\mathbb{E}[\operatorname{relu}(x)^2] = q/2$, so with Xavier weights the "
    r"pre-activation variance halves at every layer (a factor $2^{-d}$ after $d$ "
    r"layers). He et al. (2015) fix it with $\gamma_t = 2/n_{t-1}$."
)
#: Why a relu network's per-layer ratio is exact at every width.
RELU_EXACT_NOTE = (
    "exact at every width: given the layer below, z is Gaussian and "
    "symmetric, so E[relu(z)^2] = E[z^2]/2"
)


def _relu_second_moment(assumptions: tuple[Assumption, ...]) -> Derivation:
    """:math:`\\mathbb{E}[\\operatorname{relu}(x)^2] = q/2` by ``sympy.integrate``."""
    moment = gaussian_moment(ACTIVATIONS["relu"] ** 2, x, q)
    z = gaussian_integral(x, x, q).limits[0][0]
    z_pos = sp.Symbol(str(z), positive=True)
    # on z > 0, relu(sqrt(q) z) = sqrt(q) z: the integrand of the positive half
    positive_half = (ACTIVATIONS["relu"] ** 2).subs(x, sp.sqrt(q) * z_pos).subs(z_pos, z)
    density = gaussian_integral(sp.Integer(1), x, q).function
    return (
        Chain("second moment", gaussian_integral(relu(x) ** 2, x, q), assumptions=assumptions)
        .step(
            sp.Integral(positive_half * density, (z, 0, sp.oo)),
            "relu vanishes for z < 0 and is the identity for z > 0",
            "relu(x) = max(0, x); both sides integrated by sympy.integrate in the check",
        )
        .step(moment.value, "sympy.integrate", "exact Gaussian integral")
        .done()
    )


def _relu_recursion(half: sp.Expr, assumptions: tuple[Assumption, ...]) -> Derivation:
    """He's recursion :math:`v_t = n_{t-1}\\gamma_t\\,\\mathbb{E}[\\operatorname{relu}^2]`."""
    return (
        Chain(
            "pre-activation recursion",
            n_prev * gamma * gaussian_integral(relu(x) ** 2, x, v_prev),
            assumptions=assumptions,
        )
        .step(
            n_prev * gamma * half * v_prev,
            "second moment of relu at variance v_{t-1}",
            "the second moment derived above, at q = v_{t-1}",
        )
        .done()
    )


def _he_gamma(factor: sp.Expr) -> sp.Expr:
    """The weight variance that makes the per-layer factor 1 (``sympy.solve``)."""
    (gamma_he,) = sp.solve(sp.Eq(factor, 1), gamma)
    return gamma_he


def _relu_factor_chains(
    factor: sp.Expr, assumptions: tuple[Assumption, ...]
) -> tuple[Derivation, Derivation]:
    """The per-layer factor under Xavier (1/2) and under He's weights (1)."""
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
    gamma_he = _he_gamma(factor)
    he_chain = (
        Chain("per-layer factor under He", factor.subs(gamma, gamma_he), assumptions=assumptions)
        .step(
            sp.simplify(factor.subs(gamma, gamma_he)),
            "simplify",
            "gamma_t from sympy.solve(factor = 1, gamma_t)",
        )
        .done()
    )
    return xavier, he_chain


def _relu_derivations(assumptions: tuple[Assumption, ...]) -> dict[str, Derivation]:
    """The second moment, the recursion and the two per-layer factors, by name."""
    second = _relu_second_moment(assumptions)
    recursion = _relu_recursion(sp.simplify(second.result / q), assumptions)
    factor = sp.simplify(recursion.result / v_prev)
    return by_name((second, recursion, *_relu_factor_chains(factor, assumptions)))


def _relu_network_probes(factor: sp.Expr, half: sp.Expr) -> list[Probe]:
    """Per-layer pre-activation ratios under Xavier and He weights, and the lecture's."""
    probes = []
    # the lecture's reading: relu(x) = x, so E[relu(x)^2] = E[x^2] = q, factor n*gamma
    for label, g_value in (("xavier", XAVIER_EQUAL), ("he", _he_gamma(factor))):
        g_num = g_value.subs(n_prev, WIDTH)
        scenario = _mlp_scenario("relu", RELU_DEPTH, g_num)
        observable = _forward_m2(RELU_DEPTH, RELU_DEPTH - 1, of="preactivation")
        values = {n_prev: WIDTH, gamma: g_num}
        probes.append(
            Probe.derived(
                f"{label}-preactivation-ratio",
                scenario,
                observable,
                factor,
                values,
                "agrees",
                note=RELU_EXACT_NOTE,
            )
        )
        if label == "xavier":
            probes.append(
                Probe.derived(
                    "lecture-xavier-preactivation-ratio",
                    scenario,
                    observable,
                    factor / half,
                    values,
                    "disagrees",
                    source="lecture",
                    note="the lecture's reading relu(x) = x, i.e. the factor n gamma",
                )
            )
    return probes


def _relu_summary(found: dict[str, Derivation], factor: sp.Expr) -> str:
    """The claim's summary, from its derivations by name."""
    return (
        rf"For $x \sim N(0, q)$, $\mathbb{{E}}[\operatorname{{relu}}(x)^2] = "
        rf"{sp.latex(found['second moment'].result)}$: relu zeroes the half of its input "
        r"below 0. Hence "
        rf"$\operatorname{{Var}}[z^t] = n_{{t-1}}\gamma_t\,"
        rf"\mathbb{{E}}[\operatorname{{relu}}(z^{{t-1}})^2] = {sp.latex(factor)}\,"
        rf"\operatorname{{Var}}[z^{{t-1}}]$: with Xavier weights (equal widths) the "
        rf"factor is ${sp.latex(found['per-layer factor under Xavier'].result)}$, so the "
        rf"pre-activation variance halves at every layer; $\gamma_t = "
        rf"{sp.latex(_he_gamma(factor))}$ makes it "
        rf"${sp.latex(found['per-layer factor under He'].result)}$."
    )


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
    definition = assumptions_named(DEFINITIONS, "relu-definition")
    assumptions = (*definition, GAUSSIAN, XAVIER_ASSUMPTION, HE_ASSUMPTION)
    found = _relu_derivations(assumptions)
    second = found["second moment"]
    factor = found["per-layer factor under Xavier"].start
    square = relu(x) ** 2
    probes = _relu_network_probes(factor, sp.simplify(second.result / q))
    probes.append(
        _scalar_probe("relu-m2-q1", "relu", sp.Integer(1), gaussian_integral(square, x, q))
    )
    probes.append(_scalar_probe("lecture-relu-m2-q1", "relu", sp.Integer(1), q, expect="disagrees"))
    return Claim(
        id="relu-halves-variance",
        lecture=("L8.3", "L8.4", "S2"),
        title="Relu halves the second moment, so Xavier halves the variance at every layer",
        summary=_relu_summary(found, factor),
        assumptions=assumptions,
        derivations=tuple(found.values()),
        conditions=(
            sp.Eq(gaussian_integral(square, x, q), second.result),
            sp.Eq(gamma, _he_gamma(factor)),
            sp.Eq(
                gaussian_integral(relu(x), x, q), gaussian_moment(ACTIVATIONS["relu"], x, q).value
            ),
        ),
        confirmations=(),
        probes=tuple(probes),
        corrected=RELU_CORRECTED,
    )


#: The claims of this module, in the lecture's order.
BUILDERS: tuple[Callable[[], Claim], ...] = (
    sigmoid_derivative,
    taylor_identity_near_zero,
    relu_halves_variance,
    taylor_range_of_validity,
)
