r"""Gradients of deep networks: Jacobians, exploding and vanishing products, remedies.

Lecture items L1.1, L1.2, L2.1, L2.2, L2.3, L3.1, L3.2 and soft spot S6.

.. math::

    \frac{\partial h^t}{\partial h^{t-1}} = \operatorname{diag}(\sigma'(W^t h^{t-1}))\,W^t,
    \qquad
    \mathbb{E}\log\frac{\lVert W_d \cdots W_1 x\rVert}{\lVert x\rVert}
    = d\Big(\log\sigma + \tfrac12\big(\log 2 + \psi(\tfrac n2)\big)\Big),
    \qquad
    \frac{\partial (h + f(h))}{\partial h} = I + \frac{\partial f}{\partial h}.

References
----------
.. [1] Dive into Deep Learning, Sec. 5.4.1 "Vanishing and Exploding Gradients"
   (``d2l-ai/d2l-en``, ``chapter_multilayer-perceptrons/numerical-stability-and-init.md``):
   the 4x4 :math:`N(0, 1)` matrix multiplied by 100 more.
.. [2] J. E. Cohen and C. M. Newman (1984), "The stability of large random matrices and
   their products", Ann. Probab. 12(2); C. M. Newman (1986), "The distribution of Lyapunov
   exponents: exact results for random matrices", Commun. Math. Phys. 103.
.. [3] NumPy, ``numpy.finfo`` (IEEE 754 binary16 and binary32 parameters).
.. [4] K. He, X. Zhang, S. Ren and J. Sun (2016), "Deep residual learning for image
   recognition", CVPR.
.. [5] R. Pascanu, T. Mikolov and Y. Bengio (2013), "On the difficulty of training recurrent
   neural networks", ICML: gradient clipping by norm.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cache

import numpy as np
import sympy as sp
from sympy import stats

from . import _calculus as rules
from ._building import by_name
from ._calculus import Ex, Model
from ._check import Chain, check_algebraic
from ._claim import Assumption, Check, Claim, Derivation, Probe, Status
from ._forward import layer_moments, linear_model, weight_variance
from ._kernel import disproof, sign
from ._symbols import c as C_FACTOR
from ._symbols import g as G
from ._symbols import g_prev as G_PREV
from ._symbols import gamma as GAMMA
from ._symbols import i as I_IDX
from ._symbols import j as J_IDX
from ._symbols import mu as MU_U
from ._symbols import n as N_DOF
from ._symbols import n as N_RES
from ._symbols import n_prev as N_PREV
from ._symbols import n_t as N_T
from ._symbols import s as STD
from ._symbols import w as W_B

HALF, QUARTER = sp.Rational(1, 2), sp.Rational(1, 4)

# --------------------------------------------------------------------------- shared


def _normal_std_for(per_layer: sp.Expr, n: int) -> sp.Expr:
    """The std ``s`` of ``N(0, s^2)`` weights with ``n Var[w] = per_layer`` (solved)."""
    (root,) = sp.solve(sp.Eq(n * weight_variance("normal", {"std": STD}), per_layer), STD)
    return root


def _mlp(widths, std, *, dtype="float64", residual=False, upstream=False) -> dict:
    scenario: dict = {
        "kind": "mlp",
        "widths": list(widths),
        "weights": {"law": "normal", "std": float(std)},
        "activation": "linear",
        "input": {"law": "normal", "mean": 0.0, "std": 1.0},
        "dtype": dtype,
    }
    if residual:
        scenario["residual"] = True
    if upstream:
        scenario["upstream"] = {"law": "normal", "std": 1.0}
    return scenario


def _diag_derivative(act: Callable[[sp.Expr], sp.Expr], z: sp.Matrix) -> sp.Matrix:
    """``diag(act'(z_1), ..., act'(z_n))`` with ``act'`` from :func:`sympy.diff`."""
    x = sp.Symbol("x")  # no assumptions, unlike the shared real x: act' as SymPy gives it
    d = sp.diff(act(x), x)
    return sp.diag(*[d.subs(x, zi) for zi in z])


def _unevaluated_jacobian(f: sp.Matrix, x: sp.Matrix) -> sp.Matrix:
    return sp.Matrix(f.rows, x.rows, lambda i, j: sp.Derivative(f[i], x[j]))


def _product(*factors: sp.Matrix) -> sp.MatMul:
    return sp.MatMul(*[sp.ImmutableMatrix(f) for f in factors], evaluate=False)


# --------------------------------------------------------------------------- L1.1, L2.1, S6


class SigmaPrime(sp.Function):
    """The derivative :math:`\\sigma'` of the generic activation, kept unevaluated."""

    nargs = 1

    def _latex(self, printer, exp=None):
        tex = r"\sigma'\left(%s\right)" % printer._print(self.args[0])
        return tex if exp is None else r"%s^{%s}" % (tex, exp)

    def _sympystr(self, printer):
        return "sigma'(%s)" % printer._print(self.args[0])


class Sigma(sp.Function):
    """A generic differentiable activation :math:`\\sigma`; ``diff`` gives :class:`SigmaPrime`."""

    nargs = 1

    def fdiff(self, argindex=1):
        return SigmaPrime(self.args[0])

    def _latex(self, printer, exp=None):
        tex = r"\sigma\left(%s\right)" % printer._print(self.args[0])
        return tex if exp is None else r"%s^{%s}" % (tex, exp)

    def _sympystr(self, printer):
        return "sigma(%s)" % printer._print(self.args[0])


SIGMA = Sigma
WIDTHS_JAC = (3, 2, 4)


def _vector(name: str, n: int) -> sp.Matrix:
    return sp.Matrix([sp.Symbol(f"{name}_{{{k + 1}}}") for k in range(n)])


def _weights(layer: int, rows: int, cols: int) -> sp.Matrix:
    return sp.Matrix(rows, cols, lambda a, b: sp.Symbol(f"w^{{{layer}}}_{{{a + 1}{b + 1}}}"))


def jacobian_network(
    act: Callable[[sp.Expr], sp.Expr] = SIGMA, widths: tuple[int, int, int] = WIDTHS_JAC
) -> dict:
    """A symbolic two-layer network (``3 -> 2 -> 4`` for :func:`mlp_jacobian`)."""
    n0, n1, n2 = widths
    h0 = _vector("h^{0}", n0)
    w1, w2 = _weights(1, n1, n0), _weights(2, n2, n1)
    z1 = w1 * h0
    h1 = z1.applyfunc(act)
    z2 = w2 * h1
    h2 = z2.applyfunc(act)
    return {"h0": h0, "W1": w1, "W2": w2, "z1": z1, "h1": h1, "z2": z2, "h2": h2}


def _identity(x: sp.Expr) -> sp.Expr:
    return x


def lecture_jacobian_comparison() -> tuple[Check, Check]:
    """Compare the slide's ``diag(sigma') (W^t)^T`` with the Jacobian.

    Returns the two comparisons as checks of the slide's equation: for the
    non-square layer ``3 -> 2`` the product is undefined (the shapes are recorded),
    and for a square layer with the linear activation ``sigma(x) = x`` of L8.1 (so
    ``sigma' = 1``) :func:`check_algebraic` refutes the equality: the slide's form is
    then ``W^T`` while the Jacobian is ``W``.
    """
    net = jacobian_network()
    jac = net["h1"].jacobian(net["h0"])
    diag = _diag_derivative(SIGMA, net["z1"])
    wt = net["W1"].T
    try:
        diag * wt
    except sp.ShapeError as err:
        shapes = Check(
            "shapes",
            Status.REFUTED,
            f"diag(sigma') is {diag.shape[0]}x{diag.shape[1]} and (W^1)^T is "
            f"{wt.shape[0]}x{wt.shape[1]}: the product is undefined ({err}); the Jacobian "
            f"dh^1/dh^0 is {jac.shape[0]}x{jac.shape[1]}",
            {
                "diag(sigma')": f"{diag.shape[0]}x{diag.shape[1]}",
                "(W^1)^T": f"{wt.shape[0]}x{wt.shape[1]}",
            },
        )
    else:  # pragma: no cover - only reached if the widths are made equal
        shapes = Check("shapes", Status.UNDECIDED, "the shapes happen to match")
    n = 3
    h = _vector("h", n)
    w = _weights(1, n, n)
    z = w * h
    jac_sq = z.applyfunc(_identity).jacobian(h)
    square = check_algebraic(jac_sq, _diag_derivative(_identity, z) * w.T, {})
    square = square.named("square layer, sigma(x) = x", "diag(1) W^T against the Jacobian W")
    return shapes, square


def _rejects(check: Check, what: str) -> Check:
    """A proof that the slide's equation is false, from a check that refutes it."""
    return disproof(check, f"lecture form rejected: {what}")


MU_G = sp.Symbol("mu_g", real=True)
V_G = sp.Symbol("v_g", positive=True)

BACKWARD_ASSUMPTIONS = (
    Assumption(
        "linear-layer",
        r"$h^t = W^t h^{t-1}$, so $\partial h^t/\partial h^{t-1} = W^t$ and "
        r"$g^{t-1}_j = \sum_{i=1}^{n_t} w^t_{ij} g^t_i$ (column $j$ of $W^t$)",
    ),
    Assumption("iid-weights", r"the $w^t_{ij}$ are i.i.d. with mean $0$ and variance $\gamma_t$"),
    Assumption(
        "independent-upstream",
        r"the upstream gradient $g^t = \partial\ell/\partial h^t$ is independent of $W^t$; "
        r"its entries share mean $\mu_g$ and variance $v_g$ and may be dependent",
    ),
    Assumption("zero-mean-gradient", r"$\mathbb{E}[g^t_i] = \mu_g = 0$", {MU_G: sp.Integer(0)}),
)


def backward_model(upstream: sp.IndexedBase, mean: sp.Symbol, variance: sp.Symbol) -> Model:
    """The backward pass of a linear layer, ``g^{t-1}_j = sum_i w^t_ij u_i`` (column ``j``).

    ``u`` is the vector pushed back through :math:`(W^t)^T`: the upstream gradient
    :math:`g^t` itself, or :math:`g^t` masked by the activation's slope; its entries
    share the given mean and variance. The sum runs over the :math:`n_t` rows (fan-out).
    """
    column = sp.Sum(W_B[I_IDX, J_IDX] * upstream[I_IDX], (I_IDX, 1, N_T))
    return linear_model(
        W_B,
        upstream,
        {G_PREV: ((J_IDX,), column)},
        width=N_T,
        free=J_IDX,
        gamma=GAMMA,
        mean=mean,
        variance=variance,
    )


