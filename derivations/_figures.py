r"""Figures owned by claims: what each figure shows, as plain specifications.

A :class:`FigureSpec` holds a figure's prose (title, caption, axes, panels), its theory
series, computed here from the owning claim's derived expressions (looked up by name,
substituted or :func:`sympy.lambdify`-ed, never retyped), and its simulated series.
A simulated point names an observable of a :class:`Measurement`: a plain scenario and
observables for the Monte Carlo engine, the same data a :class:`~derivations.Probe`
carries, grouped so that the observables of one scenario (every layer of one network)
are read from one set of replicates, and the stated :class:`Sizing` of the run.
Nothing here simulates or computes an interval: the evidence runner measures each
measurement with the engine and draws each point with the engine's interval.

Figures are attached to claims by id (:data:`OWNERS`); :func:`figures` builds the
figures of the claims it is given, in the report's order.

Notes
-----
The depth figure iterates the infinite-width recursion of the second moment,

.. math::

    q_t = n_{t-1}\gamma_t\, m_{t-1}, \qquad
    m_t = \mathbb{E}[f(x)^2]_{x \sim N(0, q_t)}, \qquad
    \mathbb{E}[(g^{t-1})^2] = n_t\gamma_t\,\mathbb{E}[f'(x)^2]_{x \sim N(0, q_t)}\,
        \mathbb{E}[(g^{t})^2],

whose linear factors are the results of the forward and backward claims and whose
Gaussian moments come from :mod:`derivations._gaussian` (exact where SymPy integrates
them, quadrature otherwise).

References
----------
.. [1] K. He, X. Zhang, S. Ren and J. Sun (2015), "Delving Deep into Rectifiers",
   ICCV, Sec. 2.2 (the second-moment recursion and :math:`\gamma_t = 2/n_{t-1}`).
.. [2] B. Poole, S. Lahiri, M. Raghu, J. Sohl-Dickstein and S. Ganguli (2016),
   "Exponential expressivity in deep neural networks through transient chaos",
   NeurIPS (the variance map of tanh networks, two inputs through depth).
.. [3] S. Schoenholz, J. Gilmer, S. Ganguli and J. Sohl-Dickstein (2017), "Deep
   Information Propagation", ICLR (the backward factor
   :math:`\sigma_w^2\,\mathbb{E}[\phi'(z)^2]`).
.. [4] Dive into Deep Learning, Sec. 5.4.1: the sigmoid and its gradient on
   ``torch.arange(-8.0, 8.0, 0.1)``; the product of 4x4 :math:`N(0, 1)` matrices;
   ``torch.normal(0, 0.01)`` weights (lecture L4.2).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache

import numpy as np
import sympy as sp
from sympy import stats as sps

from . import (
    _activations,
    _forward,
    _gaussian,
    _gradients,
    _log_norm,
    _mean_field_claims,
    _meanfield,
    _xavier,
)
from ._claim import Claim

#: Confidence of every simulated point's interval.
LEVEL = 0.99
#: Width and depth of the simulated networks of the depth figure, inputs per network.
WIDTH, DEPTH, BATCH = 128, 20, 32
#: Weight std of the lecture's small Gaussian initialization (L4.2, D2L's
#: ``torch.normal(0, 0.01)``).
SMALL_STD = sp.Rational(1, 100)
#: Depths of the product figure's simulated log-growth and mean-square points.
PRODUCT_DEPTHS = (1, 2, 5, 10, 20, 50, 100)
PRODUCT_M2_DEPTHS = (1, 2, 3, 4, 5)
#: Variances of the tanh figure's simulated points.
TANH_QS = (0.001, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
#: Depth and inputs per network of the log-norm figure (width: the claim's first probe).
LOG_NORM_DEPTH, LOG_NORM_BATCH = 32, 128
#: Quantiles over networks of the log-norm figure's spread: median, 10% and 90%.
SPREAD = (0.5, 0.1, 0.9)
#: erf network of the width figure (chaotic: the two inputs decorrelate), its depth and
#: the starting correlation.
WIDTHS_POINT, WIDTHS_DEPTH, WIDTHS_C0 = (3.0, 0.1), 16, 0.9
#: erf networks of the phase figure at sigma_b^2 = 0.05: ordered, critical (from the
#: critical line), chaotic; two starting correlations; width and depth.
PHASES_SB2, PHASES_SW2, PHASES_C0 = 0.05, (0.7, 3.0), (0.9, 0.1)
PHASES_WIDTH, PHASES_DEPTH = 256, 30
#: The difference of correlations below which the memory of the inputs counts as lost.
GAP_LEVEL = 0.05
#: Bias variances at which the critical lines of the phase diagram are computed.
DIAGRAM_SB2 = (0.0, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.6, 0.8, 1.0)

x, q = _activations.x, _activations.q
_STD = sp.Symbol("s", positive=True)


# --------------------------------------------------------------------------------------
# the specification
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sizing:
    """How many replicates a measurement runs, for a full run and a quick one.

    Either ``precision``: the engine's sequential sizing to that relative half-width
    of its interval (full, quick); or ``replicates``: a fixed count of independent
    replicates (full, quick), for a figure whose points must share one count.
    ``batch``: inputs per sampled network (``None``: the engine's choice).
    """

    precision: tuple[float, float] | None = None
    replicates: tuple[int, int] | None = None
    batch: int | None = None

    def __post_init__(self) -> None:
        if (self.precision is None) == (self.replicates is None):
            raise ValueError("a Sizing takes exactly one of `precision` and `replicates`.")


@dataclass(frozen=True)
class Measurement:
    """One scenario for the engine and the observables read from its replicates.

    ``key`` names the measurement's random stream within its figure (the runner seeds
    it with ``seed_for(seed, "figure", <figure id>, *key)``).
    """

    key: tuple[str, ...]
    scenario: Mapping[str, object] = field(hash=False)
    observables: tuple[Mapping[str, object], ...] = field(hash=False)
    sizing: Sizing


@dataclass(frozen=True)
class Point:
    """A simulated point at ``x``: observable ``of[0] = (measurement, observable)``;
    with two entries, the difference of the first minus the second (independent runs)."""

    x: float
    of: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class Curve:
    """A series drawn from derivations: a theory line (``kind="theory"``) or marked
    points of one (``kind="point"``); ``None`` where a value is not finite."""

    label: str
    x: tuple[float, ...]
    y: tuple[float | None, ...]
    panel: int = 0
    group: str = ""
    kind: str = "theory"


@dataclass(frozen=True)
class Simulated:
    """Simulated points with the engine's interval; or, with ``spread``, the quantiles
    ``(middle, low, high)`` of the per-replicate values (the spread of networks).

    ``exponent``: each value and bound is drawn as ``exp(exponent * value)``.
    """

    label: str
    points: tuple[Point, ...]
    panel: int = 0
    group: str = ""
    exponent: float | None = None
    spread: tuple[float, float, float] | None = None


@dataclass(frozen=True)
class Deviation:
    """For the caption: the last point of the simulated series ``series`` minus the
    theory value ``theory``, with the half-width of its interval, said to be ``where``."""

    series: str
    theory: float
    where: str


@dataclass(frozen=True)
class FigureSpec:
    """A figure: prose, axes, panels, series in drawing order, and measurements.

    The caption may hold ``{replicates}`` (the replicate counts of the figure's
    estimates), ``{precision}`` (the precision its sequential sizing aims at) and
    ``{deviations}`` (the :class:`Deviation` lines), filled by the runner from the
    engine's estimates.
    """

    id: str
    claim: str
    title: str
    caption: str
    xlabel: str
    ylabel: str
    xscale: str
    yscale: str
    panels: tuple[str, ...]
    series: tuple[Curve | Simulated, ...]
    measurements: tuple[Measurement, ...] = ()
    ylim: tuple[float, float] | None = None
    level: float = LEVEL
    deviations: tuple[Deviation, ...] = ()


def _finite(values: Sequence[float]) -> tuple[float | None, ...]:
    return tuple(float(v) if math.isfinite(v) else None for v in values)


def curve(label: str, xs, ys, *, panel: int = 0, group: str = "", kind: str = "theory") -> Curve:
    """A :class:`Curve` of plain floats (non-finite values become ``None``)."""
    ys = tuple(float(v) for v in ys) if kind == "point" else _finite(ys)
    return Curve(label, tuple(float(v) for v in xs), ys, panel, group or label, kind)


def simulated(label: str, points, **options) -> Simulated:
    """A :class:`Simulated` series; ``group`` defaults to the label."""
    options["group"] = options.get("group") or label
    return Simulated(label, tuple(points), **options)


# --------------------------------------------------------------------------------------
# theory from the derivations
# --------------------------------------------------------------------------------------


def _normal_std(variance: sp.Expr) -> sp.Expr:
    """The std of a normal law with ``variance``: solve the derived law variance for it."""
    (std,) = sp.solve(sp.Eq(_forward.weight_variance("normal", {"std": _STD}), variance), _STD)
    return std


def square_moment(f: sp.Expr) -> Callable[[float], float]:
    """``v -> E[f(x)^2]`` for ``x ~ N(0, v)``: exact (lambdified) or by quadrature."""
    try:
        exact = _gaussian.gaussian_moment(f**2, x, q).value
    except ValueError:
        moment = _gaussian.moment_function(f**2, x)
        return lambda v: moment(float(v))[0]
    func = sp.lambdify(q, exact, "math")
    return lambda v: float(func(v))


@cache
def _maps() -> tuple[Callable, Callable]:
    """The linear forward and backward factors, from the forward and backward claims."""
    fwd = _forward.forward_variance().derivation("variance").result
    bwd = _xavier.backward_variance().derivation("variance").result
    forward = sp.lambdify((_forward.n_prev, _forward.gamma, _forward.v_prev), fwd, "math")
    backward = sp.lambdify((_xavier.n_t, _xavier.gamma, _xavier.b_t), bwd, "math")
    return forward, backward


def _recursion_latex(claim: Claim) -> str:
    """The recursion of :func:`recursion` as inline LaTeX, from the SymPy results."""
    fwd = claim.derivation("variance").result
    bwd = _xavier.backward_variance().derivation("variance").result
    q_t, m_t, m_prev = sp.symbols("q_t m_t m_{t-1}", positive=True)
    b_prev = sp.Symbol("b_{t-1}", positive=True)
    f = sp.Function("f")
    z = sps.Normal("x", 0, sp.sqrt(q_t))
    parts = (
        sp.Eq(q_t, fwd.subs(_forward.v_prev, m_prev)),
        sp.Eq(m_t, sps.Expectation(f(z) ** 2)),
        sp.Eq(
            b_prev,
            bwd.subs(_xavier.b_t, sps.Expectation(sp.Derivative(f(z), z) ** 2) * _xavier.b_t),
        ),
    )
    return ", ".join(f"${sp.latex(p)}$" for p in parts) + (
        f" with ${sp.latex(sp.Symbol('x'))}$ normal of variance ${sp.latex(q_t)}$"
    )


def recursion(name: str, n: int, gamma: float, depth: int) -> tuple[list[float], list[float]]:
    """Infinite-width second moments of ``h^t`` and of ``dl/dh^t``, ``t = 0..depth``.

    Unit input and upstream second moments; see the module notes.
    """
    forward, backward = _maps()
    f = _activations.ACTIVATIONS[name]
    value, slope = square_moment(f), square_moment(sp.diff(f, x))
    m, qs = [1.0], []
    for _ in range(depth):
        qs.append(forward(n, gamma, m[-1]))
        m.append(value(qs[-1]))
    g = [1.0]
    for qt in reversed(qs):
        g.append(backward(n, gamma, slope(qt) * g[-1]))
    return m, g[::-1]


@cache
def _configs(claim: Claim) -> tuple[tuple[str, str, sp.Expr], ...]:
    """``(label, activation, weight variance)`` of the depth figure, at :data:`WIDTH`."""
    relu = _activations.relu_halves_variance()
    he = next(c.rhs for c in relu.conditions if isinstance(c, sp.Eq) and c.lhs == _forward.gamma)
    xavier = _activations.XAVIER_EQUAL
    factor = sp.simplify(claim.derivation("variance").result / _forward.v_prev)
    (exploding,) = sp.solve(sp.Eq(factor, _gradients.EXPLODING), _forward.gamma)
    width = {_forward.n_prev: WIDTH}
    return (
        ("Xavier + tanh", "tanh", xavier.subs(width)),
        ("Xavier + relu", "relu", xavier.subs(width)),
        ("He + relu", "relu", he.subs(width)),
        (
            f"N(0, {float(SMALL_STD):g}²) + linear",
            "linear",
            _forward.weight_variance("normal", {"std": SMALL_STD}),
        ),
        (f"nγ = {float(_gradients.EXPLODING):g}, linear", "linear", exploding.subs(width)),
    )


@cache
def _erf_kernel() -> Callable[[float, float, float], float]:
    """The arcsine kernel derived in claim mean-field-chi1, lambdified."""
    m = _mean_field_claims
    k = m.mean_field_chi1().derivation("arcsine kernel").result
    return sp.lambdify((m.q1, m.q2, m.q12), k, "math")


def erf_correlations(sigma_w2: float, sigma_b2: float, c0: float, depth: int) -> list[float]:
    """Mean-field correlation of layers ``1..depth`` for erf, inputs with ``q0 = 1``.

    Layer 1 is exact; above it :math:`q \\leftarrow \\sigma_w^2 K(q, q, q) + \\sigma_b^2` and
    :math:`q_{12} \\leftarrow \\sigma_w^2 K(q, q, q_{12}) + \\sigma_b^2` with the derived kernel.
    """
    kernel = _erf_kernel()
    var, cov = sigma_w2 + sigma_b2, sigma_w2 * c0 + sigma_b2
    out = [cov / var]
    for _ in range(depth - 1):
        var, cov = (sigma_w2 * kernel(var, var, v) + sigma_b2 for v in (var, cov))
        out.append(cov / var)
    return out


@cache
def critical_erf(sigma_b2: float) -> float:
    """The critical :math:`\\sigma_w^2` of erf at ``sigma_b2`` (:math:`\\chi_1 = 1`)."""
    (point,) = _meanfield.critical_line(sp.erf(x), [sigma_b2])
    return float(point.sigma_w2)


def pair_scenario(width: int, depth: int, sw: float, sb: float, c0: float) -> dict:
    """An erf ``pair`` scenario: two inputs with ``q0 = 1`` at correlation ``c0``."""
    return {
        "kind": "pair",
        "width": width,
        "depth": depth,
        "activation": "erf",
        "sigma_w2": sw,
        "sigma_b2": sb,
        "q0": 1.0,
        "c0": c0,
    }


def correlation_layers(depth: int) -> tuple[dict, ...]:
    """The observables of a pair scenario: the correlation at layers ``1..depth``."""
    return tuple({"quantity": "correlation", "layer": t} for t in range(1, depth + 1))


# --------------------------------------------------------------------------------------
# the lecture's figures
# --------------------------------------------------------------------------------------

#: Sizing of the depth figure: sequential, to these relative 99% half-widths.
DEPTH_SIZING = Sizing(precision=(0.1, 0.2), batch=BATCH)
#: Sizing of the product and tanh points (the product's mean square: the quick one).
POINT_SIZING = Sizing(precision=(0.01, 0.05))
SQUARE_SIZING = Sizing(precision=(0.05, 0.05))
#: Networks of the log-norm figure: one fixed count, so its spread is over that many.
LOG_NORM_SIZING = Sizing(replicates=(600, 100), batch=LOG_NORM_BATCH)
#: Networks per width of the width figure, and per pair and phase of the phase figure.
CORRELATION_WIDTHS = {32: (400, 60), 128: (120, 20), 512: (24, 6)}
PHASES_SIZING = Sizing(replicates=(32, 8))

#: Interval wording shared by the captions.
_INTERVALS = (
    "with the engine's {level:.0%} interval (jackknife t interval over independent "
    "networks, corrected for skewness)"
)
DEPTH_CAPTION = (
    "Second moment of the layer outputs (forward) and of the gradients of the loss "
    "with respect to them (backward) in networks of width {width} and depth {depth}, "
    "with standard normal inputs and upstream gradients. Lines: the infinite-width "
    "recursion {recursion} (the linear factors of the forward and backward claims, "
    "Gaussian moments exact or by quadrature). Points: simulation, mean over "
    "{{replicates}} independent networks of {batch} inputs each (as many as the engine "
    "needs for a relative half-width of {{precision}}), " + _INTERVALS + ". The relu and "
    "linear lines are exact at any width; for tanh the layer variance is random at finite "
    "width and the curved Gaussian map lowers the mean by a few percent over 20 layers "
    "(Jensen's inequality), which the deep tanh points show."
)


def _depth_measurement(label: str, name: str, gamma: sp.Expr) -> Measurement:
    """One network of the depth figure: the second moment of every layer, both ways."""
    scenario = {
        "kind": "mlp",
        "widths": [WIDTH] * (DEPTH + 1),
        "weights": {"law": "normal", "std": float(_normal_std(gamma))},
        "activation": name,
        "input": {"law": "normal", "mean": 0.0, "std": 1.0},
        "upstream": {"law": "normal", "std": 1.0},
        "dtype": "float64",
    }
    observables = tuple(
        {"direction": direction, "moment": "m2", "layer": t}
        for direction in ("forward", "backward")
        for t in range(DEPTH + 1)
    )
    return Measurement((label,), scenario, observables, DEPTH_SIZING)


def variance_depth(claim: Claim) -> FigureSpec:
    """Second moments over depth: the recursion against simulated networks (forward-variance)."""
    layers = range(DEPTH + 1)
    series, measurements = [], []
    for k, (label, name, gamma) in enumerate(_configs(claim)):
        measurements.append(_depth_measurement(label, name, gamma))
        for panel, theory in enumerate(recursion(name, WIDTH, float(gamma), DEPTH)):
            points = (Point(t, ((k, panel * (DEPTH + 1) + t),)) for t in layers)
            series.append(curve(f"{label} (theory)", layers, theory, panel=panel, group=label))
            series.append(simulated(f"{label} (simulation)", points, panel=panel, group=label))
    caption = DEPTH_CAPTION.format(
        width=WIDTH,
        depth=DEPTH,
        batch=BATCH,
        recursion=_recursion_latex(claim),
        level=LEVEL,
    )
    return FigureSpec(
        "variance-depth",
        claim.id,
        "Second moment of activations and gradients over depth",
        caption,
        "layer t",
        "second moment",
        "linear",
        "log",
        ("forward: outputs h^t", "backward: gradients dl/dh^t"),
        tuple(series),
        tuple(measurements),
    )


def _one_sided_series(claim: Claim, name: str, grid: np.ndarray, panel: int) -> list[Curve]:
    """The series on each side of 0, truncated at degrees 1 and 3 (one curve when equal)."""
    out, previous = [], None
    for degree in (1, 3):
        pieces = []
        for label in ("x >= 0", "x < 0"):
            branch = claim.derivation(f"{name}: series on {label}").result.removeO()
            var = next(iter(branch.free_symbols), x)
            part = sum(branch.coeff(var, k) * var**k for k in range(degree + 1))
            pieces.append(np.broadcast_to(sp.lambdify(var, part, "numpy")(grid), grid.shape))
        taylor = np.where(grid >= 0, pieces[0], pieces[1])
        if previous is not None and np.array_equal(taylor, previous):
            continue
        label = "one-sided series" if degree == 1 else f"one-sided, degree {degree}"
        out.append(curve(label, grid, taylor, panel=panel, group=f"degree {degree}"))
        previous = taylor
    return out


def _taylor_polynomials(claim: Claim, name: str, grid: np.ndarray, panel: int) -> list[Curve]:
    """The Taylor polynomials of degrees 1 and 3 at 0 of activation ``name``."""
    poly = sp.Poly(claim.derivation(f"{name}: series at 0").result.removeO(), x)
    out = []
    for degree in (1, 3):
        part = sum(c * x**k for (k,), c in poly.terms() if k <= degree)
        values = np.broadcast_to(sp.lambdify(x, part, "numpy")(grid), grid.shape)
        label = f"degree {degree}: ${sp.latex(part, order='rev-lex')}$"
        out.append(curve(label, grid, values, panel=panel, group=f"degree {degree}"))
    return out


TAYLOR_CAPTION = (
    "Each activation (solid) with its Taylor polynomials at 0 from `sympy.series`: "
    "to first order tanh and ${scaled}$ are the identity, the sigmoid is ${sigmoid}$, and "
    "relu equals its one-sided series on each side of 0."
)
TAYLOR_EXTRA = " {label} (not on the lecture's slides) is shown with its {what}"


def taylor(claim: Claim) -> FigureSpec:
    """The near-zero activations against their Taylor polynomials (taylor-identity-near-zero)."""
    grid = np.linspace(-3.0, 3.0, 241)
    entries = _activations.family("near-zero")
    one_sided = {d.name.split(":")[0] for d in claim.derivations if "series on" in d.name}
    series = []
    for panel, name in enumerate(e.name for e in entries):
        f = sp.lambdify(x, _activations.ACTIVATIONS[name], "numpy")
        label = sp.latex(_activations.DISPLAY[name]).join("$$")
        series.append(curve(label, grid, f(grid), panel=panel, group="function"))
        polys = _one_sided_series if name in one_sided else _taylor_polynomials
        series += polys(claim, name, grid, panel)
    sigmoid = claim.derivation("sigmoid: series at 0").result.removeO()
    first_order = sum(c * x**k for (k,), c in sp.Poly(sigmoid, x).terms() if k <= 1)
    caption = TAYLOR_CAPTION.format(
        scaled=sp.latex(_activations.DISPLAY["scaled_sigmoid"]),
        sigmoid=sp.latex(first_order, order="rev-lex"),
    ) + "".join(
        TAYLOR_EXTRA.format(
            label=e.label,
            what="one-sided series on each side of 0." if e.name in one_sided else "series.",
        )
        for e in entries
        if "lecture" not in e.families
    )
    return FigureSpec(
        "taylor",
        claim.id,
        "Activations against their Taylor polynomials at 0",
        caption,
        "x",
        "f(x)",
        "linear",
        "linear",
        tuple(e.label for e in entries),
        tuple(series),
        ylim=(-3.0, 3.0),
    )


def sigmoid_derivative(claim: Claim) -> FigureSpec:
    """The sigmoid and its derivative on D2L's grid, with the maximum (sigmoid-derivative)."""
    grid = np.arange(-8.0, 8.0, 0.1)
    derivative = claim.derivation("first derivative").result
    maximum = claim.derivation("maximum")
    at = maximum.start.point[0]
    sig = sp.lambdify(x, _activations.ACTIVATIONS["sigmoid"], "numpy")
    slope = sp.lambdify(x, derivative.doit(), "numpy")
    peak = f"${sp.latex(maximum.result)}$ at $x = {sp.latex(at)}$"
    return FigureSpec(
        "sigmoid-derivative",
        claim.id,
        "The sigmoid and its derivative",
        f"The sigmoid and its derivative ${sp.latex(derivative)}$ on [-8, 8) (as in "
        f"D2L, Sec. 5.4.1); the derivative peaks at {peak} and vanishes in both tails.",
        "x",
        "value",
        "linear",
        "linear",
        ("",),
        (
            curve(f"${sp.latex(_activations.DISPLAY['sigmoid'])}$", grid, sig(grid)),
            curve(f"${sp.latex(sp.Derivative(_activations.sigma(x), x))}$", grid, slope(grid)),
            curve(
                f"maximum {peak}",
                [float(at)],
                [float(maximum.result)],
                group="maximum",
                kind="point",
            ),
        ),
    )


