"""Scenarios as plain data, validated into frozen dataclasses.

A scenario reaches the engine as a mapping of plain values (what ``evidence.json``
stores); :func:`mlp_scenario` validates it and names the argument at fault.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.special

from ._errors import InvalidScenario

DTYPES = ("float16", "float32", "float64")
WEIGHT_LAWS = {"normal": ("std",), "uniform": ("bound",), "truncated_normal": ("std", "a", "b")}
INPUT_LAWS = {"normal": ("mean", "std")}
MOMENTS = ("mean", "var", "m2")
DIRECTIONS = ("forward",)


def _linear(x):
    return x


def _relu(x):
    return np.maximum(x, 0)


#: Independent NumPy implementations of the lecture's activations.
ACTIVATIONS = {
    "linear": _linear,
    "relu": _relu,
    "tanh": np.tanh,
    "sigmoid": scipy.special.expit,
}


@dataclass(frozen=True)
class WeightLaw:
    """Law of every weight entry, in its native parameters (never its variance).

    ``normal``: :math:`N(0, \\mathrm{std}^2)`; ``uniform``: :math:`U[-b, b]` with
    ``bound`` b; ``truncated_normal``: :math:`N(0, \\mathrm{std}^2)` conditioned on
    ``a*std <= w <= b*std``.
    """

    law: str
    std: float = math.nan
    bound: float = math.nan
    a: float = -2.0
    b: float = 2.0


@dataclass(frozen=True)
class MLPScenario:
    """A fully connected network ``h^t = act(W^t h^{t-1})`` with random inputs."""

    widths: tuple[int, ...]
    weights: tuple[WeightLaw, ...]
    activation: str
    input_mean: float
    input_std: float
    dtype: str


@dataclass(frozen=True)
class Observable:
    """Which quantity to estimate: a moment of the output of layer ``layer``."""

    direction: str
    moment: str
    layer: int


def _positive_finite(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidScenario(f"`{name}` must be a number; got {name}={value!r}.")
    if not math.isfinite(value) or value <= 0:
        raise InvalidScenario(f"`{name}` must be finite and > 0; got {name}={value!r}.")
    return float(value)


def _choice(name: str, value: object, options: Sequence[str]) -> str:
    if value not in options:
        raise InvalidScenario(f"`{name}` must be one of {list(options)}; got {name}={value!r}.")
    return str(value)


def _weight_law(name: str, data: object) -> WeightLaw:
    if not isinstance(data, Mapping):
        raise InvalidScenario(f"`{name}` must be a mapping with a `law`; got {name}={data!r}.")
    law = _choice(f"{name}.law", data.get("law"), tuple(WEIGHT_LAWS))
    extra = set(data) - {"law", *WEIGHT_LAWS[law]}
    if extra:
        raise InvalidScenario(
            f"`{name}` with law={law!r} takes {list(WEIGHT_LAWS[law])}; unexpected {sorted(extra)}."
        )
    if law == "uniform":
        return WeightLaw(law, bound=_positive_finite(f"{name}.bound", data.get("bound")))
    std = _positive_finite(f"{name}.std", data.get("std"))
    if law == "normal":
        return WeightLaw(law, std=std)
    a, b = float(data.get("a", -2.0)), float(data.get("b", 2.0))
    if not (math.isfinite(a) and math.isfinite(b) and a < b):
        raise InvalidScenario(f"`{name}` needs finite a < b; got a={a!r}, b={b!r}.")
    return WeightLaw(law, std=std, a=a, b=b)


def mlp_scenario(data: Mapping[str, object]) -> MLPScenario:
    """Validate plain data into an :class:`MLPScenario`.

    Parameters
    ----------
    data : mapping
        ``widths`` (list of positive ints, at least two), ``weights`` (one law for
        every layer, or a list with one per layer), ``activation`` (one of
        :data:`ACTIVATIONS`), ``input`` (``{"law": "normal", "mean", "std"}``)
        and ``dtype`` (one of :data:`DTYPES`).

    Raises
    ------
    InvalidScenario
        Naming the argument and the valid options.
    """
    if data.get("kind", "mlp") != "mlp":
        raise InvalidScenario(f"`kind` must be 'mlp'; got kind={data.get('kind')!r}.")
    widths = data.get("widths")
    if (
        not isinstance(widths, Sequence)
        or len(widths) < 2
        or not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in widths)
    ):
        raise InvalidScenario(
            f"`widths` must be a list of at least two positive integers; got widths={widths!r}."
        )
    raw = data.get("weights")
    laws = (
        raw
        if isinstance(raw, Sequence) and not isinstance(raw, str | Mapping)
        else [raw] * (len(widths) - 1)
    )
    if len(laws) != len(widths) - 1:
        raise InvalidScenario(
            f"`weights` needs one law per layer ({len(widths) - 1}); got {len(laws)}."
        )
    weights = tuple(_weight_law(f"weights[{t}]", law) for t, law in enumerate(laws))
    activation = _choice("activation", data.get("activation", "linear"), tuple(ACTIVATIONS))
    inp = data.get("input", {"law": "normal", "mean": 0.0, "std": 1.0})
    if not isinstance(inp, Mapping):
        raise InvalidScenario(f"`input` must be a mapping; got input={inp!r}.")
    _choice("input.law", inp.get("law"), tuple(INPUT_LAWS))
    mean = inp.get("mean", 0.0)
    if isinstance(mean, bool) or not isinstance(mean, int | float) or not math.isfinite(mean):
        raise InvalidScenario(f"`input.mean` must be a finite number; got input.mean={mean!r}.")
    std = _positive_finite("input.std", inp.get("std"))
    dtype = _choice("dtype", data.get("dtype", "float64"), DTYPES)
    return MLPScenario(tuple(widths), weights, activation, float(mean), std, dtype)


def observable(data: Mapping[str, object], depth: int) -> Observable:
    """Validate an observable against a network of ``depth`` layers."""
    direction = _choice("observable.direction", data.get("direction"), DIRECTIONS)
    moment = _choice("observable.moment", data.get("moment"), MOMENTS)
    layer = data.get("layer")
    if not isinstance(layer, int) or isinstance(layer, bool) or not 0 <= layer <= depth:
        raise InvalidScenario(
            f"`observable.layer` must be an integer in [0, {depth}]; got layer={layer!r}."
        )
    return Observable(direction, moment, layer)
