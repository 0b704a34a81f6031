r"""Backward pass, Xavier initialization and linear activations (L4.1, L6-L8.2, S1, S3, S5).

.. math::

    \operatorname{Var}[g^{t-1}_j] = n_t\,\gamma_t\,\operatorname{Var}[g^t_i], \qquad
    \gamma_t\,\frac{n_{t-1} + n_t}{2} = 1, \qquad
    \operatorname{Var}\,U[-a, a] = \frac{a^2}{3} .

Here :math:`g^t_i = \partial\ell/\partial h^t_i` and :math:`W^t` is
:math:`n_t \times n_{t-1}`, so the backward pass is
:math:`g^{t-1}_j = \sum_{i=1}^{n_t} w^t_{ij}\,g^t_i` (a sum over the fan-out).

With the real loss :math:`\ell = \frac12\|h^d\|^2` the upstream gradient contains
:math:`W^d`, and the exact backward variance exceeds the independence prediction by
the relative error :math:`(n_d + 1)/n_{d-1}`, which does not vanish at equal widths.

References
----------
.. [1] Dive into Deep Learning, Sec. 5.4.2 (Xavier initialization).
.. [2] X. Glorot and Y. Bengio (2010), "Understanding the difficulty of training deep
   feedforward neural networks", AISTATS, Eqs. (10)-(12) and (16).
.. [3] K. He, X. Zhang, S. Ren and J. Sun (2015), "Delving Deep into Rectifiers",
   ICCV, Sec. 2.2: :math:`\operatorname{Var}[y_l] = n_l \operatorname{Var}[w_l]
   \mathbb{E}[x_l^2]`.
.. [4] JAX, ``jax/_src/nn/initializers.py``, ``variance_scaling``: for
   ``"truncated_normal"`` the std is divided by ``.87962566103423978``, commented
   "constant is stddev of standard normal truncated to (-2, 2)".
.. [5] PyTorch, ``torch/nn/init.py``, ``trunc_normal_(tensor, mean=0., std=1., a=-2.,
   b=2.)``: ``a`` and ``b`` are absolute cutoff values, and the std is not corrected.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache

import sympy as sp
from sympy import stats

from ._building import assumptions_named, mlp_scenario
from ._calculus import (
    MOMENT_OF_SUM,
    Ex,
    Model,
    RandomFamily,
    Var,
    evaluate_sums,
    expand_expectations,
    factor_independent,
    gaussian_moments,
    linearity,
    substitute_definitions,
    substitute_moments,
    variance_definition,
)
from ._check import Chain
from ._claim import Assumption, Check, Claim, Derivation, Probe, Status
from ._forward import forward_variance, layer_moments, linear_model, weight_variance
from ._symbols import (
    g,
    g_prev,
    gamma,
    h,
    h_prev,
    i,
    j,
    mu_prev,
    n_prev,
    n_t,
    q,
    s,
    tau,
    v_prev,
    w,
    x,
    z,
)
from ._symbols import n as n_eq

HALF = sp.Rational(1, 2)

# --------------------------------------------------------------------------- symbols

m = sp.Symbol("m", integer=True, positive=True)
m_t = sp.Symbol("m_t", real=True)
b_t = sp.Symbol("b_t", positive=True)

alpha = sp.Symbol("alpha", real=True)
beta = sp.Symbol("beta", real=True)
a = sp.Symbol("a", positive=True)
sigma = sp.Symbol("sigma", positive=True)


# --------------------------------------------------------------------------- general rules


# --------------------------------------------------------------------------- instances


def _law(law: str, params: Mapping[str, sp.Expr]) -> dict:
    return {"law": law, **{k: float(v) for k, v in params.items()}}


def _solve1(eq: sp.Eq, symbol: sp.Symbol) -> sp.Expr:
    """The unique solution of ``eq`` for ``symbol`` (positive symbols keep one root)."""
    (sol,) = sp.solve(eq, symbol)
    return sp.simplify(sol)


def _forward_gamma() -> sp.Expr:
    """The weight variance :math:`1/n_{t-1}` that preserves the forward variance (L5.2)."""
    factor = sp.simplify(forward_variance().derivation("variance").result / v_prev)
    return _solve1(sp.Eq(factor, 1), gamma)


# =========================================================================== backward

BACKWARD_MODEL = linear_model(
    w,
    g,
    {g_prev: ((j,), sp.Sum(w[i, j] * g[i], (i, 1, n_t)))},
    width=n_t,
    free=j,
    gamma=gamma,
    mean=m_t,
    variance=b_t,
    describe=("weights of layer t, i.i.d.", "upstream gradient dl/dh^t, identically distributed"),
)

BACKWARD_ASSUMPTIONS = (
    Assumption(
        "iid-weights",
        r"the entries $w^t_{ij}$ of the $n_t \times n_{t-1}$ matrix $W^t$ are i.i.d. with "
        r"mean $0$ and variance $\gamma_t$",
    ),
    Assumption(
        "independent-upstream",
        r"the upstream gradient $g^t = \partial\ell/\partial h^t$ is independent of $W^t$ "
        "(the lecture's assumption; see S5 for a real loss)",
    ),
    Assumption(
        "identical-upstream",
        r"the $g^t_i$ share mean $m_t$ and variance $b_t$; they need not be independent",
    ),
    Assumption(
        "zero-mean-upstream",
        r"$\mathbb{E}[g^t_i] = m_t = 0$ (L4.1 at layer $t$)",
        {m_t: sp.Integer(0)},
    ),
)


def _transpose_derivation() -> Derivation:
    """L6.1 on a concrete 3x2 layer: the chain rule gives :math:`(W^t)^T g^t`."""
    rows, cols = 3, 2
    W = sp.Matrix(rows, cols, lambda r, c: w[r + 1, c + 1])
    hp = sp.Matrix(cols, 1, lambda r, _: sp.Symbol(f"h_{r + 1}", real=True))
    ys = sp.symbols(f"y_1:{rows + 1}", real=True)
    loss = sp.Function("ell")
    out = W * hp
    grad = sp.Matrix([sp.diff(loss(*out), v) for v in hp])
    upstream = sp.Matrix([sp.diff(loss(*ys), y) for y in ys]).subs(dict(zip(ys, out, strict=True)))
    jac = out.jacobian(hp)
    return (
        Chain("transpose", grad)
        .step(
            jac.T * upstream,
            "chain rule (Matrix.jacobian)",
            r"$\partial\ell/\partial h^{t-1} = (\partial h^t/\partial h^{t-1})^T "
            r"\partial\ell/\partial h^t$ with $\partial h^t/\partial h^{t-1} = W^t$, "
            r"shown for $n_t = 3$, $n_{t-1} = 2$",
        )
        .step(
            sp.Matrix(
                cols,
                1,
                lambda c, _: sp.Add(*[W[r, c] * upstream[r] for r in range(rows)]),
            ),
            "matrix product",
            r"$g^{t-1}_j = \sum_{i=1}^{n_t} w^t_{ij} g^t_i$: a sum over the fan-out",
        )
        .done()
    )


def _confirm_backward(mean: sp.Expr, second: sp.Expr) -> Check:
    """Exact moments of :math:`\\sum_i W_i G_i` for Gaussian ``W``, ``G``, ``n_t = 2, 3``."""
    for n in (2, 3):
        ws = [stats.Normal(f"W{k}", 0, sp.sqrt(gamma)) for k in range(n)]
        gs = [stats.Normal(f"G{k}", m_t, sp.sqrt(b_t)) for k in range(n)]
        out = sp.Add(*[p * r for p, r in zip(ws, gs, strict=True)])
        first = stats.E(out)
        got = (sp.simplify(first), sp.simplify(stats.E(sp.expand(out**2)) - first**2))
        want = (mean.subs(n_t, n), second.subs(n_t, n))
        if any(sp.simplify(u - v) != 0 for u, v in zip(got, want, strict=True)):
            return Check(f"sympy.stats n_t={n}", Status.REFUTED, f"got {got}, derived {want}")
    return Check(
        "sympy.stats n_t=2,3",
        Status.TESTED,
        "exact E and Var of sum_i W_i G_i with W_i ~ N(0, γ_t), G_i ~ N(m_t, b_t) equal "
        "the derived mean and variance before the zero-mean assumption",
    )


# (label, widths, weight law, upstream std)
_BACKWARD_PROBES = (
    ("100x30-normal", (100, 30), "normal", sp.Rational(3, 2)),
    ("32x64x256-uniform", (32, 64, 256), "uniform", sp.Integer(1)),
)


_BACKWARD_TITLE = (
    "Backward pass of a linear layer: zero mean, variance scaled by fan-out times weight variance"
)
_BACKWARD_SUMMARY = (
    r"The gradient flows back through the transpose, "
    r"$g^{t-1}_j = \sum_{i=1}^{n_t} w^t_{ij} g^t_i$, so with i.i.d. zero-mean weights "
    r"of variance $\gamma_t$ independent of the upstream gradient it has mean $0$ and "
    r"variance $n_t\gamma_t\operatorname{Var}[g^t_i]$: the fan-out $n_t$, not the "
    r"fan-in, sets the backward factor, and $n_t\gamma_t = 1$ preserves it."
)


def _backward_probes(
    mean: sp.Expr, variance: sp.Expr, factor: sp.Expr, gamma_star: sp.Expr
) -> tuple[Probe, ...]:
    """Mean, variance and the fan-in misreading of the factor at each of ``_BACKWARD_PROBES``."""
    wrong_factor = factor.subs(n_t, n_prev)
    probes = []
    for label, widths, law, up in _BACKWARD_PROBES:
        fan_in, fan_out = widths[-2], widths[-1]
        if law == "normal":  # gamma from the backward condition n_t gamma = 1
            params = {"std": sp.sqrt(gamma_star.subs(n_t, fan_out))}
        else:  # a deliberately non-preserving uniform law
            params = {"bound": sp.Rational(1, 8)}
        values = {n_t: fan_out, n_prev: fan_in, gamma: weight_variance(law, params), b_t: up**2}
        upstream = {"law": "normal", "std": float(up)}
        scenario = mlp_scenario(widths, _law(law, params), upstream=upstream)
        obs = {"direction": "backward", "layer": len(widths) - 2}
        for suffix, moment, expr, expect in (
            ("mean", "mean", mean, "agrees"),
            ("var", "var", variance, "agrees"),
            ("var-fan-in", "var", wrong_factor * b_t, "disagrees"),
        ):
            probes.append(
                Probe.derived(
                    f"{label}-{suffix}", scenario, {**obs, "moment": moment}, expr, values, expect
                )
            )
    return tuple(probes)


@cache
def backward_variance() -> Claim:
    """Derive L6.1 and L6.2: the backward pass sums over the fan-out :math:`n_t`.

    Returns
    -------
    Claim
        The transpose rule (by the chain rule on a concrete layer), the backward mean
        and variance by the moment calculus, the condition :math:`n_t\\gamma_t = 1` and
        probes at unequal widths, including one with the fan-in in place of the fan-out.

    Notes
    -----
    .. math::

        \\operatorname{Var}[g^{t-1}_j]
        = \\sum_i \\mathbb{E}[w_{ij}^2]\\,\\mathbb{E}[(g^t_i)^2]
          + \\sum_{i \\neq k} \\mathbb{E}[w_{ij}]\\,\\mathbb{E}[w_{kj}]\\,
            \\mathbb{E}[g^t_i g^t_k]
        = n_t\\,\\gamma_t\\,(b_t + m_t^2).
    """
    model, asm = BACKWARD_MODEL, BACKWARD_ASSUMPTIONS
    mean, second, variance = layer_moments(
        g_prev[j], model, asm, "zero-mean-upstream", "backward-variance"
    )

    factor = sp.simplify(variance.result / b_t)
    gamma_star = _solve1(sp.Eq(factor, 1), gamma)
    return Claim(
        id="backward-variance",
        lecture=("L4.1", "L6.1", "L6.2"),
        title=_BACKWARD_TITLE,
        summary=_BACKWARD_SUMMARY,
        assumptions=asm,
        derivations=(_transpose_derivation(), mean, second, variance),
        conditions=(sp.Eq(factor, 1), sp.Eq(gamma, gamma_star)),
        confirmations=(_confirm_backward(mean.result, second.result),),
        probes=_backward_probes(mean.result, variance.result, factor, gamma_star),
    )


# =========================================================================== S5

n_out = sp.Symbol("n_d", integer=True, positive=True)
n_in = sp.Symbol("n_{d-1}", integer=True, positive=True)
gamma_d = sp.Symbol("gamma_d", positive=True)
mu_in = sp.Symbol("mu_d-1", real=True)
v_in = sp.Symbol("v_{d-1}", positive=True)
col = sp.IndexedBase("c^{d}")
rest = sp.IndexedBase("u^{d}")
h_out = sp.IndexedBase("h^{d}")
h_in = sp.IndexedBase("h^{d-1}")
grad_in = sp.IndexedBase("g^{d-1}")
#: exact backward variance over the independence prediction
rho = sp.Symbol("rho", positive=True)

LOSS_MODEL = Model(
    families=(
        RandomFamily(
            col,
            "column j of W^d, i.i.d. N(0, gamma_d)",
            sp.Integer(0),
            gamma_d,
            True,
            law="normal",
        ),
        RandomFamily(
            rest,
            "the other n_{d-1} - 1 columns of W^d, i.i.d. N(0, gamma_d)",
            sp.Integer(0),
            gamma_d,
            True,
            law="normal",
        ),
        RandomFamily(
            h_in,
            "inputs of layer d, identically distributed",
            mu_in,
            v_in,
            False,
            computed=True,
        ),
    ),
    definitions={
        grad_in: (
            (j,),
            sp.Sum(
                col[i] * (col[i] * h_in[j] + sp.Sum(rest[i, m] * h_in[m], (m, 1, n_in - 1))),
                (i, 1, n_out),
            ),
        )
    },
    mutually_independent=frozenset({col, rest, h_in}),
    width=n_out,
    free_indices={j: 0},
    parameters=frozenset({n_in}),
)

LOSS_ASSUMPTIONS = (
    Assumption(
        "gaussian-weights",
        r"the entries of the $n_d \times n_{d-1}$ matrix $W^d$ are i.i.d. "
        r"$N(0, \gamma_d)$, independent of the input $h^{d-1}$",
    ),
    Assumption(
        "column-split",
        r"for a fixed entry $j$, $c^d_i = w^d_{ij}$ is column $j$ of $W^d$ and "
        r"$u^d_{im}$, $m = 1, \dots, n_{d-1} - 1$, are the other columns, with "
        r"$h^{d-1}_m$ the matching other inputs (a relabelling: the columns are i.i.d.)",
    ),
    Assumption(
        "identical-inputs",
        r"the $h^{d-1}_k$ share mean $\mu_{d-1}$ and variance $v_{d-1}$; they need not be "
        "independent",
    ),
    Assumption(
        "half-squared-loss",
        r"$\ell = \frac{1}{2}\|h^d\|^2$ with $h^d = W^d h^{d-1}$, so "
        r"$\partial\ell/\partial h^d = h^d$ depends on $W^d$",
    ),
    Assumption(
        "zero-mean-input",
        r"$\mathbb{E}[h^{d-1}_k] = \mu_{d-1} = 0$",
        {mu_in: sp.Integer(0)},
    ),
)


def _loss_gradient_derivation() -> Derivation:
    """:math:`\\partial\\ell/\\partial h^{d-1}_1` for a concrete 2x3 layer, by ``sp.diff``."""
    rows, cols = 2, 3
    W = sp.Matrix(rows, cols, lambda r, c: sp.Symbol(f"w_{r + 1}{c + 1}", real=True))
    hp = sp.Matrix(cols, 1, lambda r, _: sp.Symbol(f"h_{r + 1}", real=True))
    out = W * hp
    loss = HALF * (out.T * out)[0, 0]
    first = sp.diff(loss, hp[0])
    return (
        Chain("loss gradient", first)
        .step(
            (W.T * out)[0],
            "sympy.diff",
            r"$\partial\ell/\partial h^{d-1} = (W^d)^T h^d$, shown for "
            r"$n_d = 2$, $n_{d-1} = 3$, $j = 1$",
        )
        .step(
            sp.Add(
                *[
                    W[r, 0] * (W[r, 0] * hp[0] + sp.Add(*[W[r, c] * hp[c] for c in range(1, cols)]))
                    for r in range(rows)
                ]
            ),
            "column split",
            r"$h^d_i = w_{ij} h^{d-1}_j + \sum_{m \neq j} w_{im} h^{d-1}_m$: the upstream "
            r"gradient contains the very weight it is multiplied by",
        )
        .done()
    )


def _confirm_loss(second: sp.Expr, shapes=((1, 2), (2, 1))) -> Check:
    """Exact :math:`\\mathbb{E}[g_1^2]` for Gaussian layers of the given shapes."""
    for rows, cols in shapes:
        ws = [
            [stats.Normal(f"W{r}{c}", 0, sp.sqrt(gamma_d)) for c in range(cols)]
            for r in range(rows)
        ]
        xs = [stats.Normal(f"X{c}", 0, sp.sqrt(v_in)) for c in range(cols)]
        out = [sp.Add(*[ws[r][c] * xs[c] for c in range(cols)]) for r in range(rows)]
        grad = sp.Add(*[ws[r][0] * out[r] for r in range(rows)])
        got = sp.simplify(stats.E(sp.expand(grad**2)))
        want = second.subs({n_out: rows, n_in: cols})
        if sp.simplify(got - want) != 0:
            return Check(f"sympy.stats {rows}x{cols}", Status.REFUTED, f"got {got}, derived {want}")
    shown = ", ".join(f"{r}x{c}" for r, c in shapes)
    return Check(
        f"sympy.stats {shown}",
        Status.TESTED,
        "exact E[(dl/dh^{d-1}_1)^2] of Gaussian layers with N(0, v) inputs, computed by "
        "sympy.stats without the moment calculus, equals the derived variance",
    )


# (label, (n_{d-1}, n_d), probe the independence value too?)
_LOSS_PROBES = (("8x4", (8, 4), True), ("256x256", (256, 256), True), ("512x8", (512, 8), False))


_LOSS_SUMMARY = (
    r"With $\ell = \frac{1}{2}\|h^d\|^2$ the upstream gradient is $h^d = W^d h^{d-1}$, "
    r"which contains $W^d$. For Gaussian weights the exact variance of "
    r"$\partial\ell/\partial h^{d-1}_j$ is $n_d\gamma_d^2(n_d + n_{d-1} + 1)v_{d-1}$, "
    r"which exceeds the independence prediction $n_d\gamma_d\operatorname{Var}[h^d_i]$ "
    r"by the relative error $(n_d + 1)/n_{d-1}$."
)
_LOSS_QUALIFICATION = (
    r"The independence prediction holds only when the fan-in is much larger than "
    r"the fan-out, $n_{d-1} \gg n_d + 1$ (for example a narrow output layer): the "
    r"relative error $(n_d + 1)/n_{d-1}$ tends to $0$ as $n_{d-1}$ grows with $n_d$ "
    r"fixed, but to $1$ when both widths grow together, so at equal widths the "
    r"gradient variance is about twice the prediction however wide the layer."
)


def _loss_moments() -> tuple[Derivation, Derivation]:
    """Mean and exact variance of :math:`\\partial\\ell/\\partial h^{d-1}_j`, Gaussian weights."""
    model, asm = LOSS_MODEL, LOSS_ASSUMPTIONS
    mean = Chain("mean", Ex(grad_in[j]), model, asm).apply_all(MOMENT_OF_SUM).done()
    # Var[g] written as E[g^2] - E[g]^2 (the definition), which the instance check
    # evaluates far faster than a central moment
    chain = (
        Chain("variance", Ex(grad_in[j] ** 2) - Ex(grad_in[j]) ** 2, model, asm)
        .apply(substitute_definitions)
        .apply(expand_expectations)
        .apply(factor_independent)
        .apply(substitute_moments)
        .apply(gaussian_moments)
        .apply(evaluate_sums)
    )
    exact = sp.factor(chain.current.subs(mu_in, 0))
    variance = chain.step(exact, "simplify", "zero-mean input", uses=("zero-mean-input",)).done()
    return mean, variance


def _independence_prediction() -> tuple[Derivation, Derivation]:
    """:math:`\\operatorname{Var}[h^d_i]` (L5.2), then L6.2 with it as the upstream variance."""
    layer_d = (
        Chain("variance of h^d", Var(h_out[i]))
        .use(
            "forward-variance",
            forward_variance().derivation("variance"),
            {h: h_out, h_prev: h_in, n_prev: n_in, gamma: gamma_d, v_prev: v_in},
        )
        .done()
    )
    prediction = (
        Chain("independence prediction", Var(grad_in[j]))
        .use(
            "backward-variance",
            backward_variance().derivation("variance"),
            {g_prev: grad_in, n_t: n_out, gamma: gamma_d, b_t: layer_d.result},
        )
        .done()
    )
    return layer_d, prediction


def _relative_error(
    exact: sp.Expr, independent: sp.Expr
) -> tuple[Derivation, Derivation, Derivation]:
    """The relative error of the prediction and its limits: wide fan-in, equal widths."""
    err_expr = exact / independent - 1
    error = (
        Chain("relative error", err_expr)
        .step(
            sp.cancel(err_expr),
            "simplify",
            r"exact variance over the independence prediction "
            r"$n_d\gamma_d\operatorname{Var}[h^d_i]$, minus one",
        )
        .done()
    )
    wide_in = Chain("wide fan-in", sp.Limit(error.result, n_in, sp.oo))
    wide_in = wide_in.step(
        sp.limit(error.result, n_in, sp.oo), "sympy.limit", r"$n_{d-1} \to \infty$, $n_d$ fixed"
    ).done()
    both = {n_out: n_eq, n_in: n_eq}
    equal = Chain("equal widths", sp.Limit(error.result.subs(both), n_eq, sp.oo))
    equal = equal.step(
        sp.limit(error.result.subs(both), n_eq, sp.oo),
        "sympy.limit",
        r"$n_d = n_{d-1} = n \to \infty$",
    ).done()
    return error, wide_in, equal


def _loss_probes(exact: sp.Expr, independent: sp.Expr) -> tuple[Probe, ...]:
    """The exact variance (and the independence value) at each of ``_LOSS_PROBES``."""
    gamma_fwd = _forward_gamma()
    probes = []
    for label, (fan_in, fan_out), with_independent in _LOSS_PROBES:
        var_w = gamma_fwd.subs(n_prev, fan_in)
        values = {n_in: fan_in, n_out: fan_out, gamma_d: var_w, v_in: 1}
        weights = _law("normal", {"std": sp.sqrt(var_w)})
        scenario = mlp_scenario([fan_in, fan_out], weights, upstream={"loss": "half_squared"})
        obs = {"direction": "backward", "moment": "var", "layer": 0}
        cases = [("exact", exact, "agrees")]
        if with_independent:
            cases.append(("independent", independent, "disagrees"))
        for suffix, expr, expect in cases:
            probes.append(Probe.derived(f"{label}-{suffix}", scenario, obs, expr, values, expect))
    return tuple(probes)


@cache
def backward_independence() -> Claim:
    """S5: with :math:`\\ell = \\frac12\\|h^d\\|^2` the upstream gradient is not independent.

    Returns
    -------
    Claim
        The exact variance of :math:`\\partial\\ell/\\partial h^{d-1}_j` for one Gaussian
        layer, its ratio to the independence prediction, and probes.

    Notes
    -----
    .. math::

        \\operatorname{Var}\\Big[\\sum_i w_{ij} \\sum_k w_{ik} h_k\\Big]
        = n_d \\gamma_d^2 (n_d + n_{d-1} + 1)\\, v_{d-1}
        = n_d \\gamma_d \\operatorname{Var}[h^d_i] \\cdot
          \\Big(1 + \\frac{n_d + 1}{n_{d-1}}\\Big),

    using :math:`\\mathbb{E}[w^4] = 3\\gamma_d^2` (Gaussian). The relative error
    :math:`(n_d + 1)/n_{d-1}` vanishes only when the fan-in outgrows the fan-out; at
    equal widths it tends to 1, not 0.
    """
    mean, variance = _loss_moments()
    exact = variance.result
    layer_d, prediction = _independence_prediction()
    independent = prediction.result
    error, wide_in, equal = _relative_error(exact, independent)
    return Claim(
        id="backward-independence",
        lecture=("L6.2", "S5"),
        title="Backward variance with a real loss: the upstream gradient depends on the weights",
        summary=_LOSS_SUMMARY,
        assumptions=LOSS_ASSUMPTIONS,
        derivations=(
            _loss_gradient_derivation(),
            mean,
            variance,
            layer_d,
            prediction,
            error,
            wide_in,
            equal,
        ),
        conditions=(sp.Eq(rho, sp.cancel(exact / independent)),),
        confirmations=(_confirm_loss(exact),),
        probes=_loss_probes(exact, independent),
        qualification=_LOSS_QUALIFICATION,
    )


# =========================================================================== S1


def _gaussian_density(var: sp.Expr, at: sp.Symbol) -> sp.Expr:
    """Density of :math:`N(0, v)` from ``sympy.stats`` (not typed in)."""
    return stats.density(stats.Normal("Z", 0, sp.sqrt(var)))(at)


def relu_moments() -> tuple[Derivation, Derivation, Derivation]:
    """Mean, second moment and variance of :math:`\\mathrm{relu}(z)`, :math:`z \\sim N(0, q)`.

    Notes
    -----
    .. math::

        \\mathbb{E}[\\mathrm{relu}(z)] = \\sqrt{\\frac{q}{2\\pi}}, \\quad
        \\mathbb{E}[\\mathrm{relu}(z)^2] = \\frac{q}{2}, \\quad
        \\operatorname{Var}[\\mathrm{relu}(z)] = \\frac{q}{2} - \\frac{q}{2\\pi}.
    """
    phi = _gaussian_density(q, z)
    relu = sp.Max(0, z)
    why = r"$\mathrm{relu}(z) = 0$ for $z \le 0$"
    out = []
    for name, p in (("relu mean", 1), ("relu second moment", 2)):
        half = sp.Integral(z**p * phi, (z, 0, sp.oo))
        out.append(
            Chain(name, sp.Integral(relu**p * phi, (z, -sp.oo, sp.oo)))
            .step(half, "support", why)
            .step(
                sp.integrate(half.function, half.limits[0]), "sympy.integrate", "Gaussian integral"
            )
            .done()
        )
    first, second = out
    var = (
        Chain("relu variance", second.start - first.start**2)
        .use("second-moment-recursion", second, lhs=second.start)
        .use("second-moment-recursion", first, lhs=first.start)
        .step(
            sp.expand(second.result - first.result**2),
            "expand",
            r"$\operatorname{Var}[X] = \mathbb{E}[X^2] - \mathbb{E}[X]^2$",
        )
        .done()
    )
    return first, second, var


_S1_PROBES = (
    ("256x256x256-normal", (256, 256, 256), "normal"),
    ("64x128x32-uniform", (64, 128, 32), "uniform"),
)


_S1_SUMMARY = (
    r"L5.2 writes $\mathbb{E}[(h^{t-1}_j)^2] = \operatorname{Var}[h^{t-1}_j]$, which "
    r"needs a zero mean. For $z \sim N(0, q)$, $\mathbb{E}[\mathrm{relu}(z)] = "
    r"\sqrt{q/(2\pi)} \neq 0$, so $\operatorname{Var}[\mathrm{relu}(z)] = q/2 - "
    r"q/(2\pi)$ while $\mathbb{E}[\mathrm{relu}(z)^2] = q/2$; the pre-activation "
    r"variance follows $\operatorname{Var}[z^t] = n_{t-1}\gamma_t\,"
    r"\mathbb{E}[(h^{t-1})^2]$."
)
_S1_CORRECTED = (
    r"$\operatorname{Var}[z^t] = n_{t-1}\gamma_t\,\mathbb{E}[(h^{t-1})^2]$; after a "
    r"ReLU $\mathbb{E}[(h^{t-1})^2] = q/2$, and using $\operatorname{Var}[h^{t-1}] = "
    r"q/2 - q/(2\pi)$ instead underestimates the next variance by the factor "
    r"$1 - 1/\pi$."
)
_S1_GAUSSIAN = Assumption(
    "gaussian-preactivation",
    r"$z^{t-1} \sim N(0, q)$ and $h^{t-1} = \mathrm{relu}(z^{t-1})$",
)


def _relu_recursions(relu_values: dict) -> tuple[Derivation, Derivation]:
    """The forward recursion after a ReLU, with :math:`\\mathbb{E}[h^2]` and with the variance."""
    fwd = forward_variance()
    general = fwd.derivation("second moment").result  # n gamma (v + mu^2), He's form
    lecture = fwd.derivation("variance").result  # n gamma v
    recursion = (
        Chain("recursion after relu", Var(h[i]))
        .use("forward-variance", fwd.derivation("second moment"), relu_values)
        .step(
            sp.simplify(general.subs(relu_values)),
            "simplify",
            r"$v_{t-1} + \mu_{t-1}^2 = \mathbb{E}[\mathrm{relu}(z)^2] = q/2$",
        )
        .done()
    )
    loose = (
        Chain("lecture recursion after relu", Var(h[i]) / recursion.result)
        .use(
            "forward-variance",
            fwd.derivation("variance"),
            {v_prev: relu_values[v_prev]},
            lhs=Var(h[i]),
        )
        .step(
            sp.simplify(lecture.subs(relu_values) / recursion.result),
            "simplify",
            r"replacing $\mathbb{E}[h^2]$ by $\operatorname{Var}[h]$ loses the factor "
            r"$1 - 1/\pi$",
        )
        .done()
    )
    return recursion, loose


def _s1_probes(ratio: sp.Expr, loose_ratio: sp.Expr) -> tuple[Probe, ...]:
    """Layer-2 over layer-1 pre-activation variance of relu networks at ``_S1_PROBES``."""
    gamma_fwd = _forward_gamma()
    obs = {
        "direction": "forward",
        "of": "preactivation",
        "moment": "var",
        "layer": 2,
        "relative_to": 1,
    }
    probes = []
    for label, widths, law in _S1_PROBES:
        var_w = gamma_fwd.subs(n_prev, widths[1])
        params = (
            {"std": sp.sqrt(var_w)}
            if law == "normal"
            else {"bound": _solve1(sp.Eq(weight_variance("uniform", {"bound": a}), var_w), a)}
        )
        values = {n_prev: widths[1], gamma: weight_variance(law, params)}
        scenario = mlp_scenario(widths, _law(law, params), activation="relu")
        for suffix, expr, expect in (
            ("second-moment", ratio, "agrees"),
            ("variance", loose_ratio, "disagrees"),
        ):
            probes.append(Probe.derived(f"{label}-{suffix}", scenario, obs, expr, values, expect))
    return tuple(probes)


@cache
def second_moment_recursion() -> Claim:
    """S1: the forward recursion needs :math:`\\mathbb{E}[h^2]`, not :math:`\\operatorname{Var}[h]`.

    Returns
    -------
    Claim
        ReLU moments by integration, the corrected recursion
        :math:`\\operatorname{Var}[z^t] = n_{t-1}\\gamma_t\\,\\mathbb{E}[(h^{t-1})^2]`
        (the forward claim before its zero-mean step), and probes.
    """
    first, second, var = relu_moments()
    fwd = forward_variance()
    relu_values = {v_prev: var.result, mu_prev: first.result}
    recursion, loose = _relu_recursions(relu_values)
    ratio = recursion.result / q
    loose_ratio = fwd.derivation("variance").result.subs(relu_values) / q
    return Claim(
        id="second-moment-recursion",
        lecture=("L5.2", "S1"),
        title="After a ReLU the forward recursion needs the second moment, not the variance",
        summary=_S1_SUMMARY,
        assumptions=(
            *assumptions_named(
                fwd.assumptions, "iid-weights", "independent-input", "identical-inputs"
            ),
            _S1_GAUSSIAN,
        ),
        derivations=(first, second, var, recursion, loose),
        conditions=(sp.Eq(ratio, 1), sp.Eq(gamma, _solve1(sp.Eq(ratio, 1), gamma))),
        confirmations=(_confirm_relu(first.result, second.result),),
        probes=_s1_probes(ratio, loose_ratio),
        corrected=_S1_CORRECTED,
    )


def _confirm_relu(mean: sp.Expr, second: sp.Expr) -> Check:
    """``sympy.stats`` expectation of ``Max(0, Z)``, a route without the split integral."""
    Z = stats.Normal("Z", 0, sp.sqrt(q))
    got = (sp.simplify(stats.E(sp.Max(0, Z))), sp.simplify(stats.E(sp.Max(0, Z) ** 2)))
    ok = sp.simplify(got[0] - mean) == 0 and sp.simplify(got[1] - second) == 0
    return Check(
        "sympy.stats",
        Status.COMPUTED if ok else Status.REFUTED,
        f"E[max(0, Z)] = {got[0]}, E[max(0, Z)^2] = {got[1]} for Z ~ N(0, q)",
    )


# =========================================================================== Xavier

JAX_TRUNCATED_STD = 0.87962566103423978
"""Cited: ``jax/_src/nn/initializers.py`` ("stddev of standard normal truncated to (-2, 2)")."""


def truncated_variance() -> Derivation:
    """Variance of :math:`N(0, 1)` truncated to :math:`(-\\tau, \\tau)`, by integration.

    Notes
    -----
    .. math::

        c(\\tau) = \\frac{\\int_{-\\tau}^{\\tau} x^2 \\varphi(x)\\,dx}
                        {\\int_{-\\tau}^{\\tau} \\varphi(x)\\,dx}
                 = 1 - \\frac{2\\tau\\varphi(\\tau)}{2\\Phi(\\tau) - 1} .
    """
    phi = _gaussian_density(sp.Integer(1), x)
    mass = sp.Integral(phi, (x, -tau, tau))
    start = (
        sp.Integral(x**2 * phi, (x, -tau, tau)) / mass
        - (sp.Integral(x * phi, (x, -tau, tau)) / mass) ** 2
    )
    return (
        Chain("truncated normal variance", start)
        .step(sp.simplify(start.doit()), "sympy.integrate", "integrate the Gaussian density")
        .done()
    )


def _moment_chain(name: str, density: sp.Expr, lo: sp.Expr, hi: sp.Expr) -> Derivation:
    start = sp.Integral(x**2 * density, (x, lo, hi)) - sp.Integral(x * density, (x, lo, hi)) ** 2
    return (
        Chain(name, start)
        .step(sp.simplify(start.doit()), "sympy.integrate", "integrate the density")
        .done()
    )


_XAVIER_WIDTHS = (100, 30)


_XAVIER_TITLE = (
    "Xavier initialization: the fan average compromise in normal, uniform and truncated normal form"
)
_XAVIER_SUMMARY = (
    r"Forward ($n_{t-1}\gamma_t = 1$) and backward ($n_t\gamma_t = 1$) conditions "
    r"hold together only when $n_{t-1} = n_t$; Xavier asks the mean of the two factors "
    r"to be 1, $\gamma_t = 2/(n_{t-1} + n_t)$: a normal law with "
    r"$\sigma = \sqrt{2/(n_{t-1}+n_t)}$, a uniform law on $[-a, a]$ with "
    r"$a = \sqrt{6/(n_{t-1}+n_t)}$ since $\operatorname{Var}U[-a,a] = a^2/3$, or a "
    r"normal truncated at two standard deviations whose std must be divided by "
    r"$\sqrt{c(2)} \approx 0.8796$, the standard deviation of $N(0,1)$ truncated to "
    r"$(-2, 2)$ (JAX's constant); PyTorch's trunc_normal_ cuts at absolute bounds "
    r"and applies no correction."
)
_XAVIER_ASSUMPTIONS = (
    Assumption(
        "fan-average",
        r"the compromise asks the mean of the forward factor $n_{t-1}\gamma_t$ and "
        r"the backward factor $n_t\gamma_t$ to be $1$",
    ),
    Assumption(
        "truncation-in-std-units",
        r"truncated normal: $s\,T$ with $T \sim N(0,1)$ conditioned on "
        r"$-2 \le T \le 2$ (as in JAX)",
    ),
)


def _fan_average() -> tuple[list[dict], Derivation]:
    """Both conditions at once (equal widths only), and the mean of the two factors."""
    fwd = forward_variance().derivation("variance").result / v_prev  # n_{t-1} gamma_t
    bwd = backward_variance().derivation("variance").result / b_t  # n_t gamma_t
    both = sp.solve([sp.Eq(fwd, 1), sp.Eq(bwd, 1)], [gamma, n_t], dict=True)
    average = (
        Chain("fan average", (fwd + bwd) / 2)
        .step(sp.factor((fwd + bwd) / 2), "factor", "mean of the forward and backward factors")
        .done()
    )
    return both, average


def _law_variances() -> tuple[Derivation, Derivation, Derivation, Derivation]:
    """Variances of the normal, uniform and truncated laws, and PyTorch's absolute cut."""
    normal = _moment_chain("normal variance", _gaussian_density(sigma**2, x), -sp.oo, sp.oo)
    uniform = _moment_chain("uniform variance", 1 / (2 * a), -a, a)
    trunc = truncated_variance()
    torch_limit = (
        Chain("absolute truncation", sp.Limit(trunc.result.subs(tau, 2 / s), s, 0, "+"))
        .step(
            sp.limit(trunc.result.subs(tau, 2 / s), s, 0, "+"),
            "sympy.limit",
            r"cutting at $\pm 2$ absolute is cutting at $\pm 2/s$ standard deviations: "
            r"no effect as $s \to 0$",
        )
        .done()
    )
    return normal, uniform, trunc, torch_limit


