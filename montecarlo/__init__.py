"""Monte Carlo checks: simulate the real networks, estimate with honest intervals.

Imports NumPy and SciPy only; never :mod:`derivations`, :mod:`report` or SymPy. A
scenario names its activation; the functions come from the caller, as NumPy callables
(``activations=``, ``name -> (f, f')``). Only ``linear``, the identity, is built in.
"""

from ._correlation import measure as measure
from ._correlation import measure_pair_fixed as measure_pair_fixed
from ._correlation import pair_scenario as pair_scenario
from ._correlation import simulate_pair as simulate_pair
from ._engine import STATS as STATS
from ._engine import WORKERS as WORKERS
from ._engine import MLPStats as MLPStats
from ._engine import choose_batch as choose_batch
from ._engine import retain_freed_memory as retain_freed_memory
from ._engine import sample_weights as sample_weights
from ._engine import simulate_mlp as simulate_mlp
from ._engine import simulate_product as simulate_product
from ._engine import simulate_scalar as simulate_scalar
from ._engine import site_stats as site_stats
from ._engine import standard_normal as standard_normal
from ._errors import InvalidScenario as InvalidScenario
from ._errors import MonteCarloError as MonteCarloError
from ._estimate import DEFAULT_LEVEL as DEFAULT_LEVEL
from ._estimate import DEFAULT_PRECISION as DEFAULT_PRECISION
from ._estimate import ConfidenceInterval as ConfidenceInterval
from ._estimate import Decision as Decision
from ._estimate import Estimate as Estimate
from ._estimate import Outcome as Outcome
from ._estimate import decide as decide
from ._estimate import decide_family as decide_family
from ._estimate import difference as difference
from ._estimate import holm_levels as holm_levels
from ._estimate import jackknife as jackknife
from ._estimate import measure_fixed as measure_fixed
from ._estimate import measure_many as measure_many
from ._estimate import per_check_confidence as per_check_confidence
from ._estimate import replicate_quantiles as replicate_quantiles
from ._scenario import MLPScenario as MLPScenario
from ._scenario import Observable as Observable
from ._scenario import ProductScenario as ProductScenario
from ._scenario import ScalarScenario as ScalarScenario
from ._scenario import WeightLaw as WeightLaw
from ._scenario import mlp_scenario as mlp_scenario
from ._scenario import observable as observable
from ._scenario import scenario as scenario
from ._seeding import child as child
from ._seeding import seed_for as seed_for

__all__ = [name for name in dir() if not name.startswith("_")]