PRODUCTS_CAPTION = (
    "Squared norm of the product of d i.i.d. {n} x {n} matrices with standard normal "
    "entries (the D2L demo) applied to a fixed vector, relative to the vector's. Mean "
    "square: ${square}$; typical: ${typical}$ with ${log}$ the derived mean of the log "
    "growth. Points: simulated mean log growth and, at short depth, mean squared growth, "
    "with the engine's {level:.0%} interval (jackknife t interval over {{replicates}} "
    "independent chains of matrices, as many as a relative half-width of {{precision}} "
    "needs). The mean "
    "square is carried by rare large products; the typical product grows far slower."
)


def _product_points(quantity: str, depths, first: int, sizing: Sizing):
    """One measurement per depth of the D2L product, and the points that read them."""
    base = {"kind": "product", "n": _gradients.D2L_N, "std": 1.0, "dtype": "float64"}
    observable = {"quantity": quantity, "moment": "mean"}
    measurements = tuple(
        Measurement((quantity, str(d)), {**base, "depth": d}, (observable,), sizing) for d in depths
    )
    points = tuple(Point(d, ((first + k, 0),)) for k, d in enumerate(depths))
    return measurements, points


def products(claim: Claim) -> FigureSpec:
    """Typical against mean-square growth of Gaussian products (gaussian-products)."""
    values = {_gradients.N_DOF: _gradients.D2L_N, _gradients.SIGMA_W: sp.Integer(1)}
    square_expr = claim.derivation("mean-square growth").result
    log_expr = claim.derivation("mean log growth").result
    mean_square, log_mean = square_expr.subs(values), log_expr.subs(values)
    typical = sp.lambdify(_gradients.DEPTH, sp.exp(2 * log_mean), "math")
    square = sp.lambdify(_gradients.DEPTH, mean_square, "math")
    depths = range(_gradients.D2L_FACTORS)
    logs, log_points = _product_points("log_growth", PRODUCT_DEPTHS, 0, POINT_SIZING)
    squares, m2_points = _product_points("m2_growth", PRODUCT_M2_DEPTHS, len(logs), SQUARE_SIZING)
    mu = sp.Symbol("mu")
    typical_group, square_group = (
        "typical (theory and simulation)",
        ("mean square (theory and simulation)"),
    )
    caption = PRODUCTS_CAPTION.format(
        n=_gradients.D2L_N,
        square=sp.latex(square_expr),
        typical=sp.latex(sp.exp(2 * mu)),
        log=sp.latex(sp.Eq(mu, log_expr)),
        level=LEVEL,
    )
    series = (
        curve(
            f"mean square ${sp.latex(square_expr)} = {sp.latex(mean_square)}$",
            depths,
            [square(d) for d in depths],
            group=square_group,
        ),
        curve("typical exp(2 E log growth)", depths, map(typical, depths), group=typical_group),
        simulated(
            "simulation: exp(2 mean log growth)", log_points, group=typical_group, exponent=2.0
        ),
        simulated("simulation: mean squared growth", m2_points, group=square_group),
    )
    return FigureSpec(
        "products",
        claim.id,
        "Growth of products of random Gaussian matrices",
        caption,
        "depth d (number of factors)",
        "squared norm growth",
        "linear",
        "log",
        ("",),
        series,
        logs + squares,
    )


