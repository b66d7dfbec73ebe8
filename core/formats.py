"""Weight formats as engines really store them: what gets quantized, what stays in 16 bit,
and what the scales and zero points cost.

Each format turns one tensor into bytes. Sources for the layouts:
- bitsandbytes LLM.int8 (``Linear8bitLt``): int8 weights plus one fp32 scale per output row;
  transformers keeps the LM head and every embedding in 16 bit (``get_keys_to_not_convert``).
- bitsandbytes 4-bit (``Linear4bit``, nf4/fp4): two weights per byte, an absmax per 64 weights,
  fp32 without double quantization, or 8 bit plus one fp32 per 256 absmax with it.
- GPTQ: packed ``qweight``, fp16 ``scales`` and packed ``qzeros`` per group of ``group_size`` input
  features, and an int32 ``g_idx`` per input feature. AWQ: the same without ``g_idx``.
- FP8 checkpoints: 1 byte per weight plus fp32 scales (per 128x128 block when the config says so).
- MXFP4 (gpt-oss): experts in 4 bit with one 8-bit scale per 32 weights; the rest bf16.
- EXL2: the chosen average bits per weight over the linear layers, the head at 6 bits; ExLlamaV2
  keeps the token embedding in system RAM.
- GGUF presets: core.gguf, per tensor type as llama-quantize picks it.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil

from core import gguf
from core.memo import per_spec
from core.spec import ModelSpec
from core.tensors import Tensor

BYTES_16 = 2
# exllamav2 convert.py quantizes the LM head at 6 bits unless told otherwise (-hb).
EXL2_HEAD_BITS = 6


@dataclass(frozen=True, slots=True)
class WeightFormat:
    """A concrete storage format. ``name`` is what users typed, canonicalized."""

    name: str  # fp32 fp16 bf16 fp8 int8 nf4 fp4 gptq awq exl2 mxfp4 or a GGUF preset
    bits: float | None = None  # gptq/awq/exl2
    group_size: int = 128  # gptq/awq
    double_quant: bool = False  # bitsandbytes 4 bit
    fp8_block: int | None = None  # fp8 block-wise scales (DeepSeek: 128)

    @property
    def label(self) -> str:
        if self.name == "exl2" and self.bits:
            return f"exl2 {self.bits:g} bpw"
        if self.name in ("gptq", "awq") and self.bits:
            return f"{self.name} {self.bits:g}-bit"
        if self.name in ("nf4", "fp4") and self.double_quant:
            return f"{self.name} + double quant"
        return self.name


def _is_matmul(t: Tensor) -> bool:
    return t.kind == "linear" and t.name != "output"


def _dense(t: Tensor, bytes_per: float) -> int:
    return ceil(t.numel * bytes_per)


def tensor_bytes(t: Tensor, fmt: WeightFormat, base_bytes: int) -> int:
    """Bytes of one tensor in ``fmt``; ``base_bytes`` is the 16/32-bit width of what stays unquantized."""
    name = fmt.name
    if name == "fp32":
        return t.numel * 4
    if name in ("fp16", "bf16"):
        return t.numel * BYTES_16
    if name == "exl2" and t.name == "output":
        return ceil(t.numel * EXL2_HEAD_BITS / 8)
    if not _is_matmul(t):
        return t.numel * base_bytes
    if name == "int8":
        return t.numel + t.rows * t.count * 4
    if name in ("nf4", "fp4"):
        blocks = ceil(t.numel / 64)
        absmax = blocks + ceil(blocks / 256) * 4 if fmt.double_quant else blocks * 4
        return ceil(t.numel / 2) + absmax
    if name in ("gptq", "awq"):
        bits = fmt.bits or 4
        groups = ceil(t.cols / fmt.group_size) * t.rows * t.count
        packed = ceil(t.numel * bits / 8) + groups * 2 + ceil(groups * bits / 8)
        return packed + (t.cols * 4 * t.count if name == "gptq" else 0)
    if name == "fp8":
        if fmt.fp8_block:
            scales = ceil(t.rows / fmt.fp8_block) * ceil(t.cols / fmt.fp8_block) * t.count
        else:
            scales = t.rows * t.count
        return t.numel + scales * 4
    if name == "mxfp4":
        if not t.name.endswith("_exps"):
            return t.numel * base_bytes
        return ceil(t.numel / 2) + ceil(t.numel / 32)
    if name == "exl2":
        return ceil(t.numel * (fmt.bits or 4.0) / 8)
    raise ValueError(f"unknown weight format {name}")


def gguf_info(spec: ModelSpec) -> gguf.GgufModelInfo:
    moe = spec.moe
    return gguf.GgufModelInfo(
        n_layer=spec.n_layers, n_expert=moe.n_experts if moe else 0,
        n_gqa=max(1, spec.n_heads // max(1, spec.n_kv_heads)), arch=spec.model_type,
        tied_embeddings=spec.tied_embeddings,
    )


@per_spec()
def gguf_walk(spec: ModelSpec) -> gguf.Walk:
    return gguf.plan_walk(spec.tensors)


@per_spec()
def gguf_types(spec: ModelSpec, preset: str) -> tuple[str | None, ...]:
    """The ggml type llama-quantize gives each of the spec's tensors under ``preset`` (None:
    not in the GGUF), once per spec and preset for the weights, the offload plan and speed."""
    return tuple(gguf.tensor_types(spec.tensors, preset, gguf_info(spec), gguf_walk(spec)))


@per_spec()
def layer_weight_bytes(spec: ModelSpec, fmt: WeightFormat) -> dict[int | None, int]:
    """Bytes per text layer (None: embeddings, head, final norm and every non-text tensor)."""
    out: dict[int | None, int]
    if is_gguf(fmt.name):
        out = gguf.bytes_by_layer(spec.tensors, gguf_types(spec, fmt.name))
        vision = sum(t.numel * BYTES_16 for t in spec.tensors if t.part != "text")
        out[None] = out.get(None, 0) + vision
    else:
        base = 4 if spec.dtype == "fp32" and fmt.name == "fp32" else BYTES_16
        out = {}
        for t in spec.tensors:
            layer = t.layer if t.part == "text" else None
            out[layer] = out.get(layer, 0) + tensor_bytes(t, fmt, base)
    return out


@per_spec()
def weight_bytes(spec: ModelSpec, fmt: WeightFormat) -> int:
    return sum(layer_weight_bytes(spec, fmt).values())


@per_spec()
def named_tensor_bytes(spec: ModelSpec, fmt: WeightFormat, name: str) -> int:
    """Bytes of the non-layer tensors called ``name`` (e.g. token_embd) in ``fmt``."""
    tensors = [t for t in spec.tensors if t.name == name and t.layer is None and t.part == "text"]
    if is_gguf(fmt.name):
        info = gguf_info(spec)
        return sum(gguf.tensor_bytes(t, gguf.tensor_type(t, fmt.name, info)) for t in tensors)
    return sum(tensor_bytes(t, fmt, BYTES_16) for t in tensors)


def is_gguf(name: str) -> bool:
    return name in gguf.preset_names()


@per_spec()
def active_weight_bytes(spec: ModelSpec, fmt: WeightFormat) -> int:
    """Bytes read per decoded token: every weight but the unused routed experts."""
    total = weight_bytes(spec, fmt)
    if spec.moe is None:
        return total
    routed_params = sum(t.numel for t in spec.tensors if t.name.endswith("_exps"))
    share = routed_params / max(1, spec.params)
    routed_bytes = total * share
    return int(total - routed_bytes + routed_bytes * spec.moe.top_k / spec.moe.n_experts)
