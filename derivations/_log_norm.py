r"""Beyond L4.1: a constant variance is an average over networks, not a typical one.

.. math::

    \Delta_t = \log\frac{\lVert h^t\rVert^2}{\lVert h^{t-1}\rVert^2}, \qquad
    \mathbb{E}[\Delta_t \mid K_t \ge 1]
    = \log\sigma^2 + \log 2
      + \frac{1}{2^n - 1}\sum_{k=1}^{n}\binom{n}{k}\,\psi\!\left(\frac k2\right),

for a bias-free relu layer of width :math:`n` with i.i.d. :math:`N(0, \sigma^2)`
weights. Given :math:`h^{t-1} \ne 0`, the pre-activation :math:`z = W^t h^{t-1}` has
i.i.d. :math:`N(0, \sigma^2\lVert h^{t-1}\rVert^2)` entries (rotation invariance),
so :math:`\lVert \operatorname{relu}(z)\rVert^2 / (\sigma^2\lVert h^{t-1}\rVert^2)`
is :math:`\chi^2_K` with :math:`K \sim \mathrm{Bin}(n, 1/2)` active units, and the
increments of different layers are i.i.d. With He's :math:`\sigma^2 = 2/n` the mean
square is preserved exactly (:math:`\mathbb{E}[\lVert h^t\rVert^2] =
\lVert h^{t-1}\rVert^2`), but the log of the squared norm drifts down by
:math:`5/(2n) + O(n^{-2})` per layer: after :math:`t` layers a typical network has
shrunk its signal by about :math:`e^{-5t/(4n)}` in norm while the average over
networks is unchanged, and the spread between networks grows with :math:`t/n`
(Hanin and Rolnick 2018: the variance of the activation length is controlled by the
sum of the reciprocal widths). With probability :math:`2^{-n}` per layer every unit
is off and the signal is zero (:math:`\Delta = -\infty`), so the mean is conditional
on :math:`K \ge 1`; the probes use widths where that has never been seen.

References
----------
.. [1] C. M. Newman (1986), Commun. Math. Phys. 103, 121-126 (:math:`\log\chi^2_n`
   increments of Gaussian products).
.. [2] B. Hanin and D. Rolnick (2018), "How to Start Training: The Effect of
   Initialization and Architecture", NeurIPS 31, 571-581.
.. [3] K. He, X. Zhang, S. Ren and J. Sun (2015), "Delving Deep into Rectifiers",
   ICCV, Sec. 2.2 (:math:`n\operatorname{Var}[w]/2 = 1`).
"""

from __future__ import annotations

import itertools
from functools import cache

import mpmath
import sympy as sp

from ._check import Chain
from ._claim import Assumption, Check, Claim, Probe, Status
from ._gradients import N_DOF, _chi_square_moments
from ._symbols import k as K
from ._symbols import n as N

S2 = sp.Symbol("sigma^2", positive=True)  # the weight variance (this claim's only)
#: Widths of the probes: 2^-n per layer for a dead layer must be unobservable.
PROBE_WIDTHS = (32, 128)
#: Widths at which the large-width form is compared with the exact sum.
ASYMPTOTIC_WIDTHS = (32, 128, 512, 2048)

#: He initialization, the assumption whose substitution the probes use.
HE_INIT = Assumption("he", r"He initialization $\sigma^2 = 2/n$", {S2: 2 / N})
ASSUMPTIONS = (
    Assumption(
        "gaussian-weights",
        r"$W^t$ has i.i.d. $N(0, \sigma^2)$ entries, independent of $h^{t-1}$; no biases; "
        r"$h^t = \operatorname{relu}(W^t h^{t-1})$ with $n$ units",
    ),
    Assumption(
        "active-units",
        r"given $h^{t-1} \ne 0$, $z = W^t h^{t-1} \sim N(0, \sigma^2\lVert h^{t-1}\rVert^2 I_n)$; "
        r"its signs are fair coins independent of its magnitudes, so "
        r"$\lVert h^t\rVert^2/(\sigma^2 \lVert h^{t-1}\rVert^2) \sim \chi^2_K$ with "
        r"$K \sim \mathrm{Bin}(n, \frac12)$; conditioned on $K \ge 1$ (all units off has "
        r"probability $2^{-n}$)",
    ),
    HE_INIT,
)