def _xavier_laws(gamma_x: sp.Expr, forms: dict, uniform: sp.Expr, c2: sp.Expr) -> tuple:
    """(label, parameters, weight variance, probe backward?) at ``_XAVIER_WIDTHS``."""
    at = dict(zip((n_prev, n_t), _XAVIER_WIDTHS, strict=True))
    sigma_x, bound_x, scale_x = (forms[k].subs(at) for k in (sigma, a, s))
    return (
        ("normal", {"std": sigma_x}, sigma_x**2, True),
        ("uniform", {"bound": bound_x}, uniform.subs(a, bound_x), True),
        ("truncated_normal", {"std": scale_x, "a": -2, "b": 2}, scale_x**2 * c2, True),
        (
            "truncated_normal-uncorrected",
            {"std": sp.sqrt(gamma_x.subs(at)), "a": -2, "b": 2},
            gamma_x.subs(at) * c2,
            False,
        ),
    )


def _xavier_probes(gamma_x: sp.Expr, forms: dict, uniform: sp.Expr, c2: sp.Expr) -> tuple:
    """Forward (and backward) variance of one linear layer for each Xavier form."""
    n_in_, n_out_ = _XAVIER_WIDTHS
    at = {n_prev: n_in_, n_t: n_out_}
    fwd_var = forward_variance().derivation("variance").result
    bwd_var = backward_variance().derivation("variance").result
    forward_obs = {"direction": "forward", "moment": "var", "layer": 1}
    probes = []
    for label, params, var_w, backward in _xavier_laws(gamma_x, forms, uniform, c2):
        weights = _law(label.split("-")[0], params)
        scenario = mlp_scenario(_XAVIER_WIDTHS, weights, upstream={"law": "normal", "std": 1.0})
        values = {**at, gamma: var_w, v_prev: 1, b_t: 1}
        cases = [("forward", fwd_var, forward_obs)]
        if backward:
            cases.append(
                ("backward", bwd_var, {"direction": "backward", "moment": "var", "layer": 0})
            )
        for direction, expr, obs in cases:
            label_ = f"{n_in_}x{n_out_}-{label}-{direction}"
            probes.append(Probe.derived(label_, scenario, obs, expr, values))
        if not backward:  # the naive prediction ignores the truncation
            probes.append(
                Probe.derived(
                    f"{n_in_}x{n_out_}-{label}-forward-naive",
                    scenario,
                    forward_obs,
                    fwd_var,
                    {**values, gamma: gamma_x.subs(at)},
                    expect="disagrees",
                    note="the naive reading: the truncated law keeps the untruncated variance",
                )
            )
    return tuple(probes)


