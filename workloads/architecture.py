"""What a decoder layer is made of, beyond the dense Llama layer: the records a ModelConfig carries for
mixture-of-experts feed-forward blocks, multi-head latent attention, Mamba-2 mixers, and per-layer kinds
(sliding-window, chunked or global attention; dense, expert or no feed-forward block).

Each family's Hugging Face config keys are read in `workloads.families`; this module only holds the shapes and
their parameter counts, so that counting lives next to the shapes it counts (2 FLOPs per weight per token).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LayerKind", "MoeConfig", "MlaConfig", "SsmConfig", "MIXERS", "FFNS", "ACTIVATIONS", "DENSE_LAYER"]

MIXERS = ("attention", "mla", "mamba", "none")
FFNS = ("dense", "moe", "none")
# Gated activations have three matmuls (gate, up, down); relu2 (squared ReLU, Nemotron-H) has two (up, down).
ACTIVATIONS = ("swiglu", "geglu", "swiglu_clamp", "relu2")


@dataclass(frozen=True, slots=True)
class LayerKind:
    """One decoder layer's structure.

    mixer: "attention" (MHA/GQA/MQA), "mla" (multi-head latent attention), "mamba" (Mamba-2) or "none".
    window: sliding-window length in tokens (0: the layer attends to the whole context).
    chunk: chunked attention (Llama-4): a token attends only to the tokens of its own `chunk`-token block.
    rope: whether the layer applies rotary embeddings (Llama-4's global layers do not).
    ffn: "dense" (one MLP), "moe" (routed experts, plus shared experts if the model has them) or "none".
    ffn_intermediate: width of a dense ffn (0: the model's intermediate_size).
    """

    mixer: str = "attention"
    window: int = 0
    chunk: int = 0
    rope: bool = True
    ffn: str = "dense"
    ffn_intermediate: int = 0

    def __post_init__(self) -> None:
        if self.mixer not in MIXERS or self.ffn not in FFNS:
            raise ValueError(f"bad layer kind {self.mixer!r}/{self.ffn!r}")

    @property
    def kv_span(self) -> int:
        """Most tokens one sequence keeps cached for this layer (0: unbounded, the whole context)."""
        return self.window or self.chunk

    @property
    def label(self) -> str:
        """Short name for reports: e.g. 'attention+moe', 'attention(window 128)+moe', 'mamba'."""
        mixer = self.mixer
        if self.window:
            mixer += f"(window {self.window})"
        elif self.chunk:
            mixer += f"(chunk {self.chunk})"
        parts = [p for p in (mixer if self.mixer != "none" else "", self.ffn if self.ffn != "none" else "") if p]
        return "+".join(parts) or "empty"


DENSE_LAYER = LayerKind()


@dataclass(frozen=True, slots=True)
class MoeConfig:
    """Routed experts of an MoE feed-forward block.

    num_experts routed experts of width `expert_intermediate`, `top_k` of them per token; `shared_intermediate`
    is the total width of the always-active shared expert(s) (0: none). `expert_bias`: expert matmuls carry
    biases (gpt-oss); `router_bias`: the router has a bias vector (gpt-oss's router bias, DeepSeek's score
    correction bias). `scoring`: "softmax" or "sigmoid" (DeepSeek-V3).
    """

    num_experts: int
    top_k: int
    expert_intermediate: int
    shared_intermediate: int = 0
    expert_bias: bool = False
    router_bias: bool = False
    scoring: str = "softmax"

    def expert_params(self, hidden: int, gated: bool = True) -> int:
        """Weights of one routed expert (gate, up, down; plus biases where the model has them)."""
        mats = (3 if gated else 2) * hidden * self.expert_intermediate
        bias = (2 * self.expert_intermediate + hidden) if self.expert_bias else 0
        return mats + bias

    def block_params(self, hidden: int, experts: int, gated: bool = True) -> int:
        """Router + `experts` routed experts + shared experts."""
        router = hidden * self.num_experts + (self.num_experts if self.router_bias else 0)
        shared = (3 if gated else 2) * hidden * self.shared_intermediate
        return router + experts * self.expert_params(hidden, gated) + shared


@dataclass(frozen=True, slots=True)
class MlaConfig:
    """Multi-head latent attention (DeepSeek-V2/V3): the KV cache holds one latent of `kv_lora_rank` values
    plus a shared RoPE key of `qk_rope_head_dim` per token and layer, for all heads at once."""

    kv_lora_rank: int
    q_lora_rank: int  # 0: queries projected straight from the hidden state
    qk_nope_head_dim: int
    qk_rope_head_dim: int
    v_head_dim: int

    @property
    def cache_width(self) -> int:
        """Cached values per token and layer (latent + shared RoPE key)."""
        return self.kv_lora_rank + self.qk_rope_head_dim

    @property
    def qk_head_dim(self) -> int:
        return self.qk_nope_head_dim + self.qk_rope_head_dim

    def params(self, hidden: int, heads: int) -> int:
        """Q (down + norm + up, or one projection), KV down (latent + RoPE key) + norm, KV up, O."""
        if self.q_lora_rank:
            q = hidden * self.q_lora_rank + self.q_lora_rank + self.q_lora_rank * heads * self.qk_head_dim
        else:
            q = hidden * heads * self.qk_head_dim
        kv_down = hidden * self.cache_width + self.kv_lora_rank
        kv_up = self.kv_lora_rank * heads * (self.qk_nope_head_dim + self.v_head_dim)
        return q + kv_down + kv_up + heads * self.v_head_dim * hidden


@dataclass(frozen=True, slots=True)
class SsmConfig:
    """A Mamba-2 mixer: `num_heads` heads of `head_dim` channels (inner width num_heads x head_dim), a state of
    `state_size` per channel group, `n_groups` B/C groups, a causal depthwise conv of `conv_kernel` taps."""

    num_heads: int
    head_dim: int
    state_size: int
    n_groups: int
    conv_kernel: int
    conv_bias: bool = True
    proj_bias: bool = False

    @property
    def inner(self) -> int:
        return self.num_heads * self.head_dim

    @property
    def conv_channels(self) -> int:
        """Channels through the conv: x plus the B and C projections."""
        return self.inner + 2 * self.n_groups * self.state_size

    @property
    def in_proj_width(self) -> int:
        """z (gate), x, B, C and dt, in one projection."""
        return self.inner + self.conv_channels + self.num_heads

    def params(self, hidden: int) -> int:
        """in_proj, conv (+ bias), A_log, D, dt_bias, gated RMSNorm over the inner width, out_proj."""
        proj_bias = (self.in_proj_width + hidden) if self.proj_bias else 0
        conv = self.conv_channels * self.conv_kernel + (self.conv_channels if self.conv_bias else 0)
        return hidden * self.in_proj_width + conv + 3 * self.num_heads + self.inner + self.inner * hidden + proj_bias

    def state_elements(self) -> int:
        """Recurrent state per sequence and layer: the SSM state (heads x head_dim x state) and the conv's
        last conv_kernel - 1 inputs."""
        return self.num_heads * self.head_dim * self.state_size + self.conv_channels * (self.conv_kernel - 1)
