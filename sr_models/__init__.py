"""sr-models: Squeeze Reasoning networks for timm and transformers.

`import sr_models` registers every model in timm's registry. The transformers classes are registered with the Auto
classes when transformers is imported (at once if it already is): `import sr_models` stays as cheap as `import timm`,
and `AutoModelFor...from_pretrained` works in any order of imports.
"""
import importlib

from . import layers, models  # noqa: F401  (registration side effects)
from ._post_import import when_imported
from .models import create_detector, list_detectors

__version__ = "0.1.0"
__all__ = ["save_pretrained", "create_detector", "list_detectors", "__version__"]


when_imported("transformers", lambda: importlib.import_module(".hf", __name__))  # registers the Auto classes


def __getattr__(name: str):
    if name in ("hf", "save_pretrained"):
        hf = importlib.import_module(".hf", __name__)
        return hf if name == "hf" else hf.save_pretrained
    raise AttributeError(f"module 'sr_models' has no attribute {name!r}")