@cache
def _backward_variance() -> tuple[Derivation, Derivation]:
    """``Var[g^{t-1}_j]`` for ``g^{t-1}_j = sum_i w_ij g^t_i`` (column ``j`` of ``W^t``).

    The chain of :func:`~derivations._forward.layer_moments`, the same as for the
    forward pass and for L6.2; only the model differs.
    """
    _, second, variance = layer_moments(
        G_PREV[J_IDX],
        backward_model(G, MU_G, V_G),
        BACKWARD_ASSUMPTIONS,
        "zero-mean-gradient",
        "mlp-jacobian",
        "backward ",
    )
    return second, variance


def _opaque_activations(net: dict) -> dict:
    """``sigma(z^t_i)`` and ``sigma'(z^t_i)`` as symbols (outermost first under ``subs``)."""
    subs = {}
    for t in (1, 2):
        for k, zk in enumerate(net[f"z{t}"]):
            subs[Sigma(zk)] = sp.Symbol(f"s^{{{t}}}_{{{k + 1}}}")
            subs[SigmaPrime(zk)] = sp.Symbol(f"s'^{{{t}}}_{{{k + 1}}}")
    return subs


JACOBIAN_ASSUMPTIONS = (
    Assumption(
        "layer",
        r"$h^t = \sigma(W^t h^{t-1})$ elementwise, $W^t$ of shape $n_t \times n_{t-1}$, "
        r"$\sigma$ differentiable; concrete widths $3 \to 2 \to 4$",
    ),
    Assumption(
        "generic-activation",
        r"the chain rule holds for every differentiable $\sigma$: the identity is checked with "
        r"each $\sigma(z^t_i)$ and $\sigma'(z^t_i)$, $z^t = W^t h^{t-1}$, as an independent "
        r"symbol, which proves it for every $\sigma$ at once",
        _opaque_activations(jacobian_network()),
    ),
    *BACKWARD_ASSUMPTIONS,
)


JACOBIAN_SUMMARY = (
    r"For $h^t = \sigma(W^t h^{t-1})$ with $W^t$ of shape $n_t \times n_{t-1}$, "
    r"$\partial h^t/\partial h^{t-1} = \operatorname{diag}(\sigma'(W^t h^{t-1}))\,W^t$ "
    r"($n_t \times n_{t-1}$), and the Jacobian of a composition is the product of the "
    r"layer Jacobians, outermost on the left. The slide's "
    r"$\operatorname{diag}(\sigma')(W^t)^T$ has incompatible shapes when "
    r"$n_t \neq n_{t-1}$ and differs from the Jacobian for non-symmetric square $W^t$. "
    r"The backward pass uses the transpose, $g^{t-1} = (W^t)^T \operatorname{diag}"
    r"(\sigma') g^t$, so for a linear layer $\operatorname{Var}[g^{t-1}_j] = n_t\gamma_t"
    r"\operatorname{Var}[g^t_i]$ with the fan-out $n_t$."
)
JACOBIAN_CORRECTED = (
    r"$\partial h^t/\partial h^{t-1} = \operatorname{diag}(\sigma'(W^t h^{t-1}))\,W^t$, "
    r"an $n_t \times n_{t-1}$ matrix, and the product over layers is "
    r"$\prod_{i=d}^{t+1} \operatorname{diag}(\sigma'(W^i h^{i-1}))\,W^i$ "
    r"(factors ordered from layer $d$ on the left down to layer $t+1$); the transpose "
    r"$(W^t)^T$ appears only in the backward pass, "
    r"$(\partial\ell/\partial h^{t-1})^T = (W^t)^T \operatorname{diag}(\sigma')"
    r"(\partial\ell/\partial h^t)^T$."
)


def _layer_jacobian(net: dict) -> Derivation:
    """``dh^1/dh^0 = diag(sigma'(z^1)) W^1`` for the ``3 -> 2`` layer."""
    return (
        Chain(
            "layer Jacobian (3 -> 2)",
            _unevaluated_jacobian(net["h1"], net["h0"]),
            None,
            JACOBIAN_ASSUMPTIONS,
        )
        .step(
            net["h1"].jacobian(net["h0"]),
            "Matrix.jacobian",
            "entrywise chain rule computed by SymPy",
        )
        .step(
            _product(_diag_derivative(SIGMA, net["z1"]), net["W1"]),
            "factor the rows",
            r"row $i$ is $\sigma'(z_i)$ times row $i$ of $W^1$: $\operatorname{diag}(\sigma') W^1$",
        )
        .done()
    )


def _chain_rule(net: dict) -> Derivation:
    """``dh^2/dh^0`` as the product of the two layer Jacobians, outer layer on the left."""
    d1, d2 = _diag_derivative(SIGMA, net["z1"]), _diag_derivative(SIGMA, net["z2"])
    return (
        Chain(
            "chain rule (3 -> 2 -> 4)",
            _unevaluated_jacobian(net["h2"], net["h0"]),
            None,
            JACOBIAN_ASSUMPTIONS,
        )
        .step(
            net["h2"].jacobian(net["h0"]),
            "Matrix.jacobian",
            "Jacobian of the composition computed by SymPy",
        )
        .step(
            _product(d2, net["W2"], d1, net["W1"]),
            "chain rule: (dh^2/dh^1)(dh^1/dh^0), outer layer on the left (4x2 times 2x3)",
            r"$\partial h^2/\partial h^0 = (\partial h^2/\partial h^1)(\partial h^1/\partial h^0)$"
            r", outer layer on the left: $4\times 2$ times $2 \times 3$",
            uses=("generic-activation",),
        )
        .done()
    )


def _half_square_loss(net: dict) -> sp.Expr:
    """The loss :math:`\\ell = \\frac12 \\lVert h^2\\rVert^2`."""
    return (net["h2"].T * net["h2"])[0, 0] / 2


def _loss_gradient(net: dict) -> Derivation:
    """``dl/dh^0`` as the row vector ``dl/dh^2 dh^2/dh^1 dh^1/dh^0``."""
    loss, h0 = _half_square_loss(net), net["h0"]
    d1, d2 = _diag_derivative(SIGMA, net["z1"]), _diag_derivative(SIGMA, net["z2"])
    return (
        Chain(
            "loss gradient w.r.t. h^0",
            sp.Matrix([[sp.Derivative(loss, x) for x in h0]]),
            None,
            JACOBIAN_ASSUMPTIONS,
        )
        .step(
            sp.Matrix([[sp.diff(loss, x) for x in h0]]),
            "sympy.diff",
            r"loss $\ell = \frac12 \lVert h^2\rVert^2$",
        )
        .step(
            _product(net["h2"].T, d2 * net["W2"], d1 * net["W1"]),
            "chain rule: dl/dh^2 times dh^2/dh^1 times dh^1/dh^0 (row vector)",
            r"$\partial\ell/\partial h^0 = \partial\ell/\partial h^2 \cdot "
            r"\partial h^2/\partial h^1 \cdot \partial h^1/\partial h^0$ (row vector)",
            uses=("generic-activation",),
        )
        .done()
    )


def _weight_gradient(net: dict) -> Derivation:
    """``dl/dW^1`` as an outer product of the back-propagated error and ``h^0``."""
    loss, w1 = _half_square_loss(net), net["W1"]
    d1, d2 = _diag_derivative(SIGMA, net["z1"]), _diag_derivative(SIGMA, net["z2"])
    delta1 = d1 * (net["h2"].T * d2 * net["W2"]).T
    return (
        Chain(
            "loss gradient w.r.t. W^1",
            sp.Matrix(w1.rows, w1.cols, lambda a, b: sp.Derivative(loss, w1[a, b])),
            None,
            JACOBIAN_ASSUMPTIONS,
        )
        .step(
            sp.Matrix(w1.rows, w1.cols, lambda a, b: sp.diff(loss, w1[a, b])),
            "sympy.diff",
            "every entry differentiated by SymPy",
        )
        .step(
            _product(delta1, net["h0"].T),
            "outer product: diag(sigma'(z^1)) (dl/dh^2 dh^2/dh^1)^T (h^0)^T",
            r"$\partial\ell/\partial W^1 = \operatorname{diag}(\sigma'(z^1))"
            r"(\partial\ell/\partial h^2 \cdot \partial h^2/\partial h^1)^T (h^0)^T$: "
            r"$d - t = 1$ Jacobian between the loss and layer 1",
            uses=("generic-activation",),
        )
        .done()
    )


def _slide_error(n: int = 3) -> Derivation:
    """The Jacobian minus the slide's ``diag(sigma') W^T`` on a square layer."""
    h = _vector("h", n)
    w = _weights(1, n, n)
    z = w * h
    d_sq = _diag_derivative(SIGMA, z)
    return (
        Chain(
            "slide's form, square layer (3 -> 3)",
            z.applyfunc(SIGMA).jacobian(h) - d_sq * w.T,
            None,
            JACOBIAN_ASSUMPTIONS,
        )
        .step(
            _product(d_sq, w - w.T),
            "factor",
            r"Jacobian minus $\operatorname{diag}(\sigma')(W)^T$ is "
            r"$\operatorname{diag}(\sigma')(W - W^T)$: zero only for symmetric $W$ "
            r"(where $\sigma' \neq 0$)",
        )
        .done()
    )


def _jacobian_derivations() -> dict[str, Derivation]:
    """The derivations of :func:`mlp_jacobian`, keyed by name, in the claim's order."""
    net = jacobian_network()
    second, backward = _backward_variance()
    chains = (
        _layer_jacobian(net),
        _chain_rule(net),
        _loss_gradient(net),
        _weight_gradient(net),
        _slide_error(),
        second,
        backward,
    )
    return by_name(chains)


