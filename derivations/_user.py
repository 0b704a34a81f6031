r"""Activations, initializations and claims of one's own: parsing and symbolic analysis.

Three questions a reader of the lecture asks about a network the lecture does not
cover, each answered by a pure function returning a frozen dataclass:

* :func:`analyze_activation` -- for :math:`f` given as text: its Taylor expansion at
  0, :math:`\mathbb{E}[f(x)]`, :math:`\mathbb{E}[f(x)^2]`, :math:`\mathbb{E}[f'(x)^2]`
  for :math:`x \sim N(0, q)` (exact where SymPy integrates, otherwise quadrature with
  its error bound, via :mod:`derivations._gaussian`), the gains that preserve the
  forward and backward second moments, the fixed points of the variance map and
  PyTorch's ``calculate_gain`` where it has an entry;
* :func:`weight_init` / :func:`preset` -- the exact variance of a weight law given in
  its native parameter (std or bound) or as a variance, from the law itself;
* :func:`propagate` -- the second moments of every layer of a network, exact where a
  finite-width identity holds and by the infinite-width recursion otherwise (marked).

Text is never evaluated as Python. :func:`parse_expression` first tokenizes it with
:mod:`tokenize` and rejects every token that is not a decimal number, an operator, a
parenthesis, a comma or a whitelisted name; only then does
:func:`sympy.parsing.sympy_parser.parse_expr` see it, with a ``global_dict`` and
``local_dict`` holding nothing but the whitelist (and an empty ``__builtins__``), and a
first unevaluated pass that refuses exponents so large that evaluating them would not
finish.

Notes
-----
The variance map and the gains, for :math:`z \sim N(0, 1)` and a layer
:math:`z^t = W^t h^{t-1}` with i.i.d. zero-mean weights of variance :math:`\gamma`:

.. math::

    \mathbb{E}[(z^t_i)^2] = n_{t-1}\gamma\,\mathbb{E}[(h^{t-1}_j)^2], \qquad
    q \mapsto F(q) = n\gamma\,\mathbb{E}_z[f(\sqrt{q}\,z)^2], \qquad
    n\gamma_{\mathrm{fwd}} = \frac{1}{\mathbb{E}[f(z)^2]}, \quad
    n\gamma_{\mathrm{bwd}} = \frac{1}{\mathbb{E}[f'(z)^2]} .

The first identity holds at every width for any law of the weights. Which others do:

* a positively homogeneous :math:`f` (:math:`f(x) = a x` for :math:`x > 0`,
  :math:`b x` for :math:`x < 0`: linear, relu, leaky relu) and a symmetric weight law:
  :math:`z^t_i` is symmetric given the layer below, so
  :math:`\mathbb{E}[f(z)^2] = \tfrac{a^2 + b^2}{2}\mathbb{E}[z^2]` exactly;
* the first layer with Gaussian input :math:`x \sim N(0, I)` and normal weights:
  given :math:`w_i`, :math:`z_i \sim N(0, S)` with :math:`S = \|w_i\|^2 = \gamma
  \chi^2_{n_0}`, so :math:`\mathbb{E}[g(z_i)] = \mathbb{E}_S[G(S)]` with
  :math:`G(q) = \mathbb{E}_\xi[g(\sqrt{q}\,\xi)]`, a one-dimensional integral against
  the :math:`\chi^2` density;
* an odd :math:`f` and a symmetric law: every mean is 0.

Elsewhere the infinite-width recursion (mean field) treats :math:`z^t` as
:math:`N(0, \mathbb{E}[(z^t)^2])`; at width :math:`n` it is off by :math:`O(1/n)` per
layer (Jensen on the random :math:`S`), and the result says so.

References
----------
.. [1] B. Poole, S. Lahiri, M. Raghu, J. Sohl-Dickstein and S. Ganguli (2016),
   "Exponential expressivity in deep neural networks through transient chaos",
   NeurIPS: the variance map and its fixed point :math:`q^*`.
.. [2] S. Schoenholz, J. Gilmer, S. Ganguli and J. Sohl-Dickstein (2017), "Deep
   Information Propagation", ICLR: :math:`\chi_1 = \sigma_w^2\,\mathbb{E}_z[\phi'(
   \sqrt{q^*}z)^2]`, the backward factor at the fixed point.
.. [3] K. He, X. Zhang, S. Ren and J. Sun (2015), "Delving Deep into Rectifiers",
   ICCV, Sec. 2.2.
.. [4] PyTorch, ``torch/nn/init.py``: ``calculate_gain`` (linear/identity 1, sigmoid 1,
   tanh 5/3, relu :math:`\sqrt 2`, leaky_relu :math:`\sqrt{2/(1 + \mathrm{slope}^2)}`,
   selu 3/4), the std ``gain / sqrt(fan)``, ``kaiming_uniform_`` with ``bound =
   sqrt(3) * std``; ``nn.Linear`` initializes with ``kaiming_uniform_(a=sqrt(5))``
   (maintainers' explanation in pytorch issue #57109).
.. [5] JAX, ``jax/_src/nn/initializers.py``, ``variance_scaling``: ``uniform`` draws
   :math:`U[-\sqrt{3v}, \sqrt{3v}]`, ``truncated_normal`` divides the std by the std
   of :math:`N(0, 1)` truncated to :math:`(-2, 2)`; Flax ``Dense`` defaults to
   ``lecun_normal`` (fan_in, truncated normal), Keras ``Dense`` to
   ``glorot_uniform`` (fan_avg, uniform).
.. [6] G. Klambauer, T. Unterthiner, A. Mayr and S. Hochreiter (2017),
   "Self-Normalizing Neural Networks", NeurIPS: the SELU constants
   :math:`\alpha \approx 1.6733`, :math:`\lambda \approx 1.0507` (as in PyTorch's
   ``torch.nn.SELU``).
"""

from __future__ import annotations

import io
import itertools
import math
import re
import tokenize
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
import sympy as sp
from scipy import integrate, optimize
from scipy import stats as sstats
from sympy import stats
from sympy.parsing.sympy_parser import auto_number, convert_xor, parse_expr

from ._gaussian import gaussian_moment, gaussian_square_series, moment_function
from ._xavier import tau, truncated_variance


class InputError(ValueError):
    """Text or numbers given by the user that initproof refuses.

    The message names the argument, shows its value and says what is allowed; fix
    the command line (or the arguments of the Python function) accordingly.
    """


