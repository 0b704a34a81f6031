r"""Gaussian moments of an activation: :math:`\mathbb{E}[f(x)]` for :math:`x \sim N(0, q)`.

Two tools, used by the activation claims and by anyone asking about an activation of
their own:

* :func:`gaussian_moment` gives :math:`\mathbb{E}[f(x)]` exactly with
  :func:`sympy.integrate` when the integrand has a closed form (polynomials,
  ``Max``/``Heaviside``/``Piecewise`` activations such as relu, ``exp`` of a
  quadratic), and by numeric quadrature (:func:`scipy.integrate.quad`, with its error
  bound) when the integral is not elementary (tanh, sigmoid) and ``q`` is a number.
  The result says which method was used.
* :func:`gaussian_series` gives the small-variance expansion of
  :math:`\mathbb{E}[g(x)]` by expanding ``g`` in a Taylor series at 0 and taking
  Gaussian moments term by term; :func:`gaussian_square_series` applies it to
  :math:`g = f^2`.

Both reject an integrand whose Gaussian moment diverges, with a message naming it.

Notes
-----
The moments are written in the standardized variable :math:`x = \sqrt{q}\,z`,
:math:`z \sim N(0, 1)`:

.. math::

    \mathbb{E}[f(x)] = \int_{-\infty}^{\infty} f(\sqrt{q}\,z)\,
        \frac{e^{-z^2/2}}{\sqrt{2\pi}}\,dz, \qquad
    \mathbb{E}[x^{k}] = \begin{cases} q^{k/2}\,(k-1)!! & k \text{ even} \\
        0 & k \text{ odd.} \end{cases}

The moments :math:`\mathbb{E}[x^k]` are computed by ``sympy.stats``, never typed in.
The small-variance expansion is asymptotic: for bounded ``g`` the Taylor remainder
of order :math:`x^{2N}` contributes :math:`O(q^N)` even where the Taylor series of
``g`` has a finite radius of convergence (tanh: :math:`\pi/2`).

References
----------
.. [1] B. Poole, S. Lahiri, M. Raghu, J. Sohl-Dickstein and S. Ganguli (2016),
   "Exponential expressivity in deep neural networks through transient chaos",
   NeurIPS: the variance map :math:`q \mapsto \sigma_w^2\,
   \mathbb{E}_z[\phi(\sqrt{q}\,z)^2]`.
.. [2] K. He, X. Zhang, S. Ren and J. Sun (2015), "Delving Deep into Rectifiers",
   ICCV, Sec. 2.2: :math:`\mathbb{E}[\mathrm{relu}(y)^2] = \operatorname{Var}[y]/2`.
.. [3] R. Piessens et al. (1983), QUADPACK (``scipy.integrate.quad``), the error
   bound reported with every numeric moment.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
import sympy as sp
from scipy import integrate
from sympy import stats

#: Relative tolerance asked of the quadrature.
QUAD_EPSREL = 1e-12

#: Functions of ``x`` that keep a Gaussian integral in closed form.
_PIECEWISE_HEADS = (sp.Max, sp.Min, sp.Abs, sp.Heaviside, sp.sign, sp.Piecewise)

_z = sp.Symbol("z", real=True)
_Q = sp.Dummy("q", positive=True)


@dataclass(frozen=True)
class GaussianMoment:
    """:math:`\\mathbb{E}[f(x)]` for :math:`x \\sim N(0, q)` and how it was obtained.

    Attributes
    ----------
    function : sympy.Expr
        The integrand ``f``.
    variable : sympy.Symbol
        Its argument ``x``.
    q : sympy.Expr
        The variance of ``x`` (a positive symbol or a positive number).
    integral : sympy.Integral
        The unevaluated definition, in the standardized variable ``z``.
    value : sympy.Expr
        The moment: exact SymPy expression, or a ``Float`` from quadrature.
    method : str
        ``"sympy.integrate"`` (exact) or ``"scipy.integrate.quad"`` (numeric).
    error : float
        Absolute error bound: 0 for exact values, QUADPACK's estimate otherwise.
    """

    function: sp.Expr
    variable: sp.Symbol
    q: sp.Expr
    integral: sp.Integral
    value: sp.Expr
    method: str
    error: float

    @property
    def exact(self) -> bool:
        """True when ``value`` is an exact SymPy result."""
        return self.method == "sympy.integrate"

    def __float__(self) -> float:
        return float(self.value)


@dataclass(frozen=True)
class GaussianSeries:
    """Small-variance expansion of :math:`\\mathbb{E}[g(x)]`, :math:`x \\sim N(0, q)`.

    Attributes
    ----------
    function : sympy.Expr
        The integrand ``g``.
    variable : sympy.Symbol
        Its argument ``x``.
    q : sympy.Symbol
        The variance symbol.
    order : int
        The expansion is exact up to :math:`O(q^{\\mathrm{order}})`.
    branches : tuple of (str, sympy.Expr)
        The Taylor polynomial of ``g`` used on each branch: ``("x", P)`` for a
        function smooth at 0, ``("x >= 0", P+)`` and ``("x < 0", P-)`` for a
        piecewise one.
    terms : sympy.Expr
        :math:`\\sum_k c_k\\,\\mathbb{E}[x^k]` (or its one-sided analogue) with the
        expectations unevaluated, plus the order term.
    moments : tuple of (sympy.Expr, sympy.Expr)
        Each expectation in ``terms`` and its value.
    value : sympy.Expr
        The expansion, a polynomial in ``q`` (or in :math:`\\sqrt{q}`) plus
        :math:`O(q^{\\mathrm{order}})`.
    """

    function: sp.Expr
    variable: sp.Symbol
    q: sp.Symbol
    order: int
    branches: tuple[tuple[str, sp.Expr], ...]
    terms: sp.Expr
    moments: tuple[tuple[sp.Expr, sp.Expr], ...]
    value: sp.Expr

    @property
    def polynomial(self) -> sp.Expr:
        """The expansion without its order term."""
        return self.value.removeO()


def standard_normal_density(z: sp.Symbol = _z) -> sp.Expr:
    """The density of :math:`N(0, 1)` at ``z``, from ``sympy.stats``."""
    return stats.density(stats.Normal(str(z), 0, 1))(z)


def gaussian_integral(f: sp.Expr, x: sp.Symbol, q: sp.Expr, z: sp.Symbol = _z) -> sp.Integral:
    """The unevaluated :math:`\\int f(\\sqrt{q} z)\\,\\varphi(z)\\,dz = \\mathbb{E}[f(x)]`."""
    return sp.Integral(
        sp.sympify(f).subs(x, sp.sqrt(q) * z) * standard_normal_density(z), (z, -sp.oo, sp.oo)
    )


def _validate(f: object, x: object, q: object) -> tuple[sp.Expr, sp.Symbol, sp.Expr]:
    if not isinstance(x, sp.Symbol):
        raise TypeError(f"`x` must be a sympy.Symbol; got x={x!r}.")
    try:
        f = sp.sympify(f)
        q = sp.sympify(q)
    except (sp.SympifyError, TypeError) as exc:
        raise TypeError(f"`f` and `q` must be SymPy expressions; got f={f!r}, q={q!r}.") from exc
    if not isinstance(f, sp.Expr):
        raise TypeError(f"`f` must be a SymPy expression; got f={f!r}.")
    if q.free_symbols:
        if q.is_positive is not True:
            raise ValueError(
                f"`q` must be positive; got q={q!r}, which SymPy cannot show to be > 0 "
                "(declare it with positive=True)."
            )
    elif not (q.is_real and q.is_positive):
        raise ValueError(f"`q` must be a variance, a positive real number; got q={q!r}.")
    if x in q.free_symbols:
        raise ValueError(f"`q` must not depend on the variable x={x}; got q={q!r}.")
    return f, x, q


def _check_convergence(f: sp.Expr, x: sp.Symbol, q: sp.Expr) -> None:
    """Raise ``ValueError`` unless :math:`\\int |f|\\,\\varphi_q` is finite (for all ``q``).

    Sufficient test: ``f`` is finite on the real line and
    :math:`x^2 f(x) e^{-x^2/(2q)} \\to 0` at both ends, so the tails are dominated by
    :math:`1/x^2`.
    """
    try:
        singular = sp.singularities(f, x, sp.S.Reals)
    except (NotImplementedError, ValueError, TypeError):
        singular = sp.S.EmptySet
    if singular != sp.S.EmptySet:
        raise ValueError(
            f"E[f(x)] for x ~ N(0, q) is not defined for f({x}) = {f}: it is singular at "
            f"{x} in {singular}, so its Gaussian moment may diverge."
        )
    tail = x**2 * f * sp.exp(-(x**2) / (2 * q))
    for end in (sp.oo, -sp.oo):
        try:
            limit = sp.limit(tail, x, end)
        except (NotImplementedError, ValueError) as exc:
            raise ValueError(
                f"E[f(x)] for x ~ N(0, q) diverges for some q > 0 with f({x}) = {f}: as "
                f"{x} -> {end}, whether f({x}) exp(-{x}**2/(2 q)) decays depends on q "
                f"({exc}). Pass a numeric q to test one variance."
            ) from exc
        if limit != 0:
            raise ValueError(
                f"E[f(x)] for x ~ N(0, q={q}) diverges with f({x}) = {f}: it grows too fast "
                f"for the Gaussian weight as {x} -> {end} (the limit of "
                f"{x}**2 f({x}) exp(-{x}**2/(2 q)) is {limit}, not 0)."
            )


def _closed_form_candidate(f: sp.Expr, x: sp.Symbol) -> bool:
    """Whether ``f`` is built from pieces whose Gaussian integrals are elementary.

    Polynomials, ``exp``/``sin``/``cos`` of a polynomial of degree at most 2, and the
    piecewise heads (``Max``, ``Heaviside``, ``Abs``, ...) over such pieces. Anything
    else (``tanh``, ``1/(1 + exp(-x))``) goes to quadrature without a slow, futile
    symbolic attempt.
    """

    def ok(e: sp.Basic) -> bool:
        if not e.has(x):
            return True
        if e == x or isinstance(e, sp.Add | sp.Mul):
            return all(ok(a) for a in e.args)
        if isinstance(e, sp.Pow):
            base, expo = e.args
            if expo.has(x):
                return base == sp.E and _low_degree(expo, x)
            return bool(expo.is_integer and expo.is_nonnegative) and ok(base)
        if isinstance(e, sp.exp | sp.sin | sp.cos):
            return _low_degree(e.args[0], x)
        if isinstance(e, sp.Piecewise):
            return all(ok(piece) for piece, _ in e.args)
        if isinstance(e, _PIECEWISE_HEADS):
            return all(ok(a) for a in e.args)
        return False

    return ok(f)


def _low_degree(e: sp.Expr, x: sp.Symbol) -> bool:
    return bool(e.is_polynomial(x)) and sp.degree(e, x) <= 2


@lru_cache(maxsize=256)
def _exact(f: sp.Expr, x: sp.Symbol) -> sp.Expr | None:
    """:math:`\\mathbb{E}[f(x)]` as a function of the positive dummy ``_Q``, or ``None``."""
    density = stats.density(stats.Normal(str(x), 0, sp.sqrt(_Q)))(x)
    # Max/Min as Heaviside steps: SymPy integrates these much faster than Piecewise
    integrand = f.rewrite(sp.Heaviside) if f.has(sp.Max, sp.Min) else f
    result = sp.integrate(integrand * density, (x, -sp.oo, sp.oo), conds="none")
    if result.has(sp.Integral) or result.has(sp.nan) or result.has(sp.zoo):
        return None
    return sp.simplify(result)


def _quad_real_line(
    func: Callable[..., float],
    precise: Callable[..., object],
    what: str,
    args: tuple[float, ...] = (),
) -> tuple[float, float]:
    """QUADPACK on both half lines; ``precise`` (mpmath) where floats overflow."""

    def f(t: float, *args: float) -> float:
        with np.errstate(all="ignore"):
            value = float(func(t, *args))
        return value if math.isfinite(value) else float(precise(t, *args))

    value, error = 0.0, 0.0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", integrate.IntegrationWarning)
        for lo, hi in ((-np.inf, 0.0), (0.0, np.inf)):
            v, e = integrate.quad(f, lo, hi, args=args, epsabs=0.0, epsrel=QUAD_EPSREL, limit=200)
            value, error = value + v, error + e
    if not (math.isfinite(value) and math.isfinite(error)):
        raise ValueError(f"quadrature for {what} is not finite.")
    if caught and error > max(1e-9 * abs(value), 1e-15):
        raise ValueError(
            f"quadrature for {what} did not converge: error bound {error:.3g} "
            f"({caught[0].message})."
        )
    return value, error


def integrate_real_line(integrand: sp.Expr, z: sp.Symbol) -> tuple[float, float]:
    """QUADPACK over the real line, split at 0; value and absolute error bound.

    Where float arithmetic overflows in the far tails (``exp(-x)`` inside a sigmoid
    derivative, say) the same expression is evaluated in arbitrary precision.

    Raises
    ------
    ValueError
        If the result is not finite or the quadrature did not converge.
    """
    func = sp.lambdify(z, integrand, modules=["scipy", "numpy"])
    precise = sp.lambdify(z, integrand, modules="mpmath")
    return _quad_real_line(func, precise, f"the integral of {integrand} over {z}")


@lru_cache(maxsize=256)
def moment_function(f: sp.Expr, x: sp.Symbol) -> Callable[[float], tuple[float, float]]:
    """The map :math:`q \\mapsto \\mathbb{E}[f(x)]`, :math:`x \\sim N(0, q)`, by quadrature.

    ``f`` is compiled once (:func:`sympy.lambdify`), so iterating a variance map
    over many layers costs one quadrature per layer. Returns ``(value, error)``.
    """
    var = sp.Dummy("q", positive=True)
    integrand = gaussian_integral(f, x, var).function
    func = sp.lambdify((_z, var), integrand, modules=["scipy", "numpy"])
    precise = sp.lambdify((_z, var), integrand, modules="mpmath")

    def moment(q: float) -> tuple[float, float]:
        if not (math.isfinite(q) and q > 0):
            raise ValueError(f"`q` must be a finite positive variance; got q={q!r}.")
        return _quad_real_line(func, precise, f"E[f(x)] with f({x}) = {f} at q={q}", (q,))

    return moment


def evaluate(expr: sp.Expr) -> float:
    """Numeric value of ``expr``, with every integral over the real line done by quadrature.

    Used to turn a claim's symbolic prediction, after substituting a scenario's
    numbers, into the probe's predicted value.
    """

    def numeric(integral: sp.Integral) -> sp.Float:
        ((z, lo, hi),) = integral.limits
        if (lo, hi) != (-sp.oo, sp.oo):
            raise ValueError(f"only integrals over the real line are evaluated; got {integral}.")
        return sp.Float(integrate_real_line(integral.function, z)[0], 17)

    value = sp.sympify(expr).replace(lambda e: isinstance(e, sp.Integral), numeric)
    if value.free_symbols:
        raise ValueError(
            f"cannot evaluate {expr}: free symbols {sorted(map(str, value.free_symbols))}."
        )
    return float(value)


def gaussian_moment(
    f: sp.Expr,
    x: sp.Symbol,
    q: sp.Expr | float,
    *,
    method: Literal["auto", "exact", "numeric"] = "auto",
) -> GaussianMoment:
    """:math:`\\mathbb{E}[f(x)]` for :math:`x \\sim N(0, q)`, exact or by quadrature.

    Parameters
    ----------
    f : sympy.Expr
        The integrand, e.g. ``Max(0, x)**2`` or ``tanh(x)**2``.
    x : sympy.Symbol
        Its variable.
    q : sympy.Expr or float
        The variance: a positive symbol (exact result only) or a positive number.
    method : {"auto", "exact", "numeric"}
        ``"auto"`` integrates exactly when the integrand is built from pieces with
        elementary Gaussian integrals and otherwise uses quadrature; ``"exact"``
        always tries :func:`sympy.integrate` first; ``"numeric"`` always uses
        quadrature (numeric ``q`` only).

    Returns
    -------
    GaussianMoment
        The value, the method used and its error bound.

    Raises
    ------
    ValueError
        If the moment diverges (e.g. ``exp(x**2)``, for which
        :math:`\\mathbb{E}[e^{x^2}] = \\infty` once :math:`q \\ge 1/2`), if ``q`` is not
        positive, or if ``q`` is symbolic and SymPy finds no closed form.

    Examples
    --------
    >>> import sympy as sp
    >>> x = sp.Symbol("x", real=True)
    >>> q = sp.Symbol("q", positive=True)
    >>> gaussian_moment(sp.Max(0, x) ** 2, x, q).value
    q/2
    >>> m = gaussian_moment(sp.tanh(x) ** 2, x, 1)
    >>> m.method, round(float(m), 6)
    ('scipy.integrate.quad', 0.394294)
    """
    f, x, q = _validate(f, x, q)
    if method not in ("auto", "exact", "numeric"):
        raise ValueError(
            f"`method` must be one of ['auto', 'exact', 'numeric']; got method={method!r}."
        )
    _check_convergence(f, x, q)
    integral = gaussian_integral(f, x, q)
    extra = f.free_symbols - {x}
    try_exact = method == "exact" or (method == "auto" and _closed_form_candidate(f, x))
    if try_exact:
        general = _exact(f, x)
        if general is not None:
            value = sp.simplify(general.subs(_Q, q))
            return GaussianMoment(f, x, q, integral, value, "sympy.integrate", 0.0)
    if q.free_symbols or extra:
        raise ValueError(
            f"SymPy finds no closed form for E[f(x)] with f({x}) = {f}; give numeric values "
            f"(q={q!r}, other symbols {sorted(map(str, extra))}) for quadrature."
        )
    value, error = moment_function(f, x)(float(q))
    return GaussianMoment(f, x, q, integral, sp.Float(value, 17), "scipy.integrate.quad", error)


def _branches(g: sp.Expr, x: sp.Symbol) -> tuple[tuple[str, sp.Expr, sp.Symbol, int], ...]:
    """``(label, g on the branch, branch variable, side)``; side 0 = whole line."""
    if not g.has(*_PIECEWISE_HEADS):
        return (("x", g, x, 0),)
    pos, neg = sp.Symbol("x_+", positive=True), sp.Symbol("x_-", negative=True)
    out = []
    for label, var, side in (("x >= 0", pos, 1), ("x < 0", neg, -1)):
        piece = sp.piecewise_fold(g.subs(x, var))
        if piece.has(*_PIECEWISE_HEADS):
            raise ValueError(
                f"the small-q series needs g({x}) = {g} smooth on each side of 0; on "
                f"{label} it is still {piece}."
            )
        out.append((label, piece, var, side))
    return tuple(out)


@lru_cache(maxsize=512)
def _moment(k: int, side: int, q: sp.Symbol) -> tuple[sp.Expr, sp.Expr]:
    """``(unevaluated, value)`` of :math:`\\mathbb{E}[x^k]` or :math:`\\mathbb{E}[x^k 1_{side}]`."""
    xs = stats.Normal("x", 0, sp.sqrt(q))
    if side == 0:
        term = stats.Expectation(xs**k)
        return term, sp.simplify(stats.E(xs**k))
    indicator = sp.Heaviside(side * xs)
    term = stats.Expectation(xs**k * indicator)
    v = sp.Symbol("v", real=True)
    density = stats.density(xs)(v)
    limits = (v, 0, sp.oo) if side > 0 else (v, -sp.oo, 0)
    return term, sp.simplify(sp.integrate(v**k * density, limits))


@lru_cache(maxsize=128)
def gaussian_series(g: sp.Expr, x: sp.Symbol, q: sp.Symbol, order: int) -> GaussianSeries:
    """Small-variance expansion of :math:`\\mathbb{E}[g(x)]`, :math:`x \\sim N(0, q)`.

    ``g`` is expanded at 0 to :math:`x^{2\\,\\mathrm{order} - 1}` with
    :func:`sympy.series` and each power is replaced by its Gaussian moment from
    ``sympy.stats``; the remainder :math:`O(x^{2\\,\\mathrm{order}})` gives
    :math:`O(q^{\\mathrm{order}})`. A function with a kink at 0 (relu) is expanded on
    each side, with one-sided moments :math:`\\mathbb{E}[x^k 1_{x>0}]`.

    Parameters
    ----------
    g : sympy.Expr
        The integrand.
    x : sympy.Symbol
        Its variable.
    q : sympy.Symbol
        A positive symbol for the variance.
    order : int
        Number of powers of ``q`` kept (at least 1).

    Raises
    ------
    ValueError
        If the moment diverges for some :math:`q > 0`, if ``q`` is not a positive
        symbol, or if ``g`` is not smooth on each side of 0.

    Examples
    --------
    >>> import sympy as sp
    >>> x = sp.Symbol("x", real=True)
    >>> q = sp.Symbol("q", positive=True)
    >>> gaussian_series(sp.tanh(x) ** 2, x, q, 3).value
    q - 2*q**2 + O(q**3)
    """
    g, x, q = _validate(g, x, q)
    if not (isinstance(q, sp.Symbol) and q.is_positive):
        raise ValueError(f"`q` must be a positive sympy.Symbol; got q={q!r}.")
    if not (isinstance(order, int) and order >= 1):
        raise ValueError(f"`order` must be an integer >= 1; got order={order!r}.")
    _check_convergence(g, x, q)
    branches, terms, values, moments = [], [], [], []
    for label, piece, var, side in _branches(g, x):
        direction = "-" if side < 0 else "+"
        taylor = sp.series(piece, var, 0, 2 * order, dir=direction).removeO()
        taylor = sp.expand(taylor.subs(var, x))
        if not taylor.is_polynomial(x):
            raise ValueError(f"g({x}) = {g} has no Taylor series at 0 on {label}: got {taylor}.")
        branches.append((label, taylor))
        for (k,), c in sp.Poly(taylor, x).terms():
            term, value = _moment(k, side, q)
            terms.append(c * term)
            values.append(c * value)
            moments.append((term, value))
    big_o = sp.O(q**order)
    value = sp.expand(sp.Add(*values)) + big_o
    return GaussianSeries(
        g, x, q, order, tuple(branches), sp.Add(*terms) + big_o, tuple(moments), value
    )


def gaussian_square_series(f: sp.Expr, x: sp.Symbol, q: sp.Symbol, order: int) -> GaussianSeries:
    """Small-variance expansion of :math:`\\mathbb{E}[f(x)^2]` (see :func:`gaussian_series`).

    Examples
    --------
    >>> import sympy as sp
    >>> x = sp.Symbol("x", real=True)
    >>> q = sp.Symbol("q", positive=True)
    >>> gaussian_square_series(sp.tanh(x), x, q, 4).value
    q - 2*q**2 + 17*q**3/3 + O(q**4)
    """
    return gaussian_series(sp.sympify(f) ** 2, x, q, order)


__all__ = [
    "GaussianMoment",
    "GaussianSeries",
    "evaluate",
    "gaussian_integral",
    "gaussian_moment",
    "gaussian_series",
    "gaussian_square_series",
    "integrate_real_line",
    "moment_function",
    "standard_normal_density",
]
