"""The ``initproof`` command line: the report, the handout, the bench and the user's checks.

:mod:`cli._main` parses the arguments; :mod:`cli._commands` holds ``activation``,
``init``, ``claim``, ``step``, ``meanfield`` and ``selu``; :mod:`cli._bench` holds
``bench``. The command line knows every other package; none knows it.
"""

from ._main import list_claims as list_claims
from ._main import main as main
from ._main import parser as parser
from ._main import tune_allocator as tune_allocator

__all__ = ["list_claims", "main", "parser", "tune_allocator"]
