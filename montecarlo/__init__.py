"""Monte Carlo checks: simulate the real networks, estimate with honest intervals.

Imports NumPy and SciPy only; never :mod:`derivations`, :mod:`report` or SymPy.
"""

from ._engine import sample_weights as sample_weights
from ._engine import simulate_forward as simulate_forward
from ._errors import InvalidScenario as InvalidScenario
from ._errors import MonteCarloError as MonteCarloError
from ._estimate import DEFAULT_LEVEL as DEFAULT_LEVEL
from ._estimate import DEFAULT_PRECISION as DEFAULT_PRECISION
from ._estimate import ConfidenceInterval as ConfidenceInterval
from ._estimate import Decision as Decision
from ._estimate import Estimate as Estimate
from ._estimate import Outcome as Outcome
from ._estimate import decide as decide
from ._estimate import measure as measure
from ._estimate import per_check_confidence as per_check_confidence
from ._scenario import ACTIVATIONS as ACTIVATIONS
from ._scenario import MLPScenario as MLPScenario
from ._scenario import Observable as Observable
from ._scenario import WeightLaw as WeightLaw
from ._scenario import mlp_scenario as mlp_scenario
from ._scenario import observable as observable
from ._seeding import seed_for as seed_for

__all__ = [
    "ACTIVATIONS",
    "DEFAULT_LEVEL",
    "DEFAULT_PRECISION",
    "ConfidenceInterval",
    "Decision",
    "Estimate",
    "InvalidScenario",
    "MLPScenario",
    "MonteCarloError",
    "Observable",
    "Outcome",
    "WeightLaw",
    "decide",
    "measure",
    "mlp_scenario",
    "observable",
    "per_check_confidence",
    "sample_weights",
    "seed_for",
    "simulate_forward",
]
