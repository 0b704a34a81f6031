"""Machine checks of derivation steps, and the builder that records them.

Every step is checked by whatever applies:

* ``preconditions``: the rule's requirements held against the model's declarations
  (reported by the rule itself);
* ``simplify``: for steps free of expectations, SymPy shows ``before - after`` is 0
  under the assumptions the step uses; if simplification is inconclusive, exact
  evaluation at random rational points is the fallback and is named as such;
* ``instance``: for steps with random quantities, both sides are computed exactly
  with ``sympy.stats`` on a concrete small model (finite widths, concrete laws
  with the declared moments, deliberately *dependent* previous-layer entries).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from functools import lru_cache

import scipy.integrate
import sympy as sp
from sympy import stats

from ._calculus import Ex, Model, OffDiagonalSum, Rewrite, Var, substitute_definitions
from ._claim import Assumption, Check, Derivation, Status, Step

INSTANCE_WIDTHS = (2, 3)
FALLBACK_POINTS = 5


def _has_expectation(expr: sp.Basic) -> bool:
    return expr.has(Ex) or expr.has(Var)


def _is_zero(x: sp.Basic) -> bool:
    """Exact zero test for scalars and matrices (after ``doit`` and ``simplify``)."""
    if isinstance(x, sp.MatrixExpr) and not isinstance(x, sp.MatrixBase):
        x = x.as_explicit()
    if isinstance(x, sp.MatrixBase):
        return all(_is_zero(e) for e in x)
    return sp.simplify(sp.sympify(x).doit()) == 0


def _evaluate(expr: sp.Expr) -> sp.Float:
    """A number for ``expr``: integrals by adaptive quadrature (double precision,
    absolute error about 1e-14), everything else by ``evalf`` to 30 digits."""

    def quad(integral: sp.Integral) -> sp.Float:
        ((var, lo, hi),) = integral.limits
        f = sp.lambdify(var, integral.function, modules=["scipy", "numpy"])
        value, _ = scipy.integrate.quad(f, float(lo), float(hi), epsabs=1e-14, epsrel=1e-13)
        return sp.Float(value, 30)

    return expr.replace(lambda e: isinstance(e, sp.Integral), quad).evalf(30)


def _numeric_series_check(
    before: sp.Expr, poly: sp.Expr, x: sp.Symbol, k: int, rng: random.Random
) -> bool | None:
    """Does ``before - poly`` shrink like ``x^k`` near 0 numerically (50 digits)?

    ``None`` when the evaluation is not a finite real number.
    """
    diff = (before - poly).replace(lambda e: isinstance(e, stats.Expectation), lambda e: e.doit())
    others = sorted(diff.free_symbols - {x}, key=str)
    point = {s: sp.Rational(rng.randint(1, 9), rng.randint(1, 9)) for s in others}
    diff = diff.subs(point)
    x0 = sp.Rational(1, 50)
    try:
        a = sp.Abs(_evaluate(diff.subs(x, x0)))
        b = sp.Abs(_evaluate(diff.subs(x, x0 / 2)))
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    if not (a.is_Number and b.is_Number and a.is_finite and b.is_finite):
        return None
    if a < sp.Float(10) ** (-25):
        return True
    # O(x^k): halving x divides the remainder by about 2^k (at least 2^(k - 1/2))
    return bool(a / b >= 2 ** (k - sp.Rational(1, 2)))


def _series_check(before: sp.Expr, after: sp.Expr) -> Check | None:
    """For ``after = P + O(x^k)``: expand ``before - P`` to order ``k``, then cross-check
    numerically that the remainder shrinks like ``x^k`` (SymPy's series of some
    composite functions, e.g. of ``exp(-sqrt(q))``, can drop terms)."""
    order = after.getO() if isinstance(after, sp.Expr) else None
    if order is None:
        return None
    ((x, point),) = order.args[1:]
    if point != 0 or not order.expr.is_polynomial(x):
        return None
    k = int(sp.degree(order.expr, x))
    poly = after.removeO()
    rest = sp.series(before - poly, x, 0, k).removeO()
    if not _is_zero(rest):
        return Check("series", Status.REFUTED, f"before - P = {rest} + {order}")
    numeric = _numeric_series_check(before, poly, x, k, random.Random(str(before)))
    if numeric is False:
        return Check(
            "series",
            Status.UNDECIDED,
            f"the series of before - P vanishes to {order}, but numerically the remainder "
            f"does not shrink like {order.expr} near 0: the expansion is not trusted",
        )
    how = "numeric check" if numeric else "no numeric value to cross-check"
    return Check("series", Status.PROVED, f"before - P = {order} (series expansion; {how})")


def check_algebraic(before: sp.Basic, after: sp.Basic, subs: Mapping[sp.Symbol, sp.Expr]) -> Check:
    """Show ``before == after`` under ``subs``.

    Scalars and matrices: ``simplify(before - after) == 0``. If simplification is
    inconclusive, exact evaluation at random rational points is the named fallback:
    proved when every point gives exactly 0, refuted when a point gives a number
    that is not 0 to 50 digits, undecided otherwise. Series (``after`` ends in an
    ``O(x^k)`` term): the expansion of ``before - P`` to order ``k`` must vanish, and
    the remainder must shrink like ``x^k`` numerically.
    """
    before, after = sp.sympify(before).subs(subs), sp.sympify(after).subs(subs)
    series = _series_check(before, after)
    if series is not None:
        return series
    diff = before - after
    if _is_zero(diff):
        return Check("simplify", Status.PROVED, "simplify(before - after) = 0")
    rng = random.Random(str(diff))
    symbols = sorted(diff.free_symbols, key=str)
    exact = True
    for _ in range(FALLBACK_POINTS):
        point = {
            s: sp.Integer(rng.randint(1, 6))
            if s.is_integer
            else sp.Rational(rng.randint(1, 97), rng.randint(1, 97))
            for s in symbols
        }
        value = diff.subs(point)
        if _is_zero(value):
            continue
        exact = False
        try:
            numeric = [
                sp.Abs(v).evalf(50)
                for v in (value if isinstance(value, sp.MatrixBase) else [value])
            ]
        except (TypeError, ValueError):
            continue
        if any(v.is_Number and v > sp.Float(10) ** (-30) for v in numeric):
            return Check("points", Status.REFUTED, f"before - after = {value} at {point}")
    if exact:
        return Check(
            "points (fallback)",
            Status.PROVED,
            f"simplify was inconclusive; before - after = 0 exactly at {FALLBACK_POINTS} "
            "random rational points",
        )
    return Check(
        "points (fallback)",
        Status.UNDECIDED,
        "simplify was inconclusive and some points are 0 only numerically (to 30 digits)",
    )


@lru_cache(maxsize=4096)
def _instance_value(expr: sp.Expr, model: Model, n: int, params: tuple) -> sp.Expr:
    values = dict(params)
    e = substitute_definitions(expr, model).after
    e = e.subs({model.width: n, **model.free_indices}).subs(values)
    e = e.doit()
    shared: dict = {}
    rvs = {}
    for atom in sorted(model.atoms(e), key=str):
        fam = model.family(atom.base)
        rvs[atom] = fam.instance(tuple(int(i) for i in atom.indices), shared, values)
    e = e.xreplace(rvs)
    e = e.replace(lambda x: isinstance(x, Var), lambda x: stats.variance(x.args[0]))
    e = e.replace(lambda x: isinstance(x, Ex), lambda x: stats.E(x.args[0]))
    return sp.simplify(e)


def check_instance(
    before: sp.Expr, after: sp.Expr, model: Model, subs: Mapping[sp.Symbol, sp.Expr]
) -> Check:
    """Both sides computed exactly on the model's concrete instance at small widths."""
    params = {**model.instance_params, **subs}
    key = tuple(sorted(params.items(), key=lambda kv: str(kv[0])))
    for n in INSTANCE_WIDTHS:
        lhs = _instance_value(before, model, n, key)
        rhs = _instance_value(after, model, n, key)
        if sp.simplify(lhs - rhs) != 0:
            return Check(
                f"instance n={n}",
                Status.REFUTED,
                f"on the concrete instance, before = {lhs} but after = {rhs}",
            )
    widths = ",".join(map(str, INSTANCE_WIDTHS))
    shown = ", ".join(f"{k} = {v}" for k, v in key)
    return Check(
        f"instance n={widths}",
        Status.PROVED,
        f"both sides equal exactly with sympy.stats at n = {widths} ({shown})",
    )