# --------------------------------------------------------------------------- symbols

x = sp.Symbol("x", real=True)
n_in = sp.Symbol("n_in", integer=True, positive=True)
n_out = sp.Symbol("n_out", integer=True, positive=True)
q = sp.Symbol("q", positive=True)
#: The gain :math:`n\gamma` (fan times weight variance).
n_gamma = sp.Symbol("n*gamma", positive=True)
_u = sp.Dummy("u", real=True)


class sigmoid(sp.Function):
    """The logistic sigmoid; evaluates at once to :math:`1/(1 + e^{-u})`."""

    nargs = 1

    @classmethod
    def eval(cls, arg: sp.Expr) -> sp.Expr:
        return 1 / (1 + sp.exp(-arg))


class relu(sp.Function):
    """The rectifier; evaluates at once to ``Max(0, u)``."""

    nargs = 1

    @classmethod
    def eval(cls, arg: sp.Expr) -> sp.Expr:
        return sp.Max(0, arg)


class softplus(sp.Function):
    """:math:`\\log(1 + e^u)`; evaluates at once."""

    nargs = 1

    @classmethod
    def eval(cls, arg: sp.Expr) -> sp.Expr:
        return sp.log(1 + sp.exp(arg))


#: Functions an expression may call, by the name it uses.
FUNCTIONS: dict[str, object] = {
    "exp": sp.exp,
    "log": sp.log,
    "sqrt": sp.sqrt,
    "tanh": sp.tanh,
    "sinh": sp.sinh,
    "cosh": sp.cosh,
    "sin": sp.sin,
    "cos": sp.cos,
    "atan": sp.atan,
    "erf": sp.erf,
    "erfc": sp.erfc,
    "sigmoid": sigmoid,
    "relu": relu,
    "softplus": softplus,
    "Max": sp.Max,
    "Min": sp.Min,
    "Abs": sp.Abs,
    "abs": sp.Abs,
    "sign": sp.sign,
    "Heaviside": sp.Heaviside,
}
#: Named constants.
CONSTANTS: dict[str, sp.Expr] = {"pi": sp.pi, "E": sp.E}
#: Operators and punctuation a token may be.
OPERATORS = frozenset({"+", "-", "*", "/", "**", "^", "(", ")", ","})
#: Longest expression accepted, in characters.
MAX_LENGTH = 300
#: Largest magnitude of a numeric exponent (``x**64`` is fine, ``9**9**9`` is not).
MAX_EXPONENT = 64
_DECIMAL = re.compile(r"^(\d+\.?\d*|\.\d+)([eE][+-]?\d{1,3})?$")
#: SymPy constructors the parser itself emits (the user cannot name them: not whitelisted).
_PARSER_GLOBALS = {
    "Integer": sp.Integer,
    "Float": sp.Float,
    "Rational": sp.Rational,
    "Add": sp.Add,
    "Mul": sp.Mul,
    "Pow": sp.Pow,
}

#: Symbols of each kind of expression.
ACTIVATION_SYMBOLS: dict[str, sp.Symbol] = {"x": x}
INIT_SYMBOLS: dict[str, sp.Symbol] = {"n_in": n_in, "n_out": n_out}
NUMBER_SYMBOLS: dict[str, sp.Symbol] = {}


def _allowed(symbols: Mapping[str, sp.Symbol]) -> str:
    names = [*symbols, *CONSTANTS, *FUNCTIONS]
    return (
        f"numbers, the operators + - * / ** ^ ( ) and ',', and the names {', '.join(names)}"
        if names
        else "numbers and operators"
    )


def _tokens(text: str, argument: str, symbols: Mapping[str, sp.Symbol]) -> None:
    """Reject every token that is not a number, operator or whitelisted name."""
    allowed = {*symbols, *CONSTANTS, *FUNCTIONS}
    try:
        toks = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError) as exc:
        raise InputError(
            f"`{argument}` is not an expression ({exc.args[0]}); got {argument}={text!r}."
        ) from None
    for tok in toks:
        kind, s = tok.type, tok.string
        if kind in (tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER):
            continue
        if kind == tokenize.NUMBER and _DECIMAL.match(s):
            continue
        if kind == tokenize.NAME and s in allowed:
            continue
        if kind == tokenize.OP and s in OPERATORS:
            continue
        what = "name" if kind == tokenize.NAME else "number" if kind == tokenize.NUMBER else "token"
        raise InputError(
            f"`{argument}` may contain only {_allowed(symbols)}; got the {what} {s!r} in "
            f"{argument}={text!r}. Nothing was evaluated."
        )


def _check_exponents(expr: sp.Basic, argument: str, text: str) -> None:
    """Refuse numeric exponents beyond :data:`MAX_EXPONENT` (``9**9**9``), innermost first."""
    for node in sp.postorder_traversal(expr):
        if isinstance(node, sp.Pow) and not node.exp.free_symbols:
            value = sp.N(node.exp, 15)
            if not (value.is_number and value.is_finite and abs(value) <= MAX_EXPONENT):
                raise InputError(
                    f"`{argument}` raises to the power {node.exp}; numeric exponents must be "
                    f"at most {MAX_EXPONENT} in size; got {argument}={text!r}."
                )


