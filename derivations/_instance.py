r"""Exact evaluation of moment expressions on instances generated from a network.

A step of the moment calculus is tested by computing both sides exactly on a small
concrete network. The instance does not follow the model's declarations where they
are claims about the network: entries of a *computed* family (a previous layer's
outputs, an upstream gradient) are produced by a real layer

.. math::

    e_k = a\,\mathrm{relu}\Big(\sum_{l=1}^{2} V_{kl}\,x_l\Big) + b,

with small discrete laws for :math:`V` and for an input :math:`x` shared by every
computed entry, so they are dependent and correlated wherever a network makes them
so. A wrong independence declaration, or a rule that forgets a covariance, is seen.
Entries of a *sampled* family (weights) follow a law drawn at random for each check
with the declared mean and variance (a three-point law matching the Gaussian moments
through order five where the family is declared Gaussian). Free parameters are drawn
at random from their domains for each check and each width.

Everything is exact: values are rationals and expectations are finite sums, computed
with :class:`fractions.Fraction`. Given the shared input, the computed entries are
independent, so a moment is :math:`\sum_x P(x)\prod_k \mathbb{E}[e_k^{p_k} \mid x]`.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from itertools import product
from math import isqrt

import sympy as sp

from ._calculus import Ex, Model, Var, substitute_definitions
from ._claim import Check, Status
from ._kernel import Obligation, cross_pairs

Law = tuple[tuple[Fraction, Fraction], ...]  # (value, probability)

F = Fraction
#: Zero-mean, unit-variance laws with rational values; the skewed ones have a third
#: moment, the three-point one a fourth moment unlike the two-point law's.
UNIT_LAWS: dict[str, Law] = {
    "two-point": ((F(-1), F(1, 2)), (F(1), F(1, 2))),
    "skewed": ((F(-2), F(1, 5)), (F(1, 2), F(4, 5))),
    "skewed-right": ((F(-1, 2), F(4, 5)), (F(2), F(1, 5))),
    "three-point": ((F(-2), F(1, 8)), (F(0), F(3, 4)), (F(2), F(1, 8))),
}
#: Matches :math:`N(0, 1/3)` through order five: :math:`\pm 1` w.p. 1/6, 0 w.p. 2/3.
GAUSS3: Law = ((F(-1), F(1, 6)), (F(0), F(2, 3)), (F(1), F(1, 6)))
#: Laws of the shared input of the generating layer (magnitudes vary, so relu
#: outputs are correlated).
INPUT_LAWS: tuple[Law, ...] = (
    ((F(0), F(1, 3)), (F(1), F(1, 3)), (F(2), F(1, 3))),
    ((F(-1), F(1, 2)), (F(2), F(1, 2))),
    ((F(1), F(1, 2)), (F(3), F(1, 2))),
)
SCALES = (F(1, 2), F(2, 3), F(1), F(3, 2), F(2), F(5, 2), F(1, 3), F(3))
REALS = (F(-5, 2), F(-3, 2), F(-1), F(-1, 3), F(1, 2), F(4, 3), F(2), F(7, 3), F(0))
WIDTHS = (2, 3)


class NotRealizable(ValueError):
    """The instance cannot give a family its declared moments exactly (rationally)."""


def _moment(law: Law, p: int) -> Fraction:
    return sum((v**p * w for v, w in law), F(0))


def _affine(law: Law, a: Fraction, b: Fraction) -> Law:
    return tuple((a * v + b, w) for v, w in law)


def _rational(x: sp.Expr) -> Fraction:
    x = sp.nsimplify(x) if not isinstance(x, sp.Rational) else x
    if not isinstance(x, sp.Rational):
        raise NotRealizable(f"{x} is not rational")
    return F(int(x.p), int(x.q))


def _sqrt(x: Fraction) -> Fraction:
    p, q = x.numerator, x.denominator
    rp, rq = isqrt(p), isqrt(q)
    if rp * rp != p or rq * rq != q:
        raise NotRealizable(f"sqrt({x}) is not rational")
    return F(rp, rq)


def draw_value(symbol: sp.Symbol, rng: random.Random) -> Fraction:
    """A random value from ``symbol``'s declared domain (small integers for widths)."""
    if symbol.is_integer:
        lo = 2 if symbol.is_positive else 0 if symbol.is_nonnegative else -3
        return F(rng.randint(lo, 3))
    if symbol.is_positive:
        return rng.choice(SCALES)
    if symbol.is_nonnegative:
        return rng.choice((F(0), *SCALES))
    if symbol.is_negative:
        return -rng.choice(SCALES)
    return rng.choice(REALS)


