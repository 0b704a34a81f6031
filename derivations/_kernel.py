r"""The checking kernel: the only code that may say ``proved``.

Everything else in :mod:`derivations` (the rules of the moment calculus, SymPy
computations, exact instances, points) produces *candidates* and *evidence*; this
module alone turns an argument into :attr:`Status.PROVED`, and only when the argument
is symbolic and valid on the whole declared domain of every symbol. It can be read
in one sitting. Four routes lead to a proof:

1. :func:`prove_identity`: SymPy's ``simplify`` shows ``before - after`` is 0 under
   the symbols' declared assumptions, with no unevaluated operator (``Integral``,
   ``Derivative``, ``Sum``, ...) left for SymPy to compute.
2. :func:`gaussian_lemma`: a whole-line Gaussian integral of a piecewise polynomial
   is replaced by its value from the symmetrised integrand and the moments
   :math:`\mathbb{E}[z^{2m}] = (2m-1)!!\,s^m`, then route 1 applies.
3. :func:`discharge`: a rule of the moment calculus that the kernel trusts (one of
   :data:`LEMMAS`), applied with every precondition (:class:`Obligation`) entailed by
   the model's declarations.
4. :func:`disproof` and :func:`sign`: a statement is proved false by an exact
   counterexample, and a sign by SymPy's assumption system.

References
----------
.. [1] J. Harrison, HOL Light's ``fusion.ml``: a small kernel alone makes theorems.
.. [2] L. de Moura et al., "The Lean 4 theorem prover and programming language"
   (2021): elaboration outside the kernel, acceptance inside it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

import sympy as sp
from sympy import stats

from ._budget import CHECK_SECONDS, BudgetExceeded, time_budget
from ._claim import Check, Status

#: Unevaluated operators: an identity that contains one is a SymPy *computation*.
OPERATORS: tuple[type, ...] = (
    sp.Integral,
    sp.Derivative,
    sp.Sum,
    sp.Product,
    sp.Subs,
    sp.Limit,
    sp.Order,
    stats.Expectation,
    stats.Variance,
    stats.Probability,
)


def has_operator(expr: sp.Basic) -> bool:
    """Whether ``expr`` still holds an operator SymPy would have to evaluate."""
    return any(expr.has(op) for op in OPERATORS) or any(
        type(e).__name__ == "OffDiagonalSum" for e in sp.preorder_traversal(expr)
    )


def _explicit(x: sp.Basic) -> sp.Basic:
    """A matrix expression (``A + B C``) as an explicit matrix; anything else as is."""
    if isinstance(x, sp.MatrixExpr) and not isinstance(x, sp.MatrixBase):
        return x.as_explicit()
    return x


def _entries(x: sp.Basic) -> list[sp.Expr]:
    x = _explicit(x)
    return list(x) if isinstance(x, sp.MatrixBase) else [sp.sympify(x)]


# --------------------------------------------------------------------- route 1 and 2


def prove_identity(before: sp.Basic, after: sp.Basic) -> Check | None:
    """``proved`` when ``simplify(before - after)`` is 0 with no operator to evaluate.

    Returns ``None`` when this route does not apply or does not succeed; the caller
    then looks for evidence. Runs under the kernel's time budget.
    """
    lemma = gaussian_lemma(before), gaussian_lemma(after)
    how = (
        "Gaussian moments of the symmetrised integrand, then simplify(before - after) = 0"
        if lemma != (before, after)
        else "simplify(before - after) = 0"
    )
    before, after = _explicit(lemma[0]), _explicit(lemma[1])
    if has_operator(before) or has_operator(after):
        return None
    matrices = isinstance(before, sp.MatrixBase), isinstance(after, sp.MatrixBase)
    if matrices[0] != matrices[1] or (all(matrices) and before.shape != after.shape):
        return None
    try:
        diff = _entries(before - after)
        with time_budget(CHECK_SECONDS, "simplify"):
            if all(sp.simplify(d) == 0 or sp.simplify(d.rewrite(sp.exp)) == 0 for d in diff):
                return Check("simplify", Status.PROVED, how)
    except BudgetExceeded:
        return None
    except (TypeError, ValueError, AttributeError, sp.ShapeError):
        return None
    return None


def prove_orders(before: sp.Basic, after: sp.Basic) -> Check | None:
    """``proved`` for ``P + O(x^a) = Q + O(x^b)`` at ``x -> 0`` when ``a >= b`` and the
    polynomial ``P - Q`` has no power of ``x`` below ``b`` (exact polynomial arithmetic).

    Returns ``None`` when both sides are not such truncated expansions in one variable.
    """
    if not (isinstance(before, sp.Expr) and isinstance(after, sp.Expr)):
        return None
    before, after = sp.expand(before), sp.expand(after)
    ob, oa = before.getO(), after.getO()
    if ob is None or oa is None or ob.variables != oa.variables or len(oa.variables) != 1:
        return None
    (x,) = oa.variables
    if any(p != 0 for p in (*ob.point, *oa.point)):
        return None
    kb, ka = sp.degree(ob.expr, x), sp.degree(oa.expr, x)
    if not (ob.expr.is_polynomial(x) and oa.expr.is_polynomial(x)) or kb < ka:
        return None
    diff = sp.expand(before.removeO() - after.removeO())
    if not diff.is_polynomial(x):
        return None
    low = sorted((k, c) for (k,), c in sp.Poly(diff, x).terms() if k < ka and sp.simplify(c) != 0)
    if low:
        k, c = low[0]
        return Check(
            "orders",
            Status.REFUTED,
            f"the truncated expansions differ by {c}*{x}**{k}, below the order {oa}",
            {"term": str(c * x**k)},
        )
    return Check(
        "orders",
        Status.PROVED,
        f"the truncated expansions differ by a polynomial in {x} of order at least {ka}",
    )


def _gaussian_scale(density: sp.Expr, z: sp.Symbol) -> sp.Expr | None:
    """``s`` when ``density`` is the :math:`N(0, s)` density in ``z``, else ``None``."""
    exps = [e for e in sp.Mul.make_args(density) if isinstance(e, sp.exp)]
    for e in exps:
        arg = sp.expand(e.args[0])
        c = arg.coeff(z, 2)
        if c == 0 or sp.expand(arg - c * z**2) != 0:
            continue
        s = sp.simplify(-1 / (2 * c))
        if s.free_symbols & {z} or s.is_positive is not True:
            continue
        return s
    return None


def _piecewise_polynomial(f: sp.Expr, z: sp.Symbol) -> bool:
    folded = sp.piecewise_fold(f.rewrite(sp.Piecewise))
    pieces = folded.args if isinstance(folded, sp.Piecewise) else ((folded, True),)
    return all(sp.simplify(p).is_polynomial(z) for p, _ in pieces)


def _gaussian_value(integral: sp.Integral) -> sp.Expr | None:
    r""":math:`\int_{-\infty}^{\infty} F(z)\,\varphi_s(z)\,dz` for piecewise-polynomial ``F``.

    With :math:`S(z) = (F(z) + F(-z))/2` (the law is symmetric, so both have the same
    expectation) a polynomial :math:`\sum_k c_k z^k`, the value is
    :math:`\sum_m c_{2m} (2m-1)!!\, s^m`. A piecewise polynomial has finite Gaussian
    moments, so the integral exists.
    """
    if len(integral.limits) != 1 or len(integral.limits[0]) != 3:
        return None
    z, lo, hi = integral.limits[0]
    if not (lo == -sp.oo and hi == sp.oo):
        return None
    integrand = integral.function
    s = _gaussian_scale(integrand, z)
    if s is None:
        return None
    density = sp.exp(-(z**2) / (2 * s)) / sp.sqrt(2 * sp.pi * s)
    f = sp.simplify(integrand / density)
    if f.has(sp.exp(-(z**2) / (2 * s))) or not _piecewise_polynomial(f, z):
        return None
    even = sp.simplify(sp.piecewise_fold(((f + f.subs(z, -z)) / 2).rewrite(sp.Piecewise)))
    if not even.is_polynomial(z):
        return None
    poly = sp.Poly(sp.expand(even), z)
    return sp.Add(
        *[c * sp.factorial2(k - 1) * s ** (k // 2) for (k,), c in poly.terms() if k % 2 == 0]
    )


def _normal_moments(e: stats.Expectation) -> sp.Expr | None:
    r""":math:`\mathbb{E}[p(X)]` for a polynomial ``p`` of one ``sympy.stats`` Normal ``X``."""
    if len(e.args) != 1:
        return None
    arg = e.args[0]
    rvs = list(stats.random_symbols(arg))
    if len(rvs) != 1:
        return None
    (X,) = rvs
    dist = X.pspace.distribution
    if type(dist).__name__ != "NormalDistribution" or not arg.is_polynomial(X):
        return None
    mean, std = dist.args
    z = sp.Dummy("z")
    poly = sp.Poly(sp.expand(arg.subs(X, mean + std * z)), z)
    return sp.Add(*[c * sp.factorial2(k - 1) for (k,), c in poly.terms() if k % 2 == 0])


def gaussian_lemma(expr: sp.Basic) -> sp.Basic:
    r"""Replace each Gaussian expectation of a (piecewise) polynomial by its value.

    Whole-line integrals against a Gaussian density, and ``sympy.stats``
    expectations of a polynomial of one Normal variable, by the moments
    :math:`\mathbb{E}[z^{2m}] = (2m-1)!!` of the standard normal.
    """
    if not isinstance(expr, sp.Basic) or not expr.has(sp.Integral, stats.Expectation):
        return expr
    try:
        with time_budget(CHECK_SECONDS, "Gaussian moments"):
            expr = expr.replace(
                lambda e: isinstance(e, stats.Expectation) and _normal_moments(e) is not None,
                _normal_moments,
            )
            return expr.replace(
                lambda e: isinstance(e, sp.Integral) and _gaussian_value(e) is not None,
                _gaussian_value,
            )
    except BudgetExceeded:
        return expr


# --------------------------------------------------------------------- route 3


@dataclass(frozen=True)
class Obligation:
    """A precondition a rule relies on, to be discharged by the kernel.

    ``kind`` is one of :data:`OBLIGATIONS`; ``terms`` hold what it is about:

    * ``"defined"``: ``terms`` are the bases replaced by their declared definitions;
    * ``"finite-sums"``: every sum in ``terms[0]`` runs over a finite integer range;
    * ``"finite-moments"``: every random entry of ``terms[0]`` has declared moments up
      to order ``terms[1]``;
    * ``"independent"``: the groups ``terms[0]`` (tuples of entries) are mutually
      independent, given the pairs of index symbols ``terms[1]`` known distinct;
    * ``"moment"``: ``E[terms[0] ** terms[1]] = terms[2]`` is a declared moment;
    * ``"gaussian"``: the family ``terms[0]`` is declared Gaussian with mean
      ``terms[1]`` and variance ``terms[2]``.
    """

    kind: str
    terms: tuple

    def __str__(self) -> str:
        return f"{self.kind}: {', '.join(map(str, self.terms))}"


OBLIGATIONS = ("defined", "finite-sums", "finite-moments", "independent", "moment", "gaussian")

#: The rules the kernel trusts, by module and name: each is a theorem of probability or
#: algebra whose preconditions are its obligations.
LEMMAS: frozenset[str] = frozenset(
    {
        "derivations._calculus.substitute_definitions",
        "derivations._calculus.variance_definition",
        "derivations._calculus.expand_square",
        "derivations._calculus.linearity",
        "derivations._calculus.factor_independent",
        "derivations._calculus.substitute_moments",
        "derivations._calculus.evaluate_sums",
        "derivations._calculus.distribute",
        "derivations._calculus.absorb_into_sums",
        "derivations._calculus.expand_expectations",
        "derivations._calculus.gaussian_moments",
    }
)


def is_lemma(rule: Callable) -> bool:
    """Whether ``rule`` is one of the kernel's trusted rules (by identity, not name)."""
    import importlib

    key = f"{getattr(rule, '__module__', '')}.{getattr(rule, '__qualname__', '')}"
    if key not in LEMMAS:
        return False
    module, name = key.rsplit(".", 1)
    return getattr(importlib.import_module(module), name, None) is rule


