"""Symbolic derivations of the lecture's claims, each step machine-checked.

Imports SymPy only; never :mod:`montecarlo` or :mod:`report`.
"""

from ._calculus import Ex as Ex
from ._calculus import Model as Model
from ._calculus import OffDiagonalSum as OffDiagonalSum
from ._calculus import RandomFamily as RandomFamily
from ._calculus import Var as Var
from ._check import Chain as Chain
from ._check import check_algebraic as check_algebraic
from ._check import check_instance as check_instance
from ._claim import Assumption as Assumption
from ._claim import Check as Check
from ._claim import Claim as Claim
from ._claim import Derivation as Derivation
from ._claim import Probe as Probe
from ._claim import Status as Status
from ._claim import Step as Step
from ._claim import combine as combine
from ._exercises import Exercise as Exercise
from ._figures import FigureSpec as FigureSpec
from ._figures import figures as figures
from ._registry import claim as claim
from ._registry import claims as claims
from ._registry import exercises as exercises
from ._table import TABLE as ACTIVATION_TABLE
from ._table import ActivationEntry as ActivationEntry
from ._table import activation as activation
from ._table import family as family
from ._table import simulation_activations as simulation_activations

__all__ = [
    "ACTIVATION_TABLE",
    "ActivationEntry",
    "Assumption",
    "Chain",
    "Check",
    "Claim",
    "Derivation",
    "Ex",
    "Exercise",
    "FigureSpec",
    "Model",
    "OffDiagonalSum",
    "Probe",
    "RandomFamily",
    "Status",
    "Step",
    "Var",
    "activation",
    "check_algebraic",
    "check_instance",
    "claim",
    "claims",
    "combine",
    "exercises",
    "family",
    "figures",
    "simulation_activations",
]
