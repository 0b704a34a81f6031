"""``initproof bench``: the engine against baselines with its own layout, in one run.

Every ratio compares two timings taken in the same process, a few seconds apart and
interleaved, each the best of a few repeats, so that a shared machine moves both
sides; both sides run with the engine's allocator setting
(:func:`montecarlo.retain_freed_memory`). The load average is printed first: on a
loaded machine every number is a lower bound on what the engine does alone, and a
baseline whose best run is not confirmed by its second best within
:data:`SPREAD_LIMIT` prints a warning in place of its ratio.

Printed lines (one each, in this order, each followed by a ``#`` line saying what
it measured)::

    load_average X               1-minute load average (os.getloadavg) and cores
    gemm_ratio X                 engine forward+backward FLOP/s / the same GEMMs, same
                                 threading layout (one single-thread GEMM per worker,
                                 run concurrently)
    user_loop_speedup_probe X    a competent batched loop's time / the engine's time,
                                 one-step probe, same half-width, summed over seeds
    user_loop_speedup_family X   the same, every per-layer observable of a depth-10
                                 tanh network at once
    small_width_ratio X          engine FLOP/s at width 16 / at width 512 (same depth)
    lecture_probes_seconds X     wall time of every registered probe (probes only)
    figures_seconds X            wall time of the report's figures
"""

from __future__ import annotations

import functools
import math
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from scipy import stats
from threadpoolctl import threadpool_limits

import derivations
import montecarlo as mc

#: The activation table's NumPy side, what the engine simulates every named activation with.
SIMULATION = derivations.simulation_activations()
WIDTH, DEPTH = 512, 50
SMALL = 16
#: A baseline whose second-best repeat is slower than its best by more than this
#: (:func:`_spread`) is too disturbed to divide by.
SPREAD_LIMIT = 0.20
#: Target relative half-width (99%) of the user-loop comparisons: small enough that
#: both sides need well over the engine's 32-replicate pilot.
PROBE_TARGET, FAMILY_TARGET = 0.001, 0.01
FAMILY_WIDTH, FAMILY_DEPTH = 256, 10