@dataclass(frozen=True)
class Instance:
    """A concrete network: laws of sampled entries, the generating layer of computed
    ones, and the value of every parameter symbol.

    ``sampled`` maps a family base to its entries' law (each entry independent);
    ``computed`` maps a family base to its conditional law given the shared input,
    one per input outcome; ``inputs`` are the input outcomes' probabilities.
    """

    width: int
    values: Mapping[sp.Symbol, Fraction]
    sampled: Mapping[sp.IndexedBase, Law]
    computed: Mapping[sp.IndexedBase, tuple[Law, ...]]
    inputs: tuple[Fraction, ...]
    description: str

    def moment(self, monomial: Mapping[sp.Indexed, int]) -> Fraction:
        """:math:`\\mathbb{E}[\\prod_a a^{p_a}]` for distinct entries ``a``."""
        total = F(1)
        conditional = [F(1)] * len(self.inputs)
        for atom, p in monomial.items():
            if atom.base in self.sampled:
                total *= _moment(self.sampled[atom.base], p)
            else:
                laws = self.computed[atom.base]
                conditional = [
                    c * _moment(law, p) for c, law in zip(conditional, laws, strict=True)
                ]
        return total * sum((w * c for w, c in zip(self.inputs, conditional, strict=True)), F(0))

    def joint(self, x: sp.Indexed, y: sp.Indexed) -> tuple[bool, str]:
        """Whether distinct entries ``x`` and ``y`` are independent here, and a witness."""
        if x.base in self.sampled or y.base in self.sampled:
            return True, ""
        lx, ly = self.computed[x.base], self.computed[y.base]
        vx = sorted({v for law in lx for v, _ in law})
        vy = sorted({v for law in ly for v, _ in law})

        def p(laws, k, v):
            return sum((w for value, w in laws[k] if value == v), F(0))

        for u, t in product(vx, vy):
            both = sum((w * p(lx, k, u) * p(ly, k, t) for k, w in enumerate(self.inputs)), F(0))
            px = sum((w * p(lx, k, u) for k, w in enumerate(self.inputs)), F(0))
            py = sum((w * p(ly, k, t) for k, w in enumerate(self.inputs)), F(0))
            if both != px * py:
                return (
                    False,
                    f"P({x} = {u}, {y} = {t}) = {both} but P({x} = {u}) P({y} = {t}) = {px * py}",
                )
        return True, ""


def _conditional_laws(row: Law, xs: Law) -> tuple[Law, ...]:
    r""":math:`\mathrm{relu}(V_1 x_1 + V_2 x_2)` given each input outcome ``(x_1, x_2)``."""
    conditional = []
    for (x1, _), (x2, _) in product(xs, xs):
        law: dict[Fraction, Fraction] = {}
        for (v1, p1), (v2, p2) in product(row, row):
            value = max(F(0), v1 * x1 + v2 * x2)
            law[value] = law.get(value, F(0)) + p1 * p2
        conditional.append(tuple(sorted(law.items())))
    return tuple(conditional)