LOG_NORM_CAPTION = (
    "Squared norm of the signal in bias-free relu networks of width {n} under He "
    "initialization, standard normal inputs, relative to the input's. Flat line: the mean "
    "square, ${expression} = {factor:g}$ per layer. Falling line: the typical value "
    r"$e^{{t\,\mathbb{{E}}\Delta}}$ with $\mathbb{{E}}\Delta = {drift:.4f}$ the derived mean "
    "log increment at $n = {n}$ (claim relu-log-norm). Points: simulation over "
    "{{replicates}} independent networks of {batch} inputs each: the mean square, and the "
    "exponential of the mean log, " + _INTERVALS + "; and the median network with the "
    "range from 10% to 90% of networks, which widens with depth."
)


def log_norm_depth(claim: Claim) -> FigureSpec:
    """He initialization keeps the mean square, not the typical norm (relu-log-norm)."""
    n, depth = _log_norm.PROBE_WIDTHS[0], LOG_NORM_DEPTH
    he = claim.derivation("mean log-norm increment of a relu layer").result
    drift = float(sp.N(he.subs(_log_norm.N, n).doit(), 20))
    (m2_probe,) = [p for p in claim.probes if p.observable["moment"] == "m2"]
    factor = m2_probe.predicted  # the per-layer mean-square factor at He initialization
    layers, deep = range(depth + 1), range(1, depth + 1)
    observables = tuple({"direction": "forward", "moment": "m2", "layer": t} for t in layers)
    observables += tuple(
        {"direction": "forward", "moment": "log_m2", "layer": t, "relative_to": 0} for t in deep
    )
    network = Measurement((), _log_norm._relu_mlp(n, depth), observables, LOG_NORM_SIZING)
    logs = tuple(Point(t, ((0, depth + t),)) for t in deep)  # at the input: 0 for all
    square, typical = "mean square", "typical: exp(mean log)"
    spread = "median network, 10%-90% of networks"
    series = (
        curve("mean square (theory)", layers, [factor**t for t in layers], group=square),
        simulated("mean square (simulation)", (Point(t, ((0, t),)) for t in layers), group=square),
        curve("typical (theory)", layers, [math.exp(t * drift) for t in layers], group=typical),
        simulated("typical (simulation)", logs, group=typical, exponent=1.0),
        simulated(spread, logs, exponent=1.0, spread=SPREAD),
    )
    caption = LOG_NORM_CAPTION.format(
        n=n,
        expression=sp.latex(m2_probe.expression),
        factor=factor,
        drift=drift,
        batch=LOG_NORM_BATCH,
        level=LEVEL,
    )
    return FigureSpec(
        "log-norm-depth",
        claim.id,
        "He initialization: the mean square is kept, the typical signal is not",
        caption,
        "layer t",
        "squared norm relative to the input",
        "linear",
        "log",
        ("",),
        series,
        (network,),
    )


