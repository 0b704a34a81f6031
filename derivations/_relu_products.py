r"""Lecture item L2.2: relu's derivative is 0 or 1, so the Jacobian product is a masked one.

.. math::

    \operatorname{relu}'(x) = H(x) \in \{0, 1\}\ (x \neq 0), \qquad
    \frac{\partial h^2}{\partial h^0} = D_2 W^2 D_1 W^1, \qquad
    \frac{\mathbb{E}[(g^{t-1}_j)^2]}{\mathbb{E}[(g^t_i)^2]}
    = n_t\gamma_t\,\mathbb{E}[H(z^t_i)^2] = \frac{n_t\gamma_t}{2} .

Within a fixed activation pattern every layer Jacobian is :math:`D_t W^t` with
:math:`D_t` a 0/1 diagonal matrix, so the entries of the product are entries of
products of sub-matrices of the :math:`W^t`, with the rows of inactive units zeroed.
The mask halves the mean-square growth per layer: after :math:`d - t` layers the
gradient's second moment is multiplied by :math:`(n\gamma/2)^{d-t}`, against
:math:`(n\gamma)^{d-t}` for the unmasked product.

Exactness at finite width: for :math:`g^{t-1}_j = \sum_i w^t_{ij} H(z^t_i) g^t_i` with
an upstream gradient :math:`g^t` independent of the network and of mean 0, the cross
terms vanish and :math:`\mathbb{E}[(w^t_{ij})^2 H(z^t_i)] = \gamma_t/2` exactly: given
:math:`|w^t_{ij}|` and :math:`h^{t-1}`, the pre-activation :math:`z^t_i` is symmetric
(symmetric weights), so :math:`P(z^t_i > 0) = 1/2`. The upstream gradient is
independent of the network only at the top layer :math:`d`, so the exact probes
measure the ratio of layer :math:`d-1` to layer :math:`d`.

References
----------
.. [1] Dive into Deep Learning, Sec. 5.4.1.2 "Exploding Gradients" (the 4x4
   :math:`N(0, 1)` matrices, :math:`\gamma = 1`) and the lecture's slide L2.2.
.. [2] K. He, X. Zhang, S. Ren and J. Sun (2015), "Delving Deep into Rectifiers",
   ICCV, Sec. 2.2, backward case: :math:`\operatorname{Var}[\Delta x_l] =
   \hat n_l \operatorname{Var}[w_l] \operatorname{Var}[\Delta y_l]/2`, fixed by
   :math:`\hat n_l \operatorname{Var}[w_l]/2 = 1`.
.. [3] S. Schoenholz, J. Gilmer, S. Ganguli and J. Sohl-Dickstein (2017), "Deep
   Information Propagation", ICLR: the gradient factor :math:`\chi_1 = \sigma_w^2\,
   \mathbb{E}[\phi'(z)^2]`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import sympy as sp
from sympy import stats

from . import _calculus as rules
from ._building import by_name, mlp_scenario
from ._calculus import Ex
from ._check import Chain
from ._claim import Assumption, Check, Claim, Derivation, Probe, Status
from ._gaussian import gaussian_integral
from ._gradients import (
    D2L_FACTORS,
    D2L_N,
    V_G,
    _product,
    _unevaluated_jacobian,
    backward_model,
    jacobian_network,
    weight_variance,
)
from ._symbols import g_prev as G_PREV
from ._symbols import gamma as GAMMA
from ._symbols import j as J_IDX
from ._symbols import k as K_IDX
from ._symbols import n_t as N_T
from ._symbols import q as Q
from ._symbols import s as S_SCALE
from ._symbols import x as X

MU_U = sp.Symbol("mu_u", real=True)
V_U = sp.Symbol("v_u", positive=True)
LAYERS = sp.Symbol("L", integer=True, positive=True)
U = sp.IndexedBase("u^{t}")

#: relu written out; its derivative comes from :func:`sympy.diff`.
RELU = sp.Max(0, X)
#: The linear activation, whose Jacobian product is the unmasked one.
LINEAR = X

#: Widths of the symbolic two-layer example and its activation pattern (1 = active).
WIDTHS = (3, 2, 3)
PATTERN = ((1, 0), (1, 0, 1))
#: A point (h^0, W^1, W^2) inside that pattern, to show the pattern is not empty.
PATTERN_POINT = {
    "h0": (1, 2, -1),
    "W1": ((2, 1, 1), (-1, -1, 3)),
    "W2": ((1, 2), (-3, 1), (2, -2)),
}

#: The simulated networks: width, depth, and the He per-layer factor n*gamma.
PROBE_WIDTH, PROBE_DEPTH = 128, 4


def _relu(z: sp.Expr) -> sp.Expr:
    return RELU.subs(X, z)


def _network() -> dict:
    return jacobian_network(_relu, WIDTHS)


def _pattern_subs(net: dict) -> dict:
    """``H(z^t_i) -> 0 or 1`` for the units of :data:`PATTERN`."""
    subs = {}
    for t, mask in zip((1, 2), PATTERN, strict=True):
        for zi, m in zip(net[f"z{t}"], mask, strict=True):
            subs[sp.Heaviside(zi)] = sp.Integer(m)
    return subs


def _pattern_text() -> str:
    parts = []
    for t, mask in zip((1, 2), PATTERN, strict=True):
        signs = ", ".join(f"z^{t}_{k + 1} {'> 0' if m else '< 0'}" for k, m in enumerate(mask))
        parts.append(signs)
    return "; ".join(parts)


ASSUMPTIONS = (
    Assumption("relu-definition", r"$\operatorname{relu}(x) = \max(0, x)$"),
    Assumption(
        "layer",
        r"$h^t = \operatorname{relu}(W^t h^{t-1})$, $W^t$ of shape $n_t \times n_{t-1}$; "
        r"concrete widths $3 \to 2 \to 3$",
    ),
    Assumption(
        "activation-pattern",
        r"the input lies in a fixed activation pattern: $z^1_1 > 0$, $z^1_2 < 0$; "
        r"$z^2_1 > 0$, $z^2_2 < 0$, $z^2_3 > 0$, so $H(z^t_i)$ is $1$ or $0$",
        _pattern_subs(_network()),
    ),
    Assumption(
        "symmetric-preactivation",
        r"$z^t_i \sim N(0, q)$ given the layer below (Gaussian symmetric weights), so "
        r"$P(z^t_i > 0) = 1/2$",
    ),
    Assumption(
        "iid-weights",
        r"the $w^t_{ij}$ are i.i.d., symmetric, with mean $0$ and variance $\gamma_t$",
    ),
    Assumption(
        "masked-upstream",
        r"$g^{t-1}_j = \sum_{i=1}^{n_t} w^t_{ij} u^t_i$ with the masked upstream gradient "
        r"$u^t_i = \sigma'(z^t_i) g^t_i$; $u^t$ is treated as independent of $W^t$ (exact for "
        r"relu with symmetric weights when $g^t$ is independent of the network with mean 0); "
        r"its entries share mean $\mu_u$ and variance $v_u$",
    ),
    Assumption("zero-mean-upstream", r"$\mathbb{E}[u^t_i] = \mu_u = 0$", {MU_U: sp.Integer(0)}),
    Assumption(
        "independent-gradient",
        r"$g^t$ is independent of $z^t$ with $\mathbb{E}[(g^t_i)^2] = v_g$, so "
        r"$v_u = \mathbb{E}[\sigma'(z^t_i)^2]\,v_g$",
    ),
)


# --------------------------------------------------------------------------- derivations


def _derivative_chains() -> tuple[Derivation, ...]:
    """relu' by ``sympy.diff`` on each side of 0, as a Heaviside step, and the one-sided
    difference quotients at 0."""
    chains = []
    sides = (("x > 0", sp.Symbol("x", positive=True)), ("x < 0", sp.Symbol("x", negative=True)))
    for label, var in sides:
        chains.append(
            Chain(f"relu derivative, {label}", sp.Derivative(_relu(var), var), None, ASSUMPTIONS)
            .step(sp.diff(_relu(var), var), "sympy.diff", "", uses=("relu-definition",))
            .done()
        )
    chains.append(
        Chain("relu derivative as a step function", sp.Derivative(RELU, X), None, ASSUMPTIONS)
        .step(
            sp.diff(RELU, X),
            "sympy.diff",
            r"the Heaviside step $H(x)$; its value at $x = 0$ is a convention, relu has "
            r"no derivative there",
            uses=("relu-definition",),
        )
        .done()
    )
    step = sp.Symbol("h", real=True)
    for direction in ("+", "-"):
        quotient = sp.Limit((_relu(step) - _relu(0)) / step, step, 0, direction)
        chains.append(
            Chain(f"relu: {direction} derivative at 0", quotient, None, ASSUMPTIONS)
            .step(quotient.doit(), "sympy.limit", "", uses=("relu-definition",))
            .done()
        )
    return tuple(chains)


def _jacobian_chain() -> Derivation:
    """The two-layer relu Jacobian inside :data:`PATTERN` is ``D_2 W^2 D_1 W^1``."""
    net = _network()
    h0, h2, w1, w2 = net["h0"], net["h2"], net["W1"], net["W2"]
    jac = h2.jacobian(h0)
    d1, d2 = (sp.diag(*mask) for mask in PATTERN)
    active = [k for k, m in enumerate(PATTERN[0]) if m]
    sub_product = w2[:, active] * w1[active, :]
    return (
        Chain("relu Jacobian (3 -> 2 -> 3)", _unevaluated_jacobian(h2, h0), None, ASSUMPTIONS)
        .step(
            jac,
            "Matrix.jacobian",
            r"chain rule computed by SymPy; $\partial \max(0, z)/\partial z = H(z)$",
            uses=("relu-definition", "layer"),
        )
        .step(
            _product(d2, w2, d1, w1),
            "fix the activation pattern",
            r"each $H(z^t_i)$ is $0$ or $1$: the Jacobian is $D_2 W^2 D_1 W^1$ with 0/1 "
            r"diagonals $D_t$",
            uses=("activation-pattern",),
        )
        .step(
            _product(d2, sub_product),
            "select the active units",
            r"$W^2 D_1 W^1 = W^2_{:,A} W^1_{A,:}$ over the active units $A$ of layer 1; "
            r"$D_2$ zeroes the rows of the inactive units of layer 2",
        )
        .done()
    )


def _masked_second_moment() -> Derivation:
    """``E[(g^{t-1}_j)^2]`` for ``g^{t-1}_j = sum_i w_ij u_i`` by the moment calculus."""
    return (
        Chain(
            "backward second moment through a masked layer",
            Ex(G_PREV[J_IDX] ** 2),
            backward_model(U, MU_U, V_U),
            ASSUMPTIONS,
        )
        .apply(rules.substitute_definitions, uses=("masked-upstream",))
        .apply(rules.expand_square)
        .apply(rules.linearity)
        .apply(rules.factor_independent, uses=("iid-weights", "masked-upstream"))
        .apply(rules.substitute_moments)
        .apply(rules.evaluate_sums)
        .assume("zero-mean-upstream")
        .done()
    )


def _slope_moment(act: sp.Expr, name: str) -> Derivation:
    r""":math:`\mathbb{E}[\phi'(x)^2]` for :math:`x \sim N(0, q)`, split at 0 and integrated."""
    slope = sp.diff(act, X)
    whole = gaussian_integral(slope**2, X, Q)
    z = whole.limits[0][0]
    z_pos = sp.Symbol(str(z), positive=True)
    z_neg = sp.Symbol(str(z), negative=True)
    density = gaussian_integral(sp.Integer(1), X, Q).function
    upper = (slope**2).subs(X, sp.sqrt(Q) * z_pos).subs(z_pos, z)
    lower = (slope**2).subs(X, sp.sqrt(Q) * z_neg).subs(z_neg, z)
    split = sp.Integral(lower * density, (z, -sp.oo, 0)) + sp.Integral(
        upper * density, (z, 0, sp.oo)
    )
    return (
        Chain(f"second moment of the slope, {name}", whole, None, ASSUMPTIONS)
        .step(
            split,
            "split at 0, slope on each side by sympy.diff",
            r"$\phi'(\sqrt{q}\,z)^2$ on $z < 0$ and $z > 0$ (the point $z = 0$ has "
            r"probability $0$)",
            uses=("symmetric-preactivation",),
        )
        .step(split.doit(), "sympy.integrate", "exact Gaussian integrals")
        .done()
    )


def _factor_chain(slope_m2: Derivation, name: str) -> Derivation:
    r"""The per-layer factor :math:`n_t\gamma_t\,\mathbb{E}[\phi'(z)^2]`."""
    start = N_T * GAMMA * slope_m2.start
    return (
        Chain(f"per-layer factor, {name}", start, None, ASSUMPTIONS)
        .step(
            N_T * GAMMA * slope_m2.result,
            "second moment of the slope",
            r"the backward second moment divided by $v_g$, with "
            r"$v_u = \mathbb{E}[\sigma'(z)^2]\,v_g$ and the slope moment derived above",
            uses=("independent-gradient",),
        )
        .done()
    )


def _power_chain(factor: sp.Expr, name: str) -> Derivation:
    start = sp.Product(factor, (K_IDX, 1, LAYERS))
    return (
        Chain(f"factor after L = d - t layers, {name}", start, None, ASSUMPTIONS)
        .step(sp.product(factor, (K_IDX, 1, LAYERS)), "sympy.product", "the same factor per layer")
        .done()
    )


def _evaluate_chain(expr: sp.Expr, values: dict, name: str, why: str) -> Derivation:
    start = sp.Subs(expr, tuple(values), tuple(values.values()))
    return (
        Chain(name, start, None, ASSUMPTIONS)
        .step(sp.simplify(expr.subs(values)), "substitute", why)
        .done()
    )


# --------------------------------------------------------------------------- confirmations


def _pattern_is_reached() -> Check:
    """Exact signs of the pre-activations at :data:`PATTERN_POINT`."""
    net = _network()
    values = {s: sp.Integer(v) for s, v in zip(net["h0"], PATTERN_POINT["h0"], strict=True)}
    for t in (1, 2):
        w = net[f"W{t}"]
        for a in range(w.rows):
            for b in range(w.cols):
                values[w[a, b]] = sp.Integer(PATTERN_POINT[f"W{t}"][a][b])
    signs = tuple(tuple(int(bool(v > 0)) for v in net[f"z{t}"].subs(values)) for t in (1, 2))
    nonzero = all(v != 0 for t in (1, 2) for v in net[f"z{t}"].subs(values))
    ok = signs == PATTERN and nonzero
    return Check(
        "exact evaluation",
        Status.COMPUTED if ok else Status.REFUTED,
        f"at h^0 = {PATTERN_POINT['h0']}, W^1 = {PATTERN_POINT['W1']}, W^2 = "
        f"{PATTERN_POINT['W2']} the pre-activations have the signs {signs} (1 = positive): "
        f"the pattern {_pattern_text()} is reached",
    )


def _undefined_at_zero(right: Derivation, left: Derivation) -> Check:
    ok = right.result != left.result
    return Check(
        "one-sided limits",
        Status.COMPUTED if ok else Status.REFUTED,
        f"right derivative {right.result}, left derivative {left.result} at 0: relu'(0) "
        "is undefined; the Heaviside value there is a convention",
    )


def _confirm_by_stats(slope_m2: sp.Expr) -> Check:
    """``E[H(Z)^2 G^2] = E[H(Z)^2] v_g`` with independent Gaussians, and ``P(Z > 0)`` for a
    non-Gaussian symmetric law, by ``sympy.stats``."""
    zn = stats.Normal("Z", 0, S_SCALE)
    gn = stats.Normal("G", 0, sp.sqrt(V_G))
    joint = sp.simplify(stats.E(sp.Heaviside(zn) ** 2 * gn**2))
    laplace = sp.simplify(stats.P(stats.Laplace("Y", 0, S_SCALE) > 0))
    ok = sp.simplify(joint - slope_m2 * V_G) == 0 and sp.simplify(laplace - slope_m2) == 0
    return Check(
        "sympy.stats",
        Status.COMPUTED if ok else Status.REFUTED,
        f"E[H(Z)^2 G^2] = {joint} for independent Z ~ N(0, s^2), G ~ N(0, v_g); "
        f"P(Y > 0) = {laplace} for Y ~ Laplace(0, s): E[H(z)^2] = {slope_m2} for any "
        "continuous symmetric z",
    )


# --------------------------------------------------------------------------- probes


def _scenario(activation: str, std: sp.Expr) -> dict:
    """The simulated network of the probes, with a standard normal upstream gradient."""
    return mlp_scenario(
        [PROBE_WIDTH] * (PROBE_DEPTH + 1),
        {"law": "normal", "std": float(std)},
        activation=activation,
        upstream={"law": "normal", "std": 1.0},
    )


def _probes(masked: sp.Expr, unmasked: sp.Expr, gamma_he: sp.Expr) -> tuple[Probe, ...]:
    """Backward ratios of layer ``d - 1`` to layer ``d`` under He weights."""
    g_value = gamma_he.subs(N_T, PROBE_WIDTH)
    (std,) = sp.solve(sp.Eq(weight_variance("normal", {"std": S_SCALE}), g_value), S_SCALE)
    values = {N_T: PROBE_WIDTH, GAMMA: weight_variance("normal", {"std": std})}
    observable = {
        "direction": "backward",
        "moment": "m2",
        "layer": PROBE_DEPTH - 1,
        "relative_to": PROBE_DEPTH,
    }
    relu_net, linear_net = _scenario("relu", std), _scenario("linear", std)
    exact = (
        "exact at every width: the top layer, upstream gradient independent of the network "
        "(see the module notes)"
    )
    return (
        Probe.derived("he-relu-masked-factor", relu_net, observable, masked, values, note=exact),
        Probe.derived(
            "he-relu-unmasked-factor",
            relu_net,
            observable,
            unmasked,
            values,
            "disagrees",
            source="lecture",
            note="the unmasked factor n gamma, relu's 0/1 mask ignored: the loose reading "
            "the claim corrects, expected to be refused",
        ),
        Probe.derived(
            "he-linear-unmasked-factor", linear_net, observable, unmasked, values, note=exact
        ),
    )


#: The two slopes compared: relu's 0/1 mask and the unmasked (linear) product.
RELU_NAME, LINEAR_NAME = "relu", "linear (unmasked)"


def _d2l_name(product: str) -> str:
    """The name of a product evaluated at the D2L demo's weights."""
    return f"{product} product, D2L weights (n = {D2L_N}, gamma = 1), {D2L_FACTORS - 1} layers"