def _total_expectation():
    """The mean increment, by the law of total expectation over ``K``."""
    _, mean_log, _ = _chi_square_moments()
    given_k = sp.log(S2) + mean_log.result.subs(N_DOF, K)  # E[log(sigma^2 chi2_k)]
    start = sp.Sum(sp.binomial(N, K) * given_k, (K, 1, N)) / (2**N - 1)
    digamma_sum = sp.Sum(sp.binomial(N, K) * sp.polygamma(0, K / 2), (K, 1, N))
    return (
        Chain("mean log-norm increment of a relu layer", start, None, ASSUMPTIONS)
        .step(
            sp.log(S2) + sp.log(2) + digamma_sum / (2**N - 1),
            "linearity of the sum",
            r"$\mathbb{E}[\log(\sigma^2\chi^2_k)] = \log\sigma^2 + \log 2 + \psi(k/2)$ "
            r"(the chi-square derivation); the weights $\binom nk/(2^n-1)$ of "
            r"$K \mid K \ge 1$ sum to 1",
            uses=("active-units",),
        )
        .step(
            sp.log(4 / N) + digamma_sum / (2**N - 1),
            "He initialization",
            r"$\log\frac 2n + \log 2 = \log\frac 4n$",
            uses=("he",),
        )
        .done()
    )


def exact_mean_increment(n: int, dps: int = 30) -> mpmath.mpf:
    """The exact :math:`\\mathbb{E}[\\Delta \\mid K \\ge 1]` at He initialization, width ``n``."""
    with mpmath.workdps(dps):
        log_weights = [
            mpmath.loggamma(n + 1) - mpmath.loggamma(k + 1) - mpmath.loggamma(n - k + 1)
            for k in range(1, n + 1)
        ]
        total = mpmath.fsum(
            mpmath.exp(w - n * mpmath.log(2)) * mpmath.digamma(mpmath.mpf(k) / 2)
            for k, w in zip(range(1, n + 1), log_weights, strict=True)
        )
        return mpmath.log(mpmath.mpf(4) / n) + total / (1 - mpmath.mpf(2) ** -n)


def _asymptotic_check(he: sp.Expr) -> Check:
    """The exact sum against :math:`-5/(2n)`: the remainder must fall like ``n^-2``."""
    for n in ASYMPTOTIC_WIDTHS[:2]:  # the derived expression and the fast sum agree
        exact = sp.N(he.subs(N, n).doit(), 25)
        if abs(float(exact) - float(exact_mean_increment(n))) > 1e-14:
            return Check("large width", Status.REFUTED, f"the two exact sums differ at n = {n}")
    remainders = [exact_mean_increment(n) + mpmath.mpf(5) / (2 * n) for n in ASYMPTOTIC_WIDTHS]
    ratios = [float(b / a) for a, b in itertools.pairwise(remainders)]
    # widths grow 4x: an n^-2 remainder shrinks 16x
    ok = all(abs(r * 16 - 1) < 0.1 for r in ratios)
    return Check(
        "large width",
        Status.TESTED if ok else Status.REFUTED,
        "E[Delta] + 5/(2n) at n = "
        + ", ".join(
            f"{n}: {float(r):.4g}" for n, r in zip(ASYMPTOTIC_WIDTHS, remainders, strict=True)
        )
        + f"; successive ratios {', '.join(f'{r:.4f}' for r in ratios)} (1/16 for O(n^-2)); "
        "exact sums, evaluated to 30 digits",
    )