def _finite_sums(expr: sp.Basic) -> str | None:
    for s in expr.atoms(sp.Sum):
        for _, lo, hi in s.limits:
            if not (lo.is_integer and hi.is_integer and lo.is_finite and hi.is_finite):
                return f"the sum {s} does not run over a finite integer range"
    for e in sp.preorder_traversal(expr):
        if type(e).__name__ == "OffDiagonalSum" and not (e.n.is_integer and e.n.is_finite):
            return f"the off-diagonal sum {e} has no finite integer size"
    return None


def _entailed(model, ob: Obligation) -> str | None:
    """``None`` when the declarations entail ``ob``; otherwise why not."""
    if ob.kind == "defined":
        missing = [b for b in ob.terms if b not in model.definitions]
        return f"{missing[0]} has no declared definition" if missing else None
    if ob.kind == "finite-sums":
        return _finite_sums(ob.terms[0])
    if ob.kind == "finite-moments":
        expr, order = ob.terms
        for atom in model.atoms(expr):
            fam = model.family(atom.base)
            if fam is None and atom.base in model.definitions:
                continue  # a defined entry: its own families are checked where it is expanded
            if fam is None or any(fam.moment(p) is None for p in range(1, order + 1)):
                return f"{atom} has no declared moment of order {order}"
        return None
    if ob.kind == "independent":
        groups, distinct = ob.terms
        for x, y in cross_pairs(groups):
            if not independent(model, x, y, distinct):
                return f"independence of {x} and {y} is not declared"
        return None
    if ob.kind == "moment":
        atom, power, value = ob.terms
        fam = model.family(atom.base)
        declared = fam.moment(int(power)) if fam is not None else None
        if declared is None or sp.simplify(declared - value) != 0:
            return f"E[{atom}^{power}] = {value} is not a declared moment"
        return None
    if ob.kind == "gaussian":
        base, mean, variance = ob.terms
        fam = model.family(base)
        if fam is None or fam.law != "normal":
            return f"{base} is not declared Gaussian"
        if sp.simplify(fam.mean - mean) != 0 or sp.simplify(fam.variance - variance) != 0:
            return f"the law of {base} does not have its declared mean and variance"
        return None
    return f"unknown obligation {ob.kind!r}"