def _factor_chains() -> tuple[Derivation, ...]:
    """Slope moments, per-layer factors and their powers, relu then unmasked, per stage."""
    relu_m2 = _slope_moment(RELU, RELU_NAME)
    linear_m2 = _slope_moment(LINEAR, LINEAR_NAME)
    relu_factor = _factor_chain(relu_m2, RELU_NAME)
    linear_factor = _factor_chain(linear_m2, LINEAR_NAME)
    return (
        relu_m2,
        linear_m2,
        relu_factor,
        linear_factor,
        _power_chain(relu_factor.result, RELU_NAME),
        _power_chain(linear_factor.result, LINEAR_NAME),
    )


def _he_gamma(masked: sp.Expr) -> sp.Expr:
    """The weight variance that makes the relu factor 1 (He), by ``sympy.solve``."""
    (gamma_he,) = sp.solve(sp.Eq(masked, 1), GAMMA)
    return gamma_he


def _evaluation_chains(factors: dict[str, Derivation]) -> tuple[Derivation, ...]:
    """The factors and products under He and at the D2L demo's weights."""
    masked = factors[f"per-layer factor, {RELU_NAME}"].result
    unmasked = factors[f"per-layer factor, {LINEAR_NAME}"].result
    relu_power = factors[f"factor after L = d - t layers, {RELU_NAME}"].result
    linear_power = factors[f"factor after L = d - t layers, {LINEAR_NAME}"].result
    he = {GAMMA: _he_gamma(masked)}
    demo = {N_T: D2L_N, GAMMA: sp.Integer(1), LAYERS: D2L_FACTORS - 1}
    d2l_why = r"the D2L demo's $N(0, 1)$ weights"
    return (
        _evaluate_chain(
            masked, he, "relu factor under He", r"$\gamma_t$ from solving the relu factor $= 1$"
        ),
        _evaluate_chain(unmasked, he, "unmasked factor under He", r"the same $\gamma_t$"),
        _evaluate_chain(
            linear_power, he, "unmasked product under He after L layers", r"same $\gamma_t$"
        ),
        _evaluate_chain(relu_power, demo, _d2l_name("relu"), d2l_why),
        _evaluate_chain(linear_power, demo, _d2l_name("unmasked"), d2l_why),
    )


