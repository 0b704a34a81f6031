"""``initproof bench``: throughput ratios of the engine, measured in one run.

Every figure is a ratio of two timings taken in the same process, on the same
machine, a few seconds apart, so a shared and noisy machine moves both sides. Each
timing is the best of a few repeats.

Printed lines (one each, in this order)::

    gemm_ratio X             engine forward+backward FLOP/s / raw numpy GEMM FLOP/s
    naive_speedup X          naive time to a CI half-width / engine time to the same
    small_width_ratio X      FLOP/s at width 16 / FLOP/s at width 512 (same depth)
    lecture_probes_seconds X wall time of every registered probe at default precision
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np
from scipy import stats

import montecarlo as mc

WIDTH, DEPTH = 512, 50
SMALL = 16


def _best(fn: Callable[[], object], repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def _mlp(width: int, depth: int) -> mc.MLPScenario:
    return mc.mlp_scenario(
        {
            "widths": [width] * (depth + 1),
            "weights": {"law": "normal", "std": math.sqrt(2 / width)},
            "activation": "relu",
            "input": {"law": "normal", "mean": 0.0, "std": 1.0},
        }
    )


def _engine_run(width: int, depth: int, replicates: int) -> tuple[Callable[[], object], float]:
    """The engine's forward+backward pass, sampling included, and its FLOP count."""
    sc = _mlp(width, depth)
    batch = mc.choose_batch(sc.widths)
    seed = mc.seed_for(0, "bench", str(width))

    def run():
        mc.simulate_mlp(sc, replicates, batch, seed, backward=True, preactivation=False)

    return run, replicates * depth * 2 * (2 * width * width * batch)


def _engine_flops(width: int, depth: int, replicates: int) -> tuple[float, int]:
    """FLOP/s of the engine's forward+backward pass, sampling included."""
    run, flops = _engine_run(width, depth, replicates)
    return flops / _best(run), mc.choose_batch(_mlp(width, depth).widths)


def gemm_ratio(repeats: int = 5) -> tuple[float, str]:
    """Engine and raw GEMM timed alternately, ``repeats`` times each; best of each."""
    run, flops = _engine_run(WIDTH, DEPTH, 2)
    batch = mc.choose_batch(_mlp(WIDTH, DEPTH).widths)
    rng = np.random.default_rng(0)
    w = rng.standard_normal((WIDTH, WIDTH))
    x = rng.standard_normal((WIDTH, batch))
    reps = 2 * DEPTH

    def raw():
        for _ in range(reps):
            w @ x

    engine_s, raw_s = math.inf, math.inf
    for _ in range(repeats):
        engine_s = min(engine_s, _best(run, 1))
        raw_s = min(raw_s, _best(raw, 1))
    engine = flops / engine_s
    gemm = reps * 2 * WIDTH * WIDTH * batch / raw_s
    return (
        engine / gemm,
        f"engine {engine / 1e9:.3g} GFLOP/s, numpy GEMM {gemm / 1e9:.3g} GFLOP/s, batch {batch}",
    )


def small_width_ratio() -> tuple[float, str]:
    small, b_small = _engine_flops(SMALL, DEPTH, 512)
    wide, b_wide = _engine_flops(WIDTH, DEPTH, 2)
    return small / wide, (
        f"width {SMALL}: {small / 1e9:.3g} GFLOP/s (batch {b_small}); "
        f"width {WIDTH}: {wide / 1e9:.3g} GFLOP/s (batch {b_wide})"
    )


def naive_speedup() -> tuple[float, str]:
    """Time to the same 99% half-width on ``Var[h^1_i]``, width 512, naive vs engine.

    The engine runs at default precision and reaches some half-width (its replicate
    floor often takes it below the 1% target). The naive estimator draws a fresh
    network for every input vector (one matvec per draw) and averages the per-draw
    mean square; its time to the engine's half-width is its time per draw times the
    draws that half-width needs, from the spread its timed draws showed.
    """
    scenario = {
        "widths": [WIDTH, WIDTH],
        "weights": {"law": "normal", "std": 1 / math.sqrt(WIDTH)},
        "activation": "linear",
        "input": {"law": "normal", "mean": 0.0, "std": 1.0},
    }
    observable = {"direction": "forward", "moment": "var", "layer": 1}
    target = mc.DEFAULT_PRECISION
    est = None

    def engine_run():
        nonlocal est
        est = mc.measure(scenario, observable, seed=mc.seed_for(0, "bench-naive"))

    engine_time = _best(engine_run)
    rng = np.random.default_rng(1)
    draws = 200
    values = np.empty(draws)
    t = time.perf_counter()
    for k in range(draws):
        w = rng.standard_normal((WIDTH, WIDTH)) / math.sqrt(WIDTH)
        h = w @ rng.standard_normal(WIDTH)
        values[k] = np.mean(h * h)
    per_draw = (time.perf_counter() - t) / draws
    # the same half-width as the engine reached (at least the target precision)
    reached = min(target, est.precision())
    z = stats.norm.ppf(0.995)
    need = (z * values.std(ddof=1) / (reached * values.mean())) ** 2
    naive_time = need * per_draw
    return naive_time / engine_time, (
        f"to a 99% half-width of {reached:.3g} relative: naive {need:.0f} draws x "
        f"{per_draw * 1e3:.3g} ms = {naive_time:.3g} s (from {draws} timed draws); "
        f"engine {engine_time:.3g} s"
    )


def lecture_probes_seconds() -> tuple[float, str]:
    import derivations

    from ._evidence import evidence

    claims = derivations.claims()
    t = time.perf_counter()
    ev = evidence(0, claims=claims)
    seconds = time.perf_counter() - t
    return seconds, f"{ev['n_checks']} probes of {len(claims)} claims"


def run(print_=print) -> dict[str, float]:
    """Run every measurement and print one ``name value`` line each (details on ``#`` lines)."""
    out = {}
    for name, fn in (
        ("gemm_ratio", gemm_ratio),
        ("naive_speedup", naive_speedup),
        ("small_width_ratio", small_width_ratio),
        ("lecture_probes_seconds", lecture_probes_seconds),
    ):
        value, detail = fn()
        out[name] = value
        print_(f"{name} {value:.3g}")
        print_(f"#   {detail}")
    return out
