"""Squeeze Reasoning (SR) module, Section III-B of the paper, as its three named steps.

    x ──┬── proj_x (1x1, C -> C/r) ─────────────── x~ ──┐
        ├── NodeSqueeze (GAP or GHP, Eq. 4) ──> g ──> NodeReasoning (FC / GCN Eq. 5 / SA Eq. 6) ──> g'
        │                                                                                          │
        └──────────── + <── FeatureReconstruction (Eq. 7):  W_R (x~ * g') ─────────────────────────┘

`SqueezeReasoningGate` is the classification variant of Section IV-E: SE's FC layers replaced by graph reasoning.
"""
from __future__ import annotations

import math

import torch
from timm.layers import register_notrace_function
from torch import nn

SQUEEZES = ("gap", "ghp")
REASONINGS = ("none", "fc", "gcn", "sa")
POOLS = ("mean", "sum")
RECONSTRUCTIONS = ("grouped", "dense")


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not one of {', '.join(repr(c) for c in choices)}")
    return value


@register_notrace_function  # one call in FX graphs; the body is TorchScript-compatible and export-safe
def check_feature_map(x: torch.Tensor, channels: int, who: str) -> None:
    """Raise a clear error unless `x` is an (N, channels, H, W) tensor."""
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
    Input and output are (N, K * d) vectors, node k holding channels [k*d, (k+1)*d).
    """

    def __init__(
            self,
            num_nodes: int,
            node_dim: int,
            norm: bool = True,
            act: bool = True,
            device=None,
            dtype=None,
    ):
        super().__init__()
        dd = dict(device=device, dtype=dtype)
        self.num_nodes = num_nodes
        self.node_dim = node_dim
        self.adjacency = nn.Linear(num_nodes, num_nodes, bias=False, **dd)  # A_g, acts on the node axis
        self.state = nn.Linear(node_dim, node_dim, bias=not norm, **dd)  # W_g, acts on each node's state
        self.norm = nn.BatchNorm1d(node_dim, **dd) if norm else None
        self.act = nn.ReLU() if act else nn.Identity()

    def forward(self, g: torch.Tensor) -> torch.Tensor:
        nodes = g.reshape(g.shape[0], self.num_nodes, self.node_dim)  # (N, K, d)
        out = self.state(nodes - torch.matmul(self.adjacency.weight, nodes))  # W_g G (I - A_g)
        if self.norm is not None:
            out = self.norm(out.transpose(1, 2)).transpose(1, 2)  # BN over the d state channels
        return self.act(out).reshape(g.shape[0], -1)


class SelfAttentionReasoning(nn.Module):
    """Eq. 6: G_out = σ(ρ_g(G) [φ_g(G)^T θ_g(G)]) on K nodes of d channels.

    φ (query), θ (key), ρ (value) are 1-D convolutions over the node states; the K x K correlation matrix is
    normalised with a softmax over keys scaled by 1/sqrt(d) (see docs/fidelity.md).
    """

    def __init__(self, num_nodes: int, node_dim: int, norm: bool = True, device=None, dtype=None):
        super().__init__()
        dd = dict(device=device, dtype=dtype)
        self.num_nodes = num_nodes
        self.node_dim = node_dim
        self.query = nn.Conv1d(node_dim, node_dim, 1, bias=False, **dd)  # φ_g
        self.key = nn.Conv1d(node_dim, node_dim, 1, bias=False, **dd)  # θ_g
        self.value = nn.Conv1d(node_dim, node_dim, 1, bias=not norm, **dd)  # ρ_g
        self.norm = nn.BatchNorm1d(node_dim, **dd) if norm else nn.Identity()
        self.act = nn.ReLU()

    def forward(self, g: torch.Tensor) -> torch.Tensor:
        nodes = g.reshape(g.shape[0], self.num_nodes, self.node_dim).transpose(1, 2)  # (N, d, K)
        affinity = self.query(nodes).transpose(1, 2) @ self.key(nodes)  # (N, K, K): φ^T θ
        affinity = (affinity / math.sqrt(self.node_dim)).softmax(dim=-1)
        out = self.value(nodes) @ affinity.transpose(1, 2)  # ρ(G) A: each node gathers from all nodes
        return self.act(self.norm(out)).transpose(1, 2).reshape(g.shape[0], -1)


class FCReasoning(nn.Module):
    """SE-style baseline of Table III: two fully-connected layers on the global vector, no node structure."""

    def __init__(self, channels: int, fc_reduction: int = 16, device=None, dtype=None):
        super().__init__()
        dd = dict(device=device, dtype=dtype)
        hidden = max(channels // fc_reduction, 1)
        self.fc1 = nn.Linear(channels, hidden, **dd)
        self.fc2 = nn.Linear(hidden, channels, **dd)
        self.act = nn.ReLU()

    def forward(self, g: torch.Tensor) -> torch.Tensor:
        return self.act(self.fc2(self.act(self.fc1(g))))


class NodeReasoning(nn.Module):
    """Node graph reasoning on the squeezed vector: `"none"`, `"fc"`, `"gcn"` (Eq. 5) or `"sa"` (Eq. 6)."""

    def __init__(
            self,
            channels: int,
            num_nodes: int = 16,
            reasoning: str = "gcn",
            fc_reduction: int = 16,
            device=None,
            dtype=None,
    ):
        super().__init__()
        dd = dict(device=device, dtype=dtype)
        self.reasoning = _check_choice("reasoning", reasoning, REASONINGS)
        if reasoning in ("gcn", "sa") and (num_nodes < 1 or channels % num_nodes):
            raise ValueError(f"num_nodes={num_nodes} must divide the reduced channels ({channels})")
        if reasoning == "gcn":
            self.op = GraphReasoning(num_nodes, channels // num_nodes, **dd)
        elif reasoning == "sa":
            self.op = SelfAttentionReasoning(num_nodes, channels // num_nodes, **dd)
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
            device=None,
            dtype=None,
    ):
        super().__init__()
        dd = dict(device=device, dtype=dtype)
        if in_channels < 1 or reduction < 1 or in_channels % reduction:
            raise ValueError(f"reduction={reduction} must divide in_channels ({in_channels})")
        channels = in_channels // reduction
        self.in_channels = in_channels
        self.proj_x = nn.Conv2d(in_channels, channels, 1, bias=False, **dd)  # x~
        self.squeeze = NodeSqueeze(in_channels, channels, squeeze=squeeze, pool=pool, **dd)
        self.reasoning = NodeReasoning(channels, num_nodes, reasoning, fc_reduction=fc_reduction, **dd)
        self.reconstruction = FeatureReconstruction(channels, in_channels, reconstruction, **dd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_feature_map(x, self.in_channels, "SqueezeReasoning")  # a literal: TorchScript has no type(self)
        g = self.reasoning(self.squeeze(x))
        return self.reconstruction(x, self.proj_x(x), g)


class SqueezeReasoningGate(nn.Module):
    """Section IV-E: SE with its FC layers replaced by graph reasoning: x * sigmoid(Eq. 5 on GAP(x) as K nodes).

    Takes `(channels, device=None, dtype=None)` like timm's attention layers, so it plugs into timm's ResNet with
    `block_args=dict(attn_layer=SqueezeReasoningGate)`. With `inplace=True`, a forward pass that records no
    gradient rescales `x` in place (like timm's in-place activations): no new feature map is allocated, which is most
    of the gate's cost on CPU.
    """

    def __init__(self, channels: int, num_nodes: int = 16, inplace: bool = False, device=None, dtype=None):
        super().__init__()
        if num_nodes < 1 or channels % num_nodes:
            raise ValueError(f"num_nodes={num_nodes} must divide the channels ({channels})")
        self.channels = channels
        self.inplace = inplace
        self.reasoning = GraphReasoning(num_nodes, channels // num_nodes, norm=False, act=False, device=device, dtype=dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = self.reasoning(x.mean((2, 3))).sigmoid()[:, :, None, None]
        if self.inplace and not (torch.is_grad_enabled() and x.requires_grad):
            return x.mul_(gate)
        return x * gate