def _time(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _interleaved(a: Callable, b: Callable, repeats: int) -> tuple[list[float], list[float]]:
    """``repeats`` timings of each, alternating, so that a change of load hits both."""
    ta, tb = [], []
    for _ in range(repeats):
        ta.append(_time(a))
        tb.append(_time(b))
    return ta, tb


def _spread(times: list[float]) -> float:
    """How far the second-best time is above the best: a best run that no other run
    comes near may be the one undisturbed run, or a fluke, and is not divided by.
    A disturbance slows runs down, so the best of a few is the estimate and a second
    run close to it confirms that the machine gave it its cores."""
    best, second = sorted(times)[:2]
    return second / best - 1


def _mlp(width: int, depth: int) -> mc.MLPScenario:
    return mc.mlp_scenario(
        {
            "widths": [width] * (depth + 1),
            "weights": {"law": "normal", "std": math.sqrt(2 / width)},
            "activation": "relu",
            "input": {"law": "normal", "mean": 0.0, "std": 1.0},
        },
        SIMULATION,
    )


def _engine_run(width: int, depth: int, replicates: int) -> tuple[Callable[[], object], float]:
    """The engine's forward+backward pass, sampling included, and its FLOP count."""
    sc = _mlp(width, depth)
    batch = mc.choose_batch(sc.widths)
    seed = mc.seed_for(0, "bench", str(width))

    def run():
        mc.simulate_mlp(
            sc, replicates, batch, seed, backward=True, preactivation=False, activations=SIMULATION
        )

    return run, replicates * depth * 2 * (2 * width * width * batch)


def load_average() -> tuple[float, str]:
    one, five, fifteen = os.getloadavg()
    cores = os.cpu_count() or 1
    busy = "; the machine is busy: every timing below is disturbed" if one > 0.5 * cores else ""
    return one, f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {cores} cores{busy}"


def gemm_ratio(repeats: int = 5) -> tuple[float, str]:
    """The engine's FLOP/s against the same GEMMs in the engine's own threading layout.

    The engine runs one replicate per worker, each worker a single-threaded GEMM per
    layer; the baseline runs, on as many concurrent threads with BLAS held to one
    thread each, the same products without sampling or statistics: per worker,
    ``depth`` distinct ``width x width`` matrices, each multiplying a ``width x batch``
    block forward (``W @ x``) and transposed backward (``W.T @ x``).
    """
    workers = min(mc.WORKERS, os.cpu_count() or 1)
    run, flops = _engine_run(WIDTH, DEPTH, mc.WORKERS)
    batch = mc.choose_batch(_mlp(WIDTH, DEPTH).widths)
    rng = np.random.default_rng(0)
    operands = [
        (
            [rng.standard_normal((WIDTH, WIDTH)) for _ in range(DEPTH)],
            rng.standard_normal((WIDTH, batch)),
        )
        for _ in range(mc.WORKERS)
    ]

    def worker(operand):
        ws, x = operand
        for w in ws:
            w @ x
        for w in reversed(ws):
            w.T @ x

    def raw():
        with threadpool_limits(1, user_api="blas"), ThreadPoolExecutor(workers) as pool:
            list(pool.map(worker, operands))

    engine_t, raw_t = _interleaved(run, raw, repeats)
    engine, gemm = flops / min(engine_t), flops / min(raw_t)
    detail = (
        f"engine {engine / 1e9:.3g} GFLOP/s, same-layout GEMM {gemm / 1e9:.3g} GFLOP/s "
        f"({workers} threads x 1 BLAS thread), batch {batch}, best of {repeats}; "
        f"baseline's second best {_spread(raw_t):.0%} above its best"
    )
    if _spread(raw_t) > SPREAD_LIMIT:
        return math.nan, f"WARNING: baseline disturbed, no ratio; {detail}"
    return engine / gemm, detail


def small_width_ratio(repeats: int = 3) -> tuple[float, str]:
    small_run, small_flops = _engine_run(SMALL, DEPTH, 512)
    wide_run, wide_flops = _engine_run(WIDTH, DEPTH, mc.WORKERS)
    small_t, wide_t = _interleaved(small_run, wide_run, repeats)
    small, wide = small_flops / min(small_t), wide_flops / min(wide_t)
    b_small, b_wide = (mc.choose_batch(_mlp(n, DEPTH).widths) for n in (SMALL, WIDTH))
    return small / wide, (
        f"width {SMALL}: {small / 1e9:.3g} GFLOP/s (batch {b_small}); "
        f"width {WIDTH}: {wide / 1e9:.3g} GFLOP/s (batch {b_wide})"
    )


def _half_width_met(values: np.ndarray, target: float) -> bool:
    """The user's stopping rule: 99% t half-width of the replicate means <= target x |mean|."""
    r = values.shape[0]
    if r < 2:
        return False
    mean, sd = values.mean(axis=0), values.std(axis=0, ddof=1)
    half = stats.t.ppf(0.995, r - 1) * sd / math.sqrt(r)
    return bool(np.all(half <= target * np.abs(mean)))


def user_loop_probe(n: int, target: float, seed: int) -> int:
    """A competent user's estimate of ``Var[h^1]`` of a linear layer ``n x n``.

    One fresh ``W`` per replicate, a batch of ``n`` inputs through it with one GEMM,
    the variance of the entries as the replicate's value, and a stop as soon as the
    99% half-width over replicates reaches ``target`` (checked after every replicate).
    Returns the replicates used.
    """
    rng = np.random.default_rng(seed)
    values = []
    while not _half_width_met(np.array(values), target):
        w = rng.standard_normal((n, n)) / math.sqrt(n)
        h = w @ rng.standard_normal((n, n))
        values.append(h.var())
    return len(values)


def user_loop_family(n: int, depth: int, batch: int, target: float, seed: int) -> int:
    """A competent user's estimate of every per-layer second moment of a tanh network.

    Per replicate: fresh weights ``N(0, 1/n)``, one forward pass of ``batch`` inputs
    (one GEMM per layer, pre-activations kept), one backward pass from a Gaussian
    upstream gradient, and in the same pass every observable: the second moment of
    ``h^t``, the variance of the pre-activation ``z^t`` and the second moment of the
    gradient ``dl/dh^{t-1}`` at every layer. Stops when all of them reach ``target``.
    Returns the replicates used.
    """
    rng = np.random.default_rng(seed)
    rows = []
    while not _half_width_met(np.array(rows), target):
        h = rng.standard_normal((n, batch))
        ws, outs, row = [], [], []
        for _ in range(depth):
            w = rng.standard_normal((n, n)) / math.sqrt(n)
            z = w @ h
            h = np.tanh(z)
            ws.append(w)
            outs.append(h)
            row += [np.mean(h * h), z.var()]
        g = rng.standard_normal((n, batch))
        for w, out in zip(reversed(ws), reversed(outs), strict=True):
            g = w.T @ (g * (1 - out * out))
            row.append(np.mean(g * g))
        rows.append(row)
    return len(rows)


def _family_observables(depth: int) -> list[dict]:
    obs = []
    for t in range(1, depth + 1):
        obs.append({"direction": "forward", "moment": "m2", "layer": t})
        obs.append({"direction": "forward", "of": "preactivation", "moment": "var", "layer": t})
        obs.append({"direction": "backward", "moment": "m2", "layer": t - 1})
    return obs


@dataclass(frozen=True)
class Comparison:
    """Both sides of a user-loop comparison, one entry per seed.

    Each side's seconds are the best of :data:`REPEATS` runs on that seed (the two
    sides interleaved); ``repeat_spread`` is the largest :func:`_spread`, over
    the seeds, of the user loop's repeated runs of one seed (the same work each time),
    which says how disturbed the machine was.
    """

    user: tuple[float, ...]
    engine: tuple[float, ...]
    user_replicates: tuple[int, ...]
    engine_replicates: tuple[int, ...]
    repeat_spread: float


#: Runs of each side per seed (the best is kept), and seeds per comparison: the replicate
#: count a stopping rule ends at varies by seed (its standard deviation is about 13% of
#: its mean in both cases here), so one seed per side would compare luck, and the ratio
#: is of the summed times over the seeds.
REPEATS, SEEDS = 3, 5


def _compare(user: Callable[[int], int], engine: Callable[[int], tuple]) -> Comparison:
    """Run ``user(seed)`` and ``engine(seed)`` on :data:`SEEDS` seeds each."""
    user_t, engine_t, user_r, engine_r, spreads = [], [], [], [], []
    for seed in range(SEEDS):
        runs, et = [], []
        for _ in range(REPEATS):
            t = time.perf_counter()
            r = user(seed + 1)
            runs.append((time.perf_counter() - t, r))
            t = time.perf_counter()
            est = engine(seed)
            et.append(time.perf_counter() - t)
        seconds, r = min(runs)
        spreads.append(_spread([run[0] for run in runs]))
        user_t.append(seconds)
        user_r.append(r)
        engine_t.append(min(et))
        engine_r.append(est[0].n_replicates)
    return Comparison(tuple(user_t), tuple(engine_t), tuple(user_r), tuple(engine_r), max(spreads))


def _speedup(c: Comparison) -> tuple[float, str]:
    """Summed user-loop time over summed engine time: expected time to the target."""
    ratio = sum(c.user) / sum(c.engine)
    detail = (
        f"user loop {sum(c.user) / SEEDS:.3g} s (mean R {np.mean(c.user_replicates):.0f}), "
        f"engine {sum(c.engine) / SEEDS:.3g} s (mean R {np.mean(c.engine_replicates):.0f}), "
        f"means over {SEEDS} seeds, each the best of {REPEATS}; user loop's second best up "
        f"to {c.repeat_spread:.0%} above its best"
    )
    if c.repeat_spread > SPREAD_LIMIT:
        return math.nan, f"WARNING: baseline disturbed, no ratio; {detail}"
    return ratio, detail


def _probe() -> tuple[int, Callable[[int], tuple]]:
    """Width of the one-step probe, and the engine's run of it on a seed."""
    n = WIDTH
    scenario = {
        "widths": [n, n],
        "weights": {"law": "normal", "std": 1 / math.sqrt(n)},
        "activation": "linear",
    }
    observable = {"direction": "forward", "moment": "var", "layer": 1}

    def engine(seed: int):
        return mc.measure_many(
            scenario,
            [observable],
            seed=mc.seed_for(seed, "bench-user-probe"),
            precision=PROBE_TARGET,
            activations=SIMULATION,
        )

    return n, engine


@functools.cache
def _probe_comparison() -> Comparison:
    n, engine = _probe()
    return _compare(lambda seed: user_loop_probe(n, PROBE_TARGET, seed), engine)


def user_loop_speedup_probe() -> tuple[float, str]:
    """Engine against :func:`user_loop_probe`, to the same 99% half-width."""
    ratio, detail = _speedup(_probe_comparison())
    return ratio, f"Var[h^1], width {WIDTH}, to {PROBE_TARGET:.2%}: {detail}"


def _family() -> tuple[int, int, int, Callable[[int], tuple]]:
    """Width, depth and batch of the family case, and the engine's run of it on a seed."""
    n, depth = FAMILY_WIDTH, FAMILY_DEPTH
    scenario = {
        "widths": [n] * (depth + 1),
        "weights": {"law": "normal", "std": 1 / math.sqrt(n)},
        "activation": "tanh",
    }
    obs = _family_observables(depth)

    def engine(seed: int):
        return mc.measure_many(
            scenario,
            obs,
            seed=mc.seed_for(seed, "bench-user-family"),
            precision=FAMILY_TARGET,
            activations=SIMULATION,
        )

    return n, depth, mc.choose_batch(tuple(scenario["widths"])), engine


@functools.cache
def _family_comparison() -> Comparison:
    n, depth, batch, engine = _family()
    return _compare(lambda seed: user_loop_family(n, depth, batch, FAMILY_TARGET, seed), engine)


def user_loop_speedup_family() -> tuple[float, str]:
    """Engine (:func:`montecarlo.measure_many`) against :func:`user_loop_family`."""
    ratio, detail = _speedup(_family_comparison())
    batch = mc.choose_batch((FAMILY_WIDTH,) * (FAMILY_DEPTH + 1))
    return ratio, (
        f"{3 * FAMILY_DEPTH} observables of a depth-{FAMILY_DEPTH} tanh network, width "
        f"{FAMILY_WIDTH}, batch {batch}, to {FAMILY_TARGET:.2%}: {detail}"
    )


def lecture_probes_seconds() -> tuple[float, str]:
    from report._evidence import measure_probes

    claims = derivations.claims()
    t = time.perf_counter()
    for c in claims:
        measure_probes(c.id, c.probes, 0, activations=SIMULATION)
    seconds = time.perf_counter() - t
    n = sum(len(c.probes) for c in claims)
    return seconds, f"{n} probes of {len(claims)} claims (simulation only)"


def figures_seconds() -> tuple[float, str]:
    from report._evidence import figure_data

    t = time.perf_counter()
    figs = figure_data(0)
    return time.perf_counter() - t, f"{len(figs)} figures of the report"


def run(print_=print) -> dict[str, float]:
    """Run every measurement and print one ``name value`` line each (details on ``#`` lines)."""
    out = {}
    # the engine's allocator setting, made before any timing: both sides run with it
    mc.retain_freed_memory()
    _probe_comparison.cache_clear()
    _family_comparison.cache_clear()
    for name, fn in (
        ("load_average", load_average),
        ("gemm_ratio", gemm_ratio),
        ("user_loop_speedup_probe", user_loop_speedup_probe),
        ("user_loop_speedup_family", user_loop_speedup_family),
        ("small_width_ratio", small_width_ratio),
        ("lecture_probes_seconds", lecture_probes_seconds),
        ("figures_seconds", figures_seconds),
    ):
        value, detail = fn()
        out[name] = value
        print_(f"{name} {value:.3g}")
        print_(f"#   {detail}")
    print_(f"#   {load_average()[1]} (at the end)")
    return out