@cache
def xavier() -> Claim:
    """L7.1 and L7.2: the fan-average compromise and its normal, uniform, truncated forms.

    Returns
    -------
    Claim
        :math:`\\gamma_t = 2/(n_{t-1} + n_t)` by :func:`sympy.solve`, the normal std, the
        uniform bound from :math:`\\operatorname{Var} U[-a, a] = a^2/3`, the truncated
        normal correction (:math:`c(2) \\approx 0.7737`, :math:`\\sqrt{c(2)} \\approx
        0.8796`, JAX's constant), and forward/backward probes for each form.

    Notes
    -----
    .. math::

        \\gamma_t = \\frac{2}{n_{t-1} + n_t}, \\quad
        \\sigma = \\sqrt{\\frac{2}{n_{t-1} + n_t}}, \\quad
        a = \\sqrt{\\frac{6}{n_{t-1} + n_t}}, \\quad
        s = \\frac{\\sigma}{\\sqrt{c(2)}} .

    PyTorch's ``trunc_normal_(std=s, a=-2, b=2)`` cuts at the absolute values
    :math:`\\pm 2`, i.e. at :math:`\\pm 2/s` standard deviations: its variance is
    :math:`s^2 c(2/s) \\to s^2` for small ``s``, and it applies no correction.
    """
    both, average = _fan_average()
    gamma_x = _solve1(sp.Eq(average.result, 1), gamma)
    normal, uniform, trunc, torch_limit = _law_variances()
    c2 = trunc.result.subs(tau, 2)
    forms = {
        sigma: _solve1(sp.Eq(normal.result, gamma_x), sigma),
        a: _solve1(sp.Eq(uniform.result, gamma_x), a),
        s: _solve1(sp.Eq(s**2 * c2, gamma_x), s),
    }
    return Claim(
        id="xavier",
        lecture=("L7.1", "L7.2"),
        title=_XAVIER_TITLE,
        summary=_XAVIER_SUMMARY,
        assumptions=(
            *assumptions_named(BACKWARD_ASSUMPTIONS, "iid-weights", "independent-upstream"),
            *_XAVIER_ASSUMPTIONS,
        ),
        derivations=(average, normal, uniform, trunc, torch_limit),
        conditions=(
            *(sp.Eq(k, v) for sol in both for k, v in sol.items()),
            sp.Eq(gamma, gamma_x),
            *(sp.Eq(symbol, value) for symbol, value in forms.items()),
        ),
        confirmations=(_confirm_jax(c2),),
        probes=_xavier_probes(gamma_x, forms, uniform.result, c2),
    )


