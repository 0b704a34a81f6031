"""``initproof activation | init | claim | step | meanfield | selu``: the user-facing checks.

Each command is a Python function returning plain data (what ``--json`` prints):

* :func:`activation_command` -- Gaussian moments, gains, fixed points, PyTorch's
  gain, and a Monte Carlo check of the moments and of a deep MLP;
* :func:`init_command` -- the exact weight variance of a law and the forward and
  backward gain of every layer, with a simulated check per layer;
* :func:`claim_command` -- the user's expected value of one moment at one layer
  against the simulation and against the derived value;
* :func:`step_command` -- one step ``BEFORE = AFTER`` of a derivation of one's own,
  checked by the kernel over the declared domains (no simulation);
* :func:`meanfield_command` -- :math:`q^*`, :math:`\\chi_1`, the phase, :math:`c^*`, the
  depth scales and the critical :math:`\\sigma_w^2` of an activation, with a phase
  diagram (no simulation);
* :func:`selu_command` -- SELU's :math:`\\lambda`, :math:`\\alpha` for a chosen fixed
  point of the (mean, variance) map, the map's Jacobian there and its spectral norm.

Every simulated check carries the fields of ``evidence.json``'s checks (``predicted``,
``estimate``, ``ci_low``, ``ci_high``, ``confidence``, ``n_samples``, ``outcome``, ...)
plus ``exact``: whether the prediction is exact at the simulated width or comes from the
infinite-width recursion, whose finite-width bias the interval does not cover.

``activation``, ``init`` and ``claim`` never print a traceback and never hang: every
symbolic or numeric operation runs under ``--budget`` seconds (a step that runs out is
reported undecided, with its reason), and the whole command under ``--time-limit``
seconds (past it, the command stops with exit code 2 and says so). Their derivation
is recorded as checked steps (``derivations`` in ``--json``), with the five statuses.

The whole output is built before anything is printed, so a refused input or a failure
leaves nothing half-written.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Mapping, Sequence

import sympy as sp

#: The subcommands this module adds.
COMMANDS = ("activation", "init", "claim", "step", "meanfield", "selu")
DEFAULT_ALPHA = 0.01
#: Default target precision: coarser than the report's 1%, since a user activation runs
#: through lambdify (slower than the engine's own) and deep ratios vary a lot.
DEFAULT_PRECISION = 0.02
#: Default seconds per symbolic or numeric operation (``--budget``).
DEFAULT_BUDGET = 5.0
#: Default seconds per operation of ``selu``: checking a closed form of the SELU moments
#: against its integrals takes SymPy several seconds.
SELU_BUDGET = 60.0
#: Default wall-time limit of a whole ``activation``, ``init`` or ``claim`` command.
DEFAULT_TIME_LIMIT = 300.0


# --------------------------------------------------------------------------- helpers


def _num(v: float | None) -> float | None:
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def _expr(e: sp.Expr | None) -> str | None:
    return None if e is None else sp.sstr(e)


def _float(e: sp.Expr | None) -> float | None:
    if e is None:
        return None
    try:
        return _num(float(e))
    except (TypeError, ValueError):
        return None


def _validate_run(
    seed: object,
    precision: object,
    alpha: object,
    budget: object = DEFAULT_BUDGET,
    time_limit: object = DEFAULT_TIME_LIMIT,
) -> None:
    from derivations._user import InputError

    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InputError(f"`--seed` must be a non-negative integer; got seed={seed!r}.")
    for name, v, hi in (("precision", precision, 0.5), ("alpha", alpha, 1.0)):
        if isinstance(v, bool) or not isinstance(v, int | float) or not 0 < v < hi:
            raise InputError(f"`--{name}` must be a number in (0, {hi:g}); got {name}={v!r}.")
    for name, v, hi in (("budget", budget, 600.0), ("time-limit", time_limit, 86400.0)):
        if isinstance(v, bool) or not isinstance(v, int | float) or not 0 < v <= hi:
            raise InputError(
                f"`--{name}` must be a number of seconds in (0, {hi:g}]; got --{name}={v!r}."
            )


def _activations(a) -> dict[str, tuple[Callable, Callable]]:
    """The activation's NumPy form for the engine: ``lambdify`` of ``f`` and of ``f'``.

    ``f'`` was cross-checked against finite differences by the analysis (a mismatch is
    an error there). Both functions stop the simulation once the command's time limit
    has passed (they raise :class:`~derivations._gaussian.TimeLimitExceeded` in the
    engine's worker threads, which the engine passes on).
    """
    from derivations._gaussian import TimeLimitExceeded, time_left
    from derivations._user import numpy_function

    left = time_left()
    end = None if math.isinf(left) else time.monotonic() + left

    def guarded(fn: Callable) -> Callable:
        def call(a):
            if end is not None and time.monotonic() > end:
                raise TimeLimitExceeded("the simulation ran past the time limit")
            return fn(a)

        return call

    return {_name(a): (guarded(numpy_function(a.f)), guarded(numpy_function(a.derivative)))}


def _name(a) -> str:
    return f"user: f(x) = {sp.sstr(a.f)}"


def _probe(
    label: str, scenario: dict, observable: dict, value, expression: str, exact: bool, how: str
) -> dict:
    v = _float(value) if value is not None else None
    return {
        "probe": label,
        "scenario": scenario,
        "observable": observable,
        "predicted": v,
        "predicted_expression": expression,
        "exact": exact,
        "how": how,
    }


def _simulate(
    command: str,
    probes: list[dict],
    activations: Mapping,
    *,
    seed: int,
    precision: float,
    alpha: float,
) -> tuple[list[dict], float]:
    """Measure every probe and decide them together at family-wise level ``alpha`` (Holm).

    Returns the checks and the strictest per-check confidence, :math:`1 - \alpha/m`.
    """
    import montecarlo

    confidence = montecarlo.per_check_confidence(alpha, max(len(probes), 1))
    out = []
    measured: dict[str, object] = {}
    for p in probes:
        # probes of the same site share one simulation (seeded by the first one's label)
        key = json.dumps([p["scenario"], p["observable"]], sort_keys=True)
        if key not in measured:
            measured[key] = montecarlo.measure(
                p["scenario"],
                p["observable"],
                seed=montecarlo.seed_for(seed, command, p["probe"]),
                precision=precision,
                activations=activations,
            )
    estimates = [
        measured[json.dumps([p["scenario"], p["observable"]], sort_keys=True)] for p in probes
    ]
    decisions = montecarlo.decide_family(
        [p["predicted"] for p in probes], estimates, alpha, precision
    )
    for p, est, dec in zip(probes, estimates, decisions, strict=True):
        note = (
            ""
            if p["exact"]
            else "approximate prediction (infinite-width recursion): a disagreement may be "
            "its finite-width bias, not an error"
        )
        out.append(
            {
                **p,
                "estimate": _num(est.value),
                "se": _num(est.se),
                "ci_low": _num(dec.ci.low),
                "ci_high": _num(dec.ci.high),
                "confidence": dec.confidence,
                "precision": _num(est.precision()),
                "p_value": _num(dec.p_value),
                "n_samples": est.n_samples,
                "n_replicates": est.n_replicates,
                "nonfinite": est.nonfinite,
                "outcome": str(dec.outcome),
                "reason": dec.reason,
                "note": note,
                "seed": est.seed,
                "method": est.method,
            }
        )
    return out, confidence


def _split_probes(probes: list[dict]) -> tuple[list[dict], list[dict]]:
    """Probes with a derived prediction, and those left out (undecided prediction)."""
    ready = [p for p in probes if p["predicted"] is not None]
    left = [
        {**p, "outcome": "not checked", "reason": f"no derived value to check: {p['how']}"}
        for p in probes
        if p["predicted"] is None
    ]
    return ready, left


def _run_checks(command: str, result: dict, probes: list[dict], a, simulate: bool, **run) -> None:
    ready, left = _split_probes(probes)
    if simulate and ready:
        checks, result["confidence"] = _simulate(command, ready, _activations(a), **run)
        result["checks"] = checks + left
    else:
        result["checks"] = ready + left
        if simulate:
            result["simulated"] = False
            result["notes"].append("nothing to simulate: no derived value could be stated")


def _run_info(
    seed: int, precision: float, alpha: float, simulate: bool, budget: float, time_limit: float
) -> dict:
    return {
        "seed": seed,
        "alpha": alpha,
        "precision_target": precision,
        "simulated": simulate,
        "limits": {
            "budget_seconds_per_operation": budget,
            "time_limit_seconds": time_limit,
        },
    }


def _moment_dict(m) -> dict:
    estimates = [{"method": n, "value": _num(v), "estimate": _num(e)} for n, v, e in m.estimates]
    return {
        "integrand": _expr(m.integrand),
        "value": _expr(m.value),
        "numeric": _float(m.value),
        "status": m.status,
        "method": m.method,
        "error": _num(m.error) if m.decided else None,
        "error_kind": (
            "exact"
            if m.exact
            else "estimate supported by two independent quadratures (not a bound)"
            if m.decided
            else None
        ),
        "agreement": _num(m.agreement),
        "estimates": estimates,
        "exact": m.exact,
        "reason": m.reason,
    }


def _check_dict(c) -> dict:
    return {"method": c.method, "status": str(c.status), "detail": c.detail}


def _derivation_dict(d) -> dict:
    return {
        "name": d.name,
        "status": str(d.status),
        "start": _expr(d.start),
        "result": _expr(d.result),
        "steps": [
            {
                "before": _expr(s.before),
                "after": _expr(s.after),
                "rule": s.rule,
                "why": s.why,
                "status": str(s.status),
                "checks": [_check_dict(c) for c in s.checks],
            }
            for s in d.steps
        ],
    }


def _derivation_fields(a, init=None, budget: float = DEFAULT_BUDGET) -> dict:
    """The derivation as checked steps (the law's variance first, for ``init``/``claim``)."""
    from derivations._claim import combine
    from derivations._user import law_derivation

    derivations = list(a.derivations)
    if init is not None:
        law = law_derivation(init, budget)
        if law is not None:
            derivations.insert(0, law)
    return {
        "status": str(combine([d.status for d in derivations])),
        "derivations": [_derivation_dict(d) for d in derivations],
        "notes": list(a.notes),
    }


def _init_from(
    dist: str | None, std: str | None, var: str | None, bound: str | None, preset: str | None
):
    from derivations._user import InputError, weight_init
    from derivations._user import preset as preset_init

    if preset is not None:
        if dist is not None or std is not None or var is not None or bound is not None:
            raise InputError(
                "`--preset` replaces DIST and --std/--var/--bound; give one or the other."
            )
        return preset_init(preset)
    if dist is None:
        raise InputError("give DIST (normal, uniform, truncated_normal) or --preset.")
    return weight_init(dist, std=std, var=var, bound=bound)


def _law_dict(init) -> dict:
    return {
        "dist": init.dist,
        "parameter": init.native_name,
        "native": _expr(init.native),
        "variance": _expr(init.variance),
        "source": init.source,
    }


def _limited(time_limit: float):
    from derivations._gaussian import deadline

    return deadline(time_limit)


# --------------------------------------------------------------------------- activation


def activation_command(
    expr: str,
    *,
    gain: str | None = None,
    width: int = 128,
    depth: int = 10,
    simulate: bool = True,
    seed: int = 0,
    precision: float = DEFAULT_PRECISION,
    alpha: float = DEFAULT_ALPHA,
    budget: float = DEFAULT_BUDGET,
    time_limit: float = DEFAULT_TIME_LIMIT,
) -> dict:
    """Analyze the activation ``expr`` and check it by simulation; plain data.

    The simulated network has ``depth`` layers of width ``width``, normal weights of
    variance ``gain / width`` (default: the forward-preserving gain) and input
    :math:`N(0, I)`. Checks: :math:`\\mathbb{E}[f(z)^2]` and
    :math:`\\mathbb{E}[f'(z)^2]` (scalar, exact), the first layer's output second
    moment (exact: :math:`\\chi^2` mixture), and the last layer's per-layer ratio
    (infinite-width recursion, approximate unless ``f`` is homogeneous). A prediction
    that is undecided is not simulated (``outcome``: ``not checked``).
    """
    _validate_run(seed, precision, alpha, budget, time_limit)
    with _limited(time_limit):
        return _activation_command(
            expr, gain, width, depth, simulate, seed, precision, alpha, budget, time_limit
        )


def _activation_command(
    expr, gain, width, depth, simulate, seed, precision, alpha, budget, time_limit
) -> dict:
    from derivations._user import InputError, analyze_activation, parse_widths

    for name, v in (("--width", width), ("--depth", depth)):
        if not _is_int(v) or v < 1:
            raise InputError(f"`{name}` must be a positive integer; got {name}={v!r}.")
    widths = parse_widths([width] * (depth + 1), argument="--width/--depth")
    a = analyze_activation(expr, gain, budget=float(budget))
    result = {
        "command": "activation",
        "expression": expr,
        **_activation_fields(a),
        "torch": _torch_gain(a),
        "network": {"width": width, "depth": depth},
        "mean_field": _gain_mean_field(a, budget),
        **_derivation_fields(a),
        **_run_info(seed, precision, alpha, simulate, budget, time_limit),
        "checks": [],
    }
    probes = _scalar_probes(a)
    if a.gain is None:
        result["notes"].append(
            "no network is simulated: the gain n*gamma = 1/E[f(z)^2] is undecided (give --gain)"
        )
    else:
        network, network_probes = _network_probes(a, widths)
        result["network"].update(network)
        probes += network_probes
    _run_checks(
        "activation", result, probes, a, simulate, seed=seed, precision=precision, alpha=alpha
    )
    return result


def _activation_fields(a) -> dict:
    """What ``initproof activation`` derives about ``f``: form, slopes, moments, gains."""
    return {
        "f": _expr(a.f),
        "f_latex": sp.latex(a.f),
        "derivative": _expr(a.derivative),
        "derivative_check": _check_dict(a.derivative_check) if a.derivative_check else None,
        "kinks": list(a.kinks),
        "taylor": [{"branch": b, "series": _expr(s)} for b, s in a.taylor],
        "f0": _expr(a.f0),
        "f0_is_zero": a.zero_at_origin,
        "slope_at_0": {"left": _expr(a.slope_left), "right": _expr(a.slope_right)},
        "unit_slope": a.unit_slope,
        "odd": a.odd,
        "homogeneous": None if a.homogeneous is None else [_expr(c) for c in a.homogeneous],
        "moments_q1": {
            "mean": _moment_dict(a.mean),
            "m2": _moment_dict(a.m2),
            "d2": _moment_dict(a.d2),
        },
        "moments_of_q": {
            "m2": _expr(a.m2_of_q),
            "d2": _expr(a.d2_of_q),
            "m2_small_q_series": _expr(a.m2_series),
            "m2_table": [
                {"q": v, "value": _num(m), "error": _num(e) if m is not None else None}
                for v, m, e in a.m2_table
            ],
        },
        "gains": {
            "forward": {"value": _expr(a.forward_gain), "numeric": _float(a.forward_gain)},
            "backward": {"value": _expr(a.backward_gain), "numeric": _float(a.backward_gain)},
            "used": {"value": _expr(a.gain), "numeric": _float(a.gain), "source": a.gain_source},
        },
        "fixed_points": [
            {"q": p.q, "slope": _num(p.slope), "chi": _num(p.chi), "stable": p.stable}
            for p in a.fixed_points
        ],
        "fixed_points_decided": a.fixed_points_decided,
        "every_q_fixed": a.every_q_fixed,
        "zero_fixed": a.zero_fixed,
    }


def _torch_gain(a) -> dict | None:
    """torch's ``calculate_gain`` for ``f``, when it names one, against the derived gain."""
    if a.torch is None:
        return None
    ours = a.forward_gain
    return {
        "name": a.torch.name,
        "param": a.torch.param,
        "gain": _expr(a.torch.gain),
        "gain_squared": _expr(a.torch.squared),
        "gain_squared_numeric": float(a.torch.squared),
        "forward_preserving_n_gamma": _float(ours),
        "ratio": None if ours is None else _float(a.torch.squared / ours),
        "reference": a.torch.reference,
    }


def _scalar_probes(a) -> list:
    r""":math:`\mathbb{E}[f(z)^2]` and :math:`\mathbb{E}[f'(z)^2]` at :math:`z \sim N(0, 1)`."""
    scalar = {"kind": "scalar", "activation": _name(a), "q": 1.0, "dtype": "float64"}
    return [
        _probe(
            f"m2-of-{label}",
            {**scalar, "function": function},
            {"moment": "m2"},
            m.value,
            f"E[{what}^2], z ~ N(0, 1)",
            True,
            m.method if m.decided else f"undecided: {m.reason}",
        )
        for label, function, what, m in (
            ("f", "value", "f(z)", a.m2),
            ("derivative", "derivative", "f'(z)", a.d2),
        )
    ]


def _network_probes(a, widths: tuple[int, ...]) -> tuple[dict, list]:
    """The network at the gain used (started at its fixed point), and its two probes:
    the first layer's output second moment and the last layer's per-layer ratio."""
    from derivations._user import _weight_init, propagate

    width, depth = widths[0], len(widths) - 1
    g = a.gain
    init = _weight_init("normal", "var", g / sp.Symbol("n_in", integer=True, positive=True), "")
    q_start = _start(a)
    input_var = q_start / float(g)
    moments = propagate(a, init, widths, input_var=input_var)
    network = {
        "start_q": q_start,
        "input_std": math.sqrt(input_var),
        "weights": init.law(width, width),
    }
    mlp = _mlp_dict(widths, init.law(width, width), a, math.sqrt(input_var))
    top, below, first = moments.output[depth], moments.output[depth - 1], moments.output[1]
    deep_how = top.how
    unstable = [p for p in a.fixed_points if p.q == q_start and not p.stable]
    if unstable and not a.every_q_fixed:
        deep_how += (
            f"; the fixed point q* = {q_start:.6g} is unstable (slope "
            f"{unstable[0].slope:.4g} > 1), so finite-width fluctuations grow from layer "
            "to layer"
        )
    ratio = top.value / below.value if top.decided and below.decided else None
    forward = {"direction": "forward", "of": "output", "moment": "m2"}
    return network, [
        _probe(
            "layer1-output-m2",
            mlp,
            {**forward, "layer": 1},
            first.value if first.decided else None,
            "E_S[E_xi f(sqrt(S) xi)^2], S = gamma chi^2_n",
            first.exact,
            first.how,
        ),
        _probe(
            f"layer{depth}-output-m2-ratio",
            mlp,
            {**forward, "layer": depth, "relative_to": depth - 1},
            ratio,
            f"m_{depth} / m_{depth - 1}",
            top.exact and below.exact,
            deep_how,
        ),
    ]


def _gain_mean_field(a, budget: float) -> list[dict]:
    """Mean field (no bias) at the gain used and at torch's ``calculate_gain``, if any.

    For each: :math:`\\sigma_w^2 = n\\gamma`, :math:`q^*`, the post-activation standard
    deviation, :math:`\\chi_1` and the phase (:func:`derivations._meanfield.mean_field`).
    """
    from derivations._gaussian import Budget
    from derivations._meanfield import _undecided, mean_field, prepare
    from derivations._user import InputError

    gains = []
    if a.gain is not None:
        gains.append((f"used ({a.gain_source})", float(a.gain)))
    if a.torch is not None:
        param = "" if a.torch.param is None else f", {a.torch.param:g}"
        gains.append((f"torch calculate_gain('{a.torch.name}'{param})", float(a.torch.squared)))
    if not gains:
        return []
    b = Budget(float(budget))
    try:
        act = prepare(a.f, budget=b)
    except InputError as error:
        # The activation itself was accepted; only the mean-field block is undecided.
        none = _value_dict(_undecided(str(error)))
        return [
            {
                "gain": name,
                "sigma_w2": sw,
                "q_star": none,
                "post_std": none,
                "chi1": none,
                "phase": "undecided",
            }
            for name, sw in gains
        ]
    out = []
    for name, sw in gains:
        m = mean_field(act, sw, 0.0, budget=b, correlations=False)
        out.append(
            {
                "gain": name,
                "sigma_w2": sw,
                "q_star": _value_dict(m.q_star),
                "post_std": _value_dict(m.post_std),
                "chi1": _value_dict(m.chi1),
                "phase": m.phase,
            }
        )
    return out


def _start(a) -> float:
    """The pre-activation variance the simulated network starts at: a fixed point.

    A stable positive fixed point if there is one, else the first one, else 1 (also
    when every ``q`` is fixed).
    """
    if a.every_q_fixed or not a.fixed_points:
        return 1.0
    stable = [p for p in a.fixed_points if p.stable]
    return (stable or list(a.fixed_points))[0].q


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


# --------------------------------------------------------------------------- init


def _probe_layers(depth: int) -> list[int]:
    return list(range(1, depth + 1)) if depth <= 5 else sorted({1, 2, depth // 2, depth})


def init_command(
    dist: str | None = None,
    *,
    std: str | None = None,
    var: str | None = None,
    bound: str | None = None,
    preset: str | None = None,
    activation: str = "x",
    widths: str | Sequence[int] = "128,128,128,128",
    simulate: bool = True,
    seed: int = 0,
    precision: float = DEFAULT_PRECISION,
    alpha: float = DEFAULT_ALPHA,
    budget: float = DEFAULT_BUDGET,
    time_limit: float = DEFAULT_TIME_LIMIT,
) -> dict:
    """The exact weight variance of an init, its per-layer gains, and simulated checks.

    Per layer :math:`t`: :math:`\\gamma_t` from the law, the forward gain
    :math:`n_{t-1}\\gamma_t\\,\\mathbb{E}[f(z)^2]` and backward gain
    :math:`n_t\\gamma_t\\,\\mathbb{E}[f'(z)^2]` (:math:`z \\sim N(0, 1)`). Checks: the
    first pre-activation's second moment :math:`n_0\\gamma_1` (exact for any law), and
    the per-layer ratio of pre-activation second moments :math:`P_t/P_{t-1}`.
    """
    _validate_run(seed, precision, alpha, budget, time_limit)
    with _limited(time_limit):
        return _init_command(
            dist, std, var, bound, preset, activation, widths, simulate, seed, precision,
            alpha, budget, time_limit,
        )  # fmt: skip


def _init_command(
    dist, std, var, bound, preset, activation, widths, simulate, seed, precision, alpha,
    budget, time_limit,
) -> dict:  # fmt: skip
    from derivations._user import analyze_activation, parse_widths, propagate

    init = _init_from(dist, std, var, bound, preset)
    widths = parse_widths(widths)
    a = analyze_activation(activation, argument="--activation", budget=float(budget))
    moments = propagate(a, init, widths)
    result = {
        "command": "init",
        "law": _law_dict(init),
        "activation": activation,
        "f": _expr(a.f),
        "moments_q1": {"m2": _moment_dict(a.m2), "d2": _moment_dict(a.d2)},
        "widths": list(widths),
        "layers": _init_layers(a, init, widths, moments),
        **_derivation_fields(a, init, budget),
        **_run_info(seed, precision, alpha, simulate, budget, time_limit),
        "checks": [],
    }
    probes = _init_probes(a, init, widths, moments)
    _run_checks("init", result, probes, a, simulate, seed=seed, precision=precision, alpha=alpha)
    return result


def _layer_laws(init, widths: tuple[int, ...]) -> list[dict]:
    """Each layer's weight law under ``init``, from its fan-in and fan-out."""
    return [init.law(widths[t - 1], widths[t]) for t in range(1, len(widths))]


def _mlp_dict(
    widths: tuple[int, ...], weights, a, input_std: float = 1.0, upstream: bool = False
) -> dict:
    """The float64 network the commands simulate: normal inputs of ``input_std`` and,
    with ``upstream``, a standard normal gradient from above."""
    mlp = {
        "kind": "mlp",
        "widths": list(widths),
        "weights": weights,
        "activation": _name(a),
        "input": {"law": "normal", "mean": 0.0, "std": input_std},
    }
    if upstream:
        mlp["upstream"] = {"law": "normal", "std": 1.0}
    return {**mlp, "dtype": "float64"}


def _init_layers(a, init, widths: tuple[int, ...], moments) -> list[dict]:
    """Per layer: the weight variance and the forward and backward gains."""
    m2, d2 = _float(a.m2.value), _float(a.d2.value)
    layers = []
    for t in range(1, len(widths)):
        g = moments.gammas[t - 1]
        layers.append(
            {
                "layer": t,
                "n_in": widths[t - 1],
                "n_out": widths[t],
                "gamma": _expr(g),
                "gamma_numeric": float(g),
                "law": init.law(widths[t - 1], widths[t]),
                "forward_gain": None if m2 is None else float(widths[t - 1] * g) * m2,
                "backward_gain": None if d2 is None else float(widths[t] * g) * d2,
            }
        )
    return layers


def _init_probes(a, init, widths: tuple[int, ...], moments) -> list:
    """The first pre-activation's second moment, and per-layer ratios of later ones."""
    d = len(widths) - 1
    mlp = _mlp_dict(widths, _layer_laws(init, widths), a)
    pre = {"direction": "forward", "of": "preactivation", "moment": "m2"}
    probes = []
    for t in _probe_layers(d):
        p = moments.preactivation[t]
        if t == 1:
            probes.append(
                _probe(
                    "layer1-preactivation-m2",
                    mlp,
                    {**pre, "layer": 1},
                    p.value,
                    "n_0 gamma_1 E[x^2]",
                    p.exact,
                    p.how,
                )
            )
            continue
        prev = moments.preactivation[t - 1]
        ratio = p.value / prev.value if p.decided and prev.decided and prev.value else None
        probes.append(
            _probe(
                f"layer{t}-preactivation-m2-ratio",
                mlp,
                {**pre, "layer": t, "relative_to": t - 1},
                ratio,
                f"n_{t - 1} gamma_{t} E[f(z^{t - 1})^2] / E[(z^{t - 1})^2]",
                p.exact and prev.exact,
                moments.output[t - 1].how,
            )
        )
    return probes


# --------------------------------------------------------------------------- claim


def claim_command(
    *,
    widths: str | Sequence[int],
    expect: str,
    layer: int,
    direction: str = "forward",
    of: str = "output",
    moment: str = "m2",
    dist: str | None = None,
    std: str | None = None,
    var: str | None = None,
    bound: str | None = None,
    preset: str | None = None,
    activation: str = "x",
    simulate: bool = True,
    seed: int = 0,
    precision: float = DEFAULT_PRECISION,
    alpha: float = DEFAULT_ALPHA,
    budget: float = DEFAULT_BUDGET,
    time_limit: float = DEFAULT_TIME_LIMIT,
) -> dict:
    """Check a stated value of one moment at one layer: simulate, derive, answer.

    ``answer`` is ``"agrees"`` when the expected value lies in the simulation's
    interval, ``"disagrees"`` when it does not, ``"inconclusive"`` when the engine
    cannot tell; ``derived`` is initproof's own value (exact, or the infinite-width
    recursion, marked; ``None`` when undecided). Without simulation the answer compares
    with an exact derived value only (``"undetermined"`` otherwise).
    """
    _validate_run(seed, precision, alpha, budget, time_limit)
    with _limited(time_limit):
        return _claim_command(
            widths, expect, layer, direction, of, moment, dist, std, var, bound, preset,
            activation, simulate, seed, precision, alpha, budget, time_limit,
        )  # fmt: skip


def _claim_command(
    widths, expect, layer, direction, of, moment, dist, std, var, bound, preset, activation,
    simulate, seed, precision, alpha, budget, time_limit,
) -> dict:  # fmt: skip
    from derivations._user import (
        analyze_activation,
        derive_quantity,
        parse_number,
        parse_widths,
        propagate,
    )

    init = _init_from(dist, std, var, bound, preset)
    widths = parse_widths(widths)
    expected = parse_number(expect, argument="--expect", positive=False)
    expected_value = float(sp.N(expected, 20))
    a = analyze_activation(activation, argument="--activation", budget=float(budget))
    moments = propagate(a, init, widths)
    derived = derive_quantity(moments, direction, of, moment, layer)
    scenario = _mlp_dict(widths, _layer_laws(init, widths), a, upstream=True)
    observable = {"direction": direction, "moment": moment, "layer": layer}
    if direction == "forward":
        observable["of"] = of
    result = {
        "command": "claim",
        "law": _law_dict(init),
        "activation": activation,
        "f": _expr(a.f),
        "scenario": scenario,
        "observable": observable,
        "expected": {"expression": expect, "value": expected_value},
        "derived": {
            "value": _num(derived.value),
            "exact": derived.exact,
            "how": derived.how,
            "error": _num(derived.error),
        },
        **_derivation_fields(a, init, budget),
        **_run_info(seed, precision, alpha, simulate, budget, time_limit),
        "checks": [],
    }
    probes = [
        _probe("expected", scenario, observable, expected_value, expect, True, "the claim"),
        _probe(
            "derived",
            scenario,
            observable,
            derived.value if derived.decided else None,
            derived.how,
            derived.exact,
            derived.how,
        ),
    ]
    if simulate:
        _run_checks(
            "claim", result, probes, a, simulate, seed=seed, precision=precision, alpha=alpha
        )
        result["answer"] = result["checks"][0]["outcome"]
    else:
        result["checks"] = probes
        close = derived.decided and math.isclose(
            expected_value, derived.value, rel_tol=1e-9, abs_tol=1e-300
        )
        result["answer"] = ("agrees" if close else "disagrees") if derived.exact else "undetermined"
    return result


# --------------------------------------------------------------------------- text


def _fmt(v: float | None) -> str:
    return "undecided" if v is None else f"{v:.6g}"


def _checks_text(result: dict) -> list[str]:
    checks = result["checks"]
    if not result["simulated"]:
        lines = ["Predictions (not simulated):"]
        for c in checks:
            tag = "exact" if c["exact"] else "approx."
            line = f"  {c['probe']:32} predicted {_fmt(c['predicted'])} ({tag})"
            if c["predicted"] is None:
                line += f": {c['how']}"
            lines.append(line)
        return lines
    lines = [
        f"Monte Carlo (seed {result['seed']}, Holm at alpha {result['alpha']:g}: intervals at "
        f"{result['confidence']:.4%} or more, target precision {result['precision_target']:g}):"
    ]
    for c in checks:
        if c["predicted"] is None or "estimate" not in c:
            lines.append(f"  {c['probe']:32} not checked ({c.get('reason', c['how'])})")
            continue
        tag = "claim" if c["probe"] == "expected" else "derived" if c["exact"] else "approx."
        lines.append(
            f"  {c['probe']:32} predicted {_fmt(c['predicted'])} ({tag}); simulated "
            f"{_fmt(c['estimate'])} [{_fmt(c['ci_low'])}, {_fmt(c['ci_high'])}], "
            f"n = {c['n_samples']}: {c['outcome'].upper()}"
        )
        if c["note"] and c["outcome"] != "agrees":
            lines.append(f"  {'':32} ({c['note']}; {c['how']})")
    return lines


def _moment_line(label: str, v: dict) -> str:
    if v["status"] == "exact":
        return f"  {label:11} = {v['value']}  ({v['numeric']:.10g}; exact)"
    if v["status"] == "numeric":
        return (
            f"  {label:11} = {v['numeric']:.6g}  ({v['value']}; numeric: two independent "
            f"quadratures agree to {v['agreement']:.1e}; error estimate {v['error']:.1e}, not a "
            "bound)"
        )
    return f"  {label:11} = undecided ({v['reason']})"


def _derivations_text(r: dict) -> list[str]:
    lines = [
        "",
        f"Derivation, checked step by step ({r['status']} overall; each step proved, computed, "
        "tested, undecided or refuted):",
    ]
    for d in r["derivations"]:
        lines.append(f"  [{d['status']}] {d['name']}: {_short(d['start'])} = {_short(d['result'])}")
        for s in d["steps"]:
            methods = ", ".join(f"{c['method']}: {c['status']}" for c in s["checks"])
            lines.append(f"      {s['rule']} ({methods})")
            if s["status"] in ("undecided", "refuted"):
                lines += [
                    f"        {c['detail']}" for c in s["checks"] if c["status"] == s["status"]
                ]
    return lines


def _short(text: str | None, limit: int = 90) -> str:
    text = "" if text is None else text
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _notes_text(r: dict) -> list[str]:
    if not r.get("notes"):
        return []
    return ["", "Notes:"] + [f"  {n}" for n in r["notes"]]


def _activation_text(r: dict) -> str:
    lines = [
        *_form_lines(r),
        *_moment_lines(r),
        *_gain_lines(r),
        *_fixed_point_lines(r),
        *_torch_lines(r),
        *_mean_field_lines(r),
        *_network_lines(r),
        *_checks_text(r),
        *_derivations_text(r),
        *_notes_text(r),
    ]
    return "\n".join(lines)


def _undecided_or(v: float | None, spec: str = ".8g") -> str:
    return "undecided" if v is None else format(v, spec)


def _form_lines(r: dict) -> list[str]:
    """``f``, ``f'``, the Taylor expansion at 0 and the value and slopes there."""
    lines = [f"f(x) = {r['f']}", f"f'(x) = {r['derivative']}"]
    if r["derivative_check"]:
        lines.append(f"  ({r['derivative_check']['status']}: {r['derivative_check']['detail']})")
    lines += ["", "Taylor expansion at 0:"]
    lines += [f"  {t['branch']}: {t['series']}" for t in r["taylor"]] or ["  (none)"]
    s = r["slope_at_0"]
    unit = "so f'(0) = 1" if r["unit_slope"] else "so f'(0) != 1"
    lines.append(
        f"f(0) = {r['f0']} ({'= 0' if r['f0_is_zero'] else 'not 0'}); f'(0-) = {s['left']}, "
        f"f'(0+) = {s['right']} ({unit})"
    )
    return lines


def _moment_lines(r: dict) -> list[str]:
    """Gaussian moments at ``q = 1`` and as functions of ``q``."""
    m, mq = r["moments_q1"], r["moments_of_q"]
    lines = ["", "Gaussian moments, z ~ N(0, 1):"]
    for key, label in (("mean", "E[f(z)]"), ("m2", "E[f(z)^2]"), ("d2", "E[f'(z)^2]")):
        lines.append(_moment_line(label, m[key]))
    lines.append("As functions of q (x ~ N(0, q)):")
    lines.append(f"  E[f(x)^2]  = {mq['m2'] or '(no closed form; values below)'}")
    lines.append(f"  E[f'(x)^2] = {mq['d2'] or '(no closed form)'}")
    if mq["m2_small_q_series"]:
        lines.append(f"  E[f(x)^2]  = {mq['m2_small_q_series']}  (small q)")
    lines.append(
        "  E[f(x)^2] at q = "
        + ", ".join(f"{row['q']:g}: {_undecided_or(row['value'])}" for row in mq["m2_table"])
    )
    return lines


def _gain_lines(r: dict) -> list[str]:
    gn = r["gains"]
    return [
        "",
        "Gains n*gamma (weight variance gamma = gain / fan):",
        f"  forward-preserving  n_in  gamma = 1/E[f(z)^2]  = {gn['forward']['value'] or '?'}"
        f" = {_undecided_or(gn['forward']['numeric'])}",
        f"  backward-preserving n_out gamma = 1/E[f'(z)^2] = {gn['backward']['value'] or '?'}"
        f" = {_undecided_or(gn['backward']['numeric'])}",
        f"  used for the variance map ({gn['used']['source']}): "
        f"{_undecided_or(gn['used']['numeric'])}",
    ]


def _fixed_point_lines(r: dict) -> list[str]:
    lines = ["", "Fixed points of q -> n*gamma E[f(sqrt(q) z)^2]:"]
    if r["every_q_fixed"]:
        lines.append("  every q > 0 (f is positively homogeneous and the gain preserves q)")
    for p in r["fixed_points"] if not r["every_q_fixed"] else []:
        lines.append(
            f"  q* = {p['q']:.8g}: slope {_undecided_or(p['slope'], '.6g')} "
            f"({'stable' if p['stable'] else 'unstable'}),"
            f" backward factor n*gamma E[f'(sqrt(q*) z)^2] = {_undecided_or(p['chi'], '.6g')}"
        )
    if not r["fixed_points"] and not r["every_q_fixed"]:
        lines.append(
            "  none in [1e-3, 1e3]" if r["fixed_points_decided"] else "  undecided (see notes)"
        )
    if r["zero_fixed"]:
        lines.append("  q = 0 is also a fixed point (f(0) = 0)")
    return lines


def _torch_lines(r: dict) -> list[str]:
    t = r["torch"]
    if not t:
        return ["", "PyTorch calculate_gain has no entry for this function (torch/nn/init.py)."]
    param = "" if t["param"] is None else f", {t['param']:g}"
    return [
        "",
        f"PyTorch calculate_gain('{t['name']}'{param})"
        f" = {t['gain']}: gain^2 = {t['gain_squared']} = {t['gain_squared_numeric']:.6g} vs "
        f"forward-preserving n*gamma = {_undecided_or(t['forward_preserving_n_gamma'], '.6g')} "
        f"(ratio {_undecided_or(t['ratio'], '.4g')}; {t['reference']})",
    ]


def _mean_field_lines(r: dict) -> list[str]:
    if not r.get("mean_field"):
        return []
    lines = ["", "Mean field, no bias (q* reached from q = 1; chi1 = n*gamma E[f'(sqrt(q*) z)^2]):"]
    for row in r["mean_field"]:
        lines.append(
            f"  {row['gain']:36} n*gamma = {row['sigma_w2']:.6g}: q* = "
            f"{_vshort(row['q_star'])}, post-activation std {_vshort(row['post_std'])}, "
            f"chi1 = {_vshort(row['chi1'])}, {row['phase']}"
        )
    reasons = {row["q_star"]["reason"] for row in r["mean_field"] if row["q_star"]["reason"]}
    return lines + [f"  ({reason})" for reason in sorted(reasons) if reason]


def _network_lines(r: dict) -> list[str]:
    net = r["network"]
    if "start_q" not in net:
        return [""]
    return [
        "",
        f"Network: width {net['width']}, depth {net['depth']}, normal weights of variance "
        f"{r['gains']['used']['numeric']:.6g}/{net['width']}, input "
        f"N(0, {net['input_std']:.6g}^2 I) so that the first pre-activation variance is "
        f"q = {net['start_q']:.6g}.",
    ]


def _law_text(law: dict) -> list[str]:
    native = sp.sympify(law["native"], locals=_SYMS)
    return [
        f"Law: {law['dist']}, {law['parameter']} = {law['native']}"
        + (f" ~= {sp.N(native, 8)}" if native.atoms(sp.Function) else ""),
        f"Weight variance gamma = {law['variance']}"
        + (f"  ({law['source']})" if law["source"] != "given" else ""),
    ]


_SYMS = {
    "n_in": sp.Symbol("n_in", integer=True, positive=True),
    "n_out": sp.Symbol("n_out", integer=True, positive=True),
}


def _init_text(r: dict) -> str:
    m = r["moments_q1"]

    def num(v: float | None, spec: str) -> str:
        return "undecided" if v is None else format(v, spec)

    lines = [
        *_law_text(r["law"]),
        f"Activation f(x) = {r['f']}: E[f(z)^2] = "
        f"{num(m['m2']['numeric'], '.8g')}, E[f'(z)^2] = {num(m['d2']['numeric'], '.8g')}",
        "",
    ]
    lines.append(
        f"{'layer':>5} {'n_in':>6} {'n_out':>6} {'gamma':>12} {'fwd gain':>10} {'bwd gain':>10}"
    )
    for row in r["layers"]:
        lines.append(
            f"{row['layer']:>5} {row['n_in']:>6} {row['n_out']:>6} {row['gamma_numeric']:>12.6g} "
            f"{num(row['forward_gain'], '>10.6g')} {num(row['backward_gain'], '>10.6g')}"
        )
    lines.append("  fwd gain = n_in gamma E[f(z)^2], bwd gain = n_out gamma E[f'(z)^2]")
    lines.append("")
    lines += _checks_text(r)
    lines += _derivations_text(r)
    lines += _notes_text(r)
    return "\n".join(lines)


def _claim_text(r: dict) -> str:
    ob = r["observable"]
    where = (
        f"{ob['moment']} of the {ob.get('of', 'gradient')} at layer {ob['layer']} "
        f"({ob['direction']})"
    )
    d = r["derived"]
    derived = (
        f"{d['value']:.8g} ({'exact' if d['exact'] else 'approximate'}: {d['how']})"
        if d["value"] is not None
        else f"undecided ({d['how']})"
    )
    lines = [
        *_law_text(r["law"]),
        f"Activation f(x) = {r['f']}; widths {r['scenario']['widths']}; input N(0, I)"
        + ("; upstream gradient N(0, 1)" if ob["direction"] == "backward" else ""),
        f"Claim: {where} = {r['expected']['expression']} (= {r['expected']['value']:.8g})",
        f"Derived: {derived}",
        "",
    ]
    lines += _checks_text(r)
    lines.append("")
    answer = r["answer"]
    line = f"Answer: the claim {answer.upper()}"
    if answer == "disagrees" and d["value"] is not None:
        line += f"; the derived value is {d['value']:.8g}"
        if not d["exact"]:
            line += " (infinite-width approximation)"
    lines.append(line)
    lines += _derivations_text(r)
    lines += _notes_text(r)
    return "\n".join(lines)


# --------------------------------------------------------------------------- step


def step_command(before: str, after: str, *, given: Sequence[str] | None = None) -> dict:
    """Check one step ``before = after`` under the declarations ``given``; plain data.

    Fields: ``before`` and ``after`` (as given), ``parsed`` (their SymPy forms),
    ``given`` (the declarations, split on ``;``), ``symbols`` (every symbol's domain, law
    and origin: ``given``, ``parameter`` of a law, or ``default``: undeclared, hence
    real), ``status``, ``method``, ``reason``, ``counterexample`` (``name -> value`` or
    ``None``) and ``notes``.
    """
    from derivations._step import check_step

    r = check_step(before, after, list(given or ()))
    return {
        "command": "step",
        "before": r.before_text,
        "after": r.after_text,
        "parsed": {"before": _expr(r.before), "after": _expr(r.after)},
        "given": list(r.given),
        "symbols": {
            d.name: {
                "domain": d.domain,
                "law": None if d.law is None else str(d.law),
                "origin": d.origin,
            }
            for d in r.declarations
        },
        "status": str(r.status),
        "method": r.method,
        "reason": r.reason,
        "counterexample": None if r.counterexample is None else dict(r.counterexample),
        "notes": list(r.notes),
    }


def _step_text(r: dict) -> str:
    line = f"{r['status']}: {r['before']} = {r['after']}"
    if r["status"] == "refuted" and r["counterexample"]:
        line += " fails at " + ", ".join(f"{k} = {v}" for k, v in r["counterexample"].items())
    lines = [f"{line} ({r['method']})", f"  {r['reason']}"]
    if r["parsed"]["before"] != r["before"] or r["parsed"]["after"] != r["after"]:
        lines.append(f"  parsed: {r['parsed']['before']} = {r['parsed']['after']}")
    origin = {"given": "", "parameter": " (law parameter)"}
    symbols = [
        v["law"] or f"{k} {v['domain']}{origin[v['origin']]}"
        for k, v in r["symbols"].items()
        if v["origin"] != "default"
    ]
    if symbols:
        lines.append(f"  given: {'; '.join(symbols)}")
    lines += [f"  note: {n}" for n in r["notes"]]
    return "\n".join(lines)


# --------------------------------------------------------------------------- meanfield


#: Extensions ``--plot`` accepts.
PLOT_FORMATS = ("png", "pdf", "svg")


def _value_dict(v) -> dict:
    """A mean-field :class:`~derivations._meanfield.Value` as plain data (``inf`` flagged)."""
    return v.as_data()


def _presets(a, budget) -> list[dict]:
    """Framework initializations as points :math:`(\\sigma_w^2, 0)`, each with its phase.

    PyTorch's ``calculate_gain`` (std ``gain/sqrt(fan_in)``: :math:`\\sigma_w^2 =
    \\mathrm{gain}^2`), He (:math:`2`), LeCun/Xavier at equal fans (:math:`1`),
    ``nn.Linear``'s default ``kaiming_uniform_(a=sqrt(5))`` (:math:`1/3`), and the gain
    that preserves the second moment at :math:`q = 1` (:math:`1/\\mathbb{E}[\\phi(z)^2]`).
    Biases are 0 (``nn.Linear``'s bias variance :math:`1/(3 n)` vanishes with width).
    """
    from derivations._gaussian import checked_moment
    from derivations._meanfield import mean_field
    from derivations._user import torch_gain, x

    rows = [
        ("He", 2.0, "He et al. (2015): Var[w] = 2/fan_in"),
        ("LeCun / Xavier", 1.0, "Var[w] = 1/fan_in (Xavier's 2/(fan_in + fan_out) at equal fans)"),
        (
            "torch nn.Linear",
            1 / 3,
            "kaiming_uniform_(a=sqrt(5)): U(-1/sqrt(fan_in), 1/sqrt(fan_in))",
        ),
    ]
    torch = torch_gain(a.f)
    if torch is not None:
        param = "" if torch.param is None else f", {torch.param:g}"
        rows.insert(
            0,
            (
                f"torch calculate_gain('{torch.name}'{param})",
                float(torch.squared),
                f"gain = {sp.sstr(torch.gain)}, sigma_w2 = gain^2; torch/nn/init.py",
            ),
        )
    m2 = checked_moment(a.f**2, x, 1.0, exact=False)
    if m2.decided and float(m2.value) > 0:
        rows.append(("second moment kept at q = 1", 1 / float(m2.value), "1/E[f(z)^2]"))
    out = []
    for name, sw, source in rows:
        m = mean_field(a, sw, 0.0, budget=budget, correlations=False)
        out.append(
            {
                "name": name,
                "sigma_w2": sw,
                "sigma_b2": 0.0,
                "source": source,
                "q_star": _value_dict(m.q_star),
                "chi1": _value_dict(m.chi1),
                "phase": m.phase,
            }
        )
    return out


def _plot_phase(path, a, result: dict, budget) -> None:
    """The phase diagram: the critical line, the point (A, B) and the presets (Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from derivations._meanfield import critical_line

    top = max(0.5, 1.5 * result["sigma_b2"])
    grid = [top * (k / 24) ** 2 for k in range(25)]  # dense near 0, where it bends
    line = critical_line(a, grid, budget=budget)
    pts = [(p.sigma_w2.value, p.sigma_b2) for p in line if p.sigma_w2.decided]
    result["critical_line"] = [
        {"sigma_b2": p.sigma_b2, "sigma_w2": _value_dict(p.sigma_w2), "q_star": p.q_star}
        for p in line
    ]
    fig, ax = plt.subplots(figsize=(8.5, 4.2))
    if pts:
        ax.plot(
            [w for w, _ in pts], [b for _, b in pts], "k-", lw=1.5, label="critical line (chi1 = 1)"
        )
    ax.plot(
        [result["sigma_w2"]],
        [result["sigma_b2"]],
        "o",
        ms=8,
        color="tab:red",
        label=f"({result['sigma_w2']:.4g}, {result['sigma_b2']:.4g}): {result['phase']}",
    )
    markers = "sDv^<>p"
    for k, p in enumerate(result["presets"]):
        ax.plot(
            [p["sigma_w2"]],
            [p["sigma_b2"]],
            markers[k % len(markers)],
            ms=7,
            alpha=0.8,
            label=f"{p['name']}: {p['sigma_w2']:.4g} ({p['phase']})",
        )
    ax.set_xlabel("sigma_w^2 (weight variance x fan-in)")
    ax.set_ylabel("sigma_b^2 (bias variance)")
    ax.set_title(f"Order and chaos for f(x) = {_short(result['f'], 50)}")
    ax.text(0.02, 0.95, "ordered (chi1 < 1)", transform=ax.transAxes, va="top")
    ax.text(0.98, 0.95, "chaotic (chi1 > 1)", transform=ax.transAxes, va="top", ha="right")
    right = max(
        [w for w, _ in pts] + [p["sigma_w2"] for p in result["presets"]] + [result["sigma_w2"]]
    )
    ax.set_xlim(0, 1.25 * right)
    ax.set_ylim(-0.03 * top, top * 1.1)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    metadata = (
        {"Software": None}
        if str(path).endswith((".png", ".svg"))
        else {"Creator": None, "Producer": None, "CreationDate": None}
    )
    if str(path).endswith(".svg"):
        metadata = {"Creator": None, "Date": None}
        plt.rcParams["svg.hashsalt"] = "initproof"
    fig.savefig(path, dpi=120, metadata=metadata)
    plt.close(fig)


def meanfield_command(
    expr: str,
    *,
    sigma_w2: str | None = None,
    sigma_b2: str | None = None,
    plot: str | None = None,
    budget: float = DEFAULT_BUDGET,
    time_limit: float = DEFAULT_TIME_LIMIT,
) -> dict:
    """Mean-field quantities of the activation ``expr`` at :math:`(\\sigma_w^2, \\sigma_b^2)`.

    ``sigma_w2`` and ``sigma_b2`` are constant expressions (``"25/9"``, ``"pi/4"``);
    :math:`\\sigma_b^2` defaults to 0 and :math:`\\sigma_w^2` to the critical value at
    :math:`\\sigma_b^2` (or 1 when there is none). ``plot`` writes the phase diagram
    (``.png``, ``.pdf`` or ``.svg``). Fields: ``q_star``, ``q_slope``, ``chi1``,
    ``phase``, ``c_star``, ``chi_c``, ``xi_q``, ``xi_c``, ``critical``, ``presets``,
    each number with ``status``, ``error`` (an estimate, not a bound) and ``method``.
    """
    _validate_run(0, DEFAULT_PRECISION, DEFAULT_ALPHA, budget, time_limit)
    with _limited(time_limit):
        return _meanfield_command(expr, sigma_w2, sigma_b2, plot, budget, time_limit)


def _variance_arg(text: str | None, argument: str) -> float | None:
    from derivations._user import InputError, parse_number

    if text is None:
        return None
    value = float(sp.N(parse_number(text, argument=argument, positive=False), 30))
    if value < 0 or (argument == "--sigma-w2" and value == 0):
        bound = "> 0" if argument == "--sigma-w2" else ">= 0"
        raise InputError(f"`{argument}` must be {bound}; got {argument}={text!r} = {value:g}.")
    if value > 1e6:
        raise InputError(f"`{argument}` must be at most 1e6; got {argument}={text!r}.")
    return value


def _meanfield_command(expr, sigma_w2, sigma_b2, plot, budget, time_limit) -> dict:
    from pathlib import Path

    from derivations._gaussian import Budget
    from derivations._meanfield import critical_line, mean_field, prepare
    from derivations._user import InputError

    path = None
    if plot is not None:
        path = Path(str(plot))
        if path.suffix.lower().lstrip(".") not in PLOT_FORMATS or not path.name:
            raise InputError(
                f"`--plot` must name a file ending in {', '.join('.' + f for f in PLOT_FORMATS)}; "
                f"got --plot={plot!r}."
            )
        if not path.parent.is_dir():
            raise InputError(f"`--plot`: the folder {str(path.parent)!r} does not exist.")
    sw = _variance_arg(sigma_w2, "--sigma-w2")
    sb = _variance_arg(sigma_b2, "--sigma-b2") or 0.0
    b = Budget(float(budget))
    a = prepare(expr, argument="EXPR", budget=b)
    notes = []
    source = "given"
    if sw is None:
        (crit,) = critical_line(a, [sb], budget=b)
        sw, source = (
            (crit.sigma_w2.value, "critical") if crit.sigma_w2.decided else (1.0, "default")
        )
        if source == "default":
            notes.append(f"no critical sigma_w2 at sigma_b2 = {sb:g}; sigma_w2 = 1 is used")
    m = mean_field(a, sw, sb, budget=b)
    result = {
        "command": "meanfield",
        "expression": expr,
        "f": _expr(a.f),
        "derivative": _expr(a.derivative),
        "sigma_w2": sw,
        "sigma_w2_source": source,
        "sigma_b2": sb,
        "q_star": _value_dict(m.q_star),
        "q_slope": _value_dict(m.q_slope),
        "q_stable": m.q_stable,
        "fixed_points": [
            {"q": p.q, "slope": _num(p.slope), "stable": p.stable} for p in m.fixed_points
        ],
        "post_activation": {"mean": _value_dict(m.post_mean), "std": _value_dict(m.post_std)},
        "chi1": _value_dict(m.chi1),
        "phase": m.phase,
        "tolerance": m.tolerance,
        "c_star": _value_dict(m.c_star),
        "chi_c": _value_dict(m.chi_c),
        "xi_q": _value_dict(m.xi_q),
        "xi_c": _value_dict(m.xi_c),
        "critical": {
            "sigma_b2": sb,
            "sigma_w2": _value_dict(m.critical_sigma_w2),
            "q_star": m.critical_q,
            "all": [{"q_star": _num(v), "sigma_w2": _num(w)} for v, w in m.critical_all],
        },
        "presets": _presets(a, b),
        "notes": [*m.notes, *notes],
        "plot": None,
        "limits": {"budget_seconds_per_operation": budget, "time_limit_seconds": time_limit},
    }
    if path is not None:
        _plot_phase(path, a, result, b)
        result["plot"] = str(path)
    return result


def _vshort(v: dict) -> str:
    if v["infinite"]:
        return "infinite"
    return f"{v['value']:.6g}" if v["value"] is not None else v["status"]


def _vtext(v: dict, spec: str = ".10g") -> str:
    if v["infinite"]:
        return f"infinite ({v['method']})"
    if v["value"] is None:
        return f"{v['status']} ({v['reason']})"
    if v["status"] == "exact":
        return f"{v['value']:{spec}} (exact: {v['method']})"
    return f"{v['value']:{spec}} (error estimate {v['error']:.1e}, not a bound)"


def _meanfield_text(r: dict) -> str:
    lines = [
        f"f(x) = {r['f']}",
        f"sigma_w2 = {r['sigma_w2']:.10g} ({r['sigma_w2_source']}), "
        f"sigma_b2 = {r['sigma_b2']:.10g}",
        "",
        "q-map  q -> sigma_w2 E[f(sqrt(q) z)^2] + sigma_b2:",
        f"  q*          = {_vtext(r['q_star'])}",
        f"  F'(q*)      = {_vtext(r['q_slope'])}"
        + ("" if r["q_stable"] is None else f" ({'stable' if r['q_stable'] else 'unstable'})"),
        f"  xi_q        = {_vtext(r['xi_q'], '.6g')}",
        f"  post-activation mean {_vtext(r['post_activation']['mean'], '.6g')}",
        f"  post-activation std  {_vtext(r['post_activation']['std'], '.6g')}",
    ]
    if len(r["fixed_points"]) > 1:
        lines.append(
            "  fixed points: "
            + ", ".join(
                f"{p['q']:.6g} ({'stable' if p['stable'] else 'unstable'})"
                for p in r["fixed_points"]
            )
        )
    lines += [
        "",
        f"chi1 = sigma_w2 E[f'(sqrt(q*) z)^2] = {_vtext(r['chi1'])}",
        f"phase: {r['phase'].upper()} (critical when |chi1 - 1| <= {r['tolerance']:g} "
        "or its error)",
        "",
        "c-map (two inputs):",
        f"  c*          = {_vtext(r['c_star'])}",
        f"  C'(c*)      = {_vtext(r['chi_c'])}",
        f"  xi_c        = {_vtext(r['xi_c'], '.6g')}",
        "",
        f"critical sigma_w2 at sigma_b2 = {r['critical']['sigma_b2']:g}: "
        f"{_vtext(r['critical']['sigma_w2'])}"
        + ("" if r["critical"]["q_star"] is None else f", q* = {r['critical']['q_star']:.6g}"),
        "",
        "Framework presets (sigma_b2 = 0):",
    ]
    for p in r["presets"]:
        chi = p["chi1"]["value"]
        lines.append(
            f"  {p['name']:40} sigma_w2 = {p['sigma_w2']:.6g}: chi1 = "
            f"{'undecided' if chi is None else format(chi, '.6g')}, {p['phase']}"
        )
    if r["plot"]:
        lines += ["", f"Phase diagram written to {r['plot']}"]
    lines += _notes_text(r)
    return "\n".join(lines)


# --------------------------------------------------------------------------- selu


def selu_command(
    mean: str = "0",
    var: str = "1",
    *,
    omega: str = "0",
    tau: str = "1",
    budget: float = SELU_BUDGET,
    time_limit: float = DEFAULT_TIME_LIMIT,
) -> dict:
    """SELU's :math:`\\lambda`, :math:`\\alpha` for the fixed point ``(mean, var)``; plain data.

    Fields: ``lambda`` and ``alpha`` (30 digits, strings), ``residual``, ``jacobian``
    (:math:`\\partial(\\tilde\\mu, \\tilde\\nu)/\\partial(\\mu, \\nu)` at the fixed point),
    ``spectral_norm`` and ``stable`` (norm below 1), ``eigenvalues``, and the derivation
    as checked steps (``derivations``, ``status``).
    """
    from derivations._selu import selu_parameters

    _validate_run(0, DEFAULT_PRECISION, DEFAULT_ALPHA, budget, time_limit)
    with _limited(time_limit):
        p = selu_parameters(mean, var, omega_=omega, tau_=tau, budget=float(budget))
    return {
        "command": "selu",
        "mean": p.mean,
        "var": p.var,
        "omega": p.omega,
        "tau": p.tau,
        "lambda": p.lam,
        "alpha": p.alpha,
        "lambda_float": p.lam_float,
        "alpha_float": p.alpha_float,
        "residual": p.residual,
        "jacobian": [list(row) for row in p.jacobian],
        "jacobian_check": p.jacobian_check,
        "spectral_norm": p.spectral_norm,
        "stable": p.stable,
        "eigenvalues": [{"real": e.real, "imag": e.imag} for e in p.eigenvalues],
        "method": p.method,
        "status": str(p.status),
        "derivations": [_derivation_dict(d) for d in p.derivations],
        "notes": [],
        "limits": {"budget_seconds_per_operation": budget, "time_limit_seconds": time_limit},
    }


def _selu_text(r: dict) -> str:
    j = r["jacobian"]
    lines = [
        f"SELU fixed point (mean, var) = ({r['mean']:g}, {r['var']:g}) with omega = "
        f"{r['omega']:g}, tau = {r['tau']:g} (z ~ N(mean*omega, var*tau))",
        f"  lambda = {r['lambda']}",
        f"  alpha  = {r['alpha']}",
        f"  residual of the fixed-point equations: {r['residual']:.1e} ({r['method']})",
        "",
        "Jacobian d(mean~, var~)/d(mean, var) at the fixed point:",
        f"  [[{j[0][0]: .10f}, {j[0][1]: .10f}],",
        f"   [{j[1][0]: .10f}, {j[1][1]: .10f}]]",
        f"  ({r['jacobian_check']})",
        f"  spectral norm {r['spectral_norm']:.10f}: "
        + ("< 1, the map is a contraction there (stable)" if r["stable"] else ">= 1: not stable"),
        "  eigenvalues "
        + ", ".join(
            f"{e['real']:.10g}" + (f"{e['imag']:+.3g}i" if e["imag"] else "")
            for e in r["eigenvalues"]
        ),
    ]
    lines += _derivations_text(r)
    return "\n".join(lines)


RENDER = {
    "activation": _activation_text,
    "init": _init_text,
    "claim": _claim_text,
    "step": _step_text,
    "meanfield": _meanfield_text,
    "selu": _selu_text,
}


# --------------------------------------------------------------------------- argparse


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds; got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds; got {text!r}")
    return value


def _limits(p: argparse.ArgumentParser, budget: float = DEFAULT_BUDGET) -> None:
    """``--json``, ``--budget`` and ``--time-limit`` of a command that simulates nothing."""
    p.add_argument("--json", action="store_true", help="print plain data")
    p.add_argument(
        "--budget",
        type=_seconds,
        default=budget,
        metavar="SECONDS",
        help=f"seconds per symbolic or numeric operation ({budget:g})",
    )
    p.add_argument(
        "--time-limit",
        type=_seconds,
        default=DEFAULT_TIME_LIMIT,
        metavar="SECONDS",
        help=f"wall-time limit of the whole command; past it, exit code 2 ({DEFAULT_TIME_LIMIT:g})",
    )


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print plain data (evidence.json style)")
    p.add_argument("--no-simulate", action="store_true", help="derive only, no Monte Carlo")
    p.add_argument("--seed", type=int, default=0, help="root seed (default 0)")
    p.add_argument(
        "--precision",
        type=float,
        default=DEFAULT_PRECISION,
        help=f"target relative half-width of the 99%% interval ({DEFAULT_PRECISION})",
    )
    p.add_argument("--alpha", type=float, default=DEFAULT_ALPHA, help="error budget (0.01)")
    p.add_argument(
        "--budget",
        type=_seconds,
        default=DEFAULT_BUDGET,
        metavar="SECONDS",
        help=f"seconds per symbolic or numeric operation; one that runs out is reported "
        f"undecided ({DEFAULT_BUDGET:g})",
    )
    p.add_argument(
        "--time-limit",
        type=_seconds,
        default=DEFAULT_TIME_LIMIT,
        metavar="SECONDS",
        help=f"wall-time limit of the whole command, derivation and simulation; past it the "
        f"command stops with exit code 2 ({DEFAULT_TIME_LIMIT:g})",
    )


def _law_args(p: argparse.ArgumentParser, positional: bool) -> None:
    if positional:
        p.add_argument(
            "dist", nargs="?", metavar="DIST", help="normal | uniform | truncated_normal"
        )
    else:
        p.add_argument("--dist", metavar="DIST", help="normal | uniform | truncated_normal")
    p.add_argument("--std", metavar="EXPR", help="std in n_in, n_out (truncated: untruncated std)")
    p.add_argument("--var", metavar="EXPR", help="weight variance in n_in, n_out")
    p.add_argument("--bound", metavar="EXPR", help="uniform bound a of U[-a, a] in n_in, n_out")
    p.add_argument("--preset", metavar="NAME", help="torch-linear | keras-dense | flax-dense")


_EXPR_HELP = (
    "f(x) in SymPy syntax, e.g. 'x*sigmoid(x)', 'gelu(x)', 'leaky_relu(x, 0.2)', "
    "'Piecewise((x, x > 0), (x/10, True))'. Named: relu, leaky_relu, elu, selu, gelu, "
    "gelu_tanh, silu, swish, mish, hardtanh, softsign, sigmoid, softplus"
)


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``activation``, ``init``, ``claim`` and ``step`` to the ``initproof`` parser."""
    act = sub.add_parser(
        "activation", help="moments, gains and fixed point of an activation of your own"
    )
    act.add_argument("expr", metavar="EXPR", help=_EXPR_HELP)
    act.add_argument("--gain", metavar="EXPR", help="n*gamma of the init (default: preserving)")
    act.add_argument("--width", type=int, default=128, help="simulated width (128)")
    act.add_argument("--depth", type=int, default=10, help="simulated depth (10)")
    _common(act)
    ini = sub.add_parser("init", help="exact weight variance and per-layer gains of an init")
    _law_args(ini, positional=True)
    ini.add_argument("--activation", metavar="EXPR", default="x", help="f(x) (default x)")
    ini.add_argument("--widths", default="128,128,128,128", help="N0,N1,... (128,128,128,128)")
    _common(ini)
    cl = sub.add_parser(
        "claim",
        help="check a stated moment at one layer (exit 0 agrees, 1 disagrees, 3 inconclusive)",
    )
    _law_args(cl, positional=False)
    cl.add_argument("--activation", metavar="EXPR", default="x", help="f(x) (default x)")
    cl.add_argument("--widths", required=True, help="N0,N1,...")
    cl.add_argument("--direction", default="forward", help="forward | backward")
    cl.add_argument("--of", default="output", help="output | preactivation (forward)")
    cl.add_argument("--moment", default="m2", help="m2 | var | mean")
    cl.add_argument("--layer", type=int, required=True, help="layer t")
    cl.add_argument("--expect", metavar="EXPR", required=True, help="expected value, e.g. '2**-10'")
    _common(cl)
    st = sub.add_parser(
        "step",
        help="check one step BEFORE = AFTER of a derivation over the declared domains",
        description="Check one step of a derivation: is BEFORE = AFTER for every value of "
        "the symbols in their declared domains? Prints proved, computed, tested, undecided "
        "or refuted (with a counterexample); exit 0 for any verdict, 2 for bad input. "
        "E[...] is the expectation over a variable declared with --given 'x ~ N(0, q)'; "
        "AFTER may end in + O(q**k) (a series step). Undeclared symbols are real. Put -- "
        "before BEFORE if it starts with '-'.",
    )
    st.add_argument("before", metavar="BEFORE", help="left side, e.g. 'E[Max(0, x)**2]'")
    st.add_argument("after", metavar="AFTER", help="right side, e.g. 'q/2' or '1 + q + O(q**2)'")
    st.add_argument(
        "--given",
        metavar="DECL",
        action="append",
        default=[],
        help="a declaration, repeatable: 'x ~ N(0, q)', 'x ~ U(-a, a)', 'x real', 'x > 0', "
        "'x >= 0', 'n integer', 'n integer > 0'",
    )
    st.add_argument("--json", action="store_true", help="print plain data")
    mf = sub.add_parser(
        "meanfield",
        help="q*, chi1, the phase (ordered, critical, chaotic), depth scales, critical sigma_w2",
        description="Mean-field signal propagation (Poole et al. 2016, Schoenholz et al. "
        "2017) for weights N(0, sigma_w2/fan_in) and biases N(0, sigma_b2): the fixed point q* "
        "of the variance map, chi1, the phase, the correlation fixed point c*, the depth "
        "scales xi_q and xi_c, and the sigma_w2 at which chi1 = 1. Exit 2 on bad input.",
    )
    mf.add_argument("expr", metavar="EXPR", help=_EXPR_HELP)
    mf.add_argument(
        "--sigma-w2",
        metavar="A",
        help="weight variance x fan_in, e.g. 2 or '25/9' (default: critical)",
    )
    mf.add_argument("--sigma-b2", metavar="B", help="bias variance (default 0)")
    mf.add_argument("--plot", metavar="FILE", help="write the phase diagram (.png, .pdf or .svg)")
    _limits(mf)
    se = sub.add_parser(
        "selu",
        help="lambda and alpha of SELU for a fixed point (mean, variance), and its stability",
        description="Derive SELU's lambda and alpha so that (mean, var) is a fixed point of "
        "the map of a layer's (mean, variance) (Klambauer et al. 2017), solve to 30 digits, "
        "and give the Jacobian of the map there and its spectral norm. Exit 2 on bad input.",
    )
    se.add_argument("--mean", metavar="M", default="0", help="fixed-point mean (default 0)")
    se.add_argument("--var", metavar="V", default="1", help="fixed-point variance > 0 (default 1)")
    se.add_argument("--omega", metavar="W", default="0", help="sum of a unit's weights (default 0)")
    se.add_argument(
        "--tau", metavar="T", default="1", help="sum of its squared weights (default 1)"
    )
    _limits(se, budget=SELU_BUDGET)


def compute(args: argparse.Namespace) -> dict:
    """Run the command that ``args`` names; return its plain data."""
    if args.command == "step":
        return step_command(args.before, args.after, given=args.given)
    if args.command == "meanfield":
        return meanfield_command(
            args.expr,
            sigma_w2=args.sigma_w2,
            sigma_b2=args.sigma_b2,
            plot=args.plot,
            budget=args.budget,
            time_limit=args.time_limit,
        )
    if args.command == "selu":
        return selu_command(
            args.mean,
            args.var,
            omega=args.omega,
            tau=args.tau,
            budget=args.budget,
            time_limit=args.time_limit,
        )
    run = {
        "seed": args.seed,
        "precision": args.precision,
        "alpha": args.alpha,
        "simulate": not args.no_simulate,
        "budget": args.budget,
        "time_limit": args.time_limit,
    }
    if args.command == "activation":
        return activation_command(
            args.expr, gain=args.gain, width=args.width, depth=args.depth, **run
        )
    law = {"std": args.std, "var": args.var, "bound": args.bound, "preset": args.preset}
    if args.command == "init":
        return init_command(args.dist, activation=args.activation, widths=args.widths, **law, **run)
    return claim_command(
        dist=args.dist,
        widths=args.widths,
        expect=args.expect,
        layer=args.layer,
        direction=args.direction,
        of=args.of,
        moment=args.moment,
        activation=args.activation,
        **law,
        **run,
    )


def _given(args: argparse.Namespace) -> str:
    """The user's expression arguments, for a message about an internal failure."""
    names = (
        "expr",
        "activation",
        "std",
        "var",
        "bound",
        "expect",
        "gain",
        "before",
        "after",
        "sigma_w2",
        "sigma_b2",
        "mean",
    )
    shown = [f"{n}={getattr(args, n)!r}" for n in names if getattr(args, n, None) is not None]
    return ", ".join(shown) or "the arguments given"


def run(args: argparse.Namespace) -> int:
    """Compute, then print (text or JSON) in one piece; errors go to stderr with exit 2.

    Exit 2 covers input initproof refuses (the message names the argument), a run past
    ``--time-limit``, running out of memory and, as a last resort, an internal failure
    (reported in one line that names the input, never as a traceback). Warnings raised
    on the way (NumPy, SymPy, SciPy) are collected into the output's notes, not printed.
    """
    from derivations._gaussian import TimeLimitExceeded
    from derivations._user import InputError
    from montecarlo import MonteCarloError

    def fail(message: str) -> int:
        print(f"initproof {args.command}: error: {message}", file=sys.stderr)
        return 2

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = compute(args)
        if args.command != "step" and caught:
            seen = dict.fromkeys(
                f"{w.category.__name__}: {str(w.message).splitlines()[0][:160]}" for w in caught
            )
            result.setdefault("notes", []).extend(f"warning: {w}" for w in list(seen)[:5])
        text = (
            json.dumps(result, indent=2, allow_nan=False)
            if args.json
            else RENDER[args.command](result)
        )
    except (InputError, MonteCarloError) as exc:
        return fail(str(exc))
    except TimeLimitExceeded as exc:
        limit = getattr(args, "time_limit", None)
        simulates = args.command in ("activation", "init", "claim")
        return fail(
            f"{exc} (--time-limit {limit:g} s); nothing was printed. Raise --time-limit"
            + (", lower --budget, coarsen --precision or pass --no-simulate." if simulates else ".")
        )
    except MemoryError:
        return fail("out of memory; use a smaller network.")
    except RecursionError:
        return fail(f"the expression is nested too deeply for SymPy ({_given(args)}).")
    except Exception as exc:  # last resort: never a traceback for a user's input
        first = str(exc).splitlines()[0][:300] if str(exc) else ""
        return fail(
            f"internal failure on {_given(args)}: {type(exc).__name__}: {first}. This is a "
            "fault in initproof, not in your input; please report it with this line."
        )
    try:
        print(text)
        sys.stdout.flush()
    except BrokenPipeError:  # the reader closed the pipe (``| head``): not an error here
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    if args.command == "claim":
        return {"agrees": 0, "disagrees": 1}.get(result["answer"], 3)
    return 0


__all__ = [
    "COMMANDS",
    "activation_command",
    "add_commands",
    "claim_command",
    "compute",
    "init_command",
    "meanfield_command",
    "run",
    "selu_command",
    "step_command",
]