def parse_expression(
    text: object, *, argument: str, symbols: Mapping[str, sp.Symbol] = ACTIVATION_SYMBOLS
) -> sp.Expr:
    """Parse ``text`` into a SymPy expression over ``symbols`` and the whitelist.

    Parameters
    ----------
    text : str
        The expression, in SymPy syntax (``x*sigmoid(x)``, ``Max(0, x)``, ``2/n_in``).
    argument : str
        The argument's name, for error messages (``"EXPR"``, ``"--var"``).
    symbols : mapping
        The free symbols allowed, by name.

    Raises
    ------
    InputError
        If ``text`` holds anything outside the whitelist (attribute access, dunder
        names, strings, brackets, ``lambda``, unknown names), is not an expression,
        has a numeric exponent above :data:`MAX_EXPONENT`, or is not finite.

    Examples
    --------
    >>> parse_expression("x*sigmoid(x)", argument="EXPR")
    x/(1 + exp(-x))
    >>> parse_expression("__import__('os')", argument="EXPR")
    Traceback (most recent call last):
    ...
    derivations._user.InputError: `EXPR` may contain only ...
    """
    if not isinstance(text, str):
        raise InputError(f"`{argument}` must be a string; got {argument}={text!r}.")
    if not text.strip():
        raise InputError(f"`{argument}` is empty; give an expression such as 'tanh(x)'.")
    if len(text) > MAX_LENGTH:
        raise InputError(
            f"`{argument}` is {len(text)} characters long; at most {MAX_LENGTH} are accepted."
        )
    if "\n" in text or "\r" in text:
        raise InputError(f"`{argument}` must be one line; got {argument}={text!r}.")
    _tokens(text, argument, symbols)
    local = {**symbols, **CONSTANTS, **FUNCTIONS}
    transformations = (auto_number, convert_xor)
    try:
        raw = parse_expr(
            text,
            local_dict=dict(local),
            global_dict={"__builtins__": {}, **_PARSER_GLOBALS},
            transformations=transformations,
            evaluate=False,
        )
        if isinstance(raw, sp.Basic):
            _check_exponents(raw, argument, text)
        expr = parse_expr(
            text,
            local_dict=dict(local),
            global_dict={"__builtins__": {}, **_PARSER_GLOBALS},
            transformations=transformations,
        )
    except InputError:
        raise
    except Exception as exc:  # any failure of whitelisted text is a malformed expression
        raise InputError(
            f"`{argument}` is not a valid expression ({type(exc).__name__}: {exc}); got "
            f"{argument}={text!r}. Allowed: {_allowed(symbols)}."
        ) from None
    if not isinstance(expr, sp.Expr):
        raise InputError(
            f"`{argument}` must be a single expression; got {argument}={text!r} "
            f"(parsed as {type(expr).__name__})."
        )
    if expr.has(sp.nan, sp.zoo, sp.oo, -sp.oo):
        raise InputError(f"`{argument}` is not finite: {argument}={text!r} gives {expr}.")
    extra = expr.free_symbols - set(symbols.values())
    if extra:  # pragma: no cover - the tokens already exclude unknown names
        raise InputError(f"`{argument}` uses unknown symbols {sorted(map(str, extra))}.")
    return expr


def parse_number(text: object, *, argument: str, positive: bool = True) -> sp.Expr:
    """Parse a constant expression (``"25/9"``, ``"2**-10"``, ``"sqrt(2)"``); finite, > 0."""
    expr = parse_expression(text, argument=argument, symbols=NUMBER_SYMBOLS)
    value = complex(sp.N(expr, 30))
    if value.imag != 0 or not math.isfinite(value.real):
        raise InputError(f"`{argument}` must be a finite real number; got {argument}={text!r}.")
    if positive and not value.real > 0:
        raise InputError(f"`{argument}` must be > 0; got {argument}={text!r} = {value.real:g}.")
    return expr


# --------------------------------------------------------------------------- widths

#: Widest layer accepted: one weight matrix holds width^2 doubles per replicate.
MAX_WIDTH = 4096
#: Deepest network accepted by these commands (each layer costs width^2 per replicate).
MAX_LAYERS = 1000
#: Cap on the total weights of one sampled network (memory of one stored backward pass).
MAX_WEIGHTS = 2**24


def parse_widths(text: object, *, argument: str = "--widths") -> tuple[int, ...]:
    """``"784,256,10"`` -> ``(784, 256, 10)``: at least two positive integers, bounded.

    Raises
    ------
    InputError
        On a non-integer or non-positive width, fewer than two widths, a width above
        :data:`MAX_WIDTH`, more than :data:`MAX_LAYERS` layers, or more than
        :data:`MAX_WEIGHTS` weights in all (what one replicate must hold in memory).
    """
    if isinstance(text, str):
        parts = [p.strip() for p in text.split(",")]
        if not all(re.fullmatch(r"\d{1,9}", p) for p in parts):
            raise InputError(
                f"`{argument}` must be positive integers separated by commas, e.g. "
                f"'128,128,128'; got {argument}={text!r}."
            )
        widths = [int(p) for p in parts]
    elif isinstance(text, Sequence):
        widths = list(text)
    else:
        raise InputError(f"`{argument}` must be a list of widths; got {argument}={text!r}.")
    if not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in widths):
        raise InputError(f"`{argument}` must be positive integers; got {argument}={text!r}.")
    if len(widths) < 2:
        raise InputError(
            f"`{argument}` needs at least two widths (input and one layer); got {text!r}."
        )
    if max(widths) > MAX_WIDTH:
        raise InputError(
            f"`{argument}` allows widths up to {MAX_WIDTH} (memory); got {max(widths)}."
        )
    if len(widths) - 1 > MAX_LAYERS:
        raise InputError(f"`{argument}` allows at most {MAX_LAYERS} layers; got {len(widths) - 1}.")
    total = sum(a * b for a, b in itertools.pairwise(widths))
    if total > MAX_WEIGHTS:
        raise InputError(
            f"`{argument}` describes {total} weights; at most {MAX_WEIGHTS} fit in memory "
            f"per sampled network. Use fewer or narrower layers."
        )
    return tuple(widths)


# --------------------------------------------------------------------------- activation


@dataclass(frozen=True)
class Moment:
    """:math:`\\mathbb{E}[g(z)]`, :math:`z \\sim N(0, 1)`, and how it was obtained."""

    integrand: sp.Expr
    value: sp.Expr
    method: str
    error: float

    @property
    def exact(self) -> bool:
        return self.method == "sympy.integrate"

    def __float__(self) -> float:
        return float(self.value)


@dataclass(frozen=True)
class FixedPoint:
    """A fixed point :math:`q^* = F(q^*)` of the variance map.

    ``slope`` is :math:`F'(q^*)` (stable when below 1 in size); ``chi`` is the
    backward factor :math:`n\\gamma\\,\\mathbb{E}[f'(\\sqrt{q^*} z)^2]`.
    """

    q: float
    slope: float
    chi: float

    @property
    def stable(self) -> bool:
        return abs(self.slope) < 1


@dataclass(frozen=True)
class TorchGain:
    """PyTorch's ``calculate_gain`` entry that matches the activation."""

    name: str
    param: float | None
    gain: sp.Expr
    squared: sp.Expr
    reference: str = "torch/nn/init.py, calculate_gain"


