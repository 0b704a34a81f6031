"""The simulation itself: sample weights, multiply, apply the activation, backpropagate.

Each network replicate draws its own weights; a batch of inputs passes through one
sampled network as a matrix-matrix product, and replicates are stacked into batched
products (``(r, n_t, n_{t-1}) @ (r, n_{t-1}, B)``), so small networks do not pay
Python overhead per replicate. A run is split into chunks of replicates, each with
its own seeds, and chunks run on one worker thread per core with single-threaded
BLAS, so that sampling and elementwise passes use every core, not only the products.

Memory streams over depth. The forward pass keeps one layer of activations; when a
gradient is observed, it also keeps the layer inputs at ``~sqrt(depth)`` checkpoints,
and the backward pass recomputes each segment from its checkpoint (weights are
regenerated from the layer's own seed), so memory is
``O(sqrt(depth) x width x batch + segment x width^2)`` per replicate. When the whole
network fits in :data:`STORE_BYTES`, one segment is stored and nothing is recomputed.

Every layer allocates fresh arrays of a few megabytes. With glibc's default, adaptive
thresholds such blocks are handed back to the system when freed and page-faulted in
again by the next layer, which cost a quarter of a run's time here; the first run
therefore raises the process's trim and mmap thresholds (:func:`retain_freed_memory`),
so that freed blocks stay in the heap for reuse.
"""

from __future__ import annotations

import ctypes
import functools
import itertools
import math
import os
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import scipy.special
from threadpoolctl import ThreadpoolController

from ._scenario import (
    IDENTITY,
    MLPScenario,
    ProductScenario,
    ScalarScenario,
    WeightLaw,
    activation_functions,
)
from ._seeding import child

#: Per-site statistics, in this order, kept for every replicate: the mean and second
#: moment of the entries; the fractions of entries that are non-finite, infinite
#: (overflowed), exactly zero and subnormal (underflowed to, or below, the smallest
#: normal number); and the mean over inputs of the log of each input's mean square.
STATS = ("m1", "m2", "nonfinite", "overflow", "zero", "subnormal", "log_m2")
#: Statistics computed only on request (``nan`` otherwise): each costs a pass.
FRACTIONS, LOG_NORM = ("zero", "subnormal"), ("log_m2",)
_COL = {name: k for k, name in enumerate(STATS)}
#: Chunks of replicates a run is split into when it can be (at most this many run at
#: once). A constant rather than the machine's core count, so that the chunk layout,
#: and with it every simulated number, is the same on every machine.
WORKERS = 2
#: Memory for one step of a chunk of replicates: for an MLP, one layer's weights and
#: its input, pre-activation and output; for a chain of products, one matrix of each
#: chain; for scalar draws, the draws and their images. A core's share of the L2 cache
#: of the reference machine, so that a step's product, activation and statistics read
#: their operands from cache; larger chunks go to memory for every pass, smaller ones
#: pay Python overhead per replicate. A constant rather than the machine's cache size,
#: so that the chunks, and with them every simulated number, are the same on every
#: machine.
LAYER_BYTES = 2 * 2**20
#: Memory for the stored segments (weights and pre-activations) of the backward pass,
#: shared by the chunks in flight.
STORE_BYTES = 512 * 2**20
_BLAS = ThreadpoolController()


def _blas_limit(threads: int):
    return _BLAS.limit(limits=threads, user_api="blas")


def rng(seed: np.random.SeedSequence) -> np.random.Generator:
    """The engine's generator: SFC64, the fastest of NumPy's bit generators here."""
    return np.random.Generator(np.random.SFC64(seed))


_TWO_PI = np.float32(2 * math.pi)