class Chain:
    """Builds a :class:`Derivation`, checking every step as it is added.

    ``apply`` runs a rule of the moment calculus (``model`` required); ``step``
    records a rewrite computed directly by SymPy (``diff``, ``series``,
    ``integrate``, ``Matrix.jacobian``, ...), checked by :func:`check_algebraic`
    plus any extra checks the caller supplies.
    """

    def __init__(
        self,
        name: str,
        start: sp.Basic,
        model: Model | None = None,
        assumptions: tuple[Assumption, ...] = (),
    ) -> None:
        self.name = name
        self.start = start
        self.current = start
        self.model = model
        self.assumptions = {a.name: a for a in assumptions}
        self.steps: list[Step] = []

    def _subs(self, uses: tuple[str, ...]) -> dict:
        subs: dict = {}
        for name in uses:
            subs.update(self.assumptions[name].subs)
        return subs

    def _record(
        self, after: sp.Basic, rule: str, why: str, checks: list[Check], uses: tuple[str, ...]
    ) -> Chain:
        if uses:
            used = "; ".join(self.assumptions[u].statement for u in uses)
            why = used if why in ("", "assumption") else f"{why}; using: {used}"
        self.steps.append(Step(self.current, after, rule, why, tuple(checks), uses))
        self.current = after
        return self

    def apply(
        self, rule: Callable[[sp.Expr, Model], Rewrite], *, uses: tuple[str, ...] = ()
    ) -> Chain:
        if self.model is None:
            raise ValueError(f"chain {self.name!r} has no model; rules need one")
        before = self.current
        rewrite = rule(before, self.model)
        if rewrite.after == before:
            raise ValueError(f"rule {rule.__name__!r} left {before} unchanged in {self.name!r}")
        subs = self._subs(uses)
        checks = list(rewrite.preconditions)
        random_side = self.model.is_random(before) or self.model.is_random(rewrite.after)
        if _has_expectation(before) or _has_expectation(rewrite.after) or random_side:
            checks.append(check_instance(before, rewrite.after, self.model, subs))
        else:
            checks.append(check_algebraic(before, rewrite.after, subs))
        return self._record(
            rewrite.after, rule.__name__.replace("_", " "), rewrite.why, checks, uses
        )

    def step(
        self,
        after: sp.Basic,
        rule: str,
        why: str,
        *,
        uses: tuple[str, ...] = (),
        extra: tuple[Check, ...] = (),
    ) -> Chain:
        """Record ``current = after``, computed by SymPy, and check it algebraically."""
        checks = [check_algebraic(self.current, after, self._subs(uses)), *extra]
        return self._record(after, rule, why, checks, uses)

    def assume(self, name: str) -> Chain:
        """Substitute what the equality assumption ``name`` fixes (e.g. a zero mean)."""
        subs = self.assumptions[name].subs

        def use_assumption(expr: sp.Expr, model: Model) -> Rewrite:
            return Rewrite(sp.simplify(expr.subs(subs)), "assumption", ())

        return self.apply(use_assumption, uses=(name,))

    def done(self) -> Derivation:
        return Derivation(self.name, self.start, tuple(self.steps))


__all__ = ["Chain", "OffDiagonalSum", "check_algebraic", "check_instance"]