def _confirm_jax(c2: sp.Expr) -> Check:
    """The derived :math:`\\sqrt{c(2)}` against JAX's cited constant (a double)."""
    derived = sp.sqrt(c2).evalf(30)
    err = abs(float(derived - sp.Float(repr(JAX_TRUNCATED_STD), 30)))
    ok = err < 4 * 2.0**-53
    return Check(
        "cited constant",
        Status.TESTED if ok else Status.REFUTED,
        f"sqrt(c(2)) = {derived}; jax/_src/nn/initializers.py uses "
        f"{JAX_TRUNCATED_STD!r}; difference {err:.1e} (double precision is 1.1e-16)",
    )


# =========================================================================== L8

h_pre = sp.IndexedBase("h'")
h_act, g_act = h, g  # the activation h^t_i and its gradient g^t_i
g_pre = sp.IndexedBase("g'")
mu_pre = sp.Symbol("mu'", real=True)
v_pre = sp.Symbol("v'", positive=True)
y = sp.Symbol("y", real=True)

ACTIVATION = alpha * y + beta
"""The linear activation :math:`\\sigma(y) = \\alpha y + \\beta` (L8.1)."""
SLOPE = sp.diff(ACTIVATION, y)

AFFINE_MODEL = Model(
    families=(
        RandomFamily(
            h_pre,
            "pre-activations h' = W^t h^{t-1}, identically distributed",
            mu_pre,
            v_pre,
            False,
            computed=True,
        ),
        RandomFamily(
            g_act,
            "gradient dl/dh^t, identically distributed",
            m_t,
            b_t,
            False,
            computed=True,
        ),
    ),
    definitions={
        h_act: ((i,), ACTIVATION.subs(y, h_pre[i])),
        g_pre: ((i,), SLOPE * g_act[i]),
    },
    mutually_independent=frozenset(),
    width=n_t,
    free_indices={i: 1},
    parameters=frozenset({alpha, beta}),
)