@dataclass(frozen=True)
class ActivationAnalysis:
    """Everything :func:`analyze_activation` derives about one activation.

    Attributes
    ----------
    text, f, derivative
        The input, :math:`f` and :math:`f'` (``sp.diff``).
    taylor
        ``(branch, series)``: one smooth expansion at 0, or one per side of a kink.
    f0, slope_left, slope_right
        :math:`f(0)` and the one-sided derivatives at 0 (``sp.limit``).
    mean, m2, d2
        :math:`\\mathbb{E}[f(z)]`, :math:`\\mathbb{E}[f(z)^2]`, :math:`\\mathbb{E}[f'(z)^2]`
        at :math:`q = 1`.
    m2_of_q, d2_of_q
        The same as exact functions of ``q`` when SymPy integrates them, else ``None``.
    m2_series
        Small-``q`` expansion of :math:`\\mathbb{E}[f(x)^2]` (``None`` if unavailable).
    m2_table
        ``(q, value, error)`` by quadrature at a few variances.
    forward_gain, backward_gain
        :math:`n\\gamma` solving :math:`n\\gamma\\,\\mathbb{E}[f^2] = 1` and
        :math:`n\\gamma\\,\\mathbb{E}[f'^2] = 1` (``sp.solve``).
    gain, gain_source
        The gain used for the fixed points, and whether it is the forward one.
    fixed_points, every_q_fixed, zero_fixed
        Positive fixed points of :math:`F`; whether every :math:`q` is one
        (homogeneous :math:`f` at its preserving gain); whether :math:`q = 0` is.
    homogeneous
        ``(a, b)`` when :math:`f(x) = a x` (:math:`x > 0`), :math:`b x` (:math:`x < 0`).
    odd
        Whether :math:`f(-x) = -f(x)`.
    torch
        The matching ``calculate_gain`` entry, if any.
    """

    text: str
    f: sp.Expr
    derivative: sp.Expr
    taylor: tuple[tuple[str, sp.Expr], ...]
    f0: sp.Expr
    slope_left: sp.Expr
    slope_right: sp.Expr
    mean: Moment
    m2: Moment
    d2: Moment
    m2_of_q: sp.Expr | None
    d2_of_q: sp.Expr | None
    m2_series: sp.Expr | None
    m2_table: tuple[tuple[float, float, float], ...]
    forward_gain: sp.Expr
    backward_gain: sp.Expr
    gain: sp.Expr
    gain_source: str
    fixed_points: tuple[FixedPoint, ...]
    every_q_fixed: bool
    zero_fixed: bool
    homogeneous: tuple[sp.Expr, sp.Expr] | None
    odd: bool
    torch: TorchGain | None

    @property
    def zero_at_origin(self) -> bool:
        """:math:`f(0) = 0`."""
        return self.f0 == 0

    @property
    def unit_slope(self) -> bool:
        """:math:`f'(0) = 1` (both one-sided derivatives)."""
        return self.slope_left == 1 and self.slope_right == 1


_PIECEWISE = (sp.Max, sp.Min, sp.Abs, sp.Heaviside, sp.sign, sp.Piecewise)
_GRID = np.concatenate([np.linspace(-10.0, 10.0, 201), [-0.3, -1e-3, 1e-3, 0.7]])


def numpy_function(expr: sp.Expr) -> Callable[[np.ndarray], np.ndarray]:
    """NumPy form of ``expr`` in ``x`` (``sympy.lambdify`` with SciPy's special functions).

    Always returns an array of the input's shape (a constant becomes a full array).
    """
    fn = sp.lambdify(x, expr, modules=["scipy", "numpy"])

    def f(a: np.ndarray) -> np.ndarray:
        a = np.asarray(a)
        out = np.asarray(fn(a), dtype=np.result_type(a.dtype, np.float64))
        return np.broadcast_to(out, a.shape).astype(a.dtype, copy=False)

    return f


def _check_real(f: sp.Expr, text: str, argument: str) -> None:
    with np.errstate(all="ignore"):
        try:
            values = np.asarray(sp.lambdify(x, f, modules=["scipy", "numpy"])(_GRID), dtype=complex)
        except (TypeError, ValueError, ZeroDivisionError, OverflowError) as exc:
            raise InputError(f"`{argument}`: cannot evaluate f(x) = {f} ({exc}).") from None
    values = np.broadcast_to(values, _GRID.shape)
    bad = ~np.isfinite(values) | (np.abs(values.imag) > 1e-12 * (1 + np.abs(values.real)))
    if bad.any():
        at = float(_GRID[np.argmax(bad)])
        raise InputError(
            f"`{argument}`: f(x) = {f} is not real and finite (in double precision) on the "
            f"real line (at x = {at:g} "
            f"it is {complex(values[np.argmax(bad)])}); got {argument}={text!r}."
        )


def _try_exact(g: sp.Expr) -> bool:
    """Whether SymPy's exact path is worth trying (fast and likely to succeed).

    Smooth integrands the Gaussian module deems elementary, and piecewise ones whose
    every piece is a polynomial (relu, leaky relu, Heaviside); piecewise integrands
    with transcendental pieces (SELU) go straight to quadrature.
    """
    from ._gaussian import _closed_form_candidate

    if not _closed_form_candidate(g, x):
        return False
    if not g.has(*_PIECEWISE):
        return True
    for side in (1, -1):
        p = sp.Symbol("p", positive=True)
        piece = sp.piecewise_fold(g.subs(x, side * p))
        if piece.has(*_PIECEWISE) or not piece.is_polynomial(p):
            return False
    return True


def _moment(g: sp.Expr, argument: str, what: str) -> Moment:
    try:
        m = gaussian_moment(g, x, 1, method="auto" if _try_exact(g) else "numeric")
    except ValueError as exc:
        raise InputError(f"`{argument}`: {what} is not defined: {exc}") from None
    value = float(m.value)
    if not math.isfinite(value):
        raise InputError(f"`{argument}`: {what} is not finite ({m.value}).")
    return Moment(g, m.value, m.method, m.error)


def _of_q(g: sp.Expr) -> sp.Expr | None:
    if not _try_exact(g):
        return None
    try:
        return gaussian_moment(g, x, q).value
    except (ValueError, NotImplementedError):
        return None


def _taylor(f: sp.Expr, order: int = 6) -> tuple[tuple[str, sp.Expr], ...]:
    """Taylor expansion at 0 (one per side of a kink); empty when SymPy cannot expand."""
    try:
        return _taylor_branches(f, order)
    except (NotImplementedError, ValueError, TypeError, sp.PoleError):
        return ()


