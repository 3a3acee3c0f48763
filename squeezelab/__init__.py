"""squeezelab: systematic design of small deep neural networks for embedded hardware.

Generate architectures from SqueezeNet-style metaparameters, predict their cost on a
target device, train, compress, export and search the design space. Heavy
dependencies (onnxruntime, optuna, matplotlib) are imported only where used.
"""

__version__ = "0.1.0"
