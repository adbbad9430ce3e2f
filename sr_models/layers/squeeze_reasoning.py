"""Squeeze Reasoning (SR) module, Section III-B of the paper, as its three named steps.

    x ──┬── proj_x (1x1, C -> C/r) ─────────────── x~ ──┐
        ├── NodeSqueeze (GAP or GHP, Eq. 4) ──> g ──> NodeReasoning (FC / GCN Eq. 5 / SA Eq. 6) ──> g'
        │                                                                                          │
        └──────────── + <── FeatureReconstruction (Eq. 7):  W_R (x~ * g') ─────────────────────────┘

`SqueezeReasoningGate` is the classification variant of Section IV-E: SE's FC layers replaced by graph reasoning.
`SqueezeReasoning.sfsegnets(C, C')` is the same module configured as the authors' released `ChannelReasonModule`
(see docs/fidelity.md); `convert_sfsegnets_state_dict` (layers/sfsegnets.py) loads their weights into it.
"""
from __future__ import annotations

import math
import numbers
from typing import Optional

import torch
import torch.nn.functional as F
from timm.layers import register_notrace_function
from torch import nn

SQUEEZES = ("gap", "ghp")
REASONINGS = ("none", "fc", "gcn", "sa")
POOLS = ("mean", "sum")
RECONSTRUCTIONS = ("grouped", "dense")
ADJACENCIES = ("laplacian", "residual_bn_relu")
NODE_LAYOUTS = ("contiguous", "strided")

# name -> SqueezeReasoning arguments; "sfsegnets" is `ChannelReasonModule` of lxtGH/SFSegNets (commit 531067b)
PRESETS = {
    "sfsegnets": dict(num_nodes=32, squeeze="ghp", reasoning="gcn", pool="sum", reconstruction="grouped",
                      adjacency="residual_bn_relu", node_layout="strided"),
}


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not one of {', '.join(repr(c) for c in choices)}")
    return value


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"{name}={value!r} must be a positive integer")


def to_nodes(g: torch.Tensor, num_nodes: int, node_dim: int, layout: str) -> torch.Tensor:
    """(N, K * d) vector -> (N, K, d) node states. "contiguous": node k = channels [k d, (k+1) d);
    "strided" (the released code): node k = channels k, K + k, 2K + k, ... (channel j K + k -> node k, state j)."""
    if layout == "strided":
        return g.reshape(g.shape[0], node_dim, num_nodes).transpose(1, 2)
    return g.reshape(g.shape[0], num_nodes, node_dim)


@register_notrace_function  # one call in FX graphs; the body is TorchScript-compatible and export-safe
def check_feature_map(x: torch.Tensor, channels: int, who: str) -> None:
    """Raise a clear error unless `x` is a floating-point (N, channels, H, W) tensor."""
    if not x.is_floating_point():
        raise TypeError(f"{who} expects a floating-point tensor (images normalised like its training data), "
                        f"got {x.dtype}")
    if x.ndim != 4:
        raise ValueError(f"{who} expects a 4-D (N, C, H, W) tensor, got shape {list(x.shape)}")
    if x.shape[1] != channels:
        raise ValueError(f"{who} was built for {channels} input channels, got {x.shape[1]} (shape {list(x.shape)})")


class NodeSqueeze(nn.Module):
    """Node squeezing: the global vector g of the reduced feature.

    "gap": g = mean_i (W_B x)_i.   "ghp" (Eq. 4): g = pool_i (W_B x)_i ∘ (W_C x)_i, a Hadamard product pooled over H x W.
    `pool="mean"` divides by H*W (resolution invariant); `pool="sum"` is Eq. 4 as written and the released code.
    """

    def __init__(
            self,
            in_channels: int,
            channels: int,
            squeeze: str = "ghp",
            pool: str = "mean",
            device=None,
            dtype=None,
    ):
        super().__init__()
        dd = dict(device=device, dtype=dtype)
        _check_positive(in_channels=in_channels, channels=channels)
        self.squeeze = _check_choice("squeeze", squeeze, SQUEEZES)
        self.pool = _check_choice("pool", pool, POOLS)
        self.proj_b = nn.Conv2d(in_channels, channels, 1, bias=False, **dd)
        self.proj_c = nn.Conv2d(in_channels, channels, 1, bias=False, **dd) if squeeze == "ghp" else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = self.proj_b(x)
        if self.proj_c is not None:
            g = g * self.proj_c(x)
        return g.mean((2, 3)) if self.pool == "mean" else g.sum((2, 3))


