"""Plain data for the report: every claim, its derivation and its simulated evidence.

This is the only module that knows both :mod:`derivations` and :mod:`montecarlo`.
The dictionary it builds is exactly what ``evidence.json`` holds, and the templates
render from it, so nothing appears in the report that is not in the evidence.
"""

from __future__ import annotations

import math
import platform
from collections.abc import Iterable, Mapping
from importlib import metadata

import numpy as np
import scipy
import sympy as sp
from tqdm import tqdm

import derivations
import montecarlo
from derivations import Claim, Status
from derivations._claim import STATUSES
from derivations._figures import Curve, Simulated

from ._latex import display, latex

#: The report section each figure illustrates.
FIGURE_SECTIONS = {
    "variance-depth": "Forward and backward moments",
    "taylor": "Activation functions",
    "sigmoid-derivative": "Exploding and vanishing gradients",
    "products": "Exploding and vanishing gradients",
    "tanh-variance": "Activation functions",
    "log-norm-depth": "Constant variance in every layer",
    "phase-diagram": "Beyond the lecture",
    "correlation-widths": "Beyond the lecture",
    "correlation-phases": "Beyond the lecture",
}

#: Version of the evidence contract (``evidence.schema.json``). 2: five statuses,
#: per-claim ``trust``, run ``totals``, the ``statuses`` legend, counterexamples.
SCHEMA_VERSION = 2

#: What each status establishes, strongest first: the legend of every report.
STATUS_MEANINGS = {
    "proved": "a symbolic argument valid on the whole declared domain of every symbol, "
    "given only by the checking kernel.",
    "computed": "a result SymPy computed (diff, integrate, series, doit), with an "
    "independent cross-check where one exists.",
    "tested": "exact agreement at points drawn from each symbol's domain, or on "
    "instances generated from the network itself; not a proof.",
    "undecided": "nothing could decide it; never counts as a pass.",
    "refuted": "a counterexample was found, and is shown.",
}

#: Family-wise error budget of a run (Holm over every check).
DEFAULT_ALPHA = 0.01
QUICK_PRECISION = 0.05


def allowed_range(probe) -> tuple[float, float] | None:
    """The values a probe's claim allows: a bound's half-line, or the prediction widened
    by its stated bias bound; ``None`` for an exact point prediction."""
    y, b = probe.predicted, probe.bias_bound
    if probe.kind == "lower_bound":
        return (y, math.inf)
    if probe.kind == "upper_bound":
        return (-math.inf, y)
    return (y - b, y + b) if b > 0 else None


