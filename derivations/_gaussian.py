r"""Gaussian moments of an activation: :math:`\mathbb{E}[f(x)]` for :math:`x \sim N(0, q)`.

Two tools, used by the activation claims and by anyone asking about an activation of
their own:

* :func:`gaussian_moment` gives :math:`\mathbb{E}[f(x)]` exactly with
  :func:`sympy.integrate` when the integrand has a closed form (polynomials,
  ``Max``/``Heaviside``/``Piecewise`` activations such as relu, ``exp`` of a
  quadratic), and by numeric quadrature (:func:`scipy.integrate.quad`, with its error
  estimate) when the integral is not elementary (tanh, sigmoid) and ``q`` is a number.
  The result says which method was used.
* :func:`gaussian_series` gives the small-variance expansion of
  :math:`\mathbb{E}[g(x)]` by expanding ``g`` in a Taylor series at 0 and taking
  Gaussian moments term by term; :func:`gaussian_square_series` applies it to
  :math:`g = f^2`.

Both reject an integrand whose Gaussian moment diverges, with a message naming it.

For expressions the project does not control (``initproof activation``, ``init``,
``claim``), :func:`checked_moment` adds what a user's input needs: every operation under
a time :class:`Budget` (and the command's :func:`deadline`), a convergence test of the
tails (:func:`growth`) and of every kink and pole (:func:`singularities`), and a value
that is exact (a closed form confirmed by quadrature), numeric (QUADPACK on panels cut
at every kink and narrow feature, against mpmath's tanh-sinh quadrature at 30 digits;
the stated error is an estimate both support, never a bound), ``undecided`` (they
disagree, or ran out of time) or ``divergent``.

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

import contextvars
import itertools
import math
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal, TypeVar

import mpmath
import numpy as np
import sympy as sp
from scipy import integrate, optimize
from sympy import stats

from ._budget import BudgetExceeded, time_budget
from ._symbols import z as _z

T = TypeVar("T")

#: Relative tolerance asked of the quadrature.
QUAD_EPSREL = 1e-12

#: Functions of ``x`` that keep a Gaussian integral in closed form.
_PIECEWISE_HEADS = (sp.Max, sp.Min, sp.Abs, sp.Heaviside, sp.sign, sp.Piecewise)

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
        0 for exact values, QUADPACK's absolute error estimate otherwise (an
        estimate, not a bound).
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
            f"quadrature for {what} did not converge: error estimate {error:.3g} "
            f"({caught[0].message})."
        )
    return value, error


def integrate_real_line(integrand: sp.Expr, z: sp.Symbol) -> tuple[float, float]:
    """QUADPACK over the real line, split at 0; value and absolute error estimate.

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
        The value, the method used and its error estimate.

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
    try_exact = method == "exact" or (method == "auto" and _closed_form_candidate(f, x))
    general = _exact(f, x) if try_exact else None
    if general is not None:
        value = sp.simplify(general.subs(_Q, q))
        return GaussianMoment(f, x, q, integral, value, "sympy.integrate", 0.0)
    return _quadrature_moment(f, x, q, integral)


def _quadrature_moment(
    f: sp.Expr, x: sp.Symbol, q: sp.Expr, integral: sp.Integral
) -> GaussianMoment:
    """The numeric branch of :func:`gaussian_moment`: QUADPACK at a numeric ``q``.

    Raises
    ------
    ValueError
        If ``q`` or ``f`` has free symbols other than ``x`` (no closed form was found).
    """
    extra = f.free_symbols - {x}
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


# =========================================================================== checked moments
#
# What follows is used for expressions the project does not control (``initproof
# activation``, ``init``, ``claim``): every symbolic operation runs under a time budget,
# every numeric value comes with an error statement that two independent methods
# support, and a moment that diverges is said to diverge.

#: Default seconds one symbolic or numeric operation may take (``--budget``).
OPERATION_SECONDS = 5.0
#: Half-width in x of the scan for narrow features and of the search for special points.
SCAN_HALF_WIDTH = 60.0
#: Spacing of the scan for narrow features (in x).
SCAN_SPACING = 1e-3
#: Most breakpoints kept (special points, features and scan clusters together).
MAX_BREAKPOINTS = 400
#: Digits of the second method (mpmath's tanh-sinh quadrature).
MPMATH_DPS = 30
#: Two methods agree when they differ by at most this, relative (plus an absolute floor).
AGREEMENT_RTOL = 1e-9
#: A numeric value whose stated error exceeds this fraction of it is not given as a value.
MAX_RELATIVE_ERROR = 1e-4

_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "initproof_deadline", default=None
)


class TimeLimitExceeded(Exception):
    """The whole command ran past its stated time limit (``--time-limit``)."""


@contextmanager
def deadline(seconds: float | None) -> Iterator[None]:
    """Every :class:`Budget` inside the block stops at ``seconds`` from now (``None``: never)."""
    token = _DEADLINE.set(None if seconds is None else time.monotonic() + float(seconds))
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def time_left() -> float:
    """Seconds before the current :func:`deadline` (``inf`` without one)."""
    end = _DEADLINE.get()
    return math.inf if end is None else end - time.monotonic()