AFFINE_ASSUMPTIONS = (
    Assumption(
        "identical-preactivations",
        r"the $h'_i$ share mean $\mu'$ and variance $v'$",
    ),
    Assumption(
        "zero-mean-preactivation",
        r"$\mathbb{E}[h'_i] = \mu' = 0$ (L5.1)",
        {mu_pre: sp.Integer(0)},
    ),
    Assumption(
        "identical-gradients",
        r"the $\partial\ell/\partial h^t_i$ share mean $m_t$ and variance $b_t$",
    ),
)


_AFFINE_TITLE = (
    "Linear activation: the forward mean fixes the offset, the variances fix the slope up to sign"
)
_AFFINE_SUMMARY = (
    r"For $\sigma(y) = \alpha y + \beta$ after a zero-mean pre-activation $h'$, "
    r"$\mathbb{E}[h^t_i] = \beta$ and $\operatorname{Var}[h^t_i] = \alpha^2 "
    r"\operatorname{Var}[h'_i]$; backward, $\partial\ell/\partial h'_i = \alpha\,"
    r"\partial\ell/\partial h^t_i$, with mean $\alpha\,\mathbb{E}[\partial\ell/"
    r"\partial h^t_i]$ and variance $\alpha^2\operatorname{Var}[\partial\ell/"
    r"\partial h^t_i]$. So $\beta = 0$ comes from the forward mean only, and "
    r"$\alpha^2 = 1$ from either variance: $\alpha = \pm 1$, where $\alpha = -1$ "
    r"works as well and $\alpha = 1$ is the choice that makes $\sigma$ the identity."
)
_AFFINE_CORRECTED = (
    r"$\beta = 0$ follows from the forward mean $\mathbb{E}[h^t_i] = \beta$ alone; "
    r"the backward mean $\alpha\,\mathbb{E}[\partial\ell/\partial h^t_i]$ does not "
    r"contain $\beta$ ($\partial/\partial\beta = 0$), so the backward pass gives no "
    r"condition on $\beta$, only $\alpha^2 = 1$."
)
_NO_BETA = r"the backward mean $\alpha m_t$ does not contain $\beta$"
_WITH_BETA = "the forward mean moves with beta"