def cross_pairs(groups: tuple) -> Iterator[tuple[sp.Indexed, sp.Indexed]]:
    """Every pair of entries from two different groups."""
    for gi, g in enumerate(groups):
        for h in groups[gi + 1 :]:
            for x in g:
                for y in h:
                    yield x, y


def independent(model, x: sp.Indexed, y: sp.Indexed, distinct: Iterable) -> bool:
    """Whether the declarations make entries ``x`` and ``y`` independent.

    Different families are independent when both are in the model's mutually
    independent set; two entries of one family when its entries are declared
    independent and some index pair is known to differ (distinct integers, or index
    symbols of an off-diagonal sum).
    """
    distinct = set(distinct)
    if x.base != y.base:
        return {x.base, y.base} <= model.mutually_independent
    fam = model.family(x.base)
    if fam is None or not fam.entries_independent:
        return False
    return any(
        (a.is_Integer and b.is_Integer and a != b) or (a, b) in distinct or (b, a) in distinct
        for a, b in zip(x.indices, y.indices, strict=True)
    )


def discharge(rule: Callable, model, obligations: tuple[Obligation, ...]) -> Check:
    """``proved`` when ``rule`` is a trusted lemma and the declarations entail every
    obligation; ``undecided`` (with the first reason) otherwise."""
    name = getattr(rule, "__name__", str(rule)).replace("_", " ")
    if not is_lemma(rule):
        return Check("rule", Status.UNDECIDED, f"{name} is not one of the kernel's lemmas")
    for ob in obligations:
        if ob.kind not in OBLIGATIONS:
            return Check("rule", Status.UNDECIDED, f"unknown obligation {ob.kind!r}")
        why = _entailed(model, ob)
        if why is not None:
            return Check("rule", Status.UNDECIDED, f"{name}: {why}")
    shown = "; ".join(str(ob) for ob in obligations) or "no precondition"
    return Check(
        "rule", Status.PROVED, f"{name}, preconditions entailed by the declarations: {shown}"
    )


