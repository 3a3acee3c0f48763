"""squeezelab: systematic design of small deep neural networks for embedded hardware.

Generate architectures from SqueezeNet-style metaparameters, predict their cost on a
target device, train, compress, export and search the design space. Heavy
dependencies (onnxruntime, optuna, matplotlib) are imported only where used.
"""

from squeezelab.lazy import lazy_attributes

__version__ = "0.1.0"
__all__ = ["__version__", "create_model", "load_model"]

# `squeezelab.create_model` / `squeezelab.load_model` as timm has them, imported on first
# use so that `import squeezelab` (and `squeezelab --help`) stays light
__getattr__ = lazy_attributes(__name__, {"create_model": "models", "load_model": "models"})