TANH_CAPTION = (
    "${moment}$ for x normal with variance ${q}$: exact by quadrature, the small-variance "
    "expansions (Gaussian moments of the Taylor series of the square) and simulated points "
    "with the engine's {level:.0%} interval (jackknife t interval over {{replicates}} "
    "independent batches of draws). The star marks the largest variance at which the "
    "output's second moment is within 1% of the input's."
)


def tanh_variance(claim: Claim) -> FigureSpec:
    """E[tanh(x)^2] against its expansions and simulation (taylor-range-of-validity)."""
    tanh = _activations.ACTIVATIONS["tanh"]
    grid = np.geomspace(1e-3, 10.0, 61)
    exact = square_moment(tanh)
    series = [curve("E[tanh(x)²] (quadrature)", grid, [exact(v) for v in grid])]
    for order in (2, 3):
        expansion = _gaussian.gaussian_square_series(tanh, x, q, order).polynomial
        values = np.broadcast_to(sp.lambdify(q, expansion, "numpy")(grid), grid.shape)
        keep = values > 0
        series.append(curve(f"${sp.latex(expansion, order='rev-lex')}$", grid[keep], values[keep]))
    bound = _activations.validity_bounds()["tanh"]["1%"]
    series.append(
        curve("within 1% of q up to here", [bound], [exact(bound)], kind="point", group="bound")
    )
    scenario = {"kind": "scalar", "activation": "tanh", "function": "value", "dtype": "float64"}
    measurements = tuple(
        Measurement((str(v),), {**scenario, "q": v}, ({"moment": "m2"},), POINT_SIZING)
        for v in TANH_QS
    )
    points = (Point(v, ((k, 0),)) for k, v in enumerate(TANH_QS))
    series.append(simulated("simulation", points))
    moment = sps.Expectation(tanh.subs(x, sps.Normal("x", 0, sp.sqrt(q))) ** 2)
    return FigureSpec(
        "tanh-variance",
        claim.id,
        "The variance passed through tanh",
        TANH_CAPTION.format(moment=sp.latex(moment), q=sp.latex(q), level=LEVEL),
        "q = Var[x]",
        "E[tanh(x)²]",
        "log",
        "log",
        ("",),
        tuple(series),
        measurements,
        ylim=(5e-4, 2.0),
    )