@cache
def mlp_jacobian() -> Claim:
    """Jacobian of an MLP layer and the chain rule, on concrete non-square layers.

    Returns
    -------
    Claim
        Derivations (layer Jacobian, chain rule, loss gradient w.r.t. ``h^0`` and
        ``W^1``, the slide's square-case error, the backward second moment), the
        rejection of the slide's form as confirmations, and backward probes with
        unequal widths.

    Notes
    -----
    .. math::

        \\Big[\\frac{\\partial h^t}{\\partial h^{t-1}}\\Big]_{ij}
        = \\sigma'\\big((W^t h^{t-1})_i\\big)\\,w^t_{ij},
        \\qquad
        \\operatorname{Var}[g^{t-1}_j] = n_t\\,\\gamma_t\\,\\operatorname{Var}[g^t_i].

    The slide's :math:`\\operatorname{diag}(\\sigma')(W^t)^T` multiplies an
    :math:`n_t \\times n_t` matrix by an :math:`n_{t-1}\\times n_t` one; it is defined
    only for square layers, and there it is the Jacobian only if :math:`W^t` is
    symmetric. The backward pass multiplies by the *transpose* of the Jacobian,
    :math:`g^{t-1} = (\\partial h^t/\\partial h^{t-1})^T g^t`, so the sum runs over the
    :math:`n_t` rows (fan-out); the probes put unequal widths on either side so that
    a fan-in prediction is visibly wrong.
    """
    derivations = _jacobian_derivations()
    second, backward = derivations["backward second moment"], derivations["backward variance"]
    ratio = sp.simplify(backward.result / V_G)
    (gamma_star,) = sp.solve(sp.Eq(ratio, 1), GAMMA)
    shapes, square = lecture_jacobian_comparison()
    confirmations = (
        _rejects(shapes, "slide's diag(sigma')(W^t)^T, widths 3 -> 2"),
        _rejects(square, "slide's diag(sigma')(W^t)^T, square layer"),
        _confirm_backward_by_stats(second.result),
    )
    return Claim(
        id="mlp-jacobian",
        lecture=("L1.1", "L2.1", "S6"),
        title="Jacobian of an MLP layer and the chain rule: the weight matrix is not transposed",
        summary=JACOBIAN_SUMMARY,
        assumptions=JACOBIAN_ASSUMPTIONS,
        derivations=tuple(derivations.values()),
        conditions=(sp.Eq(ratio, 1), sp.Eq(GAMMA, gamma_star)),
        confirmations=confirmations,
        probes=_jacobian_probes(backward.result),
        corrected=JACOBIAN_CORRECTED,
    )


def _confirm_backward_by_stats(general: sp.Expr, widths=range(1, 3)) -> Check:
    """Exact moments of ``sum_i W_i G_i`` with Gaussian weights and gradients."""
    for n in widths:
        ws = [stats.Normal(f"W{k}", 0, sp.sqrt(GAMMA)) for k in range(n)]
        gs = [stats.Normal(f"G{k}", MU_G, sp.sqrt(V_G)) for k in range(n)]
        out = sp.Add(*[a * b for a, b in zip(ws, gs, strict=True)])
        got = sp.simplify(sp.Add(*[stats.E(m) for m in sp.Add.make_args(sp.expand(out**2))]))
        want = general.subs(N_T, n)
        if sp.simplify(got - want) != 0:
            return Check(
                f"sympy.stats n_t={n}", Status.REFUTED, f"E = {got}, derived {want} at n_t={n}"
            )
    return Check(
        f"sympy.stats n_t={widths.start}..{widths.stop - 1}",
        Status.TESTED,
        "exact E[(sum_i W_i G_i)^2] with W_i ~ N(0, γ_t), G_i ~ N(μ_g, v_g) equals the "
        "derived second moment before the zero-mean step",
    )


def _jacobian_probes(result: sp.Expr) -> tuple[Probe, ...]:
    """Backward probes of linear layers with unequal widths (fan-out vs fan-in)."""
    std = sp.Rational(1, 8)
    gamma = weight_variance("normal", {"std": std})
    factor = sp.simplify(result / V_G)  # n_t * gamma_t
    fan_in = factor.subs(N_T, N_PREV)  # the sum taken over the other index
    probes = []
    widths = (128, 32)
    scenario = _mlp(widths, std, upstream=True)
    values = {N_T: widths[1], N_PREV: widths[0], GAMMA: gamma, V_G: 1, MU_G: 0}
    exact = "exact at every width: linear layers, upstream gradient independent of the weights"
    probes.append(
        Probe.derived(
            "128x32-backward-var",
            scenario,
            {"direction": "backward", "moment": "var", "layer": 0},
            result,
            values,
            note=exact,
        )
    )
    probes.append(
        Probe.derived(
            "128x32-backward-var-fan-in",
            scenario,
            {"direction": "backward", "moment": "var", "layer": 0},
            fan_in * V_G,
            values,
            "disagrees",
            source="lecture",
            note="the slide's transposed Jacobian: the fan-in in place of the fan-out",
        )
    )
    widths3 = (32, 128, 64)
    scenario3 = _mlp(widths3, std, upstream=True)
    for layer in (0, 1):
        vals = {N_T: widths3[layer + 1], N_PREV: widths3[layer], GAMMA: gamma}
        probes.append(
            Probe.derived(
                f"32x128x64-backward-factor-{layer}",
                scenario3,
                {
                    "direction": "backward",
                    "moment": "var",
                    "layer": layer,
                    "relative_to": layer + 1,
                },
                factor,
                vals,
                note=exact,
            )
        )
    return tuple(probes)


def _dtanh(z: np.ndarray) -> np.ndarray:
    """``tanh'(z) = 1 / cosh(z)^2``, written out by hand."""
    return 1.0 / np.cosh(z) ** 2


def _fd_jacobian(f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, eps: float) -> np.ndarray:
    """Central differences of ``f`` at ``x``, one column per coordinate."""
    cols = []
    for k in range(x.size):
        e = np.zeros_like(x)
        e[k] = eps
        cols.append((f(x + e) - f(x - e)) / (2 * eps))
    return np.stack(cols, axis=1)


def _tanh_loss(x: np.ndarray, w1: np.ndarray, w2: np.ndarray) -> float:
    """``||tanh(W^2 tanh(W^1 x))||^2 / 2``."""
    return 0.5 * float(np.sum(np.tanh(w2 @ np.tanh(w1 @ x)) ** 2))


def _fd_weight_gradient(h0: np.ndarray, w1: np.ndarray, w2: np.ndarray, eps: float) -> np.ndarray:
    """Central differences of the loss in every entry of ``W^1``."""

    def bump(a: int, b: int) -> np.ndarray:
        e = np.zeros_like(w1)
        e[a, b] = eps
        return e

    return np.array(
        [
            [
                (_tanh_loss(h0, w1 + bump(a, b), w2) - _tanh_loss(h0, w1 - bump(a, b), w2))
                / (2 * eps)
                for b in range(w1.shape[1])
            ]
            for a in range(w1.shape[0])
        ]
    )


def _forward_errors(h0: np.ndarray, w1: np.ndarray, w2: np.ndarray, eps: float) -> dict:
    """Layer Jacobian and two-layer product against central differences."""
    z1 = w1 @ h0
    z2 = w2 @ np.tanh(z1)
    j1 = np.diag(_dtanh(z1)) @ w1
    j2 = np.diag(_dtanh(z2)) @ w2
    fd1 = _fd_jacobian(lambda x: np.tanh(w1 @ x), h0, eps)
    fd21 = _fd_jacobian(lambda x: np.tanh(w2 @ np.tanh(w1 @ x)), h0, eps)
    return {
        "layer": float(np.max(np.abs(j1 - fd1))),
        "chain": float(np.max(np.abs(j2 @ j1 - fd21))),
    }


def _backward_errors(h0: np.ndarray, w1: np.ndarray, w2: np.ndarray, eps: float) -> dict:
    """The hand-written backward pass against central differences of the loss."""
    z1 = w1 @ h0
    z2 = w2 @ np.tanh(z1)
    g2 = np.tanh(z2)
    g1 = w2.T @ (_dtanh(z2) * g2)
    g0 = w1.T @ (_dtanh(z1) * g1)
    dw1 = np.outer(_dtanh(z1) * g1, h0)
    fd_g0 = _fd_jacobian(lambda x: np.array([_tanh_loss(x, w1, w2)]), h0, eps)[0]
    return {
        "backward_h0": float(np.max(np.abs(g0 - fd_g0))),
        "backward_W1": float(np.max(np.abs(dw1 - _fd_weight_gradient(h0, w1, w2, eps)))),
    }


def _slide_nonsquare_error(h0: np.ndarray, w1: np.ndarray, eps: float) -> float:
    """The slide's ``diag(tanh') W^T`` on the non-square layer (``inf`` if undefined)."""
    try:
        slide = np.diag(_dtanh(w1 @ h0)) @ w1.T
        return float(np.max(np.abs(slide - _fd_jacobian(lambda x: np.tanh(w1 @ x), h0, eps))))
    except ValueError:
        return float("inf")


def _square_errors(rng: np.random.Generator, eps: float) -> dict:
    """The slide's ``diag(tanh') W^T`` and the correct ``diag(tanh') W`` on a square layer."""
    w = rng.standard_normal((3, 3))
    x = rng.standard_normal(3)
    fd_sq = _fd_jacobian(lambda y: np.tanh(w @ y), x, eps)
    return {
        "slide_square": float(np.max(np.abs(np.diag(_dtanh(w @ x)) @ w.T - fd_sq))),
        "correct_square": float(np.max(np.abs(np.diag(_dtanh(w @ x)) @ w - fd_sq))),
    }


def numeric_jacobian_check(seed: int = 0, eps: float = 1e-6) -> dict[str, float]:
    """Finite differences and a hand-written backward pass on a random ``3 -> 2 -> 4`` tanh MLP.

    Returns the largest absolute errors of: the layer Jacobian
    ``diag(tanh'(W h)) W`` and the two-layer product against central differences;
    the backward pass (``g^{t-1} = W^T (tanh' * g^t)``, ``dl/dW^1 = (tanh' * g^1) h0^T``)
    for ``l = ||h^2||^2 / 2`` against central differences; and the error of the
    slide's ``diag(tanh') W^T`` on a random square layer (``inf`` when the shapes
    of the non-square layer do not match).
    """
    rng = np.random.default_rng(seed)
    n0, n1, n2 = WIDTHS_JAC
    w1 = rng.standard_normal((n1, n0))
    w2 = rng.standard_normal((n2, n1))
    h0 = rng.standard_normal(n0)
    return {
        **_forward_errors(h0, w1, w2, eps),
        **_backward_errors(h0, w1, w2, eps),
        "slide_nonsquare": _slide_nonsquare_error(h0, w1, eps),
        **_square_errors(rng, eps),
    }


# --------------------------------------------------------------------------- L2.2

# positive, unlike the shared real x: the chi-square's support
X_CHI = sp.Symbol("x", positive=True)
S_MOM = sp.Symbol("s", real=True)  # real, unlike the shared s > 0: K(s) is expanded at s = 0
S_ORDER = sp.Symbol("s", nonnegative=True)  # E[X^s] is integrated for s >= 0, s = 0 included
SIGMA_W = sp.Symbol("sigma", positive=True)
DEPTH = sp.Symbol("d", integer=True, positive=True)


def chi_square_density(n: sp.Expr = N_DOF, x: sp.Symbol = X_CHI) -> sp.Expr:
    """The density of :math:`\\chi^2_n` (a Gamma law with shape ``n/2`` and scale 2)."""
    k = n / 2
    return x ** (k - 1) * sp.exp(-x / 2) / (2**k * sp.gamma(k))