def _one_sided_slope(f: sp.Expr, f0: sp.Expr, side: int) -> sp.Expr:
    r""":math:`\lim_{h \to 0^+} \pm(f(\pm h) - f(0))/h` by ``sp.limit``, else numerically.

    The numeric fallback is the difference quotient at :math:`h = 10^{-15}` in
    50-digit arithmetic (error :math:`O(h)`), returned as a ``Float``.
    """
    h = sp.Symbol("h", positive=True)
    quotient = side * (f.subs(x, side * h) - f0) / h
    try:
        value = sp.limit(quotient, h, 0)
        if value.is_number and value.is_finite:
            return value
    except (NotImplementedError, ValueError, TypeError, sp.PoleError):
        pass
    return sp.Float(sp.N(quotient.subs(h, sp.Rational(1, 10**15)), 50), 15)


def _taylor_branches(f: sp.Expr, order: int) -> tuple[tuple[str, sp.Expr], ...]:
    if not f.has(*_PIECEWISE):
        return (("x", sp.series(f, x, 0, order)),)
    out = []
    for label, side in (("x > 0", 1), ("x < 0", -1)):
        p = sp.Symbol("p", positive=True)
        piece = sp.piecewise_fold(f.subs(x, side * p))
        if piece.has(*_PIECEWISE):
            return ()
        series = sp.series(piece, p, 0, order).removeO()
        out.append((label, sp.expand(series.subs(p, side * x)) + sp.O(x**order)))
    return tuple(out)


def _homogeneous(f: sp.Expr) -> tuple[sp.Expr, sp.Expr] | None:
    """``(a, b)`` with :math:`f(p) = a p`, :math:`f(-p) = -b p` for every :math:`p > 0`."""
    p = sp.Symbol("p", positive=True)
    a = sp.simplify(f.subs(x, p) / p)
    b = sp.simplify(-f.subs(x, -p) / p)
    if a.free_symbols or b.free_symbols:
        return None
    return (a, b)


def _odd(f: sp.Expr) -> bool:
    if sp.simplify(f.subs(x, -x) + f) == 0:
        return True
    return False


#: SELU constants of PyTorch's ``torch.nn.SELU`` (Klambauer et al. 2017).
SELU_ALPHA = sp.Float("1.6732632423543772848170429916717", 30)
SELU_SCALE = sp.Float("1.0507009873554804934193349852946", 30)


def torch_gain(f: sp.Expr) -> TorchGain | None:
    """PyTorch's ``calculate_gain`` entry matching ``f``, compared on a grid of points.

    The entries (``torch/nn/init.py``): ``linear``/``identity`` 1, ``sigmoid`` 1,
    ``tanh`` 5/3, ``relu`` :math:`\\sqrt 2`, ``leaky_relu``
    :math:`\\sqrt{2/(1 + \\mathrm{slope}^2)}`, ``selu`` 3/4. Torch draws weights with
    std ``gain / sqrt(fan)``, i.e. :math:`n\\gamma = g^2`.
    """
    slope = sp.Symbol("slope", positive=True)
    leaky = sp.Max(0, x) + slope * sp.Min(0, x)
    table = [
        ("linear", x, sp.Integer(1), None),
        ("sigmoid", 1 / (1 + sp.exp(-x)), sp.Integer(1), None),
        ("tanh", sp.tanh(x), sp.Rational(5, 3), None),
        ("relu", sp.Max(0, x), sp.sqrt(2), None),
        (
            "selu",
            SELU_SCALE * (sp.Max(0, x) + sp.Min(0, SELU_ALPHA * (sp.exp(x) - 1))),
            sp.Rational(3, 4),
            None,
        ),
    ]
    mine = numpy_function(f)
    grid = np.linspace(-6.0, 6.0, 97)
    with np.errstate(all="ignore"):
        ours = mine(grid)
    for name, g, gain, _ in table:
        theirs = numpy_function(g)(grid)
        if np.allclose(ours, theirs, rtol=1e-9, atol=1e-12):
            return TorchGain(name, None, gain, gain**2)
    s = -float(f.subs(x, -1))
    if 0 < s < 1 or s > 1:
        theirs = numpy_function(leaky.subs(slope, s))(grid)
        if np.allclose(ours, theirs, rtol=1e-9, atol=1e-12):
            formula = sp.sqrt(2 / (1 + slope**2))  # torch/nn/init.py, calculate_gain
            gain = formula.subs(slope, sp.nsimplify(s, rational=True))
            return TorchGain("leaky_relu", s, gain, sp.simplify(gain**2))
    return None


def _fixed_points(
    f2_moment: Callable[[float], tuple[float, float]],
    d2_moment: Callable[[float], tuple[float, float]],
    gain: float,
) -> tuple[FixedPoint, ...]:
    """Positive roots of :math:`F(q) - q` on :math:`[10^{-3}, 10^{3}]`, by bracketing."""

    def F(v: float) -> float:
        return gain * f2_moment(v)[0]

    grid = np.logspace(-3, 3, 61)
    grid[30] = 1.0
    values = [F(v) - v for v in grid]
    roots: list[float] = []
    for k, v in enumerate(grid):
        if abs(values[k]) <= 1e-10 * v:
            roots.append(float(v))
        elif k + 1 < len(grid) and values[k] * values[k + 1] < 0:
            if abs(values[k + 1]) > 1e-10 * grid[k + 1]:
                roots.append(
                    optimize.brentq(lambda s: F(s) - s, v, grid[k + 1], xtol=1e-14, rtol=1e-12)
                )
    out = []
    for r in roots:
        h = 1e-4 * r
        slope = (F(r + h) - F(r - h)) / (2 * h)
        out.append(FixedPoint(r, slope, gain * d2_moment(r)[0]))
    return tuple(out)


