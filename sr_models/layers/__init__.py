"""Blocks: the Squeeze Reasoning module and the context modules the paper compares it with."""
from .aspp import ASPP
from .asymmetric_non_local import AsymmetricPyramidNonLocal
from .cgnl import CompactGeneralizedNonLocal
from .context import CONTEXT_BLOCKS, CONTEXT_MODULES, context_names, create_context_block, create_context_module
from .criss_cross import CrissCrossAttention
from .double_attention import DoubleAttention
from .ema import EMAUnit
from .encoding import ContextEncoding, Encoding
from .pyramid_pooling import PyramidPoolingModule
from .sfsegnets import convert_sfsegnets_state_dict
from .squeeze_reasoning import (
    FCReasoning,
    FeatureReconstruction,
    GraphReasoning,
    NodeReasoning,
    NodeSqueeze,
    SelfAttentionReasoning,
    SqueezeReasoning,
    SqueezeReasoningGate,
    create_squeeze_reasoning,
)