def _relu_mlp(n: int, depth: int) -> dict:
    return {
        "kind": "mlp",
        "widths": [n] * (depth + 1),
        "weights": {"law": "normal", "std": float(sp.sqrt(sp.Rational(2, n)))},
        "activation": "relu",
        "input": {"law": "normal", "mean": 0.0, "std": 1.0},
        "dtype": "float64",
    }


def _probes(he: sp.Expr) -> tuple[Probe, ...]:
    # E||h^t||^2 / ||h^{t-1}||^2 = sigma^2 E[chi^2_K] = sigma^2 E[K] (He et al. 2015)
    mean_square = S2 * N / 2
    probes = []
    for n, layer in ((PROBE_WIDTHS[0], 1), (PROBE_WIDTHS[0], 6), (PROBE_WIDTHS[1], 3)):
        step = {"direction": "forward", "moment": "log_m2", "layer": layer}
        probes.append(
            Probe.derived(
                f"n{n}-log-norm-layer{layer}",
                _relu_mlp(n, layer),
                {**step, "relative_to": layer - 1},
                he,
                {N: n},
            )
        )
    n, layer = PROBE_WIDTHS[0], 6
    step = {"direction": "forward", "layer": layer, "relative_to": layer - 1}
    probes += [
        # the lecture's reading: a preserved variance keeps the typical size
        Probe(
            f"n{n}-log-norm-layer{layer}-no-drift",
            _relu_mlp(n, layer),
            {**step, "moment": "log_m2"},
            0.0,
            sp.Integer(0),
            expect="disagrees",
            source="lecture",
            note="the lecture's reading: a preserved variance keeps one network's typical size",
        ),
        # while the same networks preserve the mean square exactly
        Probe.derived(
            f"n{n}-m2-layer{layer}",
            _relu_mlp(n, layer),
            {**step, "moment": "m2"},
            mean_square,
            HE_INIT.subs,
        ),
    ]
    return tuple(probes)


@cache
def relu_log_norm() -> Claim:
    """He initialization keeps the mean square of a relu network, not its typical size.

    Returns
    -------
    Claim
        The mean per-layer increment of the log squared norm, by total expectation
        over the number of active units, at He initialization; its large-width form
        :math:`-5/(2n)`; probes of the increment at two widths and two depths, of the
        lecture's reading (no drift, refused) and of the preserved mean square.
    """
    mean = _total_expectation()
    he = mean.result
    asymptotic = _asymptotic_check(he)
    drift32 = float(exact_mean_increment(PROBE_WIDTHS[0]))
    return Claim(
        id="relu-log-norm",
        lecture=("L4.1",),
        title="A constant variance is an average over networks: the typical relu signal drifts",
        summary=(
            r"Under He initialization $\mathbb{E}\lVert h^t\rVert^2$ is the same at every "
            r"layer, yet $\log\lVert h^t\rVert^2$ falls by "
            r"$\log 2 + \log\frac 2n + \mathbb{E}[\psi(K/2) \mid K \ge 1]"
            r" = -\frac{5}{2n} + O(n^{-2})$ per layer, $K \sim \mathrm{Bin}(n, \frac12)$ "
            rf"the active units (${drift32:.4f}$ at $n = {PROBE_WIDTHS[0]}$). The lecture's "
            r"condition is about the average over networks; one sampled network loses "
            r"signal geometrically and networks spread apart as $\sum_t 1/n_t$ grows."
        ),
        assumptions=ASSUMPTIONS,
        derivations=(mean,),
        conditions=(),
        confirmations=(asymptotic,),
        probes=_probes(he),
        qualification=(
            r"L4.1's constant variance holds for the average over networks; the typical "
            r"network's squared norm changes by $e^{\mathbb{E}\Delta}$ per layer, about "
            r"$e^{-5/(2n)}$, so depth $t$ needs $t \ll n$ for one network to keep its scale "
            r"(Hanin and Rolnick 2018)."
        ),
    )


BUILDERS = (relu_log_norm,)