def standard_normal(
    gen: np.random.Generator, shape: int | tuple[int, ...], dtype: np.dtype = np.float64
) -> np.ndarray:
    r"""Standard normal draws by the Box-Muller transform.

    .. math::

        (r\cos\theta,\ r\sin\theta), \qquad r = \sqrt{-2\log(1 - u)},
        \quad \theta = 2\pi v,

    with :math:`u, v` independent uniforms on :math:`[0, 1)`, gives two independent
    standard normals [1]_. ``u`` is a float64 uniform (53 bits: the radius reaches
    :math:`\sqrt{106\log 2} = 8.57`, beyond which a normal falls with probability
    :math:`10^{-17}`); ``v`` is a float32 uniform, so the angle takes :math:`2^{24}`
    values and its sine and cosine are NumPy's vectorized float32 ones (its float64
    sine is not vectorized). Half as long per draw as NumPy's ziggurat on the reference
    machine (5.1 against 10.2 ns, SFC64, best of 15 on :math:`2^{18}` draws).

    References
    ----------
    .. [1] G. E. P. Box and M. E. Muller, "A note on the generation of random normal
       deviates", Ann. Math. Statist. 29 (1958), 610-611.
    """
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    n = math.prod(shape)
    m = (n + 1) // 2
    out = np.empty(2 * m)
    r = out[:m]
    gen.random(out=r)
    np.subtract(1.0, r, out=r)
    np.log(r, out=r)
    r *= -2.0
    np.sqrt(r, out=r)
    theta = gen.random(m, dtype=np.float32)
    theta *= _TWO_PI
    sine = np.sin(theta)
    np.cos(theta, out=theta)
    np.multiply(r, sine, out=out[m:])
    np.multiply(r, theta, out=r)
    return out[:n].reshape(shape).astype(dtype, copy=False)


def sample_weights(
    rng: np.random.Generator, law: WeightLaw, shape: tuple[int, ...], dtype: np.dtype
) -> np.ndarray:
    """Draw an array from ``law`` in its native parameters.

    The truncated normal is drawn by inverse CDF on ``[Phi(a), Phi(b)]``.
    """
    work = np.float64 if np.dtype(dtype) == np.float64 else np.float32
    if law.law == "normal":
        w = standard_normal(rng, shape, work)
        w *= work(law.std)
    elif law.law == "uniform":
        w = rng.random(shape, dtype=work)
        w *= work(2 * law.bound)
        w -= work(law.bound)
    else:
        lo, hi = scipy.special.ndtr(law.a), scipy.special.ndtr(law.b)
        u = rng.uniform(lo, hi, shape)
        w = (scipy.special.ndtri(u) * law.std).astype(work, copy=False)
    return w.astype(dtype, copy=False)


def site_stats(x: np.ndarray, fractions: bool = False, lognorm: bool = False) -> np.ndarray:
    """Per-replicate :data:`STATS` of ``x``, in float64.

    ``x`` has shape ``(r, entries, inputs)``. Moments of a replicate with any
    non-finite entry are ``nan``; the non-finite and overflow fractions say how many.
    ``fractions`` adds the zero and subnormal fractions (in ``x``'s own dtype),
    ``lognorm`` the mean over inputs of :math:`\\log(\\lVert x_{\\cdot b}\\rVert^2 / n)`.
    """
    r = x.shape[0]
    flat = x.reshape(r, -1)
    size = flat.shape[1]
    x64 = flat if flat.dtype == np.float64 else flat.astype(np.float64)
    out = np.full((r, len(STATS)), np.nan)
    out[:, _COL["nonfinite"] : _COL["overflow"] + 1] = 0.0
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        # einsum's own loops, not BLAS: the sum's order does not depend on BLAS threads,
        # and einsum releases the GIL (a vector product, np.vecdot, holds it)
        out[:, _COL["m2"]] = np.einsum("rk,rk->r", x64, x64) / size
        out[:, _COL["m1"]] = np.einsum("rk->r", x64) / size
        bad = ~np.isfinite(out[:, _COL["m2"]])
        if bad.any():
            out[bad, _COL["nonfinite"]] = 1.0 - np.isfinite(flat[bad]).mean(axis=1)
            out[bad, _COL["overflow"]] = np.isinf(flat[bad]).mean(axis=1)
            out[bad, _COL["m1"]] = out[bad, _COL["m2"]] = np.nan
        if fractions:
            size_ = np.float64(size)
            a = np.abs(flat)
            out[:, _COL["zero"]] = 1.0 - np.count_nonzero(flat, axis=1) / size_
            tiny = np.finfo(flat.dtype).tiny
            out[:, _COL["subnormal"]] = np.count_nonzero((a < tiny) & (a > 0), axis=1) / size_
        if lognorm:
            x3 = x64.reshape(x.shape)
            per_input = np.einsum("rnb,rnb->rb", x3, x3) / x.shape[1]
            out[:, _COL["log_m2"]] = np.log(per_input).mean(axis=1)
    return out


