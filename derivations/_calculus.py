"""A small moment calculus on top of SymPy.

Random quantities are entries of :class:`sympy.IndexedBase` families declared in a
:class:`Model` together with their moments and their independence structure.
Expectations are the unevaluated operator :class:`Ex`. Each rule below rewrites an
expression and returns the preconditions it relied on as :class:`Check` objects, so
the checker can hold the rule to the model's declarations.

References
----------
.. [1] Dive into Deep Learning, Sec. 5.4 "Numerical Stability and Initialization".
.. [2] X. Glorot and Y. Bengio, "Understanding the difficulty of training deep
   feedforward neural networks", AISTATS 2010.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import sympy as sp

from ._claim import Check, Status


class Ex(sp.Function):
    """Unevaluated expectation :math:`\\mathbb{E}[X]`; only the rules move it."""

    nargs = 1

    def _latex(self, printer, exp=None):
        tex = r"\mathbb{E}\left[%s\right]" % printer._print(self.args[0])
        return tex if exp is None else r"%s^{%s}" % (tex, exp)


class Var(sp.Function):
    """Unevaluated variance :math:`\\operatorname{Var}[X]`."""

    nargs = 1

    def _latex(self, printer, exp=None):
        tex = r"\operatorname{Var}\left[%s\right]" % printer._print(self.args[0])
        return tex if exp is None else r"%s^{%s}" % (tex, exp)


class OffDiagonalSum(sp.Expr):
    """:math:`\\sum_{j \\neq k} f(j, k)` over ``1 <= j, k <= n``.

    The only place the calculus learns that two index symbols are distinct.
    """

    def __new__(cls, summand, j, k, n):
        return sp.Expr.__new__(cls, sp.sympify(summand), j, k, sp.sympify(n))

    summand = property(lambda self: self.args[0])
    j = property(lambda self: self.args[1])
    k = property(lambda self: self.args[2])
    n = property(lambda self: self.args[3])

    @property
    def free_symbols(self):
        return (self.summand.free_symbols - {self.j, self.k}) | self.n.free_symbols

    def doit(self, **hints):
        f = self.summand.doit(**hints) if hints.get("deep", True) else self.summand
        if not (f.free_symbols & {self.j, self.k}):
            return self.n * (self.n - 1) * f
        if self.n.is_Integer:
            n = int(self.n)
            return sp.Add(
                *[
                    f.subs({self.j: a, self.k: b}, simultaneous=True)
                    for a in range(1, n + 1)
                    for b in range(1, n + 1)
                    if a != b
                ]
            )
        return OffDiagonalSum(f, self.j, self.k, self.n)

    def _latex(self, printer):
        j, k = printer._print(self.j), printer._print(self.k)
        return r"\sum_{%s \neq %s} %s" % (j, k, printer._print(self.summand))

    def _sympystr(self, printer):
        return "OffDiagonalSum(%s, %s != %s, n=%s)" % tuple(
            printer._print(a) for a in (self.summand, self.j, self.k, self.n)
        )


InstanceLaw = Callable[[tuple[int, ...], dict, Mapping[sp.Symbol, sp.Expr]], sp.Expr]


@dataclass(frozen=True)
class RandomFamily:
    """The entries ``base[idx]`` of one random array.

    Attributes
    ----------
    base : sympy.IndexedBase
    description : str
        Words for the report, e.g. ``"weights of layer t"``.
    mean, variance : sympy.Expr
        The common mean and variance of every entry (entries are identically
        distributed).
    entries_independent : bool
        Whether distinct entries are mutually independent (true for i.i.d.
        weights, false for the activations of a previous layer).
    instance : callable
        ``instance(idx, shared, params)`` returns a concrete ``sympy.stats``
        expression with the declared moments at the parameter values ``params``;
        ``shared`` holds random variables common to several entries, so that
        dependent entries can be built.
    """

    base: sp.IndexedBase
    description: str
    mean: sp.Expr
    variance: sp.Expr
    entries_independent: bool
    instance: InstanceLaw = field(compare=False, repr=False)

    def moment(self, p: int) -> sp.Expr | None:
        """Declared raw moment of order ``p`` (1 or 2), else ``None``."""
        if p == 1:
            return self.mean
        if p == 2:
            return self.variance + self.mean**2
        return None


@dataclass(frozen=True)
class Model:
    """Random families, definitions, independence and a concrete instance.

    The independence declaration is: the families in ``mutually_independent`` are
    mutually independent, and within a family with ``entries_independent`` the
    entries are mutually independent. The blocks (one per independent entry, one
    per other family) therefore form a mutually independent collection, so two
    groups of factors are independent when every cross pair lies in different
    blocks.
    """

    families: tuple[RandomFamily, ...]
    definitions: Mapping[sp.IndexedBase, tuple[tuple[sp.Symbol, ...], sp.Expr]] = field(hash=False)
    mutually_independent: frozenset[sp.IndexedBase]
    width: sp.Symbol
    free_indices: Mapping[sp.Symbol, int] = field(hash=False)
    instance_params: Mapping[sp.Symbol, sp.Expr] = field(hash=False)

    def family(self, base: sp.IndexedBase) -> RandomFamily | None:
        return next((f for f in self.families if f.base == base), None)

    def atoms(self, expr: sp.Basic) -> set[sp.Indexed]:
        """The random entries occurring in ``expr``."""
        bases = {f.base for f in self.families} | set(self.definitions)
        return {a for a in expr.atoms(sp.Indexed) if a.base in bases}

    def is_random(self, expr: sp.Basic) -> bool:
        return bool(self.atoms(expr))

    def block(self, atom: sp.Indexed) -> tuple:
        fam = self.family(atom.base)
        if fam is not None and fam.entries_independent:
            return (atom.base, *atom.indices)
        return (atom.base,)

    def independent(self, x: sp.Indexed, y: sp.Indexed, distinct: frozenset) -> bool | None:
        """Whether entries ``x`` and ``y`` lie in different independent blocks.

        Returns ``None`` when the declarations do not decide it (for example two
        entries whose indices are different symbols not known to be distinct).
        """
        if x.base != y.base:
            both = {x.base, y.base} <= self.mutually_independent
            return True if both else None
        fam = self.family(x.base)
        if fam is None or not fam.entries_independent:
            return None
        for a, b in zip(x.indices, y.indices, strict=True):
            if a.is_Integer and b.is_Integer and a != b:
                return True
            if (a, b) in distinct or (b, a) in distinct:
                return True
        return None


@dataclass(frozen=True)
class Rewrite:
    """What a rule produced: the new expression, a reason, and its preconditions."""

    after: sp.Expr
    why: str
    preconditions: tuple[Check, ...]


def _proved(detail: str) -> Check:
    return Check("preconditions", Status.PROVED, detail)


# --------------------------------------------------------------------------- rules


def substitute_definitions(expr: sp.Expr, model: Model) -> Rewrite:
    r"""Replace each defined quantity by its definition.

    For example :math:`h^t_i = \sum_j w_{ij} h^{t-1}_j`.
    """

    def expand(e: sp.Indexed) -> sp.Expr:
        idx, rhs = model.definitions[e.base]
        return rhs.subs(dict(zip(idx, e.indices, strict=True)), simultaneous=True)

    after = expr.replace(
        lambda e: isinstance(e, sp.Indexed) and e.base in model.definitions, expand
    )
    used = sorted(str(b) for b in model.definitions if expr.has(b))
    return Rewrite(
        after,
        "definition of the layer",
        (_proved(f"declared definitions used: {', '.join(used) or 'none'}"),),
    )


def variance_definition(expr: sp.Expr, model: Model) -> Rewrite:
    r""":math:`\operatorname{Var}[X] = \mathbb{E}[X^2] - \mathbb{E}[X]^2`."""
    after = expr.replace(
        lambda e: isinstance(e, Var), lambda e: Ex(e.args[0] ** 2) - Ex(e.args[0]) ** 2
    )
    return Rewrite(
        after,
        r"$\operatorname{Var}[X] = \mathbb{E}[X^2] - \mathbb{E}[X]^2$",
        (_proved("every family declares a finite variance, so E[X^2] exists"),),
    )


def expand_square(expr: sp.Expr, model: Model) -> Rewrite:
    r""":math:`(\sum_j a_j)^2 = \sum_j a_j^2 + \sum_{j\neq k} a_j a_k` inside expectations."""
    k = sp.Symbol("k", integer=True, positive=True)

    def is_square_of_sum(e):
        return isinstance(e, sp.Pow) and e.exp == 2 and isinstance(e.base, sp.Sum)

    def expand(e: sp.Pow) -> sp.Expr:
        s = e.base
        ((j, lo, hi),) = s.limits
        if lo != 1:
            raise ValueError("expand_square expects sums starting at 1")
        a = s.function
        return sp.Sum(a**2, (j, lo, hi)) + OffDiagonalSum(a * a.subs(j, k), j, k, hi)

    def in_expectations(e):
        return e.replace(is_square_of_sum, expand)

    after = expr.replace(lambda e: isinstance(e, Ex), lambda e: Ex(in_expectations(e.args[0])))
    return Rewrite(
        after,
        r"$(\sum_j a_j)^2 = \sum_j a_j^2 + \sum_{j \neq k} a_j a_k$",
        (_proved("each expanded sum has finitely many terms (1..n)"),),
    )


def linearity(expr: sp.Expr, model: Model) -> Rewrite:
    r""":math:`\mathbb{E}` of a finite sum is the sum of expectations; constants factor out."""

    def step(e: Ex) -> sp.Expr:
        arg = e.args[0]
        if not model.is_random(arg):
            return arg
        if isinstance(arg, sp.Add):
            return sp.Add(*[Ex(a) for a in arg.args])
        if isinstance(arg, sp.Sum):
            return sp.Sum(Ex(arg.function), *arg.limits)
        if isinstance(arg, OffDiagonalSum):
            return OffDiagonalSum(Ex(arg.summand), arg.j, arg.k, arg.n)
        if isinstance(arg, sp.Mul):
            const = [f for f in arg.args if not model.is_random(f)]
            if const:
                rest = [f for f in arg.args if model.is_random(f)]
                return sp.Mul(*const) * Ex(sp.Mul(*rest))
        return e

    after = expr
    while True:
        new = after.replace(lambda e: isinstance(e, Ex), step)
        if new == after:
            break
        after = new
    return Rewrite(
        after,
        r"$\mathbb{E}[\sum_j c_j X_j] = \sum_j c_j \mathbb{E}[X_j]$ for finite sums",
        (_proved("all sums are finite and every moment used is declared finite"),),
    )


def _factors(arg: sp.Expr, model: Model) -> list[tuple[sp.Indexed, sp.Expr]] | None:
    """Split a product of random entries into (entry, factor); ``None`` if not one."""
    out = []
    for f in sp.Mul.make_args(arg):
        base = f.base if isinstance(f, sp.Pow) else f
        if not (isinstance(base, sp.Indexed) and model.is_random(base)):
            return None
        out.append((base, f))
    return out


def factor_independent(expr: sp.Expr, model: Model) -> Rewrite:
    r""":math:`\mathbb{E}[XY] = \mathbb{E}[X]\,\mathbb{E}[Y]` for independent blocks of factors."""
    applications: list[tuple[list[list[sp.Indexed]], frozenset]] = []

    def factor(e: Ex, distinct: frozenset) -> sp.Expr:
        parts = _factors(e.args[0], model)
        if parts is None:
            return e
        groups: dict[tuple, list] = {}
        for atom, f in parts:
            groups.setdefault(model.block(atom), []).append((atom, f))
        if len(groups) < 2:
            return e
        applications.append(([[a for a, _ in g] for g in groups.values()], distinct))
        return sp.Mul(*[Ex(sp.Mul(*[f for _, f in g])) for g in groups.values()])

    def walk(e: sp.Basic, distinct: frozenset) -> sp.Basic:
        if isinstance(e, Ex):
            return factor(e, distinct)
        if isinstance(e, OffDiagonalSum):
            inner = distinct | {(e.j, e.k)}
            return OffDiagonalSum(walk(e.summand, inner), e.j, e.k, e.n)
        if not e.args or isinstance(e, sp.Indexed):
            return e
        return e.func(*[walk(a, distinct) for a in e.args])

    after = walk(expr, frozenset())
    checks = []
    for groups, distinct in applications:
        undecided = [
            (x, y)
            for gi, g in enumerate(groups)
            for h in groups[gi + 1 :]
            for x in g
            for y in h
            if model.independent(x, y, distinct) is not True
        ]
        label = " | ".join(", ".join(map(str, g)) for g in groups)
        if undecided:
            checks.append(
                Check(
                    "preconditions",
                    Status.UNDECIDED,
                    f"independence of {undecided[0][0]} and {undecided[0][1]} is not declared",
                )
            )
        else:
            checks.append(_proved(f"declared mutually independent: {label}"))
    if not checks:
        checks.append(Check("preconditions", Status.UNDECIDED, "no product was factored"))
    return Rewrite(
        after,
        r"$\mathbb{E}[XY] = \mathbb{E}[X]\,\mathbb{E}[Y]$ for independent $X, Y$",
        tuple(checks),
    )


def substitute_moments(expr: sp.Expr, model: Model) -> Rewrite:
    """Replace :math:`\\mathbb{E}[x]` and :math:`\\mathbb{E}[x^2]` by declared moments."""
    used: set[str] = set()

    def moment(e: Ex) -> sp.Expr:
        parts = _factors(e.args[0], model)
        if parts is None or len(parts) != 1:
            return e
        atom, f = parts[0]
        p = int(f.exp) if isinstance(f, sp.Pow) else 1
        fam = model.family(atom.base)
        value = fam.moment(p) if fam is not None else None
        if value is None:
            return e
        used.add(f"E[{atom.base}^{p}] = {value}" if p > 1 else f"E[{atom.base}] = {value}")
        return value

    after = expr.replace(lambda e: isinstance(e, Ex), moment)
    return Rewrite(
        after,
        "the declared moments of identically distributed entries",
        (_proved("; ".join(sorted(used)) or "no moment substituted"),),
    )


def evaluate_sums(expr: sp.Expr, model: Model) -> Rewrite:
    """Sum terms that no longer depend on the summation index."""
    after = expr.replace(lambda e: isinstance(e, (sp.Sum, OffDiagonalSum)), lambda e: e.doit())
    return Rewrite(after, r"a sum of $n$ equal terms is $n$ times the term", ())
