"""Model zoo: the Fire module, the SqueezeNet family, baselines and peers.

Importing this package registers every family; ``create_model`` builds any of them,
``load_model`` turns whatever a user typed (zoo name, spec file, model file, ``.sqz``)
into a module and its :class:`ModelMeta`.
"""

from squeezelab.models import alexnet as _alexnet  # noqa: F401  (registers)
from squeezelab.models import detect as _detect  # noqa: F401  (registers)
from squeezelab.models import mobilenet as _mobilenet  # noqa: F401  (registers)
from squeezelab.models import shufflenet as _shufflenet  # noqa: F401  (registers)
from squeezelab.models import squeezenet as _squeezenet  # noqa: F401  (registers)
from squeezelab.models import squeezenext as _squeezenext  # noqa: F401  (registers)
from squeezelab.models._registry import (
    ModelInfo,
    create_model,
    list_models,
    model_info,
    register_model,
)
from squeezelab.models.load import build_model, load_model, save_model
from squeezelab.models.meta import ModelMeta
from squeezelab.models.spec import (
    SQUEEZENET1_0,
    SQUEEZENET1_1,
    SQUEEZENET_SMALL,
    SqueezeNetSpec,
    expand,
    fire_channels,
)
from squeezelab.models.squeezenet import Fire, SqueezeNet, load_torchvision_weights

__all__ = [
    "SQUEEZENET1_0",
    "SQUEEZENET1_1",
    "SQUEEZENET_SMALL",
    "Fire",
    "ModelInfo",
    "ModelMeta",
    "SqueezeNet",
    "SqueezeNetSpec",
    "build_model",
    "create_model",
    "expand",
    "fire_channels",
    "list_models",
    "load_model",
    "load_torchvision_weights",
    "model_info",
    "register_model",
    "save_model",
]
