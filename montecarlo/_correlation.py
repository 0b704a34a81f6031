r"""Two inputs through one deep network: variances and correlation per layer, at finite width.

A ``pair`` scenario is a fully connected network of equal widths ``n``,
:math:`z^t = W^t h^{t-1} + b^t`, :math:`h^t = \phi(z^t)`, with i.i.d. weights
:math:`N(0, \sigma_w^2/n)` and biases :math:`N(0, \sigma_b^2)`. Each sampled network
receives ``pairs`` pairs of inputs :math:`x_a, x_b \in \mathbb{R}^n` with
:math:`\|x_a\|^2/n = \|x_b\|^2/n = q_0` and :math:`x_a \cdot x_b / n = c_0 q_0` exactly
(a random orthonormal frame per pair, scaled), so the two inputs of a pair start at
correlation :math:`c_0`. The engine only samples, multiplies and applies the
activation; it never evaluates a mean-field map.

Per replicate (one sampled network) and layer it records the averages over units and
pairs of :math:`z_a^2`, :math:`z_b^2` and :math:`z_a z_b` of the pre-activations. The
observed correlation at layer :math:`t` is the ratio of expectations

.. math::

    \rho_t = \frac{\mathbb{E}[z^t_a \cdot z^t_b]}
    {\sqrt{\mathbb{E}\|z^t_a\|^2\,\mathbb{E}\|z^t_b\|^2}},

a smooth function of replicate means, so its interval is the jackknife over
independent networks (pairs that share a network are dependent).

References
----------
.. [1] B. Poole, S. Lahiri, M. Raghu, J. Sohl-Dickstein and S. Ganguli (2016),
   "Exponential expressivity in deep neural networks through transient chaos",
   NeurIPS: two inputs through a random network, the correlation per layer.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from ._errors import InvalidScenario
from ._estimate import DEFAULT_LEVEL, DEFAULT_PRECISION, Estimate, _jackknife_skew, jackknife
from ._estimate import measure as measure_network
from ._scenario import _activation, _integer, activation_functions
from ._seeding import child

#: Statistics per layer: averages of z_a^2, z_b^2 and z_a z_b.
PAIR_STATS = ("qa", "qb", "qab")
PAIR_QUANTITIES = ("correlation", "covariance", "variance")
PILOT, MIN_REPLICATES, MAX_REPLICATES = 32, 32, 20_000
#: Cap on weights drawn for one check (about ten seconds here).
WORK_CAP = 2e9
MAX_WIDTH, MAX_DEPTH, MAX_PAIRS = 4096, 1000, 256


@dataclass(frozen=True)
class PairScenario:
    """Validated ``pair`` scenario (see the module docstring)."""

    width: int
    depth: int
    activation: str
    sigma_w2: float
    sigma_b2: float
    q0: float
    c0: float
    pairs: int


def _number(name: str, value: object, low: float, high: float, *, open_low: bool = False):
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidScenario(f"`{name}` must be a finite number; got {name}={value!r}.")
    if not (low < value if open_low else low <= value) or value > high:
        side = "(" if open_low else "["
        raise InvalidScenario(
            f"`{name}` must be in {side}{low:g}, {high:g}]; got {name}={value!r}."
        )
    return float(value)


def pair_scenario(
    data: Mapping[str, object], activations: Mapping[str, tuple[Callable, ...]] | None = None
) -> PairScenario:
    """Validate plain data into a :class:`PairScenario`.

    Keys: ``kind`` (``"pair"``), ``width``, ``depth``, ``activation`` (one of the
    names of ``activations``, or ``linear``, built in as the identity when
    ``activations`` has none), ``sigma_w2`` (> 0), ``sigma_b2`` (>= 0), ``q0`` (> 0),
    ``c0`` (in [-1, 1]), optional ``pairs`` (default 8). ``activations`` maps a name to
    NumPy callables ``(f, f'[, ...])``, as for :func:`montecarlo.scenario`; only ``f``
    is used.
    """
    if not isinstance(data, Mapping):
        raise InvalidScenario(f"`scenario` must be a mapping; got scenario={data!r}.")
    allowed = ("kind", "width", "depth", "activation", "sigma_w2", "sigma_b2", "q0", "c0", "pairs")
    extra = sorted(set(data) - set(allowed))
    if extra:
        raise InvalidScenario(f"`scenario` takes keys {sorted(allowed)}; unexpected {extra}.")
    if data.get("kind") != "pair":
        raise InvalidScenario(f"`kind` must be 'pair'; got kind={data.get('kind')!r}.")
    return PairScenario(
        _integer("width", data.get("width"), 2, MAX_WIDTH),
        _integer("depth", data.get("depth"), 1, MAX_DEPTH),
        _activation(data.get("activation"), activations),
        _number("sigma_w2", data.get("sigma_w2"), 0.0, 1e6, open_low=True),
        _number("sigma_b2", data.get("sigma_b2", 0.0), 0.0, 1e6),
        _number("q0", data.get("q0"), 0.0, 1e6, open_low=True),
        _number("c0", data.get("c0"), -1.0, 1.0),
        _integer("pairs", data.get("pairs", 8), 1, MAX_PAIRS),
    )


def _inputs(rng: np.random.Generator, sc: PairScenario) -> tuple[np.ndarray, np.ndarray]:
    """``pairs`` input pairs with squared norm ``n q0`` and inner product ``n c0 q0``."""
    frames = [np.linalg.qr(rng.standard_normal((sc.width, 2)))[0] for _ in range(sc.pairs)]
    e1 = np.stack([f[:, 0] for f in frames], axis=1)
    e2 = np.stack([f[:, 1] for f in frames], axis=1)
    scale = math.sqrt(sc.width * sc.q0)
    return scale * e1, scale * (sc.c0 * e1 + math.sqrt(max(0.0, 1 - sc.c0**2)) * e2)


def simulate_pair(
    sc: PairScenario | Mapping[str, object],
    n_replicates: int,
    seed: np.random.SeedSequence,
    activations: Mapping[str, tuple[Callable, ...]] | None = None,
) -> np.ndarray:
    """Per-replicate statistics, shape ``(n_replicates, depth + 1, 3)``.

    ``sc`` is a :class:`PairScenario` or its plain data (see :func:`pair_scenario`);
    its activation is ``activations[sc.activation][0]`` (the identity for ``linear``
    when ``activations`` has none).

    Row ``t`` holds the averages over units and pairs of :math:`z_a^2`, :math:`z_b^2`,
    :math:`z_a z_b` of the pre-activations of layer ``t`` (row 0: the inputs). Replicate
    ``r`` draws from ``child(seed, r)`` only, so the numbers do not depend on how many
    replicates are asked for.
    """
    sc = sc if isinstance(sc, PairScenario) else pair_scenario(sc, activations)
    f = activation_functions(sc.activation, activations)[0]
    out = np.empty((n_replicates, sc.depth + 1, len(PAIR_STATS)))
    w_std, b_std = math.sqrt(sc.sigma_w2 / sc.width), math.sqrt(sc.sigma_b2)
    for r in range(n_replicates):
        rng = np.random.default_rng(child(seed, r))
        xa, xb = _inputs(rng, sc)
        h = np.concatenate([xa, xb], axis=1)
        for t in range(sc.depth + 1):
            if t:
                z = rng.standard_normal((sc.width, sc.width)) * w_std @ h
                z += rng.standard_normal((sc.width, 1)) * b_std
            else:
                z = h
            za, zb = z[:, : sc.pairs], z[:, sc.pairs :]
            out[r, t] = ((za * za).mean(), (zb * zb).mean(), (za * zb).mean())
            if t:
                h = f(z)
    return out


def _estimand(quantity: str):
    if quantity == "correlation":
        return lambda mu: mu[..., 2] / np.sqrt(mu[..., 0] * mu[..., 1])
    if quantity == "covariance":
        return lambda mu: mu[..., 2]
    return lambda mu: (mu[..., 0] + mu[..., 1]) / 2


def measure_pair(
    scenario_: Mapping[str, object],
    observable_: Mapping[str, object],
    *,
    seed: np.random.SeedSequence,
    precision: float = DEFAULT_PRECISION,
    activations: Mapping[str, tuple[Callable, ...]] | None = None,
) -> Estimate:
    """Estimate the correlation, covariance or variance of a pair at one layer.

    ``observable_`` is ``{"quantity": "correlation" | "covariance" | "variance",
    "layer": t}``. Two stages as :func:`montecarlo.measure`: a pilot of
    :data:`PILOT` replicates sets the number of replicates for the target relative
    precision (99% half-width), a fresh main run gives the estimate; the interval is the
    jackknife over independent networks. ``activations`` as for :func:`pair_scenario`.
    """
    sc = pair_scenario(scenario_, activations)
    quantity, layer = _pair_observable(observable_, sc.depth)
    if isinstance(precision, bool) or not (
        isinstance(precision, float | int) and 0 < precision < 1
    ):
        raise ValueError(f"`precision` must be in (0, 1); got precision={precision!r}.")
    sc = PairScenario(**{**sc.__dict__, "depth": layer})  # layers above cannot change it
    g = _estimand(quantity)

    def run(count: int, key: int) -> np.ndarray:
        return simulate_pair(sc, count, child(seed, key), activations)[:, layer, :]

    y = run(PILOT, 0)
    value, se = jackknife(y, g)
    z = stats.t.ppf(0.5 + DEFAULT_LEVEL / 2, PILOT - 1)
    cap = int(max(MIN_REPLICATES, min(MAX_REPLICATES, WORK_CAP / (layer * sc.width**2))))
    n_rep = MIN_REPLICATES
    if math.isfinite(se) and value != 0 and math.isfinite(value):
        need = PILOT * (z * se / (precision * abs(value))) ** 2
        n_rep = int(min(max(math.ceil(need), n_rep), cap))
    y = run(n_rep, 1)
    value, se = jackknife(y, g)
    return Estimate(
        value=value,
        se=se,
        dof=n_rep - 1,
        n_replicates=n_rep,
        n_samples=n_rep * sc.width * sc.pairs,
        scale=abs(value) if math.isfinite(value) else math.nan,
        nonfinite=float(np.mean(~np.isfinite(y))),
        seed=f"entropy={seed.entropy} spawn_key={list(seed.spawn_key)}",
        method=(
            f"two-stage: a pilot of {PILOT} replicates sets R; jackknife t interval over "
            f"R = {n_rep} independent networks ({sc.pairs} input pairs through each)"
        ),
    )


def _pair_observable(observable_: object, depth: int) -> tuple[str, int]:
    """Validate a pair observable: its quantity and layer."""
    if not isinstance(observable_, Mapping):
        raise InvalidScenario(f"`observable` must be a mapping; got observable={observable_!r}.")
    extra = sorted(set(observable_) - {"quantity", "layer"})
    if extra:
        raise InvalidScenario(f"`observable` takes keys ['layer', 'quantity']; unexpected {extra}.")
    quantity = observable_.get("quantity")
    if quantity not in PAIR_QUANTITIES:
        raise InvalidScenario(
            f"`observable.quantity` must be one of {list(PAIR_QUANTITIES)}; got {quantity!r}."
        )
    return str(quantity), _integer("observable.layer", observable_.get("layer"), 1, depth)


def measure_pair_fixed(
    scenario_: Mapping[str, object],
    observables: Sequence[Mapping[str, object]],
    *,
    seed: np.random.SeedSequence,
    replicates: int,
    activations: Mapping[str, tuple[Callable, ...]] | None = None,
) -> tuple[Estimate, ...]:
    """Estimate several pair observables (e.g. the correlation at every layer) from one run.

    One run of exactly ``replicates`` independent networks, :func:`simulate_pair` on
    ``seed`` up to the deepest observed layer, no sequential sizing: for points that
    must share one replicate count. Each estimate is the jackknife over the networks
    with its skewness (the skew-corrected t interval of :class:`Estimate`).
    """
    sc = pair_scenario(scenario_, activations)
    if isinstance(observables, Mapping | str) or not len(observables):
        raise ValueError(
            f"`observables` must be a non-empty list of observables; got {observables!r}."
        )
    wanted = [_pair_observable(ob, sc.depth) for ob in observables]
    replicates = _integer("replicates", replicates, 2, MAX_REPLICATES)
    sc = PairScenario(**{**sc.__dict__, "depth": max(t for _, t in wanted)})
    y = simulate_pair(sc, replicates, seed, activations)
    method = (
        f"fixed: jackknife t interval (skew-corrected) over R = {replicates} independent "
        f"networks ({sc.pairs} input pairs through each)"
    )
    out = []
    for quantity, layer in wanted:
        value, se, skew = _jackknife_skew(y[:, layer, :], _estimand(quantity))
        out.append(
            Estimate(
                value=value,
                se=se,
                dof=replicates - 1,
                n_replicates=replicates,
                n_samples=replicates * sc.width * sc.pairs,
                scale=abs(value) if math.isfinite(value) else math.nan,
                nonfinite=float(np.mean(~np.isfinite(y[:, layer, :]))),
                seed=f"entropy={seed.entropy} spawn_key={list(seed.spawn_key)}",
                method=method,
                skewness=skew,
            )
        )
    return tuple(out)


def measure(
    scenario_: Mapping[str, object], observable_: Mapping[str, object], **options
) -> Estimate:
    """Estimate ``observable_`` of any scenario: ``pair`` by :func:`measure_pair`, every
    other kind by the network engine's :func:`montecarlo._estimate.measure` (same
    options: ``seed``, ``precision``, ``batch``, ``max_replicates``, ``activations``;
    a pair scenario takes ``seed``, ``precision`` and ``activations``)."""
    if isinstance(scenario_, Mapping) and scenario_.get("kind") == "pair":
        extra = sorted(set(options) - {"seed", "precision", "activations"})
        if extra:
            raise InvalidScenario(
                f"a pair scenario takes the options seed, precision and activations; got {extra}."
            )
        return measure_pair(scenario_, observable_, **options)
    return measure_network(scenario_, observable_, **options)


__all__ = [
    "PairScenario",
    "measure",
    "measure_pair",
    "measure_pair_fixed",
    "pair_scenario",
    "simulate_pair",
]