def _moments_chain(name: str, start: sp.Expr) -> Chain:
    """Definitions, variance definition, expectations and moments of the affine model."""
    return (
        Chain(name, start, AFFINE_MODEL, AFFINE_ASSUMPTIONS)
        .apply(substitute_definitions)
        .apply(variance_definition)
        .apply(expand_expectations)
        .apply(substitute_moments)
    )


def _affine_forward() -> tuple[sp.Expr, Derivation, Derivation]:
    """The forward mean before and after the zero-mean step, and the forward variance."""
    fwd_mean_chain = (
        Chain("forward mean", Ex(h_act[i]), AFFINE_MODEL, AFFINE_ASSUMPTIONS)
        .apply(substitute_definitions)
        .apply(linearity)
        .apply(substitute_moments)
    )
    fwd_mean_general = fwd_mean_chain.current
    fwd_mean = fwd_mean_chain.assume("zero-mean-preactivation").done()
    fwd_var_chain = _moments_chain("forward variance", Var(h_act[i]))
    fwd_var = fwd_var_chain.step(sp.expand(fwd_var_chain.current), "expand", "collect terms").done()
    return fwd_mean_general, fwd_mean, fwd_var


def _affine_backward() -> tuple[Derivation, Derivation, Derivation]:
    """The slope by ``sp.diff``, then the backward mean and variance."""
    slope = (
        Chain("slope", sp.Derivative(ACTIVATION, y))
        .step(
            SLOPE,
            "sympy.diff",
            r"$\partial\ell/\partial h'_i = \sigma'(h'_i)\,"
            r"\partial\ell/\partial h^t_i$",
        )
        .done()
    )
    bwd_mean = (
        Chain("backward mean", Ex(g_pre[i]), AFFINE_MODEL, AFFINE_ASSUMPTIONS)
        .apply(substitute_definitions)
        .apply(linearity)
        .apply(substitute_moments)
        .done()
    )
    bwd_var_chain = _moments_chain("backward variance", Var(g_pre[i]))
    bwd_var = bwd_var_chain.step(sp.expand(bwd_var_chain.current), "expand", "collect terms").done()
    return slope, bwd_mean, bwd_var


