"""The data every claim is made of: verdicts, checks, steps, probes and claims.

Everything here is a frozen dataclass holding SymPy objects or plain data, so the
report can render it and the tests can inspect it without re-running anything.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum

import sympy as sp


class Status(StrEnum):
    """How much a check (or a step, or a claim) establishes, strongest first.

    * ``proved``: a symbolic argument valid on the whole declared domain of every
      symbol; only :mod:`derivations._kernel` gives it.
    * ``computed``: a result SymPy computed (``diff``, ``integrate``, ``series``,
      ``doit``), with an independent cross-check where one exists.
    * ``tested``: exact agreement at points drawn from each symbol's domain, or on
      instances generated from the network itself.
    * ``undecided``: nothing could decide it; never counts as a pass.
    * ``refuted``: a counterexample, shown.
    """

    PROVED = "proved"
    COMPUTED = "computed"
    TESTED = "tested"
    UNDECIDED = "undecided"
    REFUTED = "refuted"

    @property
    def rank(self) -> int:
        """Strength: ``refuted`` 0 < ``undecided`` < ``tested`` < ``computed`` < ``proved`` 4."""
        return _RANK[self]


_RANK = {
    Status.REFUTED: 0,
    Status.UNDECIDED: 1,
    Status.TESTED: 2,
    Status.COMPUTED: 3,
    Status.PROVED: 4,
}

#: The statuses from strongest to weakest, for counting and display.
STATUSES: tuple[Status, ...] = tuple(sorted(Status, key=lambda s: -s.rank))


def combine(statuses: tuple[Status, ...] | list[Status]) -> Status:
    """Conjunction: the weakest status; one refutation refutes; nothing is undecided.

    >>> combine([Status.PROVED, Status.TESTED])
    <Status.TESTED: 'tested'>
    >>> combine([Status.PROVED, Status.UNDECIDED])
    <Status.UNDECIDED: 'undecided'>
    >>> combine([])
    <Status.UNDECIDED: 'undecided'>
    """
    if not statuses:
        return Status.UNDECIDED
    return min(statuses, key=lambda s: s.rank)


def strongest(statuses: tuple[Status, ...] | list[Status]) -> Status:
    """Alternative routes to one fact: the strongest, unless any route refutes it.

    >>> strongest([Status.TESTED, Status.PROVED])
    <Status.PROVED: 'proved'>
    >>> strongest([Status.PROVED, Status.REFUTED])
    <Status.REFUTED: 'refuted'>
    """
    if not statuses:
        return Status.UNDECIDED
    if Status.REFUTED in statuses:
        return Status.REFUTED
    return max(statuses, key=lambda s: s.rank)


@dataclass(frozen=True)
class Check:
    """One machine check of a step or a claim.

    Attributes
    ----------
    method : str
        How the check was made, e.g. ``"simplify"``, ``"preconditions"``,
        ``"instance n=2,3"`` or ``"sympy.stats n=1..4"``.
    status : Status
        Its three-valued result.
    detail : str
        What was compared, in words, including the reason when not proved.
    counterexample : mapping, optional
        For a refutation: the point or instance that refutes, as ``name -> value``
        strings (a point's symbols, or an instance's parameters and widths).
    """

    method: str
    status: Status
    detail: str
    counterexample: Mapping[str, str] | None = field(default=None, hash=False, compare=False)

    def named(self, method: str, what: str) -> Check:
        """The same result under another name, ``what`` prefixed to its detail."""
        return replace(self, method=f"{method} ({self.method})", detail=f"{what}: {self.detail}")


@dataclass(frozen=True)
class Assumption:
    """A named hypothesis a derivation may use.

    ``subs`` holds the substitutions an equality assumption licenses (for example
    ``{mu: 0}`` for a zero-mean input); a step that uses the assumption is checked
    with them applied.
    """

    name: str
    statement: str
    subs: Mapping[sp.Symbol, sp.Expr] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class Step:
    """One rewrite ``before = after`` of a derivation, justified by ``rule``."""

    before: sp.Expr
    after: sp.Expr
    rule: str
    why: str
    checks: tuple[Check, ...]
    uses: tuple[str, ...] = ()

    @property
    def status(self) -> Status:
        """Each check is a route to the step (the rule with its preconditions, simplify,
        an exact instance, a numeric cross-check): the strongest, unless one refutes."""
        return strongest([c.status for c in self.checks])


@dataclass(frozen=True)
class Derivation:
    """An ordered chain of steps from ``start`` to ``result``."""

    name: str
    start: sp.Expr
    steps: tuple[Step, ...]

    @property
    def result(self) -> sp.Expr:
        return self.steps[-1].after if self.steps else self.start

    @property
    def origin(self) -> str:
        """How the start is justified: ``"definition"``, or the recorded use of another
        claim's result (``"uses forward-variance"``) that the first step makes."""
        if self.steps and self.steps[0].rule.startswith("uses "):
            return self.steps[0].rule
        return "definition"

    @property
    def statement(self) -> sp.Eq:
        return sp.Eq(self.start, self.result, evaluate=False)

    @property
    def status(self) -> Status:
        return combine([s.status for s in self.steps])