class GraphReasoning(nn.Module):
    """Eq. 5: G_out = σ(W_g G_in (I - A_g)) on K nodes of d channels.

    A_g (K x K) mixes the nodes, W_g (d x d) transforms each node's state; both are 1x1 convolutions in the paper,
    written here as the matrix products they are (one `matmul`, one `linear`: cheap on tiny vectors).
    `adjacency="laplacian"` is Eq. 5 as written, Z1 = Z - A_g Z; `"residual_bn_relu"` is the released code,
    Z1 = Z + ReLU(BN_K(A_g Z)) with a BatchNorm over the K node axis. Input and output are (N, K * d) vectors; the
    input is split into nodes by `node_layout` (see `to_nodes`), the output is always node-major (node k at
    channels [k d, (k+1) d)), as in the released code, which does not permute it back.
    """

    def __init__(
            self,
            num_nodes: int,
            node_dim: int,
            norm: bool = True,
            act: bool = True,
            adjacency: str = "laplacian",
            node_layout: str = "contiguous",
            device=None,
            dtype=None,
    ):
        super().__init__()
        dd = dict(device=device, dtype=dtype)
        _check_positive(num_nodes=num_nodes, node_dim=node_dim)
        self.num_nodes = num_nodes
        self.node_dim = node_dim
        self.node_layout = _check_choice("node_layout", node_layout, NODE_LAYOUTS)
        _check_choice("adjacency", adjacency, ADJACENCIES)
        self.adjacency = nn.Linear(num_nodes, num_nodes, bias=False, **dd)  # A_g, acts on the node axis
        # BN_K of the released code: normalises each node over the batch and its d states
        self.adjacency_norm = nn.BatchNorm1d(num_nodes, **dd) if adjacency == "residual_bn_relu" else None
        self.state = nn.Linear(node_dim, node_dim, bias=not norm, **dd)  # W_g, acts on each node's state
        self.norm = nn.BatchNorm1d(node_dim, **dd) if norm else None
        self.act = nn.ReLU() if act else nn.Identity()

    def forward(self, g: torch.Tensor) -> torch.Tensor:
        nodes = to_nodes(g, self.num_nodes, self.node_dim, self.node_layout)  # (N, K, d)
        mixed = torch.matmul(self.adjacency.weight, nodes)  # A_g G
        if self.adjacency_norm is None:
            out = self.state(nodes - mixed)  # W_g G (I - A_g)
        else:
            out = self.state(nodes + self.adjacency_norm(mixed).relu())  # W_g (G + ReLU(BN_K(A_g G)))
        if self.norm is not None:
            out = self.norm(out.transpose(1, 2)).transpose(1, 2)  # BN over the d state channels
        return self.act(out).reshape(g.shape[0], self.num_nodes * self.node_dim)


