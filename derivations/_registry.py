"""The one registry of claims: it feeds the parametrized tests and the report."""

from __future__ import annotations

from collections.abc import Callable

from . import (
    _activations,
    _gradients,
    _log_norm,
    _mean_field_claims,
    _relu_products,
    _summary,
    _xavier,
)
from ._claim import Claim
from ._exercises import BUILDERS as EXERCISE_BUILDERS
from ._exercises import Exercise
from ._forward import forward_variance

#: Builders of every claim, in the lecture's order.
BUILDERS: tuple[Callable[[], Claim], ...] = (
    _gradients.mlp_jacobian,
    _gradients.float_range,
    _gradients.gaussian_products,
    _relu_products.relu_jacobian_product,
    _gradients.residual_and_clipping,
    *_log_norm.BUILDERS,
    forward_variance,
    *_xavier.BUILDERS,
    *_activations.BUILDERS,
    *_summary.BUILDERS,
    *_mean_field_claims.BUILDERS,
)


def claims() -> tuple[Claim, ...]:
    """Build (once, cached by each builder) and return every registered claim."""
    return tuple(build() for build in BUILDERS)


def claim(claim_id: str) -> Claim:
    """The registered claim with id ``claim_id``."""
    ids = [c.id for c in claims()]
    for c in claims():
        if c.id == claim_id:
            return c
    raise KeyError(f"unknown claim_id={claim_id!r}; valid ids are {ids}")


def exercises() -> tuple[Exercise, ...]:
    """The book's exercises, worked and checked (built once), in the book's order."""
    return tuple(build() for build in EXERCISE_BUILDERS)