@lru_cache(maxsize=64)
def analyze_activation(
    text: str, gain: str | None = None, *, argument: str = "EXPR"
) -> ActivationAnalysis:
    """Derive the Gaussian moments, gains and variance-map fixed points of ``f``.

    Parameters
    ----------
    text : str
        :math:`f(x)` in SymPy syntax, parsed by :func:`parse_expression`.
    gain : str, optional
        The init's :math:`n\\gamma` as a constant expression; default: the
        forward-preserving gain :math:`1/\\mathbb{E}[f(z)^2]`.
    argument : str
        Name of ``text`` in error messages.

    Raises
    ------
    InputError
        If the text is refused, ``f`` is not real and finite on the real line, a
        Gaussian moment diverges (``exp(x**2)``), or :math:`\\mathbb{E}[f^2] = 0`.

    Examples
    --------
    >>> a = analyze_activation("Max(0, x)")
    >>> a.m2.value, a.forward_gain, a.torch.squared
    (1/2, 2, 2)
    """
    f = parse_expression(text, argument=argument, symbols=ACTIVATION_SYMBOLS)
    if not f.has(x):
        raise InputError(f"`{argument}` must depend on x; got {argument}={text!r}.")
    _check_real(f, text, argument)
    fp = sp.diff(f, x)
    mean = _moment(f, argument, "E[f(z)]")
    m2 = _moment(f**2, argument, "E[f(z)^2]")
    d2 = _moment(fp**2, argument, "E[f'(z)^2]")
    for name, m in (("E[f(z)^2]", m2), ("E[f'(z)^2]", d2)):
        if not float(m) > 0:
            raise InputError(
                f"`{argument}`: {name} = {m.value} for f(x) = {f}; no gain preserves a second "
                "moment that is 0."
            )
    (forward,) = sp.solve(sp.Eq(n_gamma * m2.value, 1), n_gamma)
    (backward,) = sp.solve(sp.Eq(n_gamma * d2.value, 1), n_gamma)
    if gain is None:
        used, source = forward, "forward-preserving"
    else:
        used, source = parse_number(gain, argument="--gain"), "given"
    f0 = f.subs(x, 0)
    right = _one_sided_slope(f, f0, 1)
    left = _one_sided_slope(f, f0, -1)
    homogeneous = _homogeneous(f)
    f2 = moment_function(f**2, x)
    d2f = moment_function(fp**2, x)
    g = float(used)
    every = False
    points: tuple[FixedPoint, ...] = ()
    if homogeneous is not None:
        a, b = homogeneous
        c = sp.simplify(used * (a**2 + b**2) / 2)
        every = c == 1 or abs(float(c) - 1) < 1e-12
        if every:
            points = (FixedPoint(1.0, 1.0, g * d2f(1.0)[0]),)
    else:
        points = _fixed_points(f2, d2f, g)
    try:
        series = gaussian_square_series(f, x, q, 3).value
    except (ValueError, NotImplementedError, TypeError):
        series = None
    table = tuple((v, *f2(v)) for v in (0.25, 0.5, 1.0, 2.0, 4.0))
    return ActivationAnalysis(
        text=text,
        f=f,
        derivative=fp,
        taylor=_taylor(f),
        f0=f0,
        slope_left=left,
        slope_right=right,
        mean=mean,
        m2=m2,
        d2=d2,
        m2_of_q=_of_q(f**2),
        d2_of_q=_of_q(fp**2),
        m2_series=series,
        m2_table=table,
        forward_gain=forward,
        backward_gain=backward,
        gain=used,
        gain_source=source,
        fixed_points=points,
        every_q_fixed=every,
        zero_fixed=f0 == 0,
        homogeneous=homogeneous,
        odd=_odd(f),
        torch=torch_gain(f),
    )


# --------------------------------------------------------------------------- initialization

Dist = Literal["normal", "uniform", "truncated_normal"]
DISTS: tuple[str, ...] = ("normal", "uniform", "truncated_normal")
_s = sp.Symbol("s", positive=True)
_a = sp.Symbol("a", positive=True)


@lru_cache(maxsize=1)
def truncation_constant() -> sp.Expr:
    """:math:`c(2)`, the variance of :math:`N(0, 1)` truncated to :math:`(-2, 2)` (derived).

    JAX divides the std by :math:`\\sqrt{c(2)} = 0.87962566103423978`
    (``jax/_src/nn/initializers.py``).
    """
    return sp.simplify(truncated_variance().result.subs(tau, 2))


def law_variance(dist: str) -> tuple[sp.Symbol, sp.Expr]:
    """``(native parameter, variance)`` of a law, from ``sympy.stats``.

    normal: std :math:`s`, :math:`s^2`; uniform: bound :math:`a`,
    :math:`\\operatorname{Var} U[-a, a] = a^2/3`; truncated normal: scale :math:`s`
    cut at :math:`\\pm 2s`, :math:`s^2 c(2)`.
    """
    if dist == "normal":
        return _s, sp.simplify(stats.variance(stats.Normal("w", 0, _s)))
    if dist == "uniform":
        return _a, sp.simplify(stats.variance(stats.Uniform("w", -_a, _a)))
    if dist == "truncated_normal":
        return _s, _s**2 * truncation_constant()
    raise InputError(f"`DIST` must be one of {list(DISTS)}; got DIST={dist!r}.")


@dataclass(frozen=True)
class WeightInit:
    """A weight law in its native parameter and its exact variance, both in ``n_in``, ``n_out``.

    ``native`` is the std (normal, truncated normal: the scale before truncation at
    :math:`\\pm 2` scales) or the bound (uniform); ``variance`` is derived from the law.
    """

    dist: str
    native_name: str
    native: sp.Expr
    variance: sp.Expr
    source: str

    def law(self, fan_in: int, fan_out: int) -> dict:
        """The engine's plain-data law at these fans (native parameters, floats)."""
        value = float(self.native.subs({n_in: fan_in, n_out: fan_out}))
        if not (math.isfinite(value) and value > 0):
            raise InputError(
                f"the weight {self.native_name} {self.native} is {value!r} at n_in={fan_in}, "
                f"n_out={fan_out}; it must be finite and > 0."
            )
        if self.dist == "uniform":
            return {"law": "uniform", "bound": value}
        if self.dist == "normal":
            return {"law": "normal", "std": value}
        return {"law": "truncated_normal", "std": value, "a": -2.0, "b": 2.0}

    def gamma(self, fan_in: int, fan_out: int) -> sp.Expr:
        return sp.simplify(self.variance.subs({n_in: fan_in, n_out: fan_out}))


def weight_init(
    dist: str,
    *,
    std: str | None = None,
    var: str | None = None,
    bound: str | None = None,
    source: str = "given",
) -> WeightInit:
    """Build a :class:`WeightInit` from exactly one of ``std``, ``var``, ``bound``.

    ``var`` is turned into the native parameter by ``sp.solve`` on the law's
    variance; ``std`` of a uniform law gives the bound the same way.

    Raises
    ------
    InputError
        Unknown ``dist``, not exactly one parameter, a parameter that does not fit
        the law (``bound`` of a normal), or an expression refused by
        :func:`parse_expression`.
    """
    if dist not in DISTS:
        raise InputError(f"`DIST` must be one of {list(DISTS)}; got DIST={dist!r}.")
    given = {k: v for k, v in (("std", std), ("var", var), ("bound", bound)) if v is not None}
    if len(given) != 1:
        raise InputError(
            f"give exactly one of --std, --var, --bound; got {sorted(given) or 'none'}."
        )
    ((kind, text),) = given.items()
    if kind == "bound" and dist != "uniform":
        raise InputError(f"`--bound` applies to DIST=uniform only; got DIST={dist!r}.")
    expr = parse_expression(text, argument=f"--{kind}", symbols=INIT_SYMBOLS)
    return _weight_init(dist, kind, expr, source)