@dataclass(frozen=True)
class MLPStats:
    """Per-replicate statistics at every site of an MLP run.

    Arrays of shape ``(replicates, depth + 1, len(STATS))``; ``preactivation[:, 0]``
    and, when no gradient was run, ``backward`` are ``nan``.
    """

    forward: np.ndarray
    preactivation: np.ndarray
    backward: np.ndarray


def _activation(
    name: str, activations: Mapping[str, tuple[Callable, ...]] | None
) -> tuple[Callable, ...]:
    """``(f, f')``, or ``(f, f', f' from the output)``: the caller's (see
    :func:`~montecarlo._scenario.activation_functions`)."""
    return activation_functions(name, activations)


def _backward_factor(
    name: str, residual: bool, activations: Mapping[str, tuple[Callable, ...]] | None
) -> tuple[bool, Callable | None]:
    """``(from_output, factor)``: whether the backward pass reads ``f'`` from ``h``.

    A caller's activation ``(f, f', g)`` gives ``g``, ``f'`` written from the output
    ``h = f(z)``, which must equal ``f'(z)`` bit for bit (the backward pass then keeps
    the output it already has instead of recomputing ``f`` from ``z``); ``(f, f')``
    has none. The built-in identity has factor one: no product (``None``).
    """
    given = activation_functions(name, activations)
    if given is IDENTITY:
        return True, None
    if residual or len(given) < 3 or given[2] is None:
        return False, given[1]
    return True, given[2]


#: Cost of drawing one normal weight (:func:`standard_normal`), in multiply-adds of a
#: single-threaded float64 product: on the two-core reference machine, 4.8-5.0 ns per
#: draw (SFC64, 2^18 draws) against 0.029 ns per multiply-add (a 512-cube product on
#: one thread), both best of 20 on an idle machine.
DRAW_COST = 170


def choose_batch(widths: tuple[int, ...]) -> int:
    r"""Inputs per sampled network, balancing sampling cost against statistical spread.

    A replicate's spread has a part from its inputs, shrinking like ``1/B``, and a
    part from its weights. Narrow networks: the weights' part grows with depth ``t``
    (deep layers align the inputs, so more of them add little) and the batch that
    minimizes cost times spread scales like ``1/sqrt(t)``: 512 for one layer, bounded
    below by 128. Wide networks (256 or more): per layer of width ``n`` with weights of
    variance ``1/n``, the weights' part of the relative variance of the mean square is
    ``2/n^2`` (a mean of ``n^2`` squared weights), and the inputs' part is
    ``4/(nB)``: for a Gaussian input :math:`\operatorname{Var}[x^\top A x] =
    2\operatorname{tr}A^2` with :math:`A = W^\top W`, and
    :math:`\operatorname{tr}A^2 \approx 2n` (the second moment of the
    Marchenko-Pastur law of a square matrix is 2). So the inputs' part is about
    ``2n/B`` times the weights'. A replicate costs about ``n^2 (B + c)``, with ``c``
    the cost of drawing one weight in multiply-adds of a single-threaded product, so
    cost times spread, ``(B + c)(1 + 2n/B)``, is least near ``B = sqrt(2 c n)``. The
    rule takes :data:`DRAW_COST` for ``c``: 256 at width 256, 512 at width 512 and
    1024, rounded to a power of two and kept in ``[128, 512]``. A smaller batch gives
    sampling a larger share of the time, so the engine's FLOP/s against raw products
    (``initproof bench``) falls.

    >>> choose_batch((512, 512)), choose_batch((256,) * 11), choose_batch((64, 64))
    (512, 256, 512)
    """
    n = max(widths)
    if n >= 256:
        return int(min(512, max(128, 2 ** round(math.log2(math.sqrt(2 * DRAW_COST * n))))))
    depth = len(widths) - 1
    return int(max(128, 2 ** round(math.log2(512 / math.sqrt(depth)))))


