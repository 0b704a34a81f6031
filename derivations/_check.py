"""Machine checks of derivation steps, and the builder that records them.

Every step is checked by whatever applies, and each check says what it establishes:

* the **kernel** (:mod:`derivations._kernel`) alone says ``proved``: ``simplify``
  shows ``before - after`` is 0 under the symbols' declared assumptions, or a trusted
  rule is applied with its obligations entailed by the model's declarations;
* a step SymPy **computed** (an unevaluated ``Integral``, ``Derivative``, ``Sum``,
  ``Subs`` or series on one side) is ``computed``, cross-checked numerically where a
  numeric route exists (quadrature, finite differences, a numeric remainder);
* **points** drawn from each symbol's declared domain (negative values and 0 for
  reals, large integers, both sides of every kink) give ``tested`` or a
  counterexample;
* **instances** generated from the network itself (:mod:`derivations._instance`)
  give ``tested`` or a counterexample for steps with random quantities.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence

import mpmath
import sympy as sp

from ._budget import CHECK_SECONDS, BudgetExceeded, time_budget
from ._calculus import Ex, Model, OffDiagonalSum, Rewrite, Var
from ._claim import Assumption, Check, Derivation, Status, Step
from ._instance import check_instance
from ._kernel import (
    discharge,
    gaussian_lemma,
    has_operator,
    instantiate,
    prove_identity,
    prove_orders,
)
from ._series import check_series

#: Points drawn from the declared domain by :func:`check_points`.
POINTS = 12
#: A value at a point counts as nonzero beyond this (evaluated to 50 digits).
ZERO_TOLERANCE = sp.Float(10) ** (-30)
_KINKS = (sp.Max, sp.Min, sp.Abs, sp.Heaviside, sp.sign)


def _has_expectation(expr: sp.Basic) -> bool:
    return expr.has(Ex) or expr.has(Var)


def _entries(x: sp.Basic) -> list[sp.Expr]:
    if isinstance(x, sp.MatrixExpr) and not isinstance(x, sp.MatrixBase):
        x = x.as_explicit()
    if isinstance(x, sp.MatrixBase):
        return list(x)
    return [sp.sympify(x)]


def _candidates(s: sp.Symbol) -> list[sp.Rational]:
    """Values of ``s`` from its whole declared domain, extremes included."""
    R = sp.Rational
    if s.is_integer:
        if s.is_positive:
            return [sp.Integer(v) for v in (1, 2, 3, 7, 50, 1000)]
        if s.is_nonnegative:
            return [sp.Integer(v) for v in (0, 1, 2, 7, 50, 1000)]
        return [sp.Integer(v) for v in (-7, -1, 0, 1, 2, 50, 1000)]
    positive = [R(1, 97), R(1, 3), sp.Integer(1), R(5, 2), sp.Integer(50), R(10**6, 7)]
    if s.is_positive:
        return positive
    if s.is_nonnegative:
        return [sp.Integer(0), *positive]
    if s.is_negative:
        return [-v for v in positive]
    if s.is_nonpositive:
        return [sp.Integer(0), *(-v for v in positive)]
    return [R(-50), R(-5, 2), R(-1, 3), sp.Integer(0), R(1, 97), R(1, 3), sp.Integer(1), R(5, 2)]


def _in_domain(s: sp.Symbol, v: sp.Rational) -> bool:
    checks = {
        "integer": v.is_integer,
        "positive": v > 0,
        "nonnegative": v >= 0,
        "negative": v < 0,
        "nonpositive": v <= 0,
    }
    return all(ok for name, ok in checks.items() if getattr(s, f"is_{name}"))


def _kink_values(expr: sp.Basic) -> dict[sp.Symbol, list[sp.Rational]]:
    """Both sides of every kink whose argument is linear in one symbol."""
    args: list[sp.Expr] = []
    for e in sp.preorder_traversal(expr):
        if isinstance(e, _KINKS):
            args.extend(e.args if isinstance(e, (sp.Max, sp.Min)) else e.args[:1])
        elif isinstance(e, sp.Piecewise):
            for _, cond in e.args:
                if isinstance(cond, sp.core.relational.Relational):
                    args.append(cond.lhs - cond.rhs)
    out: dict[sp.Symbol, list[sp.Rational]] = {}
    eps = sp.Rational(1, 97)
    for a in args:
        syms = a.free_symbols
        if len(syms) != 1:
            continue
        (x,) = syms
        if not sp.Poly(a, x).is_linear if a.is_polynomial(x) else True:
            continue
        root = sp.solve(a, x)
        if len(root) == 1 and root[0].is_Rational:
            out.setdefault(x, []).extend([root[0] - eps, root[0], root[0] + eps])
    return out


def _points(expr: sp.Basic, rng: random.Random) -> list[dict[sp.Symbol, sp.Rational]]:
    symbols = sorted(expr.free_symbols, key=str)
    kinks = _kink_values(expr)
    pools = {}
    for s in symbols:
        pool = [v for v in [*kinks.get(s, []), *_candidates(s)] if _in_domain(s, v)]
        pools[s] = list(dict.fromkeys(pool))
    points = []
    for k in range(POINTS):
        points.append(
            {
                s: pools[s][(k + i) % len(pools[s])] if k < len(pools[s]) else rng.choice(pools[s])
                for i, s in enumerate(symbols)
            }
        )
    return points


def _numeric(expr: sp.Expr) -> sp.Expr:
    """A 50-digit value of ``expr``; integrals by ``mpmath.quad`` (split at 0),
    derivatives by ``mpmath.diff`` (finite differences), never by SymPy's calculus."""

    def quad(e: sp.Integral) -> sp.Expr:
        if len(e.limits) != 1 or len(e.limits[0]) != 3:
            raise ValueError("only single definite integrals are evaluated numerically")
        var, lo, hi = e.limits[0]
        if e.function.free_symbols - {var}:
            raise ValueError("the integrand has free symbols")
        f = sp.lambdify(var, e.function, modules="mpmath")
        lo_, hi_ = (
            mpmath.mpf(sp.N(lo, 50)) if lo.is_finite else mpmath.ninf,
            (mpmath.mpf(sp.N(hi, 50)) if hi.is_finite else mpmath.inf),
        )
        cuts = [lo_, 0, hi_] if lo_ < 0 < hi_ else [lo_, hi_]
        return sp.Float(mpmath.quad(f, cuts), 40)

    def derivative(e: sp.Subs) -> sp.Expr:
        inner, (var,), (at,) = e.args
        if not isinstance(inner, sp.Derivative):
            return e.doit()
        ((dvar, order),) = inner.variable_count
        f = sp.lambdify(dvar, inner.expr.subs(var, dvar), modules="mpmath")
        return sp.Float(mpmath.diff(f, mpmath.mpf(sp.N(at, 50)), int(order)), 40)

    def finite(e: sp.Basic) -> sp.Basic:
        """Sums and products over numeric ranges, term by term."""
        if all(lim[1].is_Integer and lim[2].is_Integer for lim in e.limits):
            return e.doit(deep=False)
        raise ValueError(f"{type(e).__name__} over a symbolic range")

    with mpmath.workdps(50):
        expr = expr.replace(lambda e: isinstance(e, sp.Subs), derivative)
        expr = expr.replace(lambda e: isinstance(e, sp.Integral), quad)
        expr = expr.replace(lambda e: isinstance(e, (sp.Sum, sp.Product)), finite)
        expr = expr.replace(lambda e: type(e).__name__ == "OffDiagonalSum", lambda e: e.doit())
        if has_operator(expr):
            raise ValueError("an operator has no numeric route here")
        value = expr.evalf(50)
        if not value.is_Number:
            raise ValueError(f"no numeric value: {value}")
        return value


