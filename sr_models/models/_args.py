"""Argument checks shared by the model constructors: one-line errors that name the argument and the model."""
from __future__ import annotations

from typing import Optional

OUTPUT_STRIDES = (8, 16, 32)


def check_model_args(
        who: str,
        num_classes: Optional[int] = None,
        in_chans: Optional[int] = None,
        channels: Optional[int] = None,
        dropout: Optional[float] = None,
        output_stride: Optional[int] = None,
        aux_dropout: Optional[float] = None,
) -> None:
    """Raise ValueError for a value no model can be built with (`num_classes=0` is timm's "no classifier")."""
    if num_classes is not None and (not isinstance(num_classes, int) or num_classes < 0):
        raise ValueError(f"{who}: num_classes={num_classes!r} must be an int >= 0 (0 removes the classifier)")
    for name, value in (("in_chans", in_chans), ("channels", channels)):
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ValueError(f"{who}: {name}={value!r} must be a positive int")
    for name, value in (("dropout", dropout), ("aux_dropout", aux_dropout)):
        if value is not None and not 0.0 <= value < 1.0:
            raise ValueError(f"{who}: {name}={value!r} must be in [0, 1)")
    if output_stride is not None and output_stride not in OUTPUT_STRIDES:
        raise ValueError(f"{who}: output_stride={output_stride!r} must be one of {', '.join(map(str, OUTPUT_STRIDES))}")