class SelfAttentionReasoning(nn.Module):
    """Eq. 6: G_out = σ(ρ_g(G) [φ_g(G)^T θ_g(G)]) on K nodes of d channels.

    φ (query), θ (key), ρ (value) are 1-D convolutions over the node states; the K x K correlation matrix is
    normalised with a softmax over keys scaled by 1/sqrt(d) (see docs/fidelity.md).
    """

    def __init__(
            self,
            num_nodes: int,
            node_dim: int,
            norm: bool = True,
            node_layout: str = "contiguous",
            device=None,
            dtype=None,
    ):
        super().__init__()
        dd = dict(device=device, dtype=dtype)
        _check_positive(num_nodes=num_nodes, node_dim=node_dim)
        self.num_nodes = num_nodes
        self.node_dim = node_dim
        self.node_layout = _check_choice("node_layout", node_layout, NODE_LAYOUTS)
        self.query = nn.Conv1d(node_dim, node_dim, 1, bias=False, **dd)  # φ_g
        self.key = nn.Conv1d(node_dim, node_dim, 1, bias=False, **dd)  # θ_g
        self.value = nn.Conv1d(node_dim, node_dim, 1, bias=not norm, **dd)  # ρ_g
        self.norm = nn.BatchNorm1d(node_dim, **dd) if norm else nn.Identity()
        self.act = nn.ReLU()

    def forward(self, g: torch.Tensor) -> torch.Tensor:
        nodes = to_nodes(g, self.num_nodes, self.node_dim, self.node_layout).transpose(1, 2)  # (N, d, K)
        affinity = self.query(nodes).transpose(1, 2) @ self.key(nodes)  # (N, K, K): φ^T θ
        affinity = (affinity / math.sqrt(self.node_dim)).softmax(dim=-1)
        out = self.value(nodes) @ affinity.transpose(1, 2)  # ρ(G) A: each node gathers from all nodes
        return self.act(self.norm(out)).transpose(1, 2).reshape(g.shape[0], self.num_nodes * self.node_dim)