# --------------------------------------------------------------------------------------
# beyond the lecture: two inputs through a deep network
# --------------------------------------------------------------------------------------

WIDTHS_CAPTION = (
    "Correlation of the pre-activations of two inputs (starting correlation {c0:g}, "
    "squared norm per entry 1) through erf networks with $\\sigma_w^2 = {sw:g}$, "
    "$\\sigma_b^2 = {sb:g}$ (chaotic phase: the inputs decorrelate). Line: the mean-field "
    "c-map with the arcsine kernel derived in claim mean-field-chi1, exact at layers 1 and "
    "2. Points: simulation at three widths, the ratio of mean inner product to mean "
    "squared norms over {{replicates}} independent networks (fewer at larger widths; 8 "
    "input pairs each), " + _INTERVALS + ". Finite-width deviation from the map at layer "
    "{depth} (simulation minus map, {level:.0%} half-width): {{deviations}}."
)


def correlation_widths(claim: Claim) -> FigureSpec:
    """Finite-width correlations against the erf c-map (mean-field-chi1)."""
    sw, sb = WIDTHS_POINT
    layers = range(1, WIDTHS_DEPTH + 1)
    theory = erf_correlations(sw, sb, WIDTHS_C0, WIDTHS_DEPTH)
    series = [curve("mean-field c-map (arcsine kernel)", layers, theory)]
    measurements, deviations = [], []
    for k, (n, replicates) in enumerate(CORRELATION_WIDTHS.items()):
        scenario = pair_scenario(n, WIDTHS_DEPTH, sw, sb, WIDTHS_C0)
        sizing = Sizing(replicates=replicates)
        measurements.append(
            Measurement((str(n),), scenario, correlation_layers(WIDTHS_DEPTH), sizing)
        )
        series.append(simulated(f"width {n}", (Point(t, ((k, t - 1),)) for t in layers)))
        deviations.append(Deviation(f"width {n}", theory[-1], f"width {n}"))
    caption = WIDTHS_CAPTION.format(c0=WIDTHS_C0, sw=sw, sb=sb, depth=WIDTHS_DEPTH, level=LEVEL)
    return FigureSpec(
        "correlation-widths",
        claim.id,
        "Correlation of two inputs through depth: finite width against the c-map",
        caption,
        "layer t",
        "correlation of the two inputs",
        "linear",
        "linear",
        ("",),
        tuple(series),
        tuple(measurements),
        deviations=tuple(deviations),
    )