@dataclass(frozen=True)
class Budget:
    """Seconds per operation; every operation also stops at the command's deadline.

    :meth:`attempt` runs one operation under :func:`~derivations._budget.time_budget`
    and turns a timeout or a failure into a reason (the caller labels the result
    undecided); past the deadline it raises :class:`TimeLimitExceeded`.
    """

    seconds: float = OPERATION_SECONDS

    def limit(self, what: str) -> float:
        left = time_left()
        if left <= 0.01:
            raise TimeLimitExceeded(f"the time limit ran out before {what}")
        return min(self.seconds, left)

    def attempt(self, what: str, fn: Callable[[], T]) -> tuple[bool, T | None, str]:
        """``(True, result, "")``, or ``(False, None, reason)`` on a timeout or a failure.

        An operation that returns only once its budget has run out is treated as timed
        out too: the alarm may have fired inside library code that caught it (SymPy has
        broad ``except`` clauses), leaving a result computed on a fallback path. After a
        timeout SymPy's cache is cleared, so that nothing computed on such a path is
        reused.
        """
        seconds = self.limit(what)
        start = time.monotonic()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with time_budget(seconds, what), np.errstate(all="ignore"):
                    result = fn()
        except BudgetExceeded:
            return self._expired(what, seconds)
        except (TimeLimitExceeded, MemoryError, KeyboardInterrupt, SystemExit):
            raise
        except RecursionError:
            return False, None, f"{what} failed: the expression is nested too deeply"
        except Exception as exc:  # any failure of SymPy, SciPy or mpmath on user input
            text = str(exc).splitlines()[0] if str(exc) else ""
            sep = ": " if text else ""
            return False, None, f"{what} failed ({type(exc).__name__}{sep}{text[:200]})"
        if time.monotonic() - start >= 0.98 * seconds:
            return self._expired(what, seconds)
        return True, result, ""

    @staticmethod
    def _expired(what: str, seconds: float) -> tuple[bool, None, str]:
        sp.core.cache.clear_cache()
        if time_left() <= 0.01:
            raise TimeLimitExceeded(f"the time limit ran out during {what}") from None
        return False, None, f"{what} ran past its budget of {seconds:.3g} s"


# --------------------------------------------------------------------------- structure


def _kink_arguments(g: sp.Expr, x: sp.Symbol) -> list[sp.Expr]:
    """Expressions whose zeros are where ``g`` may be non-smooth, singular or non-real."""
    out: list[sp.Expr] = []
    for e in sp.preorder_traversal(g):
        if not (isinstance(e, sp.Basic) and e.has(x)):
            continue
        if isinstance(e, sp.Max | sp.Min):
            out += [a - b for a, b in itertools.combinations(e.args, 2)]
        elif isinstance(e, sp.Abs | sp.sign | sp.Heaviside | sp.DiracDelta | sp.log):
            out.append(e.args[0])
        elif isinstance(e, sp.Piecewise):
            for _, cond in e.args:
                for rel in cond.atoms(sp.core.relational.Relational) if cond is not True else ():
                    out.append(rel.lhs - rel.rhs)
        elif isinstance(e, sp.Pow) and not (e.exp.is_integer and e.exp.is_nonnegative):
            out.append(e.base)
    return [a for a in dict.fromkeys(out) if isinstance(a, sp.Expr) and a.has(x)]


def _real_roots(a: sp.Expr, x: sp.Symbol, half: float) -> list[float]:
    """Real zeros of ``a`` in ``[-half, half]``: polynomial roots, else sign changes on a grid."""
    roots: list[float] = []
    if a.is_polynomial(x):
        coeffs = [complex(c) for c in sp.Poly(a, x).all_coeffs()]
        if len(coeffs) > 1:
            for r in np.roots(coeffs):
                if abs(r.imag) <= 1e-9 * (1 + abs(r.real)) and abs(r.real) <= half:
                    roots.append(float(r.real))
        return roots
    fn = sp.lambdify(x, a, modules=["scipy", "numpy"])
    grid = np.linspace(-half, half, 24001)
    with np.errstate(all="ignore"):
        v = np.broadcast_to(np.asarray(fn(grid), dtype=complex), grid.shape)
    real = np.where(np.abs(v.imag) <= 1e-12 * (1 + np.abs(v.real)), v.real, np.nan)
    zero = real == 0
    roots += list(grid[zero])
    s = np.sign(real)
    change = np.nonzero(s[:-1] * s[1:] < 0)[0]

    def h(t: float) -> float:
        with np.errstate(all="ignore"):
            return float(np.real(fn(np.float64(t))))

    for k in change[:MAX_BREAKPOINTS]:
        try:
            roots.append(float(optimize.brentq(h, grid[k], grid[k + 1], xtol=1e-15)))
        except (ValueError, RuntimeError):
            roots.append(float((grid[k] + grid[k + 1]) / 2))
    # a zero touched without a sign change: local minima of |a| that are (nearly) 0
    mag = np.abs(real)
    inner = np.nonzero((mag[1:-1] < mag[:-2]) & (mag[1:-1] < mag[2:]) & (mag[1:-1] < 1e-6))[0]
    roots += [float(grid[k + 1]) for k in inner[:50]]
    return roots


def special_points(g: sp.Expr, x: sp.Symbol, half: float = SCAN_HALF_WIDTH) -> tuple[float, ...]:
    """Where ``g`` may have a kink, a jump, a pole or a branch point, in ``[-half, half]``.

    The real zeros of the arguments of ``Max``, ``Min``, ``Abs``, ``sign``,
    ``Heaviside``, ``log``, of ``Piecewise`` conditions and of the bases of negative or
    fractional powers: by ``numpy.roots`` for a polynomial, else by sign changes on a
    grid of spacing 0.005 refined by ``brentq``.
    """
    points: list[float] = []
    for a in _kink_arguments(g, x):
        points += _real_roots(a, x, half)
    return _merge(points)


def _merge(points: list[float], tol: float = 1e-12) -> tuple[float, ...]:
    out: list[float] = []
    for p in sorted(p for p in points if math.isfinite(p)):
        if not out or p - out[-1] > tol * (1 + abs(p)):
            out.append(p)
    return tuple(out[:MAX_BREAKPOINTS])