@cache
def _chi_square_moments() -> tuple[Derivation, Derivation, Derivation]:
    """``E[X^s]`` of ``X ~ chi2_n`` by integration, then the cumulants of ``log X``."""
    integrand = X_CHI**S_ORDER * chi_square_density()
    closed = sp.simplify(sp.integrate(integrand, (X_CHI, 0, sp.oo), conds="none"))
    closed = closed.subs(S_ORDER, S_MOM)
    moment = (
        Chain("moment function of chi-square", sp.Integral(integrand, (X_CHI, 0, sp.oo)))
        .step(
            closed.subs(S_MOM, S_ORDER),
            "sympy.integrate",
            r"$\mathbb{E}[X^s] = \int_0^\infty x^s f_n(x)\,dx$ for $X \sim \chi^2_n$; valid "
            r"for $s > -n/2$",
        )
        .done()
    )
    cgf = sp.log(closed)  # K(s) = log E[exp(s log X)], the cumulant function of log X
    mean = (
        Chain("mean of log chi-square", sp.Subs(sp.Derivative(cgf, S_MOM), S_MOM, 0))
        .step(
            sp.simplify(sp.diff(cgf, S_MOM).subs(S_MOM, 0)),
            "sympy.diff",
            r"$\mathbb{E}[\log X] = K'(0)$ with $K(s) = \log \mathbb{E}[e^{s \log X}]$",
        )
        .done()
    )
    var = (
        Chain("variance of log chi-square", sp.Subs(sp.Derivative(cgf, (S_MOM, 2)), S_MOM, 0))
        .step(
            sp.simplify(sp.diff(cgf, S_MOM, 2).subs(S_MOM, 0)),
            "sympy.diff",
            r"$\operatorname{Var}[\log X] = K''(0)$, the second cumulant",
        )
        .done()
    )
    return moment, mean, var


def chi_square_moment(s: sp.Expr, n: sp.Expr = N_DOF) -> sp.Expr:
    """The derived :math:`\\mathbb{E}[(\\chi^2_n)^s] = 2^s\\Gamma(n/2+s)/\\Gamma(n/2)`."""
    moment, _, _ = _chi_square_moments()
    return moment.result.subs({S_ORDER: s, N_DOF: n})


PRODUCTS_ASSUMPTIONS = (
    Assumption(
        "gaussian-products",
        r"$W_1, \dots, W_d$ are i.i.d. $n \times n$ matrices with i.i.d. $N(0, \sigma^2)$ "
        r"entries and $x \neq 0$ is fixed",
    ),
    Assumption(
        "rotation-invariance",
        r"for a unit vector $u$, $W u \sim N(0, \sigma^2 I)$, so $\lVert W u\rVert^2 = "
        r"\sigma^2\chi^2_n$ and $W u/\lVert W u\rVert$ is uniform and independent of it; hence "
        r"$\log\lVert W_d\cdots W_1 x\rVert - \log\lVert x\rVert$ is a sum of $d$ i.i.d. terms "
        r"$\frac12\log(\sigma^2\chi^2_n)$ (Cohen and Newman 1984)",
    ),
)

#: The D2L demo: a 4x4 N(0, 1) matrix multiplied by 100 more (101 factors).
D2L_N, D2L_FACTORS = 4, 101


def _growth_mean(e_log: sp.Expr) -> Derivation:
    """``E log(||W_d...W_1 x|| / ||x||)``: ``d`` i.i.d. terms ``1/2 log(sigma^2 chi2_n)``."""
    term_mean = sp.log(SIGMA_W**2) / 2 + e_log / 2  # E[1/2 log(sigma^2 chi2_n)]
    return (
        Chain("mean log growth", DEPTH * term_mean, None, PRODUCTS_ASSUMPTIONS)
        .step(
            DEPTH * (sp.log(SIGMA_W) + (sp.log(2) + sp.polygamma(0, N_DOF / 2)) / 2),
            "expand_log",
            r"$d$ i.i.d. terms $\frac12\log\sigma^2 + \frac12\log\chi^2_n$; "
            r"$\frac12 \log\sigma^2 = \log\sigma$",
            uses=("rotation-invariance",),
        )
        .done()
    )


def _growth_variance(v_log: sp.Expr) -> Derivation:
    """``Var log(||W_d...W_1 x|| / ||x||) = d psi'(n/2) / 4``."""
    return (
        Chain("variance of log growth", DEPTH * v_log / 4, None, PRODUCTS_ASSUMPTIONS)
        .step(
            DEPTH * sp.polygamma(1, N_DOF / 2) / 4,
            "independent terms",
            r"variances of independent terms add; $\operatorname{Var}[\frac12 Y] = "
            r"\frac14 \operatorname{Var}[Y]$",
            uses=("rotation-invariance",),
        )
        .done()
    )


def _mean_square_growth() -> Derivation:
    """``E||W_d...W_1 x||^2 / ||x||^2 = (n sigma^2)^d`` from the chi-square moment."""
    return (
        Chain(
            "mean-square growth",
            (SIGMA_W**2 * chi_square_moment(1)) ** DEPTH,
            None,
            PRODUCTS_ASSUMPTIONS,
        )
        .step(
            (N_DOF * SIGMA_W**2) ** DEPTH,
            "gammasimp",
            r"$\mathbb{E}[\sigma^2\chi^2_n] = \sigma^2 \cdot 2\Gamma(n/2+1)/\Gamma(n/2)$; "
            "the d independent factors multiply",
        )
        .done()
    )


def _relative_second_moment() -> Derivation:
    """``E[Z^2]/E[Z]^2`` of the squared growth ``Z``, from the chi-square moments."""
    m1, m2 = chi_square_moment(1), chi_square_moment(2)
    return (
        Chain(
            "relative second moment of the squared growth",
            (m2 / m1**2) ** DEPTH,
            None,
            PRODUCTS_ASSUMPTIONS,
        )
        .step(
            sp.gammasimp(m2 / m1**2) ** DEPTH,
            "gammasimp",
            r"$\mathbb{E}[Z^2]/\mathbb{E}[Z]^2$ for $Z = \prod_k \sigma^2\chi^2_{n,k}$ is "
            r"$(\mathbb{E}[X^2]/\mathbb{E}[X]^2)^d$ with $X \sim \chi^2_n$",
        )
        .done()
    )


def _typical_gap(mean_square: sp.Expr, growth_mean: sp.Expr) -> Derivation:
    """Half the log of the mean-square growth minus the mean log growth."""
    return (
        Chain(
            "mean-square minus typical (log scale)",
            sp.log(mean_square) / 2 - growth_mean,
            None,
            PRODUCTS_ASSUMPTIONS,
        )
        .step(
            DEPTH * (sp.log(N_DOF / 2) - sp.polygamma(0, N_DOF / 2)) / 2,
            "expand_log",
            r"$\frac12\log (n\sigma^2)^d - d(\log\sigma + \frac12(\log 2 + \psi(n/2)))$",
        )
        .done()
    )


# The D2L demo: an entry M_ij = ||M e_j|| u_i with u uniform on the sphere, independent
# of the norm; log chi2_1 = log u_i^2 + log chi2_n gives E[log u_i^2] from E log chi2_n.


def _d2l_entry_mean(growth_mean: sp.Expr, e_log: sp.Expr) -> Derivation:
    """``E log|M_ij|`` for the D2L demo (``n = 4``, ``sigma = 1``, 101 factors)."""
    entry_mean = (
        growth_mean.subs({DEPTH: D2L_FACTORS, N_DOF: D2L_N, SIGMA_W: 1})
        + (e_log.subs(N_DOF, 1) - e_log.subs(N_DOF, D2L_N)) / 2
    )
    return (
        Chain("D2L demo: E log|M_ij| after 101 factors", entry_mean, None, PRODUCTS_ASSUMPTIONS)
        .step(
            sp.simplify(sp.expand_func(entry_mean)),
            "evaluate psi",
            r"$\psi(2) = 1 - \gamma$, $\psi(1/2) = -\gamma - 2\log 2$; "
            r"$\mathbb{E}\log u_i^2 = \mathbb{E}\log\chi^2_1 - \mathbb{E}\log\chi^2_n$",
        )
        .done()
    )


def _d2l_entry_variance(growth_var: sp.Expr, v_log: sp.Expr) -> sp.Expr:
    """``Var log|M_ij|`` for the D2L demo, by the same decomposition as the mean."""
    return (
        growth_var.subs({DEPTH: D2L_FACTORS, N_DOF: D2L_N})
        + (v_log.subs(N_DOF, 1) - v_log.subs(N_DOF, D2L_N)) / 4
    )


def _d2l_decade(entry_mean: sp.Expr) -> Derivation:
    """``floor(E log10 |M_ij|)`` for the D2L demo."""
    return (
        Chain(
            "D2L demo: decade of a typical entry",
            sp.floor(entry_mean / sp.log(10), evaluate=False),
            None,
            PRODUCTS_ASSUMPTIONS,
        )
        .step(
            sp.floor(entry_mean / sp.log(10)),
            "floor",
            r"$\lfloor \mathbb{E}\log_{10}|M_{ij}| \rfloor$",
        )
        .done()
    )


def _products_derivations() -> dict[str, Derivation]:
    """The derivations of :func:`gaussian_products`, keyed by name, in the claim's order."""
    moment, mean_log, var_log = _chi_square_moments()
    growth_mean = _growth_mean(mean_log.result)
    mean_square = _mean_square_growth()
    d2l = _d2l_entry_mean(growth_mean.result, mean_log.result)
    chains = (
        moment,
        mean_log,
        var_log,
        growth_mean,
        *_top_lyapunov(growth_mean.result),
        _growth_variance(var_log.result),
        mean_square,
        _typical_gap(mean_square.result, growth_mean.result),
        _relative_second_moment(),
        d2l,
        _d2l_decade(d2l.result),
    )
    return by_name(chains)


def _mean_by_direct_integral(e_log: sp.Expr) -> Check:
    """``E[log X]`` integrated directly against the density, without the cumulant function."""
    direct = sp.simplify(
        sp.integrate(sp.log(X_CHI) * chi_square_density(), (X_CHI, 0, sp.oo), conds="none")
    )
    check = check_algebraic(direct, e_log, {})
    return Check(
        f"direct integral ({check.method})",
        check.status,
        "E[log X] = integral of log(x) f_n(x) over (0, oo), without the cumulant function: "
        + check.detail,
    )


