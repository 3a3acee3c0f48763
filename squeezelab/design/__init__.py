"""The main job end to end: explore, retrain, compress, export, benchmark, report.

One call runs the workflow of the SqueezeNet paper on a user's data and device:
search the metaparameters under the hardware's flash and SRAM limits, retrain the best
feasible design, compress it (Han et al. 2016), export fp32 and int8 ONNX, write and
check the file the target's runtime runs (int8 .tflite + C array for TFLite Micro), time
them and write one HTML report. ``design`` runs :data:`STAGES`, a list of ``(name, fn)`` with
``fn(ctx) -> Record`` over one :class:`RunContext`; every result is recorded in
``OUT/design.json``, so an interrupted run resumes at the first unfinished stage.
"""

from squeezelab.design.config import DesignConfig
from squeezelab.lazy import lazy_attributes

# the rest is imported on first use, so that `squeezelab --help` reads DesignConfig's
# fields without importing torch, onnx and optuna
_LAZY = {
    "RunContext": "context",
    "STATE_FILE": "records",
    "DesignState": "records",
    "DeployResult": "records",
    "read_state": "records",
    "design": "run",
    "STAGES": "stages",
    "DesignResult": "summary",
    "SummaryRow": "summary",
    "baseline_fp32_bytes": "summary",
    "summarize": "summary",
}

__getattr__ = lazy_attributes(__name__, _LAZY)


__all__ = [
    "STAGES",
    "STATE_FILE",
    "DeployResult",
    "DesignConfig",
    "DesignResult",
    "DesignState",
    "RunContext",
    "SummaryRow",
    "baseline_fp32_bytes",
    "design",
    "read_state",
    "summarize",
]
