"""Design space exploration: spaces, objectives, constraints, studies, Pareto fronts.

Follows the metaparameter sweeps of Iandola et al. 2016 (arXiv 1602.07360),
section 5, as a multi-objective Optuna study that costs every candidate analytically
and trains only the ones that fit the device.
"""

from squeezelab.explore.presets import list_presets, load_space
from squeezelab.explore.records import FinalRecord, StudyResults, TrialCounts, TrialRecord
from squeezelab.explore.results import hypervolume, load_study_results, pareto_front
from squeezelab.explore.screen import ScreenReport, check_feasible, screen_space
from squeezelab.explore.space import Candidate, Constraint, Objective, Space
from squeezelab.explore.space_checks import space_from_dict
from squeezelab.explore.study import trial_counts
from squeezelab.explore.trial import train_candidate
from squeezelab.explore.workers import run_study, run_worker

__all__ = [
    "Candidate",
    "Constraint",
    "FinalRecord",
    "Objective",
    "ScreenReport",
    "Space",
    "StudyResults",
    "TrialCounts",
    "TrialRecord",
    "check_feasible",
    "hypervolume",
    "list_presets",
    "load_space",
    "load_study_results",
    "pareto_front",
    "run_study",
    "run_worker",
    "screen_space",
    "space_from_dict",
    "train_candidate",
    "trial_counts",
]
