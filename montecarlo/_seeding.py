"""Stable per-key seeding: one root seed per run, one stream per (claim, probe)."""

from __future__ import annotations

import hashlib

import numpy as np


def seed_for(root: int, *keys: str) -> np.random.SeedSequence:
    """A :class:`numpy.random.SeedSequence` determined by ``root`` and ``keys`` only.

    The spawn key is a hash of each key, so adding a claim never changes the
    stream of another.

    >>> seed_for(1, "a").generate_state(1) == seed_for(1, "a").generate_state(1)
    array([ True])
    """
    if isinstance(root, bool) or not isinstance(root, int) or root < 0:
        raise ValueError(f"`seed` must be a non-negative integer; got seed={root!r}.")
    spawn = tuple(int.from_bytes(hashlib.sha256(k.encode()).digest()[:4], "little") for k in keys)
    return np.random.SeedSequence(root, spawn_key=spawn)


def child(seed: np.random.SeedSequence, *keys: int) -> np.random.SeedSequence:
    """The child of ``seed`` at ``keys``, without mutating ``seed``.

    ``SeedSequence.spawn`` counts how often it was called, so calling it twice on the
    same object gives different streams; this pure form does not.
    """
    return np.random.SeedSequence(seed.entropy, spawn_key=(*seed.spawn_key, *keys))