def _in_beta(name: str, mean: sp.Expr, why: str) -> Derivation:
    """The derivative of a mean in the offset :math:`\\beta`, by ``sp.diff``."""
    return (
        Chain(name, sp.Derivative(mean, beta)).step(sp.diff(mean, beta), "sympy.diff", why).done()
    )


def _identity_probes(
    fwd_mean: Derivation, fwd_var: Derivation, bwd_mean: Derivation, bwd_var: Derivation
) -> tuple[Probe, ...]:
    """The four moments at the engine's "linear" activation, alpha = 1 and beta = 0."""
    identity = {alpha: 1, beta: 0}
    fwd_lin = forward_variance().derivation("variance").result  # n_{t-1} gamma_t v_{t-1}
    bwd_lin = backward_variance().derivation("variance").result  # n_t gamma_t b_t
    var_w = sp.Rational(1, 100)
    widths = (100, 30)
    values = {n_prev: widths[0], n_t: widths[1], gamma: var_w, v_prev: 1, b_t: 1, m_t: 0}
    weights = _law("normal", {"std": sp.sqrt(var_w)})
    scenario = mlp_scenario(widths, weights, upstream={"law": "normal", "std": 1.0})
    cases = (
        ("forward-mean", fwd_mean.result, "forward", "mean", 1),
        ("forward-var", fwd_var.result.subs(v_pre, fwd_lin), "forward", "var", 1),
        ("backward-mean", bwd_mean.result, "backward", "mean", 0),
        ("backward-var", bwd_var.result.subs(b_t, bwd_lin), "backward", "var", 0),
    )
    return tuple(
        Probe.derived(
            f"100x30-identity-{label}",
            scenario,
            {"direction": direction, "moment": moment, "layer": layer},
            expr,
            {**identity, **values},
        )
        for label, expr, direction, moment, layer in cases
    )


