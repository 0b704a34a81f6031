"""Scenarios and observables as plain data, validated into frozen dataclasses.

A scenario reaches the engine as a mapping of plain values (what ``evidence.json``
stores). Three kinds exist:

``mlp``
    a fully connected network :math:`h^t = \\phi(W^t h^{t-1} + b^t)` (optionally
    residual, :math:`h^t = h^{t-1} + \\phi(W^t h^{t-1})`), run forward and, when a
    gradient is observed, backward from an upstream gradient that is either an
    independent Gaussian or the gradient of the real loss :math:`\\tfrac12\\|h^d\\|^2`;
``scalar``
    :math:`f(x)` or :math:`f'(x)` for :math:`x \\sim N(0, q)`;
``product``
    :math:`\\log\\|W_d \\cdots W_1 x\\| - \\log\\|x\\|` for i.i.d. Gaussian matrices.

Every validation error names the argument, its value and what is allowed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ._errors import InvalidScenario

DTYPES = ("float16", "float32", "float64")
WEIGHT_LAWS = {"normal": ("std",), "uniform": ("bound",), "truncated_normal": ("std", "a", "b")}
MLP_MOMENTS = ("mean", "var", "m2", "log_m2", "nonfinite", "overflow", "zero", "subnormal")
#: Moments of an MLP site that are fractions of entries (in [0, 1]).
FRACTION_MOMENTS = ("nonfinite", "overflow", "zero", "subnormal")
SCALAR_MOMENTS = ("mean", "var", "m2")
PRODUCT_QUANTITIES = {"log_growth": ("mean", "var"), "m2_growth": ("mean",)}
#: Largest number of activations one replicate may hold (depth x width x batch is
#: streamed, so this bounds width x batch and the stored segment only).
MAX_DEPTH = 100_000


#: The one activation the engine knows by itself: ``linear``, the identity (no
#: activation), so that a scenario without an ``activation`` is a linear network. Every
#: other activation reaches the engine as NumPy callables from its caller
#: (``activations=``, ``name -> (f, f')`` or ``(f, f', f' from the output)``); a
#: caller's ``linear`` takes precedence over :data:`IDENTITY`.
LINEAR = "linear"
#: ``(f, f')`` of the built-in ``linear``.
IDENTITY: tuple[Callable, Callable] = (lambda z: z, np.ones_like)


def activation_names(activations: Mapping[str, tuple[Callable, ...]] | None) -> tuple[str, ...]:
    """The names a scenario may give: the caller's, in order, and :data:`LINEAR`."""
    if activations is not None and not isinstance(activations, Mapping):
        raise InvalidScenario(
            f"`activations` must be a mapping name -> (f, f'); got activations={activations!r}."
        )
    return tuple(dict.fromkeys((*(activations or {}), LINEAR)))


def activation_functions(
    name: str, activations: Mapping[str, tuple[Callable, ...]] | None
) -> tuple[Callable, ...]:
    """The caller's ``(f, f'[, f' from the output])`` for ``name``, or :data:`IDENTITY`
    for ``linear`` when the caller gives none; any other name is refused, naming the
    valid ones."""
    name = _activation(name, activations)
    return activations[name] if activations and name in activations else IDENTITY


@dataclass(frozen=True)
class WeightLaw:
    """Law of every entry, in its native parameters (never its variance).

    ``normal``: :math:`N(0, s^2)`; ``uniform``: :math:`U[-b, b]`;
    ``truncated_normal``: :math:`N(0, s^2)` conditioned on :math:`a s \\le w \\le b s`,
    not rescaled.
    """

    law: str
    std: float = math.nan
    bound: float = math.nan
    a: float = -2.0
    b: float = 2.0


@dataclass(frozen=True)
class MLPScenario:
    widths: tuple[int, ...]
    weights: tuple[WeightLaw, ...]
    biases: tuple[WeightLaw, ...] | None
    activation: str
    residual: bool
    input_law: WeightLaw
    """Law of every input entry around ``input_mean`` (the weight laws, shifted)."""
    input_mean: float
    upstream_std: float | None
    """Std of the independent Gaussian upstream gradient; ``None`` for the real loss."""
    dtype: str

    @property
    def depth(self) -> int:
        return len(self.widths) - 1


@dataclass(frozen=True)
class ScalarScenario:
    activation: str
    q: float
    function: str
    dtype: str


@dataclass(frozen=True)
class ProductScenario:
    n: int
    std: float
    depth: int
    dtype: str


