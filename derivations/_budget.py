"""Time budgets for symbolic work: a SymPy call that runs too long ends, labelled.

SymPy's ``series``, ``limit``, ``integrate`` and ``simplify`` can run for minutes on
innocent-looking input. Every such call on input the project does not control runs
inside :func:`time_budget`, and the caller turns :class:`BudgetExceeded` into an
``undecided`` result that says which operation ran out of time.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

#: Seconds one check may take before it is abandoned as undecided.
CHECK_SECONDS = 30.0
#: After the budget runs out the alarm repeats at this interval (seconds), so an
#: exception swallowed by a broad ``except`` inside SymPy is raised again.
REPEAT_SECONDS = 0.05
#: The most repeats before the alarm gives up (a stuck body is not interrupted forever).
MAX_REPEATS = 200


class BudgetExceeded(TimeoutError):
    """A symbolic operation ran past its time budget.

    Likely cause: SymPy found no fast route (a nested ``series`` or ``limit``).
    Fix: the caller reports the step as undecided, naming the operation.
    """


@contextmanager
def time_budget(seconds: float, what: str) -> Iterator[None]:
    """Raise :class:`BudgetExceeded` in the body after ``seconds`` of wall time.

    Uses ``SIGALRM``, so it interrupts pure-Python SymPy code; it only acts in the main
    thread of a POSIX process (elsewhere the body runs without a limit). Once the
    budget is spent the alarm repeats every :data:`REPEAT_SECONDS` (at most
    :data:`MAX_REPEATS` times) until the body exits, so an exception caught and dropped
    inside a library is raised again. Budgets nest: an inner budget never extends an
    outer one, and the outer one gets back what is left of it.
    """
    if not seconds > 0:
        raise ValueError(f"`seconds` must be positive; got seconds={seconds!r}")
    if threading.current_thread() is not threading.main_thread() or not hasattr(
        signal, "setitimer"
    ):
        yield
        return

    state = {"done": False, "repeats": 0}

    def expire(signum, frame):
        if state["done"] or state["repeats"] >= MAX_REPEATS:
            signal.setitimer(signal.ITIMER_REAL, 0)
            return
        state["repeats"] += 1
        raise BudgetExceeded(f"{what} took longer than {seconds:g} s")

    def quiet(unraisable):  # an alarm that lands in a finaliser is repeated, not printed
        if not isinstance(unraisable.exc_value, BudgetExceeded):
            previous_hook(unraisable)

    outer_left, _ = signal.getitimer(signal.ITIMER_REAL)
    start = time.monotonic()
    previous_hook, sys.unraisablehook = sys.unraisablehook, quiet
    previous = signal.signal(signal.SIGALRM, expire)
    limit = seconds if outer_left == 0 else min(seconds, outer_left)
    signal.setitimer(signal.ITIMER_REAL, limit, REPEAT_SECONDS)
    try:
        yield
    finally:
        state["done"] = True
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        sys.unraisablehook = previous_hook
        if outer_left:  # give the outer budget back what is left of it
            left = outer_left - (time.monotonic() - start)
            signal.setitimer(signal.ITIMER_REAL, max(left, 1e-3), REPEAT_SECONDS)