PHASES_CAPTION = (
    "Difference between the correlations of two pairs of inputs that start at {a:g} and "
    "{b:g}, through erf networks with $\\sigma_b^2 = {sb:g}$ on both sides of the critical "
    "line and on it ($\\sigma_w^2 = {crit:.6g}$, where $\\chi_1 = 1$, by quadrature). Lines: "
    "the mean-field c-map (arcsine kernel); points: simulation at width {width}, "
    "{{replicates}} independent networks per pair and phase, the difference of the two "
    "pairs' estimates with the {level:.0%} t interval of a difference of independent "
    "estimates (an interval reaching 0 is drawn to the bottom; an estimate that is not "
    "positive, within the noise of the deepest layers, is not drawn). The difference falls "
    "below {gap:g} in the mean-field map at {reached}: off the critical line it decays "
    "exponentially (depth scale $\\xi_c$), on it only like a power of the depth."
)


def _phase(name: str, sw: float, first: int) -> tuple[list, tuple[Measurement, ...], str]:
    """Theory and simulated series of one phase, its two measurements, and where the
    mean-field difference falls below :data:`GAP_LEVEL`."""
    layers = range(1, PHASES_DEPTH + 1)
    a, b = (erf_correlations(sw, PHASES_SB2, c, PHASES_DEPTH) for c in PHASES_C0)
    gap = [u - w for u, w in zip(a, b, strict=True)]
    label = f"{name}, σ_w² = {sw:.4g}"
    measurements = tuple(
        Measurement(
            (name, str(c)),
            pair_scenario(PHASES_WIDTH, PHASES_DEPTH, sw, PHASES_SB2, c),
            correlation_layers(PHASES_DEPTH),
            PHASES_SIZING,
        )
        for c in PHASES_C0
    )
    points = (Point(t, ((first, t - 1), (first + 1, t - 1))) for t in layers)
    series = [
        curve(f"{label} (c-map)", layers, gap, group=label),
        simulated(f"{label} (simulation)", points, group=label),
    ]
    below = next((t for t, g in zip(layers, gap, strict=True) if abs(g) < GAP_LEVEL), None)
    reached = f"{name}: layer {below}" if below else f"{name}: not within {PHASES_DEPTH} layers"
    return series, measurements, reached