@dataclass(frozen=True)
class Observable:
    """What to estimate.

    For ``mlp``: ``direction`` (``forward`` or ``backward``), ``of`` (``output`` or
    ``preactivation``), ``moment`` and ``layer``, optionally ``relative_to`` (the
    ratio to the same moment at another layer). For ``scalar``: ``moment``. For
    ``product``: ``quantity`` and ``moment``.
    """

    moment: str
    direction: str = ""
    of: str = "output"
    layer: int = 0
    relative_to: int | None = None
    quantity: str = ""


Scenario = MLPScenario | ScalarScenario | ProductScenario


def _number(name: str, value: object, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidScenario(f"`{name}` must be a number; got {name}={value!r}.")
    if not math.isfinite(value) or (positive and value <= 0):
        rule = "finite and > 0" if positive else "finite"
        raise InvalidScenario(f"`{name}` must be {rule}; got {name}={value!r}.")
    return float(value)


def _integer(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidScenario(
            f"`{name}` must be an integer in [{low}, {high}]; got {name}={value!r}."
        )
    return value


def _choice(name: str, value: object, options: Sequence[str]) -> str:
    if value not in options:
        raise InvalidScenario(f"`{name}` must be one of {list(options)}; got {name}={value!r}.")
    return str(value)


def _mapping(name: str, value: object) -> Mapping:
    if not isinstance(value, Mapping):
        raise InvalidScenario(f"`{name}` must be a mapping; got {name}={value!r}.")
    return value


def _keys(name: str, data: Mapping, allowed: Sequence[str]) -> None:
    extra = sorted(set(data) - set(allowed))
    if extra:
        raise InvalidScenario(f"`{name}` takes keys {sorted(allowed)}; unexpected {extra}.")


def weight_law(name: str, data: object) -> WeightLaw:
    data = _mapping(name, data)
    law = _choice(f"{name}.law", data.get("law"), tuple(WEIGHT_LAWS))
    _keys(name, data, ("law", *WEIGHT_LAWS[law]))
    if law == "uniform":
        return WeightLaw(law, bound=_number(f"{name}.bound", data.get("bound"), positive=True))
    std = _number(f"{name}.std", data.get("std"), positive=True)
    if law == "normal":
        return WeightLaw(law, std=std)
    a = _number(f"{name}.a", data.get("a", -2.0))
    b = _number(f"{name}.b", data.get("b", 2.0))
    if not a < b:
        raise InvalidScenario(f"`{name}` needs a < b; got a={a!r}, b={b!r}.")
    return WeightLaw(law, std=std, a=a, b=b)


def _laws(name: str, raw: object, n: int) -> tuple[WeightLaw, ...]:
    many = isinstance(raw, Sequence) and not isinstance(raw, str | Mapping)
    laws = list(raw) if many else [raw] * n
    if len(laws) != n:
        raise InvalidScenario(f"`{name}` needs one law per layer ({n}); got {len(laws)}.")
    return tuple(weight_law(f"{name}[{t}]", law) for t, law in enumerate(laws))


def _activation(value: object, activations: Mapping[str, tuple[Callable, ...]] | None) -> str:
    options = activation_names(activations)
    if value not in options:
        raise InvalidScenario(
            f"`activation` must be one of {list(options)} (the names of `activations`, "
            f"and 'linear'); got activation={value!r}."
        )
    return str(value)


def mlp_scenario(
    data: Mapping[str, object], activations: Mapping[str, tuple[Callable, ...]] | None = None
) -> MLPScenario:
    """Validate plain data into an :class:`MLPScenario`.

    Parameters
    ----------
    data : mapping
        ``widths`` (at least two positive integers), ``weights`` (one law, or one
        per layer), optional ``biases``, ``activation``, optional ``residual``,
        ``input`` (a law as for the weights, plus an optional ``mean``; default
        ``{"law": "normal", "mean": 0, "std": 1}``), ``upstream``
        (``{"law": "normal", "std"}`` or ``{"loss": "half_squared"}``), ``dtype``.
    activations : mapping, optional
        The activations ``name -> (f, f')`` as NumPy callables, or ``(f, f', g)``
        with ``g(h)`` the derivative written from the output ``h = f(z)``, equal bit
        for bit to ``f'(z)`` (the backward pass then keeps ``h``). ``activation``
        must be one of its names, or ``linear`` (built in as the identity when the
        mapping has no ``linear``).
    """
    data = _mapping("scenario", data)
    _keys(
        "scenario",
        data,
        (
            "kind",
            "widths",
            "weights",
            "biases",
            "activation",
            "residual",
            "input",
            "upstream",
            "dtype",
        ),
    )
    widths = data.get("widths")
    if (
        not isinstance(widths, Sequence)
        or len(widths) < 2
        or not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in widths)
    ):
        raise InvalidScenario(
            f"`widths` must be a list of at least two positive integers; got widths={widths!r}."
        )
    if len(widths) - 1 > MAX_DEPTH:
        raise InvalidScenario(f"`widths` allows at most {MAX_DEPTH} layers; got {len(widths) - 1}.")
    depth = len(widths) - 1
    weights = _laws("weights", data.get("weights"), depth)
    biases = None if data.get("biases") is None else _laws("biases", data["biases"], depth)
    activation = _activation(data.get("activation", "linear"), activations)
    residual = data.get("residual", False)
    if not isinstance(residual, bool):
        raise InvalidScenario(f"`residual` must be true or false; got residual={residual!r}.")
    if residual and len(set(widths)) != 1:
        raise InvalidScenario(f"`residual` needs equal widths; got widths={list(widths)!r}.")
    inp = dict(_mapping("input", data.get("input", {"law": "normal", "mean": 0.0, "std": 1.0})))
    mean = _number("input.mean", inp.pop("mean", 0.0))
    input_law = weight_law("input", inp)
    up = _mapping("upstream", data.get("upstream", {"law": "normal", "std": 1.0}))
    if "loss" in up:
        _keys("upstream", up, ("loss",))
        _choice("upstream.loss", up["loss"], ("half_squared",))
        upstream_std = None
    else:
        _keys("upstream", up, ("law", "std"))
        _choice("upstream.law", up.get("law"), ("normal",))
        upstream_std = _number("upstream.std", up.get("std"), positive=True)
    dtype = _choice("dtype", data.get("dtype", "float64"), DTYPES)
    return MLPScenario(
        tuple(widths), weights, biases, activation, residual, input_law, mean, upstream_std, dtype
    )


def scenario(
    data: Mapping[str, object], activations: Mapping[str, tuple[Callable, ...]] | None = None
) -> Scenario:
    """Validate a scenario of any kind (``mlp``, ``scalar`` or ``product``).

    ``activations`` as for :func:`mlp_scenario`: an ``mlp`` or ``scalar`` scenario's
    ``activation`` must be one of its names (or ``linear``).
    """
    data = _mapping("scenario", data)
    kind = _choice("kind", data.get("kind", "mlp"), ("mlp", "scalar", "product"))
    if kind == "mlp":
        return mlp_scenario(data, activations)
    if kind == "scalar":
        _keys("scenario", data, ("kind", "activation", "q", "function", "dtype"))
        return ScalarScenario(
            _activation(data.get("activation"), activations),
            _number("q", data.get("q"), positive=True),
            _choice("function", data.get("function", "value"), ("value", "derivative")),
            _choice("dtype", data.get("dtype", "float64"), DTYPES),
        )
    _keys("scenario", data, ("kind", "n", "std", "depth", "dtype"))
    return ProductScenario(
        _integer("n", data.get("n"), 1, 4096),
        _number("std", data.get("std"), positive=True),
        _integer("depth", data.get("depth"), 1, MAX_DEPTH),
        _choice("dtype", data.get("dtype", "float64"), ("float32", "float64")),
    )


def observable(data: Mapping[str, object], sc: Scenario) -> Observable:
    """Validate an observable against its scenario."""
    data = _mapping("observable", data)
    if isinstance(sc, ScalarScenario):
        _keys("observable", data, ("moment",))
        return Observable(_choice("observable.moment", data.get("moment"), SCALAR_MOMENTS))
    if isinstance(sc, ProductScenario):
        _keys("observable", data, ("quantity", "moment"))
        q = _choice("observable.quantity", data.get("quantity"), tuple(PRODUCT_QUANTITIES))
        m = _choice("observable.moment", data.get("moment"), PRODUCT_QUANTITIES[q])
        return Observable(m, quantity=q)
    _keys("observable", data, ("direction", "of", "moment", "layer", "relative_to"))
    direction = _choice("observable.direction", data.get("direction"), ("forward", "backward"))
    of = _choice("observable.of", data.get("of", "output"), ("output", "preactivation"))
    if direction == "backward" and of != "output":
        raise InvalidScenario("`observable.of` must be 'output' for gradients (dl/dh^t).")
    low = 1 if of == "preactivation" else 0
    layer = _integer("observable.layer", data.get("layer"), low, sc.depth)
    rel = data.get("relative_to")
    if rel is not None:
        rel = _integer("observable.relative_to", rel, low, sc.depth)
    moment = _choice("observable.moment", data.get("moment"), MLP_MOMENTS)
    return Observable(moment, direction, of, layer, rel)