@cache
def linear_activation() -> Claim:
    """L8.1, L8.2 and S3: moments through :math:`\\sigma(y) = \\alpha y + \\beta`.

    Returns
    -------
    Claim
        Forward mean :math:`\\beta` and variance :math:`\\alpha^2 v'`, backward slope
        :math:`\\alpha` (by ``sp.diff``), backward mean :math:`\\alpha m_t` and variance
        :math:`\\alpha^2 b_t`; the conditions :math:`\\beta = 0` (forward mean only) and
        :math:`\\alpha = \\pm 1`; and the derivative of the backward mean in
        :math:`\\beta`, which is 0 (S3).

    Notes
    -----
    The variance conditions give :math:`\\alpha^2 = 1`, i.e. :math:`\\alpha = \\pm 1`,
    and nothing in the moments prefers a sign: :math:`\\sigma(y) = -y` keeps mean 0 and
    every variance, and with a symmetric weight law it only flips the sign of the
    next layer's weights, which leaves their law unchanged. The lecture takes
    :math:`\\alpha = 1` because it then compares activations with the identity
    (slope :math:`+1` at 0, as for tanh and relu in L8.3).
    """
    fwd_mean_general, fwd_mean, fwd_var = _affine_forward()
    slope, bwd_mean, bwd_var = _affine_backward()
    no_beta = _in_beta("backward mean in beta", bwd_mean.result, _NO_BETA)
    with_beta = _in_beta("forward mean in beta", fwd_mean_general, _WITH_BETA)
    beta_star = _solve1(sp.Eq(fwd_mean.result, 0), beta)
    alphas = sp.solve(sp.Eq(fwd_var.result / v_pre, 1), alpha)
    alphas_bwd = sp.solve(sp.Eq(bwd_var.result / b_t, 1), alpha)
    if sorted(alphas) != sorted(alphas_bwd):
        raise AssertionError(f"forward and backward give different alpha: {alphas}, {alphas_bwd}")
    return Claim(
        id="linear-activation",
        lecture=("L8.1", "L8.2", "S3"),
        title=_AFFINE_TITLE,
        summary=_AFFINE_SUMMARY,
        assumptions=AFFINE_ASSUMPTIONS,
        derivations=(fwd_mean, fwd_var, slope, bwd_mean, bwd_var, with_beta, no_beta),
        conditions=(
            sp.Eq(beta, beta_star),
            *(sp.Eq(alpha, r) for r in alphas),
        ),
        confirmations=(),
        probes=_identity_probes(fwd_mean, fwd_var, bwd_mean, bwd_var),
        corrected=_AFFINE_CORRECTED,
    )


#: Builders of this module's claims, in the lecture's order.
BUILDERS: tuple[Callable[[], Claim], ...] = (
    backward_variance,
    backward_independence,
    second_moment_recursion,
    xavier,
    linear_activation,
)