def build_instance(
    model: Model, n: int, subs: Mapping[sp.Symbol, sp.Expr], rng: random.Random, turn: int = 0
) -> Instance:
    """Draw a concrete network of width ``n`` for ``model`` (see the module notes).

    ``turn`` rotates the laws of sampled families, so that the instances of one check
    (one per width) use different laws.

    Raises
    ------
    NotRealizable
        If a declared mean or variance cannot be met exactly with rational values.
    """
    values: dict[sp.Symbol, Fraction] = {model.width: F(n)}
    for s in sorted(model.parameters, key=str):
        if s not in subs:
            values[s] = draw_value(s, rng)
    for s, v in subs.items():
        values[s] = _rational(sp.sympify(v).subs(values))

    def target(expr: sp.Expr) -> sp.Expr:
        return sp.sympify(expr).subs(subs).subs(values)

    def fit(base, law: Law) -> tuple[Fraction, Fraction]:
        """``(a, b)`` giving ``a X + b`` the family's declared moments, binding symbols."""
        fam = model.family(base)
        mean0, var0 = _moment(law, 1), _moment(law, 2) - _moment(law, 1) ** 2
        var_t, mean_t = target(fam.variance), target(fam.mean)
        if isinstance(var_t, sp.Symbol):
            a = F(1) if fam.computed else rng.choice(SCALES)
            if var_t in values:
                a = _sqrt(values[var_t] / var0)
            values[var_t] = a * a * var0
        else:
            a = _sqrt(_rational(var_t) / var0)
        if isinstance(mean_t, sp.Symbol):
            if mean_t not in values:
                values[mean_t] = a * mean0 if fam.computed else rng.choice(REALS)
            b = values[mean_t] - a * mean0
        else:
            b = _rational(mean_t) - a * mean0
        return a, b

    sampled: dict = {}
    computed: dict = {}
    probs: tuple[Fraction, ...] = (F(1),)
    description = []
    if any(f.computed for f in model.families):
        xs = rng.choice(INPUT_LAWS)
        probs = tuple(p1 * p2 for (_, p1), (_, p2) in product(xs, xs))
        description.append(f"input x_1, x_2 i.i.d. on {{{', '.join(str(v) for v, _ in xs)}}}")
    start = rng.randrange(len(UNIT_LAWS))
    for k, fam in enumerate(model.families):
        if fam.computed:
            name = rng.choice(sorted(UNIT_LAWS))
            laws = _conditional_laws(UNIT_LAWS[name], xs)
            marginal = tuple((v, w * p) for w, law in zip(probs, laws, strict=True) for v, p in law)
            a, b = fit(fam.base, marginal)
            computed[fam.base] = tuple(_affine(law, a, b) for law in laws)
            description.append(
                f"{fam.base} = {a}·relu(V x)" + (f" + {b}" if b else "") + f", V {name}"
            )
        else:
            names = sorted(UNIT_LAWS)
            name = "gauss3" if fam.law == "normal" else names[(start + k + turn) % len(names)]
            law = GAUSS3 if fam.law == "normal" else UNIT_LAWS[name]
            a, b = fit(fam.base, law)
            sampled[fam.base] = _affine(law, a, b)
            description.append(f"{fam.base} = {a}·{name}" + (f" + {b}" if b else ""))
    return Instance(n, values, sampled, computed, probs, "; ".join(description))


def _expand_definitions(expr: sp.Expr, model: Model) -> sp.Expr:
    for _ in range(10):
        new = substitute_definitions(expr, model).after
        if new == expr:
            return expr
        expr = new
    return expr


def _expectation(arg: sp.Expr, model: Model, inst: Instance) -> sp.Expr:
    atoms = sorted(model.atoms(arg), key=str)
    if not atoms:
        return arg
    poly = sp.Poly(sp.expand(arg), *atoms)
    total = sp.Integer(0)
    for powers, coeff in poly.terms():
        m = inst.moment({a: p for a, p in zip(atoms, powers, strict=True) if p})
        total += coeff * sp.Rational(m.numerator, m.denominator)
    return total


def value(expr: sp.Basic, model: Model, inst: Instance) -> sp.Expr:
    """The exact value of a moment expression (``Ex``, ``Var``, sums) on ``inst``."""
    e = _expand_definitions(sp.sympify(expr), model)
    numbers = {s: sp.Rational(v.numerator, v.denominator) for s, v in inst.values.items()}
    e = e.subs({**model.free_indices}).subs(numbers).doit()
    e = e.replace(lambda x: isinstance(x, Var), lambda x: Ex(x.args[0] ** 2) - Ex(x.args[0]) ** 2)
    if model.is_random(e.replace(lambda x: isinstance(x, Ex), lambda x: sp.Integer(1))):
        raise NotRealizable("a random quantity outside an expectation")
    return e.replace(lambda x: isinstance(x, Ex), lambda x: _expectation(x.args[0], model, inst))


