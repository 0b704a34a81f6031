"""The activation table: its NumPy side against its SymPy side, entry by entry.

The simulation's functions are written independently of the SymPy expressions; these
tests hold the two equal on a grid (away from kinks), the NumPy derivative equal to
finite differences of the NumPy function and to SymPy's derivative, and the declared
kinks, gains and families equal to what SymPy derives.
"""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
import sympy as sp

import montecarlo as mc
from derivations import ACTIVATION_TABLE, activation, family, simulation_activations
from derivations._symbols import x
from derivations._user import torch_gain

#: One point and the value there, by hand from each definition: adding an entry means
#: adding its line here.
SPOT = {
    "linear": (2.5, 2.5),
    "erf": (0.0, 0.0),
    "sigmoid": (0.0, 0.5),
    "tanh": (0.0, 0.0),
    "relu": (-1.5, 0.0),
    "scaled_sigmoid": (0.0, 0.0),
    "softsign": (1.0, 0.5),
}
GRID = np.linspace(-6.0, 6.0, 1201)
#: Step of the central differences and their tolerance (h^2 |f'''| plus rounding).
H, FD_TOL = 1e-5, 1e-8
ENTRIES = [pytest.param(e, id=e.name) for e in ACTIVATION_TABLE]


def _away(e, grid: np.ndarray, margin: float) -> np.ndarray:
    """The grid points farther than ``margin`` from every kink of ``e``."""
    keep = np.ones_like(grid, dtype=bool)
    for k in e.kinks:
        keep &= np.abs(grid - float(k)) > margin
    return grid[keep]


def _sympy(expr: sp.Expr):
    """The expression evaluated by mpmath at 30 digits, point by point."""
    f = sp.lambdify(
        x,
        expr,
        modules=[
            "mpmath",
            {"Heaviside": lambda v, h0=0.5: mpmath.sign(v) / 2 + 0.5, "DiracDelta": lambda v: 0},
        ],
    )

    def at(v: np.ndarray) -> np.ndarray:
        with mpmath.workdps(30):
            return np.array([float(f(mpmath.mpf(float(t)))) for t in np.ravel(v)]).reshape(
                np.shape(v)
            )

    return at


def test_every_entry_has_a_spot_value():
    assert [e.name for e in ACTIVATION_TABLE] == list(SPOT)
    for name, (at, value) in SPOT.items():
        e = activation(name)
        assert e.function(np.array([at]))[0] == pytest.approx(value, abs=1e-15)
        assert float(e.expression.subs(x, at)) == pytest.approx(value, abs=1e-15)


@pytest.mark.parametrize("e", ENTRIES)
def test_numpy_function_equals_sympy_expression(e):
    grid = _away(e, GRID, 1e-3)
    np.testing.assert_allclose(e.function(grid), _sympy(e.expression)(grid), rtol=1e-12, atol=1e-15)


def _smooth(e, margin: float) -> np.ndarray:
    """The grid away from kinks and from the points where SymPy's f'' jumps (softsign's
    0): there a central difference is only first-order accurate."""
    grid = _away(e, GRID, margin)
    second = _sympy(sp.diff(e.expression, x, 2))
    jumps = grid[np.abs(second(grid + 1e-9) - second(grid - 1e-9)) > 1e-6]
    for t in jumps:
        grid = grid[np.abs(grid - t) > margin]
    return grid


@pytest.mark.parametrize("e", ENTRIES)
def test_numpy_derivative_equals_finite_differences_and_sympy(e):
    grid = _smooth(e, 10 * H)
    central = (e.function(grid + H) - e.function(grid - H)) / (2 * H)
    np.testing.assert_allclose(e.derivative(grid), central, rtol=0, atol=FD_TOL)
    grid = _away(e, GRID, 1e-3)
    symbolic = _sympy(sp.diff(e.expression, x))(grid)
    np.testing.assert_allclose(e.derivative(grid), symbolic, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("e", ENTRIES)
def test_kinks_are_where_the_sympy_derivative_jumps(e):
    d = sp.diff(e.expression, x)
    for k in e.kinks:
        assert sp.limit(d, x, k, "+") != sp.limit(d, x, k, "-"), f"{e.name}: no jump at {k}"
    # nowhere else on the grid: the derivative's one-sided values agree to the step
    grid = _away(e, GRID, 1e-3)
    slope = _sympy(d)
    gap = np.abs(slope(grid + 1e-9) - slope(grid - 1e-9))
    assert gap.max() < 1e-6, f"{e.name}: f' jumps near {grid[gap.argmax()]}"


@pytest.mark.parametrize("e", [p for p in ENTRIES if p.values[0].from_output is not None])
def test_derivative_from_the_output_is_the_same_bits(e):
    for dtype in (np.float16, np.float32, np.float64):
        z = GRID.astype(dtype)
        np.testing.assert_array_equal(e.from_output(e.function(z)) * 1.0, e.derivative(z) * 1.0)


@pytest.mark.parametrize("e", ENTRIES)
def test_torch_gain_is_the_one_torch_names(e):
    found = torch_gain(e.expression)
    if e.torch_gain is None:
        assert found is None
    else:
        assert found.name == e.torch_gain and sp.simplify(found.gain - e.gain) == 0


def test_families_hold_what_they_declare():
    for e in family("taylor"):  # analytic at 0, f(0) = 0, f'(0) = 1
        series = sp.series(e.expression, x, 0, 3).removeO()
        assert series.coeff(x, 0) == 0 and series.coeff(x, 1) == 1, e.name
        assert not e.kinks, e.name
    for e in family("homogeneous"):  # f(cx) = c f(x), c > 0
        f = _sympy(e.expression)
        np.testing.assert_allclose(f(3 * GRID), 3 * f(GRID), rtol=1e-14, atol=0, err_msg=e.name)
    assert "softsign" not in {e.name for e in family("taylor")}  # not analytic at 0


def test_the_engines_one_builtin_is_the_tables_linear():
    """``linear``, the one name the engine resolves without callables, is the table's
    identity bit for bit; every other name needs the table's functions."""
    import montecarlo._engine as engine

    f, fprime = engine._activation("linear", None)
    g, gprime = simulation_activations()["linear"][:2]
    np.testing.assert_array_equal(f(GRID), g(GRID))
    np.testing.assert_array_equal(fprime(GRID), gprime(GRID))
    for e in ACTIVATION_TABLE:
        if e.name != "linear":
            with pytest.raises(mc.InvalidScenario, match="activation"):
                engine._activation(e.name, None)


def test_an_activation_from_the_table_runs_in_the_engine():
    sc = {
        "kind": "scalar",
        "activation": "softsign",
        "q": 1.0,
        "function": "derivative",
        "dtype": "float64",
    }
    with pytest.raises(mc.InvalidScenario, match="activation"):
        mc.scenario(sc)
    est = mc.measure(
        sc,
        {"moment": "mean"},
        seed=mc.seed_for(1, "softsign"),
        activations=simulation_activations(),
        precision=0.05,
    )
    assert 0 < est.value < 1
