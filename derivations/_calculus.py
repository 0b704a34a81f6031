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

from collections.abc import Mapping
from dataclasses import dataclass, field

import sympy as sp

from ._kernel import Obligation


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
        Whether distinct entries are declared mutually independent (true for i.i.d.
        weights, false for the activations of a previous layer).
    computed : bool
        Whether the entries are computed by the network (a previous layer's outputs,
        an upstream gradient) rather than sampled by the initializer. The exact
        checks generate computed entries from a real layer, whatever is declared.
    law : {"any", "normal"}
        The declared law of sampled entries: any law with the declared mean and
        variance, or Gaussian (needed for moments beyond the second).
    """

    base: sp.IndexedBase
    description: str
    mean: sp.Expr
    variance: sp.Expr
    entries_independent: bool
    computed: bool = False
    law: str = "any"

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
    parameters: frozenset[sp.Symbol] = frozenset()

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


@dataclass(frozen=True)
class Rewrite:
    """What a rule produced: the new expression, a reason, and the obligations the
    kernel must discharge for the step to be proved."""

    after: sp.Expr
    why: str
    obligations: tuple[Obligation, ...]


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
    used = tuple(sorted((b for b in model.definitions if expr.has(b)), key=str))
    return Rewrite(after, "definition of the layer", (Obligation("defined", used),))


def variance_definition(expr: sp.Expr, model: Model) -> Rewrite:
    r""":math:`\operatorname{Var}[X] = \mathbb{E}[X^2] - \mathbb{E}[X]^2`."""
    after = expr.replace(
        lambda e: isinstance(e, Var), lambda e: Ex(e.args[0] ** 2) - Ex(e.args[0]) ** 2
    )
    args = sp.Add(*[e.args[0] for e in expr.atoms(Var)])
    return Rewrite(
        after,
        r"$\operatorname{Var}[X] = \mathbb{E}[X^2] - \mathbb{E}[X]^2$",
        (
            Obligation("finite-moments", (substitute_definitions(args, model).after, 2)),
            Obligation("finite-sums", (substitute_definitions(args, model).after,)),
        ),
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
        (Obligation("finite-sums", (expr,)),),
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
        (Obligation("finite-sums", (expr,)), Obligation("finite-moments", (after, 2))),
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
    obligations = tuple(
        Obligation("independent", (tuple(tuple(g) for g in groups), distinct))
        for groups, distinct in applications
    )
    return Rewrite(
        after,
        r"$\mathbb{E}[XY] = \mathbb{E}[X]\,\mathbb{E}[Y]$ for independent $X, Y$",
        obligations or (Obligation("independent", ((), frozenset())),),
    )


def _power_of_entry(e: Ex, model: Model) -> tuple[sp.Indexed, int, RandomFamily] | None:
    r"""``(x, p, family)`` when ``e`` is :math:`\mathbb{E}[x^p]` for one entry ``x`` of a
    declared family; otherwise ``None``."""
    parts = _factors(e.args[0], model)
    if parts is None or len(parts) != 1:
        return None
    atom, f = parts[0]
    fam = model.family(atom.base)
    if fam is None:
        return None
    return atom, int(f.exp) if isinstance(f, sp.Pow) else 1, fam


def substitute_moments(expr: sp.Expr, model: Model) -> Rewrite:
    """Replace :math:`\\mathbb{E}[x]` and :math:`\\mathbb{E}[x^2]` by declared moments."""
    used: dict[tuple, Obligation] = {}

    def moment(e: Ex) -> sp.Expr:
        single = _power_of_entry(e, model)
        if single is None:
            return e
        atom, p, fam = single
        value = fam.moment(p)
        if value is None:
            return e
        used.setdefault((atom.base, p), Obligation("moment", (atom, p, value)))
        return value

    after = expr.replace(lambda e: isinstance(e, Ex), moment)
    return Rewrite(
        after,
        "the declared moments of identically distributed entries",
        tuple(used[k] for k in sorted(used, key=str)),
    )


def evaluate_sums(expr: sp.Expr, model: Model) -> Rewrite:
    r"""Sum terms that no longer depend on the summation index: :math:`(b - a + 1)\,t`, and
    :math:`n(n-1)\,t` off the diagonal. A summand that depends on its index is left."""

    def constant(e: sp.Basic) -> bool:
        if isinstance(e, OffDiagonalSum):
            return not (e.summand.free_symbols & {e.j, e.k})
        if isinstance(e, sp.Sum):
            return not ({lim[0] for lim in e.limits} & e.function.free_symbols)
        return False

    def count(e: sp.Basic) -> sp.Expr:
        if isinstance(e, OffDiagonalSum):
            return e.n * (e.n - 1) * e.summand
        return sp.Mul(*[hi - lo + 1 for _, lo, hi in e.limits]) * e.function

    after = expr
    while True:  # innermost first: an outer sum may become constant once inner ones go
        new = after.replace(constant, count)
        if new == after:
            break
        after = new
    return Rewrite(
        after,
        r"a sum of $n$ equal terms is $n$ times the term",
        (Obligation("finite-sums", (expr,)),),
    )


def distribute(expr: sp.Expr, model: Model) -> Rewrite:
    r"""Multiply out products and integer powers of sums of terms inside expectations.

    :math:`\mathbb{E}[(X + Y)^2] \to \mathbb{E}[X^2 + 2XY + Y^2]`; ``Sum`` objects are
    treated as single terms (their squares are left to
    :func:`~derivations._calculus.expand_square`).
    """
    after = expr.replace(lambda e: isinstance(e, Ex), lambda e: Ex(sp.expand(e.args[0])))
    return Rewrite(after, "multiply out polynomial products (distributive law)", ())


def _fresh(index: sp.Symbol, taken: set[sp.Symbol]) -> sp.Symbol:
    new = index
    while new in taken:
        new = sp.Symbol(new.name + "'", **new.assumptions0)
    return new


def absorb_into_sums(expr: sp.Expr, model: Model) -> Rewrite:
    r"""Move factors into finite sums: :math:`X \sum_m Y_m = \sum_m X Y_m`.

    A product of two sums becomes a double sum, the inner summation index renamed
    when it clashes (:math:`\sum_m X_m \sum_m Y_m = \sum_m \sum_{m'} X_m Y_{m'}`).
    Off-diagonal sums absorb factors free of both their indices.
    """

    def absorb(e: sp.Mul) -> sp.Expr:
        args = list(e.args)
        for pos, f in enumerate(args):
            if isinstance(f, sp.Sum):
                rest = sp.Mul(*(args[:pos] + args[pos + 1 :]))
                taken = rest.free_symbols | f.free_symbols | _bound(rest)
                for k, *_ in f.limits:
                    if k in taken:
                        new = _fresh(k, taken | _bound(f))
                        f = f.xreplace({k: new})
                        taken.add(new)
                return sp.Sum(rest * f.function, *f.limits)
            if isinstance(f, OffDiagonalSum):
                rest = sp.Mul(*(args[:pos] + args[pos + 1 :]))
                if not ({f.j, f.k} & (rest.free_symbols | _bound(rest))):
                    return OffDiagonalSum(rest * f.summand, f.j, f.k, f.n)
        return e

    def is_target(e: sp.Basic) -> bool:
        return isinstance(e, sp.Mul) and any(
            isinstance(f, (sp.Sum, OffDiagonalSum)) for f in e.args
        )

    def inside(e: Ex) -> Ex:
        arg = e.args[0]
        while True:
            new = arg.replace(is_target, absorb)
            if new == arg:
                return Ex(arg)
            arg = new

    after = expr.replace(lambda e: isinstance(e, Ex), inside)
    return Rewrite(
        after,
        r"$X \sum_m Y_m = \sum_m X Y_m$ for finite sums ($X$ free of $m$)",
        (Obligation("finite-sums", (expr,)),),
    )


def _bound(expr: sp.Basic) -> set[sp.Symbol]:
    """Summation indices bound anywhere inside ``expr``."""
    out: set[sp.Symbol] = set()
    for s_ in expr.atoms(sp.Sum):
        out |= {lim[0] for lim in s_.limits}
    for o in expr.atoms(OffDiagonalSum):
        out |= {o.j, o.k}
    return out


def expand_expectations(expr: sp.Expr, model: Model) -> Rewrite:
    r"""Multiply everything out and push :math:`\mathbb{E}` down to products of entries.

    Repeats :func:`~derivations._calculus.expand_square`, :func:`distribute`,
    :func:`absorb_into_sums` and :func:`~derivations._calculus.linearity` until nothing
    changes, so that every expectation is of a single product of random entries inside
    (off-diagonal) sums.
    """
    rules = (expand_square, distribute, absorb_into_sums, linearity)
    obligations: list[Obligation] = []
    after = expr
    for _ in range(20):
        before = after
        for rule in rules:
            rewrite = rule(after, model)
            if rewrite.after != after:
                obligations.extend(o for o in rewrite.obligations if o not in obligations)
                after = rewrite.after
        if after == before:
            break
    else:
        raise ValueError("expand_expectations reached no fixed point in 20 rounds")
    return Rewrite(
        after,
        r"$(\sum_j a_j)^2 = \sum_j a_j^2 + \sum_{j \neq k} a_j a_k$, the distributive law, "
        r"$X \sum_m Y_m = \sum_m X Y_m$ and linearity of $\mathbb{E}$ over finite sums",
        tuple(obligations),
    )


def gaussian_moments(expr: sp.Expr, model: Model) -> Rewrite:
    r"""Replace :math:`\mathbb{E}[x^p]` by the moment of a family declared Gaussian.

    For :math:`x \sim N(\mu, v)`,
    :math:`\mathbb{E}[x^p] = \sum_k \binom{p}{k} \mu^{p-k} v^{k/2} (k-1)!!` over even
    :math:`k` (so :math:`\mathbb{E}[w^4] = 3\gamma^2` for zero-mean weights).
    """
    used: dict = {}

    def moment(e: Ex) -> sp.Expr:
        single = _power_of_entry(e, model)
        if single is None or single[2].law != "normal":
            return e
        atom, p, fam = single
        used[atom.base] = Obligation("gaussian", (atom.base, fam.mean, fam.variance))
        return sp.expand(
            sp.Add(
                *[
                    sp.binomial(p, k)
                    * fam.mean ** (p - k)
                    * fam.variance ** (k // 2)
                    * sp.factorial2(k - 1)
                    for k in range(0, p + 1, 2)
                ]
            )
        )

    after = expr.replace(lambda e: isinstance(e, Ex), moment)
    return Rewrite(
        after,
        r"Gaussian moments $\mathbb{E}[x^p] = \sum_{k \text{ even}} \binom{p}{k} "
        r"\mu^{p-k} v^{k/2} (k-1)!!$",
        tuple(used[k] for k in sorted(used, key=str)),
    )


#: The moment calculus's recipe for the expectation of a sum of products of independent
#: entries: definitions in, expectation through the sums, factors split by independence,
#: the entries' moments in, the sums evaluated.
MOMENT_OF_SUM = (
    substitute_definitions,
    expand_expectations,
    factor_independent,
    substitute_moments,
    evaluate_sums,
)