def _draw(seed: np.random.SeedSequence, sc: MLPScenario, t: int, r: int, dtype: np.dtype):
    """Layer ``t``'s weights (and biases) for ``r`` replicates, from the layer's own stream."""
    gen = rng(child(seed, t))
    w = sample_weights(gen, sc.weights[t - 1], (r, sc.widths[t], sc.widths[t - 1]), dtype)
    b = None
    if sc.biases is not None:
        b = sample_weights(gen, sc.biases[t - 1], (r, sc.widths[t], 1), dtype)
    return w, b


def chunk_layout(n_replicates: int, size: int) -> list[tuple[int, int]]:
    """``(first, count)`` of each chunk: at least :data:`WORKERS` chunks when possible."""
    size = max(1, min(size, math.ceil(n_replicates / WORKERS)))
    return [(lo, min(size, n_replicates - lo)) for lo in range(0, n_replicates, size)]


#: Multiply-adds below which a run's chunks run one after the other: starting and
#: joining worker threads costs more than such a run gains from a second core.
SERIAL_MACS = 4e6


#: glibc's ``mallopt`` parameters: memory freed at the top of the heap is kept up to
#: :data:`STORE_BYTES` (the most the engine holds at once), and blocks below 32 MiB
#: (glibc's largest mmap threshold) come from the heap, not from fresh mappings.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


@functools.cache
def retain_freed_memory() -> bool:
    """Keep freed memory in the process for reuse (glibc only; once per process).

    Returns whether the allocator took the setting. The numbers a run produces do not
    depend on it; only the time spent page-faulting does.
    """
    try:
        mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    except (OSError, TypeError):  # no C library to load this way (not a POSIX system)
        mallopt = None
    if mallopt is None:
        return False
    return bool(mallopt(_M_TRIM_THRESHOLD, STORE_BYTES)) and bool(
        mallopt(_M_MMAP_THRESHOLD, 32 * 2**20)
    )


def _run_chunks(
    run: Callable[[int, int, int], None], layout: list[tuple[int, int]], macs: float = math.inf
) -> None:
    """Call ``run(c, first, count)`` for every chunk, concurrently when there are several.

    NumPy releases the GIL in products, ufuncs and random fills, so chunks on worker
    threads use every core for sampling and elementwise passes too; BLAS is then held
    to one thread per chunk so that the threads do not oversubscribe the cores. A run
    of fewer than :data:`SERIAL_MACS` multiply-adds stays on the calling thread (the
    chunks, and so the numbers, are the same either way).
    """
    retain_freed_memory()
    threads = 1 if macs < SERIAL_MACS else min(len(layout), os.cpu_count() or 1)
    if threads < 2:
        for c, (lo, r) in enumerate(layout):
            run(c, lo, r)
        return
    with _blas_limit(1), ThreadPoolExecutor(threads) as pool:
        for fut in [pool.submit(run, c, lo, r) for c, (lo, r) in enumerate(layout)]:
            fut.result()


