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


def _series_remainder(before: sp.Expr, after: sp.Expr) -> tuple[sp.Expr, sp.Order] | None:
    """For ``after = P + O(x^k)``: the part of ``before - P`` below order ``k``."""
    order = after.getO() if isinstance(after, sp.Expr) else None
    if order is None:
        return None
    ((x, point),) = order.args[1:]
    k = sp.degree(order.expr, x) if order.expr.is_polynomial(x) else None
    if k is None:
        return None
    rest = sp.series(before - after.removeO(), x, point, int(k))
    return rest.removeO(), order


def check_algebraic(before: sp.Basic, after: sp.Basic, subs: Mapping[sp.Symbol, sp.Expr]) -> Check:
    """Show ``before == after`` under ``subs``.

    Scalars and matrices: ``simplify(before - after) == 0``; if simplification is
    inconclusive, exact evaluation at random rational points is the named fallback.
    Series (``after`` ends in an ``O(x^k)`` term): the expansion of
    ``before - P`` to order ``k`` must vanish.
    """
    before, after = sp.sympify(before).subs(subs), sp.sympify(after).subs(subs)
    series = _series_remainder(before, after)
    if series is not None:
        rest, order = series
        if _is_zero(rest):
            return Check("series", Status.PROVED, f"before - P = {order} (series expansion)")
        return Check("series", Status.REFUTED, f"before - P = {rest} + {order}")
    diff = before - after
    if _is_zero(diff):
        return Check("simplify", Status.PROVED, "simplify(before - after) = 0")
    rng = random.Random(str(diff))
    symbols = sorted(diff.free_symbols, key=str)
    for _ in range(FALLBACK_POINTS):
        point = {
            s: sp.Integer(rng.randint(1, 6))
            if s.is_integer
            else sp.Rational(rng.randint(1, 97), rng.randint(1, 97))
            for s in symbols
        }
        value = diff.subs(point)
        if not _is_zero(value):
            return Check("points", Status.REFUTED, f"before - after = {value} at {point}")
    return Check(
        "points (fallback)",
        Status.PROVED,
        f"simplify was inconclusive; before - after = 0 exactly at {FALLBACK_POINTS} "
        "random rational points",
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
            why = "; ".join(self.assumptions[u].statement for u in uses)
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