def _tolerance(expr: sp.Basic, scale: sp.Expr) -> sp.Expr:
    """How far from 0 a value of ``expr`` must be to count as nonzero: 1e-30 for exact
    input evaluated at 50 digits; relative 1e-12 when ``expr`` holds floating-point
    numbers (they carry about 15 digits)."""
    if any(isinstance(a, sp.Float) for a in sp.preorder_traversal(expr)):
        return sp.Float("1e-12") * (1 + abs(scale))
    return ZERO_TOLERANCE * (1 + abs(scale))


def _exact(value: sp.Expr) -> sp.Expr:
    """``value`` simplified, and rewritten in ``exp`` when that shows it is 0."""
    value = sp.simplify(value)
    if value != 0 and value.has(sp.tanh, sp.sinh, sp.cosh, sp.exp):
        rewritten = sp.simplify(value.rewrite(sp.exp))
        if rewritten == 0:
            return rewritten
    return value


def check_points(diff: sp.Basic, rng: random.Random, method: str = "points") -> Check:
    """``before - after`` at :data:`POINTS` points of the declared domain.

    ``refuted`` with the point when a value is nonzero (exactly, or beyond
    :data:`ZERO_TOLERANCE` at 50 digits); ``tested`` when every point where the
    expression is defined gives exactly 0; ``undecided`` otherwise.
    """
    exact = evaluated = 0
    for point in _points(diff, rng):
        try:
            values = [_exact(e.subs(point)) for e in _entries(diff)]
        except (TypeError, ValueError, ZeroDivisionError):
            continue
        if all(v == 0 for v in values):
            exact += 1
            evaluated += 1
            continue
        try:
            numeric = [_numeric(v) for v in values]
        except (TypeError, ValueError, ZeroDivisionError):
            continue
        if any(v.has(sp.nan, sp.zoo, sp.oo, -sp.oo) or not v.is_real for v in numeric):
            continue  # the expression is not defined (or not real) here
        evaluated += 1
        if any(abs(v) > _tolerance(diff, v) for v in numeric):
            shown = {str(k): str(v) for k, v in point.items()}
            value = values[0] if len(values) == 1 else sp.Matrix(values)
            return Check(
                method,
                Status.REFUTED,
                f"before - after = {value} at {shown}, not 0",
                shown,
            )
    if evaluated and exact == evaluated:
        return Check(
            method,
            Status.TESTED,
            f"before - after = 0 exactly at {evaluated} points of the declared domain "
            "(negative values and 0 where allowed, large integers, both sides of kinks)",
        )
    if evaluated:
        return Check(
            method,
            Status.UNDECIDED,
            "some points are 0 only within the numeric tolerance, not exactly",
        )
    return Check(method, Status.UNDECIDED, "before - after could not be evaluated at any point")


