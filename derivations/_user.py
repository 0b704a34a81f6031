r"""Activations, initializations and claims of one's own: parsing and symbolic analysis.

Three questions a reader of the lecture asks about a network the lecture does not
cover, each answered by a pure function returning a frozen dataclass:

* :func:`analyze_activation` -- for :math:`f` given as text: its Taylor expansion at
  0, :math:`\mathbb{E}[f(x)]`, :math:`\mathbb{E}[f(x)^2]`, :math:`\mathbb{E}[f'(x)^2]`
  for :math:`x \sim N(0, q)` (exact where SymPy integrates and quadrature agrees,
  otherwise two independent quadratures with the error estimate both support, or
  undecided, or divergent: :func:`derivations._gaussian.checked_moment`), the gains that
  preserve the forward and backward second moments, the fixed points of the variance
  map and PyTorch's ``calculate_gain`` where it has an entry, and the derivation as
  checked steps (:class:`~derivations._claim.Derivation`);
* :func:`weight_init` / :func:`preset` -- the exact variance of a weight law given in
  its native parameter (std or bound) or as a variance, from the law itself;
* :func:`propagate` -- the second moments of every layer of a network, exact where a
  finite-width identity holds and by the infinite-width recursion otherwise (marked).

Nothing here crashes, hangs or overstates on whitelisted input: every SymPy, SciPy and
mpmath operation runs under a :class:`~derivations._gaussian.Budget` (a timeout or a
failure becomes an undecided result with its reason), sizes are checked on the syntax
tree before anything is built, an activation that jumps, blows up or makes a moment
diverge is refused with the reason, and the derivative the simulation uses is checked
against finite differences first.

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

import ast
import io
import itertools
import math
import re
import tokenize
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Literal

import mpmath
import numpy as np
import sympy as sp
from scipy import integrate, optimize
from scipy import stats as sstats
from sympy import stats
from sympy.parsing.sympy_parser import auto_number, convert_xor, parse_expr, rationalize

from ._check import Chain
from ._claim import Check, Derivation, Status, Step, combine
from ._gaussian import (
    OPERATION_SECONDS,
    Budget,
    CheckedMoment,
    checked_moment,
    gaussian_integral,
    gaussian_square_series,
    growth,
    quadrature_map,
    singularities,
    special_points,
)
from ._symbols import x
from ._table import RELU, SIGMOID, TABLE, activation
from ._xavier import tau, truncated_variance

if TYPE_CHECKING:  # the record is defined where the mean-field maps use it too
    from ._meanfield import FixedPoint


class InputError(ValueError):
    """Text or numbers given by the user that initproof refuses.

    The message names the argument, shows its value and says what is allowed; fix
    the command line (or the arguments of the Python function) accordingly.
    """


# --------------------------------------------------------------------------- symbols

n_in = sp.Symbol("n_in", integer=True, positive=True)
n_out = sp.Symbol("n_out", integer=True, positive=True)
q = sp.Symbol("q", positive=True)
#: The gain :math:`n\gamma` (fan times weight variance).
n_gamma = sp.Symbol("n*gamma", positive=True)
_u = sp.Dummy("u", real=True)


def _parameter(name: str, what: str, value: sp.Expr) -> sp.Expr:
    """A numeric parameter of a named activation: a finite real number, not ``x``."""
    value = sp.sympify(value)
    if not (value.is_number and value.is_real is not False):
        raise ValueError(f"{name}: the {what} must be a number; got {value}")
    v = complex(sp.N(value, 20))
    if v.imag != 0 or not math.isfinite(v.real):
        raise ValueError(f"{name}: the {what} must be a finite real number; got {value}")
    return value


class sigmoid(sp.Function):
    """The logistic sigmoid; evaluates at once to :math:`1/(1 + e^{-u})` (the table's)."""

    nargs = 1

    @classmethod
    def eval(cls, arg: sp.Expr) -> sp.Expr:
        return SIGMOID.subs(x, arg)


class relu(sp.Function):
    """The rectifier; evaluates at once to ``Max(0, u)`` (the table's)."""

    nargs = 1

    @classmethod
    def eval(cls, arg: sp.Expr) -> sp.Expr:
        return RELU.subs(x, arg)


class softplus(sp.Function):
    """:math:`\\log(1 + e^u)`; evaluates at once."""

    nargs = 1

    @classmethod
    def eval(cls, arg: sp.Expr) -> sp.Expr:
        return sp.log(1 + sp.exp(arg))


_ONE_HUNDREDTH = sp.Rational(1, 100)


class leaky_relu(sp.Function):
    """``leaky_relu(u, a)`` = ``Max(0, u) + a*Min(0, u)``; ``a`` = 0.01 by default (as
    ``torch.nn.LeakyReLU``'s ``negative_slope``)."""

    nargs = (1, 2)

    @classmethod
    def eval(cls, arg: sp.Expr, slope: sp.Expr = _ONE_HUNDREDTH) -> sp.Expr:
        slope = _parameter("leaky_relu", "slope a", slope)
        return sp.Max(0, arg) + slope * sp.Min(0, arg)


class elu(sp.Function):
    """``elu(u, alpha)``: ``u`` for ``u > 0``, ``alpha*(exp(u) - 1)`` otherwise; alpha = 1."""

    nargs = (1, 2)

    @classmethod
    def eval(cls, arg: sp.Expr, alpha: sp.Expr = sp.S.One) -> sp.Expr:
        alpha = _parameter("elu", "alpha", alpha)
        return sp.Piecewise((arg, arg > 0), (alpha * (sp.exp(arg) - 1), True))


#: SELU constants of PyTorch's ``torch.nn.SELU`` (Klambauer et al. 2017).
SELU_ALPHA = sp.Rational("1.6732632423543772848170429916717")
SELU_SCALE = sp.Rational("1.0507009873554804934193349852946")


class selu(sp.Function):
    """``selu(u)`` = ``scale*elu(u, alpha)`` with PyTorch's constants :data:`SELU_ALPHA`,
    :data:`SELU_SCALE`."""

    nargs = 1

    @classmethod
    def eval(cls, arg: sp.Expr) -> sp.Expr:
        return SELU_SCALE * sp.Piecewise((arg, arg > 0), (SELU_ALPHA * (sp.exp(arg) - 1), True))


class gelu(sp.Function):
    """The exact GELU, :math:`u\\,\\Phi(u) = \\tfrac{u}{2}(1 + \\operatorname{erf}(u/\\sqrt2))`."""

    nargs = 1

    @classmethod
    def eval(cls, arg: sp.Expr) -> sp.Expr:
        return arg * (1 + sp.erf(arg / sp.sqrt(2))) / 2


#: The cubic coefficient of the tanh approximation of GELU (Hendrycks and Gimpel 2016).
GELU_TANH_CUBIC = sp.Rational(44715, 10**6)


class gelu_tanh(sp.Function):
    """GELU's tanh approximation (``torch.nn.GELU(approximate='tanh')``):
    :math:`\\tfrac{u}{2}(1 + \\tanh(\\sqrt{2/\\pi}\\,(u + 0.044715\\,u^3)))`."""

    nargs = 1

    @classmethod
    def eval(cls, arg: sp.Expr) -> sp.Expr:
        inner = sp.sqrt(2 / sp.pi) * (arg + GELU_TANH_CUBIC * arg**3)
        return arg * (1 + sp.tanh(inner)) / 2


class silu(sp.Function):
    """SiLU, :math:`u\\,\\sigma(u)` (also called swish)."""

    nargs = 1

    @classmethod
    def eval(cls, arg: sp.Expr) -> sp.Expr:
        return arg / (1 + sp.exp(-arg))


class swish(sp.Function):
    """``swish(u, beta)`` = :math:`u\\,\\sigma(\\beta u)`; ``beta`` = 1 gives SiLU."""

    nargs = (1, 2)

    @classmethod
    def eval(cls, arg: sp.Expr, beta: sp.Expr = sp.S.One) -> sp.Expr:
        beta = _parameter("swish", "beta", beta)
        return arg / (1 + sp.exp(-beta * arg))


class mish(sp.Function):
    """Mish, :math:`u \\tanh(\\log(1 + e^u))`."""

    nargs = 1

    @classmethod
    def eval(cls, arg: sp.Expr) -> sp.Expr:
        return arg * sp.tanh(sp.log(1 + sp.exp(arg)))


class hardtanh(sp.Function):
    """``hardtanh(u, lo, hi)`` = ``Max(lo, Min(hi, u))``; by default ``lo = -1``, ``hi = 1``."""

    nargs = (1, 3)

    @classmethod
    def eval(cls, arg: sp.Expr, lo: sp.Expr = sp.S.NegativeOne, hi: sp.Expr = sp.S.One):
        lo, hi = _parameter("hardtanh", "lower end", lo), _parameter("hardtanh", "upper end", hi)
        if not sp.N(lo) < sp.N(hi):
            raise ValueError(f"hardtanh: the lower end must be below the upper; got {lo}, {hi}")
        return sp.Max(lo, sp.Min(hi, arg))


class softsign(sp.Function):
    """Softsign, :math:`u/(1 + |u|)` (the table's)."""

    nargs = 1

    @classmethod
    def eval(cls, arg: sp.Expr) -> sp.Expr:
        return activation("softsign").expression.subs(x, arg)


#: Activations by name: what each one means (the function of ``x`` it evaluates to).
NAMED_ACTIVATIONS: dict[str, str] = {
    "relu": "Max(0, x)",
    "leaky_relu": "leaky_relu(x, a) = Max(0, x) + a*Min(0, x), a = 0.01 by default",
    "elu": "elu(x, alpha) = x (x > 0), alpha*(exp(x) - 1) (x <= 0), alpha = 1 by default",
    "selu": "selu(x) = 1.0507...*elu(x, 1.6733...) (PyTorch's constants)",
    "gelu": "gelu(x) = x*(1 + erf(x/sqrt(2)))/2 (exact)",
    "gelu_tanh": "gelu_tanh(x) = x*(1 + tanh(sqrt(2/pi)*(x + 0.044715*x**3)))/2",
    "silu": "silu(x) = x*sigmoid(x)",
    "swish": "swish(x, beta) = x*sigmoid(beta*x), beta = 1 by default",
    "mish": "mish(x) = x*tanh(softplus(x))",
    "hardtanh": "hardtanh(x, lo, hi) = Max(lo, Min(hi, x)), lo = -1, hi = 1 by default",
    "softsign": "softsign(x) = x/(1 + Abs(x))",
    "sigmoid": "sigmoid(x) = 1/(1 + exp(-x))",
    "softplus": "softplus(x) = log(1 + exp(x))",
}


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
    "leaky_relu": leaky_relu,
    "elu": elu,
    "selu": selu,
    "gelu": gelu,
    "gelu_tanh": gelu_tanh,
    "silu": silu,
    "swish": swish,
    "mish": mish,
    "hardtanh": hardtanh,
    "softsign": softsign,
    "Max": sp.Max,
    "Min": sp.Min,
    "Abs": sp.Abs,
    "abs": sp.Abs,
    "sign": sp.sign,
    "Heaviside": sp.Heaviside,
    "Piecewise": sp.Piecewise,
}
#: Named constants.
CONSTANTS: dict[str, sp.Expr] = {"pi": sp.pi, "E": sp.E}
#: Operators and punctuation a token may be.
OPERATORS = frozenset({"+", "-", "*", "/", "**", "^", "(", ")", ","})
#: Comparisons, allowed only in the conditions of ``Piecewise((value, x > 0), (0, True))``.
COMPARISONS = frozenset({"<", "<=", ">", ">="})
#: Longest expression accepted, in characters.
MAX_LENGTH = 300
#: Largest magnitude of a numeric exponent (``x**64`` is fine, ``9**9**9`` is not).
MAX_EXPONENT = 64
#: Most nodes of the expression's syntax tree (numbers, names, operators, calls).
MAX_NODES = 200
#: Deepest nesting of operators and calls.
MAX_DEPTH = 32
#: Largest constant, as a power of ten (``(10**64)**64`` is refused before it is computed).
MAX_MAGNITUDE = 1000
#: Most pieces of a ``Piecewise``.
MAX_PIECES = 8
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
        " (comparisons < <= > >= and True only in Piecewise((value, x > 0), (other, True)))"
        if names
        else "numbers and operators"
    )


