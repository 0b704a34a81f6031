r"""The exercises of the D2L section on numerical stability, worked and checked.

Dive into Deep Learning, Sec. "Numerical Stability and Initialization"
(``d2l-ai/d2l-en``, ``chapter_multilayer-perceptrons/numerical-stability-and-init.md``)
ends with four exercises. Each is worked here as derivations (checked step by step like
every claim) and numeric checks on random instances:

1. symmetries other than permutations: flipping the sign of a hidden unit of an
   odd activation, and rescaling a relu unit by :math:`c > 0`,

   .. math:: v\tanh(w^\top x) = (-v)\tanh(-w^\top x), \qquad
             v\,\mathrm{relu}(w^\top x) = \tfrac{v}{c}\,\mathrm{relu}(c\,w^\top x);

2. constant initialization of linear and softmax regression (allowed: there is no
   hidden unit to keep identical, the labels and inputs break the tie, and the loss is
   convex), against a hidden layer, whose units stay identical;
3. eigenvalues of a product: :math:`\rho(AB)` is not bounded by
   :math:`\rho(A)\rho(B)` (a :math:`2\times 2` counterexample), but singular values are,
   :math:`\sigma_{\min}(A)\sigma_{\min}(B) \le |\lambda_i(AB)|,\ \sigma_i(AB) \le
   \sigma_{\max}(A)\sigma_{\max}(B)`;
4. the LARS step :math:`\Delta w = \eta\,\lVert w\rVert\, g/\lVert g\rVert` does not change
   when the gradient is rescaled, and moves every layer by the same relative amount
   :math:`\eta`.

References
----------
.. [1] A. Zhang, Z. C. Lipton, M. Li and A. J. Smola, Dive into Deep Learning, Sec. 5.4
   (exercises).
.. [2] Y. You, I. Gitman and B. Ginsburg (2017), "Large batch training of convolutional
   networks", arXiv:1708.03888 (LARS: a layer's learning rate proportional to
   :math:`\lVert w\rVert/\lVert \nabla L(w)\rVert`).
.. [3] R. A. Horn and C. R. Johnson (2013), Matrix Analysis, 2nd ed., Thm. 3.3.16
   (singular values of a product).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import cache

import numpy as np
import sympy as sp

from ._building import by_name
from ._check import Chain
from ._claim import Check, Derivation, Status, combine
from ._symbols import c as C

#: Agreement required of the numeric symmetry checks (relative to the output's size).
SYMMETRY_TOLERANCE = 1e-12
#: Seed of every numeric check here (fixed: the checks are part of the derivation).
SEED = 2026


@dataclass(frozen=True)
class Exercise:
    """A worked exercise: its derivations, its numeric checks and the numbers they give.

    ``values`` holds the numbers a worked answer quotes (computed here, never typed).
    """

    id: str
    derivations: tuple[Derivation, ...]
    checks: tuple[Check, ...]
    values: tuple[tuple[str, float], ...] = ()

    #: Exercises state no side conditions; the same shape as a claim's for the report.
    conditions: tuple = ()

    def derivation(self, name: str) -> Derivation:
        """The derivation called ``name`` (results are read by name, as a claim's are)."""
        table = by_name(self.derivations)
        if name not in table:
            raise KeyError(f"exercise {self.id!r} has no derivation {name!r}; it has {list(table)}")
        return table[name]

    @property
    def confirmations(self) -> tuple[Check, ...]:
        """Its numeric checks, under the name a claim's independent checks have."""
        return self.checks

    @property
    def status(self) -> Status:
        """The weakest of its steps and checks."""
        steps = [d.status for d in self.derivations]
        return combine([*steps, *(c.status for c in self.checks)])


def _within(name: str, error: float, tolerance: float, detail: str) -> Check:
    ok = bool(error <= tolerance)
    return Check(
        name,
        Status.TESTED if ok else Status.REFUTED,
        f"{detail}: largest error {error:.2e} (tolerance {tolerance:.0e})",
        None if ok else {"error": f"{error:.3e}"},
    )


# --------------------------------------------------------------------------- 1. symmetries

x1, x2, v1, v2 = sp.symbols("x_1 x_2 v_1 v_2", real=True)
W = sp.Matrix(2, 2, lambda a, b: sp.Symbol(f"w_{{{a + 1}{b + 1}}}", real=True))


def _two_unit_net(act, w: sp.Matrix, v: tuple) -> sp.Expr:
    z = w * sp.Matrix([x1, x2])
    return v[0] * act(z[0]) + v[1] * act(z[1])


def network_symmetry(act, kind: str, rng: np.random.Generator) -> float:
    """Largest relative change of a random 8-16-16-4 network's outputs under a symmetry.

    ``kind`` is ``"sign"`` (flip the sign of a random half of the units of each hidden
    layer: their incoming row and outgoing column) or ``"scale"`` (multiply the incoming
    row by :math:`c \\in [0.1, 10]` and divide the outgoing column by it).
    """
    widths = (8, 16, 16, 4)
    ws = [rng.standard_normal((b, a)) / np.sqrt(a) for a, b in itertools.pairwise(widths)]
    bs = [rng.standard_normal(b) * 0.1 for b in widths[1:]]
    x = rng.standard_normal((widths[0], 64))

    def run(ws, bs):
        h = x
        for k, (w, b) in enumerate(zip(ws, bs, strict=True)):
            z = w @ h + b[:, None]
            h = z if k == len(ws) - 1 else act(z)
        return h

    new_w, new_b = [w.copy() for w in ws], [b.copy() for b in bs]
    for layer in range(len(ws) - 1):
        n = widths[layer + 1]
        if kind == "sign":
            factor = np.where(rng.random(n) < 0.5, -1.0, 1.0)
        else:
            factor = np.exp(rng.uniform(np.log(0.1), np.log(10), n))
        new_w[layer] *= factor[:, None]
        new_b[layer] *= factor
        new_w[layer + 1] /= factor[None, :]
    before, after = run(ws, bs), run(new_w, new_b)
    return float(np.max(np.abs(after - before)) / np.max(np.abs(before)))


@cache
def symmetries() -> Exercise:
    """Exercise 1: sign flips (odd activations) and positive rescaling (relu)."""
    net = _two_unit_net(sp.tanh, W, (v1, v2))
    flipped = -v1 * sp.tanh(-(W[0, 0] * x1 + W[0, 1] * x2)) + v2 * sp.tanh(
        W[1, 0] * x1 + W[1, 1] * x2
    )
    sign = (
        Chain("sign flip of a tanh unit", flipped)
        .step(net, "tanh(-u) = -tanh(u)", r"$\tanh$ is odd: the two sign changes cancel")
        .done()
    )
    rescaled = v1 / C * sp.Max(0, C * (W[0, 0] * x1 + W[0, 1] * x2)) + v2 * sp.Max(
        0, W[1, 0] * x1 + W[1, 1] * x2
    )
    scale = (
        Chain("positive rescaling of a relu unit", rescaled)
        .step(
            _two_unit_net(lambda u: sp.Max(0, u), W, (v1, v2)),
            "Max(0, c u) = c Max(0, u), c > 0",
            r"relu is positively homogeneous: $\max(0, cu) = c\max(0, u)$ for $c > 0$",
        )
        .done()
    )
    rng = np.random.default_rng(SEED)
    sigmoid = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    relu_np = lambda z: np.maximum(z, 0.0)  # noqa: E731
    errors = {
        "tanh-sign": max(network_symmetry(np.tanh, "sign", rng) for _ in range(20)),
        "relu-scale": max(network_symmetry(relu_np, "scale", rng) for _ in range(20)),
        "sigmoid-sign": min(network_symmetry(sigmoid, "sign", rng) for _ in range(20)),
        "tanh-scale": min(network_symmetry(np.tanh, "scale", rng) for _ in range(20)),
    }
    checks = (
        _within(
            "random networks (tanh, sign flips)",
            errors["tanh-sign"],
            SYMMETRY_TOLERANCE,
            "20 random 8-16-16-4 tanh networks, half the hidden units flipped",
        ),
        _within(
            "random networks (relu, rescaling)",
            errors["relu-scale"],
            SYMMETRY_TOLERANCE,
            "20 random 8-16-16-4 relu networks, every hidden unit rescaled by c in [0.1, 10]",
        ),
        Check(
            "control: the symmetries are specific",
            Status.TESTED
            if min(errors["sigmoid-sign"], errors["tanh-scale"]) > 1e-2
            else Status.REFUTED,
            f"the same sign flips change a sigmoid network's outputs by at least "
            f"{errors['sigmoid-sign']:.2g} (relative), the same rescaling a tanh network's by "
            f"at least {errors['tanh-scale']:.2g}: neither is a symmetry there",
        ),
    )
    return Exercise("symmetries", (sign, scale), checks, tuple(sorted(errors.items())))


# --------------------------------------------------------------------------- 2. constant init


# Local: a real step in either direction, unlike the positive ``epsilon`` of other claims.
EPS = sp.Symbol("epsilon", real=True)


def _entry_derivatives(loss, weights: sp.Matrix) -> tuple[sp.Matrix, sp.Matrix]:
    r"""The gradient of ``loss`` at constant weights ``c``, unevaluated and evaluated.

    Entry :math:`(k, j)` is :math:`\frac{d}{d\epsilon} L(c + \epsilon E_{kj})` at
    :math:`\epsilon = 0`: only the one weight moves away from the common value.
    """

    def moved(a: int, b: int) -> sp.Expr:
        return loss.xreplace({e: C + (EPS if e == weights[a, b] else 0) for e in weights})

    shape = weights.shape
    start = sp.Matrix(*shape, lambda a, b: sp.Subs(sp.Derivative(moved(a, b), EPS), EPS, 0))
    value = sp.Matrix(*shape, lambda a, b: sp.simplify(sp.diff(moved(a, b), EPS).subs(EPS, 0)))
    return start, value


def _gradient_at_constant(model: str, loss: sp.Expr, weights: sp.Matrix, why: str) -> Derivation:
    """``model``'s gradient at constant weights (:func:`_entry_derivatives`), one step."""
    start, value = _entry_derivatives(loss, weights)
    name = f"{model}: gradient at constant weights"
    return Chain(name, start).step(value, "sympy.diff", why).done()


def _softmax_gradient() -> Derivation:
    """The cross-entropy gradient of softmax regression at constant weights (3 classes)."""
    w = sp.Matrix(3, 2, lambda a, b: sp.Symbol(f"w_{{{a + 1}{b + 1}}}", real=True))
    logits = w * sp.Matrix([x1, x2])
    loss = -sp.log(sp.exp(logits[0]) / sum(sp.exp(z) for z in logits))  # label: class 1
    why = (
        r"all logits equal, so every class has probability $1/3$; the gradient's row "
        r"$k$ is $(p_k - y_k)\,x^\top$ with the label $y = e_1$"
    )
    return _gradient_at_constant("softmax regression", loss, w, why)


def _linear_gradient() -> Derivation:
    """The squared-loss gradient of linear regression at constant weights."""
    b, y = sp.symbols("b y", real=True)
    w = sp.Matrix(1, 2, sp.symbols("w_1 w_2", real=True))
    loss = ((w * sp.Matrix([x1, x2]))[0] + b - y) ** 2 / 2
    why = "the two entries differ by the inputs: the weights separate at the first step"
    return _gradient_at_constant("linear regression", loss, w, why)


#: Gradient-descent steps for the convex models (enough to converge to 1e-8 here).
TRAINING_STEPS = 12000


def _descend(grad, params: list[np.ndarray], lr: float, steps: int) -> list[np.ndarray]:
    for _ in range(steps):
        params = [p - lr * g for p, g in zip(params, grad(params), strict=True)]
    return params


def constant_training(rng: np.random.Generator) -> dict[str, float]:
    """Gradient descent from constant and random starts, on one random data set.

    Returns the largest parameter difference between the constant (0.3) and random
    starts after training, for ridge-regularized linear and softmax regression (both
    strictly convex, so both starts reach the same minimizer), and the largest spread
    between the hidden units of a tanh network started constant (0 when they stay
    identical).
    """
    n, d, k, ridge = 200, 5, 3, 1e-2
    x = rng.standard_normal((n, d))
    y_lin = x @ rng.standard_normal(d) + 0.1 * rng.standard_normal(n)
    labels = rng.integers(0, k, n)
    onehot = np.eye(k)[labels]

    def lin_grad(p):
        (w,) = p
        return [x.T @ (x @ w - y_lin) / n + ridge * w]

    def soft_grad(p):
        (w,) = p
        z = x @ w.T
        prob = np.exp(z - z.max(axis=1, keepdims=True))
        prob /= prob.sum(axis=1, keepdims=True)
        return [(prob - onehot).T @ x / n + ridge * w]

    out = {}
    for name, grad, shape in (("linear", lin_grad, (d,)), ("softmax", soft_grad, (k, d))):
        const = _descend(grad, [np.full(shape, 0.3)], 0.5, TRAINING_STEPS)[0]
        rand = _descend(grad, [rng.standard_normal(shape)], 0.5, TRAINING_STEPS)[0]
        out[f"{name}: constant vs random start"] = float(np.max(np.abs(const - rand)))

    def mlp_grad(p):
        w1, w2 = p
        h = np.tanh(x @ w1.T)
        r = h @ w2 - y_lin
        g2 = h.T @ r / n
        g1 = ((r[:, None] * w2[None, :]) * (1 - h**2)).T @ x / n
        return [g1, g2]

    w1, _ = _descend(mlp_grad, [np.full((8, d), 0.3), np.full(8, 0.3)], 0.1, 500)
    out["hidden layer: spread of its units"] = float(np.max(np.abs(w1 - w1[0])))
    return out


@cache
def constant_initialization() -> Exercise:
    """Exercise 2: linear and softmax regression may start from equal weights."""
    values = constant_training(np.random.default_rng(SEED))
    lin, soft, hidden = (
        values["linear: constant vs random start"],
        values["softmax: constant vs random start"],
        values["hidden layer: spread of its units"],
    )
    checks = (
        _within(
            "gradient descent, linear regression",
            lin,
            1e-8,
            "ridge least squares (200 points, 5 inputs): constant and random starts reach "
            "the same weights",
        ),
        _within(
            "gradient descent, softmax regression",
            soft,
            1e-8,
            "ridge softmax regression (3 classes): constant and random starts reach the "
            "same weights",
        ),
        Check(
            "control: a hidden layer stays symmetric",
            Status.TESTED if hidden == 0.0 else Status.REFUTED,
            f"a tanh network with 8 hidden units started at equal weights: after 500 steps "
            f"its hidden units differ by {hidden:.1e}, so it acts as one unit",
        ),
    )
    derivations = (_linear_gradient(), _softmax_gradient())
    return Exercise("constant-initialization", derivations, checks, tuple(values.items()))


# --------------------------------------------------------------------------- 3. eigenvalues

A_NIL = sp.Matrix([[0, 1], [0, 0]])
B_NIL = sp.Matrix([[0, 0], [1, 0]])
# Local: an eigenvalue may be complex, so this ``lambda`` has no assumptions (SELU's is
# positive).
LAMBDA = sp.Symbol("lambda")


def _characteristic(name: str, m: sp.Matrix) -> Derivation:
    start = sp.Determinant(LAMBDA * sp.eye(2) - sp.ImmutableMatrix(m))
    return (
        Chain(f"characteristic polynomial of {name}", start)
        .step(sp.factor(start.doit()), "sympy.det", "")
        .done()
    )


def product_bounds(rng: np.random.Generator, pairs: int = 20000) -> dict[str, float]:
    """Random 4x4 pairs: worst violation of each singular-value bound, and how often
    the spectral radius of the product exceeds the product of the spectral radii."""
    a = rng.standard_normal((pairs, 4, 4))
    b = rng.standard_normal((pairs, 4, 4)) * np.exp(rng.uniform(-3, 3, (pairs, 1, 1)))
    ab = a @ b
    sa, sb, sab = (np.linalg.svd(m, compute_uv=False) for m in (a, b, ab))
    lam = np.abs(np.linalg.eigvals(ab))
    top, bottom = sa[:, 0] * sb[:, 0], sa[:, -1] * sb[:, -1]
    rho = np.abs(np.linalg.eigvals(a)).max(1) * np.abs(np.linalg.eigvals(b)).max(1)
    kappa = (sa[:, 0] / sa[:, -1]) * (sb[:, 0] / sb[:, -1])
    return {
        "sigma_max(AB) <= sigma_max(A) sigma_max(B)": float(np.max(sab[:, 0] / top - 1)),
        "sigma_min(AB) >= sigma_min(A) sigma_min(B)": float(np.max(1 - sab[:, -1] / bottom)),
        "|lambda(AB)| <= sigma_max(A) sigma_max(B)": float(np.max(lam.max(1) / top - 1)),
        "|lambda(AB)| >= sigma_min(A) sigma_min(B)": float(np.max(1 - lam.min(1) / bottom)),
        "kappa(AB) <= kappa(A) kappa(B)": float(np.max(sab[:, 0] / sab[:, -1] / kappa - 1)),
        "fraction with rho(AB) > rho(A) rho(B)": float(np.mean(lam.max(1) > rho * (1 + 1e-9))),
    }


@cache
def eigenvalue_products() -> Exercise:
    """Exercise 3: eigenvalues of a product are not bounded by the factors' eigenvalues."""
    polynomials = {
        name: _characteristic(name, m)
        for name, m in (("A", A_NIL), ("B", B_NIL), ("AB", A_NIL * B_NIL))
    }
    derivations = tuple(polynomials.values())
    values = product_bounds(np.random.default_rng(SEED))
    bounds = [k for k in values if not k.startswith("fraction")]
    checks = tuple(
        _within(f"20000 random 4x4 pairs: {k}", max(values[k], 0.0), 1e-12, k) for k in bounds
    )
    # As strong as the three characteristic polynomials; refuted if AB's misses 1.
    vanishes = polynomials["AB"].result.subs(LAMBDA, 1) == 0
    counter = Check(
        "counterexample",
        combine([d.status for d in derivations]) if vanishes else Status.REFUTED,
        "A and B have only the eigenvalue 0, AB has the eigenvalue 1: rho(AB) = 1 > "
        "rho(A) rho(B) = 0",
    )
    return Exercise("eigenvalue-products", derivations, (*checks, counter), tuple(values.items()))


# --------------------------------------------------------------------------- 4. LARS

ETA = sp.Symbol("eta", positive=True)
G = sp.Matrix(sp.symbols("g_1:3", real=True))
WV = sp.Matrix(sp.symbols("w_1:3", real=True))


def lars_step(w: sp.Matrix, g: sp.Matrix, eta: sp.Expr = ETA) -> sp.Matrix:
    """The LARS update without weight decay, :math:`\\eta\\lVert w\\rVert g/\\lVert g\\rVert`."""
    return eta * w.norm() * g / g.norm()


def scale_invariant_training(rng: np.random.Generator, c: float = 10.0) -> dict[str, float]:
    """Relative step sizes of SGD and LARS on a loss that ignores the scale of ``w``.

    :math:`L(w) = \\lVert A w/\\lVert w\\rVert - t\\rVert^2` (a layer followed by a
    normalization): rescaling :math:`w` by ``c`` divides the gradient by ``c``, so
    SGD's relative step shrinks by :math:`c^2` while the LARS step's does not.
    """
    a, t, w = rng.standard_normal((6, 4)), rng.standard_normal(6), rng.standard_normal(4)

    def grad(w):
        u = w / np.linalg.norm(w)
        r = a @ u - t
        gu = 2 * a.T @ r
        return (gu - u * (u @ gu)) / np.linalg.norm(w)

    def relative(step, w):
        return np.linalg.norm(step(w)) / np.linalg.norm(w)

    sgd = lambda w: 0.1 * grad(w)  # noqa: E731
    lars = lambda w: 0.1 * np.linalg.norm(w) * grad(w) / np.linalg.norm(grad(w))  # noqa: E731
    return {
        "SGD relative step ratio (w scaled by 10)": float(relative(sgd, c * w) / relative(sgd, w)),
        "LARS relative step ratio (w scaled by 10)": float(
            relative(lars, c * w) / relative(lars, w)
        ),
        "gradient ratio (w scaled by 10)": float(
            np.linalg.norm(grad(c * w)) / np.linalg.norm(grad(w))
        ),
    }


@cache
def lars() -> Exercise:
    """Exercise 4: the LARS step ignores the gradient's scale; its relative size is eta."""
    invariant = (
        Chain("LARS step under a rescaled gradient", lars_step(WV, C * G))
        .step(lars_step(WV, G), "simplify", r"$\lVert c g\rVert = c\lVert g\rVert$ for $c > 0$")
        .done()
    )
    size = sp.sqrt(sum(e**2 for e in lars_step(WV, G))) / WV.norm()
    relative = (
        Chain("relative size of a LARS step", size)
        .step(
            ETA,
            "simplify",
            r"$\lVert \eta\lVert w\rVert g/\lVert g\rVert\rVert = \eta\lVert w\rVert$",
        )
        .done()
    )
    values = scale_invariant_training(np.random.default_rng(SEED))
    sgd, ratio = (
        values["SGD relative step ratio (w scaled by 10)"],
        values["LARS relative step ratio (w scaled by 10)"],
    )
    check = Check(
        "scale-invariant loss",
        Status.TESTED if abs(ratio - 1) < 1e-12 and abs(sgd - 1e-2) < 1e-12 else Status.REFUTED,
        f"a linear layer followed by a normalization (its loss ignores the scale of w): "
        f"scaling w by 10 scales SGD's relative step by {sgd:.6g} and LARS's by {ratio:.6g}",
    )
    return Exercise("lars", (invariant, relative), (check,), tuple(values.items()))


#: Builders of the worked exercises, in the book's order.
BUILDERS = (symmetries, constant_initialization, eigenvalue_products, lars)


def exercises() -> tuple[Exercise, ...]:
    """Every worked exercise, in the book's order (built once)."""
    return tuple(build() for build in BUILDERS)
