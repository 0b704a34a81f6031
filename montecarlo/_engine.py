"""The simulation itself: sample weights, multiply, apply the activation.

Each network replicate draws its own weights; a batch of inputs goes through one
sampled network as a matrix-matrix product, and replicates are stacked into
batched products. Propagation streams over depth: only the current layer's
activations are kept, and per-layer statistics are reduced on the fly.
"""

from __future__ import annotations

import itertools

import numpy as np
import scipy.special

from ._scenario import ACTIVATIONS, MLPScenario, WeightLaw

#: Statistics kept per replicate and layer.
STATS = ("m1", "m2", "nonfinite")
CHUNK_BYTES = 64 * 2**20


def sample_weights(
    rng: np.random.Generator, law: WeightLaw, shape: tuple[int, ...], dtype: np.dtype
) -> np.ndarray:
    """Draw weights from ``law`` in its native parameters.

    The truncated normal is drawn by inverse CDF on ``[Phi(a), Phi(b)]``.
    """
    work = np.float32 if dtype != np.float64 else np.float64
    if law.law == "normal":
        w = rng.standard_normal(shape, dtype=work)
        w *= work(law.std)
    elif law.law == "uniform":
        w = rng.uniform(-law.bound, law.bound, shape).astype(work, copy=False)
    else:
        lo, hi = scipy.special.ndtr(law.a), scipy.special.ndtr(law.b)
        u = rng.uniform(lo, hi, shape)
        w = (scipy.special.ndtri(u) * law.std).astype(work, copy=False)
    return w.astype(dtype, copy=False)


def _layer_stats(x: np.ndarray) -> np.ndarray:
    """Per-replicate mean, second moment and non-finite fraction, in float64."""
    r = x.shape[0]
    flat = x.reshape(r, -1)
    finite = np.isfinite(flat)
    bad = 1.0 - finite.mean(axis=1)
    x64 = flat.astype(np.float64, copy=False)
    with np.errstate(over="ignore", invalid="ignore"):
        m1 = x64.mean(axis=1)
        m2 = np.einsum("ri,ri->r", x64, x64) / flat.shape[1]
    m1[bad > 0] = np.nan
    m2[bad > 0] = np.nan
    return np.stack([m1, m2, bad], axis=1)


def simulate_forward(
    scenario: MLPScenario, n_replicates: int, batch: int, rng: np.random.Generator
) -> np.ndarray:
    """Propagate ``batch`` inputs through each of ``n_replicates`` sampled networks.

    Returns
    -------
    numpy.ndarray
        Shape ``(n_replicates, depth + 1, 3)``: for every replicate and layer
        (0 is the input), the mean and second moment over all entries and
        inputs, and the fraction of non-finite entries.
    """
    dtype = np.dtype(scenario.dtype)
    act = ACTIVATIONS[scenario.activation]
    widths = scenario.widths
    per_rep = (
        max(widths) * batch * max(dtype.itemsize, 8) * 3
        + max(a * b for a, b in itertools.pairwise(widths)) * 8
    )
    chunk = max(1, min(n_replicates, CHUNK_BYTES // per_rep))
    out = np.empty((n_replicates, len(widths), len(STATS)))
    for start in range(0, n_replicates, chunk):
        r = min(chunk, n_replicates - start)
        x = rng.standard_normal((r, widths[0], batch), dtype=np.float64)
        x = (scenario.input_mean + scenario.input_std * x).astype(dtype, copy=False)
        out[start : start + r, 0] = _layer_stats(x)
        with np.errstate(over="ignore", invalid="ignore", under="ignore"):
            for t, law in enumerate(scenario.weights, start=1):
                w = sample_weights(rng, law, (r, widths[t], widths[t - 1]), dtype)
                x = act(np.matmul(w, x))
                out[start : start + r, t] = _layer_stats(x)
    return out
