"""sr-models: Squeeze Reasoning networks for timm and transformers.

`import sr_models` registers every model in timm's registry.
"""
from . import layers, models  # noqa: F401  (registration side effects)

__version__ = "0.1.0"
