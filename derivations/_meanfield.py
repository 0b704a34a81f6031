r"""Mean-field signal propagation for any activation: :math:`q^*`, :math:`\chi_1`, phase, depths.

For a fully connected network with weights :math:`N(0, \sigma_w^2/n)` and biases
:math:`N(0, \sigma_b^2)`, at infinite width the pre-activation variance :math:`q` of one
input and the correlation :math:`c` of two inputs follow two maps (Poole et al. 2016):

.. math::

    q \mapsto F(q) = \sigma_w^2\,\mathbb{E}_z[\phi(\sqrt{q}\,z)^2] + \sigma_b^2, \qquad
    c \mapsto C(c) = \frac{\sigma_w^2\,\mathbb{E}[\phi(u_1)\phi(u_2)] + \sigma_b^2}{q^*},

with :math:`u_1 = \sqrt{q^*} z_1`, :math:`u_2 = \sqrt{q^*}(c z_1 + \sqrt{1 - c^2} z_2)`.
At the fixed point :math:`q^* = F(q^*)`:

.. math::

    \chi_1 = \sigma_w^2\,\mathbb{E}_z[\phi'(\sqrt{q^*} z)^2] = C'(1), \qquad
    F'(q^*) = \frac{\sigma_w^2}{q^*}\,\mathbb{E}_x[x\,\phi(x)\,\phi'(x)], \quad x \sim N(0, q^*),

:math:`\xi_q = -1/\ln F'(q^*)` and :math:`\xi_c = -1/\ln C'(c^*)`, with
:math:`C'(c) = \sigma_w^2\,\mathbb{E}[\phi'(u_1)\phi'(u_2)]` (Schoenholz et al. 2017).
The phase is *ordered* when :math:`\chi_1 < 1` (:math:`c^* = 1`: inputs merge),
*chaotic* when :math:`\chi_1 > 1` (a stable :math:`c^* < 1`: nearby inputs decorrelate)
and *critical* on the line :math:`\chi_1 = 1`. The critical line is found by its
parametrisation in :math:`q^*` (Pennington et al. 2017):

.. math::

    \sigma_w^2(q) = \frac{1}{\mathbb{E}_z[\phi'(\sqrt{q} z)^2]}, \qquad
    \sigma_b^2(q) = q - \sigma_w^2(q)\,\mathbb{E}_z[\phi(\sqrt{q} z)^2].

Every number comes with how it was obtained and an error *estimate* (never a bound):

* a positively homogeneous :math:`\phi` (:math:`a x` for :math:`x > 0`, :math:`b x` for
  :math:`x < 0`) has :math:`F(q) = \sigma_w^2 \tfrac{a^2 + b^2}{2} q + \sigma_b^2` and
  :math:`\chi_1 = \sigma_w^2 \tfrac{a^2 + b^2}{2}` in closed form (``exact``);
* one-dimensional moments at :math:`q^*` are :func:`~derivations._gaussian.checked_moment`
  (QUADPACK against mpmath's tanh-sinh quadrature); roots are found with QUADPACK alone
  and their error is the residual of the map under the checked moment, divided by
  :math:`|1 - \text{slope}|`;
* two-dimensional expectations are a Gauss--Hermite product rule in :math:`(z_1, z_2)`
  against a Gauss--Legendre product rule in :math:`(z_1, w)`, :math:`w = c z_1 +
  \sqrt{1 - c^2} z_2`, on panels cut at every kink (the two rules share no nodes);
* at :math:`q^* = 0` (:math:`\sigma_b^2 = 0`, :math:`\phi(0) = 0`, the signal dies) the
  moments are their limits, from the one-sided slopes of :math:`\phi` at 0.

Every operation runs under a :class:`~derivations._gaussian.Budget` (a
:func:`~derivations._budget.time_budget` per operation, and the command's deadline); one
that runs out or fails leaves its value ``undecided`` with the reason.

References
----------
.. [1] B. Poole, S. Lahiri, M. Raghu, J. Sohl-Dickstein and S. Ganguli (2016),
   "Exponential expressivity in deep neural networks through transient chaos",
   NeurIPS: the q-map, the c-map, :math:`\chi_1` and the order-to-chaos transition.
.. [2] S. Schoenholz, J. Gilmer, S. Ganguli and J. Sohl-Dickstein (2017), "Deep
   Information Propagation", ICLR: the depth scales :math:`\xi_q`, :math:`\xi_c`.
.. [3] J. Pennington, S. Schoenholz and S. Ganguli (2017), "Resurrecting the sigmoid in
   deep learning through dynamical isometry", NeurIPS: the critical line parametrised
   by :math:`q^*`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import sympy as sp
from scipy import optimize

from ._gaussian import (
    OPERATION_SECONDS,
    Budget,
    breakpoints,
    checked_moment,
    growth,
    quadpack_moment,
    special_points,
)
from ._table import TABLE
from ._user import (
    InputError,
    _check_real,
    _homogeneous,
    _one_sided_slope,
    _refuse_divergent,
    _refuse_singularities,
    numpy_function,
    parse_expression,
    x,
)

#: :math:`|\chi_1 - 1|` at or below this (or below the error estimate) is "critical".
CRITICAL_TOLERANCE = 1e-6
#: Variances scanned for fixed points and for the critical line.
Q_GRID = np.logspace(-8, 6, 57)
#: The variance the q-map starts from when it has several fixed points.
Q_START = 1.0
#: Half-width in z of the two-dimensional rules (the Gaussian mass beyond is below 1e-22).
HALF_WIDTH = 10.0
#: (panel width, Gauss--Legendre nodes per panel) of the two rules compared, and of the scan.
RULE_A, RULE_B, RULE_SCAN = (0.2, 12), (0.25, 16), (0.25, 8)
#: Two-dimensional rules agree when they differ by at most this, relative.
PAIR_RTOL = 1e-4
#: A map value within this of 0 (relative to q) cannot be told from 0 in double precision.
NOISE = 1e-10
#: Correlations scanned for fixed points of the c-map.
C_GRID = np.linspace(-1.0, 0.999, 41)

PHASES = ("ordered", "chaotic", "critical", "undecided")


@dataclass(frozen=True)
class Value:
    """A mean-field number, how it was obtained, and an error *estimate* (not a bound).

    ``status`` is ``exact`` (closed form), ``numeric`` (two methods agree; ``error`` is
    what both support), ``undecided`` (``value`` is ``None``; ``reason`` says why) or
    ``divergent`` (the quantity is infinite; ``reason`` says why).
    """

    value: float | None
    error: float
    status: str
    method: str
    reason: str = ""

    @property
    def decided(self) -> bool:
        return self.value is not None

    def __float__(self) -> float:
        if self.value is None:
            raise ValueError(f"the value is {self.status}: {self.reason}")
        return float(self.value)

    def as_data(self) -> dict:
        """Plain data for JSON: an infinite value is ``None`` with ``infinite`` set."""
        infinite = self.value is not None and math.isinf(self.value)
        finite = self.decided and math.isfinite(self.error)
        return {
            "value": None if infinite or self.value is None else float(self.value),
            "infinite": infinite,
            "error": float(self.error) if finite else None,
            "status": self.status,
            "method": self.method,
            "reason": self.reason,
        }


def _undecided(reason: str, status: str = "undecided") -> Value:
    return Value(None, math.inf, status, "none", reason)


@dataclass(frozen=True)
class FixedPoint:
    r"""A fixed point :math:`q^* = F(q^*)` of the variance map, and the slope there.

    ``slope`` is :math:`F'(q^*)` (stable when below 1 in size). ``chi``, when known, is
    the backward factor at the fixed point,

    .. math::

        \chi = n\gamma\,\mathbb{E}_z[f'(\sqrt{q^*}\,z)^2],

    :math:`\chi_1` of Schoenholz et al. (2017) with :math:`\sigma_w^2 = n\gamma`
    (``None`` where it is not computed, as in :func:`fixed_points`; :class:`MeanField`
    holds it as ``chi1``).
    """

    q: float
    slope: float
    chi: float | None = None

    @property
    def stable(self) -> bool:
        return abs(self.slope) < 1


@dataclass(frozen=True)
class Activation:
    """An activation ready for mean-field work (see :func:`prepare`).

    ``homogeneous`` is :math:`(a^2 + b^2)/2` for :math:`\\phi(x) = a x` (:math:`x > 0`),
    :math:`b x` (:math:`x < 0`), else ``None``; ``slope0_sq`` the limit
    :math:`\\lim_{q \\to 0}\\mathbb{E}[\\phi'(\\sqrt q z)^2] = (\\phi'(0^+)^2 +
    \\phi'(0^-)^2)/2`.
    """

    f: sp.Expr
    derivative: sp.Expr
    f0: float
    homogeneous: sp.Expr | None
    slope0_sq: Value
    kinks: tuple[float, ...]


@dataclass(frozen=True)
class MeanField:
    """The mean-field quantities of one activation at :math:`(\\sigma_w^2, \\sigma_b^2)`.

    Attributes
    ----------
    activation : Activation
    sigma_w2, sigma_b2 : float
    q_star : Value
        The fixed point the q-map reaches from :data:`Q_START` (0 when the signal dies;
        ``divergent`` when the variance grows without bound).
    q_slope : Value
        :math:`F'(q^*)`; ``q_stable`` is :math:`|F'(q^*)| < 1`.
    fixed_points : tuple of FixedPoint
        Every fixed point found on :data:`Q_GRID` (and 0).
    chi1 : Value
        :math:`\\sigma_w^2\\,\\mathbb{E}[\\phi'(\\sqrt{q^*} z)^2]`.
    phase : str
        ``ordered``, ``chaotic``, ``critical`` (:math:`|\\chi_1 - 1|` within
        ``tolerance`` or the error estimate) or ``undecided``.
    c_star, chi_c : Value
        The stable fixed point of the c-map and :math:`C'(c^*)`.
    xi_q, xi_c : Value
        :math:`-1/\\ln|F'(q^*)|` and :math:`-1/\\ln|C'(c^*)|` (``inf`` at criticality).
    post_mean, post_std : Value
        Mean and standard deviation of the post-activation :math:`\\phi(\\sqrt{q^*} z)`.
    critical_sigma_w2 : Value
        The :math:`\\sigma_w^2` with :math:`\\chi_1 = 1` at this :math:`\\sigma_b^2`;
        ``critical_q`` its :math:`q^*`, ``critical_all`` every one found.
    """

    activation: Activation
    sigma_w2: float
    sigma_b2: float
    q_star: Value
    q_slope: Value
    q_stable: bool | None
    fixed_points: tuple[FixedPoint, ...]
    chi1: Value
    phase: str
    c_star: Value
    chi_c: Value
    xi_q: Value
    xi_c: Value
    critical_sigma_w2: Value
    critical_q: float | None
    critical_all: tuple[tuple[float, float], ...]
    tolerance: float
    post_mean: Value
    post_std: Value
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class CriticalPoint:
    """One point of the critical line: :math:`\\chi_1 = 1` at :math:`(\\sigma_w^2, \\sigma_b^2)`."""

    sigma_b2: float
    sigma_w2: Value
    q_star: float | None


# --------------------------------------------------------------------------- preparation


def prepare(
    f: sp.Expr | str, *, argument: str = "EXPR", budget: float | Budget = OPERATION_SECONDS
) -> Activation:
    """Parse (if text) and vet an activation for mean-field work.

    Raises
    ------
    InputError
        If the text is refused by :func:`~derivations._user.parse_expression`, ``f`` does
        not depend on ``x``, is not real and finite, jumps or blows up at a point, or
        :math:`\\mathbb{E}[\\phi(\\sqrt q z)^2]` or :math:`\\mathbb{E}[\\phi'(\\sqrt q z)^2]`
        diverges for some :math:`q` (the mean-field maps need every :math:`q`).
    """
    b = budget if isinstance(budget, Budget) else Budget(float(budget))
    text = f if isinstance(f, str) else sp.sstr(f)
    if isinstance(f, str):
        f = parse_expression(f, argument=argument, budget=b, exact_decimals=True)
    f = sp.sympify(f)
    if not f.has(x):
        raise InputError(f"`{argument}` must depend on x; got {argument}={text!r}.")
    _check_real(f, text, argument, budget=b, infinite=False)
    ok, kinks, _ = b.attempt("the search for kinks and poles", lambda: special_points(f, x))
    kinks = tuple(kinks) if ok else ()
    _refuse_singularities(f, kinks, text, argument, b)
    ok, raw, why = b.attempt("sympy.diff", lambda: sp.diff(f, x))
    if not ok:
        raise InputError(f"`{argument}`: cannot differentiate f(x) = {f} ({why}).")
    fp = raw.replace(lambda e: isinstance(e, sp.DiracDelta), lambda e: sp.Integer(0))
    for name, g in (("E[f(z)^2]", f**2), ("E[f'(z)^2]", fp**2)):
        ok, grow, why = b.attempt(f"the tail test of {name}", lambda g=g: growth(g, x))
        if not ok:
            raise InputError(f"`{argument}`: cannot tell whether {name} converges ({why}).")
        _refuse_divergent(name, g, grow, text, argument)
        if not math.isinf(grow.q_max):
            raise InputError(
                f"`{argument}`: {name} is not shown finite for every variance ({grow.how}); "
                f"the mean-field maps need every q > 0; got {argument}={text!r}."
            )
    f0 = float(sp.N(f.subs(x, 0), 30))
    ok, hom, _ = b.attempt("the test of homogeneity", lambda: _homogeneous(f, b))
    k = sp.nsimplify((hom[0] ** 2 + hom[1] ** 2) / 2) if ok and hom is not None else None
    slopes = []
    for side in (1, -1):
        ok, s, why = b.attempt("the slope at 0", lambda side=side: _one_sided_slope(f, f0, side, b))
        slopes.append(s if ok else None)
    if any(s is None or not s.is_finite for s in slopes):
        slope0 = _undecided("the one-sided slopes of f at 0 are not known")
    else:
        v = (slopes[0] ** 2 + slopes[1] ** 2) / 2
        exact = all(not s.has(sp.Float) for s in slopes)
        slope0 = Value(
            float(v),
            0.0 if exact else 1e-12 * (1 + abs(float(v))),
            "exact" if exact else "numeric",
            "(f'(0+)^2 + f'(0-)^2)/2, one-sided slopes by sympy.limit"
            if exact
            else "(f'(0+)^2 + f'(0-)^2)/2, difference quotients at h = 1e-15 (50 digits)",
        )
    return Activation(f, fp, f0, k, slope0, kinks)


def _as_activation(f: Activation | sp.Expr | str, budget: Budget) -> Activation:
    return f if isinstance(f, Activation) else prepare(f, budget=budget)


def _budget(budget: float | Budget) -> Budget:
    return budget if isinstance(budget, Budget) else Budget(float(budget))


def _check_variances(sigma_w2: object, sigma_b2: object) -> tuple[float, float]:
    out = []
    for name, v, positive in (("--sigma-w2", sigma_w2, True), ("--sigma-b2", sigma_b2, False)):
        try:
            value = float(v)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise InputError(f"`{name}` must be a number; got {name}={v!r}.") from None
        if isinstance(v, bool) or not math.isfinite(value) or value < 0 or (positive and not value):
            bound = "> 0" if positive else ">= 0"
            raise InputError(f"`{name}` must be a finite number {bound}; got {name}={v!r}.")
        if value > 1e6:
            raise InputError(f"`{name}` must be at most 1e6; got {name}={v!r}.")
        out.append(value)
    return out[0], out[1]


# --------------------------------------------------------------------------- one dimension


@lru_cache(maxsize=4096)
def _m2(a: Activation, q: float) -> float:
    return quadpack_moment(a.f**2, x, q)[0]


@lru_cache(maxsize=4096)
def _d2(a: Activation, q: float) -> float:
    return quadpack_moment(a.derivative**2, x, q)[0]


def q_map(a: Activation, sigma_w2: float, sigma_b2: float, q: float) -> float:
    """:math:`F(q) = \\sigma_w^2\\,\\mathbb{E}[\\phi(\\sqrt q z)^2] + \\sigma_b^2` (QUADPACK)."""
    if q == 0:
        return sigma_w2 * a.f0**2 + sigma_b2
    return sigma_w2 * _m2(a, q) + sigma_b2


def _slope_of_map(a: Activation, sigma_w2: float, q: float) -> float:
    if q == 0:
        return sigma_w2 * float(a.slope0_sq) if a.f0 == 0 else math.nan
    return sigma_w2 * quadpack_moment(x * a.f * a.derivative, x, q)[0] / q


def _bracket_roots(
    h: Callable[[float], float], grid: Sequence[float], relative: bool = True
) -> list[float]:
    """Roots of ``h`` on ``grid``: sign changes refined by Brent's method.

    A value within :data:`NOISE` of 0 (relative to the grid point, when ``relative``) is
    indistinguishable from 0 in double precision: it neither counts as a root nor as a sign.
    """
    values = [h(v) for v in grid]
    signs = [
        0 if abs(val) <= NOISE * (abs(v) if relative else 1.0) else (1 if val > 0 else -1)
        for v, val in zip(grid, values, strict=True)
    ]
    kept = [k for k, sign in enumerate(signs) if sign]
    roots: list[float] = []
    for i, j in itertools.pairwise(kept):
        if signs[i] != signs[j]:
            roots.append(optimize.brentq(h, grid[i], grid[j], xtol=1e-300, rtol=1e-15))
    return roots


def fixed_points(a: Activation, sigma_w2: float, sigma_b2: float) -> tuple[FixedPoint, ...]:
    """Every fixed point of the q-map on :data:`Q_GRID` (and 0 when it is one), by QUADPACK."""
    found = _bracket_roots(lambda v: q_map(a, sigma_w2, sigma_b2, v) - v, Q_GRID)
    if sigma_b2 == 0 and a.f0 == 0:
        found = [0.0, *found]
    return tuple(FixedPoint(r, _slope_of_map(a, sigma_w2, r)) for r in found)


def _select(points: tuple[FixedPoint, ...], grows: bool) -> FixedPoint | None:
    """The fixed point the q-map reaches from :data:`Q_START` (``F`` increasing)."""
    near = Q_START * 1e-9  # a root at the start, up to the root finder's tolerance
    above = [p for p in points if p.q >= Q_START - near]
    below = [p for p in points if p.q <= Q_START + near]
    if grows:
        return min(above, key=lambda p: p.q) if above else None
    return max(below, key=lambda p: p.q) if below else None


#: How the numeric :math:`q^*` and its error are found.
_Q_STAR_METHOD = (
    "root of F(q) - q by Brent's method on QUADPACK; error = (|F(q*) - q*| + sigma_w2 "
    "err(E[f^2])) / |1 - F'(q*)|, F by two quadratures"
)
#: Why :math:`q^* = 0` when the map reaches 0 from :data:`Q_START`.
_Q_STAR_ZERO = (
    "q = 0 is a fixed point (sigma_b2 = 0, f(0) = 0); F(q) < q at every scanned q below 1 "
    "(QUADPACK), so the map reaches it from q = 1"
)


def _homogeneous_q_star(
    a: Activation, sw: float, sb: float, notes: list[str]
) -> tuple[Value, Value, tuple, list]:
    """``(q*, F'(q*), fixed points, notes)`` of the linear map :math:`F(q) = r q + \\sigma_b^2`."""
    r = sw * float(a.homogeneous)
    how = f"closed form: F(q) = sigma_w2 {sp.sstr(a.homogeneous)} q + sigma_b2"
    slope = Value(r, 0.0, "exact", how)
    if abs(r - 1) <= 1e-12 and sb == 0:
        notes.append("every q > 0 is a fixed point (F(q) = q); q* is the starting q = 1")
        return Value(Q_START, 0.0, "exact", how), slope, (FixedPoint(Q_START, r),), notes
    if r >= 1:
        reason = f"F(q) - q = ({r:.6g} - 1) q + {sb:g} > 0: the variance grows without bound"
        return _undecided(reason, "divergent"), slope, (), notes
    qs = sb / (1 - r)
    return Value(qs, 0.0, "exact", how), slope, (FixedPoint(qs, r),), notes


def _zero_slope(a: Activation, sw: float) -> Value:
    """:math:`F'(0) = \\sigma_w^2 (\\phi'(0^+)^2 + \\phi'(0^-)^2)/2`, the limit at :math:`q = 0`."""
    s0 = a.slope0_sq
    if not s0.decided:
        return _undecided(s0.reason)
    return Value(sw * s0.value, sw * s0.error, s0.status, f"limit q -> 0: sigma_w2 {s0.method}")


def _numeric_q_star(
    a: Activation, sw: float, sb: float, chosen: FixedPoint, b: Budget
) -> tuple[Value, Value]:
    """``(q*, F'(q*))`` at a positive root, with the error estimate of :data:`_Q_STAR_METHOD`.

    The slope is :math:`\\sigma_w^2\\,\\mathbb{E}[x f(x) f'(x)]/q^*` (Gaussian integration
    by parts).
    """
    qs = chosen.q
    m2 = checked_moment(a.f**2, x, qs, exact=False, budget=b)
    xff = checked_moment(x * a.f * a.derivative, x, qs, exact=False, budget=b)
    if not xff.decided:
        slope = _undecided(f"E[x f(x) f'(x)] at q*: {xff.reason}")
    else:
        slope = Value(
            sw * float(xff.value) / qs,
            sw * xff.error / qs,
            "numeric",
            "sigma_w2 E[x f(x) f'(x)]/q* (Gaussian integration by parts); " + xff.method,
        )
    if not m2.decided:
        return _undecided(f"E[f(x)^2] at q*: {m2.reason}"), slope
    residual = sw * float(m2.value) + sb - qs
    gap = abs(1 - (slope.value if slope.decided else chosen.slope))
    err = (abs(residual) + sw * m2.error) / max(gap, 1e-12)
    return Value(qs, err, "numeric", _Q_STAR_METHOD), slope


def _q_star(a: Activation, sw: float, sb: float, b: Budget) -> tuple[Value, Value, tuple, list]:
    """``(q*, F'(q*), fixed points, notes)``: the fixed point the map reaches from 1."""
    notes: list[str] = []
    if a.homogeneous is not None:
        return _homogeneous_q_star(a, sw, sb, notes)
    ok, pts, why = b.attempt(
        "the search for fixed points of the q-map", lambda: fixed_points(a, sw, sb)
    )
    if not ok:
        return _undecided(why), _undecided(why), (), notes
    ok, grows, why = b.attempt("F(1)", lambda: q_map(a, sw, sb, Q_START) > Q_START)
    if not ok:
        return _undecided(why), _undecided(why), pts, notes
    chosen = _select(pts, grows)
    if chosen is None:
        reason = (
            f"F(q) > q on [1, {Q_GRID[-1]:.0e}]: the variance grows past {Q_GRID[-1]:.0e}"
            if grows
            else "no fixed point below q = 1 was found"
        )
        status = "divergent" if grows else "undecided"
        return _undecided(reason, status), _undecided(reason), pts, notes
    if len(pts) > 1:
        notes.append(
            "the q-map has several fixed points ("
            + ", ".join(f"{p.q:.6g}" for p in pts)
            + f"); q* is the one reached from q = {Q_START:g}"
        )
    if chosen.q == 0:
        return Value(0.0, 0.0, "exact", _Q_STAR_ZERO), _zero_slope(a, sw), pts, notes
    return (*_numeric_q_star(a, sw, sb, chosen, b), pts, notes)


def _chi1(a: Activation, sw: float, q: Value, b: Budget) -> Value:
    if a.homogeneous is not None:
        return Value(
            sw * float(a.homogeneous),
            0.0,
            "exact",
            f"sigma_w2 {sp.sstr(a.homogeneous)} (homogeneous f)",
        )
    if not q.decided:
        return _undecided(f"q* is {q.status}: {q.reason}")
    if q.value == 0:
        s0 = a.slope0_sq
        if not s0.decided:
            return _undecided(s0.reason)
        return Value(sw * s0.value, sw * s0.error, s0.status, f"q* = 0: sigma_w2 {s0.method}")
    m = checked_moment(a.derivative**2, x, q.value, exact=False, budget=b)
    if not m.decided:
        return _undecided(f"E[f'(x)^2] at q*: {m.reason}")
    h = 1e-4 * q.value
    ok, dd, _ = b.attempt(
        "d/dq E[f'^2]", lambda: (_d2(a, q.value + h) - _d2(a, q.value - h)) / (2 * h)
    )
    prop = abs(dd) * q.error if ok and math.isfinite(q.error) else 0.0
    return Value(
        sw * float(m.value),
        sw * (m.error + prop),
        "numeric",
        f"sigma_w2 E[f'(x)^2] at q*; {m.method}",
    )


def _post_activation(a: Activation, q: Value, b: Budget) -> tuple[Value, Value]:
    """Mean and standard deviation of :math:`\\phi(\\sqrt{q^*} z)`, by two quadratures."""
    if not q.decided:
        return _undecided(f"q* is {q.status}: {q.reason}"), _undecided(f"q* is {q.status}")
    if q.value == 0:
        how = "q* = 0: every pre-activation is 0"
        return Value(a.f0, 0.0, "exact", how), Value(0.0, 0.0, "exact", how)
    mean = checked_moment(a.f, x, q.value, exact=False, budget=b)
    m2 = checked_moment(a.f**2, x, q.value, exact=False, budget=b)
    if not (mean.decided and m2.decided):
        why = mean.reason or m2.reason
        return _undecided(why), _undecided(why)
    mu, second = float(mean.value), float(m2.value)
    var = second - mu * mu
    if var <= 0:
        return Value(mu, mean.error, "numeric", mean.method), _undecided("variance not positive")
    err = (m2.error + 2 * abs(mu) * mean.error) / (2 * math.sqrt(var))
    how = "sqrt(E[f(x)^2] - E[f(x)]^2) at q* (neglecting the error of q*); " + m2.method
    return Value(mu, mean.error, "numeric", mean.method), Value(math.sqrt(var), err, "numeric", how)


def _phase(chi1: Value, tol: float) -> str:
    if not chi1.decided:
        return "undecided"
    if abs(chi1.value - 1) <= max(tol, chi1.error):
        return "critical"
    return "ordered" if chi1.value < 1 else "chaotic"


def _depth_scale(slope: Value, what: str) -> Value:
    if not slope.decided:
        return _undecided(slope.reason)
    s = abs(slope.value)
    if s >= 1 - max(slope.error, 1e-15):
        if s > 1 + slope.error:
            return _undecided(f"|{what}| = {s:.6g} > 1: the fixed point is unstable")
        return Value(
            math.inf,
            0.0,
            slope.status,
            f"|{what}| = 1: perturbations decay slower than exponentially",
        )
    if s == 0:
        return Value(0.0, 0.0, slope.status, f"{what} = 0")
    xi = -1 / math.log(s)
    err = slope.error / (s * math.log(s) ** 2) if slope.error else 0.0
    return Value(xi, err, slope.status, f"-1/ln|{what}|")


# --------------------------------------------------------------------------- two dimensions


@lru_cache(maxsize=8)
def _legendre(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.polynomial.legendre.leggauss(n)


def _panels(cuts: Sequence[float], rule: tuple[float, int]) -> tuple[np.ndarray, np.ndarray]:
    """Gauss--Legendre nodes and weights on [-HALF_WIDTH, HALF_WIDTH], panels cut at ``cuts``."""
    width, n = rule
    edges = np.arange(-HALF_WIDTH, HALF_WIDTH + width / 2, width)
    edges = np.unique(np.concatenate([edges, [c for c in cuts if abs(c) < HALF_WIDTH]]))
    t, w = _legendre(n)
    lo, hi = edges[:-1, None], edges[1:, None]
    nodes = (lo + hi) / 2 + (hi - lo) / 2 * t[None, :]
    weights = (hi - lo) / 2 * w[None, :]
    return nodes.ravel(), weights.ravel()


def _pair_rule(
    fa: Callable, fb: Callable, q: float, c: float, cuts: Sequence[float], rule: tuple[float, int]
) -> float:
    r""":math:`\mathbb{E}[g(u_1) h(u_2)]` by a Gauss--Legendre product rule in :math:`(z_1, w)`.

    With :math:`w = c z_1 + s z_2`, :math:`s = \sqrt{1 - c^2}`, the expectation is
    :math:`\iint g(\sqrt q z_1) h(\sqrt q w)\,\varphi(z_1)\,\varphi_s(w - c z_1)`, so the
    kinks of ``g`` and ``h`` lie on fixed lines of both axes and every panel edge can
    sit on one; the Gaussian kernel is smooth (its width ``s`` must exceed the panels'
    node spacing: ``c`` very close to 1 is left to the comparison of two rules).
    """
    r = math.sqrt(q)
    s = math.sqrt(max(0.0, 1 - c * c))
    z, wz = _panels([k / r for k in cuts], rule)
    a_vals = fa(r * z) * wz * np.exp(-(z**2) / 2) / math.sqrt(2 * math.pi)
    if s == 0:
        return float(np.sum(a_vals * fb(r * c * z)))
    b_vals = fb(r * z) * wz
    kernel = np.exp(-((z[None, :] - c * z[:, None]) ** 2) / (2 * s * s))
    return float(a_vals @ kernel @ b_vals) / (s * math.sqrt(2 * math.pi))


def pair_mean(
    g: sp.Expr, h: sp.Expr, q: float, c: float, budget: float | Budget = OPERATION_SECONDS
) -> Value:
    r""":math:`\mathbb{E}[g(u_1) h(u_2)]`, :math:`u_1, u_2 \sim N(0, q)` with correlation ``c``.

    Two Gauss--Legendre product rules in :math:`(z_1, w)` (:func:`_pair_rule`) on
    panels cut at every kink, which share no nodes: :data:`RULE_A` and :data:`RULE_B`
    (panel width, nodes per panel). The value is B's; the error is :math:`|A - B|`, an
    estimate both support (undecided beyond :data:`PAIR_RTOL`, relative).
    """
    b = _budget(budget)
    if not (math.isfinite(q) and q > 0) or not -1 <= c <= 1:
        raise ValueError(f"need q > 0 and -1 <= c <= 1; got q={q!r}, c={c!r}.")
    fa, fb = numpy_function(g), numpy_function(h)
    ok, cuts, why = b.attempt("the kinks", lambda: (*breakpoints(g, x), *breakpoints(h, x)))
    if not ok:
        return _undecided(why)
    ok_a, va, why_a = b.attempt("rule A", lambda: _pair_rule(fa, fb, q, c, cuts, RULE_A))
    ok_b, vb, why_b = b.attempt("rule B", lambda: _pair_rule(fa, fb, q, c, cuts, RULE_B))
    if not (ok_a and ok_b):
        return _undecided("; ".join(w for w in (why_a, why_b) if w))
    if not (math.isfinite(va) and math.isfinite(vb)):
        return _undecided("a two-dimensional rule gave a value that is not finite")
    gap = abs(va - vb)
    scale = max(abs(va), abs(vb), 1e-300)
    method = (
        "two Gauss-Legendre product rules in (z1, w = c z1 + sqrt(1 - c^2) z2), panels cut "
        f"at every kink ({RULE_B[1]} nodes per {RULE_B[0]:g}-wide panel, against "
        f"{RULE_A[1]} per {RULE_A[0]:g})"
    )
    if gap > PAIR_RTOL * scale and gap > 1e-12:
        return _undecided(f"the two rules disagree: {va:.12g} against {vb:.12g}")
    return Value(vb, max(gap, 1e-15 * scale), "numeric", method)


def c_map(a: Activation, sigma_w2: float, sigma_b2: float, q: float, c: float) -> Value:
    """The c-map at variance ``q``.

    .. math:: C(c) = (\\sigma_w^2\\,\\mathbb{E}[\\phi(u_1)\\phi(u_2)] + \\sigma_b^2)/q
    """
    p = pair_mean(a.f, a.f, q, c)
    if not p.decided:
        return p
    return Value((sigma_w2 * p.value + sigma_b2) / q, sigma_w2 * p.error / q, p.status, p.method)


def _c_map_roots(
    a: Activation, sw: float, sb: float, qs: float, b: Budget
) -> tuple[list[float] | None, str]:
    """``(roots, "")`` of :math:`C(c) - c` on :data:`C_GRID` (Brent), or ``(None, why)``."""
    fa = numpy_function(a.f)
    ok, cuts, why = b.attempt("the kinks", lambda: breakpoints(a.f, x))
    if not ok:
        return None, why

    def h(c: float, rule: tuple[float, int] = RULE_B) -> float:
        return (sw * _pair_rule(fa, fa, qs, c, cuts, rule) + sb) / qs - c

    ok, values, why = b.attempt("the scan of the c-map", lambda: [h(c, RULE_SCAN) for c in C_GRID])
    if not ok:
        return None, why
    brackets = [
        (C_GRID[k], C_GRID[k + 1])
        for k in range(len(C_GRID) - 1)
        if values[k] == 0 or values[k] * values[k + 1] < 0
    ]
    ok, roots, why = b.attempt(
        "the fixed points of the c-map",
        lambda: [
            lo if h(lo) == 0 else optimize.brentq(h, lo, hi, xtol=1e-14) for lo, hi in brackets
        ],
    )
    return (roots, "") if ok else (None, why)


def _c_star(
    a: Activation, sw: float, sb: float, q: Value, chi1: Value, phase: str, b: Budget
) -> tuple[Value, Value]:
    """``(c*, C'(c*))``: 1 outside the chaotic phase, else the largest root below 1."""
    if phase == "ordered":
        return (
            Value(1.0, 0.0, "exact", "C(1) = F(q*)/q* = 1, stable since C'(1) = chi1 < 1"),
            chi1,
        )
    if phase == "critical":
        return Value(1.0, 0.0, "exact", "C(1) = 1 with C'(1) = chi1 = 1 (marginal)"), chi1
    if phase != "chaotic" or not q.decided:
        return _undecided(f"the phase is {phase}"), _undecided(f"the phase is {phase}")
    if q.value == 0:
        reason = "q* = 0: the signal vanishes and the correlation map is not defined in the limit"
        return _undecided(reason), _undecided(reason)
    qs = q.value
    roots, why = _c_map_roots(a, sw, sb, qs, b)
    if roots is None:
        return _undecided(why), _undecided(why)
    if not roots:
        reason = f"no fixed point of the c-map in [-1, {C_GRID[-1]}]"
        return _undecided(reason), _undecided(reason)
    cs = max(roots)
    slope = pair_mean(a.derivative, a.derivative, qs, cs, b)
    chi_c = (
        Value(
            sw * slope.value,
            sw * slope.error,
            slope.status,
            "sigma_w2 E[f'(u1) f'(u2)] at c*; " + slope.method,
        )
        if slope.decided
        else slope
    )
    value = c_map(a, sw, sb, qs, cs)
    if not value.decided:
        return value, chi_c
    gap = abs(1 - chi_c.value) if chi_c.decided else 1.0
    err = (abs(value.value - cs) + value.error) / max(gap, 1e-12)
    return Value(
        cs, err, "numeric", "largest root of C(c) - c below 1 (Brent); " + value.method
    ), chi_c


# --------------------------------------------------------------------------- the critical line


def _line_points(
    a: Activation, sigma_b2: float, b: Budget
) -> tuple[list[tuple[float, float]], Value]:
    """``[(q*, sigma_w2)]`` on the critical line at ``sigma_b2``, and the first as a Value."""
    if a.homogeneous is not None:
        sw = 1 / float(a.homogeneous)
        how = f"sigma_w2 = 1/{sp.sstr(a.homogeneous)} (homogeneous f: chi1 does not depend on q*)"
        qc = None if sigma_b2 > 0 else Q_START
        return [(qc if qc is not None else math.inf, sw)], Value(sw, 0.0, "exact", how)

    def s(v: float) -> float:
        return v - _m2(a, v) / _d2(a, v) - sigma_b2

    ok, roots, why = b.attempt(
        "the search along the critical line", lambda: _bracket_roots(s, Q_GRID)
    )
    if not ok:
        return [], _undecided(why)
    points: list[tuple[float, float]] = []
    if sigma_b2 == 0 and a.f0 == 0 and a.slope0_sq.decided and a.slope0_sq.value > 0:
        points.append((0.0, 1 / a.slope0_sq.value))
    ok, more, why = b.attempt("the critical sigma_w2", lambda: [(r, 1 / _d2(a, r)) for r in roots])
    if ok:
        points += more
    if not points:
        return [], _undecided(
            f"no q* in [{Q_GRID[0]:.0e}, {Q_GRID[-1]:.0e}] with chi1 = 1 at sigma_b2 = {sigma_b2:g}"
        )
    qc, swc = points[0]
    if qc == 0:
        s0 = a.slope0_sq
        err = s0.error / s0.value**2
        return points, Value(
            swc, err, s0.status, f"q* = 0: 1/((f'(0+)^2 + f'(0-)^2)/2); {s0.method}"
        )
    m = checked_moment(a.derivative**2, x, qc, exact=False, budget=b)
    if not m.decided:
        return points, _undecided(f"E[f'(x)^2] at q* = {qc:.6g}: {m.reason}")
    return points, Value(
        1 / float(m.value),
        m.error / float(m.value) ** 2,
        "numeric",
        "1/E[f'(x)^2] at the q* where sigma_b2(q*) = q* - E[f^2]/E[f'^2] equals sigma_b2 (Brent); "
        + m.method,
    )


def critical_line(
    f: Activation | sp.Expr | str,
    sigma_b2: Sequence[float],
    *,
    budget: float | Budget = OPERATION_SECONDS,
) -> tuple[CriticalPoint, ...]:
    """The critical :math:`\\sigma_w^2` at each :math:`\\sigma_b^2` of a grid (one per point).

    Uses the parametrisation :math:`\\sigma_w^2(q) = 1/\\mathbb{E}[\\phi'(\\sqrt q z)^2]`,
    :math:`\\sigma_b^2(q) = q - \\sigma_w^2(q)\\,\\mathbb{E}[\\phi(\\sqrt q z)^2]`; where
    several :math:`q^*` give the same :math:`\\sigma_b^2` the smallest is kept.
    """
    b = _budget(budget)
    a = _as_activation(f, b)
    out = []
    for sb in sigma_b2:
        _, sb_ = _check_variances(1.0, sb)
        pts, val = _line_points(a, sb_, b)
        qc = pts[0][0] if pts and math.isfinite(pts[0][0]) else None
        out.append(CriticalPoint(sb_, val, qc))
    return tuple(out)


# --------------------------------------------------------------------------- everything


def mean_field(
    f: Activation | sp.Expr | str,
    sigma_w2: float,
    sigma_b2: float = 0.0,
    *,
    budget: float | Budget = OPERATION_SECONDS,
    tolerance: float = CRITICAL_TOLERANCE,
    correlations: bool = True,
) -> MeanField:
    """:math:`q^*`, :math:`F'(q^*)`, :math:`\\chi_1`, the phase, :math:`c^*`, :math:`\\xi_q`,
    :math:`\\xi_c` and the critical :math:`\\sigma_w^2` at ``sigma_b2``.

    Parameters
    ----------
    f : Activation, sympy.Expr or str
        The activation (text goes through :func:`prepare`).
    sigma_w2, sigma_b2 : float
        Weight variance times fan-in, and bias variance.
    budget : float or Budget
        Seconds per operation.
    tolerance : float
        :math:`|\\chi_1 - 1|` at or below which the phase is ``critical``.
    correlations : bool
        Also find :math:`c^*` and :math:`\\xi_c` (the two-dimensional work); when False
        they are undecided, with that reason.

    Raises
    ------
    InputError
        On an activation :func:`prepare` refuses, or a variance that is not finite,
        negative, or (``sigma_w2``) zero.

    Examples
    --------
    >>> m = mean_field("Max(0, x)", 2.0, 0.0)
    >>> m.chi1.value, m.phase, m.critical_sigma_w2.value
    (1.0, 'critical', 2.0)
    """
    sw, sb = _check_variances(sigma_w2, sigma_b2)
    b = _budget(budget)
    a = _as_activation(f, b)
    q, slope, pts, notes = _q_star(a, sw, sb, b)
    chi1 = _chi1(a, sw, q, b)
    phase = _phase(chi1, tolerance)
    if not q.decided and phase != "undecided":
        notes.append(f"q* is {q.status} ({q.reason}); chi1 does not depend on q for this f")
    if correlations:
        c_star, chi_c = _c_star(a, sw, sb, q, chi1, phase, b)
    else:
        c_star = chi_c = _undecided("not asked for (correlations=False)")
    stable = slope.decided and abs(slope.value) < 1 if slope.decided else None
    line, crit = _line_points(a, sb, b)
    if len(line) > 1:
        notes.append(
            "several critical points at this sigma_b2: "
            + ", ".join(f"sigma_w2 = {w:.8g} (q* = {v:.6g})" for v, w in line)
        )
    qc = line[0][0] if line and math.isfinite(line[0][0]) else None
    post_mean, post_std = _post_activation(a, q, b)
    return MeanField(
        activation=a,
        sigma_w2=sw,
        sigma_b2=sb,
        q_star=q,
        q_slope=slope,
        q_stable=stable,
        fixed_points=tuple(pts),
        chi1=chi1,
        phase=phase,
        c_star=c_star,
        chi_c=chi_c,
        xi_q=_depth_scale(slope, "F'(q*)"),
        xi_c=_depth_scale(chi_c, "C'(c*)"),
        critical_sigma_w2=crit,
        critical_q=qc,
        critical_all=tuple(line),
        tolerance=tolerance,
        post_mean=post_mean,
        post_std=post_std,
        notes=tuple(notes),
    )


#: The activations PyTorch's ``calculate_gain`` names (``torch/nn/init.py``), as f(x):
#: the table's entries with a torch gain, then the two with parameters.
TORCH_ACTIVATIONS = (
    *(
        ("linear / identity" if e.torch_gain == "linear" else e.torch_gain, sp.sstr(e.expression))
        for e in TABLE
        if e.torch_gain
    ),
    ("leaky_relu (slope 0.01)", "leaky_relu(x)"),
    ("selu", "selu(x)"),
)


@dataclass(frozen=True)
class GainRow:
    """What one ``calculate_gain`` value preserves, without bias (:math:`\\sigma_b^2 = 0`).

    ``ratio_at_1`` is :math:`F(1) = g^2\\,\\mathbb{E}[\\phi(z)^2]` (1 when the variance
    :math:`q = 1` is kept); ``variance_gain`` the gain that keeps it,
    :math:`1/\\sqrt{\\mathbb{E}[\\phi(z)^2]}`; ``critical_gain`` the square root of the
    critical :math:`\\sigma_w^2`; ``preserves`` is ``both``, ``variance``,
    ``edge of chaos`` or ``neither``.
    """

    activation: str
    expression: str
    gain: str
    gain_value: float
    mean_field: MeanField
    ratio_at_1: Value
    variance_gain: float | None
    critical_gain: Value
    preserves: str
    why: str


def _gain_row(name: str, text: str, b: Budget) -> GainRow | None:
    from ._user import torch_gain

    a = prepare(text, budget=b)
    torch = torch_gain(a.f)
    if torch is None:
        return None
    sw = float(torch.squared)
    m = mean_field(a, sw, 0.0, budget=b, correlations=False)
    m2 = checked_moment(a.f**2, x, 1.0, exact=False, budget=b)
    ratio = (
        Value(sw * float(m2.value), sw * m2.error, "numeric", "gain^2 E[f(z)^2]; " + m2.method)
        if m2.decided
        else _undecided(m2.reason)
    )
    keeps = ratio.decided and abs(ratio.value - 1) <= max(1e-9, 10 * ratio.error)
    edge = m.phase == "critical"
    preserves = {(True, True): "both", (True, False): "variance", (False, True): "edge of chaos"}
    label = preserves.get((keeps, edge), "neither")
    (crit,) = critical_line(a, [0.0], budget=b)
    crit_gain = (
        Value(math.sqrt(crit.sigma_w2.value), crit.sigma_w2.error, crit.sigma_w2.status, "sqrt")
        if crit.sigma_w2.decided
        else crit.sigma_w2
    )
    var_gain = 1 / math.sqrt(float(m2.value)) if m2.decided else None
    parts = []
    if ratio.decided:
        parts.append(
            f"F(1) = {ratio.value:.6g}: "
            + (
                "q = 1 is kept"
                if keeps
                else f"q = 1 is not kept (the gain that keeps it is {var_gain:.6g})"
            )
        )
    if m.q_star.decided and not keeps:
        parts.append(f"the variance settles at q* = {m.q_star.value:.6g}")
    if m.chi1.decided:
        parts.append(f"chi1 = {m.chi1.value:.6g}: {m.phase}")
    if crit_gain.decided and not edge:
        parts.append(f"the edge of chaos without bias is at gain {crit_gain.value:.6g}")
    return GainRow(
        name,
        sp.sstr(a.f),
        sp.sstr(torch.gain),
        float(torch.gain),
        m,
        ratio,
        var_gain,
        crit_gain,
        label,
        "; ".join(parts),
    )


def framework_gains(budget: float | Budget = OPERATION_SECONDS) -> tuple[GainRow, ...]:
    """What each of PyTorch's ``calculate_gain`` values preserves (:data:`TORCH_ACTIVATIONS`).

    The gain :math:`g` sets :math:`\\sigma_w^2 = g^2` (torch draws the std
    :math:`g/\\sqrt{\\mathrm{fan}}`); for each: :math:`F(1)`, :math:`q^*`, the
    post-activation std, :math:`\\chi_1`, the phase, and the gains that keep the variance
    and that sit at the edge of chaos.
    """
    b = _budget(budget)
    rows = (_gain_row(name, text, b) for name, text in TORCH_ACTIVATIONS)
    return tuple(r for r in rows if r is not None)


__all__ = [
    "TORCH_ACTIVATIONS",
    "Activation",
    "CriticalPoint",
    "FixedPoint",
    "GainRow",
    "MeanField",
    "Value",
    "c_map",
    "critical_line",
    "fixed_points",
    "framework_gains",
    "mean_field",
    "pair_mean",
    "prepare",
    "q_map",
]
