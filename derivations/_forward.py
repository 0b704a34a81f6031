r"""Lecture items L5.1 and L5.2: the forward mean and variance of a linear layer.

.. math::

    \mathbb{E}[h^t_i] = 0, \qquad
    \operatorname{Var}[h^t_i] = n_{t-1}\,\gamma_t\,\operatorname{Var}[h^{t-1}_j]
    \quad\Longrightarrow\quad n_{t-1}\gamma_t = 1 .

References
----------
.. [1] Dive into Deep Learning, Sec. 5.4.2 (Xavier initialization), forward pass.
.. [2] X. Glorot and Y. Bengio (2010), Eq. (10): :math:`n_i \operatorname{Var}[W^i] = 1`.
.. [3] K. He et al. (2015), Sec. 2.2: :math:`\operatorname{Var}[y_l] = n_l
   \operatorname{Var}[w_l]\,\mathbb{E}[x_l^2]`, the form that needs no zero mean.
"""

from __future__ import annotations

from functools import cache

import sympy as sp
from sympy import stats

from ._building import mlp_scenario
from ._calculus import (
    Ex,
    Model,
    RandomFamily,
    Var,
    evaluate_sums,
    expand_square,
    factor_independent,
    linearity,
    substitute_definitions,
    substitute_moments,
    variance_definition,
)
from ._check import Chain
from ._claim import Assumption, Check, Claim, Derivation, Probe, Status
from ._symbols import gamma, h, h_prev, i, j, mu_prev, n_prev, v_prev, w

HALF = sp.Rational(1, 2)


def linear_model(
    weights: sp.IndexedBase,
    vector: sp.IndexedBase,
    definitions: dict,
    *,
    width: sp.Symbol,
    free: sp.Symbol,
    gamma: sp.Symbol,
    mean: sp.Symbol,
    variance: sp.Symbol,
    describe: tuple[str, str] = ("weights, i.i.d.", "entries, identically distributed"),
) -> Model:
    """A layer's i.i.d. zero-mean weights and an independent vector of dependent entries.

    The one model behind every linear-layer moment: the forward pass (``h^t = W^t
    h^{t-1}``), the backward pass (``g^{t-1} = (W^t)^T g^t``), residual branches and
    masked gradients differ only in ``definitions`` and names. The vector is computed
    by the network: the exact checks generate it from a real layer.
    """
    return Model(
        families=(
            RandomFamily(
                weights,
                describe[0],
                sp.Integer(0),
                gamma,
                True,
            ),
            RandomFamily(
                vector,
                describe[1],
                mean,
                variance,
                False,
                computed=True,
            ),
        ),
        definitions=definitions,
        mutually_independent=frozenset({weights, vector}),
        width=width,
        free_indices={free: 1},
    )


MODEL = linear_model(
    w,
    h_prev,
    {h: ((i,), sp.Sum(w[i, j] * h_prev[j], (j, 1, n_prev)))},
    width=n_prev,
    free=i,
    gamma=gamma,
    mean=mu_prev,
    variance=v_prev,
    describe=("weights of layer t, i.i.d.", "outputs of layer t-1, identically distributed"),
)

ASSUMPTIONS = (
    Assumption(
        "iid-weights",
        r"the entries $w^t_{ij}$ are i.i.d. with mean $0$ and variance $\gamma_t$",
    ),
    Assumption("independent-input", r"$W^t$ is independent of $h^{t-1}$"),
    Assumption(
        "identical-inputs",
        r"the $h^{t-1}_j$ share mean $\mu_{t-1}$ and variance $v_{t-1}$; "
        "they need not be independent of each other",
    ),
    Assumption(
        "zero-mean-input",
        r"$\mathbb{E}[h^{t-1}_j] = \mu_{t-1} = 0$ (L5.1 at layer $t-1$, given a zero-mean "
        "network input)",
        {mu_prev: sp.Integer(0)},
    ),
)

# (label, widths, weight law in native parameters, input variance); exact values.
_PROBES = (
    ("64x256-normal", (64, 256), ("normal", {"std": sp.Rational(1, 8)}), sp.Integer(1)),
    (
        "100x30-normal",
        (100, 30),
        ("normal", {"std": sp.sqrt(sp.Rational(3, 100))}),
        sp.Rational(5, 2),
    ),
    ("48x96-uniform", (48, 96), ("uniform", {"bound": sp.Rational(1, 4)}), sp.Rational(1, 2)),
)


def weight_variance(law: str, params: dict) -> sp.Expr:
    """Exact variance of a weight law from its density (``sympy.stats``), not typed in."""
    if law == "normal":
        rv = stats.Normal("w", 0, params["std"])
    elif law == "uniform":
        rv = stats.Uniform("w", -params["bound"], params["bound"])
    else:
        raise ValueError(f"`law` must be 'normal' or 'uniform'; got law={law!r}")
    return sp.simplify(stats.variance(rv))


def _confirm_by_sympy_stats(mean: sp.Expr, second: sp.Expr, widths=range(1, 5)) -> Check:
    """Independent route: exact moments of a concrete Gaussian layer at small widths."""
    for n in widths:
        ws = [stats.Normal(f"W{k}", 0, sp.sqrt(gamma)) for k in range(n)]
        xs = [stats.Normal(f"X{k}", mu_prev, sp.sqrt(v_prev)) for k in range(n)]
        out = sp.Add(*[a * b for a, b in zip(ws, xs, strict=True)])
        got_mean = sp.simplify(stats.E(out))
        got_var = sp.simplify(stats.variance(out))
        want_mean = mean.subs(n_prev, n)
        want_var = second.subs(n_prev, n)
        if sp.simplify(got_mean - want_mean) != 0 or sp.simplify(got_var - want_var) != 0:
            return Check(
                f"sympy.stats n={n}",
                Status.REFUTED,
                f"Gaussian layer of width {n}: E = {got_mean}, Var = {got_var}; "
                f"derived {want_mean}, {want_var}",
            )
    return Check(
        f"sympy.stats n={widths.start}..{widths.stop - 1}",
        Status.TESTED,
        "exact E and Var of sum_j W_j X_j with W_j ~ N(0, γ_t), X_j ~ N(μ_{t-1}, v_{t-1}) "
        "equal the derived mean and the derived variance before the zero-mean assumption",
    )


