r"""Series steps ``before = P + O(x^k)``: an expansion route and an independent numeric guard.

A step whose right-hand side ends in an order term claims that the remainder

.. math::

    r(x) = \mathrm{before}(x) - P(x) = O(x^k) \qquad (x \to 0).

:func:`check_series` decides it in two independent ways and reports ``computed`` only
when both agree.

**Expansion.** Every Gaussian expectation in ``before`` (an integral against the
density :math:`e^{-z^2/(2q)}/\sqrt{2\pi q}`, the project's standardized
:func:`~derivations._gaussian.gaussian_integral`, or an unevaluated
``sympy.stats.Expectation`` of a ``Normal(0, sqrt(q))`` variable) is expanded term by
term with :func:`~derivations._gaussian.gaussian_series`,

.. math::

    \mathbb{E}[g(u)] = \sum_{j < K} c_j\,\mathbb{E}[u^j] + O(q^{K}), \qquad
    u \sim N(0, q),

which never asks :func:`sympy.series` to expand an integral (SymPy 1.14 refutes true
expansions of :math:`\mathbb{E}[\tanh(x)^2]` that way, or runs for minutes). Each
expectation is replaced by its polynomial plus :math:`R\,x^{pK}` with a fresh symbol
:math:`R` standing for the bounded remainder; :math:`K` is raised until no :math:`R`
survives below :math:`x^k`. What is left is expanded by :func:`sympy.series`. When
``x`` is non-negative and the expression has fractional powers of ``x`` the expansion
is made in :math:`t = \sqrt{x}` (SymPy 1.14 drops the :math:`\sqrt{q}/4` term of the
series of :math:`1/(1 + e^{-\sqrt{q}})` in ``q``, but not in :math:`t`).

**Numeric guard.** Independently of SymPy's series, :math:`r` is evaluated with
``mpmath`` at :math:`x_j = \pm x_0 / 2^j`, :math:`x_0 = 1/20`, :math:`j = 0, \dots, 4`
(the negative side only for a real ``x`` that may be negative), with
:math:`30 + 3k` digits; integrals by ``mpmath.quad`` (Gaussian ones standardized to
:math:`\int g(\sqrt{q}\,u)\,\varphi(u)\,du`, every range split at 0 for kinks); other
free symbols at random positive rationals seeded by ``str(before)``. The remainder is
:math:`O(x^k)` numerically when it vanishes to working precision at the smallest
point, or when the local exponent

.. math::

    \hat m = \log_2 \frac{|r(x_{3})|}{|r(x_{4})|} \;\ge\; k - 0.3 .

A symbolic leading term :math:`c\,x^m` (:math:`m < k`) is confirmed when
:math:`r(x_4) / (c\,x_4^m)` is within 25 % of 1.

Only ``computed``, ``undecided`` and ``refuted`` come out of this module: a series
expansion is a computation, not a proof.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass

import mpmath
import sympy as sp
from sympy import stats
from sympy.stats.crv_types import NormalDistribution

from ._budget import CHECK_SECONDS, BudgetExceeded, time_budget
from ._claim import Check, Status
from ._gaussian import gaussian_series

#: The name of every check this module makes.
METHOD = "series"
#: Largest guard point; the others halve it.
GUARD_X0 = sp.Rational(1, 20)
#: Number of guard points on each side.
GUARD_POINTS = 5
#: The numeric exponent may fall short of ``k`` by this much (next-order corrections).
EXPONENT_TOLERANCE = 0.3
#: Relative tolerance on a leading coefficient confirmed numerically.
COEFFICIENT_TOLERANCE = 0.25
#: Share of the time budget the symbolic expansion may use; the guard gets the rest.
SYMBOLIC_SHARE = 0.6
#: How many times the Gaussian expansions are lengthened when too short.
_MAX_REFINEMENTS = 3
#: Split points of every quadrature range (the ones inside the range are used).
_SPLITS = (-16, -4, -1, 0, 1, 4, 16)

_U = sp.Dummy("u", real=True)
_Q = sp.Dummy("q", positive=True)
_T = sp.Dummy("t", positive=True)


class _GuardError(ValueError):
    """The numeric guard could not evaluate the remainder."""


# --------------------------------------------------------------------------- order term


@dataclass(frozen=True)
class _Order:
    """The order term of ``after``: variable, exponent ``k`` and the term itself."""

    var: sp.Symbol
    k: int
    term: sp.Order


def _order_of(after: sp.Expr) -> _Order | Check | None:
    """The order term at 0 of ``after``; ``None`` if none, a ``Check`` if unsupported."""
    if not isinstance(after, sp.Expr) or not after.has(sp.Order):
        return None
    order = after.getO() if isinstance(after, sp.Add) else after
    if not isinstance(order, sp.Order):
        return None
    if any(point != 0 for point in order.point):
        return None
    if len(order.variables) != 1:
        return _undecided(f"{order} is a multivariate order term; only O(x**k) is checked")
    (var,) = order.variables
    coeff, k = order.expr.as_coeff_exponent(var)
    if coeff.has(var) or not k.is_Rational:
        return _undecided(f"{order} is not a power of {var}; only O({var}**k) is checked")
    if not k.is_integer:
        return _undecided(
            f"{order} has a non-integer exponent {k}; order terms O({var}**k) are checked "
            "for integer k only (half-integer powers inside P are fine)"
        )
    return _Order(var, int(k), order)


def _undecided(detail: str) -> Check:
    return Check(METHOD, Status.UNDECIDED, detail)


def _budget(until: float, what: str) -> AbstractContextManager[None]:
    """:func:`time_budget` for ``what`` up to the monotonic-clock time ``until``."""
    return time_budget(max(until - time.monotonic(), 1e-3), what)


# --------------------------------------------------------------- Gaussian expectations


@dataclass(frozen=True)
class _Gaussian:
    r""":math:`\mathbb{E}[g(u)]` for :math:`u \sim N(0, w)`, ``g`` a function of ``_U``."""

    function: sp.Expr
    variance: sp.Expr

    def standardized(self) -> sp.Integral:
        r""":math:`\int g(\sqrt{w}\,u)\,\varphi(u)\,du`, scale-free for quadrature."""
        density = sp.exp(-(_U**2) / 2) / sp.sqrt(2 * sp.pi)
        g = self.function.subs(_U, sp.sqrt(self.variance) * _U)
        return sp.Integral(g * density, (_U, -sp.oo, sp.oo))

    def describe(self) -> str:
        return f"E[{self.function.subs(_U, sp.Symbol('u'))}], u ~ N(0, {self.variance})"


def _from_integral(integral: sp.Integral) -> _Gaussian | None:
    """``Integral(g(z) exp(-z**2/(2 v)) / sqrt(2 pi v), (z, -oo, oo))`` as ``(g, v)``."""
    if len(integral.limits) != 1 or len(integral.limits[0]) != 3:
        return None
    z, lo, hi = integral.limits[0]
    if (lo, hi) != (-sp.oo, sp.oo):
        return None
    f = integral.function.xreplace({z: _U})
    if isinstance(f, sp.Add):
        f = sp.factor_terms(f)  # g1 * density + g2 * density
    exponent = sp.Add(
        *[
            a.args[0]
            for a in sp.Mul.make_args(f)
            if isinstance(a, sp.exp) and a.args[0].is_polynomial(_U)
        ]
    )
    if not exponent.has(_U):
        return None
    a2 = sp.Poly(exponent, _U).coeff_monomial(_U**2)
    if a2 == 0 or a2.has(_U) or (-a2).is_positive is False:
        return None
    v = -1 / (2 * a2)
    density = sp.exp(-(_U**2) / (2 * v)) / sp.sqrt(2 * sp.pi * v)
    return _Gaussian(sp.powsimp(f / density), v)


def _from_expectation(e: stats.Expectation) -> _Gaussian | None:
    """``Expectation(g(X))`` with ``X = Normal(name, 0, s)`` as ``(g, s**2)``."""
    if len(e.args) != 1:
        return None
    rvs = stats.random_symbols(e.args[0])
    if len(rvs) != 1:
        return None
    (rv,) = rvs
    dist = rv.pspace.distribution
    if not isinstance(dist, NormalDistribution) or dist.mean != 0:
        return None
    return _Gaussian(e.args[0].xreplace({rv: _U}), dist.std**2)


def _recognise(e: sp.Basic) -> _Gaussian | None:
    if isinstance(e, sp.Integral):
        return _from_integral(e)
    if isinstance(e, stats.Expectation):
        return _from_expectation(e)
    return None


def _in_variable(gauss: _Gaussian, var: sp.Symbol) -> _Gaussian:
    """Move ``var`` from the integrand into the variance when ``g(u) = f(s u)``.

    ``gaussian_integral(f, x, q)`` stores :math:`f(\\sqrt{q} z)` against N(0, 1); for
    ``s`` in (:math:`\\sqrt{x}`, :math:`x`), ``g(u / s)`` free of ``var`` means the same
    expectation is :math:`\\mathbb{E}[f(u)]` with :math:`u \\sim N(0, v s^2)`.
    """
    if not gauss.function.has(var):
        return gauss
    for scale in (sp.sqrt(var), var):
        g = gauss.function.subs(_U, _U / scale)
        if not g.has(var):
            return _Gaussian(g, gauss.variance * scale**2)
    return gauss


@dataclass(frozen=True)
class _Replacement:
    """``before`` with its Gaussian expectations replaced by truncated expansions."""

    expr: sp.Expr
    remainders: tuple[sp.Dummy, ...]
    notes: tuple[str, ...]


def _replace_gaussians(
    before: sp.Expr, var: sp.Symbol, k: int, extra: int, until: float
) -> _Replacement:
    """Each expectation :math:`E` with variance :math:`c\\,x^p` becomes
    :math:`\\mathrm{poly}(x) + R\\,x^{pK}`, :math:`pK \\ge k + \\mathrm{extra}`."""
    mapping, remainders, notes = {}, [], []
    for e in sorted(before.atoms(sp.Integral, stats.Expectation), key=sp.default_sort_key):
        gauss = _recognise(e)
        if gauss is None:
            continue
        gauss = _in_variable(gauss, var)
        coeff, p = gauss.variance.as_coeff_exponent(var)
        if gauss.function.has(var) or coeff.has(var) or not (p.is_Rational and p > 0):
            notes.append(f"{gauss.describe()} left to sympy.series (variance not c*{var}**p)")
            continue
        order = max(1, int(sp.ceiling((k + extra) / p)))
        try:
            with _budget(until, f"gaussian_series of {gauss.describe()}"):
                value = gaussian_series(gauss.function, _U, _Q, order).value.removeO()
        except ValueError as exc:
            notes.append(f"{gauss.describe()} left to sympy.series (gaussian_series: {exc})")
            continue
        remainder = sp.Dummy("R")
        mapping[e] = value.subs(_Q, gauss.variance) + remainder * var ** (p * order)
        remainders.append(remainder)
        notes.append(f"{gauss.describe()} to O(({gauss.variance})**{order})")
    return _Replacement(before.xreplace(mapping), tuple(remainders), tuple(notes))


# ------------------------------------------------------------------ symbolic expansion


@dataclass(frozen=True)
class _Expansion:
    """``before - P`` expanded below ``x**k``: the rest and its leading term."""

    rest: sp.Expr
    leading: tuple[sp.Expr, sp.Expr] | None  # (m, c) with rest = c x^m + ...
    route: str


def _fractional(expr: sp.Expr, var: sp.Symbol) -> bool:
    return any(p.base.has(var) and not p.exp.is_integer for p in expr.atoms(sp.Pow))


def _series_rest(
    diff: sp.Expr, var: sp.Symbol, k: int, side: int, until: float
) -> tuple[sp.Expr, str]:
    """``series(diff, var, 0, k).removeO()``, in :math:`t = \\sqrt{x}` when that is safe."""
    if var.is_nonnegative and _fractional(diff, var):
        with _budget(until, f"sympy.series of before - P in sqrt({var})"):
            rest = sp.series(diff.subs(var, _T**2), _T, 0, 2 * k).removeO()
        return rest.subs(_T, sp.sqrt(var)), f"sympy.series in t = sqrt({var})"
    direction = "+" if side > 0 else "-"
    with _budget(until, f"sympy.series of before - P in {var} (dir={direction})"):
        rest = sp.series(diff, var, 0, k, dir=direction).removeO()
    return rest, f"sympy.series in {var}"


def _lowest_power(expr: sp.Expr, var: sp.Symbol, among: tuple[sp.Dummy, ...]) -> sp.Expr:
    powers = [
        t.as_coeff_exponent(var)[1] for t in sp.Add.make_args(sp.expand(expr)) if t.has(*among)
    ]
    return min(powers)


def _leading(rest: sp.Expr, var: sp.Symbol, until: float) -> tuple[sp.Expr, sp.Expr] | None:
    """``(m, c)`` for the lowest power of ``var`` with a non-zero coefficient."""
    groups: dict[sp.Expr, sp.Expr] = {}
    for term in sp.Add.make_args(sp.expand(rest)):
        coeff, power = term.as_coeff_exponent(var)
        groups[power] = groups.get(power, sp.S.Zero) + coeff
    for power in sorted(groups, key=lambda p: float(p) if p.is_number else math.inf):
        with _budget(until, f"simplify of the coefficient of {var}**{power}"):
            coeff = sp.simplify(groups[power])
        if coeff != 0:
            return power, coeff
    return None


def _expand(
    before: sp.Expr, poly: sp.Expr, order: _Order, side: int, until: float
) -> tuple[_Expansion | None, str]:
    """The symbolic route; ``(None, reason)`` when it leaves ``before`` unexpanded."""
    var, k = order.var, order.k
    extra = 0
    for _ in range(_MAX_REFINEMENTS + 1):
        replaced = _replace_gaussians(before, var, k, extra, until)
        rest, how = _series_rest(replaced.expr - poly, var, k, side, until)
        if not replaced.remainders or not rest.has(*replaced.remainders):
            break
        extra += k - int(sp.floor(_lowest_power(rest, var, replaced.remainders)))
    else:
        return None, f"the Gaussian expansions stayed too short for {order.term}"
    if any(e.has(var) for e in rest.atoms(sp.Integral, stats.Expectation)):
        notes = f" ({'; '.join(replaced.notes)})" if replaced.notes else ""
        return None, f"sympy.series left an integral unexpanded{notes}: {rest}"
    if replaced.remainders:
        route = "term-by-term Gaussian moments (" + "; ".join(replaced.notes) + f"), then {how}"
    else:
        route = how + (f" ({'; '.join(replaced.notes)})" if replaced.notes else "")
    return _Expansion(rest, _leading(rest, var, until), route), ""


# ----------------------------------------------------------------------- numeric guard


@dataclass(frozen=True)
class _Samples:
    """The remainder :math:`r(x_j)` at the guard points of one side."""

    points: tuple[sp.Rational, ...]
    remainders: tuple[mpmath.mpf, ...]
    tiny: tuple[mpmath.mpf, ...]
    dps: int

    def describe(self, var: sp.Symbol) -> str:
        pts = ", ".join(str(p) for p in self.points)
        values = ", ".join(mpmath.nstr(r, 4) for r in self.remainders)
        return f"{var} = {pts}: before - P = {values} (mpmath, {self.dps} digits)"


def _random_point(expr: sp.Expr, var: sp.Symbol, seed: str) -> dict[sp.Symbol, sp.Rational]:
    """Deterministic random values of the symbols other than ``var``."""
    rng = random.Random(seed)
    point = {}
    symbols = {s for s in expr.free_symbols if not isinstance(s, stats.rv.RandomSymbol)}
    for s in sorted(symbols - {var}, key=str):
        if s.is_integer:
            value = sp.Integer(rng.randint(1, 6))
        else:
            value = sp.Rational(rng.randint(1, 9), rng.randint(1, 9))
        point[s] = -value if s.is_negative else value
    return point


def _numeric_form(expr: sp.Expr) -> tuple[sp.Expr, dict[sp.Dummy, sp.Integral]]:
    """``expr`` with each integral (Gaussian ones standardized) replaced by a placeholder."""
    placeholders = {}
    mapping = {}
    for e in sorted(expr.atoms(sp.Integral, stats.Expectation), key=sp.default_sort_key):
        gauss = _recognise(e)
        if gauss is not None:
            integral = gauss.standardized()
        elif isinstance(e, sp.Integral):
            integral = e
        else:
            raise _GuardError(f"{e} is not an expectation of a Normal(0, s) variable")
        holder = sp.Dummy("I")
        placeholders[holder] = integral
        mapping[e] = holder
    return expr.xreplace(mapping), placeholders


def _mp(value: sp.Expr) -> mpmath.mpf:
    if value == sp.oo:
        return mpmath.inf
    if value == -sp.oo:
        return -mpmath.inf
    result = sp.lambdify((), value, modules="mpmath")()
    return _real(result, value)


def _real(value: object, what: object) -> mpmath.mpf:
    """``value`` as a finite real ``mpf``; ``_GuardError`` otherwise."""
    if isinstance(value, mpmath.mpc):
        if abs(value.imag) > mpmath.mpf(10) ** (-mpmath.mp.dps + 5) * max(1, abs(value.real)):
            raise _GuardError(f"{what} is not real: {mpmath.nstr(value, 8)}")
        value = value.real
    try:
        value = mpmath.mpf(value)
    except (TypeError, ValueError) as exc:
        raise _GuardError(f"{what} is not a number: {value!r}") from exc
    if not mpmath.isfinite(value):
        raise _GuardError(f"{what} is not finite: {value}")
    return value


def _quad(integral: sp.Integral, values: Mapping[sp.Symbol, sp.Expr]) -> mpmath.mpf:
    """``mpmath.quad`` of a one-dimensional integral, split at 0 and a few scales."""
    if len(integral.limits) != 1 or len(integral.limits[0]) != 3:
        raise _GuardError(f"only one-dimensional definite integrals are evaluated: {integral}")
    z, lo, hi = integral.limits[0]
    f = sp.lambdify(z, integral.function.subs(values), modules="mpmath")
    a, b = _mp(sp.sympify(lo).subs(values)), _mp(sp.sympify(hi).subs(values))
    points = [a, *(mpmath.mpf(s) for s in _SPLITS if a < s < b), b]
    value, error = mpmath.quad(f, points, error=True)
    value = _real(value, integral)
    if error > mpmath.mpf(10) ** (-mpmath.mp.dps + 12) * max(1, abs(value)):
        raise _GuardError(f"mpmath.quad of {integral} did not converge (error {error})")
    return value


def _evaluator(
    expr: sp.Expr, var: sp.Symbol, point: Mapping[sp.Symbol, sp.Rational]
) -> Callable[[sp.Rational], mpmath.mpf]:
    """``x -> expr(x)`` in mpmath at the current precision, integrals by quadrature."""
    form, integrals = _numeric_form(expr.subs(point))
    holders = tuple(integrals)
    func = sp.lambdify((*holders, var), form, modules="mpmath")

    def value(x: sp.Rational) -> mpmath.mpf:
        args = [_quad(integrals[h], {var: x}) for h in holders]
        return _real(func(*args, mpmath.mpf(x.p) / x.q), f"{expr} at {var} = {x}")

    return value


def _sample(
    before: sp.Expr, poly: sp.Expr, var: sp.Symbol, k: int, side: int
) -> tuple[_Samples, Callable[[sp.Expr, sp.Rational], mpmath.mpf]]:
    """:math:`r(x_j)` at the guard points of ``side``, and an evaluator for other terms."""
    point = _random_point(before - poly, var, str(before))
    dps = 30 + 3 * max(k, 0)
    points = tuple(side * GUARD_X0 / 2**j for j in range(GUARD_POINTS))
    remainders, tiny = [], []
    with mpmath.workdps(dps):
        b, p = _evaluator(before, var, point), _evaluator(poly, var, point)
        for x in points:
            bx, px = b(x), p(x)
            remainders.append(bx - px)
            tiny.append(mpmath.mpf(10) ** (-dps + 12) * max(1, abs(bx), abs(px)))

    def other(expr: sp.Expr, x: sp.Rational) -> mpmath.mpf:
        with mpmath.workdps(dps):
            return _evaluator(expr, var, point)(x)

    return _Samples(points, tuple(remainders), tuple(tiny), dps), other


def _numeric_order(samples: _Samples, var: sp.Symbol, k: int) -> tuple[bool, str]:
    """Whether :math:`r = O(x^k)` numerically, and the evidence in words."""
    (x1, x2), (r1, r2) = samples.points[-2:], samples.remainders[-2:]
    if abs(r2) <= samples.tiny[-1]:
        return True, f"before - P vanishes to working precision at {x2}"
    if abs(r1) <= samples.tiny[-2] or mpmath.sign(r1) != mpmath.sign(r2):
        return False, "before - P has not settled into a power law at the guard points"
    exponent = float(mpmath.log(abs(r1 / r2), 2))
    ok = exponent >= k - EXPONENT_TOLERANCE
    shrink = "shrinks" if ok else "does not shrink"
    return ok, f"before - P {shrink} like {var}**{k}: local exponent {exponent:.2f} at {x1}, {x2}"


def _numeric_term(
    samples: _Samples,
    leading: tuple[sp.Expr, sp.Expr],
    other: Callable[[sp.Expr, sp.Rational], mpmath.mpf],
    var: sp.Symbol,
) -> tuple[bool, str, mpmath.mpf]:
    """Whether :math:`r(x_J) / (c\\,x_J^m) \\approx 1` at the smallest guard point."""
    m, c = leading
    x, r = samples.points[-1], samples.remainders[-1]
    term = other(c * var**m, x)
    with mpmath.workdps(samples.dps):
        if term == 0:
            return False, f"{c * var**m} is 0 numerically at {var} = {x}", term
        ratio = r / term
        ok = abs(ratio - 1) <= COEFFICIENT_TOLERANCE
    return ok, f"(before - P)/({c * var**m}) = {mpmath.nstr(ratio, 6)} at {var} = {x}", term


# ---------------------------------------------------------------------------- verdicts


@dataclass(frozen=True)
class _Guard:
    """What the numeric guard found on one side."""

    samples: _Samples
    order_ok: bool
    order_evidence: str
    term_ok: bool = False
    term_evidence: str = ""
    term_value: mpmath.mpf | None = None


def _run_guard(
    before: sp.Expr, poly: sp.Expr, order: _Order, side: int, expansion: _Expansion
) -> _Guard:
    samples, other = _sample(before, poly, order.var, order.k, side)
    order_ok, order_evidence = _numeric_order(samples, order.var, order.k)
    if expansion.leading is None:
        return _Guard(samples, order_ok, order_evidence)
    term_ok, term_evidence, term = _numeric_term(samples, expansion.leading, other, order.var)
    return _Guard(samples, order_ok, order_evidence, term_ok, term_evidence, term)


def _side_check(before: sp.Expr, poly: sp.Expr, order: _Order, side: int, deadline: float) -> Check:
    """The verdict on one side of 0 (``side`` = +1 or -1)."""
    where = f"{order.var} -> 0{'+' if side > 0 else '-'}"
    now = time.monotonic()
    until = now + SYMBOLIC_SHARE * (deadline - now)
    try:
        with _budget(until, "the symbolic expansion"):
            expansion, why = _expand(before, poly, order, side, until)
    except BudgetExceeded as exc:
        return _undecided(f"{where}: {exc}")
    except Exception as exc:  # SymPy raises many kinds; any failure leaves it open
        return _undecided(f"{where}: the symbolic expansion failed: {type(exc).__name__}: {exc}")
    if expansion is None:
        return _undecided(f"{where}: {why}")
    rest = f"{expansion.rest} + {order.term}" if expansion.leading else str(order.term)
    cannot = f"{where}: {expansion.route} gives before - P = {rest}, "
    cannot += "but the numeric guard could not run: "
    try:
        with _budget(deadline, "the numeric guard"):
            guard = _run_guard(before, poly, order, side, expansion)
    except BudgetExceeded as exc:
        return _undecided(cannot + str(exc))
    except _GuardError as exc:
        return _undecided(cannot + str(exc))
    except Exception as exc:  # any evaluation error: the guard did not run
        return _undecided(cannot + f"{type(exc).__name__}: {exc}")
    return _verdict(expansion, guard, order, where)


def _verdict(expansion: _Expansion, guard: _Guard, order: _Order, where: str) -> Check:
    """Combine the symbolic rest and the numeric guard into one check."""
    var, points = order.var, guard.samples.describe(order.var)
    if expansion.leading is None:
        symbolic = f"{where}: {expansion.route} gives before - P = {order.term}"
        if guard.order_ok:
            return Check(
                METHOD,
                Status.COMPUTED,
                f"{symbolic}; numeric guard agrees ({guard.order_evidence}; {points})",
            )
        return _undecided(
            f"{symbolic}, but the numeric guard disagrees: {guard.order_evidence} ({points}); "
            "the expansion is not trusted"
        )
    m, c = expansion.leading
    symbolic = (
        f"{where}: {expansion.route} gives before - P = {expansion.rest} + {order.term}, "
        f"leading term {c * var**m}"
    )
    if guard.term_ok:
        x, r = guard.samples.points[-1], guard.samples.remainders[-1]
        return Check(
            METHOD,
            Status.REFUTED,
            f"{symbolic}, which is not {order.term}; numeric guard confirms it "
            f"({guard.term_evidence}; {points})",
            counterexample={
                str(var): str(x),
                "before - P": mpmath.nstr(r, 12),
                str(c * var**m): mpmath.nstr(guard.term_value, 12),
            },
        )
    return _undecided(
        f"{symbolic}, but the numeric guard disagrees: {guard.term_evidence}; "
        f"{guard.order_evidence} ({points})"
    )


def _sides(var: sp.Symbol) -> tuple[int, ...]:
    """Both sides of 0 for a real variable that may be negative, else the right side."""
    if var.is_real and not var.is_nonnegative:
        return (1, -1)
    return (1,)


def check_series(
    before: sp.Expr, after: sp.Expr, *, seconds: float = CHECK_SECONDS
) -> Check | None:
    r"""Check a series step ``before = P + O(x**k)``.

    Parameters
    ----------
    before : sympy.Expr
        The left-hand side; may hold Gaussian expectations (see the module notes).
    after : sympy.Expr
        ``P + O(x**k)``, the order term at ``x = 0``.
    seconds : float
        Wall-time budget of the whole check.

    Returns
    -------
    Check or None
        ``None`` when ``after`` has no order term at 0 (not a series step). Otherwise a
        ``"series"`` check: ``computed`` when the expansion and the numeric guard both
        give :math:`r = O(x^k)`; ``refuted`` when the expansion finds a term
        :math:`c\,x^m`, :math:`m < k`, and the guard confirms it (the point is the
        counterexample); ``undecided`` when they disagree, when either cannot run or
        runs out of time, or when the order term is not :math:`O(x^k)` with integer
        ``k``. Never ``proved`` or ``tested``.

    Examples
    --------
    >>> import sympy as sp
    >>> x = sp.Symbol("x", real=True)
    >>> check_series(sp.sin(x), x - x**3 / 6 + sp.O(x**5)).status
    <Status.COMPUTED: 'computed'>
    >>> check_series(sp.sin(x), x + x**3 / 6 + sp.O(x**5)).status
    <Status.REFUTED: 'refuted'>
    >>> check_series(sp.sin(x), sp.sin(x)) is None
    True
    """
    if seconds <= 0:
        raise ValueError(f"`seconds` must be positive; got seconds={seconds!r}")
    before, after = sp.sympify(before), sp.sympify(after)
    order = _order_of(after)
    if order is None or isinstance(order, Check):
        return order
    if not isinstance(before, sp.Expr) or before.has(sp.Order):
        return _undecided(f"before = {before} is not a scalar expression without order terms")
    deadline = time.monotonic() + seconds
    poly = after.removeO()
    checks = []
    try:
        with time_budget(seconds, "the series check"):
            for side in _sides(order.var):
                checks.append(_side_check(before, poly, order, side, deadline))
                if checks[-1].status is not Status.COMPUTED:
                    break
    except BudgetExceeded as exc:
        return _undecided(str(exc))
    if len(checks) == 1:
        return checks[0]
    worst = min(checks, key=lambda c: c.status.rank)
    if worst.status is not Status.COMPUTED:
        return worst
    return Check(METHOD, Status.COMPUTED, " | ".join(c.detail for c in checks))


__all__ = ["check_series"]