def _computed(before: sp.Basic, after: sp.Basic, rng: random.Random) -> Check | None:
    """SymPy evaluates the operators; an independent numeric route cross-checks."""
    if not (has_operator(before) or has_operator(after)):
        return None
    try:
        with time_budget(CHECK_SECONDS, "doit and simplify"):
            diff = [sp.simplify(e.doit()) for e in _entries(before - after)]
    except BudgetExceeded as exc:
        return Check("sympy", Status.UNDECIDED, str(exc))
    except (TypeError, ValueError, NotImplementedError) as exc:
        return Check("sympy", Status.UNDECIDED, f"SymPy could not evaluate: {exc}")
    if any(d != 0 for d in diff):
        points = check_points(sp.Add(*[abs(d) for d in diff]) if len(diff) > 1 else diff[0], rng)
        if points.status is not Status.TESTED:
            return points
    cross = _cross_check(before, after, rng)
    if cross.status is Status.REFUTED:
        return cross
    return Check(
        "sympy",
        Status.COMPUTED,
        f"SymPy evaluated the operators and before - after = 0; {cross.detail}",
    )


def _cross_check(before: sp.Basic, after: sp.Basic, rng: random.Random) -> Check:
    symbols = (
        sorted((before - after).free_symbols, key=str)
        if not isinstance(before, sp.MatrixBase)
        else []
    )
    if isinstance(before, sp.MatrixBase):
        return Check("numeric", Status.UNDECIDED, "no independent cross-check for a matrix")
    pools = {s: [v for v in _candidates(s) if abs(v) < 60] for s in symbols}
    shown = []
    for _ in range(2):
        point = {s: rng.choice(pools[s]) for s in symbols}
        try:
            with time_budget(CHECK_SECONDS, "numeric cross-check"):
                b, a = _numeric(before.subs(point)), _numeric(after.subs(point))
        except (BudgetExceeded, TypeError, ValueError, ZeroDivisionError, AttributeError):
            return Check("numeric", Status.UNDECIDED, "no independent cross-check")
        if not (b.is_real and a.is_real and b.is_finite and a.is_finite):
            return Check("numeric", Status.UNDECIDED, "no independent cross-check")
        if abs(b - a) > _tolerance(before - after, b):
            example = {str(k): str(v) for k, v in point.items()}
            return Check(
                "numeric",
                Status.REFUTED,
                f"numerically before = {b:.20g} but after = {a:.20g} at {example}",
                example,
            )
        shown.append(", ".join(f"{k} = {v}" for k, v in point.items()) or "the constant")
    return Check(
        "numeric",
        Status.TESTED,
        "cross-checked numerically (quadrature, finite differences, 50 digits) at "
        + "; ".join(shown),
    )


