"""The tensor inventory of a model: what every size, format and engine calculation is built on.

A model is described as the list of its weight tensors, named by the role llama.cpp gives them
(``token_embd``, ``attn_q``, ``ffn_down_exps`` ...), so that exact parameter counts, GGUF per-tensor
type mixes, what bitsandbytes leaves in 16 bit, LoRA shapes and per-layer offload all read the same
data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# embedding: looked up, never multiplied (token_embd, pos_embd); linear: a matmul weight that
# quantizers touch; norm/bias: 1-D vectors every format keeps in 16 or 32 bit; router: the MoE gate,
# kept in 16 bit by bitsandbytes and GPTQ/AWQ; conv: vision patch embeddings and the like.
TensorKind = Literal["embedding", "linear", "norm", "bias", "router", "conv", "other"]
# Which sub-model a tensor belongs to. "text" is the language model (decoder or decoder-only);
# "encoder" the encoder of an encoder-decoder; "vision" and "projector" the image side.
TensorPart = Literal["text", "encoder", "vision", "projector"]


@dataclass(frozen=True, slots=True)
class Tensor:
    """One weight tensor (or ``count`` stacked copies of it, as MoE experts are stored).

    ``cols`` is the row length, the contiguous dimension (ggml's ne0, the linear layer's in_features)
    along which block quantization runs; ``rows`` the number of rows (ne1, out_features). A 1-D
    tensor has ``rows == 1``.
    """

    name: str
    rows: int
    cols: int
    kind: TensorKind = "linear"
    layer: int | None = None
    count: int = 1
    part: TensorPart = "text"

    @property
    def numel(self) -> int:
        return self.rows * self.cols * self.count
