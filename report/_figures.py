r"""The report's figures: plain data first (theory and simulation), then PNG files.

:func:`figure_data` computes every figure as plain, JSON-serializable data. Theory
curves come from the SymPy results of :mod:`derivations` (substituted or
:func:`sympy.lambdify`-ed, never retyped); simulation points come from
:mod:`montecarlo`, each figure and curve on its own stream
``seed_for(seed, "figure", <figure id>, <curve>)``, with Student-t intervals over
independent network replicates. :func:`render_figures` draws that data with
matplotlib's Agg renderer into PNG files whose bytes depend on the data only.

A figure is a dict with keys ``id``, ``title``, ``caption``, ``xlabel``, ``ylabel``,
``xscale``, ``yscale``, ``panels`` (panel titles; one panel when it holds one empty
title), optional ``ylim`` and ``series``. A series has ``label``, ``kind``, ``panel``
(index into ``panels``), ``group`` (series of one group share a style), ``x``, ``y``
and, for ``kind == "simulation"``, ``low`` and ``high``. Kinds: ``"theory"`` (a line),
``"simulation"`` (points with error bars), ``"point"`` (marked points of a theory
curve).

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
   NeurIPS (the variance map of tanh networks).
.. [3] S. Schoenholz, J. Gilmer, S. Ganguli and J. Sohl-Dickstein (2017), "Deep
   Information Propagation", ICLR (the backward factor
   :math:`\sigma_w^2\,\mathbb{E}[\phi'(z)^2]`).
.. [4] Dive into Deep Learning, Sec. 5.4.1: the sigmoid and its gradient on
   ``torch.arange(-8.0, 8.0, 0.1)``; the product of 4x4 :math:`N(0, 1)` matrices;
   ``torch.normal(0, 0.01)`` weights (lecture L4.2).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path

import numpy as np
import sympy as sp
from scipy import stats
from sympy import stats as sps

import montecarlo
from derivations import (
    _activations,
    _forward,
    _gaussian,
    _gradients,
    _log_norm,
    _mean_field_claims,
    _meanfield,
    _xavier,
    simulation_activations,
)

#: Width and depth of the simulated networks of the depth figure.
WIDTH, DEPTH = 128, 20
#: Replicates (independent networks) and inputs per network, full and quick.
REPLICATES, QUICK_REPLICATES, BATCH = 64, 16, 32
#: Weight std of the lecture's small Gaussian initialization (L4.2, D2L's
#: ``torch.normal(0, 0.01)``).
SMALL_STD = sp.Rational(1, 100)
#: Confidence of every error bar.
LEVEL = montecarlo.DEFAULT_LEVEL
#: The activations' NumPy side, from the table, handed to the engine.
SIMULATION = simulation_activations()
#: Precision target of the product and scalar points (relative 99% half-width).
PRECISION, QUICK_PRECISION = 0.01, 0.05
#: Depths of the product figure's simulated log-growth and mean-square points.
PRODUCT_DEPTHS = (1, 2, 5, 10, 20, 50, 100)
PRODUCT_M2_DEPTHS = (1, 2, 3, 4, 5)
#: Variances of the tanh figure's simulated points.
TANH_QS = (0.001, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
#: Depth and inputs per network of the log-norm figure (width: the claim's first probe).
LOG_NORM_DEPTH, LOG_NORM_BATCH = 32, 128
#: Output size and resolution of every PNG.
FIGSIZE, DPI = (7.0, 4.2), 110

x, q = _activations.x, _activations.q
_STD = sp.Symbol("s", positive=True)


# --------------------------------------------------------------------------------------
# theory from the derivations
# --------------------------------------------------------------------------------------


def _result(claim, name: str) -> sp.Expr:
    """The result of the derivation called ``name`` of ``claim``."""
    for d in claim.derivations:
        if d.name == name:
            return d.result
    raise KeyError(f"claim {claim.id!r} has no derivation named {name!r}")


def _normal_std(variance: sp.Expr) -> sp.Expr:
    """The std of a normal law with ``variance``: solve the derived law variance for it."""
    (std,) = sp.solve(sp.Eq(_forward.weight_variance("normal", {"std": _STD}), variance), _STD)
    return std


def _square_moment(f: sp.Expr) -> Callable[[float], float]:
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
    fwd = _result(_forward.forward_variance(), "variance")
    bwd = _result(_xavier.backward_variance(), "variance")
    forward = sp.lambdify((_forward.n_prev, _forward.gamma, _forward.v_prev), fwd, "math")
    backward = sp.lambdify((_xavier.n_t, _xavier.gamma, _xavier.b_t), bwd, "math")
    return forward, backward


def _recursion_latex() -> str:
    """The recursion of :func:`recursion` as inline LaTeX, from the SymPy results."""
    fwd = _result(_forward.forward_variance(), "variance")
    bwd = _result(_xavier.backward_variance(), "variance")
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


def _activation(name: str) -> sp.Expr:
    return _activations.ACTIVATIONS[name]


def recursion(name: str, n: int, gamma: float, depth: int) -> tuple[list[float], list[float]]:
    """Infinite-width second moments of ``h^t`` and of ``dl/dh^t``, ``t = 0..depth``.

    Unit input and upstream second moments; see the module notes.
    """
    forward, backward = _maps()
    f = _activation(name)
    value = _square_moment(f)
    slope = _square_moment(sp.diff(f, x))
    m, qs = [1.0], []
    for _ in range(depth):
        qs.append(forward(n, gamma, m[-1]))
        m.append(value(qs[-1]))
    g = [1.0]
    for qt in reversed(qs):
        g.append(backward(n, gamma, slope(qt) * g[-1]))
    return m, g[::-1]


@cache
def _configs() -> tuple[tuple[str, str, sp.Expr], ...]:
    """``(label, activation, weight variance)`` of the depth figure, at :data:`WIDTH`."""
    relu = _activations.relu_halves_variance()
    he = next(c.rhs for c in relu.conditions if isinstance(c, sp.Eq) and c.lhs == _forward.gamma)
    xavier = _activations.XAVIER_EQUAL
    factor = sp.simplify(_result(_forward.forward_variance(), "variance") / _forward.v_prev)
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


# --------------------------------------------------------------------------------------
# simulation
# --------------------------------------------------------------------------------------


def t_interval(samples: np.ndarray, level: float = LEVEL) -> tuple[float, float, float]:
    """Mean of i.i.d. replicate values and its Student-t interval (jackknife s.e.)."""
    samples = np.asarray(samples, dtype=float)
    mean, se = montecarlo.jackknife(samples[:, None], lambda mu: mu[..., 0])
    half = float(stats.t.ppf(0.5 + level / 2, len(samples) - 1)) * se
    return mean, mean - half, mean + half


def _finite(values: Sequence[float]) -> list[float | None]:
    return [float(v) if math.isfinite(v) else None for v in values]


def _theory(label, x_values, y_values, *, panel=0, group=None) -> dict:
    return {
        "label": label,
        "kind": "theory",
        "panel": panel,
        "group": label if group is None else group,
        "x": [float(v) for v in x_values],
        "y": _finite(y_values),
    }


def _simulation(label, x_values, triples, *, panel=0, group=None) -> dict:
    mean, low, high = zip(*triples, strict=True) if triples else ((), (), ())
    return {
        "label": label,
        "kind": "simulation",
        "panel": panel,
        "group": label if group is None else group,
        "x": [float(v) for v in x_values],
        "y": _finite(mean),
        "low": _finite(low),
        "high": _finite(high),
    }


def _variance_depth(seed: int, quick: bool) -> dict:
    fid = "variance-depth"
    replicates = QUICK_REPLICATES if quick else REPLICATES
    layers = list(range(DEPTH + 1))
    series = []
    for label, name, gamma in _configs():
        m, g = recursion(name, WIDTH, float(gamma), DEPTH)
        scenario = montecarlo.scenario(
            {
                "kind": "mlp",
                "widths": [WIDTH] * (DEPTH + 1),
                "weights": {"law": "normal", "std": float(_normal_std(gamma))},
                "activation": name,
                "input": {"law": "normal", "mean": 0.0, "std": 1.0},
                "upstream": {"law": "normal", "std": 1.0},
                "dtype": "float64",
            },
            SIMULATION,
        )
        st = montecarlo.simulate_mlp(
            scenario,
            replicates,
            BATCH,
            montecarlo.seed_for(seed, "figure", fid, label),
            backward=True,
            activations=SIMULATION,
        )
        m2 = montecarlo.STATS.index("m2")
        for panel, theory, sim in ((0, m, st.forward), (1, g, st.backward)):
            series.append(_theory(f"{label} (theory)", layers, theory, panel=panel, group=label))
            series.append(
                _simulation(
                    f"{label} (simulation)",
                    layers,
                    [t_interval(sim[:, t, m2]) for t in layers],
                    panel=panel,
                    group=label,
                )
            )
    return {
        "id": fid,
        "title": "Second moment of activations and gradients over depth",
        "caption": (
            f"Second moment of the layer outputs (forward) and of the gradients of the loss "
            f"with respect to them (backward) in networks of width {WIDTH} and depth {DEPTH}, "
            "with standard normal inputs and upstream gradients. Lines: the infinite-width "
            f"recursion {_recursion_latex()} (the linear factors of the forward and backward "
            "claims, Gaussian moments exact or by quadrature). Points: simulation, mean "
            f"over {replicates} independent networks of {BATCH} inputs each, with "
            f"{LEVEL:.0%} Student-t intervals over the networks. The relu and linear lines "
            "are exact at any width; for tanh the layer variance is random at finite width "
            "and the curved Gaussian map lowers the mean by a few percent over 20 layers "
            "(Jensen's inequality), which the deep tanh points show."
        ),
        "xlabel": "layer t",
        "ylabel": "second moment",
        "xscale": "linear",
        "yscale": "log",
        "panels": ["forward: outputs h^t", "backward: gradients dl/dh^t"],
        "series": series,
    }


def _one_sided_series(claim, name: str, grid: np.ndarray, panel: int) -> list[dict]:
    """The series on each side of 0, truncated at degrees 1 and 3 (one curve when equal)."""
    out, previous = [], None
    for degree in (1, 3):
        pieces = []
        for label in ("x >= 0", "x < 0"):
            branch = _result(claim, f"{name}: series on {label}").removeO()
            var = next(iter(branch.free_symbols), x)
            part = sum(branch.coeff(var, k) * var**k for k in range(degree + 1))
            pieces.append(np.broadcast_to(sp.lambdify(var, part, "numpy")(grid), grid.shape))
        taylor = np.where(grid >= 0, pieces[0], pieces[1])
        if previous is not None and np.array_equal(taylor, previous):
            continue
        label = "one-sided series" if degree == 1 else f"one-sided, degree {degree}"
        out.append(_theory(label, grid, taylor, panel=panel, group=f"degree {degree}"))
        previous = taylor
    return out


def _taylor() -> dict:
    claim = _activations.taylor_identity_near_zero()
    grid = np.linspace(-3.0, 3.0, 241)
    entries = _activations.family("near-zero")
    one_sided = {d.name.split(":")[0] for d in claim.derivations if "series on" in d.name}
    series = []
    first_order = 0
    for panel, name in enumerate(e.name for e in entries):
        f = sp.lambdify(x, _activations.ACTIVATIONS[name], "numpy")
        series.append(
            _theory(
                sp.latex(_activations.DISPLAY[name]).join("$$"),
                grid,
                f(grid),
                panel=panel,
                group="function",
            )
        )
        if name in one_sided:
            series += _one_sided_series(claim, name, grid, panel)
            continue
        poly = sp.Poly(_result(claim, f"{name}: series at 0").removeO(), x)
        for degree in (1, 3):
            part = sum(c * x**k for (k,), c in poly.terms() if k <= degree)
            if name == "sigmoid" and degree == 1:
                first_order = part
            values = np.broadcast_to(sp.lambdify(x, part, "numpy")(grid), grid.shape)
            series.append(
                _theory(
                    f"degree {degree}: ${sp.latex(part, order='rev-lex')}$",
                    grid,
                    values,
                    panel=panel,
                    group=f"degree {degree}",
                )
            )
    return {
        "id": "taylor",
        "title": "Activations against their Taylor polynomials at 0",
        "caption": (
            "Each activation (solid) with its Taylor polynomials at 0 from `sympy.series`: "
            f"to first order tanh and ${sp.latex(_activations.DISPLAY['scaled_sigmoid'])}$ are "
            f"the identity, the sigmoid is ${sp.latex(first_order, order='rev-lex')}$, and "
            "relu equals its one-sided series on each side of 0."
            + "".join(
                f" {e.label} (not on the lecture's slides) is shown with its "
                + ("one-sided series on each side of 0." if e.name in one_sided else "series.")
                for e in entries
                if "lecture" not in e.families
            )
        ),
        "xlabel": "x",
        "ylabel": "f(x)",
        "xscale": "linear",
        "yscale": "linear",
        "ylim": [-3.0, 3.0],
        "panels": [e.label for e in entries],
        "series": series,
    }


def _sigmoid_derivative() -> dict:
    claim = _activations.sigmoid_derivative()
    grid = np.arange(-8.0, 8.0, 0.1)
    derivative = _result(claim, "first derivative")
    maximum = next(d for d in claim.derivations if d.name == "maximum")
    at = maximum.start.point[0]
    sig = sp.lambdify(x, _activations.ACTIVATIONS["sigmoid"], "numpy")
    slope = sp.lambdify(x, derivative.doit(), "numpy")
    return {
        "id": "sigmoid-derivative",
        "title": "The sigmoid and its derivative",
        "caption": (
            f"The sigmoid and its derivative ${sp.latex(derivative)}$ on [-8, 8) (as in "
            f"D2L, Sec. 5.4.1); the derivative peaks at ${sp.latex(maximum.result)}$ at "
            f"$x = {sp.latex(at)}$ and vanishes in both tails."
        ),
        "xlabel": "x",
        "ylabel": "value",
        "xscale": "linear",
        "yscale": "linear",
        "panels": [""],
        "series": [
            _theory(f"${sp.latex(_activations.DISPLAY['sigmoid'])}$", grid, sig(grid)),
            _theory(f"${sp.latex(sp.Derivative(_activations.sigma(x), x))}$", grid, slope(grid)),
            {
                "label": f"maximum ${sp.latex(maximum.result)}$ at $x = {sp.latex(at)}$",
                "kind": "point",
                "panel": 0,
                "group": "maximum",
                "x": [float(at)],
                "y": [float(maximum.result)],
            },
        ],
    }


def _products(seed: int, quick: bool) -> dict:
    fid = "products"
    claim = _gradients.gaussian_products()
    n, std = _gradients.D2L_N, sp.Integer(1)
    values = {_gradients.N_DOF: n, _gradients.SIGMA_W: std}
    log_mean = _result(claim, "mean log growth").subs(values)
    mean_square = _result(claim, "mean-square growth").subs(values)
    depth = _gradients.DEPTH
    square_expr = _result(claim, "mean-square growth")
    log_expr = _result(claim, "mean log growth")
    mu = sp.Symbol("mu")
    # squared-norm growth: exp(2 E log ||.||) typical, (n sigma^2)^d mean square
    typical = sp.lambdify(depth, sp.exp(2 * log_mean), "math")
    square = sp.lambdify(depth, mean_square, "math")
    depths = list(range(0, _gradients.D2L_FACTORS))
    precision = QUICK_PRECISION if quick else PRECISION
    scenario = {"kind": "product", "n": n, "std": float(std), "dtype": "float64"}
    log_points, m2_points = [], []
    for d in PRODUCT_DEPTHS:
        est = montecarlo.measure(
            {**scenario, "depth": d},
            {"quantity": "log_growth", "moment": "mean"},
            seed=montecarlo.seed_for(seed, "figure", fid, "log_growth", str(d)),
            precision=precision,
        )
        ci = est.confidence_interval(LEVEL)
        log_points.append(tuple(math.exp(2 * v) for v in (est.value, ci.low, ci.high)))
    for d in PRODUCT_M2_DEPTHS:
        est = montecarlo.measure(
            {**scenario, "depth": d},
            {"quantity": "m2_growth", "moment": "mean"},
            seed=montecarlo.seed_for(seed, "figure", fid, "m2_growth", str(d)),
            precision=max(precision, QUICK_PRECISION),
        )
        ci = est.confidence_interval(LEVEL)
        m2_points.append((est.value, ci.low, ci.high))
    return {
        "id": fid,
        "title": "Growth of products of random Gaussian matrices",
        "caption": (
            "Squared norm of the product of d i.i.d. "
            f"{n} x {n} matrices with standard normal entries (the D2L demo) applied to a fixed "
            f"vector, relative to the vector's. Mean square: ${sp.latex(square_expr)}$; "
            f"typical: ${sp.latex(sp.exp(2 * mu))}$ with "
            f"${sp.latex(sp.Eq(mu, log_expr))}$ the derived mean of the log growth. "
            "Points: simulated mean log growth and, at short depth, mean squared growth, "
            f"with {LEVEL:.0%} Student-t intervals over independent chains "
            "of matrices. The mean square is carried by rare large products; the typical "
            "product grows far slower."
        ),
        "xlabel": "depth d (number of factors)",
        "ylabel": "squared norm growth",
        "xscale": "linear",
        "yscale": "log",
        "panels": [""],
        "series": [
            _theory(
                f"mean square ${sp.latex(square_expr)} = {sp.latex(mean_square)}$",
                depths,
                [square(d) for d in depths],
                group="mean square (theory and simulation)",
            ),
            _theory(
                "typical exp(2 E log growth)",
                depths,
                [typical(d) for d in depths],
                group="typical (theory and simulation)",
            ),
            _simulation(
                "simulation: exp(2 mean log growth)",
                PRODUCT_DEPTHS,
                log_points,
                group="typical (theory and simulation)",
            ),
            _simulation(
                "simulation: mean squared growth",
                PRODUCT_M2_DEPTHS,
                m2_points,
                group="mean square (theory and simulation)",
            ),
        ],
    }


def _log_norm_depth(seed: int, quick: bool) -> dict:
    fid = "log-norm-depth"
    claim = _log_norm.relu_log_norm()
    n, depth = _log_norm.PROBE_WIDTHS[0], LOG_NORM_DEPTH
    he = claim.derivation("mean log-norm increment of a relu layer").result
    drift = float(sp.N(he.subs(_log_norm.N, n).doit(), 20))
    (m2_probe,) = [p for p in claim.probes if p.observable["moment"] == "m2"]
    factor = m2_probe.predicted  # the per-layer mean-square factor at He initialization
    replicates = 100 if quick else 600
    scenario = montecarlo.scenario(_log_norm._relu_mlp(n, depth), SIMULATION)
    st = montecarlo.simulate_mlp(
        scenario,
        replicates,
        LOG_NORM_BATCH,
        montecarlo.seed_for(seed, "figure", fid),
        backward=False,
        lognorm=True,
        preactivation=False,
        activations=SIMULATION,
    )
    m2, log_m2 = montecarlo.STATS.index("m2"), montecarlo.STATS.index("log_m2")
    layers = list(range(depth + 1))
    logs = st.forward[:, :, log_m2] - st.forward[:, :1, log_m2]
    deep = layers[1:]  # at the input every network has the same log ratio, 0
    typical = [tuple(math.exp(v) for v in t_interval(logs[:, t])) for t in deep]
    spread = [
        tuple(math.exp(v) for v in (np.median(logs[:, t]), *np.quantile(logs[:, t], (0.1, 0.9))))
        for t in deep
    ]
    mean_square = [t_interval(st.forward[:, t, m2]) for t in layers]
    return {
        "id": fid,
        "title": "He initialization: the mean square is kept, the typical signal is not",
        "caption": (
            f"Squared norm of the signal in bias-free relu networks of width {n} under He "
            "initialization, standard normal inputs, relative to the input's. Flat line: "
            rf"the mean square, ${sp.latex(m2_probe.expression)} = {factor:g}$ per layer. "
            r"Falling line: the "
            r"typical value $e^{t\,\mathbb{E}\Delta}$ with "
            rf"$\mathbb{{E}}\Delta = {drift:.4f}$ the derived mean log increment at "
            f"$n = {n}$ (claim relu-log-norm). Points: simulation over {replicates} "
            f"independent networks of {LOG_NORM_BATCH} inputs each: the mean square, and "
            "the exponential of the mean log with "
            f"{LEVEL:.0%} Student-t intervals over networks; and the median network with "
            "the range from 10% to 90% of networks, which widens with depth."
        ),
        "xlabel": "layer t",
        "ylabel": "squared norm relative to the input",
        "xscale": "linear",
        "yscale": "log",
        "panels": [""],
        "series": [
            _theory(
                "mean square (theory)", layers, [factor**t for t in layers], group="mean square"
            ),
            _simulation("mean square (simulation)", layers, mean_square, group="mean square"),
            _theory(
                "typical (theory)",
                layers,
                [math.exp(t * drift) for t in layers],
                group="typical: exp(mean log)",
            ),
            _simulation("typical (simulation)", deep, typical, group="typical: exp(mean log)"),
            _simulation(
                "median network, 10%-90% of networks",
                deep,
                spread,
                group="median network, 10%-90% of networks",
            ),
        ],
    }


def _tanh_variance(seed: int, quick: bool) -> dict:
    fid = "tanh-variance"
    tanh = _activations.ACTIVATIONS["tanh"]
    grid = np.geomspace(1e-3, 10.0, 61)
    exact = _square_moment(tanh)
    first = _gaussian.gaussian_square_series(tanh, x, q, 2).polynomial
    second = _gaussian.gaussian_square_series(tanh, x, q, 3).polynomial
    series = [_theory("E[tanh(x)²] (quadrature)", grid, [exact(v) for v in grid])]
    for expansion in (first, second):
        values = np.broadcast_to(sp.lambdify(q, expansion, "numpy")(grid), grid.shape)
        keep = values > 0
        series.append(
            _theory(f"${sp.latex(expansion, order='rev-lex')}$", grid[keep], values[keep])
        )
    bound = _activations.validity_bounds()["tanh"]["1%"]
    series.append(
        {
            "label": "within 1% of q up to here",
            "kind": "point",
            "panel": 0,
            "group": "bound",
            "x": [bound],
            "y": [exact(bound)],
        }
    )
    precision = QUICK_PRECISION if quick else PRECISION
    points = []
    for qv in TANH_QS:
        est = montecarlo.measure(
            {
                "kind": "scalar",
                "activation": "tanh",
                "q": qv,
                "function": "value",
                "dtype": "float64",
            },
            {"moment": "m2"},
            seed=montecarlo.seed_for(seed, "figure", fid, str(qv)),
            precision=precision,
            activations=SIMULATION,
        )
        ci = est.confidence_interval(LEVEL)
        points.append((est.value, ci.low, ci.high))
    series.append(_simulation("simulation", TANH_QS, points))
    return {
        "id": fid,
        "title": "The variance passed through tanh",
        "caption": (
            f"${sp.latex(sps.Expectation(tanh.subs(x, sps.Normal('x', 0, sp.sqrt(q))) ** 2))}$ "
            f"for x normal with variance ${sp.latex(q)}$: exact by quadrature, the "
            "small-variance expansions (Gaussian moments of the Taylor series of the square) "
            f"and simulated points with {LEVEL:.0%} Student-t intervals. The star marks the "
            "largest variance at which the output's second moment is within 1% of the input's."
        ),
        "xlabel": "q = Var[x]",
        "ylabel": "E[tanh(x)²]",
        "xscale": "log",
        "yscale": "log",
        "ylim": [5e-4, 2.0],
        "panels": [""],
        "series": series,
    }


# --------------------------------------------------------------------------------------
# beyond the lecture: two inputs through a deep network
# --------------------------------------------------------------------------------------

#: erf network of the width figure (chaotic: the two inputs decorrelate), its depth and
#: the starting correlation; widths and replicates (independent networks), full and quick.
WIDTHS_POINT, WIDTHS_DEPTH, WIDTHS_C0 = (3.0, 0.1), 16, 0.9
CORRELATION_WIDTHS = {32: (400, 60), 128: (120, 20), 512: (24, 6)}
#: erf networks of the phase figure at sigma_b^2 = 0.05: ordered, critical (from the
#: critical line), chaotic; two starting correlations; width, depth and replicates.
PHASES_SB2, PHASES_SW2, PHASES_C0 = 0.05, (0.7, 3.0), (0.9, 0.1)
PHASES_WIDTH, PHASES_DEPTH, PHASES_REPLICATES = 256, 30, (32, 8)
#: The difference of correlations below which the memory of the inputs counts as lost.
GAP_LEVEL = 0.05
#: Bias variances at which the critical lines of the phase diagram are computed.
DIAGRAM_SB2 = (0.0, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.6, 0.8, 1.0)


@cache
def _erf_kernel() -> Callable[[float, float, float], float]:
    """The arcsine kernel derived in claim mean-field-chi1, lambdified."""
    k = _mean_field_claims.mean_field_chi1().derivation("arcsine kernel").result
    m = _mean_field_claims
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


def _pair_correlations(scenario: dict, replicates: int, seed) -> list[tuple[float, float, float]]:
    """Simulated correlation of each layer ``1..depth``: value, jackknife s.e., dof."""
    y = montecarlo.simulate_pair(scenario, replicates, seed)
    g = lambda mu: mu[..., 2] / np.sqrt(mu[..., 0] * mu[..., 1])  # noqa: E731
    return [(*montecarlo.jackknife(y[:, t, :], g), replicates - 1) for t in range(1, y.shape[1])]


def _interval(value: float, se: float, dof: int) -> tuple[float, float, float]:
    half = float(stats.t.ppf(0.5 + LEVEL / 2, dof)) * se
    return value, value - half, value + half


def _pair_scenario(width: int, depth: int, sw: float, sb: float, c0: float) -> dict:
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


def _correlation_widths(seed: int, quick: bool) -> dict:
    fid = "correlation-widths"
    sw, sb = WIDTHS_POINT
    layers = list(range(1, WIDTHS_DEPTH + 1))
    theory = erf_correlations(sw, sb, WIDTHS_C0, WIDTHS_DEPTH)
    series = [_theory("mean-field c-map (arcsine kernel)", layers, theory)]
    deviations = []
    for n, (full, fast) in CORRELATION_WIDTHS.items():
        reps = fast if quick else full
        sim = _pair_correlations(
            _pair_scenario(n, WIDTHS_DEPTH, sw, sb, WIDTHS_C0),
            reps,
            montecarlo.seed_for(seed, "figure", fid, str(n)),
        )
        series.append(_simulation(f"width {n}", layers, [_interval(*s) for s in sim]))
        last, (value, se, dof) = theory[-1], sim[-1]
        half = float(stats.t.ppf(0.5 + LEVEL / 2, dof)) * se
        deviations.append(f"{value - last:+.4f} ± {half:.4f} at width {n}")
    return {
        "id": fid,
        "title": "Correlation of two inputs through depth: finite width against the c-map",
        "caption": (
            f"Correlation of the pre-activations of two inputs (starting correlation "
            f"{WIDTHS_C0:g}, squared norm per entry 1) through erf networks with "
            f"$\\sigma_w^2 = {sw:g}$, $\\sigma_b^2 = {sb:g}$ (chaotic phase: the inputs "
            "decorrelate). Line: the mean-field c-map with the arcsine kernel derived in "
            "claim mean-field-chi1, exact at layers 1 and 2. Points: simulation at three widths, "
            f"the ratio of mean inner product to mean squared norms over independent networks "
            f"(8 input pairs each), with {LEVEL:.0%} jackknife t intervals over networks. "
            f"Finite-width deviation from the map at layer {WIDTHS_DEPTH} (simulation minus map, "
            f"{LEVEL:.0%} half-width): " + "; ".join(deviations) + "."
        ),
        "xlabel": "layer t",
        "ylabel": "correlation of the two inputs",
        "xscale": "linear",
        "yscale": "linear",
        "panels": [""],
        "series": series,
    }


@cache
def _critical_erf(sigma_b2: float) -> float:
    (point,) = _meanfield.critical_line(sp.erf(x), [sigma_b2])
    return float(point.sigma_w2)


def _correlation_phases(seed: int, quick: bool) -> dict:
    fid = "correlation-phases"
    crit = _critical_erf(PHASES_SB2)
    phases = (("ordered", PHASES_SW2[0]), ("critical", crit), ("chaotic", PHASES_SW2[1]))
    layers = list(range(1, PHASES_DEPTH + 1))
    reps = PHASES_REPLICATES[1 if quick else 0]
    series, reached = [], []
    for name, sw in phases:
        a, b = (erf_correlations(sw, PHASES_SB2, c, PHASES_DEPTH) for c in PHASES_C0)
        gap = [u - w for u, w in zip(a, b, strict=True)]
        label = f"{name}, σ_w² = {sw:.4g}"
        series.append(_theory(f"{label} (c-map)", layers, gap, group=label))
        sims = [
            _pair_correlations(
                _pair_scenario(PHASES_WIDTH, PHASES_DEPTH, sw, PHASES_SB2, c),
                reps,
                montecarlo.seed_for(seed, "figure", fid, name, str(c)),
            )
            for c in PHASES_C0
        ]
        points = [
            (t, _interval(u[0] - w[0], math.hypot(u[1], w[1]), min(u[2], w[2])))
            for t, u, w in zip(layers, *sims, strict=True)
        ]
        shown = [(t, p) for t, p in points if p[0] > 0]  # a log axis shows positive values
        series.append(
            _simulation(
                f"{label} (simulation)",
                [t for t, _ in shown],
                [p for _, p in shown],
                group=label,
            )
        )
        below = next((t for t, g in zip(layers, gap, strict=True) if abs(g) < GAP_LEVEL), None)
        reached.append(
            f"{name}: layer {below}" if below else f"{name}: not within {PHASES_DEPTH} layers"
        )
    return {
        "id": fid,
        "title": "The critical point keeps the memory of the input correlation",
        "caption": (
            "Difference between the correlations of two pairs of inputs that start at "
            f"{PHASES_C0[0]:g} and {PHASES_C0[1]:g}, through erf networks with "
            f"$\\sigma_b^2 = {PHASES_SB2:g}$ on both sides of the critical line and on it "
            f"($\\sigma_w^2 = {crit:.6g}$, where $\\chi_1 = 1$, by quadrature). Lines: the "
            "mean-field c-map (arcsine kernel); points: simulation at width "
            f"{PHASES_WIDTH}, {reps} independent networks per pair and phase, {LEVEL:.0%} "
            "t intervals (an interval reaching 0 is drawn to the bottom; an estimate that is "
            "not positive, within the noise of the deepest layers, is not drawn). The "
            f"difference falls below {GAP_LEVEL:g} in the mean-field map at "
            + "; ".join(reached)
            + ": off the critical line it decays exponentially (depth scale $\\xi_c$), on "
            "it only like a power of the depth."
        ),
        "xlabel": "layer t",
        "ylabel": "difference of correlations",
        "xscale": "linear",
        "yscale": "log",
        "ylim": [1e-4, 1.5],
        "panels": [""],
        "series": series,
    }


def _phase_diagram() -> dict:
    series = []
    for name, f in ((e.name, e.expression) for e in _activations.family("mean-field")):
        line = _meanfield.critical_line(f, list(DIAGRAM_SB2))
        keep = [p for p in line if p.sigma_w2.decided]
        series.append(
            _theory(
                f"{name}: χ1 = 1 (quadrature)",
                [float(p.sigma_w2) for p in keep],
                [p.sigma_b2 for p in keep],
            )
        )
    m = _mean_field_claims
    chi1 = m.mean_field_chi1().derivation("relu chi1").result
    (relu_line,) = sp.solve(sp.Eq(chi1, 1), m.sw2)  # chi1 does not depend on sigma_b^2
    coefficient = sp.sstr(sp.simplify(chi1 / m.sw2))
    series.append(_theory(f"relu: χ1 = {coefficient} σ_w² = 1", [float(relu_line)] * 2, [0.0, 1.0]))
    marks = [
        ("He initialization (relu)", [(2.0, 0.0)]),
        (
            "erf networks simulated",
            [
                *((float(p[2]), float(p[3])) for p in m.PAIR_PROBES),
                WIDTHS_POINT,
                *((sw, PHASES_SB2) for sw in PHASES_SW2),
            ],
        ),
        ("tanh networks simulated", [(sw, m.TANH_SB2) for sw in m.TANH_SW2]),
    ]
    for label, pts in marks:
        series.append(
            {
                "label": label,
                "kind": "point",
                "panel": 0,
                "group": label,
                "x": [float(p[0]) for p in pts],
                "y": [float(p[1]) for p in pts],
            }
        )
    return {
        "id": "phase-diagram",
        "title": "Phase diagram: the critical line χ1 = 1",
        "caption": (
            "The critical line $\\chi_1 = \\sigma_w^2\\,\\mathbb{E}[\\phi'(\\sqrt{q^*}z)^2] = 1$ "
            "in the plane of the weight variance (times fan-in) and the bias variance: "
            "ordered phase to its left, chaotic to its right. erf and tanh by quadrature at "
            f"{len(DIAGRAM_SB2)} bias variances (derivations._meanfield); relu's line is "
            "$\\sigma_w^2 = 2$ at every bias variance (claim mean-field-chi1). Stars: the "
            "networks simulated in this part."
        ),
        "xlabel": "σ_w²",
        "ylabel": "σ_b²",
        "xscale": "linear",
        "yscale": "linear",
        "panels": [""],
        "series": series,
    }


def figure_data(seed: int, *, quick: bool = False) -> list[dict]:
    """Every figure of the report as plain, JSON-serializable data.

    Parameters
    ----------
    seed : int
        Root seed; each figure's curves draw from
        ``montecarlo.seed_for(seed, "figure", <figure id>, <curve>)``.
    quick : bool
        Fewer replicates and a looser precision target (draft).

    Returns
    -------
    list of dict
        See the module docstring for the keys.
    """
    return [
        _variance_depth(seed, quick),
        _taylor(),
        _sigmoid_derivative(),
        _products(seed, quick),
        _tanh_variance(seed, quick),
        _log_norm_depth(seed, quick),
        _phase_diagram(),
        _correlation_widths(seed, quick),
        _correlation_phases(seed, quick),
    ]


# --------------------------------------------------------------------------------------
# rendering
# --------------------------------------------------------------------------------------

#: Styles cycled over the groups of a panel: readable in black and white.
_LINESTYLES = ("-", "--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)), (0, (8, 2)))
_MARKERS = ("o", "s", "^", "D", "v", "P")
_COLORS = ("#000000", "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00")


def _draw_panel(ax, fig: dict, series: list[dict], groups: list[str]) -> None:
    from matplotlib.legend_handler import HandlerTuple

    handles: dict[str, list] = {}
    log_y = fig["yscale"] == "log"
    floor = fig.get("ylim", [None])[0]
    for s in series:
        k = groups.index(s["group"]) % len(_MARKERS)
        style = {"color": _COLORS[k]}
        xs = np.array(s["x"], dtype=float)
        ys = np.array([np.nan if v is None else v for v in s["y"]], dtype=float)
        if s["kind"] == "theory":
            (h,) = ax.plot(xs, ys, linestyle=_LINESTYLES[k], linewidth=1.4, **style)
        elif s["kind"] == "point":
            (h,) = ax.plot(xs, ys, linestyle="none", marker="*", markersize=11, **style)
        else:
            low = np.array([np.nan if v is None else v for v in s["low"]], dtype=float)
            high = np.array([np.nan if v is None else v for v in s["high"]], dtype=float)
            if log_y:  # an interval reaching 0 or below runs off the bottom of a log axis
                bottom = floor if floor is not None else np.nanmin(ys[ys > 0]) / 10
                low = np.where(low > 0, low, bottom)
            # A skew-corrected interval from few replicates can lie wholly on one side of
            # its estimate; its bar is then drawn from the estimate to the far end (a superset).
            h = ax.errorbar(
                xs,
                ys,
                yerr=np.clip(np.vstack([ys - low, high - ys]), 0, None),
                linestyle="none",
                marker=_MARKERS[k],
                markersize=4,
                markerfacecolor="white",
                capsize=2,
                elinewidth=0.8,
                **style,
            )
        handles.setdefault(s["group"], []).append((h, s["label"]))
    if len(handles) != len(series):  # pair each group's line with its points
        hs = [tuple(h for h, _ in v) for v in handles.values()]
        ax.legend(
            hs,
            list(handles),
            handler_map={tuple: HandlerTuple(ndivide=None)},
            fontsize=7,
            loc="best",
        )
    else:
        ax.legend(
            [v[0][0] for v in handles.values()],
            [v[0][1] for v in handles.values()],
            fontsize=7,
            loc="best",
        )


#: Fonts of the labels by language (English: matplotlib's default, so the English
#: figures keep their bytes). Chinese labels are set in a CJK font, with DejaVu Sans as
#: fallback; it comes first because the text around a formula in a label
#: (``3 阶: $x$``) is set in the first font only.
FONTS = {"zh": ["Noto Sans CJK SC", "DejaVu Sans"]}


def _load_fonts(families: list[str]) -> None:
    """Register system fonts of ``families`` that matplotlib's font cache lacks (a cache
    written before the fonts were installed)."""
    from matplotlib import font_manager

    known = {f.name for f in font_manager.fontManager.ttflist}
    for family in set(families) - known:
        stem = family.replace(" ", "").removesuffix("SC").removesuffix("TC")
        for path in sorted(font_manager.findSystemFonts()):
            if Path(path).name.startswith(stem):
                font_manager.fontManager.addfont(path)


def render_figure(fig: dict, path: Path, lang: str = "en") -> Path:
    """Draw one figure's data into the PNG file ``path`` (deterministic bytes); its
    labels in ``lang`` are set in that language's :data:`FONTS`."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    panels = fig.get("panels") or [""]
    columns = len(panels) if len(panels) <= 2 else 2
    rows = math.ceil(len(panels) / columns)
    size = (FIGSIZE[0], FIGSIZE[1] * (1 if rows == 1 else 0.75 * rows))
    fonts = {"font.family": FONTS[lang]} if lang in FONTS else {}
    if fonts:
        _load_fonts(FONTS[lang])
    with matplotlib.rc_context({**matplotlib.rcParamsDefault, **fonts}):
        figure = Figure(figsize=size, dpi=DPI, layout="constrained")
        FigureCanvasAgg(figure)
        axes = figure.subplots(rows, columns, squeeze=False, sharex=True, sharey=True).ravel()
        for k, ax in enumerate(axes):
            mine = [s for s in fig["series"] if s.get("panel", 0) == k]
            groups = list(dict.fromkeys(s["group"] for s in fig["series"]))
            ax.set_xscale(fig["xscale"])
            ax.set_yscale(fig["yscale"])
            if "ylim" in fig:
                ax.set_ylim(*fig["ylim"])
            if k < len(panels) and panels[k]:
                ax.set_title(panels[k], fontsize=9)
            ax.grid(True, which="major", linewidth=0.4, alpha=0.5)
            ax.tick_params(labelsize=8)
            if mine:
                _draw_panel(ax, fig, mine, groups)
                if fig["xscale"] == "linear" and all(
                    float(v).is_integer() for s in mine for v in s["x"]
                ):
                    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            if k >= len(panels):  # a grid cell with no panel: the one above gets the x axis
                ax.set_visible(False)
                axes[k - columns].tick_params(labelbottom=True)
                axes[k - columns].set_xlabel(fig["xlabel"], fontsize=9)
                continue
            if k // columns == rows - 1:
                ax.set_xlabel(fig["xlabel"], fontsize=9)
            if k % columns == 0:
                ax.set_ylabel(fig["ylabel"], fontsize=9)
        figure.suptitle(fig["title"], fontsize=10)
        figure.savefig(path, format="png", dpi=DPI, metadata={"Software": None})
    return path


def render_figures(data: list[dict], folder: Path, lang: str = "en") -> list[Path]:
    """Render every figure of :func:`figure_data` into ``folder/<id>.png``.

    Agg renderer, fixed size and resolution, matplotlib's default style and no
    ``Software`` metadata, so the same data gives the same bytes.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return [render_figure(fig, folder / f"{fig['id']}.png", lang) for fig in data]