def chunk_plan(
    widths: tuple[int, ...], batch: int, dtype: np.dtype, n_replicates: int, backward: bool
) -> tuple[int, bool, int]:
    """``(chunk, store_all, segment)``: replicates per chunk, and how the backward pass
    gets each layer's weights and pre-activations back.

    A chunk holds as many replicates as fit one step in :data:`LAYER_BYTES` (a layer's
    weights, input, pre-activation and output; at least 4 bytes an entry, since float16
    products run in float32). With a backward pass, when every layer's weights and
    pre-activation fit a worker's share of :data:`STORE_BYTES`, all are stored
    (``store_all``, one segment of ``depth`` layers) and the chunk shrinks rather than
    recompute any layer; otherwise the pass recomputes segments of ``~sqrt(depth)``
    layers from checkpoints, and the chunk is sized so that one segment fits.

    >>> chunk_plan((16,) * 51, 128, np.dtype(np.float64), 512, True)
    (40, True, 50)
    """
    depth = len(widths) - 1
    item = max(dtype.itemsize, 4)
    per_rep = max((a * b + (a + 2 * b) * batch) * item for a, b in itertools.pairwise(widths))
    chunk = max(1, min(n_replicates, LAYER_BYTES // per_rep))
    layer_bytes = [
        (widths[t] * widths[t - 1] + widths[t] * batch) * item for t in range(1, depth + 1)
    ]
    store = STORE_BYTES // WORKERS
    store_all = sum(layer_bytes) <= store
    if backward and store_all:
        # fewer replicates in flight rather than recomputing any layer
        chunk = max(1, min(chunk, store // sum(layer_bytes)))
    elif backward:
        chunk = max(1, min(chunk, store // (max(layer_bytes) * math.isqrt(depth) + 1)))
    segment = depth if store_all else max(1, math.isqrt(depth))
    return chunk, store_all, segment


def simulate_mlp(
    sc: MLPScenario,
    n_replicates: int,
    batch: int,
    seed: np.random.SeedSequence,
    *,
    backward: bool,
    fractions: bool = False,
    lognorm: bool = False,
    preactivation: bool = True,
    activations: Mapping[str, tuple[Callable, ...]] | None = None,
) -> MLPStats:
    """Propagate ``batch`` inputs through each of ``n_replicates`` sampled networks.

    Parameters
    ----------
    sc : MLPScenario
    n_replicates, batch : int
    seed : numpy.random.SeedSequence
        Its children are keyed by (chunk, stream) and (chunk, layer); the chunk size
        depends only on the scenario and the memory constants, so the numbers do not
        depend on the machine.
    backward : bool
        Also run the backward pass and record the gradients ``dl/dh^t``.
    fractions, lognorm : bool
        Also record the zero and subnormal fractions, and the log-norm (see
        :func:`site_stats`).
    preactivation : bool
        Also record the statistics of the pre-activations (``nan`` otherwise).
    """
    dtype = np.dtype(sc.dtype)
    f = _activation(sc.activation, activations)[0]
    from_output, factor = _backward_factor(sc.activation, sc.residual, activations)
    widths, depth = sc.widths, sc.depth
    chunk, store_all, segment = chunk_plan(widths, batch, dtype, n_replicates, backward)
    nan = np.full((n_replicates, depth + 1, len(STATS)), np.nan)
    fwd, pre, bwd = nan.copy(), nan.copy(), nan.copy()
    extra = (fractions, lognorm)
    quiet = {"over": "ignore", "invalid": "ignore", "under": "ignore", "divide": "ignore"}

    def matmul(a, x):
        if dtype == np.float16:
            # half-precision inputs, single-precision accumulation, rounded to half:
            # how mixed-precision GEMM hardware computes a float16 product
            return np.matmul(a.astype(np.float32), x.astype(np.float32)).astype(np.float16)
        return np.matmul(a, x)

    def step(h, w, b, t):
        z = matmul(w, h)
        if b is not None:
            z += b
        out = f(z)
        return (h + out if sc.residual else out), z

    def run_chunk(c: int, lo: int, r: int) -> None:
        io_rng = rng(child(seed, c, 0))
        layer_seed = child(seed, c, 1)
        x = sample_weights(io_rng, sc.input_law, (r, widths[0], batch), np.dtype(np.float64))
        h = (sc.input_mean + x).astype(dtype, copy=False)
        fwd[lo : lo + r, 0] = site_stats(h, *extra)
        checkpoints = {0: h}
        stored: dict[int, tuple] = {}
        with np.errstate(**quiet):
            for t in range(1, depth + 1):
                w, b = _draw(layer_seed, sc, t, r, dtype)
                h_in = h
                h, z = step(h, w, b, t)
                fwd[lo : lo + r, t] = site_stats(h, *extra)
                if preactivation:
                    pre[lo : lo + r, t] = site_stats(z, *extra)
                if backward and store_all:
                    stored[t] = (w, h if from_output else z)
                elif backward and t % segment == 0 and t < depth:
                    checkpoints[t] = h
                del h_in
            if not backward:
                return
            if sc.upstream_std is None:
                g = h.copy()
            else:
                g = (sc.upstream_std * standard_normal(io_rng, h.shape)).astype(dtype, copy=False)
            bwd[lo : lo + r, depth] = site_stats(g, *extra)
            for start in sorted(checkpoints, reverse=True):
                stop = min(start + segment, depth)
                if not store_all:
                    stored = {}
                    hs = checkpoints[start]
                    for t in range(start + 1, stop + 1):
                        w, b = _draw(layer_seed, sc, t, r, dtype)
                        hs, z = step(hs, w, b, t)
                        stored[t] = (w, hs if from_output else z)
                for t in range(stop, start, -1):
                    w, site = stored.pop(t)
                    gz = g
                    if factor is not None:
                        d = factor(site)
                        # in place when g, the pass's own array, is not needed afterwards
                        # (a residual adds it) and the product keeps its dtype
                        if sc.residual or np.result_type(g, d) != g.dtype:
                            gz = g * d
                        else:
                            gz = np.multiply(g, d, out=g)
                    back = matmul(w.transpose(0, 2, 1), gz)
                    g = g + back if sc.residual else back
                    bwd[lo : lo + r, t - 1] = site_stats(g, *extra)

    macs = n_replicates * batch * sum(a * b for a, b in itertools.pairwise(widths))
    _run_chunks(run_chunk, chunk_layout(n_replicates, chunk), macs * (2 if backward else 1))
    return MLPStats(fwd, pre, bwd)


def simulate_scalar(
    sc: ScalarScenario,
    n_replicates: int,
    batch: int,
    seed: np.random.SeedSequence,
    activations: Mapping[str, tuple[Callable, ...]] | None = None,
) -> np.ndarray:
    """``f(x)`` or ``f'(x)`` for ``x ~ N(0, q)``: per-replicate ``STATS`` of ``batch`` draws."""
    f, fprime = _activation(sc.activation, activations)[:2]
    g = fprime if sc.function == "derivative" else f
    gen = rng(child(seed, 0))
    out = np.empty((n_replicates, len(STATS)))
    chunk = max(1, LAYER_BYTES // (batch * 8 * 3))
    with np.errstate(over="ignore", invalid="ignore"):
        for lo in range(0, n_replicates, chunk):
            r = min(chunk, n_replicates - lo)
            x = (math.sqrt(sc.q) * standard_normal(gen, (r, batch))).astype(sc.dtype)
            out[lo : lo + r] = site_stats(g(x))
    return out


def simulate_product(
    sc: ProductScenario, n_replicates: int, seed: np.random.SeedSequence
) -> np.ndarray:
    """``log||W_d ... W_1 x|| - log||x||`` for independent chains of Gaussian matrices.

    The vector is renormalized after every product and the logs of the norms are
    added: by linearity this is exactly the log-norm of the full product, without
    overflow. Returns per-replicate ``(y, y^2, exp(2y))`` with ``y`` the log growth.
    """
    dtype = np.dtype(sc.dtype)
    out = np.empty((n_replicates, 3))

    def run_chunk(c: int, lo: int, r: int) -> None:
        gen = rng(child(seed, c))
        v = np.zeros((r, sc.n), dtype=dtype)
        v[:, 0] = 1.0
        y = np.zeros(r)
        for _ in range(sc.depth):
            w = standard_normal(gen, (r, sc.n, sc.n), dtype)
            w *= dtype.type(sc.std)
            v = np.einsum("rij,rj->ri", w, v)
            norm = np.sqrt(np.einsum("ri,ri->r", v, v))
            y += np.log(norm.astype(np.float64))
            v /= norm[:, None]
        with np.errstate(over="ignore"):
            out[lo : lo + r] = np.stack([y, y * y, np.exp(2 * y)], axis=1)

    size = max(1, LAYER_BYTES // (sc.n * sc.n * 8 * 2))
    macs = n_replicates * sc.depth * sc.n * sc.n
    _run_chunks(run_chunk, chunk_layout(n_replicates, size), macs)
    return out