class FCReasoning(nn.Module):
    """SE-style baseline of Table III: two fully-connected layers on the global vector, no node structure."""

    def __init__(self, channels: int, fc_reduction: int = 16, device=None, dtype=None):
        super().__init__()
        dd = dict(device=device, dtype=dtype)
        _check_positive(channels=channels, fc_reduction=fc_reduction)
        hidden = max(channels // fc_reduction, 1)
        self.fc1 = nn.Linear(channels, hidden, **dd)
        self.fc2 = nn.Linear(hidden, channels, **dd)
        self.act = nn.ReLU()

    def forward(self, g: torch.Tensor) -> torch.Tensor:
        return self.act(self.fc2(self.act(self.fc1(g))))


class NodeReasoning(nn.Module):
    """Node graph reasoning on the squeezed vector: `"none"`, `"fc"`, `"gcn"` (Eq. 5) or `"sa"` (Eq. 6).

    `adjacency` applies to "gcn" only, `node_layout` to the node-based "gcn" and "sa"; other combinations are refused.
    """

    def __init__(
            self,
            channels: int,
            num_nodes: int = 16,
            reasoning: str = "gcn",
            fc_reduction: int = 16,
            adjacency: str = "laplacian",
            node_layout: str = "contiguous",
            device=None,
            dtype=None,
    ):
        super().__init__()
        dd = dict(device=device, dtype=dtype)
        _check_positive(channels=channels, num_nodes=num_nodes, fc_reduction=fc_reduction)
        self.reasoning = _check_choice("reasoning", reasoning, REASONINGS)
        _check_choice("adjacency", adjacency, ADJACENCIES)
        _check_choice("node_layout", node_layout, NODE_LAYOUTS)
        if adjacency != "laplacian" and reasoning != "gcn":
            raise ValueError(f"adjacency={adjacency!r} applies to reasoning='gcn' only, got reasoning={reasoning!r}")
        if node_layout != "contiguous" and reasoning not in ("gcn", "sa"):
            raise ValueError(f"node_layout={node_layout!r} applies to reasoning='gcn' or 'sa', "
                             f"got reasoning={reasoning!r}")
        if reasoning in ("gcn", "sa") and channels % num_nodes:
            raise ValueError(f"num_nodes={num_nodes} must divide the reduced channels ({channels})")
        if reasoning == "gcn":
            self.op = GraphReasoning(
                num_nodes, channels // num_nodes, adjacency=adjacency, node_layout=node_layout, **dd)
        elif reasoning == "sa":
            self.op = SelfAttentionReasoning(num_nodes, channels // num_nodes, node_layout=node_layout, **dd)
        elif reasoning == "fc":
            self.op = FCReasoning(channels, fc_reduction, **dd)
        else:
            self.op = nn.Identity()

    def forward(self, g: torch.Tensor) -> torch.Tensor:
        return self.op(g)


class FeatureReconstruction(nn.Module):
    """Eq. 7: Y = W_R (x~ ∘ g') + X, the reasoned vector re-weighting the reduced feature channel-wise.

    `"grouped"` W_R is the released code's 1x1 conv C/r -> C with C/r groups followed by GroupNorm (Table IV's 0.40M);
    `"dense"` is a full 1x1 conv + BatchNorm (0.53M at C = 512).
    """

    def __init__(self, channels: int, out_channels: int, reconstruction: str = "grouped", device=None, dtype=None):
        super().__init__()
        dd = dict(device=device, dtype=dtype)
        _check_positive(channels=channels, out_channels=out_channels)
        _check_choice("reconstruction", reconstruction, RECONSTRUCTIONS)
        if reconstruction == "grouped":
            if out_channels % channels:
                raise ValueError(
                    f"grouped reconstruction needs the reduced channels ({channels}) to divide "
                    f"in_channels ({out_channels}); use reconstruction='dense'")
            self.proj = nn.Conv2d(channels, out_channels, 1, groups=channels, bias=False, **dd)
            self.norm = nn.GroupNorm(channels, out_channels, **dd)
        else:
            self.proj = nn.Conv2d(channels, out_channels, 1, bias=False, **dd)
            self.norm = nn.BatchNorm2d(out_channels, **dd)

    def forward(self, x: torch.Tensor, x_reduced: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(x_reduced * g[:, :, None, None])) + x


class SqueezeReasoning(nn.Module):
    """The SR module (Fig. 3): node squeezing, node reasoning, feature reconstruction. Output shape = input shape.

    Args:
        in_channels: C of the input feature map.
        reduction: r, the reduced feature has C / r channels.
        num_nodes: K, the number of graph nodes; each holds d = (C / r) / K channels.
        squeeze: "gap" or "ghp" (Eq. 4).
        reasoning: "none", "fc", "gcn" (Eq. 5) or "sa" (Eq. 6).
        pool: "mean" (resolution invariant, default) or "sum" (the released code) over H x W.
        reconstruction: W_R, "grouped" (released code, Table IV budget) or "dense".
        fc_reduction: hidden-layer reduction of the "fc" reasoning.
        adjacency: the identity term of Eq. 5 ("gcn" only): "laplacian" (Z - A Z, the paper) or
            "residual_bn_relu" (Z + ReLU(BN_K(A Z)), the released code).
        node_layout: how the squeezed vector is split into nodes ("gcn", "sa"): "contiguous" (the paper) or
            "strided" (the released code); see `to_nodes`.
    """

    def __init__(
            self,
            in_channels: int,
            reduction: int = 2,
            num_nodes: int = 16,
            squeeze: str = "ghp",
            reasoning: str = "gcn",
            pool: str = "mean",
            reconstruction: str = "grouped",
            fc_reduction: int = 16,
            adjacency: str = "laplacian",
            node_layout: str = "contiguous",
            device=None,
            dtype=None,
    ):
        super().__init__()
        dd = dict(device=device, dtype=dtype)
        _check_positive(in_channels=in_channels, reduction=reduction)
        if in_channels % reduction:
            raise ValueError(f"reduction={reduction} must divide in_channels ({in_channels})")
        channels = in_channels // reduction
        self.in_channels = in_channels
        self.proj_x = nn.Conv2d(in_channels, channels, 1, bias=False, **dd)  # x~
        self.squeeze = NodeSqueeze(in_channels, channels, squeeze=squeeze, pool=pool, **dd)
        self.reasoning = NodeReasoning(
            channels, num_nodes, reasoning, fc_reduction=fc_reduction, adjacency=adjacency, node_layout=node_layout,
            **dd)
        self.reconstruction = FeatureReconstruction(channels, in_channels, reconstruction, **dd)

    @classmethod
    def from_preset(cls, preset: str, in_channels: int, **kwargs) -> "SqueezeReasoning":
        """The module configured by a named preset of `PRESETS`; `kwargs` override the preset's arguments."""
        _check_choice("sr_preset", preset, tuple(PRESETS))
        return cls(in_channels, **{**PRESETS[preset], **kwargs})

    @classmethod
    def sfsegnets(cls, in_channels: int, inter_channels: int, num_nodes: int = 32, **kwargs) -> "SqueezeReasoning":
        """The authors' `ChannelReasonModule(in_channels, inter_channels, node_num=num_nodes)` (SFSegNets 531067b):
        GHP summed, strided nodes, Z + ReLU(BN_K(A Z)), grouped W_R + GroupNorm. Load its weights with
        `convert_sfsegnets_state_dict`."""
        _check_positive(in_channels=in_channels, inter_channels=inter_channels)
        if in_channels % inter_channels:
            raise ValueError(f"inter_channels={inter_channels} must divide in_channels ({in_channels})")
        return cls.from_preset("sfsegnets", in_channels, reduction=in_channels // inter_channels,
                               num_nodes=num_nodes, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_feature_map(x, self.in_channels, "SqueezeReasoning")  # a literal: TorchScript has no type(self)
        g = self.reasoning(self.squeeze(x))
        return self.reconstruction(x, self.proj_x(x), g)


def create_squeeze_reasoning(in_channels: int, sr_preset: Optional[str] = None, **kwargs) -> SqueezeReasoning:
    """The "sr" context module: `SqueezeReasoning(in_channels, **kwargs)`, or the preset `sr_preset` (e.g.
    "sfsegnets") with `kwargs` overriding it. SRNet passes `sr_preset=` through its context arguments."""
    if sr_preset is None:
        return SqueezeReasoning(in_channels, **kwargs)
    return SqueezeReasoning.from_preset(sr_preset, in_channels, **kwargs)


def runs_as_is(t: torch.Tensor, dtype: torch.dtype) -> bool:
    """Whether small ops on `t` may skip casts and the autocast switch: `t` is in `dtype` and CPU autocast is off
    (inside a network each op costs ~10 us). False on an FX trace's Proxy, whose dtype is not known. Call it under
    `if not torch.jit.is_scripting()`: TorchScript only knows is_autocast_enabled's deprecated name."""
    return not isinstance(t, torch.fx.Proxy) and t.dtype == dtype and not torch.is_autocast_enabled("cpu")


def _may_overwrite(x: torch.Tensor, inplace: bool) -> bool:
    """Whether a gate may write its result into `x`: allowed, and no gradient recorded (autograd needs `x`)."""
    return inplace and not (torch.is_grad_enabled() and x.requires_grad)


def _rescale(x: torch.Tensor, gate: torch.Tensor, inplace: bool) -> torch.Tensor:
    """x * gate, in place when `_may_overwrite` (a leaf for FX: the check is not traceable)."""
    return x.mul_(gate) if _may_overwrite(x, inplace) else x * gate


def rescale_add(x: torch.Tensor, gate: torch.Tensor, shortcut: torch.Tensor, inplace: bool) -> torch.Tensor:
    """shortcut + x * gate, a gated residual sum in one pass over the map (`addcmul`), written into `x` when
    `_may_overwrite`. FX callers keep it as one call with `torch.fx.wrap("rescale_add")` in their own module."""
    if _may_overwrite(x, inplace):
        return torch.addcmul(shortcut, x, gate, out=x)
    return torch.addcmul(shortcut, x, gate)


torch.fx.wrap("_rescale")


class SqueezeReasoningGate(nn.Module):
    """Section IV-E: SE with its FC layers replaced by graph reasoning: x * sigmoid(Eq. 5 on GAP(x) as K nodes).

    Takes `(channels, device=None, dtype=None)` like timm's attention layers, so it plugs into timm's ResNet with
    `block_args=dict(attn_layer=SqueezeReasoningGate)`. With `inplace=True`, a forward pass that records no
    gradient rescales `x` in place (like timm's in-place activations): no new feature map is allocated. That
    decision lives in `_rescale`, which FX keeps as one call (`torch.fx.wrap`) and TorchScript / `torch.export`
    evaluate as usual, so the gate traces, scripts and exports. SR-ResNet's blocks call `weights` and apply the
    gate inside their residual sum instead (`rescale_add`, one pass over the map for two).
    """

    def __init__(self, channels: int, num_nodes: int = 16, inplace: bool = False, device=None, dtype=None):
        super().__init__()
        if num_nodes < 1 or channels % num_nodes:
            raise ValueError(f"num_nodes={num_nodes} must divide the channels ({channels})")
        self.channels = channels
        self.inplace = inplace
        self.reasoning = GraphReasoning(num_nodes, channels // num_nodes, norm=False, act=False, device=device, dtype=dtype)

    def _gate(self, pooled: torch.Tensor, scale: float) -> torch.Tensor:
        """sigmoid(W_g ((I - A_g) G) + b) as (N, C, 1, 1) for G = scale * pooled as K x d nodes: Eq. 5 of
        `self.reasoning` in three ops (on a 1 x C vector each op's call costs more than its arithmetic)."""
        reasoning = self.reasoning
        n = pooled.shape[0]
        nodes = pooled.view(n, reasoning.num_nodes, reasoning.node_dim)
        adjacency = reasoning.adjacency.weight.expand(n, reasoning.num_nodes, reasoning.num_nodes)
        mixed = torch.baddbmm(nodes, adjacency, nodes, beta=scale, alpha=-scale)  # scale * (G - A_g G)
        return F.linear(mixed, reasoning.state.weight, reasoning.state.bias).view(n, self.channels, 1, 1).sigmoid_()

    def linear_map(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(M, b) with Eq. 5's pre-sigmoid output = M G + b for the averaged (N, C) vector G: the node mixing
        (I - A_g) and the state transform W_g as one (C x C) matrix, M = (I - A_g) ⊗ W_g, and b = W_g's bias on every
        node (nodes are contiguous channel blocks)."""
        reasoning = self.reasoning
        adjacency = reasoning.adjacency.weight
        identity = torch.eye(reasoning.num_nodes, dtype=adjacency.dtype, device=adjacency.device)
        state = reasoning.state
        return torch.kron(identity - adjacency, state.weight), state.bias.repeat(reasoning.num_nodes)

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """The gate sigmoid(Eq. 5 on GAP(x)) as an (N, C, 1, 1) tensor in x's dtype: what `forward` multiplies x by."""
        # GAP as a sum (in bf16 3x faster than `mean`, which upcasts the map), its 1 / HW applied on the nodes
        return self.weights_from_pooled(x.sum((2, 3)), 1.0 / (x.shape[2] * x.shape[3]))

    def weights_from_pooled(self, pooled: torch.Tensor, scale: float) -> torch.Tensor:
        """The gate on G = scale * pooled, for pooled (N, C) the map summed (scale = 1 / HW) or averaged (scale = 1)
        over H x W, as (N, C, 1, 1) in pooled's dtype."""
        dtype = self.reasoning.state.weight.dtype
        if not torch.jit.is_scripting():  # (a nested `if`: TorchScript skips only this form)
            if runs_as_is(pooled, dtype):
                return self._gate(pooled, scale)
        with torch.autocast("cpu", enabled=False):  # K x d nodes: tiny bf16 matmuls are ~6x slower than fp32 ones
            gate = self._gate(pooled.to(dtype), scale)
        return gate.to(pooled.dtype)  # bf16 x * fp32 gate would run a slow mixed-dtype kernel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _rescale(x, self.weights(x), self.inplace)