def correlation_phases(claim: Claim) -> FigureSpec:
    """The memory of the input correlation in three phases (edge-of-chaos)."""
    crit = critical_erf(PHASES_SB2)
    phases = (("ordered", PHASES_SW2[0]), ("critical", crit), ("chaotic", PHASES_SW2[1]))
    series, measurements, reached = [], [], []
    for name, sw in phases:
        s, m, r = _phase(name, sw, len(measurements))
        series += s
        measurements += m
        reached.append(r)
    caption = PHASES_CAPTION.format(
        a=PHASES_C0[0],
        b=PHASES_C0[1],
        sb=PHASES_SB2,
        crit=crit,
        width=PHASES_WIDTH,
        level=LEVEL,
        gap=GAP_LEVEL,
        reached="; ".join(reached),
    )
    return FigureSpec(
        "correlation-phases",
        claim.id,
        "The critical point keeps the memory of the input correlation",
        caption,
        "layer t",
        "difference of correlations",
        "linear",
        "log",
        ("",),
        tuple(series),
        tuple(measurements),
        ylim=(1e-4, 1.5),
    )


DIAGRAM_CAPTION = (
    "The critical line $\\chi_1 = \\sigma_w^2\\,\\mathbb{{E}}[\\phi'(\\sqrt{{q^*}}z)^2] = 1$ "
    "in the plane of the weight variance (times fan-in) and the bias variance: ordered phase "
    "to its left, chaotic to its right. erf and tanh by quadrature at {n} bias variances "
    "(derivations._meanfield); relu's line is $\\sigma_w^2 = 2$ at every bias variance "
    "(claim mean-field-chi1). Stars: the networks simulated in this part."
)


