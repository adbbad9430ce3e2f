"""sr-models: Squeeze Reasoning networks for timm and transformers.

`import sr_models` registers every model in timm's registry and the transformers classes with the Auto classes.
"""
from . import hf, layers, models  # noqa: F401  (registration side effects)
from .hf import save_pretrained
from .models import create_detector, list_detectors

__version__ = "0.1.0"
__all__ = ["save_pretrained", "create_detector", "list_detectors", "__version__"]