def _number(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def verdict(claim: Claim, checks: Iterable[Mapping]) -> str:
    """The claim's verdict from its symbolic status and its checks' outcomes.

    ``refuted`` when the symbolic status is refuted or a check contradicts what the
    derivation predicts; ``undecided`` when the symbolic status is undecided, when there
    are no checks, or when a check is inconclusive or a probe of the lecture's loose
    version fails to show its flaw; otherwise ``refuted`` (with the corrected claim) when
    the claim records a correction, ``qualified`` when it records a condition, and
    ``verified`` when it holds as stated.

    A claim whose derivation is only computed or tested still gets a verdict: how much
    of it is proved is its *trust* (:func:`trust`), reported beside the verdict.
    """
    checks = list(checks)
    if claim.status is Status.REFUTED or any(
        k["outcome"] == "disagrees" and k["expected"] == "agrees" for k in checks
    ):
        return "refuted"
    if (
        claim.status.rank <= Status.UNDECIDED.rank
        or not checks
        or any(k["outcome"] != k["expected"] for k in checks)
    ):
        return "undecided"
    if claim.corrected:
        return "refuted"
    if claim.qualification:
        return "qualified"
    return "verified"


def count_statuses(statuses: Iterable[Status | str]) -> dict[str, int]:
    """How many of ``statuses`` are of each status: every status a key, strongest first."""
    counts = {str(s): 0 for s in STATUSES}
    for s in statuses:
        counts[str(Status(s))] += 1
    return counts


def trust(claim: Claim) -> dict:
    """How much of ``claim`` is proved, computed, tested or undecided, and what it assumes.

    ``steps`` and ``confirmations`` count by status (every status a key); ``assumptions``
    are the declared ones, each marked ``used`` when some step names it in its ``uses``;
    ``assumed`` lists the names the steps use, declared ones first in declared order;
    ``undeclared`` those used but not declared by the claim.
    """
    steps = [s for d in claim.derivations for s in d.steps]
    used = {u for s in steps for u in s.uses}
    declared = [a.name for a in claim.assumptions]
    undeclared = list(dict.fromkeys(u for s in steps for u in s.uses if u not in declared))
    return {
        "status": str(claim.status),
        "n_steps": len(steps),
        "steps": count_statuses(s.status for s in steps),
        "confirmations": count_statuses(c.status for c in claim.confirmations),
        "assumptions": [
            {"name": a.name, "statement": a.statement, "used": a.name in used}
            for a in claim.assumptions
        ],
        "assumed": [n for n in declared if n in used] + undeclared,
        "undeclared": undeclared,
    }


def totals(trusts: Iterable[Mapping]) -> dict:
    """Run totals from the claims' :func:`trust` records: steps and claims by status."""
    trusts = list(trusts)
    steps = count_statuses([])
    for t in trusts:
        for k, v in t["steps"].items():
            steps[k] += v
    return {
        "n_claims": len(trusts),
        "n_steps": sum(steps.values()),
        "steps": steps,
        "claims": count_statuses(t["status"] for t in trusts),
    }


def status_line(counts: Mapping[str, int]) -> str:
    """``3 proved, 1 computed, 2 tested, 0 undecided, 0 refuted``."""
    return ", ".join(f"{counts[str(s)]} {s}" for s in STATUSES)


def _checks(checks) -> list[dict]:
    out = []
    for c in checks:
        k = {"method": c.method, "status": str(c.status), "detail": c.detail}
        if c.counterexample is not None:
            k["counterexample"] = {str(n): str(v) for n, v in c.counterexample.items()}
        out.append(k)
    return out


def _symbolic(claim: Claim) -> dict:
    steps = []
    for d in claim.derivations:
        for number, s in enumerate(d.steps, start=1):
            steps.append(
                {
                    "derivation": d.name,
                    "number": number,
                    "before": latex(s.before),
                    "after": latex(s.after),
                    "display": display(s.after),
                    "rule": s.rule,
                    "why": s.why,
                    "uses": list(s.uses),
                    "check": str(s.status),
                    "checks": _checks(s.checks),
                }
            )
    return {
        "status": str(claim.status),
        "derivations": [
            {
                "name": d.name,
                "status": str(d.status),
                "origin": d.origin,
                "start": latex(d.start),
                "start_display": display(d.start),
                "result": latex(d.result),
            }
            for d in claim.derivations
        ],
        "steps": steps,
        "conditions": [latex(c) for c in claim.conditions],
        "confirmations": _checks(claim.confirmations),
    }


def measure_probes(
    claim_id: str,
    probes: Iterable,
    seed: int,
    *,
    precision: float = montecarlo.DEFAULT_PRECISION,
    activations: Mapping | None = None,
) -> dict[str, montecarlo.Estimate]:
    """Simulate a claim's probes, those with one scenario from one set of networks.

    Probes whose scenarios are equal are read from the same replicates
    (:func:`montecarlo.measure_many`), run until the least precise of them reaches
    ``precision``, with the stream ``seed_for(seed, claim, *their labels)``; their
    estimates are dependent, which Holm's procedure allows. A probe alone, and a pair
    scenario (its own engine), keep ``seed_for(seed, claim, probe)``. The engine takes
    the activation table's NumPy functions (``activations``, by default
    :func:`derivations.simulation_activations`). Returns the estimates by probe label.
    """
    if activations is None:
        activations = derivations.simulation_activations()
    groups: dict[str, list] = {}
    for probe in probes:
        key = repr(sorted(probe.scenario.items()))
        if probe.scenario.get("kind") == "pair":
            key += probe.label
        groups.setdefault(key, []).append(probe)
    out = {}
    for group in groups.values():
        labels = [p.label for p in group]
        stream = montecarlo.seed_for(seed, claim_id, *labels)
        options = {"seed": stream, "precision": precision, "activations": activations}
        if len(group) == 1:
            estimates = [montecarlo.measure(group[0].scenario, group[0].observable, **options)]
        else:
            estimates = montecarlo.measure_many(
                group[0].scenario, [p.observable for p in group], **options
            )
        out.update(zip(labels, estimates, strict=True))
    return out


def evidence(
    seed: int,
    *,
    alpha: float = DEFAULT_ALPHA,
    quick: bool = False,
    claims: tuple[Claim, ...] | None = None,
    progress: bool = False,
) -> dict:
    """Derive every claim, simulate every probe, decide, and return plain data.

    Parameters
    ----------
    seed : int
        Root seed of the run; each probe's stream is spawned from it by the key
        ``(claim id, probe label)``, or, for probes of a claim with one scenario (which
        share their networks, :func:`measure_probes`), ``(claim id, *their labels)``.
    alpha : float
        Family-wise error budget shared by all checks (Holm's step-down procedure;
        ``confidence`` in the result is its strictest per-check level,
        :math:`1 - \alpha/m`).
    quick : bool
        Draft mode: target precision :data:`QUICK_PRECISION` instead of the default.
    progress : bool
        Show a progress bar on standard error when it is a terminal and the run
        takes more than two seconds.
    """
    claims = derivations.claims() if claims is None else claims
    precision = QUICK_PRECISION if quick else montecarlo.DEFAULT_PRECISION
    n_checks = sum(len(c.probes) for c in claims)
    estimates = _measure_probes(claims, seed, precision, progress)
    decisions = _decide(claims, estimates, alpha, precision)
    out_claims = [
        _claim_data(claim, [_check_data(p, *decisions[claim.id, p.label]) for p in claim.probes])
        for claim in claims
    ]
    drawn = simulate_figures(derivations.figures(claims), seed, quick=quick)
    return {
        "schema_version": SCHEMA_VERSION,
        "seed": seed,
        "alpha": alpha,
        "n_checks": n_checks,
        "confidence": montecarlo.per_check_confidence(alpha, max(n_checks, 1)),
        "precision_target": precision,
        "quick": quick,
        "versions": _versions(),
        "statuses": [{"name": k, "meaning": v} for k, v in STATUS_MEANINGS.items()],
        "totals": totals(c["trust"] for c in out_claims),
        "claims": out_claims,
        "figures": [{**f, "section": FIGURE_SECTIONS[f["id"]]} for f in drawn],
        "exercises": [
            {
                "id": e.id,
                "status": str(e.status),
                "symbolic": _symbolic(e),
                "values": dict(e.values),
            }
            for e in derivations.exercises()
        ],
        "gains": gains_evidence(),
    }


def _measure_probes(claims, seed: int, precision: float, progress: bool) -> dict:
    """Every probe's estimate, keyed by ``(claim id, probe label)``, with a progress bar."""
    bar = tqdm(
        total=sum(len(c.probes) for c in claims),
        unit="check",
        delay=2,
        disable=None if progress else True,
    )
    estimates = {}
    simulation = derivations.simulation_activations()  # the table's NumPy side
    for claim in claims:
        bar.set_postfix_str(claim.id, refresh=False)
        measured = measure_probes(
            claim.id, claim.probes, seed, precision=precision, activations=simulation
        )
        estimates.update({(claim.id, p.label): measured[p.label] for p in claim.probes})
        bar.update(len(claim.probes))
    bar.close()
    return estimates


def _decide(claims, estimates: dict, alpha: float, precision: float) -> dict:
    """``(estimate, decision)`` of every probe: one family, Holm's procedure at ``alpha``."""
    keys = list(estimates)
    probes = {(c.id, p.label): p for c in claims for p in c.probes}
    decisions = montecarlo.decide_family(
        [probes[k].predicted for k in keys],
        list(estimates.values()),
        alpha,
        precision,
        [allowed_range(probes[k]) for k in keys],
    )
    return {k: (estimates[k], d) for k, d in zip(keys, decisions, strict=True)}


def _check_data(probe, est: montecarlo.Estimate, dec: montecarlo.Decision) -> dict:
    """One check as plain data: the probe, its prediction, the estimate and the decision."""
    return {
        "probe": probe.label,
        "scenario": dict(probe.scenario),
        "observable": dict(probe.observable),
        "predicted": probe.predicted,
        "predicted_expression": latex(probe.expression),
        "prediction": {
            "kind": probe.kind,
            "source": probe.source,
            "method": probe.method,
            "bias_bound": probe.bias_bound,
            "note": probe.note,
        },
        "estimate": _number(est.value),
        "se": _number(est.se),
        "ci_low": _number(dec.ci.low),
        "ci_high": _number(dec.ci.high),
        "confidence": dec.confidence,
        "precision": _number(est.precision()),
        "p_value": _number(dec.p_value),
        "n_samples": est.n_samples,
        "n_replicates": est.n_replicates,
        "nonfinite": est.nonfinite,
        "outcome": str(dec.outcome),
        "expected": probe.expect,
        "reason": dec.reason,
        "seed": est.seed,
        "method": est.method,
    }


def _claim_data(claim: Claim, checks: list[dict]) -> dict:
    """One claim as plain data: statement, derivations, trust, verdict and checks."""
    return {
        "id": claim.id,
        "lecture": list(claim.lecture),
        "title": claim.title,
        "summary": claim.summary,
        "verdict": verdict(claim, checks),
        "corrected": claim.corrected,
        "qualification": claim.qualification,
        "assumptions": [{"name": a.name, "statement": a.statement} for a in claim.assumptions],
        "symbolic": _symbolic(claim),
        "trust": trust(claim),
        "checks": checks,
    }


def _versions() -> dict:
    return {
        "initproof": metadata.version("initproof"),
        "python": platform.python_version(),
        "sympy": sp.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
    }


#: Seconds per symbolic or numeric operation of the gains table.
GAINS_BUDGET = 5.0


def _as_data(v) -> dict:
    return v.as_data()


def _finite(v: float | None) -> float | None:
    return None if v is None or not math.isfinite(float(v)) else float(v)


def gains_evidence(budget: float = GAINS_BUDGET) -> list[dict]:
    """``evidence.json``'s ``gains``: what each torch ``calculate_gain`` value preserves.

    One row per activation torch names (:func:`derivations._meanfield.framework_gains`),
    without bias: the gain, :math:`\\sigma_w^2 = g^2`, :math:`F(1) = g^2\\,\\mathbb{E}[
    \\phi(z)^2]`, :math:`q^*`, the post-activation std, :math:`\\chi_1`, the phase, the
    gains that keep :math:`q = 1` and that sit at the edge of chaos, and ``preserves``.
    """
    from derivations._meanfield import framework_gains

    rows = []
    for r in framework_gains(budget):
        m = r.mean_field
        rows.append(
            {
                "activation": r.activation,
                "f": r.expression,
                "gain": r.gain,
                "gain_value": r.gain_value,
                "sigma_w2": m.sigma_w2,
                "ratio_at_1": _as_data(r.ratio_at_1),
                "q_star": _as_data(m.q_star),
                "post_std": _as_data(m.post_std),
                "chi1": _as_data(m.chi1),
                "phase": m.phase,
                "variance_gain": _finite(r.variance_gain),
                "critical_gain": _as_data(r.critical_gain),
                "preserves": r.preserves,
                "why": r.why,
                "reference": "torch/nn/init.py, calculate_gain",
            }
        )
    return rows


# --------------------------------------------------------------------------------------
# figures: the claims' figure specs, simulated by the engine
# --------------------------------------------------------------------------------------


def _measure(spec, m, seed: int, quick: bool, simulation: Mapping) -> tuple:
    """The engine's estimates of every observable of measurement ``m`` of figure ``spec``.

    Stream ``seed_for(seed, "figure", <figure id>, *m.key)``; a fixed replicate count
    or the engine's sequential sizing, as the spec states (quick: its second value).
    """
    stream = montecarlo.seed_for(seed, "figure", spec.id, *m.key)
    sizing, k = m.sizing, 1 if quick else 0
    pair = m.scenario.get("kind") == "pair"
    if sizing.replicates is not None and pair:
        return montecarlo.measure_pair_fixed(
            m.scenario,
            m.observables,
            seed=stream,
            replicates=sizing.replicates[k],
            activations=simulation,
        )
    if sizing.replicates is not None:
        return montecarlo.measure_fixed(
            m.scenario,
            m.observables,
            seed=stream,
            replicates=sizing.replicates[k],
            batch=sizing.batch,
            activations=simulation,
        )
    if pair:
        raise ValueError(f"figure {spec.id!r}: a pair measurement needs a replicate count.")
    return montecarlo.measure_many(
        m.scenario,
        m.observables,
        seed=stream,
        precision=sizing.precision[k],
        batch=sizing.batch,
        activations=simulation,
    )


def _point_estimate(point, estimates) -> montecarlo.Estimate:
    """A point's estimate: one observable, or the difference of two independent ones."""
    parts = [estimates[m][o] for m, o in point.of]
    return parts[0] if len(parts) == 1 else montecarlo.difference(*parts)


def _spread_points(spec, s, seed: int, quick: bool, simulation: Mapping) -> list[tuple]:
    """``(x, (middle, low, high), replicates, method)`` of a spread series: quantiles of
    the per-replicate values, from the same run (all of its observables, the same seed)
    as the measurement's estimates; one run per measurement."""
    quantiles = {}
    for m in sorted({m for p in s.points for m, _ in p.of}):
        mm = spec.measurements[m]
        quantiles[m] = montecarlo.replicate_quantiles(
            mm.scenario,
            mm.observables,
            s.spread,
            seed=montecarlo.seed_for(seed, "figure", spec.id, *mm.key),
            replicates=mm.sizing.replicates[1 if quick else 0],
            batch=mm.sizing.batch,
            activations=simulation,
        )
    out = []
    for point in s.points:
        ((m, o),) = point.of
        count = spec.measurements[m].sizing.replicates[1 if quick else 0]
        levels = ", ".join(f"{v:g}" for v in s.spread)
        method = f"quantiles {levels} over R = {count} independent replicates"
        out.append((point.x, quantiles[m][o], count, method))
    return out


def _simulated_series(spec, s, estimates, seed: int, quick: bool, simulation) -> dict:
    """A simulated series as drawn: each point's value and interval from the engine."""
    if s.spread is not None:
        rows = _spread_points(spec, s, seed, quick, simulation)
    else:
        rows = []
        for point in s.points:
            est = _point_estimate(point, estimates)
            ci = est.confidence_interval(spec.level)
            rows.append((point.x, (est.value, ci.low, ci.high), est.n_replicates, est.method))
    if s.exponent is not None:
        rows = [(x, tuple(math.exp(s.exponent * v) for v in t), n, m) for x, t, n, m in rows]
    if spec.yscale == "log":  # a log axis shows positive estimates only
        rows = [r for r in rows if r[1][0] > 0]
    return {
        "label": s.label,
        "kind": "simulation",
        "panel": s.panel,
        "group": s.group,
        "x": [float(r[0]) for r in rows],
        "y": [_finite(r[1][0]) for r in rows],
        "low": [_finite(r[1][1]) for r in rows],
        "high": [_finite(r[1][2]) for r in rows],
        "n_replicates": [int(r[2]) for r in rows],
        "methods": [r[3] for r in rows],
    }


def _curve(c) -> dict:
    return {
        "label": c.label,
        "kind": c.kind,
        "panel": c.panel,
        "group": c.group,
        "x": list(c.x),
        "y": list(c.y),
    }


def _span(values: list, form: str) -> str:
    """``"a"`` for one value, ``"a–b"`` for the least and the largest of several (one
    technical word, so a caption keeps one catalogue key whatever the numbers)."""
    if not values:
        return ""
    low, high = form.format(values[0]), form.format(values[-1])
    return low if low == high else f"{low}–{high}"


def _caption(spec, estimates, quick: bool) -> str:
    """The spec's caption with the replicate counts and deviations of the estimates."""
    counts = sorted(
        {
            estimates[m][o].n_replicates
            for s in spec.series
            if isinstance(s, Simulated) and s.spread is None
            for p in s.points
            for m, o in p.of
        }
    )
    replicates = _span(counts, "{}")
    k = 1 if quick else 0
    aims = {m.sizing.precision[k] for m in spec.measurements if m.sizing.precision}
    lines = []
    for d in spec.deviations:
        (s,) = [s for s in spec.series if s.label == d.series and isinstance(s, Simulated)]
        est = _point_estimate(s.points[-1], estimates)
        ci = est.confidence_interval(spec.level)
        lines.append(f"{est.value - d.theory:+.4f} ± {(ci.high - ci.low) / 2:.4f} at {d.where}")
    return (
        spec.caption.replace("{replicates}", replicates)
        .replace("{precision}", _span(sorted(aims), "{:.0%}"))
        .replace("{deviations}", "; ".join(lines))
    )


def simulate_figure(spec, seed: int, *, quick: bool = False) -> dict:
    """One figure spec as plain data: its curves, and its simulated series measured by the
    engine (each point with the engine's interval at the spec's level, its replicate count
    and method). The format is that of :func:`report._figures.render_figure`."""
    simulation = derivations.simulation_activations()
    estimates = [_measure(spec, m, seed, quick, simulation) for m in spec.measurements]
    series = [
        _curve(s)
        if isinstance(s, Curve)
        else _simulated_series(spec, s, estimates, seed, quick, simulation)
        for s in spec.series
    ]
    out = {
        "id": spec.id,
        "title": spec.title,
        "caption": _caption(spec, estimates, quick),
        "xlabel": spec.xlabel,
        "ylabel": spec.ylabel,
        "xscale": spec.xscale,
        "yscale": spec.yscale,
    }
    if spec.ylim is not None:
        out["ylim"] = list(spec.ylim)
    return {**out, "panels": list(spec.panels), "series": series}


def simulate_figures(specs, seed: int, *, quick: bool = False) -> list[dict]:
    """:func:`simulate_figure` of every spec, in order."""
    return [simulate_figure(spec, seed, quick=quick) for spec in specs]


def figure_data(seed: int, *, quick: bool = False) -> list[dict]:
    """Every figure of the registered claims as plain, JSON-serializable data.

    Parameters
    ----------
    seed : int
        Root seed; each measurement draws from
        ``montecarlo.seed_for(seed, "figure", <figure id>, *<measurement key>)``.
    quick : bool
        The specs' quick sizing (fewer replicates, a looser precision target).
    """
    return simulate_figures(derivations.figures(derivations.claims()), seed, quick=quick)
