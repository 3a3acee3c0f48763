"""The main job end to end: explore, retrain, compress, export, benchmark, report.

One call runs the workflow of the SqueezeNet paper on a user's data and device:
search the metaparameters under the hardware's flash and SRAM limits, retrain the best
feasible design, compress it (Han et al. 2016), export fp32 and int8 ONNX, time them
and write one HTML report. ``design`` runs :data:`STAGES`, a list of ``(name, fn)`` with
``fn(ctx) -> StageResult`` over one :class:`RunContext`; every result is recorded in
``OUT/design.json``, so an interrupted run resumes at the first unfinished stage.
"""

from squeezelab.design.config import DesignConfig
from squeezelab.design.context import RunContext
from squeezelab.design.records import STATE_FILE, DesignState, read_state
from squeezelab.design.run import design
from squeezelab.design.stages import STAGES
from squeezelab.design.summary import DesignResult, SummaryRow, baseline_fp32_bytes, summarize

__all__ = [
    "STAGES",
    "STATE_FILE",
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