# --------------------------------------------------------------------- junctions

#: Assumptions a substituted value must keep, strongest first.
_DOMAIN = ("integer", "positive", "nonnegative", "negative", "nonpositive", "nonzero", "real")


def instantiate(
    used_start: sp.Basic,
    used_result: sp.Basic,
    used_status: Status,
    values: Mapping,
    lhs: sp.Basic,
    name: str,
) -> Check:
    """A use of another derivation's result ``start = result`` under ``values``.

    ``proved`` when the used derivation is proved, ``lhs`` is its start with ``values``
    substituted, and every substituted value lies in its symbol's declared domain (a
    statement proved for every positive ``v`` holds for a positive value of ``v``);
    otherwise the weaker status, with the reason. ``refuted`` when ``lhs`` is not an
    instance of the used statement.
    """
    instance = sp.sympify(used_start).xreplace(dict(values))
    if not (instance == lhs or sp.simplify(instance - lhs) == 0):
        return Check(
            "use",
            Status.REFUTED,
            f"{name} states {used_start} = {used_result}; with {dict(values)} its left side "
            f"is {instance}, not {lhs}",
        )
    for symbol, value in values.items():
        if not isinstance(symbol, sp.Symbol):
            continue
        forms = (sp.sympify(value), sp.factor(value), sp.simplify(value))
        for key in _DOMAIN:
            if getattr(symbol, f"is_{key}") and not any(
                getattr(f, f"is_{key}") is True for f in forms
            ):
                return Check(
                    "use",
                    Status.UNDECIDED,
                    f"{name}: the value {value} for {symbol} is not known to be {key}",
                )
    shown = f"{name}: {used_start} = {used_result}, at {dict(values)}"
    if used_status is not Status.PROVED:
        return Check("use", used_status, f"{shown} (the used result is {used_status})")
    return Check("use", Status.PROVED, f"{shown}: an instance of a proved statement")


