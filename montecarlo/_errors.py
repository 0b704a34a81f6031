"""Exceptions raised by the Monte Carlo engine."""


class MonteCarloError(Exception):
    """Root of every error the engine raises on purpose."""


class InvalidScenario(MonteCarloError, ValueError):
    """A scenario or observable is malformed.

    The message names the argument, its value, and what is allowed; fix the plain
    data that describes the experiment.
    """
