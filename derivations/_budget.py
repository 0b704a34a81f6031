"""Time budgets for symbolic work: a SymPy call that runs too long ends, labelled.

SymPy's ``series``, ``limit``, ``integrate`` and ``simplify`` can run for minutes on
innocent-looking input. Every such call on input the project does not control runs
inside :func:`time_budget`, and the caller turns :class:`BudgetExceeded` into an
``undecided`` result that says which operation ran out of time.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

#: Seconds one check may take before it is abandoned as undecided.
CHECK_SECONDS = 30.0


class BudgetExceeded(TimeoutError):
    """A symbolic operation ran past its time budget.

    Likely cause: SymPy found no fast route (a nested ``series`` or ``limit``).
    Fix: the caller reports the step as undecided, naming the operation.
    """


@contextmanager
def time_budget(seconds: float, what: str) -> Iterator[None]:
    """Raise :class:`BudgetExceeded` in the body after ``seconds`` of wall time.

    Uses ``SIGALRM``, so it interrupts pure-Python SymPy code; it only acts in the main
    thread of a POSIX process (elsewhere the body runs without a limit). Budgets nest:
    an inner budget never extends an outer one.
    """
    if seconds <= 0:
        raise ValueError(f"`seconds` must be positive; got seconds={seconds!r}")
    if threading.current_thread() is not threading.main_thread() or not hasattr(
        signal, "setitimer"
    ):
        yield
        return

    def expire(signum, frame):
        raise BudgetExceeded(f"{what} took longer than {seconds:g} s")

    outer_left, _ = signal.getitimer(signal.ITIMER_REAL)
    previous = signal.signal(signal.SIGALRM, expire)
    limit = seconds if outer_left == 0 else min(seconds, outer_left)
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        yield
    finally:
        left, _ = signal.getitimer(signal.ITIMER_REAL)
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer_left:
            # give the outer budget back what is left of it
            spent = limit - left
            signal.setitimer(signal.ITIMER_REAL, max(outer_left - spent, 1e-3))