def _d2l_demo_check(derivations: dict[str, Derivation]) -> Check:
    """The D2L demo's typical entry and its spread, against its mean-square growth."""
    decade = derivations["D2L demo: decade of a typical entry"]
    mean_square = derivations["mean-square growth"].result
    demo_m2 = mean_square.subs({DEPTH: D2L_FACTORS, N_DOF: D2L_N, SIGMA_W: 1})
    ev = float(derivations["D2L demo: E log|M_ij| after 101 factors"].result)
    entry_var = _d2l_entry_variance(
        derivations["variance of log growth"].result,
        derivations["variance of log chi-square"].result,
    )
    sd = float(sp.sqrt(entry_var))
    return Check(
        "evaluation",
        Status.COMPUTED if decade.result.is_Integer else Status.UNDECIDED,
        f"D2L demo (101 factors, n = 4, sigma = 1): E log|M_ij| = {ev:.3f} nats = "
        f"{ev / np.log(10):.2f} decades, sd {sd:.2f} nats = {sd / np.log(10):.2f} decades; "
        f"typical entries ~ 10^{ev / np.log(10):.1f}, while the mean-square growth is "
        f"10^{float(sp.log(demo_m2, 10)):.1f}",
    )


def _products_confirmations(derivations: dict[str, Derivation]) -> tuple[Check, ...]:
    """The checks of :func:`gaussian_products`, from its named derivations."""
    gap = derivations["mean-square minus typical (log scale)"].result
    gap_value = gap.subs({DEPTH: 1, N_DOF: D2L_N})
    return (
        _mean_by_direct_integral(derivations["mean of log chi-square"].result),
        sign(gap_value, "positive", f"per-factor gap at n = {D2L_N} (log x > psi(x))"),
        _d2l_demo_check(derivations),
        _lyapunov_by_products(derivations["top Lyapunov exponent, D2L demo"].result),
    )


def _products_summary(entry_mean: sp.Expr, lyapunov: sp.Expr) -> str:
    """The summary of :func:`gaussian_products`, with the demo's decade and exponent."""
    ev = float(entry_mean)
    return (
        r"For i.i.d. $n \times n$ matrices with $N(0, \sigma^2)$ entries, "
        r"$\log\lVert W_d\cdots W_1 x\rVert - \log\lVert x\rVert$ is a sum of $d$ i.i.d. "
        r"terms $\frac12\log(\sigma^2\chi^2_n)$ with mean "
        r"$d(\log\sigma + \frac12(\log 2 + \psi(n/2)))$ and variance $d\,\psi'(n/2)/4$, "
        r"while the mean-square growth is $(n\sigma^2)^d$. The typical product grows by "
        r"$\exp(d(\log\sigma + \frac12(\log 2+\psi(n/2))))$, slower than the mean square "
        r"suggests; for the D2L demo ($n = 4$, $\sigma = 1$, 101 factors) a typical entry "
        rf"is about $10^{{{round(ev / np.log(10))}}}$. The per-factor mean is the top "
        r"Lyapunov exponent $\lambda_1$ of the product, "
        rf"${float(lyapunov):.4f}$ for the demo."
    )


def _products_qualification(typical_threshold: sp.Expr) -> str:
    """The qualification of :func:`gaussian_products`: when the typical size explodes."""
    return (
        r"the product explodes in typical size only when the per-factor log-growth "
        r"$\log\sigma + \frac12(\log 2 + \psi(n/2))$ is positive, i.e. "
        rf"$\sigma > {sp.latex(typical_threshold)}$ (for $n = {D2L_N}$: "
        rf"$\sigma > {float(typical_threshold.subs(N_DOF, D2L_N)):.4f}$; the D2L demo uses "
        r"$\sigma = 1$); at $\sigma = 1/\sqrt{n}$ the mean square is preserved and the "
        r"typical size shrinks slowly"
    )


@cache
def gaussian_products() -> Claim:
    """Growth of products of i.i.d. Gaussian matrices: typical versus mean-square.

    Returns
    -------
    Claim
        The chi-square moment function by integration, the mean and variance of
        :math:`\\log\\chi^2_n` as derivatives of its cumulant function, the log-growth
        mean and variance, the mean-square growth, the gap between them, the relative
        variance of the mean-square estimator, and the typical entry of the D2L demo.

    Notes
    -----
    .. math::

        \\mathbb{E}[\\log \\chi^2_n] = \\log 2 + \\psi(n/2), \\qquad
        \\operatorname{Var}[\\log \\chi^2_n] = \\psi'(n/2), \\qquad
        \\frac{\\mathbb{E}\\lVert W_d\\cdots W_1 x\\rVert^2}{\\lVert x\\rVert^2}
        = (n\\sigma^2)^d .

    The mean-square growth is dominated by rare large products: the relative variance
    of :math:`\\lVert W_d \\cdots W_1 x\\rVert^2/\\lVert x\\rVert^2` is
    :math:`(1 + 2/n)^d - 1`, about :math:`4\\times 10^{17}` for :math:`n=4, d=100`, so
    its mean cannot be estimated by sampling at that depth; the probes estimate it only
    at short depth, and probe the log-growth (a sum of i.i.d. terms) at long depth.

    References
    ----------
    .. [1] J. E. Cohen and C. M. Newman (1984), Ann. Probab. 12(2), 283-310.
    .. [2] C. M. Newman (1986), Commun. Math. Phys. 103, 121-126.
    .. [3] D2L, Sec. 5.4.1.2 "Exploding Gradients": ``M = torch.normal(0, 1, size=(4, 4))``
       then ``for i in range(100): M = M @ torch.normal(0, 1, size=(4, 4))``.
    """
    derivations = _products_derivations()
    growth_mean = derivations["mean log growth"].result
    mean_square = derivations["mean-square growth"].result
    (typical_threshold,) = sp.solve(sp.Eq(growth_mean.subs(DEPTH, 1), 0), SIGMA_W)
    mean_square_threshold = sp.solve(sp.Eq(mean_square.subs(DEPTH, 1), 1), SIGMA_W)[0]
    return Claim(
        id="gaussian-products",
        lecture=("L2.2",),
        title="Products of random Gaussian matrices: typical growth and mean-square growth",
        summary=_products_summary(
            derivations["D2L demo: E log|M_ij| after 101 factors"].result,
            derivations["top Lyapunov exponent, D2L demo"].result,
        ),
        assumptions=PRODUCTS_ASSUMPTIONS,
        derivations=tuple(derivations.values()),
        conditions=(sp.Eq(SIGMA_W, mean_square_threshold), sp.Eq(SIGMA_W, typical_threshold)),
        qualification=_products_qualification(typical_threshold),
        confirmations=_products_confirmations(derivations),
        probes=_product_probes(
            growth_mean, derivations["variance of log growth"].result, mean_square
        ),
    )


#: Replicates, factors and seed of the full-product estimate of the top Lyapunov exponent.
LYAPUNOV_REPLICATES, LYAPUNOV_SEED = 4000, 2026


def _top_lyapunov(growth_mean: sp.Expr) -> tuple[Derivation, Derivation]:
    r"""The top Lyapunov exponent of Gaussian products, and its value for the D2L demo.

    .. math::

        \lambda_1 = \lim_{d\to\infty} \frac1d \log\lVert W_d\cdots W_1\rVert
        = \log\sigma + \tfrac12\big(\log 2 + \psi(\tfrac n2)\big),

    the growth rate of every fixed vector (Furstenberg and Kesten 1960), here in closed
    form because :math:`\lVert W u\rVert^2/\sigma^2 \sim \chi^2_n` for every unit
    :math:`u` (Newman 1986, Cohen and Newman 1984). For :math:`n = 4`, :math:`\sigma = 1`:
    :math:`\lambda_1 = \frac12(\log 2 + 1 - \gamma)`.
    """
    exponent = (
        Chain(
            "top Lyapunov exponent",
            sp.Limit(growth_mean / DEPTH, DEPTH, sp.oo),
            None,
            PRODUCTS_ASSUMPTIONS,
        )
        .step(
            sp.limit(growth_mean / DEPTH, DEPTH, sp.oo),
            "sympy.limit",
            r"the operator norm grows at the rate of any fixed vector (Furstenberg and Kesten "
            r"1960); every factor's log-growth has the same law (Newman 1986)",
            uses=("rotation-invariance",),
        )
        .done()
    )
    at_demo = exponent.result.subs(SIGMA_W, 1).replace(  # psi(2) kept for the next step
        lambda e: isinstance(e, sp.polygamma),
        lambda e: sp.polygamma(e.args[0], e.args[1].subs(N_DOF, D2L_N), evaluate=False),
    )
    demo = (
        Chain("top Lyapunov exponent, D2L demo", at_demo, None, PRODUCTS_ASSUMPTIONS)
        .step(
            at_demo.doit(),
            "evaluate psi",
            r"$\psi(2) = 1 - \gamma$ (Euler's constant)",
        )
        .done()
    )
    return exponent, demo


def _lyapunov_by_products(predicted: sp.Expr, n: int = D2L_N) -> Check:
    r"""The top Lyapunov exponent of :math:`4\times 4` :math:`N(0, 1)` products, simulated.

    Multiplies the full matrices (no vector, no formula), as the D2L demo does, and
    takes the slope of :math:`\log\lVert M_d\rVert_2` between :math:`d = 51` and
    :math:`d = 101` factors in each of :data:`LYAPUNOV_REPLICATES` independent chains,
    which removes the :math:`O(1)` gap between the norm of the matrix and that of one
    column. Tested when the estimate is within 4 standard errors of ``predicted``.
    """
    rng = np.random.default_rng(LYAPUNOV_SEED)
    m = np.broadcast_to(np.eye(n), (LYAPUNOV_REPLICATES, n, n)).copy()
    logs = {}
    for k in range(1, D2L_FACTORS + 1):
        m = rng.standard_normal((LYAPUNOV_REPLICATES, n, n)) @ m
        if k in (51, D2L_FACTORS):
            logs[k] = np.log(np.linalg.norm(m, ord=2, axis=(1, 2)))
    slopes = (logs[D2L_FACTORS] - logs[51]) / (D2L_FACTORS - 51)
    est, se = float(slopes.mean()), float(slopes.std(ddof=1) / np.sqrt(slopes.size))
    value = float(predicted)
    ok = abs(est - value) <= 4 * se
    return Check(
        "simulation (full matrix products)",
        Status.TESTED if ok else Status.REFUTED,
        f"slope of log ||M_d||_2 from d = 51 to 101 over {slopes.size} chains of {n}x{n} "
        f"N(0, 1) matrices: {est:.4f} (standard error {se:.4f}); lambda_1 = {value:.4f}",
        None if ok else {"estimate": f"{est:.4f}", "lambda_1": f"{value:.4f}"},
    )


