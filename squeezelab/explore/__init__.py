"""Design space exploration: spaces, objectives, constraints, studies, Pareto fronts.

Follows the metaparameter sweeps of Iandola et al. 2016 (arXiv 1602.07360),
section 5, as a multi-objective Optuna study that costs every candidate analytically
and trains only the ones that fit the device. ``explore(space, study_dir, ExploreConfig())``
runs a study and returns its :class:`StudyResults`; ``search.fidelity`` makes it
multi-fidelity (successive halving, :mod:`squeezelab.explore.fidelity`).
"""

from squeezelab.explore.config import ExploreConfig, explore
from squeezelab.lazy import lazy_attributes

# the rest is imported on first use, so that `squeezelab --help` reads ExploreConfig's
# fields without importing torch and optuna
_LAZY = {
    name: module
    for module, names in {
        "fidelity": ("Fidelity",),
        "presets": ("list_presets", "load_space"),
        "records": ("FinalRecord", "StudyResults", "TrialCounts", "TrialRecord", "TrialStep"),
        "results": ("hypervolume", "load_study_results", "pareto_front"),
        "screen": ("ScreenReport", "check_feasible", "screen_space"),
        "space": ("Candidate", "Constraint", "Objective", "Space"),
        "space_checks": ("space_from_dict",),
        "study": ("trial_counts",),
        "trial": ("train_candidate",),
        "workers": ("run_study", "run_worker"),
    }.items()
    for name in names
}

__getattr__ = lazy_attributes(__name__, _LAZY)

__all__ = [
    "Candidate",
    "Constraint",
    "ExploreConfig",
    "Fidelity",
    "FinalRecord",
    "Objective",
    "ScreenReport",
    "Space",
    "StudyResults",
    "TrialCounts",
    "TrialRecord",
    "TrialStep",
    "check_feasible",
    "explore",
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
