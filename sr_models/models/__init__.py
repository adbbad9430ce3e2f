"""Model families; importing this module registers them in timm's registry."""
import timm

from .sr_resnet import *  # noqa: F401,F403  (registers sr_resnet*)
from .srnet import *  # noqa: F401,F403  (registers srnet_*, fcn_*)
from .dfnet import *  # noqa: F401,F403  (registers dfnet*, dfseg_*, srnet_dfnet*)
from .detection import create_detector, list_detectors  # noqa: F401  (detectors: their own registry)


def list_sr_models(pattern: str = "*") -> list[str]:
    """Names of the models sr-models registers in timm (fnmatch `pattern`)."""
    return [name for name in timm.list_models(pattern)
            if timm.models.model_entrypoint(name).__module__.startswith(__name__)]
