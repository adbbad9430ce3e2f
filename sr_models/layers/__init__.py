"""Blocks: the Squeeze Reasoning module and the context modules the paper compares it with."""
from .squeeze_reasoning import (
    FCReasoning,
    FeatureReconstruction,
    GraphReasoning,
    NodeReasoning,
    NodeSqueeze,
    SelfAttentionReasoning,
    SqueezeReasoning,
    SqueezeReasoningGate,
)
