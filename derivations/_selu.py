r"""SELU for any target: :math:`\lambda` and :math:`\alpha` that make :math:`(M, V)` a fixed point.

A SELU layer, :math:`\operatorname{selu}(z) = \lambda z` for :math:`z > 0` and
:math:`\lambda\alpha(e^z - 1)` otherwise, maps the mean :math:`\mu` and variance :math:`\nu`
of its inputs to those of its outputs (Klambauer et al. 2017, Sec. 3). With
:math:`\omega = \sum_i w_i` and :math:`\tau = \sum_i w_i^2` the pre-activation is
:math:`z \sim N(\mu\omega, \nu\tau)` (central limit), and

.. math::

    \tilde\mu(\mu, \nu) = \mathbb{E}[\operatorname{selu}(z)], \qquad
    \tilde\nu(\mu, \nu) = \mathbb{E}[\operatorname{selu}(z)^2] - \tilde\mu^2 .

Writing :math:`z = m + s u`, :math:`u \sim N(0, 1)`, :math:`m = \mu\omega`,
:math:`s = \sqrt{\nu\tau}`, each expectation is a sum of two integrals over the half
lines :math:`u > -m/s` and :math:`u < -m/s`, which SymPy evaluates in closed form (a
*computed* step, cross-checked numerically by the checker). The fixed-point equations
:math:`\tilde\mu(M, V) = M`, :math:`\tilde\nu(M, V) = V` are solved for
:math:`(\lambda, \alpha)` with :func:`mpmath.findroot` at 40 digits (reported to 30), by
continuation from :math:`(0, 1)`, where the solver starts at :math:`\lambda = \alpha = 1`
(plain ELU), so the published constants are reached, not assumed. The Jacobian
:math:`J = \partial(\tilde\mu, \tilde\nu)/\partial(\mu, \nu)` is SymPy's derivative of
the closed forms (a *computed* step); its spectral norm below 1 is the stability claim
of the paper (Theorem 1: the map is a contraction near the fixed point).

The defaults :math:`\omega = 0`, :math:`\tau = 1` are the paper's normalized weights
(zero mean, variance :math:`1/n`); the authors' notebook ``getSELUparameters.ipynb``
takes :math:`z \sim N(M, V)`, i.e. :math:`\omega = \tau = 1`.

References
----------
.. [1] G. Klambauer, T. Unterthiner, A. Mayr and S. Hochreiter (2017),
   "Self-Normalizing Neural Networks", NeurIPS, Eq. (4)-(5) (the mean and variance
   map), Theorem 1, and the constants :math:`\alpha_{01} \approx 1.6733`,
   :math:`\lambda_{01} \approx 1.0507`.
.. [2] bioinf-jku/SNNs, ``getSELUparameters.ipynb`` and ``selu.py``: the same equations
   solved with ``sympy.nsolve`` (:math:`\alpha = 1.6732632423543772848170429916717`,
   :math:`\lambda = 1.0507009873554804934193349852946`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import mpmath
import sympy as sp

from ._check import Chain
from ._claim import Check, Derivation, Status, Step, combine
from ._gaussian import OPERATION_SECONDS, Budget
from ._symbols import mu, s, tau, u
from ._user import InputError, parse_number

#: Digits of the reported solution; the solver works with :data:`WORK_DPS`.
DIGITS = 30
WORK_DPS = 45
#: Continuation steps from the fixed point (0, 1) to the target.
CONTINUATION_STEPS = 40
#: Largest |mean| and variance accepted.
MAX_MEAN, MAX_VAR = 10.0, 100.0

# Local: SELU's own parameters. ``alpha`` and ``m`` are positive and real here, unlike
# the real ``alpha`` and integer ``m`` of the Xavier claims, so they are other symbols;
# ``z`` below has no assumptions (a placeholder for SELU's argument, replaced at once),
# unlike the shared real ``z``.
lam, alpha = sp.symbols("lambda alpha", positive=True)
nu = sp.Symbol("nu", positive=True)
omega = sp.Symbol("omega", real=True)
m = sp.Symbol("m", real=True)


@dataclass(frozen=True)
class SeluFixedPoint:
    """:math:`\\lambda`, :math:`\\alpha` for the fixed point :math:`(M, V)`, and its stability.

    ``lam`` and ``alpha`` are 30-digit strings (``lam_float``/``alpha_float`` as
    floats); ``residual`` is the largest :math:`|\\tilde\\mu - M|, |\\tilde\\nu - V|` at
    the solution (45-digit arithmetic); ``jacobian`` is
    :math:`\\partial(\\tilde\\mu, \\tilde\\nu)/\\partial(\\mu, \\nu)` there, row by row;
    ``spectral_norm`` its largest singular value and ``eigenvalues`` its eigenvalues.
    """

    mean: float
    var: float
    omega: float
    tau: float
    lam: str
    alpha: str
    residual: float
    jacobian: tuple[tuple[float, float], tuple[float, float]]
    spectral_norm: float
    eigenvalues: tuple[complex, complex]
    derivations: tuple[Derivation, ...]
    method: str
    jacobian_check: str = ""

    @property
    def lam_float(self) -> float:
        return float(self.lam)

    @property
    def alpha_float(self) -> float:
        return float(self.alpha)

    @property
    def stable(self) -> bool:
        return self.spectral_norm < 1

    @property
    def status(self) -> Status:
        return combine([d.status for d in self.derivations])


def _density() -> sp.Expr:
    return sp.exp(-(u**2) / 2) / sp.sqrt(2 * sp.pi)


def _halves(g_pos: sp.Expr, g_neg: sp.Expr) -> sp.Expr:
    """:math:`\\int_{u_0}^\\infty g_+ \\varphi + \\int_{-\\infty}^{u_0} g_- \\varphi`."""
    z = m + s * u
    u0 = -m / s
    return sp.Integral(g_pos.subs(sp.Symbol("z"), z) * _density(), (u, u0, sp.oo)) + sp.Integral(
        g_neg.subs(sp.Symbol("z"), z) * _density(), (u, -sp.oo, u0)
    )


def closed_forms() -> tuple[sp.Expr, sp.Expr]:
    """The mean and second moment of :math:`\\operatorname{selu}(z)`, :math:`z \\sim N(m, s^2)`,
    written without removable singularities (valid at :math:`m = 0`); the derivation's
    steps check them against the integrals.

    .. math::

        \\mathbb{E}[\\operatorname{selu}(z)] = \\tfrac{\\lambda}{2}\\Bigl[
        m\\,(1 + \\operatorname{erf}\\tfrac{m}{\\sqrt2 s})
        + s\\sqrt{\\tfrac{2}{\\pi}}\\,e^{-m^2/2s^2}
        - \\alpha\\operatorname{erfc}\\tfrac{m}{\\sqrt2 s}
        + \\alpha\\,e^{m + s^2/2}\\operatorname{erfc}\\tfrac{m + s^2}{\\sqrt2 s}\\Bigr]
    """
    r = sp.sqrt(2) * s
    g = sp.exp(-(m**2) / (2 * s**2))
    mean = (lam / 2) * (
        m * (1 + sp.erf(m / r))
        + s * sp.sqrt(2 / sp.pi) * g
        - alpha * sp.erfc(m / r)
        + alpha * sp.exp(m + s**2 / 2) * sp.erfc((m + s**2) / r)
    )
    m2 = (lam**2 / 2) * (
        (m**2 + s**2) * (1 + sp.erf(m / r))
        + m * s * sp.sqrt(2 / sp.pi) * g
        + alpha**2 * sp.erfc(m / r)
        - 2 * alpha**2 * sp.exp(m + s**2 / 2) * sp.erfc((m + s**2) / r)
        + alpha**2 * sp.exp(2 * (m + s**2)) * sp.erfc((m + 2 * s**2) / r)
    )
    return mean, m2


def _moment_step(name: str, start: sp.Expr, closed: sp.Expr, budget: Budget) -> Derivation:
    """``start = closed`` checked by the checker: the ``erf`` form first, then ``erfc``."""
    last = None
    for form in (closed.rewrite(sp.erf), closed):
        ok, d, why = budget.attempt(
            f"the check of {name}",
            lambda form=form: (
                Chain(name, start)
                .step(form, "sympy.integrate", "each half line in closed form (erf, erfc)")
                .done()
            ),
        )
        if ok and d.status is not Status.UNDECIDED:
            return d
        last = d if ok else None
    if last is not None:
        return last
    check = Check("budget", Status.UNDECIDED, why)
    step = Step(start, closed, "sympy.integrate", "each half line in closed form", (check,))
    return Derivation(name, start, (step,))


def derivation(
    m_value: sp.Expr, s_value: sp.Expr, budget: Budget | None = None
) -> tuple[Derivation, Derivation]:
    """The mean and second moment of :math:`\\operatorname{selu}(z)`, :math:`z \\sim N(m, s^2)`,
    at the target's :math:`m = M\\omega`, :math:`s = \\sqrt{V\\tau}`, as checked steps.

    Each starts from the two half-line integrals (the definition of SELU) and ends at
    :func:`closed_forms` with :math:`(m, s)` substituted; :math:`\\lambda` and
    :math:`\\alpha` stay symbols, so the step checks the closed form as a function of
    them, which is what the solver uses.
    """
    b = budget or Budget(60.0)
    zs = sp.Symbol("z")
    at = {m: m_value, s: s_value}
    pos1, neg1 = lam * zs, lam * alpha * (sp.exp(zs) - 1)
    mean, m2 = closed_forms()
    return (
        _moment_step("selu mean", _halves(pos1, neg1).subs(at), mean.subs(at), b),
        _moment_step("selu second moment", _halves(pos1**2, neg1**2).subs(at), m2.subs(at), b),
    )


def maps() -> tuple[sp.Expr, sp.Expr]:
    """The map :math:`(\\tilde\\mu, \\tilde\\nu)` as functions of
    :math:`\\mu, \\nu, \\omega, \\tau, \\lambda, \\alpha`."""
    mean, m2 = closed_forms()
    at = {m: mu * omega, s: sp.sqrt(nu * tau)}
    return mean.subs(at), (m2 - mean**2).subs(at)


def _quadrature_map(lv, av, w, t):
    """The (mean, var) map by ``mpmath.quad`` of the definition (no closed form)."""

    def moments(pm, pv):
        loc, sd = pm * w, mpmath.sqrt(pv * t)

        def selu_(zz):
            return lv * zz if zz > 0 else lv * av * (mpmath.exp(zz) - 1)

        def dens(zz):
            return mpmath.npdf(zz, loc, sd)

        cuts = [-mpmath.inf, *sorted({mpmath.mpf(0), loc}), mpmath.inf]
        e1 = mpmath.quad(lambda zz: selu_(zz) * dens(zz), cuts)
        e2 = mpmath.quad(lambda zz: selu_(zz) ** 2 * dens(zz), cuts)
        return e1, e2 - e1**2

    return moments


def _solve(mean_map, var_map, target: tuple[float, float], w: float, t: float):
    """``(lambda, alpha)`` at ``WORK_DPS`` digits by continuation from (0, 1), started at (1, 1)."""
    f_mean = sp.lambdify((mu, nu, omega, tau, lam, alpha), mean_map, modules="mpmath")
    f_var = sp.lambdify((mu, nu, omega, tau, lam, alpha), var_map, modules="mpmath")
    with mpmath.workdps(WORK_DPS):
        M, V = mpmath.mpf(target[0]), mpmath.mpf(target[1])
        W, T = mpmath.mpf(w), mpmath.mpf(t)
        # lambda = alpha = 1 (plain ELU): the published constants are reached, not assumed.
        guess = (mpmath.mpf(1), mpmath.mpf(1))
        path = [(0, 1, 0, 1)]
        for k in range(1, CONTINUATION_STEPS + 1):
            r = mpmath.mpf(k) / CONTINUATION_STEPS
            path.append((r * M, 1 + r * (V - 1), r * W, 1 + r * (T - 1)))
        for pm, pv, pw, pt in path:

            def eqs(lv, av, pm=pm, pv=pv, pw=pw, pt=pt):
                return (
                    f_mean(pm, pv, pw, pt, lv, av) - pm,
                    f_var(pm, pv, pw, pt, lv, av) - pv,
                )

            guess = tuple(mpmath.findroot(eqs, guess, tol=mpmath.mpf(10) ** (-WORK_DPS + 5)))
        lv, av = guess
        res = max(abs(f_mean(M, V, W, T, lv, av) - M), abs(f_var(M, V, W, T, lv, av) - V))
    return lv, av, res


def _jacobian_check(J, lv, av, M, V, W, T, b: Budget) -> str:
    """Compare ``J`` with central differences of the map computed by quadrature."""

    def run() -> float:
        with mpmath.workdps(20):
            g = _quadrature_map(lv, av, mpmath.mpf(W), mpmath.mpf(T))
            h = mpmath.mpf(10) ** -6
            worst = mpmath.mpf(0)
            for col, (dm, dv) in enumerate(((h, 0), (0, h))):
                up, down = g(M + dm, V + dv), g(M - dm, V - dv)
                for row in range(2):
                    fd = (up[row] - down[row]) / (2 * h)
                    worst = max(worst, abs(fd - J[row, col]))
            return float(worst)

    ok, worst, why = b.attempt("the finite-difference check of the Jacobian", run)
    if not ok:
        return f"not cross-checked: {why}"
    verdict = "agrees" if worst < 1e-8 else "DISAGREES"
    return (
        f"{verdict} with central differences (h = 1e-6) of the map computed by mpmath.quad "
        f"of the definition, to {worst:.1e}"
    )


def _parse_target(mean: object, var: object, omega_: object, tau_: object) -> tuple[float, ...]:
    """``(M, V, omega, tau)`` as floats, each parsed as a constant and checked for range.

    Raises
    ------
    InputError
        If a value is not a finite number, or lies outside its range (the message
        names the argument).
    """
    values = []
    for name, v, lo, hi in (
        ("--mean", mean, -MAX_MEAN, MAX_MEAN),
        ("--var", var, 0.0, MAX_VAR),
        ("--omega", omega_, -MAX_MEAN, MAX_MEAN),
        ("--tau", tau_, 0.0, MAX_VAR),
    ):
        expr = parse_number(str(v), argument=name, positive=name in ("--var", "--tau"))
        value = float(sp.N(expr, 30))
        if not lo <= value <= hi or (lo == 0 and value <= 0):
            raise InputError(f"`{name}` must lie in ({lo:g}, {hi:g}]; got {name}={v!r}.")
        values.append(value)
    return tuple(values)


def _solved(mean_map, var_map, target: tuple[float, ...], b: Budget):
    """``(lambda, alpha, residual)`` from :func:`_solve`, or ``InputError`` saying why not."""
    M, V, W, T = target
    ok, solved, why = b.attempt("mpmath.findroot", lambda: _solve(mean_map, var_map, (M, V), W, T))
    if not ok:
        raise InputError(
            f"no (lambda, alpha) makes (mean, var) = ({M:g}, {V:g}) a fixed point of the SELU "
            f"map with omega = {W:g}, tau = {T:g}: the solver found none ({why})."
        )
    lv, av, res = solved
    if not (lv > 0 and math.isfinite(float(lv)) and math.isfinite(float(av))) or res > 1e-25:
        raise InputError(
            f"no valid (lambda, alpha) for (mean, var) = ({M:g}, {V:g}): the solver ended at "
            f"lambda = {float(lv):.6g}, alpha = {float(av):.6g} (residual {float(res):.2g})."
        )
    return lv, av, res


def _jacobian(mean_map, var_map, target: tuple[float, ...], lv, av):
    """:math:`J = \\partial(\\tilde\\mu, \\tilde\\nu)/\\partial(\\mu, \\nu)` at the fixed point.

    Returns ``J`` (an ``mpmath.matrix`` at :data:`WORK_DPS` digits), its rows as
    floats, its largest singular value and its eigenvalues.
    """
    M, V, W, T = target
    jac = sp.Matrix([mean_map, var_map]).jacobian([mu, nu]).subs({omega: W, tau: T})
    with mpmath.workdps(WORK_DPS):
        f = sp.lambdify((mu, nu, lam, alpha), jac, modules="mpmath")
        J = mpmath.matrix(f(mpmath.mpf(M), mpmath.mpf(V), lv, av))
        sv = mpmath.svd_r(J, compute_uv=False)
        ev = mpmath.eig(J, left=False, right=False)
        jrows = tuple(tuple(float(J[i, j]) for j in range(2)) for i in range(2))
        norm = float(max(sv))
        eig = tuple(complex(e) for e in ev)
    return J, jrows, norm, eig


def selu_parameters(
    mean: str | float = 0,
    var: str | float = 1,
    *,
    omega_: str | float = 0,
    tau_: str | float = 1,
    budget: float = OPERATION_SECONDS,
) -> SeluFixedPoint:
    """:math:`\\lambda`, :math:`\\alpha` with :math:`(M, V)` = ``(mean, var)`` a fixed point.

    .. math::

        \\tilde\\mu(M, V) = M, \\qquad \\tilde\\nu(M, V) = V

    Raises
    ------
    InputError
        If ``var <= 0``, a value is not a finite number (text is parsed as a constant
        expression: ``"1/2"``), or no solution is found (the message says so).

    Examples
    --------
    >>> p = selu_parameters(0, 1)
    >>> p.alpha[:12], p.lam[:12]
    ('1.6732632423', '1.0507009873')
    """
    target = _parse_target(mean, var, omega_, tau_)
    M, V, W, T = target
    b = Budget(float(budget))
    mean_map, var_map = maps()
    lv, av, res = _solved(mean_map, var_map, target, b)
    J, jrows, norm, eig = _jacobian(mean_map, var_map, target, lv, av)
    with mpmath.workdps(WORK_DPS):
        lam_s = mpmath.nstr(lv, DIGITS, strip_zeros=False)
        alpha_s = mpmath.nstr(av, DIGITS, strip_zeros=False)
    jac_check = _jacobian_check(J, lv, av, M, V, W, T, b)
    steps = derivation(sp.nsimplify(M * W), sp.sqrt(sp.nsimplify(V * T)), b)
    return SeluFixedPoint(
        mean=M,
        var=V,
        omega=W,
        tau=T,
        lam=lam_s,
        alpha=alpha_s,
        residual=float(res),
        jacobian=jrows,  # type: ignore[arg-type]
        spectral_norm=norm,
        eigenvalues=eig,  # type: ignore[arg-type]
        derivations=steps,
        jacobian_check=jac_check,
        method=f"mpmath.findroot at {WORK_DPS} digits, continued from (0, 1) in "
        f"{CONTINUATION_STEPS} steps; Jacobian's singular values by mpmath.svd_r",
    )


__all__ = ["SeluFixedPoint", "derivation", "selu_parameters"]