# --------------------------------------------------------------------- route 4


def disproof(check: Check, statement: str) -> Check:
    """``proved`` that ``statement`` is false when ``check`` refuted it with an exact
    counterexample; ``undecided`` otherwise."""
    if check.status is Status.REFUTED and check.counterexample:
        return Check(
            f"disproof ({check.method})",
            Status.PROVED,
            f"{statement} is false: {check.detail}",
            check.counterexample,
        )
    return Check(
        f"disproof ({check.method})",
        Status.UNDECIDED,
        f"{statement} was not refuted by an exact counterexample: {check.detail}",
    )


def sign(expr: sp.Expr, relation: str, what: str) -> Check:
    """``expr`` is ``positive``, ``negative``, ``nonnegative`` or ``zero``, decided by
    SymPy's assumption system from the symbols' declarations."""
    if relation not in ("positive", "negative", "nonnegative", "zero"):
        raise ValueError(
            "`relation` must be 'positive', 'negative', 'nonnegative' or 'zero'; "
            f"got relation={relation!r}"
        )
    value = getattr(sp.simplify(expr), f"is_{relation}")
    status = {True: Status.PROVED, False: Status.REFUTED, None: Status.UNDECIDED}[value]
    return Check("sign", status, f"{what}: {expr} is {relation}: {value}")


__all__ = [
    "LEMMAS",
    "OPERATORS",
    "Obligation",
    "cross_pairs",
    "discharge",
    "disproof",
    "gaussian_lemma",
    "has_operator",
    "independent",
    "instantiate",
    "is_lemma",
    "prove_identity",
    "prove_orders",
    "sign",
]
