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

with a Student-t interval on :math:`R - 1` degrees of freedom, bent towards the long
tail by Hall's transformation when the replicates are skewed [5].

The replicate count is set by a sequential fixed-width procedure (Chow and Robbins):
a pilot run estimates the spread, the run is extended, in stages with seeds of their
own, towards the size that reaches the target precision (each stage aiming short of
it, so that a noisy estimate of that size is approached from below rather than
overshot), and it stops at the first stage whose interval, over every replicate so
far (the pilot's included), is as narrow as the target. A heavy-tailed observable
whose pilot understated its spread is thus extended again rather than stopped short.
Coverage of the resulting interval is shown by tests over many seeds
(``tests/test_coverage.py``).

A fraction of entries (a statistic in :math:`[0, 1]`) near an edge has a skewed
mean: its interval is the score (Wilson) interval with the spread scaled by the
binomial variance function (a quasi-binomial score interval):

.. math::

    \{\mu : (\bar y - \mu)^2 \le t^2\, \widehat{\mathrm{se}}^2\,
    \mu (1 - \mu) / (\bar y (1 - \bar y))\},

the Student-t interval away from the edges, and longer towards the interior near
them.

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
.. [2] Y. S. Chow and H. Robbins (1965), "On the asymptotic theory of fixed-width
   sequential confidence intervals for the mean", Ann. Math. Statist. 36(2).
.. [3] E. B. Wilson (1927), "Probable inference, the law of succession, and
   statistical inference", J. Amer. Statist. Assoc. 22(158).
.. [4] S. Holm (1979), "A simple sequentially rejective multiple test procedure",
   Scand. J. Statist. 6(2), 65-70.
.. [5] P. Hall (1992), "On the removal of skewness by transformation", J. R. Statist.
   Soc. B 54(1), 221-228.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from scipy import stats

from ._engine import (
    FRACTIONS,
    STATS,
    WORKERS,
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
#: Sequential sizing: each extension aims at this fraction of the replicate count the
#: current spread asks for (short of it, so that the run approaches the count it needs
#: from below instead of overshooting a noisy pilot's guess), grows the run by at least
#: :data:`MIN_GROWTH` and at most :data:`MAX_GROWTH` (a pilot that overstates a
#: heavy-tailed spread is corrected by the next stage before the run commits to it),
#: and stops after :data:`MAX_STAGES` extensions. Every look at the interval is a
#: chance to stop on a spread that happens to be low, which costs coverage for heavy
#: tails; the coverage tests (``tests/test_coverage.py``) hold these constants.
AIM, MIN_GROWTH, MAX_GROWTH, MAX_STAGES = 0.8, 1.05, 4.0, 20
_COL = {name: k for k, name in enumerate(STATS)}


@dataclass(frozen=True)
class ConfidenceInterval:
    low: float
    high: float


def _quantile(confidence: float, dof: int) -> float:
    return float(stats.t.ppf(0.5 + confidence / 2, dof))


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
        Independent replicates (sampled networks, batches or chains) in the run, the
        pilot's included.
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
    fraction : bool
        A fraction of entries: every replicate's value lies in ``[0, 1]``.
    skewness : float
        Skewness of the jackknife pseudo-values; it bends the t interval (Hall's
        transformation, see :meth:`confidence_interval`). 0 gives the plain t interval.
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
    skewness: float = 0.0

    def _edge(self) -> bool:
        return self.fraction and self.se == 0 and self.value in (0.0, 1.0)

    def _score(self) -> bool:
        return self.fraction and self.se > 0 and 0.0 < self.value < 1.0

    def confidence_interval(self, confidence: float = DEFAULT_LEVEL) -> ConfidenceInterval:
        r"""Student-t interval over replicates; for a fraction, exact or score bounds.

        For a fraction (a statistic in [0, 1]) whose replicates all agree, the t
        interval would be a point. When every replicate is at an edge, say 1, the mean
        is at least :math:`P(X = 1)`, and with no replicate off the edge the exact
        (Clopper-Pearson) bound :math:`P(X < 1) \le 1 - \delta^{1/R}` holds with
        confidence :math:`1 - \delta`, so :math:`[\delta^{1/R}, 1]` is an interval
        (likewise :math:`[0, 1 - \delta^{1/R}]` at 0). When they all agree inside
        ``(0, 1)``, Hoeffding's bound for the mean of ``R`` bounded replicates,
        :math:`\sqrt{\log(2/\delta) / (2R)}`, is used. Otherwise a fraction gets the
        quasi-binomial score interval of the module docstring: with
        :math:`c = t^2 \widehat{\mathrm{se}}^2 / (\bar y (1 - \bar y))`,

        .. math::

            \mu_\pm = \frac{2 \bar y + c \pm \sqrt{c^2 + 4 c \bar y (1 - \bar y)}}
                           {2 (1 + c)} .

        Any other estimate gets the t interval corrected for the skewness
        :math:`\gamma` of its replicates by Hall's (1992) monotone transformation of the
        studentized statistic :math:`T = (\hat\theta - \theta)/\widehat{\mathrm{se}}`,

        .. math::

            g(T) = T + a T^2 + \tfrac13 a^2 T^3 + b, \quad
            a = \frac{\gamma}{3 \sqrt R}, \; b = \frac{\gamma}{6 \sqrt R},

        which removes the first-order skewness of :math:`T`; the interval is
        :math:`[\hat\theta - \widehat{\mathrm{se}}\, g^{-1}(t),
        \hat\theta - \widehat{\mathrm{se}}\, g^{-1}(-t)]`, longer on the side of the
        long tail (for :math:`\gamma = 0` the t interval).
        """
        t = _quantile(confidence, self.dof)
        if self.fraction and self.se == 0:
            delta = 1 - confidence
            if self._edge():
                edge = delta ** (1 / self.n_replicates)
                return (
                    ConfidenceInterval(edge, 1.0) if self.value else ConfidenceInterval(0, 1 - edge)
                )
            half = math.sqrt(math.log(2 / delta) / (2 * self.n_replicates))
            low, high = max(0.0, self.value - half), min(1.0, self.value + half)
            return ConfidenceInterval(float(low), float(high))
        if self._score():
            v = self.value
            c = (t * self.se) ** 2 / (v * (1 - v))
            root = math.sqrt(c * c + 4 * c * v * (1 - v))
            return ConfidenceInterval(
                float((2 * v + c - root) / (2 + 2 * c)), float((2 * v + c + root) / (2 + 2 * c))
            )
        if self.skewness and math.isfinite(self.skewness) and self.se > 0:
            return ConfidenceInterval(
                float(self.value - self.se * self._hall_inverse(t)),
                float(self.value - self.se * self._hall_inverse(-t)),
            )
        half = t * self.se
        return ConfidenceInterval(float(self.value - half), float(self.value + half))

    def _hall(self) -> tuple[float, float]:
        root = math.sqrt(self.n_replicates)
        return self.skewness / (3 * root), self.skewness / (6 * root)

    def _hall_inverse(self, y: float) -> float:
        a, b = self._hall()
        return float((np.cbrt(1 + 3 * a * (y - b)) - 1) / a)

    def p_value(self, predicted: float) -> float:
        """The largest ``1 - confidence`` whose interval still contains ``predicted``.

        Two-sided t test in general (for a fraction, the score statistic, the spread
        scaled to ``predicted`` by the binomial variance function); for a fraction whose
        replicates all agree, the level at which the exact edge bound or Hoeffding's
        bound reaches ``predicted``.
        """
        if self.fraction and self.se == 0:
            if self._edge():
                gap = min(max(abs(self.value - predicted), 0.0), 1.0)
                return (1.0 - gap) ** self.n_replicates
            d = abs(self.value - predicted)
            return min(1.0, 2 * math.exp(-2 * self.n_replicates * d * d))
        if self.se == 0:
            return 1.0 if self.value == predicted else 0.0
        se = self.se
        if self._score():
            if not 0.0 < predicted < 1.0:
                return 0.0
            v = self.value
            se *= math.sqrt(predicted * (1 - predicted) / (v * (1 - v)))
        t = (self.value - predicted) / se
        if not self._score() and self.skewness and math.isfinite(self.skewness):
            a, b = self._hall()
            t = t + a * t * t + a * a * t**3 / 3 + b
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
    value, se, _ = _jackknife_skew(y, g)
    return value, se


def _jackknife_skew(y: np.ndarray, g) -> tuple[float, float, float]:
    """:func:`jackknife` and the skewness of the pseudo-values ``R g(mean) - (R-1) g(loo)``."""
    r = y.shape[0]
    with np.errstate(invalid="ignore", divide="ignore"):
        mu = y.mean(axis=0)
        loo = (r * mu - y) / (r - 1)
        vals = g(loo)
        d = vals - vals.mean()
        m2 = float((d * d).mean())
        se = math.sqrt((r - 1) * m2)
        skew = -float((d**3).mean()) / m2**1.5 if m2 > 0 else 0.0
    return float(g(mu)), se, skew


@dataclass(frozen=True)
class _Reducer:
    """How one observable is read from a run's per-replicate statistics."""

    columns: Callable[[object], np.ndarray]
    g: Callable
    scale: Callable
    samples_per_replicate: int
    nonfinite_cols: tuple[int, ...]
    fraction: bool = False


@dataclass(frozen=True)
class _Plan:
    """How the observables of one scenario are simulated together and reduced."""

    kind: str
    run: Callable[[int, np.random.SeedSequence], object]
    reducers: tuple[_Reducer, ...]
    work_per_replicate: float
    describe: str


def _mlp_reducer(ob, widths, b) -> _Reducer:
    backward = ob.direction == "backward"
    fraction = ob.moment in FRACTION_MOMENTS
    log = ob.moment == "log_m2"

    def site(st, layer):
        if backward:
            return st.backward[:, layer]
        return (st.preactivation if ob.of == "preactivation" else st.forward)[:, layer]

    def columns(st):
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
    nonfinite = (_COL["nonfinite"],)
    if fraction:
        cols = ()
    elif ob.relative_to is not None:
        cols = (*nonfinite, k + nonfinite[0])
    else:
        cols = nonfinite
    return _Reducer(
        columns, g, scale, widths[ob.layer] * b, cols, fraction and ob.relative_to is None
    )


def _mlp_plan(sc: MLPScenario, obs, batch: int | None, activations) -> _Plan:
    if all(ob.direction == "forward" for ob in obs):
        # layers above the observed ones cannot change them: do not simulate them
        top = max(max(ob.layer, ob.relative_to or 0, 1) for ob in obs)
        sc = dataclasses.replace(
            sc,
            widths=sc.widths[: top + 1],
            weights=sc.weights[:top],
            biases=None if sc.biases is None else sc.biases[:top],
        )
    b = batch or choose_batch(sc.widths)
    backward = any(ob.direction == "backward" for ob in obs)
    flags = {
        "backward": backward,
        "fractions": any(ob.moment in FRACTIONS for ob in obs),
        "lognorm": any(ob.moment == "log_m2" for ob in obs),
        "preactivation": any(ob.of == "preactivation" for ob in obs),
    }

    def run(n, seed):
        return simulate_mlp(sc, n, b, seed, activations=activations, **flags)

    macs = sum(a * c for a, c in itertools.pairwise(sc.widths)) * (b + 64)
    return _Plan(
        "mlp",
        run,
        tuple(_mlp_reducer(ob, sc.widths, b) for ob in obs),
        macs * (2 if backward else 1),
        f"{b} inputs through each independently sampled network",
    )


def _scalar_reducer(ob) -> _Reducer:
    g = _moment_fn(ob.moment)
    if ob.moment == "mean":
        scale = lambda mu: math.sqrt(max(mu[_COL["m2"]], 0.0))  # noqa: E731
    else:
        scale = lambda mu: abs(float(g(mu)))  # noqa: E731
    return _Reducer(lambda y: y, g, scale, SCALAR_BATCH, (_COL["nonfinite"],))


def _product_reducer(ob) -> _Reducer:
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
    return _Reducer(lambda y: y, g, scale, 1, ())


def _plan(sc, obs, batch: int | None, activations) -> _Plan:
    """One simulation for every observable in ``obs``, and a reducer for each."""
    if isinstance(sc, MLPScenario):
        return _mlp_plan(sc, obs, batch, activations)
    if isinstance(sc, ScalarScenario):
        return _Plan(
            "scalar",
            lambda n, seed: simulate_scalar(sc, n, SCALAR_BATCH, seed, activations),
            tuple(_scalar_reducer(ob) for ob in obs),
            float(SCALAR_BATCH),
            f"{SCALAR_BATCH} independent draws per replicate",
        )
    return _Plan(
        "product",
        lambda n, seed: simulate_product(sc, n, seed),
        tuple(_product_reducer(ob) for ob in obs),
        float(sc.depth * sc.n * (sc.n + 16)),
        "one independent chain of matrices per replicate",
    )


def _seed_text(seed: np.random.SeedSequence) -> str:
    return f"entropy={seed.entropy} spawn_key={list(seed.spawn_key)}"


def _estimate(red: _Reducer, y: np.ndarray, seed_text: str, method: str) -> Estimate:
    value, se, skew = _jackknife_skew(y, red.g)
    n = y.shape[0]
    nonfinite = (
        float(np.mean([y[:, c].mean() for c in red.nonfinite_cols])) if red.nonfinite_cols else 0.0
    )
    return Estimate(
        value=value,
        se=se,
        dof=n - 1,
        n_replicates=n,
        n_samples=n * red.samples_per_replicate,
        scale=float(red.scale(y.mean(axis=0))),
        nonfinite=nonfinite,
        seed=seed_text,
        fraction=red.fraction,
        skewness=0.0 if red.fraction else skew,
        method=method,
    )


def _needed(est: Estimate, precision: float) -> float:
    """Replicates that would bring ``est`` to ``precision`` at its current spread."""
    if est._edge():
        # every replicate at an edge: enough replicates for the exact edge bound
        return math.log(1 - DEFAULT_LEVEL) / math.log1p(-2 * precision)
    achieved = est.precision()
    if not math.isfinite(achieved) or not math.isfinite(est.value):
        return 0.0  # non-finite entries: inconclusive at any size
    return est.n_replicates * (achieved / precision) ** 2


def _validate_precision(precision: object) -> None:
    if isinstance(precision, bool) or not (
        isinstance(precision, float | int) and 0 < precision < 1
    ):
        raise ValueError(f"`precision` must be in (0, 1); got precision={precision!r}.")


def _sequential(
    plan: _Plan, seed: np.random.SeedSequence, precision: float, max_replicates: int
) -> tuple[Estimate, ...]:
    """Pilot, then extensions until every observable reaches ``precision`` (or the cap).

    Stage ``k`` runs on ``child(seed, k)`` (the pilot on ``child(seed, 0)``); each
    extension aims at :data:`AIM` times the replicates the current spread asks
    for, within :data:`MIN_GROWTH` and :data:`MAX_GROWTH` times the current count,
    and at most the cap.
    """
    cap = int(
        min(max_replicates, max(MIN_REPLICATES[plan.kind], WORK_CAP / plan.work_per_replicate))
    )
    n = PILOT_REPLICATES[plan.kind]
    st = plan.run(n, child(seed, 0))
    ys = [red.columns(st) for red in plan.reducers]
    text = _seed_text(seed)
    for stage in range(1, MAX_STAGES + 2):
        method = (
            f"sequential: a pilot of {PILOT_REPLICATES[plan.kind]} replicates and "
            f"{stage - 1} extension(s) to the target precision; jackknife t interval "
            f"(skew-corrected) over all R = {n} independent replicates ({plan.describe})"
        )
        ests = tuple(
            _estimate(red, y, text, method) for red, y in zip(plan.reducers, ys, strict=True)
        )
        need = max(_needed(e, precision) for e in ests)
        if need <= n or n >= cap or stage > MAX_STAGES:
            return ests
        aim = min(math.ceil(AIM * need), math.floor(MAX_GROWTH * n))
        # a whole number of replicates per worker: a stage waits for its slowest worker
        grow = WORKERS * math.ceil((max(aim, math.ceil(MIN_GROWTH * n)) - n) / WORKERS)
        more = min(cap - n, grow)
        st = plan.run(more, child(seed, stage))
        ys = [
            np.concatenate([y, red.columns(st)]) for red, y in zip(plan.reducers, ys, strict=True)
        ]
        n += more
    raise AssertionError("unreachable")


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
        The probe's own stream; its first child seeds the pilot, the next ones the
        extensions of the sequential procedure.
    precision : float
        Target relative half-width of the 99% interval.
    batch : int, optional
        Inputs per sampled network (default: :func:`choose_batch`).
    max_replicates : int
        Cap on the run (also capped by :data:`WORK_CAP`); a precision worse than
        the target by :data:`INCONCLUSIVE_FACTOR` then makes a check inconclusive.
    activations : mapping, optional
        The activations ``name -> (f, f')`` the scenario may name, as NumPy callables
        (see :func:`montecarlo.scenario`); only ``linear`` is built in.
    """
    (est,) = measure_many(
        scenario_,
        [observable_],
        seed=seed,
        precision=precision,
        batch=batch,
        max_replicates=max_replicates,
        activations=activations,
    )
    return est


def measure_many(
    scenario_: Mapping[str, object],
    observables: Sequence[Mapping[str, object]],
    *,
    seed: np.random.SeedSequence,
    precision: float = DEFAULT_PRECISION,
    batch: int | None = None,
    max_replicates: int = MAX_REPLICATES,
    activations: Mapping | None = None,
) -> tuple[Estimate, ...]:
    """Estimate every observable of one scenario from one shared simulation.

    The networks are sampled once, every observable is read from the same
    replicates (one forward pass, and one backward pass if any observable is a
    gradient), and the run is extended until the least precise of them reaches
    ``precision``. The estimates are therefore dependent on each other; each
    interval on its own keeps its level. Parameters as for :func:`measure`.
    """
    _validate_precision(precision)
    if isinstance(observables, Mapping | str) or not len(observables):
        raise ValueError(
            f"`observables` must be a non-empty list of observables; got {observables!r}."
        )
    sc = scenario(scenario_, activations)
    obs = [observable(ob, sc) for ob in observables]
    return _sequential(_plan(sc, obs, batch, activations), seed, precision, max_replicates)


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


def _fixed_run(scenario_, observables, seed, replicates, batch, activations):
    """One run of ``replicates`` replicates on ``child(seed, 0)``: the plan and its columns."""
    if isinstance(replicates, bool) or not isinstance(replicates, int):
        raise ValueError(f"`replicates` must be an integer; got replicates={replicates!r}.")
    if not 2 <= replicates <= MAX_REPLICATES:
        raise ValueError(
            f"`replicates` must be in [2, {MAX_REPLICATES}]; got replicates={replicates!r}."
        )
    if isinstance(observables, Mapping | str) or not len(observables):
        raise ValueError(
            f"`observables` must be a non-empty list of observables; got {observables!r}."
        )
    sc = scenario(scenario_, activations)
    plan = _plan(sc, [observable(ob, sc) for ob in observables], batch, activations)
    st = plan.run(replicates, child(seed, 0))
    return plan, [red.columns(st) for red in plan.reducers]


def measure_fixed(
    scenario_: Mapping[str, object],
    observables: Sequence[Mapping[str, object]],
    *,
    seed: np.random.SeedSequence,
    replicates: int,
    batch: int | None = None,
    activations: Mapping | None = None,
) -> tuple[Estimate, ...]:
    """Estimate every observable of one scenario from a fixed number of replicates.

    As :func:`measure_many` (one shared simulation, the same jackknife t interval,
    skew-corrected), but one run of exactly ``replicates`` independent replicates on
    ``child(seed, 0)``, with no sequential extension: for a set of points that must share
    one replicate count, whatever precision that gives.
    """
    plan, ys = _fixed_run(scenario_, observables, seed, replicates, batch, activations)
    method = (
        f"fixed: jackknife t interval (skew-corrected) over R = {replicates} independent "
        f"replicates ({plan.describe})"
    )
    text = _seed_text(seed)
    return tuple(_estimate(red, y, text, method) for red, y in zip(plan.reducers, ys, strict=True))


def replicate_quantiles(
    scenario_: Mapping[str, object],
    observables: Sequence[Mapping[str, object]],
    quantiles: Sequence[float],
    *,
    seed: np.random.SeedSequence,
    replicates: int,
    batch: int | None = None,
    activations: Mapping | None = None,
) -> tuple[tuple[float, ...], ...]:
    """The ``quantiles`` over replicates of each observable's per-replicate value.

    The spread of independent networks (not an interval for a mean): each replicate's
    value is the observable computed from that replicate alone. Same run, hence the same
    replicates, as :func:`measure_fixed` with the same arguments.
    """
    plan, ys = _fixed_run(scenario_, observables, seed, replicates, batch, activations)
    return tuple(
        tuple(float(v) for v in np.quantile(red.g(y), list(quantiles)))
        for red, y in zip(plan.reducers, ys, strict=True)
    )


def difference(first: Estimate, second: Estimate) -> Estimate:
    r"""The difference of two estimates from independent runs.

    .. math:: \widehat{\mathrm{se}} = \sqrt{\widehat{\mathrm{se}}_1^2
        + \widehat{\mathrm{se}}_2^2}

    on the smaller of the two degrees of freedom (a conservative t interval; no skewness
    correction). Replicates and samples are the two runs' together.
    """
    return Estimate(
        value=first.value - second.value,
        se=math.hypot(first.se, second.se),
        dof=min(first.dof, second.dof),
        n_replicates=first.n_replicates + second.n_replicates,
        n_samples=first.n_samples + second.n_samples,
        scale=max(abs(first.scale), abs(second.scale)),
        nonfinite=max(first.nonfinite, second.nonfinite),
        seed=f"{first.seed}; {second.seed}",
        method=(
            "difference of two independent estimates: t interval on the smaller degrees of "
            f"freedom with the standard errors added in quadrature ({first.method}; "
            f"{second.method})"
        ),
    )
