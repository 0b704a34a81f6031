r"""Estimates with confidence intervals that respect shared weights, and decisions.

Inputs that pass through one sampled network are not independent, so no interval
is computed over inputs. Each network replicate yields one vector of per-replicate
averages; replicates are i.i.d. Every estimand is a smooth function :math:`g` of the means of
per-replicate statistics (for the variance :math:`g = \overline{m_2} -
\overline{m_1}^2`, for a per-layer factor a ratio of two such), and its standard error
is the delete-one jackknife over replicates:

.. math::

    \widehat{\mathrm{se}}^2 = \frac{R-1}{R} \sum_{r=1}^{R}
    \bigl(g(\bar y_{(-r)}) - \overline{g(\bar y_{(\cdot)})}\bigr)^2 ,

with a Student-t interval on :math:`R - 1` degrees of freedom.

The replicate count is fixed by a two-stage (Stein) procedure: an independent pilot
run estimates the spread, and a fresh main run of the size that reaches the target
precision gives the estimate, so the choice of :math:`R` does not bias the interval.

All checks of one run share a family-wise error budget by Holm's step-down
procedure: with ``m`` checks at overall level :math:`\alpha`, the p-values are sorted,
:math:`p_{(1)} \le \dots \le p_{(m)}`, and check :math:`(j)` is refused while
:math:`p_{(j)} \le \alpha/(m - j + 1)`; the chance of any false alarm is at most
:math:`\alpha`. Each check's interval is shown at the level its decision used
(:func:`holm_levels`), so a refused prediction lies outside its interval and an
accepted one inside.

References
----------
.. [1] B. Efron and C. Stein (1981), "The jackknife estimate of variance",
   Ann. Statist. 9(3).
.. [2] C. Stein (1945), "A two-sample test for a linear hypothesis whose power is
   independent of the variance", Ann. Math. Statist. 16(3).
.. [3] S. Holm (1979), "A simple sequentially rejective multiple test procedure",
   Scand. J. Statist. 6(2), 65-70.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from scipy import stats

from ._engine import (
    FRACTIONS,
    STATS,
    choose_batch,
    simulate_mlp,
    simulate_product,
    simulate_scalar,
)
from ._scenario import FRACTION_MOMENTS, MLPScenario, ScalarScenario, observable, scenario
from ._seeding import child

#: Default precision: 99% CI half-width of 1% relative (one-step claims).
DEFAULT_PRECISION = 0.01
DEFAULT_LEVEL = 0.99
PILOT_REPLICATES = {"mlp": 32, "scalar": 32, "product": 512}
MIN_REPLICATES = {"mlp": 32, "scalar": 32, "product": 512}
MAX_REPLICATES = 200_000
SCALAR_BATCH = 4096
#: Cap on multiply-adds spent on one check (about ten seconds here).
WORK_CAP = 1.5e11
#: Achieved precision worse than this many times the target makes a check inconclusive.
INCONCLUSIVE_FACTOR = 5.0
_COL = {name: k for k, name in enumerate(STATS)}


@dataclass(frozen=True)
class ConfidenceInterval:
    low: float
    high: float


@dataclass(frozen=True)
class Estimate:
    """A simulated value with its standard error over independent replicates.

    Attributes
    ----------
    value, se : float
        Estimate and jackknife standard error over replicates (``nan`` when not
        finite).
    dof : int
        Degrees of freedom of the t interval (replicates - 1).
    n_replicates : int
        Independent replicates (sampled networks, batches or chains) in the main run.
    n_samples : int
        Scalar samples averaged (replicates x entries x inputs).
    scale : float
        Scale for relative precision: the value itself for variances, second
        moments and ratios; the root second moment for means; 1 for fractions.
    nonfinite : float
        Fraction of non-finite entries at the observed site(s).
    seed : str
        The seed sequence that produced it.
    method : str
    """

    value: float
    se: float
    dof: int
    n_replicates: int
    n_samples: int
    scale: float
    nonfinite: float
    seed: str
    method: str
    fraction: bool = False

    def confidence_interval(self, confidence: float = DEFAULT_LEVEL) -> ConfidenceInterval:
        r"""Student-t interval over replicates.

        For a fraction (a statistic in [0, 1]) whose replicates all agree, the t
        interval would be a point. When every replicate is at an edge, say 1, the mean
        is at least :math:`P(X = 1)`, and with no replicate off the edge the exact
        (Clopper-Pearson) bound :math:`P(X < 1) \le 1 - \delta^{1/R}` holds with
        confidence :math:`1 - \delta`, so :math:`[\delta^{1/R}, 1]` is an interval
        (likewise :math:`[0, 1 - \delta^{1/R}]` at 0). Elsewhere Hoeffding's bound
        for the mean of ``R`` bounded replicates,
        :math:`\sqrt{\log(2/\delta) / (2R)}`, is used.
        """
        half = stats.t.ppf(0.5 + confidence / 2, self.dof) * self.se
        if self.fraction and self.se == 0:
            delta = 1 - confidence
            if self.value in (0.0, 1.0):
                edge = delta ** (1 / self.n_replicates)
                return (
                    ConfidenceInterval(edge, 1.0) if self.value else ConfidenceInterval(0, 1 - edge)
                )
            half = math.sqrt(math.log(2 / delta) / (2 * self.n_replicates))
            low, high = max(0.0, self.value - half), min(1.0, self.value + half)
            return ConfidenceInterval(float(low), float(high))
        return ConfidenceInterval(float(self.value - half), float(self.value + half))

    def p_value(self, predicted: float) -> float:
        """The largest ``1 - confidence`` whose interval still contains ``predicted``.

        Two-sided t test in general; for a fraction whose replicates all agree, the
        level at which the exact edge bound or Hoeffding's bound reaches ``predicted``.
        """
        if self.fraction and self.se == 0:
            if self.value in (0.0, 1.0):
                gap = min(max(abs(self.value - predicted), 0.0), 1.0)
                return (1.0 - gap) ** self.n_replicates
            d = abs(self.value - predicted)
            return min(1.0, 2 * math.exp(-2 * self.n_replicates * d * d))
        if self.se == 0:
            return 1.0 if self.value == predicted else 0.0
        t = (self.value - predicted) / self.se
        return float(2 * stats.t.sf(abs(t), self.dof))

    def precision(self, confidence: float = DEFAULT_LEVEL) -> float:
        """Relative half-width of the interval at ``confidence``."""
        ci = self.confidence_interval(confidence)
        return (ci.high - ci.low) / 2 / self.scale if self.scale > 0 else math.inf


def _moment_fn(moment: str, offset: int = 0):
    m1, m2 = offset + _COL["m1"], offset + _COL["m2"]
    if moment == "mean":
        return lambda mu: mu[..., m1]
    if moment == "m2":
        return lambda mu: mu[..., m2]
    if moment == "var":
        return lambda mu: mu[..., m2] - mu[..., m1] ** 2
    col = offset + _COL[moment]
    return lambda mu: mu[..., col]


def jackknife(y: np.ndarray, g) -> tuple[float, float]:
    """``g(mean of rows of y)`` and its delete-one jackknife standard error.

    Rows are i.i.d. replicates; ``g`` maps a vector of means (or a stack of them)
    to the estimand. Valid for smooth ``g`` whatever the dependence inside a row.
    """
    r = y.shape[0]
    with np.errstate(invalid="ignore"):
        mu = y.mean(axis=0)
        loo = (r * mu - y) / (r - 1)
        vals = g(loo)
        se = math.sqrt((r - 1) / r * float(((vals - vals.mean()) ** 2).sum()))
    return float(g(mu)), se


@dataclass(frozen=True)
class _Plan:
    """How one observable of one scenario is simulated and reduced."""

    kind: str
    run: object
    g: object
    scale: object
    samples_per_replicate: int
    work_per_replicate: float
    nonfinite_cols: tuple[int, ...]
    describe: str
    fraction: bool = False


def _plan(sc, ob, batch: int | None, activations) -> _Plan:
    if isinstance(sc, MLPScenario):
        if ob.direction == "forward":
            # layers above the observed ones cannot change them: do not simulate them
            top = max(ob.layer, ob.relative_to or 0, 1)
            sc = dataclasses.replace(
                sc,
                widths=sc.widths[: top + 1],
                weights=sc.weights[:top],
                biases=None if sc.biases is None else sc.biases[:top],
            )
        b = batch or choose_batch(sc.widths)
        backward = ob.direction == "backward"
        fraction = ob.moment in FRACTION_MOMENTS
        log = ob.moment == "log_m2"

        def site(st, layer):
            arr = (
                st.backward
                if backward
                else (st.preactivation if ob.of == "preactivation" else st.forward)
            )
            return arr[:, layer]

        def run(n, seed):
            st = simulate_mlp(
                sc,
                n,
                b,
                seed,
                backward=backward,
                fractions=ob.moment in FRACTIONS,
                lognorm=log,
                preactivation=ob.of == "preactivation",
                activations=activations,
            )
            y = site(st, ob.layer)
            return y if ob.relative_to is None else np.concatenate([y, site(st, ob.relative_to)], 1)

        g = _moment_fn(ob.moment)
        k = len(STATS)
        if ob.relative_to is not None:
            top, bottom = g, _moment_fn(ob.moment, k)
            # a log moment relative to another layer is the log of the ratio
            g = (lambda mu: top(mu) - bottom(mu)) if log else (lambda mu: top(mu) / bottom(mu))
        if ob.relative_to is None and ob.moment == "mean":
            scale = lambda mu: math.sqrt(max(mu[_COL["m2"]], 0.0))  # noqa: E731
        elif (ob.relative_to is None and fraction) or log:
            # fractions: absolute; logs: an error e in a log is a relative error e
            scale = lambda mu: 1.0  # noqa: E731
        else:
            scale = lambda mu: abs(float(g(mu)))  # noqa: E731
        macs = sum(a * c for a, c in itertools.pairwise(sc.widths)) * (b + 64)
        nonfinite = (_COL["nonfinite"],)
        return _Plan(
            "mlp",
            run,
            g,
            scale,
            sc.widths[ob.layer] * b,
            macs * (2 if backward else 1),
            ()
            if fraction
            else (*nonfinite, k + nonfinite[0])
            if ob.relative_to is not None
            else nonfinite,
            f"{b} inputs through each independently sampled network",
            fraction=fraction and ob.relative_to is None,
        )
    if isinstance(sc, ScalarScenario):
        g = _moment_fn(ob.moment)
        return _Plan(
            "scalar",
            lambda n, seed: simulate_scalar(sc, n, SCALAR_BATCH, seed, activations),
            g,
            (lambda mu: math.sqrt(max(mu[_COL["m2"]], 0.0)))
            if ob.moment == "mean"
            else (lambda mu: abs(float(g(mu)))),
            SCALAR_BATCH,
            float(SCALAR_BATCH),
            (_COL["nonfinite"],),
            f"{SCALAR_BATCH} independent draws per replicate",
        )
    if ob.quantity == "m2_growth":
        g = lambda mu: mu[..., 2]  # noqa: E731
    elif ob.moment == "mean":
        g = lambda mu: mu[..., 0]  # noqa: E731
    else:
        g = lambda mu: mu[..., 1] - mu[..., 0] ** 2  # noqa: E731
    if ob.quantity == "log_growth" and ob.moment == "mean":
        scale = lambda mu: max(abs(mu[0]), math.sqrt(max(mu[1] - mu[0] ** 2, 0.0)))  # noqa: E731
    else:
        scale = lambda mu: abs(float(g(mu)))  # noqa: E731
    return _Plan(
        "product",
        lambda n, seed: simulate_product(sc, n, seed),
        g,
        scale,
        1,
        float(sc.depth * sc.n * (sc.n + 16)),
        (),
        "one independent chain of matrices per replicate",
    )


def _seed_text(seed: np.random.SeedSequence) -> str:
    return f"entropy={seed.entropy} spawn_key={list(seed.spawn_key)}"


def measure(
    scenario_: Mapping[str, object],
    observable_: Mapping[str, object],
    *,
    seed: np.random.SeedSequence,
    precision: float = DEFAULT_PRECISION,
    batch: int | None = None,
    max_replicates: int = MAX_REPLICATES,
    activations: Mapping | None = None,
) -> Estimate:
    """Simulate ``scenario_`` and estimate ``observable_`` to the target precision.

    Parameters
    ----------
    scenario_, observable_ : mapping
        Plain data, see :func:`montecarlo.scenario` and :func:`montecarlo.observable`.
    seed : numpy.random.SeedSequence
        The probe's own stream; its first child seeds the pilot, the second the
        main run.
    precision : float
        Target relative half-width of the 99% interval.
    batch : int, optional
        Inputs per sampled network (default: :func:`choose_batch`).
    max_replicates : int
        Cap on the main run (also capped by :data:`WORK_CAP`); a precision worse than
        the target by :data:`INCONCLUSIVE_FACTOR` then makes a check inconclusive.
    activations : mapping, optional
        Extra activations ``name -> (f, f')``.
    """
    if isinstance(precision, bool) or not (
        isinstance(precision, float | int) and 0 < precision < 1
    ):
        raise ValueError(f"`precision` must be in (0, 1); got precision={precision!r}.")
    sc = scenario(scenario_, activations)
    ob = observable(observable_, sc)
    plan = _plan(sc, ob, batch, activations)
    pilot_seed, main_seed = child(seed, 0), child(seed, 1)
    pilot_n = PILOT_REPLICATES[plan.kind]
    y = plan.run(pilot_n, pilot_seed)
    value, se = jackknife(y, plan.g)
    scale = plan.scale(y.mean(axis=0))
    z = stats.t.ppf(0.5 + DEFAULT_LEVEL / 2, pilot_n - 1)
    cap = int(
        min(max_replicates, max(MIN_REPLICATES[plan.kind], WORK_CAP / plan.work_per_replicate))
    )
    n_rep = MIN_REPLICATES[plan.kind]
    if plan.fraction and se == 0 and value in (0.0, 1.0):
        # every pilot replicate at an edge: enough replicates for the exact edge bound
        need = math.log(1 - DEFAULT_LEVEL) / math.log1p(-2 * precision)
        n_rep = int(min(max(math.ceil(need), n_rep), cap))
    elif all(map(math.isfinite, (se, scale))) and scale > 0:
        need = pilot_n * (z * se / (precision * scale)) ** 2
        n_rep = int(min(max(math.ceil(need), n_rep), cap))
    y = plan.run(n_rep, main_seed)
    value, se = jackknife(y, plan.g)
    nonfinite = (
        float(np.mean([y[:, c].mean() for c in plan.nonfinite_cols]))
        if plan.nonfinite_cols
        else 0.0
    )
    return Estimate(
        value=value,
        se=se,
        dof=n_rep - 1,
        n_replicates=n_rep,
        n_samples=n_rep * plan.samples_per_replicate,
        scale=float(plan.scale(y.mean(axis=0))),
        nonfinite=nonfinite,
        seed=_seed_text(seed),
        fraction=plan.fraction,
        method=(
            f"two-stage: a pilot of {pilot_n} replicates sets R; jackknife t interval over "
            f"R = {n_rep} independent replicates ({plan.describe})"
        ),
    )


class Outcome(StrEnum):
    AGREES = "agrees"
    DISAGREES = "disagrees"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class Decision:
    """Prediction against estimate at a stated per-check confidence."""

    outcome: Outcome
    predicted: float
    estimate: Estimate
    ci: ConfidenceInterval
    confidence: float
    p_value: float
    reason: str


def per_check_confidence(alpha: float, n_checks: int) -> float:
    """Bonferroni: each of ``n_checks`` intervals at ``1 - alpha/n_checks``."""
    if not 0 < alpha < 1:
        raise ValueError(f"`alpha` must be in (0, 1); got alpha={alpha!r}.")
    if n_checks < 1:
        raise ValueError(f"`n_checks` must be >= 1; got n_checks={n_checks!r}.")
    return 1.0 - alpha / n_checks


def decide(
    predicted: float,
    estimate: Estimate,
    confidence: float,
    precision: float = DEFAULT_PRECISION,
    allowed: tuple[float, float] | None = None,
) -> Decision:
    """Agree when the prediction lies in the interval at ``confidence``.

    ``allowed`` widens a point prediction into the range of values the claim allows:
    ``(predicted - b, predicted + b)`` for an approximation with a bias bound ``b``,
    ``(y, inf)`` for a lower bound ``y``. The check agrees when the interval meets that
    range; its p-value is that of the range's point nearest the estimate (the largest
    over the range, so the test keeps its level).

    Inconclusive when entries overflowed or were otherwise non-finite, or when the
    achieved precision is worse than :data:`INCONCLUSIVE_FACTOR` times the target.
    """
    ci = estimate.confidence_interval(confidence)
    finite = all(map(math.isfinite, (estimate.value, estimate.se, estimate.scale)))
    if estimate.nonfinite > 0 or not finite:
        return Decision(
            Outcome.INCONCLUSIVE,
            predicted,
            estimate,
            ci,
            confidence,
            math.nan,
            f"{estimate.nonfinite:.3g} of entries were non-finite",
        )
    if estimate.precision() > INCONCLUSIVE_FACTOR * precision:
        return Decision(
            Outcome.INCONCLUSIVE,
            predicted,
            estimate,
            ci,
            confidence,
            math.nan,
            f"achieved precision {estimate.precision():.3g} is worse than "
            f"{INCONCLUSIVE_FACTOR:g} x the target {precision:g}",
        )
    nearest = predicted if allowed is None else min(max(estimate.value, allowed[0]), allowed[1])
    p = estimate.p_value(nearest)
    inside = ci.low <= nearest <= ci.high
    return Decision(
        Outcome.AGREES if inside else Outcome.DISAGREES,
        predicted,
        estimate,
        ci,
        confidence,
        p,
        "prediction inside the interval" if inside else "prediction outside the interval",
    )


def holm_levels(p_values: Sequence[float], alpha: float) -> tuple[float, ...]:
    """The confidence at which each check is decided by Holm's step-down procedure.

    Checks are taken in order of increasing p-value (a ``nan`` p-value counts as 1);
    the check of rank :math:`j` is decided at :math:`1 - \alpha/(m - j + 1)` until the
    first one that is not refused, and every later check at that check's level.
    Deciding each check by its interval at its level is Holm's procedure: a check is
    refused exactly when Holm refuses it.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"`alpha` must be in (0, 1); got alpha={alpha!r}.")
    m = len(p_values)
    p = [x if math.isfinite(x) else 1.0 for x in p_values]
    levels = [0.0] * m
    stop = None
    for rank, i in enumerate(sorted(range(m), key=lambda i: (p[i], i))):
        threshold = alpha / (m - rank)
        if stop is None and p[i] > threshold:
            stop = threshold
        levels[i] = 1.0 - (threshold if stop is None else stop)
    return tuple(levels)


