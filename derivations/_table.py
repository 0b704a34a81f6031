r"""The activations, one entry each: the SymPy side and the simulation's NumPy side.

An entry holds what every part of the project needs to know about one activation:
its SymPy expression in :math:`x` (what the claims derive from) and the form the
report shows, its kinks (where the derivative jumps), PyTorch's ``calculate_gain``
name and value when torch has one, the simulation's NumPy function and derivative,
and the families it belongs to. Claims and figures that range over activations take
their list from :func:`family`, in the table's order; the report hands
:func:`simulation_activations` to the engine.

The NumPy side is an independent implementation (``np.tanh``,
``scipy.special.expit``, ``np.maximum``, ...), never generated from the SymPy
expression, so a simulation does not compute the formula it checks;
``tests/test_activation_table.py`` holds the two sides equal on a grid, and the
NumPy derivative equal to finite differences and to SymPy's derivative.

Families:

``lecture``
    the activations of the lecture's slides (L8.3, L8.4): sigmoid, tanh, relu and
    the adjusted sigmoid :math:`4\sigma(x) - 2`;
``near-zero``
    shown against their expansions at 0 (the Taylor claim and its figure): an
    activation is the identity to first order at 0 when :math:`f(0) = 0` and
    :math:`f'(0) = 1`;
``taylor``
    the activations the lecture's Taylor argument is applied to (L8.4): analytic at
    0 with :math:`f(0) = 0`, :math:`f'(0) = 1`, so
    :math:`\mathbb{E}[f(x)^2] = q + O(q^2)` for :math:`x \sim N(0, q)`; the
    small-variance expansions (S4) and the summary's factor :math:`\chi(q)` range
    over them;
``summary``
    the activations of the lecture's summary slide (tanh, relu, :math:`4\sigma - 2`
    under Xavier);
``mean-field``
    the activations of the mean-field claims (Poole et al. 2016, Schoenholz et al.
    2017): erf, whose two-input kernel has a closed form (the arcsine kernel,
    Williams 1997), and tanh, by quadrature;
``homogeneous``
    positively homogeneous, :math:`f(cx) = c f(x)` for :math:`c > 0`, so a layer's
    second moment is exactly half (relu) or all (linear) of the pre-activation's at
    every width.

References
----------
.. [1] PyTorch, ``torch/nn/init.py``, ``calculate_gain``: ``linear`` 1, ``sigmoid``
   1, ``tanh`` 5/3, ``relu`` :math:`\sqrt 2`; no entry for softsign.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.special
import sympy as sp

from ._symbols import x


class sigma(sp.Function):
    """The logistic sigmoid, displayed as :math:`\\sigma`; ``doit`` writes it out."""

    nargs = 1

    def doit(self, deep: bool = True, **hints) -> sp.Expr:
        arg = self.args[0].doit(deep=deep, **hints) if deep else self.args[0]
        return SIGMOID.subs(x, arg)


class relu(sp.Function):
    """The rectifier, displayed as :math:`\\operatorname{relu}`; ``doit`` gives ``Max(0, x)``."""

    nargs = 1

    def doit(self, deep: bool = True, **hints) -> sp.Expr:
        arg = self.args[0].doit(deep=deep, **hints) if deep else self.args[0]
        return RELU.subs(x, arg)


#: The definitions the SymPy side is built from (once each).
SIGMOID = 1 / (1 + sp.exp(-x))
RELU = sp.Max(0, x)
TANH = sp.tanh(x)


@dataclass(frozen=True)
class ActivationEntry:
    """One activation: its SymPy side, its NumPy side, and where it belongs.

    Attributes
    ----------
    name : str
        The scenario name the engine is given.
    expression : sympy.Expr
        :math:`f(x)`, written out (``Max``, ``exp``, ``Abs``), what claims derive from.
    display : sympy.Expr
        The form the report shows (:class:`sigma`, :class:`relu`).
    label : str
        Plain text, for figure panels.
    kinks : tuple of sympy.Expr
        The points where :math:`f'` jumps.
    torch_gain : str or None
        The ``nonlinearity`` of ``torch.nn.init.calculate_gain``, if it has one.
    gain : sympy.Expr or None
        Its value.
    function, derivative : callable
        The simulation's :math:`f` and :math:`f'` on NumPy arrays, written from the
        definitions, independently of ``expression``.
    families : frozenset of str
        See the module's docstring.
    from_output : callable or None
        :math:`f'(z)` written from the output :math:`h = f(z)`, equal bit for bit to
        ``derivative(z)``, so the backward pass can keep :math:`h` instead of
        :math:`z`; ``None`` when there is no such form.
    simplify : bool
        Derivations expand ``sympy.simplify(expression)`` rather than the expression
        (the adjusted sigmoid: :math:`4\\sigma(x) - 2 = 2\\tanh(x/2)`, an identity the
        kernel checks).
    """

    name: str
    expression: sp.Expr
    display: sp.Expr
    label: str
    kinks: tuple[sp.Expr, ...]
    torch_gain: str | None
    gain: sp.Expr | None
    function: Callable[[np.ndarray], np.ndarray]
    derivative: Callable[[np.ndarray], np.ndarray]
    families: frozenset[str]
    from_output: Callable[[np.ndarray], np.ndarray] | None = None
    simplify: bool = False

    @property
    def form(self) -> sp.Expr:
        """The form derivations expand: the expression, or its simplification."""
        return sp.simplify(self.expression) if self.simplify else self.expression

    def simulation(self) -> tuple[Callable, ...]:
        """What the engine takes: ``(f, f')``, or ``(f, f', f' from the output)``."""
        if self.from_output is None:
            return (self.function, self.derivative)
        return (self.function, self.derivative, self.from_output)


def _sigmoid_prime(v):
    s = scipy.special.expit(v)
    return s * (1 - s)


TABLE: tuple[ActivationEntry, ...] = (
    ActivationEntry(
        "linear",
        x,
        x,
        "linear",
        (),
        "linear",
        sp.Integer(1),
        lambda v: v,
        np.ones_like,
        frozenset({"homogeneous"}),
    ),
    ActivationEntry(
        "erf",
        sp.erf(x),
        sp.erf(x),
        "erf",
        (),
        None,
        None,
        scipy.special.erf,
        lambda v: 2 / np.sqrt(np.pi) * np.exp(-(v**2)),
        frozenset({"mean-field"}),
    ),
    ActivationEntry(
        "sigmoid",
        SIGMOID,
        sigma(x),
        "sigmoid",
        (),
        "sigmoid",
        sp.Integer(1),
        scipy.special.expit,
        _sigmoid_prime,
        frozenset({"lecture", "near-zero"}),
        lambda h: h * (1 - h),
    ),
    ActivationEntry(
        "tanh",
        TANH,
        TANH,
        "tanh",
        (),
        "tanh",
        sp.Rational(5, 3),
        np.tanh,
        lambda v: 1 - np.tanh(v) ** 2,
        frozenset({"lecture", "near-zero", "taylor", "summary", "mean-field"}),
        lambda h: 1 - h**2,
    ),
    ActivationEntry(
        "relu",
        RELU,
        relu(x),
        "relu",
        (sp.Integer(0),),
        "relu",
        sp.sqrt(2),
        lambda v: np.maximum(v, 0),
        lambda v: (v > 0).astype(v.dtype),
        frozenset({"lecture", "near-zero", "summary", "homogeneous"}),
        lambda h: h > 0,
    ),
    ActivationEntry(
        "scaled_sigmoid",
        4 * SIGMOID - 2,
        4 * sigma(x) - 2,
        "4 sigmoid(x) - 2",
        (),
        None,
        None,
        lambda v: 4 * scipy.special.expit(v) - 2,
        lambda v: 4 * _sigmoid_prime(v),
        frozenset({"lecture", "near-zero", "taylor", "summary"}),
        simplify=True,
    ),
    ActivationEntry(
        "softsign",
        x / (1 + sp.Abs(x)),
        x / (1 + sp.Abs(x)),
        "softsign",
        (),
        None,
        None,
        lambda v: v / (1 + np.abs(v)),
        lambda v: 1 / (1 + np.abs(v)) ** 2,
        frozenset({"near-zero"}),
    ),
)

_BY_NAME = {e.name: e for e in TABLE}


def activation(name: str) -> ActivationEntry:
    """The entry named ``name``; a ``KeyError`` names the valid ones."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"no activation {name!r}; the table has {list(_BY_NAME)}") from None


def family(name: str) -> tuple[ActivationEntry, ...]:
    """The entries of family ``name``, in the table's order."""
    return tuple(e for e in TABLE if name in e.families)


def names(family_name: str) -> tuple[str, ...]:
    """The names of :func:`family`'s entries."""
    return tuple(e.name for e in family(family_name))


def simulation_activations() -> dict[str, tuple[Callable, ...]]:
    """``name -> (f, f'[, f' from the output])`` for the engine, every entry of the table."""
    return {e.name: e.simulation() for e in TABLE}


__all__ = [
    "RELU",
    "SIGMOID",
    "TABLE",
    "TANH",
    "ActivationEntry",
    "activation",
    "family",
    "names",
    "relu",
    "sigma",
    "simulation_activations",
]