def _weight_init(dist: str, kind: str, expr: sp.Expr, source: str) -> WeightInit:
    native, variance = law_variance(dist)
    probe = expr.subs({n_in: 7, n_out: 5})
    if not (probe.is_finite and probe.is_positive):
        raise InputError(
            f"`--{kind}` must be finite and > 0 for positive widths; got {kind}={expr} "
            f"(at n_in=7, n_out=5 it is {probe})."
        )
    if kind == "var":
        target = sp.Eq(variance, expr)
    elif kind == "std" and dist == "uniform":
        target = sp.Eq(variance, expr**2)
    else:  # the native parameter itself (normal, truncated normal: untruncated std)
        target = sp.Eq(native, expr)
    solutions = sp.solve(target, native)
    if len(solutions) != 1:
        raise InputError(f"`--{kind}`: cannot solve {target} for the {dist} law's parameter.")
    value = sp.simplify(solutions[0])
    name = "bound" if dist == "uniform" else "std"
    return WeightInit(dist, name, value, sp.simplify(variance.subs(native, value)), source)


#: Named framework defaults: ``name -> (description, builder)``.
def _torch_linear() -> WeightInit:
    # torch/nn/init.py: kaiming_uniform_(a): gain = calculate_gain('leaky_relu', a) =
    # sqrt(2 / (1 + a^2)); std = gain / sqrt(fan_in); bound = sqrt(3) * std.
    a = sp.sqrt(5)
    gain = sp.sqrt(2 / (1 + a**2))
    bound = sp.sqrt(3) * gain / sp.sqrt(n_in)
    return _weight_init(
        "uniform",
        "bound",
        bound,
        "PyTorch nn.Linear default: kaiming_uniform_(a=sqrt(5)) (torch/nn/init.py; "
        "pytorch issue #57109)",
    )


def _keras_dense() -> WeightInit:
    # keras VarianceScaling(scale=1, mode="fan_avg", distribution="uniform"):
    # limit = sqrt(3 * scale / n) with n = (fan_in + fan_out) / 2
    limit = sp.sqrt(3 * 1 / ((n_in + n_out) / 2))
    return _weight_init(
        "uniform",
        "bound",
        limit,
        "Keras Dense default: glorot_uniform = VarianceScaling(1, 'fan_avg', 'uniform')",
    )


def _flax_dense() -> WeightInit:
    # jax variance_scaling(1, "fan_in", "truncated_normal"): stddev = sqrt(scale / n) /
    # (std of N(0,1) truncated to (-2, 2)), drawn from N(0,1) truncated to (-2, 2)
    std = sp.sqrt(1 / n_in) / sp.sqrt(truncation_constant())
    return _weight_init(
        "truncated_normal",
        "std",
        std,
        "Flax Dense default: lecun_normal = variance_scaling(1, 'fan_in', "
        "'truncated_normal') (jax/_src/nn/initializers.py)",
    )


PRESETS: dict[str, Callable[[], WeightInit]] = {
    "torch-linear": _torch_linear,
    "keras-dense": _keras_dense,
    "flax-dense": _flax_dense,
}


def preset(name: str) -> WeightInit:
    """A framework default by name (see :data:`PRESETS`)."""
    if name not in PRESETS:
        raise InputError(f"`--preset` must be one of {list(PRESETS)}; got --preset={name!r}.")
    return PRESETS[name]()


# --------------------------------------------------------------------------- propagation


@dataclass(frozen=True)
class Value:
    """A derived number: exact at finite width, or from the infinite-width recursion."""

    value: float
    exact: bool
    how: str
    error: float = 0.0


@dataclass(frozen=True)
class LayerMoments:
    """Second moments (and means) of every site of a network, layer by layer.

    Index ``t`` runs over ``0..d``; ``preactivation[0]`` is ``None``. ``backward[t]``
    is :math:`\\mathbb{E}[(\\partial\\ell/\\partial h^t)^2]` for an independent
    :math:`N(0, 1)` upstream gradient at layer ``d``.
    """

    widths: tuple[int, ...]
    gammas: tuple[sp.Expr, ...]
    preactivation: tuple[Value | None, ...]
    output: tuple[Value, ...]
    output_mean: tuple[Value, ...]
    backward: tuple[Value, ...]


def chi2_mixture(
    moment: Callable[[float], tuple[float, float]], gamma: float, n: int
) -> tuple[float, float]:
    """:math:`\\mathbb{E}[G(\\gamma S)]` for :math:`S \\sim \\chi^2_n` (one-dimensional quadrature).

    ``moment(q)`` returns :math:`G(q)` and its error bound. Returns the value and the
    outer error bound plus the largest inner one.
    """
    worst = [0.0]

    def integrand(s: float) -> float:
        v, e = moment(gamma * s) if s > 0 else (0.0, 0.0)
        worst[0] = max(worst[0], e)
        return v * sstats.chi2.pdf(s, n)

    total, err = 0.0, 0.0
    lo, hi = sstats.chi2.ppf(1e-15, n), sstats.chi2.isf(1e-15, n)
    for a, b in ((lo, float(n)), (float(n), hi)):
        v, e = integrate.quad(integrand, a, b, epsabs=0.0, epsrel=1e-10, limit=200)
        total, err = total + v, err + e
    # mass outside [lo, hi] is 2e-15 of a bounded-by-growth integrand: below the bound
    return total, err + worst[0] + 1e-13 * abs(total)