#: How a probe's ``predicted`` follows from ``expression.subs(values)``.
PROBE_METHODS = ("substitution", "quadrature", "nested quadrature", "finite-width chain")
#: Where a probe's expression comes from.
PROBE_SOURCES = ("derived", "lecture")
#: What a probe's ``predicted`` is: the expected value, or a one-sided bound on it.
PROBE_KINDS = ("point", "lower_bound", "upper_bound")
#: The finest target precision (relative 99% half-width) a bias may be checked at is
#: this many times the probe's relative bias bound: the bias stays within a quarter of
#: the interval's half-width, so it cannot decide the check.
BIAS_MARGIN = 4.0


@dataclass(frozen=True)
class Probe:
    """A concrete scenario paired with the value the claim predicts for it.

    Attributes
    ----------
    label : str
        Stable key of the probe within its claim (also seeds its simulation).
    scenario : Mapping
        Plain data describing the experiment (kind, widths, laws, dtype, ...).
    observable : Mapping
        Which quantity is measured, e.g. ``{"direction": "forward",
        "moment": "var", "layer": 1}``.
    predicted : float
        The value computed from ``expression`` with ``values`` substituted, by
        ``method``; never typed in.
    expression : sympy.Expr
        The symbolic prediction before substitution, for the report.
    expect : {"agrees", "disagrees"}
        ``"disagrees"`` marks a probe of the lecture's own (loose) version of a
        claim, which the simulation is expected to refute.
    values : mapping
        The substitution that turns ``expression`` into ``predicted`` (symbol ->
        number). Empty for a literal (an expression without free symbols).
    method : str
        How ``predicted`` follows from ``expression.subs(values)`` (one of
        :data:`PROBE_METHODS`): ``"substitution"`` is ``float(...)``;
        ``"quadrature"`` does every Gaussian integral over the real line numerically
        (:func:`derivations._gaussian.evaluate`, after writing the named activations
        out); ``"nested quadrature"`` is
        :func:`derivations._summary.evaluate_nested`; ``"finite-width chain"`` is
        :func:`derivations._activations.evaluate_finite_width`.
    source : {"derived", "lecture"}
        ``"lecture"`` marks an expression that states the lecture's claim as the
        lecture makes it (a strawman, possibly a literal such as ``1``), not a
        derivation; by default, every ``expect="disagrees"`` probe.
    kind : {"point", "lower_bound", "upper_bound"}
        ``"point"``: ``predicted`` is the expected value of the observable (up to
        ``bias_bound``), checked two-sided. ``"lower_bound"`` (``"upper_bound"``):
        the claim only says the expected value is at least (at most) ``predicted``,
        e.g. a Chernoff bound; such a probe must be checked one-sided, refused only
        when the whole interval lies below (above) ``predicted``.
    bias_bound : float
        Bound on ``|E[observable] - predicted|`` from what the prediction leaves
        out (an approximation, rounding of a float format, numeric error), in the
        units of the observable; 0 for an exact prediction. The check is decided by
        sampling error, not by this bias, only when the interval's half-width is at
        least :data:`BIAS_MARGIN` times it: see :attr:`min_precision`.
    note : str
        How the prediction and its bias bound were obtained, in words.
    """

    label: str
    scenario: Mapping[str, object] = field(hash=False)
    observable: Mapping[str, object] = field(hash=False)
    predicted: float
    expression: sp.Expr
    expect: str = "agrees"
    values: Mapping = field(default_factory=dict, hash=False, compare=False)
    method: str = "substitution"
    source: str = ""
    kind: str = "point"
    bias_bound: float = 0.0
    note: str = ""

    def __post_init__(self) -> None:
        if self.expect not in ("agrees", "disagrees"):
            raise ValueError(f"`expect` must be 'agrees' or 'disagrees'; got {self.expect!r}.")
        if not self.source:
            object.__setattr__(
                self, "source", "lecture" if self.expect == "disagrees" else "derived"
            )
        for name, allowed in (
            ("method", PROBE_METHODS),
            ("source", PROBE_SOURCES),
            ("kind", PROBE_KINDS),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(
                    f"`{name}` must be one of {list(allowed)}; got {getattr(self, name)!r}."
                )
        bias = float(self.bias_bound)
        if not (bias >= 0 and bias < float("inf")):
            raise ValueError(f"`bias_bound` must be finite and >= 0; got {self.bias_bound!r}.")
        object.__setattr__(self, "bias_bound", bias)

    @property
    def min_precision(self) -> float:
        """The finest relative 99% half-width at which the bias cannot decide the check.

        :data:`BIAS_MARGIN` times ``bias_bound / |predicted|``; 0 for an exact
        prediction. A run whose target precision is finer must widen this probe's
        interval (or measure it only to this precision).
        """
        if self.bias_bound == 0:
            return 0.0
        return BIAS_MARGIN * self.bias_bound / abs(self.predicted)

    @classmethod
    def derived(
        cls,
        label: str,
        scenario: Mapping[str, object],
        observable: Mapping[str, object],
        expression: sp.Expr,
        values: Mapping,
        expect: str = "agrees",
        *,
        method: str = "substitution",
        evaluator: Callable[[sp.Expr], float | tuple[float, float]] | None = None,
        source: str = "",
        kind: str = "point",
        bias_bound: float = 0.0,
        note: str = "",
    ) -> Probe:
        """A probe predicting ``expression`` with ``values`` substituted (never retyped).

        ``evaluator`` (required unless ``method`` is ``"substitution"``) turns the
        substituted expression into a number, or into ``(number, numeric error)``;
        the numeric error is added to ``bias_bound``.
        """
        substituted = sp.sympify(expression).subs(values)
        if evaluator is None:
            if method != "substitution":
                raise ValueError(f"method={method!r} needs an `evaluator`.")
            result: float | tuple[float, float] = float(substituted)
        else:
            result = evaluator(substituted)
        predicted, error = result if isinstance(result, tuple) else (result, 0.0)
        return cls(
            label,
            scenario,
            observable,
            float(predicted),
            expression,
            expect,
            values=dict(values),
            method=method,
            source=source,
            kind=kind,
            bias_bound=float(bias_bound) + float(error),
            note=note,
        )


@dataclass(frozen=True)
class Claim:
    """A lecture claim: statement, assumptions, derivations, confirmations, probes.

    ``corrected`` states the corrected claim when the lecture's version fails
    (verdict ``refuted``); ``qualification`` states the extra condition under which
    the lecture's version holds (verdict ``qualified``).

    ``status`` is the symbolic status: the weakest of its derivations' steps;
    independent confirmations can refute it but do not weaken it.
    """

    id: str
    lecture: tuple[str, ...]
    title: str
    summary: str
    assumptions: tuple[Assumption, ...]
    derivations: tuple[Derivation, ...]
    conditions: tuple[sp.Basic, ...]
    confirmations: tuple[Check, ...]
    probes: tuple[Probe, ...]
    corrected: str | None = None
    qualification: str | None = None

    def derivation(self, name: str) -> Derivation:
        """The derivation called ``name`` (junctions between claims go by name)."""
        for d in self.derivations:
            if d.name == name:
                return d
        names = [d.name for d in self.derivations]
        raise KeyError(f"claim {self.id!r} has no derivation name={name!r}; it has {names}")

    @property
    def status(self) -> Status:
        if any(c.status is Status.REFUTED for c in self.confirmations):
            return Status.REFUTED
        if not self.derivations:
            return combine([c.status for c in self.confirmations])
        return combine([d.status for d in self.derivations])