def _product_probes(mean: sp.Expr, var: sp.Expr, m2: sp.Expr) -> tuple[Probe, ...]:
    log_growth = (
        ("log-growth-mean", {"quantity": "log_growth", "moment": "mean"}, mean),
        ("log-growth-var", {"quantity": "log_growth", "moment": "var"}, var),
    )
    m2_growth = (("m2-growth", {"quantity": "m2_growth", "moment": "mean"}, m2),)
    probes = []
    for label, n, std, depth, observables in (
        ("n4-std1-d100", 4, sp.Integer(1), 100, log_growth),
        ("n16-std0.25-d10", 16, sp.Rational(1, 4), 10, log_growth),
        ("n4-std1-d5", 4, sp.Integer(1), 5, m2_growth),
        ("n16-std0.25-d5", 16, sp.Rational(1, 4), 5, m2_growth),
    ):
        values = {N_DOF: n, SIGMA_W: std, DEPTH: depth}
        scenario = {
            "kind": "product",
            "n": n,
            "std": float(std),
            "depth": depth,
            "dtype": "float64",
        }
        for suffix, observable, expr in observables:
            probes.append(
                Probe.derived(
                    f"{label}-{suffix}",
                    scenario,
                    observable,
                    expr,
                    values,
                    note="exact: the per-layer growths of a Gaussian product are independent "
                    "sigma^2 chi^2_n variables (rotation invariance)",
                )
            )
    return tuple(probes)


# --------------------------------------------------------------------------- L1.2, L2.3

#: The lecture's per-layer factors (L1.2): 1.5 explodes, 0.8 vanishes.
EXPLODING, VANISHING = sp.Rational(3, 2), sp.Rational(4, 5)
LECTURE_DEPTH = 100
FLOAT_TYPES = ("float16", "float32")


def float_format(dtype: str) -> dict:
    """Parameters of an IEEE binary format from :func:`numpy.finfo`, as exact SymPy numbers.

    ``max``, ``tiny`` (smallest normal) and ``subnormal`` (smallest subnormal) are
    dyadic, so :class:`sympy.Rational` of the float is exact.
    """
    info = np.finfo(np.dtype(dtype))
    return {
        "nmant": int(info.nmant),
        "maxexp": int(info.maxexp),
        "minexp": int(info.minexp),
        "max": sp.Rational(float(info.max)),
        "tiny": sp.Rational(float(info.tiny)),
        "subnormal": sp.Rational(float(info.smallest_subnormal)),
    }


def _format_formulas(fmt: dict) -> sp.Matrix:
    """``(2 - 2^-p) 2^(emax-1)``, ``2^emin`` and ``2^(emin-p)``, unevaluated."""
    two = sp.Integer(2)
    largest = sp.Mul(
        sp.Add(two, -sp.Pow(two, -fmt["nmant"], evaluate=False), evaluate=False),
        sp.Pow(two, fmt["maxexp"] - 1, evaluate=False),
        evaluate=False,
    )
    return sp.Matrix(
        [
            largest,
            sp.Pow(two, fmt["minexp"], evaluate=False),
            sp.Pow(two, fmt["minexp"] - fmt["nmant"], evaluate=False),
        ]
    )


def _decimal_chains(name: str, factor: sp.Rational, depth: int) -> tuple[Derivation, Derivation]:
    """The decade ``k = floor(log10 factor^depth)`` and the leading digit of ``factor^depth``."""
    power = sp.Pow(factor, depth, evaluate=False)
    k = sp.floor(sp.log(factor**depth, 10))
    decade = (
        Chain(f"{name}: decade", sp.floor(sp.log(power, 10), evaluate=False))
        .step(k, "floor of log10", "exact evaluation of an integer part")
        .done()
    )
    digit = (
        Chain(f"{name}: leading digit", sp.floor(power / sp.Pow(10, k), evaluate=False))
        .step(sp.floor(factor**depth / 10**k), "floor", "exact rational arithmetic")
        .done()
    )
    return decade, digit


FLOAT_ASSUMPTIONS = (
    Assumption(
        "ieee-formats",
        r"float16 and float32 are IEEE 754 binary16 and binary32, with the parameters "
        r"reported by numpy.finfo",
    ),
    Assumption(
        "per-layer-factor",
        r"a quantity multiplied by a constant factor $c > 0$ at each of $d$ layers is $c^d$ "
        r"times its initial value",
    ),
)

BOUND = sp.Symbol("B", positive=True)
D_REAL = sp.Symbol("d", positive=True)
T_CHERNOFF = sp.Symbol("t", positive=True)
SLACK = sp.Integer(1)  # nats on log||h||^2 allowed for float16 rounding (see overflow_bound)
OVERFLOW_WIDTH, OVERFLOW_DEPTH = 32, 48


def overflow_bound() -> tuple[sp.Expr, dict]:
    """Chernoff bound on the chance that a float16 column is still finite.

    A column of a linear float16 network is finite at layer ``L - 1`` only if every
    entry has magnitude below ``2^maxexp``, hence only if ``log ||h||^2 <= a`` with
    ``a = log(n 4^maxexp)`` (plus :data:`SLACK` for rounding, whose relative error is
    about ``2^-11`` per operation). In exact arithmetic
    ``||h^{L-1}||^2 = chi2_n * prod_{k<L} gamma chi2_n`` (the input has unit variance),
    so for ``0 < t < n/2``

    .. math::

        P(\\log\\lVert h\\rVert^2 \\le a) \\le e^{t a}\\,\\gamma^{-t(L-1)}\\,
        \\mathbb{E}[(\\chi^2_n)^{-t}]^L .

    Any ``t`` gives a valid bound; the smallest over a grid is used. Returns the
    symbolic bound and the values it is evaluated at.
    """
    n, gam, depth, a = sp.symbols("n gamma L a", positive=True)  # n real here, not an integer
    expr = (
        sp.exp(T_CHERNOFF * a)
        * gam ** (-T_CHERNOFF * (depth - 1))
        * chi_square_moment(-T_CHERNOFF, n) ** depth
    )
    fmt = float_format("float16")
    per_layer = EXPLODING**2
    std = _normal_std_for(per_layer, OVERFLOW_WIDTH)
    values = {
        n: OVERFLOW_WIDTH,
        gam: weight_variance("normal", {"std": std}),
        depth: OVERFLOW_DEPTH,
        a: sp.log(OVERFLOW_WIDTH * sp.Integer(2) ** (2 * fmt["maxexp"])) + SLACK,
    }
    grid = [sp.Rational(k, 4) for k in range(1, 2 * OVERFLOW_WIDTH)]  # 0 < t < n/2
    best = min(grid, key=lambda t: float(sp.log(expr.subs(values).subs(T_CHERNOFF, t))))
    values[T_CHERNOFF] = best
    return expr, values


#: The per-layer factors of the threshold table, each against one limit of one format.
THRESHOLD_ROWS = (
    (EXPLODING, "float16", "max"),
    (EXPLODING, "float32", "max"),
    (VANISHING, "float16", "tiny"),
    (VANISHING, "float16", "subnormal"),
    (VANISHING, "float32", "tiny"),
    (VANISHING, "float32", "subnormal"),
)
THRESHOLD_NAME = (
    "threshold depths: 1.5 vs float16/float32 max; 0.8 vs float16/float32 "
    "smallest normal and smallest subnormal"
)


def _format_limits(dt: str, fmt: dict) -> Derivation:
    """The largest finite, smallest normal and smallest subnormal of ``dt``."""
    return (
        Chain(
            f"{dt} max, smallest normal, smallest subnormal",
            _format_formulas(fmt),
            None,
            FLOAT_ASSUMPTIONS,
        )
        .step(
            sp.Matrix([fmt["max"], fmt["tiny"], fmt["subnormal"]]),
            "numpy.finfo",
            r"largest finite $(2 - 2^{-p})2^{e_{\max}-1}$, smallest normal $2^{e_{\min}}$, "
            r"smallest subnormal $2^{e_{\min}-p}$ with $p$ = nmant",
            uses=("ieee-formats",),
        )
        .done()
    )


def _threshold_depth() -> sp.Expr:
    """The real depth ``d = log B / log c`` solving ``c^d = B``."""
    (d_star,) = sp.solve(sp.Eq(C_FACTOR**D_REAL, BOUND), D_REAL)
    return d_star


def _threshold_solution(d_star: sp.Expr) -> Derivation:
    """``c^(log B / log c) = B``: the solved depth reaches the bound."""
    return (
        Chain("depth at which c^d reaches B", C_FACTOR**d_star, None, FLOAT_ASSUMPTIONS)
        .step(
            BOUND,
            "sympy.solve",
            r"$d = \log B/\log c$ solves $c^d = B$",
            uses=("per-layer-factor",),
        )
        .done()
    )


def _threshold_table(d_star: sp.Expr, formats: dict) -> Derivation:
    """``ceil(log B / log c)`` for every row of :data:`THRESHOLD_ROWS`."""
    table = sp.Matrix(
        [
            sp.ceiling(d_star.subs({C_FACTOR: c, BOUND: formats[dt][key]}), evaluate=False)
            for c, dt, key in THRESHOLD_ROWS
        ]
    )
    return (
        Chain(THRESHOLD_NAME, table, None, FLOAT_ASSUMPTIONS)
        .step(table.applyfunc(lambda e: e.func(*e.args)), "ceiling", "exact evaluation")
        .done()
    )


def _float_derivations(formats: dict) -> dict[str, Derivation]:
    """The derivations of :func:`float_range`, keyed by name, in the claim's order."""
    decades = []
    for name, factor in (("1.5^100", EXPLODING), ("0.8^100", VANISHING)):
        decades.extend(_decimal_chains(name, factor, LECTURE_DEPTH))
    d_star = _threshold_depth()
    chains = (
        *decades,
        *(_format_limits(dt, fmt) for dt, fmt in formats.items()),
        _threshold_solution(d_star),
        _threshold_table(d_star, formats),
    )
    return by_name(chains)


def _chernoff_check(bound_expr: sp.Expr, bound_values: dict) -> Check:
    """The Chernoff bound of :func:`overflow_bound`, evaluated exactly."""
    bound = bound_expr.subs(bound_values)
    return Check(
        "Chernoff bound",
        Status.COMPUTED if sp.N(bound, 30) < sp.Float("1e-9") else Status.UNDECIDED,
        f"P(a float16 column of the width-{OVERFLOW_WIDTH} network is still finite at layer "
        f"{OVERFLOW_DEPTH - 1}) <= {float(sp.N(bound, 30)):.3g} at t = {bound_values[T_CHERNOFF]} "
        "(exact arithmetic, 1 nat of slack for rounding)",
    )