def propagate(
    activation: str | ActivationAnalysis,
    init: WeightInit,
    widths: Sequence[int],
    *,
    input_var: float = 1.0,
    argument: str = "--activation",
) -> LayerMoments:
    """Second moments of every layer for input :math:`N(0, v I)` (``input_var``), no biases.

    Forward: :math:`P_t = n_{t-1}\\gamma_t M_{t-1}` (exact for any law),
    :math:`M_0 = v`; :math:`M_t = \\mathbb{E}[f(z^t)^2]` is exact for a homogeneous
    ``f`` (:math:`\\tfrac{a^2+b^2}{2} P_t`), exact at :math:`t = 1` for normal weights
    (the :math:`\\chi^2` mixture), and otherwise :math:`F(P_t)` (infinite width).
    Backward: :math:`B_d = 1`, :math:`B_{t-1} = n_t\\gamma_t\\,\\mathbb{E}[f'(z^t)^2] B_t`,
    exact for linear ``f`` and for homogeneous ``f`` at the top layer (sign symmetry),
    otherwise the independence approximation.
    """
    a = (
        activation
        if isinstance(activation, ActivationAnalysis)
        else analyze_activation(activation, argument=argument)
    )
    if not (isinstance(input_var, float | int) and math.isfinite(input_var) and input_var > 0):
        raise InputError(f"`input_var` must be finite and > 0; got input_var={input_var!r}.")
    f, fp = a.f, a.derivative
    widths = parse_widths(list(widths))
    d = len(widths) - 1
    gammas = tuple(init.gamma(widths[t - 1], widths[t]) for t in range(1, d + 1))
    for t in range(1, d + 1):
        init.law(widths[t - 1], widths[t])  # validates the native parameter
    f2, f1, d2 = moment_function(f**2, x), moment_function(f, x), moment_function(fp**2, x)
    hom = a.homogeneous
    linear = hom is not None and hom[0] == hom[1]
    pre: list[Value | None] = [None]
    out: list[Value] = [Value(float(input_var), True, "input N(0, v)")]
    mean: list[Value] = [Value(0.0, True, "input N(0, v)")]
    for t in range(1, d + 1):
        g = float(gammas[t - 1])
        n = widths[t - 1]
        prev = out[-1]
        p = n * g * prev.value
        pre.append(Value(p, prev.exact, "n_{t-1} gamma_t E[(h^{t-1})^2]", n * g * prev.error))
        if hom is not None:
            c = float((hom[0] ** 2 + hom[1] ** 2) / 2)
            out.append(Value(c * p, prev.exact, "(a^2 + b^2)/2 E[z^2] (symmetric z)"))
            if hom[0] == hom[1]:
                mean.append(Value(0.0, True, "linear, symmetric weights"))
            elif t == 1 and init.dist == "normal":
                v, e = chi2_mixture(f1, g * input_var, n)
                mean.append(Value(v, True, "chi-square mixture (layer 1, normal weights)", e))
            else:
                mean.append(Value(f1(p)[0], False, "infinite-width recursion"))
            continue
        if t == 1 and init.dist == "normal":
            v, e = chi2_mixture(f2, g * input_var, n)
            out.append(Value(v, True, "chi-square mixture (layer 1, normal weights)", e))
        else:
            v, e = f2(p)
            out.append(Value(v, False, "infinite-width recursion E[f(sqrt(P_t) z)^2]", e))
        if a.odd:
            mean.append(Value(0.0, True, "odd f, symmetric weights"))
        elif t == 1 and init.dist == "normal":
            v, e = chi2_mixture(f1, g * input_var, n)
            mean.append(Value(v, True, "chi-square mixture (layer 1, normal weights)", e))
        else:
            mean.append(Value(f1(p)[0], False, "infinite-width recursion"))
    back: list[Value] = [Value(1.0, True, "upstream N(0, 1)")]
    for t in range(d, 0, -1):
        g = float(gammas[t - 1])
        n = widths[t]
        prev = back[-1]
        if hom is not None:
            c = float((hom[0] ** 2 + hom[1] ** 2) / 2)
            exact = prev.exact and (linear or t == d)
            back.append(Value(n * g * c * prev.value, exact, "n_t gamma_t (a^2+b^2)/2 B_t"))
        else:
            factor = d2(pre[t].value)[0]
            back.append(
                Value(
                    n * g * factor * prev.value,
                    False,
                    "independence and infinite width: n_t gamma_t E[f'(sqrt(P_t) z)^2] B_t",
                )
            )
    return LayerMoments(widths, gammas, tuple(pre), tuple(out), tuple(mean), tuple(reversed(back)))


def derive_quantity(
    moments: LayerMoments, direction: str, of: str, moment: str, layer: int
) -> Value:
    """The derived value of one observable (``m2``, ``var`` or ``mean``) at one site."""
    d = len(moments.widths) - 1
    if direction not in ("forward", "backward"):
        raise InputError(f"`--direction` must be forward or backward; got {direction!r}.")
    if moment not in ("m2", "var", "mean"):
        raise InputError(f"`--moment` must be one of m2, var, mean; got {moment!r}.")
    low = 1 if (direction == "forward" and of == "preactivation") else 0
    if not (isinstance(layer, int) and low <= layer <= d):
        raise InputError(f"`--layer` must be an integer in [{low}, {d}]; got {layer!r}.")
    if direction == "backward":
        if of != "output":
            raise InputError("`--of` must be 'output' for gradients (dl/dh^t).")
        m2 = moments.backward[layer]
        mean = Value(0.0, True, "upstream zero-mean and symmetric")
    elif of == "preactivation":
        m2 = moments.preactivation[layer]
        mean = Value(0.0, True, "zero-mean weights independent of the layer below")
    elif of == "output":
        m2, mean = moments.output[layer], moments.output_mean[layer]
    else:
        raise InputError(f"`--of` must be output or preactivation; got {of!r}.")
    assert m2 is not None
    if moment == "m2":
        return m2
    if moment == "mean":
        return mean
    return Value(
        m2.value - mean.value**2,
        m2.exact and mean.exact,
        f"{m2.how}, minus the squared mean ({mean.how})",
        m2.error + 2 * abs(mean.value) * mean.error,
    )


__all__ = [
    "CONSTANTS",
    "DISTS",
    "FUNCTIONS",
    "PRESETS",
    "ActivationAnalysis",
    "FixedPoint",
    "InputError",
    "LayerMoments",
    "Moment",
    "TorchGain",
    "Value",
    "WeightInit",
    "analyze_activation",
    "chi2_mixture",
    "derive_quantity",
    "law_variance",
    "numpy_function",
    "parse_expression",
    "parse_number",
    "parse_widths",
    "preset",
    "propagate",
    "torch_gain",
    "truncation_constant",
    "weight_init",
]
