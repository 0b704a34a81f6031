"""Small building blocks the claim modules share (symbols live in :mod:`._symbols`)."""

from __future__ import annotations