@cache
def float_range() -> Claim:
    """The lecture's 1.5^100 and 0.8^100, and where float16 and float32 give out.

    Returns
    -------
    Claim
        Decades and leading digits of :math:`1.5^{100}` and :math:`0.8^{100}`, the
        float16/float32 limits from their format parameters (checked against
        :func:`numpy.finfo`), the depth :math:`d^* = \\lceil \\log B/\\log c\\rceil`
        at which a per-layer factor reaches each limit, and probes of a float16 linear
        network whose standard deviation grows by 1.5 per layer.

    Notes
    -----
    .. math::

        c^{d} = B \\iff d = \\frac{\\log B}{\\log c}, \\qquad
        d^* = \\Big\\lceil \\frac{\\log B}{\\log c} \\Big\\rceil .

    The depth at which a random network first overflows is itself random (the
    largest of many entries overflows first), so it is not probed. What is exactly
    predictable is probed instead: the per-layer factor :math:`n\\gamma` of the second
    moment (from the mean-square growth of :func:`gaussian_products`), which float16
    reproduces before the overflow up to a bounded rounding bias
    (:func:`rounding_bias`), and the fraction of non-finite entries far past it,
    which is at least 1 minus a Chernoff bound (:func:`overflow_bound`): a one-sided
    probe (``kind="lower_bound"``), not a point prediction.

    References
    ----------
    .. [1] NumPy, ``numpy.finfo``; IEEE 754-2008, binary16 and binary32.
    """
    formats = {dt: float_format(dt) for dt in FLOAT_TYPES}
    derivations = _float_derivations(formats)
    bound_expr, bound_values = overflow_bound()
    mean_square = gaussian_products().derivation("mean-square growth")
    return Claim(
        id="float-range",
        lecture=("L1.2", "L2.3"),
        title="Exploding and vanishing factors against the range of 16 and 32 bit floats",
        summary=_float_summary(derivations, formats),
        assumptions=FLOAT_ASSUMPTIONS,
        derivations=tuple(derivations.values()),
        conditions=(sp.Eq(D_REAL, _threshold_depth()),),
        confirmations=(*_float_confirmations(formats), _chernoff_check(bound_expr, bound_values)),
        probes=_float_probes(mean_square.result, 1 - bound_expr, bound_values),
    )


def _float_summary(derivations: dict[str, Derivation], formats: dict) -> str:
    """The summary prose, every number taken from the derivations."""
    k_big, lead_big, k_small, lead_small = (
        int(derivations[f"{factor}: {part}"].result)
        for factor in ("1.5^100", "0.8^100")
        for part in ("decade", "leading digit")
    )
    f16 = formats["float16"]
    d = [int(x) for x in derivations[THRESHOLD_NAME].result]
    return (
        rf"$1.5^{{100}}$ lies in $[{lead_big}\cdot 10^{{{k_big}}}, {lead_big + 1}\cdot "
        rf"10^{{{k_big}}})$ and $0.8^{{100}}$ in $[{lead_small}\cdot 10^{{{k_small}}}, "
        rf"{lead_small + 1}\cdot 10^{{{k_small}}})$. float16 has normal numbers from "
        rf"$2^{{{f16['minexp']}}} \approx {sp.latex(sp.Float(f16['tiny'], 2))}$ to "
        rf"${int(f16['max'])}$ "
        rf"(subnormals down to $2^{{{f16['minexp'] - f16['nmant']}}}$), so a factor $1.5$ per "
        rf"layer overflows it after ${d[0]}$ layers, and a factor $0.8$ leaves its normal "
        rf"range after ${d[2]}$ layers and passes its smallest subnormal after ${d[3]}$; "
        rf"float32 lasts ${d[1]}$, ${d[4]}$ and ${d[5]}$ layers. In float16 $1.5^{{100}}$ "
        r"is infinite and $0.8^{100}$ rounds to $0$."
    )


def _float_confirmations(formats: dict) -> tuple[Check, ...]:
    """Exact comparisons of the lecture's numbers with the limits, and NumPy's rounding."""
    big = EXPLODING**LECTURE_DEPTH
    small = VANISHING**LECTURE_DEPTH
    f16, f32 = formats["float16"], formats["float32"]
    margins = (
        big - f16["max"],
        f32["max"] - big,
        f16["subnormal"] / 2 - small,
        small - f32["tiny"],
    )
    with np.errstate(over="ignore", under="ignore"):
        n16 = (np.float16(float(big)), np.float16(float(small)))
        n32 = (np.float32(float(big)), np.float32(float(small)))
    rounding = bool(np.isinf(n16[0]) and n16[1] == 0 and np.isfinite(n32[0]) and n32[1] > 0)
    return (
        sign(
            sp.Min(*margins),
            "positive",
            "(3/2)^100 > float16 max and < float32 max; (4/5)^100 < half the float16 "
            "smallest subnormal (so it rounds to 0) and > float32 smallest normal: the "
            "smallest margin",
        ),
        Check(
            "numpy rounding",
            Status.TESTED if rounding else Status.REFUTED,
            f"numpy: float16(1.5^100) = {n16[0]}, float16(0.8^100) = {n16[1]}, "
            f"float32: {n32[0]:.4g}, {n32[1]:.4g}",
        ),
    )


def rounding_bias(dtype: str, n: int) -> sp.Expr:
    """Relative bound on the bias of a simulated per-layer factor from rounding.

    The engine draws weights in ``float32`` (``float64`` for ``float64``) and stores
    them in ``dtype``; a product is accumulated in ``float32`` for ``float16`` (in
    ``dtype`` otherwise) and rounded to ``dtype``. With unit roundoffs
    :math:`u_d` (draw), :math:`u_s` (storage), :math:`u_a` (accumulation):

    * a weight is :math:`w(1 + \\varepsilon)`, :math:`|1 + \\varepsilon| \\le
      (1 + u_d)^3 (1 + u_s)` (the normal draw, the scale, their product, the storage),
      so :math:`\\mathbb{E}[\\tilde w^2]/\\gamma \\in [\\dots, ((1+u_d)^3(1+u_s))^2]`;
    * the accumulated :math:`z + e` has :math:`|e| \\le \\gamma_n \\sum_k |w_k h_k|`,
      :math:`\\gamma_n = n u_a/(1 - n u_a)` (any summation order), and by
      Cauchy-Schwarz :math:`\\mathbb{E}[(\\sum_k |w_k h_k|)^2] \\le n\\,\\mathbb{E}[z^2]`,
      so :math:`|\\mathbb{E}[(z+e)^2]/\\mathbb{E}[z^2] - 1| \\le 2\\gamma_n\\sqrt n +
      \\gamma_n^2 n`;
    * the stored result is :math:`z(1 + \\delta)`, :math:`|\\delta| \\le u_s` in the
      normal range.

    The layer below is measured in the same stored values the layer multiplies, so the
    relative bias of the factor is at most the product of these minus 1 (entries in the
    subnormal range add an absolute error of half the subnormal spacing; see
    :func:`_float_probes`).
    """

    def unit(dt: str) -> sp.Expr:
        return sp.Integer(2) ** -(float_format(dt)["nmant"] + 1)

    stored = unit(dtype)
    drawn = unit("float64" if dtype == "float64" else "float32")
    accumulated = unit("float32" if dtype == "float16" else dtype)
    gamma_n = n * accumulated / (1 - n * accumulated)
    weights = ((1 + drawn) ** 3 * (1 + stored)) ** 2
    accumulation = 1 + 2 * gamma_n * sp.sqrt(n) + gamma_n**2 * n
    return weights * accumulation * (1 + stored) ** 2 - 1


def _float_probes(mean_square: sp.Expr, finite_bound: sp.Expr, values: dict) -> tuple[Probe, ...]:
    n = OVERFLOW_WIDTH
    std = _normal_std_for(EXPLODING**2, n)
    factor = mean_square.subs(DEPTH, 1)  # E||W h||^2 / ||h||^2 = n sigma^2
    at = {N_DOF: n, SIGMA_W: std}
    layer = 10
    probes = []
    for dtype in ("float64", "float16"):
        relative = rounding_bias(dtype, n)
        # subnormal entries: absolute error <= half the subnormal spacing, against the
        # second moment (n sigma^2)^layer of the layer (unit-variance input)
        half = float_format(dtype)["subnormal"] / 2
        second = factor.subs(at) ** layer
        subnormal = 2 * half / sp.sqrt(second) + half**2 / second
        predicted = float(factor.subs(at))
        bound = predicted * float(relative + subnormal)
        probes.append(
            Probe.derived(
                f"n{n}-{dtype}-m2-factor-layer{layer}",
                _mlp([n] * (layer + 1), std, dtype=dtype),
                {"direction": "forward", "moment": "m2", "layer": layer, "relative_to": layer - 1},
                factor,
                at,
                bias_bound=bound,
                note=(
                    f"exact in real arithmetic; {dtype} rounding of weights, accumulation "
                    f"and results biases the simulated factor by at most "
                    f"{float(relative + subnormal):.3g} relative (rounding_bias); the "
                    f"layer's standard deviation {math.sqrt(float(second)):.3g} is far below "
                    f"the largest {dtype}, {float(float_format(dtype)['max']):.5g}"
                ),
            )
        )
    probes.append(
        Probe.derived(
            f"n{n}-float16-nonfinite-layer{OVERFLOW_DEPTH}",
            _mlp([n] * (OVERFLOW_DEPTH + 1), std, dtype="float16"),
            {"direction": "forward", "moment": "nonfinite", "layer": OVERFLOW_DEPTH},
            finite_bound,
            values,
            kind="lower_bound",
            note=(
                "a lower bound, not a point value: P(a column is still finite at layer "
                f"{OVERFLOW_DEPTH - 1}) <= the Chernoff bound (overflow_bound), and a column "
                f"with a non-finite entry there is non-finite in every entry at layer "
                f"{OVERFLOW_DEPTH}, so E[fraction non-finite] >= 1 - bound; it must be "
                "checked one-sided (refused only when the interval lies below the bound)"
            ),
        )
    )
    return tuple(probes)


# --------------------------------------------------------------------------- L3.1, L3.2

GAMMA_RES = sp.Symbol("gamma", positive=True)
V_U = sp.Symbol("v", positive=True)
A_W = sp.IndexedBase("a")
U = sp.IndexedBase("u")
R_OUT = sp.IndexedBase("r")
P_OUT = sp.IndexedBase("p")
_BRANCH = sp.Sum(A_W[I_IDX, J_IDX] * U[J_IDX], (J_IDX, 1, N_RES))
RESIDUAL_MODEL = linear_model(
    A_W,
    U,
    {R_OUT: ((I_IDX,), U[I_IDX] + _BRANCH), P_OUT: ((I_IDX,), _BRANCH)},
    width=N_RES,
    free=I_IDX,
    gamma=GAMMA_RES,
    mean=MU_U,
    variance=V_U,
)
THETA = sp.Symbol("theta", positive=True)
G_NORM = sp.Symbol("r", positive=True)
DELTA0 = sp.Symbol("delta", nonnegative=True)
DELTA1 = sp.Symbol("delta", positive=True)