def layer_moments(
    entry: sp.Indexed,
    model: Model,
    assumptions: tuple[Assumption, ...],
    zero_mean: str,
    claim_id: str,
    prefix: str = "",
) -> tuple[Derivation, Derivation, Derivation]:
    """Mean and variance of one entry of a linear layer, by the moment calculus.

    The same chain of rules serves the forward pass (``h^t = W^t h^{t-1}``) and the
    backward pass (``g^{t-1} = (W^t)^T g^t``); only the model differs.

    Returns
    -------
    mean : Derivation
        Called ``"mean"``.
    second : Derivation
        Called ``"second moment"``: the variance with no assumption on the mean
        (He's form, :math:`n\\gamma(v + \\mu^2)`).
    variance : Derivation
        Called ``"variance"``: uses ``second`` (a recorded junction of ``claim_id``),
        then the assumption ``zero_mean``.

    ``prefix`` goes before each name where a claim holds several such derivations.
    """
    mean = (
        Chain(f"{prefix}mean", Ex(entry), model, assumptions)
        .apply(substitute_definitions)
        .apply(linearity)
        .apply(factor_independent)
        .apply(substitute_moments)
        .apply(evaluate_sums)
        .done()
    )
    second = (
        Chain(f"{prefix}second moment", Var(entry), model, assumptions)
        .apply(substitute_definitions)
        .apply(variance_definition)
        .apply(expand_square)
        .apply(linearity)
        .apply(factor_independent)
        .apply(substitute_moments)
        .apply(evaluate_sums)
        .done()
    )
    variance = (
        Chain(f"{prefix}variance", Var(entry), model, assumptions)
        .use(claim_id, second)
        .assume(zero_mean)
        .done()
    )
    return mean, second, variance


_TITLE = (
    "Forward pass of a linear layer: zero mean, variance scaled by fan-in times weight variance"
)
_SUMMARY = (
    r"For $h^t = W^t h^{t-1}$ with i.i.d. zero-mean weights of variance $\gamma_t$, "
    r"independent of $h^{t-1}$, the output has mean $0$ and variance "
    r"$n_{t-1}\gamma_t \operatorname{Var}[h^{t-1}_j]$, so the variance is preserved "
    r"exactly when $n_{t-1}\gamma_t = 1$."
)


def _conditions(variance: sp.Expr) -> tuple[sp.Eq, sp.Eq]:
    """The preservation condition :math:`n_{t-1}\\gamma_t = 1`, solved for :math:`\\gamma_t`."""
    ratio = sp.simplify(variance / v_prev)
    (gamma_star,) = sp.solve(sp.Eq(ratio, 1), gamma)
    return sp.Eq(ratio, 1), sp.Eq(gamma, gamma_star)


def _forward_probes(mean: sp.Expr, variance: sp.Expr) -> tuple[Probe, ...]:
    """The mean and the variance of layer 1 at each of ``_PROBES``."""
    probes = []
    for label, widths, (law, params), v in _PROBES:
        values = {n_prev: widths[0], gamma: weight_variance(law, params), v_prev: v, mu_prev: 0}
        weights = {"law": law, **{k: float(x) for k, x in params.items()}}
        scenario = mlp_scenario(widths, weights, input_std=sp.sqrt(v))
        probes += [
            Probe.derived(
                f"{label}-{moment}",
                scenario,
                {"direction": "forward", "moment": moment, "layer": 1},
                expr,
                values,
            )
            for moment, expr in (("mean", mean), ("var", variance))
        ]
    return tuple(probes)


@cache
def forward_variance() -> Claim:
    """Derive L5.1 and L5.2 with the moment calculus.

    Returns
    -------
    Claim
        Two derivations (mean and variance), the condition
        :math:`n_{t-1}\\gamma_t = 1` from :func:`sympy.solve`, a ``sympy.stats``
        confirmation at widths 1..4 and six probes.

    Notes
    -----
    .. math::

        \\operatorname{Var}[h^t_i]
        = \\sum_j \\mathbb{E}[w_{ij}^2]\\,\\mathbb{E}[(h^{t-1}_j)^2]
          + \\sum_{j\\neq k} \\mathbb{E}[w_{ij}]\\,\\mathbb{E}[w_{ik}]\\,
            \\mathbb{E}[h^{t-1}_j h^{t-1}_k]
        = n_{t-1}\\gamma_t\\,(v_{t-1} + \\mu_{t-1}^2).

    The lecture's form needs :math:`\\mu_{t-1} = 0`; the step that uses it is
    shown separately.
    """
    mean, second, variance = layer_moments(
        h[i], MODEL, ASSUMPTIONS, "zero-mean-input", "forward-variance"
    )

    return Claim(
        id="forward-variance",
        lecture=("L5.1", "L5.2"),
        title=_TITLE,
        summary=_SUMMARY,
        assumptions=ASSUMPTIONS,
        derivations=(mean, second, variance),
        conditions=_conditions(variance.result),
        confirmations=(_confirm_by_sympy_stats(mean.result, second.result),),
        probes=_forward_probes(mean.result, variance.result),
    )