def _tokens(text: str, argument: str, symbols: Mapping[str, sp.Symbol]) -> None:
    """Reject every token that is not a number, operator or whitelisted name."""
    allowed = {*symbols, *CONSTANTS, *FUNCTIONS, "True"}
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
        if kind == tokenize.OP and (s in OPERATORS or s in COMPARISONS):
            continue
        what = "name" if kind == tokenize.NAME else "number" if kind == tokenize.NUMBER else "token"
        raise InputError(
            f"`{argument}` may contain only {_allowed(symbols)}; got the {what} {s!r} in "
            f"{argument}={text!r}. Nothing was evaluated."
        )


_AST_BINOPS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow)
_AST_COMPARE = (ast.Lt, ast.LtE, ast.Gt, ast.GtE)
#: Values of the named constants, for the size of a constant exponent.
_CONSTANT_VALUES = {"pi": math.pi, "E": math.e}
#: ``log10`` of a named constant's size (both are below :math:`10^{0.5}`).
_CONSTANT_MAGNITUDE = 0.5
#: ``log10(2)`` rounded up: a sum or difference is at most twice its larger term.
_SUM_MAGNITUDE = 0.31
#: Bits of an integer constant at :math:`10^{1000}` (:data:`MAX_MAGNITUDE`).
_MAX_BITS = 3400
#: How to write a ``Piecewise``, in its refusals.
_PIECEWISE_FORM = "Piecewise((value, x > 0), ..., (value, True))"


class _Refused(Exception):
    """A size or form limit of :func:`_check_syntax` broken; ``args[0]`` says which.

    Worded to follow the argument's name (```EXPR` holds a tuple ...``); turned into an
    :class:`InputError` by :func:`_check_syntax`.
    """


def _syntax_tree(text: str, argument: str, symbols: Mapping[str, sp.Symbol]) -> ast.Expression:
    """The syntax tree of ``text`` (``^`` read as ``**``), parsed by :mod:`ast`, never run."""
    source = text.replace("^", "**")
    try:
        return ast.parse(source.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        msg = exc.args[0] if exc.args else type(exc).__name__
        raise InputError(
            f"`{argument}` is not a valid expression ({msg}); got {argument}={text!r}. "
            f"Allowed: {_allowed(symbols)}."
        ) from None


def _power_value(a: float, b: float) -> float:
    """:math:`a^b` for constants, ``inf`` when the power is too large to compute."""
    if abs(b) > MAX_EXPONENT or (a != 0 and abs(b * math.log10(abs(a))) > 300):
        return math.inf
    return float(abs(a) ** b) if a >= 0 or float(b).is_integer() else math.nan


def _constant_value(node: ast.AST) -> float | None:
    """The value of a small constant exponent (``None`` if it has a symbol)."""
    if isinstance(node, ast.Constant):
        return float(node.value)
    if isinstance(node, ast.Name):
        return _CONSTANT_VALUES.get(node.id)
    if isinstance(node, ast.UnaryOp):
        v = _constant_value(node.operand)
        return None if v is None else (-v if isinstance(node.op, ast.USub) else v)
    if not isinstance(node, ast.BinOp):
        return None
    a, b = _constant_value(node.left), _constant_value(node.right)
    if a is None or b is None:
        return None
    try:
        if isinstance(node.op, ast.Pow):
            return _power_value(a, b)
        return {
            ast.Add: a + b,
            ast.Sub: a - b,
            ast.Mult: a * b,
            ast.Div: a / b if b else math.inf,
        }[type(node.op)]
    except (OverflowError, ZeroDivisionError):
        return math.inf


def _magnitude(node: ast.AST) -> float | None:
    """``log10`` of the size of a constant subexpression (``None`` if it has a symbol).

    An upper estimate: a sum is at most twice its larger term, a product adds the
    logarithms, a power multiplies the base's by the exponent.
    """
    if isinstance(node, ast.Constant):
        v = abs(float(node.value))
        if not math.isfinite(v):
            raise _Refused("holds a number that is not finite")
        return math.log10(v) if v > 0 else -math.inf
    if isinstance(node, ast.Name):
        return _CONSTANT_MAGNITUDE if node.id in CONSTANTS else None
    if isinstance(node, ast.UnaryOp):
        return _magnitude(node.operand)
    if not isinstance(node, ast.BinOp):
        return None
    a, b = _magnitude(node.left), _magnitude(node.right)
    if a is None or b is None:
        return None
    if isinstance(node.op, ast.Add | ast.Sub):
        return max(a, b) + _SUM_MAGNITUDE
    if isinstance(node.op, ast.Mult):
        return a + b
    if isinstance(node.op, ast.Div):
        return a - b if b > -math.inf else None
    e = _constant_value(node.right)
    if e is None or not math.isfinite(e) or a == -math.inf:
        return None
    return a * e


@dataclass
class _Walk:
    """What the walk over a syntax tree carries: the names allowed, the nodes seen."""

    names: frozenset[str]
    nodes: int = 0


def _walk(node: ast.AST, depth: int, walk: _Walk) -> None:
    """Check ``node`` and, depth first, everything below it; refuse the first fault."""
    walk.nodes += 1
    if walk.nodes > MAX_NODES:
        raise _Refused(f"has more than {MAX_NODES} numbers, names and operations")
    if depth > MAX_DEPTH:
        raise _Refused(f"nests operations more than {MAX_DEPTH} deep")
    if isinstance(node, ast.Expression):
        return _walk(node.body, depth, walk)
    if isinstance(node, ast.Constant):
        return _check_constant(node)
    if isinstance(node, ast.Name):
        return _check_name(node, walk.names)
    if isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, ast.UAdd | ast.USub):
            raise _Refused("uses an operator that is not + - * / **")
        return _walk(node.operand, depth + 1, walk)
    if isinstance(node, ast.BinOp):
        return _walk_binop(node, depth, walk)
    if isinstance(node, ast.Call):
        return _walk_call(node, depth, walk)
    if isinstance(node, ast.Tuple | ast.List | ast.Set | ast.Dict):
        raise _Refused("holds a tuple or list; only Piecewise((value, condition), ...) takes pairs")
    if isinstance(node, ast.Compare):
        raise _Refused("compares values outside the conditions of Piecewise")
    raise _Refused(f"holds {type(node).__name__}, which is not an arithmetic expression")


def _check_constant(node: ast.Constant) -> None:
    """A finite int or float below :math:`10^{1000}` (``True`` only ends a ``Piecewise``)."""
    if isinstance(node.value, bool) or not isinstance(node.value, int | float):
        raise _Refused(f"may use {node.value!r} only as the last condition of Piecewise")
    if isinstance(node.value, float) and not math.isfinite(node.value):
        raise _Refused("holds a number that is not finite")
    if isinstance(node.value, int) and node.value.bit_length() > _MAX_BITS:
        raise _Refused(f"holds a number larger than 10**{MAX_MAGNITUDE}")


def _check_name(node: ast.Name, names: frozenset[str]) -> None:
    """A symbol or a constant; a function's name only where it is called."""
    if node.id not in names:
        what = "a function" if node.id in FUNCTIONS else "not allowed here"
        raise _Refused(f"uses the name {node.id!r} as a value ({what})")


def _check_power(node: ast.BinOp) -> None:
    """A numeric exponent at most :data:`MAX_EXPONENT`, and a power below :math:`10^{1000}`."""
    e = _constant_value(node.right)
    if e is not None and not (math.isfinite(e) and abs(e) <= MAX_EXPONENT):
        raise _Refused(
            f"raises to the power {ast.unparse(node.right)}; numeric exponents "
            f"must be at most {MAX_EXPONENT} in size"
        )
    base = _magnitude(node.left)
    if e is not None and base is not None and abs(e) * base > MAX_MAGNITUDE:
        raise _Refused(f"holds a number larger than 10**{MAX_MAGNITUDE}")


def _walk_binop(node: ast.BinOp, depth: int, walk: _Walk) -> None:
    """``+ - * / **`` with sizes in bounds; a flat chain (``x + x + x``) is long, not deep."""
    if not isinstance(node.op, _AST_BINOPS):
        raise _Refused("uses an operator that is not + - * / **")
    if isinstance(node.op, ast.Pow):
        _check_power(node)
    size = _magnitude(node)
    if size is not None and size > MAX_MAGNITUDE:
        raise _Refused(f"holds a number larger than 10**{MAX_MAGNITUDE}")
    chained = isinstance(node.left, ast.BinOp) and type(node.left.op) is type(node.op)
    _walk(node.left, depth + (0 if chained else 1), walk)
    return _walk(node.right, depth + 1, walk)


def _walk_call(node: ast.Call, depth: int, walk: _Walk) -> None:
    """A whitelisted function with positional arguments (``Piecewise`` with pairs)."""
    if not (isinstance(node.func, ast.Name) and node.func.id in FUNCTIONS):
        raise _Refused("calls something that is not a whitelisted function")
    if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
        raise _Refused(f"passes keyword or starred arguments to {node.func.id}")
    if node.func.id == "Piecewise":
        return _walk_piecewise(node, depth, walk)
    for a in node.args:
        _walk(a, depth + 1, walk)
    return None