def _concrete(atoms: tuple[sp.Indexed, ...], model: Model, width: int) -> tuple:
    """The entries with free indices fixed and other index symbols set to 1, 2, ...
    (distinct values, so that entries with different index symbols differ)."""
    fixed = {model.width: width, **model.free_indices}
    atoms = tuple(a.subs(fixed) for a in atoms)
    symbols = sorted({s for a in atoms for i in a.indices for s in i.free_symbols}, key=str)
    used = {int(i) for a in atoms for i in a.indices if i.is_Integer}
    free = (v for v in range(1, 100) if v not in used)
    values = {s: next(free) for s in symbols}
    return tuple(a.subs(values) for a in atoms)


def _random_outside(expr: sp.Basic, model: Model) -> bool:
    """Whether ``expr`` has a random entry outside every expectation."""
    bare = _expand_definitions(sp.sympify(expr), model)
    return model.is_random(
        bare.replace(lambda x: isinstance(x, (Ex, Var)), lambda x: sp.Integer(1))
    )


def _obligation_on(ob: Obligation, model: Model, inst: Instance) -> str | None:
    """``None`` when the instance satisfies ``ob``; otherwise the violation."""
    if ob.kind == "independent":
        groups, _ = ob.terms
        for x, y in cross_pairs(groups):
            xx, yy = _concrete((x, y), model, inst.width)
            if xx == yy:
                return f"{x} and {y} are the same entry here"
            ok, witness = inst.joint(xx, yy)
            if not ok:
                return f"{x} and {y} are dependent in the generated network: {witness}"
        return None
    if ob.kind == "moment":
        atom, power, declared = ob.terms
        (a,) = _concrete((atom,), model, inst.width)
        got = _expectation(a ** int(power), model, inst)
        want = value(declared, model, inst)
        if sp.simplify(got - want) != 0:
            return f"E[{atom}^{power}] = {got} here, not the declared {want}"
    return None


def check_instance(
    before: sp.Basic,
    after: sp.Basic,
    model: Model,
    subs: Mapping[sp.Symbol, sp.Expr],
    obligations: tuple[Obligation, ...] = (),
    seed: str = "",
) -> Check:
    """Both sides, and the rule's obligations, exactly on generated instances.

    ``tested`` when they agree at every width of :data:`WIDTHS`; ``refuted`` with the
    instance when they differ; ``undecided`` when no instance can be built.
    """
    rng = random.Random(f"{seed}|{before}|{after}")
    shown = []
    for turn, n in enumerate(WIDTHS):
        try:
            inst = build_instance(model, n, subs, rng, turn)
            for ob in obligations:
                why = _obligation_on(ob, model, inst)
                if why is not None:
                    return _refuted(f"precondition fails: {why}", inst)
            if _random_outside(before, model) or _random_outside(after, model):
                # random variables: equal almost surely when E[(before - after)^2] = 0
                lhs, rhs = value(Ex(sp.expand((before - after) ** 2)), model, inst), 0
                mismatch = f"E[(before - after)^2] = {lhs}, not 0"
            else:
                lhs, rhs = value(before, model, inst), value(after, model, inst)
                mismatch = f"before = {lhs} but after = {rhs}"
        except (NotRealizable, sp.PolynomialError, TypeError, ValueError) as exc:
            return Check("instance", Status.UNDECIDED, f"no exact instance: {exc}")
        if sp.simplify(lhs - rhs) != 0:
            return _refuted(mismatch, inst)
        shown.append(_params(inst))
    return Check(
        f"instance n={','.join(map(str, WIDTHS))}",
        Status.TESTED,
        "both sides equal exactly on networks generated at random: " + " | ".join(shown),
    )


def _params(inst: Instance) -> str:
    vals = ", ".join(
        f"{k} = {v}" for k, v in sorted(inst.values.items(), key=lambda kv: str(kv[0]))
    )
    return f"{inst.description}; {vals}"


def _refuted(detail: str, inst: Instance) -> Check:
    example = {str(k): str(v) for k, v in sorted(inst.values.items(), key=lambda kv: str(kv[0]))}
    example["network"] = inst.description
    return Check(
        f"instance n={inst.width}", Status.REFUTED, f"on a generated network: {detail}", example
    )


__all__ = ["Instance", "NotRealizable", "build_instance", "check_instance", "draw_value", "value"]