def check_algebraic(before: sp.Basic, after: sp.Basic, subs: Mapping[sp.Symbol, sp.Expr]) -> Check:
    """Check ``before == after`` under ``subs`` (the assumptions the step uses).

    In this order: a series step (``after`` ends in ``O(x^k)``) by
    :func:`~derivations._series.check_series`; a proof by the kernel; a SymPy
    computation with a numeric cross-check; points from the declared domain.
    """
    before, after = sp.sympify(before).subs(subs), sp.sympify(after).subs(subs)
    rng = random.Random(f"{before}|{after}")
    if isinstance(before, sp.Expr) and before.has(sp.Order):
        orders = prove_orders(gaussian_lemma(before), gaussian_lemma(after))
        if orders is not None:
            return orders
    if isinstance(after, sp.Expr) and not isinstance(after, sp.MatrixBase):
        series = check_series(before, gaussian_lemma(after))
        if series is not None:
            return series
    proof = prove_identity(before, after) or prove_orders(before, after)
    if proof is not None:
        return proof
    b, a = gaussian_lemma(before), gaussian_lemma(after)
    computed = _computed(b, a, rng)
    if computed is not None:
        return computed
    try:
        return check_points(b - a, rng)
    except BudgetExceeded as exc:  # pragma: no cover - points are exact and small
        return Check("points", Status.UNDECIDED, str(exc))


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
        checks = [discharge(rule, self.model, rewrite.obligations)]
        checks.append(self._evidence(before, rewrite.after, subs, rewrite.obligations))
        return self._record(
            rewrite.after, rule.__name__.replace("_", " "), rewrite.why, checks, uses
        )

    def apply_all(self, rules: Sequence[Callable[[sp.Expr, Model], Rewrite]]) -> Chain:
        """:meth:`apply` each of ``rules`` in turn (a recipe such as
        :data:`~derivations._calculus.MOMENT_OF_SUM`)."""
        for rule in rules:
            self.apply(rule)
        return self

    def _evidence(self, before, after, subs, obligations=()) -> Check:
        random_side = self.model is not None and (
            self.model.is_random(before) or self.model.is_random(after)
        )
        if _has_expectation(before) or _has_expectation(after) or random_side:
            if self.model is None:
                return Check("instance", Status.UNDECIDED, "no model to build an instance")
            return check_instance(before, after, self.model, subs, obligations, seed=self.name)
        return check_algebraic(before, after, subs)

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

    def use(
        self,
        claim_id: str,
        derivation: Derivation,
        values: Mapping | None = None,
        *,
        lhs: sp.Basic | None = None,
    ) -> Chain:
        """Replace the current expression by another claim's result, as a recorded step.

        The current expression must be the used derivation's start with ``values``
        substituted (or ``lhs``, the part of it being replaced); the kernel checks
        that, and that each value lies in its symbol's domain. The step is as strong as
        the used derivation.
        """
        values = dict(values or {})
        target = self.current if lhs is None else lhs
        name = f"{claim_id} ({derivation.name})"
        check = instantiate(
            derivation.start, derivation.result, derivation.status, values, target, name
        )
        result = sp.sympify(derivation.result).xreplace(values)
        after = result if lhs is None else self.current.xreplace({lhs: result})
        inherited = sorted({u for s in derivation.steps for u in s.uses})
        why = f"{derivation.name}: {sp.sstr(derivation.start)} = {sp.sstr(derivation.result)}"
        if inherited:
            why += f", under its assumptions {', '.join(inherited)}"
        return self._record(after, f"uses {claim_id}", why, [check], ())

    def assume(self, name: str) -> Chain:
        """Substitute what the equality assumption ``name`` fixes (e.g. a zero mean).

        Substituting equals is proved when ``simplify`` shows the result equals
        ``before`` with the substitution made; the generated instance (which satisfies
        the assumption) is the evidence otherwise.
        """
        subs = self.assumptions[name].subs
        before = self.current
        after = sp.simplify(before.subs(subs))
        if after == before:
            raise ValueError(f"assumption {name!r} left {before} unchanged in {self.name!r}")
        proof = prove_identity(before.subs(subs), after)
        checks = [proof] if proof is not None else []
        checks.append(self._evidence(before, after, subs))
        return self._record(after, "assumption", "", checks, (name,))

    def done(self) -> Derivation:
        return Derivation(self.name, self.start, tuple(self.steps))


__all__ = ["Chain", "OffDiagonalSum", "check_algebraic", "check_instance", "check_points"]