def _walk_piecewise(node: ast.Call, depth: int, walk: _Walk) -> None:
    """1 to :data:`MAX_PIECES` pairs ``(value, one comparison)``, the last ``(value, True)``."""
    form = _PIECEWISE_FORM
    if not 1 <= len(node.args) <= MAX_PIECES:
        raise _Refused(
            f"gives Piecewise {len(node.args)} pieces; write {form} (1 to {MAX_PIECES} pieces)"
        )
    for k, piece in enumerate(node.args):
        if not (isinstance(piece, ast.Tuple) and len(piece.elts) == 2):
            raise _Refused(f"gives Piecewise a piece that is not a pair; write {form}")
        val, cond = piece.elts
        _walk(val, depth + 2, walk)
        last = k == len(node.args) - 1
        if isinstance(cond, ast.Constant) and cond.value is True:
            if not last:
                raise _Refused(f"puts the condition True before the last piece; write {form}")
            continue
        if last:
            raise _Refused(f"must end Piecewise with the condition True (the rest); write {form}")
        if not (
            isinstance(cond, ast.Compare)
            and len(cond.ops) == 1
            and isinstance(cond.ops[0], _AST_COMPARE)
        ):
            raise _Refused(f"gives Piecewise a condition that is not one comparison; write {form}")
        _walk(cond.left, depth + 2, walk)
        _walk(cond.comparators[0], depth + 2, walk)


def _check_syntax(text: str, argument: str, symbols: Mapping[str, sp.Symbol]) -> None:
    """Limits before anything is built: the syntax tree, read by :mod:`ast`, never run.

    Refuses tuples, lists, comparisons and ``True`` outside the conditions of
    ``Piecewise``, keyword arguments, more than :data:`MAX_NODES` nodes or
    :data:`MAX_DEPTH` levels, numeric exponents above :data:`MAX_EXPONENT` and constants
    beyond :math:`10^{1000}` (``(x,)*10**8``, ``9**9**9``, ``(10**64)**64``), all
    before SymPy evaluates anything.
    """
    tree = _syntax_tree(text, argument, symbols)
    try:
        _walk(tree, 0, _Walk(frozenset({*symbols, *CONSTANTS})))
    except _Refused as refused:
        raise InputError(
            f"`{argument}` {refused.args[0]}; got {argument}={text!r}. Nothing was evaluated."
        ) from None


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


def check_text(text: object, argument: str, example: str) -> str:
    """``text`` if it is a non-empty one-line string of at most :data:`MAX_LENGTH`
    characters; otherwise an :class:`InputError` naming ``argument``."""
    if not isinstance(text, str):
        raise InputError(f"`{argument}` must be a string; got {argument}={text!r}.")
    if not text.strip():
        raise InputError(f"`{argument}` is empty; give an expression such as '{example}'.")
    if len(text) > MAX_LENGTH:
        raise InputError(
            f"`{argument}` is {len(text)} characters long; at most {MAX_LENGTH} are accepted."
        )
    if "\n" in text or "\r" in text:
        raise InputError(f"`{argument}` must be one line; got {argument}={text!r}.")
    return text


def parse_expression(
    text: object,
    *,
    argument: str,
    symbols: Mapping[str, sp.Symbol] = ACTIVATION_SYMBOLS,
    budget: Budget | None = None,
    exact_decimals: bool = False,
) -> sp.Expr:
    """Parse ``text`` into a SymPy expression over ``symbols`` and the whitelist.

    Parameters
    ----------
    text : str
        The expression, in SymPy syntax (``x*sigmoid(x)``, ``Max(0, x)``, ``2/n_in``,
        ``gelu(x)``, ``Piecewise((x, x > 0), (x/10, True))``).
    argument : str
        The argument's name, for error messages (``"EXPR"``, ``"--var"``).
    symbols : mapping
        The free symbols allowed, by name.
    budget : Budget, optional
        Seconds SymPy may take to build the expression.
    exact_decimals : bool
        Read a decimal such as ``0.2`` as the exact rational ``1/5`` (as typed), not as a
        15-digit float, so that exact steps stay exact.

    Raises
    ------
    InputError
        If ``text`` holds anything outside the whitelist (attribute access, dunder
        names, strings, brackets, tuples, ``lambda``, unknown names), is not an
        expression, exceeds a size limit (:data:`MAX_LENGTH` characters,
        :data:`MAX_NODES` nodes, :data:`MAX_DEPTH` levels, a numeric exponent above
        :data:`MAX_EXPONENT`, a constant above :math:`10^{1000}`), or is not finite.
        The limits are checked on the syntax tree before SymPy builds anything.

    Examples
    --------
    >>> parse_expression("x*sigmoid(x)", argument="EXPR")
    x/(1 + exp(-x))
    >>> parse_expression("__import__('os')", argument="EXPR")
    Traceback (most recent call last):
    ...
    derivations._user.InputError: `EXPR` may contain only ...
    """
    check_text(text, argument, example="tanh(x)")
    _tokens(text, argument, symbols)
    _check_syntax(text, argument, symbols)
    _guard_exponents(text, argument, symbols, exact_decimals)
    ok, expr, why = (budget or Budget()).attempt(
        f"building {argument}", lambda: _build(text, symbols, exact_decimals, evaluate=True)
    )
    return _vet_expression(ok, expr, why, text, argument, symbols)