def _simulated_marks() -> list[tuple[str, list[tuple[float, float]]]]:
    """The (sigma_w^2, sigma_b^2) of every network simulated beyond the lecture."""
    m = _mean_field_claims
    erf = [
        *((float(p[2]), float(p[3])) for p in m.PAIR_PROBES),
        WIDTHS_POINT,
        *((sw, PHASES_SB2) for sw in PHASES_SW2),
    ]
    return [
        ("He initialization (relu)", [(2.0, 0.0)]),
        ("erf networks simulated", erf),
        ("tanh networks simulated", [(sw, m.TANH_SB2) for sw in m.TANH_SW2]),
    ]


def phase_diagram(claim: Claim) -> FigureSpec:
    """The critical line chi_1 = 1 of each mean-field activation (mean-field-chi1)."""
    series = []
    for name, f in ((e.name, e.expression) for e in _activations.family("mean-field")):
        keep = [p for p in _meanfield.critical_line(f, list(DIAGRAM_SB2)) if p.sigma_w2.decided]
        xs, ys = [float(p.sigma_w2) for p in keep], [p.sigma_b2 for p in keep]
        series.append(curve(f"{name}: χ1 = 1 (quadrature)", xs, ys))
    chi1 = claim.derivation("relu chi1").result
    (relu_line,) = sp.solve(sp.Eq(chi1, 1), _mean_field_claims.sw2)  # free of sigma_b^2
    coefficient = sp.sstr(sp.simplify(chi1 / _mean_field_claims.sw2))
    series.append(curve(f"relu: χ1 = {coefficient} σ_w² = 1", [float(relu_line)] * 2, [0, 1]))
    for label, pts in _simulated_marks():
        series.append(curve(label, [p[0] for p in pts], [p[1] for p in pts], kind="point"))
    return FigureSpec(
        "phase-diagram",
        claim.id,
        "Phase diagram: the critical line χ1 = 1",
        DIAGRAM_CAPTION.format(n=len(DIAGRAM_SB2)),
        "σ_w²",
        "σ_b²",
        "linear",
        "linear",
        ("",),
        tuple(series),
    )


# --------------------------------------------------------------------------------------
# figures attached to claims
# --------------------------------------------------------------------------------------

#: Every figure in the report's order, with the id of the claim that owns it.
OWNERS: tuple[tuple[str, Callable[[Claim], FigureSpec]], ...] = (
    ("forward-variance", variance_depth),
    ("taylor-identity-near-zero", taylor),
    ("sigmoid-derivative", sigmoid_derivative),
    ("gaussian-products", products),
    ("taylor-range-of-validity", tanh_variance),
    ("relu-log-norm", log_norm_depth),
    ("mean-field-chi1", phase_diagram),
    ("mean-field-chi1", correlation_widths),
    ("edge-of-chaos", correlation_phases),
)


def figures(claims: Sequence[Claim]) -> tuple[FigureSpec, ...]:
    """The figures owned by ``claims``, in the report's order (:data:`OWNERS`)."""
    by_id = {c.id: c for c in claims}
    return tuple(build(by_id[cid]) for cid, build in OWNERS if cid in by_id)