def feature_points(g: sp.Expr, x: sp.Symbol, half: float = SCAN_HALF_WIDTH) -> tuple[float, ...]:
    """Breakpoints around narrow features that the structure of ``g`` shows.

    For every argument ``p`` of a function, and every base of a power, that is a
    polynomial in ``x``: at each real critical point and each real root ``c`` of
    ``p``, the width ``w`` over which ``p`` changes by 1 (``1/sqrt|p''|``, ``1/|p'|``)
    or by its own size (``sqrt|p/p''|``); breakpoints at ``c`` and ``c +- w, 4w, 16w,
    64w``. ``exp(-10**6*(x - 2)**2)`` gives ``w = 10**-3`` around ``x = 2``.
    """
    polys: list[sp.Expr] = []
    for e in sp.preorder_traversal(g):
        if isinstance(e, sp.Function | sp.Pow) and e.has(x):
            if isinstance(e, sp.Piecewise):
                args = tuple(p for p, _ in e.args)
            elif isinstance(e, sp.Pow):
                args = (e.base, e.exp) if e.exp.has(x) else (e.base,)
            else:
                args = e.args
            polys += [a for a in args if isinstance(a, sp.Expr) and a.has(x) and a.is_polynomial(x)]
    points: list[float] = []
    for p in dict.fromkeys(polys):
        poly = sp.Poly(p, x)
        if poly.degree() < 1 or poly.degree() > 64:
            continue
        d1, d2 = poly.diff(x), poly.diff(x).diff(x)
        centers = [*_real_roots(d1.as_expr(), x, half), *_real_roots(p, x, half)]
        for c in centers[:MAX_BREAKPOINTS]:
            v0, v1, v2 = (abs(float(P.eval(c))) for P in (poly, d1, d2))
            widths = [1 / v1 if v1 > 0 else math.inf]
            if v2 > 0:
                widths += [1 / math.sqrt(v2), math.sqrt(v0 / v2) if v0 > 0 else math.inf]
            w = min(widths)
            if not math.isfinite(w) or w <= 0:
                continue
            points.append(c)
            for k in (1, 4, 16, 64):
                points += [c - k * w, c + k * w]
    return _merge([p for p in points if abs(p) <= half])