def _relu_derivations() -> dict[str, Derivation]:
    """The derivations of :func:`relu_jacobian_product`, keyed by name, in order."""
    factors = by_name(_factor_chains())
    chains = (
        *_derivative_chains(),
        _jacobian_chain(),
        _masked_second_moment(),
        *factors.values(),
        *_evaluation_chains(factors),
    )
    return by_name(chains)


def _relu_summary(derivations: dict[str, Derivation]) -> str:
    """The summary prose, every expression taken from the named derivations."""

    def tex(name: str) -> str:
        return sp.latex(derivations[name].result)

    masked = derivations[f"per-layer factor, {RELU_NAME}"].result
    return (
        rf"relu's derivative is the step $H(x)$: ${tex('relu: + derivative at 0')}$ for "
        rf"$x > 0$, ${tex('relu: - derivative at 0')}$ for $x < 0$, undefined at $0$. Inside "
        r"a fixed activation pattern each layer Jacobian is $D_t W^t$ with a 0/1 diagonal "
        r"$D_t$, so $\partial h^2/\partial h^0 = D_2 W^2 D_1 W^1$: its entries are entries of "
        r"products of sub-matrices of the $W^t$, with the rows of inactive units zeroed. "
        r"A gradient pushed back through a relu layer grows in mean square by "
        rf"${sp.latex(masked)}$ per layer, against ${tex(f'per-layer factor, {LINEAR_NAME}')}$ "
        rf"unmasked; after $L = d - t$ layers "
        rf"${tex(f'factor after L = d - t layers, {RELU_NAME}')}$ versus "
        rf"${tex(f'factor after L = d - t layers, {LINEAR_NAME}')}$. With the D2L demo's "
        rf"$\gamma = 1$ at $n = {D2L_N}$ over ${D2L_FACTORS - 1}$ layers that is "
        rf"${sp.latex(sp.Float(derivations[_d2l_name('relu')].result, 3))}$ versus "
        rf"${sp.latex(sp.Float(derivations[_d2l_name('unmasked')].result, 3))}$; "
        rf"under He, $\gamma_t = {sp.latex(_he_gamma(masked))}$, "
        rf"the relu product is critical (factor ${tex('relu factor under He')}$) while "
        rf"the unmasked one grows as ${tex('unmasked product under He after L layers')}$."
    )