def decide_family(
    predicted: Sequence[float],
    estimates: Sequence[Estimate],
    alpha: float,
    precision: float = DEFAULT_PRECISION,
    allowed: Sequence[tuple[float, float] | None] | None = None,
) -> tuple[Decision, ...]:
    """Decide every check of a run together, at family-wise level ``alpha`` (Holm).

    ``allowed`` gives each check's range of allowed values (see :func:`decide`), or
    ``None`` for a point. Inconclusive checks (non-finite entries or too poor a
    precision) count in the family and are never refused.
    """
    allowed = [None] * len(predicted) if allowed is None else list(allowed)
    if not len(predicted) == len(estimates) == len(allowed):
        raise ValueError(
            f"`predicted`, `estimates` and `allowed` must have the same length; got "
            f"{len(predicted)}, {len(estimates)} and {len(allowed)}."
        )
    if not estimates:
        return ()
    floor = per_check_confidence(alpha, len(estimates))
    rows = list(zip(predicted, estimates, allowed, strict=True))
    first = [decide(y, e, floor, precision, a) for y, e, a in rows]
    p = [math.nan if d.outcome is Outcome.INCONCLUSIVE else d.p_value for d in first]
    levels = holm_levels(p, alpha)
    return tuple(
        decide(y, e, level, precision, a) for (y, e, a), level in zip(rows, levels, strict=True)
    )
