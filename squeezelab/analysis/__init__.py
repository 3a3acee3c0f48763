"""Cost analysis: per-layer costs, hardware profiles, energy and latency, measured latency.

``profile(model, input_shape, hardware)`` returns a :class:`Profile` of per-layer
:class:`LayerCost` records and totals; ``measure_latency`` times real inference and
``calibrate`` measures this machine into a :class:`Hardware` profile.
"""

from squeezelab.analysis.calibrate import calibrate
from squeezelab.analysis.hardware import Hardware, list_hardware, load_hardware
from squeezelab.analysis.measure import measure_latency
from squeezelab.analysis.profile import LayerCost, Profile, profile

__all__ = [
    "Hardware",
    "LayerCost",
    "Profile",
    "calibrate",
    "list_hardware",
    "load_hardware",
    "measure_latency",
    "profile",
]