# --------------------------------------------------------------------------- claim


@cache
def relu_jacobian_product() -> Claim:
    """L2.2: relu's 0/1 derivative masks the Jacobian product and halves its growth.

    Returns
    -------
    Claim
        relu' by ``sympy.diff`` (the Heaviside step, undefined at 0), the two-layer
        Jacobian inside a fixed activation pattern (``Matrix.jacobian``), the backward
        second moment through a masked layer (moment calculus), the slope moments
        :math:`\\mathbb{E}[H(z)^2] = 1/2` and :math:`\\mathbb{E}[1^2] = 1` by
        integration, the per-layer factors and their powers after :math:`d - t`
        layers, at the D2L demo's :math:`\\gamma = 1` and under He; backward probes.

    Notes
    -----
    .. math::

        \\frac{\\partial h^2}{\\partial h^0} = D_2 W^2 D_1 W^1, \\qquad
        \\Big(\\frac{n\\gamma}{2}\\Big)^{d-t} \\text{ (relu) versus }
        (n\\gamma)^{d-t} \\text{ (unmasked)}.

    Under He, :math:`\\gamma = 2/n` (from ``sympy.solve``), the masked product is
    critical (factor 1) and the unmasked one grows as :math:`2^{d-t}`.

    References
    ----------
    .. [1] D2L, Sec. 5.4.1.2.
    .. [2] K. He et al. (2015), ICCV, Sec. 2.2.
    """
    derivations = _relu_derivations()
    right = derivations["relu: + derivative at 0"]
    left = derivations["relu: - derivative at 0"]
    masked = derivations[f"per-layer factor, {RELU_NAME}"].result
    unmasked = derivations[f"per-layer factor, {LINEAR_NAME}"].result
    gamma_he = _he_gamma(masked)
    return Claim(
        id="relu-jacobian-product",
        lecture=("L2.2",),
        title="Relu masks the Jacobian product and halves its mean-square growth per layer",
        summary=_relu_summary(derivations),
        assumptions=ASSUMPTIONS,
        derivations=tuple(derivations.values()),
        conditions=(
            sp.Eq(sp.Symbol(r"\rho_{\mathrm{relu}}"), masked, evaluate=False),
            sp.Eq(sp.Symbol(r"\rho_{\mathrm{unmasked}}"), unmasked, evaluate=False),
            sp.Eq(GAMMA, gamma_he),
        ),
        confirmations=(
            _undefined_at_zero(right, left),
            _pattern_is_reached(),
            _confirm_by_stats(derivations[f"second moment of the slope, {RELU_NAME}"].result),
        ),
        probes=_probes(masked, unmasked, gamma_he),
    )


#: Builders of this module's claims, in lecture order.
BUILDERS: tuple[Callable[[], Claim], ...] = (relu_jacobian_product,)