def scan_points(g: sp.Expr, x: sp.Symbol, half: float = SCAN_HALF_WIDTH) -> tuple[float, ...]:
    """Breakpoints where a scan of ``g`` on a grid of spacing :data:`SCAN_SPACING` sees a
    feature it does not resolve: a second difference above a tenth of the neighbours' size.

    A feature narrower than the grid, in a part of ``g`` that is not a polynomial in
    ``x`` (which :func:`feature_points` covers), can still be missed; that is the limit
    of any scan.
    """
    fn = sp.lambdify(x, g, modules=["scipy", "numpy"])
    grid = np.arange(-half, half + SCAN_SPACING / 2, SCAN_SPACING)
    with np.errstate(all="ignore"):
        y = np.broadcast_to(np.asarray(fn(grid), dtype=float), grid.shape)
    y = np.where(np.isfinite(y), y, 0.0)
    with np.errstate(all="ignore"):
        second = np.abs(y[2:] - 2 * y[1:-1] + y[:-2])
        size = np.abs(y[2:]) + np.abs(y[1:-1]) + np.abs(y[:-2])
    flagged = np.nonzero(second > 0.1 * size + 1e-300)[0] + 1
    if flagged.size == 0:
        return ()
    # clusters of neighbouring flags: breakpoints at each cluster's ends and centre
    splits = np.nonzero(np.diff(flagged) > 3)[0] + 1
    points: list[float] = []
    for cluster in np.split(flagged, splits)[: MAX_BREAKPOINTS // 4]:
        lo, hi = grid[cluster[0]] - SCAN_SPACING, grid[cluster[-1]] + SCAN_SPACING
        points += [float(lo), float((lo + hi) / 2), float(hi)]
    return _merge(points)


@lru_cache(maxsize=256)
def breakpoints(g: sp.Expr, x: sp.Symbol) -> tuple[float, ...]:
    """Special points, structural features and scan clusters of ``g`` (in ``x``), merged."""
    return _merge([*special_points(g, x), *feature_points(g, x), *scan_points(g, x)])


# --------------------------------------------------------------------------- growth


@dataclass(frozen=True)
class Growth:
    """How fast ``|g(x)|`` may grow as :math:`|x| \\to \\infty`, and what that means.

    ``q_max`` is the variance below which :math:`\\mathbb{E}[g(x)]`,
    :math:`x \\sim N(0, q)`, is finite (``inf``: every ``q``); ``diverges_at_q_max``
    says whether it is known to diverge from there on (Gaussian growth
    :math:`e^{c x^2}` seen consistently, :math:`q_{\\max} = 1/(2c)`), or only that
    convergence was not shown beyond it. ``how`` says how this was established.
    """

    q_max: float
    diverges_at_q_max: bool
    how: str
    rate: float | None = None

    def converges(self, q: float) -> bool:
        return q < self.q_max


#: Functions of anything that stay bounded on the real line.
_BOUNDED_HEADS = (sp.tanh, sp.erf, sp.erfc, sp.sin, sp.cos, sp.atan, sp.sign, sp.Heaviside)


def _power_degree(e: sp.Expr, x: sp.Symbol) -> float | None:
    """:func:`_growth_degree` of ``e`` that does not fit a rule of its own, or ``None``.

    ``e**p``, ``p`` constant: ``p`` times the degree of the base for :math:`p \\ge 0`,
    0 for :math:`1/P` with ``P`` a non-constant polynomial; ``exp`` of something
    bounded: 0.
    """
    if isinstance(e, sp.Pow) and not e.exp.has(x):
        d = _growth_degree(e.base, x)
        if d is None:
            return None
        if e.exp.is_nonnegative:
            return d * float(e.exp)
        # 1/p with p a polynomial without real zeros beyond a bounded set
        if e.base.is_polynomial(x) and sp.degree(e.base, x) >= 1:
            return 0.0
        return None
    if isinstance(e, sp.exp):
        return 0.0 if _growth_degree(e.args[0], x) == 0.0 else None
    return None


def _growth_degree(e: sp.Expr, x: sp.Symbol) -> float | None:
    """An exponent ``d`` with :math:`|e| \\le C (1 + |x|)^d` for large ``|x|``, or ``None``.

    Structural and conservative: bounded functions (tanh, erf, sin, ...) of anything
    have degree 0, sums the largest and products the sum of their terms' degrees;
    ``None`` means "not shown".
    """
    if not e.has(x):
        return 0.0
    if e == x:
        return 1.0
    if isinstance(e, _BOUNDED_HEADS):
        return 0.0
    if isinstance(e, sp.Add | sp.Max | sp.Min | sp.Mul | sp.Piecewise):
        pieces = [p for p, _ in e.args] if isinstance(e, sp.Piecewise) else e.args
        parts = [_growth_degree(a, x) for a in pieces]
        if None in parts:
            return None
        return sum(parts) if isinstance(e, sp.Mul) else max(parts)
    if isinstance(e, sp.Abs):
        return _growth_degree(e.args[0], x)
    if isinstance(e, sp.log):
        inner = e.args[0]
        shown = _growth_rate(inner, x) is not None or _growth_degree(inner, x) is not None
        return 1.0 if shown else None
    return _power_degree(e, x)


def _growth_rate(e: sp.Expr, x: sp.Symbol) -> float | None:
    """Like :func:`_growth_degree`, allowing a factor :math:`e^{a|x|}`: 1.0 if it is
    needed, 0.0 if not, ``None`` if such a bound is not shown."""
    if _growth_degree(e, x) is not None:
        return 0.0
    if isinstance(e, sp.exp | sp.sinh | sp.cosh):
        d = _growth_degree(e.args[0], x)
        return 1.0 if d is not None and d <= 1 else None
    if isinstance(e, sp.Add | sp.Mul | sp.Max | sp.Min | sp.Piecewise):
        pieces = [p for p, _ in e.args] if isinstance(e, sp.Piecewise) else e.args
        parts = [_growth_rate(a, x) for a in pieces]
        return None if None in parts else 1.0
    if isinstance(e, sp.Abs):
        return _growth_rate(e.args[0], x)
    if isinstance(e, sp.log):
        return 0.0 if _growth_rate(e.args[0], x) is not None else None
    if isinstance(e, sp.Pow) and not e.exp.has(x) and e.exp.is_nonnegative:
        return _growth_rate(e.base, x)
    if isinstance(e, sp.Pow) and e.base == sp.E:
        return _growth_rate(sp.exp(e.exp), x)
    return None


def _subgaussian(e: sp.Expr, x: sp.Symbol) -> bool:
    """Whether ``|e|`` grows at most like :math:`e^{a|x|}` times a power (structurally).

    Bounded functions (tanh, erf, sin, ...) of anything, polynomials, and ``exp`` of
    something that grows at most linearly; products and sums of such
    (:func:`_growth_rate`). Conservative: ``False`` means "not shown".
    """
    return _growth_rate(e, x) is not None


def growth(g: sp.Expr, x: sp.Symbol) -> Growth:
    """Where :math:`\\mathbb{E}[g(x)]`, :math:`x \\sim N(0, q)`, is finite: for which ``q``.

    First the structure: a ``g`` that grows at most like :math:`e^{a|x|}`
    (:func:`_subgaussian`) has a finite moment at every ``q``. Otherwise a numeric tail
    test: :math:`c(R) = \\log|g(\\pm R)|/R^2` at :math:`R = 300` and :math:`3000` in
    60-digit arithmetic; equal rates :math:`c > 0` mean Gaussian growth, so the moment
    diverges for :math:`q \\ge 1/(2c)`; a rate that falls with ``R`` shows
    convergence only for :math:`q < 1/(2c(3000))` (a numeric estimate, said so).
    """
    if _subgaussian(g, x):
        return Growth(math.inf, False, "g grows at most like exp(a|x|) (by its structure)")
    fn = sp.lambdify(x, g, modules="mpmath")
    rates: dict[int, list[float]] = {1: [], -1: []}
    with mpmath.workdps(60):
        for side in (1, -1):
            for r in (300, 3000):
                v = fn(mpmath.mpf(side * r))
                if isinstance(v, mpmath.mpc):
                    if abs(v.imag) > 1e-30 * (1 + abs(v.real)):
                        raise ValueError(f"g({side * r}) is not real")
                    v = v.real
                v = abs(mpmath.mpf(v))
                rates[side].append(-math.inf if v == 0 else float(mpmath.log(v)) / r**2)
    worst = max(rates[1][1], rates[-1][1])
    if worst <= 1e-7:
        return Growth(
            math.inf, False, "tail test: log|g(x)|/x^2 <= 1e-7 at |x| = 3000 (numeric)", worst
        )
    gaussian = [
        s
        for s in (1, -1)
        if rates[s][1] > 1e-7 and abs(rates[s][0] - rates[s][1]) <= 1e-3 * rates[s][1]
    ]
    if gaussian:
        c = max(rates[s][1] for s in gaussian)
        return Growth(
            1 / (2 * c),
            True,
            f"g grows like exp({c:.6g} x^2): log|g(x)|/x^2 = {c:.6g} at |x| = 300 and 3000 "
            "(numeric tail test)",
            c,
        )
    return Growth(
        1 / (2 * worst),
        False,
        f"tail test: log|g(x)|/x^2 falls to {worst:.3g} at |x| = 3000, so the moment is "
        f"finite at least for q < {1 / (2 * worst):.4g} (numeric)",
        worst,
    )


# --------------------------------------------------------------------------- local singularities


@dataclass(frozen=True)
class Singularity:
    """The behaviour of ``g`` next to a special point ``at`` (numeric, 40 digits)."""

    at: float
    unbounded: bool
    exponent: float | None
    jump: float


def singularities(g: sp.Expr, x: sp.Symbol, points: tuple[float, ...]) -> tuple[Singularity, ...]:
    """Jumps and blow-ups of ``g`` at ``points``: values at :math:`r \\pm 10^{-4,-6,-8}`.

    ``unbounded``: :math:`|g|` grows as the distance shrinks, by more than half again
    from :math:`10^{-4}` to :math:`10^{-8}`; ``exponent``: the local power
    :math:`\\alpha` with :math:`|g| \\sim |x - r|^\\alpha` from the last two distances
    (the moment diverges when :math:`\\alpha \\le -1`); ``jump``: :math:`|g(r + h) -
    g(r - h)|` at :math:`h = 10^{-10}`.
    """
    fn = sp.lambdify(x, g, modules="mpmath")
    out = []
    with mpmath.workdps(40):

        def val(t: mpmath.mpf) -> mpmath.mpf | None:
            try:
                v = fn(t)
            except (ZeroDivisionError, ValueError, OverflowError):
                return None
            if isinstance(v, mpmath.mpc):
                if abs(v.imag) > 1e-25 * (1 + abs(v.real)):
                    return None
                v = v.real
            v = mpmath.mpf(v)
            return v if mpmath.isfinite(v) else None

        for r in points:
            c = mpmath.mpf(r)
            unbounded, exponent, jump = False, None, 0.0
            for side in (1, -1):
                vals = [val(c + side * mpmath.mpf(10) ** -k) for k in (4, 6, 8)]
                if any(v is None for v in vals):
                    unbounded = True
                    continue
                a = [abs(v) for v in vals]
                if a[2] > a[1] > a[0] and a[2] > 1.5 * a[0] + 1:
                    unbounded = True
                if a[1] > 0 and a[2] > 0:
                    e = float(mpmath.log(a[2] / a[1]) / mpmath.log(mpmath.mpf(10) ** -2))
                    exponent = e if exponent is None else min(exponent, e)
            h = mpmath.mpf(10) ** -10
            left, right = val(c - h), val(c + h)
            if left is not None and right is not None:
                jump = float(abs(right - left))
            out.append(Singularity(float(r), unbounded, exponent, jump))
    return tuple(out)


# --------------------------------------------------------------------------- two quadratures


def _standardized(g: sp.Expr, x: sp.Symbol, q: float) -> sp.Expr:
    return gaussian_integral(g, x, sp.Float(q, 30) if not isinstance(q, sp.Expr) else q).function


@lru_cache(maxsize=256)
def _compiled(g: sp.Expr, x: sp.Symbol) -> tuple[Callable, Callable]:
    """``g(sqrt(q) z) phi(z)`` for scalars in double precision, and in mpmath, of (z, q).

    The double-precision form uses Python's :mod:`math` (fast for scalars, and for
    ``Piecewise`` a hundred times faster than NumPy's ``select``) where it agrees with
    the NumPy form at three points, and falls back to NumPy (inf and nan instead of
    exceptions) wherever :mod:`math` raises.
    """
    var = sp.Dummy("q", positive=True)
    integrand = gaussian_integral(g, x, var).function
    vector = sp.lambdify((_z, var), integrand, modules=["scipy", "numpy"])
    precise = sp.lambdify((_z, var), integrand, modules="mpmath")

    def numpy_scalar(t: float, qq: float) -> float:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return float(np.real(vector(np.float64(t), np.float64(qq))))

    try:
        scalar = sp.lambdify((_z, var), integrand, modules=["math"])
        for t in (-1.3, 0.2, 2.1):
            a, b = scalar(t, 1.0), numpy_scalar(t, 1.0)
            if not (math.isfinite(b) and abs(a - b) <= 1e-12 * (1 + abs(b))):
                raise ValueError("math and NumPy forms differ")
    except Exception:  # any trouble with the math form: NumPy only
        return numpy_scalar, precise

    def fast(t: float, qq: float) -> float:
        try:
            return float(scalar(t, qq))
        except (OverflowError, ValueError, ZeroDivisionError, TypeError):
            return numpy_scalar(t, qq)

    return fast, precise


def _z_points(g: sp.Expr, x: sp.Symbol, q: float, base: bool) -> list[float]:
    s = math.sqrt(q)
    pts = {p / s for p in breakpoints(g, x)}
    if base:
        pts |= {0.0, *(k * v for v in (1, 3, 6, 10, 15, 25, 40) for k in (-1, 1))}
    return sorted(p for p in pts if abs(p) <= 40.0)


def quadpack_moment(g: sp.Expr, x: sp.Symbol, q: float) -> tuple[float, float]:
    """Method A (see :func:`_quadpack`): the value and QUADPACK's error estimate."""
    value, error, _ = _quadpack(g, x, q)
    return value, error


def _quadpack(g: sp.Expr, x: sp.Symbol, q: float) -> tuple[float, float, float]:
    """Method A: QUADPACK (``scipy.integrate.quad``) on every panel between breakpoints.

    The panels are cut at every special point and feature of ``g`` (scaled to ``z``),
    and at a fixed grid; the two tails are integrated to infinity. Returns the value,
    the sum of QUADPACK's error *estimates* (not a bound), and the integral of the
    integrand's absolute value over the panels (the scale of a value that cancels).

    Raises
    ------
    ValueError
        If a value is not finite or QUADPACK reports trouble with a large estimate.
    """
    fast, precise = _compiled(g, x)

    def h(t: float) -> float:
        try:
            v = fast(t, q)
        except (OverflowError, ZeroDivisionError, ValueError):
            v = math.nan
        if math.isfinite(v):
            return v
        with mpmath.workdps(20):
            w = precise(mpmath.mpf(t), mpmath.mpf(q))
        w = complex(w)
        if abs(w.imag) > 1e-12 * (1 + abs(w.real)):
            raise ValueError(f"the integrand is not real at z = {t:g}")
        return float(w.real)

    pts = _z_points(g, x, q, base=True)
    edges = [-math.inf, *pts, math.inf]
    panels = [(a, b) for a, b in itertools.pairwise(edges) if a < b]
    # central panels first, so that the outer ones are asked for an absolute accuracy
    # relative to what is already known of the whole
    panels.sort(key=lambda ab: min(abs(ab[0]), abs(ab[1])))
    total, err, absolute, trouble = 0.0, 0.0, 0.0, []
    for a, b in panels:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            floor = max(1e-16 * absolute, 1e-300)
            v, e = integrate.quad(h, a, b, epsabs=floor, epsrel=1e-12, limit=400)
        total, err, absolute = total + v, err + e, absolute + abs(v)
        if caught:
            trouble.append((a, b, e))
    if not (math.isfinite(total) and math.isfinite(err)):
        raise ValueError("QUADPACK's value is not finite (the moment may diverge or overflow)")
    troubled = sum(e for _, _, e in trouble)
    if trouble and troubled > max(1e-8 * abs(total), 1e-12 * absolute, 1e-300):
        a, b, e = max(trouble, key=lambda t: t[2])
        raise ValueError(
            f"QUADPACK did not converge on [{a:g}, {b:g}] (estimate {e:.2g}, total {total:.6g})"
        )
    return total, err, absolute


def mpmath_moment(g: sp.Expr, x: sp.Symbol, q: float) -> tuple[float, float]:
    """Method B: mpmath's tanh-sinh quadrature at :data:`MPMATH_DPS` digits.

    The integrand is compiled separately (mpmath arithmetic) and integrated over the
    same special points and features (not the fixed grid), to infinity. Returns the
    value and mpmath's error estimate.
    """
    _, precise = _compiled(g, x)
    with mpmath.workdps(MPMATH_DPS):
        qq = mpmath.mpf(q)

        def h(t: mpmath.mpf) -> mpmath.mpf:
            v = precise(t, qq)
            if isinstance(v, mpmath.mpc):
                if abs(v.imag) > mpmath.mpf(10) ** -20 * (1 + abs(v.real)):
                    raise ValueError(f"the integrand is not real at z = {float(t):g}")
                v = v.real
            return v

        pts = [mpmath.mpf(p) for p in _z_points(g, x, q, base=False)]
        if not pts or pts[0] > 0 or pts[-1] < 0:
            pts = sorted({*pts, mpmath.mpf(0)})
        edges = [mpmath.ninf, *pts, mpmath.inf]
        value, error = mpmath.quad(h, edges, error=True, maxdegree=8)
        value, error = float(value), float(error)
    if not (math.isfinite(value) and math.isfinite(error)):
        raise ValueError("mpmath's value is not finite (the moment may diverge or overflow)")
    return value, error


@dataclass(frozen=True)
class CheckedMoment:
    """:math:`\\mathbb{E}[g(x)]`, :math:`x \\sim N(0, q)`, exact, numeric, undecided or divergent.

    Attributes
    ----------
    integrand, q
        ``g`` and the variance.
    status : {"exact", "numeric", "undecided", "divergent"}
        ``exact``: a closed form from :func:`sympy.integrate` that agrees with
        quadrature; ``numeric``: two independent quadratures agree and ``error``
        states by how much they could be off; ``undecided``: no value can be
        stated (the methods disagree, or ran out of time), see ``reason``;
        ``divergent``: the moment is infinite, see ``reason``.
    value : sympy.Expr or None
        The closed form, a ``Float``, or ``None``.
    error : float
        0 for an exact value; for a numeric one the largest of :math:`|A - B|` and the
        two methods' own error estimates: an estimate supported by both, not a bound.
    method : str
        How the value was obtained, in words.
    estimates : tuple of (str, float, float)
        Each method's ``(name, value, its error estimate)``.
    agreement : float or None
        :math:`|A - B|`.
    reason : str
        Why it is undecided or divergent; notes otherwise.
    """

    integrand: sp.Expr
    q: float
    status: str
    value: sp.Expr | None
    error: float
    method: str
    estimates: tuple[tuple[str, float, float], ...] = ()
    agreement: float | None = None
    reason: str = ""

    @property
    def exact(self) -> bool:
        return self.status == "exact"

    @property
    def decided(self) -> bool:
        return self.status in ("exact", "numeric")

    def __float__(self) -> float:
        if self.value is None:
            raise ValueError(f"the moment is {self.status}: {self.reason}")
        return float(self.value)


METHOD_A = "QUADPACK (scipy.integrate.quad, double precision, panels cut at every kink and feature)"
METHOD_B = f"mpmath tanh-sinh quadrature ({MPMATH_DPS} digits, same kinks and features)"


def compare_methods(
    a: tuple[float, float] | None,
    b: tuple[float, float] | None,
    reasons: tuple[str, str],
    absolute: float = 0.0,
) -> tuple[str, float | None, float, float | None, str]:
    """``(status, value, error, agreement, reason)`` from methods A and B.

    Numeric when both ran and :math:`|A - B| \\le` :data:`AGREEMENT_RTOL`
    :math:`\\cdot |B|` (or both are below :math:`10^{-300}`, or within 10 times
    their own estimates); the stated error is the largest of :math:`|A-B|` and the
    two estimates, and a value whose error exceeds :data:`MAX_RELATIVE_ERROR` of it
    is undecided.
    """
    if a is None or b is None:
        why = "; ".join(r for r in reasons if r)
        return "undecided", None, math.inf, None, f"no second method to support a value: {why}"
    (va, ea), (vb, eb) = a, b
    diff = abs(va - vb)
    # the size of the integral of |integrand| (``absolute``) sets the scale of a value that
    # cancels to (nearly) 0, such as the mean of an odd function
    scale = max(abs(va), abs(vb), absolute)
    agree = diff <= max(AGREEMENT_RTOL * scale, 10 * (ea + eb), 1e-300)
    error = max(diff, ea, eb)
    if not agree:
        return (
            "undecided",
            None,
            math.inf,
            diff,
            f"the two methods disagree: QUADPACK gives {va:.12g} (estimate {ea:.2g}), mpmath "
            f"gives {vb:.12g} (estimate {eb:.2g})",
        )
    if error > MAX_RELATIVE_ERROR * scale and error > 1e-300:
        return (
            "undecided",
            None,
            math.inf,
            diff,
            f"the two methods agree only to {error:.2g} (values {va:.10g} and {vb:.10g})",
        )
    return "numeric", vb, error, diff, ""


def _undecided(g: sp.Expr, q: float, reason: str, method: str = "none") -> CheckedMoment:
    """No value can be stated for :math:`\\mathbb{E}[g(x)]`; ``reason`` says why."""
    return CheckedMoment(g, q, "undecided", None, math.inf, method, reason=reason)


def _divergent(g: sp.Expr, q: float, method: str, reason: str) -> CheckedMoment:
    """:math:`\\mathbb{E}[g(x)]` is infinite; ``method`` is the test that shows it."""
    return CheckedMoment(g, q, "divergent", None, math.inf, method, reason=reason)


def _tail_verdict(
    g: sp.Expr, x: sp.Symbol, q: float, budget: Budget, growth_of: Growth | None
) -> CheckedMoment | None:
    """Step 1a of :func:`checked_moment`: the tails (:func:`growth`) at variance ``q``.

    Returns
    -------
    CheckedMoment or None
        ``divergent`` when ``g`` is known to grow faster than :math:`e^{x^2/(2q)}`,
        ``undecided`` when the test failed or did not show convergence at ``q``, and
        ``None`` when the tails converge.
    """
    ok, grow, why = (
        (True, growth_of, "")
        if growth_of is not None
        else budget.attempt("the tail test", lambda: growth(g, x))
    )
    if not ok:
        return _undecided(g, q, why)
    if grow.converges(q):
        return None
    if grow.diverges_at_q_max:
        return _divergent(
            g,
            q,
            "tail test",
            f"{grow.how}, faster than exp(x^2/(2q)) at q = {q:g}: the moment is "
            f"infinite for q >= {grow.q_max:.6g}",
        )
    return _undecided(g, q, f"convergence not shown at q = {q:g}: {grow.how}", "tail test")


def _local_verdict(g: sp.Expr, x: sp.Symbol, q: float, budget: Budget) -> CheckedMoment | None:
    """Step 1b of :func:`checked_moment`: every kink and pole (:func:`singularities`).

    A power :math:`|x - r|^\\alpha` with :math:`\\alpha \\le -1` next to a special
    point ``r`` is not integrable. Returns ``divergent`` for such a point,
    ``undecided`` when the search or the test failed, and ``None`` otherwise.
    """
    ok, _points, why = budget.attempt("the search for kinks and poles", lambda: breakpoints(g, x))
    if not ok:
        return _undecided(g, q, why)
    ok, sing, why = budget.attempt(
        "the test of local singularities", lambda: singularities(g, x, special_points(g, x))
    )
    if not ok:
        return _undecided(g, q, why)
    for s in sing:
        if s.exponent is not None and s.unbounded and s.exponent <= -0.98:
            return _divergent(
                g,
                q,
                "local singularity",
                f"the integrand behaves like |x - r|^({s.exponent:.3g}) next to "
                f"r = {s.at:.10g}, which is not integrable (exponent <= -1; numeric, 40 digits)",
            )
    return None


def _closed_form_at(
    g: sp.Expr, x: sp.Symbol, q: float, budget: Budget
) -> tuple[sp.Expr, float] | None:
    """SymPy's closed form of :math:`\\mathbb{E}[g(x)]` at ``q`` and its numeric value.

    ``None`` when :func:`sympy.integrate` finds none or runs out of its budget; a
    ``simplify`` that runs out of its budget leaves the form unsimplified.
    """
    ok, closed, _ = budget.attempt("sympy.integrate", lambda: _exact(g, x))
    if not ok or closed is None:
        return None
    value = closed.subs(_Q, sp.Rational(q) if float(q).is_integer() else sp.Float(q, 30))
    ok, simpler, _ = budget.attempt("simplify", lambda: sp.simplify(value))
    value = simpler if ok else value
    try:
        numeric = float(sp.N(value, 20))
    except (TypeError, ValueError):
        numeric = math.nan
    return value, numeric


def _closed_form_verdict(
    g: sp.Expr, q: float, closed: tuple[sp.Expr, float], a: tuple[float, float]
) -> CheckedMoment:
    """Step 2 of :func:`checked_moment`: the closed form, kept only if QUADPACK agrees.

    ``closed`` is ``(form, its value)`` and ``a`` is QUADPACK's ``(value, estimate)``;
    they agree within :math:`10^{-9}` relative, ten estimates or :math:`10^{-14}`.
    """
    value, numeric = closed
    estimates = (("sympy.integrate", numeric, 0.0), ("QUADPACK", a[0], a[1]))
    gap = abs(numeric - a[0])
    if gap <= max(1e-9 * abs(numeric), 10 * a[1], 1e-14):
        return CheckedMoment(
            g,
            q,
            "exact",
            value,
            0.0,
            "sympy.integrate",
            estimates,
            gap,
            "closed form, cross-checked by QUADPACK",
        )
    return CheckedMoment(
        g,
        q,
        "undecided",
        None,
        math.inf,
        "sympy.integrate vs QUADPACK",
        estimates,
        gap,
        f"SymPy's closed form {sp.sstr(value)} = {numeric:.12g} disagrees with "
        f"QUADPACK's {a[0]:.12g}",
    )


def _quadrature_verdict(
    g: sp.Expr,
    q: float,
    a: tuple[float, float] | None,
    b: tuple[float, float] | None,
    reasons: tuple[str, str],
    absolute: float,
) -> CheckedMoment:
    """Step 3 of :func:`checked_moment`: method A against method B (:func:`compare_methods`).

    ``a`` and ``b`` are each method's ``(value, estimate)``, ``None`` for a method that
    failed (``reasons`` says why); ``absolute`` is the integral of :math:`|g\\varphi|`.
    """
    status, value, error, diff, reason = compare_methods(a, b, reasons, absolute)
    estimates = tuple(
        (name, r[0], r[1]) for name, r in (("QUADPACK", a), ("mpmath", b)) if r is not None
    )
    return CheckedMoment(
        g,
        q,
        status,
        None if value is None else sp.Float(value, 17),
        error,
        f"{METHOD_A}, against {METHOD_B}",
        estimates,
        diff,
        reason,
    )


def checked_moment(
    g: sp.Expr,
    x: sp.Symbol,
    q: float = 1.0,
    *,
    exact: bool = True,
    budget: Budget | None = None,
    growth_of: Growth | None = None,
) -> CheckedMoment:
    """:math:`\\mathbb{E}[g(x)]`, :math:`x \\sim N(0, q)`, with an honest error statement.

    1. Convergence: the tails (:func:`growth`) and the local behaviour at every special
       point (:func:`singularities`; a power :math:`|x - r|^\\alpha`,
       :math:`\\alpha \\le -1`, diverges). A divergent moment is ``divergent``.
    2. ``exact``: :func:`sympy.integrate` (for integrands with a closed-form Gaussian
       integral), kept only when it agrees with quadrature (method A).
    3. Otherwise method A (:func:`quadpack_moment`) against method B
       (:func:`mpmath_moment`); see :func:`compare_methods`.

    Every step runs under ``budget``; a step that runs out of time or fails leaves the
    value ``undecided`` with the reason.

    .. math::

        \\mathbb{E}[g(x)] = \\int_{-\\infty}^{\\infty} g(\\sqrt{q}\\,z)\\,
            \\frac{e^{-z^2/2}}{\\sqrt{2\\pi}}\\,dz
    """
    budget = budget or Budget()
    q = float(q)
    g = sp.sympify(g)
    if not g.has(x):
        return CheckedMoment(g, q, "exact", g, 0.0, "a constant")
    refused = _tail_verdict(g, x, q, budget, growth_of) or _local_verdict(g, x, q, budget)
    if refused is not None:
        return refused
    ok_a, a3, why_a = budget.attempt("quadrature (QUADPACK)", lambda: _quadpack(g, x, q))
    a, absolute = (a3[:2], a3[2]) if ok_a else (None, 0.0)
    if exact and _closed_form_candidate(g, x):
        closed = _closed_form_at(g, x, q, budget)
        if closed is not None and a is not None:
            return _closed_form_verdict(g, q, closed, a)
    ok_b, b, why_b = budget.attempt("quadrature (mpmath)", lambda: mpmath_moment(g, x, q))
    return _quadrature_verdict(g, q, a, b if ok_b else None, (why_a, why_b), absolute)


def quadrature_map(g: sp.Expr, x: sp.Symbol) -> Callable[[float], tuple[float, float]]:
    """``q -> (E[g(x)], QUADPACK's estimate)`` by method A alone, for the variance map.

    Used where a moment is needed at many variances (fixed points, layers, the
    :math:`\\chi^2` mixture); those values are labelled as one method's estimate.
    """

    def moment(q: float) -> tuple[float, float]:
        if not (math.isfinite(q) and q > 0):
            raise ValueError(f"`q` must be a finite positive variance; got q={q!r}.")
        return quadpack_moment(g, x, float(q))

    return moment


__all__ = [
    "Budget",
    "CheckedMoment",
    "GaussianMoment",
    "GaussianSeries",
    "Growth",
    "Singularity",
    "TimeLimitExceeded",
    "breakpoints",
    "checked_moment",
    "compare_methods",
    "deadline",
    "evaluate",
    "feature_points",
    "gaussian_integral",
    "gaussian_moment",
    "gaussian_series",
    "gaussian_square_series",
    "growth",
    "integrate_real_line",
    "moment_function",
    "mpmath_moment",
    "quadpack_moment",
    "quadrature_map",
    "scan_points",
    "singularities",
    "special_points",
    "standard_normal_density",
    "time_left",
]