RESIDUAL_ASSUMPTIONS = (
    Assumption(
        "residual-layer",
        r"$h^t = h^{t-1} + f(h^{t-1})$ with $f(h) = \sigma(W h)$, $W$ square; for the moments "
        r"$f$ is linear, $r_i = u_i + \sum_j a_{ij} u_j$",
    ),
    Assumption(
        "iid-weights",
        r"the $a_{ij}$ are i.i.d. with mean $0$ and variance $\gamma$, independent of $u$; "
        r"forward: $a = W$, $u = h^{t-1}$; backward: $a = W^T$ (also i.i.d.), "
        r"$u = \partial\ell/\partial h^t$",
    ),
    Assumption(
        "identical-entries",
        r"the $u_j$ share mean $\mu$ and variance $v$ and may be dependent",
    ),
    Assumption(
        "clip-small",
        r"case $\lVert g\rVert \le \theta$: write $\theta = \lVert g\rVert + \delta$, "
        r"$\delta \ge 0$",
        {THETA: G_NORM + DELTA0},
    ),
    Assumption(
        "clip-large",
        r"case $\lVert g\rVert > \theta$: write $\lVert g\rVert = \theta(1 + \delta)$, "
        r"$\delta > 0$",
        {G_NORM: THETA * (1 + DELTA1)},
    ),
)


def _second_moment(target: sp.IndexedBase, name: str) -> Derivation:
    """``E[target_i^2]`` by the moment calculus; the residual sum is first distributed."""
    residual = target is R_OUT
    steps = (
        rules.substitute_definitions,
        *((rules.distribute,) if residual else ()),
        rules.expand_square,
        rules.linearity,
        *((rules.absorb_into_sums, rules.linearity) if residual else ()),
        rules.factor_independent,
        rules.substitute_moments,
        rules.evaluate_sums,
    )
    chain = Chain(name, Ex(target[I_IDX] ** 2), RESIDUAL_MODEL, RESIDUAL_ASSUMPTIONS)
    for rule in steps:
        chain = chain.apply(rule)
    return chain.done()


RESIDUAL_SUMMARY = (
    r"A residual layer $h^t = h^{t-1} + \sigma(W^t h^{t-1})$ has Jacobian "
    r"$I + \operatorname{diag}(\sigma')W^t$, so the product over layers is a sum of "
    r"paths that always contains the identity. For a linear branch with weight "
    r"variance $\gamma$ the second moment grows by $1 + n\gamma$ per layer (a plain "
    r"layer: $n\gamma$), forward and backward; with $n\gamma = c/L$ over $L$ layers the "
    r"total factor tends to $e^c$. Clipping $g \leftarrow \min(1, \theta/\lVert g"
    r"\rVert)\, g$ keeps the direction and guarantees $\lVert g\rVert \le \theta$."
)


def _residual_jacobian(n: int = 3) -> Derivation:
    """``d(h + sigma(W h))/dh = I + diag(sigma') W`` on a square layer."""
    h = _vector("h", n)
    w = _weights(1, n, n)
    z = w * h
    out = h + z.applyfunc(SIGMA)
    return (
        Chain(
            "residual Jacobian (3 -> 3)", _unevaluated_jacobian(out, h), None, RESIDUAL_ASSUMPTIONS
        )
        .step(out.jacobian(h), "Matrix.jacobian", "entrywise derivative computed by SymPy")
        .step(
            sp.MatAdd(
                sp.ImmutableMatrix(sp.eye(n)),
                _product(_diag_derivative(SIGMA, z), w),
                evaluate=False,
            ),
            "identity plus branch",
            r"$\partial h/\partial h = I$ plus the branch Jacobian "
            r"$\operatorname{diag}(\sigma') W$",
        )
        .done()
    )


def _moment_factor(second_moment: Derivation) -> sp.Expr:
    """The per-layer factor of the second moment: the result over ``E[u^2]``."""
    return sp.simplify(second_moment.result / (V_U + MU_U**2))


def _scaled_stack(res_factor: sp.Expr) -> Derivation:
    """``(1 + c/L)^L -> e^c``: ``L`` residual layers with ``n gamma = c/L``."""
    L = sp.Symbol("L", integer=True, positive=True)
    return (
        Chain(
            "scaled residual stack",
            sp.Limit(res_factor.subs(GAMMA_RES, C_FACTOR / (L * N_RES)) ** L, L, sp.oo),
            None,
            RESIDUAL_ASSUMPTIONS,
        )
        .step(sp.exp(C_FACTOR), "sympy.limit", r"$L$ layers with $n\gamma = c/L$")
        .done()
    )


def _scaled_norm() -> Derivation:
    """``||k g|| = k ||g||`` for ``k > 0``: clipping keeps the direction."""
    k = sp.Symbol("k", positive=True)  # a real scale, unlike the shared integer k
    g = sp.Matrix(sp.symbols("g_1:4", real=True))
    return (
        Chain("norm of a scaled gradient", (k * g).norm(), None, RESIDUAL_ASSUMPTIONS)
        .step(
            k * g.norm(),
            "simplify",
            r"$\lVert k g\rVert = k\lVert g\rVert$ for $k = \min(1, \theta/\lVert g\rVert) > 0$",
        )
        .done()
    )


def _clipping_cases() -> tuple[Derivation, Derivation]:
    """``theta - ||clip(g)|| >= 0`` in the two cases ``||g|| <= theta`` and ``> theta``."""
    gap = THETA - sp.Min(1, THETA / G_NORM) * G_NORM
    small = (
        Chain("clipping, case norm <= theta", gap, None, RESIDUAL_ASSUMPTIONS)
        .step(
            THETA - G_NORM,
            "substitute the case",
            "",
            uses=("clip-small",),
            extra=(_nonnegative((THETA - G_NORM).subs(THETA, G_NORM + DELTA0)),),
        )
        .done()
    )
    large = (
        Chain("clipping, case norm > theta", gap, None, RESIDUAL_ASSUMPTIONS)
        .step(sp.Integer(0), "substitute the case", "", uses=("clip-large",))
        .done()
    )
    return small, large


def _residual_derivations() -> dict[str, Derivation]:
    """The derivations of :func:`residual_and_clipping`, keyed by name, in order."""
    residual = _second_moment(R_OUT, "residual layer second moment")
    chains = (
        _residual_jacobian(),
        residual,
        _second_moment(P_OUT, "plain layer second moment"),
        _scaled_stack(sp.factor(_moment_factor(residual))),
        _scaled_norm(),
        *_clipping_cases(),
    )
    return by_name(chains)


@cache
def residual_and_clipping() -> Claim:
    """Residual layers turn the product into ``I + ...``; clipping bounds the norm.

    Returns
    -------
    Claim
        The residual Jacobian by :meth:`sympy.Matrix.jacobian`, the second moment of a
        linear residual layer and of a plain one with the moment calculus, the limit
        of a down-scaled residual stack, and the clipping bound proved by cases.

    Notes
    -----
    .. math::

        \\frac{\\partial h^t}{\\partial h^{t-1}} = I + \\operatorname{diag}(\\sigma')W^t,
        \\qquad
        \\mathbb{E}[(h^t_i)^2] = (1 + n\\gamma)\\,\\mathbb{E}[(h^{t-1}_j)^2],
        \\qquad
        \\Big\\lVert \\min\\big(1, \\tfrac{\\theta}{\\lVert g\\rVert}\\big) g\\Big\\rVert
        = \\min(\\lVert g\\rVert, \\theta) \\le \\theta .

    A residual layer does not by itself keep the variance: with :math:`n\\gamma = 1`
    (He or Xavier for square layers) the second moment doubles per layer. It keeps
    the Jacobian close to the identity, and a branch scaled to :math:`n\\gamma = c/L`
    gives a bounded total factor :math:`(1 + c/L)^L \\to e^c` over :math:`L` layers.

    References
    ----------
    .. [1] K. He, X. Zhang, S. Ren and J. Sun (2016), CVPR.
    .. [2] R. Pascanu, T. Mikolov and Y. Bengio (2013), ICML, Algorithm 1.
    """
    derivations = _residual_derivations()
    res_factor = sp.factor(_moment_factor(derivations["residual layer second moment"]))
    plain_factor = _moment_factor(derivations["plain layer second moment"])
    return Claim(
        id="residual-and-clipping",
        lecture=("L3.1", "L3.2"),
        title="Residual connections and gradient clipping",
        summary=RESIDUAL_SUMMARY,
        assumptions=RESIDUAL_ASSUMPTIONS,
        derivations=tuple(derivations.values()),
        conditions=(
            sp.Eq(sp.Symbol(r"\rho_{\mathrm{residual}}"), res_factor, evaluate=False),
            sp.Eq(sp.Symbol(r"\rho_{\mathrm{plain}}"), plain_factor, evaluate=False),
        ),
        confirmations=(),
        probes=_residual_probes(res_factor),
    )


def _nonnegative(expr: sp.Expr) -> Check:
    return sign(expr, "nonnegative", "theta - ||g|| in this case")


def _residual_probes(factor: sp.Expr) -> tuple[Probe, ...]:
    probes = []
    n = 64
    for label, per_layer in (("n-gamma-1", sp.Integer(1)), ("n-gamma-1/4", QUARTER)):
        std = _normal_std_for(per_layer, n)
        values = {N_RES: n, GAMMA_RES: weight_variance("normal", {"std": std})}
        scenario = _mlp([n] * 5, std, residual=True, upstream=True)
        tag = label.replace("/", "over")
        probes.append(
            Probe.derived(
                f"{tag}-forward-m2-factor",
                scenario,
                {"direction": "forward", "moment": "m2", "layer": 4, "relative_to": 3},
                factor,
                values,
                note="exact at every width: a linear branch with weights independent of "
                "the layer below",
            )
        )
        probes.append(
            Probe.derived(
                f"{tag}-backward-m2-factor",
                scenario,
                {"direction": "backward", "moment": "m2", "layer": 0, "relative_to": 1},
                factor,
                values,
                note="exact at every width: in a linear network the gradient above layer 1 "
                "does not depend on its weights",
            )
        )
    return tuple(probes)


#: Builders of this module's claims, in lecture order.
BUILDERS: tuple[Callable[[], Claim], ...] = (
    mlp_jacobian,
    float_range,
    gaussian_products,
    residual_and_clipping,
)
