"""Small building blocks the claim modules share (symbols live in :mod:`._symbols`)."""

from __future__ import annotations

from collections.abc import Iterable

import sympy as sp

from ._check import Chain
from ._claim import Assumption, Derivation
from ._gaussian import gaussian_integral
from ._symbols import q, x


def mlp_scenario(
    widths,
    weights: dict,
    *,
    activation: str = "linear",
    input_std: float = 1.0,
    upstream: dict | None = None,
) -> dict:
    """A simulated network: zero-mean normal input, float64, optional upstream gradient."""
    scenario = {
        "kind": "mlp",
        "widths": list(widths),
        "weights": weights,
        "activation": activation,
        "input": {"law": "normal", "mean": 0.0, "std": float(input_std)},
    }
    if upstream is not None:
        scenario["upstream"] = upstream
    scenario["dtype"] = "float64"
    return scenario


def assumptions_named(assumptions: Iterable[Assumption], *names: str) -> tuple[Assumption, ...]:
    """The assumptions called ``names``, in that order (another claim's, read by name)."""
    table = {a.name: a for a in assumptions}
    missing = [n for n in names if n not in table]
    if missing:
        raise KeyError(f"no assumption named {missing}; there are {list(table)}")
    return tuple(table[n] for n in names)


def by_name(derivations: Iterable[Derivation]) -> dict[str, Derivation]:
    """Derivations keyed by their names, in their order (results are read by name)."""
    out: dict[str, Derivation] = {}
    for d in derivations:
        if d.name in out:
            raise ValueError(f"two derivations are called {d.name!r}.")
        out[d.name] = d
    return out


def gaussian_square_expansion(
    name: str,
    form: sp.Expr,
    expansion,
    assumptions: tuple[Assumption, ...],
    why: tuple[str, str] = ("", ""),
) -> Derivation:
    r"""The chain :math:`\mathbb{E}[f(x)^2] = \sum_k c_k\,\mathbb{E}[x^{2k}] + O(q^N)`,
    :math:`x \sim N(0, q)`, from a :func:`._gaussian.gaussian_square_series` result.

    Its two steps are the Taylor series of :math:`f^2` taken term by term, then the
    Gaussian moments :math:`\mathbb{E}[x^{2k}] = q^k (2k - 1)!!`; ``why`` justifies each.
    """
    return (
        Chain(name, gaussian_integral(form**2, x, q), assumptions=assumptions)
        .step(
            expansion.terms,
            "Taylor series of f(x)^2 at 0 (sympy.series), expectation term by term",
            why[0],
        )
        .step(expansion.value, "Gaussian moments E[x^k] (sympy.stats)", why[1])
        .done()
    )