def _build(
    text: str, symbols: Mapping[str, sp.Symbol], exact_decimals: bool, *, evaluate: bool
) -> object:
    """``parse_expr`` on ``text`` whose only names are ``symbols`` and the whitelist."""
    local = {**symbols, **CONSTANTS, **FUNCTIONS}
    transformations = (auto_number, convert_xor, *((rationalize,) if exact_decimals else ()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return parse_expr(
            text.strip(),
            local_dict=local,
            global_dict={"__builtins__": {}, **_PARSER_GLOBALS},
            transformations=transformations,
            evaluate=evaluate,
        )


def _guard_exponents(
    text: str, argument: str, symbols: Mapping[str, sp.Symbol], exact_decimals: bool
) -> None:
    """Refuse huge numeric exponents on an unevaluated pass, before evaluating them.

    The pass is only a guard: any other failure is left to the evaluated pass.
    """
    try:
        raw = _build(text, symbols, exact_decimals, evaluate=False)
        if isinstance(raw, sp.Basic):
            _check_exponents(raw, argument, text)
    except InputError:
        raise
    except Exception:  # the evaluated pass decides
        pass


def _vet_expression(
    ok: bool, expr: object, why: str, text: str, argument: str, symbols: Mapping[str, sp.Symbol]
) -> sp.Expr:
    """``expr`` if it was built (``ok``; else ``why`` not) as one finite SymPy expression."""
    if not ok:
        raise InputError(
            f"`{argument}` is not a valid expression ({why.split(' failed ', 1)[-1]}); got "
            f"{argument}={text!r}. Allowed: {_allowed(symbols)}."
        )
    if not isinstance(expr, sp.Expr):
        raise InputError(
            f"`{argument}` must be a single expression; got {argument}={text!r} "
            f"(parsed as {type(expr).__name__})."
        )
    if expr.has(sp.nan, sp.zoo, sp.oo, -sp.oo):
        raise InputError(f"`{argument}` is not finite: {argument}={text!r} gives {expr}.")
    _check_exponents(expr, argument, text)
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


def _fixed_point(q: float, slope: float, chi: float) -> FixedPoint:
    """A fixed point of the variance map with its backward factor ``chi``.

    The record is :class:`derivations._meanfield.FixedPoint`, imported here because
    that module builds on this one.
    """
    from ._meanfield import FixedPoint

    return FixedPoint(q, slope, chi)


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
        The input, :math:`f` and :math:`f'` (``sp.diff``; almost everywhere, without the
        Dirac terms of a continuous ``f`` with kinks), cross-checked by finite
        differences (``derivative_check``).
    taylor
        ``(branch, series)``: one smooth expansion at 0, or one per side of a kink;
        empty when SymPy cannot expand within the budget.
    f0, slope_left, slope_right
        :math:`f(0)` and the one-sided derivatives at 0 (``sp.limit``, or a difference
        quotient in 50 digits when the limit is not found in time: a ``Float``).
    mean, m2, d2
        :math:`\\mathbb{E}[f(z)]`, :math:`\\mathbb{E}[f(z)^2]`, :math:`\\mathbb{E}[f'(z)^2]`
        at :math:`q = 1` (:class:`~derivations._gaussian.CheckedMoment`).
    m2_of_q, d2_of_q
        The same as exact functions of ``q`` when SymPy integrates them, else ``None``.
    m2_series
        Small-``q`` expansion of :math:`\\mathbb{E}[f(x)^2]` (``None`` if unavailable).
    m2_table
        ``(q, value, error)`` at a few variances (``value`` ``None`` when undecided);
        every value exact or supported by two quadratures, like ``m2``.
    forward_gain, backward_gain
        :math:`n\\gamma` solving :math:`n\\gamma\\,\\mathbb{E}[f^2] = 1` and
        :math:`n\\gamma\\,\\mathbb{E}[f'^2] = 1`; ``None`` when the moment is undecided.
    gain, gain_source
        The gain used for the fixed points, and whether it is the forward one.
    fixed_points, every_q_fixed, zero_fixed
        Positive fixed points of :math:`F`; whether every :math:`q` is one
        (homogeneous :math:`f` at its preserving gain); whether :math:`q = 0` is.
    homogeneous
        ``(a, b)`` when :math:`f(x) = a x` (:math:`x > 0`), :math:`b x` (:math:`x < 0`).
    odd
        Whether :math:`f(-x) = -f(x)` (shown symbolically).
    torch
        The matching ``calculate_gain`` entry, if any.
    derivations
        The derivation, checked step by step (:class:`~derivations._claim.Derivation`).
    notes
        What could not be decided, and why (budgets, failed methods).
    kinks
        Points where ``f`` is not smooth (or may not be).
    budget
        Seconds allowed per symbolic or numeric operation.
    """

    text: str
    f: sp.Expr
    derivative: sp.Expr
    taylor: tuple[tuple[str, sp.Expr], ...]
    f0: sp.Expr
    slope_left: sp.Expr
    slope_right: sp.Expr
    mean: CheckedMoment
    m2: CheckedMoment
    d2: CheckedMoment
    m2_of_q: sp.Expr | None
    d2_of_q: sp.Expr | None
    m2_series: sp.Expr | None
    m2_table: tuple[tuple[float, float | None, float], ...]
    forward_gain: sp.Expr | None
    backward_gain: sp.Expr | None
    gain: sp.Expr | None
    gain_source: str
    fixed_points: tuple[FixedPoint, ...]
    every_q_fixed: bool
    zero_fixed: bool
    homogeneous: tuple[sp.Expr, sp.Expr] | None
    odd: bool
    torch: TorchGain | None
    derivations: tuple[Derivation, ...] = ()
    notes: tuple[str, ...] = ()
    kinks: tuple[float, ...] = ()
    derivative_check: Check | None = None
    fixed_points_decided: bool = True
    budget: float = OPERATION_SECONDS

    @property
    def zero_at_origin(self) -> bool:
        """:math:`f(0) = 0`."""
        return self.f0 == 0

    @property
    def unit_slope(self) -> bool:
        """:math:`f'(0) = 1` (both one-sided derivatives)."""
        return self.slope_left == 1 and self.slope_right == 1

    @property
    def status(self) -> Status:
        """The weakest status of the derivation's steps."""
        return combine([d.status for d in self.derivations])


_PIECEWISE = (sp.Max, sp.Min, sp.Abs, sp.Heaviside, sp.sign, sp.Piecewise)
_GRID = np.concatenate([np.linspace(-10.0, 10.0, 201), [-0.3, -1e-3, 1e-3, 0.7]])


def numpy_function(expr: sp.Expr) -> Callable[[np.ndarray], np.ndarray]:
    """NumPy form of ``expr`` in ``x`` (``sympy.lambdify`` with SciPy's special functions).

    Always returns an array of the input's shape (a constant becomes a full array).
    """
    fn = sp.lambdify(x, expr, modules=["scipy", "numpy"])

    def f(a: np.ndarray) -> np.ndarray:
        a = np.asarray(a)
        with np.errstate(all="ignore"):
            out = np.asarray(fn(a), dtype=np.result_type(a.dtype, np.float64))
        return np.broadcast_to(out, a.shape).astype(a.dtype, copy=False)

    return f


def _real_values(f: sp.Expr, points: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        values = np.asarray(sp.lambdify(x, f, modules=["scipy", "numpy"])(points), dtype=complex)
    return np.broadcast_to(values, points.shape)


def _check_real(
    f: sp.Expr,
    text: str,
    argument: str,
    extra: Sequence[float] = (),
    budget: Budget | None = None,
    *,
    infinite: bool = True,
) -> None:
    """``f`` is real (and, with ``infinite``, finite) on a grid of [-10, 10] and at ``extra``."""
    points = np.concatenate([_GRID, np.asarray(list(extra), dtype=float)])
    ok, values, why = (budget or Budget()).attempt(
        "evaluating f on a grid", lambda: _real_values(f, points)
    )
    if not ok:
        raise InputError(
            f"`{argument}`: cannot evaluate f(x) = {f} ({why}); got {argument}={text!r}."
        )
    with np.errstate(all="ignore"):
        bad = np.isnan(values) | (np.abs(values.imag) > 1e-12 * (1 + np.abs(values.real)))
        bad &= ~(np.isinf(values.real) & (values.imag == 0))
        if infinite:
            bad |= ~np.isfinite(values)
    if bad.any():
        at = float(points[np.argmax(bad)])
        raise InputError(
            f"`{argument}`: f(x) = {f} is not real and finite (in double precision) on the "
            f"real line (at x = {at:g} it is {complex(values[np.argmax(bad)])}); got "
            f"{argument}={text!r}. Give an activation that is real and finite for every real x."
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


def _of_q(g: sp.Expr, budget: Budget) -> sp.Expr | None:
    """:math:`\\mathbb{E}[g(x)]` as a closed form in ``q``, or ``None`` (budgeted)."""
    if not _try_exact(g):
        return None
    from ._gaussian import _Q, _exact

    ok, value, _ = budget.attempt("sympy.integrate in q", lambda: _exact(g, x))
    return value.subs(_Q, q) if ok and value is not None else None


def _local_piece(f: sp.Expr) -> sp.Expr | None:
    """The smooth expression ``f`` equals near 0 when no kink lies at 0 (``None`` on a tie).

    Each ``Max``/``Min`` is replaced by its argument that wins at 0, ``Abs`` and ``sign``
    by the sign of their argument at 0, ``Heaviside`` by its value, and ``Piecewise`` by
    the first piece whose condition holds at 0; a tie at 0 gives ``None``.
    """

    def at0(e: sp.Expr) -> float:
        return float(sp.N(e.subs(x, 0), 30))

    def local(e: sp.Basic) -> sp.Basic:
        if not (isinstance(e, sp.Basic) and e.has(*_PIECEWISE)):
            return e
        if isinstance(e, sp.Max | sp.Min):
            args = [local(a) for a in e.args]
            values = [at0(a) for a in args]
            best = max(values) if isinstance(e, sp.Max) else min(values)
            if values.count(best) > 1:
                raise ValueError("tie at 0")
            return args[values.index(best)]
        if isinstance(e, sp.Abs | sp.sign | sp.Heaviside):
            inner = local(e.args[0])
            v = at0(inner)
            if v == 0:
                raise ValueError("kink at 0")
            s = 1 if v > 0 else -1
            if isinstance(e, sp.Abs):
                return s * inner
            return sp.Integer(s) if isinstance(e, sp.sign) else sp.Integer((s + 1) // 2)
        if isinstance(e, sp.Piecewise):
            for piece, cond in e.args:
                if cond is sp.true:
                    return local(piece)
                lhs = local(cond.lhs - cond.rhs)
                v = at0(lhs)
                if v == 0:
                    raise ValueError("kink at 0")
                if bool(cond.func(v, 0)):
                    return local(piece)
            raise ValueError("no piece holds at 0")
        return e.func(*[local(a) for a in e.args])

    try:
        return local(f)
    except (ValueError, TypeError, AttributeError):
        return None


def _taylor_branches(f: sp.Expr, order: int, at_kink: bool) -> tuple[tuple[str, sp.Expr], ...]:
    if not at_kink:
        smooth = _local_piece(f) if f.has(*_PIECEWISE) else f
        if smooth is None:
            return ()
        return (("x", sp.series(smooth, x, 0, order)),)

    out = []
    for label, side in (("x > 0", 1), ("x < 0", -1)):
        p = sp.Symbol("p", positive=True)
        piece = sp.piecewise_fold(f.subs(x, side * p))
        if piece.has(*_PIECEWISE):
            return ()
        series = sp.series(piece, p, 0, order).removeO()
        out.append((label, sp.expand(series.subs(p, side * x)) + sp.O(x**order)))
    return tuple(out)


def _one_sided_slope(f: sp.Expr, f0: sp.Expr, side: int, budget: Budget) -> sp.Expr:
    r""":math:`\lim_{h \to 0^+} \pm(f(\pm h) - f(0))/h` by ``sp.limit``, else numerically.

    The numeric fallback is the difference quotient at :math:`h = 10^{-15}` in
    50-digit arithmetic (error :math:`O(h)`), returned as a ``Float``.
    """
    h = sp.Symbol("h", positive=True)
    quotient = side * (f.subs(x, side * h) - f0) / h
    ok, value, _ = budget.attempt("sympy.limit", lambda: sp.limit(quotient, h, 0))
    if ok and value.is_number and value.is_finite:
        return value
    fn = sp.lambdify(x, f, modules="mpmath")
    with mpmath.workdps(50):
        hh = mpmath.mpf(10) ** -15
        v = side * (fn(side * hh) - fn(mpmath.mpf(0))) / hh
    return sp.Float(float(mpmath.re(v)), 15)


def _homogeneous(f: sp.Expr, budget: Budget) -> tuple[sp.Expr, sp.Expr] | None:
    """``(a, b)`` with :math:`f(p) = a p`, :math:`f(-p) = -b p` for every :math:`p > 0`.

    A numeric screen at six points, then ``simplify`` (budgeted) on each side; ``None``
    when either fails (the conservative answer: no exactness is claimed from it).
    """
    fn = sp.lambdify(x, f, modules="mpmath")
    with mpmath.workdps(30):
        for side in (1, -1):
            ratios = [
                fn(side * mpmath.mpf(p)) / mpmath.mpf(p)
                for p in ("0.1", "0.5", "1", "3", "10", "37")
            ]
            if any(abs(r - ratios[0]) > mpmath.mpf(10) ** -20 for r in ratios):
                return None
    p = sp.Symbol("p", positive=True)
    ok, ab, _ = budget.attempt(
        "simplify (homogeneity)",
        lambda: (sp.simplify(f.subs(x, p) / p), sp.simplify(-f.subs(x, -p) / p)),
    )
    if not ok or ab[0].free_symbols or ab[1].free_symbols:
        return None
    return ab


def _odd(f: sp.Expr, budget: Budget) -> bool:
    """:math:`f(-x) = -f(x)`: a numeric screen, then ``simplify`` (budgeted)."""
    fn = sp.lambdify(x, f, modules="mpmath")
    with mpmath.workdps(30):
        for t in ("0.3", "1.7", "4.1"):
            if abs(fn(mpmath.mpf(t)) + fn(-mpmath.mpf(t))) > mpmath.mpf(10) ** -20:
                return False
    ok, value, _ = budget.attempt("simplify (oddness)", lambda: sp.simplify(f.subs(x, -x) + f))
    return bool(ok and value == 0)


def torch_gain(f: sp.Expr) -> TorchGain | None:
    """PyTorch's ``calculate_gain`` entry matching ``f``, compared on a grid of points.

    The entries (``torch/nn/init.py``, ``calculate_gain``): ``linear``/``identity`` 1,
    ``sigmoid`` 1, ``tanh`` 5/3, ``relu`` :math:`\\sqrt 2`, ``leaky_relu``
    :math:`\\sqrt{2/(1 + \\mathrm{slope}^2)}` (slope 0.01 when not given), ``selu`` 3/4
    ("found empirically", pytorch PR #50664). Torch draws weights with std ``gain /
    sqrt(fan)``, i.e. :math:`n\\gamma = g^2`. Torch has no entry for gelu, silu, elu,
    mish, hardtanh or softsign.
    """
    slope = sp.Symbol("slope", positive=True)
    leaky = sp.Max(0, x) + slope * sp.Min(0, x)
    table = [(e.torch_gain, e.expression, e.gain, None) for e in TABLE if e.torch_gain]
    table += [
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
    q_max: float = math.inf,
) -> tuple[tuple[float, float, float], ...]:
    """Positive roots of :math:`F(q) - q` on :math:`[10^{-3}, 10^{3}]`, by bracketing.

    Each as ``(q*, F'(q*), chi)``, the fields of :class:`~derivations._meanfield.FixedPoint`.

    Variances at which the moment cannot be computed (or is not known to converge,
    beyond ``q_max``) are skipped.
    """

    def F(v: float) -> float:
        return gain * f2_moment(v)[0]

    grid = np.logspace(-3, 3, 31)
    grid[15] = 1.0
    grid = grid[grid < q_max]
    values: list[float] = []
    for v in grid:
        try:
            values.append(F(v) - v)
        except ValueError:
            values.append(math.nan)
    roots: list[float] = []
    for k, v in enumerate(grid):
        if not math.isfinite(values[k]):
            continue
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
        out.append((r, slope, gain * d2_moment(r)[0]))
    return tuple(out)


# --------------------------------------------------------------------------- derivation steps


def _undecided_step(start: sp.Expr, after: sp.Expr, rule: str, why: str, reason: str) -> Step:
    return Step(start, after, rule, why, (Check("budget", Status.UNDECIDED, reason),))


def _chain(
    name: str,
    start: sp.Expr,
    steps: Sequence[tuple[sp.Expr, str, str, tuple[Check, ...]]],
    budget: Budget,
) -> Derivation:
    """A derivation whose steps :class:`~derivations._check.Chain` checks, each budgeted.

    A step whose check runs out of time (or fails) is recorded ``undecided`` with the
    reason, and the chain goes on from its ``after``.
    """
    recorded: list[Step] = []
    current = start
    for after, rule, why, extra in steps:
        ok, step, reason = budget.attempt(
            f"checking the step '{name}: {rule}'",
            lambda current=current, after=after, rule=rule, why=why, extra=extra: (
                Chain(name, current).step(after, rule, why, extra=extra).done().steps[0]
            ),
        )
        recorded.append(step if ok else _undecided_step(current, after, rule, why, reason))
        current = after
    return Derivation(name, start, tuple(recorded))


def _moment_step(name: str, g: sp.Expr, m: CheckedMoment, budget: Budget) -> Derivation:
    """:math:`\\int g(z)\\varphi(z)\\,dz = ` value: exact (checked by the kernel) or numeric."""
    start = gaussian_integral(g, x, 1)
    if m.method.startswith("odd f"):
        check = Check(
            "odd integrand",
            Status.COMPUTED,
            "simplify shows f(-x) + f(x) = 0, so f(z) phi(z) is odd; the tail test shows it "
            "integrable, and the integral of an odd integrable function over the real line is 0",
        )
        return Derivation(name, start, (Step(start, m.value, "symmetry", m.method, (check,)),))
    if m.status == "exact":
        return _chain(name, start, [(m.value, "sympy.integrate", "Gaussian integral", ())], budget)
    if m.status == "numeric":
        detail = "; ".join(f"{n} {v:.17g} (estimate {e:.2g})" for n, v, e in m.estimates)
        check = Check(
            "two quadratures",
            Status.TESTED,
            f"{detail}: they agree to {m.agreement:.2g}; the value holds to within "
            f"{m.error:.2g} (an estimate both methods support, not a bound)",
        )
        return Derivation(name, start, (Step(start, m.value, "quadrature", m.method, (check,)),))
    check = Check("two quadratures", Status.UNDECIDED, m.reason)
    after = sp.Symbol("undecided")
    return Derivation(name, start, (Step(start, after, "quadrature", m.method, (check,)),))


def _derivative_check(f: sp.Expr, fp: sp.Expr, kinks: tuple[float, ...]) -> Check:
    """:math:`f'` as the simulation will evaluate it (NumPy), against finite differences.

    At 40 points of [-6, 6] (none within :math:`10^{-3}` of a kink), NumPy's ``f'``
    against ``mpmath.diff`` of an mpmath form of ``f`` (30 digits), and NumPy's ``f``
    against mpmath's. A mismatch beyond :math:`10^{-6}` (relative) refutes.
    """
    pts = [*np.linspace(-6.0, 6.0, 37).tolist(), -0.73, -0.011, 0.013, 0.37, 2.9]
    pts = [t for t in pts if all(abs(t - k) > 1e-3 for k in kinks)]
    fast_f, fast_fp = numpy_function(f), numpy_function(fp)
    precise = sp.lambdify(x, f, modules="mpmath")
    arr = np.asarray(pts, dtype=float)
    ours_f, ours_fp = fast_f(arr), fast_fp(arr)
    worst = 0.0
    with mpmath.workdps(30):
        for t, vf, vd in zip(pts, ours_f, ours_fp, strict=True):
            ref_f = float(mpmath.re(precise(mpmath.mpf(t))))
            ref_d = float(mpmath.re(mpmath.diff(precise, mpmath.mpf(t))))
            for ours, ref, what in ((vd, ref_d, "f'"), (vf, ref_f, "f")):
                if not (math.isfinite(ours) and math.isfinite(ref)):
                    if math.isfinite(ours) != math.isfinite(ref) and abs(ref) < 1e300:
                        return Check(
                            "finite differences",
                            Status.REFUTED,
                            f"{what}({t:g}) is {ours!r} in the simulation but {ref!r} by mpmath",
                            {"x": f"{t:g}"},
                        )
                    continue
                gap = abs(ours - ref) / (1 + abs(ref))
                source = "finite differences of f" if what == "f'" else "f"
                worst = max(worst, gap)
                if gap > 1e-6:
                    return Check(
                        "finite differences",
                        Status.REFUTED,
                        f"the simulation's {what}({t:g}) = {ours:.12g}, but mpmath gives "
                        f"{ref:.12g} ({source}, "
                        "30 digits)",
                        {"x": f"{t:g}"},
                    )
    return Check(
        "finite differences",
        Status.TESTED,
        f"the simulation's NumPy f and f' agree with mpmath (f, and mpmath.diff of f: finite "
        f"differences, 30 digits) at {len(pts)} points of [-6, 6] away from kinks, to "
        f"{worst:.1e} (relative)",
    )


#: What each check of the recorded derivation says, where it is prose.
_KINK_DIFF = (
    "SymPy differentiated f; at its kinks (x = {shown}) f has one-sided derivatives only, "
    "and the value given there is a convention"
)
_CONTINUITY = (
    "f is continuous at every kink (no jump at 10^-10 on either side), so the Dirac terms "
    "vanish as distributions; the simulation uses f' off the kinks"
)
#: The Gaussian moments recorded: key of the analysis, label, integrand of ``(f, f')``.
_MOMENTS = (
    ("mean", "E[f(z)]", lambda f, fp: f),
    ("m2", "E[f(z)^2]", lambda f, fp: f**2),
    ("d2", "E[f'(z)^2]", lambda f, fp: fp**2),
)
#: The preserving gains recorded: key of the analysis, key of its moment, label.
_GAINS = (
    ("forward_gain", "m2", "forward-preserving gain n*gamma = 1/E[f(z)^2]"),
    ("backward_gain", "d2", "backward-preserving gain n*gamma = 1/E[f'(z)^2]"),
)


def _derivative_derivation(a: dict, budget: Budget) -> Derivation:
    """``f'`` by ``sp.diff``, off the kinks when ``f`` has any; Dirac terms dropped."""
    f, fp, raw = a["f"], a["derivative"], a["raw_derivative"]
    if a["kinks"]:
        # f has no derivative at its kinks; SymPy's value there is a convention, so the
        # step holds off the kinks: computed by SymPy, tested by finite differences there
        shown = ", ".join(f"{k:.6g}" for k in a["kinks"][:6])
        computed = Check("sympy.diff", Status.COMPUTED, _KINK_DIFF.format(shown=shown))
        start = sp.Derivative(f, x)
        checks = (computed, a["derivative_check"])
        step = Step(start, raw, "sympy.diff", "derivative of f off its kinks", checks)
        deriv = Derivation("f'(x)", start, (step,))
    else:
        steps = [(raw, "sympy.diff", "derivative of f", (a["derivative_check"],))]
        deriv = _chain("f'(x)", sp.Derivative(f, x), steps, budget)
    if raw == fp:
        return deriv
    continuity = Check("continuity at kinks", Status.TESTED, _CONTINUITY)
    drop = Step(raw, fp, "drop Dirac terms", "f' almost everywhere", (continuity,))
    return Derivation(deriv.name, deriv.start, (*deriv.steps, drop))


def _origin_derivations(a: dict, budget: Budget) -> list[Derivation]:
    """``f(0)``, and the slope at 0: one-sided at a kink, ``f'(0)`` otherwise.

    A slope found only as a numeric difference quotient (a ``Float``) is shown, not
    recorded as a derivation.
    """
    f = a["f"]
    out = [_chain("f(0)", sp.Subs(f, x, 0), [(a["f0"], "evaluate", "f at 0", ())], budget)]
    h = sp.Symbol("h", positive=True)
    if not a["kink_at_0"]:
        if isinstance(a["slope_right"], sp.Float):
            return out
        start = sp.Subs(sp.Derivative(f, x), x, 0)
        steps = [(a["slope_right"], "sympy.diff", "derivative at 0", ())]
        return [*out, _chain("f'(0)", start, steps, budget)]
    for direction, key in (("+", "slope_right"), ("-", "slope_left")):
        value = a[key]
        if isinstance(value, sp.Float):
            continue
        limit = sp.Limit((f.subs(x, h) - a["f0"]) / h, h, 0, direction)
        if direction == "-":
            limit = sp.Limit((f.subs(x, -h) - a["f0"]) / (-h), h, 0, "+")
        steps = [(value, "sympy.limit", "", ())]
        out.append(_chain(f"slope at 0{direction}", limit, steps, budget))
    return out


def _local_taylor(a: dict, series: sp.Expr, budget: Budget) -> Derivation:
    """Taylor at 0 of a piecewise ``f`` with no kink at 0: first the piece that holds there.

    That ``f`` equals the piece is tested at 6 points between the nearest kinks.
    """
    f = a["f"]
    local = _local_piece(f)
    near = min((abs(k) for k in a["kinks"]), default=1.0)
    pts = [near * t for t in (-0.9, -0.5, -0.1, 0.1, 0.5, 0.9)]
    fn, ln = sp.lambdify(x, f, "mpmath"), sp.lambdify(x, local, "mpmath")
    with mpmath.workdps(30):
        same = all(abs(fn(mpmath.mpf(t)) - ln(mpmath.mpf(t))) < 1e-25 for t in pts)
    detail = f"f equals {sp.sstr(local)} at 6 points of (-{near:.6g}, {near:.6g})"
    check = Check("points", Status.TESTED if same else Status.REFUTED, detail)
    why = f"no kink in (-{near:.6g}, {near:.6g})"
    piece = Step(f, local, "the piece that holds near 0", why, (check,))
    rest = _chain("Taylor at 0", local, [(series, "sympy.series", "", ())], budget)
    return Derivation("Taylor at 0", f, (piece, *rest.steps))


def _taylor_derivations(a: dict, budget: Budget) -> list[Derivation]:
    """Taylor at 0: one series, or one per side of a kink at 0 (``x = +-p``, ``p > 0``)."""
    f, out = a["f"], []
    for label, series in a["taylor"]:
        if label == "x" and f.has(*_PIECEWISE):
            out.append(_local_taylor(a, series, budget))
        elif label == "x":
            steps = [(series, "sympy.series", "Taylor series at 0", ())]
            out.append(_chain("Taylor at 0", f, steps, budget))
        else:
            side = sp.Symbol("p", positive=True)
            sign = 1 if label == "x > 0" else -1
            piece = sp.piecewise_fold(f.subs(x, sign * side))
            branch = series.removeO().subs(x, sign * side) + sp.O(side**6)
            name = f"Taylor at 0 on {label} (x = {'' if sign > 0 else '-'}p, p > 0)"
            steps = [(branch, "sympy.series (one-sided)", "", ())]
            out.append(_chain(name, piece, steps, budget))
    return out


def _gain_derivation(
    label: str, gain: sp.Expr, m: CheckedMoment, used: Derivation, budget: Budget
) -> Derivation:
    r"""``1/E[...] = gain``: solved from the exact moment ``used``, or from the numeric one."""
    integral = used.start
    if m.status != "exact":
        detail = f"1/{float(m.value):.17g} from the numeric moment (error {m.error:.2g})"
        check = Check("uses", Status.TESTED, detail)
        step = Step(1 / integral, gain, "uses " + used.name, "", (check,))
        return Derivation(label, 1 / integral, (step,))
    ok, d, why = budget.attempt(
        f"checking '{label}'",
        lambda: (
            Chain(label, 1 / integral)
            .use(used.name, used, lhs=integral)
            .step(gain, "sympy.solve", f"n*gamma*{sp.sstr(m.value)} = 1")
            .done()
        ),
    )
    if ok:
        return d
    undecided = _undecided_step(1 / integral, gain, "sympy.solve", "", why)
    return Derivation(label, 1 / integral, (undecided,))


def _derivations(a: dict, budget: Budget) -> tuple[Derivation, ...]:
    """The analysis as checked steps: f', f(0), the slope, Taylor, moments, gains, q*."""
    out = [_derivative_derivation(a, budget)]
    out += _origin_derivations(a, budget)
    out += _taylor_derivations(a, budget)
    moments = {}
    for key, label, integrand in _MOMENTS:
        g = integrand(a["f"], a["derivative"])
        moments[key] = _moment_step(label, g, a[key], budget)
        out.append(moments[key])
    for key, moment, label in _GAINS:
        gain, m = a[key], a[moment]
        if gain is not None and m.value is not None:
            out.append(_gain_derivation(label, gain, m, moments[moment], budget))
    if a.get("fixed_point_derivation") is not None:
        out.append(a["fixed_point_derivation"])
    return tuple(out)


def _fixed_point_derivation(a: dict, budget: Budget) -> Derivation | None:
    """:math:`F(q^*) = q^*` for the first fixed point (exact when possible)."""
    gain, m2q = a["gain"], a["m2_of_q"]
    if gain is None:
        return None
    exact_gain = not sp.sympify(gain).has(sp.Float)
    if a["every_q_fixed"] and (m2q is None or not exact_gain):
        hom = a["homogeneous"]
        factor = float(gain) * float((hom[0] ** 2 + hom[1] ** 2) / 2) if hom else math.nan
        start = gain * gaussian_integral(a["f"] ** 2, x, q)
        check = Check(
            "homogeneity",
            Status.TESTED if abs(factor - 1) < 1e-12 else Status.UNDECIDED,
            f"f(x) = a x (x > 0), b x (x < 0) with (a, b) = {hom}, so E[f(x)^2] = "
            f"(a^2 + b^2)/2 q and F(q) = {factor:.17g} q (the gain is numeric)",
        )
        return Derivation(
            "variance map F(q) = n*gamma*E[f(x)^2], x ~ N(0, q)",
            start,
            (Step(start, q, "homogeneity", "every q is fixed", (check,)),),
        )
    if a["every_q_fixed"] and m2q is not None:
        return _chain(
            "variance map F(q) = n*gamma*E[f(x)^2], x ~ N(0, q)",
            gain * gaussian_integral(a["f"] ** 2, x, q),
            [
                (gain * m2q, "sympy.integrate", "Gaussian integral in q", ()),
                (q, "simplify", "every q is fixed", ()),
            ],
            budget,
        )
    points = a["fixed_points"]
    if not points:
        return None
    p = points[0]
    f2 = a["f2_map"]
    try:
        value, err = f2(p.q)
    except ValueError:
        return None
    residual = abs(float(gain) * value - p.q)
    ok = residual <= max(1e-9 * p.q, 10 * float(gain) * err)
    start = gain * gaussian_integral(a["f"] ** 2, x, sp.Float(p.q, 17))
    check = Check(
        "quadrature",
        Status.TESTED if ok else Status.UNDECIDED,
        f"F(q*) - q* = {float(gain) * value - p.q:.2g} at "
        f"q* = {p.q:.12g} (QUADPACK, estimate {err:.2g}); the root was bracketed by brentq",
    )
    return Derivation(
        "fixed point F(q*) = q*",
        start,
        (Step(start, sp.Float(p.q, 17), "brentq", "root of F(q) - q", (check,)),),
    )


def _moment_at(
    g: sp.Expr, qv: float, budget: Budget, growth_of, exact: bool = True
) -> CheckedMoment:
    exact = exact and _try_exact(g)
    return checked_moment(g, x, qv, exact=exact, budget=budget, growth_of=growth_of)


#: Refusals of an activation the moments cannot hold, as templates (``str.format``).
_UNBOUNDED = (
    "`{argument}`: f(x) = {f} is not real and finite on the whole real line: it is unbounded "
    "(or not real) next to x = {at:.10g}, so E[f'(z)^2] is infinite there (an f unbounded "
    "near a point has an infinite integral of f'^2 near it, by Cauchy-Schwarz): no gain "
    "preserves the backward second moment. Give an activation that is finite on the whole "
    "real line; got {argument}={text!r}."
)
_JUMP = (
    "`{argument}`: f(x) = {f} jumps by {jump:.6g} at x = {at:.10g}, so its derivative has a "
    "Dirac delta there and E[f'(z)^2] is infinite: no gain preserves the backward second "
    "moment, and backpropagation sees only the derivative off the jump. initproof analyses "
    "continuous activations; smooth the step (e.g. sigmoid(10*x) instead of Heaviside(x)); "
    "got {argument}={text!r}."
)
_DIVERGENT = (
    "`{argument}`: {name} {at_one}: {how}, and the Gaussian density decays like "
    "exp(-x^2/(2q)), so the moment is infinite for q >= {q_max:.6g}. At finite width the "
    "pre-activation variance is itself random and unbounded, so a layer's second moment is "
    "infinite at every width: initproof does not analyse activations that grow as fast as a "
    "Gaussian decays; got {argument}={text!r}."
)


def _refuse_singularities(
    f: sp.Expr, kinks: tuple[float, ...], text: str, argument: str, budget: Budget
) -> None:
    """Refuse an ``f`` that is unbounded or jumps at a special point (with the reason)."""
    ok, sing, _ = budget.attempt(
        "the test of f at its kinks and poles", lambda: singularities(f, x, kinks)
    )
    if not ok:
        return
    for s in sing:
        if s.unbounded:
            raise InputError(_UNBOUNDED.format(argument=argument, f=f, at=s.at, text=text))
    for s in sing:
        try:
            scale = 1 + abs(float(f.subs(x, s.at).evalf(20)))
        except (TypeError, ValueError):
            scale = 1.0
        if s.jump > 1e-6 * scale:
            raise InputError(_JUMP.format(argument=argument, f=f, jump=s.jump, at=s.at, text=text))


def _refuse_divergent(name: str, g: sp.Expr, grow, text: str, argument: str) -> None:
    if grow is not None and grow.diverges_at_q_max and math.isfinite(grow.q_max):
        label = name[2:-1].replace("(z)", "(x)")
        how = grow.how.replace("log|g(x)|", f"log|{label}|").replace("g grows", f"{label} grows")
        at_one = (
            "diverges at q = 1"
            if grow.q_max <= 1
            else "is finite only for q < " + f"{grow.q_max:.6g}"
        )
        raise InputError(
            _DIVERGENT.format(
                argument=argument, name=name, at_one=at_one, how=how, q_max=grow.q_max, text=text
            )
        )


def _budget_of(budget: object) -> Budget:
    """The :class:`Budget` of ``--budget`` seconds per operation: finite and positive."""
    if not (isinstance(budget, int | float) and math.isfinite(budget) and budget > 0):
        raise InputError(f"`--budget` must be a positive number of seconds; got {budget!r}.")
    return Budget(float(budget))


def _noted(
    b: Budget, notes: list[str], what: str, fn: Callable[[], object], fallback: object, note: str
) -> object:
    """``fn()`` under the budget; on failure ``fallback``, and ``note`` + the reason noted."""
    ok, value, why = b.attempt(what, fn)
    if not ok:
        notes.append(note + why)
        return fallback
    return value


def _vetted_activation(
    text: str, argument: str, b: Budget, notes: list[str]
) -> tuple[sp.Expr, tuple[float, ...]]:
    """``f`` parsed, real and finite on the real line and its kinks, without jumps or poles."""
    f = parse_expression(
        text, argument=argument, symbols=ACTIVATION_SYMBOLS, budget=b, exact_decimals=True
    )
    if not f.has(x):
        raise InputError(f"`{argument}` must depend on x; got {argument}={text!r}.")
    _check_real(f, text, argument, budget=b, infinite=False)
    kinks = _noted(b, notes, "the search for kinks and poles", lambda: special_points(f, x), (), "")
    _refuse_singularities(f, kinks, text, argument, b)
    near = [k + d for k in kinks for d in (-1e-6, 1e-6)]
    mids = [(u + v) / 2 for u, v in itertools.pairwise(kinks)]
    _check_real(f, text, argument, extra=[*near, *mids], budget=b)
    return f, kinks


def _checked_derivative(
    f: sp.Expr, kinks: tuple[float, ...], argument: str, b: Budget
) -> tuple[sp.Expr, sp.Expr, Check]:
    """``(sp.diff(f), f' without Dirac terms, its finite-difference check)``.

    Refuses an ``f`` SymPy cannot differentiate, and an ``f'`` that finite differences
    do not confirm: the simulation never runs with an unchecked derivative.
    """
    ok, raw, why = b.attempt("sympy.diff", lambda: sp.diff(f, x))
    if not ok:
        raise InputError(f"`{argument}`: cannot differentiate f(x) = {f} ({why}).")
    fp = raw.replace(lambda e: isinstance(e, sp.DiracDelta), lambda e: sp.Integer(0))
    if fp.has(sp.Derivative, sp.Subs):
        raise InputError(f"`{argument}`: SymPy leaves the derivative of f(x) = {f} unevaluated.")
    ok, dcheck, why = b.attempt(
        "the finite-difference check of f'", lambda: _derivative_check(f, fp, kinks)
    )
    if not ok:
        raise InputError(
            f"`{argument}`: the derivative f'(x) = {fp} could not be cross-checked by finite "
            f"differences ({why}); no simulation is run with an unchecked derivative."
        )
    if dcheck.status is Status.REFUTED:
        raise InputError(
            f"`{argument}`: the derivative the simulation would use, f'(x) = {fp}, disagrees "
            f"with finite differences: {dcheck.detail}. This is a fault in initproof, not in "
            "your input; nothing was simulated."
        )
    return raw, fp, dcheck


def _tail_growths(
    f: sp.Expr, fp: sp.Expr, text: str, argument: str, b: Budget, notes: list[str]
) -> dict[str, object]:
    """The tail growth of ``f``, ``f^2`` and ``f'^2`` (``None`` when not found in time).

    Refuses an ``f`` whose second moment, or its derivative's, diverges.
    """
    growths = {}
    for key, g in (("f", f), ("f^2", f**2), ("f'^2", fp**2)):
        growths[key] = _noted(
            b, notes, f"the tail test of {key}", lambda g=g: growth(g, x), None, ""
        )
    _refuse_divergent("E[f(z)^2]", f**2, growths["f^2"], text, argument)
    _refuse_divergent("E[f'(z)^2]", fp**2, growths["f'^2"], text, argument)
    return growths


def _gaussian_moments(
    f: sp.Expr, fp: sp.Expr, growths: dict, argument: str, b: Budget, notes: list[str]
) -> tuple[bool, CheckedMoment, CheckedMoment, CheckedMoment]:
    r"""``(odd, E[f(z)], E[f(z)^2], E[f'(z)^2])`` at :math:`q = 1`.

    Refuses a divergent moment and a second moment that is 0; notes undecided ones.
    """
    ok, odd, _ = b.attempt("the test of oddness", lambda: _odd(f, b))
    odd = bool(ok and odd)
    m2 = _moment_at(f**2, 1.0, b, growths["f^2"])
    d2 = _moment_at(fp**2, 1.0, b, growths["f'^2"])
    if odd:
        mean = CheckedMoment(
            integrand=f,
            q=1.0,
            status="exact",
            value=sp.Integer(0),
            error=0.0,
            method="odd f: E[f(z)] = 0 by symmetry",
        )
    else:
        mean = _moment_at(f, 1.0, b, growths["f"])
    for name, m in (("E[f(z)]", mean), ("E[f(z)^2]", m2), ("E[f'(z)^2]", d2)):
        if m.status == "divergent":
            raise InputError(f"`{argument}`: {name} diverges for f(x) = {f}: {m.reason}.")
        if m.status == "undecided":
            notes.append(f"{name} is undecided: {m.reason}")
    for name, m in (("E[f(z)^2]", m2), ("E[f'(z)^2]", d2)):
        if m.decided and not float(m) > 0:
            raise InputError(
                f"`{argument}`: {name} = {m.value} for f(x) = {f}; no gain preserves a second "
                "moment that is 0."
            )
    return odd, mean, m2, d2


def _preserving_gain(m: CheckedMoment, what: str, b: Budget) -> sp.Expr | None:
    r""":math:`1/m`, simplified when ``m`` is exact; ``None`` when ``m`` is undecided."""
    gain = 1 / m.value if m.decided else None
    if gain is not None and m.exact:
        ok, simple, _ = b.attempt(f"simplify ({what} gain)", lambda: sp.simplify(gain))
        gain = simple if ok else gain
    return gain


def _gain_parts(parts: dict, gain: str | None, b: Budget) -> dict:
    """The preserving gains, and the gain the fixed points use (given, or the forward one)."""
    forward = _preserving_gain(parts["m2"], "forward", b)
    backward = _preserving_gain(parts["d2"], "backward", b)
    if gain is None:
        used, source = forward, "forward-preserving"
    else:
        used, source = parse_number(gain, argument="--gain"), "given"
    return {"forward_gain": forward, "backward_gain": backward, "gain": used, "gain_source": source}


def _shape_parts(parts: dict, b: Budget, notes: list[str]) -> dict:
    """:math:`f(0)`, whether a kink lies at 0, the one-sided slopes, the homogeneity."""
    f = parts["f"]
    f0 = f.subs(x, 0)
    slopes = [
        _noted(b, notes, "the slope at 0", lambda s=side: _one_sided_slope(f, f0, s, b), sp.nan, "")
        for side in (1, -1)
    ]
    ok, homogeneous, _ = b.attempt("the test of homogeneity", lambda: _homogeneous(f, b))
    return {
        "f0": f0,
        "kink_at_0": any(abs(k) < 1e-12 for k in parts["kinks"]),
        "slope_right": slopes[0],
        "slope_left": slopes[1],
        "homogeneous": homogeneous if ok else None,
    }


def _fixed_point_parts(parts: dict, b: Budget, notes: list[str]) -> dict:
    """The fixed points of the variance map at the gain used (every ``q`` when homogeneous).

    A homogeneous ``f`` at its preserving gain fixes every ``q`` (the record holds
    ``q = 1``); otherwise the positive roots are bracketed where the moments converge.
    """
    f2, d2f = quadrature_map(parts["f"] ** 2, x), quadrature_map(parts["derivative"] ** 2, x)
    out = {"f2_map": f2, "every_q_fixed": False, "fixed_points": (), "fixed_points_decided": True}
    used, homogeneous, growths = parts["gain"], parts["homogeneous"], parts["growths"]
    if used is None:
        notes.append("no gain, so no fixed points: E[f(z)^2] is undecided")
        return {**out, "fixed_points_decided": False}
    g = float(used)
    if homogeneous is not None:
        a_, b_ = homogeneous
        c = sp.simplify(used * (a_**2 + b_**2) / 2)
        if not (c == 1 or abs(float(c) - 1) < 1e-12):
            return out
        ok, chi, _ = b.attempt("E[f'(z)^2] at q* = 1", lambda: g * d2f(1.0)[0])
        return {
            **out,
            "every_q_fixed": True,
            "fixed_points": (_fixed_point(1.0, 1.0, chi if ok else math.nan),),
        }
    q_max = min(
        growths["f^2"].q_max if growths["f^2"] else math.inf,
        growths["f'^2"].q_max if growths["f'^2"] else math.inf,
    )
    ok, found, why = b.attempt(
        "the search for fixed points", lambda: _fixed_points(f2, d2f, g, q_max)
    )
    if not ok:
        notes.append(f"fixed points undecided: {why}")
    points = tuple(_fixed_point(*p) for p in found) if ok else ()
    return {**out, "fixed_points": points, "fixed_points_decided": ok}


def _m2_table(
    f: sp.Expr, m2: CheckedMoment, grow: object, exact: bool, b: Budget
) -> tuple[tuple[float, float | None, float], ...]:
    r"""``(q, E[f(x)^2], error)`` for :math:`x \sim N(0, q)` at a few variances."""
    table = []
    for v in (0.25, 0.5, 1.0, 2.0, 4.0):
        m = m2 if v == 1.0 else _moment_at(f**2, v, b, grow, exact=exact)
        table.append((v, float(m) if m.decided else None, m.error if m.decided else math.inf))
    return tuple(table)


def _expansion_parts(parts: dict, b: Budget, notes: list[str]) -> dict:
    """The small-``q`` series, the moments in ``q``, their table, Taylor, torch's entry."""
    f, fp = parts["f"], parts["derivative"]
    series = _noted(
        b, notes, "the small-q series", lambda: gaussian_square_series(f, x, q, 3).value, None,
        "no small-q series: ",
    )  # fmt: skip
    m2_of_q = _of_q(f**2, b)
    d2_of_q = _of_q(fp**2, b)
    table = _m2_table(f, parts["m2"], parts["growths"]["f^2"], m2_of_q is not None, b)
    taylor = _noted(
        b, notes, "sympy.series", lambda: _taylor_branches(f, 6, parts["kink_at_0"]), (),
        "no Taylor expansion: ",
    )  # fmt: skip
    torch = _noted(
        b, notes, "the comparison with torch's calculate_gain", lambda: torch_gain(f), None, ""
    )
    return {
        "m2_series": series,
        "m2_of_q": m2_of_q,
        "d2_of_q": d2_of_q,
        "m2_table": table,
        "taylor": taylor,
        "torch": torch,
    }


def _analysis(
    text: str, parts: dict, b: Budget, notes: list[str], budget: float
) -> ActivationAnalysis:
    """The :class:`ActivationAnalysis` of the parts, with the derivation checked step by step."""
    derivations = _derivations(parts, b)
    return ActivationAnalysis(
        text=text,
        f=parts["f"],
        derivative=parts["derivative"],
        taylor=parts["taylor"],
        f0=parts["f0"],
        slope_left=parts["slope_left"],
        slope_right=parts["slope_right"],
        mean=parts["mean"],
        m2=parts["m2"],
        d2=parts["d2"],
        m2_of_q=parts["m2_of_q"],
        d2_of_q=parts["d2_of_q"],
        m2_series=parts["m2_series"],
        m2_table=parts["m2_table"],
        forward_gain=parts["forward_gain"],
        backward_gain=parts["backward_gain"],
        gain=parts["gain"],
        gain_source=parts["gain_source"],
        fixed_points=parts["fixed_points"],
        every_q_fixed=parts["every_q_fixed"],
        zero_fixed=parts["f0"] == 0,
        homogeneous=parts["homogeneous"],
        odd=parts["odd"],
        torch=parts["torch"],
        derivations=derivations,
        notes=tuple(notes),
        kinks=tuple(parts["kinks"]),
        derivative_check=parts["derivative_check"],
        fixed_points_decided=parts["fixed_points_decided"],
        budget=float(budget),
    )


@lru_cache(maxsize=64)
def analyze_activation(
    text: str,
    gain: str | None = None,
    *,
    argument: str = "EXPR",
    budget: float = OPERATION_SECONDS,
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
    budget : float
        Seconds each symbolic or numeric operation may take (``--budget``); one that
        runs out is reported undecided, with a numeric fallback where there is one.

    Raises
    ------
    InputError
        If the text is refused, ``f`` is not real and finite on the real line, jumps,
        is unbounded near a point, a Gaussian moment diverges (``exp(x**2)``; said so,
        with the growth that makes it diverge), :math:`\\mathbb{E}[f^2] = 0`, or the
        derivative the simulation would use disagrees with finite differences.

    Examples
    --------
    >>> a = analyze_activation("Max(0, x)")
    >>> a.m2.value, a.forward_gain, a.torch.squared
    (1/2, 2, 2)
    """
    b = _budget_of(budget)
    notes: list[str] = []
    f, kinks = _vetted_activation(text, argument, b, notes)
    raw, fp, dcheck = _checked_derivative(f, kinks, argument, b)
    growths = _tail_growths(f, fp, text, argument, b, notes)
    odd, mean, m2, d2 = _gaussian_moments(f, fp, growths, argument, b, notes)
    parts = {
        "f": f,
        "kinks": tuple(kinks),
        "raw_derivative": raw,
        "derivative": fp,
        "growths": growths,
    }
    parts |= {"derivative_check": dcheck, "odd": odd, "mean": mean, "m2": m2, "d2": d2}
    parts |= _gain_parts(parts, gain, b)
    parts |= _shape_parts(parts, b, notes)
    parts |= _fixed_point_parts(parts, b, notes)
    parts |= _expansion_parts(parts, b, notes)
    parts["fixed_point_derivation"] = _fixed_point_derivation(parts, b)
    return _analysis(text, parts, b, notes, budget)


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
        try:
            value = float(self.native.subs({n_in: fan_in, n_out: fan_out}))
        except (TypeError, ValueError, OverflowError):
            value = math.nan
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
        exact = self.variance.subs({n_in: fan_in, n_out: fan_out})
        ok, value, _ = Budget().attempt("simplify", lambda: sp.simplify(exact))
        return value if ok else exact


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
    """Solve the law's variance for its native parameter (every SymPy call budgeted)."""
    budget = Budget()
    native, variance = law_variance(dist)
    ok, probe, why = budget.attempt(
        "evaluating it at n_in=7, n_out=5", lambda: sp.N(expr.subs({n_in: 7, n_out: 5}), 20)
    )
    if not ok or not (probe.is_finite and probe.is_positive):
        raise InputError(
            f"`--{kind}` must be finite and > 0 for positive widths; got {kind}={expr} "
            f"(at n_in=7, n_out=5 it is {probe if ok else why})."
        )
    if kind == "var":
        target = sp.Eq(variance, expr)
    elif kind == "std" and dist == "uniform":
        target = sp.Eq(variance, expr**2)
    else:  # the native parameter itself (normal, truncated normal: untruncated std)
        target = sp.Eq(native, expr)
    ok, solutions, why = budget.attempt("sympy.solve", lambda: sp.solve(target, native))
    if not ok or len(solutions) != 1:
        reason = why if not ok else f"{len(solutions)} solutions"
        raise InputError(
            f"`--{kind}`: cannot solve {target} for the {dist} law's parameter ({reason})."
        )
    value = solutions[0]
    ok, simple, _ = budget.attempt("simplify", lambda: sp.simplify(value))
    value = simple if ok else value
    ok, var, _ = budget.attempt("simplify", lambda: sp.simplify(variance.subs(native, value)))
    var = var if ok else variance.subs(native, value)
    name = "bound" if dist == "uniform" else "std"
    return WeightInit(dist, name, value, var, source)


def law_derivation(init: WeightInit, budget: float = OPERATION_SECONDS) -> Derivation | None:
    r"""The weight variance as a checked step: the second moment of the law, integrated.

    Normal: :math:`\int w^2 \varphi_s(w)\,dw` with the std ``s``; uniform:
    :math:`\int_{-a}^{a} w^2\,dw/(2a)` with the bound ``a``; both with the native
    parameter in ``n_in``, ``n_out`` substituted, checked by the kernel (budgeted).
    ``None`` for the truncated normal (its variance comes from the lecture's claim).
    """
    w = sp.Symbol("w", real=True)
    if init.dist == "uniform":
        a = init.native
        start = sp.Integral(w**2 / (2 * a), (w, -a, a))
    elif init.dist == "normal":
        s_ = init.native
        start = sp.Integral(
            w**2 * sp.exp(-(w**2) / (2 * s_**2)) / (s_ * sp.sqrt(2 * sp.pi)), (w, -sp.oo, sp.oo)
        )
    else:
        return None
    return _chain(
        "weight variance gamma = E[w^2]",
        start,
        [(init.variance, "sympy.integrate", f"second moment of the {init.dist} law", ())],
        Budget(budget),
    )


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
    """A derived number: exact at finite width, or from the infinite-width recursion.

    ``value`` is ``nan`` when it could not be derived (``how`` says why); ``error`` is
    the quadrature's error estimate (not a bound).
    """

    value: float
    exact: bool
    how: str
    error: float = 0.0

    @property
    def decided(self) -> bool:
        return math.isfinite(self.value)


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

    ``moment(q)`` returns :math:`G(q)` and its error estimate. Returns the value and the
    outer error estimate plus the largest inner one.
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
    # mass outside [lo, hi] is 2e-15 of a bounded-by-growth integrand: below the estimate
    return total, err + worst[0] + 1e-13 * abs(total)


def _undecided(how: str, why: str) -> Value:
    return Value(math.nan, False, f"undecided ({how}): {why}")


def _at(b: Budget, moment: Callable, v: float, how: str, exact: bool) -> Value:
    """``moment(v)`` under the budget, as a :class:`Value` (undecided when it fails)."""
    ok, r, why = b.attempt(f"quadrature at q = {v:.6g}", lambda: moment(v))
    return Value(r[0], exact, how, r[1]) if ok else _undecided(how, why)


def _mixture(b: Budget, moment: Callable, g: float, n: int) -> Value:
    """The :math:`\\chi^2_n` mixture of ``moment`` at weight variance ``g`` (exact, layer 1)."""
    how = "chi-square mixture (layer 1, normal weights)"
    ok, r, why = b.attempt("the chi-square mixture", lambda: chi2_mixture(moment, g, n))
    return Value(r[0], True, how, r[1]) if ok else _undecided(how, why)


@dataclass(frozen=True)
class _Network:
    """What the layer-by-layer recursions of :func:`propagate` read."""

    a: ActivationAnalysis
    dist: str
    widths: tuple[int, ...]
    gammas: tuple[sp.Expr, ...]
    input_var: float
    b: Budget


def _layer_mean(net: _Network, t: int, p: float, f1: Callable) -> Value:
    """:math:`\\mathbb{E}[h^t]`: 0 by symmetry, the :math:`\\chi^2` mixture, or mean field."""
    hom, g, n = net.a.homogeneous, float(net.gammas[t - 1]), net.widths[t - 1]
    if hom is not None and hom[0] == hom[1]:
        return Value(0.0, True, "linear, symmetric weights")
    if hom is None and net.a.odd:
        return Value(0.0, True, "odd f, symmetric weights")
    if t == 1 and net.dist == "normal":
        return _mixture(net.b, f1, g * net.input_var, n)
    return _at(net.b, f1, p, "infinite-width recursion", False)


def _layer_output(net: _Network, t: int, p: float, prev: Value, f2: Callable) -> Value:
    """:math:`\\mathbb{E}[(h^t)^2]`: homogeneous, the :math:`\\chi^2` mixture, or mean field."""
    hom, g, n = net.a.homogeneous, float(net.gammas[t - 1]), net.widths[t - 1]
    if hom is not None:
        c = float((hom[0] ** 2 + hom[1] ** 2) / 2)
        return Value(c * p, prev.exact, "(a^2 + b^2)/2 E[z^2] (symmetric z)")
    if t == 1 and net.dist == "normal":
        return _mixture(net.b, f2, g * net.input_var, n)
    return _at(net.b, f2, p, "infinite-width recursion E[f(sqrt(P_t) z)^2]", False)


def _forward(net: _Network) -> tuple[list[Value | None], list[Value], list[Value]]:
    """Pre-activation and output second moments, and output means, layer by layer."""
    f = net.a.f
    f2, f1 = quadrature_map(f**2, x), quadrature_map(f, x)
    pre: list[Value | None] = [None]
    out: list[Value] = [Value(float(net.input_var), True, "input N(0, v)")]
    mean: list[Value] = [Value(0.0, True, "input N(0, v)")]
    for t in range(1, len(net.widths)):
        g, n, prev = float(net.gammas[t - 1]), net.widths[t - 1], out[-1]
        p = n * g * prev.value
        pre.append(Value(p, prev.exact, "n_{t-1} gamma_t E[(h^{t-1})^2]", n * g * prev.error))
        if net.a.homogeneous is None and (not math.isfinite(p) or p <= 0):
            out.append(_undecided("infinite-width recursion", "the layer below is undecided"))
            mean.append(_undecided("infinite-width recursion", "the layer below is undecided"))
            continue
        out.append(_layer_output(net, t, p, prev, f2))
        mean.append(_layer_mean(net, t, p, f1))
    return pre, out, mean


def _backward(net: _Network, pre: Sequence[Value | None]) -> list[Value]:
    """Gradient second moments from the top layer down (exact where symmetry gives it)."""
    hom = net.a.homogeneous
    linear = hom is not None and hom[0] == hom[1]
    d2 = quadrature_map(net.a.derivative**2, x)
    d = len(net.widths) - 1
    back: list[Value] = [Value(1.0, True, "upstream N(0, 1)")]
    for t in range(d, 0, -1):
        g, n, prev = float(net.gammas[t - 1]), net.widths[t], back[-1]
        if hom is not None:
            c = float((hom[0] ** 2 + hom[1] ** 2) / 2)
            exact = prev.exact and (linear or t == d)
            back.append(Value(n * g * c * prev.value, exact, "n_t gamma_t (a^2+b^2)/2 B_t"))
            continue
        how = "independence and infinite width: n_t gamma_t E[f'(sqrt(P_t) z)^2] B_t"
        pt = pre[t].value
        if not (math.isfinite(pt) and pt > 0 and prev.decided):
            back.append(_undecided(how, "a layer it depends on is undecided"))
            continue
        factor = _at(net.b, d2, pt, how, False)
        how = factor.how if not factor.decided else how
        back.append(Value(n * g * factor.value * prev.value, False, how))
    return back


def propagate(
    activation: str | ActivationAnalysis,
    init: WeightInit,
    widths: Sequence[int],
    *,
    input_var: float = 1.0,
    argument: str = "--activation",
    budget: float = OPERATION_SECONDS,
) -> LayerMoments:
    """Second moments of every layer for input :math:`N(0, v I)` (``input_var``), no biases.

    Forward: :math:`P_t = n_{t-1}\\gamma_t M_{t-1}` (exact for any law),
    :math:`M_0 = v`; :math:`M_t = \\mathbb{E}[f(z^t)^2]` is exact for a homogeneous
    ``f`` (:math:`\\tfrac{a^2+b^2}{2} P_t`), exact at :math:`t = 1` for normal weights
    (the :math:`\\chi^2` mixture), and otherwise :math:`F(P_t)` (infinite width).
    Backward: :math:`B_d = 1`, :math:`B_{t-1} = n_t\\gamma_t\\,\\mathbb{E}[f'(z^t)^2] B_t`,
    exact for linear ``f`` and for homogeneous ``f`` at the top layer (sign symmetry),
    otherwise the independence approximation. Quadratures run under ``budget``; a
    value that cannot be computed is ``nan`` with the reason (``Value.decided``).
    """
    a = (
        activation
        if isinstance(activation, ActivationAnalysis)
        else analyze_activation(activation, argument=argument, budget=budget)
    )
    if not (isinstance(input_var, float | int) and math.isfinite(input_var) and input_var > 0):
        raise InputError(f"`input_var` must be finite and > 0; got input_var={input_var!r}.")
    widths = parse_widths(list(widths))
    d = len(widths) - 1
    gammas = tuple(init.gamma(widths[t - 1], widths[t]) for t in range(1, d + 1))
    for t in range(1, d + 1):
        init.law(widths[t - 1], widths[t])  # validates the native parameter
    net = _Network(a, init.dist, widths, gammas, input_var, Budget(a.budget))
    pre, out, mean = _forward(net)
    back = _backward(net, pre)
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
    "InputError",
    "LayerMoments",
    "TorchGain",
    "Value",
    "WeightInit",
    "analyze_activation",
    "chi2_mixture",
    "derive_quantity",
    "law_derivation",
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
