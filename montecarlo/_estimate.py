r"""Estimates with confidence intervals that respect shared weights, and decisions.

Inputs that pass through one sampled network are not independent, so no interval
is computed over inputs. Each network replicate yields one vector of per-replicate
averages; replicates are i.i.d., so the interval is a Student-t interval over
replicates, with the delta method for the variance:

.. math::

    \hat V = \overline{m_2} - \overline{m_1}^2, \qquad
    \widehat{\mathrm{se}}^2 = \frac{g^\top \hat\Sigma g}{R}, \quad
    g = (-2\overline{m_1}, 1),

where :math:`\hat\Sigma` is the sample covariance of :math:`(m_1, m_2)` over the
:math:`R` replicates.

The replicate count is fixed by a two-stage (Stein) procedure: an independent pilot
run estimates the spread, and a fresh main run of the size that reaches the target
precision gives the estimate, so the choice of :math:`R` does not bias the interval.

All checks of one run share a family-wise error budget by Bonferroni: with ``m``
checks at overall level :math:`\alpha`, each interval has confidence
:math:`1 - \alpha/m`, and the chance of any false alarm is at most :math:`\alpha`.

References
----------
.. [1] C. Stein (1945), "A two-sample test for a linear hypothesis whose power is
   independent of the variance", Ann. Math. Statist. 16(3).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from scipy import stats

from ._engine import simulate_forward
from ._scenario import mlp_scenario, observable

#: Default precision: 99% CI half-width of 1% relative (issue: one-step claims).
DEFAULT_PRECISION = 0.01
DEFAULT_LEVEL = 0.99
PILOT_REPLICATES = 32
MIN_REPLICATES = 32
MAX_REPLICATES = 20_000
DEFAULT_BATCH = 256
#: Achieved precision worse than this many times the target makes a check inconclusive.
INCONCLUSIVE_FACTOR = 5.0


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
        Estimate and standard error (``nan`` when not finite).
    dof : int
        Degrees of freedom of the t interval (replicates - 1).
    n_replicates : int
        Independent sampled networks in the main run.
    n_samples : int
        Scalar samples averaged (replicates x entries x inputs).
    scale : float
        Scale for relative precision: the value for variances and second
        moments, the root second moment for means.
    nonfinite : float
        Fraction of non-finite entries at the observed layer.
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

    def confidence_interval(self, confidence: float = DEFAULT_LEVEL) -> ConfidenceInterval:
        half = stats.t.ppf(0.5 + confidence / 2, self.dof) * self.se
        return ConfidenceInterval(self.value - half, self.value + half)

    def precision(self, confidence: float = DEFAULT_LEVEL) -> float:
        """Relative half-width of the interval at ``confidence``."""
        ci = self.confidence_interval(confidence)
        return (ci.high - ci.low) / 2 / self.scale if self.scale > 0 else math.inf


def _moment(stats_: np.ndarray, moment: str) -> tuple[float, float, float]:
    """Value, standard error and scale of ``moment`` from per-replicate (m1, m2)."""
    m1, m2 = stats_[:, 0], stats_[:, 1]
    r = len(m1)
    b1, b2 = m1.mean(), m2.mean()
    if moment == "mean":
        return b1, m1.std(ddof=1) / math.sqrt(r), math.sqrt(max(b2, 0.0))
    if moment == "m2":
        return b2, m2.std(ddof=1) / math.sqrt(r), abs(b2)
    cov = np.cov(np.stack([m1, m2]), ddof=1)
    g = np.array([-2.0 * b1, 1.0])
    value = b2 - b1**2
    return value, math.sqrt(max(g @ cov @ g, 0.0) / r), abs(value)


def _seed_text(seed: np.random.SeedSequence) -> str:
    return f"entropy={seed.entropy} spawn_key={list(seed.spawn_key)}"


def measure(
    scenario: Mapping[str, object],
    observable_: Mapping[str, object],
    *,
    seed: np.random.SeedSequence,
    precision: float = DEFAULT_PRECISION,
    batch: int = DEFAULT_BATCH,
    max_replicates: int = MAX_REPLICATES,
) -> Estimate:
    """Simulate ``scenario`` and estimate ``observable_`` to the target precision.

    Parameters
    ----------
    scenario, observable_ : mapping
        Plain data, see :func:`montecarlo.mlp_scenario` and
        :func:`montecarlo.observable`.
    seed : numpy.random.SeedSequence
        The probe's own stream; its first child seeds the pilot, the second the
        main run.
    precision : float
        Target relative half-width of the 99% interval.
    batch : int
        Inputs per sampled network.
    max_replicates : int
        Cap on the main run; precision worse than the target by
        :data:`INCONCLUSIVE_FACTOR` then makes the check inconclusive.
    """
    if not (isinstance(precision, float | int) and 0 < precision < 1):
        raise ValueError(f"`precision` must be in (0, 1); got precision={precision!r}.")
    sc = mlp_scenario(scenario)
    ob = observable(observable_, len(sc.widths) - 1)
    pilot_seed, main_seed = seed.spawn(2)
    pilot = simulate_forward(sc, PILOT_REPLICATES, batch, np.random.default_rng(pilot_seed))
    value, se, scale = _moment(pilot[:, ob.layer], ob.moment)
    z = stats.t.ppf(0.5 + DEFAULT_LEVEL / 2, PILOT_REPLICATES - 1)
    if math.isfinite(se) and math.isfinite(scale) and scale > 0:
        need = PILOT_REPLICATES * (z * se / (precision * scale)) ** 2
        n_rep = int(min(max(math.ceil(need), MIN_REPLICATES), max_replicates))
    else:
        n_rep = MIN_REPLICATES
    main = simulate_forward(sc, n_rep, batch, np.random.default_rng(main_seed))
    layer = main[:, ob.layer]
    value, se, scale = _moment(layer, ob.moment)
    return Estimate(
        value=float(value),
        se=float(se),
        dof=n_rep - 1,
        n_replicates=n_rep,
        n_samples=n_rep * sc.widths[ob.layer] * batch,
        scale=float(scale),
        nonfinite=float(layer[:, 2].mean()),
        seed=_seed_text(seed),
        method=(
            f"two-stage: pilot of {PILOT_REPLICATES} networks sets R; t interval over "
            f"R = {n_rep} independent networks x {batch} inputs each"
            + ("; delta method for the variance" if ob.moment == "var" else "")
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
) -> Decision:
    """Agree when ``predicted`` lies in the interval at ``confidence``.

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
    t = (estimate.value - predicted) / estimate.se if estimate.se > 0 else math.inf
    p = float(2 * stats.t.sf(abs(t), estimate.dof))
    inside = ci.low <= predicted <= ci.high
    return Decision(
        Outcome.AGREES if inside else Outcome.DISAGREES,
        predicted,
        estimate,
        ci,
        confidence,
        p,
        "prediction inside the interval" if inside else "prediction outside the interval",
    )
